//! The customer API, `/loyalty/v1/…` (contract section 8): sign-in and sign-out, the password,
//! and the customer's sessions. Every answer is `Cache-Control: no-store`: they carry session
//! ids and personal data.

use std::time::Instant;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use serde::Serialize;
use serde_json::Value;

use super::PortalState;
use super::auth::{Customer, Signed, SteppedUp};
use super::body;
use super::client::ClientAddr;
use crate::domain::Refusal;
use crate::domain::{Applied, CardNumber, Channel, ConsentCommand, Language, Purpose, RuleError};
use crate::http::RequestId;
use crate::http::error::Violation;
use crate::http::error::{ApiError, Reason};
use crate::http::extract::{EmptyOrJsonObject, JsonBody};
use crate::http::precondition::{etag, if_match};
use crate::http::wire::time;
use crate::service::ApplyError;
use crate::service::portal::{CodeError, CredentialError, CustomerSession, Via};

/// The longest PIN or password read; a longer one is refused unread (hashing is costly).
pub(super) const MAX_SECRET_BYTES: usize = 1024;

/// The routes and their OpenAPI description, from the same annotations.
fn api() -> (Router<PortalState>, utoipa::openapi::OpenApi) {
    use utoipa::OpenApi as _;
    use utoipa_axum::router::OpenApiRouter;
    use utoipa_axum::routes;
    let (router, doc) = OpenApiRouter::with_openapi(super::openapi::PortalDoc::openapi())
        .routes(routes!(login))
        .routes(routes!(logout))
        .routes(routes!(set_password))
        .routes(routes!(step_up))
        .routes(routes!(step_up_code))
        .routes(routes!(request_reset))
        .routes(routes!(reset_password))
        .routes(routes!(consent_texts))
        .routes(routes!(profile, change_profile))
        .routes(routes!(consents))
        .routes(routes!(give_consent, withdraw_consent))
        .routes(routes!(object, withdraw_objection))
        .routes(routes!(lock_card))
        .routes(routes!(history))
        .routes(routes!(export))
        .routes(routes!(erase))
        .routes(routes!(change_phone))
        .routes(routes!(confirm_phone))
        .routes(routes!(sessions))
        .routes(routes!(end_session))
        .routes(routes!(openapi_json))
        .split_for_parts();
    (router, super::openapi::document(doc))
}

/// The customer API's OpenAPI 3.1 document (also at `GET /openapi.json` on the portal).
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// This API's OpenAPI 3.1 document.
#[utoipa::path(get, path = "/openapi.json", tag = "meta",
    responses((status = 200, description = "This document", content_type = "application/json")))]
