//! Faults a test makes: another client holding locks, a Redis of its own to stop, a proxy
//! to cut.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sqlx::Connection;
use tempfile::TempDir;

use super::app::TestApp;
use super::backends::{available, free_port};

impl TestApp {
    /// Another client's open transaction, until the returned value is dropped: on PostgreSQL
    /// one that ran `postgres_statement` (taking its locks), on SQLite one holding the write
    /// lock of the whole database.
    pub async fn hold_lock(&self, postgres_statement: &str) -> Box<dyn std::any::Any + Send> {
        if self.database_url.starts_with("postgres") {
            let mut conn = super::backends::pg_connect(&self.database_url)
                .await
                .expect("the test can open the database");
            sqlx::query("begin").execute(&mut conn).await.unwrap();
            sqlx::query(postgres_statement)
                .execute(&mut conn)
                .await
                .unwrap();
            Box::new(conn)
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .expect("the test can open the database");
            sqlx::query("begin immediate")
                .execute(&mut conn)
                .await
                .unwrap();
            Box::new(conn)
        }
    }
}

/// A Redis server of the test's own, for what must not touch the shared one: FLUSHALL, stopping
/// it. It keeps its data in an append-only file (fsync'd on every write), so a restart brings
/// back what it held, as a production Redis with persistence would.
pub struct PrivateRedis {
    pub port: u16,
    dir: TempDir,
    child: Option<std::process::Child>,
    /// Serving TLS only (no plain port), with the server certificate of this private CA; the
    /// client certificate is required when `mutual`.
    tls: Option<(std::path::PathBuf, bool)>,
    /// More `redis-server` arguments (e.g. `--replicaof`).
    extra: Vec<String>,
    /// What its clients must give (`--requirepass`).
    password: Option<String>,
}

impl PrivateRedis {
    pub async fn start() -> Option<Self> {
        Self::start_with(None).await
    }

    /// A Redis that speaks TLS only, with `pki`'s server certificate (for `localhost`),
    /// requiring a client certificate signed by `pki`'s CA when `mutual`.
    pub async fn start_tls(pki: &super::Pki, mutual: bool) -> Option<Self> {
        Self::start_with(Some((pki.dir.path().to_owned(), mutual))).await
    }

    /// A plain-TCP server that wants `password` from its clients (and gives it to its master),
    /// a replica of the server on `replica_of` if given.
    pub async fn start_plain(password: Option<&str>, replica_of: Option<u16>) -> Option<Self> {
        let mut extra = Vec::new();
        if let Some(password) = password {
            extra.extend(["--requirepass", password, "--masterauth", password].map(String::from));
        }
        if let Some(port) = replica_of {
            extra.extend(["--replicaof".into(), "127.0.0.1".into(), port.to_string()]);
        }
        Self::start_full(None, extra, password.map(str::to_owned)).await
    }

    async fn start_with(tls: Option<(std::path::PathBuf, bool)>) -> Option<Self> {
        Self::start_full(tls, Vec::new(), None).await
    }

    async fn start_full(
        tls: Option<(std::path::PathBuf, bool)>,
        extra: Vec<String>,
        password: Option<String>,
    ) -> Option<Self> {
        let found = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !available("redis-server binary", "PATH", found) {
            return None;
        }
        let port = free_port();
        let mut redis = Self {
            port,
            dir: tempfile::tempdir().expect("a temporary directory"),
            child: None,
            tls,
            extra,
            password,
        };
        redis.run().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        match self.tls {
            None => match &self.password {
                None => format!("redis://127.0.0.1:{}", self.port),
                Some(password) => format!("redis://:{password}@127.0.0.1:{}", self.port),
            },
            Some(_) => format!("rediss://localhost:{}", self.port),
        }
    }

    /// A client that reaches it (over TLS with the private CA and client certificate).
    fn client(&self) -> redis::Client {
        match &self.tls {
            None => redis::Client::open(self.url()).expect("a URL"),
            Some((pki, _)) => {
                let read = |name: &str| std::fs::read(pki.join(name)).expect("the PKI's files");
                redis::Client::build_with_tls(
                    self.url(),
                    redis::TlsCertificates {
                        client_tls: Some(redis::ClientTlsConfig {
                            client_cert: read("client.pem"),
                            client_key: read("client.key"),
                        }),
                        root_cert: Some(read("ca.pem")),
                    },
                )
                .expect("a TLS client")
            }
        }
    }

