//! Settings: defaults, then `CPS_*` environment variables, then flags (flags win). Everything is
//! checked before the service starts; a bad value stops it with one line naming the setting.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::domain::{Country, Language};
use crate::outbox::alcs::AlcsSettings;

#[derive(Debug, Parser)]
#[command(
    name = "cps",
    version,
    about = "Customer Portal Server: the loyalty-card API that ALCS calls"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// How log lines are written to standard error: `text` for people, `json` (one object per
    /// line) for log collectors.
    #[arg(
        long,
        env = "CPS_LOG_FORMAT",
        value_enum,
        default_value = "text",
        global = true
    )]
    pub log_format: LogFormat,
    /// Export spans over OTLP/HTTP to this collector URL, e.g.
    /// `http://127.0.0.1:4318/v1/traces` (built with the `otlp` feature only).
    #[cfg(feature = "otlp")]
    #[arg(long, env = "CPS_OTLP_ENDPOINT", global = true)]
    pub otlp_endpoint: Option<String>,
    #[command(flatten)]
    pub settings: Settings,
}

/// The settings the database and cache commands (`migrate`, `cache`, `outbox`) read; the rest
/// only matter to `serve`.
const TOOL_SETTINGS: [&str; 10] = [
    "database_url",
    "database_max_connections",
    "database_timeout_secs",
    "redis_url",
    "redis_prefix",
    "redis_timeout_ms",
    "redis_ca_file",
    "redis_client_cert",
    "redis_client_key",
    "log_format",
];

/// The settings `cps support …` reads.
const SUPPORT_SETTINGS: [&str; 2] = ["support_tokens_file", "log_format"];

