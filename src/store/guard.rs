//! A [`Store`] behind a circuit breaker, for database servers that can be down.
//!
//! Without it, every request while PostgreSQL refuses connections waits the whole pool timeout
//! (5 s by default) before its 503, and a handful of clients occupy the service. With it, the
//! first failure that shows the server unreachable opens the breaker; every call then fails at
//! once with [`StoreError::Unreachable`] until a background probe opens a connection again.
//!
//! A pool timeout alone does not prove the server down (the pool may merely be busy): the
//! breaker opens on one only if a fresh connection, opened apart from the pool, fails too.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{AuditEntry, Outcome, PoolState, RowCounts, SqlStore, Store, StoreError, WritePolicy};
use crate::breaker::Breaker;
use crate::domain::{
    Actor, Applied, CardCommand, CardNumber, CardView, Identity, Refusal, Registered, Registration,
};

/// How long one reachability probe may take.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

#[derive(Clone)]
pub struct Guarded {
    inner: Arc<SqlStore>,
    /// `None`: every call passes straight through (a database that cannot be down: a file).
    breaker: Option<Arc<Breaker>>,
    /// A reachability check after a pool timeout is under way (one at a time).
    checking: Arc<AtomicBool>,
}

impl Guarded {
    pub fn new(inner: Arc<SqlStore>) -> Self {
        Self {
            inner,
            breaker: Some(Breaker::new("database")),
            checking: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The store without a breaker.
    pub fn unguarded(inner: Arc<SqlStore>) -> Self {
        Self {
            inner,
            breaker: None,
            checking: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The store behind the breaker, for the capabilities written beside their users.
    pub(crate) fn inner(&self) -> &SqlStore {
        &self.inner
    }

    fn admit(&self) -> Result<(), StoreError> {
        if self.breaker.as_ref().is_some_and(|b| b.is_open()) {
            return Err(StoreError::Unreachable {
                context: "reach the database",
                source: "the database was found unreachable; waiting for a probe to succeed".into(),
            });
        }
        Ok(())
    }

    fn trip(&self, why: &str) {
        let Some(breaker) = &self.breaker else {
            return;
        };
        let inner = self.inner.clone();
        breaker.trip(why, move || reachable(inner.clone()));
    }

    /// Looks at a failure: opens the breaker when it shows the server unreachable.
    fn observe(&self, e: &StoreError) {
        if self.breaker.is_none() {
            return;
        }
        match e {
            // Every pooled connection probably leads to the same read-only server: they are
            // checked before use for a while, and calls wait behind the breaker (503 at once)
            // until a new connection reaches a writable primary.
            _ if e.is_read_only() => {
                self.inner.read_only_seen();
                self.trip("the database takes no writes (read-only: a standby, or fenced)");
            }
            StoreError::Unreachable { .. } => self.trip(&crate::error_chain(e)),
            _ if e.is_pool_timeout() => {
                if self.checking.swap(true, Ordering::AcqRel) {
                    return;
                }
                let guarded = self.clone();
                tokio::spawn(async move {
                    if !reachable(guarded.inner.clone()).await {
                        guarded.trip("no pool connection in time, and no new connection opens");
                    }
                    guarded.checking.store(false, Ordering::Release);
                });
            }
            _ => {}
        }
    }

    /// Runs a call unless the database is known to be unreachable, and looks at its failure.
    pub(crate) async fn call<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.admit()?;
        let result = work.await;
        if let Err(e) = &result {
            self.observe(e);
        }
        result
    }
}

/// Whether a new connection opens within [`PROBE_TIMEOUT`].
async fn reachable(store: Arc<SqlStore>) -> bool {
    tokio::time::timeout(PROBE_TIMEOUT, store.reachable())
        .await
        .unwrap_or(false)
}

#[async_trait]
impl Store for Guarded {
    async fn register(
        &self,
        registration: &Registration,
        identity: Option<&Identity>,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Registered>, StoreError> {
        self.call(self.inner.register(registration, identity, at, policy))
            .await
    }

    async fn apply(
        &self,
        card: &CardNumber,
        command: &CardCommand,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError> {
        self.call(self.inner.apply(card, command, actor, at, policy))
            .await
    }

    async fn card(&self, card: &CardNumber) -> Result<Option<CardView>, StoreError> {
        self.call(self.inner.card(card)).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.call(self.inner.ping()).await
    }

    async fn count_rows(&self) -> Result<RowCounts, StoreError> {
        self.call(self.inner.count_rows()).await
    }

    async fn audit_trail(&self, card: &CardNumber) -> Result<Vec<AuditEntry>, StoreError> {
        self.call(self.inner.audit_trail(card)).await
    }

    async fn probe_write(&self, instance: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.call(self.inner.probe_write(instance, at)).await
    }

    async fn reachable(&self) -> bool {
        self.inner.reachable().await
    }

    fn pool(&self) -> Option<PoolState> {
        self.inner.pool()
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.call(self.inner.take_lease(name, holder, ttl, at))
            .await
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        self.call(self.inner.drop_lease(name, holder)).await
    }
}
