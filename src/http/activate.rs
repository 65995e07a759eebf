//! `POST …/{card-number}/activate` — the SMS was delivered; activate card and customer
//! (contract 5.2).

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{CardPath, JsonBody};
use super::{AppState, store_failure, wire};
use crate::domain::{CardCommand, RuleError};
use crate::store::ApplyError;

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
        Err(ApplyError::CardNotFound) => Err(ApiError::CardNotFound),
        Err(ApplyError::Rule(RuleError::CardWasNotWaitingForActivation)) => {
            Err(ApiError::CardWasNotWaitingForActivation)
        }
        Err(ApplyError::Rule(RuleError::IncorrectPhoneNumber)) => {
            Err(ApiError::IncorrectPhoneNumber)
        }
        // The transaction rolled back: nothing is half-done.
        Err(ApplyError::Store(e)) => Err(store_failure(&e, ApiError::CustomerActivationError)),
    }
}
