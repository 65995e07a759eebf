//! The application layer: the operations ALCS calls, independent of HTTP. It asks the domain
//! what a command does, the store to keep it (with what [`Policy`] records besides), and the
//! outbox to deliver what must be seen before the answer.
//!
//! Each operation runs on its own task: if the caller goes away mid-request (the till timed
//! out, the connection dropped), the database transaction and the cache writes after it still
//! run to their end instead of being cancelled between two statements.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use tracing::Instrument;

pub use policy::Policy;

use crate::domain::{
    Actor, Applied, CardCommand, CardNumber, CardView, Identity, Refusal, Registered, Registration,
};
use crate::outbox::Pending;
use crate::outbox::worker::Deliverer;
use crate::store::{OutboxRow, Outcome, Store, StoreError};

pub mod desk;
pub mod housekeeping;
mod policy;
pub mod portal;
pub mod sessions;

#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    pub(crate) deliverer: Deliverer,
    pub(crate) policy: Policy,
    readiness: Arc<Readiness>,
}

/// Why a command on a card was not applied: the domain refused it, or the infrastructure
/// failed.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error(transparent)]
    Failed(#[from] Failure),
}

/// An operation that did not happen, or may not have, for a reason of infrastructure (the
/// database down, saturated or failing).
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct Failure(#[from] StoreError);

impl Failure {
    /// Nothing happened and a later attempt may succeed (answered 503, not 500).
    pub fn is_unavailable(&self) -> bool {
        self.0.is_unavailable()
    }
}

/// The last readiness probe. Each probe commits a write, so it is shared by the callers of the
/// next second rather than repeated for each (a busy prober must not become a write load).
struct Readiness {
    /// This process, in `health_probes`.
    instance: String,
    /// Set when the process is shutting down: not ready from then on, whatever the database.
    draining: std::sync::atomic::AtomicBool,
    last: tokio::sync::Mutex<Option<(Instant, bool)>>,
}

/// How long one readiness probe may take: orchestrators' probes give up after 1 s.
const READY_TIMEOUT: Duration = Duration::from_millis(800);
/// How long a probe's answer is reused.
const READY_REUSE: Duration = Duration::from_secs(1);

impl Service {
    pub fn new(store: Arc<dyn Store>, deliverer: Deliverer, policy: Policy) -> Self {
        Self {
            store,
            deliverer,
            policy,
            readiness: Arc::new(Readiness {
                instance: uuid::Uuid::new_v4().simple().to_string(),
                draining: std::sync::atomic::AtomicBool::new(false),
                last: tokio::sync::Mutex::new(None),
            }),
        }
    }

    /// Registers a card; its cache writes are delivered before this returns (or left to the
    /// outbox worker when Redis is unreachable).
    pub async fn register(
        &self,
        registration: Registration,
        identity: Option<Identity>,
    ) -> Result<Registered, Failure> {
        let span = tracing::info_span!(
            "register",
            card_number = %registration.card_number,
            outcome = tracing::field::Empty
        );
        traced(
            span,
            self.register_card(registration, identity),
            |result| match result {
                Ok(Registered::Created(_)) => "created",
                Ok(Registered::Replayed(_)) => "replayed",
                Ok(Registered::AlreadyRegistered) => "already_registered",
                Err(_) => "failed",
            },
        )
        .await
    }

    async fn register_card(
        &self,
        registration: Registration,
        identity: Option<Identity>,
    ) -> Result<Registered, Failure> {
        let (store, policy) = (self.store.clone(), self.policy);
        let card = registration.card_number.clone();
        // Shared, not copied, by the attempts.
        let work = Arc::new((registration, identity));
        let outcome = self
            .write("register", move || {
                let (store, work) = (store.clone(), work.clone());
                async move {
                    let (registration, identity) = &*work;
                    store
                        .register(registration, identity.as_ref(), Utc::now(), &policy)
                        .await
                }
            })
            .await?;
        match outcome {
            Registered::Created(id) => {
                tracing::info!(card_number = %card, customer_id = %id, "card registered");
            }
            Registered::Replayed(id) => {
                tracing::info!(card_number = %card, customer_id = %id, "registration replayed");
            }
            Registered::AlreadyRegistered => {
                tracing::info!(card_number = %card, "registration refused: card already registered");
            }
        }
        Ok(outcome)
    }

    /// Applies ALCS's command to a card; its cache writes are delivered before this returns.
    pub async fn apply(
        &self,
        card: CardNumber,
        command: CardCommand,
    ) -> Result<Applied, ApplyError> {
        self.apply_as(card, command, Actor::Alcs).await
    }

    /// Applies a command to a card on behalf of `actor`; its cache writes are delivered before
    /// this returns.
    pub async fn apply_as(
        &self,
        card: CardNumber,
        command: CardCommand,
        actor: Actor,
    ) -> Result<Applied, ApplyError> {
        let span = tracing::info_span!(
            "apply",
            operation = command.name(),
            card_number = %card,
            outcome = tracing::field::Empty
        );
        traced(
            span,
            self.apply_command(card, command, actor),
            |result| match result {
                Ok(Applied::Changed) => "changed",
                Ok(Applied::Unchanged) => "unchanged",
                Err(ApplyError::Refused(_)) => "refused",
                Err(ApplyError::Failed(_)) => "failed",
            },
        )
        .await
    }

    async fn apply_command(
        &self,
        card: CardNumber,
        command: CardCommand,
        actor: Actor,
    ) -> Result<Applied, ApplyError> {
        let (store, policy) = (self.store.clone(), self.policy);
        let operation = command.name();
        let work = Arc::new((card.clone(), command, actor));
        let result = self
            .write(operation, move || {
                let (store, work) = (store.clone(), work.clone());
                async move {
                    let (card, command, actor) = &*work;
                    store.apply(card, command, actor, Utc::now(), &policy).await
                }
            })
            .await
            .map_err(|e| ApplyError::Failed(e.into()))
            .and_then(|r| r.map_err(ApplyError::Refused));
        match &result {
            Ok(applied) => {
                tracing::info!(card_number = %card, operation, changed = *applied == Applied::Changed, "card updated");
            }
            Err(ApplyError::Refused(refusal)) => log_refusal(&card, operation, refusal),
            Err(ApplyError::Failed(_)) => {}
        }
        result
    }

    /// Sets the gauges a scrape reads: the pool's connections, and the outbox's events by kind
    /// and state with the age of the oldest. Bounded in time: a scrape must not hang on a
    /// database that does not answer (the gauges then keep their last values).
    pub async fn observe(&self) {
        use crate::metrics::names;
        if let Some(pool) = self.store.pool() {
            metrics::gauge!(names::DB_CONNECTIONS, "state" => "open").set(f64::from(pool.open));
            metrics::gauge!(names::DB_CONNECTIONS, "state" => "idle").set(f64::from(pool.idle));
        }
        let summary = tokio::time::timeout(READY_TIMEOUT, self.deliverer.summary()).await;
        let Ok(Ok(summary)) = summary else {
            crate::warn_limited!(
                "metrics-outbox",
                "metrics: the outbox could not be counted in time"
            );
            return;
        };
        // Every kind and state, from the first scrape: one with no rows reads 0 (not absent,
        // and not its last count).
        let now = Utc::now();
        for kind in crate::outbox::Effect::KINDS {
            for state in crate::outbox::queue::SUMMARY_STATES {
                let row = summary.iter().find(|r| r.kind == *kind && r.state == state);
                let (count, age) = row.map_or((0.0, 0.0), |row| {
                    let age = (now - row.oldest).to_std().unwrap_or_default();
                    (row.count as f64, age.as_secs_f64())
                });
                let labels = [("kind", *kind), ("state", state)];
                metrics::gauge!(names::OUTBOX_EVENTS, &labels).set(count);
                metrics::gauge!(names::OUTBOX_OLDEST, &labels).set(age);
            }
        }
    }

    /// From now on readiness says 503 (the process is shutting down), so that load balancers
    /// stop sending it requests while it still serves those they send meanwhile.
    pub fn drain(&self) {
        self.readiness
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub async fn card(&self, card: &CardNumber) -> Result<Option<CardView>, Failure> {
        Ok(self.store.card(card).await?)
    }

    /// Whether this instance can take writes now: a small write committed within
    /// [`READY_TIMEOUT`], so a broken writer, a read-only or full disk, or a database that does
    /// not answer all say "not ready". Answers within a second whatever the database does.
    pub async fn ready(&self) -> bool {
        if self
            .readiness
            .draining
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return false;
        }
        let Ok(mut last) = tokio::time::timeout(READY_TIMEOUT, self.readiness.last.lock()).await
        else {
            // Another probe is still waiting for the database: that is the answer.
            return false;
        };
        if let Some((at, ready)) = *last
            && at.elapsed() < READY_REUSE
        {
            return ready;
        }
        let store = self.store.clone();
        let instance = self.readiness.instance.clone();
        // Detached, so that a probe cut off by the timeout still ends its transaction cleanly.
        let probe = detach(async move { store.probe_write(&instance, Utc::now()).await });
        let ready = match tokio::time::timeout(READY_TIMEOUT, probe).await {
            Ok(Ok(Ok(()))) => true,
            Ok(Ok(Err(e)) | Err(e)) => {
                crate::warn_limited!("not-ready", error = %crate::error_chain(&e), "not ready: the database cannot take a write");
                false
            }
            Err(_) => {
                crate::warn_limited!(
                    "not-ready-timeout",
                    timeout_ms = READY_TIMEOUT.as_millis() as u64,
                    "not ready: the database did not take a write in time"
                );
                false
            }
        };
        *last = Some((Instant::now(), ready));
        ready
    }
}

impl Service {
    /// Runs a write to its end on its own task (once more if the database refused it for a
    /// passing reason), and delivers what it recorded that the answer waits for.
    pub(crate) async fn write<T, F, Fut>(
        &self,
        operation: &'static str,
        work: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outcome<T>, StoreError>> + Send,
    {
        let deliverer = self.deliverer.clone();
        detach(async move {
            let outcome = timed(operation, async {
                match work().await {
                    Err(e) if e.is_retryable() => {
                        retry_pause(&e).await;
                        work().await
                    }
                    done => done,
                }
            })
            .await?;
            deliverer.deliver_now(pending(outcome.effects)).await;
            Ok(outcome.result)
        })
        .await?
    }
}

/// One line for a refused operation on a card.
pub(crate) fn log_refusal(card: &CardNumber, operation: &str, refusal: &Refusal) {
    match refusal {
        Refusal::CardNotFound => {
            tracing::info!(card_number = %card, operation, "refused: no such card");
        }
        Refusal::TooManyAttempts { retry_after } => {
            tracing::info!(card_number = %card, operation, retry_after_secs = retry_after.as_secs(), "refused: too many failed attempts");
        }
        refusal => tracing::info!(card_number = %card, operation, reason = %refusal, "refused"),
    }
}

/// The rows a write recorded, as effects to deliver. A row the store hands back was encoded
/// by this process a moment ago, so it decodes; were it not to, the worker delivers it later.
fn pending(rows: Vec<OutboxRow>) -> Vec<Pending> {
    rows.into_iter()
        .filter_map(|row| Pending::from_row(row).ok())
        .collect()
}

/// Runs an operation in its span, and records in the span how it ended.
async fn traced<T>(
    span: tracing::Span,
    work: impl Future<Output = T>,
    outcome: impl FnOnce(&T) -> &'static str,
) -> T {
    let result = work.instrument(span.clone()).await;
    span.record("outcome", outcome(&result));
    result
}

/// Runs an operation's database work, recording how long it took (its retry included).
async fn timed<T>(operation: &'static str, work: impl Future<Output = T>) -> T {
    let started = Instant::now();
    let done = work
        .instrument(tracing::info_span!("transaction", operation))
        .await;
    metrics::histogram!(crate::metrics::names::DB_TRANSACTION, "operation" => operation)
        .record(started.elapsed());
    done
}

/// A short, jittered pause before the one retry of an operation the database refused for a
/// passing reason, so that two transactions that collided do not collide again.
async fn retry_pause(e: &StoreError) {
    tracing::debug!(error = %crate::error_chain(e), "retrying once");
    tokio::time::sleep(Duration::from_millis(20 + fastrand::u64(0..60))).await;
}

/// Runs a store call to completion on its own task, whatever happens to the caller.
async fn detach<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    // In the caller's span: what the task logs still names the request.
    tokio::spawn(work.instrument(tracing::Span::current()))
        .await
        .map_err(|e| StoreError::failed("finish the operation", e))
}
