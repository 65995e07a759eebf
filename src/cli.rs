//! The command line: commands, and the settings (defaults, then `CPS_*` environment
//! variables, then flags; flags win). Each setting is parsed into its type as it is read, and
//! the whole checked before the service starts ([`Settings::config`]); a bad value stops it with
//! one line naming the flag and the variable, both taken from the definitions below. Only
//! `main` and the commands read this module: everything else is built from a [`Config`].

use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::cache::CacheSettings;
use crate::config::Config;
use crate::domain::{Country, Language};
use crate::http::desk::DeskSettings;
use crate::http::portal::PortalSettings;
use crate::outbox::alcs::AlcsSettings;
use crate::outbox::worker::WorkerConfig;
use crate::service::housekeeping::HousekeepingConfig;
use crate::setting::{Invalid, flag};
use crate::tls::{ClientFiles, ServerFiles};

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
        let matches = command
            .try_get_matches()
            .unwrap_or_else(|e| match refusal(&e) {
                Some(line) => {
                    eprintln!("cps: {line}");
                    std::process::exit(2);
                }
                None => e.exit(),
            });
        Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
    }
}

/// A value a setting's parser refused, as one line naming the flag and the variable; other
/// errors (an unknown flag, `--help`) are clap's own.
fn refusal(e: &clap::Error) -> Option<String> {
    use clap::CommandFactory as _;
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if e.kind() != ErrorKind::ValueValidation {
        return None;
    }
    let Some(ContextValue::String(arg)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = arg.split_whitespace().next()?.strip_prefix("--")?;
    let command = Cli::command();
    let setting = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))?
        .get_id()
        .to_string();
    let problem = std::error::Error::source(e)?.to_string();
    Some(format!(
        "invalid configuration: {}: {problem}",
        names(&setting)
    ))
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

