//! Writing and reading the cache hashes in Redis.
//!
//! One multiplexed connection (cloned per call, no pool), created lazily so that the service
//! starts and serves while Redis is down; it reconnects by itself, through the sentinels when
//! the URL names them (see [`super::topology`]). Timeouts are explicit because a cashier waits
//! on every write.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::try_join_all;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, Script};

use super::HashWrite;
use super::cluster::ClusterConn;
use super::connection::{CacheConn, SentinelConn};
use super::node::shows_down;
use super::topology::{ClusterSpec, SentinelSpec, Topology};
use crate::breaker::Breaker;

/// Version-guarded writes of one or more keys. ARGV[1] is the mode; then, for each key in
/// KEYS, its version, its member ('' for a whole hash), the number of field/value pairs, and the
/// pairs. Returns, per key, 1 written, 0 already current, -1 newer in Redis. Atomic, being one
/// script. Several keys per call because a bulk rebuild is bounded by Redis's time per hash,
/// and a call's dispatch is a good part of it (see [`PIPELINE`]). Keys of one call must share
/// a slot on Redis Cluster.
///
/// A whole hash (`Version`) is replaced when Redis holds an older version or none, and left
/// when Redis holds a newer one. At the same version it is left too — except in repair mode
/// (mode 'r', rebuilds), which rewrites it when its contents differ (drift: edited by hand,
/// written by an older tool). Forced (mode '1'): always.
///
/// A member's entry in a hash that members share (the PIN index) is guarded the same way by
/// the member's own `Version.{member}`, which stays after the member leaves (no pair given), so
/// that a stale write cannot bring it back; the other members' fields are never touched.
const WRITE_SCRIPT: &str = r"
local mode = ARGV[1]
local results = {}
local at = 2
for k = 1, #KEYS do
  local key = KEYS[k]
  local version, member, n = ARGV[at], ARGV[at + 1], tonumber(ARGV[at + 2])
  local first, last = at + 3, at + 2 + 2 * n
  at = last + 1
  local version_field = 'Version'
  if member ~= '' then
    version_field = 'Version.' .. member
  end
  local result = 1
  local current = redis.call('HGET', key, version_field)
  if mode ~= '1' and current and tonumber(current) then
    local have, want = tonumber(current), tonumber(version)
    if have > want then
      result = -1
    elseif have == want then
      result = 0
      if mode == 'r' then
        local same
        if member ~= '' then
          same = redis.call('HGET', key, member) == (n > 0 and ARGV[first + 1] or false)
        else
          same = redis.call('HLEN', key) == n + 1
          for i = first, last, 2 do
            if same and redis.call('HGET', key, ARGV[i]) ~= ARGV[i + 1] then
              same = false
            end
          end
        end
        if not same then
          result = 1
        end
      end
    end
  end
  if result == 1 then
    if member ~= '' then
      if n > 0 then
        redis.call('HSET', key, ARGV[first], ARGV[first + 1], version_field, version)
      else
        redis.call('HDEL', key, member)
        redis.call('HSET', key, version_field, version)
      end
    else
      redis.call('DEL', key)
      redis.call('HSET', key, 'Version', version, unpack(ARGV, first, last))
    end
  end
  results[k] = result
end
return results
";

/// Ends a refill: sets the marker (KEYS[2]) to the database id (ARGV[2]) only if the refill's
/// token (KEYS[1] = ARGV[1]) is still there — if Redis was emptied again meanwhile, the token is
/// gone with the rest and the cache is not marked complete.
const FINISH_REFILL_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[3], ARGV[3])
redis.call('DEL', KEYS[1])
return 1
";

