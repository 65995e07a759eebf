//! Redis Cluster, routed here: one multiplexed connection per primary, the slot map read with
//! `CLUSTER SLOTS`, `MOVED` and `ASK` followed.
//!
//! Why not the `redis` crate's cluster client: in the fault suite's `CLUSTER FAILOVER` under
//! load, its connection (1.8.2) began a slot refresh that never ended, and every command after
//! it timed out — the breaker's probe too, so the cache stayed unreachable until a restart.
//! What this service sends is simple (each script call and pipeline within one slot, see
//! [`super::RedisCache`]; `PING`, `INFO` and `SCAN` to each primary), so the routing is small,
//! built on the multiplexed connections the other topologies use, and every wait in it is
//! bounded by the cache's timeout.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, Pipeline, RedisError, RedisResult, ServerErrorKind,
    Value,
};

use super::node::{client_for, shows_down, tcp_addr};
use super::topology::ClusterSpec;

/// Attempts per command: the first, and one per redirect or lost node.
const ATTEMPTS: usize = 3;

/// A node's address as the cluster names it: `host:port`.
type Addr = String;

#[derive(Clone)]
pub(super) struct ClusterConn {
    inner: Arc<Inner>,
}

struct Inner {
    spec: ClusterSpec,
    certificates: Option<redis::TlsCertificates>,
    config: AsyncConnectionConfig,
    timeout: Duration,
    state: Mutex<State>,
    /// One refresh of the slot map at a time; the others wait for it.
    refreshing: tokio::sync::Mutex<()>,
}

#[derive(Default)]
struct State {
    /// Slot ranges (first, last) and the primary serving them, sorted.
    slots: Vec<(u16, u16, Addr)>,
    nodes: HashMap<Addr, MultiplexedConnection>,
}

