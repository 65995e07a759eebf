//! cps at a national program's size: a database seeded with N cards shaped as the API writes
//! them, then the cache rebuilt into an empty Redis, verified, and refilled by the running
//! service while it serves registrations and activations at a fixed rate; Redis's memory per
//! card; request latency beside the same load on an empty database.
//!
//! `cargo bench --bench scale -- --cards 1000000 [--backend postgres|sqlite] [--no-load]
//! [--soak SECS] [--private-postgres]`
//!
//! `--soak SECS` then offers 1,000 writes/s for that long (PostgreSQL) and prints the outbox's
//! live and dead rows and autovacuum runs; `--private-postgres` runs the PostgreSQL part on a
//! server the benchmark makes with `initdb` at the default settings (autovacuum on), instead of
//! the shared one.
//!
//! The seed: one card registered and activated through the real API (the template), then
//! copied N times inside the database with `insert … select` over a series, a chunk of 100,000
//! per statement, every column the template's but the identities (card number, customer id,
//! phone number, PIN HMAC, fingerprint) and the times: registered over two years in card order
//! (so the heap holds them in time order, as a table filled over the years does), and one card
//! in 25 changed again in the last 30 days (with the last month's registrations, about 8 % of
//! the cards changed in the last 30 days). Uses `CPS_TEST_DATABASE_URL` /
//! `CPS_TEST_REDIS_URL` like the tests; the PostgreSQL database `cps_scale` is dropped and made
//! anew, the SQLite file lives under `target/scale/`.

use std::time::{Duration, Instant};

use serde_json::json;
use sqlx::Connection;

mod support;
use support::{Server, config};
#[path = "support/private_pg.rs"]
mod private_pg;

const TEMPLATE: &str = "1000000000000000";
const TEMPLATE_PHONE: &str = "+48602123789";
const CHUNK: u64 = 100_000;
/// Requests per second offered while the cache refills (half registrations, half activations).
const RATE: usize = 500;

struct Args {
    cards: u64,
    backends: Vec<String>,
    load: bool,
    /// Seconds of writes at [`SOAK_RATE`] on PostgreSQL, then the outbox's dead rows.
    soak: Option<u64>,
    /// PostgreSQL on a server of the benchmark's own, at the default settings (autovacuum on).
    private_postgres: bool,
}

/// Writes per second of the soak (`--soak SECS`): registrations and activations.
const SOAK_RATE: usize = 1000;

fn args() -> Args {
    let mut args = Args {
        cards: 100_000,
        backends: vec!["postgres".into(), "sqlite".into()],
        load: true,
        soak: None,
        private_postgres: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--cards" => args.cards = it.next().and_then(|v| v.parse().ok()).expect("--cards N"),
            "--backend" => args.backends = vec![it.next().expect("--backend NAME")],
            "--no-load" => args.load = false,
            "--soak" => args.soak = it.next().and_then(|v| v.parse().ok()),
            "--private-postgres" => args.private_postgres = true,
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    args
}

/// The release binary run as a command, with the database and cache given.
fn cps(database: &str, redis: &str, prefix: &str, command: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
        .args(command)
        .env("CPS_DATABASE_URL", database)
        .env("CPS_REDIS_URL", redis)
        .env("CPS_REDIS_PREFIX", prefix)
        .env("CPS_REDIS_TIMEOUT_MS", "5000")
        .env("RUST_LOG", "warn")
        .output()
        .expect("the release binary runs");
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// An expression per backend, over the series' `i`.
struct Dialect {
    series: &'static str,
    id: &'static str,
    card: &'static str,
    phone: &'static str,
    hex64: &'static str,
    /// When card `i` of `{n}` was registered: spread over two years in card order, as a
    /// table fills (its rows lie in the heap in that order).
    created: &'static str,
    /// When it last changed: one card in 25 changed again in the last 30 days, scattered; the
    /// rest when registered.
    changed: &'static str,
}

const POSTGRES: Dialect = Dialect {
    series: "generate_series($1::bigint, $2::bigint) as s(i)",
    id: "md5('customer' || i)",
    card: "'7' || lpad(i::text, 15, '0')",
    phone: "'+48' || (500000000 + i)::text",
    hex64: "md5('pin' || i) || md5('hmac' || i)",
    created: "now() - ({n} - i) * 63072 * interval '1 second' / ({n} / 1000)",
    changed: "case when i % 25 = 0 then now() - ((i * 7919) % 2592000) * interval '1 second'
              else now() - ({n} - i) * 63072 * interval '1 second' / ({n} / 1000) end",
};

const SQLITE: Dialect = Dialect {
    series: "(with recursive s(i) as (select $1 union all select i + 1 from s where i < $2)
              select i from s) as s",
    id: "printf('%08x%024x', (i * 2654435761) % 4294967296, i)",
    card: "'7' || printf('%015d', i)",
    phone: "'+48' || (500000000 + i)",
    hex64: "printf('%016x%016x%016x%016x', i * 7919, i, i * 131, i * 31)",
    created: "strftime('%Y-%m-%dT%H:%M:%S', 'now',
                       '-' || (({n} - i) * 63072000 / {n}) || ' seconds') || '.000000Z'",
    changed: "strftime('%Y-%m-%dT%H:%M:%S', 'now', '-' || (case when i % 25 = 0
                       then (i * 7919) % 2592000 else ({n} - i) * 63072000 / {n} end)
                       || ' seconds') || '.000000Z'",
};

