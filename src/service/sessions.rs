//! The console's sessions: opened at sign-in with a random id that only the browser holds (the
//! database keeps its SHA-256), ended by sign-out, by the revocation of the token they were
//! opened with (the caller checks the token against the tokens in force), after a spell of
//! disuse (the idle timeout) and at a fixed time after sign-in (the absolute timeout), as
//! OWASP's session guidance asks of back-office tools. Every instance shares them.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Failure;
use crate::domain::DeskUser;
use crate::store::{SessionStore, StoredSession};

/// How long a console session may last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionLimits {
    /// Ended when unused for this long.
    pub idle: Duration,
    /// Ended this long after sign-in, however much it is used.
    pub absolute: Duration,
}

impl Default for SessionLimits {
    fn default() -> Self {
        Self {
            idle: Duration::from_secs(30 * 60),
            absolute: Duration::from_secs(12 * 3600),
        }
    }
}

/// A use of a session is written down at most this often (a page view is not a write each),
/// and at least ten times per idle timeout, so that the idle deadline is kept to within a
/// tenth of it.
const TOUCH_EVERY: Duration = Duration::from_secs(30);

/// What a session id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    /// In force: the hash of the token it was opened with (whose entry in the tokens file, if
    /// still there, says who the user is and their role now).
    Live { token_hash: String },
    /// Ended by time (and now forgotten).
    Ended,
    /// No such session: signed out, forgotten, or never opened.
    Unknown,
}

#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    limits: SessionLimits,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, limits: SessionLimits) -> Self {
        Self { store, limits }
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Opens a session for `user`, signed in with the token whose hash is `token_hash`;
    /// returns its id (for the cookie: 244 random bits, never stored as it is).
    pub async fn open(&self, user: &DeskUser, token_hash: &str) -> Result<String, Failure> {
        let id = crate::tokens::generate();
        let now = Utc::now();
        let session = StoredSession {
            user_name: user.to_string(),
            token_hash: token_hash.to_owned(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + chrono(self.limits.absolute),
        };
        self.store
            .open_session(
                &crate::tokens::hash_hex(&id),
                &session,
                now - chrono(self.limits.idle),
            )
            .await?;
        Ok(id)
    }

    /// The session `id` names, as of now: a live one is noted as used, an ended one is
    /// forgotten.
    pub async fn find(&self, id: &str) -> Result<Found, Failure> {
        self.find_at(id, Utc::now()).await
    }

    async fn find_at(&self, id: &str, now: DateTime<Utc>) -> Result<Found, Failure> {
        let key = crate::tokens::hash_hex(id);
        let Some(session) = self.store.session(&key).await? else {
            return Ok(Found::Unknown);
        };
        let idle_until = session.last_seen_at + chrono(self.limits.idle);
        // The absolute deadline as set at sign-in, or as the limit says now if it was lowered.
        let until = session
            .expires_at
            .min(session.created_at + chrono(self.limits.absolute));
        if now >= idle_until || now >= until {
            self.store.close_session(&key).await?;
            return Ok(Found::Ended);
        }
        if now - session.last_seen_at >= chrono(TOUCH_EVERY.min(self.limits.idle / 10)) {
            self.store.touch_session(&key, now).await?;
        }
        Ok(Found::Live {
            token_hash: session.token_hash,
        })
    }

    /// Ends the session `id` names (sign-out, a revoked token).
    pub async fn close(&self, id: &str) -> Result<(), Failure> {
        Ok(self
            .store
            .close_session(&crate::tokens::hash_hex(id))
            .await?)
    }
}