/// The key that names the database the cache was last completely filled from. Missing (Redis
/// emptied, replaced, or never filled) or naming another database: the cache needs a refill.
/// Outside the `card:`/`customer:` namespaces ALCS reads; both keys share the hash tag `{meta}`
/// so that the script touching both runs on Redis Cluster.
const MARKER_KEY: &str = "cps:{meta}:filled-from";
/// Present while a refill runs; emptied along with everything else if Redis is flushed.
const REFILL_KEY: &str = "cps:{meta}:refilling";
/// The server (see [`RedisCache::server_identity`]) that was behind the cache when its last
/// complete fill started. Replicated with the marker: a failover or a restart leaves it naming
/// the old server, and every instance (one started after the switch too) sees that the cache
/// may lack writes until a repair completes and notes the new one.
const SERVER_KEY: &str = "cps:{meta}:filled-on";

#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("Redis failed to {context}")]
    Redis {
        context: &'static str,
        #[source]
        source: redis::RedisError,
    },
    /// A recent command timed out or could not connect; calls fail at once until a probe
    /// reaches Redis again.
    #[error("Redis is unreachable (failing fast until a probe reaches it again)")]
    Unreachable,
}

impl CacheError {
    /// Redis could not be reached (as opposed to refusing a command).
    pub fn is_unreachable(&self) -> bool {
        match self {
            Self::Unreachable => true,
            Self::Redis { source, .. } => shows_down(source),
        }
    }
}

/// What a version-guarded write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// The hash was (re)written.
    Written,
    /// Redis held exactly this version with these contents.
    Current,
    /// Redis holds a newer version; left alone.
    Newer,
}

