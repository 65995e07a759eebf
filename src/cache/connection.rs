//! One connection to the cache's Redis, whichever its topology ([`super::topology`]): what
//! every command is sent on. Under Sentinel it is made again, through the sentinels, when it
//! fails; under Cluster the router ([`super::cluster`]) sends each command to its slot's node.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, RedisFuture, RedisResult, Value,
};

use super::cluster::ClusterConn;
use super::node::{client_for, shows_down, tcp_addr};
use super::topology::SentinelSpec;

/// One connection to the cache's Redis, whichever the topology: what every command is sent on.
#[derive(Clone)]
pub(super) enum CacheConn {
    Single(ConnectionManager),
    Sentinel(SentinelConn),
    /// Connections to every primary (made in the background, re-made and re-routed by the
    /// client after a failover or a resharding).
    Cluster(ClusterConn),
}

impl CacheConn {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    pub(super) fn cluster(&self) -> Option<&ClusterConn> {
        match self {
            Self::Cluster(conn) => Some(conn),
            _ => None,
        }
    }
}

impl ConnectionLike for CacheConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Sentinel(conn) => {
                Box::pin(conn.run(move |mut c| async move { c.req_packed_command(cmd).await }))
            }
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Sentinel(conn) => Box::pin(conn.run(move |mut c| async move {
                c.req_packed_commands(pipeline, offset, count).await
            })),
            Self::Cluster(conn) => conn.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(conn) => conn.get_db(),
            Self::Sentinel(conn) => conn.inner.db,
            Self::Cluster(_) => 0,
        }
    }
}

/// A connection to the master the sentinels name, made again through them when it fails.
#[derive(Clone)]
pub(super) struct SentinelConn {
    inner: Arc<SentinelInner>,
}

struct SentinelInner {
    /// Asked for the master's address; one question at a time.
    sentinel: tokio::sync::Mutex<SentinelClient>,
    /// The connection in use, with its generation: a failure forgets only the connection it
    /// happened on, not a newer one another command made meanwhile.
    current: Mutex<Option<(u64, MultiplexedConnection)>>,
    generation: std::sync::atomic::AtomicU64,
    config: AsyncConnectionConfig,
    timeout: Duration,
    db: i64,
}

/// The sentinels' addresses.
fn sentinel_addrs(spec: &SentinelSpec) -> Vec<ConnectionAddr> {
    spec.sentinels
        .iter()
        .map(|(host, port)| tcp_addr(host, *port, spec.tls))
        .collect()
}

/// A client per sentinel, for its announcements.
fn sentinel_clients(
    spec: &SentinelSpec,
    certificates: Option<&redis::TlsCertificates>,
) -> Vec<redis::Client> {
    sentinel_addrs(spec)
        .into_iter()
        .filter_map(|addr| {
            client_for(
                addr,
                (
                    spec.sentinel_username.as_deref(),
                    spec.sentinel_password.as_deref(),
                ),
                certificates,
            )
            .ok()
        })
        .collect()
}

