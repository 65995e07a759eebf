//! The layer every request passes: content negotiation, the request deadline, the error envelope
//! in the chosen language, and one log line per request (route template, never the body).

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use super::AppState;
use super::error::ApiError;
use super::extract::{accepts_json, is_json, read_body};
use crate::domain::Language;
use crate::metrics::names;

pub const JSON: HeaderValue = HeaderValue::from_static("application/json; charset=utf-8");

/// Longest request target (path and query) accepted; longer is 414.
pub const MAX_URI_BYTES: usize = 4096;
/// Header fields accepted in one request; more is 431.
pub const MAX_HEADERS: usize = 64;
/// Total size of the header fields (names and values) accepted; more is 431.
pub const MAX_HEADER_BYTES: usize = 8 * 1024;

/// Who sent a request: the peer's address and, with mutual TLS, its certificate's subject.
/// The server puts it in every request's extensions.
#[derive(Debug, Clone)]
pub struct Client {
    pub addr: std::net::SocketAddr,
    pub subject: Option<std::sync::Arc<str>>,
}

/// The header that names one request in the caller's logs and in ours.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
/// Longest request id taken from a caller; a longer one is replaced.
pub const MAX_REQUEST_ID: usize = 128;

/// Every request runs in a span carrying its request id, so every line logged for it (here, in
/// the service, in the store) names it; the id goes back on every answer, errors included.
/// The request's id, in its extensions, for what records it (the consents' proof).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

pub async fn envelope(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let id = request_id(req.headers());
    req.extensions_mut()
        .insert(RequestId(id.to_str().unwrap_or_default().to_owned()));
    let span = tracing::info_span!("request", request_id = %id.to_str().unwrap_or_default());
    let mut response = handle(state, req, next).instrument(span).await;
    response.headers_mut().insert(REQUEST_ID, id);
    response
}

/// The caller's `X-Request-Id` when it is one we can log and echo safely (1 to
/// [`MAX_REQUEST_ID`] visible ASCII characters), else a new one: a random UUID, 32 hex digits.
fn request_id(headers: &axum::http::HeaderMap) -> HeaderValue {
    headers
        .get(REQUEST_ID)
        .filter(|v| {
            (1..=MAX_REQUEST_ID).contains(&v.len()) && v.as_bytes().iter().all(u8::is_ascii_graphic)
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::try_from(uuid::Uuid::new_v4().simple().to_string())
                .unwrap_or(HeaderValue::from_static("-"))
        })
}

async fn handle(state: AppState, req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    let client = req.extensions().get::<Client>().cloned();
    // Handlers may override this from the body (register's CashierLanguage).
    let language = req
        .headers()
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Language::from_accept_language)
        .unwrap_or(state.default_language);

    let page = state.pages;
    let refused = if page {
        too_large(&req)
    } else {
        refusal(&state, &req, &route)
    };
    let response = match refused {
        Some(error) => error.into_response(),
        None => admit(&state, req, &route, next).await,
    };
    let language = response
        .extensions()
        .get::<Language>()
        .copied()
        .unwrap_or(language);
    let response = render(response, language, page);

    let status = response.status().as_u16();
    let elapsed = started.elapsed();
    let duration_ms = elapsed_ms(elapsed);
    let method_label = method_label(&method);
    metrics::counter!(names::HTTP_REQUESTS, "method" => method_label, "route" => route.clone(), "status" => status.to_string()).increment(1);
    metrics::histogram!(names::HTTP_DURATION, "method" => method_label, "route" => route.clone())
        .record(elapsed);
    let addr = client.as_ref().map(|c| c.addr.to_string());
    let subject = client.as_ref().and_then(|c| c.subject.as_deref());
    if response.status().is_server_error() {
        // One line per request always; at warning level once per 10 s per route and status,
        // so that an outage or an overload does not drown the log in warnings.
        match crate::logs::warnings().allow(&format!("{route} {status}")) {
            Some(suppressed) => {
                tracing::warn!(%method, route, status, duration_ms, client = addr, client_cert = subject, suppressed, "request failed")
            }
            None => {
                tracing::info!(%method, route, status, duration_ms, client = addr, client_cert = subject, "request failed")
            }
        }
    } else {
        tracing::info!(%method, route, status, duration_ms, client = addr, client_cert = subject, "request handled");
    }
    response
}

