//! Throughput and latency of registration and activation through the real HTTP API, on each
//! backend, printed beside what bounds them: the same transaction's writes issued by pgbench
//! straight at PostgreSQL (no HTTP, no Rust), the same writes committed into SQLite one
//! transaction at a time, and the server's memory. The server is the release binary in a process
//! of its own (its memory and CPU are its own; it logs as in production, to a pipe).
//!
//! `cargo bench` — uses `CPS_TEST_DATABASE_URL` / `CPS_TEST_REDIS_URL` like the tests (defaults:
//! the local standard ports) and skips, saying so, what it cannot reach. `CPS_BENCH_SECS`
//! (default 10: each closed-loop row, each pgbench run and the SQLite loop last that long) and
//! `CPS_BENCH_CLIENTS` (default 16) size the run. Rows are timed, not counted: a run of a second
//! or two never reaches the database's checkpoints, autovacuum or a grown WAL, and flatters
//! every figure (measured: 2,000-request rows gave SQLite 2.6 times its sustained rate).
//! `CPS_BENCH_BACKENDS` (default `sqlite,postgres`) picks the backends; `CPS_BENCH_MAX_IN_FLIGHT`
//! overrides the server's running bound for the closed and open loops (the overload rows name
//! their own bounds).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cps::config::Config;
use cps::startup::Application;
use serde_json::json;
use sqlx::Connection;

mod support;
use support::{Server, config, env_num};

fn body(card: &str) -> serde_json::Value {
    json!({
        "Identity": { "PosNumber": "5", "SiteId": "2345" },
        "LoyaltyCard": {
            "CardNumber": card, "PhoneNumber": "+48602123789", "Gender": "M",
            "CardPinHMac": "3f729ea140a769400985ade930f695452cf622fd0dd3ca69218319333ca2386c",
            "Wallets": [
                { "Id": "Strickers2016", "Balance": 10.0, "Stat": { "Lost": 0.22 }, "Version": "abc" },
                { "Id": "SomethingElse", "Balance": 0.0, "Version": "xyz" }
            ]
        }
    })
}

/// Registrations of fresh cards offered at `rate` per second for `seconds`, each sent at its
/// scheduled time whatever the earlier ones are doing, its latency counted from that time (no
/// coordinated omission).
async fn open_loop(name: &str, server: &Server, rate: usize, seconds: usize) -> String {
    let base = server.base();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .expect("a client");
    let total = rate * seconds;
    let start = tokio::time::Instant::now() + Duration::from_millis(100);
    let tasks: Vec<_> = (0..total)
        .map(|i| {
            let (http, base) = (http.clone(), base.clone());
            let scheduled = start + Duration::from_secs_f64(i as f64 / rate as f64);
            tokio::spawn(async move {
                tokio::time::sleep_until(scheduled).await;
                let card = format!("5{i:012}");
                let ok = http
                    .put(format!("{base}/{card}"))
                    .json(&body(&card))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().as_u16() == 200);
                (ok, scheduled.elapsed())
            })
        })
        .collect();
    let mut latencies = Vec::with_capacity(total);
    let mut failed = 0;
    for task in tasks {
        let (ok, latency) = task.await.expect("a request");
        if !ok {
            failed += 1;
        }
        latencies.push(latency);
    }
    latencies.sort();
    let at = |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    format!(
        "{name:<22} {rate:>6}/s {seconds:>4} s {failed:>7} {:>9.2} {:>9.2} {:>9.2}   limit: p99 <= 10 ms",
        ms(at(0.50)),
        ms(at(0.99)),
        ms(at(0.999)),
    )
}

struct Figures {
    /// Successful requests per second.
    per_second: f64,
    /// Requests sent: those numbered `0..sent`.
    sent: usize,
    p50: Duration,
    p99: Duration,
    /// Requests not answered as expected, and the first one's answer.
    failed: usize,
    first_failure: Option<String>,
}

