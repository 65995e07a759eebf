//! The customer API, `/loyalty/v1/…` (contract section 8): sign-in and sign-out, the password,
//! and the customer's sessions. Every answer is `Cache-Control: no-store`: they carry session
//! ids and personal data.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{delete, get, post};
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::Value;

use super::PortalState;
use super::auth::{Customer, Signed};
use super::client::ClientAddr;
use crate::domain::CardNumber;
use crate::http::error::{ApiError, Reason};
use crate::http::extract::JsonBody;
use crate::service::portal::CredentialError;

/// The longest PIN or password read; a longer one is refused unread (hashing is costly).
const MAX_SECRET_BYTES: usize = 1024;

pub fn router(state: PortalState) -> Router {
    Router::new()
        .route("/loyalty/v1/login", post(login))
        .route("/loyalty/v1/logout", post(logout))
        .route("/loyalty/v1/customers/current/password", post(set_password))
        .route("/loyalty/v1/customers/current/sessions", get(sessions))
        .route(
            "/loyalty/v1/customers/current/sessions/{id}",
            delete(end_session),
        )
        .fallback(|| async { ApiError::NotFound })
        .with_state(state)
        .layer(axum::middleware::map_response(no_store))
}

async fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

#[derive(Serialize)]
struct SignedInBody {
    #[serde(rename = "SessionId")]
    session_id: String,
    #[serde(rename = "MustSetPassword")]
    must_set_password: bool,
}

/// `{"CardNumber" | "Login": "…", "Password": "…"}`; `None` for anything else (answered as
/// the one refusal: a malformed sign-in says no more than a wrong one).
fn login_body(bytes: &[u8]) -> Option<(Result<CardNumber, String>, String)> {
    let body: Value = serde_json::from_slice(bytes).ok()?;
    let body = body.as_object()?;
    let card = body
        .get("CardNumber")
        .filter(|v| !v.is_null())
        .or_else(|| body.get("Login"))?
        .as_str()?;
    let secret = body.get("Password")?.as_str()?;
    if secret.is_empty() || secret.len() > MAX_SECRET_BYTES || card.len() > 64 {
        return None;
    }
    let card = CardNumber::parse(card).map_err(|_| card.to_owned());
    Some((card, secret.to_owned()))
}

/// A refused credential as it is answered; a refusal counts against the address.
fn credential_failure(state: &PortalState, addr: ClientAddr, e: CredentialError) -> ApiError {
    match e {
        CredentialError::Refused => {
            state.brake.failed(addr.0, Instant::now());
            ApiError::NoAuthothorization
        }
        CredentialError::Throttled(wait) => ApiError::TooManySignIns {
            retry_after_secs: wait.as_secs().max(1),
        },
        CredentialError::Busy => {
            crate::warn_limited!(
                "portal-busy",
                "portal sign-in refused: every password hashing slot is busy"
            );
            ApiError::ServiceUnavailable
        }
        CredentialError::Weak(why) => ApiError::WeakPassword(why),
        CredentialError::Failed(e) => crate::http::store_failure(&e, ApiError::Unknown),
    }
}

/// Refused at once while the address is braked.
fn braked(state: &PortalState, addr: ClientAddr) -> Result<(), ApiError> {
    match state.brake.braked(addr.0, Instant::now()) {
        Some(wait) => {
            crate::warn_limited!("portal-braked", client = %addr.0, "portal sign-in refused: too many failures from this address");
            Err(ApiError::TooManySignIns {
                retry_after_secs: wait.as_secs().max(1),
            })
        }
        None => Ok(()),
    }
}

async fn login(
    State(state): State<PortalState>,
    Extension(addr): Extension<ClientAddr>,
    body: Bytes,
) -> Result<Response, ApiError> {
    braked(&state, addr)?;
    let Some((card, secret)) = login_body(&body) else {
        state.brake.failed(addr.0, Instant::now());
        return Err(ApiError::NoAuthothorization);
    };
    let signed = state
        .portal
        .sign_in(card, secret)
        .await
        .map_err(|e| credential_failure(&state, addr, e))?;
    Ok(crate::http::json(
        StatusCode::OK,
        &SignedInBody {
            session_id: signed.session,
            must_set_password: signed.must_set_password,
        },
    ))
}

async fn logout(
    State(state): State<PortalState>,
    Signed(session): Signed,
) -> Result<StatusCode, ApiError> {
    state
        .portal
        .sessions()
        .end(&session.key)
        .await
        .map_err(|e| crate::http::store_failure(&e, ApiError::Unknown))?;
    tracing::info!(customer_id = %session.customer, "portal session ended by sign-out");
    Ok(StatusCode::NO_CONTENT)
}

fn required_secret(body: &Value, field: &str) -> Result<String, ApiError> {
    let value = body
        .get(field)
        .filter(|v| !v.is_null())
        .ok_or_else(|| ApiError::invalid(field, Reason::Missing))?;
    let text = value
        .as_str()
        .ok_or_else(|| ApiError::invalid(field, Reason::NotAString))?;
    if text.len() > MAX_SECRET_BYTES {
        return Err(ApiError::invalid(field, Reason::TooLong));
    }
    Ok(text.to_owned())
}

async fn set_password(
    State(state): State<PortalState>,
    Extension(addr): Extension<ClientAddr>,
    Signed(session): Signed,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid("", Reason::NotAnObject));
    }
    let old = required_secret(&body, "OldPassword")?;
    let new = required_secret(&body, "NewPassword")?;
    braked(&state, addr)?;
    state
        .portal
        .set_password(&session, old, &new)
        .await
        .map_err(|e| credential_failure(&state, addr, e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Serialize)]
struct SessionBody {
    #[serde(rename = "Id")]
    id: String,
    #[serde(rename = "CreatedAt")]
    created_at: String,
    #[serde(rename = "LastSeenAt")]
    last_seen_at: String,
    #[serde(rename = "ExpiresAt")]
    expires_at: String,
    #[serde(rename = "Current")]
    current: bool,
}

fn time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

async fn sessions(
    State(state): State<PortalState>,
    Customer(session): Customer,
) -> Result<Response, ApiError> {
    let listed = state
        .portal
        .sessions_of(&session.customer)
        .await
        .map_err(|e| crate::http::store_failure(&e, ApiError::Unknown))?;
    let body: Vec<SessionBody> = listed
        .into_iter()
        .map(|s| SessionBody {
            current: s.public_id == session.public_id,
            id: s.public_id,
            created_at: time(s.created_at),
            last_seen_at: time(s.last_seen_at),
            expires_at: time(s.expires_at),
        })
        .collect();
    Ok(crate::http::json(StatusCode::OK, &body))
}

async fn end_session(
    State(state): State<PortalState>,
    Customer(session): Customer,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let ended = state
        .portal
        .sessions()
        .close_public(&session.customer.to_string(), &id)
        .await
        .map_err(|e| crate::http::store_failure(&e, ApiError::Unknown))?;
    if ended {
        tracing::info!(customer_id = %session.customer, "portal session ended by its customer");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::NotFound)
    }
}