/// The settings, each parsed into its type as it is read (a bad value stops `cps` with one line
/// naming the flag and the environment variable: [`Cli::parse_args`]); [`Settings::config`]
/// then checks them together.
#[derive(Debug, Clone, Args)]
pub struct Settings {
    /// Address and port to serve on.
    #[arg(long, env = "CPS_LISTEN", default_value = "127.0.0.1:8080", global = true,
          value_parser = address("127.0.0.1:8080"))]
    pub listen: SocketAddr,
    /// Address and port of the admin listener (`/metrics`, `/health/ready`, `/health/live`),
    /// never the API's; `off` serves none. The default port is outside 9090-9999, which
    /// Prometheus, its own servers and its exporters take.
    #[arg(long, env = "CPS_ADMIN_LISTEN", default_value = "127.0.0.1:8079", global = true,
          value_parser = address_or_off("127.0.0.1:8079"))]
    pub admin_listen: Listen,
    /// Address and port of the service desk's API (`/support/v1/…`), never the ALCS
    /// listener's; `off` (the default) serves none. Needs --support-tokens-file.
    #[arg(long, env = "CPS_SUPPORT_LISTEN", default_value = "off", global = true,
          value_parser = address_or_off("127.0.0.1:8443"))]
    pub support_listen: Listen,
    /// The desk's users: lines of `name, role, sha256(token)` (see `cps support token add`);
    /// read again on SIGHUP.
    #[arg(long, env = "CPS_SUPPORT_TOKENS_FILE", global = true)]
    pub support_tokens_file: Option<PathBuf>,
    /// Unknown desk tokens tolerated per client address and minute; then that address is
    /// refused (429) until the oldest failure is a minute old. Raise it for a desk office
    /// behind one NAT address.
    #[arg(long, env = "CPS_SUPPORT_AUTH_FAILURES", default_value = "10", global = true,
          value_parser = whole::<usize>(1..=100_000))]
    pub support_auth_failures: usize,
    /// Seconds a console session may go unused before the desk user signs in again.
    #[arg(long, env = "CPS_SUPPORT_SESSION_IDLE_SECS", default_value = "1800", global = true,
          value_parser = secs(1..=86_400))]
    pub support_session_idle_secs: Duration,
    /// Seconds after sign-in at which a console session ends, however much it is used.
    #[arg(long, env = "CPS_SUPPORT_SESSION_MAX_SECS", default_value = "43200", global = true,
          value_parser = secs(1..=604_800))]
    pub support_session_max_secs: Duration,
    /// Address and port of the customer portal (`/loyalty/v1/…`), public-facing and never the
    /// ALCS listener's; `off` (the default) serves none. Needs --pin-hmac-key-file.
    #[arg(long, env = "CPS_PORTAL_LISTEN", default_value = "off", global = true,
          value_parser = address_or_off("127.0.0.1:8444"))]
    pub portal_listen: Listen,
    /// Proxies (comma-separated CIDRs or addresses) whose `Forwarded` / `X-Forwarded-For`
    /// name the portal's client; from any other peer those headers are ignored.
    #[arg(long, env = "CPS_PORTAL_TRUSTED_PROXIES", default_value = "", global = true,
          value_parser = trusted_proxies)]
    pub portal_trusted_proxies: crate::http::portal::TrustedProxies,
    /// The header the trusted proxies write the client's address into: `x-forwarded-for` or
    /// `forwarded` (RFC 7239); the other is never read.
    #[arg(long, env = "CPS_PORTAL_CLIENT_HEADER", default_value = "x-forwarded-for", global = true,
          value_parser = client_header)]
    pub portal_client_header: crate::http::portal::ClientHeader,
    /// ALCS's PIN HMAC keys, one a line (the current first): the key's text, or `hex:…` /
    /// `base64:…` for raw bytes. Readable by the service's user only; never logged.
    #[arg(long, env = "CPS_PIN_HMAC_KEY_FILE", global = true)]
    pub pin_hmac_key_file: Option<PathBuf>,
    /// How key texts, card numbers and PINs become bytes for the PIN HMAC: `utf16le` (the
    /// original tooling's) or `utf8`.
    #[arg(long, env = "CPS_PIN_HMAC_ENCODING", default_value = "utf16le", global = true,
          value_parser = pin_encoding)]
    pub pin_hmac_encoding: crate::domain::PinEncoding,
    /// Seconds a portal session may go unused before the customer signs in again.
    #[arg(long, env = "CPS_PORTAL_SESSION_IDLE_SECS", default_value = "1800", global = true,
          value_parser = secs(1..=86_400))]
    pub portal_session_idle_secs: Duration,
    /// Seconds after sign-in at which a portal session ends, however much it is used.
    #[arg(long, env = "CPS_PORTAL_SESSION_MAX_SECS", default_value = "43200", global = true,
          value_parser = secs(1..=604_800))]
    pub portal_session_max_secs: Duration,
    /// Failed portal sign-ins tolerated per client address (IPv6 by /64) within an hour; then
    /// that address is refused (429) until the oldest failure is an hour old.
    #[arg(long, env = "CPS_PORTAL_ADDRESS_FAILURES", default_value = "20", global = true,
          value_parser = whole::<usize>(1..=1_000_000))]
    pub portal_address_failures: usize,
    /// The service-wide breaker: when this many card numbers failed to sign in within a
    /// minute, every portal sign-in is refused (429) until fewer have.
    #[arg(long, env = "CPS_PORTAL_BREAKER_CARDS", default_value = "100", global = true,
          value_parser = whole::<i64>(1..=10_000_000))]
    pub portal_breaker_cards: i64,
    /// The consents the portal asks for: a JSON array of `{"Purpose", "Version", "Language",
    /// "Text"}` (each purpose's texts, versioned per language); none without it.
    #[arg(long, env = "CPS_CONSENT_TEXTS_FILE", global = true)]
    pub consent_texts_file: Option<PathBuf>,
    /// Profile properties the customer must give, comma-separated (`FirstName,LastName,Email`):
    /// listed as `MissingMandatoryData` until given.
    #[arg(long, env = "CPS_MANDATORY_PROFILE_FIELDS", default_value = "", global = true,
          value_parser = mandatory_fields)]
    pub mandatory_profile_fields: crate::domain::MandatoryFields,
    /// What the portal's data download says of the processing (GDPR art. 15(1)): a JSON object
    /// with `Controller`, `Purposes`, `Recipients`, `Retention`, `Source` and `Rights`; cps's
    /// own generic notice without it.
    #[arg(long, env = "CPS_PRIVACY_NOTICE_FILE", global = true)]
    pub privacy_notice_file: Option<PathBuf>,
    /// Database URL: `sqlite://FILE` (created and migrated on start) or `postgres://…`; TLS to
    /// PostgreSQL with `?sslmode=verify-full&sslrootcert=CA.pem` (also `require`, `verify-ca`,
    /// and a client certificate with `sslcert=…&sslkey=…`). One host: the endpoint that follows
    /// the primary (several hosts and `target_session_attrs` are refused).
    #[arg(long, env = "CPS_DATABASE_URL", default_value = "sqlite://cps.db", global = true,
          hide_env_values = true, value_parser = database_url)]
    pub database_url: String,
    /// Connections in the PostgreSQL pool.
    #[arg(long, env = "CPS_DATABASE_MAX_CONNECTIONS", default_value = "8", global = true,
          value_parser = whole::<u32>(1..=1000))]
    pub database_max_connections: u32,
    /// Seconds an operation may wait for a connection, a lock or a statement before it is
    /// answered 503 (database unavailable or saturated).
    #[arg(long, env = "CPS_DATABASE_TIMEOUT_SECS", default_value = "5", global = true,
          value_parser = secs(1..=600))]
    pub database_timeout_secs: Duration,
    /// Redis URL of the customer cache ALCS reads (`redis://host:6379/0`, or `rediss://…` over
    /// TLS; a master Sentinel names: `redis+sentinel://host1:26379,host2:26379/MASTER[/db]`,
    /// `rediss+sentinel://…`; a Redis Cluster: `redis+cluster://host1:6379,host2:6379`,
    /// `rediss+cluster://…`); unset: no cache.
    // URLs may carry passwords: `--help` must not print the environment's values.
    #[arg(long, env = "CPS_REDIS_URL", global = true, hide_env_values = true,
          value_parser = redis_url)]
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
    #[arg(long, env = "CPS_REDIS_TIMEOUT_MS", default_value = "500", global = true,
          value_parser = millis(1..=60_000))]
    pub redis_timeout_ms: Duration,
    /// Seconds between two looks at the cache's marker key (an emptied cache is refilled);
    /// 0: never look (no automatic refill).
    #[arg(long, env = "CPS_CACHE_CHECK_SECS", default_value = "5", global = true,
          value_parser = every(0..=86_400))]
    pub cache_check_secs: Every,
    /// Milliseconds between looks for due outbox rows when idle.
    #[arg(long, env = "CPS_OUTBOX_POLL_MS", default_value = "1000", global = true,
          value_parser = millis(10..=600_000))]
    pub outbox_poll_ms: Duration,
    /// Longest wait in seconds between two delivery attempts of one outbox row.
    #[arg(long, env = "CPS_OUTBOX_MAX_BACKOFF_SECS", default_value = "60", global = true,
          value_parser = secs(1..=86_400))]
    pub outbox_max_backoff_secs: Duration,
    /// Attempts after which an ALCS notice becomes a dead letter.
    #[arg(long, env = "CPS_OUTBOX_MAX_ATTEMPTS", default_value = "10", global = true,
          value_parser = whole::<i32>(1..=1000))]
    pub outbox_max_attempts: i32,
    /// Seconds after which a still-failing ALCS notice becomes a dead letter.
    #[arg(long, env = "CPS_OUTBOX_MAX_AGE_SECS", default_value = "86400", global = true,
          value_parser = secs(1..=31_536_000))]
    pub outbox_max_age_secs: Duration,
    /// Where the portal's text messages (one-time codes) go: the gateway's http(s) URL.
    /// Unset: phone changes and SMS codes answer 503 `SmsUnavailable`, the rest works.
    #[arg(long, env = "CPS_SMS_GATEWAY_URL", global = true, hide_env_values = true,
          value_parser = sms_url)]
    pub sms_gateway_url: Option<String>,
    /// How requests to the gateway are written: `webhook` (JSON `{"To", "Text",
    /// "MessageId"}`) or `smsapi` (SMSAPI's form POST to `…/sms.do`).
    #[arg(long, env = "CPS_SMS_GATEWAY_FORMAT", default_value = "webhook", global = true,
          value_parser = sms_format)]
    pub sms_gateway_format: crate::outbox::sms::SmsFormat,
    /// A file holding the gateway's bearer token (sent as `Authorization: Bearer …`).
    #[arg(long, env = "CPS_SMS_GATEWAY_TOKEN_FILE", global = true)]
    pub sms_gateway_token_file: Option<PathBuf>,
    /// The sender name SMSAPI shows, when the account has one registered.
    #[arg(long, env = "CPS_SMS_SENDER", global = true)]
    pub sms_sender: Option<String>,
    /// Where to tell ALCS a card was activated: a URL containing `{card-number}`. Unset: the
    /// notices are recorded as not sent.
    #[arg(long, env = "CPS_ALCS_ACTIVATION_URL", global = true, hide_env_values = true,
          value_parser = alcs_url)]
    pub alcs_activation_url: Option<String>,
    /// Milliseconds one call to ALCS may take (connect and answer).
    #[arg(long, env = "CPS_ALCS_TIMEOUT_MS", default_value = "5000", global = true,
          value_parser = millis(1..=600_000))]
    pub alcs_timeout_ms: Duration,
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
    #[arg(long, env = "CPS_PRUNE_INTERVAL_SECS", default_value = "300", global = true,
          value_parser = every(0..=86_400))]
    pub prune_interval_secs: Every,
    /// Days an ALCS notice is kept after delivery (the record that ALCS was told).
    #[arg(long, env = "CPS_DELIVERED_RETENTION_DAYS", default_value = "90", global = true,
          value_parser = days(1..=36_500))]
    pub delivered_retention_days: Duration,
    /// Days the audit trail is kept (2,192: six years, the Polish limitation period).
    #[arg(long, env = "CPS_AUDIT_RETENTION_DAYS", default_value = "2192", global = true,
          value_parser = days(1..=36_500))]
    pub audit_retention_days: Duration,
    /// Language of error messages when the request names none we know (`pl_PL` or `en_US`).
    #[arg(long, env = "CPS_DEFAULT_LANGUAGE", default_value = "pl_PL", global = true,
          value_parser = language)]
    pub default_language: Language,
    /// Country (ISO 3166 alpha-2) whose numbering plan applies to national phone numbers.
    #[arg(long, env = "CPS_DEFAULT_COUNTRY", default_value = "PL", global = true,
          value_parser = country)]
    pub default_country: Country,
    /// Seconds a request may take before it is answered 503 `Timeout`.
    #[arg(long, env = "CPS_REQUEST_TIMEOUT_SECS", default_value = "10", global = true,
          value_parser = secs(1..=600))]
    pub request_timeout_secs: Duration,
    /// Open client connections at most. At the limit the connection idle the longest is closed
    /// to make room; when all are busy, accepting waits.
    #[arg(long, env = "CPS_MAX_CONNECTIONS", default_value = "2048", global = true,
          value_parser = whole::<usize>(1..=1_000_000))]
    pub max_connections: usize,
    /// Requests in progress at most; beyond it a request waits for a place (see
    /// `--max-queued`).
    #[arg(long, env = "CPS_MAX_IN_FLIGHT", default_value = "12", global = true,
          value_parser = whole::<usize>(1..=100_000))]
    pub max_in_flight: usize,
    /// Requests waiting for a place at most; beyond it a request is answered 503
    /// `ServiceUnavailable` with `Retry-After` at once instead of queueing.
    #[arg(long, env = "CPS_MAX_QUEUED", default_value = "36", global = true,
          value_parser = whole::<usize>(0..=100_000))]
    pub max_queued: usize,
    /// Seconds a client has to send a request's headers (and a new connection its first
    /// request) before the connection is closed.
    #[arg(long, env = "CPS_HEADER_TIMEOUT_SECS", default_value = "10", global = true,
          value_parser = secs(1..=600))]
    pub header_timeout_secs: Duration,
    /// Seconds a request's body may take to arrive before it is answered 408.
    #[arg(long, env = "CPS_BODY_TIMEOUT_SECS", default_value = "5", global = true,
          value_parser = secs(1..=600))]
    pub body_timeout_secs: Duration,
    /// Seconds a connection may stay open with no request in progress. (HTTP/1.1 waits for
    /// the next request under the header timeout too: the shorter of the two applies.)
    #[arg(long, env = "CPS_IDLE_TIMEOUT_SECS", default_value = "10", global = true,
          value_parser = secs(1..=86_400))]
    pub idle_timeout_secs: Duration,
    /// Seconds the service keeps accepting requests after SIGTERM while readiness already
    /// answers 503, so that load balancers take it out of rotation before it stops listening.
    #[arg(long, env = "CPS_SHUTDOWN_DELAY_SECS", default_value = "5", global = true,
          value_parser = secs(0..=3600))]
    pub shutdown_delay_secs: Duration,
    /// Seconds requests in progress get to finish once the service stops accepting.
    #[arg(long, env = "CPS_SHUTDOWN_GRACE_SECS", default_value = "10", global = true,
          value_parser = secs(0..=3600))]
    pub shutdown_grace_secs: Duration,
    /// Seconds a TLS handshake may take.
    #[arg(long, env = "CPS_TLS_HANDSHAKE_TIMEOUT_SECS", default_value = "10", global = true,
          value_parser = secs(1..=600))]
    pub tls_handshake_timeout_secs: Duration,
    /// Browser origins (`https://desk.example.com`, comma-separated) allowed to send requests
    /// that change cards; empty: any request carrying an `Origin` header is refused with 403.
    #[arg(long, env = "CPS_ALLOWED_ORIGINS", default_value = "", global = true,
          value_parser = origins)]
    pub allowed_origins: Origins,
    /// Failed activations (wrong phone number) of one card after which further attempts are
    /// refused with 429 until the window passes.
    #[arg(long, env = "CPS_ACTIVATION_MAX_FAILURES", default_value = "5", global = true,
          value_parser = whole::<u32>(1..=1000))]
    pub activation_max_failures: u32,
    /// Seconds over which failed activations are counted.
    #[arg(long, env = "CPS_ACTIVATION_WINDOW_SECS", default_value = "900", global = true,
          value_parser = secs(1..=604_800))]
    pub activation_window_secs: Duration,
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

