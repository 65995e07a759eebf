//! Who is calling the desk API: a bearer token from the tokens file ([`crate::tokens`]), its
//! user and role; and the brake on guessing ([`Brake`]): an address that failed too often
//! lately is refused for a while, whatever it sends.

use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::DeskUser;
use crate::http::Client;
use crate::http::brake::Brake;
use crate::http::error::ApiError;
use crate::tokens::{Role, Tokens, TokensError};

/// How long a failed authentication counts against its address.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);

/// The desk user a request was authenticated as, in its extensions.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: DeskUser,
    pub role: Role,
}

/// The tokens in force, reloadable, and the failures per address.
pub struct Auth {
    file: PathBuf,
    tokens: RwLock<Arc<Tokens>>,
    /// Failed authentications tolerated from one address within [`FAILURE_WINDOW`].
    brake: Brake,
}

impl Auth {
    /// Reads the tokens file; the service does not start with one it cannot read.
    pub fn load(file: PathBuf, max_failures: usize) -> Result<Self, TokensError> {
        let tokens = Tokens::load(&file)?;
        if tokens.is_empty() {
            tracing::warn!(file = %file.display(), "the desk tokens file lists nobody: every desk request is refused");
        }
        Ok(Self {
            file,
            tokens: RwLock::new(Arc::new(tokens)),
            brake: Brake::new(max_failures, FAILURE_WINDOW),
        })
    }

    /// Reads the file again (SIGHUP). A file that does not read or parse leaves the tokens in
    /// force as they were: a typo must not lock every desk user out.
    pub fn reload(&self) {
        match Tokens::load(&self.file) {
            Ok(tokens) => {
                let users = tokens.len();
                *self
                    .tokens
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(tokens);
                tracing::info!(file = %self.file.display(), users, "desk tokens reloaded");
            }
            Err(e) => {
                tracing::error!(error = %e, "desk tokens not reloaded: the previous ones stay in force");
            }
        }
    }

    /// The user of the token whose hash this is, while it is in force (not revoked).
    pub fn principal_for_hash(&self, hash: &str) -> Option<Principal> {
        self.current().by_hash(hash).map(|entry| Principal {
            user: entry.user.clone(),
            role: entry.role,
        })
    }

    fn current(&self) -> Arc<Tokens> {
        self.tokens
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Who `token`, sent from `addr`, belongs to: refused while `addr` is braked, and a
    /// failure counted against `addr` when it is unknown.
    pub fn check(&self, addr: IpAddr, token: Option<&str>) -> Result<Principal, ApiError> {
        self.sign_in(addr, token).map(|(principal, _)| principal)
    }

    /// As [`Auth::check`], with the token's hash (for a console session to follow it).
    pub fn sign_in(
        &self,
        addr: IpAddr,
        token: Option<&str>,
    ) -> Result<(Principal, String), ApiError> {
        let now = Instant::now();
        if let Some(wait) = self.brake.braked(addr, now) {
            // Once per 10 s whatever the flood: each request has its own line already.
            crate::warn_limited!("desk-braked", client = %addr, "desk request refused: too many failed authentications");
            return Err(ApiError::TooManyAuthFailures {
                retry_after_secs: wait.as_secs().max(1),
            });
        }
        let tokens = self.current();
        match token.and_then(|token| tokens.authenticate(token)) {
            Some(entry) => Ok((
                Principal {
                    user: entry.user.clone(),
                    role: entry.role,
                },
                entry.hash_hex(),
            )),
            None => {
                // A guess is a token that is wrong; a request with none (a browser asking for
                // `/favicon.ico`, a probe) guesses nothing and is not counted.
                if token.is_some() {
                    self.brake.failed(addr, now);
                }
                crate::warn_limited!("desk-unauthorized", client = %addr, "desk request refused: missing or unknown token");
                Err(ApiError::Unauthorized)
            }
        }
    }
}

/// The bearer token of `Authorization: Bearer …`, if the header is one.
fn bearer(req: &Request) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Authenticates every desk request and checks its role: reads (`GET`) need `viewer`, every
/// change `agent`.
pub async fn authorize(State(auth): State<Arc<Auth>>, mut req: Request, next: Next) -> Response {
    let addr = req
        .extensions()
        .get::<Client>()
        .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.addr.ip());
    let entry = match auth.check(addr, bearer(&req)) {
        Ok(entry) => entry,
        Err(error) => return error.into_response(),
    };
    let reads = matches!(*req.method(), Method::GET | Method::HEAD);
    if !reads && entry.role < Role::Agent {
        crate::warn_limited!("desk-forbidden", user = %entry.user, role = entry.role.as_str(), "desk request refused: the role does not allow it");
        return ApiError::RoleForbidden.into_response();
    }
    let principal = entry;
    let span = tracing::info_span!("desk", user = %principal.user);
    req.extensions_mut().insert(principal);
    tracing::Instrument::instrument(next.run(req), span).await
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `Auth` over an empty tokens file: every token is a guess.
    fn nobody(max_failures: usize) -> (tempfile::TempDir, Auth) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("tokens");
        std::fs::write(&file, "").unwrap();
        let auth = Auth::load(file, max_failures).unwrap();
        (dir, auth)
    }

    #[test]
    fn guesses_are_braked_per_address_after_the_allowed_failures() {
        let (_dir, auth) = nobody(3);
        let addr = IpAddr::from([10, 0, 0, 1]);
        for _ in 0..3 {
            assert!(matches!(
                auth.check(addr, Some("guess")),
                Err(ApiError::Unauthorized)
            ));
        }
        assert!(matches!(
            auth.check(addr, Some("guess")),
            Err(ApiError::TooManyAuthFailures { .. })
        ));
        // A request without a token guesses nothing.
        let other = IpAddr::from([10, 0, 0, 2]);
        for _ in 0..5 {
            assert!(matches!(
                auth.check(other, None),
                Err(ApiError::Unauthorized)
            ));
        }
    }
}
