//! Probes for orchestrators: `live` says the process serves HTTP, `ready` that it can reach its
//! database (and so should get traffic).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::{AppState, json as json_response, store_failure};

pub async fn live() -> Response {
    json_response(StatusCode::OK, &json!({ "Status": "Live" }))
}

pub async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    match state.service.ready().await {
        Ok(()) => Ok(json_response(StatusCode::OK, &json!({ "Status": "Ready" }))),
        // Not ready, whatever the cause: the orchestrator only needs 503.
        Err(e) => Err(store_failure(&e, ApiError::ServiceUnavailable)),
    }
}
