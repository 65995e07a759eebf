//! The HTTP API of contract sections 2–5: routes, extractors, the error envelope, and one file
//! per operation.

mod activate;
pub mod admission;
pub mod brake;
mod change_phone;
pub mod desk;
pub mod error;
mod extract;
mod health;
mod lock;
mod middleware;
pub mod openapi;
pub mod origin;
pub mod pages;
pub mod portal;
pub mod precondition;
mod read;
mod register;
pub mod wire;

use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, middleware as mw};
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::domain::{Country, Language, Refusal, RuleError};
use crate::service::{ApplyError, Failure, Service};
use error::ApiError;

pub use extract::MAX_BODY_BYTES;
pub use middleware::{Client, MAX_HEADER_BYTES, MAX_HEADERS, MAX_URI_BYTES, RequestId};

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub service: Service,
    pub default_country: Country,
    pub default_language: Language,
    pub request_timeout: Duration,
    pub limits: RequestLimits,
    /// Places for requests in progress, and in line for one; `None` never sheds (the admin
    /// listener: a scrape or a probe during an overload is when an operator needs them).
    pub admission: Option<admission::Admission>,
    /// The routes answer HTML pages for people (the console), not the JSON API: they negotiate,
    /// check their forms' origin and write their own error pages themselves.
    pub pages: bool,
}

/// What one request may hold and take.
/// How the API answers: its languages, its country, and what one request may take.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Of error messages when the request names no language we know.
    pub default_language: Language,
    /// Whose numbering plan applies to national phone numbers.
    pub default_country: Country,
    /// A request taking longer is answered 503 `Timeout`.
    pub request_timeout: Duration,
    pub requests: RequestLimits,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            default_language: Language::Polish,
            default_country: Country::poland(),
            request_timeout: Duration::from_secs(10),
            requests: RequestLimits::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestLimits {
    /// Requests in progress at most.
    pub max_in_flight: usize,
    /// Requests waiting for a place at most; more are answered 503 at once.
    pub max_queued: usize,
    /// How long a body may take to arrive (408 after).
    pub body_timeout: Duration,
    /// Browser origins allowed to send state-changing requests.
    pub allowed_origins: Vec<origin::Origin>,
}

impl Default for RequestLimits {
    /// Those of `cps serve`.
    fn default() -> Self {
        Self {
            max_in_flight: 12,
            max_queued: 36,
            body_timeout: Duration::from_secs(5),
            allowed_origins: Vec::new(),
        }
    }
}

/// The API's routes and their OpenAPI description, from the same annotations.
fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(
            read::read,
            register::register,
            change_phone::change_phone
        ))
        .routes(routes!(activate::activate))
        .routes(routes!(lock::lock))
        .routes(routes!(health::live))
        .routes(routes!(health::ready))
        .routes(routes!(openapi_json))
        .split_for_parts();
    (router, error::listing_only(doc, openapi::CODES))
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This document", content_type = "application/json")))]
async fn openapi_json() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let document = DOCUMENT.get_or_init(|| openapi().to_json().unwrap_or_default());
    let mut response = document.clone().into_response();
    response
        .headers_mut()
        .insert(axum::http::header::CONTENT_TYPE, middleware::JSON);
    response
}

/// The OpenAPI 3.1 document of the API this router serves (also at `GET /openapi.json`).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

pub fn router(state: AppState) -> Router {
    let routes = api()
        .0
        .fallback(|| async { ApiError::NotFound })
        .with_state(state.clone());
    enveloped(routes, state)
}

/// `routes` inside what every listener's requests pass: the envelope middleware (request ids,
/// limits, admission, logs, metrics, the error envelope) with `state`'s settings.
pub(crate) fn enveloped(routes: Router, state: AppState) -> Router {
    routes
        // Bodies are read (and bounded) by our own extractors; see `extract::read`.
        .layer(DefaultBodyLimit::disable())
        // A panic is a bug, but it must still answer in the envelope and keep the server up.
        .layer(CatchPanicLayer::new())
        .layer(mw::from_fn_with_state(state, middleware::envelope))
}

/// The admin listener's routes: metrics and the probes, for the platform rather than ALCS.
/// Same envelope, request ids and logs as the API; never shed (a scrape or a probe during an
/// overload is exactly when an operator needs them).
pub fn admin_router(state: AppState) -> Router {
    let state = AppState {
        admission: None,
        ..state
    };
    let routes = Router::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(health::live))
        .route("/health/ready", get(health::ready))
        .fallback(|| async { ApiError::NotFound })
        .with_state(state.clone());
    enveloped(routes, state)
}

/// Prometheus's text format: what the process recorded, with the gauges read now.
async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = crate::metrics::handle() else {
        return ApiError::ServiceUnavailable.into_response();
    };
    state.service.observe().await;
    crate::metrics::record_process();
    let mut response = handle.render().into_response();
    response.headers_mut().insert(
        axum::http::header::CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// A JSON success response.
pub(crate) fn json(status: StatusCode, body: &impl Serialize) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (status, bytes).into_response();
            response
                .headers_mut()
                .insert(axum::http::header::CONTENT_TYPE, middleware::JSON);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "failed to encode a response");
            ApiError::Unknown.into_response()
        }
    }
}

/// The answer for an operation on a card that did not happen. `otherwise` answers an
/// infrastructure failure that is not "unavailable" (the operation's own 500 code).
pub(crate) fn apply_failure(e: ApplyError, otherwise: ApiError) -> ApiError {
    match e {
        ApplyError::Refused(refusal) => refused(refusal),
        // The transaction rolled back: nothing is half-done.
        ApplyError::Failed(e) => store_failure(&e, otherwise),
    }
}

/// The answer for an operation the rules refused.
fn refused(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::CardNotFound => ApiError::CardNotFound,
        Refusal::CustomerNotFound => ApiError::CustomerNotFound,
        Refusal::CardAlreadyRegistered => ApiError::CardAlreadyRegistered,
        Refusal::NoNoticeToRetry => ApiError::NoNoticeToRetry,
        Refusal::TooManyAttempts { retry_after } => ApiError::TooManyAttempts {
            retry_after_secs: retry_after.as_secs().max(1),
        },
        Refusal::Rule(rule) => match rule {
            RuleError::CardWasNotWaitingForActivation => ApiError::CardWasNotWaitingForActivation,
            RuleError::IncorrectPhoneNumber => ApiError::IncorrectPhoneNumber,
            RuleError::CardNotLocked => ApiError::CardNotLocked,
            RuleError::CardCannotBeUnlocked => ApiError::CardCannotBeUnlocked,
            RuleError::CardCannotBeReplaced => ApiError::CardCannotBeReplaced,
            RuleError::SameCard => ApiError::invalid("NewCardNumber", error::Reason::SameCard),
            RuleError::CustomerErased => ApiError::CustomerErased,
            RuleError::VersionMismatch => ApiError::PreconditionFailed,
        },
    }
}

/// The answer for an infrastructure failure: 503 when the database is unavailable (nothing was
/// done), otherwise `otherwise` (a 500). Logged here, once, with its cause chain.
pub(crate) fn store_failure(e: &Failure, otherwise: ApiError) -> ApiError {
    let chain = crate::error_chain(e);
    if e.is_unavailable() {
        crate::warn_limited!("database-unavailable", error = %chain, "database unavailable");
        ApiError::ServiceUnavailable
    } else {
        tracing::error!(error = %chain, "database failure");
        otherwise
    }
}
