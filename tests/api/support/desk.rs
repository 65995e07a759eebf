//! The service desk API of an app under test: its listener, a tokens file with one agent and
//! one viewer, and requests as either.

use std::path::PathBuf;

use reqwest::Method;
use serde_json::Value;
use tempfile::TempDir;

use super::app::{Reply, TestApp};

pub const AGENT: &str = "anna.agent";
pub const VIEWER: &str = "victor.viewer";

/// The desk side of an app: where it listens and the tokens of its two users.
pub struct Desk {
    pub base: String,
    pub agent: String,
    pub viewer: String,
    pub tokens_file: PathBuf,
    client: reqwest::Client,
    _dir: TempDir,
}

impl TestApp {
    /// The app on this binary's backend with the desk API on a listener of its own.
    pub async fn spawn_desk() -> Option<(Self, Desk)> {
        Self::spawn_desk_with(|_| {}).await
    }

    pub async fn spawn_desk_with(
        adjust: impl FnOnce(&mut cps::config::Config),
    ) -> Option<(Self, Desk)> {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let tokens_file = dir.path().join("desk-tokens");
        let agent = cps::tokens::add(&tokens_file, AGENT, "agent").expect("add the agent");
        let viewer = cps::tokens::add(&tokens_file, VIEWER, "viewer").expect("add the viewer");
        let file = tokens_file.clone();
        let app = Self::spawn_with(move |c| {
            c.desk = Some(cps::http::desk::DeskSettings::at(
                "127.0.0.1:0".parse().unwrap(),
                file,
            ));
            adjust(c);
        })
        .await?;
        let desk = Desk {
            base: app.support.clone().expect("the desk listener"),
            agent,
            viewer,
            tokens_file,
            client: reqwest::Client::new(),
            _dir: dir,
        };
        Some((app, desk))
    }
}

impl Desk {
    /// Sends a request with `token` (none: no `Authorization` header) and, if given, a JSON body.
    pub async fn send_as(
        &self,
        token: Option<&str>,
        method: Method,
        path: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let response = req.send().await.expect("the desk answers");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("a readable body"),
        }
    }

    /// A read as the viewer.
    pub async fn get(&self, path: &str) -> Reply {
        self.send_as(Some(&self.viewer), Method::GET, path, None, &[])
            .await
    }

    /// A change as the agent.
    pub async fn post(&self, path: &str, body: Option<&Value>) -> Reply {
        self.send_as(Some(&self.agent), Method::POST, path, body, &[])
            .await
    }

    pub async fn card(&self, card: &str) -> Value {
        let reply = self.get(&format!("/support/v1/cards/{card}")).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()
    }

    pub async fn customer(&self, id: &str) -> Reply {
        self.get(&format!("/support/v1/customers/{id}")).await
    }

    /// Every entry of a trail (`cards/N` or `customers/ID`), newest first, page by page.
    pub async fn history(&self, of: &str) -> Vec<Value> {
        let mut entries = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut path = format!("/support/v1/{of}/history?limit=2");
            if let Some(c) = &cursor {
                path.push_str(&format!("&cursor={c}"));
            }
            let reply = self.get(&path).await;
            assert_eq!(reply.status, 200, "{}", reply.text);
            let page = reply.json();
            entries.extend(page["Entries"].as_array().expect("entries").iter().cloned());
            match page["NextCursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return entries,
            }
        }
    }

    pub async fn lock(&self, card: &str, reason: &str, note: Option<&str>) -> Reply {
        let mut body = serde_json::json!({ "Reason": reason });
        if let Some(note) = note {
            body["Note"] = note.into();
        }
        self.post(&format!("/support/v1/cards/{card}/lock"), Some(&body))
            .await
    }

    pub async fn unlock(&self, card: &str) -> Reply {
        self.post(&format!("/support/v1/cards/{card}/unlock"), None)
            .await
    }

    pub async fn replace(&self, card: &str, new_card: &str, pin: &str) -> Reply {
        let body =
            serde_json::json!({ "NewCardNumber": new_card, "CardPinHMac": pin, "Reason": "Lost" });
        self.post(&format!("/support/v1/cards/{card}/replace"), Some(&body))
            .await
    }

    pub async fn erase(&self, customer: &str) -> Reply {
        self.post(&format!("/support/v1/customers/{customer}/erase"), None)
            .await
    }

    pub async fn change_phone(&self, customer: &str, phone: &str, if_match: Option<&str>) -> Reply {
        let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
        self.send_as(
            Some(&self.agent),
            Method::PATCH,
            &format!("/support/v1/customers/{customer}"),
            Some(&serde_json::json!({ "PhoneNumber": phone })),
            &headers,
        )
        .await
    }
}