impl ClusterConn {
    /// Nothing is connected until the first command.
    pub(super) fn new(
        spec: ClusterSpec,
        certificates: Option<redis::TlsCertificates>,
        timeout: Duration,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                spec,
                certificates,
                config: AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(timeout))
                    .set_response_timeout(Some(timeout)),
                timeout,
                state: Mutex::new(State::default()),
                refreshing: tokio::sync::Mutex::new(()),
            }),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.inner
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A client for the node at `addr`, with the URL's credentials and TLS.
    fn client(&self, addr: &str) -> RedisResult<redis::Client> {
        let (host, port) = split_addr(addr)?;
        let spec = &self.inner.spec;
        client_for(
            tcp_addr(&host, port, spec.tls),
            (spec.username.as_deref(), spec.password.as_deref()),
            self.inner.certificates.as_ref(),
        )
    }

    /// The connection to `addr`, made if there is none.
    async fn connection(&self, addr: &str) -> RedisResult<MultiplexedConnection> {
        if let Some(conn) = self.state().nodes.get(addr) {
            return Ok(conn.clone());
        }
        let made = tokio::time::timeout(
            self.inner.timeout,
            self.client(addr)?
                .get_multiplexed_async_connection_with_config(&self.inner.config),
        )
        .await
        .map_err(|_| timed_out("no connection to a cluster node in time"))??;
        Ok(self
            .state()
            .nodes
            .entry(addr.to_owned())
            .or_insert(made)
            .clone())
    }

    fn forget(&self, addr: &str) {
        self.state().nodes.remove(addr);
    }

    /// Reads the slot map again from a node that answers: the primaries known, then the
    /// URL's nodes, in two timeouts at most. A caller that finds a refresh under way waits for
    /// it instead.
    async fn refresh(&self) -> RedisResult<()> {
        let Ok(_refreshing) = self.inner.refreshing.try_lock() else {
            drop(self.inner.refreshing.lock().await);
            return Ok(());
        };
        tokio::time::timeout(self.inner.timeout * 2, self.read_slots())
            .await
            .unwrap_or_else(|_| Err(timed_out("no cluster node gave the slots in time")))
    }

    async fn read_slots(&self) -> RedisResult<()> {
        let mut candidates: Vec<Addr> = self.primaries_known();
        for (host, port) in &self.inner.spec.nodes {
            let addr = join_addr(host, *port);
            if !candidates.contains(&addr) {
                candidates.push(addr);
            }
        }
        let mut last = timed_out("no cluster node to ask for the slots");
        for addr in candidates {
            let asked = tokio::time::timeout(self.inner.timeout, async {
                let mut conn = self.connection(&addr).await?;
                let answer: Value = redis::cmd("CLUSTER")
                    .arg("SLOTS")
                    .query_async(&mut conn)
                    .await?;
                parse_slots(answer, &addr)
            })
            .await
            .unwrap_or_else(|_| Err(timed_out("CLUSTER SLOTS did not answer in time")));
            match asked {
                Ok(slots) if !slots.is_empty() => {
                    let mut state = self.state();
                    // Connections to nodes no longer primaries are not kept.
                    let serving: Vec<Addr> = slots.iter().map(|(_, _, a)| a.clone()).collect();
                    state.nodes.retain(|addr, _| serving.contains(addr));
                    state.slots = slots;
                    return Ok(());
                }
                Ok(_) => last = cluster_down("the cluster serves no slot"),
                Err(e) => {
                    self.forget(&addr);
                    last = e;
                }
            }
        }
        Err(last)
    }

    fn primaries_known(&self) -> Vec<Addr> {
        let mut addrs: Vec<Addr> = self
            .state()
            .slots
            .iter()
            .map(|(_, _, a)| a.clone())
            .collect();
        addrs.sort();
        addrs.dedup();
        addrs
    }

    /// The primaries serving the slots now (the slot map read first if it is not known).
    pub(super) async fn primaries(&self) -> RedisResult<Vec<Addr>> {
        if self.state().slots.is_empty() {
            self.refresh().await?;
        }
        Ok(self.primaries_known())
    }

    fn route(&self, slot: u16) -> Option<Addr> {
        let state = self.state();
        let at = state.slots.partition_point(|(_, last, _)| *last < slot);
        state
            .slots
            .get(at)
            .filter(|(first, _, _)| *first <= slot)
            .map(|(_, _, a)| a.clone())
    }

    /// `PING` to every primary, the slot map read first: the breaker's probe.
    pub(super) async fn ping_all(&self) -> RedisResult<()> {
        self.refresh().await?;
        for addr in self.primaries_known() {
            self.on_node::<String>(&addr, &redis::cmd("PING")).await?;
        }
        Ok(())
    }

    /// `cmd` on the node at `addr` as it is (`PING`, `INFO`, `SCAN`: per node), its answer
    /// (a refusal as an error).
    pub(super) async fn on_node<T: redis::FromRedisValue>(
        &self,
        addr: &str,
        cmd: &Cmd,
    ) -> RedisResult<T> {
        let mut conn = self.connection(addr).await?;
        let answer = conn.req_packed_command(cmd).await;
        if let Err(e) = &answer
            && shows_down(e)
        {
            self.forget(addr);
        }
        Ok(redis::from_redis_value(answer?.extract_error()?)?)
    }

    /// Sends `request` to the primary of `slot` (after `ASKING` where told to); follows
    /// `MOVED` (reading the slot map again) and `ASK`, and a node that is gone (after reading
    /// the slot map again: a replica may have taken over). A timeout is not sent again: the
    /// cashier's wait stays one timeout (and the command may yet have run; every command this
    /// cache sends may run twice).
    async fn keyed(&self, slot: u16, request: Request<'_>) -> RedisResult<Answer> {
        if self.state().slots.is_empty() {
            self.refresh().await?;
        }
        let mut target: Option<(Addr, bool)> = None;
        let mut last = cluster_down("no attempt made");
        for _ in 0..ATTEMPTS {
            let (addr, asking) = match target.take() {
                Some(t) => t,
                None => (
                    self.route(slot)
                        .ok_or_else(|| cluster_down("no primary serves the key's slot"))?,
                    false,
                ),
            };
            let answer = match self.connection(&addr).await {
                Ok(conn) => request.send(conn, asking).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(value) => {
                    let Some(error) = value.refusal() else {
                        return Ok(value);
                    };
                    let error = RedisError::from(error.clone());
                    match (error.kind(), error.redirect_node()) {
                        (ErrorKind::Server(ServerErrorKind::Moved), Some((to, _))) => {
                            target = Some((to.to_owned(), false));
                            // The map is read again (others follow the same move) while
                            // this command goes where it was told.
                            let _ = self.refresh().await;
                        }
                        (ErrorKind::Server(ServerErrorKind::Ask), Some((to, _))) => {
                            target = Some((to.to_owned(), true));
                        }
                        (
                            ErrorKind::Server(
                                ServerErrorKind::ReadOnly
                                | ServerErrorKind::ClusterDown
                                | ServerErrorKind::MasterDown
                                | ServerErrorKind::TryAgain,
                            ),
                            _,
                        ) => {
                            // A failover under way: the map is read again, and the command
                            // tried once more on the primary it names.
                            let _ = self.refresh().await;
                        }
                        _ => return Ok(value),
                    }
                    last = error;
                }
                Err(e) if shows_down(&e) => {
                    self.forget(&addr);
                    if e.is_timeout() {
                        // The map may be stale (a node hung or gone): read it again in the
                        // background for the next command.
                        let this = self.clone();
                        tokio::spawn(async move { this.refresh().await });
                        return Err(e);
                    }
                    let _ = self.refresh().await;
                    last = e;
                }
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }
}

/// What is sent to one slot's primary.
#[derive(Clone, Copy)]
enum Request<'a> {
    One(&'a Cmd),
    /// A pipeline (all of one slot), with the offset and count of the answers wanted.
    Many(&'a Pipeline, usize, usize),
}

enum Answer {
    One(Value),
    Many(Vec<Value>),
}

/// Refusals that say the command went to the wrong node or came during a failover.
fn is_refusal(e: &redis::ServerError) -> bool {
    matches!(
        e.kind(),
        Some(
            ServerErrorKind::Moved
                | ServerErrorKind::Ask
                | ServerErrorKind::ReadOnly
                | ServerErrorKind::ClusterDown
                | ServerErrorKind::MasterDown
                | ServerErrorKind::TryAgain
        )
    )
}

impl Answer {
    /// The first refusal among the answers, if any (a pipeline is of one slot: one refusal
    /// stands for all).
    fn refusal(&self) -> Option<&redis::ServerError> {
        fn refused(v: &Value) -> Option<&redis::ServerError> {
            match v {
                Value::ServerError(e) if is_refusal(e) => Some(e),
                _ => None,
            }
        }
        match self {
            Self::One(v) => refused(v),
            Self::Many(values) => values.iter().find_map(refused),
        }
    }
}

impl Request<'_> {
    /// Sends this on `conn`, each command after `ASKING` when `asking` (the slot is being
    /// moved to that node).
    async fn send(self, mut conn: MultiplexedConnection, asking: bool) -> RedisResult<Answer> {
        match (self, asking) {
            (Self::One(cmd), false) => conn.req_packed_command(cmd).await.map(Answer::One),
            (Self::One(cmd), true) => {
                let mut pipe = redis::pipe();
                pipe.cmd("ASKING");
                pipe.add_command(cmd.clone());
                let mut answers = conn.req_packed_commands(&pipe, 0, 2).await?;
                answers
                    .pop()
                    .map(Answer::One)
                    .ok_or_else(|| client_error("no answer after ASKING"))
            }
            (Self::Many(pipeline, offset, count), false) => conn
                .req_packed_commands(pipeline, offset, count)
                .await
                .map(Answer::Many),
            (Self::Many(pipeline, offset, count), true) => {
                let mut asked = redis::pipe();
                for cmd in pipeline.cmd_iter() {
                    asked.cmd("ASKING");
                    asked.add_command(cmd.clone());
                }
                let answers = conn
                    .req_packed_commands(&asked, 0, 2 * pipeline.len())
                    .await?;
                Ok(Answer::Many(
                    answers
                        .into_iter()
                        .skip(1)
                        .step_by(2)
                        .skip(offset)
                        .take(count)
                        .collect(),
                ))
            }
        }
    }
}

impl ConnectionLike for ClusterConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        Box::pin(async move {
            let slot = key_slot(cmd)
                .ok_or_else(|| client_error("a command without a key sent to the cluster"))?;
            match self.keyed(slot, Request::One(cmd)).await? {
                Answer::One(value) => Ok(value),
                Answer::Many(_) => Err(client_error("answers of a pipeline to one command")),
            }
        })
    }

    /// A pipeline's commands are all of one slot (see [`super::RedisCache`]): routed by the
    /// first command's key.
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let slot = pipeline
                .cmd_iter()
                .find_map(key_slot)
                .ok_or_else(|| client_error("a pipeline without a key sent to the cluster"))?;
            match self
                .keyed(slot, Request::Many(pipeline, offset, count))
                .await?
            {
                Answer::Many(values) => Ok(values),
                Answer::One(_) => Err(client_error("one answer to a pipeline")),
            }
        })
    }

    fn get_db(&self) -> i64 {
        0
    }
}

