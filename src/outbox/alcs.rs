//! The HTTP client that tells ALCS a card is active.

use std::time::Duration;

use reqwest::StatusCode;

use super::ActivationNotice;

/// Why a notice was not accepted. `permanent` failures (a 4xx other than 408/429) are not
/// retried: sending the same request again would get the same answer.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AlcsError {
    pub permanent: bool,
    /// How long ALCS asked us to wait before the next attempt (`Retry-After` on a 429 or 503).
    pub retry_after: Option<Duration>,
    message: String,
}

/// The longest wait a `Retry-After` may impose: a notice is never parked longer on ALCS's word.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Retry-After`'s value (RFC 9110 section 10.2.3): seconds, or an HTTP-date; capped at
/// [`MAX_RETRY_AFTER`]. A date in the past is no wait; anything else unreadable is ignored.
fn retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    let wait = match value.parse::<u64>() {
        Ok(secs) => Duration::from_secs(secs),
        Err(_) => httpdate::parse_http_date(value)
            .ok()?
            .duration_since(now)
            .unwrap_or_default(),
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

/// What the activation notice is sent with: checked with the other settings, its client built
/// at start-up.
#[derive(Clone, PartialEq, Eq)]
pub struct AlcsSettings {
    /// Contains `{card-number}`; may hold credentials: never logged as it is.
    pub url_template: String,
    pub timeout: Duration,
    /// PEM CA bundle replacing the system roots, and the client certificate (mutual TLS).
    pub tls: crate::tls::ClientFiles,
}

impl AlcsSettings {
    /// Notices to `url_template`, with `cps serve`'s defaults for the rest.
    pub fn at(url_template: &str) -> Self {
        Self {
            url_template: url_template.to_owned(),
            timeout: Duration::from_secs(5),
            tls: crate::tls::ClientFiles::default(),
        }
    }
}

impl std::fmt::Debug for AlcsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlcsSettings")
            .field("timeout", &self.timeout)
            .field("tls", &self.tls)
            .finish_non_exhaustive()
    }
}

/// Why the client cannot be built: which part of the settings is at fault, for the caller to
/// name the setting.
#[derive(Debug, thiserror::Error)]
pub enum AlcsSetupError {
    /// A TLS file ([`crate::tls::ClientFiles::read`]).
    #[error(transparent)]
    Files(crate::setting::Invalid),
    /// The URL template, or the client made from it and the files.
    #[error("{0}")]
    Client(String),
}

#[derive(Clone)]
pub struct AlcsClient {
    http: reqwest::Client,
    /// Contains `{card-number}`.
    url_template: String,
}

/// Whether `url_template` can be the notice's URL: an http(s) URL containing `{card-number}`.
pub fn check_template(url_template: &str) -> Result<(), String> {
    if !url_template.contains("{card-number}") {
        return Err("must contain {card-number}".to_owned());
    }
    let probe = url_template.replace("{card-number}", "0");
    let parsed = reqwest::Url::parse(&probe).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be an http:// or https:// URL".to_owned());
    }
    Ok(())
}

impl AlcsClient {
    /// The client the settings describe, its files read.
    pub fn from_settings(settings: &AlcsSettings) -> Result<Self, AlcsSetupError> {
        let material = settings.tls.read().map_err(AlcsSetupError::Files)?;
        Self::new(&settings.url_template, settings.timeout, &material)
            .map_err(AlcsSetupError::Client)
    }

