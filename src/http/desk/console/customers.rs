//! A customer's page, and the desk's actions on the customer.

use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::domain::CustomerId;
use crate::http::desk::refusal::desk_failure;
use crate::http::error::ApiError;
use crate::http::extract::field;
use crate::http::wire::{self, FormFields};

use super::session::{Session, may_change};
use super::{ConsoleState, failure, refused};
use super::{page, text};
use crate::http::pages::{html, redirect};
use text::T;

pub(super) async fn customer_page(
    State(state): State<ConsoleState>,
    session: Session,
    Path(id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let not_found = |session: &Session| refused(session, &ApiError::CustomerNotFound);
    let Ok(id) = CustomerId::parse(&id) else {
        return not_found(&session);
    };
    let found = match state.desk.customer(&id).await {
        Ok(Some(customer)) => customer,
        Ok(None) => return not_found(&session),
        Err(e) => return failure(&session, &e),
    };
    let consents = match state.desk.consents(&id).await {
        Ok(consents) => consents,
        Err(e) => return failure(&session, &e),
    };
    let done = field(&query, "done").is_some();
    html(
        StatusCode::OK,
        page::customer(&session, &found, &consents, done),
    )
}

/// The customer actions, by their path segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CustomerAction {
    Phone,
    Erase,
}

impl CustomerAction {
    fn parse(s: &str) -> Option<Self> {
        match s {
            "phone" => Some(Self::Phone),
            "erase" => Some(Self::Erase),
            _ => None,
        }
    }

    pub fn path(self) -> &'static str {
        match self {
            Self::Phone => "phone",
            Self::Erase => "erase",
        }
    }

    pub fn title(self) -> T {
        match self {
            Self::Phone => T::ChangePhone,
            Self::Erase => T::Erase,
        }
    }
}

/// The customer as it stands now, or the page that says why not.
async fn current(
    state: &ConsoleState,
    session: &Session,
    id: &CustomerId,
) -> Result<crate::store::DeskCustomer, Box<Response>> {
    match state.desk.customer(id).await {
        Ok(Some(customer)) => Ok(customer),
        Ok(None) => Err(Box::new(refused(session, &ApiError::CustomerNotFound))),
        Err(e) => Err(Box::new(failure(session, &e))),
    }
}

pub(super) async fn confirm_customer(
    State(state): State<ConsoleState>,
    session: Session,
    Path((id, action)): Path<(String, String)>,
) -> Response {
    let (Ok(id), Some(action)) = (CustomerId::parse(&id), CustomerAction::parse(&action)) else {
        return refused(&session, &ApiError::NotFound);
    };
    if !session.can_act() {
        return refused(&session, &ApiError::RoleForbidden);
    }
    // The version the agent sees is the one the change is made against.
    let customer = match current(&state, &session, &id).await {
        Ok(customer) => customer,
        Err(page) => return *page,
    };
    html(
        StatusCode::OK,
        page::confirm_customer(&session, &customer.customer, action, None),
    )
}

pub(super) async fn act_on_customer(
    State(state): State<ConsoleState>,
    session: Session,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    Form(form): Form<Vec<(String, String)>>,
) -> Response {
    if let Err(page) = may_change(&session, &headers, &form) {
        return *page;
    }
    let (Ok(id), Some(action)) = (CustomerId::parse(&id), CustomerAction::parse(&action)) else {
        return refused(&session, &ApiError::NotFound);
    };
    let user = session.principal.user.clone();
    let result = match action {
        CustomerAction::Phone => {
            let version = field(&form, "version").and_then(|v| v.parse::<i64>().ok());
            let fields = FormFields::new(&form, &[("PhoneNumber", "phone")]);
            match (version, wire::phone(&fields, state.country)) {
                (None, _) => Err(ApiError::PreconditionRequired),
                (_, Err(e)) => Err(e),
                (Some(version), Ok(phone)) => state
                    .desk
                    .change_phone(id, phone, version.into(), user)
                    .await
                    .map_err(desk_failure),
            }
        }
        CustomerAction::Erase => state.desk.erase(id, user).await.map_err(desk_failure),
    };
    match result {
        Ok(_) => redirect(&format!("/console/customers/{id}?done=1"), &[]),
        Err(error) => {
            let message = error.message(session.lang);
            // Shown again as it stands now (a 412 means it changed).
            let customer = match current(&state, &session, &id).await {
                Ok(customer) => customer,
                Err(page) => return *page,
            };
            html(
                error.status(),
                page::confirm_customer(&session, &customer.customer, action, Some(&message)),
            )
        }
    }
}
