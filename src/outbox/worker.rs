//! Delivering outbox effects: right after commit by the request that recorded them, and by a
//! background worker for everything left over, with exponential backoff and jitter.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{Notify, mpsc, watch};

use super::OutboxQueue;
use super::alcs::AlcsClient;
use super::{DeliveryError, Effect, Pending, Targets};
use crate::cache::RedisCache;
use crate::store::{OutboxRow, StoreError};

/// Delivers effects to where they go.
#[derive(Clone)]
pub struct Deliverer {
    queue: Arc<dyn OutboxQueue>,
    targets: Targets,
    /// Wakes the worker when a request recorded something only the worker delivers.
    wake: Arc<Notify>,
    /// Rows a request delivered, to be marked done by [`mark_done`] in batches, off the
    /// request's path. Started on first use (that is inside the runtime).
    done: Arc<std::sync::OnceLock<mpsc::UnboundedSender<Delivered>>>,
}

impl Deliverer {
    pub fn new(
        queue: Arc<dyn OutboxQueue>,
        cache: Option<RedisCache>,
        alcs: Option<AlcsClient>,
        sms: Option<super::sms_gateway::SmsClient>,
    ) -> Self {
        Self {
            queue,
            targets: Targets { cache, alcs, sms },
            wake: Arc::new(Notify::new()),
            done: Arc::default(),
        }
    }

    /// Queues delivered rows to be marked done. Marking waits for no request: a row delivered
    /// but not yet marked when the process dies is delivered again by the worker after
    /// `EFFECT_GRACE`, which is harmless (cache writes are version-guarded).
    fn mark_done(&self, delivered: Vec<Delivered>) {
        let sender = self.done.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(mark_done(self.queue.clone(), rx));
            tx
        });
        for row in delivered {
            // Only fails once the marking task is gone (the runtime is shutting down).
            let _ = sender.send(row);
        }
    }

    /// The queue's events by kind and state, with the oldest of each.
    pub async fn summary(&self) -> Result<Vec<crate::store::OutboxCount>, StoreError> {
        self.queue.outbox_summary().await
    }

    /// Wakes the worker: something is due now.
    pub fn waker(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Whether anything can be delivered at all (else a worker would only fail rows).
    pub fn has_targets(&self) -> bool {
        self.targets.cache.is_some() || self.targets.alcs.is_some() || self.targets.sms.is_some()
    }

    async fn deliver(&self, effect: &Effect) -> Result<(), DeliveryError> {
        effect.deliver(&self.targets).await
    }

    /// Delivers what a request just recorded and must see done before it answers (cache
    /// writes); wakes the worker for the rest (ALCS notices). What fails stays in the outbox
    /// for the worker; the request succeeds regardless (the database has committed).
    pub async fn deliver_now(&self, effects: Vec<Pending>) {
        let (now, later): (Vec<Pending>, Vec<Pending>) = effects
            .into_iter()
            .partition(|p| p.effect.deliver_in_request());
        if !later.is_empty() {
            self.wake.notify_one();
        }
        if now.is_empty() {
            return;
        }
        // The writes touch different keys: send them at once rather than one after another.
        let mut writes = tokio::task::JoinSet::new();
        for pending in now {
            let deliverer = self.clone();
            writes.spawn(tracing::Instrument::instrument(
                async move {
                    let result = deliverer.deliver(&pending.effect).await;
                    (pending, result)
                },
                tracing::Span::current(),
            ));
        }
        let mut done = Vec::with_capacity(writes.len());
        while let Some(joined) = writes.join_next().await {
            match joined {
                Ok((pending, Ok(()))) => {
                    count_attempt(&pending, "delivered");
                    done.push(Delivered::of(&pending));
                }
                Ok((pending, Err(e))) => {
                    count_attempt(&pending, "failed");
                    crate::warn_limited!(
                    "side-effect-not-delivered",
                    outbox_id = pending.id,
                    subject = %pending.effect.subject(),
                    error = %crate::error_chain(&e),
                    "side effect not delivered now; the outbox worker will retry"
                    );
                }
                Err(e) => tracing::error!(error = %e, "a side effect delivery task failed"),
            }
        }
        if !done.is_empty() {
            self.mark_done(done);
        }
    }
}