/// Sends requests `0, 1, …` (at most `total`) from `clients` concurrent clients until
/// `deadline`; `request(i)` makes the i-th.
async fn drive<F, Fut>(total: usize, clients: usize, deadline: Instant, request: F) -> Figures
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let request = Arc::new(request);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|_| {
            let (request, next) = (request.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = Vec::new();
                loop {
                    if Instant::now() >= deadline {
                        return (latencies, failures);
                    }
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return (latencies, failures);
                    }
                    let t = Instant::now();
                    match request(i).await {
                        Ok(()) => latencies.push(t.elapsed()),
                        Err(why) => failures.push(format!("request {i}: {why}")),
                    }
                }
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut failures = Vec::new();
    for w in workers {
        let (latencies, failed) = w.await.expect("a client");
        all.extend(latencies);
        failures.extend(failed);
    }
    let elapsed = started.elapsed();
    all.sort();
    let at = |q: usize| all.get(all.len() * q / 100).copied().unwrap_or_default();
    Figures {
        per_second: all.len() as f64 / elapsed.as_secs_f64(),
        // Every number drawn below `total` was sent: a client checks the time before drawing.
        sent: next.load(Ordering::Relaxed).min(total),
        p50: at(50),
        p99: at(99),
        failed: failures.len(),
        first_failure: failures.into_iter().next(),
    }
}

/// This process's memory figure `field` (`VmRSS:`, `VmHWM:`), in KiB.
fn rss_kib(field: &str) -> u64 {
    support::proc_kib(std::process::id(), field)
}

/// Whether a request was answered with `status`; if not, what it got.
async fn answered(sent: reqwest::Result<reqwest::Response>, status: u16) -> Result<(), String> {
    let response = sent.map_err(|e| e.to_string())?;
    let got = response.status();
    if got.as_u16() == status {
        return Ok(());
    }
    Err(format!(
        "{got} {}",
        response.text().await.unwrap_or_default()
    ))
}

/// Every closed-loop figure of the run, for the ratios at the end: (backend, operation, req/s).
static FIGURES: std::sync::Mutex<Vec<(String, String, f64)>> = std::sync::Mutex::new(Vec::new());

fn figure(backend: &str, operation: &str) -> Option<f64> {
    FIGURES
        .lock()
        .ok()?
        .iter()
        .find(|(b, o, _)| b == backend && o == operation)
        .map(|(_, _, f)| *f)
}

/// One line of the ratios: a figure over its bound, beside the target.
fn ratio(what: &str, figure: Option<f64>, bound: Option<f64>, target: f64) {
    match (figure, bound) {
        (Some(f), Some(b)) if b > 0.0 => {
            let r = f / b;
            let verdict = if r >= target { "meets" } else { "below" };
            println!(
                "{what:<44} {f:>7.0} / {b:>7.0} = {r:>5.2}x   target >= {target:.2}x: {verdict}"
            );
        }
        _ => println!("{what:<44} not measured"),
    }
}

/// `cpu`: the server's CPU time during the row.
fn row(backend: &str, operation: &str, f: &Figures, cpu: Duration) {
    if let Ok(mut figures) = FIGURES.lock() {
        figures.push((backend.to_owned(), operation.to_owned(), f.per_second));
    }
    println!(
        "{backend:<22} {operation:<10} {:>9.0} {:>9.2} {:>9.2} {:>9.3}",
        f.per_second,
        f.p50.as_secs_f64() * 1e3,
        f.p99.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3 / f.sent.max(1) as f64,
    );
    if let Some(first) = &f.first_failure {
        println!(
            "{:<22} {:<10} {} failed; the first: {first}",
            "", "", f.failed
        );
    }
}

/// An operation of the closed loop: its name, the status that answers it, and its request
/// for card `card` of the server at `base`.
type Operation = (
    &'static str,
    u16,
    fn(&reqwest::Client, &str, &str) -> reqwest::RequestBuilder,
);

/// Each card in turn is registered, activated, given a new phone number and locked.
const OPERATIONS: [Operation; 4] = [
    ("register", 200, |h, base, card| {
        h.put(format!("{base}/{card}")).json(&body(card))
    }),
    ("activate", 204, |h, base, card| {
        h.post(format!("{base}/{card}/activate"))
            .json(&json!({ "PhoneNumber": "+48602123789" }))
    }),
    ("phone", 204, |h, base, card| {
        h.patch(format!("{base}/{card}"))
            .json(&json!({ "PhoneNumber": "+48602123780" }))
    }),
    ("lock", 204, |h, base, card| {
        h.post(format!("{base}/{card}/lock"))
    }),
];

