//! Delivering outbox effects: right after commit by the request that recorded them, and by a
//! background worker for everything left over, with exponential backoff and jitter.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::watch;

use super::{Effect, Pending};
use crate::cache::RedisCache;
use crate::store::Store;

/// Delivers effects to where they go.
#[derive(Clone)]
pub struct Deliverer {
    store: Arc<dyn Store>,
    cache: Option<RedisCache>,
}

/// Why one delivery failed; the text goes to `outbox.last_error`, so it names no personal data.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error(transparent)]
    Cache(#[from] crate::cache::CacheError),
    #[error("no cache is configured")]
    NoCache,
}

impl Deliverer {
    pub fn new(store: Arc<dyn Store>, cache: Option<RedisCache>) -> Self {
        Self { store, cache }
    }

    /// Whether anything can be delivered at all (else a worker would only fail rows).
    pub fn has_targets(&self) -> bool {
        self.cache.is_some()
    }

    async fn deliver(&self, effect: &Effect) -> Result<(), DeliveryError> {
        match effect {
            Effect::CacheWrite(hash) => {
                let cache = self.cache.as_ref().ok_or(DeliveryError::NoCache)?;
                // `false` (not written) means Redis already holds this or a newer version:
                // delivered all the same.
                cache.write(hash, false).await?;
                Ok(())
            }
        }
    }

    /// Delivers what a request just recorded, before it answers. What fails stays in the
    /// outbox for the worker; the request succeeds regardless (the database has committed).
    pub async fn deliver_now(&self, effects: Vec<Pending>) {
        if effects.is_empty() {
            return;
        }
        let mut done = Vec::with_capacity(effects.len());
        for pending in &effects {
            match self.deliver(&pending.effect).await {
                Ok(()) => done.push(pending.id),
                Err(e) => tracing::warn!(
                    outbox_id = pending.id,
                    subject = pending.effect.subject(),
                    error = %crate::error_chain(&e),
                    "side effect not delivered now; the outbox worker will retry"
                ),
            }
        }
        if let Err(e) = self.store.effects_done(&done).await {
            // Harmless: the rows are delivered again later, and cache writes are idempotent.
            tracing::warn!(error = %crate::error_chain(&e), "could not mark outbox rows delivered");
        }
    }
}

/// Settings of the background worker.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// How often an idle worker looks for due rows.
    pub poll: Duration,
    /// The longest wait between two attempts of one row.
    pub max_backoff: Duration,
    /// How long a claimed row is reserved for this worker.
    pub lease: Duration,
    /// Rows claimed at once.
    pub batch: i64,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            poll: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            lease: Duration::from_secs(30),
            batch: 100,
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

/// Runs until `shutdown` turns true; a batch in flight is finished first, and rows claimed but
/// not delivered return to the queue when their lease ends.
pub async fn run(deliverer: Deliverer, config: WorkerConfig, mut shutdown: watch::Receiver<bool>) {
    tracing::info!("outbox worker started");
    loop {
        if *shutdown.borrow() {
            break;
        }
        let claimed = match deliverer
            .store
            .claim_effects(Utc::now(), config.lease, config.batch)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::warn!(error = %crate::error_chain(&e), "outbox worker cannot claim rows");
                Vec::new()
            }
        };
        let busy = claimed.len() as i64 == config.batch;
        let mut done = Vec::new();
        for pending in claimed {
            match deliverer.deliver(&pending.effect).await {
                Ok(()) => done.push(pending.id),
                Err(e) => {
                    let wait = backoff(pending.attempts, config.max_backoff);
                    let retry_at = Utc::now()
                        + chrono::Duration::from_std(wait).unwrap_or(chrono::Duration::MAX);
                    let error = crate::error_chain(&e);
                    tracing::warn!(
                        outbox_id = pending.id,
                        subject = pending.effect.subject(),
                        attempts = pending.attempts,
                        retry_in_ms = wait.as_millis() as u64,
                        error = %error,
                        "outbox delivery failed"
                    );
                    if let Err(e) = deliverer
                        .store
                        .effect_failed(pending.id, retry_at, &error)
                        .await
                    {
                        tracing::warn!(error = %crate::error_chain(&e), "cannot reschedule an outbox row");
                    }
                }
            }
        }
        if !done.is_empty() {
            tracing::info!(delivered = done.len(), "outbox rows delivered");
            if let Err(e) = deliverer.store.effects_done(&done).await {
                tracing::warn!(error = %crate::error_chain(&e), "could not mark outbox rows delivered");
            }
        }
        if !busy {
            tokio::select! {
                () = tokio::time::sleep(config.poll) => {}
                _ = shutdown.changed() => {}
            }
        }
    }
    tracing::info!("outbox worker stopped");
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