impl Cli {
    /// Parses the command line. Every setting may be given before or after the command
    /// (`cps --listen … serve`, `cps serve --listen …`), but the help of a maintenance command
    /// (`cps outbox --help`) lists only the settings it reads.
    pub fn parse_args() -> Self {
        use clap::{CommandFactory as _, FromArgMatches as _};
        let mut command = Self::command();
        // A subcommand that has an argument of its own is not given the global one of that
        // name: give each maintenance command hidden copies of the serving settings.
        let hidden_beside = |reads: &[&str]| -> Vec<clap::Arg> {
            command
                .get_arguments()
                .filter(|a| a.is_global_set() && !reads.contains(&a.get_id().as_str()))
                .map(|a| a.clone().hide(true))
                .collect()
        };
        let (others, support) = (
            hidden_beside(&TOOL_SETTINGS),
            hidden_beside(&SUPPORT_SETTINGS),
        );
        let names: Vec<String> = command
            .get_subcommands()
            .filter(|c| c.get_name() != "serve")
            .map(|c| c.get_name().to_owned())
            .collect();
        for name in names {
            let hidden = if name == "support" { &support } else { &others };
            command = command.mut_subcommand(name, |c| with_hidden(c, hidden));
        }
        let matches = command.get_matches();
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// `command` and its subcommands with `args` added, hidden from their help.
fn with_hidden(mut command: clap::Command, args: &[clap::Arg]) -> clap::Command {
    command = command.args(args.iter().cloned());
    let names: Vec<String> = command
        .get_subcommands()
        .map(|c| c.get_name().to_owned())
        .collect();
    for name in names {
        command = command.mut_subcommand(name, |c| with_hidden(c, args));
    }
    command
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Serve the API (what runs when no command is given).
    Serve,
    /// Apply pending database migrations, then exit.
    Migrate,
    /// Maintain the Redis customer cache.
    #[command(subcommand)]
    Cache(CacheCommand),
    /// Write the API's OpenAPI 3.1 document (to standard output, or to FILE), then exit.
    Openapi {
        /// Where to write it.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Show pending, failed and dead outbox events (counts and the oldest).
    Outbox {
        #[command(subcommand)]
        action: Option<OutboxCommand>,
    },
    /// Manage the service desk API's users.
    #[command(subcommand)]
    Support(SupportCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum SupportCommand {
    /// Manage the desk users' tokens (in --support-tokens-file).
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Clone, Subcommand)]
pub enum TokenCommand {
    /// Add a desk user with a new random token: the token is printed once, only its hash is
    /// stored.
    Add {
        /// The user's name, recorded with each of their changes (1 to 64 of A-Z a-z 0-9 . _ @ -).
        name: String,
        /// `viewer` (look-ups and history) or `agent` (everything).
        role: String,
    },
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum OutboxCommand {
    /// Put dead (and never-sent) events back in the queue.
    Retry,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum CacheCommand {
    /// Rewrite every card and customer hash from the database (safe while the service runs).
    Rebuild {
        /// Overwrite hashes even when Redis holds a newer version (e.g. after restoring the
        /// database from a backup). Not safe while the service writes.
        #[arg(long)]
        force: bool,
        /// Cards read and written per batch.
        #[arg(long, default_value_t = 500)]
        batch_size: i64,
    },
    /// Compare the database with the cache and list every difference; exit code 1 on drift.
    Verify {
        /// Cards read per batch.
        #[arg(long, default_value_t = 500)]
        batch_size: i64,
    },
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
    /// Address and port of the admin listener (`/metrics`, `/health/ready`, `/health/live`),
    /// never the API's; `off` serves none. The default port is outside 9090-9999, which
    /// Prometheus, its own servers and its exporters take.
    #[arg(
        long,
        env = "CPS_ADMIN_LISTEN",
        default_value = "127.0.0.1:8079",
        global = true
    )]
    pub admin_listen: String,
    /// Address and port of the service desk's API (`/support/v1/…`), never the ALCS
    /// listener's; `off` (the default) serves none. Needs --support-tokens-file.
    #[arg(long, env = "CPS_SUPPORT_LISTEN", default_value = "off", global = true)]
    pub support_listen: String,
    /// The desk's users: lines of `name, role, sha256(token)` (see `cps support token add`);
    /// read again on SIGHUP.
    #[arg(long, env = "CPS_SUPPORT_TOKENS_FILE", global = true)]
    pub support_tokens_file: Option<PathBuf>,
    /// Unknown desk tokens tolerated per client address and minute; then that address is
    /// refused (429) until the oldest failure is a minute old. Raise it for a desk office
    /// behind one NAT address.
    #[arg(
        long,
        env = "CPS_SUPPORT_AUTH_FAILURES",
        default_value = "10",
        global = true
    )]
    pub support_auth_failures: String,
    /// Seconds a console session may go unused before the desk user signs in again.
    #[arg(
        long,
        env = "CPS_SUPPORT_SESSION_IDLE_SECS",
        default_value = "1800",
        global = true
    )]
    pub support_session_idle_secs: String,
    /// Seconds after sign-in at which a console session ends, however much it is used.
    #[arg(
        long,
        env = "CPS_SUPPORT_SESSION_MAX_SECS",
        default_value = "43200",
        global = true
    )]
    pub support_session_max_secs: String,
    /// Database URL: `sqlite://FILE` (created and migrated on start) or `postgres://…`; TLS to
    /// PostgreSQL with `?sslmode=verify-full&sslrootcert=CA.pem` (also `require`, `verify-ca`,
    /// and a client certificate with `sslcert=…&sslkey=…`). One host: the endpoint that follows
    /// the primary (several hosts and `target_session_attrs` are refused).
    #[arg(
        long,
        env = "CPS_DATABASE_URL",
        default_value = "sqlite://cps.db",
        global = true,
        hide_env_values = true
    )]
    pub database_url: String,
    /// Connections in the PostgreSQL pool.
    #[arg(
        long,
        env = "CPS_DATABASE_MAX_CONNECTIONS",
        default_value = "8",
        global = true
    )]
    pub database_max_connections: String,
    /// Seconds an operation may wait for a connection, a lock or a statement before it is
    /// answered 503 (database unavailable or saturated).
    #[arg(
        long,
        env = "CPS_DATABASE_TIMEOUT_SECS",
        default_value = "5",
        global = true
    )]
    pub database_timeout_secs: String,
    /// Redis URL of the customer cache ALCS reads (`redis://host:6379/0`, or `rediss://…` over
    /// TLS; a master Sentinel names: `redis+sentinel://host1:26379,host2:26379/MASTER[/db]`,
    /// `rediss+sentinel://…`; a Redis Cluster: `redis+cluster://host1:6379,host2:6379`,
    /// `rediss+cluster://…`); unset: no cache.
    // URLs may carry passwords: `--help` must not print the environment's values.
    #[arg(long, env = "CPS_REDIS_URL", global = true, hide_env_values = true)]
    pub redis_url: Option<String>,
    /// PEM CA certificates to verify a `rediss://` server with, instead of the system roots.
    #[arg(long, env = "CPS_REDIS_CA_FILE", global = true)]
    pub redis_ca_file: Option<PathBuf>,
    /// PEM client certificate chain presented to a `rediss://` server that asks for one.
    #[arg(long, env = "CPS_REDIS_CLIENT_CERT", global = true)]
    pub redis_client_cert: Option<PathBuf>,
    /// PEM private key of `--redis-client-cert`.
    #[arg(long, env = "CPS_REDIS_CLIENT_KEY", global = true)]
    pub redis_client_key: Option<PathBuf>,
    /// Prefix of every cache key (`card:…`, `customer:…` follow it).
    #[arg(long, env = "CPS_REDIS_PREFIX", default_value = "", global = true)]
    pub redis_prefix: String,
    /// Milliseconds a Redis connect or command may take.
    #[arg(
        long,
        env = "CPS_REDIS_TIMEOUT_MS",
        default_value = "500",
        global = true
    )]
    pub redis_timeout_ms: String,
    /// Seconds between two looks at the cache's marker key (an emptied cache is refilled);
    /// 0: never look (no automatic refill).
    #[arg(long, env = "CPS_CACHE_CHECK_SECS", default_value = "5", global = true)]
    pub cache_check_secs: String,
    /// Milliseconds between looks for due outbox rows when idle.
    #[arg(
        long,
        env = "CPS_OUTBOX_POLL_MS",
        default_value = "1000",
        global = true
    )]
    pub outbox_poll_ms: String,
    /// Longest wait in seconds between two delivery attempts of one outbox row.
    #[arg(
        long,
        env = "CPS_OUTBOX_MAX_BACKOFF_SECS",
        default_value = "60",
        global = true
    )]
    pub outbox_max_backoff_secs: String,
    /// Attempts after which an ALCS notice becomes a dead letter.
    #[arg(
        long,
        env = "CPS_OUTBOX_MAX_ATTEMPTS",
        default_value = "10",
        global = true
    )]
    pub outbox_max_attempts: String,
    /// Seconds after which a still-failing ALCS notice becomes a dead letter.
    #[arg(
        long,
        env = "CPS_OUTBOX_MAX_AGE_SECS",
        default_value = "86400",
        global = true
    )]
    pub outbox_max_age_secs: String,
    /// Where to tell ALCS a card was activated: a URL containing `{card-number}`. Unset: the
    /// notices are recorded as not sent.
    #[arg(
        long,
        env = "CPS_ALCS_ACTIVATION_URL",
        global = true,
        hide_env_values = true
    )]
    pub alcs_activation_url: Option<String>,
    /// Milliseconds one call to ALCS may take (connect and answer).
    #[arg(
        long,
        env = "CPS_ALCS_TIMEOUT_MS",
        default_value = "5000",
        global = true
    )]
    pub alcs_timeout_ms: String,
    /// PEM CA bundle to verify ALCS's HTTPS certificate with, instead of the system roots.
    #[arg(long, env = "CPS_ALCS_CA_FILE", global = true)]
    pub alcs_ca_file: Option<PathBuf>,
    /// PEM client certificate chain presented to ALCS (mutual TLS).
    #[arg(long, env = "CPS_ALCS_CLIENT_CERT", global = true)]
    pub alcs_client_cert: Option<PathBuf>,
    /// PEM private key of `--alcs-client-cert`.
    #[arg(long, env = "CPS_ALCS_CLIENT_KEY", global = true)]
    pub alcs_client_key: Option<PathBuf>,
    /// Seconds between two passes of the pruning job over the tables that grow (delivered
    /// notices, the audit trail, expired failures, leases and sessions); 0: never prune.
    #[arg(
        long,
        env = "CPS_PRUNE_INTERVAL_SECS",
        default_value = "300",
        global = true
    )]
    pub prune_interval_secs: String,
    /// Days an ALCS notice is kept after delivery (the record that ALCS was told).
    #[arg(
        long,
        env = "CPS_DELIVERED_RETENTION_DAYS",
        default_value = "90",
        global = true
    )]
    pub delivered_retention_days: String,
    /// Days the audit trail is kept (2,192: six years, the Polish limitation period).
    #[arg(
        long,
        env = "CPS_AUDIT_RETENTION_DAYS",
        default_value = "2192",
        global = true
    )]
    pub audit_retention_days: String,
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
    /// Open client connections at most. At the limit the connection idle the longest is closed
    /// to make room; when all are busy, accepting waits.
    #[arg(
        long,
        env = "CPS_MAX_CONNECTIONS",
        default_value = "2048",
        global = true
    )]
    pub max_connections: String,
    /// Requests in progress at most; beyond it a request waits for a place (see
    /// `--max-queued`).
    #[arg(long, env = "CPS_MAX_IN_FLIGHT", default_value = "12", global = true)]
    pub max_in_flight: String,
    /// Requests waiting for a place at most; beyond it a request is answered 503
    /// `ServiceUnavailable` with `Retry-After` at once instead of queueing.
    #[arg(long, env = "CPS_MAX_QUEUED", default_value = "36", global = true)]
    pub max_queued: String,
    /// Seconds a client has to send a request's headers (and a new connection its first
    /// request) before the connection is closed.
    #[arg(
        long,
        env = "CPS_HEADER_TIMEOUT_SECS",
        default_value = "10",
        global = true
    )]
    pub header_timeout_secs: String,
    /// Seconds a request's body may take to arrive before it is answered 408.
    #[arg(
        long,
        env = "CPS_BODY_TIMEOUT_SECS",
        default_value = "5",
        global = true
    )]
    pub body_timeout_secs: String,
    /// Seconds a connection may stay open with no request in progress. (HTTP/1.1 waits for
    /// the next request under the header timeout too: the shorter of the two applies.)
    #[arg(
        long,
        env = "CPS_IDLE_TIMEOUT_SECS",
        default_value = "10",
        global = true
    )]
    pub idle_timeout_secs: String,
    /// Seconds the service keeps accepting requests after SIGTERM while readiness already
    /// answers 503, so that load balancers take it out of rotation before it stops listening.
    #[arg(
        long,
        env = "CPS_SHUTDOWN_DELAY_SECS",
        default_value = "5",
        global = true
    )]
    pub shutdown_delay_secs: String,
    /// Seconds requests in progress get to finish once the service stops accepting.
    #[arg(
        long,
        env = "CPS_SHUTDOWN_GRACE_SECS",
        default_value = "10",
        global = true
    )]
    pub shutdown_grace_secs: String,
    /// Seconds a TLS handshake may take.
    #[arg(
        long,
        env = "CPS_TLS_HANDSHAKE_TIMEOUT_SECS",
        default_value = "10",
        global = true
    )]
    pub tls_handshake_timeout_secs: String,
    /// Browser origins (`https://desk.example.com`, comma-separated) allowed to send requests
    /// that change cards; empty: any request carrying an `Origin` header is refused with 403.
    #[arg(long, env = "CPS_ALLOWED_ORIGINS", default_value = "", global = true)]
    pub allowed_origins: String,
    /// Failed activations (wrong phone number) of one card after which further attempts are
    /// refused with 429 until the window passes.
    #[arg(
        long,
        env = "CPS_ACTIVATION_MAX_FAILURES",
        default_value = "5",
        global = true
    )]
    pub activation_max_failures: String,
    /// Seconds over which failed activations are counted.
    #[arg(
        long,
        env = "CPS_ACTIVATION_WINDOW_SECS",
        default_value = "900",
        global = true
    )]
    pub activation_window_secs: String,
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