/// Runs every operation for `run` each, one row each: registrations of fresh cards, then each
/// later operation on the cards the one before it reached.
async fn run_backend(name: &str, mut c: Config, run: Duration, clients: usize) {
    if let Ok(bound) = std::env::var("CPS_BENCH_MAX_IN_FLIGHT") {
        c.http.requests.max_in_flight = bound.parse().expect("CPS_BENCH_MAX_IN_FLIGHT: a number");
    }
    let server = Server::start(&c);
    let base = server.base();
    let http = reqwest::Client::new();
    // The floor: the cheapest request there is (no body, no database), for its CPU per request.
    let (h, b) = (
        http.clone(),
        base.replace("/alcs/loyalty/v1/loyalty-cards", "/health/live"),
    );
    let cpu = server.cpu();
    let figures = drive(usize::MAX, clients, Instant::now() + run / 3, move |_| {
        let sent = h.get(&b).send();
        async move { answered(sent.await, 200).await }
    })
    .await;
    row(name, "live", &figures, server.cpu().saturating_sub(cpu));
    let mut cards = usize::MAX;
    for (operation, status, request) in OPERATIONS {
        let (h, b) = (http.clone(), base.clone());
        let cpu = server.cpu();
        let figures = drive(cards, clients, Instant::now() + run, move |i| {
            let sent = request(&h, &b, &format!("9{i:012}")).send();
            async move { answered(sent.await, status).await }
        })
        .await;
        let cpu = server.cpu().saturating_sub(cpu);
        row(name, operation, &figures, cpu);
        cards = figures.sent;
    }
    let rate = env_num("CPS_BENCH_OPEN_RATE", 1000);
    let seconds = env_num("CPS_BENCH_OPEN_SECS", 20);
    let open = if rate > 0 && seconds > 0 {
        open_loop(name, &server, rate, seconds).await
    } else {
        format!("{name:<22} open loop skipped")
    };
    let peak = server.peak_rss_mib();
    LATER
        .lock()
        .await
        .push((open, format!("{name:<22} {peak:>6} MiB   limit: 64 MiB")));
}

/// The open-loop and memory rows, printed after the closed-loop table.
static LATER: tokio::sync::Mutex<Vec<(String, String)>> = tokio::sync::Mutex::const_new(Vec::new());

/// `connections` clients at once, each reading a card three times for every registration, for
/// `seconds`: what the accepted requests' latency is, and how many were shed (503).
async fn overload(
    name: &str,
    mut c: Config,
    max_in_flight: &str,
    connections: usize,
    seconds: u64,
) {
    // `running+queued`, e.g. `32+32`.
    let (running, queued) = max_in_flight
        .split_once('+')
        .unwrap_or((max_in_flight, "0"));
    c.http.requests.max_in_flight = running.parse().expect("a number of requests");
    c.http.requests.max_queued = queued.parse().expect("a number of requests");
    let server = Server::start(&c);
    let base = server.base();
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(connections)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client");
    let read_card = "8000000000001";
    let registered = http
        .put(format!("{base}/{read_card}"))
        .json(&body(read_card))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success());
    assert!(registered, "the card to read is registered");
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|c| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let (mut accepted, mut shed, mut failed) = (Vec::new(), Vec::new(), 0usize);
                let mut n = 0usize;
                while Instant::now() < until {
                    n += 1;
                    let t = Instant::now();
                    let sent = if n.is_multiple_of(4) {
                        let card = format!("7{c:05}{n:07}");
                        http.put(format!("{base}/{card}"))
                            .json(&body(&card))
                            .send()
                            .await
                    } else {
                        http.get(format!("{base}/{read_card}")).send().await
                    };
                    match sent.map(|r| r.status().as_u16()) {
                        Ok(200) => accepted.push(t.elapsed()),
                        Ok(503) => {
                            shed.push(t.elapsed());
                            // As a till does: wait as long as `Retry-After` says (1 s).
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                        _ => failed += 1,
                    }
                }
                (accepted, shed, failed)
            })
        })
        .collect();
    let (mut accepted, mut shed, mut failed) = (Vec::new(), Vec::new(), 0);
    for client in clients {
        let (a, s, f) = client.await.expect("a client");
        accepted.extend(a);
        shed.extend(s);
        failed += f;
    }
    let elapsed = started.elapsed().as_secs_f64();
    accepted.sort();
    shed.sort();
    let pct = |v: &[Duration], p: usize| {
        v.get(v.len() * p / 100)
            .map_or(0.0, |d| d.as_secs_f64() * 1e3)
    };
    println!(
        "{name:<22} {max_in_flight:>9} {:>9.0} {:>9.0} {:>7} {:>9.1} {:>9.1} {:>9.1}   limit: accepted p99 < 100 ms",
        accepted.len() as f64 / elapsed,
        shed.len() as f64 / elapsed,
        failed,
        pct(&accepted, 50),
        pct(&accepted, 99),
        pct(&shed, 99),
    );
}

