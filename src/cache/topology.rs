//! Where the cache's Redis is, by URL: one server, a master that Redis Sentinel names, or a
//! Redis Cluster.
//!
//! - `redis://` and `rediss://`: one server (or one endpoint that follows the master). The
//!   connection is re-made to the same address when it drops.
//! - `redis+sentinel://[user:password@]host1:26379,host2:26379/MASTER[/db]` (and
//!   `rediss+sentinel://`, TLS to the sentinels and the master): the sentinels are asked which
//!   server is the master `MASTER` whenever a connection is made, and the connection is
//!   re-made, through them, when it drops, times out or is told `READONLY` (the master it was
//!   made to was demoted). The user and password are the master's; sentinels that require
//!   their own are given them as `?sentinel_username=…&sentinel_password=…`.
//! - `redis+cluster://[user:password@]host1:6379,host2:6379` (and `rediss+cluster://`): any
//!   nodes of a Redis Cluster, from which the client learns the others and the slots; commands
//!   go to the primary of their key's slot and follow `MOVED`/`ASK` after a failover or a
//!   resharding. See [`super::RedisCache`] for what is sent where.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    AsyncConnectionConfig, Cmd, ConnectionAddr, Pipeline, RedisFuture, RedisResult, Value,
};

/// The URL's shape, parsed; never shown whole (it may hold a password).
#[derive(Clone, PartialEq, Eq)]
pub enum Topology {
    /// One server: the URL as the Redis client takes it.
    Single(String),
    Sentinel(SentinelSpec),
    Cluster(ClusterSpec),
}

#[derive(Clone, PartialEq, Eq)]
pub struct ClusterSpec {
    pub tls: bool,
    /// Nodes to learn the cluster from (any of them, primaries or replicas).
    pub nodes: Vec<(String, u16)>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for ClusterSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterSpec")
            .field("tls", &self.tls)
            .field("nodes", &self.nodes)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .finish()
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct SentinelSpec {
    pub tls: bool,
    pub sentinels: Vec<(String, u16)>,
    pub master: String,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sentinels' own credentials, when they require them (`?sentinel_username=…&
    /// sentinel_password=…`).
    pub sentinel_username: Option<String>,
    pub sentinel_password: Option<String>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Single(_) => f.write_str("Single(<url>)"),
            Self::Sentinel(spec) => f.debug_tuple("Sentinel").field(spec).finish(),
            Self::Cluster(spec) => f.debug_tuple("Cluster").field(spec).finish(),
        }
    }
}

impl std::fmt::Debug for SentinelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SentinelSpec")
            .field("tls", &self.tls)
            .field("sentinels", &self.sentinels)
            .field("master", &self.master)
            .field("db", &self.db)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("sentinel_username", &self.sentinel_username)
            .field(
                "sentinel_password",
                &self.sentinel_password.as_ref().map(|_| "<hidden>"),
            )
            .finish()
    }
}

/// The sentinels' usual port.
const SENTINEL_PORT: u16 = 26379;
/// Redis's usual port (cluster nodes).
const REDIS_PORT: u16 = 6379;

/// The part of a multi-host URL after the scheme: credentials, hosts, path segments, query.
struct HostList<'a> {
    username: Option<String>,
    password: Option<String>,
    hosts: Vec<(String, u16)>,
    path: Vec<&'a str>,
    query: &'a str,
}

impl<'a> HostList<'a> {
    /// `[user:password@]host1[:port],host2[:port][/path…][?query]`; `what` names the hosts in
    /// messages.
    fn parse(rest: &'a str, default_port: u16, what: &str) -> Result<Self, String> {
        let (rest, query) = rest.split_once('?').unwrap_or((rest, ""));
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let (userinfo, hosts) = match authority.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, authority),
        };
        let (username, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pass)) => (
                    Some(decode(user)).filter(|u| !u.is_empty()),
                    Some(decode(pass)),
                ),
                None => (Some(decode(u)).filter(|u| !u.is_empty()), None),
            },
        };
        let mut list = Vec::new();
        for host in hosts.split(',').filter(|h| !h.is_empty()) {
            let (name, port) = match host.rsplit_once(':') {
                Some((name, port)) if !name.ends_with(']') || host.starts_with('[') => {
                    let port = port
                        .parse()
                        .map_err(|_| format!("a {what}'s port is not a number"))?;
                    (name, port)
                }
                _ => (host, default_port),
            };
            list.push((name.trim_matches(['[', ']']).to_owned(), port));
        }
        Ok(Self {
            username,
            password,
            hosts: list,
            path: path.split('/').filter(|s| !s.is_empty()).collect(),
            query,
        })
    }
}

