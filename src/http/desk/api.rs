//! The desk's JSON API (`/support/v1/…`): look-ups, history, and the changes the desk makes on
//! a customer's behalf. Same envelope, languages, request ids and logs as the ALCS API.

use std::sync::Arc;

use axum::extract::{FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router, middleware as mw};

use super::auth::{self, Auth, Principal};
use super::body::{
    CardBody, CardsBody, CustomerBody, EntryBody, HistoryBody, RetriedBody, SignInBody,
};
use super::refusal::{desk_failure, read_failure};
use crate::domain::{Applied, PhoneNumber};
use crate::http::error::{ApiError, Reason};
use crate::http::extract::{CardPath, CustomerPath, EmptyOrJsonObject, JsonBody, field};
use crate::http::precondition::{etag, if_match};
use crate::http::{AppState, json, wire};
use crate::service::desk::Desk;
use crate::store::HistoryOf;

/// What the desk's handlers reach.
#[derive(Clone)]
struct DeskState {
    desk: Desk,
    app: AppState,
}

/// History entries per page unless `limit` says otherwise.
const PAGE: i64 = 20;
const MAX_PAGE: i64 = 100;

/// The desk API's routes, behind authentication (`auth` answers unknown callers before any
/// route is looked up).
pub(super) fn router(app: AppState, desk: Desk, auth: Arc<Auth>) -> Router {
    let state = DeskState {
        desk,
        app: app.clone(),
    };
    Router::new()
        .route("/support/v1/cards", get(cards_by_phone))
        .route("/support/v1/cards/{card_number}", get(card))
        .route("/support/v1/cards/{card_number}/history", get(card_history))
        .route("/support/v1/cards/{card_number}/lock", post(lock))
        .route("/support/v1/cards/{card_number}/unlock", post(unlock))
        .route("/support/v1/cards/{card_number}/replace", post(replace))
        .route(
            "/support/v1/cards/{card_number}/sign-in",
            get(sign_in).delete(clear_sign_in),
        )
        .route(
            "/support/v1/cards/{card_number}/alcs-notice/retry",
            post(retry_notice),
        )
        .route(
            "/support/v1/customers/{customer_id}",
            get(customer).patch(change_phone),
        )
        .route(
            "/support/v1/customers/{customer_id}/history",
            get(customer_history),
        )
        .route("/support/v1/customers/{customer_id}/erase", post(erase))
        .fallback(|| async { ApiError::NotFound })
        // Before anything else a handler does: unknown callers learn nothing, not even routes.
        .layer(mw::from_fn_with_state(auth, auth::authorize))
        .with_state(state)
}

/// The query string's parameters (unknown ones ignored, as unknown JSON fields are).
struct Params(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Params {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)
            .map(|Query(pairs)| Self(pairs))
            .map_err(|_| ApiError::invalid("", Reason::Malformed))
    }
}

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        field(&self.0, name)
    }

    /// `cursor` and `limit` of a history page.
    fn page(&self) -> Result<(Option<i64>, i64), ApiError> {
        let cursor = self
            .get("cursor")
            .map(|c| {
                c.parse::<i64>()
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| ApiError::invalid("cursor", Reason::Cursor))
            })
            .transpose()?;
        let limit = match self.get("limit") {
            None => PAGE,
            Some(l) => l
                .parse::<i64>()
                .ok()
                .filter(|l| (1..=MAX_PAGE).contains(l))
                .ok_or_else(|| ApiError::invalid("limit", Reason::Limit))?,
        };
        Ok((cursor, limit))
    }
}

async fn card(State(s): State<DeskState>, CardPath(card): CardPath) -> Result<Response, ApiError> {
    match s.desk.card(&card).await.map_err(|e| read_failure(&e))? {
        Some(card) => Ok(json(StatusCode::OK, &CardBody::new(card, false))),
        None => Err(ApiError::CardNotFoundOnRead),
    }
}

async fn cards_by_phone(State(s): State<DeskState>, params: Params) -> Result<Response, ApiError> {
    let raw = params
        .get("phone")
        .ok_or_else(|| ApiError::invalid("phone", Reason::Missing))?;
    let phone = PhoneNumber::parse(raw, s.app.default_country)
        .map_err(|_| ApiError::invalid("phone", Reason::PhoneNumber))?;
    let cards = s
        .desk
        .cards_by_phone(&phone)
        .await
        .map_err(|e| read_failure(&e))?;
    let body = CardsBody {
        cards: cards.into_iter().map(|c| CardBody::new(c, false)).collect(),
    };
    Ok(json(StatusCode::OK, &body))
}

