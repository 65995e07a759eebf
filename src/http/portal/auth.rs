//! Who is calling the portal API: the session named by `Authorization: <SessionId>` (as the
//! 2016 API sent it) or `Authorization: Bearer <SessionId>`. A missing, ended or unknown
//! session is 401 `SessionExpired`; a session signed in by PIN reaches only what [`Signed`]
//! guards (setting a password, signing out), the rest answers 403 `PasswordChangeRequired`.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::PortalState;
use crate::http::error::ApiError;
use crate::service::portal::{CustomerSession, Level};

/// Any portal session in force.
pub struct Signed(pub CustomerSession);

/// A session signed in with the password.
pub struct Customer(pub CustomerSession);

/// The session id of the request, when it sends one.
fn session_id(parts: &Parts) -> Option<&str> {
    let value = parts
        .headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .trim();
    let id = match value.split_once(' ') {
        Some((scheme, id)) if scheme.eq_ignore_ascii_case("bearer") => id.trim(),
        Some(_) => return None,
        None => value,
    };
    // Ids are 68 visible characters; anything far longer is nobody's.
    (!id.is_empty() && id.len() <= 256).then_some(id)
}

impl FromRequestParts<PortalState> for Signed {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, ApiError> {
        let Some(id) = session_id(parts) else {
            return Err(ApiError::SessionExpired);
        };
        match state.portal.session(id).await {
            Ok(Some(session)) => Ok(Self(session)),
            Ok(None) => Err(ApiError::SessionExpired),
            Err(e) => Err(crate::http::store_failure(&e, ApiError::Unknown)),
        }
    }
}

impl FromRequestParts<PortalState> for Customer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, ApiError> {
        let Signed(session) = Signed::from_request_parts(parts, state).await?;
        match session.level {
            Level::Password => Ok(Self(session)),
            Level::Pin => Err(ApiError::PasswordChangeRequired),
        }
    }
}

/// A password session raised by a recent step-up: what export, erasure and a phone change
/// need (403 `StepUpRequired` otherwise).
pub struct SteppedUp(pub CustomerSession);

impl FromRequestParts<PortalState> for SteppedUp {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &PortalState) -> Result<Self, ApiError> {
        let Customer(session) = Customer::from_request_parts(parts, state).await?;
        if session.stepped_up() {
            Ok(Self(session))
        } else {
            Err(ApiError::StepUpRequired)
        }
    }
}
