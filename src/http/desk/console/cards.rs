//! The search for a customer's cards, a card's page, and the desk's actions on a card.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::domain::{CardNumber, PhoneNumber};
use crate::http::desk::refusal::desk_failure;
use crate::http::error::{ApiError, Reason};
use crate::http::extract::field;
use crate::http::wire::{self, FormFields};
use crate::store::HistoryOf;

use super::session::{Session, may_change};
use super::{ConsoleState, failure, refused};
use super::{page, text};
use crate::http::pages::{html, redirect};
use text::T;

/// The forms' inputs, under the API's names for the fields they fill.
const LOCK_INPUTS: &[(&str, &str)] = &[("Reason", "reason"), ("Note", "note")];
const REPLACE_INPUTS: &[(&str, &str)] = &[
    ("NewCardNumber", "new_card"),
    ("CardPinHMac", "pin"),
    ("Reason", "reason"),
];

/// History entries on a card's page.
const HISTORY_PAGE: i64 = 20;

pub(super) async fn search(
    State(state): State<ConsoleState>,
    session: Session,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let lang = session.lang;
    let q = field(&query, "q").unwrap_or_default().trim().to_owned();
    if q.is_empty() {
        return html(StatusCode::OK, page::search(&session, "", None));
    }
    let found = if q.bytes().all(|b| b.is_ascii_digit()) && q.len() <= 32 {
        // Digits: a card number, or a phone number written without separators.
        let mut cards = Vec::new();
        if let Ok(card) = CardNumber::parse(&q) {
            match state.desk.card(&card).await {
                Ok(Some(card)) => cards.push(card),
                Ok(None) => {}
                Err(e) => return failure(&session, &e),
            }
        }
        if cards.is_empty()
            && let Ok(phone) = PhoneNumber::parse(&q, state.country)
        {
            match state.desk.cards_by_phone(&phone).await {
                Ok(more) => cards.extend(more),
                Err(e) => return failure(&session, &e),
            }
        }
        cards
    } else {
        match PhoneNumber::parse(&q, state.country) {
            Ok(phone) => match state.desk.cards_by_phone(&phone).await {
                Ok(cards) => cards,
                Err(e) => return failure(&session, &e),
            },
            Err(_) => {
                let message =
                    ApiError::invalid(T::SearchLabel.get(lang), Reason::PhoneNumber).message(lang);
                return html(
                    StatusCode::BAD_REQUEST,
                    page::search(&session, &q, Some(Err(message))),
                );
            }
        }
    };
    html(StatusCode::OK, page::search(&session, &q, Some(Ok(found))))
}

fn card_path(raw: &str) -> Option<CardNumber> {
    CardNumber::parse(raw).ok()
}

pub(super) async fn card_page(
    State(state): State<ConsoleState>,
    session: Session,
    Path(card): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let Some(number) = card_path(&card) else {
        return refused(&session, &ApiError::CardNotFoundOnRead);
    };
    let cursor = field(&query, "cursor").and_then(|c| c.parse::<i64>().ok());
    let card = match state.desk.card(&number).await {
        Ok(Some(card)) => card,
        Ok(None) => {
            return refused(&session, &ApiError::CardNotFoundOnRead);
        }
        Err(e) => return failure(&session, &e),
    };
    let history = match state
        .desk
        .history(&HistoryOf::Card(number), cursor, HISTORY_PAGE)
        .await
    {
        Ok(entries) => entries.unwrap_or_default(),
        Err(e) => return failure(&session, &e),
    };
    let done = field(&query, "done").is_some();
    html(
        StatusCode::OK,
        page::card(&session, &card, &history, HISTORY_PAGE, done),
    )
}

/// The card actions, by their path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CardAction {
    Lock,
    Unlock,
    Replace,
    Retry,
}

impl CardAction {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "lock" => Some(Self::Lock),
            "unlock" => Some(Self::Unlock),
            "replace" => Some(Self::Replace),
            "retry-notice" => Some(Self::Retry),
            _ => None,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::Lock => "lock",
            Self::Unlock => "unlock",
            Self::Replace => "replace",
            Self::Retry => "retry-notice",
        }
    }

    pub fn title(self) -> T {
        match self {
            Self::Lock => T::Lock,
            Self::Unlock => T::Unlock,
            Self::Replace => T::Replace,
            Self::Retry => T::RetryNotice,
        }
    }
}

pub(super) async fn confirm_card(
    session: Session,
    Path((card, action)): Path<(String, String)>,
) -> Response {
    let (Some(card), Some(action)) = (card_path(&card), CardAction::parse(&action)) else {
        return refused(&session, &ApiError::NotFound);
    };
    if !session.can_act() {
        return refused(&session, &ApiError::RoleForbidden);
    }
    html(
        StatusCode::OK,
        page::confirm_card(&session, &card, action, &[], None),
    )
}

pub(super) async fn act_on_card(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path((card, action)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(page) = may_change(&session, &headers, &form) {
        return *page;
    }
    let (Some(card), Some(action)) = (card_path(&card), CardAction::parse(&action)) else {
        return refused(&session, &ApiError::NotFound);
    };
    let user = session.principal.user.clone();
    let result = match action {
        CardAction::Lock => match wire::desk_lock(&FormFields::new(&form, LOCK_INPUTS)) {
            Ok((reason, note)) => state
                .desk
                .lock(card.clone(), reason, note, user)
                .await
                .map(|_| card.clone())
                .map_err(desk_failure),
            Err(e) => Err(e),
        },
        CardAction::Unlock => state
            .desk
            .unlock(card.clone(), user)
            .await
            .map(|_| card.clone())
            .map_err(desk_failure),
        CardAction::Replace => {
            match wire::replacement(&FormFields::new(&form, REPLACE_INPUTS), &card) {
                Ok(replacement) => {
                    let new_card = replacement.new_card.clone();
                    state
                        .desk
                        .replace(card.clone(), replacement, user)
                        .await
                        .map(|_| new_card)
                        .map_err(desk_failure)
                }
                Err(e) => Err(e),
            }
        }
        CardAction::Retry => state
            .desk
            .retry_notice(card.clone(), user)
            .await
            .map(|_| card.clone())
            .map_err(desk_failure),
    };
    match result {
        // After a replacement, the new card's page.
        Ok(shown) => redirect(&format!("/console/cards/{shown}?done=1"), &[]),
        Err(error) => {
            let message = error.message(session.lang);
            html(
                error.status(),
                page::confirm_card(&session, &card, action, &form, Some(&message)),
            )
        }
    }
}