trait Context<T> {
    fn context(self, context: &'static str) -> Result<T, CacheError>;
}

impl<T> Context<T> for redis::RedisResult<T> {
    fn context(self, context: &'static str) -> Result<T, CacheError> {
        self.map_err(|source| CacheError::Redis { context, source })
    }
}

/// Hashes per script call, and commands per pipeline in bulk reads: enough to pay one dispatch
/// for several hashes, few enough that the script's argument table stays small (measured,
/// rebuilding 1 M cards: Redis spent 31 s at 64 hashes per call, 21 s at 16, 22 s at 4).
const PIPELINE: usize = 16;

#[derive(Clone)]
pub struct RedisCache {
    conn: CacheConn,
    /// What the connection was made from, for [`RedisCache::with_own_connection`].
    source: Arc<ConnSource>,
    prefix: String,
    timeout: Duration,
    script: Script,
    breaker: Arc<Breaker>,
}

impl RedisCache {
    /// Checks the URL and prepares the connection; nothing is sent until the first command.
    /// Over TLS (`rediss://`, `rediss+sentinel://`), `tls` gives the CA to verify the servers
    /// with (instead of the system roots) and the client certificate to present. See
    /// [`Topology`] for the URLs.
    pub fn connect(
        url: &str,
        prefix: &str,
        timeout: Duration,
        tls: &crate::tls::ClientMaterial,
    ) -> Result<Self, CacheError> {
        let certificates =
            (tls.ca_pem.is_some() || tls.identity_pem.is_some()).then(|| redis::TlsCertificates {
                client_tls: tls
                    .identity_pem
                    .as_ref()
                    .map(|(cert, key)| redis::ClientTlsConfig {
                        client_cert: cert.clone(),
                        client_key: key.clone(),
                    }),
                root_cert: tls.ca_pem.clone(),
            });
        let topology = Topology::parse(url).map_err(|e| CacheError::Redis {
            context: "parse the Redis URL",
            source: redis::RedisError::from((
                redis::ErrorKind::InvalidClientConfig,
                "invalid URL",
                e,
            )),
        })?;
        let source = match topology {
            Topology::Single(url) => {
                let client = match certificates {
                    None => redis::Client::open(url),
                    Some(certificates) => redis::Client::build_with_tls(url, certificates),
                }
                .context("parse the Redis URL")?;
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout))
                    // Reconnect once per command at most: a request must not wait out a long
                    // retry loop, and the outbox retries later anyway.
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(100));
                ConnSource::Single { client, config }
            }
            Topology::Sentinel(spec) => ConnSource::Sentinel {
                spec,
                certificates,
                timeout,
            },
            Topology::Cluster(spec) => ConnSource::Cluster {
                spec,
                certificates,
                timeout,
            },
        };
        Ok(Self {
            conn: source.open()?,
            source: Arc::new(source),
            prefix: prefix.to_owned(),
            timeout,
            script: Script::new(WRITE_SCRIPT),
            breaker: Breaker::new("Redis"),
        })
    }

    /// The same cache over a connection of its own (the breaker shared): bulk work such as a
    /// refill queues many large calls, and Redis answers one connection's commands in order, so
    /// on the requests' connection each request's write would wait behind all of them; on two
    /// connections Redis takes turns.
    pub fn with_own_connection(&self) -> Result<Self, CacheError> {
        Ok(Self {
            conn: self.source.open()?,
            ..self.clone()
        })
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Opens when Redis times out or refuses connections; closes when a PING answers again.
    pub fn breaker(&self) -> &Arc<Breaker> {
        &self.breaker
    }

    /// Runs a command unless Redis is known to be unreachable; a failure that shows it
    /// unreachable opens the breaker, so later calls do not each wait the timeout.
    async fn guarded<T>(
        &self,
        command: impl Future<Output = Result<T, CacheError>>,
    ) -> Result<T, CacheError> {
        if self.breaker.is_open() {
            return Err(CacheError::Unreachable);
        }
        let result = command.await;
        if let Err(CacheError::Redis { source, .. }) = &result
            && shows_down(source)
        {
            let probe = self.clone();
            self.breaker.trip(&source.to_string(), move || {
                let probe = probe.clone();
                async move {
                    tokio::time::timeout(probe.timeout, probe.ping_unguarded())
                        .await
                        .is_ok_and(|r| r.is_ok())
                }
            });
        }
        result
    }

    /// Writes `hash` if it is newer than what Redis holds (always, when `force`): the path of
    /// every change.
    pub async fn write(&self, hash: &HashWrite, force: bool) -> Result<Written, CacheError> {
        self.write_mode(hash, if force { "1" } else { "0" }).await
    }

    /// Writes `hash` if it is newer than what Redis holds, or of the same version but different
    /// contents: the path of rebuilds, which repair drift.
    pub async fn repair(&self, hash: &HashWrite) -> Result<Written, CacheError> {
        self.write_mode(hash, "r").await
    }

    /// Rebuilds' batches: every hash written as [`RedisCache::repair`] (or forced), in script
    /// calls of [`PIPELINE`] hashes, all sent at once; answers in `hashes`' order.
    pub async fn repair_all(
        &self,
        hashes: &[HashWrite],
        force: bool,
    ) -> Result<Vec<Written>, CacheError> {
        let mode = if force { "1" } else { "r" };
        // Every call of the batch sent at once: Redis always has the next one queued while
        // this process encodes and decodes (the batch's size bounds them).
        let calls: Vec<_> = hashes
            .chunks(PIPELINE)
            .map(|chunk| self.write_all(chunk, mode))
            .collect();
        Ok(try_join_all(calls).await?.into_iter().flatten().collect())
    }

    /// What Redis holds of each of `hashes`, in pipelines of [`PIPELINE`] commands, all sent at
    /// once: a whole hash's fields (empty when the key does not exist), and of a member's
    /// entry only the member's own two fields (a shared hash may hold many members: it is not
    /// read whole for each of them).
    pub async fn read_all(
        &self,
        hashes: &[HashWrite],
    ) -> Result<Vec<BTreeMap<String, String>>, CacheError> {
        let reads: Vec<_> = hashes
            .chunks(PIPELINE)
            .map(|chunk| self.per_slot(chunk, |h| &h.key, |part| self.read_pipeline(part)))
            .collect();
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// One pipeline reading `hashes` (see [`Self::read_all`]).
    async fn read_pipeline(
        &self,
        hashes: Vec<&HashWrite>,
    ) -> Result<Vec<BTreeMap<String, String>>, CacheError> {
        let mut pipe = redis::pipe();
        for hash in &hashes {
            let key = self.key(&hash.key);
            match &hash.member {
                None => pipe.cmd("HGETALL").arg(key),
                Some(member) => pipe
                    .cmd("HMGET")
                    .arg(key)
                    .arg(member)
                    .arg(hash.version_field()),
            };
        }
        let read: Vec<redis::Value> = self
            .guarded(async {
                pipe.query_async(&mut self.conn.clone())
                    .await
                    .context("read cache hashes")
            })
            .await?;
        let mut all = Vec::with_capacity(hashes.len());
        for (hash, value) in hashes.iter().zip(read) {
            let fields = match &hash.member {
                None => redis::from_redis_value(value),
                Some(member) => {
                    redis::from_redis_value::<Vec<Option<String>>>(value).map(|values| {
                        [member.clone(), hash.version_field()]
                            .into_iter()
                            .zip(values)
                            .filter_map(|(field, value)| value.map(|v| (field, v)))
                            .collect()
                    })
                }
            }
            .map_err(redis::RedisError::from)
            .context("read cache hashes")?;
            all.push(fields);
        }
        Ok(all)
    }

    /// Whole hashes by key (without the prefix), in pipelines all sent at once; empty for a
    /// key that does not exist.
    pub async fn read_keys(
        &self,
        keys: &[String],
    ) -> Result<Vec<BTreeMap<String, String>>, CacheError> {
        let reads: Vec<_> = keys
            .chunks(PIPELINE)
            .map(|chunk| {
                self.per_slot(chunk, String::as_str, |part| {
                    let mut pipe = redis::pipe();
                    for key in part {
                        pipe.cmd("HGETALL").arg(self.key(key));
                    }
                    let mut conn = self.conn.clone();
                    self.guarded(async move {
                        pipe.query_async::<Vec<BTreeMap<String, String>>>(&mut conn)
                            .await
                            .context("read cache hashes")
                    })
                })
            })
            .collect();
        Ok(try_join_all(reads).await?.into_iter().flatten().collect())
    }

    /// A key as Redis holds it: `key` under the prefix.
    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// Runs `call` once for `items` on one server; on a cluster, once per hash slot their keys
    /// fall in (a cluster takes a script call or a pipeline only within one slot), all at once
    /// and all awaited. Returns the answers in `items`' order, or the first failure.
    async fn per_slot<'a, T, R, Fut>(
        &self,
        items: &'a [T],
        key: impl Fn(&'a T) -> &'a str,
        call: impl Fn(Vec<&'a T>) -> Fut,
    ) -> Result<Vec<R>, CacheError>
    where
        Fut: Future<Output = Result<Vec<R>, CacheError>>,
    {
        if !self.conn.is_cluster() {
            return call(items.iter().collect()).await;
        }
        let mut groups: Vec<(u16, Vec<usize>)> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let slot = super::cluster::slot(self.key(key(item)).as_bytes());
            match groups.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, group)) => group.push(i),
                None => groups.push((slot, vec![i])),
            }
        }
        let answers = futures_util::future::join_all(
            groups
                .iter()
                .map(|(_, group)| call(group.iter().map(|&i| &items[i]).collect())),
        )
        .await;
        let mut placed: Vec<Option<R>> =
            std::iter::repeat_with(|| None).take(items.len()).collect();
        for ((_, group), answer) in groups.iter().zip(answers) {
            for (&i, r) in group.iter().zip(answer?) {
                placed[i] = Some(r);
            }
        }
        placed
            .into_iter()
            .map(|r| {
                r.ok_or_else(|| CacheError::Redis {
                    context: "read cache answers",
                    source: redis::RedisError::from((
                        redis::ErrorKind::Client,
                        "fewer answers than commands",
                    )),
                })
            })
            .collect()
    }

    async fn write_mode(&self, hash: &HashWrite, mode: &str) -> Result<Written, CacheError> {
        let written = self.write_all(std::slice::from_ref(hash), mode).await?;
        Ok(written.into_iter().next().unwrap_or(Written::Current))
    }

    /// Writes each of `hashes` if it is newer than what Redis holds (the path of every change):
    /// one script call per hash, all sent in one round trip.
    pub async fn write_newer(&self, hashes: &[HashWrite]) -> Result<Vec<Written>, CacheError> {
        let started = std::time::Instant::now();
        let written = tracing::Instrument::instrument(
            self.write_all(hashes, "0"),
            tracing::info_span!("cache_write", hashes = hashes.len()),
        )
        .await;
        metrics::histogram!(crate::metrics::names::CACHE_WRITE).record(started.elapsed());
        if written.is_err() {
            metrics::counter!(crate::metrics::names::CACHE_WRITE_FAILURES).increment(1);
        }
        written
    }

    /// `hashes` written through [`WRITE_SCRIPT`]: one call (one round trip) on one server; on a
    /// cluster one per slot, all at once.
    async fn write_all(
        &self,
        hashes: &[HashWrite],
        mode: &str,
    ) -> Result<Vec<Written>, CacheError> {
        if hashes.is_empty() {
            return Ok(Vec::new());
        }
        self.per_slot(hashes, |h| &h.key, |part| self.write_call(part, mode))
            .await
    }

    /// One script call writing `hashes` (their keys in one slot on a cluster).
    async fn write_call(
        &self,
        hashes: Vec<&HashWrite>,
        mode: &str,
    ) -> Result<Vec<Written>, CacheError> {
        // By its digest; a server that does not have the script (restarted, flushed of
        // scripts, a replica promoted in a cluster) is sent the script itself, which it keeps.
        let call = |command: &str, script: &str| {
            let mut call = redis::cmd(command);
            call.arg(script).arg(hashes.len());
            for hash in &hashes {
                call.arg(self.key(&hash.key));
            }
            call.arg(mode);
            for hash in &hashes {
                call.arg(hash.version)
                    .arg(hash.member.as_deref().unwrap_or(""))
                    .arg(hash.fields.len());
                for (field, value) in &hash.fields {
                    call.arg(field).arg(value);
                }
            }
            call
        };
        let written: Vec<i64> = self
            .guarded(async {
                let mut conn = self.conn.clone();
                match call("EVALSHA", self.script.get_hash())
                    .query_async(&mut conn)
                    .await
                {
                    Err(e)
                        if e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) =>
                    {
                        call("EVAL", WRITE_SCRIPT).query_async(&mut conn).await
                    }
                    done => done,
                }
                .context("write a cache hash")
            })
            .await?;
        Ok(written
            .into_iter()
            .map(|w| match w {
                1 => Written::Written,
                0 => Written::Current,
                _ => Written::Newer,
            })
            .collect())
    }

    /// A hash's fields (empty when the key does not exist); `key` is without the prefix.
    pub async fn read(&self, key: &str) -> Result<BTreeMap<String, String>, CacheError> {
        self.guarded(async {
            self.conn
                .clone()
                .hgetall(self.key(key))
                .await
                .context("read a cache hash")
        })
        .await
    }

    /// A SCAN over the keys under the prefix that start with `kind` (`""`: all of them), page
    /// by page: on a cluster, every primary's keys in turn (the primaries as the cluster names
    /// them now; one that does not answer fails the scan rather than leave its keys out).
    pub async fn scan(&self, kind: &str) -> Result<KeyScan, CacheError> {
        let nodes = match self.conn.cluster() {
            None => vec![None],
            Some(cluster) => self
                .guarded(async {
                    cluster
                        .primaries()
                        .await
                        .context("list the cluster's primaries")
                })
                .await?
                .into_iter()
                .map(Some)
                .collect(),
        };
        Ok(KeyScan {
            cache: self.clone(),
            pattern: format!("{}{kind}*", glob_escape(&self.prefix)),
            nodes,
            cursor: 0,
        })
    }

    pub async fn ping(&self) -> Result<(), CacheError> {
        self.guarded(self.ping_unguarded()).await
    }

    async fn ping_unguarded(&self) -> Result<(), CacheError> {
        if let Some(cluster) = self.conn.cluster() {
            return cluster.ping_all().await.context("answer PING");
        }
        redis::cmd("PING")
            .query_async::<String>(&mut self.conn.clone())
            .await
            .context("answer PING")
            .map(drop)
    }

    /// Which server, in which replication history, answers for the cache: its `run_id` (new
    /// at every start) and `master_replid` (new when a replica is promoted). Either changing
    /// means the server behind the cache changed (a failover, a restart), and writes
    /// acknowledged by the old one may be missing. On a cluster, every primary's, in a stable
    /// order: one shard's failover or restart changes it.
    pub async fn server_identity(&self) -> Result<String, CacheError> {
        const CONTEXT: &str = "read the server's identity";
        self.guarded(async {
            let mut conn = self.conn.clone();
            let Some(cluster) = self.conn.cluster() else {
                let (server, replication): (String, String) = redis::pipe()
                    .cmd("INFO")
                    .arg("server")
                    .cmd("INFO")
                    .arg("replication")
                    .query_async(&mut conn)
                    .await
                    .context(CONTEXT)?;
                return Ok(identity(&server, &replication));
            };
            let mut each = Vec::new();
            for addr in cluster.primaries().await.context(CONTEXT)? {
                let section = async |name: &str| -> Result<String, CacheError> {
                    cluster
                        .on_node(&addr, redis::cmd("INFO").arg(name))
                        .await
                        .context(CONTEXT)
                };
                let server = section("server").await?;
                let replication = section("replication").await?;
                each.push(identity(&server, &replication));
            }
            each.sort();
            Ok(each.join(","))
        })
        .await
    }

    /// What the cache was last completely filled from (read together: one round trip).
    pub async fn fill_state(&self) -> Result<FillState, CacheError> {
        let (database, server) = self
            .guarded(async {
                redis::pipe()
                    .get(self.key(MARKER_KEY))
                    .get(self.key(SERVER_KEY))
                    .query_async(&mut self.conn.clone())
                    .await
                    .context("read the cache marker")
            })
            .await?;
        Ok(FillState { database, server })
    }

    /// Notes `server` as the one the cache was filled on, unless one is noted: a cache marked
    /// filled before servers were noted.
    pub async fn note_server(&self, server: &str) -> Result<(), CacheError> {
        self.guarded(async {
            self.conn
                .clone()
                .set_nx::<_, _, ()>(self.key(SERVER_KEY), server)
                .await
                .context("note the server behind the cache")
        })
        .await
    }

    /// Notes that a refill with `token` started (see [`Self::finish_refill`]).
    pub async fn start_refill(&self, token: &str) -> Result<(), CacheError> {
        self.guarded(async {
            self.conn
                .clone()
                .set(self.key(REFILL_KEY), token)
                .await
                .context("note a refill")
        })
        .await
    }

    /// Marks the cache completely filled from `database_id` on `server` (the one behind the
    /// cache when the refill started), if the refill `token` started is still noted (Redis
    /// was not emptied meanwhile). Returns whether it was marked.
    pub async fn finish_refill(
        &self,
        token: &str,
        database_id: &str,
        server: &str,
    ) -> Result<bool, CacheError> {
        let marked: i64 = self
            .guarded(async {
                Script::new(FINISH_REFILL_SCRIPT)
                    .key(self.key(REFILL_KEY))
                    .key(self.key(MARKER_KEY))
                    .key(self.key(SERVER_KEY))
                    .arg(token)
                    .arg(database_id)
                    .arg(server)
                    .invoke_async(&mut self.conn.clone())
                    .await
                    .context("mark the cache filled")
            })
            .await?;
        Ok(marked == 1)
    }
}