/// Listens to the sentinels' `+switch-master` announcements (one sentinel at a time, the next
/// one when it goes) and drops the connection when `master` moves. Ends once the connection
/// it serves is gone.
async fn watch_switches(
    inner: std::sync::Weak<SentinelInner>,
    sentinels: Vec<redis::Client>,
    master: String,
) {
    use futures_util::StreamExt as _;
    loop {
        for client in &sentinels {
            let Ok(Ok(mut pubsub)) =
                tokio::time::timeout(Duration::from_secs(5), client.get_async_pubsub()).await
            else {
                continue;
            };
            if pubsub.subscribe("+switch-master").await.is_err() {
                continue;
            }
            let mut messages = pubsub.into_on_message();
            loop {
                if inner.strong_count() == 0 {
                    return;
                }
                match tokio::time::timeout(Duration::from_secs(5), messages.next()).await {
                    // Quiet: check that the connection is still wanted, and listen on.
                    Err(_) => continue,
                    // This sentinel is gone: the next one.
                    Ok(None) => break,
                    Ok(Some(message)) => {
                        // "<master name> <old ip> <old port> <new ip> <new port>"
                        let payload: String = message.get_payload().unwrap_or_default();
                        if payload.split(' ').next() == Some(master.as_str())
                            && let Some(serving) = inner.upgrade()
                        {
                            tracing::warn!(
                                master = %master,
                                "Redis Sentinel moved the master: reconnecting to the new one"
                            );
                            *serving.lock_current() = None;
                        }
                    }
                }
            }
        }
        if inner.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

impl SentinelInner {
    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<(u64, MultiplexedConnection)>> {
        self.current
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A failure after which the connection is made again through the sentinels: the server is
/// gone, hung, or no longer the master.
fn needs_master(e: &redis::RedisError) -> bool {
    shows_down(e) || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

impl SentinelConn {
    pub(super) fn new(
        spec: &SentinelSpec,
        timeout: Duration,
        certificates: Option<redis::TlsCertificates>,
    ) -> RedisResult<Self> {
        let addrs = sentinel_addrs(spec);
        let mut builder =
            SentinelClientBuilder::new(addrs, &spec.master, SentinelServerType::Master)?
                .set_client_to_redis_db(spec.db);
        if spec.tls {
            builder = builder
                .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
                .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure);
            if let Some(certificates) = &certificates {
                builder = builder
                    .set_client_to_redis_certificates(certificates.clone())
                    .set_client_to_sentinel_certificates(certificates.clone());
            }
        }
        if let Some(username) = &spec.username {
            builder = builder.set_client_to_redis_username(username);
        }
        if let Some(password) = &spec.password {
            builder = builder.set_client_to_redis_password(password);
        }
        if let Some(username) = &spec.sentinel_username {
            builder = builder.set_client_to_sentinel_username(username);
        }
        if let Some(password) = &spec.sentinel_password {
            builder = builder.set_client_to_sentinel_password(password);
        }
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let conn = Self {
            inner: Arc::new(SentinelInner {
                sentinel: tokio::sync::Mutex::new(builder.build()?),
                current: Mutex::new(None),
                generation: std::sync::atomic::AtomicU64::new(0),
                config,
                timeout,
                db: spec.db,
            }),
        };
        // A failover the sentinels announce drops the connection at once: the demoted master
        // may take writes for seconds more (until the sentinels reconfigure it), and every one
        // of them would be lost when it turns replica.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let clients = sentinel_clients(spec, certificates.as_ref());
            runtime.spawn(watch_switches(
                Arc::downgrade(&conn.inner),
                clients,
                spec.master.clone(),
            ));
        }
        Ok(conn)
    }

    /// The connection in use, or a new one to the master the sentinels name now.
    async fn connection(&self) -> RedisResult<(u64, MultiplexedConnection)> {
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let mut sentinel = self.inner.sentinel.lock().await;
        // Another command may have made one while this one waited.
        if let Some(current) = self.current() {
            return Ok(current);
        }
        let made = tokio::time::timeout(self.inner.timeout * 2, async {
            let client = sentinel.async_get_client().await?;
            client
                .get_multiplexed_async_connection_with_config(&self.inner.config)
                .await
        })
        .await
        .map_err(|_| {
            redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no master found through the sentinels in time",
            ))
        })??;
        drop(sentinel);
        let generation = self
            .inner
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel)
            + 1;
        *self.lock_current() = Some((generation, made.clone()));
        Ok((generation, made))
    }

    fn lock_current(&self) -> std::sync::MutexGuard<'_, Option<(u64, MultiplexedConnection)>> {
        self.inner.lock_current()
    }

    fn current(&self) -> Option<(u64, MultiplexedConnection)> {
        self.lock_current().clone()
    }

    /// Drops the connection of `generation` (if still in use): the next command asks the
    /// sentinels again.
    fn forget(&self, generation: u64) {
        let mut current = self.lock_current();
        if current.as_ref().is_some_and(|(g, _)| *g == generation) {
            *current = None;
        }
    }

    /// Runs `command` on the master's connection. When the connection fails or the server says
    /// it is no longer the master, the connection is dropped; a command refused at once
    /// (`READONLY`, a connection refused or dropped) is sent once more on a connection to the
    /// master the sentinels name now. Every command this cache sends may be sent twice: writes
    /// are version-guarded, the rest read or set the same value. One that timed out is not
    /// sent again (the cashier's wait stays one timeout).
    async fn run<T, F, Fut>(&self, command: F) -> RedisResult<T>
    where
        F: Fn(MultiplexedConnection) -> Fut,
        Fut: std::future::Future<Output = RedisResult<T>>,
    {
        let (generation, conn) = self.connection().await?;
        match command(conn).await {
            Err(e) if needs_master(&e) => {
                self.forget(generation);
                if e.is_timeout() {
                    return Err(e);
                }
                tracing::info!(error = %e, "Redis: asking the sentinels for the master again");
                let (_, conn) = self.connection().await?;
                command(conn).await
            }
            done => done,
        }
    }
}
