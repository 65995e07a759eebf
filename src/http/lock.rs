//! `POST …/{card-number}/lock` — lock the card, from any state (contract 5.4).

use axum::extract::State;
use axum::http::StatusCode;

use super::error::ApiError;
use super::extract::{CardPath, EmptyOrJsonObject};
use super::{AppState, apply_failure};
use crate::domain::CardCommand;

pub async fn lock(
    State(state): State<AppState>,
    CardPath(card): CardPath,
    // No body is needed; one that is sent must still be well-formed.
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    match state.service.apply(card, CardCommand::Lock).await {
        Ok(_) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(apply_failure(e, ApiError::Unknown)),
    }
}