/// What the cache's marker keys say; see [`RedisCache::fill_state`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillState {
    /// The database the cache was last completely filled from (none: emptied, replaced or
    /// never filled).
    pub database: Option<String>,
    /// The server behind the cache when that fill started (none: filled before servers were
    /// noted).
    pub server: Option<String>,
}

/// What the cache's connections are made from.
enum ConnSource {
    Single {
        client: redis::Client,
        config: ConnectionManagerConfig,
    },
    Sentinel {
        spec: SentinelSpec,
        certificates: Option<redis::TlsCertificates>,
        timeout: Duration,
    },
    Cluster {
        spec: ClusterSpec,
        certificates: Option<redis::TlsCertificates>,
        timeout: Duration,
    },
}

impl ConnSource {
    /// A new connection, made lazily: nothing is sent until the first command, so the service
    /// starts and serves while Redis is down.
    fn open(&self) -> Result<CacheConn, CacheError> {
        match self {
            Self::Single { client, config } => {
                ConnectionManager::new_lazy_with_config(client.clone(), config.clone())
                    .map(CacheConn::Single)
                    .context("set up the Redis connection")
            }
            Self::Sentinel {
                spec,
                certificates,
                timeout,
            } => SentinelConn::new(spec, *timeout, certificates.clone())
                .map(CacheConn::Sentinel)
                .context("set up the Redis Sentinel connection"),
            Self::Cluster {
                spec,
                certificates,
                timeout,
            } => Ok(CacheConn::Cluster(ClusterConn::new(
                spec.clone(),
                certificates.clone(),
                *timeout,
            ))),
        }
    }
}