/// Checked configuration, in groups: what each part of the service is built from.
#[derive(Debug, Clone)]
pub struct Config {
    pub http: HttpConfig,
    pub database: DatabaseConfig,
    /// The Redis customer cache, when one is configured.
    pub redis: Option<RedisConfig>,
    pub outbox: crate::outbox::worker::WorkerConfig,
    /// Where activation notices go, when configured.
    pub alcs: Option<AlcsSettings>,
    /// HTTPS, when configured (only looked at when serving).
    pub tls: Option<TlsConfig>,
    /// Which side effects writes record (follows from `redis` and `alcs`).
    pub policy: crate::service::Policy,
    /// The pruning job.
    pub housekeeping: crate::service::housekeeping::HousekeepingConfig,
}

/// The ALCS-facing listener and how requests on it are handled.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    pub listen: SocketAddr,
    /// The admin listener, if any.
    pub admin_listen: Option<SocketAddr>,
    /// The service desk's listener and its users, if the desk API is served.
    pub support: Option<SupportConfig>,
    pub default_language: Language,
    pub default_country: Country,
    pub request_timeout: Duration,
    /// How connections are bounded.
    pub connections: crate::server::Limits,
    /// What one request may hold and how long it may take to arrive.
    pub requests: crate::http::RequestLimits,
    /// How long the listeners keep accepting after a shutdown signal (readiness says 503).
    pub shutdown_delay: Duration,
}