/// A percent-encoded URL part, decoded.
fn decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={s}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

impl Topology {
    /// Parses a cache URL; the error says what is wrong without repeating the URL.
    pub fn parse(url: &str) -> Result<Self, String> {
        let (scheme, rest) = url.split_once("://").ok_or(
            "not a URL (expected redis://, rediss://, redis+sentinel:// or redis+cluster://)",
        )?;
        let (tls, cluster) = match scheme {
            "redis" | "rediss" | "unix" | "redis+unix" => {
                redis::IntoConnectionInfo::into_connection_info(url).map_err(
                    |_| "not a Redis URL such as redis://127.0.0.1:6379/0 or rediss://host:6380/0",
                )?;
                return Ok(Self::Single(url.to_owned()));
            }
            "redis+sentinel" => (false, false),
            "rediss+sentinel" => (true, false),
            "redis+cluster" => (false, true),
            "rediss+cluster" => (true, true),
            _ => {
                return Err(format!(
                    "unsupported scheme {scheme}:// (expected redis://, rediss://, \
                     redis+sentinel://, rediss+sentinel://, redis+cluster:// or \
                     rediss+cluster://)"
                ));
            }
        };
        if cluster {
            let list = HostList::parse(rest, REDIS_PORT, "node")?;
            if !list.query.is_empty() {
                return Err("redis+cluster:// takes no parameters".into());
            }
            if list.hosts.is_empty() {
                return Err("redis+cluster:// names no node (host:port, comma-separated)".into());
            }
            // A cluster has one database; `/0` is accepted as the same.
            if !matches!(list.path.as_slice(), [] | ["0"]) {
                return Err(
                    "redis+cluster:// takes no database (a Redis Cluster has only database 0)"
                        .into(),
                );
            }
            return Ok(Self::Cluster(ClusterSpec {
                tls,
                nodes: list.hosts,
                username: list.username,
                password: list.password,
            }));
        }
        let list = HostList::parse(rest, SENTINEL_PORT, "sentinel")?;
        let (mut sentinel_username, mut sentinel_password) = (None, None);
        for (name, value) in url::form_urlencoded::parse(list.query.as_bytes()) {
            match name.as_ref() {
                "sentinel_username" => sentinel_username = Some(value.into_owned()),
                "sentinel_password" => sentinel_password = Some(value.into_owned()),
                _ => {
                    return Err(format!(
                        "redis+sentinel:// takes no parameter {name} (only sentinel_username \
                         and sentinel_password)"
                    ));
                }
            }
        }
        if list.hosts.is_empty() {
            return Err("redis+sentinel:// names no sentinel (host:port, comma-separated)".into());
        }
        let mut segments = list.path.iter();
        let master = (*segments
            .next()
            .ok_or("redis+sentinel:// names no master: …/MASTER[/db]")?)
        .to_owned();
        let db = match segments.next() {
            None => 0,
            Some(db) => db
                .parse()
                .map_err(|_| "the database after the master's name is not a number".to_owned())?,
        };
        if segments.next().is_some() {
            return Err("redis+sentinel://…/MASTER[/db]: too many path segments".into());
        }
        Ok(Self::Sentinel(SentinelSpec {
            tls,
            sentinels: list.hosts,
            master,
            db,
            username: list.username,
            password: list.password,
            sentinel_username,
            sentinel_password,
        }))
    }

    /// Whether the connections are TLS (`rediss`).
    pub fn over_tls(&self) -> bool {
        match self {
            Self::Single(url) => url.starts_with("rediss:"),
            Self::Sentinel(spec) => spec.tls,
            Self::Cluster(spec) => spec.tls,
        }
    }
}

/// One connection to the cache's Redis, whichever the topology: what every command is sent on.
#[derive(Clone)]
pub(super) enum CacheConn {
    Single(ConnectionManager),
    Sentinel(SentinelConn),
    /// Connections to every primary (made in the background, re-made and re-routed by the
    /// client after a failover or a resharding).
    Cluster(super::cluster::ClusterConn),
}

impl CacheConn {
    pub(super) fn is_cluster(&self) -> bool {
        matches!(self, Self::Cluster(_))
    }

