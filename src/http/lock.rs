//! `POST …/{card-number}/lock` — lock the card, from any state (contract 5.4).

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{CardPath, EmptyOrJsonObject};
use super::{AppState, store_failure};
use crate::domain::CardCommand;
use crate::store::ApplyError;

pub async fn lock(
    State(state): State<AppState>,
    CardPath(card): CardPath,
    // No body is needed; one that is sent must still be well-formed.
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    match state.service.apply(card, CardCommand::Lock).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(ApplyError::CardNotFound) => Err(ApiError::CardNotFound),
        Err(ApplyError::Rule(_)) => Err(ApiError::Unknown),
        Err(ApplyError::Store(e)) => Err(store_failure(&e, ApiError::Unknown)),
    }
}
