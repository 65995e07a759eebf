//! `GET /alcs/loyalty/v1/loyalty-cards/{card-number}` — read a card (contract 5.5, added for
//! support staff and deployments that cannot read Redis). Never returns the PIN HMAC.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;

use super::error::ApiError;
use super::extract::CardPath;
use super::{AppState, json, store_failure, wire};

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