/// A listener's address, or `off`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listen(pub Option<SocketAddr>);

/// How often something runs; `None` (given as 0): never.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Every(pub Option<Duration>);

/// `--allowed-origins`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origins(pub Vec<crate::http::origin::Origin>);

// The value parsers: each turns one setting's text into its type, or says in one line what is
// wrong with it (never repeating a URL, which may hold a password). The flag and the variable
// are added by whoever reports it.

/// A whole number in `range`, as `T`.
fn whole<T: TryFrom<u64> + Clone + Send + Sync + 'static>(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync + 'static {
    move |value: &str| {
        value
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|n| range.contains(n))
            .and_then(|n| T::try_from(n).ok())
            .ok_or_else(|| {
                format!(
                    "{value:?} is not a whole number from {} to {}",
                    range.start(),
                    range.end()
                )
            })
    }
}

fn scaled(
    range: RangeInclusive<u64>,
    unit: Duration,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    let n = whole::<u32>(range);
    move |value: &str| n(value).map(|n| unit * n)
}

fn secs(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    scaled(range, Duration::from_secs(1))
}

fn millis(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    scaled(range, Duration::from_millis(1))
}

fn days(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    scaled(range, Duration::from_secs(86_400))
}

/// Seconds in `range`; 0 is never.
fn every(
    range: RangeInclusive<u64>,
) -> impl Fn(&str) -> Result<Every, String> + Clone + Send + Sync + 'static {
    let s = secs(range);
    move |value: &str| s(value).map(|d| Every((!d.is_zero()).then_some(d)))
}

