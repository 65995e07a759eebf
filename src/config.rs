//! Settings: defaults, then `CPS_*` environment variables, then flags (flags win). Everything is
//! checked before the service starts; a bad value stops it with one line naming the setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::{Country, Language};

#[derive(Debug, Parser)]
#[command(
    name = "cps",
    version,
    about = "Customer Portal Server: the loyalty-card API that ALCS calls"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub settings: Settings,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum Command {
    /// Serve the API (what runs when no command is given).
    Serve,
}

/// The raw settings as given. Values stay strings here so that every mistake is reported by
/// [`Config::from_settings`] in the same one-line form.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address and port to serve on.
    #[arg(
        long,
        env = "CPS_LISTEN",
        default_value = "127.0.0.1:8080",
        global = true
    )]
    pub listen: String,
    /// Database URL: `sqlite://FILE` (created and migrated on start).
    #[arg(
        long,
        env = "CPS_DATABASE_URL",
        default_value = "sqlite://cps.db",
        global = true
    )]
    pub database_url: String,
    /// Language of error messages when the request names none we know (`pl_PL` or `en_US`).
    #[arg(
        long,
        env = "CPS_DEFAULT_LANGUAGE",
        default_value = "pl_PL",
        global = true
    )]
    pub default_language: String,
    /// Country (ISO 3166 alpha-2) whose numbering plan applies to national phone numbers.
    #[arg(long, env = "CPS_DEFAULT_COUNTRY", default_value = "PL", global = true)]
    pub default_country: String,
    /// Seconds a request may take before it is answered 503 `Timeout`.
    #[arg(
        long,
        env = "CPS_REQUEST_TIMEOUT_SECS",
        default_value = "10",
        global = true
    )]
    pub request_timeout_secs: String,
    /// PEM certificate chain: serve HTTPS (TLS 1.2/1.3) instead of plain HTTP.
    #[arg(long, env = "CPS_TLS_CERT", global = true)]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for `--tls-cert`.
    #[arg(long, env = "CPS_TLS_KEY", global = true)]
    pub tls_key: Option<PathBuf>,
    /// PEM CA certificates: require client certificates signed by them (mutual TLS).
    #[arg(long, env = "CPS_TLS_CLIENT_CA", global = true)]
    pub tls_client_ca: Option<PathBuf>,
    /// Allow plain HTTP on a non-loopback address (e.g. behind a TLS-terminating proxy).
    #[arg(long, env = "CPS_PLAIN_HTTP", global = true)]
    pub plain_http: bool,
}

/// Checked configuration.
#[derive(Clone)]
pub struct Config {
    pub listen: SocketAddr,
    pub database_url: String,
    pub default_language: Language,
    pub default_country: Country,
    pub request_timeout: Duration,
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("default_language", &self.default_language)
            .field("default_country", &self.default_country)
            .field("request_timeout", &self.request_timeout)
            .field("tls", &self.tls.is_some())
            .finish_non_exhaustive()
    }
}

impl Config {
    pub fn from_settings(s: &Settings) -> Result<Self, String> {
        let listen: SocketAddr = s.listen.parse().map_err(|_| {
            format!(
                "--listen / CPS_LISTEN: {:?} is not an address and port such as 127.0.0.1:8080",
                s.listen
            )
        })?;
        if !s.database_url.starts_with("sqlite:") {
            return Err(
                "--database-url / CPS_DATABASE_URL: unsupported database URL (expected sqlite://FILE)"
                    .to_owned(),
            );
        }
        let default_language = Language::recognize(&s.default_language).ok_or_else(|| {
            format!(
                "--default-language / CPS_DEFAULT_LANGUAGE: {:?} is not pl_PL or en_US",
                s.default_language
            )
        })?;
        let default_country = Country::parse(&s.default_country).ok_or_else(|| {
            format!(
                "--default-country / CPS_DEFAULT_COUNTRY: {:?} is not a known ISO 3166 country code such as PL",
                s.default_country
            )
        })?;
        let request_timeout = s
            .request_timeout_secs
            .parse::<u64>()
            .ok()
            .filter(|&n| (1..=600).contains(&n))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                format!(
                    "--request-timeout-secs / CPS_REQUEST_TIMEOUT_SECS: {:?} is not a whole number of seconds from 1 to 600",
                    s.request_timeout_secs
                )
            })?;
        let tls = match (&s.tls_cert, &s.tls_key) {
            (Some(cert), Some(key)) => Some(crate::tls::server_config(
                cert,
                key,
                s.tls_client_ca.as_deref(),
            )?),
            (None, None) if s.tls_client_ca.is_some() => {
                return Err(
                    "--tls-client-ca / CPS_TLS_CLIENT_CA: needs --tls-cert and --tls-key"
                        .to_owned(),
                );
            }
            (None, None) => None,
            (Some(_), None) => {
                return Err("--tls-key / CPS_TLS_KEY: required with --tls-cert".to_owned());
            }
            (None, Some(_)) => {
                return Err("--tls-cert / CPS_TLS_CERT: required with --tls-key".to_owned());
            }
        };
        if tls.is_none() && !listen.ip().is_loopback() && !s.plain_http {
            return Err(format!(
                "--listen / CPS_LISTEN: {listen} is not a loopback address; serve TLS (--tls-cert, --tls-key) or choose plain HTTP explicitly with --plain-http / CPS_PLAIN_HTTP"
            ));
        }
        Ok(Self {
            listen,
            database_url: s.database_url.clone(),
            default_language,
            default_country,
            request_timeout,
            tls,
        })
    }
}