/// Reads the body, then runs the handler if there is room, within the request deadline.
///
/// The body is read whole before a place among the requests in progress is taken: a client
/// that sends its body slowly holds a connection, not one of the few places that bound the
/// work on the database.
async fn admit(state: &AppState, req: Request, route: &str, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let body = match read_body(&parts.headers, body, state.limits.body_timeout).await {
        Ok(body) => body,
        Err(error) => return error.into_response(),
    };
    let req = Request::from_parts(parts, Body::from(body));
    // Health checks are exempt from shedding: they are cheap, and an orchestrator must see an
    // overloaded instance as alive. (The admin listener, with the scrape, has no admission.)
    let admission = state
        .admission
        .as_ref()
        .filter(|_| !route.starts_with("/health/"));
    let run = async {
        let _place = match admission {
            None => None,
            Some(admission) => match admission.enter().await {
                Some(place) => Some(place),
                None => return ApiError::ServiceUnavailable.into_response(),
            },
        };
        next.run(req).await
    };
    match tokio::time::timeout(state.request_timeout, run).await {
        Ok(response) => response,
        Err(_) => ApiError::Timeout.into_response(),
    }
}

/// The checks every request passes before its handler: size of the request line and headers,
/// the answer's media type, and for state-changing calls the origin and the body's media type.
fn refusal(state: &AppState, req: &Request, route: &str) -> Option<ApiError> {
    if let Some(error) = too_large(req) {
        return Some(error);
    }
    let headers = req.headers();
    if !accepts_json(headers) {
        return Some(ApiError::NotAcceptable);
    }
    let changes_state = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state && route != "<unmatched>" {
        // A browser sends a cross-site form post (`application/x-www-form-urlencoded`, no
        // preflight) with its `Origin`; no till does. Refuse both marks of a browser.
        if let Some(origin) = headers.get(header::ORIGIN) {
            let allowed = super::origin::Origin::from_header(origin)
                .is_some_and(|o| state.limits.allowed_origins.contains(&o));
            if !allowed {
                return Some(ApiError::Forbidden);
            }
        }
        if headers.contains_key(header::CONTENT_TYPE) && !is_json(headers) {
            return Some(ApiError::UnsupportedMediaType);
        }
    }
    None
}

/// The method as a metrics label: a client may send any token as a method, and each new label
/// value is a new series kept for the process's life, so the rest are counted as one.
fn method_label(method: &Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "PUT" => "PUT",
        "POST" => "POST",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "HEAD" => "HEAD",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "other",
    }
}

/// The size of the request line and headers: bounded for every request.
fn too_large(req: &Request) -> Option<ApiError> {
    let target = req.uri().path_and_query().map_or(0, |p| p.as_str().len());
    if target > MAX_URI_BYTES {
        return Some(ApiError::UriTooLong);
    }
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len())
        .sum();
    if headers.len() > MAX_HEADERS || header_bytes > MAX_HEADER_BYTES {
        return Some(ApiError::HeadersTooLarge);
    }
    None
}

fn elapsed_ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e6).round() / 1e3
}

/// Writes the envelope for an [`ApiError`] response, or for any other error status (the
/// framework's 404/405/413, a caught panic) — except a `page`'s, which has its own body.
fn render(mut response: Response, language: Language, page: bool) -> Response {
    let error = match response.extensions_mut().remove::<ApiError>() {
        Some(error) => error,
        None if !page
            && (response.status().is_client_error() || response.status().is_server_error()) =>
        {
            ApiError::from_status(response.status())
        }
        None => return response,
    };
    metrics::counter!(names::HTTP_ERRORS, "message_code" => error.message_code().as_str())
        .increment(1);
    let body = serde_json::to_vec(&error.envelope(language)).unwrap_or_default();
    let mut out = (error.status(), body).into_response();
    out.headers_mut().insert(header::CONTENT_TYPE, JSON);
    if let Some(allow) = response.headers().get(header::ALLOW) {
        out.headers_mut().insert(header::ALLOW, allow.clone());
    }
    if error == ApiError::Unauthorized {
        out.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"cps-desk\""),
        );
    }
    if let Some(seconds) = error.retry_after() {
        out.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    if error.closes_connection() {
        out.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    out
}
