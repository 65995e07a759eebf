//! The customer portal of an app under test: its listener, a PIN key file, cards registered
//! with PINs whose HMACs the test computes as ALCS does, and requests as a customer from any
//! loopback address.

use std::net::IpAddr;
use std::path::PathBuf;

use reqwest::Method;
use serde_json::{Value, json};
use tempfile::TempDir;

use super::app::{Reply, TestApp};
use super::bodies::{registration, with};
use super::desk::Desk;

/// The test's PIN HMAC key (UTF-16LE, as the portal reads a key's text by default).
pub const PIN_KEY: &str = "cps-test-key";
/// A card's PIN in the tests.
pub const CARD_PIN: &str = "1234";

/// The portal side of an app.
pub struct Portal {
    pub base: String,
    pub key_file: PathBuf,
    client: reqwest::Client,
    _dir: TempDir,
}

/// `CardPinHMac` for `card` and `pin` under the test key, in hex, as ALCS would send it.
pub fn pin_hmac(card: &str, pin: &str) -> String {
    let check = cps::domain::PinCheck::parse(PIN_KEY, cps::domain::PinEncoding::Utf16Le).unwrap();
    check
        .tag(0, card, pin)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A registration of `card` whose PIN is `pin`.
pub fn registration_with_pin(card: &str, pin: &str) -> Value {
    with(
        registration(card),
        "LoyaltyCard.CardPinHMac",
        Some(json!(pin_hmac(card, pin))),
    )
}

/// A key file holding the test key, in a directory of its own.
pub fn key_file() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("pin-keys");
    std::fs::write(&file, format!("{PIN_KEY}\n")).unwrap();
    (dir, file)
}

impl TestApp {
    /// The app on this binary's backend with the portal on a listener of its own.
    pub async fn spawn_portal() -> Option<(Self, Portal)> {
        Self::spawn_portal_with(|_| {}).await
    }

    pub async fn spawn_portal_with(
        adjust: impl FnOnce(&mut cps::config::Config),
    ) -> Option<(Self, Portal)> {
        let (dir, file) = key_file();
        let key = file.clone();
        let app = Self::spawn_with(move |c| {
            c.portal = Some(cps::http::portal::PortalSettings::at(
                "127.0.0.1:0".parse().unwrap(),
                key,
            ));
            adjust(c);
        })
        .await?;
        let portal = Portal {
            base: app.portal.clone().expect("the portal listener"),
            key_file: file,
            client: reqwest::Client::new(),
            _dir: dir,
        };
        Some((app, portal))
    }

    /// The app with both the portal and the desk.
    pub async fn spawn_portal_and_desk() -> Option<(Self, Portal, Desk)> {
        let (dir, file) = key_file();
        let key = file.clone();
        let (app, desk) = Self::spawn_desk_with(move |c| {
            c.portal = Some(cps::http::portal::PortalSettings::at(
                "127.0.0.1:0".parse().unwrap(),
                key,
            ));
        })
        .await?;
        let portal = Portal {
            base: app.portal.clone().expect("the portal listener"),
            key_file: file,
            client: reqwest::Client::new(),
            _dir: dir,
        };
        Some((app, portal, desk))
    }

    /// Registers `card` with the PIN [`CARD_PIN`]; its `CustomerId`.
    pub async fn registered_with_pin(&self, card: &str) -> String {
        let reply = self
            .register(card, &registration_with_pin(card, CARD_PIN))
            .await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()["CustomerId"].as_str().unwrap().to_owned()
    }
}

impl Portal {
    /// The portal at `base`, with its key file's directory kept alive.
    pub fn at(base: String, dir: TempDir) -> Self {
        Self {
            key_file: dir.path().join("pin-keys"),
            base,
            client: reqwest::Client::new(),
            _dir: dir,
        }
    }

    /// A client whose requests come from `addr` (any of 127.0.0.0/8 is this machine).
    pub fn client_from(addr: IpAddr) -> reqwest::Client {
        reqwest::Client::builder()
            .local_address(addr)
            .build()
            .expect("a client")
    }

    /// Sends `body` (if any) with `session` (if any) as `Authorization: Bearer …`.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        session: Option<&str>,
        body: Option<&Value>,
    ) -> Reply {
        self.send_with(&self.client, method, path, session, body, &[])
            .await
    }

    pub async fn send_with(
        &self,
        client: &reqwest::Client,
        method: Method,
        path: &str,
        session: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = client.request(method, format!("{}{path}", self.base));
        if let Some(session) = session {
            req = req.bearer_auth(session);
        }
        if let Some(body) = body {
            req = req
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        let response = req.send().await.expect("the portal answers");
        Reply {
            status: response.status(),
            headers: response.headers().clone(),
            text: response.text().await.expect("a readable body"),
        }
    }

    pub async fn login(&self, card: &str, password: &str) -> Reply {
        self.login_with(&self.client, card, password).await
    }

    pub async fn login_with(&self, client: &reqwest::Client, card: &str, password: &str) -> Reply {
        let body = json!({ "CardNumber": card, "Password": password });
        self.send_with(
            client,
            Method::POST,
            "/loyalty/v1/login",
            None,
            Some(&body),
            &[],
        )
        .await
    }

    /// Signs in and returns the session id.
    pub async fn session(&self, card: &str, password: &str) -> String {
        let reply = self.login(card, password).await;
        assert_eq!(reply.status, 200, "{}", reply.text);
        reply.json()["SessionId"].as_str().unwrap().to_owned()
    }

    pub async fn set_password(&self, session: &str, old: &str, new: &str) -> Reply {
        let body = json!({ "OldPassword": old, "NewPassword": new });
        self.send(
            Method::POST,
            "/loyalty/v1/customers/current/password",
            Some(session),
            Some(&body),
        )
        .await
    }

    /// Signs in with the PIN and sets `password`; the password session's id.
    pub async fn with_password(&self, card: &str, password: &str) -> String {
        let session = self.session(card, CARD_PIN).await;
        self.set_password(&session, CARD_PIN, password)
            .await
            .assert_no_content();
        session
    }

    /// Raises the session with the password (or, given `{"Code": …}`, whatever `body` says).
    pub async fn step_up(&self, session: &str, body: &Value) -> Reply {
        self.send(
            Method::POST,
            "/loyalty/v1/step-up",
            Some(session),
            Some(body),
        )
        .await
    }

    /// Gives the consent to `purpose` on the text of `version`.
    pub async fn give(&self, session: &str, purpose: &str, version: &str) -> Reply {
        self.send(
            Method::PUT,
            &format!("/loyalty/v1/customers/current/consents/{purpose}"),
            Some(session),
            Some(&json!({ "TextVersion": version })),
        )
        .await
    }

    pub async fn sessions(&self, session: &str) -> Reply {
        self.send(
            Method::GET,
            "/loyalty/v1/customers/current/sessions",
            Some(session),
            None,
        )
        .await
    }
}
