//! Who is calling the desk API: a bearer token from the tokens file ([`crate::tokens`]), its
//! user and role; and the brake on guessing: an address that failed too often lately is
//! refused for a while, whatever it sends.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::domain::DeskUser;
use crate::http::Client;
use crate::http::error::ApiError;
use crate::tokens::{Role, Tokens, TokensError};

/// How long a failed authentication counts against its address.
pub const FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Addresses whose failures are remembered at most; beyond, the oldest are forgotten (a flood
/// from many addresses must not grow the table without bound).
const MAX_ADDRESSES: usize = 10_000;

/// The desk user a request was authenticated as, in its extensions.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: DeskUser,
    pub role: Role,
}

/// The tokens in force, reloadable, and the failures per address.
pub struct Auth {
    file: PathBuf,
    /// Failed authentications tolerated from one address within [`FAILURE_WINDOW`].
    max_failures: usize,
    tokens: RwLock<Arc<Tokens>>,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
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
            max_failures: max_failures.max(1),
            tokens: RwLock::new(Arc::new(tokens)),
            failures: Mutex::new(HashMap::new()),
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

    /// While `addr` is braked: how long until its oldest counted failure leaves the window.
    fn braked(&self, addr: IpAddr, now: Instant) -> Option<Duration> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let seen = failures.get_mut(&addr)?;
        while seen.front().is_some_and(|t| now - *t >= FAILURE_WINDOW) {
            seen.pop_front();
        }
        if seen.is_empty() {
            failures.remove(&addr);
            return None;
        }
        (seen.len() >= self.max_failures).then(|| FAILURE_WINDOW - (now - seen[0]))
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
        let counted = counted_as(addr);
        if let Some(wait) = self.braked(counted, now) {
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
                    self.failed(counted, now);
                }
                crate::warn_limited!("desk-unauthorized", client = %addr, "desk request refused: missing or unknown token");
                Err(ApiError::Unauthorized)
            }
        }
    }

    fn failed(&self, addr: IpAddr, now: Instant) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if failures.len() >= MAX_ADDRESSES && !failures.contains_key(&addr) {
            failures.retain(|_, seen| seen.back().is_some_and(|t| now - *t < FAILURE_WINDOW));
            if failures.len() >= MAX_ADDRESSES
                && let Some(oldest) = failures
                    .iter()
                    .min_by_key(|(_, seen)| seen.back().copied())
                    .map(|(a, _)| *a)
            {
                failures.remove(&oldest);
            }
        }
        let seen = failures.entry(addr).or_default();
        seen.push_back(now);
        // Only the last `max_failures` matter.
        while seen.len() > self.max_failures {
            seen.pop_front();
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

/// The address failures are counted against: an IPv6 client by its /64 network (one host is
/// given a whole /64 and may send from any of its 2^64 addresses), an IPv4 client (also when
/// written as an IPv4-mapped IPv6 address) by its address.
fn counted_as(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V4(_) => addr,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !u128::from(u64::MAX),
            )),
        },
    }
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
    fn an_ipv6_client_is_counted_by_its_slash_64() {
        let (_dir, auth) = nobody(3);
        // Each guess from another address of the same /64: braked after three all the same.
        for i in 0..3u16 {
            let addr = IpAddr::from([0x2001, 0xdb8, 0, 1, 0, 0, 0, i + 1]);
            assert!(matches!(
                auth.check(addr, Some("guess")),
                Err(ApiError::Unauthorized)
            ));
        }
        let same_net = IpAddr::from([0x2001, 0xdb8, 0, 1, 0xffff, 1, 2, 3]);
        assert!(matches!(
            auth.check(same_net, Some("guess")),
            Err(ApiError::TooManyAuthFailures { .. })
        ));
        let next_net = IpAddr::from([0x2001, 0xdb8, 0, 2, 0, 0, 0, 1]);
        assert!(matches!(
            auth.check(next_net, Some("guess")),
            Err(ApiError::Unauthorized)
        ));
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(counted_as(mapped), IpAddr::from([10, 0, 0, 1]));
    }

    #[test]
    fn an_address_is_braked_after_the_allowed_failures_and_released_after_the_window() {
        let (_dir, auth) = nobody(10);
        let addr = IpAddr::from([10, 0, 0, 1]);
        let other = IpAddr::from([10, 0, 0, 2]);
        let start = Instant::now();
        for i in 0..10 {
            assert!(auth.braked(addr, start).is_none(), "after {i} failures");
            auth.failed(addr, start);
        }
        let wait = auth.braked(addr, start).expect("braked");
        assert!(wait <= FAILURE_WINDOW && wait > Duration::from_secs(50));
        assert!(auth.braked(other, start).is_none(), "per address");
        assert!(auth.braked(addr, start + FAILURE_WINDOW).is_none());
    }
}
