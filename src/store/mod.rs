//! Persistence: the [`Store`] trait the service talks to, written once for both databases.
//!
//! The trait speaks in whole operations (register, apply a command, read), not rows: each write
//! is one database transaction. The transaction scripts (`script.rs`) and every other statement
//! (`ops.rs`) exist once, in PostgreSQL's spelling; `sql.rs` is the dialect (what SQLite is
//! given instead) and `db.rs` where transactions come from (a pool on PostgreSQL, group commit
//! on SQLite's single writer, `group.rs`). A new backend is one more arm there, and its
//! migrations.
//!
//! The store decides nothing of what a write means: the domain decides the change, and the
//! caller's [`WritePolicy`] what it records besides (the audit account, the side effects). The
//! store writes them in the same transaction.

pub(crate) mod db;
mod desk;
mod group;
mod guard;
mod ops;
mod portal;
mod prune;
mod rows;
mod script;
mod sessions;
pub mod sql;

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::domain::{
    Actor, Applied, CardCommand, CardNumber, CardRecord, CardSnapshot, CardView, Change,
    CustomerChange, CustomerCommand, CustomerId, CustomerSnapshot, Identity, Refusal, Registered,
    Registration, Replacement, ReplacementPlan,
};

pub use db::check_postgres_url;
pub use desk::{
    DeskCard, DeskCustomer, DeskCustomerHead, DeskStore, HistoryEntry, HistoryOf, NoticeRows,
    NoticeState,
};
pub use ops::{Batch, Known, Position, SqlStore};
pub use portal::{
    Account, CODE_EVERY, CodeCheck, ConsentEvent, Failures, IssuedCode, PortalStore, Proof,
    SignInSubject,
};
pub use prune::{Prunable, Prune};
pub use sessions::{SessionStore, StoredSession};

/// How a store is opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreOptions {
    /// Connections in the pool (PostgreSQL; SQLite has one writer and a few readers).
    pub max_connections: u32,
    /// How long an operation waits for a connection, a lock or a statement before it is
    /// abandoned as "database unavailable" (503).
    pub timeout: Duration,
    /// Create a SQLite file that does not exist (serving, migrating); maintenance commands
    /// refuse a missing file instead, so that a mistyped path is not taken for an empty store.
    pub create: bool,
    /// Failed activations tolerated per card.
    pub activation_limit: AttemptLimit,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            max_connections: 8,
            timeout: Duration::from_secs(5),
            create: true,
            activation_limit: AttemptLimit::default(),
        }
    }
}

/// The system of record: where it is and how it is used.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseSettings {
    /// `sqlite://FILE` or `postgres://…`; may hold a password: never logged as it is.
    pub url: String,
    pub options: StoreOptions,
}

impl Default for DatabaseSettings {
    /// A SQLite file in the working directory: the service runs with no other server.
    fn default() -> Self {
        Self {
            url: "sqlite://cps.db".to_owned(),
            options: StoreOptions::default(),
        }
    }
}

impl std::fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// Whether `url` names a database this service can use (checked with the other settings; the
/// URL is never repeated in the answer: it may hold a password).
pub fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("sqlite:") {
        return Ok(());
    }
    if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        return check_postgres_url(url);
    }
    Err("unsupported database URL (expected sqlite://FILE or postgres://…)".to_owned())
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
}

/// A write, as the [`WritePolicy`] is told of it inside its transaction.
#[derive(Debug)]
pub struct Write<'a> {
    pub customer: CustomerId,
    pub at: DateTime<Utc>,
    /// Who made it: recorded with every audit entry of the write.
    pub actor: &'a Actor,
    pub kind: WriteKind<'a>,
}

