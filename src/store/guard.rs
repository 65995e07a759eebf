//! The database's circuit breaker, where connections are acquired ([`super::db::Db`]): every
//! store operation on PostgreSQL passes it, whichever trait it belongs to.
//!
//! Without it, every request while PostgreSQL refuses connections waits the whole pool timeout
//! (5 s by default) before its 503, and a handful of clients occupy the service. With it, the
//! first failure that shows the server unreachable opens the breaker; every call then fails at
//! once with [`StoreError::Unreachable`] until a background probe opens a connection again.
//!
//! A pool timeout alone does not prove the server down (the pool may merely be busy): the
//! breaker opens on one only if a fresh connection, opened apart from the pool, fails too.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use super::StoreError;
use crate::breaker::Breaker;

/// How long one reachability probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Whether a new connection, apart from the pool, reaches a server that takes writes.
pub(crate) type Probe = Arc<dyn Fn() -> Pin<Box<dyn Future<Output = bool> + Send>> + Send + Sync>;

pub(crate) struct Guard {
    breaker: Arc<Breaker>,
    /// A reachability check after a pool timeout is under way (one at a time).
    checking: AtomicBool,
    probe: Probe,
    /// Marked when a write finds the server read-only: pooled connections are then checked
    /// before use for a while.
    read_only: Arc<ReadOnlySeen>,
}

impl Guard {
    pub(crate) fn new(probe: Probe, read_only: Arc<ReadOnlySeen>) -> Arc<Self> {
        Arc::new(Self {
            breaker: Breaker::new("database"),
            checking: AtomicBool::new(false),
            probe,
            read_only,
        })
    }

    /// Whether a new connection, apart from the pool, reaches a server that takes writes now.
    pub(crate) async fn reachable(&self) -> bool {
        (self.probe)().await
    }

    /// Refuses at once while the database is known to be unreachable.
    pub(crate) fn admit(&self) -> Result<(), StoreError> {
        if self.breaker.is_open() {
            return Err(StoreError::Unreachable {
                context: "reach the database",
                source: "the database was found unreachable; waiting for a probe to succeed".into(),
            });
        }
        Ok(())
    }

    fn trip(&self, why: &str) {
        let probe = self.probe.clone();
        self.breaker.trip(why, move || {
            let probe = probe.clone();
            async move {
                tokio::time::timeout(PROBE_TIMEOUT, probe())
                    .await
                    .unwrap_or(false)
            }
        });
    }

    /// Looks at a failure: opens the breaker when it shows the server unreachable.
    pub(crate) fn observe(self: &Arc<Self>, e: &StoreError) {
        match e {
            // Every pooled connection probably leads to the same read-only server: they are
            // checked before use for a while, and calls wait behind the breaker (503 at once)
            // until a new connection reaches a writable primary.
            _ if e.is_read_only() => {
                self.read_only.mark();
                self.trip("the database takes no writes (read-only: a standby, or fenced)");
            }
            StoreError::Unreachable { .. } => self.trip(&crate::error_chain(e)),
            _ if e.is_pool_timeout() => {
                if self.checking.swap(true, Ordering::AcqRel) {
                    return;
                }
                let guard = self.clone();
                tokio::spawn(async move {
                    let reachable = tokio::time::timeout(PROBE_TIMEOUT, guard.reachable())
                        .await
                        .unwrap_or(false);
                    if !reachable {
                        guard.trip("no pool connection in time, and no new connection opens");
                    }
                    guard.checking.store(false, Ordering::Release);
                });
            }
            _ => {}
        }
    }
}

/// How long after a connection reported the server read-only every pooled connection is
/// checked before use: the others were most likely opened to the same server.
const READ_ONLY_SUSPECT: Duration = Duration::from_secs(60);

/// When a connection last reported the server read-only (milliseconds since the pool began;
/// 0: never). Checked before a pooled connection is handed out.
#[derive(Debug)]
pub(crate) struct ReadOnlySeen {
    start: std::time::Instant,
    at_ms: AtomicU64,
}

impl ReadOnlySeen {
    pub(crate) fn new() -> Self {
        Self {
            start: std::time::Instant::now(),
            at_ms: AtomicU64::new(0),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }

    pub(crate) fn mark(&self) {
        self.at_ms.store(self.now_ms(), Ordering::Release);
    }

    pub(crate) fn suspect(&self) -> bool {
        let at = self.at_ms.load(Ordering::Acquire);
        at != 0 && self.now_ms().saturating_sub(at) < READ_ONLY_SUSPECT.as_millis() as u64
    }
}
