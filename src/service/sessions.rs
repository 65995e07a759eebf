//! Sessions, for every wing that signs people in: opened with a random id that only the client
//! holds (the database keeps its SHA-256), ended by sign-out, after a spell of disuse (the idle
//! timeout) and at a fixed time after sign-in (the absolute timeout), as OWASP's session
//! guidance and ASVS ask; every instance shares them. What a session's holder and credential
//! are is the wing's: the desk's console keeps its user and the hash of the token they signed
//! in with (and ends the session when that token is revoked), the portal its customer and card.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::Failure;
use crate::store::{SessionStore, StoredSession};

/// How long a session may last.
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

/// Which wing's sessions: each wing finds only its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Audience {
    Desk,
    Portal,
}

impl Audience {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Desk => "desk",
            Self::Portal => "portal",
        }
    }
}

/// A use of a session is written down at most this often (a page view is not a write each),
/// and at least ten times per idle timeout, so that the idle deadline is kept to within a
/// tenth of it.
const TOUCH_EVERY: Duration = Duration::from_secs(30);

/// A session in force, as its wing reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// The SHA-256 of its id: what the store knows it by.
    pub key: String,
    pub holder: String,
    pub credential: String,
    pub level: String,
    pub public_id: String,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub elevated_until: Option<DateTime<Utc>>,
}

/// What a session id names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Found {
    Live(Session),
    /// Ended by time (and now forgotten).
    Ended,
    /// No such session: signed out, forgotten, or never opened.
    Unknown,
}

#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    audience: Audience,
    limits: SessionLimits,
}

fn chrono(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, audience: Audience, limits: SessionLimits) -> Self {
        Self {
            store,
            audience,
            limits,
        }
    }

    pub fn limits(&self) -> SessionLimits {
        self.limits
    }

    /// Opens a session for `holder`, signed in with `credential` at `level`; returns its id
    /// (for the client: 244 random bits, never stored as it is).
    pub async fn open(
        &self,
        holder: &str,
        credential: &str,
        level: &str,
    ) -> Result<String, Failure> {
        let id = crate::secret::generate();
        let now = Utc::now();
        let session = StoredSession {
            audience: self.audience.as_str().to_owned(),
            holder: holder.to_owned(),
            credential: credential.to_owned(),
            level: level.to_owned(),
            public_id: uuid::Uuid::new_v4().simple().to_string(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + chrono(self.limits.absolute),
            elevated_until: None,
        };
        self.store
            .open_session(
                &crate::secret::hash_hex(&id),
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
        let key = crate::secret::hash_hex(id);
        let Some(session) = self.store.session(self.audience.as_str(), &key).await? else {
            return Ok(Found::Unknown);
        };
        if !self.alive(&session, now) {
            self.store.close_session(&key).await?;
            return Ok(Found::Ended);
        }
        if now - session.last_seen_at >= chrono(TOUCH_EVERY.min(self.limits.idle / 10)) {
            self.store.touch_session(&key, now).await?;
        }
        Ok(Found::Live(Self::read(key, session)))
    }

    fn alive(&self, session: &StoredSession, now: DateTime<Utc>) -> bool {
        let idle_until = session.last_seen_at + chrono(self.limits.idle);
        // The absolute deadline as set at sign-in, or as the limit says now if it was lowered.
        let until = session
            .expires_at
            .min(session.created_at + chrono(self.limits.absolute));
        now < idle_until && now < until
    }

    fn read(key: String, s: StoredSession) -> Session {
        Session {
            key,
            holder: s.holder,
            credential: s.credential,
            level: s.level,
            public_id: s.public_id,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            elevated_until: s.elevated_until.map(Into::into),
        }
    }

    /// Ends the session `id` names (sign-out, a revoked token).
    pub async fn close(&self, id: &str) -> Result<(), Failure> {
        Ok(self
            .store
            .close_session(&crate::secret::hash_hex(id))
            .await?)
    }

    /// Ends the session known by `key` (the hash of its id, as [`Session::key`] holds it).
    pub async fn end(&self, key: &str) -> Result<(), Failure> {
        Ok(self.store.close_session(key).await?)
    }

    /// The sessions of `holder` still in force, newest first.
    pub async fn of(&self, holder: &str) -> Result<Vec<Session>, Failure> {
        let now = Utc::now();
        let stored = self
            .store
            .sessions_of(self.audience.as_str(), holder)
            .await?;
        Ok(stored
            .into_iter()
            .filter(|s| self.alive(s, now))
            .map(|s| Self::read(String::new(), s))
            .collect())
    }

    /// Ends the session of `holder` that `public_id` names; whether there was one.
    pub async fn close_public(&self, holder: &str, public_id: &str) -> Result<bool, Failure> {
        Ok(self
            .store
            .close_public(self.audience.as_str(), holder, public_id)
            .await?)
    }

    /// Raises the session known by `key` to `level`, and elevates it for `elevate` from now.
    pub async fn raise(
        &self,
        key: &str,
        level: &str,
        elevate: Option<Duration>,
    ) -> Result<(), Failure> {
        let until = elevate.map(|d| Utc::now() + chrono(d));
        Ok(self.store.raise_session(key, level, until).await?)
    }
}