async fn openapi_json() -> Response {
    static DOCUMENT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let document = DOCUMENT.get_or_init(|| openapi().to_json().unwrap_or_default());
    let mut response = document.clone().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

pub fn router(state: PortalState) -> Router {
    api()
        .0
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
pub(super) fn credential_failure(
    state: &PortalState,
    addr: ClientAddr,
    e: CredentialError,
) -> ApiError {
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
        CredentialError::Unavailable => ApiError::SmsUnavailable,
        CredentialError::Failed(e) => crate::http::store_failure(&e, ApiError::Unknown),
    }
}

/// Refused at once while the address is braked.
pub(super) fn braked(state: &PortalState, addr: ClientAddr) -> Result<(), ApiError> {
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

#[utoipa::path(
    post,
    path = "/loyalty/v1/login",
    tag = "sign-in",
    request_body(content = super::openapi::LoginRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Signed in", body = super::openapi::SignedInBody),
        (status = 403, description = "`NoAuthothorization`: the one refusal, whatever the reason (unknown card, wrong PIN or password, locked card, erased customer, malformed body)", body = crate::http::error::Envelope),
        (status = 429, description = "`TooManyAttempts`: too many failures of this card number, from this address or service-wide; `Retry-After`", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
    )
)]
async fn login(
    State(state): State<PortalState>,
    Extension(addr): Extension<ClientAddr>,
    body: Bytes,
) -> Result<Response, ApiError> {
    braked(&state, addr)?;
    let Some((card, secret)) = login_body(&body) else {
        // The same work as any refusal: a malformed sign-in takes no less time.
        let refused = state.portal.refuse(String::new()).await;
        return Err(credential_failure(&state, addr, refused));
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

#[utoipa::path(
    post,
    path = "/loyalty/v1/logout",
    tag = "sign-in",
    security(("session" = [])),
    responses(
        (status = 204, description = "The session ended"),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
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

#[utoipa::path(
    post,
    path = "/loyalty/v1/customers/current/password",
    tag = "sign-in",
    request_body(content = super::openapi::PasswordRequest, content_type = "application/json"),
    security(("session" = [])),
    responses(
        (status = 204, description = "Set; every other session ended"),
        (status = 422, description = "`ValidationErrorCodes`: the new password is too short, too long or too common", body = crate::http::error::Envelope),
        (status = 429, description = "`TooManyAttempts`", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
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

#[utoipa::path(
    get,
    path = "/loyalty/v1/customers/current/sessions",
    tag = "customer",
    security(("session" = [])),
    responses(
        (status = 200, description = "The sessions in force, newest first", body = super::openapi::Documents),
        super::openapi::Always,
        super::openapi::Signed,
    )
)]
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

#[utoipa::path(
    delete,
    path = "/loyalty/v1/customers/current/sessions/{id}",
    tag = "customer",
    params(("id" = String, Path, description = "A session's `Id` from the list")),
    security(("session" = [])),
    responses(
        (status = 204, description = "Ended"),
        (status = 404, description = "`NotFound`: no such session of this customer", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Signed,
    )
)]
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

/// A refused or failed change of the customer, as the portal answers it.
pub(super) fn change_failure(e: ApplyError) -> ApiError {
    match e {
        ApplyError::Refused(Refusal::Rule(RuleError::VersionMismatch)) => {
            ApiError::CustomerModified
        }
        // Too many wrong codes of the card: the portal's own throttle answer.
        ApplyError::Refused(Refusal::TooManyAttempts { retry_after }) => ApiError::TooManySignIns {
            retry_after_secs: retry_after.as_secs().max(1),
        },
        // The customer behind a live session is gone (erased meanwhile): sign in again.
        ApplyError::Refused(
            Refusal::CustomerNotFound | Refusal::Rule(RuleError::CustomerErased),
        ) => ApiError::SessionExpired,
        e => crate::http::apply_failure(e, ApiError::Unknown),
    }
}

pub(super) fn read_failure(e: &crate::service::Failure) -> ApiError {
    crate::http::store_failure(e, ApiError::Unknown)
}

/// `{"Password": …}`, or `{"Code": …}` after `POST /step-up/code` sent one.
#[utoipa::path(
    post,
    path = "/loyalty/v1/step-up",
    tag = "sign-in",
    request_body(content = super::openapi::StepUpRequest, content_type = "application/json"),
    security(("session" = [])),
    responses(
        (status = 204, description = "Raised for 10 minutes"),
        (status = 429, description = "`TooManyAttempts`", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn step_up(
    State(state): State<PortalState>,
    Extension(addr): Extension<ClientAddr>,
    Customer(session): Customer,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    if !body.is_object() {
        return Err(ApiError::invalid("", Reason::NotAnObject));
    }
    braked(&state, addr)?;
    let result = if body.get("Code").is_some_and(|c| !c.is_null()) {
        let code = required_secret(&body, "Code")?;
        state.portal.step_up_with_code(&session, &code).await
    } else {
        let password = required_secret(&body, "Password")?;
        state.portal.step_up(&session, password).await
    };
    result.map_err(|e| credential_failure(&state, addr, e))?;
    Ok(StatusCode::NO_CONTENT)
}

pub(super) fn code_failure(e: CodeError) -> ApiError {
    match e {
        CodeError::Unavailable => ApiError::SmsUnavailable,
        CodeError::TooSoon => ApiError::TooManySignIns {
            retry_after_secs: crate::store::CODE_EVERY.num_seconds().unsigned_abs(),
        },
        CodeError::NoPhone => ApiError::InvalidProperties(vec![Violation {
            property: "PhoneNumber".to_owned(),
            error: "Missing",
        }]),
        CodeError::Failed(e) => read_failure(&e),
    }
}

/// Sends a step-up code to the phone on record.
#[utoipa::path(
    post,
    path = "/loyalty/v1/step-up/code",
    tag = "sign-in",
    security(("session" = [])),
    responses(
        (status = 202, description = "A code was sent to the phone on record"),
        (status = 429, description = "`TooManyAttempts`: a code went out less than a minute ago, or too many wrong codes; `Retry-After`", body = crate::http::error::Envelope),
        (status = 422, description = "`ValidationErrorCodes`: no phone number on record", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn step_up_code(
    State(state): State<PortalState>,
    Customer(session): Customer,
    headers: HeaderMap,
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    let lang = language(&headers, state.default_language);
    state
        .portal
        .send_step_up_code(&session, lang)
        .await
        .map_err(code_failure)?;
    Ok(StatusCode::ACCEPTED)
}

/// `{"PhoneNumber"}`: a code goes to the new number; `…/phone/confirm` applies it.
#[utoipa::path(
    post,
    path = "/loyalty/v1/customers/current/phone",
    tag = "customer",
    request_body(content = super::openapi::PhoneChangeRequest, content_type = "application/json"),
    security(("session" = [])),
    responses(
        (status = 202, description = "A code was sent to the new number"),
        (status = 422, description = "`ValidationErrorCodes`: the customer is gone", body = crate::http::error::Envelope),
        (status = 429, description = "`TooManyAttempts`: a code went out less than a minute ago, or too many wrong codes; `Retry-After`", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn change_phone(
    State(state): State<PortalState>,
    SteppedUp(session): SteppedUp,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let phone = crate::http::wire::phone_body(&body, state.default_country)?;
    let lang = language(&headers, state.default_language);
    state
        .portal
        .request_phone_change(&session, phone, lang)
        .await
        .map_err(code_failure)?;
    Ok(StatusCode::ACCEPTED)
}

#[utoipa::path(
    post,
    path = "/loyalty/v1/customers/current/phone/confirm",
    tag = "customer",
    request_body(content = super::openapi::CodeRequest, content_type = "application/json"),
    security(("session" = [])),
    responses(
        (status = 204, description = "The new number applied, as ALCS's phone change applies it"),
        (status = 429, description = "`TooManyAttempts`: a code went out less than a minute ago, or too many wrong codes; `Retry-After`", body = crate::http::error::Envelope),
        (status = 422, description = "`ValidationErrorCodes`: not the code sent", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn confirm_phone(
    State(state): State<PortalState>,
    Customer(session): Customer,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let code = required_secret(&body, "Code")?;
    let applied = state
        .portal
        .confirm_phone(&session, &code)
        .await
        .map_err(change_failure)?;
    if applied {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::InvalidProperties(vec![Violation {
            property: "Code".to_owned(),
            error: "Invalid",
        }]))
    }
}

/// `{"CardNumber"}`: a code to the card's phone on record, if it has a customer who may sign
/// in; the answer is the same whether it does.
#[utoipa::path(
    post,
    path = "/loyalty/v1/password-reset",
    tag = "sign-in",
    request_body(content = super::openapi::ResetRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "If the card has a customer who may sign in, a code goes to the phone on record; the answer is the same either way"),
        (status = 429, description = "`TooManyAttempts`", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
    )
)]
async fn request_reset(
    State(state): State<PortalState>,
    Extension(addr): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    braked(&state, addr)?;
    let card = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| {
            b.get("CardNumber")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .ok_or_else(|| ApiError::invalid("CardNumber", Reason::Missing))?;
    let card = CardNumber::parse(&card).map_err(|_| card.clone());
    let lang = language(&headers, state.default_language);
    state
        .portal
        .request_reset(card, lang)
        .await
        .map_err(|e| credential_failure(&state, addr, e))?;
    Ok(StatusCode::ACCEPTED)
}

/// `{"CardNumber", "Code", "NewPassword"}`.
#[utoipa::path(
    post,
    path = "/loyalty/v1/password-reset/confirm",
    tag = "sign-in",
    request_body(content = super::openapi::ResetConfirmRequest, content_type = "application/json"),
    responses(
        (status = 204, description = "Set; every session ended and the sign-in reopened"),
        (status = 422, description = "`ValidationErrorCodes`: the new password", body = crate::http::error::Envelope),
        (status = 429, description = "`TooManyAttempts`", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
    )
)]
async fn reset_password(
    State(state): State<PortalState>,
    Extension(addr): Extension<ClientAddr>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    braked(&state, addr)?;
    let body: Value = serde_json::from_slice(&body).map_err(|_| ApiError::NoAuthothorization)?;
    let card = body
        .get("CardNumber")
        .and_then(Value::as_str)
        .ok_or(ApiError::NoAuthothorization)?;
    let code = required_secret(&body, "Code").map_err(|_| ApiError::NoAuthothorization)?;
    let new = required_secret(&body, "NewPassword")?;
    let card = CardNumber::parse(card).map_err(|_| card.to_owned());
    state
        .portal
        .reset_password(card, &code, &new)
        .await
        .map_err(|e| credential_failure(&state, addr, e))?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    get,
    path = "/loyalty/v1/consent-texts",
    tag = "consents",
    responses(
        (status = 200, description = "Every published text: `Purpose`, `Version`, `Language`, `Text`, `Sha256`", body = super::openapi::Documents),
        super::openapi::Always,
    )
)]
async fn consent_texts(State(state): State<PortalState>) -> Response {
    crate::http::json(StatusCode::OK, &body::texts(state.portal.texts()))
}

/// The customer's profile as it stands, and its version as the ETag.
async fn current(
    state: &PortalState,
    session: &CustomerSession,
) -> Result<crate::service::portal::AccountView, ApiError> {
    state
        .portal
        .account(session)
        .await
        .map_err(|e| read_failure(&e))?
        .ok_or(ApiError::SessionExpired)
}

fn profile_response(view: crate::service::portal::AccountView) -> Response {
    let tag = etag(view.account.version);
    let mut response = crate::http::json(StatusCode::OK, &body::profile(view));
    response.headers_mut().insert(header::ETAG, tag);
    response
}

#[utoipa::path(
    get,
    path = "/loyalty/v1/customers/current",
    tag = "customer",
    security(("session" = [])),
    responses(
        (status = 200, description = "The profile, with its version as `ETag`", body = super::openapi::Document),
        (status = 304, description = "Unchanged since the version in `If-None-Match`"),
        super::openapi::Always,
        super::openapi::Signed,
    )
)]
async fn profile(
    State(state): State<PortalState>,
    Customer(session): Customer,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let view = current(&state, &session).await?;
    let tag = etag(view.account.version);
    let unchanged = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| {
            let t = t.trim();
            t == "*" || t.trim_start_matches("W/") == tag.to_str().unwrap_or_default()
        });
    if unchanged {
        let mut response = StatusCode::NOT_MODIFIED.into_response();
        response.headers_mut().insert(header::ETAG, tag);
        return Ok(response);
    }
    Ok(profile_response(view))
}

#[utoipa::path(
    patch,
    path = "/loyalty/v1/customers/current",
    tag = "customer",
    params(("If-Match" = Option<String>, Header, description = "The profile's `ETag`: without it 428 `PreconditionRequired`")),
    request_body(content = super::openapi::ProfileChange, content_type = "application/json"),
    security(("session" = [])),
    responses(
        (status = 200, description = "Changed: the profile as it now stands, with its new `ETag`", body = super::openapi::Document),
        (status = 412, description = "`CustomerModifiedByAnotherUserOrProcess`: stale `If-Match`", body = crate::http::error::Envelope),
        (status = 422, description = "`ValidationErrorCodes`: each refused property, `Missing`, `Invalid` or `ReadOnly`", body = crate::http::error::Envelope),
        (status = 428, description = "`PreconditionRequired`: no `If-Match`", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn change_profile(
    State(state): State<PortalState>,
    Customer(session): Customer,
    headers: HeaderMap,
    JsonBody(patch): JsonBody,
) -> Result<Response, ApiError> {
    let expected = if_match(&headers)?;
    let change = body::profile_change(&patch, &state.mandatory.0)?;
    state
        .portal
        .change_profile(&session, expected, change)
        .await
        .map_err(change_failure)?;
    Ok(profile_response(current(&state, &session).await?))
}

#[utoipa::path(
    get,
    path = "/loyalty/v1/customers/current/consents",
    tag = "consents",
    security(("session" = [])),
    responses(
        (status = 200, description = "Each purpose, the objection, and every change with its proof", body = super::openapi::Document),
        super::openapi::Always,
        super::openapi::Signed,
    )
)]
async fn consents(
    State(state): State<PortalState>,
    Customer(session): Customer,
) -> Result<Response, ApiError> {
    let view = current(&state, &session).await?;
    let events = state
        .portal
        .consent_history(&session.customer)
        .await
        .map_err(|e| read_failure(&e))?;
    let body = body::consents(state.portal.texts(), &view.account.consents, events);
    Ok(crate::http::json(StatusCode::OK, &body))
}

/// How the change came, for its proof: the API, this request, the language it was shown in.
fn via(request: &RequestId, language: Language) -> Via {
    Via {
        channel: Channel::Api,
        request_id: Some(request.0.clone()),
        language,
    }
}

/// Applies a change of the consents, its proof naming this request and its language.
async fn consent_change(
    state: &PortalState,
    session: &CustomerSession,
    (request, headers): (&RequestId, &HeaderMap),
    command: ConsentCommand,
    shown_in: Option<Language>,
) -> Result<StatusCode, ApiError> {
    let lang = shown_in.unwrap_or_else(|| language(headers, state.default_language));
    state
        .portal
        .change_consent(session, command, via(request, lang))
        .await
        .map_err(change_failure)?;
    Ok(StatusCode::NO_CONTENT)
}

/// The language of the request (`Accept-Language`), else the portal's default.
pub(super) fn language(headers: &HeaderMap, default: Language) -> Language {
    headers
        .get_all(header::ACCEPT_LANGUAGE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(Language::from_accept_language)
        .unwrap_or(default)
}

fn purpose(raw: &str) -> Result<Purpose, ApiError> {
    Purpose::parse(raw).ok_or(ApiError::NotFound)
}

#[utoipa::path(
    put,
    path = "/loyalty/v1/customers/current/consents/{purpose}",
    tag = "consents",
    params(("purpose" = String, Path, description = "The purpose, as the texts name it")),
    request_body(content = super::openapi::ConsentRequest, content_type = "application/json"),
    security(("session" = [])),
    responses(
        (status = 204, description = "Given (or already given on that text)"),
        (status = 404, description = "`NotFound`: no such purpose", body = crate::http::error::Envelope),
        (status = 422, description = "`ValidationErrorCodes`: no such version of the text", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn give_consent(
    State(state): State<PortalState>,
    Customer(session): Customer,
    Extension(request): Extension<RequestId>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    JsonBody(body): JsonBody,
) -> Result<StatusCode, ApiError> {
    let purpose = purpose(&raw)?;
    if !state.portal.texts().purposes().contains(&&purpose) {
        return Err(ApiError::NotFound);
    }
    let version = body
        .get("TextVersion")
        .filter(|v| !v.is_null())
        .ok_or_else(|| ApiError::invalid("TextVersion", Reason::Missing))?
        .as_str()
        .ok_or_else(|| ApiError::invalid("TextVersion", Reason::NotAString))?;
    let lang = language(&headers, state.default_language);
    // The text of that version in the customer's language, as shown to them.
    let text = state
        .portal
        .texts()
        .find(&purpose, version, lang)
        .cloned()
        .ok_or(ApiError::InvalidProperties(vec![
            crate::http::error::Violation {
                property: "TextVersion".to_owned(),
                error: "Invalid",
            },
        ]))?;
    let shown_in = text.language;
    consent_change(
        &state,
        &session,
        (&request, &headers),
        ConsentCommand::Give(text),
        Some(shown_in),
    )
    .await
}

/// One call, asking nothing more: a body (the text's version) may be sent and is not needed.
#[utoipa::path(
    delete,
    path = "/loyalty/v1/customers/current/consents/{purpose}",
    tag = "consents",
    params(("purpose" = String, Path, description = "The purpose")),
    security(("session" = [])),
    responses(
        (status = 204, description = "Withdrawn (or was not given)"),
        (status = 404, description = "`NotFound`: not a purpose's name", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn withdraw_consent(
    State(state): State<PortalState>,
    Customer(session): Customer,
    Extension(request): Extension<RequestId>,
    Path(raw): Path<String>,
    headers: HeaderMap,
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    let purpose = purpose(&raw)?;
    consent_change(
        &state,
        &session,
        (&request, &headers),
        ConsentCommand::Withdraw(purpose),
        None,
    )
    .await
}

#[utoipa::path(
    put,
    path = "/loyalty/v1/customers/current/objection",
    tag = "consents",
    security(("session" = [])),
    responses(
        (status = 204, description = "Objecting to all marketing: it overrides every consent"),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn object(
    State(state): State<PortalState>,
    Customer(session): Customer,
    Extension(request): Extension<RequestId>,
    headers: HeaderMap,
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    consent_change(
        &state,
        &session,
        (&request, &headers),
        ConsentCommand::Object,
        None,
    )
    .await
}

#[utoipa::path(
    delete,
    path = "/loyalty/v1/customers/current/objection",
    tag = "consents",
    security(("session" = [])),
    responses(
        (status = 204, description = "No longer objecting"),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn withdraw_objection(
    State(state): State<PortalState>,
    Customer(session): Customer,
    Extension(request): Extension<RequestId>,
    headers: HeaderMap,
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    consent_change(
        &state,
        &session,
        (&request, &headers),
        ConsentCommand::WithdrawObjection,
        None,
    )
    .await
}

/// A lost card: locked at once, as ALCS's lock, the customer as actor (which ends every
/// session of theirs, this one too).
#[utoipa::path(
    post,
    path = "/loyalty/v1/customers/current/card/lock",
    tag = "customer",
    security(("session" = [])),
    responses(
        (status = 204, description = "The card signed in with is locked as lost; every session ended"),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn lock_card(
    State(state): State<PortalState>,
    Customer(session): Customer,
    _body: EmptyOrJsonObject,
) -> Result<StatusCode, ApiError> {
    match state.portal.lock_card(&session).await {
        Ok(Applied::Changed | Applied::Unchanged) => Ok(StatusCode::NO_CONTENT),
        Err(e) => Err(change_failure(e)),
    }
}

#[utoipa::path(
    get,
    path = "/loyalty/v1/customers/current/history",
    tag = "customer",
    params(("cursor" = Option<i64>, Query, minimum = 1, description = "From a page's `NextCursor`"), ("limit" = Option<i64>, Query, minimum = 1, maximum = 100, description = "1 to 100 (20)")),
    security(("session" = [])),
    responses(
        (status = 200, description = "Who changed what, newest first: `Entries` and `NextCursor`", body = super::openapi::Document),
        super::openapi::Always,
        super::openapi::Signed,
    )
)]
async fn history(
    State(state): State<PortalState>,
    Customer(session): Customer,
    Query(params): Query<Vec<(String, String)>>,
) -> Result<Response, ApiError> {
    let field = |name: &str| crate::http::extract::field(&params, name);
    let before = field("cursor")
        .map(|c| {
            c.parse::<i64>()
                .ok()
                .filter(|c| *c > 0)
                .ok_or_else(|| ApiError::invalid("cursor", Reason::Cursor))
        })
        .transpose()?;
    let limit = match field("limit") {
        None => 20,
        Some(l) => l
            .parse::<i64>()
            .ok()
            .filter(|l| (1..=100).contains(l))
            .ok_or_else(|| ApiError::invalid("limit", Reason::Limit))?,
    };
    let entries = state
        .portal
        .history(&session.customer, before, limit)
        .await
        .map_err(|e| read_failure(&e))?;
    let next = (entries.len() as i64 == limit)
        .then(|| entries.last().map(|e| e.id.to_string()))
        .flatten();
    let body = serde_json::json!({
        "Entries": entries.into_iter().map(body::HistoryEntryBody::from).collect::<Vec<_>>(),
        "NextCursor": next,
    });
    Ok(crate::http::json(StatusCode::OK, &body))
}

/// The download: one JSON document, saved as a file by a browser.
#[utoipa::path(
    get,
    path = "/loyalty/v1/customers/current/export",
    tag = "customer",
    security(("session" = [])),
    responses(
        (status = 200, description = "Every personal datum and the GDPR art. 15(1) information, as `docs/portal-export.schema.json` describes", body = super::openapi::Document),
        super::openapi::Always,
        super::openapi::Signed,
    )
)]
async fn export(
    State(state): State<PortalState>,
    SteppedUp(session): SteppedUp,
) -> Result<Response, ApiError> {
    let export = state
        .portal
        .export(&session)
        .await
        .map_err(|e| read_failure(&e))?
        .ok_or(ApiError::SessionExpired)?;
    tracing::info!(customer_id = %session.customer, "customer downloaded their data");
    let mut response = crate::http::json(StatusCode::OK, &body::export(export));
    response.headers_mut().insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("attachment; filename=\"cps-my-data.json\""),
    );
    Ok(response)
}

/// `{"Confirm": true}`: the erasure of every personal datum, irreversible; ends every session.
#[utoipa::path(
    post,
    path = "/loyalty/v1/customers/current/erase",
    tag = "customer",
    request_body(content = super::openapi::EraseRequest, content_type = "application/json"),
    security(("session" = [])),
    responses(
        (status = 200, description = "Erased: the receipt (`ReceiptId`, `ErasedAt`, `ConsentEventsRemoved`)", body = super::openapi::Document),
        (status = 422, description = "`ValidationErrorCodes`: `Confirm` is not `true`", body = crate::http::error::Envelope),
        super::openapi::Always,
        super::openapi::Changing,
        super::openapi::Signed,
    )
)]
async fn erase(
    State(state): State<PortalState>,
    SteppedUp(session): SteppedUp,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    if body.get("Confirm") != Some(&serde_json::Value::Bool(true)) {
        let error = if body.get("Confirm").is_none_or(serde_json::Value::is_null) {
            "Missing"
        } else {
            "Invalid"
        };
        return Err(ApiError::InvalidProperties(vec![
            crate::http::error::Violation {
                property: "Confirm".to_owned(),
                error,
            },
        ]));
    }
    let receipt = state
        .portal
        .erase(session.customer)
        .await
        .map_err(change_failure)?;
    Ok(crate::http::json(StatusCode::OK, &body::receipt(&receipt)))
}