/// The slot of a command's first key: `EVAL`/`EVALSHA` name theirs after the script and the
/// key count; the others this cache sends, first.
fn key_slot(cmd: &Cmd) -> Option<u16> {
    let args: Vec<&[u8]> = cmd
        .args_iter()
        .map(|a| match a {
            redis::Arg::Simple(bytes) => bytes,
            _ => &b""[..],
        })
        .collect();
    let name = args.first()?.to_ascii_uppercase();
    let key = match name.as_slice() {
        b"EVAL" | b"EVALSHA" => {
            let keys: usize = std::str::from_utf8(args.get(2)?).ok()?.parse().ok()?;
            if keys == 0 {
                return None;
            }
            args.get(3)?
        }
        _ => args.get(1)?,
    };
    Some(slot(key))
}

/// The hash slot of `key` (CRC16/XMODEM of its hash tag or of the whole key, mod 16384).
pub(super) fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            rest.iter()
                .position(|&b| b == b'}')
                .filter(|&close| close > 0)
                .map(|close| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in tagged {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc % 16384
}

/// `CLUSTER SLOTS`: `[[first, last, [host, port, id, …], replicas…], …]`; a node that names
/// no host (an empty one) is the one asked.
fn parse_slots(answer: Value, asked: &str) -> RedisResult<Vec<(u16, u16, Addr)>> {
    let malformed = || client_error("a CLUSTER SLOTS answer of an unexpected shape");
    let Value::Array(ranges) = answer else {
        return Err(malformed());
    };
    let (asked_host, _) = split_addr(asked)?;
    let mut slots = Vec::new();
    for range in ranges {
        let Value::Array(range) = range else {
            return Err(malformed());
        };
        let int = |v: Option<&Value>| match v {
            Some(Value::Int(n)) => u16::try_from(*n).ok(),
            _ => None,
        };
        let (Some(first), Some(last)) = (int(range.first()), int(range.get(1))) else {
            return Err(malformed());
        };
        let Some(Value::Array(primary)) = range.get(2) else {
            return Err(malformed());
        };
        let host: String = match primary.first() {
            Some(v) => redis::from_redis_value(v.clone()).map_err(|_| malformed())?,
            None => return Err(malformed()),
        };
        let port = int(primary.get(1)).ok_or_else(malformed)?;
        let host = if host.is_empty() || host == "?" {
            asked_host.clone()
        } else {
            host
        };
        slots.push((first, last, join_addr(&host, port)));
    }
    slots.sort();
    Ok(slots)
}

fn join_addr(host: &str, port: u16) -> Addr {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

fn split_addr(addr: &str) -> RedisResult<(String, u16)> {
    addr.rsplit_once(':')
        .and_then(|(h, p)| Some((h.trim_matches(['[', ']']).to_owned(), p.parse().ok()?)))
        .ok_or_else(|| client_error("a cluster node's address without a port"))
}

fn client_error(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Client, what))
}

fn cluster_down(what: &'static str) -> RedisError {
    RedisError::from((ErrorKind::Server(ServerErrorKind::ClusterDown), what))
}

fn timed_out(what: &'static str) -> RedisError {
    RedisError::from(std::io::Error::new(std::io::ErrorKind::TimedOut, what))
}

#[cfg(test)]
mod tests {
    use super::slot;

    #[test]
    fn slots_are_redis_cluster_s_own() {
        // As `CLUSTER KEYSLOT` answers (Redis 7.0).
        for (key, expected) in [
            (&b"123456789"[..], 12739),
            (b"foo", 12182),
            (b"bar", 5061),
            // An empty tag: the whole key.
            (b"foo{}{bar}", 8363),
            // The first `{` to the first `}` after it.
            (b"foo{{bar}}zap", 4015),
            (b"cps:{meta}:filled-from", 10453),
        ] {
            assert_eq!(slot(key), expected, "{}", String::from_utf8_lossy(key));
        }
        assert_eq!(slot(b"cps:{meta}:filled-from"), slot(b"meta"));
    }
}
