//! The application under test, started per test on port 0, and what it answers.

use std::future::pending;
use std::sync::Arc;
use std::time::Duration;

pub use cps::cache::CacheSettings;
use cps::config::Config;
use cps::outbox::alcs::AlcsSettings;
use cps::startup::Application;
use cps::store::SqlStore;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::backends::{Backend, TestDb, TestPrefix, available, backend, redis_up, redis_url};
use super::bodies::{registration, with};

pub struct TestApp {
    pub base: String,
    /// The admin listener's base URL (metrics, probes), when the app has one.
    pub admin: Option<String>,
    /// The service desk listener's base URL, when the app has one.
    pub support: Option<String>,
    /// The customer portal's base URL, when the app has one.
    pub portal: Option<String>,
    pub client: reqwest::Client,
    pub database_url: String,
    /// The Redis URL and key prefix, when the app has a cache.
    pub redis: Option<(String, String)>,
    /// The app's database, opened by the test as the app opens it: what peeks read.
    pub(super) store: tokio::sync::OnceCell<Arc<SqlStore>>,
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

/// What a test's app is built from: `cps serve`'s defaults, on free ports, with the waits a
/// test would otherwise sit through made short.
pub fn config(database_url: &str) -> Config {
    let mut c = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        admin_listen: Some("127.0.0.1:0".parse().unwrap()),
        ..Config::default()
    };
    c.database.url = database_url.to_owned();
    c.outbox.poll = Duration::from_millis(100);
    c.outbox.max_backoff = Duration::from_secs(1);
    // Above any test's concurrency: only the shedding tests want refusals.
    c.http.requests.max_in_flight = 1000;
    c.http.requests.max_queued = 32;
    c.shutdown_delay = Duration::ZERO;
    c
}

/// A cache at the shared Redis under `prefix`, as the tests use it. The marker is never
/// checked: tests that empty or tamper with Redis on purpose expect the drift to stay until
/// they look (the tests of the refill set their own interval).
pub fn cache_settings(prefix: &str) -> CacheSettings {
    cache_at(&redis_url(), prefix)
}

/// TLS client files as the service checks them: a CA, and a certificate with its key.
pub fn client_files(
    ca: Option<std::path::PathBuf>,
    identity: Option<(std::path::PathBuf, std::path::PathBuf)>,
) -> cps::tls::ClientFiles {
    let (cert, key) = identity.unzip();
    cps::tls::ClientFiles::check(ca, cert, key, ["ca", "cert", "key"])
        .expect("a certificate with its key")
}

/// A cache at `url` under `prefix`, its marker never checked (see [`cache_settings`]).
pub fn cache_at(url: &str, prefix: &str) -> CacheSettings {
    CacheSettings {
        prefix: prefix.to_owned(),
        check: None,
        ..CacheSettings::at(url)
    }
}

/// What `cps serve` with these arguments (and the environment) would be built from, or the
/// line it would refuse to start with.
pub fn configured(args: &[&str]) -> Result<Config, String> {
    use clap::Parser as _;
    let cli = cps::cli::Cli::try_parse_from(std::iter::once("cps").chain(args.iter().copied()))
        .map_err(|e| e.to_string())?;
    cli.settings
        .config(true)
        .map_err(|e| cps::cli::describe(&e))
}

/// ALCS notices to `url_template`, with the timeout the tests use.
pub fn alcs_settings(url_template: &str) -> AlcsSettings {
    AlcsSettings {
        timeout: Duration::from_secs(2),
        ..AlcsSettings::at(url_template)
    }
}

impl TestApp {
    /// The app on this binary's backend, or `None` (after one "skipped" line) when a service it
    /// needs is missing outside CI.
    pub async fn spawn() -> Option<Self> {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Config)) -> Option<Self> {
        let backend = backend();
        let (db, prefix) = Self::resources(backend).await?;
        let mut config = config(&db.url);
        if let Some(prefix) = &prefix {
            config.cache = Some(cache_settings(&prefix.0));
        }
        adjust(&mut config);
        Some(Self::start(config, Some(db), prefix).await)
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

    pub async fn start(config: Config, db: Option<TestDb>, prefix: Option<TestPrefix>) -> Self {
        let database_url = config.database.url.clone();
        let redis = config
            .cache
            .as_ref()
            .map(|c| (c.url.clone(), c.prefix.clone()));
        let app = Application::build(config).await.expect("the app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        let admin = app.admin_addr().map(|a| format!("http://{a}"));
        let support = app.support_addr().map(|a| format!("http://{a}"));
        let portal = app.portal_addr().map(|a| format!("http://{a}"));
        tokio::spawn(app.run_until_stopped(pending()));
        Self {
            base,
            admin,
            support,
            portal,
            client: reqwest::Client::new(),
            database_url,
            redis,
            store: tokio::sync::OnceCell::new(),
            _db: db,
            _prefix: prefix,
        }
    }

    /// A client for an app started some other way; it has no database of its own.
    pub fn at(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            admin: None,
            support: None,
            portal: None,
            client: reqwest::Client::new(),
            database_url: String::new(),
            redis: None,
            store: tokio::sync::OnceCell::new(),
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
