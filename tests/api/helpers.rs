//! Starting an app per test and talking to it.

use std::future::pending;
use std::io::BufRead;

use cps::config::{Config, Settings};
use cps::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection;
use tempfile::TempDir;

pub const CARD: &str = "99419283746389";
pub const PHONE: &str = "+48602123789";
pub const OTHER_PHONE: &str = "+48602123780";
pub const PIN: &str = "3f729ea140a769400985ade930f695452cf622fd0dd3ca69218319333ca2386c";

/// Which database and whether a Redis cache: each test binary picks one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    SqliteRedis,
    PostgresRedis,
}

impl Backend {
    pub fn has_cache(self) -> bool {
        self != Self::Sqlite
    }

    pub fn is_postgres(self) -> bool {
        self == Self::PostgresRedis
    }
}

pub fn backend() -> Backend {
    crate::BACKEND
}

pub fn postgres_url() -> String {
    std::env::var("CPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned())
}

pub fn redis_url() -> String {
    std::env::var("CPS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned())
}

/// Whether a service answers; without it the test is skipped with one clear line — except
/// under `CI=true`, where a missing service is a failure, never a silent pass.
fn available(name: &str, url: &str, up: bool) -> bool {
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

async fn postgres_up() -> bool {
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

async fn redis_up() -> bool {
    use std::sync::OnceLock;
    static UP: OnceLock<bool> = OnceLock::new();
    if let Some(up) = UP.get() {
        return *up;
    }
    let up = async {
        let client = redis::Client::open(redis_url()).ok()?;
        let mut conn = tokio::time::timeout(
            std::time::Duration::from_secs(3),
            client.get_multiplexed_async_connection(),
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

/// A database of the test's own: a SQLite file in a temporary directory, or a fresh schema in
/// the PostgreSQL test database. Dropped with the test.
pub struct TestDb {
    pub url: String,
    schema: Option<String>,
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
                _dir: dir,
            });
        }
        let base = postgres_url();
        if !available("PostgreSQL", &base, postgres_up().await) {
            return None;
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
            _dir: dir,
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
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
        cleanup(async move {
            let client = redis::Client::open(redis_url()).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
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
fn cleanup<F: std::future::Future<Output = Option<T>> + Send + 'static, T: Send + 'static>(f: F) {
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

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub database_url: String,
    /// The Redis URL and key prefix, when the app has a cache.
    pub redis: Option<(String, String)>,
    _db: Option<TestDb>,
    _prefix: Option<TestPrefix>,
}

/// A response read whole: status, headers and body.
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text))
    }

    /// Asserts the contract's error envelope and returns its `Message`.
    #[track_caller]
    pub fn assert_error(&self, status: u16, message_code: &str) -> String {
        assert_eq!(self.status.as_u16(), status, "status; body: {}", self.text);
        assert_eq!(
            self.headers
                .get("content-type")
                .and_then(|v| v.to_str().ok()),
            Some("application/json; charset=utf-8")
        );
        let body = self.json();
        let obj = body.as_object().expect("an object");
        assert_eq!(obj.len(), 3, "exactly three fields: {body}");
        assert_eq!(body["HttpCode"], json!(status.to_string()), "{body}");
        assert_eq!(body["MessageCode"], json!(message_code), "{body}");
        let message = body["Message"].as_str().expect("a Message string");
        assert!(!message.is_empty());
        message.to_owned()
    }

    #[track_caller]
    pub fn assert_no_content(&self) {
        assert_eq!(self.status, StatusCode::NO_CONTENT, "body: {}", self.text);
        assert!(self.text.is_empty());
    }
}

pub fn settings(database_url: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        database_url: database_url.into(),
        database_max_connections: "8".into(),
        database_timeout_secs: "5".into(),
        redis_url: None,
        redis_prefix: String::new(),
        redis_timeout_ms: "500".into(),
        // Off: tests that empty or tamper with Redis on purpose expect the drift to stay until
        // they look. The tests of the refill set their own interval.
        cache_check_secs: "0".into(),
        outbox_poll_ms: "100".into(),
        outbox_max_backoff_secs: "1".into(),
        outbox_max_attempts: "10".into(),
        outbox_max_age_secs: "86400".into(),
        alcs_activation_url: None,
        alcs_timeout_ms: "2000".into(),
        alcs_ca_file: None,
        default_language: "pl_PL".into(),
        default_country: "PL".into(),
        request_timeout_secs: "10".into(),
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
        plain_http: false,
        max_connections: "2048".into(),
        // Above any test's concurrency: only the shedding tests want refusals.
        max_in_flight: "1000".into(),
        max_queued: "32".into(),
        header_timeout_secs: "10".into(),
        body_timeout_secs: "5".into(),
        idle_timeout_secs: "10".into(),
        tls_handshake_timeout_secs: "10".into(),
        allowed_origins: String::new(),
        activation_max_failures: "5".into(),
        activation_window_secs: "900".into(),
    }
}

impl TestApp {
    /// The app on this binary's backend, or `None` (after one "skipped" line) when a service it
    /// needs is missing outside CI.
    pub async fn spawn() -> Option<Self> {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Option<Self> {
        let backend = backend();
        let (db, prefix) = Self::resources(backend).await?;
        let mut settings = settings(&db.url);
        if let Some(prefix) = &prefix {
            settings.redis_url = Some(redis_url());
            settings.redis_prefix = prefix.0.clone();
        }
        adjust(&mut settings);
        Some(Self::start(settings, Some(db), prefix).await)
    }

    /// A fresh database and, for cache backends, a fresh key prefix.
    pub async fn resources(backend: Backend) -> Option<(TestDb, Option<TestPrefix>)> {
        let db = TestDb::new(backend).await?;
        let prefix = if backend.has_cache() {
            if !available("Redis", &redis_url(), redis_up().await) {
                return None;
            }
            Some(TestPrefix(format!(
                "cps-test:{}:",
                uuid::Uuid::new_v4().simple()
            )))
        } else {
            None
        };
        Some((db, prefix))
    }

    pub async fn start(settings: Settings, db: Option<TestDb>, prefix: Option<TestPrefix>) -> Self {
        let config = Config::from_settings(&settings).expect("valid test settings");
        let app = Application::build(config).await.expect("the app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped(pending()));
        Self {
            base,
            client: reqwest::Client::new(),
            database_url: settings.database_url.clone(),
            redis: settings
                .redis_url
                .clone()
                .map(|url| (url, settings.redis_prefix.clone())),
            _db: db,
            _prefix: prefix,
        }
    }

    /// A client for an app started some other way; it has no database of its own.
    pub fn at(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::new(),
            database_url: String::new(),
            redis: None,
            _db: None,
            _prefix: None,
        }
    }

    pub fn card_url(&self, card: &str) -> String {
        format!("{}/alcs/loyalty/v1/loyalty-cards/{card}", self.base)
    }

    /// Sends `body` (if any) as `application/json`.
    pub async fn send(&self, method: Method, url: &str, body: Option<&Value>) -> Reply {
        let mut req = self.client.request(method, url);
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        read(req.send().await.expect("the request is answered")).await
    }

    /// Sends raw bytes with the given content type.
    pub async fn send_raw(
        &self,
        method: Method,
        url: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> Reply {
        let mut req = self.client.request(method, url).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        read(req.send().await.expect("the request is answered")).await
    }

    pub async fn register(&self, card: &str, body: &Value) -> Reply {
        self.send(Method::PUT, &self.card_url(card), Some(body))
            .await
    }

    pub async fn activate(&self, card: &str, phone: &str) -> Reply {
        let url = format!("{}/activate", self.card_url(card));
        self.send(Method::POST, &url, Some(&json!({ "PhoneNumber": phone })))
            .await
    }

    pub async fn change_phone(&self, card: &str, phone: &str) -> Reply {
        self.send(
            Method::PATCH,
            &self.card_url(card),
            Some(&json!({ "PhoneNumber": phone })),
        )
        .await
    }

    pub async fn lock(&self, card: &str) -> Reply {
        let url = format!("{}/lock", self.card_url(card));
        self.send(Method::POST, &url, None).await
    }

    pub async fn get(&self, card: &str) -> Reply {
        self.send(Method::GET, &self.card_url(card), None).await
    }

    /// Registers `card` with the sample body and returns its `CustomerId`.
    pub async fn registered(&self, card: &str) -> String {
        let reply = self.register(card, &registration(card)).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        reply.json()["CustomerId"]
            .as_str()
            .expect("a CustomerId")
            .to_owned()
    }

    /// Registers `card` for a customer who gave no phone number.
    pub async fn registered_without_phone(&self, card: &str) {
        let body = with(
            registration(card),
            "LoyaltyCard.PhoneNumber",
            Some(Value::Null),
        );
        let reply = self.register(card, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    }

    /// Rows in a table, read straight from the database: what the API cannot show (how many
    /// customers exist, the audit trail).
    pub async fn count(&self, table: &str) -> i64 {
        let sql = match table {
            "customers" => "select count(*) from customers",
            "cards" => "select count(*) from cards",
            "wallets" => "select count(*) from wallets",
            "audit_log" => "select count(*) from audit_log",
            "outbox" => "select count(*) from outbox",
            "cache_writes" => "select count(*) from outbox where kind = 'cache_write'",
            other => panic!("unknown table {other}"),
        };
        if self.database_url.starts_with("postgres") {
            let mut conn = sqlx::PgConnection::connect(&self.database_url)
                .await
                .expect("the test can open the database");
            sqlx::query_scalar(sql)
                .fetch_one(&mut conn)
                .await
                .expect("count rows")
        } else {
            let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .expect("the test can open the database");
            sqlx::query_scalar(sql)
                .fetch_one(&mut conn)
                .await
                .expect("count rows")
        }
    }

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

    /// The audit trail of a card as (operation, identity, details), oldest first; the JSON
    /// columns parsed, since PostgreSQL's jsonb does not keep the text as written.
    pub async fn audit(&self, card: &str) -> Vec<(String, Option<Value>, Option<Value>)> {
        let rows: Vec<(String, Option<String>, Option<String>)> =
            if self.database_url.starts_with("postgres") {
                let mut conn = sqlx::PgConnection::connect(&self.database_url)
                    .await
                    .expect("the test can open the database");
                sqlx::query_as(
                    "select operation, identity::text, details::text from audit_log
                     where card_number = $1 order by id",
                )
                .bind(card)
                .fetch_all(&mut conn)
                .await
                .expect("read the audit trail")
            } else {
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .expect("the test can open the database");
                sqlx::query_as(
                    "select operation, identity, details from audit_log
                     where card_number = ? order by id",
                )
                .bind(card)
                .fetch_all(&mut conn)
                .await
                .expect("read the audit trail")
            };
        let parse = |s: Option<String>| s.map(|s| serde_json::from_str(&s).expect("JSON"));
        rows.into_iter()
            .map(|(op, identity, details)| (op, parse(identity), parse(details)))
            .collect()
    }

    /// A cache hash as Redis holds it (`key` without the prefix).
    pub async fn cache_hash(&self, key: &str) -> std::collections::BTreeMap<String, String> {
        let (_, prefix) = self.redis.as_ref().expect("an app with a cache");
        redis::cmd("HGETALL")
            .arg(format!("{prefix}{key}"))
            .query_async(&mut self.redis_conn().await)
            .await
            .expect("read a hash")
    }

    /// A connection to the app's Redis, for tests that look at or tamper with the cache.
    pub async fn redis_conn(&self) -> redis::aio::MultiplexedConnection {
        let (url, _) = self.redis.as_ref().expect("an app with a cache");
        redis::Client::open(url.as_str())
            .expect("a Redis URL")
            .get_multiplexed_async_connection()
            .await
            .expect("connect to Redis")
    }

    /// Every card and customer hash under the app's prefix, key → fields (not the service's
    /// own bookkeeping keys, `cps:…`).
    pub async fn cache_snapshot(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
        let (_, prefix) = self.redis.as_ref().expect("an app with a cache");
        let mut conn = self.redis_conn().await;
        let mut keys: Vec<String> = Vec::new();
        for kind in ["card:", "customer:"] {
            let some: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}{kind}*"))
                .query_async(&mut conn)
                .await
                .expect("list keys");
            keys.extend(some);
        }
        let mut out = std::collections::BTreeMap::new();
        for key in keys {
            let hash = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("read a hash");
            out.insert(key, hash);
        }
        out
    }

    /// Runs a `cps` maintenance command against this app's database and cache.
    /// Runs the binary against this app's database and cache. Asynchronously: the app may run
    /// on this test's own runtime, and its background work (the outbox, delivery marks) must
    /// go on while the command waits for the database.
    pub async fn cps(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cps"));
        cmd.args(args)
            .env("CPS_DATABASE_URL", &self.database_url)
            .env_remove("CPS_REDIS_URL")
            .env("RUST_LOG", "warn");
        if let Some((url, prefix)) = &self.redis {
            cmd.env("CPS_REDIS_URL", url)
                .env("CPS_REDIS_PREFIX", prefix);
        }
        cmd.output().await.expect("run cps")
    }

    /// Waits (bounded) until `cps cache verify` finds no drift; returns its last output.
    pub async fn cache_converges(&self, within: std::time::Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let out = self.cps(&["cache", "verify"]).await;
            if out.status.success() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }

    /// Everything the database holds, as text: to show a rejected request stored nothing.
    pub async fn totals(&self) -> [i64; 4] {
        [
            self.count("customers").await,
            self.count("cards").await,
            self.count("wallets").await,
            self.count("audit_log").await,
        ]
    }
}

async fn read(response: reqwest::Response) -> Reply {
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.expect("a readable body");
    Reply {
        status,
        headers,
        text,
    }
}

/// The contract's example registration, for `card`.
pub fn registration(card: &str) -> Value {
    json!({
        "Identity": { "PosId": "09fae9a5d4ea40e79dd7c1096c3694e0", "PosNumber": "5",
                      "PosOperatorId": "b614f1dbda36454b970b4e1d409f4b01", "PosOperatorNumber": 23,
                      "SiteId": "2345" },
        "ResponseLanguage": { "ClientLanguage": "pl_PL", "CashierLanguage": "pl_PL" },
        "LoyaltyCard": {
            "CardNumber": card, "PhoneNumber": PHONE, "Gender": "M", "CardPinHMac": PIN,
            "Wallets": [
                { "Id": "Strickers2016", "Balance": 10.0,
                  "Stat": { "Lost": 0.22, "TransferredOut": 132.00, "TransferredIn": 9.12, "Issued": 199.22 },
                  "Version": "abc" },
                { "Id": "SomethingElse", "Balance": 0.0, "Stat": { "Lost": 0.0, "TransferredOut": 0.0 }, "Version": "xyz" }
            ]
        }
    })
}

/// A registration body given as raw JSON text, for amounts whose spelling matters (`132.00`):
/// `serde_json::json!` would not keep it.
pub fn raw_registration(card: &str, wallets: &str) -> String {
    format!(
        r#"{{"LoyaltyCard": {{"CardNumber": "{card}", "PhoneNumber": "{PHONE}", "Gender": "F",
            "CardPinHMac": "{PIN}", "Wallets": {wallets}}}}}"#
    )
}

/// Sets `value` at a dotted path in `body` (`LoyaltyCard.Gender`); `None` removes the field.
pub fn with(mut body: Value, path: &str, value: Option<Value>) -> Value {
    let mut parts: Vec<&str> = path.split('.').collect();
    let last = parts.pop().expect("a path");
    let mut target = &mut body;
    for part in parts {
        target = match part.parse::<usize>() {
            Ok(i) => &mut target[i],
            Err(_) => &mut target[part],
        };
    }
    let obj = target.as_object_mut().expect("an object at the path");
    match value {
        Some(v) => {
            obj.insert(last.to_owned(), v);
        }
        None => {
            obj.remove(last);
        }
    }
    body
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

/// A running `cps` process, killed when dropped so that a failing test leaves none behind.
pub struct Running(std::process::Child);

impl Running {
    pub fn id(&self) -> u32 {
        self.0.id()
    }

    /// Waits (bounded) for the process to exit by itself.
    pub fn wait_for_exit(
        &mut self,
        within: std::time::Duration,
    ) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.0.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    pub fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A process's log lines: those read while waiting for it to start, then the rest as they come.
pub struct LogLines {
    early: Vec<String>,
    rest: std::sync::mpsc::Receiver<String>,
}

impl LogLines {
    /// Every line so far.
    pub fn drain(&mut self) -> Vec<String> {
        self.early.extend(self.rest.try_iter());
        self.early.clone()
    }
}

/// Starts the binary, returns it, its log lines and its address read from the start-up line.
pub fn start(env: &[(&str, &str)]) -> (Running, LogLines, String) {
    let mut child = Running(
        std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
            .arg("serve")
            .env_remove("CPS_REDIS_URL")
            .env_remove("RUST_LOG")
            .env("CPS_LISTEN", "127.0.0.1:0")
            .envs(env.iter().copied())
            .stderr(std::process::Stdio::piped())
            .stdout(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            // Keep draining after the reader is gone: a closed pipe would kill the server at
            // its next log line.
            let _ = tx.send(line);
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut early = Vec::new();
    loop {
        let line = rx
            .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
            .unwrap_or_else(|_| panic!("the server logs its address; it said: {early:?}"));
        let addr = line
            .find("addr=")
            .map(|at| line[at + 5..].split_whitespace().next().unwrap().to_owned());
        early.push(line);
        if let Some(addr) = addr {
            return (child, LogLines { early, rest: rx }, addr);
        }
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

/// A private CA with a server certificate for `localhost` (files in `dir`: `ca.pem`,
/// `server.pem`, `server.key`) and a client certificate (`client_pem`, with its key).
pub struct Pki {
    pub dir: tempfile::TempDir,
    pub ca_pem: String,
    pub client_pem: String,
}

pub fn pki() -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let dir = tempfile::tempdir().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let server_key = KeyPair::generate().unwrap();
    let server_cert = CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .signed_by(&server_key, &issuer)
        .unwrap();
    let client_key = KeyPair::generate().unwrap();
    let client_cert = CertificateParams::new(vec!["alcs".into()])
        .unwrap()
        .signed_by(&client_key, &issuer)
        .unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.pem"), server_cert.pem()).unwrap();
    std::fs::write(dir.path().join("server.key"), server_key.serialize_pem()).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        client_pem: format!("{}{}", client_cert.pem(), client_key.serialize_pem()),
        dir,
    }
}

/// An HTTPS client that trusts the private CA, reaching `localhost` at `addr`; with the client
/// certificate when `identity`.
pub fn https_client(pki: &Pki, addr: std::net::SocketAddr, identity: bool) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .resolve("localhost", addr);
    if identity {
        builder = builder.identity(reqwest::Identity::from_pem(pki.client_pem.as_bytes()).unwrap());
    }
    builder.build().unwrap()
}