#[derive(Debug)]
pub enum WriteKind<'a> {
    /// A new customer and card were stored.
    Registered {
        card: &'a CardNumber,
        registration: &'a Registration,
        identity: Option<&'a Identity>,
    },
    /// A command changed the card or its customer.
    Changed {
        card: &'a CardNumber,
        command: &'a CardCommand,
        before: &'a CardSnapshot,
        change: &'a Change,
    },
    /// An activation named the wrong phone number; `failures` now count within `limit`.
    ActivationFailed {
        card: &'a CardNumber,
        failures: i64,
        limit: AttemptLimit,
    },
    /// `old` was locked and `replacement.new_card` stored for its customer, with its wallets.
    Replaced {
        old: &'a CardNumber,
        before: &'a CardSnapshot,
        replacement: &'a Replacement,
        plan: &'a ReplacementPlan,
    },
    /// A desk command changed a customer (and perhaps its cards).
    CustomerChanged {
        command: &'a CustomerCommand,
        before: &'a CustomerSnapshot,
        change: &'a CustomerChange,
    },
    /// The card's dead or unsent ALCS notices (`queued` of them) were queued again.
    NoticeRetried { card: &'a CardNumber, queued: u64 },
    /// The customer set (or changed) the web password, signed in with `card`.
    PasswordSet { card: &'a CardNumber },
    /// The failed web sign-ins of `card` were forgotten (the desk reopened its sign-in).
    SignInCleared { card: &'a CardNumber },
    /// The customer (signed in with `card`) changed these properties of the profile.
    ProfileChanged {
        card: &'a CardNumber,
        fields: &'a [crate::domain::ProfileField],
    },
    /// A one-time code for `purpose` was made and its text message to `to` queued.
    CodeIssued {
        card: &'a CardNumber,
        purpose: crate::domain::CodePurpose,
        to: &'a crate::domain::PhoneNumber,
        text: &'a str,
    },
    /// A consent (or the objection) changed; `card` is the one signed in with.
    ConsentChanged {
        card: &'a CardNumber,
        action: crate::domain::ConsentAction,
    },
}

impl WriteKind<'_> {
    /// The cards whose records the policy is given (when it asks): those the write changed.
    fn cards(&self) -> Vec<&CardNumber> {
        match self {
            Self::Registered { card, .. }
            | Self::Changed { card, .. }
            | Self::ActivationFailed { card, .. }
            | Self::ProfileChanged { card, .. }
            | Self::ConsentChanged { card, .. } => vec![*card],
            Self::Replaced {
                old, replacement, ..
            } => vec![*old, &replacement.new_card],
            Self::CustomerChanged { before, .. } => {
                before.cards.iter().map(|c| &c.number).collect()
            }
            // Nothing of the card changed.
            Self::NoticeRetried { .. }
            | Self::PasswordSet { .. }
            | Self::SignInCleared { .. }
            | Self::CodeIssued { .. } => Vec::new(),
        }
    }
}

/// What a write means besides its rows, decided by the application: its consequences (audit
/// entries, side effects), kept in the same transaction. The store runs the transaction.
pub trait WritePolicy: Send + Sync {
    /// Whether [`WritePolicy::consequences`] needs the cards as the write leaves them.
    fn needs_cards(&self, write: &Write<'_>) -> bool;

    /// The audit account and side effects of `write`; `cards` are the cards it changed (and
    /// their customer) as it leaves them, when asked for.
    fn consequences(&self, write: &Write<'_>, cards: &[CardRecord]) -> Consequences;
}

/// The audit entries and the outbox rows of one write.
#[derive(Debug)]
pub struct Consequences {
    pub audit: Vec<Audit>,
    pub effects: Vec<NewEffect>,
}

/// One audit entry: what happened to a card (or, without one, to the customer).
#[derive(Debug)]
pub struct Audit {
    pub card: Option<CardNumber>,
    pub operation: &'static str,
    /// The POS identity as JSON, when the request carried one.
    pub identity: Option<String>,
    /// What changed, as JSON: statuses and field names, never personal data.
    pub details: String,
}

/// Where an outbox row stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxStatus {
    /// Waiting for its first or next attempt.
    Pending,
    /// Delivered (kept for the record; rows not worth keeping are deleted instead).
    Delivered,
    /// Given up: kept for operators, back in the queue with `cps outbox retry`.
    Dead,
    /// Recorded while it could not be sent (no destination configured); `retry` queues it.
    Unsent,
}

impl OutboxStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
            Self::Unsent => "unsent",
        }
    }
}

/// An outbox row to record with a write.
#[derive(Debug, Clone)]
pub struct NewEffect {
    pub kind: &'static str,
    /// What it concerns, for operators (a cache key, a card; never personal data).
    pub subject: String,
    pub payload: String,
    /// The payload holds the customer's personal data: erasing the customer deletes the row.
    pub personal: bool,
    pub status: OutboxStatus,
    /// When a worker may first take it.
    pub due: DateTime<Utc>,
    /// Handed back to the caller once committed (to be delivered right away).
    pub report: bool,
}

/// An outbox row: recorded by a write (and reported back), or claimed by a worker.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: String,
    pub payload: String,
    pub attempts: i32,
    #[sqlx(try_from = "sql::Time")]
    pub created_at: DateTime<Utc>,
}

/// One line of `cps outbox`: how many rows of a kind are in a state, and the oldest.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct OutboxCount {
    pub kind: String,
    /// `pending` (never tried), `failed` (pending, tried and failing), `dead`, `unsent`,
    /// `delivered`.
    pub state: String,
    pub count: i64,
    #[sqlx(try_from = "sql::Time")]
    pub oldest: DateTime<Utc>,
}

/// A connection pool's connections: open, and of those idle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolState {
    pub open: u32,
    pub idle: u32,
}

