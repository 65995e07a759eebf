//! `POST …/{card-number}/activate` — the SMS was delivered; activate card and customer
//! (contract 5.2).

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{CardPath, JsonBody};
use super::{AppState, apply_failure, wire};
use crate::domain::CardCommand;

/// Activate the card and its customer: the SMS to the customer's phone was delivered.
#[utoipa::path(
    post,
    path = "/alcs/loyalty/v1/loyalty-cards/{card_number}/activate",
    tag = "cards",
    params(("card_number" = String, Path, description = "The loyalty card number: 1 to 32 digits", pattern = "^[0-9]{1,32}$", example = "99419283746389")),
    request_body(content = super::openapi::PhoneRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "Activated (or already active)"),
        (status = 400, description = "`InvalidRequest`, `CustomerWithGivenCardNumberNotFound`, or `IncorrectPhoneNumber` (not the number on record; counts towards the limit)", body = super::error::Envelope),
        (status = 422, description = "`CardWasNotWaitingForActivation`", body = super::error::Envelope),
        (status = 429, description = "`TooManyAttempts`: too many wrong numbers for this card; `Retry-After` says when to try again", body = super::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
    )
)]
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