/// `insert into TABLE select …` copying the template's rows once per `i`, every column the
/// template's but those overridden.
fn copy_statement(
    table: &str,
    columns: &[String],
    template: &str,
    overrides: &[(&str, String)],
    d: &Dialect,
) -> String {
    let columns: Vec<&String> = columns
        .iter()
        .filter(|c| c.as_str() != "id" || table == "customers")
        .collect();
    let select: Vec<String> = columns
        .iter()
        .map(|c| {
            overrides
                .iter()
                .find(|(name, _)| name == c)
                .map_or_else(|| format!("t.{c}"), |(_, e)| e.clone())
        })
        .collect();
    let names: Vec<&str> = columns.iter().map(|c| c.as_str()).collect();
    format!(
        "insert into {table} ({}) select {} from {}, {table} t where {template}",
        names.join(", "),
        select.join(", "),
        d.series,
    )
}

enum Db {
    Pg(sqlx::PgConnection),
    Lite(sqlx::SqliteConnection),
}

impl Db {
    async fn columns(&mut self, table: &str) -> Vec<String> {
        match self {
            Db::Pg(c) => sqlx::query_scalar(
                "select column_name::text from information_schema.columns
                 where table_name = $1 and table_schema = current_schema() order by ordinal_position",
            )
            .bind(table)
            .fetch_all(c)
            .await
            .expect("columns"),
            Db::Lite(c) => sqlx::query_scalar(&format!("select name from pragma_table_info('{table}')"))
                .fetch_all(c)
                .await
                .expect("columns"),
        }
    }

    async fn run(&mut self, statement: &str, from: u64, to: u64) {
        match self {
            Db::Pg(c) => sqlx::query(statement)
                .bind(from as i64)
                .bind(to as i64)
                .execute(c)
                .await
                .map(drop),
            Db::Lite(c) => sqlx::query(statement)
                .bind(from as i64)
                .bind(to as i64)
                .execute(c)
                .await
                .map(drop),
        }
        .unwrap_or_else(|e| panic!("{e}: {statement}"));
    }

    async fn exec(&mut self, statement: &str) {
        match self {
            Db::Pg(c) => sqlx::query(statement).execute(c).await.map(drop),
            Db::Lite(c) => sqlx::query(statement).execute(c).await.map(drop),
        }
        .unwrap_or_else(|e| panic!("{e}: {statement}"));
    }

    async fn scalar(&mut self, statement: &str) -> i64 {
        match self {
            Db::Pg(c) => sqlx::query_scalar(statement).fetch_one(c).await,
            Db::Lite(c) => sqlx::query_scalar(statement).fetch_one(c).await,
        }
        .unwrap_or_else(|e| panic!("{e}: {statement}"))
    }
}

