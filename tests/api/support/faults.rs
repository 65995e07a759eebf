//! Faults a test makes: another client holding locks, a Redis of its own to stop, a proxy
//! to cut.

use sqlx::Connection;
use tempfile::TempDir;

use super::app::TestApp;
use super::backends::available;

impl TestApp {
    /// Another client's open transaction, until the returned value is dropped: on PostgreSQL
    /// one that ran `postgres_statement` (taking its locks), on SQLite one holding the write
    /// lock of the whole database.
    pub async fn hold_lock(&self, postgres_statement: &str) -> Box<dyn std::any::Any + Send> {
        if self.database_url.starts_with("postgres") {
            let mut conn = sqlx::PgConnection::connect(&self.database_url)
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
}

impl PrivateRedis {
    pub async fn start() -> Option<Self> {
        let found = std::process::Command::new("redis-server")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !available("redis-server binary", "PATH", found) {
            return None;
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut redis = Self {
            port,
            dir: tempfile::tempdir().expect("a temporary directory"),
            child: None,
        };
        redis.run().await;
        Some(redis)
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn run(&mut self) {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &self.port.to_string()])
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
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let client = redis::Client::open(self.url()).expect("a URL");
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
    target: std::net::SocketAddr,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Proxy {
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let mut proxy = Self {
            port: 0,
            target,
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
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
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
