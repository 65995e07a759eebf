//! Starting an app per test and talking to it.

use std::future::pending;

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

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub database_url: String,
    _dir: TempDir,
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
        default_language: "pl_PL".into(),
        default_country: "PL".into(),
        request_timeout_secs: "10".into(),
        tls_cert: None,
        tls_key: None,
        tls_client_ca: None,
        plain_http: false,
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let database_url = format!("sqlite://{}", dir.path().join("cps.db").display());
        let mut settings = settings(&database_url);
        adjust(&mut settings);
        let config = Config::from_settings(&settings).expect("valid test settings");
        let app = Application::build(config).await.expect("the app builds");
        let base = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped(pending()));
        Self {
            base,
            client: reqwest::Client::new(),
            database_url,
            _dir: dir,
        }
    }

    /// A client for an app started some other way; it has no database of its own.
    pub fn at(base: &str) -> Self {
        Self {
            base: base.to_owned(),
            client: reqwest::Client::new(),
            database_url: String::new(),
            _dir: tempfile::tempdir().expect("a temporary directory"),
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
        let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
            .await
            .expect("the test can open the database");
        let sql = match table {
            "customers" => "select count(*) from customers",
            "cards" => "select count(*) from cards",
            "wallets" => "select count(*) from wallets",
            "audit_log" => "select count(*) from audit_log",
            other => panic!("unknown table {other}"),
        };
        sqlx::query_scalar(sql)
            .fetch_one(&mut conn)
            .await
            .expect("count rows")
    }

    /// The audit trail of a card as (operation, identity, details), oldest first.
    pub async fn audit(&self, card: &str) -> Vec<(String, Option<String>, Option<String>)> {
        let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
            .await
            .expect("the test can open the database");
        sqlx::query_as(
            "select operation, identity, details from audit_log where card_number = ? order by id",
        )
        .bind(card)
        .fetch_all(&mut conn)
        .await
        .expect("read the audit trail")
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
