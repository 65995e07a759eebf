//! The application under test, started per test on port 0, and what it answers.

use std::future::pending;
use std::sync::Arc;

use cps::config::{Config, Settings};
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

pub fn settings(database_url: &str) -> Settings {
    Settings {
        listen: "127.0.0.1:0".into(),
        admin_listen: "127.0.0.1:0".into(),
        support_listen: "off".into(),
        support_tokens_file: None,
        support_auth_failures: "10".into(),
        support_session_idle_secs: "1800".into(),
        support_session_max_secs: "43200".into(),
        database_url: database_url.into(),
        database_max_connections: "8".into(),
        database_timeout_secs: "5".into(),
        redis_url: None,
        redis_prefix: String::new(),
        redis_timeout_ms: "500".into(),
        redis_ca_file: None,
        redis_client_cert: None,
        redis_client_key: None,
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
        alcs_client_cert: None,
        alcs_client_key: None,
        prune_interval_secs: "300".into(),
        delivered_retention_days: "90".into(),
        audit_retention_days: "2192".into(),
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
        shutdown_delay_secs: "0".into(),
        shutdown_grace_secs: "10".into(),
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
        let admin = app.admin_addr().map(|a| format!("http://{a}"));
        let support = app.support_addr().map(|a| format!("http://{a}"));
        tokio::spawn(app.run_until_stopped(pending()));
        Self {
            base,
            admin,
            support,
            client: reqwest::Client::new(),
            database_url: settings.database_url.clone(),
            redis: settings
                .redis_url
                .clone()
                .map(|url| (url, settings.redis_prefix.clone())),
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