fn address(
    example: &'static str,
) -> impl Fn(&str) -> Result<SocketAddr, String> + Clone + Send + Sync + 'static {
    move |value: &str| {
        value
            .parse()
            .map_err(|_| format!("{value:?} is not an address and port such as {example}"))
    }
}

fn trusted_proxies(value: &str) -> Result<crate::http::portal::TrustedProxies, String> {
    crate::http::portal::TrustedProxies::parse(value)
}

fn client_header(value: &str) -> Result<crate::http::portal::ClientHeader, String> {
    crate::http::portal::ClientHeader::parse(value)
        .ok_or_else(|| format!("{value:?} is neither x-forwarded-for nor forwarded"))
}

fn mandatory_fields(value: &str) -> Result<crate::domain::MandatoryFields, String> {
    crate::domain::MandatoryFields::parse(value)
}

fn pin_encoding(value: &str) -> Result<crate::domain::PinEncoding, String> {
    crate::domain::PinEncoding::parse(value)
        .ok_or_else(|| format!("{value:?} is neither utf16le nor utf8"))
}

fn address_or_off(
    example: &'static str,
) -> impl Fn(&str) -> Result<Listen, String> + Clone + Send + Sync + 'static {
    move |value: &str| match value {
        "off" => Ok(Listen(None)),
        _ => value
            .parse()
            .map(|a| Listen(Some(a)))
            .map_err(|_| format!("{value:?} is not an address and port such as {example}, or off")),
    }
}

