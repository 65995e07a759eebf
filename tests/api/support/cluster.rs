//! Redis Cluster of the tests' own: six `redis-server --cluster-enabled yes` on free ports,
//! joined by `redis-cli --cluster create … --cluster-replicas 1` (three primaries, a replica
//! each). One per test binary for the black-box suite, or one of a test's own to fail over.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::backends::{available, free_port};

/// One node: a `redis-server` that stops when this is dropped, or when the test process exits
/// (it runs under a shell that stops it once its standard input closes).
struct Node {
    port: u16,
    dir: std::path::PathBuf,
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}

/// Six nodes, three primaries and their replicas.
pub struct RedisCluster {
    nodes: Vec<Node>,
    _dir: tempfile::TempDir,
    /// Over TLS only: the CA the nodes' certificates (for `localhost`) are signed by.
    ca: Option<std::path::PathBuf>,
}

impl RedisCluster {
    /// A new cluster, ready (every slot served, every node agreeing); `None` (or a failure
    /// under `CI=true`) without `redis-server` and `redis-cli`.
    pub fn start() -> Option<Self> {
        Self::start_with(None)
    }

    /// A cluster of a test's own, started off the async runtime (starting one blocks for
    /// seconds); over TLS only when given a [`super::Pki`]'s directory: `--port 0
    /// --tls-port`, `--tls-cluster`, `--tls-replication`, with its server certificate for
    /// `localhost`. The nodes then announce themselves by that name
    /// (`cluster-preferred-endpoint-type hostname`), so that clients verify it.
    pub async fn own(pki: Option<&Path>) -> Option<Self> {
        let pki = pki.map(Path::to_owned);
        tokio::task::spawn_blocking(move || Self::start_with(pki.as_deref()))
            .await
            .expect("the cluster's start")
    }

