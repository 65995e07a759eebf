//! The sessions of every wing (the desk's console, the customer portal), shared by every
//! instance through the database. The store keeps only a session id's SHA-256; deciding
//! whether a session is still alive is the caller's (`crate::service::sessions`), and what its
//! holder and credential mean is the wing's.

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use super::ops::SqlStore;
use super::sql::{Time, sql};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredSession {
    /// Whose wing: `desk` or `portal`.
    pub audience: String,
    /// The desk user's name, or the customer's id.
    pub holder: String,
    /// What it was opened with: the SHA-256 of a desk token (hex), or the card number.
    pub credential: String,
    /// How: `token` (desk), `pin` or `password` (portal).
    pub level: String,
    /// What the holder sees and ends it by: never the id.
    pub public_id: String,
    #[sqlx(try_from = "Time")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Time")]
    pub last_seen_at: DateTime<Utc>,
    #[sqlx(try_from = "Time")]
    pub expires_at: DateTime<Utc>,
    /// Raised by a step-up until then (set by [`SessionStore::raise_session`], never at
    /// opening).
    pub elevated_until: Option<Time>,
}

const COLUMNS: &str = "audience, holder, credential, level, public_id, created_at, last_seen_at,
    expires_at, elevated_until";

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Records a new session under `id_hash`, and drops the sessions that ended by time: those
    /// past their `expires_at` and those of its audience not seen since `idle_since` (so the
    /// table holds the live ones, give or take those ended since the last sign-in).
    async fn open_session(
        &self,
        id_hash: &str,
        session: &StoredSession,
        idle_since: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The session under `id_hash`, if it is of `audience`.
    async fn session(
        &self,
        audience: &str,
        id_hash: &str,
    ) -> Result<Option<StoredSession>, StoreError>;

    /// Notes that the session was used at `at`.
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    async fn close_session(&self, id_hash: &str) -> Result<(), StoreError>;

    /// The sessions `holder` has in `audience`, newest first.
    async fn sessions_of(
        &self,
        audience: &str,
        holder: &str,
    ) -> Result<Vec<StoredSession>, StoreError>;

    /// Ends `holder`'s session that `public_id` names; whether there was one.
    async fn close_public(
        &self,
        audience: &str,
        holder: &str,
        public_id: &str,
    ) -> Result<bool, StoreError>;

    /// Raises the session to `level` (and, when given, elevates it until `until`).
    async fn raise_session(
        &self,
        id_hash: &str,
        level: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError>;
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn open_session(
        &self,
        id_hash: &str,
        session: &StoredSession,
        idle_since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let ended = sql("delete from sessions
             where expires_at < $1 or (audience = $2 and last_seen_at < $3)")
        .bind(session.created_at)
        .bind(session.audience.as_str())
        .bind(idle_since);
        self.db()
            .execute(&ended, "drop the sessions that ended")
            .await?;
        let open = sql("insert into sessions
                 (id_hash, audience, holder, credential, level, public_id, created_at,
                  last_seen_at, expires_at)
             values ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
        .bind(id_hash)
        .bind(session.audience.as_str())
        .bind(session.holder.as_str())
        .bind(session.credential.as_str())
        .bind(session.level.as_str())
        .bind(session.public_id.as_str())
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at);
        self.db().execute(&open, "open a session").await?;
        Ok(())
    }

    async fn session(
        &self,
        audience: &str,
        id_hash: &str,
    ) -> Result<Option<StoredSession>, StoreError> {
        let find = sql(format!(
            "select {COLUMNS} from sessions where id_hash = $1 and audience = $2"
        ))
        .bind(id_hash)
        .bind(audience);
        let found: Vec<StoredSession> = self.db().read_all(&find, "read a session").await?;
        Ok(found.into_iter().next())
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let touch = sql("update sessions set last_seen_at = $1 where id_hash = $2")
            .bind(at)
            .bind(id_hash);
        self.db().execute(&touch, "note a session's use").await?;
        Ok(())
    }

    async fn close_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let close = sql("delete from sessions where id_hash = $1").bind(id_hash);
        self.db().execute(&close, "end a session").await?;
        Ok(())
    }

    async fn sessions_of(
        &self,
        audience: &str,
        holder: &str,
    ) -> Result<Vec<StoredSession>, StoreError> {
        let list = sql(format!(
            "select {COLUMNS} from sessions where audience = $1 and holder = $2
             order by created_at desc, public_id"
        ))
        .bind(audience)
        .bind(holder);
        self.db().read_all(&list, "list a holder's sessions").await
    }

    async fn close_public(
        &self,
        audience: &str,
        holder: &str,
        public_id: &str,
    ) -> Result<bool, StoreError> {
        let close =
            sql("delete from sessions where audience = $1 and holder = $2 and public_id = $3")
                .bind(audience)
                .bind(holder)
                .bind(public_id);
        Ok(self.db().execute(&close, "end a session").await? > 0)
    }

    async fn raise_session(
        &self,
        id_hash: &str,
        level: &str,
        until: Option<DateTime<Utc>>,
    ) -> Result<(), StoreError> {
        let raise = match until {
            Some(until) => sql("update sessions set level = $1, elevated_until = $2
                 where id_hash = $3")
            .bind(level)
            .bind(until),
            None => sql("update sessions set level = $1 where id_hash = $2").bind(level),
        }
        .bind(id_hash);
        self.db().execute(&raise, "raise a session").await?;
        Ok(())
    }
}