fn language(value: &str) -> Result<Language, String> {
    Language::recognize(value).ok_or_else(|| format!("{value:?} is not pl_PL or en_US"))
}

fn country(value: &str) -> Result<Country, String> {
    Country::parse(value)
        .ok_or_else(|| format!("{value:?} is not a known ISO 3166 country code such as PL"))
}

/// Comma-separated `scheme://host[:port]` (a trailing `/` accepted), compared with a request's
/// `Origin` as origins: default ports dropped, hosts folded.
fn origins(list: &str) -> Result<Origins, String> {
    list.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|o| {
            crate::http::origin::Origin::configured(o).map_err(|e| {
                format!("{o:?} is not an origin such as https://desk.example.com: {e}")
            })
        })
        .collect::<Result<_, _>>()
        .map(Origins)
}

fn database_url(value: &str) -> Result<String, String> {
    crate::store::check_url(value).map(|()| value.to_owned())
}

/// Empty is no cache.
fn redis_url(value: &str) -> Result<String, String> {
    if !value.trim().is_empty() {
        crate::cache::Topology::parse(value)?;
    }
    Ok(value.to_owned())
}

/// Empty is no notices.
fn sms_url(value: &str) -> Result<String, String> {
    if !value.trim().is_empty() {
        crate::outbox::sms::check_url(value)?;
    }
    Ok(value.to_owned())
}

