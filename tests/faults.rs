//! The fault suite: the service under write load while things break — the process killed with
//! SIGKILL, PostgreSQL stopped and started, Redis frozen and restarted empty, the disk under
//! SQLite full, two instances racing on one database. Every scenario checks that each
//! acknowledged write is stored exactly once and that the cache ends equal to the database, and
//! prints its figures (sent, acknowledged, lost, doubled, seconds to recover).
//!
//! Bounded in time, loopback only; every process it starts (the service, a private PostgreSQL,
//! a private Redis) is its own and is stopped by its own id. The shared PostgreSQL and Redis are
//! only ever given fresh schemas and key prefixes.

#[path = "api/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sqlx::Connection as _;
use support::*;

/// The backend the support library assumes where a test names none.
pub const BACKEND: Backend = Backend::PostgresRedis;

/// One line of figures, straight to stderr (the harness would swallow `eprintln!`).
fn report(scenario: &str, figures: &str) {
    let _ = writeln!(std::io::stderr(), "fault {scenario}: {figures}");
}

/// What a load run saw.
#[derive(Default)]
struct Tally {
    sent: u64,
    /// Acknowledged registrations: card → customer id.
    acked: HashMap<String, String>,
    /// Answers by status.
    statuses: HashMap<u16, u64>,
    /// No answer at all (connection refused or cut).
    no_answer: u64,
    /// The longest time a 503 took, once the failure was known (after `settle`).
    slowest_503: Duration,
}

impl Tally {
    /// The answers with a status other than `allowed`, and how many of each.
    fn unexpected(&self, allowed: &[u16]) -> Vec<(u16, u64)> {
        self.statuses
            .iter()
            .filter(|(s, _)| !allowed.contains(s))
            .map(|(s, n)| (*s, *n))
            .collect()
    }
}

/// Registers fresh cards from `clients` concurrent loops until `stop` turns true.
struct Load {
    tally: Arc<Mutex<Tally>>,
    stop: tokio::sync::watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// `bases`: the instances to spread the load over. `tag` keeps card numbers unique per run.
    fn start(
        bases: Vec<String>,
        clients: usize,
        tag: u32,
        settle: Arc<Mutex<Option<Instant>>>,
    ) -> Self {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(15))
            .build()
            .unwrap();
        let tasks = (0..clients)
            .map(|c| {
                let (tally, stopped, client, settle) = (
                    tally.clone(),
                    stopped.clone(),
                    client.clone(),
                    settle.clone(),
                );
                let bases = bases.clone();
                tokio::spawn(async move {
                    let mut n = 0u32;
                    while !*stopped.borrow() {
                        n += 1;
                        let card = format!("{tag}{c:02}{n:06}");
                        let base = &bases[(n as usize) % bases.len()];
                        let url = format!("{base}/alcs/loyalty/v1/loyalty-cards/{card}");
                        let started = Instant::now();
                        let sent = client
                            .put(&url)
                            .header("content-type", "application/json")
                            .body(registration(&card).to_string())
                            .send()
                            .await;
                        let answer = match sent {
                            Ok(r) => {
                                let status = r.status();
                                let body = r.text().await.unwrap_or_default();
                                Some((status, body))
                            }
                            Err(e) => {
                                if n == 1 && c == 0 {
                                    report("load", &format!("no answer: {e:?}"));
                                }
                                None
                            }
                        };
                        let answered = answer.is_some();
                        {
                            let mut t = tally.lock().unwrap();
                            t.sent += 1;
                            match answer {
                                Some((status, body)) => {
                                    let seen = t.statuses.entry(status.as_u16()).or_default();
                                    *seen += 1;
                                    if *seen == 1 && !matches!(status.as_u16(), 200 | 503) {
                                        report("load", &format!("first {status}: {body}"));
                                    }
                                    if status == StatusCode::OK {
                                        let v: serde_json::Value =
                                            serde_json::from_str(&body).unwrap();
                                        t.acked.insert(
                                            card,
                                            v["CustomerId"].as_str().unwrap().to_owned(),
                                        );
                                    } else if status == StatusCode::SERVICE_UNAVAILABLE
                                        && settle.lock().unwrap().is_some_and(|s| started > s)
                                    {
                                        t.slowest_503 = t.slowest_503.max(started.elapsed());
                                    }
                                }
                                None => t.no_answer += 1,
                            }
                        }
                        if !answered {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    }
                })
            })
            .collect();
        Self { tally, stop, tasks }
    }