/// The registration's writes committed into SQLite by a plain loop, one transaction at a time
/// (`BEGIN IMMEDIATE` … `COMMIT`, WAL, `synchronous = FULL`, as the service opens it): customer,
/// card, two wallets, audit record. What one writer gets from this disk without batching.
async fn sqlite_loop(run: Duration) -> Option<f64> {
    use std::str::FromStr as _;
    let dir = tempfile::tempdir().ok()?;
    let url = format!("sqlite://{}", dir.path().join("loop.db").display());
    // Migrated the way the service does.
    drop(Application::build(config(&url, None)).await.ok()?);
    let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
        .ok()?
        .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
        .synchronous(sqlx::sqlite::SqliteSynchronous::Full);
    let mut conn = sqlx::SqliteConnection::connect_with(&options).await.ok()?;
    let now = "2026-11-29T10:00:00.000000Z";
    let started = Instant::now();
    let mut done = 0;
    for i in 0.. {
        if started.elapsed() >= run {
            break;
        }
        let (customer, card) = (format!("{i:032x}"), format!("6{i:012}"));
        sqlx::query("BEGIN IMMEDIATE")
            .execute(&mut conn)
            .await
            .ok()?;
        sqlx::query(
            "insert into customers (id, status, phone_number, gender, created_at, updated_at)
             values (?, 'NotActivated', '+48602123789', 'M', ?, ?)",
        )
        .bind(&customer)
        .bind(now)
        .bind(now)
        .execute(&mut conn)
        .await
        .ok()?;
        sqlx::query(
            "insert into cards (card_number, customer_id, status, pin_hmac,
                                registration_fingerprint, created_at, updated_at)
             values (?, ?, 'WaitingForActivation', ?, ?, ?, ?) on conflict (card_number) do nothing",
        )
        .bind(&card)
        .bind(&customer)
        .bind("a".repeat(64))
        .bind("b".repeat(64))
        .bind(now)
        .bind(now)
        .execute(&mut conn)
        .await
        .ok()?;
        for (position, (id, balance)) in [("Strickers2016", "10.0"), ("SomethingElse", "0.0")]
            .into_iter()
            .enumerate()
        {
            sqlx::query(
                "insert into wallets (card_number, wallet_id, position, balance, has_stat,
                     stat_lost, stat_transferred_out, stat_transferred_in, stat_issued,
                     version, created_at, updated_at)
                 values (?, ?, ?, ?, 1, '0.22', null, null, null, 'abc', ?, ?)",
            )
            .bind(&card)
            .bind(id)
            .bind(position as i64)
            .bind(balance)
            .bind(now)
            .bind(now)
            .execute(&mut conn)
            .await
            .ok()?;
        }
        sqlx::query(
            "insert into audit_log (occurred_at, operation, card_number, customer_id, identity, details)
             values (?, 'register', ?, ?, '{}', '{}')",
        )
        .bind(now)
        .bind(&card)
        .bind(&customer)
        .execute(&mut conn)
        .await
        .ok()?;
        sqlx::query("COMMIT").execute(&mut conn).await.ok()?;
        done += 1;
    }
    Some(f64::from(done) / started.elapsed().as_secs_f64())
}