async fn customer(
    State(s): State<DeskState>,
    CustomerPath(id): CustomerPath,
) -> Result<Response, ApiError> {
    let Some(customer) = s.desk.customer(&id).await.map_err(|e| read_failure(&e))? else {
        return Err(ApiError::CustomerNotFound);
    };
    let consents = s.desk.consents(&id).await.map_err(|e| read_failure(&e))?;
    let etag = etag(customer.customer.version);
    let mut response = json(StatusCode::OK, &CustomerBody::new(customer, consents));
    response.headers_mut().insert(header::ETAG, etag);
    Ok(response)
}

async fn card_history(
    State(s): State<DeskState>,
    CardPath(card): CardPath,
    params: Params,
) -> Result<Response, ApiError> {
    history(
        &s,
        HistoryOf::Card(card),
        &params,
        ApiError::CardNotFoundOnRead,
    )
    .await
}

async fn customer_history(
    State(s): State<DeskState>,
    CustomerPath(id): CustomerPath,
    params: Params,
) -> Result<Response, ApiError> {
    history(
        &s,
        HistoryOf::Customer(id),
        &params,
        ApiError::CustomerNotFound,
    )
    .await
}

async fn history(
    s: &DeskState,
    of: HistoryOf,
    params: &Params,
    not_found: ApiError,
) -> Result<Response, ApiError> {
    let (cursor, limit) = params.page()?;
    let Some(entries) = s
        .desk
        .history(&of, cursor, limit)
        .await
        .map_err(|e| read_failure(&e))?
    else {
        return Err(not_found);
    };
    // A full page may have more behind it: the oldest entry's id is where the next begins.
    let next_cursor = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    let body = HistoryBody {
        entries: entries.into_iter().map(EntryBody::from).collect(),
        next_cursor,
    };
    Ok(json(StatusCode::OK, &body))
}

async fn lock(
    State(s): State<DeskState>,
    Extension(who): Extension<Principal>,
    CardPath(card): CardPath,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let (reason, note) = wire::desk_lock_body(&body)?;
    s.desk
        .lock(card, reason, note, who.user)
        .await
        .map_err(desk_failure)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The card number's web sign-in: its failures in a row and whether it waits or is locked.
async fn sign_in(
    State(s): State<DeskState>,
    CardPath(card): CardPath,
) -> Result<Response, ApiError> {
    let state = s.desk.sign_in(&card).await.map_err(|e| read_failure(&e))?;
    Ok(json(StatusCode::OK, &SignInBody::new(&card, state)))
}

/// Reopens the card's web sign-in (its failures forgotten).
async fn clear_sign_in(
    State(s): State<DeskState>,
    Extension(who): Extension<Principal>,
    CardPath(card): CardPath,
) -> Result<StatusCode, ApiError> {
    s.desk
        .clear_sign_in(card, who.user)
        .await
        .map_err(desk_failure)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unlock(
    State(s): State<DeskState>,
    Extension(who): Extension<Principal>,
    CardPath(card): CardPath,
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    s.desk.unlock(card, who.user).await.map_err(desk_failure)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Answers the new card as it now stands.
async fn replace(
    State(s): State<DeskState>,
    Extension(who): Extension<Principal>,
    CardPath(card): CardPath,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let replacement = wire::replacement_body(&body, &card)?;
    let new_card = replacement.new_card.clone();
    s.desk
        .replace(card, replacement, who.user)
        .await
        .map_err(desk_failure)?;
    match s.desk.card(&new_card).await.map_err(|e| read_failure(&e))? {
        Some(card) => Ok(json(StatusCode::OK, &CardBody::new(card, false))),
        // Committed a moment ago; a read that misses it is a failure, not a 404.
        None => Err(ApiError::Unknown),
    }
}

async fn change_phone(
    State(s): State<DeskState>,
    Extension(who): Extension<Principal>,
    CustomerPath(id): CustomerPath,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let version = if_match(&headers)?;
    let phone = wire::phone_body(&body, s.app.default_country)?;
    s.desk
        .change_phone(id, phone, version, who.user)
        .await
        .map_err(desk_failure)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn erase(
    State(s): State<DeskState>,
    Extension(who): Extension<Principal>,
    CustomerPath(id): CustomerPath,
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    match s.desk.erase(id, who.user).await.map_err(desk_failure)? {
        // A second erasure finds nothing to do: the same answer.
        Applied::Changed | Applied::Unchanged => Ok(StatusCode::NO_CONTENT),
    }
}

async fn retry_notice(
    State(s): State<DeskState>,
    Extension(who): Extension<Principal>,
    CardPath(card): CardPath,
    _body: EmptyOrJsonObject,
) -> Result<Response, ApiError> {
    let queued = s
        .desk
        .retry_notice(card, who.user)
        .await
        .map_err(desk_failure)?;
    let body = RetriedBody {
        notices_queued: queued,
    };
    Ok(json(StatusCode::ACCEPTED, &body))
}
