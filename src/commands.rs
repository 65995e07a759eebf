//! What `cps` does besides serving: migrations and cache maintenance.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context as _;

use crate::cache::sync::{self, Drift};
use crate::config::Config;
use crate::startup;

/// `cps migrate`: applies pending migrations (under PostgreSQL's advisory lock) and exits.
pub async fn migrate(config: &Config) -> anyhow::Result<ExitCode> {
    crate::store::connect(&config.database_url, &config.store)
        .await
        .context("cannot migrate the database")?;
    println!("database migrated");
    Ok(ExitCode::SUCCESS)
}

async fn open_cache(
    config: &Config,
) -> anyhow::Result<(
    std::sync::Arc<dyn crate::store::Store>,
    crate::cache::RedisCache,
)> {
    let (store, cache) = startup::open(config).await?;
    let cache = cache.context("no cache is configured: set --redis-url / CPS_REDIS_URL")?;
    Ok((store, cache))
}

/// `cps cache rebuild`: rewrites every hash from the database, batch by batch.
pub async fn rebuild(config: &Config, force: bool, batch: i64) -> anyhow::Result<ExitCode> {
    let (store, cache) = open_cache(config).await?;
    let terminal = std::io::stderr().is_terminal();
    let report = sync::rebuild(store.as_ref(), &cache, force, batch, |done, total| {
        if terminal {
            eprint!("\rrebuilding the cache: {done}/{total} cards");
            let _ = std::io::stderr().flush();
        }
    })
    .await?;
    if terminal {
        eprintln!();
    }
    println!(
        "cache rebuilt: {} cards, {} hashes written, {} already current",
        report.cards, report.written, report.current
    );
    Ok(ExitCode::SUCCESS)
}

/// `cps cache verify`: lists every difference; exit code 1 when there is any.
pub async fn verify(config: &Config, batch: i64) -> anyhow::Result<ExitCode> {
    let (store, cache) = open_cache(config).await?;
    let report = sync::verify(store.as_ref(), &cache, batch).await?;
    for drift in &report.drift {
        println!("{drift}");
    }
    println!(
        "cache verified: {} cards, {} differences",
        report.cards,
        report.drift.len()
    );
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
pub async fn outbox(config: &Config) -> anyhow::Result<ExitCode> {
    let store = crate::store::connect(&config.database_url, &config.store)
        .await
        .context("cannot open the database")?;
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
pub async fn outbox_retry(config: &Config) -> anyhow::Result<ExitCode> {
    let store = crate::store::connect(&config.database_url, &config.store)
        .await
        .context("cannot open the database")?;
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
