//! Deleting what has outlived its use, a batch at a time: each call is one short statement,
//! so a large backlog never holds a long transaction (or SQLite's writer) and vacuum keeps up.
//! What is old enough is the caller's decision (`crate::service::housekeeping`).

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::ops::SqlStore;
use super::sql::sql;
use super::{OutboxStatus, StoreError};

/// What the pruning job deletes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prunable {
    /// Outbox rows kept after delivery (ALCS notices), by when they were delivered. Pending,
    /// failed, dead and unsent rows are never pruned.
    Delivered,
    /// The audit trail, by when the change happened.
    Audit,
    /// Failed activations, by when they failed (once out of the window they count nothing).
    ActivationFailures,
    /// Leases, by when they expired.
    Leases,
    /// Sessions (the console's, the portal's), by their absolute deadline.
    Sessions,
    /// Failed sign-ins of a card number, by the last of them.
    SignInFailures,
    /// One-time codes, by when they expired.
    SmsCodes,
}

impl Prunable {
    pub const ALL: [Self; 7] = [
        Self::Delivered,
        Self::Audit,
        Self::ActivationFailures,
        Self::Leases,
        Self::Sessions,
        Self::SignInFailures,
        Self::SmsCodes,
    ];

    /// The table, for logs and metrics.
    pub fn table(self) -> &'static str {
        match self {
            Self::Delivered => "outbox",
            Self::Audit => "audit_log",
            Self::ActivationFailures => "activation_failures",
            Self::Leases => "leases",
            Self::Sessions => "sessions",
            Self::SignInFailures => "sign_in_failures",
            Self::SmsCodes => "sms_codes",
        }
    }
}

#[async_trait]
pub trait Prune: Send + Sync + 'static {
    /// Deletes at most `limit` rows of `what` older than `before`; how many it deleted.
    async fn prune(
        &self,
        what: Prunable,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError>;
}

#[async_trait]
impl Prune for SqlStore {
    async fn prune(
        &self,
        what: Prunable,
        before: DateTime<Utc>,
        limit: i64,
    ) -> Result<u64, StoreError> {
        // Each by its key through a bounded sub-select: both databases spell it the same.
        let statement = match what {
            Prunable::Delivered => sql("delete from outbox where id in (
                     select id from outbox where status = $3 and delivered_at < $1
                     order by id limit $2)"),
            Prunable::Audit => sql("delete from audit_log where id in (
                     select id from audit_log where occurred_at < $1 order by id limit $2)"),
            Prunable::ActivationFailures => sql(
                "delete from activation_failures where (card_number, failed_at) in (
                     select card_number, failed_at from activation_failures
                     where failed_at < $1 limit $2)",
            ),
            Prunable::Leases => sql("delete from leases where name in (
                     select name from leases where expires_at < $1 limit $2)"),
            Prunable::Sessions => sql("delete from sessions where id_hash in (
                     select id_hash from sessions where expires_at < $1 limit $2)"),
            Prunable::SmsCodes => sql("delete from sms_codes where (customer_id, purpose) in (
                     select customer_id, purpose from sms_codes where expires_at < $1 limit $2)"),
            Prunable::SignInFailures => sql("delete from sign_in_failures where card_number in (
                     select card_number from sign_in_failures where last_failed_at < $1 limit $2)"),
        }
        .bind(before)
        .bind(limit);
        let statement = match what {
            Prunable::Delivered => statement.bind(OutboxStatus::Delivered.as_str()),
            _ => statement,
        };
        self.db().execute(&statement, "prune old rows").await
    }
}
