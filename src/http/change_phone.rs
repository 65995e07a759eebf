//! `PATCH /alcs/loyalty/v1/loyalty-cards/{card-number}` — the cashier corrected the customer's
//! phone number (contract 5.3).

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{CardPath, JsonBody};
use super::{AppState, apply_failure, wire};
use crate::domain::CardCommand;

/// Correct the customer's phone number.
#[utoipa::path(
    patch,
    path = "/alcs/loyalty/v1/loyalty-cards/{card_number}",
    tag = "cards",
    params(("card_number" = String, Path, description = "The loyalty card number: 1 to 32 digits", pattern = "^[0-9]{1,32}$", example = "99419283746389")),
    request_body(content = super::openapi::PhoneRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "Changed (or already that number)"),
        (status = 400, description = "`InvalidRequest`, `CustomerWithGivenCardNumberNotFound`, or `IncorrectPhoneNumber` (not a number the card's plan allows)", body = super::error::Envelope),
        (status = 422, description = "`CardWasNotWaitingForActivation`: the card's state does not allow it", body = super::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
    )
)]
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
