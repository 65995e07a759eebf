//! Extractors whose refusals are [`ApiError`]s, so that the framework never answers in its own
//! format: the card number in the path and JSON bodies.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::{HeaderMap, header, request::Parts};
use http_body_util::BodyExt as _;
use serde_json::Value;
use tokio::time::Instant;

use super::error::{ApiError, Reason};
use super::wire;
use crate::domain::{CardNumber, CustomerId};

/// The largest request body accepted; larger ones are answered 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// `{card-number}` from the path, parsed.
pub struct CardPath(pub CardNumber);

impl<S: Send + Sync> FromRequestParts<S> for CardPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid("{card-number}", Reason::CardNumber))?;
        wire::card_number(&raw).map(Self)
    }
}

/// `{customer-id}` from the path, parsed.
pub struct CustomerPath(pub CustomerId);

impl<S: Send + Sync> FromRequestParts<S> for CustomerPath {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::invalid("{customer-id}", Reason::CustomerId))?;
        CustomerId::parse(&raw)
            .map(Self)
            .map_err(|_| ApiError::invalid("{customer-id}", Reason::CustomerId))
    }
}

/// The value of `name` among a query string's or a form's pairs (the first, if repeated).
pub fn field<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A required JSON body: `Content-Type: application/json` (415 otherwise), at most 64 KiB (413),
/// strict JSON (400).
pub struct JsonBody(pub Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = read(req, state).await?;
        parse(&bytes).map(Self)
    }
}

/// A body that may be left out (lock): empty, or a JSON object sent as `application/json`
/// (its fields are ignored).
pub struct EmptyOrJsonObject;

impl<S: Send + Sync> FromRequest<S> for EmptyOrJsonObject {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let json = is_json(req.headers());
        let bytes = read(req, state).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self);
        }
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        match parse(&bytes)? {
            Value::Object(_) => Ok(Self),
            _ => Err(ApiError::invalid("", Reason::NotAnObject)),
        }
    }
}

/// The body, which the envelope middleware has already read whole (see [`read_body`]).
async fn read<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    Bytes::from_request(req, state)
        .await
        .map_err(|_| ApiError::invalid("", Reason::Malformed))
}

/// Reads a whole body: at most [`MAX_BODY_BYTES`] (413), within `timeout` (408).
///
/// A body over the limit is read on and thrown away (up to [`DRAIN_BYTES`] or [`DRAIN_TIME`])
/// before the 413 is sent: a client that writes its whole body before reading would otherwise
/// find its connection reset, with the answer unread in its socket buffer.
pub async fn read_body(
    headers: &HeaderMap,
    mut body: Body,
    timeout: Duration,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        // A client waiting for `100 Continue` has not sent its body and will not unless asked.
        if !headers.contains_key(header::EXPECT) {
            drain(&mut body).await;
        }
        return Err(ApiError::PayloadTooLarge);
    }
    let deadline = Instant::now() + timeout;
    let mut buf = Vec::new();
    loop {
        let frame = match tokio::time::timeout_at(deadline, body.frame()).await {
            Err(_) => return Err(ApiError::RequestTimeout),
            Ok(None) => return Ok(Bytes::from(buf)),
            // The client went away or sent broken chunked framing.
            Ok(Some(Err(_))) => return Err(ApiError::invalid("", Reason::Malformed)),
            Ok(Some(Ok(frame))) => frame,
        };
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > MAX_BODY_BYTES {
                drain(&mut body).await;
                return Err(ApiError::PayloadTooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
}

/// How much of an oversized body is read and discarded before answering 413.
pub const DRAIN_BYTES: usize = 8 * 1024 * 1024;
/// How long an oversized body is read and discarded before answering 413.
pub const DRAIN_TIME: Duration = Duration::from_secs(5);

async fn drain(body: &mut Body) {
    let deadline = Instant::now() + DRAIN_TIME;
    let mut seen = 0usize;
    while seen < DRAIN_BYTES {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                seen += frame.data_ref().map_or(0, Bytes::len);
            }
            _ => return,
        }
    }
}

fn parse(bytes: &[u8]) -> Result<Value, ApiError> {
    // serde_json refuses nesting deeper than 128 levels with an error, not a stack overflow.
    serde_json::from_slice(bytes).map_err(|e| ApiError::MalformedJson {
        line: e.line(),
        column: e.column(),
    })
}

/// `application/json`, any parameters (`; charset=utf-8`), any case.
pub fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// Whether the `Accept` headers allow a JSON answer. No header (or an empty one) allows anything;
/// a media range with `q=0` is a refusal.
pub fn accepts_json(headers: &HeaderMap) -> bool {
    let mut values = headers.get_all(header::ACCEPT).iter().peekable();
    if values.peek().is_none() {
        return true;
    }
    let mut any = false;
    for value in values {
        let Ok(value) = value.to_str() else {
            continue;
        };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim();
            if media.is_empty() {
                continue;
            }
            any = true;
            let q = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let matches = ["application/json", "application/*", "*/*"]
                .iter()
                .any(|m| m.eq_ignore_ascii_case(media));
            if matches && q > 0.0 {
                return true;
            }
        }
    }
    !any
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn accept(v: &str) -> bool {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        accepts_json(&h)
    }

    #[test]
    fn accept_header_negotiation() {
        assert!(accepts_json(&HeaderMap::new()));
        assert!(accept("application/json"));
        assert!(accept("application/json; charset=utf-8"));
        assert!(accept("text/html, */*;q=0.1"));
        assert!(accept("application/*"));
        assert!(accept("APPLICATION/JSON"));
        assert!(accept(""));
        assert!(!accept("text/html"));
        assert!(!accept("application/xml, text/plain"));
        assert!(!accept("application/json;q=0"));
    }

    #[test]
    fn content_type_must_be_json() {
        let ct = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(v).unwrap());
            is_json(&h)
        };
        assert!(ct("application/json"));
        assert!(ct("application/json; charset=utf-8"));
        assert!(ct("Application/JSON"));
        assert!(!ct("text/plain"));
        assert!(!ct("application/jsonx"));
        assert!(!is_json(&HeaderMap::new()));
    }
}