/// The service desk's API: where it listens, and who may use it.
#[derive(Debug, Clone)]
pub struct SupportConfig {
    pub listen: SocketAddr,
    pub tokens_file: PathBuf,
    /// Failed authentications tolerated per address and minute.
    pub max_auth_failures: usize,
    /// How long a console session lasts.
    pub sessions: crate::service::sessions::SessionLimits,
}

/// The system of record.
#[derive(Clone)]
pub struct DatabaseConfig {
    /// May hold a password: never logged as it is.
    pub url: String,
    pub store: crate::store::StoreOptions,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

#[derive(Clone)]
pub struct RedisConfig {
    /// May hold a password: never logged as it is.
    pub url: String,
    pub prefix: String,
    pub timeout: Duration,
    /// How often the cache's marker is checked (an emptied cache is refilled); `None`: never.
    pub check: Option<Duration>,
    /// A `rediss://` server's CA and the client's certificate, when given (read at start-up).
    pub tls: crate::tls::ClientFiles,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("prefix", &self.prefix)
            .field("timeout", &self.timeout)
            .field("check", &self.check)
            .finish_non_exhaustive()
    }
}

/// HTTPS: the files, read (and the rustls configuration built) at start-up.
#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Require client certificates signed by these CAs (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// A setting the service cannot start with; the text names it (`--flag / CPS_VARIABLE: …`).
/// Found while checking the settings, or while building from them at start-up (a certificate
/// file that does not parse); either way `cps` exits with status 2.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingError(pub String);