/// The registration's writes as one pgbench transaction: customer, card, two wallets, audit
/// record, two outbox rows — no HTTP, no JSON, no Rust in between.
const PGBENCH_REGISTER: &str = r"
begin;
with c as (
  insert into customers (id, status, phone_number, gender, created_at, updated_at)
  values (md5(random()::text || clock_timestamp()::text), 'NotActivated', '+48602123789', 'M', now(), now())
  returning id),
k as (
  insert into cards (card_number, customer_id, status, pin_hmac, registration_fingerprint, created_at, updated_at)
  select nextval('bench_cards')::text, c.id, 'WaitingForActivation', repeat('a', 64), repeat('b', 64), now(), now() from c
  returning card_number, customer_id),
w as (
  insert into wallets (card_number, wallet_id, position, balance, has_stat, stat_lost, version, created_at, updated_at)
  select k.card_number, x.id, x.pos, x.balance::numeric, true, 0.22, 'abc', now(), now()
  from k, (values ('Strickers2016', 0, '10.0'), ('SomethingElse', 1, '0.0')) as x(id, pos, balance)
  returning card_number),
a as (
  insert into audit_log (occurred_at, operation, card_number, customer_id, identity, details)
  select now(), 'register', k.card_number, k.customer_id, '{}'::jsonb, '{}'::jsonb from k
  returning card_number)
insert into outbox (kind, subject, payload, status, next_attempt_at, created_at)
select 'cache_write', 'card:' || k.card_number, '{}'::jsonb, 'pending', now(), now()
from k;
commit;
";

/// The same writes as the service's transaction script sends them: one statement per step,
/// each a round trip, between `begin` and `commit` (run with prepared statements, as sqlx
/// does). What a script written once for both databases costs before any HTTP or JSON: SQLite
/// cannot put `insert`s inside `with`, so the one-statement form above is PostgreSQL's alone.
const PGBENCH_REGISTER_STEPS: &str = r"
begin;
insert into customers (id, status, phone_number, gender, created_at, updated_at)
values (md5(random()::text || clock_timestamp()::text), 'NotActivated', '+48602123789', 'M', now(), now())
returning id as cid \gset
insert into cards (card_number, customer_id, status, pin_hmac, registration_fingerprint, created_at, updated_at)
values (nextval('bench_cards')::text, :cid, 'WaitingForActivation', repeat('a', 64), repeat('b', 64), now(), now())
on conflict (card_number) do nothing returning card_number as card \gset
insert into wallets (card_number, wallet_id, position, balance, has_stat, stat_lost, version, created_at, updated_at)
values (:card, 'Strickers2016', 0, 10.0, true, 0.22, 'abc', now(), now()),
       (:card, 'SomethingElse', 1, 0.0, false, 0, 'xyz', now(), now());
insert into audit_log (occurred_at, operation, card_number, customer_id, identity, details)
values (now(), 'register', :card, :cid, '{}'::jsonb, '{}'::jsonb);
insert into outbox (kind, subject, payload, status, next_attempt_at, created_at)
values ('cache_write', 'card:' || :card, '{}'::jsonb, 'pending', now(), now()) returning id;
commit;
";

/// The writes of a change of one card (activate, phone change, lock) as one statement: lock the
/// card and its customer, update both, an audit entry and an outbox row. `:card` is a card the
/// register script made; `{extra}` is the operation's own condition on the card.
const PGBENCH_CHANGE: &str = r"
\set n random(0, :cards - 1)
begin;
with l as (
  select c.card_number, c.customer_id from cards c join customers u on u.id = c.customer_id
  where c.card_number = (100000000000 + :n)::text {extra}
  for update of c, u),
k as (
  update cards set status = '{status}', version = version + 1, updated_at = now()
  where card_number in (select card_number from l) and {card_changes}
  returning card_number),
