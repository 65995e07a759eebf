//! Looking at what the app stored and cached: the database through the app's own store and its
//! SQL dialect (one statement for every backend), the cache through Redis, maintenance through
//! the `cps` binary.

use std::sync::Arc;

use cps::domain::CardNumber;
use cps::outbox::OutboxQueue;
use cps::store::sql::sql;
use cps::store::{SqlStore, StoreOptions};
use serde_json::Value;

use super::app::TestApp;

impl TestApp {
    /// The app's database, opened as the app opens it (never created: it must exist).
    pub async fn store(&self) -> &Arc<SqlStore> {
        self.store
            .get_or_init(|| async {
                let options = StoreOptions {
                    max_connections: 2,
                    create: false,
                    ..StoreOptions::default()
                };
                cps::store::connect(&self.database_url, &options)
                    .await
                    .expect("the test can open the app's database")
            })
            .await
    }

    /// Rows in a table: what the API cannot show (how many customers exist, the audit trail).
    /// `cache_writes` are the outbox's rows of that kind, in any state.
    pub async fn count(&self, table: &str) -> i64 {
        let store = self.store().await;
        if table == "cache_writes" {
            let kind = <cps::outbox::CacheWrite as cps::outbox::Kind>::NAME;
            let summary = store.outbox_summary().await.expect("summarize the outbox");
            return summary
                .iter()
                .filter(|line| line.kind == kind)
                .map(|line| line.count)
                .sum();
        }
        assert!(
            ["customers", "cards", "wallets", "audit_log", "outbox"].contains(&table),
            "unknown table {table}"
        );
        let counted: Vec<(i64,)> = store
            .read(&sql(format!("select count(*) from {table}")), "count rows")
            .await
            .expect("count rows");
        counted[0].0
    }

    /// The audit trail of a card as (operation, identity, details), oldest first; the JSON
    /// parsed, since PostgreSQL's jsonb does not keep the text as written.
    pub async fn audit(&self, card: &str) -> Vec<(String, Option<Value>, Option<Value>)> {
        let trail = sql(
            "select operation, identity::text as identity, details::text as details
             from audit_log where card_number = $1 order by id",
        )
        .bind(card);
        let trail: Vec<(String, Option<String>, Option<String>)> = self
            .store()
            .await
            .read(&trail, "read the audit trail")
            .await
            .expect("read the audit trail");
        let parse = |s: Option<String>| s.map(|s| serde_json::from_str(&s).expect("JSON"));
        trail
            .into_iter()
            .map(|(operation, identity, details)| (operation, parse(identity), parse(details)))
            .collect()
    }

    /// A cache hash as Redis holds it (`key` without the prefix).
    pub async fn cache_hash(&self, key: &str) -> std::collections::BTreeMap<String, String> {
        let (_, prefix) = self.redis.as_ref().expect("an app with a cache");
        redis::cmd("HGETALL")
            .arg(format!("{prefix}{key}"))
            .query_async(&mut self.redis_conn().await)
            .await
            .expect("read a hash")
    }
    /// A connection to the app's Redis, for tests that look at or tamper with the cache.
    pub async fn redis_conn(&self) -> super::RedisConn {
        let (url, _) = self.redis.as_ref().expect("an app with a cache");
        super::redis_connect(url).await.expect("connect to Redis")
    }
    /// Every card, customer and PIN index hash under the app's prefix, key → fields (not the
    /// service's own bookkeeping keys, `cps:…`).
    pub async fn cache_snapshot(
        &self,
    ) -> std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>> {
        let (_, prefix) = self.redis.as_ref().expect("an app with a cache");
        let mut conn = self.redis_conn().await;
        let mut keys: Vec<String> = Vec::new();
        for kind in ["card:", "customer:", "hmac:Password:"] {
            let some: Vec<String> = redis::cmd("KEYS")
                .arg(format!("{prefix}{kind}*"))
                .query_async(&mut conn)
                .await
                .expect("list keys");
            keys.extend(some);
        }
        let mut out = std::collections::BTreeMap::new();
        for key in keys {
            let hash = redis::cmd("HGETALL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .expect("read a hash");
            out.insert(key, hash);
        }
        out
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
    /// Runs a `cps` maintenance command against this app's database and cache.
    /// Runs the binary against this app's database and cache. Asynchronously: the app may run
    /// on this test's own runtime, and its background work (the outbox, delivery marks) must
    /// go on while the command waits for the database.
    pub async fn cps(&self, args: &[&str]) -> std::process::Output {
        let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_cps"));
        cmd.args(args)
            .env("CPS_DATABASE_URL", &self.database_url)
            .env_remove("CPS_REDIS_URL")
            .env("RUST_LOG", "warn");
        if let Some((url, prefix)) = &self.redis {
            cmd.env("CPS_REDIS_URL", url)
                .env("CPS_REDIS_PREFIX", prefix);
        }
        cmd.output().await.expect("run cps")
    }
    /// Waits (bounded) until `cps cache verify` finds no drift; returns its last output.
    pub async fn cache_converges(&self, within: std::time::Duration) -> Result<(), String> {
        let deadline = std::time::Instant::now() + within;
        loop {
            let out = self.cps(&["cache", "verify"]).await;
            if out.status.success() {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                return Err(format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        }
    }
}
