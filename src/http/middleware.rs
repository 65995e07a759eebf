//! The layer every request passes: content negotiation, the request deadline, the error envelope
//! in the chosen language, and one log line per request (route template, never the body).

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use super::extract::accepts_json;
use crate::domain::Language;

pub const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

pub async fn envelope(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    // Handlers may override this from the body (register's CashierLanguage).
    let language = req
        .headers()
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Language::from_accept_language)
        .unwrap_or(state.default_language);

    let response = if !accepts_json(req.headers()) {
        ApiError::NotAcceptable.into_response()
    } else {
        match tokio::time::timeout(state.request_timeout, next.run(req)).await {
            Ok(response) => response,
            Err(_) => ApiError::Timeout.into_response(),
        }
    };
    let language = response
        .extensions()
        .get::<Language>()
        .copied()
        .unwrap_or(language);
    let response = render(response, language);

    let status = response.status().as_u16();
    let duration_ms = elapsed_ms(started.elapsed());
    if response.status().is_server_error() {
        tracing::warn!(%method, route, status, duration_ms, "request failed");
    } else {
        tracing::info!(%method, route, status, duration_ms, "request handled");
    }
    response
}

fn elapsed_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Writes the envelope for an [`ApiError`] response, or for any other error status (the
/// framework's 404/405/413, a caught panic).
fn render(mut response: Response, language: Language) -> Response {
    let error = match response.extensions_mut().remove::<ApiError>() {
        Some(error) => error,
        None if response.status().is_client_error() || response.status().is_server_error() => {
            ApiError::from_status(response.status())
        }
        None => return response,
    };
    let body = serde_json::to_vec(&error.envelope(language)).unwrap_or_default();
    let mut out = (error.status(), body).into_response();
    out.headers_mut().insert(header::CONTENT_TYPE, JSON);
    if let Some(allow) = response.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    out
}
