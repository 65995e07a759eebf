//! `POST …/{card-number}/lock` — lock the card, from any state (contract 5.4).

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{CardPath, EmptyOrJsonObject};
use super::{AppState, apply_failure};
use crate::domain::{CardCommand, LockReason};

/// Lock the card, from any state. No body is needed; one that is sent must be a JSON object.
#[utoipa::path(
    post,
    path = "/alcs/loyalty/v1/loyalty-cards/{card_number}/lock",
    tag = "cards",
    params(("card_number" = String, Path, description = "The loyalty card number: 1 to 32 digits", pattern = "^[0-9]{1,32}$", example = "99419283746389")),
    responses(
        (status = 204, description = "Locked (or already locked)"),
        (status = 400, description = "`InvalidRequest` or `CustomerWithGivenCardNumberNotFound`", body = super::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
    )
)]
pub async fn lock(
    State(state): State<AppState>,
    CardPath(card): CardPath,
    // No body is needed; one that is sent must still be well-formed.
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    match state
        .service
        .apply(
            card,
            CardCommand::Lock {
                reason: LockReason::Alcs,
                note: None,
            },
        )
        .await
    {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(apply_failure(e, ApiError::Unknown)),
    }
}
