//! Persistence: the [`Store`] trait the service talks to, and one adapter per backend.
//!
//! The trait speaks in whole operations (register, apply a command, read), not rows: each method
//! is one database transaction, so every adapter can use the locking its database is good at
//! (`BEGIN IMMEDIATE` on SQLite, row locks on PostgreSQL) while the rules stay in the domain.

mod postgres;
mod rows;
mod sqlite;

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::cache::CacheState;
use crate::domain::{
    CardCommand, CardNumber, CardStatus, CustomerId, CustomerStatus, Gender, Identity, PhoneNumber,
    Registration, RuleError, Wallet,
};
use crate::outbox::{ActivationNotice, Effect, Pending, Status, SummaryLine};

pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Connections in the pool (PostgreSQL; SQLite has one writer and a few readers).
    pub max_connections: u32,
    /// How long an operation waits for a connection, a lock or a statement before it is
    /// abandoned as "database unavailable" (503).
    pub timeout: Duration,
    /// Record a cache write in the outbox with every change (a cache is configured).
    pub cache_effects: bool,
    /// An ALCS URL is configured: activation notices are recorded as pending (else as unsent).
    pub alcs_notices: bool,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            timeout: Duration::from_secs(5),
            cache_effects: false,
            alcs_notices: false,
        }
    }
}

/// How long an effect recorded by a request waits before the background worker may take it:
/// the request itself delivers it right after commit, so the worker only sees the leftovers.
pub(crate) const EFFECT_GRACE: chrono::Duration = chrono::Duration::seconds(5);

/// What an operation changed, and the side effects it recorded for delivery after commit.
#[derive(Debug)]
pub struct Outcome<T> {
    pub result: T,
    pub effects: Vec<Pending>,
}

impl<T> Outcome<T> {
    pub fn without_effects(result: T) -> Self {
        Self {
            result,
            effects: Vec::new(),
        }
    }
}

type BoxError = Box<dyn StdError + Send + Sync>;

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Registered {
    /// A new customer and card were stored.
    Created(CustomerId),
    /// The same registration was already stored and the card still waits for activation:
    /// a retry, answered with the customer it created.
    Replayed(CustomerId),
    /// The card number belongs to a different registration, or the card moved on.
    AlreadyRegistered,
}

/// What applying a [`CardCommand`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Changed,
    /// The command succeeded without changing anything (e.g. locking a locked card).
    Unchanged,
}

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("no such card")]
    CardNotFound,
    #[error(transparent)]
    Rule(#[from] RuleError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A card as support staff and ALCS read it (contract 5.5). Never carries the PIN HMAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardView {
    pub card_number: CardNumber,
    pub status: CardStatus,
    pub customer_id: CustomerId,
    pub customer_status: CustomerStatus,
    pub phone: Option<PhoneNumber>,
    pub gender: Gender,
    pub wallets: Vec<Wallet>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Infrastructure failures. Rule violations and "not found" are not errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database could not be reached, had no free connection in time, or stayed locked:
    /// the operation did not happen and may be retried.
    #[error("database unavailable while trying to {context}")]
    Unavailable {
        context: &'static str,
        #[source]
        source: BoxError,
    },
    /// Anything else, e.g. a row that does not parse. Logged with its cause, answered as 5xx.
    #[error("database failure while trying to {context}")]
    Failed {
        context: &'static str,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. })
    }

    pub(crate) fn failed(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Failed {
            context,
            source: source.into(),
        }
    }
}

/// Adds the operation being attempted to a database error, classifying it on the way.
pub(crate) trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, StoreError>;
}

impl<T> Context<T> for Result<T, sqlx::Error> {
    fn context(self, context: &'static str) -> Result<T, StoreError> {
        self.map_err(|e| classify(context, e))
    }
}

fn classify(context: &'static str, e: sqlx::Error) -> StoreError {
    let unavailable = match &e {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => true,
        // SQLITE_BUSY (5) / SQLITE_LOCKED (6) after the busy timeout: overloaded, try later.
        // PostgreSQL: class 08 (connection), 53 (resources), 57P (operator intervention),
        // 55P03 (lock_timeout) and 57014 (statement_timeout): the database is saturated.
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            let c = c.as_ref();
            matches!(c, "5" | "6" | "517" | "262" | "55P03" | "57014")
                || c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57P")
        }),
        _ => false,
    };
    if unavailable {
        StoreError::Unavailable {
            context,
            source: Box::new(e),
        }
    } else {
        StoreError::failed(context, e)
    }
}