    fn acked(&self) -> usize {
        self.tally.lock().unwrap().acked.len()
    }

    /// Waits until more than `n` writes are acknowledged; fails after `within`.
    async fn until_acked(&self, n: usize, within: Duration) {
        let started = Instant::now();
        while self.acked() <= n {
            assert!(
                started.elapsed() < within,
                "no more than {n} acknowledged writes within {within:?}: {:?}",
                self.tally.lock().unwrap().statuses
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn finish(self) -> Tally {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
        Arc::try_unwrap(self.tally)
            .ok()
            .expect("the load's tasks are done")
            .into_inner()
            .unwrap()
    }
}

fn no_settle() -> Arc<Mutex<Option<Instant>>> {
    Arc::new(Mutex::new(None))
}

/// Every acknowledged registration is stored with the customer id it was answered with (lost:
/// missing or different), and no customer exists without its card (doubled: more customers
/// than cards — a write done twice or half). Returns (lost, doubled).
async fn audit_writes(app: &TestApp, acked: &HashMap<String, String>) -> (usize, i64) {
    let mut lost = 0;
    for (card, customer) in acked {
        let reply = app.get(card).await;
        if reply.status != StatusCode::OK
            || reply.json()["Customer"]["CustomerId"] != customer.as_str()
        {
            if lost == 0 {
                report(
                    "lost write",
                    &format!("{card}: {} {}", reply.status, reply.text),
                );
            }
            lost += 1;
        }
    }
    let doubled = app.count("customers").await - app.count("cards").await;
    (lost, doubled)
}

/// How a Redis failover run ends: the load stopped and audited, and the cache given 60 s to
/// verify.
struct RedisFailoverEnd {
    tally: Tally,
    lost: usize,
    doubled: i64,
    verified: Result<(), String>,
    verify_secs: f64,
}

impl RedisFailoverEnd {
    async fn of(load: Load, app: &TestApp) -> Self {
        let tally = load.finish().await;
        let (lost, doubled) = audit_writes(app, &tally.acked).await;
        let verify_started = Instant::now();
        let verified = app.cache_converges(Duration::from_secs(60)).await;
        Self {
            tally,
            lost,
            doubled,
            verified,
            verify_secs: verify_started.elapsed().as_secs_f64(),
        }
    }

    /// Nothing lost or doubled, every request answered 200, the cache verified.
    fn assert_clean(self) {
        assert_eq!((self.lost, self.doubled), (0, 0));
        let others = self.tally.unexpected(&[200]);
        assert!(others.is_empty(), "answers other than 200: {others:?}");
        assert_eq!(self.tally.no_answer, 0);
        self.verified
            .unwrap_or_else(|drift| panic!("cache differs:\n{drift}"));
    }
}

/// Waits (bounded) until `/health/ready` answers 200; returns how long it took.
async fn until_ready(base: &str, within: Duration) -> Duration {
    let started = Instant::now();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    loop {
        if let Ok(r) = client.get(format!("{base}/health/ready")).send().await
            && r.status() == StatusCode::OK
        {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not ready within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Starts the real binary on `db` (and Redis, if given); returns it and its base URL.
fn spawn_binary(db: &str, redis: Option<(&str, &str)>) -> (Running, String) {
    let mut env = vec![("CPS_DATABASE_URL", db), ("RUST_LOG", "warn,cps=info")];
    if let Some((url, prefix)) = redis {
        env.push(("CPS_REDIS_URL", url));
        env.push(("CPS_REDIS_PREFIX", prefix));
    }
    let (child, _logs, addr) = start(&env);
    (child, format!("http://{addr}"))
}

/// SIGKILL, not a polite stop.
fn kill_9(process: &mut Running) {
    let status = std::process::Command::new("kill")
        .args(["-9", &process.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    process.wait_for_exit(Duration::from_secs(10));
}

async fn kill_9_under_load(backend: Backend) {
    let Some((db, prefix)) = TestApp::resources(backend).await else {
        return;
    };
    let redis = prefix.as_ref().map(|p| (redis_url(), p.0.clone()));
    let redis_ref = redis.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
    let (mut server, base) = spawn_binary(&db.url, redis_ref);
    until_ready(&base, Duration::from_secs(20)).await;
    let load = Load::start(vec![base.clone()], 8, 91, no_settle());
    let loading = Instant::now();
    while load.acked() < 300 {
        assert!(
            loading.elapsed() < Duration::from_secs(60),
            "no 300 acknowledged writes in 60 s: {:?}",
            load.tally.lock().unwrap().statuses
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    kill_9(&mut server);
    let tally = load.finish().await;

    let (_server, base) = spawn_binary(&db.url, redis_ref);
    let recovered = until_ready(&base, Duration::from_secs(20)).await;
    let mut app = TestApp::at(&base);
    app.database_url = db.url.clone();
    app.redis = redis.clone();
    let (lost, doubled) = audit_writes(&app, &tally.acked).await;
    report(
        &format!("kill -9 under load ({backend:?})"),
        &format!(
            "sent {}, acknowledged {}, lost {lost}, doubled {doubled}, {:.1} s to ready after restart",
            tally.sent,
            tally.acked.len(),
            recovered.as_secs_f64()
        ),
    );
    assert_eq!((lost, doubled), (0, 0));
    if redis.is_some() {
        app.cache_converges(Duration::from_secs(30))
            .await
            .unwrap_or_else(|drift| panic!("cache differs after the crash:\n{drift}"));
    }
    drop((db, prefix));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_write_load_on_sqlite_loses_and_doubles_nothing() {
    kill_9_under_load(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_under_write_load_on_postgres_and_redis_loses_and_doubles_nothing() {
    kill_9_under_load(Backend::PostgresRedis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_stopped_and_started_under_load_fails_fast_and_recovers_by_itself() {
    let Some((_, prefix)) = TestApp::resources(Backend::PostgresRedis).await else {
        return;
    };
    let Some(pg) = PrivatePostgres::start() else {
        return;
    };
    let mut c = config(&pg.url());
    c.cache = Some(cache_settings(&prefix.as_ref().unwrap().0));
    c.database.options.timeout = Duration::from_secs(5);
    let app = TestApp::start(c, None, prefix).await;
    let settle = no_settle();
    let load = Load::start(vec![app.base.clone()], 8, 92, settle.clone());
    tokio::time::sleep(Duration::from_secs(1)).await;

    pg.down();
    let down_at = Instant::now();
    let acked_before = load.acked();
    // Once the breaker knows, every 503 is immediate: measured from 1 s after the stop.
    tokio::time::sleep(Duration::from_secs(1)).await;
    *settle.lock().unwrap() = Some(Instant::now());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let ready = reqwest::Client::new()
        .get(format!("{}/health/ready", app.base))
        .timeout(Duration::from_secs(2))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);

    pg.up();
    let up_at = Instant::now();
    while load.acked() == acked_before || {
        // Acknowledged writes after the restart, not just before it.
        let t = load.tally.lock().unwrap();
        t.acked.len() <= acked_before + 8
    } {
        assert!(
            up_at.elapsed() < Duration::from_secs(30),
            "no recovery within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let recovered = up_at.elapsed();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tally = load.finish().await;
    let mut audit = TestApp::at(&app.base);
    audit.database_url = pg.url();
    let (lost, doubled) = audit_writes(&audit, &tally.acked).await;
    let served_503 = tally.statuses.get(&503).copied().unwrap_or(0);
    let others = tally.unexpected(&[200, 503]);
    report(
        "PostgreSQL stopped and started under load",
        &format!(
            "sent {}, acknowledged {}, 503 {served_503}, lost {lost}, doubled {doubled}, down {:.1} s, slowest 503 once known {} ms, {:.1} s to recover after start",
            tally.sent,
            tally.acked.len(),
            up_at.duration_since(down_at).as_secs_f64(),
            tally.slowest_503.as_millis(),
            recovered.as_secs_f64()
        ),
    );
    assert_eq!((lost, doubled), (0, 0));
    assert!(others.is_empty(), "answers other than 200/503: {others:?}");
    assert_eq!(tally.no_answer, 0);
    // Failing fast: with a 5 s database timeout, a 503 that waited for it would take 5 s.
    assert!(
        tally.slowest_503 < Duration::from_secs(2),
        "a 503 took {:?} while the database was known down",
        tally.slowest_503
    );
    audit.redis = app.redis.clone();
    audit
        .cache_converges(Duration::from_secs(30))
        .await
        .unwrap_or_else(|drift| panic!("cache differs:\n{drift}"));
}

/// How the endpoint in front of PostgreSQL is moved to the promoted replica.
#[derive(Debug, Clone, Copy)]
enum Switch {
    /// The primary stops; the proxy moves (cutting its connections) first to the replica while
    /// it is still a standby, then the replica is promoted: new connections meet a read-only
    /// server for a while.
    StopThenPromote,
    /// The primary is fenced read-only (`default_transaction_read_only`) and keeps running;
    /// the replica is promoted once it has replayed everything, and the proxy sends new
    /// connections to it but leaves the open ones on the old primary (no `shutdown-sessions`):
    /// the pool holds connections whose every write fails with 25006.
    FenceThenRedirect,
}

/// A PostgreSQL failover under write load, behind one endpoint that follows the primary (the
/// supported shape): a private primary, its streaming replica, the test's proxy in front. The
/// old primary then rejoins as a standby of the new one. Nothing acknowledged is lost or
/// doubled, nothing but 200 and 503 is answered, readiness says 503 during the switch, and
/// writes come back without a restart.
async fn postgresql_failover(switch: Switch) {
    let Some((_, prefix)) = TestApp::resources(Backend::PostgresRedis).await else {
        return;
    };
    // `wal_log_hints`, and WAL kept: so that the old primary can be rewound to follow the new
    // one (pg_rewind reads its WAL back to the last checkpoint before they diverged).
    let Some(primary) = PrivatePostgres::start_with(|_| {
        vec!["wal_log_hints=on".into(), "wal_keep_size=256MB".into()]
    }) else {
        return;
    };
    let replica = primary.replica();
    let mut proxy = Proxy::start(socket_addr(&primary.url())).await;
    let mut c = config(&via_port(&primary.url(), proxy.port));
    c.cache = Some(cache_settings(&prefix.as_ref().unwrap().0));
    c.database.options.timeout = Duration::from_secs(5);
    let app = TestApp::start(c, None, prefix).await;
    let settle = no_settle();
    let tag = match switch {
        Switch::StopThenPromote => 94,
        Switch::FenceThenRedirect => 95,
    };
    let load = Load::start(vec![app.base.clone()], 8, tag, settle.clone());
    load.until_acked(100, Duration::from_secs(60)).await;
    let ready = || async {
        reqwest::Client::new()
            .get(format!("{}/health/ready", app.base))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .unwrap()
            .status()
    };

    let switch_at = Instant::now();
    match switch {
        Switch::StopThenPromote => {
            // A fast stop sends every WAL record to the replica before the primary goes.
            primary.down();
            proxy.retarget(socket_addr(&replica.url())).await;
            tokio::time::sleep(Duration::from_secs(1)).await;
            *settle.lock().unwrap() = Some(Instant::now());
            tokio::time::sleep(Duration::from_secs(2)).await;
            // The endpoint leads to a standby: no connection to it is used for a write.
            assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
            replica.promote();
        }
        Switch::FenceThenRedirect => {
            let mut admin = sqlx::PgConnection::connect(&primary.url()).await.unwrap();
            for statement in [
                "alter system set default_transaction_read_only = on",
                "select pg_reload_conf()",
            ] {
                sqlx::query(statement).execute(&mut admin).await.unwrap();
            }
            // The pool's connections see the fence within moments; then nothing is written.
            tokio::time::sleep(Duration::from_secs(1)).await;
            *settle.lock().unwrap() = Some(Instant::now());
            assert_eq!(ready().await, StatusCode::SERVICE_UNAVAILABLE);
            // A careful switchover: the replica has replayed all the primary wrote.
            let mut standby = sqlx::PgConnection::connect(&replica.url()).await.unwrap();
            let written: String = sqlx::query_scalar("select pg_current_wal_lsn()::text")
                .fetch_one(&mut admin)
                .await
                .unwrap();
            let caught_up = Instant::now();
            while !sqlx::query_scalar::<_, bool>(
                "select pg_last_wal_replay_lsn() >= $1::text::pg_lsn",
            )
            .bind(&written)
            .fetch_one(&mut standby)
            .await
            .unwrap()
            {
                assert!(caught_up.elapsed() < Duration::from_secs(30), "no catch-up");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            replica.promote();
            // The old primary keeps running, fenced, with the pool's connections on it.
            proxy.redirect_new(socket_addr(&replica.url()));
        }
    }
    let promoted_at = Instant::now();
    load.until_acked(load.acked() + 8, Duration::from_secs(30))
        .await;
    let recovered = promoted_at.elapsed();
    if matches!(switch, Switch::FenceThenRedirect) {
        primary.down();
    }
    primary.rejoin_as_standby_of(replica.port);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let tally = load.finish().await;

    let mut audit = TestApp::at(&app.base);
    audit.database_url = replica.url();
    let (lost, doubled) = audit_writes(&audit, &tally.acked).await;
    let served_503 = tally.statuses.get(&503).copied().unwrap_or(0);
    let others = tally.unexpected(&[200, 503]);
    // The old primary follows the new one: the last acknowledged card reaches it.
    let cards = audit.count("cards").await;
    let mut old = sqlx::PgConnection::connect(&primary.url()).await.unwrap();
    let following = Instant::now();
    loop {
        let (in_recovery, count): (bool, i64) =
            sqlx::query_as("select pg_is_in_recovery(), (select count(*) from cards)")
                .fetch_one(&mut old)
                .await
                .unwrap();
        assert!(in_recovery, "the old primary rejoined as a standby");
        if count == cards {
            break;
        }
        if following.elapsed() > Duration::from_secs(30) {
            let log = std::fs::read_to_string(primary.dir.path().join("log")).unwrap_or_default();
            let tail: Vec<_> = log.lines().rev().take(15).collect();
            panic!(
                "the old primary does not follow: {count} of {cards} cards; its log ends:\n{tail:#?}"
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report(
        &format!("PostgreSQL failover behind a proxy ({switch:?})"),
        &format!(
            "sent {}, acknowledged {}, 503 {served_503}, lost {lost}, doubled {doubled}, switch {:.1} s, slowest 503 once known {} ms, {:.1} s from promotion to writes",
            tally.sent,
            tally.acked.len(),
            promoted_at.duration_since(switch_at).as_secs_f64(),
            tally.slowest_503.as_millis(),
            recovered.as_secs_f64()
        ),
    );
    assert_eq!((lost, doubled), (0, 0));
    assert!(others.is_empty(), "answers other than 200/503: {others:?}");
    assert_eq!(tally.no_answer, 0);
    assert!(
        tally.slowest_503 < Duration::from_secs(2),
        "a 503 took {:?} once the switch was known",
        tally.slowest_503
    );
    // Writes back within seconds (5 s is the aim; the bound leaves room for a loaded CI).
    assert!(recovered < Duration::from_secs(10), "{recovered:?}");
    audit.redis = app.redis.clone();
    audit
        .cache_converges(Duration::from_secs(30))
        .await
        .unwrap_or_else(|drift| panic!("cache differs:\n{drift}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_failover_with_the_proxy_on_a_standby_first_loses_nothing_and_recovers_by_itself()
 {
    postgresql_failover(Switch::StopThenPromote).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_failover_leaving_pooled_connections_on_a_fenced_primary_recovers_by_itself() {
    postgresql_failover(Switch::FenceThenRedirect).await;
}

/// How the master behind the sentinels is replaced.
#[derive(Debug, Clone, Copy)]
enum RedisSwitch {
    /// `SENTINEL FAILOVER`: the replica becomes the master, the master its replica (the
    /// demoted master takes writes until the sentinels reconfigure it: those are lost).
    Manual,
    /// The replica is cut off from the master, which takes writes for a second more and is
    /// killed; the sentinels promote the replica: every write it had not received is lost
    /// with the master.
    KillLaggingMaster,
}

/// Redis Sentinel under write load. The service's connection, told of the switch by the
/// sentinels (or `READONLY`, or cut), asks them for the master again: the cache writes of
/// changes acknowledged after the failover reach the new master, and nothing is answered but
/// 200. The writes the new master lacks are found by the service itself (the server behind the
/// cache changed: a repair rewrites what differs), so the cache verifies without an operator.
async fn sentinel_failover(switch: RedisSwitch) {
    let Some((db, _)) = TestApp::resources(Backend::PostgresRedis).await else {
        return;
    };
    // The manual failover runs with every server and sentinel wanting a password (the
    // kill changes the master's password to cut its replica off).
    let password = matches!(switch, RedisSwitch::Manual).then_some("sentinel-test-pw");
    let Some(mut set) = SentinelSet::start(password).await else {
        return;
    };
    let prefix = format!("cps-sentinel:{}:", uuid::Uuid::new_v4().simple());
    let mut c = config(&db.url);
    c.cache = Some(CacheSettings {
        // The service's own check of the server behind the cache (5 s by default).
        check: Some(Duration::from_secs(1)),
        ..cache_at(&set.url(), &prefix)
    });
    let app = TestApp::start(c, Some(db), None).await;
    let load = Load::start(vec![app.base.clone()], 8, 96, no_settle());
    load.until_acked(100, Duration::from_secs(60)).await;
    // The replica holds the marker of a filled cache (written at start): what it lacks after
    // the switch is found only because the server changed, not because the marker is gone.
    let replica = redis::Client::open(set.server_url(set.replica.port)).unwrap();
    let mut replica = replica.get_multiplexed_async_connection().await.unwrap();
    let marked = Instant::now();
    while !redis::cmd("EXISTS")
        .arg(format!("{prefix}cps:{{meta}}:filled-from"))
        .query_async::<bool>(&mut replica)
        .await
        // LOADING while the replica takes in the master's data: not yet.
        .unwrap_or(false)
    {
        assert!(
            marked.elapsed() < Duration::from_secs(30),
            "no marker on the replica"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let old_master = set.master_port().await;
    let before: std::collections::HashSet<String> =
        load.tally.lock().unwrap().acked.keys().cloned().collect();
    let started = Instant::now();
    let new_master = match switch {
        RedisSwitch::Manual => set.failover().await,
        RedisSwitch::KillLaggingMaster => {
            // The replica is cut off: the master now wants a password the replica does not
            // have, and its link is closed. Open connections (the service's) stay.
            set.master
                .commands(&[
                    &["CONFIG", "SET", "requirepass", "cut-off"],
                    &["CLIENT", "KILL", "TYPE", "replica"],
                ])
                .await
                .unwrap();
            // A second of acknowledged writes that only the master holds.
            let acked = load.acked();
            tokio::time::sleep(Duration::from_secs(1)).await;
            assert!(
                load.acked() > acked + 50,
                "no writes while the replica was cut off"
            );
            set.master.stop();
            set.master_moved_from(old_master).await
        }
    };
    let switched = started.elapsed();
    // A card acknowledged after the switch, found in the new master's cache.
    let client = redis::Client::open(set.server_url(new_master)).unwrap();
    let mut new = client.get_multiplexed_async_connection().await.unwrap();
    let reached = loop {
        let fresh: Vec<String> = {
            let tally = load.tally.lock().unwrap();
            tally
                .acked
                .keys()
                .filter(|c| !before.contains(*c))
                .cloned()
                .collect()
        };
        let mut found = false;
        for card in fresh.iter().rev().take(20) {
            let exists: bool = redis::cmd("EXISTS")
                .arg(format!("{prefix}card:{card}"))
                .query_async(&mut new)
                .await
                .unwrap();
            found |= exists;
        }
        if found && started.elapsed() > switched {
            break started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no cache write reached the new master within 30 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let end = RedisFailoverEnd::of(load, &app).await;
    report(
        &format!("Redis Sentinel failover under load ({switch:?})"),
        &format!(
            "sent {}, acknowledged {}, lost {}, doubled {}, master {old_master} -> {new_master} in {:.1} s, cache writes on the new master {:.1} s after the failover began, cache verified {:.1} s after the load",
            end.tally.sent,
            end.tally.acked.len(),
            end.lost,
            end.doubled,
            switched.as_secs_f64(),
            reached.as_secs_f64(),
            end.verify_secs,
        ),
    );
    assert!(reached < Duration::from_secs(10), "{reached:?}");
    end.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_sentinel_failover_under_load_moves_cache_writes_to_the_new_master() {
    sentinel_failover(RedisSwitch::Manual).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_master_killed_with_its_replica_behind_loses_cache_writes_that_the_service_repairs() {
    sentinel_failover(RedisSwitch::KillLaggingMaster).await;
}

/// Redis Cluster under write load: a replica takes over its primary's slots (`CLUSTER
/// FAILOVER`, coordinated: the replica first catches up). The service's cluster client follows
/// `MOVED` to the new primary; a write refused meanwhile waits in the outbox; nothing is
/// answered but 200; the new primary's run gives the cluster a new identity, and the repair
/// that follows leaves the cache verified within 60 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_cluster_failover_under_load_ends_with_the_cache_verified() {
    let Some((db, _)) = TestApp::resources(Backend::PostgresRedis).await else {
        return;
    };
    let Some(cluster) = RedisCluster::own(None).await else {
        return;
    };
    let mut c = config(&db.url);
    let prefix = format!("cps-cluster:{}:", uuid::Uuid::new_v4().simple());
    c.cache = Some(CacheSettings {
        check: Some(Duration::from_secs(1)),
        ..cache_at(&cluster.url(), &prefix)
    });
    let app = TestApp::start(c, Some(db), None).await;
    let load = Load::start(vec![app.base.clone()], 8, 97, no_settle());
    load.until_acked(100, Duration::from_secs(60)).await;
    let replica = cluster.replicas()[0];
    let started = Instant::now();
    cluster.fail_over_to(replica).await;
    let promoted = started.elapsed();
    // Writes go on against the new primary for a while.
    let acked = load.acked();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(load.acked() > acked + 50, "no writes after the failover");
    let end = RedisFailoverEnd::of(load, &app).await;
    report(
        "Redis Cluster failover under load",
        &format!(
            "sent {}, acknowledged {}, lost {}, doubled {}, replica {replica} promoted in {:.1} s, cache verified {:.1} s after the load",
            end.tally.sent,
            end.tally.acked.len(),
            end.lost,
            end.doubled,
            promoted.as_secs_f64(),
            end.verify_secs,
        ),
    );
    end.assert_clean();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redis_frozen_then_restarted_empty_under_load_ends_with_the_cache_equal_to_the_database() {
    let Some((db, _)) = TestApp::resources(Backend::PostgresRedis).await else {
        return;
    };
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let mut c = config(&db.url);
    c.cache = Some(CacheSettings {
        check: Some(Duration::from_secs(2)),
        ..cache_at(&redis.url(), "")
    });
    let app = TestApp::start(c, Some(db), None).await;
    let load = Load::start(vec![app.base.clone()], 8, 93, no_settle());
    tokio::time::sleep(Duration::from_secs(1)).await;

    redis.freeze();
    let frozen_acked = load.acked();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked_while_frozen = load.acked() - frozen_acked;
    redis.thaw();
    tokio::time::sleep(Duration::from_secs(1)).await;
    redis.restart_empty().await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tally = load.finish().await;
    let emptied = Instant::now();
    app.cache_converges(Duration::from_secs(60))
        .await
        .unwrap_or_else(|drift| panic!("the cache was not refilled:\n{drift}"));
    let recovered = emptied.elapsed();
    let (lost, doubled) = audit_writes(&app, &tally.acked).await;
    report(
        "Redis frozen 3 s, then restarted empty, under load",
        &format!(
            "sent {}, acknowledged {} ({acked_while_frozen} while frozen), lost {lost}, doubled {doubled}, {:.1} s until the cache equals the database",
            tally.sent,
            tally.acked.len(),
            recovered.as_secs_f64()
        ),
    );
    assert_eq!((lost, doubled), (0, 0));
    assert!(acked_while_frozen > 0, "writes go on while Redis is frozen");
    let errors: u64 = tally
        .statuses
        .iter()
        .filter(|(s, _)| **s != 200)
        .map(|(_, n)| n)
        .sum();
    assert_eq!(errors, 0, "{:?}", tally.statuses);
}

/// A small tmpfs, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Self> {
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Self(dir.to_owned()))
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_full_disk_under_sqlite_answers_503_and_writes_resume_when_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let Some(_tmpfs) = Tmpfs::mount(dir.path(), "4m") else {
        report(
            "disk full under SQLite",
            "skipped: cannot mount a tmpfs here (needs root)",
        );
        return;
    };
    let url = format!("sqlite://{}", dir.path().join("cps.db").display());
    let app = TestApp::start(config(&url), None, None).await;
    app.registered(CARD).await;
    // Fill what is left but a little.
    let filler = dir.path().join("filler");
    {
        let mut f = std::fs::File::create(&filler).unwrap();
        let block = vec![0u8; 64 * 1024];
        while f.write_all(&block).is_ok() {}
        let _ = f.sync_all();
    }
    let mut acked = HashMap::new();
    let (mut sent, mut full) = (0, 0);
    for i in 0..2000 {
        let card = format!("66{i:06}");
        let reply = app.register(&card, &registration(&card)).await;
        sent += 1;
        match reply.status.as_u16() {
            200 => {
                acked.insert(
                    card,
                    reply.json()["CustomerId"].as_str().unwrap().to_owned(),
                );
            }
            _ => {
                reply.assert_error(503, "ServiceUnavailable");
                full += 1;
                if full >= 5 {
                    break;
                }
            }
        }
    }
    assert!(full >= 5, "the disk never filled ({sent} registrations)");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let ready = app
        .send(
            reqwest::Method::GET,
            &format!("{}/health/ready", app.base),
            None,
        )
        .await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "ready while the disk is full"
    );

    std::fs::remove_file(&filler).unwrap();
    let freed = Instant::now();
    let recovered = until_ready(&app.base, Duration::from_secs(10)).await;
    for i in 0..20 {
        let card = format!("67{i:06}");
        let reply = app.register(&card, &registration(&card)).await;
        assert_eq!(
            reply.status,
            StatusCode::OK,
            "write after space returned: {}",
            reply.text
        );
        acked.insert(
            card,
            reply.json()["CustomerId"].as_str().unwrap().to_owned(),
        );
    }
    let (lost, doubled) = audit_writes(&app, &acked).await;
    report(
        "disk full under SQLite",
        &format!(
            "sent {}, acknowledged {}, 503 while full {full}, lost {lost}, doubled {doubled}, {:.2} s to ready after space returned ({:.2} s to writes)",
            sent + 20,
            acked.len(),
            recovered.as_secs_f64(),
            freed.elapsed().as_secs_f64()
        ),
    );
    assert_eq!((lost, doubled), (0, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_racing_on_one_database_stay_consistent() {
    let Some((db, prefix)) = TestApp::resources(Backend::PostgresRedis).await else {
        return;
    };
    let redis = (redis_url(), prefix.as_ref().unwrap().0.clone());
    let (_a, base_a) = spawn_binary(&db.url, Some((&redis.0, &redis.1)));
    let (_b, base_b) = spawn_binary(&db.url, Some((&redis.0, &redis.1)));
    until_ready(&base_a, Duration::from_secs(20)).await;
    until_ready(&base_b, Duration::from_secs(20)).await;
    let a = TestApp::at(&base_a);
    let b = TestApp::at(&base_b);
    let started = Instant::now();
    let cards: Vec<String> = (0..40).map(|i| format!("8800{i:04}")).collect();
    // Both register every card at once, then activate, lock and change phones racing.
    let mut ids = HashMap::new();
    for card in &cards {
        let body = registration(card);
        let (ra, rb) = tokio::join!(a.register(card, &body), b.register(card, &body));
        assert_eq!((ra.status, rb.status), (StatusCode::OK, StatusCode::OK));
        assert_eq!(ra.json()["CustomerId"], rb.json()["CustomerId"], "{card}");
        ids.insert(
            card.clone(),
            ra.json()["CustomerId"].as_str().unwrap().to_owned(),
        );
    }
    for (i, card) in cards.iter().enumerate() {
        let (x, y) = tokio::join!(a.activate(card, PHONE), async {
            if i % 2 == 0 {
                b.lock(card).await
            } else {
                b.change_phone(card, OTHER_PHONE).await
            }
        });
        for reply in [x, y] {
            assert!(
                matches!(reply.status.as_u16(), 204 | 400 | 422),
                "{card}: {} {}",
                reply.status,
                reply.text
            );
        }
    }
    let mut audit = TestApp::at(&base_a);
    audit.database_url = db.url.clone();
    audit.redis = Some(redis.clone());
    let (lost, doubled) = audit_writes(&audit, &ids).await;
    let converged = Instant::now();
    audit
        .cache_converges(Duration::from_secs(30))
        .await
        .unwrap_or_else(|drift| panic!("cache differs:\n{drift}"));
    report(
        "two instances racing on one database",
        &format!(
            "sent {}, acknowledged {}, lost {lost}, doubled {doubled}, {:.1} s of racing, {:.1} s until the cache verified",
            cards.len() * 4,
            ids.len(),
            converged.duration_since(started).as_secs_f64(),
            converged.elapsed().as_secs_f64()
        ),
    );
    assert_eq!((lost, doubled), (0, 0));
    assert_eq!(audit.count("cards").await, cards.len() as i64);
    drop((db, prefix));
}