fn sms_format(value: &str) -> Result<crate::outbox::sms::SmsFormat, String> {
    crate::outbox::sms::SmsFormat::parse(value)
        .ok_or_else(|| format!("{value:?} is neither webhook nor smsapi"))
}

fn alcs_url(value: &str) -> Result<String, String> {
    if !value.trim().is_empty() {
        crate::outbox::alcs::check_template(value)?;
    }
    Ok(value.to_owned())
}

/// The flag and the environment variable of a setting, from the command line's own
/// definition: `--listen / CPS_LISTEN`.
pub fn names(setting: &str) -> String {
    use clap::CommandFactory as _;
    let command = Cli::command();
    let arg = command.get_arguments().find(|a| a.get_id() == setting);
    match arg.and_then(|a| Some((a.get_long()?, a.get_env()))) {
        Some((long, Some(env))) => format!("--{long} / {}", env.to_string_lossy()),
        Some((long, None)) => format!("--{long}"),
        None => flag(setting),
    }
}

/// The one line a setting found wrong is reported with (after `cps: `).
pub fn describe(e: &Invalid) -> String {
    format!("invalid configuration: {}: {}", names(e.setting), e.problem)
}

impl Settings {
    /// Checks the settings together and builds what the service is made of; `serving`: for
    /// `cps serve` (else the listeners and TLS are not looked at, and a missing SQLite file is
    /// not created).
    pub fn config(&self, serving: bool) -> Result<Config, Invalid> {
        let tls = if serving { self.server_files()? } else { None };
        let plain = |setting: &'static str, addr: SocketAddr| {
            Invalid::new(
                setting,
                format!(
                    "{addr} is not a loopback address; serve TLS ({}, {}) or choose plain HTTP explicitly with {}",
                    flag("tls_cert"),
                    flag("tls_key"),
                    names("plain_http")
                ),
            )
        };
        if serving && tls.is_none() && !self.listen.ip().is_loopback() && !self.plain_http {
            return Err(plain("listen", self.listen));
        }
        let desk = self.desk()?;
        // Bearer tokens in the clear off this host: the same explicit choice.
        if let Some(desk) = desk.as_ref().filter(|_| serving)
            && tls.is_none()
            && !desk.listen.ip().is_loopback()
            && !self.plain_http
        {
            return Err(plain("support_listen", desk.listen));
        }
        let portal = self.portal()?;
        // Sessions and PINs in the clear off this host: the same explicit choice.
        if let Some(portal) = portal.as_ref().filter(|_| serving)
            && tls.is_none()
            && !portal.listen.ip().is_loopback()
            && !self.plain_http
        {
            return Err(plain("portal_listen", portal.listen));
        }
        let cache = self.cache()?;
        let alcs = self.alcs()?;
        let activation_limit = crate::store::AttemptLimit {
            max_failures: self.activation_max_failures,
            window: self.activation_window_secs,
        };
        Ok(Config {
            listen: self.listen,
            admin_listen: self.admin_listen.0,
            desk,
            portal,
            tls,
            connections: crate::server::Limits {
                max_connections: self.max_connections,
                header_timeout: self.header_timeout_secs,
                idle_timeout: self.idle_timeout_secs,
                tls_handshake_timeout: self.tls_handshake_timeout_secs,
                grace: self.shutdown_grace_secs,
            },
            shutdown_delay: self.shutdown_delay_secs,
            http: crate::http::HttpSettings {
                default_language: self.default_language,
                default_country: self.default_country,
                request_timeout: self.request_timeout_secs,
                requests: crate::http::RequestLimits {
                    max_in_flight: self.max_in_flight,
                    max_queued: self.max_queued,
                    body_timeout: self.body_timeout_secs,
                    allowed_origins: self.allowed_origins.0.clone(),
                },
            },
            database: crate::store::DatabaseSettings {
                url: self.database_url.clone(),
                options: crate::store::StoreOptions {
                    max_connections: self.database_max_connections,
                    timeout: self.database_timeout_secs,
                    // Only serving creates a missing SQLite file (and `cps migrate`, which
                    // asks for it); other commands refuse a mistyped path.
                    create: serving,
                    activation_limit,
                },
            },
            cache,
            outbox: WorkerConfig {
                poll: self.outbox_poll_ms,
                max_backoff: self.outbox_max_backoff_secs,
                max_attempts: self.outbox_max_attempts,
                max_age: self.outbox_max_age_secs,
                // A claimed row must stay ours for longer than one delivery can take (the
                // Redis or the ALCS timeout); the worker starts none after half the lease.
                lease: (self.redis_timeout_ms.max(self.alcs_timeout_ms) * 3)
                    .max(Duration::from_secs(5)),
                ..WorkerConfig::default()
            },
            alcs,
            sms: self.sms(),
            housekeeping: HousekeepingConfig {
                interval: self.prune_interval_secs.0,
                delivered: self.delivered_retention_days,
                audit: self.audit_retention_days,
                activation_window: activation_limit.window,
                ..HousekeepingConfig::default()
            },
        })
    }

    fn server_files(&self) -> Result<Option<ServerFiles>, Invalid> {
        let required = |missing: &'static str, with: &str| {
            Invalid::new(missing, format!("required with {}", flag(with)))
        };
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => Ok(Some(ServerFiles {
                cert: cert.clone(),
                key: key.clone(),
                client_ca: self.tls_client_ca.clone(),
            })),
            (None, None) if self.tls_client_ca.is_some() => Err(Invalid::new(
                "tls_client_ca",
                format!("needs {} and {}", flag("tls_cert"), flag("tls_key")),
            )),
            (None, None) => Ok(None),
            (Some(_), None) => Err(required("tls_key", "tls_cert")),
            (None, Some(_)) => Err(required("tls_cert", "tls_key")),
        }
    }

    fn desk(&self) -> Result<Option<DeskSettings>, Invalid> {
        let Some(listen) = self.support_listen.0 else {
            return Ok(None);
        };
        let tokens_file = self.support_tokens_file.clone().ok_or_else(|| {
            Invalid::new(
                "support_tokens_file",
                format!(
                    "required with {} (create it with `cps support token add NAME ROLE`)",
                    flag("support_listen")
                ),
            )
        })?;
        Ok(Some(DeskSettings {
            listen,
            tokens_file,
            max_auth_failures: self.support_auth_failures,
            sessions: crate::service::sessions::SessionLimits {
                idle: self.support_session_idle_secs,
                absolute: self.support_session_max_secs,
            },
        }))
    }

    fn portal(&self) -> Result<Option<PortalSettings>, Invalid> {
        let Some(listen) = self.portal_listen.0 else {
            return Ok(None);
        };
        let pin_key_file = self.pin_hmac_key_file.clone().ok_or_else(|| {
            Invalid::new(
                "pin_hmac_key_file",
                format!(
                    "required with {}: the portal checks PINs with ALCS's HMAC keys",
                    flag("portal_listen")
                ),
            )
        })?;
        Ok(Some(PortalSettings {
            trusted_proxies: self
                .portal_trusted_proxies
                .clone()
                .reading(self.portal_client_header),
            pin_encoding: self.pin_hmac_encoding,
            sessions: crate::service::sessions::SessionLimits {
                idle: self.portal_session_idle_secs,
                absolute: self.portal_session_max_secs,
            },
            max_failures_per_address: self.portal_address_failures,
            breaker: crate::service::portal::ServiceBreaker {
                max_failing_cards: self.portal_breaker_cards,
                ..crate::service::portal::ServiceBreaker::default()
            },
            consent_texts_file: self.consent_texts_file.clone(),
            mandatory: self.mandatory_profile_fields.clone(),
            privacy_notice_file: self.privacy_notice_file.clone(),
            ..PortalSettings::at(listen, pin_key_file)
        }))
    }

    fn cache(&self) -> Result<Option<CacheSettings>, Invalid> {
        let Some(url) = self.redis_url.clone().filter(|u| !u.trim().is_empty()) else {
            return Ok(None);
        };
        let topology =
            crate::cache::Topology::parse(&url).map_err(|e| Invalid::new("redis_url", e))?;
        let tls = ClientFiles::check(
            self.redis_ca_file.clone(),
            self.redis_client_cert.clone(),
            self.redis_client_key.clone(),
            ["redis_ca_file", "redis_client_cert", "redis_client_key"],
        )?;
        if !topology.over_tls() && !tls.is_empty() {
            return Err(Invalid::new(
                "redis_ca_file",
                format!(
                    "given with {}, but {} is not a rediss:// URL (TLS)",
                    flag("redis_client_cert"),
                    flag("redis_url")
                ),
            ));
        }
        Ok(Some(CacheSettings {
            url,
            prefix: self.redis_prefix.clone(),
            timeout: self.redis_timeout_ms,
            check: self.cache_check_secs.0,
            tls,
        }))
    }

    fn sms(&self) -> Option<crate::outbox::sms::SmsSettings> {
        let url = self
            .sms_gateway_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())?;
        Some(crate::outbox::sms::SmsSettings {
            format: self.sms_gateway_format,
            token_file: self.sms_gateway_token_file.clone(),
            sender: self.sms_sender.clone(),
            ..crate::outbox::sms::SmsSettings::at(url)
        })
    }

    fn alcs(&self) -> Result<Option<AlcsSettings>, Invalid> {
        let Some(url) = self
            .alcs_activation_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        else {
            return Ok(None);
        };
        Ok(Some(AlcsSettings {
            url_template: url.to_owned(),
            timeout: self.alcs_timeout_ms,
            tls: ClientFiles::check(
                self.alcs_ca_file.clone(),
                self.alcs_client_cert.clone(),
                self.alcs_client_key.clone(),
                ["alcs_ca_file", "alcs_client_cert", "alcs_client_key"],
            )?,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_of_the_command_line_are_the_default_config() {
        let cli = Cli::try_parse_from(["cps"]).expect("no setting is needed");
        assert_eq!(cli.settings.config(true).unwrap(), Config::default());
    }

    /// What `at` fills in for an optional part is what the command line gives it by default.
    #[test]
    fn the_optional_parts_default_as_the_command_line_does() {
        let url = "http://alcs.example/{card-number}";
        let cli = Cli::try_parse_from([
            "cps",
            "--redis-url",
            "redis://cache.example",
            "--alcs-activation-url",
            url,
            "--support-listen",
            "127.0.0.1:8443",
            "--support-tokens-file",
            "tokens",
        ])
        .unwrap();
        let config = cli.settings.config(true).unwrap();
        assert_eq!(
            config.cache,
            Some(CacheSettings::at("redis://cache.example"))
        );
        assert_eq!(config.alcs, Some(AlcsSettings::at(url)));
        assert_eq!(
            config.desk,
            Some(DeskSettings::at(
                "127.0.0.1:8443".parse().unwrap(),
                "tokens".into()
            ))
        );
    }

    #[test]
    fn an_error_names_the_flag_and_the_variable_from_the_definition() {
        assert_eq!(names("listen"), "--listen / CPS_LISTEN");
        assert_eq!(
            describe(&Invalid::new("support_tokens_file", "required")),
            "invalid configuration: --support-tokens-file / CPS_SUPPORT_TOKENS_FILE: required"
        );
        let refused = Cli::try_parse_from(["cps", "--max-queued", "many"]).unwrap_err();
        assert_eq!(
            refusal(&refused).as_deref(),
            Some(
                "invalid configuration: --max-queued / CPS_MAX_QUEUED: \"many\" is not a whole number from 0 to 100000"
            )
        );
    }
}
