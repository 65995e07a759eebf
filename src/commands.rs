//! What `cps` does besides serving: migrations and cache maintenance.
//!
//! Exit codes, the same for every command: 0 done (for `cache verify`: cache and database
//! agree), 1 drift found by `cache verify`, or another failure, 2 usage or configuration (no
//! cache configured, a SQLite file that does not exist), 3 a service (database, Redis)
//! unreachable.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::Arc;

use crate::cache::sync::{self, Drift, Rebuild, SyncError};
use crate::cache::{CacheError, RedisCache};
use crate::config::Config;
use crate::outbox::OutboxQueue;
use crate::store::{SqlStore, StoreError};

/// Why a command failed, and so its exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Exit code 2: the command cannot work as configured.
    #[error("{0}")]
    Usage(String),
    /// Exit code 3: the database or Redis did not answer.
    #[error("{0}")]
    Unreachable(String),
    /// Exit code 1.
    #[error("{0}")]
    Failed(String),
}

impl CommandError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            Self::Failed(_) => 1,
            Self::Usage(_) => 2,
            Self::Unreachable(_) => 3,
        })
    }
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        let text = crate::error_chain(&e);
        match e {
            StoreError::NoDatabase { .. } => Self::Usage(text),
            e if e.is_unavailable() => Self::Unreachable(text),
            _ => Self::Failed(text),
        }
    }
}

impl From<CacheError> for CommandError {
    fn from(e: CacheError) -> Self {
        let text = crate::error_chain(&e);
        if e.is_unreachable() {
            Self::Unreachable(text)
        } else {
            Self::Failed(text)
        }
    }
}

impl From<SyncError> for CommandError {
    fn from(e: SyncError) -> Self {
        match e {
            SyncError::Store(e) => e.into(),
            SyncError::Cache(e) => e.into(),
            SyncError::Stopped(why) => Self::Failed(format!("stopped: {why}")),
        }
    }
}

type Outcome = Result<ExitCode, CommandError>;

async fn open_store(config: &Config) -> Result<Arc<SqlStore>, CommandError> {
    Ok(crate::store::connect(&config.database.url, &config.database.options).await?)
}

/// `cps migrate`: creates the database if needed, applies pending migrations (under
/// PostgreSQL's advisory lock) and exits.
pub async fn migrate(config: &Config) -> Outcome {
    let mut options = config.database.options.clone();
    options.create = true;
    crate::store::connect(&config.database.url, &options).await?;
    println!("database migrated");
    Ok(ExitCode::SUCCESS)
}

async fn open_cache(config: &Config) -> Result<(Arc<SqlStore>, RedisCache), CommandError> {
    let redis = config.cache.as_ref().ok_or_else(|| {
        CommandError::Usage(format!(
            "no cache is configured: set {}",
            crate::cli::names("redis_url")
        ))
    })?;
    let cache = crate::startup::cache(redis).map_err(|e| CommandError::Usage(format!("{e:#}")))?;
    let store = open_store(config).await?;
    // Fail with "unreachable" now rather than half-way through.
    cache.ping().await?;
    Ok((store, cache))
}

/// `cps cache rebuild`: rewrites every hash that differs from the database, batch by batch.
pub async fn rebuild(config: &Config, force: bool, batch: i64) -> Outcome {
    let (store, cache) = open_cache(config).await?;
    let terminal = std::io::stderr().is_terminal();
    let started = std::time::Instant::now();
    let mut rebuild = Rebuild::start(store, &cache, force, batch).await?;
    while rebuild.step().await? {
        if terminal {
            eprint!(
                "\rrebuilding the cache: {}/{} cards",
                rebuild.report.cards, rebuild.total
            );
            let _ = std::io::stderr().flush();
        }
    }
    let report = rebuild.finish().await?;
    if terminal {
        eprintln!();
    }
    println!(
        "cache rebuilt: {} cards, {} hashes written, {} already current, {} newer in Redis (kept; --force overwrites)",
        report.cards, report.written, report.current, report.newer
    );
    eprintln!("{}", pace(report.cards, "cards", started.elapsed()));
    Ok(ExitCode::SUCCESS)
}