impl TestApp {
    /// Runs statements straight on the app's database (as an operator or an older version
    /// would have left rows); the first column of the last one's rows, as text.
    pub async fn raw_sql(&self, statements: &[&str]) -> Vec<String> {
        use sqlx::Connection;
        let mut rows = Vec::new();
        if self.database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                .await
                .expect("open the SQLite file");
            for statement in statements {
                rows = sqlx::query_scalar(statement)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
        } else {
            let mut conn = super::backends::pg_connect(&self.database_url)
                .await
                .expect("connect to PostgreSQL");
            for statement in statements {
                rows = sqlx::query_scalar(statement)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap_or_else(|e| panic!("{statement}: {e}"));
            }
        }
        rows
    }

    /// Texts stored anywhere that mention `needle`, table by table: where personal data lingers.
    pub async fn stored_mentions(&self, needle: &str) -> Vec<String> {
        let like = format!("%{needle}%");
        let tables = [
            (
                "audit_log",
                "coalesce(details::text, '') || coalesce(identity::text, '')",
            ),
            ("outbox", "payload::text || coalesce(last_error, '')"),
            (
                "customers",
                "coalesce(phone_number, '') || coalesce(first_name, '') || coalesce(last_name, '')
                 || coalesce(email, '') || coalesce(street, '') || coalesce(house_number, '')
                 || coalesce(apartment_number, '') || coalesce(postal_code, '')
                 || coalesce(city, '') || coalesce(date_of_birth, '')
                 || coalesce(preferred_store, '') || consents",
            ),
            (
                "consent_events",
                "coalesce(purpose, '') || coalesce(text_version, '') || coalesce(request_id, '')",
            ),
            (
                "cards",
                "registration_fingerprint || coalesce(lock_note, '')",
            ),
        ];
        let mut found = Vec::new();
        for (table, text) in tables {
            let query = format!("select count(*) from {table} where {text} like $1");
            let count: i64 = if self.database_url.starts_with("sqlite:") {
                use sqlx::Connection;
                let query = query.replace("::text", "");
                let mut conn = sqlx::SqliteConnection::connect(&self.database_url)
                    .await
                    .expect("open the SQLite file");
                sqlx::query_scalar(&query)
                    .bind(&like)
                    .fetch_one(&mut conn)
                    .await
                    .expect("count")
            } else {
                use sqlx::Connection;
                let mut conn = super::backends::pg_connect(&self.database_url)
                    .await
                    .expect("connect to PostgreSQL");
                sqlx::query_scalar(&query)
                    .bind(&like)
                    .fetch_one(&mut conn)
                    .await
                    .expect("count")
            };
            if count > 0 {
                found.push(format!("{table}: {count}"));
            }
        }
        found
    }
}

/// Held by a test while it sends SIGHUP or depends on when one arrives: every app in the test
/// process reloads its tokens on each, so two such tests must not overlap.
pub static SIGHUP: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// SIGHUP to this process (every app in it with a desk reloads its own file).
pub fn hang_up() {
    let done = std::process::Command::new("kill")
        .args(["-HUP", &std::process::id().to_string()])
        .status()
        .expect("run kill");
    assert!(done.success());
}
