//! Persistence: the [`Store`] trait the service talks to, and one adapter per backend.
//!
//! The trait speaks in whole operations (register, apply a command, read), not rows: each method
//! is one database transaction, so every adapter can use the locking its database is good at
//! (`BEGIN IMMEDIATE` on SQLite, row locks on PostgreSQL) while the rules stay in the domain.

mod group;
mod guard;
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

pub use guard::Guarded;
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
    /// Create a SQLite file that does not exist (serving, migrating); maintenance commands
    /// refuse a missing file instead, so that a mistyped path is not taken for an empty store.
    pub create: bool,
    /// Failed activations tolerated per card.
    pub activation_limit: AttemptLimit,
}

/// How many failed activations (wrong phone number) of one card are tolerated within `window`;
/// beyond that, activation is refused until the oldest counted failure leaves the window. The
/// failures are kept in the database, so every instance counts the same ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimit {
    pub max_failures: u32,
    pub window: Duration,
}

impl Default for AttemptLimit {
    fn default() -> Self {
        Self {
            max_failures: 5,
            window: Duration::from_secs(15 * 60),
        }
    }
}

impl AttemptLimit {
    /// The start of the window that ends at `at`.
    fn since(&self, at: DateTime<Utc>) -> DateTime<Utc> {
        at - chrono::Duration::from_std(self.window).unwrap_or(chrono::Duration::MAX)
    }

    /// Whether `failures` within the window lock activation; if so, for how long, counted from
    /// the oldest of them (rounded up to whole seconds, at least one).
    fn locked(
        &self,
        failures: i64,
        oldest: Option<DateTime<Utc>>,
        at: DateTime<Utc>,
    ) -> Option<Duration> {
        if failures < i64::from(self.max_failures) {
            return None;
        }
        let ends = oldest.unwrap_or(at) + chrono::Duration::from_std(self.window).ok()?;
        let left = (ends - at).to_std().unwrap_or_default();
        Some(Duration::from_secs(left.as_secs() + 1))
    }

    /// The audit trail's account of a failed activation: how many failures now count.
    fn failure_details(&self, failures: i64) -> String {
        serde_json::json!({
            "Refused": "IncorrectPhoneNumber",
            "FailedAttempts": failures,
            "MaxFailures": self.max_failures,
            "Locked": failures >= i64::from(self.max_failures),
        })
        .to_string()
    }
}

/// The audit operation of a failed activation attempt.
const ACTIVATION_FAILED: &str = "activate-failed";

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            timeout: Duration::from_secs(5),
            cache_effects: false,
            alcs_notices: false,
            create: true,
            activation_limit: AttemptLimit::default(),
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
    /// Too many failed activations of this card lately; the next may come after `retry_after`.
    #[error("too many failed activation attempts")]
    TooManyAttempts { retry_after: Duration },
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
    /// The database cannot be reached (connection refused or lost, shutting down), or is known
    /// to be down: the operation did not happen and may be retried.
    #[error("database unreachable while trying to {context}")]
    Unreachable {
        context: &'static str,
        #[source]
        source: BoxError,
    },
    /// The database answers but cannot take the operation now: no free connection in time, a
    /// lock or statement timeout, disk full, read-only. The operation did not happen (its
    /// transaction rolled back) and may be retried.
    #[error("database unavailable while trying to {context}")]
    Unavailable {
        context: &'static str,
        #[source]
        source: BoxError,
    },
    /// A maintenance command named a SQLite file that does not exist.
    #[error(
        "the SQLite database file {file} does not exist (only `cps serve` and `cps migrate` create one)"
    )]
    NoDatabase { file: String },
    /// Anything else, e.g. a row that does not parse. Logged with its cause, answered as 5xx.
    #[error("database failure while trying to {context}")]
    Failed {
        context: &'static str,
        #[source]
        source: BoxError,
    },
}

