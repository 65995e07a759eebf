//! The outbox queue: claiming due rows for delivery, ending them, and what `cps outbox` shows.
//! The rows are written by the store, in the transaction of the change that causes them; this
//! is the rest of their life, on either database (the store's dialect, `store::sql`).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::store::sql::{Statement, Value, placeholders, sql};
use crate::store::{OutboxCount, OutboxRow, OutboxStatus, SqlStore, StoreError};

/// The outbox as the worker, the cache refill and `cps outbox` use it. Safe to use from several
/// instances at once: claims skip rows another instance holds.
#[async_trait]
pub trait OutboxQueue: Send + Sync + 'static {
    /// Takes up to `limit` due outbox rows for delivery. They stay in the outbox, invisible to
    /// other claimers until `lease` has passed, so a worker that dies mid-delivery only delays
    /// them.
    async fn claim_effects(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError>;

    /// Ends delivered rows: `remove` are deleted, `keep` kept as `delivered`.
    async fn effects_done(&self, remove: &[i64], keep: &[i64]) -> Result<(), StoreError>;

    /// Gives a row up: `dead`, kept and counted, until `retry_dead`.
    async fn effect_dead(&self, id: i64, error: &str) -> Result<(), StoreError>;

    /// Returns claimed rows that were not attempted (shutdown) to the queue at once.
    async fn release_effects(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Counts and oldest row per kind and state, for `cps outbox`.
    async fn outbox_summary(&self) -> Result<Vec<OutboxCount>, StoreError>;

    /// Puts dead and unsent rows back in the queue; returns how many.
    async fn retry_dead(&self) -> Result<u64, StoreError>;

    /// Schedules a failed row's next attempt.
    async fn effect_failed(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Makes every pending row of `kind` due at `at` (its destination is back: no need to wait
    /// out the backoff). Returns how many.
    async fn expedite(&self, kind: &str, at: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Ids bound to one statement at most (SQLite takes 32,766 values, PostgreSQL 65,535).
const IDS_PER_STATEMENT: usize = 1000;

/// `{head} ($n, …) {tail}`, the ids bound after `before`'s values.
fn over_ids(head: &str, tail: &str, before: Vec<Value>, ids: &[i64]) -> Statement {
    let list = placeholders(before.len(), ids.len());
    let mut statement = sql(format!("{head} ({list}) {tail}"));
    for value in before {
        statement = statement.bind(value);
    }
    for id in ids {
        statement = statement.bind(*id);
    }
    statement
}

/// `cps outbox`'s name for a row's state: pending rows that failed before are `failed`.
/// The states `cps outbox` and the metrics count rows in: [`SUMMARY_STATE`]'s values.
pub const SUMMARY_STATES: [&str; 5] = ["pending", "failed", "dead", "unsent", "delivered"];

const SUMMARY_STATE: &str =
    "case when status = 'pending' and attempts > 0 then 'failed' else status end";

#[async_trait]
impl OutboxQueue for SqlStore {
    async fn claim_effects(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        // `skip locked`: instances share the queue without taking the same rows.
        let claim = sql(
            "update outbox set attempts = attempts + 1, next_attempt_at = $1
             where id in (select id from outbox
                          where status = $2 and next_attempt_at <= $3
                          order by id limit $4
                          for update skip locked
                          )
             returning id, kind, payload::text as payload, attempts, created_at",
        )
        .bind(now + lease)
        .bind(OutboxStatus::Pending.as_str())
        .bind(now)
        .bind(limit);
        self.db().write_all(&claim, "claim outbox rows").await
    }

    async fn effects_done(&self, remove: &[i64], keep: &[i64]) -> Result<(), StoreError> {
        if remove.is_empty() && keep.is_empty() {
            return Ok(());
        }
        // The marks arrive in batches off the request path (see `outbox::worker`), so one
        // commit covers many rows.
        // Each statement on its own: the rows are independent, and marking one twice is
        // harmless.
        let now = Utc::now();
        for chunk in remove.chunks(IDS_PER_STATEMENT) {
            let removal = over_ids("delete from outbox where id in", "", Vec::new(), chunk);
            self.db()
                .execute(&removal, "remove delivered outbox rows")
                .await?;
        }
        for chunk in keep.chunks(IDS_PER_STATEMENT) {
            let mark = over_ids(
                "update outbox set status = $1, delivered_at = $2, last_error = null where id in",
                "",
                vec![OutboxStatus::Delivered.as_str().into(), now.into()],
                chunk,
            );
            self.db()
                .execute(&mark, "mark outbox rows delivered")
                .await?;
        }
        Ok(())
    }

    async fn effect_dead(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let dead = sql("update outbox set status = $1, last_error = $2 where id = $3")
            .bind(OutboxStatus::Dead.as_str())
            .bind(error)
            .bind(id);
        self.db().execute(&dead, "give up an outbox row").await?;
        Ok(())
    }

    async fn release_effects(&self, released: &[i64]) -> Result<(), StoreError> {
        if released.is_empty() {
            return Ok(());
        }
        for chunk in released.chunks(IDS_PER_STATEMENT) {
            let release = over_ids(
                "update outbox set next_attempt_at = $1, attempts = greatest(attempts - 1, 0)
                 where status = $2 and id in",
                "",
                vec![Utc::now().into(), OutboxStatus::Pending.as_str().into()],
                chunk,
            );
            self.db().execute(&release, "release outbox rows").await?;
        }
        Ok(())
    }

    async fn outbox_summary(&self) -> Result<Vec<OutboxCount>, StoreError> {
        let summary = sql(format!(
            "select kind, {SUMMARY_STATE} as state, count(*) as count, min(created_at) as oldest
             from outbox group by kind, state order by kind, state"
        ));
        self.db().read_all(&summary, "summarize the outbox").await
    }

    async fn retry_dead(&self) -> Result<u64, StoreError> {
        let retry = sql(
            "update outbox set status = $1, attempts = 0, next_attempt_at = $2
             where status in ($3, $4)",
        )
        .bind(OutboxStatus::Pending.as_str())
        .bind(Utc::now())
        .bind(OutboxStatus::Dead.as_str())
        .bind(OutboxStatus::Unsent.as_str());
        self.db()
            .execute(&retry, "queue dead outbox rows again")
            .await
    }

    async fn effect_failed(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let failed = sql("update outbox set next_attempt_at = $1, last_error = $2 where id = $3")
            .bind(retry_at)
            .bind(error)
            .bind(id);
        self.db()
            .execute(&failed, "reschedule an outbox row")
            .await?;
        Ok(())
    }

    async fn expedite(&self, kind: &str, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let expedite = sql("update outbox set next_attempt_at = $1
             where kind = $2 and status = $3 and next_attempt_at > $1")
        .bind(at)
        .bind(kind)
        .bind(OutboxStatus::Pending.as_str());
        self.db().execute(&expedite, "make outbox rows due").await
    }
}