u as (
  update customers set phone_number = coalesce({phone}, phone_number), version = version + 1,
    updated_at = now()
  where id in (select customer_id from l)
  returning id),
a as (
  insert into audit_log (occurred_at, operation, card_number, customer_id, identity, details)
  select now(), '{operation}', l.card_number, l.customer_id, null, '{}'::jsonb from l
  returning card_number)
insert into outbox (kind, subject, payload, status, next_attempt_at, created_at)
select 'cache_write', 'card:' || l.card_number, '{}'::jsonb, 'pending', now(), now() from l;
commit;
";

async fn pgbench(base_url: &str, run: Duration, clients: usize) -> Option<Bounds> {
    let schema = format!("cps_bench_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect(base_url).await.ok()?;
    sqlx::query(&format!("create schema {schema}"))
        .execute(&mut admin)
        .await
        .ok()?;
    let url = format!("{base_url}?options[search_path]={schema}");
    // Migrate the schema the way the service does.
    drop(Application::build(config(&url, None)).await.ok()?);
    sqlx::query(&format!(
        "create sequence {schema}.bench_cards start 100000000000"
    ))
    .execute(&mut admin)
    .await
    .ok()?;
    let dir = tempfile::tempdir().ok()?;
    let seconds = run.as_secs().max(1).to_string();
    // `cards`: how many the register runs made, numbered from 100000000000.
    let run = |name: &str, text: String, protocol: &str, cards: i64| {
        let script = dir.path().join(format!("{name}.sql"));
        let written = std::fs::write(&script, text);
        let mut command = std::process::Command::new("pgbench");
        command
            .args(["-n", "-M", protocol, "-c", &clients.to_string(), "-j", "2"])
            .args([
                "-T",
                &seconds,
                "-D",
                &format!("cards={}", cards.max(1)),
                "-f",
            ])
            .arg(&script)
            .arg(base_url.split('?').next().unwrap_or(base_url))
            .env("PGOPTIONS", format!("-c search_path={schema}"));
        async move {
            written.ok()?;
            let out = tokio::task::spawn_blocking(move || command.output())
                .await
                .ok()?
                .ok()?;
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .find(|l| l.starts_with("tps ="))
                .and_then(|l| l.split_whitespace().nth(2))
                .and_then(|v| v.parse::<f64>().ok())
        }
    };
    let change = |operation: &str, extra: &str, status: &str, card_changes: &str, phone: &str| {
        PGBENCH_CHANGE
            .replace("{operation}", operation)
            .replace("{extra}", extra)
            .replace("{status}", status)
            .replace("{card_changes}", card_changes)
            .replace("{phone}", phone)
    };
    let register = run("register", PGBENCH_REGISTER.to_owned(), "simple", 0).await;
    let register_prepared = run("prepared", PGBENCH_REGISTER.to_owned(), "prepared", 0).await;
    let register_steps = run("steps", PGBENCH_REGISTER_STEPS.to_owned(), "prepared", 0).await;
    let cards: (i64,) = sqlx::query_as(&format!("select count(*) from {schema}.cards"))
        .fetch_one(&mut admin)
        .await
        .ok()?;
    let cards = cards.0;
    let changes = [
        (
            "activate",
            // Activation also counts the card's failed attempts.
            change(
                "activate",
                "and (select count(*) from activation_failures f where f.card_number = c.card_number) >= 0",
                "Active",
                "true",
                "null",
            ),
        ),
        (
            "phone",
            change("change_phone", "", "Active", "false", "'+48602123780'"),
        ),
        ("lock", change("lock", "", "Locked", "true", "null")),
    ];
    let mut tps = Vec::new();
    for (name, script) in changes {
        tps.push(run(name, script, "simple", cards).await);
    }
    let [activate, phone, lock]: [Option<f64>; 3] = tps.try_into().ok()?;
    let _ = sqlx::query(&format!("drop schema {schema} cascade"))
        .execute(&mut admin)
        .await;
    Some(Bounds {
        register: register?,
        register_prepared,
        register_steps,
        activate,
        phone,
        lock,
    })
}

/// pgbench's transactions per second for each operation's writes.
struct Bounds {
    /// The one statement, simple protocol (pgbench's default): the bound of the targets.
    register: f64,
    /// The one statement, prepared.
    register_prepared: Option<f64>,
    /// One statement per step, prepared (see [`PGBENCH_REGISTER_STEPS`]).
    register_steps: Option<f64>,
    activate: Option<f64>,
    phone: Option<f64>,
    lock: Option<f64>,
}

#[tokio::main]
async fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let run = Duration::from_secs(env_num("CPS_BENCH_SECS", 10) as u64);
    let clients = env_num("CPS_BENCH_CLIENTS", 16);
    let rss_start = rss_kib("VmRSS:");
    println!(
        "cps throughput: {} s per row, {clients} concurrent clients, {} cores",
        run.as_secs(),
        std::thread::available_parallelism().map_or(0, usize::from)
    );
    println!(
        "{:<22} {:<10} {:>9} {:>9} {:>9} {:>9}",
        "backend", "operation", "req/s", "p50 ms", "p99 ms", "cpu ms/req"
    );

    let dir = tempfile::tempdir().expect("a temporary directory");
    let backends = std::env::var("CPS_BENCH_BACKENDS").unwrap_or_else(|_| "sqlite,postgres".into());
    let (with_sqlite, with_pg) = (
        backends.split(',').any(|b| b == "sqlite"),
        backends.split(',').any(|b| b == "postgres"),
    );
    let mut sqlite_bound = None;
    if with_sqlite {
        let sqlite = format!("sqlite://{}", dir.path().join("bench.db").display());
        run_backend("sqlite", config(&sqlite, None), run, clients).await;
        sqlite_bound = sqlite_loop(run).await;
        match sqlite_bound {
            Some(tx) => println!(
                "{:<22} {:<10} {tx:>9.0}   (the same writes, one transaction at a time, fsync each: the bound)",
                "sqlite plain loop", "register"
            ),
            None => println!("sqlite plain loop: failed"),
        }
    }

    let pg = std::env::var("CPS_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let redis =
        std::env::var("CPS_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let pg_up = with_pg && sqlx::PgConnection::connect(&pg).await.is_ok();
    if pg_up {
        let mut admin = sqlx::PgConnection::connect(&pg).await.expect("PostgreSQL");
        for (name, with_redis) in [("postgres", false), ("postgres+redis", true)] {
            let schema = format!("cps_bench_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("create schema {schema}"))
                .execute(&mut admin)
                .await
                .expect("a schema");
            let url = format!("{pg}?options[search_path]={schema}");
            let prefix = format!("cps-bench:{schema}:");
            let s = config(
                &url,
                with_redis.then_some((redis.as_str(), prefix.as_str())),
            );
            run_backend(name, s, run, clients).await;
            let _ = sqlx::query(&format!("drop schema {schema} cascade"))
                .execute(&mut admin)
                .await;
            if with_redis
                && let Ok(client) = redis::Client::open(redis.as_str())
                && let Ok(mut conn) = client.get_multiplexed_async_connection().await
            {
                let keys: Vec<String> = redis::cmd("KEYS")
                    .arg(format!("{prefix}*"))
                    .query_async(&mut conn)
                    .await
                    .unwrap_or_default();
                if !keys.is_empty() {
                    let _: Result<(), _> = redis::cmd("DEL").arg(keys).query_async(&mut conn).await;
                }
            }
        }
        let bounds = pgbench(&pg, run, clients).await;
        match &bounds {
            Some(bounds) => {
                println!(
                    "{:<22} {:<10} {:>9.0}   (each operation's writes as one statement, no HTTP/JSON: the bounds)",
                    "pgbench, same writes", "register", bounds.register
                );
                let show = |what: &str, tps: Option<f64>| match tps {
                    Some(tps) => println!("{:<22} {:<10} {tps:>9.0}   ({what})", "", "register"),
                    None => println!("{:<22} {:<10} failed   ({what})", "", "register"),
                };
                show("the same statement, prepared", bounds.register_prepared);
                show(
                    "one statement per step, prepared: the round trips of a script written once",
                    bounds.register_steps,
                );
                for (operation, tps) in [
                    ("activate", bounds.activate),
                    ("phone", bounds.phone),
                    ("lock", bounds.lock),
                ] {
                    match tps {
                        Some(tps) => println!("{:<22} {operation:<10} {tps:>9.0}", ""),
                        None => println!("{:<22} {operation:<10} failed", ""),
                    }
                }
            }
            None => println!("pgbench: skipped (not installed or failed)"),
        }
        println!("\nagainst their bounds (this run)");
        let pgb = |f: fn(&Bounds) -> Option<f64>| bounds.as_ref().and_then(f);
        ratio(
            "postgres register / pgbench register",
            figure("postgres", "register"),
            pgb(|b| Some(b.register)),
            0.95,
        );
        // No service can beat its own statements sent with nothing around them.
        ratio(
            "pgbench per step / pgbench register",
            pgb(|b| b.register_steps),
            pgb(|b| Some(b.register)),
            0.95,
        );
        ratio(
            "postgres+redis register / pgbench register",
            figure("postgres+redis", "register"),
            pgb(|b| Some(b.register)),
            0.8,
        );
        for (operation, bound) in [
            ("activate", pgb(|b| b.activate)),
            ("phone", pgb(|b| b.phone)),
            ("lock", pgb(|b| b.lock)),
        ] {
            ratio(
                &format!("postgres {operation} / pgbench {operation}"),
                figure("postgres", operation),
                bound,
                0.95,
            );
        }
    } else if with_pg {
        println!("skipped: no PostgreSQL at {pg}");
    }
    ratio(
        "sqlite register / plain loop",
        figure("sqlite", "register"),
        sqlite_bound,
        1.5,
    );
    let later = LATER.lock().await;
    println!(
        "\nopen loop: registrations of fresh cards at a fixed rate, latency from each one's scheduled send"
    );
    println!(
        "{:<22} {:>8} {:>6} {:>7} {:>9} {:>9} {:>9}",
        "backend", "rate", "for", "failed", "p50 ms", "p99 ms", "p99.9 ms"
    );
    for (open, _) in later.iter() {
        println!("{open}");
    }
    println!("\nserver peak RSS (its own process, after the runs above)");
    for (_, memory) in later.iter() {
        println!("{memory}");
    }
    drop(later);
    let connections = env_num("CPS_BENCH_OVERLOAD_CONNECTIONS", 2000);
    let seconds = env_num("CPS_BENCH_OVERLOAD_SECS", 10) as u64;
    println!(
        "\noverload: {connections} clients at once for {seconds} s (3 reads : 1 registration); \
         running+queued 12+36 is the default, 100000+0 is no shedding"
    );
    println!(
        "{:<22} {:>9} {:>9} {:>9} {:>7} {:>9} {:>9} {:>9}",
        "backend", "run+queue", "ok/s", "shed/s", "failed", "ok p50", "ok p99", "shed p99"
    );
    let bounds =
        std::env::var("CPS_BENCH_OVERLOAD_BOUNDS").unwrap_or_else(|_| "12+36,100000+0".into());
    let bounds: Vec<&str> = bounds.split(',').collect();
    for &bound in bounds.iter().filter(|_| with_sqlite) {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let sqlite = format!("sqlite://{}", dir.path().join("overload.db").display());
        overload("sqlite", config(&sqlite, None), bound, connections, seconds).await;
    }
    if pg_up {
        let mut admin = sqlx::PgConnection::connect(&pg).await.expect("PostgreSQL");
        for &bound in &bounds {
            let schema = format!("cps_bench_{}", uuid::Uuid::new_v4().simple());
            sqlx::query(&format!("create schema {schema}"))
                .execute(&mut admin)
                .await
                .expect("a schema");
            let url = format!("{pg}?options[search_path]={schema}");
            overload("postgres", config(&url, None), bound, connections, seconds).await;
            let _ = sqlx::query(&format!("drop schema {schema} cascade"))
                .execute(&mut admin)
                .await;
        }
    }
    println!(
        "client process: RSS {} MiB at start, peak {} MiB",
        rss_start / 1024,
        rss_kib("VmHWM:") / 1024
    );
}