/// How long a bulk command took, its rate and the process's peak resident memory (read from
/// /proc; absent elsewhere), for operators sizing a run.
fn pace(count: u64, what: &str, took: std::time::Duration) -> String {
    let seconds = took.as_secs_f64();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or_else(String::new, |kib| {
            format!(", peak memory {} MiB", kib / 1024)
        });
    format!(
        "took {seconds:.1} s ({:.0} {what}/s){peak}",
        count as f64 / seconds.max(1e-9)
    )
}

/// `cps cache verify`: lists every difference; exit code 1 when there is any.
pub async fn verify(config: &Config, batch: i64) -> Outcome {
    let (store, cache) = open_cache(config).await?;
    let started = std::time::Instant::now();
    let report = sync::verify(store, &cache, batch).await?;
    for drift in &report.drift {
        println!("{drift}");
    }
    println!(
        "cache verified: {} cards, {} differences (stray keys: {})",
        report.cards,
        report.drift.len(),
        if report.counted {
            "card and customer keys counted, as many as the database has; PIN index looked up"
        } else {
            "every key looked up in the database"
        }
    );
    eprintln!("{}", pace(report.cards, "cards", started.elapsed()));
    Ok(if report.drift.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

impl std::fmt::Display for Drift {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Names only: values may be a phone number or a PIN HMAC.
        match self {
            Drift::MissingKey { key } => write!(f, "missing: {key}"),
            Drift::ExtraKey { key } => write!(f, "not in the database: {key}"),
            Drift::MissingField { key, field } => write!(f, "missing field: {key} {field}"),
            Drift::ExtraField { key, field } => write!(f, "extra field: {key} {field}"),
            Drift::DifferentValue { key, field } => write!(f, "different value: {key} {field}"),
        }
    }
}

/// `cps outbox`: counts and the oldest row per kind and state.
pub async fn outbox(config: &Config) -> Outcome {
    let store = open_store(config).await?;
    let lines = store.outbox_summary().await?;
    let now = chrono::Utc::now();
    println!("{:<16} {:<10} {:>8}  oldest", "kind", "state", "count");
    for line in &lines {
        let age = (now - line.oldest).num_seconds().max(0);
        println!(
            "{:<16} {:<10} {:>8}  {} ({})",
            line.kind,
            line.state,
            line.count,
            line.oldest
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            human_age(age)
        );
    }
    if lines.is_empty() {
        println!("(the outbox is empty)");
    }
    Ok(ExitCode::SUCCESS)
}

/// `cps outbox retry`: dead and unsent rows back in the queue.
pub async fn outbox_retry(config: &Config) -> Outcome {
    let store = open_store(config).await?;
    let n = store.retry_dead().await?;
    println!("{n} events queued again");
    Ok(ExitCode::SUCCESS)
}

fn human_age(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s}s ago"),
        s if s < 7200 => format!("{}m ago", s / 60),
        s if s < 172_800 => format!("{}h ago", s / 3600),
        s => format!("{}d ago", s / 86_400),
    }
}

/// `cps support token add NAME ROLE`: appends the user to the tokens file and prints their new
/// token on standard output, once (only its hash is kept).
pub fn token_add(file: Option<&std::path::Path>, name: &str, role: &str) -> ExitCode {
    let Some(file) = file else {
        eprintln!(
            "cps: {}: required: the file to add the user to",
            crate::cli::names("support_tokens_file")
        );
        return ExitCode::from(2);
    };
    match crate::tokens::add(file, name, role) {
        Ok(token) => {
            println!("{token}");
            eprintln!(
                "cps: added {name} ({role}) to {}; the token above is shown only now. A running service reads the file again on SIGHUP.",
                file.display()
            );
            ExitCode::SUCCESS
        }
        Err(e @ crate::tokens::TokensError::Usage(_)) => {
            eprintln!("cps: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("cps: {e}");
            ExitCode::FAILURE
        }
    }
}