    pub(super) fn cluster(&self) -> Option<&super::cluster::ClusterConn> {
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

/// A TCP address, over TLS (verified against the roots or the CA given) when `tls`.
pub(super) fn tcp_addr(host: &str, port: u16, tls: bool) -> ConnectionAddr {
    if tls {
        ConnectionAddr::TcpTls {
            host: host.to_owned(),
            port,
            insecure: false,
            tls_params: None,
        }
    } else {
        ConnectionAddr::Tcp(host.to_owned(), port)
    }
}

/// A client for `addr` with these credentials, and the certificates over TLS.
pub(super) fn client_for(
    addr: ConnectionAddr,
    (username, password): (Option<&str>, Option<&str>),
    certificates: Option<&redis::TlsCertificates>,
) -> RedisResult<redis::Client> {
    let tls = matches!(addr, ConnectionAddr::TcpTls { .. });
    let mut info = redis::IntoConnectionInfo::into_connection_info(addr)?;
    let mut settings = info.redis_settings().clone();
    if let Some(username) = username {
        settings = settings.set_username(username);
    }
    if let Some(password) = password {
        settings = settings.set_password(password);
    }
    info = info.set_redis_settings(settings);
    match certificates {
        Some(c) if tls => redis::Client::build_with_tls(info, c.clone()),
        _ => redis::Client::open(info),
    }
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
    super::redis::shows_down(e)
        || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
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

#[cfg(test)]
mod tests {
    use super::{ClusterSpec, SentinelSpec, Topology};

    #[test]
    fn cluster_urls_name_any_nodes_and_no_database() {
        assert_eq!(
            Topology::parse("redis+cluster://n1:7000,n2,[::1]:7001"),
            Ok(Topology::Cluster(ClusterSpec {
                tls: false,
                nodes: vec![
                    ("n1".into(), 7000),
                    ("n2".into(), 6379),
                    ("::1".into(), 7001)
                ],
                username: None,
                password: None,
            }))
        );
        let Ok(Topology::Cluster(spec)) = Topology::parse("rediss+cluster://cps:p%40ss@n1/0")
        else {
            panic!("a cluster URL with credentials");
        };
        assert!(spec.tls);
        assert_eq!(spec.username.as_deref(), Some("cps"));
        assert_eq!(spec.password.as_deref(), Some("p@ss"));
        assert!(!format!("{spec:?}").contains("p@ss"));
        for bad in [
            "redis+cluster://",
            "redis+cluster://n1/2",
            "redis+cluster://n1:x",
            "redis+cluster://n1?password=x",
        ] {
            assert!(Topology::parse(bad).is_err(), "{bad} taken");
        }
    }

    #[test]
    fn urls_name_one_server_or_the_sentinels_of_a_master() {
        assert!(matches!(
            Topology::parse("redis://127.0.0.1:6379/0"),
            Ok(Topology::Single(_))
        ));
        assert!(Topology::parse("rediss://cache:6380").unwrap().over_tls());
        assert_eq!(
            Topology::parse("redis+sentinel://s1:26380,s2,[::1]:26381/cache/2"),
            Ok(Topology::Sentinel(SentinelSpec {
                tls: false,
                sentinels: vec![
                    ("s1".into(), 26380),
                    ("s2".into(), 26379),
                    ("::1".into(), 26381)
                ],
                master: "cache".into(),
                db: 2,
                username: None,
                password: None,
                sentinel_username: None,
                sentinel_password: None,
            }))
        );
        let Ok(Topology::Sentinel(spec)) =
            Topology::parse("redis+sentinel://s1/cache?sentinel_password=s%26cret")
        else {
            panic!("a sentinel URL with the sentinels' password");
        };
        assert_eq!(spec.sentinel_password.as_deref(), Some("s&cret"));
        assert!(!format!("{spec:?}").contains("s&cret"));
        let Ok(Topology::Sentinel(spec)) =
            Topology::parse("rediss+sentinel://cps:p%40ss@s1:26379/cache")
        else {
            panic!("a sentinel URL");
        };
        assert!(spec.tls);
        assert_eq!(spec.username.as_deref(), Some("cps"));
        assert_eq!(spec.password.as_deref(), Some("p@ss"));
        assert_eq!(spec.db, 0);
        for bad in [
            "redis+sentinel://s1:26379",
            "redis+sentinel:///cache",
            "redis+sentinel://s1:x/cache",
            "redis+sentinel://s1/cache/x",
            "memcached://m:11211",
            "redis://:x:y@h:z",
            "redis+sentinel://s1/cache?password=x",
        ] {
            let e = Topology::parse(bad)
                .err()
                .unwrap_or_else(|| panic!("{bad} taken"));
            assert!(!e.contains("s1:"), "{e}");
        }
    }
}
