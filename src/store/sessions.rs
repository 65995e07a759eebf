//! The console's sessions, shared by every instance through the database. The store keeps only
//! a session id's SHA-256; deciding whether a session is still alive is the caller's
//! (`crate::service::sessions`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::StoreError;
use super::ops::SqlStore;
use super::sql::{Time, sql};

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct StoredSession {
    pub user_name: String,
    /// SHA-256 of the desk token it was opened with (hex), as the tokens file holds it.
    pub token_hash: String,
    #[sqlx(try_from = "Time")]
    pub created_at: DateTime<Utc>,
    #[sqlx(try_from = "Time")]
    pub last_seen_at: DateTime<Utc>,
    #[sqlx(try_from = "Time")]
    pub expires_at: DateTime<Utc>,
}

#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Records a new session under `id_hash`, and drops the sessions that ended by time: those
    /// past their `expires_at` and those not seen since `idle_since` (so the table holds the
    /// live ones, give or take those ended since the last sign-in).
    async fn open_session(
        &self,
        id_hash: &str,
        session: &StoredSession,
        idle_since: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    async fn session(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError>;

    /// Notes that the session was used at `at`.
    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    async fn close_session(&self, id_hash: &str) -> Result<(), StoreError>;
}

#[async_trait]
impl SessionStore for SqlStore {
    async fn open_session(
        &self,
        id_hash: &str,
        session: &StoredSession,
        idle_since: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let ended = sql("delete from desk_sessions where expires_at < $1 or last_seen_at < $2")
            .bind(session.created_at)
            .bind(idle_since);
        self.db()
            .execute(&ended, "drop the console sessions that ended")
            .await?;
        let open = sql("insert into desk_sessions
                 (id_hash, user_name, token_hash, created_at, last_seen_at, expires_at)
             values ($1, $2, $3, $4, $5, $6)")
        .bind(id_hash)
        .bind(session.user_name.as_str())
        .bind(session.token_hash.as_str())
        .bind(session.created_at)
        .bind(session.last_seen_at)
        .bind(session.expires_at);
        self.db().execute(&open, "open a console session").await?;
        Ok(())
    }

    async fn session(&self, id_hash: &str) -> Result<Option<StoredSession>, StoreError> {
        let find = sql(
            "select user_name, token_hash, created_at, last_seen_at, expires_at
             from desk_sessions where id_hash = $1",
        )
        .bind(id_hash);
        let found: Vec<StoredSession> = self.db().read_all(&find, "read a console session").await?;
        Ok(found.into_iter().next())
    }

    async fn touch_session(&self, id_hash: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let touch = sql("update desk_sessions set last_seen_at = $1 where id_hash = $2")
            .bind(at)
            .bind(id_hash);
        self.db()
            .execute(&touch, "note a console session's use")
            .await?;
        Ok(())
    }

    async fn close_session(&self, id_hash: &str) -> Result<(), StoreError> {
        let close = sql("delete from desk_sessions where id_hash = $1").bind(id_hash);
        self.db().execute(&close, "end a console session").await?;
        Ok(())
    }
}
