//! The services a test runs against: which backend, whether it answers, and a database and
//! Redis key prefix of the test's own.

use sqlx::Connection;
use tempfile::TempDir;

/// Which database and whether a Redis cache: each test binary picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    SqliteRedis,
    PostgresRedis,
    /// PostgreSQL through PgBouncer in session mode, with the Redis cache.
    PgBouncerRedis,
    /// PostgreSQL, with the cache on a Redis Cluster of the test binary's own.
    PostgresRedisCluster,
}

impl Backend {
    pub fn has_cache(self) -> bool {
        self != Self::Sqlite
    }

    pub fn is_postgres(self) -> bool {
        matches!(
            self,
            Self::PostgresRedis | Self::PgBouncerRedis | Self::PostgresRedisCluster
        )
    }
}

pub fn backend() -> Backend {
    crate::BACKEND
}

pub fn postgres_url() -> String {
    std::env::var("CPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

/// The cache's Redis: the shared server, or this binary's own cluster (started on first use).
pub fn redis_url() -> String {
    if backend() == Backend::PostgresRedisCluster {
        return super::RedisCluster::shared()
            .unwrap_or_else(|| "redis+cluster://(not started)".to_owned());
    }
    std::env::var("CPS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Whether a service answers; without it the test is skipped with one clear line — except
/// under `CI=true`, where a missing service is a failure, never a silent pass.
pub fn available(name: &str, url: &str, up: bool) -> bool {
    if up {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    assert!(
        !ci,
        "no {name} at {url}, and CI=true: a missing service fails the run"
    );
    // Once per test binary and service, straight to the stream: the harness would swallow an
    // `eprintln!` of a passing test.
    static SAID: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let mut said = SAID
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !said.iter().any(|n| n == name) {
        said.push(name.to_owned());
        use std::io::Write;
        let _ = writeln!(
            std::io::stderr(),
            "skipped: no {name} at {url} (its tests pass without running; CI=true makes this a failure)"
        );
    }
    false
}

pub async fn postgres_up() -> bool {
    use std::sync::OnceLock;
    static UP: OnceLock<bool> = OnceLock::new();
    if let Some(up) = UP.get() {
        return *up;
    }
    let up = tokio::time::timeout(
        std::time::Duration::from_secs(3),
        sqlx::PgConnection::connect(&postgres_url()),
    )
    .await
    .is_ok_and(|c| c.is_ok());
    *UP.get_or_init(|| up)
}

pub async fn redis_up() -> bool {
    use std::sync::OnceLock;
    static UP: OnceLock<bool> = OnceLock::new();
    if let Some(up) = UP.get() {
        return *up;
    }
    let up = async {
        let url = redis_url();
        let mut conn = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            super::redis_connect(&url),
        )
        .await
        .ok()?
        .ok()?;
        redis::cmd("PING")
            .query_async::<String>(&mut conn)
            .await
            .ok()
    }
    .await
    .is_some();
    *UP.get_or_init(|| up)
}

/// A connection of the test's own to `url`, also through PgBouncer: without the startup
/// parameter sqlx adds by default (`extra_float_digits`), which PgBouncer refuses.
pub async fn pg_connect(url: &str) -> Result<sqlx::PgConnection, sqlx::Error> {
    use std::str::FromStr as _;
    let options = sqlx::postgres::PgConnectOptions::from_str(url)?.extra_float_digits(None);
    sqlx::PgConnection::connect_with(&options).await
}

/// A database of the test's own: a SQLite file in a temporary directory, a fresh schema in
/// the PostgreSQL test database, or (through PgBouncer, which forwards no `search_path`) a
/// fresh database. Dropped with the test.
pub struct TestDb {
    pub url: String,
    schema: Option<String>,
    database: Option<String>,
    _dir: TempDir,
}

impl TestDb {
    pub async fn new(backend: Backend) -> Option<Self> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        if !backend.is_postgres() {
            let url = format!("sqlite://{}", dir.path().join("cps.db").display());
            return Some(Self {
                url,
                schema: None,
                database: None,
                _dir: dir,
            });
        }
        let base = postgres_url();
        if !available("PostgreSQL", &base, postgres_up().await) {
            return None;
        }
        if backend == Backend::PgBouncerRedis {
            let port = super::PgBouncer::shared()?;
            let database = format!("cps_test_{}", uuid::Uuid::new_v4().simple());
            let mut admin = sqlx::PgConnection::connect(&base)
                .await
                .expect("connect to PostgreSQL");
            sqlx::query(&format!("create database {database}"))
                .execute(&mut admin)
                .await
                .expect("create a test database");
            return Some(Self {
                url: super::pgbouncer::url(port, &database),
                schema: None,
                database: Some(database),
                _dir: dir,
            });
        }
        let schema = format!("cps_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = sqlx::PgConnection::connect(&base)
            .await
            .expect("connect to PostgreSQL");
        sqlx::query(&format!("create schema {schema}"))
            .execute(&mut admin)
            .await
            .expect("create a test schema");
        let sep = if base.contains('?') { '&' } else { '?' };
        Some(Self {
            url: format!("{base}{sep}options[search_path]={schema}"),
            schema: Some(schema),
            database: None,
            _dir: dir,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(database) = self.database.take() {
            let base = postgres_url();
            cleanup(async move {
                let mut admin = sqlx::PgConnection::connect(&base).await.ok()?;
                sqlx::query(&format!("drop database {database} with (force)"))
                    .execute(&mut admin)
                    .await
                    .ok()
            });
        }
        if let Some(schema) = self.schema.take() {
            let base = postgres_url();
            cleanup(async move {
                let mut admin = sqlx::PgConnection::connect(&base).await.ok()?;
                sqlx::query(&format!("drop schema {schema} cascade"))
                    .execute(&mut admin)
                    .await
                    .ok()
            });
        }
    }
}

/// A Redis key prefix of the test's own, whose keys are deleted with the test.
pub struct TestPrefix(pub String);

impl Drop for TestPrefix {
    fn drop(&mut self) {
        let prefix = self.0.clone();
        let url = redis_url();
        cleanup(async move {
            let mut conn = super::redis_connect(&url).await.ok()?;
            let keys: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}*"))
                .query_async(&mut conn)
                .await
                .ok()?;
            if !keys.is_empty() {
                let _: () = redis::cmd("DEL")
                    .arg(keys)
                    .query_async(&mut conn)
                    .await
                    .ok()?;
            }
            Some(())
        });
    }
}

/// Runs async clean-up from `Drop`, on a runtime of its own (the test's may be gone).
pub fn cleanup<F: std::future::Future<Output = Option<T>> + Send + 'static, T: Send + 'static>(
    f: F,
) {
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(f);
        }
    })
    .join();
}

/// A port nothing listens on now, on loopback: for a listener (or a closed port) a test must
/// know the number of beforehand.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
