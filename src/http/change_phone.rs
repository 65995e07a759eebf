//! `PATCH /alcs/loyalty/v1/loyalty-cards/{card-number}` — the cashier corrected the customer's
//! phone number (contract 5.3).

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{CardPath, JsonBody};
use super::{AppState, apply_failure, wire};
use crate::domain::CardCommand;

pub async fn change_phone(
    State(state): State<AppState>,
    CardPath(card): CardPath,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let phone = wire::phone_body(&body, state.default_country)?;
    match state
        .service
        .apply(card, CardCommand::ChangePhone { phone })
        .await
    {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(apply_failure(e, ApiError::Unknown)),
    }
}
