//! Redis Sentinel of the test's own: a master, a replica and three sentinels, each a
//! `redis-server` on a free port, which the test may fail over.

use std::time::{Duration, Instant};

use super::backends::free_port;
use super::faults::PrivateRedis;

/// The name the sentinels know the master by.
pub const MASTER_NAME: &str = "cache";

/// One sentinel process.
struct Sentinel {
    port: u16,
    _dir: tempfile::TempDir,
    child: std::process::Child,
}

impl Drop for Sentinel {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A master, its replica, and three sentinels that watch them (quorum 2).
pub struct SentinelSet {
    pub master: PrivateRedis,
    pub replica: PrivateRedis,
    sentinels: Vec<Sentinel>,
    /// The one password of every server and sentinel, if they want one.
    pub password: Option<String>,
}

impl SentinelSet {
    /// The set; with `password`, every server and sentinel requires it.
    pub async fn start(password: Option<&str>) -> Option<Self> {
        let master = PrivateRedis::start_plain(password, None).await?;
        let replica = PrivateRedis::start_plain(password, Some(master.port)).await?;
        let mut sentinels = Vec::new();
        for _ in 0..3 {
            let dir = tempfile::tempdir().expect("a temporary directory");
            let port = free_port();
            let config = dir.path().join("sentinel.conf");
            let auth = password.map_or(String::new(), |p| {
                format!(
                    "requirepass {p}\n\
                     sentinel sentinel-pass {p}\n\
                     sentinel auth-pass {MASTER_NAME} {p}\n"
                )
            });
            std::fs::write(
                &config,
                format!(
                    "port {port}\n\
                     bind 127.0.0.1\n\
                     dir {}\n\
                     sentinel monitor {MASTER_NAME} 127.0.0.1 {} 2\n\
                     sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                     sentinel failover-timeout {MASTER_NAME} 10000\n\
                     sentinel parallel-syncs {MASTER_NAME} 1\n\
                     {auth}",
                    dir.path().display(),
                    master.port,
                ),
            )
            .unwrap();
            let child = std::process::Command::new("redis-server")
                .arg(&config)
                .arg("--sentinel")
                .stdout(std::process::Stdio::null())
                .spawn()
                .expect("start a sentinel");
            sentinels.push(Sentinel {
                port,
                _dir: dir,
                child,
            });
        }
        let set = Self {
            master,
            replica,
            sentinels,
            password: password.map(str::to_owned),
        };
        // Ready once every sentinel knows the master and its replica.
        let started = Instant::now();
        loop {
            let mut ready = true;
            for sentinel in &set.sentinels {
                let replicas: Option<Vec<redis::Value>> = set
                    .ask(sentinel.port, &["SENTINEL", "REPLICAS", MASTER_NAME])
                    .await;
                ready &= replicas.is_some_and(|r| !r.is_empty());
            }
            if ready {
                return Some(set);
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the sentinels do not see the master and its replica"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ask<T: redis::FromRedisValue>(&self, port: u16, args: &[&str]) -> Option<T> {
        let client = redis::Client::open(self.server_url(port)).ok()?;
        let mut conn = client.get_multiplexed_async_connection().await.ok()?;
        let mut cmd = redis::cmd(args[0]);
        for arg in &args[1..] {
            cmd.arg(*arg);
        }
        cmd.query_async(&mut conn).await.ok()
    }

    /// A plain URL of the server (or sentinel) on `port`, with the password.
    pub fn server_url(&self, port: u16) -> String {
        match &self.password {
            None => format!("redis://127.0.0.1:{port}"),
            Some(password) => format!("redis://:{password}@127.0.0.1:{port}"),
        }
    }

    /// The service's URL for this set.
    pub fn url(&self) -> String {
        let hosts: Vec<String> = self
            .sentinels
            .iter()
            .map(|s| format!("127.0.0.1:{}", s.port))
            .collect();
        match &self.password {
            None => format!("redis+sentinel://{}/{MASTER_NAME}", hosts.join(",")),
            Some(p) => format!(
                "redis+sentinel://:{p}@{}/{MASTER_NAME}?sentinel_password={p}",
                hosts.join(",")
            ),
        }
    }

    /// The master's port, as the sentinels name it now.
    pub async fn master_port(&self) -> u16 {
        for sentinel in &self.sentinels {
            let addr: Option<Vec<String>> = self
                .ask(
                    sentinel.port,
                    &["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER_NAME],
                )
                .await;
            if let Some(port) = addr.and_then(|a| a.get(1).and_then(|p| p.parse().ok())) {
                return port;
            }
        }
        panic!("no sentinel names a master");
    }

    /// `SENTINEL FAILOVER`: the replica becomes the master, the master its replica. Returns
    /// once the sentinels name the new master.
    pub async fn failover(&self) -> u16 {
        let before = self.master_port().await;
        let asked: Option<String> = self
            .ask(
                self.sentinels[0].port,
                &["SENTINEL", "FAILOVER", MASTER_NAME],
            )
            .await;
        assert_eq!(asked.as_deref(), Some("OK"), "SENTINEL FAILOVER");
        self.master_moved_from(before).await
    }

    /// Waits (bounded) until the sentinels name a master other than the one on `before`.
    pub async fn master_moved_from(&self, before: u16) -> u16 {
        let started = Instant::now();
        loop {
            let now = self.master_port().await;
            if now != before {
                return now;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "no failover within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