/// Counts an attempt to deliver `pending`: `delivered`, `failed` (within a request, left to
/// the worker), `retry` (the worker will try again) or `dead`.
fn count_attempt(pending: &Pending, outcome: &'static str) {
    metrics::counter!(crate::metrics::names::OUTBOX_DELIVERIES, "kind" => pending.effect.kind(), "outcome" => outcome).increment(1);
}

/// A delivered row: its id, and whether it is kept as `delivered` or removed.
#[derive(Debug, Clone, Copy)]
struct Delivered {
    id: i64,
    keep: bool,
}

impl Delivered {
    fn of(pending: &Pending) -> Self {
        Self {
            id: pending.id,
            keep: pending.effect.kept_when_delivered(),
        }
    }
}

/// Ends delivered rows in one transaction: (removed, kept) ids.
async fn end_delivered(queue: &dyn OutboxQueue, delivered: &[Delivered]) -> Result<(), StoreError> {
    let (keep, remove): (Vec<Delivered>, Vec<Delivered>) = delivered.iter().partition(|d| d.keep);
    let ids = |list: Vec<Delivered>| list.into_iter().map(|d| d.id).collect::<Vec<_>>();
    queue.effects_done(&ids(remove), &ids(keep)).await
}

/// Marks delivered rows done: whatever has queued up since the last round, in one transaction.
async fn mark_done(queue: Arc<dyn OutboxQueue>, mut delivered: mpsc::UnboundedReceiver<Delivered>) {
    const BATCH: usize = 512;
    let mut batch = Vec::with_capacity(BATCH);
    while delivered.recv_many(&mut batch, BATCH).await > 0 {
        if let Err(e) = end_delivered(queue.as_ref(), &batch).await {
            // Harmless: the rows are delivered again later, and cache writes are idempotent.
            crate::warn_limited!(
                "outbox-mark-done",
                error = %crate::error_chain(&e),
                "could not mark outbox rows delivered"
            );
        }
        batch.clear();
    }
}

/// Settings of the background worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// How often an idle worker looks for due rows.
    pub poll: Duration,
    /// The longest wait between two attempts of one row.
    pub max_backoff: Duration,
    /// How long a claimed row is reserved for this worker. It must exceed the longest single
    /// delivery (ALCS or Redis timeout): the worker starts none after half the lease.
    pub lease: Duration,
    /// Rows claimed at once.
    pub batch: i64,
    /// Attempts after which an ALCS notice becomes a dead letter.
    pub max_attempts: i32,
    /// Age after which an ALCS notice that still fails becomes a dead letter.
    pub max_age: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            lease: Duration::from_secs(15),
            batch: 100,
            max_attempts: 10,
            max_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// The wait before attempt `attempts + 1`: 0.5 s doubling per attempt, capped, with jitter so
/// that many instances do not retry in step.
pub fn backoff(attempts: i32, max: Duration) -> Duration {
    let exp = u32::try_from(attempts.clamp(1, 30) - 1).unwrap_or(0);
    let base = Duration::from_millis(500).saturating_mul(2u32.saturating_pow(exp));
    base.min(max).mul_f64(0.5 + fastrand::f64() * 0.5)
}