    /// `url_template` must contain `{card-number}`; `tls.ca_pem` replaces the system roots,
    /// `tls.identity_pem` is presented when ALCS asks for a client certificate.
    pub fn new(
        url_template: &str,
        timeout: Duration,
        tls: &crate::tls::ClientMaterial,
    ) -> Result<Self, String> {
        check_template(url_template)?;
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cps/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &tls.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("no usable CA certificate: {e}"))?;
            builder = builder.tls_built_in_root_certs(false);
            for cert in certs {
                builder = builder.add_root_certificate(cert);
            }
        }
        if let Some((cert, key)) = &tls.identity_pem {
            let identity = reqwest::Identity::from_pem(&[cert.as_slice(), key.as_slice()].concat())
                .map_err(|e| format!("unusable client certificate or key: {e}"))?;
            builder = builder.identity(identity);
        }
        let http = builder
            .build()
            .map_err(|e| format!("cannot build the client: {e}"))?;
        Ok(Self {
            http,
            url_template: url_template.to_owned(),
        })
    }

    /// The template for logs, without any credentials it carries.
    pub fn redacted_template(&self) -> String {
        match reqwest::Url::parse(&self.url_template) {
            Ok(mut url) => {
                let _ = url.set_username("");
                let _ = url.set_password(None);
                url.to_string()
                    .replace("%7Bcard-number%7D", "{card-number}")
            }
            Err(_) => "<unparseable>".to_owned(),
        }
    }

    pub fn url(&self, card_number: &str) -> String {
        self.url_template.replace("{card-number}", card_number)
    }

    /// POSTs the notice; 2xx is delivered. Timeouts, connection errors, 5xx, 408 and 429 are
    /// worth retrying; any other answer is final.
    pub async fn notify(&self, notice: &ActivationNotice) -> Result<(), AlcsError> {
        let started = std::time::Instant::now();
        let result = tracing::Instrument::instrument(
            self.call(notice),
            tracing::info_span!("alcs_call", card_number = %notice.card_number),
        )
        .await;
        let outcome = match &result {
            Ok(()) => "delivered",
            Err(e) if e.permanent => "refused",
            Err(_) => "failed",
        };
        metrics::histogram!(crate::metrics::names::ALCS_CALL, "outcome" => outcome)
            .record(started.elapsed());
        metrics::counter!(crate::metrics::names::ALCS_CALLS, "outcome" => outcome).increment(1);
        result
    }

    async fn call(&self, notice: &ActivationNotice) -> Result<(), AlcsError> {
        let response = self
            .http
            .post(self.url(&notice.card_number))
            .header("Idempotency-Key", &notice.event_id)
            .json(&notice.body())
            .send()
            .await
            .map_err(|e| AlcsError {
                permanent: false,
                retry_after: None,
                message: format!("ALCS unreachable: {}", crate::error_chain(&e.without_url())),
            })?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry = status.is_server_error()
            || status == StatusCode::REQUEST_TIMEOUT
            || status == StatusCode::TOO_MANY_REQUESTS;
        let asked = matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        );
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .filter(|_| asked)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, std::time::SystemTime::now()));
        Err(AlcsError {
            permanent: !retry,
            retry_after,
            message: match retry_after {
                Some(wait) => format!("ALCS answered {status}, retry after {} s", wait.as_secs()),
                None => format!("ALCS answered {status}"),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date_and_capped() {
        let now = httpdate::parse_http_date("Fri, 04 Dec 2026 10:00:00 GMT").unwrap();
        assert_eq!(retry_after("7", now), Some(Duration::from_secs(7)));
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 10:00:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            retry_after("Fri, 04 Dec 2026 09:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(retry_after("999999", now), Some(MAX_RETRY_AFTER));
        assert_eq!(retry_after("soon", now), None);
        assert_eq!(retry_after("-1", now), None);
    }

    #[test]
    fn the_template_needs_the_card_number_and_a_web_scheme() {
        let t = Duration::from_secs(1);
        let none = crate::tls::ClientMaterial::default();
        assert!(AlcsClient::new("https://alcs/x/{card-number}/activation", t, &none).is_ok());
        assert!(AlcsClient::new("https://alcs/x/activation", t, &none).is_err());
        assert!(AlcsClient::new("ftp://alcs/{card-number}", t, &none).is_err());
        assert!(AlcsClient::new("not a url {card-number}", t, &none).is_err());
        let c = AlcsClient::new("http://a/{card-number}/activation", t, &none).unwrap();
        assert_eq!(c.url("0423"), "http://a/0423/activation");
        let c = AlcsClient::new("https://u:pw@a/x/{card-number}/activation", t, &none).unwrap();
        assert_eq!(
            c.redacted_template(),
            "https://a/x/{card-number}/activation"
        );
    }
}
