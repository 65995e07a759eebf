//! A circuit breaker: once a dependency (the database server, Redis) is known to be down,
//! callers fail at once instead of each waiting out a timeout, and one background probe finds
//! out when it is back.
//!
//! Closed: calls go through. A failure that shows the dependency down trips it open; from then
//! on [`Breaker::is_open`] is true and callers skip the dependency. A single probe task tries it
//! again, 100 ms after tripping and then backing off to once a second; the first success closes
//! the breaker. Listeners ([`Breaker::subscribe`]) see every change, e.g. to refill a cache the
//! moment Redis is back.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

const FIRST_PROBE: Duration = Duration::from_millis(100);
const MAX_PROBE_INTERVAL: Duration = Duration::from_secs(1);

pub struct Breaker {
    /// What is guarded, for logs: "database", "Redis".
    name: &'static str,
    /// `true` while open.
    open: watch::Sender<bool>,
}

impl Breaker {
    pub fn new(name: &'static str) -> Arc<Self> {
        let breaker = Arc::new(Self {
            name,
            open: watch::Sender::new(false),
        });
        breaker.export(false);
        breaker
    }

    /// `cps_breaker_open{dependency}`: 1 while open.
    fn export(&self, open: bool) {
        metrics::gauge!(crate::metrics::names::BREAKER_OPEN, "dependency" => self.name.to_ascii_lowercase())
            .set(if open { 1.0 } else { 0.0 });
    }

    pub fn is_open(&self) -> bool {
        *self.open.borrow()
    }

    /// Changes of state: `true` when it opens, `false` when it closes.
    pub fn subscribe(&self) -> watch::Receiver<bool> {
        self.open.subscribe()
    }

    /// Opens the breaker (if closed) and starts the probe, which closes it on its first success.
    /// `probe` must bound its own time.
    pub fn trip<F, Fut>(self: &Arc<Self>, why: &str, probe: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = bool> + Send,
    {
        let opened = self
            .open
            .send_if_modified(|open| !std::mem::replace(open, true));
        if !opened {
            return;
        }
        self.export(true);
        tracing::warn!(
            dependency = self.name,
            error = why,
            "{} unreachable: failing fast until a probe succeeds",
            self.name
        );
        let this = self.clone();
        let since = Instant::now();
        tokio::spawn(async move {
            let mut wait = FIRST_PROBE;
            loop {
                tokio::time::sleep(wait).await;
                if probe().await {
                    break;
                }
                wait = (wait * 2).min(MAX_PROBE_INTERVAL);
            }
            this.open.send_replace(false);
            this.export(false);
            tracing::info!(
                dependency = this.name,
                down_ms = since.elapsed().as_millis() as u64,
                "{} reachable again",
                this.name
            );
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};

    #[tokio::test]
    async fn opens_once_and_closes_on_the_first_successful_probe() {
        let breaker = Breaker::new("test");
        let mut changes = breaker.subscribe();
        let probes = Arc::new(AtomicU32::new(0));
        let counted = probes.clone();
        breaker.trip("down", move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move { n >= 2 }
        });
        // A second trip while open starts no second probe.
        breaker.trip("down again", || async { true });
        assert!(breaker.is_open());
        changes.changed().await.unwrap();
        assert!(*changes.borrow_and_update());
        tokio::time::timeout(Duration::from_secs(5), changes.changed())
            .await
            .expect("closes")
            .unwrap();
        assert!(!breaker.is_open());
        assert_eq!(probes.load(Ordering::SeqCst), 3);
    }
}
