//! Probes for orchestrators: `live` says the process serves HTTP, `ready` that it can reach its
//! database can take a write now (and so should get traffic).

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use super::error::ApiError;
use super::{AppState, json as json_response};

/// The process serves HTTP.
#[utoipa::path(get, path = "/health/live", tag = "health",
    responses((status = 200, description = "`{\"Status\": \"Live\"}`", body = super::openapi::Status)))]
pub async fn live() -> Response {
    json_response(StatusCode::OK, &json!({ "Status": "Live" }))
}

/// The instance can take writes now (a small write committed within 800 ms).
#[utoipa::path(get, path = "/health/ready", tag = "health",
    responses(
        (status = 200, description = "`{\"Status\": \"Ready\"}`", body = super::openapi::Status),
        (status = 503, description = "`ServiceUnavailable`: not ready", body = super::error::Envelope),
    ))]
pub async fn ready(State(state): State<AppState>) -> Result<Response, ApiError> {
    if state.service.ready().await {
        Ok(json_response(StatusCode::OK, &json!({ "Status": "Ready" })))
    } else {
        // Not ready, whatever the cause (logged by the probe): the orchestrator only needs 503.
        Err(ApiError::ServiceUnavailable)
    }
}