impl StoreError {
    /// Nothing happened and a later attempt may succeed: answered 503.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Self::Unavailable { .. } | Self::Unreachable { .. })
    }

    /// The database refused before doing anything, for a reason that passes in moments
    /// (serialization failure, deadlock, not accepting connections, too many connections,
    /// starting up): the operation certainly did not happen, so running it again once is safe.
    /// A lost connection is not among these: a commit may have happened before the loss.
    pub fn is_retryable(&self) -> bool {
        let (Self::Unavailable { source, .. } | Self::Unreachable { source, .. }) = self else {
            return false;
        };
        let Some(sqlx::Error::Database(db)) = source.downcast_ref::<sqlx::Error>() else {
            return false;
        };
        db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|pg| matches!(pg.code(), "40001" | "40P01" | "55000" | "57P03" | "53300"))
    }

    pub(crate) fn failed(context: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Failed {
            context,
            source: source.into(),
        }
    }

    /// The pool found no free connection in time: the database is down, or merely saturated.
    fn is_pool_timeout(&self) -> bool {
        match self {
            Self::Unavailable { source, .. } => source
                .downcast_ref::<sqlx::Error>()
                .is_some_and(|e| matches!(e, sqlx::Error::PoolTimedOut)),
            _ => false,
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

/// How a database error is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Class {
    Unreachable,
    Unavailable,
    Failed,
}

fn class_of(e: &sqlx::Error) -> Class {
    match e {
        sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::WorkerCrashed => Class::Unreachable,
        sqlx::Error::PoolTimedOut => Class::Unavailable,
        sqlx::Error::Database(db) => match db.code() {
            None => Class::Failed,
            Some(code) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
                sqlite_class(&code)
            }
            Some(code) => postgres_class(&code),
        },
        _ => Class::Failed,
    }
}

/// SQLite's extended result codes: the primary code is the low byte. BUSY (5) and LOCKED (6)
/// after the busy timeout, READONLY (8), IOERR (10), FULL (13), CANTOPEN (14): the file cannot
/// take the write now; the transaction rolled back.
fn sqlite_class(code: &str) -> Class {
    match code.parse::<i64>().map(|extended| extended & 0xff) {
        Ok(5 | 6 | 8 | 10 | 13 | 14) => Class::Unavailable,
        _ => Class::Failed,
    }
}

/// PostgreSQL's SQLSTATE codes.
fn postgres_class(code: &str) -> Class {
    // Class 08 (connection exception) and 57P (operator intervention: admin or crash
    // shutdown, cannot connect now, the session ended): unreachable. Class 53 (insufficient resources: disk full, too many
    // connections), 55P03 (lock_timeout), 57014 (statement_timeout), 25006 (read-only
    // transaction, e.g. a standby after failover), 40001/40P01 (serialization failure,
    // deadlock), 55000 (e.g. "database is not currently accepting connections", while it is
    // being shut down or renamed): it answers but cannot take this now.
    if code.starts_with("08") || code.starts_with("57P") {
        Class::Unreachable
    } else if code.starts_with("53")
        || matches!(
            code,
            "55000" | "55P03" | "57014" | "25006" | "40001" | "40P01"
        )
    {
        Class::Unavailable
    } else {
        Class::Failed
    }
}

/// A database error that several operations fail with (a group commit's failed `COMMIT`).
#[derive(Debug)]
struct Shared(Arc<sqlx::Error>);

impl std::fmt::Display for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl StdError for Shared {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.0.source()
    }
}

fn classify_shared(context: &'static str, e: Arc<sqlx::Error>) -> StoreError {
    let class = class_of(&e);
    let source: BoxError = Box::new(Shared(e));
    match class {
        Class::Unreachable => StoreError::Unreachable { context, source },
        Class::Unavailable => StoreError::Unavailable { context, source },
        Class::Failed => StoreError::Failed { context, source },
    }
}

fn classify(context: &'static str, e: sqlx::Error) -> StoreError {
    match class_of(&e) {
        Class::Unreachable => StoreError::Unreachable {
            context,
            source: Box::new(e),
        },
        Class::Unavailable => StoreError::Unavailable {
            context,
            source: Box::new(e),
        },
        Class::Failed => StoreError::failed(context, e),
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

    /// Commits a small write (this instance's row in `health_probes`): proves that writes reach
    /// the disk, for readiness.
    async fn probe_write(&self, instance: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Whether a new connection to the database can be opened now, apart from the pool (whose
    /// timeout cannot tell "down" from "busy"). SQLite is a file: it always can.
    async fn reachable(&self) -> bool {
        true
    }

    /// This database's identity: a random id written on first use and never changed. The cache
    /// carries it in its marker key, so an emptied or foreign cache is recognized.
    async fn database_id(&self) -> Result<String, StoreError>;

    /// Takes or renews the lease `name` for `holder` until `at + ttl`, unless another holder's
    /// lease is still running. Returns whether `holder` now has it.
    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Gives up `holder`'s lease `name` early.
    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError>;

    /// Makes every pending cache write due now (the cache is back: no need to wait out the
    /// backoff). Returns how many.
    async fn expedite_cache_writes(&self, at: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Opens (and migrates) the database a URL names: `sqlite:` or `postgres:`/`postgresql:`.
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<dyn Store>, StoreError> {
    if url.starts_with("sqlite:") {
        Ok(Arc::new(SqliteStore::connect(url, options).await?))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        // A server can be down; then fail fast rather than let every request wait the timeout.
        Ok(Arc::new(Guarded::new(Arc::new(
            PgStore::connect(url, options).await?,
        ))))
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