/// A whole number within `range`, or an error line naming the setting.
fn number(value: &str, setting: &str, range: std::ops::RangeInclusive<u64>) -> Result<u64, String> {
    value
        .trim()
        .parse::<u64>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            format!(
                "{setting}: {value:?} is not a whole number from {} to {}",
                range.start(),
                range.end()
            )
        })
}

fn secs(
    value: &str,
    setting: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, String> {
    number(value, setting, range).map(Duration::from_secs)
}

fn millis(
    value: &str,
    setting: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<Duration, String> {
    number(value, setting, range).map(Duration::from_millis)
}

fn count(
    value: &str,
    setting: &str,
    range: std::ops::RangeInclusive<u64>,
) -> Result<usize, String> {
    number(value, setting, range).map(|n| usize::try_from(n).unwrap_or(usize::MAX))
}

impl Config {
    /// Checks every setting, for serving.
    pub fn from_settings(s: &Settings) -> Result<Self, String> {
        Self::build(s, true)
    }

    /// Checks the settings a maintenance command (`migrate`, `cache …`) uses; the listener and
    /// TLS settings are not looked at.
    pub fn for_tools(s: &Settings) -> Result<Self, String> {
        Self::build(s, false)
    }

    fn build(s: &Settings, serving: bool) -> Result<Self, String> {
        let http = HttpConfig::check(s)?;
        let tls = if serving { TlsConfig::check(s)? } else { None };
        if serving && tls.is_none() && !http.listen.ip().is_loopback() && !s.plain_http {
            return Err(format!(
                "--listen / CPS_LISTEN: {} is not a loopback address; serve TLS (--tls-cert, --tls-key) or choose plain HTTP explicitly with --plain-http / CPS_PLAIN_HTTP",
                http.listen
            ));
        }
        // Bearer tokens in the clear off this host: the same explicit choice.
        if let Some(support) = http.support.as_ref().filter(|_| serving)
            && tls.is_none()
            && !support.listen.ip().is_loopback()
            && !s.plain_http
        {
            return Err(format!(
                "--support-listen / CPS_SUPPORT_LISTEN: {} is not a loopback address; serve TLS (--tls-cert, --tls-key) or choose plain HTTP explicitly with --plain-http / CPS_PLAIN_HTTP",
                support.listen
            ));
        }
        // Parsed once: each group's own, and together they bound one delivery (the outbox's lease).
        let redis_timeout = millis(
            &s.redis_timeout_ms,
            "--redis-timeout-ms / CPS_REDIS_TIMEOUT_MS",
            1..=60_000,
        )?;
        let alcs_timeout = millis(
            &s.alcs_timeout_ms,
            "--alcs-timeout-ms / CPS_ALCS_TIMEOUT_MS",
            1..=600_000,
        )?;
        let redis = RedisConfig::check(s, redis_timeout)?;
        let alcs = check_alcs(s, alcs_timeout)?;
        let outbox = outbox(s, redis_timeout.max(alcs_timeout))?;
        let database = DatabaseConfig::check(s, serving)?;
        let day = |value: &str, setting: &str| secs(value, setting, 1..=36_500).map(|d| d * 86_400);
        let prune_every = number(
            &s.prune_interval_secs,
            "--prune-interval-secs / CPS_PRUNE_INTERVAL_SECS",
            0..=86_400,
        )?;
        let housekeeping = crate::service::housekeeping::HousekeepingConfig {
            interval: (prune_every > 0).then(|| Duration::from_secs(prune_every)),
            delivered: day(
                &s.delivered_retention_days,
                "--delivered-retention-days / CPS_DELIVERED_RETENTION_DAYS",
            )?,
            audit: day(
                &s.audit_retention_days,
                "--audit-retention-days / CPS_AUDIT_RETENTION_DAYS",
            )?,
            activation_window: database.store.activation_limit.window,
            ..Default::default()
        };
        Ok(Self {
            http,
            database,
            housekeeping,
            policy: crate::service::Policy {
                cache: redis.is_some(),
                alcs_notices: alcs.is_some(),
            },
            redis,
            outbox,
            alcs,
            tls,
        })
    }
}

impl HttpConfig {
    fn check(s: &Settings) -> Result<Self, String> {
        let listen: SocketAddr = s.listen.parse().map_err(|_| {
            format!(
                "--listen / CPS_LISTEN: {:?} is not an address and port such as 127.0.0.1:8080",
                s.listen
            )
        })?;
        let admin_listen = match s.admin_listen.as_str() {
            "off" => None,
            addr => Some(addr.parse().map_err(|_| {
                format!(
                    "--admin-listen / CPS_ADMIN_LISTEN: {addr:?} is not an address and port such as 127.0.0.1:8079, or off"
                )
            })?),
        };
        let support = match (s.support_listen.as_str(), &s.support_tokens_file) {
            ("off", _) => None,
            (addr, file) => {
                let listen = addr.parse().map_err(|_| {
                    format!(
                        "--support-listen / CPS_SUPPORT_LISTEN: {addr:?} is not an address and port such as 127.0.0.1:8443, or off"
                    )
                })?;
                let tokens_file = file.clone().ok_or(
                    "--support-tokens-file / CPS_SUPPORT_TOKENS_FILE: required with --support-listen (create it with `cps support token add NAME ROLE`)",
                )?;
                Some(SupportConfig {
                    listen,
                    tokens_file,
                    max_auth_failures: count(
                        &s.support_auth_failures,
                        "--support-auth-failures / CPS_SUPPORT_AUTH_FAILURES",
                        1..=100_000,
                    )?,
                    sessions: crate::service::sessions::SessionLimits {
                        idle: secs(
                            &s.support_session_idle_secs,
                            "--support-session-idle-secs / CPS_SUPPORT_SESSION_IDLE_SECS",
                            1..=86_400,
                        )?,
                        absolute: secs(
                            &s.support_session_max_secs,
                            "--support-session-max-secs / CPS_SUPPORT_SESSION_MAX_SECS",
                            1..=604_800,
                        )?,
                    },
                })
            }
        };
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
        let connections = crate::server::Limits {
            max_connections: count(
                &s.max_connections,
                "--max-connections / CPS_MAX_CONNECTIONS",
                1..=1_000_000,
            )?,
            header_timeout: secs(
                &s.header_timeout_secs,
                "--header-timeout-secs / CPS_HEADER_TIMEOUT_SECS",
                1..=600,
            )?,
            idle_timeout: secs(
                &s.idle_timeout_secs,
                "--idle-timeout-secs / CPS_IDLE_TIMEOUT_SECS",
                1..=86_400,
            )?,
            tls_handshake_timeout: secs(
                &s.tls_handshake_timeout_secs,
                "--tls-handshake-timeout-secs / CPS_TLS_HANDSHAKE_TIMEOUT_SECS",
                1..=600,
            )?,
            grace: secs(
                &s.shutdown_grace_secs,
                "--shutdown-grace-secs / CPS_SHUTDOWN_GRACE_SECS",
                0..=3600,
            )?,
        };
        let requests = crate::http::RequestLimits {
            max_in_flight: count(
                &s.max_in_flight,
                "--max-in-flight / CPS_MAX_IN_FLIGHT",
                1..=100_000,
            )?,
            max_queued: count(&s.max_queued, "--max-queued / CPS_MAX_QUEUED", 0..=100_000)?,
            body_timeout: secs(
                &s.body_timeout_secs,
                "--body-timeout-secs / CPS_BODY_TIMEOUT_SECS",
                1..=600,
            )?,
            allowed_origins: origins(&s.allowed_origins)?,
        };
        Ok(Self {
            listen,
            admin_listen,
            support,
            default_language,
            default_country,
            request_timeout: secs(
                &s.request_timeout_secs,
                "--request-timeout-secs / CPS_REQUEST_TIMEOUT_SECS",
                1..=600,
            )?,
            connections,
            requests,
            shutdown_delay: secs(
                &s.shutdown_delay_secs,
                "--shutdown-delay-secs / CPS_SHUTDOWN_DELAY_SECS",
                0..=3600,
            )?,
        })
    }
}

impl DatabaseConfig {
    fn check(s: &Settings, serving: bool) -> Result<Self, String> {
        let scheme_ok = ["sqlite:", "postgres:", "postgresql:"]
            .iter()
            .any(|p| s.database_url.starts_with(p));
        if !scheme_ok {
            // The URL itself is not repeated: it may hold a password.
            return Err(
                "--database-url / CPS_DATABASE_URL: unsupported database URL (expected sqlite://FILE or postgres://…)"
                    .to_owned(),
            );
        }
        if !s.database_url.starts_with("sqlite:") {
            crate::store::check_postgres_url(&s.database_url)
                .map_err(|e| format!("--database-url / CPS_DATABASE_URL: {e}"))?;
        }
        let activation_limit = crate::store::AttemptLimit {
            max_failures: u32::try_from(number(
                &s.activation_max_failures,
                "--activation-max-failures / CPS_ACTIVATION_MAX_FAILURES",
                1..=1000,
            )?)
            .unwrap_or(u32::MAX),
            window: secs(
                &s.activation_window_secs,
                "--activation-window-secs / CPS_ACTIVATION_WINDOW_SECS",
                1..=604_800,
            )?,
        };
        Ok(Self {
            url: s.database_url.clone(),
            store: crate::store::StoreOptions {
                max_connections: u32::try_from(number(
                    &s.database_max_connections,
                    "--database-max-connections / CPS_DATABASE_MAX_CONNECTIONS",
                    1..=1000,
                )?)
                .unwrap_or(u32::MAX),
                timeout: secs(
                    &s.database_timeout_secs,
                    "--database-timeout-secs / CPS_DATABASE_TIMEOUT_SECS",
                    1..=600,
                )?,
                // Only serving creates a missing SQLite file (and `cps migrate`, which asks
                // for it); other commands refuse a mistyped path.
                create: serving,
                activation_limit,
            },
        })
    }
}

impl RedisConfig {
    fn check(s: &Settings, timeout: Duration) -> Result<Option<Self>, String> {
        let Some(url) = s.redis_url.clone().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let topology = crate::cache::Topology::parse(&url)
            .map_err(|e| format!("--redis-url / CPS_REDIS_URL: {e}"))?;
        let tls = crate::tls::ClientFiles::check(
            s.redis_ca_file.clone(),
            s.redis_client_cert.clone(),
            s.redis_client_key.clone(),
            [
                "--redis-ca-file / CPS_REDIS_CA_FILE",
                "--redis-client-cert / CPS_REDIS_CLIENT_CERT",
                "--redis-client-key / CPS_REDIS_CLIENT_KEY",
            ],
        )?;
        if !topology.over_tls() && !tls.is_empty() {
            return Err(
                "--redis-ca-file / --redis-client-cert: given, but --redis-url is not a rediss:// URL (TLS)"
                    .to_owned(),
            );
        }
        let check = number(
            &s.cache_check_secs,
            "--cache-check-secs / CPS_CACHE_CHECK_SECS",
            0..=86_400,
        )?;
        Ok(Some(Self {
            url,
            prefix: s.redis_prefix.clone(),
            timeout,
            check: (check > 0).then(|| Duration::from_secs(check)),
            tls,
        }))
    }
}

fn check_alcs(s: &Settings, timeout: Duration) -> Result<Option<AlcsSettings>, String> {
    let Some(url) = s
        .alcs_activation_url
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    else {
        return Ok(None);
    };
    crate::outbox::alcs::check_template(url)
        .map_err(|e| format!("--alcs-activation-url / CPS_ALCS_ACTIVATION_URL: {e}"))?;
    Ok(Some(AlcsSettings {
        url_template: url.to_owned(),
        timeout,
        tls: crate::tls::ClientFiles::check(
            s.alcs_ca_file.clone(),
            s.alcs_client_cert.clone(),
            s.alcs_client_key.clone(),
            [
                "--alcs-ca-file / CPS_ALCS_CA_FILE",
                "--alcs-client-cert / CPS_ALCS_CLIENT_CERT",
                "--alcs-client-key / CPS_ALCS_CLIENT_KEY",
            ],
        )?,
    }))
}

impl TlsConfig {
    fn check(s: &Settings) -> Result<Option<Self>, String> {
        match (&s.tls_cert, &s.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(Self {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: s.tls_client_ca.clone(),
            })),
            (None, None) if s.tls_client_ca.is_some() => Err(
                "--tls-client-ca / CPS_TLS_CLIENT_CA: needs --tls-cert and --tls-key".to_owned(),
            ),
            (None, None) => Ok(None),
            (Some(_), None) => Err("--tls-key / CPS_TLS_KEY: required with --tls-cert".to_owned()),
            (None, Some(_)) => Err("--tls-cert / CPS_TLS_CERT: required with --tls-key".to_owned()),
        }
    }
}

/// The outbox worker's settings. `longest_delivery`: the longest one delivery may take (the
/// Redis or the ALCS timeout, whichever is longer).
fn outbox(
    s: &Settings,
    longest_delivery: Duration,
) -> Result<crate::outbox::worker::WorkerConfig, String> {
    Ok(crate::outbox::worker::WorkerConfig {
        poll: millis(
            &s.outbox_poll_ms,
            "--outbox-poll-ms / CPS_OUTBOX_POLL_MS",
            10..=600_000,
        )?,
        max_backoff: secs(
            &s.outbox_max_backoff_secs,
            "--outbox-max-backoff-secs / CPS_OUTBOX_MAX_BACKOFF_SECS",
            1..=86_400,
        )?,
        max_attempts: i32::try_from(number(
            &s.outbox_max_attempts,
            "--outbox-max-attempts / CPS_OUTBOX_MAX_ATTEMPTS",
            1..=1000,
        )?)
        .unwrap_or(i32::MAX),
        max_age: secs(
            &s.outbox_max_age_secs,
            "--outbox-max-age-secs / CPS_OUTBOX_MAX_AGE_SECS",
            1..=31_536_000,
        )?,
        // A claimed row must stay ours for longer than one delivery can take; the worker starts
        // no delivery after half the lease (see outbox::worker::run).
        lease: (longest_delivery * 3).max(Duration::from_secs(5)),
        ..Default::default()
    })
}

/// `--allowed-origins`: comma-separated `scheme://host[:port]` (a trailing `/` accepted),
/// compared with a request's `Origin` as origins: default ports dropped, hosts folded.
fn origins(list: &str) -> Result<Vec<crate::http::origin::Origin>, String> {
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            crate::http::origin::Origin::configured(o).map_err(|e| {
                format!(
                    "--allowed-origins / CPS_ALLOWED_ORIGINS: {o:?} is not an origin such as https://desk.example.com: {e}"
                )
            })
        })
        .collect()
}