/// What an operation did, and the outbox rows it recorded that the caller asked back.
#[derive(Debug)]
pub struct Outcome<T> {
    pub result: T,
    pub effects: Vec<OutboxRow>,
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
        self.postgres_error()
            .is_some_and(|pg| matches!(pg.code(), "40001" | "40P01" | "55000" | "57P03" | "53300"))
    }

    /// The server refused a write because it takes none: `25006` (a read-only transaction: a
    /// standby, or `default_transaction_read_only`), or `0A000` on starting a read-write
    /// transaction during recovery. The connection that saw it leads to a server that cannot
    /// serve this service until it is a primary again.
    pub fn is_read_only(&self) -> bool {
        self.postgres_error()
            .is_some_and(|pg| pg.code() == "25006" || read_write_refused(pg.code(), pg.message()))
    }

    /// PostgreSQL's error behind an operation that did not happen (answered 503).
    fn postgres_error(&self) -> Option<&sqlx::postgres::PgDatabaseError> {
        let (Self::Unavailable { source, .. } | Self::Unreachable { source, .. }) = self else {
            return None;
        };
        let Some(sqlx::Error::Database(db)) = source.downcast_ref::<sqlx::Error>() else {
            return None;
        };
        db.try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
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
        // A protocol error: the stream does not carry PostgreSQL's protocol as expected, e.g.
        // a proxy that accepted the connection and closed it because its server is down
        // ("unexpected response from SSLRequest"). A transport failure like a reset.
        sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::WorkerCrashed => Class::Unreachable,
        sqlx::Error::PoolTimedOut => Class::Unavailable,
        sqlx::Error::Database(db) => match db.code() {
            None => Class::Failed,
            Some(code) if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() => {
                sqlite_class(&code)
            }
            Some(code) if read_write_refused(&code, db.message()) => Class::Unavailable,
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

/// "cannot set transaction read-write mode during recovery" (`0A000`): a standby, as `25006`.
fn read_write_refused(code: &str, message: &str) -> bool {
    code == "0A000" && message.contains("read-write")
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
    /// Stores a new customer, its card (`WaitingForActivation`) and wallets, with what
    /// `policy` records, atomically; or recognizes a replay or a conflict by the card
    /// number's unique key.
    async fn register(
        &self,
        registration: &Registration,
        identity: Option<&Identity>,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Registered>, StoreError>;

    /// Loads the card and its customer under a write lock, lets the domain decide, and writes
    /// the change with what `policy` records — all in one transaction. A refusal is a
    /// result, not an error (a failed activation is even committed: it counts).
    async fn apply(
        &self,
        card: &CardNumber,
        command: &CardCommand,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError>;

    async fn card(&self, card: &CardNumber) -> Result<Option<CardView>, StoreError>;

    /// Succeeds when the database answers a query.
    async fn ping(&self) -> Result<(), StoreError>;

    /// Commits a small write (this instance's row in `health_probes`): proves that writes reach
    /// the disk, for readiness.
    async fn probe_write(&self, instance: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Whether a new connection to the database can be opened now, apart from the pool (whose
    /// timeout cannot tell "down" from "busy"). SQLite is a file: it always can.
    async fn reachable(&self) -> bool {
        true
    }

    /// The connection pool's state now, for metrics: `None` where there is no pool to speak of.
    fn pool(&self) -> Option<PoolState> {
        None
    }

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
}

/// Opens (and migrates) the database a URL names: `sqlite:` or `postgres:`/`postgresql:`. The
/// one value serves every capability: the card store ([`Store`]), the outbox queue and the
/// cache source (their traits live beside their users).
pub async fn connect(url: &str, options: &StoreOptions) -> Result<Arc<SqlStore>, StoreError> {
    if url.starts_with("sqlite:") {
        let store = SqlStore::new(db::Db::sqlite(url, options).await?, options);
        Ok(Arc::new(store))
    } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
        let store = SqlStore::new(db::Db::postgres(url, options).await?, options);
        Ok(Arc::new(store))
    } else {
        Err(StoreError::failed(
            "connect",
            "unsupported database URL scheme (expected sqlite: or postgres:)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::{Class, class_of, postgres_class};

    #[test]
    fn a_broken_stream_is_unreachable_and_a_read_only_server_unavailable() {
        let handshake = sqlx::Error::Protocol("unexpected response from SSLRequest: 0x00".into());
        assert_eq!(class_of(&handshake), Class::Unreachable);
        assert_eq!(postgres_class("25006"), Class::Unavailable);
        assert_eq!(postgres_class("57P03"), Class::Unreachable);
        assert_eq!(postgres_class("23505"), Class::Failed);
    }
}
