//! The pruning job: tables that would grow without end are kept to what is worth keeping.
//! Every instance runs it every `--prune-interval-secs` (with jitter); the deletes are
//! idempotent, batched (one short statement per batch), and stop at shutdown.
//!
//! | what | kept |
//! |---|---|
//! | ALCS notices delivered (outbox `delivered`) | `--delivered-retention-days` (90) after delivery |
//! | the audit trail | `--audit-retention-days` (2,192: six years, the Polish limitation period) |
//! | failed activations | the activation window (`--activation-window-secs`): older ones count nothing |
//! | leases | an hour after they expired |
//! | sessions (console, portal) | until their absolute deadline |
//! | failed sign-ins of a card number | 90 days after the last (a locked sign-in included) |
//! | one-time codes | until they expire |
//!
//! Pending, failed, dead and unsent outbox rows are never pruned: they are work, or a record
//! an operator must see.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;

use crate::store::{Prunable, Prune, StoreError};

/// How long each kind of row is kept, and how often the job runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HousekeepingConfig {
    /// `None`: never prune.
    pub interval: Option<Duration>,
    pub delivered: Duration,
    pub audit: Duration,
    pub activation_window: Duration,
    /// Rows deleted per statement.
    pub batch: i64,
}

const DAY: Duration = Duration::from_secs(86_400);

impl Default for HousekeepingConfig {
    fn default() -> Self {
        Self {
            interval: Some(Duration::from_secs(300)),
            delivered: 90 * DAY,
            audit: 2192 * DAY,
            activation_window: Duration::from_secs(900),
            batch: 1000,
        }
    }
}

impl HousekeepingConfig {
    /// How long rows of `what` are kept.
    fn kept(&self, what: Prunable) -> Duration {
        match what {
            Prunable::Delivered => self.delivered,
            Prunable::Audit => self.audit,
            Prunable::ActivationFailures => self.activation_window,
            Prunable::Leases => Duration::from_secs(3600),
            Prunable::Sessions => Duration::ZERO,
            // Long enough that waiting out the counter is no way to guess: at most ten tries
            // a card number per 90 days.
            Prunable::SignInFailures => 90 * DAY,
            Prunable::SmsCodes => Duration::ZERO,
        }
    }
}

/// Runs passes until `stop` turns true.
pub async fn run(
    store: Arc<dyn Prune>,
    config: HousekeepingConfig,
    mut stop: watch::Receiver<bool>,
) {
    let Some(interval) = config.interval else {
        return;
    };
    loop {
        // Jitter, so that instances started together do not prune in step.
        let wait = interval.mul_f64(0.75 + fastrand::f64() * 0.5);
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        match pass(store.as_ref(), &config, Utc::now(), &stop).await {
            Ok(pruned) if pruned.iter().any(|(_, n)| *n > 0) => {
                let counts: Vec<String> = pruned
                    .iter()
                    .filter(|(_, n)| *n > 0)
                    .map(|(what, n)| format!("{}={n}", what.table()))
                    .collect();
                tracing::info!(pruned = %counts.join(" "), "old rows pruned");
            }
            Ok(_) => {}
            Err(e) => crate::warn_limited!(
                "prune-failed",
                error = %crate::error_chain(&e),
                "pruning old rows failed; trying again at the next pass"
            ),
        }
    }
}

/// One pass over every table: each pruned in batches until less than a batch is left (or the
/// service stops). How many rows of each it deleted.
pub async fn pass(
    store: &dyn Prune,
    config: &HousekeepingConfig,
    now: DateTime<Utc>,
    stop: &watch::Receiver<bool>,
) -> Result<Vec<(Prunable, u64)>, StoreError> {
    let mut pruned = Vec::new();
    for what in Prunable::ALL {
        let before =
            now - chrono::Duration::from_std(config.kept(what)).unwrap_or(chrono::Duration::MAX);
        let mut total = 0;
        loop {
            let n = store.prune(what, before, config.batch).await?;
            total += n;
            metrics::counter!(crate::metrics::names::PRUNED_ROWS, "table" => what.table())
                .increment(n);
            if n < u64::try_from(config.batch).unwrap_or(u64::MAX) || *stop.borrow() {
                break;
            }
            // Room for the requests between two batches.
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pruned.push((what, total));
    }
    Ok(pruned)
}