/// The system of record. One transaction per method; safe to call concurrently, also from
/// several processes against one database.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Stores a new customer, its card (`WaitingForActivation`) and wallets, an audit record and
    /// the cache writes, atomically; or recognizes a replay or a conflict by the card number's
    /// unique key.
    async fn register(
        &self,
        registration: &Registration,
        identity: Option<&Identity>,
        at: DateTime<Utc>,
    ) -> Result<Outcome<Registered>, StoreError>;

    /// Loads the card and its customer under a write lock, lets the domain decide, and writes
    /// the change with an audit record and the cache writes — all in one transaction.
    async fn apply(
        &self,
        card: &CardNumber,
        command: &CardCommand,
        at: DateTime<Utc>,
    ) -> Result<Outcome<Applied>, ApplyError>;

    async fn card(&self, card: &CardNumber) -> Result<Option<CardView>, StoreError>;

    /// Succeeds when the database answers a query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Takes up to `limit` due outbox rows for delivery. They stay in the outbox, invisible to
    /// other claimers until `lease` has passed, so a worker that dies mid-delivery only delays
    /// them.
    async fn claim_effects(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<Pending>, StoreError>;

    /// Marks rows delivered: cache writes are deleted, ALCS notices kept as `delivered`.
    async fn effects_done(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Gives a row up: `dead`, kept and counted, until `retry_dead`.
    async fn effect_dead(&self, id: i64, error: &str) -> Result<(), StoreError>;

    /// Returns claimed rows that were not attempted (shutdown) to the queue at once.
    async fn release_effects(&self, ids: &[i64]) -> Result<(), StoreError>;

    /// Counts and oldest row per kind and state, for `cps outbox`.
    async fn outbox_summary(&self) -> Result<Vec<SummaryLine>, StoreError>;

    /// Puts dead and unsent rows back in the queue; returns how many.
    async fn retry_dead(&self) -> Result<u64, StoreError>;

    /// Schedules a failed row's next attempt.
    async fn effect_failed(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError>;

    /// Up to `limit` cards with number greater than `after`, in card-number order, as the cache
    /// should show them: the stream behind cache rebuild and verify.
    async fn cache_states(
        &self,
        after: Option<&CardNumber>,
        limit: i64,
    ) -> Result<Vec<CacheState>, StoreError>;

    async fn count_cards(&self) -> Result<i64, StoreError>;
}

/// Opens (and migrates) the database a URL names: `sqlite:` or `postgres:`/`postgresql:`.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        Ok(Arc::new(PgStore::connect(url, options).await?))
    } else {
        Err(StoreError::failed(
            "connect",
            "unsupported database URL scheme (expected sqlite: or postgres:)",
        ))
    }
}

/// The audit trail's account of a change: the statuses before and after, and whether the phone
/// changed — never the number itself.
fn change_details(before: &crate::domain::CardSnapshot, change: &crate::domain::Change) -> String {
    let mut details = serde_json::Map::new();
    if let Some(to) = change.card_status {
        details.insert(
            "CardStatus".into(),
            serde_json::json!({ "From": before.card_status.as_str(), "To": to.as_str() }),
        );
    }
    if let Some(to) = change.customer_status {
        details.insert(
            "CustomerStatus".into(),
            serde_json::json!({ "From": before.customer_status.as_str(), "To": to.as_str() }),
        );
    }
    if change.phone.is_some() {
        details.insert("PhoneNumberChanged".into(), serde_json::Value::Bool(true));
    }
    serde_json::Value::Object(details).to_string()
}

/// The audit trail's account of a registration.
fn registration_details(reg: &Registration) -> String {
    serde_json::json!({
        "CardStatus": "WaitingForActivation",
        "CustomerStatus": "NotActivated",
        "Wallets": reg.wallets.len(),
    })
    .to_string()
}

/// The outbox rows a change records besides its cache writes: the ALCS notice when a card
/// became active.
fn notices(
    command: &CardCommand,
    change: &crate::domain::Change,
    card: &CardNumber,
    customer: &str,
    at: DateTime<Utc>,
) -> Option<Effect> {
    let activated = matches!(command, CardCommand::Activate { .. })
        && change.card_status == Some(CardStatus::Active);
    activated.then(|| Effect::AlcsActivation(ActivationNotice::new(card, customer, at)))
}

/// The state a new row starts in, and when it is first due.
fn initial(effect: &Effect, options: &StoreOptions, at: DateTime<Utc>) -> (Status, DateTime<Utc>) {
    match effect {
        Effect::CacheWrite(_) => (Status::Pending, at + EFFECT_GRACE),
        Effect::AlcsActivation(_) if options.alcs_notices => (Status::Pending, at),
        Effect::AlcsActivation(_) => (Status::Unsent, at),
    }
}

/// `cps outbox`'s name for a row's state: pending rows that failed before are `failed`.
const SUMMARY_STATE: &str =
    "case when status = 'pending' and attempts > 0 then 'failed' else status end";