/// Runs until `shutdown` turns true. It then claims nothing new: the delivery in flight
/// finishes, and rows claimed but not yet attempted go back to the queue at once.
pub async fn run(deliverer: Deliverer, config: WorkerConfig, mut shutdown: watch::Receiver<bool>) {
    tracing::info!("outbox worker started");
    while !*shutdown.borrow() {
        let claimed_at = std::time::Instant::now();
        let claimed = match deliverer
            .queue
            .claim_effects(Utc::now(), config.lease, config.batch)
            .await
        {
            Ok(rows) => decode(rows),
            Err(e) => {
                crate::warn_limited!("outbox-claim", error = %crate::error_chain(&e), "outbox worker cannot claim rows");
                Vec::new()
            }
        };
        let busy = claimed.len() as i64 == config.batch;
        let mut done = Vec::new();
        let mut unattempted = Vec::new();
        for pending in claimed {
            // Past half the lease another instance may soon claim the rest: hand it back
            // rather than risk delivering one event twice at the same time.
            if *shutdown.borrow() || claimed_at.elapsed() > config.lease / 2 {
                unattempted.push(pending.id);
                continue;
            }
            match deliverer.deliver(&pending.effect).await {
                Ok(()) => {
                    count_attempt(&pending, "delivered");
                    done.push(Delivered::of(&pending));
                }
                Err(e) => failed(&deliverer, &config, &pending, &e).await,
            }
        }
        if !done.is_empty() {
            tracing::debug!(delivered = done.len(), "outbox rows delivered");
            if let Err(e) = end_delivered(deliverer.queue.as_ref(), &done).await {
                tracing::warn!(error = %crate::error_chain(&e), "could not mark outbox rows delivered");
            }
        }
        if let Err(e) = deliverer.queue.release_effects(&unattempted).await {
            tracing::warn!(error = %crate::error_chain(&e), "could not release outbox rows");
        }
        if !busy {
            tokio::select! {
                () = tokio::time::sleep(config.poll) => {}
                () = deliverer.wake.notified() => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    tracing::info!("outbox worker stopped");
}

/// The effects claimed rows hold. A row that does not decode (written by a newer version, or
/// damaged) is left alone, claimed, and tried again after its lease: an operator sees it in
/// `cps outbox` as failing.
fn decode(rows: Vec<OutboxRow>) -> Vec<Pending> {
    rows.into_iter()
        .filter_map(|row| {
            let id = row.id;
            Pending::from_row(row)
                .inspect_err(|e| {
                    crate::warn_limited!("outbox-decode", outbox_id = id, error = %crate::error_chain(e), "an outbox row cannot be decoded");
                })
                .ok()
        })
        .collect()
}

/// Schedules the next attempt, or gives the row up when it cannot succeed or has had enough.
async fn failed(
    deliverer: &Deliverer,
    config: &WorkerConfig,
    pending: &Pending,
    e: &DeliveryError,
) {
    let error = crate::error_chain(e);
    let age = (Utc::now() - pending.created_at)
        .to_std()
        .unwrap_or_default();
    let give_up = pending.effect.can_die()
        && (e.permanent() || pending.attempts >= config.max_attempts || age >= config.max_age);
    let subject = pending.effect.subject();
    count_attempt(pending, if give_up { "dead" } else { "retry" });
    if give_up {
        tracing::error!(
            outbox_id = pending.id,
            %subject,
            attempts = pending.attempts,
            error = %error,
            "outbox delivery failed for good; kept as a dead letter (cps outbox retry)"
        );
        if let Err(e) = deliverer.queue.effect_dead(pending.id, &error).await {
            tracing::warn!(error = %crate::error_chain(&e), "cannot mark an outbox row dead");
        }
        return;
    }
    // Our backoff, or longer when the destination asked for it (`Retry-After`).
    let wait =
        backoff(pending.attempts, config.max_backoff).max(e.retry_after().unwrap_or_default());
    let retry_at = Utc::now() + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
    crate::warn_limited!(
        "outbox-delivery-failed",
        outbox_id = pending.id,
        %subject,
        attempts = pending.attempts,
        retry_in_ms = wait.as_millis() as u64,
        error = %error,
        "outbox delivery failed; will retry"
    );
    if let Err(e) = deliverer
        .queue
        .effect_failed(pending.id, retry_at, &error)
        .await
    {
        tracing::warn!(error = %crate::error_chain(&e), "cannot reschedule an outbox row");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let max = Duration::from_secs(60);
        for attempts in 1..40 {
            let full = Duration::from_millis(500)
                .saturating_mul(2u32.saturating_pow((attempts.min(30) - 1) as u32))
                .min(max);
            let d = backoff(attempts, max);
            assert!(d <= full && d >= full / 2, "{attempts}: {d:?} vs {full:?}");
        }
        assert!(backoff(0, max) <= Duration::from_millis(500));
        assert!(backoff(100, Duration::from_secs(2)) <= Duration::from_secs(2));
    }
}
