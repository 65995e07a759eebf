//! `GET /alcs/loyalty/v1/loyalty-cards/{card-number}` — read a card (contract 5.5, added for
//! support staff and deployments that cannot read Redis). Never returns the PIN HMAC.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::error::ApiError;
use super::extract::CardPath;
use super::{AppState, json, store_failure, wire};

/// Read a card, its customer and wallets (never the PIN HMAC).
#[utoipa::path(
    get,
    path = "/alcs/loyalty/v1/loyalty-cards/{card_number}",
    tag = "cards",
    params(("card_number" = String, Path, description = "The loyalty card number: 1 to 32 digits", pattern = "^[0-9]{1,32}$", example = "99419283746389")),
    responses(
        (status = 200, description = "The card", body = super::wire::CardBody),
        (status = 404, description = "`CustomerWithGivenCardNumberNotFound`", body = super::error::Envelope),
        super::openapi::Always,
    )
)]
pub async fn read(
    State(state): State<AppState>,
    CardPath(card): CardPath,
) -> Result<Response, ApiError> {
    match state.service.card(&card).await {
        Ok(Some(view)) => Ok(json(StatusCode::OK, &wire::CardBody::from(view))),
        Ok(None) => Err(ApiError::CardNotFoundOnRead),
        Err(e) => Err(store_failure(&e, ApiError::Unknown)),
    }
}