/// A SCAN under way (see [`RedisCache::scan`]).
pub struct KeyScan {
    cache: RedisCache,
    pattern: String,
    /// The nodes whose keys are still to be listed (`None`: the one server), the last first.
    nodes: Vec<Option<String>>,
    cursor: u64,
}

impl KeyScan {
    /// The next page of keys (without the prefix; possibly empty), or `None` once the scan is
    /// complete. A key may come twice in one scan (Redis's guarantee is only that every key
    /// present throughout comes at least once).
    pub async fn next_page(&mut self) -> Result<Option<Vec<String>>, CacheError> {
        let Some(node) = self.nodes.last().cloned() else {
            return Ok(None);
        };
        let mut scan = redis::cmd("SCAN");
        scan.arg(self.cursor)
            .arg("MATCH")
            .arg(&self.pattern)
            .arg("COUNT")
            .arg(1000);
        let (next, page): (u64, Vec<String>) = self
            .cache
            .guarded(async {
                let mut conn = self.cache.conn.clone();
                match (node, self.cache.conn.cluster()) {
                    (Some(addr), Some(cluster)) => cluster.on_node(&addr, &scan).await,
                    _ => scan.query_async(&mut conn).await,
                }
                .context("list cache keys")
            })
            .await?;
        if next == 0 {
            self.nodes.pop();
        }
        self.cursor = next;
        let prefix = &self.cache.prefix;
        Ok(Some(
            page.into_iter()
                .filter_map(|k| k.strip_prefix(prefix.as_str()).map(str::to_owned))
                .collect(),
        ))
    }
}

/// A server's identity from its `INFO server` and `INFO replication`.
fn identity(server: &str, replication: &str) -> String {
    let field = |text: &str, name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
            .map(|v| v.trim().to_owned())
            .unwrap_or_default()
    };
    format!(
        "{}/{}",
        field(server, "run_id"),
        field(replication, "master_replid")
    )
}

/// Escapes Redis glob characters so that a prefix matches only itself.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::glob_escape;

    #[test]
    fn prefixes_are_matched_literally() {
        assert_eq!(glob_escape("cps:"), "cps:");
        assert_eq!(glob_escape("a*b?[c]\\"), "a\\*b\\?\\[c\\]\\\\");
    }
}