/// A table to copy the template's rows of: its name, which rows are the template's, and the
/// columns given other values (each an expression over the series' `i`).
type Copy<'a> = (&'a str, String, Vec<(&'a str, String)>);

/// Fills the database behind `db` with `n` copies of the template card.
async fn seed(db: &mut Db, n: u64) -> Duration {
    let d = match db {
        Db::Pg(_) => &POSTGRES,
        Db::Lite(_) => &SQLITE,
    };
    let created = d.created.replace("{n}", &n.max(1000).to_string());
    let at = d.changed.replace("{n}", &n.max(1000).to_string());
    let (created, at) = (created.as_str(), at.as_str());
    let tables: [Copy; 4] = [
        (
            "customers",
            format!("t.id = (select customer_id from cards where card_number = '{TEMPLATE}')"),
            vec![
                ("id", d.id.to_owned()),
                ("phone_number", d.phone.to_owned()),
                ("created_at", created.to_owned()),
                ("updated_at", at.to_owned()),
            ],
        ),
        (
            "cards",
            format!("t.card_number = '{TEMPLATE}'"),
            vec![
                ("card_number", d.card.to_owned()),
                ("customer_id", d.id.to_owned()),
                ("pin_hmac", d.hex64.to_owned()),
                (
                    "registration_fingerprint",
                    d.hex64
                        .replace("'pin'", "'fp'")
                        .replace("i * 7919", "i * 7"),
                ),
                ("created_at", created.to_owned()),
                ("updated_at", at.to_owned()),
            ],
        ),
        (
            "wallets",
            format!("t.card_number = '{TEMPLATE}'"),
            vec![
                ("card_number", d.card.to_owned()),
                ("created_at", created.to_owned()),
                ("updated_at", created.to_owned()),
            ],
        ),
        (
            "audit_log",
            format!("t.card_number = '{TEMPLATE}'"),
            vec![
                ("card_number", d.card.to_owned()),
                ("customer_id", d.id.to_owned()),
                ("occurred_at", created.to_owned()),
            ],
        ),
    ];
    let started = Instant::now();
    for (table, template, overrides) in &tables {
        let columns = db.columns(table).await;
        let statement = copy_statement(table, &columns, template, overrides, d);
        let mut from = 1;
        while from <= n {
            let to = (from + CHUNK - 1).min(n);
            db.run(&statement, from, to).await;
            from = to + 1;
        }
    }
    // As after any bulk load: the statistics made and (on PostgreSQL) the visibility map
    // set now, so that autovacuum does not do it in the middle of a later figure.
    match db {
        Db::Pg(c) => sqlx::query("vacuum analyze").execute(c).await.map(drop),
        Db::Lite(c) => sqlx::query("analyze").execute(c).await.map(drop),
    }
    .expect("vacuum analyze");
    started.elapsed()
}

fn registration(card: &str, phone: &str) -> serde_json::Value {
    json!({
        "Identity": { "PosNumber": "5", "SiteId": "2345" },
        "LoyaltyCard": {
            "CardNumber": card, "PhoneNumber": phone, "Gender": "M",
            "CardPinHMac": format!("{card:0>64}"),
            "Wallets": [
                { "Id": "Strickers2016", "Balance": 10.0, "Stat": { "Lost": 0.22 }, "Version": "abc" }
            ]
        }
    })
}

/// Registers and activates one card through the API.
async fn register_and_activate(http: &reqwest::Client, base: &str, card: &str) -> bool {
    let put = http
        .put(format!("{base}/{card}"))
        .json(&registration(card, TEMPLATE_PHONE))
        .send()
        .await;
    if !put.is_ok_and(|r| r.status() == 200) {
        return false;
    }
    http.post(format!("{base}/{card}/activate"))
        .json(&json!({ "PhoneNumber": TEMPLATE_PHONE }))
        .send()
        .await
        .is_ok_and(|r| r.status() == 204)
}

/// A series of the server's metrics (`name{labels} value`), summed over its lines.
async fn metric(http: &reqwest::Client, admin: &str, series: &str) -> f64 {
    let Ok(answer) = http.get(format!("http://{admin}/metrics")).send().await else {
        return 0.0;
    };
    let text = answer.text().await.unwrap_or_default();
    text.lines()
        .filter(|l| l.starts_with(series))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// The four writes a till makes of a card, in the order the load makes them.
const OPERATIONS: [&str; 4] = ["register", "change phone", "activate", "lock"];

/// The number every load's card changes its phone to: many cards share it (the desk's
/// listing of a phone of many cards).
const SHARED_PHONE: &str = "+48602123780";

struct Load {
    /// Per operation of [`OPERATIONS`]: p50 and p99.
    each: Vec<(Duration, Duration)>,
    p50: Duration,
    p99: Duration,
    failed: usize,
    sent: usize,
}

fn percentiles(latencies: &mut [Duration]) -> (Duration, Duration) {
    latencies.sort();
    let at = |p: f64| {
        latencies
            .get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    (at(0.50), at(0.99))
}

/// Writes offered at `rate` per second in all (open loop: each card's four writes, register,
/// change phone, activate and lock, one after the other, a card started at its time whatever
/// the others do, each latency counted from when it was sent) until `stop` says so, at most
/// `limit`.
async fn open_loop(
    base: String,
    first: u64,
    rate: usize,
    limit: Duration,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Load {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("a client");
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    let cards_per_second = (rate / OPERATIONS.len()).max(1);
    for i in 0.. {
        let scheduled = start + Duration::from_secs_f64(i as f64 / cards_per_second as f64);
        if scheduled - start > limit || *stop.borrow() {
            break;
        }
        tokio::time::sleep_until(scheduled).await;
        let (http, base) = (http.clone(), base.clone());
        let card = format!("6{:015}", first + i as u64);
        tasks.push(tokio::spawn(async move {
            let url = format!("{base}/{card}");
            let phone = json!({ "PhoneNumber": SHARED_PHONE });
            let requests = [
                (
                    http.put(&url).json(&registration(&card, TEMPLATE_PHONE)),
                    200,
                ),
                (http.patch(&url).json(&phone), 204),
                (http.post(format!("{url}/activate")).json(&phone), 204),
                (http.post(format!("{url}/lock")), 204),
            ];
            let mut answered = Vec::with_capacity(requests.len());
            for (request, status) in requests {
                let t = tokio::time::Instant::now();
                let ok = request.send().await.is_ok_and(|r| r.status() == status);
                answered.push((ok, t.elapsed()));
            }
            answered
        }));
    }
    let mut each = vec![Vec::new(); OPERATIONS.len()];
    let mut failed = 0;
    for task in tasks {
        for (op, (ok, latency)) in task.await.expect("a request").into_iter().enumerate() {
            failed += usize::from(!ok);
            each[op].push(latency);
        }
    }
    let mut all: Vec<Duration> = each.iter().flatten().copied().collect();
    let (p50, p99) = percentiles(&mut all);
    Load {
        each: each.iter_mut().map(|l| percentiles(l)).collect(),
        p50,
        p99,
        failed,
        sent: all.len(),
    }
}

/// The desk's look-ups, one at a time for about 10 s: a card by number, cards by a phone of one
/// card and by the phone the load's cards share (the listing's 100), and a card's history; each
/// kind's p50, p99 and count.
async fn desk_lookups(
    desk: &str,
    token: &str,
    cards: u64,
) -> Vec<(&'static str, Duration, Duration, usize)> {
    let http = reqwest::Client::new();
    let shared = SHARED_PHONE.replace('+', "%2B");
    let mut kinds: Vec<(&'static str, Vec<Duration>)> = vec![
        ("card", Vec::new()),
        ("cards by a phone of one card", Vec::new()),
        ("cards by a phone of 100 cards", Vec::new()),
        ("history", Vec::new()),
    ];
    let until = Instant::now() + Duration::from_secs(10);
    let mut i: u64 = 1;
    while Instant::now() < until {
        let n = (i * 7919) % cards.max(2) + 1;
        let paths = [
            format!("{desk}/cards/7{n:015}"),
            format!("{desk}/cards?phone=%2B48{}", 500_000_000 + n),
            format!("{desk}/cards?phone={shared}"),
            format!("{desk}/cards/7{n:015}/history"),
        ];
        for ((_, latencies), path) in kinds.iter_mut().zip(paths) {
            let t = Instant::now();
            let answer = http.get(&path).bearer_auth(token).send().await;
            assert!(
                answer.is_ok_and(|r| r.status() == 200),
                "the desk answers {path}"
            );
            latencies.push(t.elapsed());
        }
        i += 1;
    }
    kinds
        .into_iter()
        .map(|(what, mut l)| {
            l.sort();
            let at = |p: f64| l[((l.len() as f64 * p) as usize).min(l.len() - 1)];
            (what, at(0.5), at(0.99), l.len())
        })
        .collect()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Redis's `used_memory`.
async fn redis_memory(redis: &mut redis::aio::MultiplexedConnection) -> i64 {
    let info: String = redis::cmd("INFO")
        .arg("memory")
        .query_async(redis)
        .await
        .expect("INFO");
    info.lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

async fn delete_prefix(redis: &mut redis::aio::MultiplexedConnection, prefix: &str) {
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(format!("{prefix}*"))
            .arg("COUNT")
            .arg(1000)
            .query_async(redis)
            .await
            .expect("SCAN");
        if !keys.is_empty() {
            let _: () = redis::cmd("UNLINK")
                .arg(keys)
                .query_async(redis)
                .await
                .expect("UNLINK");
        }
        if next == 0 {
            return;
        }
        cursor = next;
    }
}

/// One line of figures from a command's output (`took … s (… cards/s), peak memory … MiB`).
fn took(text: &str) -> String {
    text.lines()
        .find(|l| l.starts_with("took "))
        .unwrap_or("(no figures)")
        .to_owned()
}

/// A server on `url` with the cache under `prefix` and the desk on, and its desk token.
fn serve(url: &str, redis_url: &str, prefix: &str, dir: &std::path::Path) -> (Server, String) {
    let tokens = dir.join("tokens");
    if !tokens.exists() {
        let added = std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
            .args(["support", "token", "add", "bench", "viewer"])
            .env("CPS_SUPPORT_TOKENS_FILE", &tokens)
            .output()
            .expect("a desk token");
        std::fs::write(dir.join("token"), &added.stdout).expect("the token kept");
    }
    let token = std::fs::read_to_string(dir.join("token")).expect("the token");
    let mut c = config(url, Some((redis_url, prefix)));
    if let Some(cache) = c.cache.as_mut() {
        cache.check = Some(Duration::from_secs(1));
    }
    c.desk = Some(cps::http::desk::DeskSettings::at(
        "127.0.0.1:0".parse().unwrap(),
        tokens,
    ));
    (Server::start(&c), token.trim().to_owned())
}

/// `load`'s figures, one line per operation, beside the same operation's on the empty
/// database when given.
fn print_load(name: &str, what: &str, load: &Load, empty: Option<&Load>) {
    println!(
        "{name}: {what}: {} sent, {} failed; all: p50 {:.2} ms, p99 {:.2} ms   limit: p99 <= 10 ms",
        load.sent,
        load.failed,
        ms(load.p50),
        ms(load.p99)
    );
    for (i, op) in OPERATIONS.iter().enumerate() {
        let (p50, p99) = load.each[i];
        let beside = empty.map_or_else(String::new, |e| {
            let (_, e99) = e.each[i];
            format!(
                "   empty database: p99 {:.2} ms, {:+.0} %   limit: +20 %",
                ms(e99),
                (ms(p99) / ms(e99).max(1e-9) - 1.0) * 100.0
            )
        });
        println!(
            "{name}:   {op:<13} p50 {:.2} ms, p99 {:.2} ms{beside}",
            ms(p50),
            ms(p99)
        );
    }
}

/// Waits until Redis has freed what `UNLINK` handed to its background thread, so that it
/// competes with no later figure.
async fn settle(redis: &mut redis::aio::MultiplexedConnection) {
    for _ in 0..600 {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(redis)
            .await
            .expect("INFO");
        let pending = info
            .lines()
            .find_map(|l| l.strip_prefix("lazyfree_pending_objects:"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if pending == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn run_backend(name: &str, url: &str, mut db: Db, redis_url: &str, a: &Args) {
    // Deleting millions of keys at the end takes SCAN pages longer than the default 500 ms.
    let mut redis = redis::Client::open(redis_url)
        .expect("a Redis URL")
        .get_multiplexed_async_connection_with_config(
            &redis::AsyncConnectionConfig::new()
                .set_response_timeout(Some(Duration::from_secs(60))),
        )
        .await
        .expect("Redis at CPS_TEST_REDIS_URL");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let dir = tempfile::tempdir().expect("a temporary directory");
    let (ok, out) = cps(url, redis_url, "unused:", &["migrate"]);
    assert!(ok, "migrate: {out}");
    let prefixes = ["template", "full", "refill"].map(|p| format!("scale:{run}:{p}:"));
    let [template_prefix, full, refill] = &prefixes;

    // The template, through the API; then the load on the database as good as empty.
    let (server, _) = serve(url, redis_url, template_prefix, dir.path());
    let http = reqwest::Client::new();
    assert!(
        register_and_activate(&http, &server.base(), TEMPLATE).await,
        "the template card"
    );
    let empty = if a.load {
        let (_keep, stop) = tokio::sync::watch::channel(false);
        let load = open_loop(
            server.base(),
            30_000_000,
            RATE,
            Duration::from_secs(10),
            stop,
        )
        .await;
        print_load(name, "steady load on an empty database", &load, None);
        // Its cards leave again: the seed copies the template alone.
        for statement in [
            "delete from wallets where card_number like '6%'",
            "delete from audit_log where card_number like '6%'",
            "delete from activation_failures where card_number like '6%'",
            "delete from outbox",
            "delete from cards where card_number like '6%'",
            "delete from customers where id not in (select customer_id from cards)",
        ] {
            db.exec(statement).await;
        }
        Some(load)
    } else {
        None
    };
    drop(server);

    let seeded = seed(&mut db, a.cards).await;
    let cards = db.scalar("select count(*) from cards").await;
    let recent = db
        .scalar(match db {
            Db::Pg(_) => {
                "select count(*) from cards where updated_at >= now() - interval '30 days'"
            }
            Db::Lite(_) => {
                "select count(*) from cards
                 where updated_at >= strftime('%Y-%m-%dT%H:%M:%S', 'now', '-30 days')"
            }
        })
        .await;
    let size = match &mut db {
        Db::Pg(c) => sqlx::query_scalar::<_, i64>("select pg_database_size(current_database())")
            .fetch_one(c)
            .await
            .unwrap_or(0),
        Db::Lite(_) => {
            std::fs::metadata(url.trim_start_matches("sqlite://")).map_or(0, |m| m.len() as i64)
        }
    };
    println!(
        "{name}: seeded {} cards in {:.1} s ({:.0} cards/s); database {} MiB; {recent} changed in the last 30 days",
        a.cards,
        seeded.as_secs_f64(),
        a.cards as f64 / seeded.as_secs_f64(),
        size / (1 << 20),
    );

    // Rebuild into an empty prefix; Redis's memory before and after.
    let before = redis_memory(&mut redis).await;
    let started = Instant::now();
    let (ok, out) = cps(
        url,
        redis_url,
        full,
        &["cache", "rebuild", "--batch-size", "1000"],
    );
    let took_rebuild = started.elapsed();
    assert!(ok, "rebuild: {out}");
    let used = redis_memory(&mut redis).await - before;
    println!(
        "{name}: rebuild {cards} cards: {:.1} s, {:.0} cards/s   target >= 50,000 cards/s   [{}]",
        took_rebuild.as_secs_f64(),
        cards as f64 / took_rebuild.as_secs_f64(),
        took(&out)
    );
    let keys = cards * 3;
    println!(
        "{name}: Redis memory for {cards} cards: {} MiB, {:.0} bytes per card (its card, customer and PIN index hashes)",
        used / (1 << 20),
        used as f64 / cards as f64
    );
    let first = "7000000000000001";
    let customer: String = match &mut db {
        Db::Pg(c) => sqlx::query_scalar("select customer_id from cards where card_number = $1")
            .bind(first)
            .fetch_one(c)
            .await
            .expect("a card"),
        Db::Lite(c) => sqlx::query_scalar("select customer_id from cards where card_number = $1")
            .bind(first)
            .fetch_one(c)
            .await
            .expect("a card"),
    };
    let pin: String = redis::cmd("HGET")
        .arg(format!("{full}card:{first}"))
        .arg("CardPinHMac")
        .query_async(&mut redis)
        .await
        .expect("the card's hash");
    for (what, key) in [
        ("card", format!("{full}card:{first}")),
        ("customer", format!("{full}customer:{customer}")),
        ("PIN index", format!("{full}hmac:Password:{pin}")),
    ] {
        let usage: i64 = redis::cmd("MEMORY")
            .arg("USAGE")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap_or(0);
        let encoding: String = redis::cmd("OBJECT")
            .arg("ENCODING")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap_or_default();
        println!("{name}:   one {what} hash: {usage} bytes ({encoding})");
    }

    let started = Instant::now();
    let (ok, out) = cps(
        url,
        redis_url,
        full,
        &["cache", "verify", "--batch-size", "1000"],
    );
    let took_verify = started.elapsed();
    assert!(ok, "verify: {out}");
    println!(
        "{name}: verify {keys} keys: {:.1} s, {:.0} keys/s   target >= 100,000 keys/s   [{}]",
        took_verify.as_secs_f64(),
        keys as f64 / took_verify.as_secs_f64(),
        took(&out)
    );

    if a.load {
        // The service refills an empty cache while it serves.
        let (server, _) = serve(url, redis_url, refill, dir.path());
        let admin = server.admin.clone().expect("the admin listener");
        let (stop_tx, stop) = tokio::sync::watch::channel(false);
        let load = tokio::spawn(open_loop(
            server.base(),
            1,
            RATE,
            Duration::from_secs(600),
            stop,
        ));
        let started = Instant::now();
        let (mut ninety, mut running_seen) = (None, false);
        let finished = loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let running = metric(&http, &admin, "cps_cache_refill_running").await > 0.0;
            let done = metric(&http, &admin, "cps_cache_refill_cards{state=\"done\"}").await;
            running_seen |= running;
            if ninety.is_none() && done >= 0.9 * recent as f64 {
                ninety = Some(started.elapsed());
            }
            if running_seen && !running && done > 0.0 {
                break Some(started.elapsed());
            }
            if started.elapsed() > Duration::from_secs(600) {
                break None;
            }
        };
        let _ = stop_tx.send(true);
        let served = load.await.expect("the load");
        drop(server);
        match finished {
            Some(t) => println!(
                "{name}: refill while serving {RATE} writes/s: {cards} cards back after {:.1} s ({:.0} cards/s)   target >= 20,000 cards/s, 1 M within 60 s",
                t.as_secs_f64(),
                cards as f64 / t.as_secs_f64()
            ),
            None => println!("{name}: refill did not finish within 600 s"),
        }
        if let Some(t) = ninety {
            println!(
                "{name}:   90 % of the cards active in the last 30 days back after {:.1} s",
                t.as_secs_f64()
            );
        }
        print_load(name, "writes during the refill", &served, None);

        // The same load, no refill, at this size (the cache full); then the desk's look-ups.
        let (server, token) = serve(url, redis_url, full, dir.path());
        let desk = format!(
            "http://{}/support/v1",
            server.support.clone().expect("the desk listener")
        );
        let (_keep, stop) = tokio::sync::watch::channel(false);
        let load = tokio::spawn(open_loop(
            server.base(),
            10_000_000,
            RATE,
            Duration::from_secs(10),
            stop,
        ));
        let steady = load.await.expect("the load");
        // The desk's look-ups after the load, on their own: each figure is the look-up's.
        let lookups = desk_lookups(&desk, &token, cards as u64).await;
        drop(server);
        print_load(
            name,
            &format!("steady load at {cards} cards"),
            &steady,
            empty.as_ref(),
        );
        for (what, p50, p99, n) in lookups {
            println!(
                "{name}:   desk {what}: p50 {:.2} ms, p99 {:.2} ms over {n}   limit: p99 <= 10 ms",
                ms(p50),
                ms(p99)
            );
        }
    }

    if let (Some(secs), Db::Pg(_)) = (a.soak, &db) {
        let (server, _) = serve(url, redis_url, full, dir.path());
        let (_keep, stop) = tokio::sync::watch::channel(false);
        // The outbox every minute of the soak: whether autovacuum keeps up as it goes, not
        // only at the end.
        let sampler = {
            let url = url.to_owned();
            tokio::spawn(async move {
                let Ok(mut conn) = sqlx::PgConnection::connect(&url).await else {
                    return;
                };
                let started = Instant::now();
                loop {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    let Ok((live, dead, vacuums)) = sqlx::query_as::<_, (i64, i64, i64)>(
                        "select n_live_tup, n_dead_tup, autovacuum_count
                         from pg_stat_user_tables where relname = 'outbox'",
                    )
                    .fetch_one(&mut conn)
                    .await
                    else {
                        return;
                    };
                    println!(
                        "  soak at {:>4} s: outbox {live} live rows, {dead} dead, {vacuums} autovacuum runs",
                        started.elapsed().as_secs()
                    );
                }
            })
        };
        let soak = open_loop(
            server.base(),
            20_000_000,
            SOAK_RATE,
            Duration::from_secs(secs),
            stop,
        )
        .await;
        sampler.abort();
        drop(server);
        // The statistics collector reports with a delay.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let Db::Pg(conn) = &mut db else {
            unreachable!("PostgreSQL only")
        };
        let (live, dead, vacuums, size, autovacuum): (i64, i64, i64, i64, String) = sqlx::query_as(
            "select n_live_tup, n_dead_tup, autovacuum_count, pg_total_relation_size(relid),
                    current_setting('autovacuum')
             from pg_stat_user_tables where relname = 'outbox'",
        )
        .fetch_one(conn)
        .await
        .expect("the outbox's statistics");
        println!(
            "{name}: soak {secs} s at {SOAK_RATE} writes/s: {} sent, {} failed, p99 {:.2} ms; outbox after it: {live} live rows, {dead} dead, {vacuums} autovacuum runs (autovacuum = {autovacuum}), {} KiB",
            soak.sent,
            soak.failed,
            ms(soak.p99),
            size / 1024
        );
    }
    for prefix in &prefixes {
        delete_prefix(&mut redis, prefix).await;
    }
    settle(&mut redis).await;
}

#[tokio::main]
async fn main() {
    let a = args();
    println!(
        "cps scale: {} cards, {} cores",
        a.cards,
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    let redis =
        std::env::var("CPS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    for backend in &a.backends {
        match backend.as_str() {
            "postgres" => {
                // Kept until the backend's run ends.
                let private = if a.private_postgres {
                    let Some(private) = private_pg::PrivatePostgres::start() else {
                        continue;
                    };
                    Some(private)
                } else {
                    None
                };
                let base = match &private {
                    Some(private) => private.url(),
                    None => std::env::var("CPS_TEST_DATABASE_URL")
                        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned()),
                };
                let Ok(mut admin) = sqlx::PgConnection::connect(&base).await else {
                    println!("postgres: skipped: no PostgreSQL at {base}");
                    continue;
                };
                for s in [
                    "drop database if exists cps_scale with (force)",
                    "create database cps_scale",
                ] {
                    sqlx::query(s)
                        .execute(&mut admin)
                        .await
                        .expect("a database");
                }
                let mut url = url::Url::parse(&base).expect("a URL");
                url.set_path("/cps_scale");
                let url = url.to_string();
                let conn = sqlx::PgConnection::connect(&url).await.expect("cps_scale");
                run_backend("postgres", &url, Db::Pg(conn), &redis, &a).await;
            }
            "sqlite" => {
                let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/scale");
                std::fs::create_dir_all(&dir).expect("target/scale");
                let path = dir.join("cps-scale.db");
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                }
                let url = format!("sqlite://{}", path.display());
                let (ok, out) = cps(&format!("{url}?mode=rwc"), &redis, "unused:", &["migrate"]);
                assert!(ok, "migrate: {out}");
                let conn = sqlx::SqliteConnection::connect(&url)
                    .await
                    .expect("the SQLite file");
                run_backend("sqlite", &url, Db::Lite(conn), &redis, &a).await;
            }
            other => println!("unknown backend {other}"),
        }
    }
}