    async fn run(&mut self) {
        let port = self.port.to_string();
        let mut command = std::process::Command::new("redis-server");
        command.args(["--bind", "127.0.0.1"]);
        match &self.tls {
            None => {
                command.args(["--port", &port]);
            }
            Some((pki, mutual)) => {
                command.args(["--port", "0", "--tls-port", &port]);
                command.arg("--tls-cert-file").arg(pki.join("server.pem"));
                command.arg("--tls-key-file").arg(pki.join("server.key"));
                command.arg("--tls-ca-cert-file").arg(pki.join("ca.pem"));
                command.args(["--tls-auth-clients", if *mutual { "yes" } else { "no" }]);
            }
        }
        let child = command
            .args([
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
            ])
            .arg("--dir")
            .arg(self.dir.path())
            .args(&self.extra)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let client = self.client();
            if let Ok(mut conn) = client.get_multiplexed_async_connection().await
                && redis::cmd("PING")
                    .query_async::<String>(&mut conn)
                    .await
                    .is_ok()
            {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "redis-server did not start"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// Runs commands on it, in order, on one connection (a private server: its configuration
    /// may be changed).
    pub async fn commands(&self, commands: &[&[&str]]) -> redis::RedisResult<()> {
        let mut conn = self.client().get_multiplexed_async_connection().await?;
        for args in commands {
            let mut cmd = redis::cmd(args[0]);
            for arg in &args[1..] {
                cmd.arg(*arg);
            }
            cmd.query_async::<redis::Value>(&mut conn).await?;
        }
        Ok(())
    }

    /// Stops the server abruptly (SIGKILL): clients see connections refused.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub async fn restart(&mut self) {
        self.stop();
        self.run().await;
    }

    /// Restarts it without its data, as a Redis without persistence (or a fresh replica)
    /// comes back.
    pub async fn restart_empty(&mut self) {
        self.stop();
        for entry in std::fs::read_dir(self.dir.path()).expect("the data directory") {
            let path = entry.expect("an entry").path();
            let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
        }
        self.run().await;
    }

    /// Freezes the server (SIGSTOP): connections still open, commands never answered — how a
    /// hung Redis looks.
    pub fn freeze(&self) {
        assert!(self.signal("-STOP"), "SIGSTOP redis-server");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        assert!(self.signal("-CONT"), "SIGCONT redis-server");
    }

    fn signal(&self, signal: &str) -> bool {
        self.child.as_ref().is_some_and(|child| {
            std::process::Command::new("kill")
                .args([signal, &child.id().to_string()])
                .status()
                .is_ok_and(|s| s.success())
        })
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        // Thawed first, so that a test failing while it is frozen leaves nothing hanging.
        self.signal("-CONT");
        self.stop();
    }
}

/// A TCP proxy in front of a service, which a test can cut (as if the service went down:
/// connections reset, new ones refused) and restore on the same port.
pub struct Proxy {
    pub port: u16,
    /// Where new connections go (read at each accept).
    target: Arc<Mutex<std::net::SocketAddr>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let mut proxy = Self {
            port: 0,
            target: Arc::new(Mutex::new(target)),
            task: None,
        };
        proxy.restore().await;
        proxy
    }

    pub fn cut(&mut self) {
        if let Some(task) = self.task.take() {
            // Dropping the task drops the listener and every connection with it.
            task.abort();
        }
    }

    /// Points it at another server, as HAProxy does when its health check finds the primary
    /// moved: the open connections are cut, new ones go to `target`.
    pub async fn retarget(&mut self, target: std::net::SocketAddr) {
        *self.target.lock().unwrap() = target;
        self.restore().await;
    }

    /// Sends new connections to `target` and leaves the open ones where they are, as a proxy
    /// or a DNS change without `shutdown-sessions` does: pooled connections stay on the old
    /// server.
    pub fn redirect_new(&self, target: std::net::SocketAddr) {
        *self.target.lock().unwrap() = target;
    }

    pub async fn restore(&mut self) {
        self.cut();
        let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
        socket.set_reuseaddr(true).expect("SO_REUSEADDR");
        let addr: std::net::SocketAddr = ([127, 0, 0, 1], self.port).into();
        // The old listener is gone once the aborted task has been dropped; retry briefly.
        let mut tries = 0;
        while let Err(e) = socket.bind(addr) {
            tries += 1;
            assert!(tries < 100, "cannot rebind the proxy: {e}");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let listener = socket.listen(64).expect("listen");
        self.port = listener.local_addr().expect("an address").port();
        let target = self.target.clone();
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                let target = *target.lock().unwrap();
                connections.spawn(async move {
                    if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        }));
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.cut();
    }
}

/// `url` with its host and port replaced by 127.0.0.1:`port`.
pub fn via_port(url: &str, port: u16) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL with a scheme");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let user = authority.rsplit_once('@').map(|(u, _)| format!("{u}@"));
    format!(
        "{scheme}://{}127.0.0.1:{port}{path}",
        user.unwrap_or_default()
    )
}

/// The host and port of a URL, resolved.
pub fn socket_addr(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let rest = url.split_once("://").expect("a URL").1;
    let authority = &rest[..rest.find(['/', '?']).unwrap_or(rest.len())];
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port
        .to_socket_addrs()
        .expect("a resolvable address")
        .next()
        .expect("an address")
}

/// Runs a PostgreSQL tool as the `postgres` user (the servers refuse to run as root);
/// panics with its output when it fails.
fn as_postgres(tool: &Path, args: &[&str]) {
    let out = std::process::Command::new("runuser")
        .args(["-u", "postgres", "--"])
        .arg(tool)
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "{tool:?} {args:?}: {out:?}");
}

