//! `POST …/{card-number}/activate` — the SMS was delivered; activate card and customer
//! (contract 5.2).

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{CardPath, JsonBody};
use super::{AppState, apply_failure, wire};
use crate::domain::CardCommand;

pub async fn activate(
    State(state): State<AppState>,
    CardPath(card): CardPath,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let phone = wire::activation_phone_body(&body, state.default_country)?;
    match state
        .service
        .apply(card, CardCommand::Activate { phone })
        .await
    {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(apply_failure(e, ApiError::CustomerActivationError)),
    }
}