    fn start_with(pki: Option<&Path>) -> Option<Self> {
        let installed = Command::new("redis-cli")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !available("Redis Cluster (redis-server, redis-cli)", "PATH", installed) {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary directory");
        let mut nodes = Vec::new();
        for i in 0..6 {
            let port = free_port();
            let node_dir = dir.path().join(format!("node{i}"));
            std::fs::create_dir(&node_dir).unwrap();
            nodes.push(Node {
                port,
                child: spawn_node(&node_dir, port, pki),
                dir: node_dir,
            });
        }
        let cluster = Self {
            nodes,
            _dir: dir,
            ca: pki.map(|p| p.join("ca.pem")),
        };
        for node in &cluster.nodes {
            let started = Instant::now();
            while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
                assert!(
                    started.elapsed() < Duration::from_secs(10),
                    "a cluster node does not listen on {}",
                    node.port
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        let mut create = cluster.redis_cli();
        create.arg("--cluster").arg("create");
        for node in &cluster.nodes {
            create.arg(format!("127.0.0.1:{}", node.port));
        }
        let out = create
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .output()
            .expect("run redis-cli --cluster create");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        cluster.wait_until_ok();
        Some(cluster)
    }

    /// The shared one of this test binary.
    pub fn shared() -> Option<String> {
        use std::sync::OnceLock;
        static SHARED: OnceLock<Option<RedisCluster>> = OnceLock::new();
        SHARED.get_or_init(Self::start).as_ref().map(Self::url)
    }

    /// The service's URL: every node, as an operator would list them (over TLS by the name
    /// in their certificate).
    pub fn url(&self) -> String {
        let host = if self.ca.is_some() {
            "localhost"
        } else {
            "127.0.0.1"
        };
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|n| format!("{host}:{}", n.port))
            .collect();
        let scheme = if self.ca.is_some() {
            "rediss+cluster"
        } else {
            "redis+cluster"
        };
        format!("{scheme}://{}", nodes.join(","))
    }

    /// `redis-cli`, with `--tls --cacert` over TLS.
    fn redis_cli(&self) -> Command {
        let mut cli = Command::new("redis-cli");
        if let Some(ca) = &self.ca {
            cli.arg("--tls").arg("--cacert").arg(ca);
        }
        cli
    }

    /// Waits until every node says `cluster_state:ok`, knows all six and their roles.
    pub fn wait_until_ok(&self) {
        let started = Instant::now();
        loop {
            let ok = self.nodes.iter().all(|n| {
                let info = self.cli(n.port, &["CLUSTER", "INFO"]);
                // Every node also knows which three are replicas (roles spread after slots).
                let replicas = self
                    .cli(n.port, &["CLUSTER", "NODES"])
                    .lines()
                    .filter(|l| l.split(' ').nth(2).is_some_and(|f| f.contains("slave")))
                    .count();
                info.contains("cluster_state:ok")
                    && info.contains("cluster_known_nodes:6")
                    && replicas == 3
            });
            if ok {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the cluster does not come up"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The ports of the nodes that are replicas now.
    pub fn replicas(&self) -> Vec<u16> {
        self.nodes
            .iter()
            .filter(|n| self.cli(n.port, &["ROLE"]).starts_with("slave"))
            .map(|n| n.port)
            .collect()
    }

    /// The last lines of the log of the node on `port`, to show why it did not do as asked.
    pub fn log_tail(&self, port: u16) -> String {
        let log = self
            .nodes
            .iter()
            .find(|n| n.port == port)
            .and_then(|n| std::fs::read_to_string(n.dir.join("redis.log")).ok())
            .unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// Has the replica on `port` take over its primary's slots (`CLUSTER FAILOVER`,
    /// coordinated: it first catches up, so nothing is lost), and waits until it is primary.
    /// A manual failover the cluster does not complete within its own 5 s is dropped by Redis:
    /// it is asked again, up to 60 s in all.
    pub async fn fail_over_to(&self, port: u16) {
        let started = Instant::now();
        loop {
            let answer = self.cli(port, &["CLUSTER", "FAILOVER"]);
            assert!(answer.starts_with("OK"), "CLUSTER FAILOVER: {answer}");
            let asked = Instant::now();
            while asked.elapsed() < Duration::from_secs(6) {
                if self.cli(port, &["ROLE"]).starts_with("master") {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the replica on {port} was not promoted:\n{}",
                self.log_tail(port)
            );
        }
    }

    /// The primaries as `CLUSTER NODES` lists them.
    pub fn primaries(&self) -> Vec<Primary> {
        let nodes = self.cli(self.nodes[0].port, &["CLUSTER", "NODES"]);
        nodes
            .lines()
            .filter_map(|line| {
                let fields: Vec<&str> = line.split(' ').collect();
                if !fields.get(2)?.contains("master") || fields.get(2)?.contains("fail") {
                    return None;
                }
                if fields.len() <= 8 {
                    // A primary without slots (none here once the cluster is up).
                    return None;
                }
                let port = fields[1]
                    .split(['@', ','])
                    .next()?
                    .rsplit(':')
                    .next()?
                    .parse()
                    .ok()?;
                let slots = fields[8..]
                    .iter()
                    .filter(|r| !r.starts_with('['))
                    .filter_map(|r| match r.split_once('-') {
                        Some((a, b)) => Some((a.parse().ok()?, b.parse().ok()?)),
                        None => r.parse().ok().map(|s| (s, s)),
                    })
                    .collect();
                Some(Primary {
                    id: fields[0].to_owned(),
                    port,
                    slots,
                })
            })
            .collect()
    }

    /// Runs `args` on the node on `port` (its answer as `redis-cli` prints it).
    pub fn cli(&self, port: u16, args: &[&str]) -> String {
        let out = self
            .redis_cli()
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .args(args)
            .output()
            .expect("run redis-cli");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// A primary: its node id, port and slot ranges.
#[derive(Debug, Clone)]
pub struct Primary {
    pub id: String,
    pub port: u16,
    pub slots: Vec<(u16, u16)>,
}

fn spawn_node(dir: &Path, port: u16, pki: Option<&Path>) -> Child {
    let listen = match pki {
        None => format!("--port {port}"),
        Some(pki) => format!(
            "--port 0 --tls-port {port} --tls-cert-file {pki}/server.pem \
             --tls-key-file {pki}/server.key --tls-ca-cert-file {pki}/ca.pem \
             --tls-auth-clients no --tls-cluster yes --tls-replication yes \
             --cluster-announce-hostname localhost --cluster-preferred-endpoint-type hostname",
            pki = pki.display()
        ),
    };
    Command::new("sh")
        .arg("-c")
        .arg(format!(
            "redis-server {listen} --bind 127.0.0.1 --cluster-enabled yes \
             --cluster-config-file {dir}/nodes.conf --cluster-node-timeout 2000 \
             --save '' --appendonly no --dir {dir} --logfile {dir}/redis.log & p=$!; \
             cat >/dev/null; kill $p; wait $p",
            dir = dir.display()
        ))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start a cluster node")
}

/// A test's own connection to the cache's Redis, whichever the topology of `url`.
#[derive(Clone)]
pub enum RedisConn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

/// A connection to `url`: one server, or (`redis+cluster://`) the cluster.
pub async fn redis_connect(url: &str) -> redis::RedisResult<RedisConn> {
    match url.strip_prefix("redis+cluster://") {
        Some(nodes) => {
            let nodes: Vec<String> = nodes.split(',').map(|n| format!("redis://{n}")).collect();
            let client = redis::cluster::ClusterClient::new(nodes)?;
            Ok(RedisConn::Cluster(client.get_async_connection().await?))
        }
        None => Ok(RedisConn::Single(
            redis::Client::open(url)?
                .get_multiplexed_async_connection()
                .await?,
        )),
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(conn) => conn.req_packed_command(cmd),
            Self::Cluster(conn) => conn.req_packed_command(cmd),
        }
    }

    /// On a cluster, a test's pipeline is sent command by command: a cluster takes a pipeline
    /// only within one slot, and the tests' pipelines tamper with several keys.
    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(conn) => conn.req_packed_commands(pipeline, offset, count),
            Self::Cluster(conn) => Box::pin(async move {
                let mut answers = Vec::new();
                for cmd in pipeline.cmd_iter() {
                    answers.push(conn.req_packed_command(cmd).await?);
                }
                Ok(answers.into_iter().skip(offset).take(count).collect())
            }),
        }
    }

    fn get_db(&self) -> i64 {
        0
    }
}