/// The arguments that point a PostgreSQL client tool at the server on `port`, as `postgres`.
fn server_args(port: &str) -> [&str; 6] {
    ["-h", "127.0.0.1", "-p", port, "-U", "postgres"]
}

/// A temporary directory the `postgres` user owns.
fn postgres_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("chown")
        .args(["postgres:postgres", &dir.path().display().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

/// A PostgreSQL server of the test's own, from the installed binaries, which the test may stop
/// and start (never the shared one).
pub struct PrivatePostgres {
    bin: PathBuf,
    pub dir: tempfile::TempDir,
    pub port: u16,
    /// `-c name=value` options the server is started with, beside the test's own.
    options: Vec<String>,
}

impl PrivatePostgres {
    pub fn start() -> Option<Self> {
        Self::start_with(|_| Vec::new())
    }

    /// Starts it with the server options `options` gives for its directory (e.g. TLS files
    /// written there); `-c` is added to each.
    pub fn start_with(options: impl FnOnce(&Path) -> Vec<String>) -> Option<Self> {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .and_then(|versions| {
                versions
                    .filter_map(Result::ok)
                    .map(|v| v.path().join("bin"))
                    .find(|b| b.join("initdb").exists())
            });
        let user_ok = std::process::Command::new("id")
            .arg("postgres")
            .output()
            .is_ok_and(|o| o.status.success());
        if !available(
            "PostgreSQL binaries (initdb) and postgres user",
            "/usr/lib/postgresql",
            bin.is_some() && user_ok,
        ) {
            return None;
        }
        let bin = bin?;
        let dir = postgres_dir();
        let port = free_port();
        let data = dir.path().join("data");
        as_postgres(
            &bin.join("initdb"),
            &[
                "-D",
                data.to_str().unwrap(),
                "-A",
                "trust",
                "-U",
                "postgres",
            ],
        );
        let options = options(dir.path());
        let status = std::process::Command::new("chown")
            .args(["-R", "postgres:postgres", &dir.path().display().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let pg = Self {
            bin,
            dir,
            port,
            options,
        };
        pg.up();
        Some(pg)
    }

    /// A streaming replica of this server (`pg_basebackup -R`: a standby that follows it),
    /// started on a port of its own with the same options.
    pub fn replica(&self) -> Self {
        let dir = postgres_dir();
        let data = dir.path().join("data");
        let port = self.port.to_string();
        let server = server_args(&port);
        let into = [
            "-D",
            data.to_str().unwrap(),
            "-R",
            "-X",
            "stream",
            "-c",
            "fast",
        ];
        as_postgres(
            &self.bin.join("pg_basebackup"),
            &[&server[..], &into].concat(),
        );
        let replica = Self {
            bin: self.bin.clone(),
            dir,
            port: free_port(),
            options: self.options.clone(),
        };
        replica.up();
        replica
    }

    /// Promotes this standby to a primary (returns once it takes writes).
    pub fn promote(&self) {
        assert!(self.pg_ctl(&["promote"]), "the standby is promoted");
    }

    /// Starts this (stopped) server again as a standby of the primary on `primary_port`: what
    /// a failed-over primary becomes once it rejoins. `pg_rewind` first takes back what it
    /// wrote after the replica's promotion (its shutdown checkpoint, at least), as an operator
    /// (or Patroni) does; the server must run with `wal_log_hints = on`.
    pub fn rejoin_as_standby_of(&self, primary_port: u16) {
        // pg_rewind reads the new primary's control file, which names the new timeline only
        // after a checkpoint; without one it would find nothing to rewind.
        let port = primary_port.to_string();
        let checkpoint = ["-d", "postgres", "-c", "checkpoint"];
        as_postgres(
            &self.bin.join("psql"),
            &[&server_args(&port)[..], &checkpoint].concat(),
        );
        as_postgres(
            &self.bin.join("pg_rewind"),
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-R",
                &format!(
                    "--source-server=host=127.0.0.1 port={port} user=postgres dbname=postgres"
                ),
            ],
        );
        self.up();
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn pg_ctl(&self, args: &[&str]) -> bool {
        std::process::Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["-D", self.data().to_str().unwrap(), "-w", "-t", "30"])
            .args(args)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    }

    pub fn up(&self) {
        let mut options = format!(
            "-c listen_addresses=127.0.0.1 -p {} -c unix_socket_directories={} -c fsync=on",
            self.port,
            self.dir.path().display()
        );
        for option in &self.options {
            options.push_str(" -c ");
            options.push_str(option);
        }
        let log = self.dir.path().join("log");
        assert!(
            self.pg_ctl(&["-o", &options, "-l", log.to_str().unwrap(), "start"]),
            "the private PostgreSQL starts"
        );
    }

    pub fn down(&self) {
        assert!(
            self.pg_ctl(&["-m", "fast", "stop"]),
            "the private PostgreSQL stops"
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["-m", "immediate", "stop"]);
    }
}
