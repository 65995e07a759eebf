//! The operator's SMS gateway (`--sms-gateway-url`): what a text message is, and the client that
//! hands it over. The outbox kind that delivers messages through it is [`super::sms`].
//!
//! Two request formats: a plain JSON webhook (`{"To", "Text", "MessageId"}`, bearer token), and
//! SMSAPI's (smsapi.pl, a gateway used in Poland: a form POST to `/sms.do` with `to`,
//! `message`, `format=json`, `idx` for deduplication, bearer token).

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// How requests to the gateway are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SmsFormat {
    /// `POST {url}` with `{"To": "+48…", "Text": "…", "MessageId": "…"}`.
    #[default]
    Webhook,
    /// SMSAPI's `POST {url}` (e.g. `https://api.smsapi.pl/sms.do`), form-encoded.
    Smsapi,
}

impl SmsFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "webhook" => Some(Self::Webhook),
            "smsapi" => Some(Self::Smsapi),
            _ => None,
        }
    }
}

/// Where text messages go.
#[derive(Clone, PartialEq, Eq)]
pub struct SmsSettings {
    /// May hold credentials: never logged as it is.
    pub url: String,
    pub format: SmsFormat,
    /// The gateway's bearer token, read from this file (never from the command line).
    pub token_file: Option<PathBuf>,
    /// The sender name SMSAPI shows (`from`), when the account has one.
    pub sender: Option<String>,
    pub timeout: Duration,
}

impl SmsSettings {
    pub fn at(url: &str) -> Self {
        Self {
            url: url.to_owned(),
            format: SmsFormat::default(),
            token_file: None,
            sender: None,
            timeout: Duration::from_secs(5),
        }
    }
}

impl std::fmt::Debug for SmsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmsSettings")
            .field("format", &self.format)
            .field("token_file", &self.token_file)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Whether `url` can be the gateway's: an http(s) URL.
pub fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".to_owned());
    }
    Ok(())
}

/// Why a message was not accepted; `permanent` failures are not retried. The text names no
/// number and no code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SmsError {
    pub permanent: bool,
    message: String,
}

#[derive(Clone)]
pub struct SmsClient {
    http: reqwest::Client,
    url: String,
    format: SmsFormat,
    token: Option<String>,
    sender: Option<String>,
}

impl SmsClient {
    /// The client the settings describe, its token file read.
    pub fn from_settings(settings: &SmsSettings) -> Result<Self, String> {
        check_url(&settings.url)?;
        let token = match &settings.token_file {
            Some(file) => {
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read the token file {}: {e}", file.display()))?;
                let token = text.trim().to_owned();
                if token.is_empty() {
                    return Err(format!("the token file {} is empty", file.display()));
                }
                Some(token)
            }
            None => None,
        };
        let http = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cps/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the client: {e}"))?;
        Ok(Self {
            http,
            url: settings.url.clone(),
            format: settings.format,
            token,
            sender: settings.sender.clone(),
        })
    }

    pub(super) async fn send(&self, message: &SmsMessage) -> Result<(), SmsError> {
        let request = self.http.post(&self.url);
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let request =
            match self.format {
                SmsFormat::Webhook => request.header("Idempotency-Key", &message.message_id).json(
                    &serde_json::json!({
                        "To": message.to,
                        "Text": message.text,
                        "MessageId": message.message_id,
                    }),
                ),
                SmsFormat::Smsapi => {
                    // SMSAPI takes the number without `+`; `idx` with `check_idx` refuses a second
                    // message of the same id (a redelivery after a crash).
                    let mut form = vec![
                        ("to", message.to.trim_start_matches('+').to_owned()),
                        ("message", message.text.clone()),
                        ("format", "json".to_owned()),
                        ("encoding", "utf-8".to_owned()),
                        ("idx", message.message_id.clone()),
                        ("check_idx", "1".to_owned()),
                    ];
                    if let Some(sender) = &self.sender {
                        form.push(("from", sender.clone()));
                    }
                    request.form(&form)
                }
            };
        let response = request.send().await.map_err(|e| SmsError {
            permanent: false,
            message: format!(
                "SMS gateway unreachable: {}",
                crate::error_chain(&e.without_url())
            ),
        })?;
        let status = response.status();
        if !status.is_success() {
            let retry = status.is_server_error()
                || status == reqwest::StatusCode::REQUEST_TIMEOUT
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS;
            return Err(SmsError {
                permanent: !retry,
                message: format!("SMS gateway answered {status}"),
            });
        }
        if self.format == SmsFormat::Smsapi {
            // SMSAPI answers some refusals with 200 and `{"error": N, "message": …}`.
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            if let Some(code) = body.get("error").and_then(serde_json::Value::as_i64) {
                // 105 (idx already used): this message was sent already.
                if code == 105 {
                    return Ok(());
                }
                // Server-side trouble (8, 201, 999) may pass; the rest (bad number,
                // authorization, no points) will not.
                let passing = matches!(code, 8 | 201 | 999);
                return Err(SmsError {
                    permanent: !passing,
                    message: format!("SMSAPI refused the message: error {code}"),
                });
            }
        }
        Ok(())
    }
}

/// One text message: its id (the gateway deduplicates on it), the number, the text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct SmsMessage {
    pub message_id: String,
    /// E.164.
    pub to: String,
    pub text: String,
}

impl SmsMessage {
    pub fn new(to: &crate::domain::PhoneNumber, text: String) -> Self {
        Self {
            message_id: uuid::Uuid::new_v4().simple().to_string(),
            to: to.as_str().to_owned(),
            text,
        }
    }
}
