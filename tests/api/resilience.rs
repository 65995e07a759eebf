//! Healing without an operator: readiness that tells the truth, failing fast while a dependency
//! is down, an emptied cache refilled, drift repaired, and maintenance commands that say what
//! went wrong in their exit code.

use std::sync::Arc;
use std::time::{Duration, Instant};

use redis::AsyncCommands as _;
use reqwest::{Method, StatusCode};

use super::support::*;

async fn ready(app: &TestApp) -> (StatusCode, Duration) {
    let started = Instant::now();
    let reply = app
        .send(Method::GET, &format!("{}/health/ready", app.base), None)
        .await;
    (reply.status, started.elapsed())
}

#[tokio::test]
async fn readiness_says_503_within_a_second_while_writes_cannot_commit_and_200_after() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    assert_eq!(ready(&app).await.0, StatusCode::OK);
    // Another client holds what the probe must write: the database's write lock (SQLite) or
    // the probe table (PostgreSQL). Reads still work; writes would wait.
    let holder = app
        .hold_lock("lock table health_probes in exclusive mode")
        .await;
    // The last answer is reused for a second: wait it out.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    for _ in 0..3 {
        let (status, took) = ready(&app).await;
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(took < Duration::from_secs(1), "readiness took {took:?}");
    }
    drop(holder);
    let deadline = Instant::now() + Duration::from_secs(10);
    while ready(&app).await.0 != StatusCode::OK {
        assert!(Instant::now() < deadline, "readiness never came back");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn activation_with_a_number_no_plan_allows_answers_incorrect_phone_number() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    let totals = app.totals().await;
    for phone in ["+48999999999", "999999999", "+48 111 222 333"] {
        app.activate(CARD, phone)
            .await
            .assert_error(400, "IncorrectPhoneNumber");
    }
    // Malformed is still malformed, and registration and phone change still refuse such a
    // number as a bad request.
    app.activate(CARD, "+48-abc")
        .await
        .assert_error(400, "InvalidRequest");
    app.change_phone(CARD, "+48999999999")
        .await
        .assert_error(400, "InvalidRequest");
    // An unknown card is still unknown.
    app.activate("123", "+48999999999")
        .await
        .assert_error(400, "CustomerWithGivenCardNumberNotFound");
    // Nothing changed but the audit trail, which holds the three failed attempts.
    let [customers, cards, wallets, audit] = totals;
    assert_eq!(app.totals().await, [customers, cards, wallets, audit + 3]);
    assert_eq!(app.get(CARD).await.json()["Status"], "WaitingForActivation");
}

#[tokio::test]
async fn maintenance_commands_refuse_a_missing_sqlite_file_with_exit_code_2() {
    if backend() != Backend::Sqlite {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nonexist.db");
    let url = format!("sqlite://{}", missing.display());
    for args in [
        &["outbox"][..],
        &["outbox", "retry"],
        &["cache", "verify"],
        &["cache", "rebuild"],
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
            .args(args)
            .env("CPS_DATABASE_URL", &url)
            .env("CPS_REDIS_URL", redis_url())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        if args[0] == "outbox" {
            assert!(stderr.contains("nonexist.db"), "{args:?}: {stderr}");
            assert!(stderr.contains("does not exist"), "{args:?}: {stderr}");
        }
        assert!(!missing.exists(), "{args:?} created the file");
    }
    // `migrate` creates it, as `serve` does.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
        .arg("migrate")
        .env("CPS_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(missing.exists());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
        .arg("outbox")
        .env("CPS_DATABASE_URL", &url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[tokio::test]
async fn cache_verify_exit_codes_tell_agreement_drift_configuration_and_unreachable_apart() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    if app.redis.is_none() {
        // No cache configured: a configuration problem.
        let out = app.cps(&["cache", "verify"]).await;
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("--redis-url"));
        return;
    }
    assert_eq!(app.cps(&["cache", "verify"]).await.status.code(), Some(0));
    let _: () = redis::cmd("HSET")
        .arg(format!("{}card:{CARD}", app.redis.as_ref().unwrap().1))
        .arg("Status")
        .arg("Locked")
        .query_async(&mut app.redis_conn().await)
        .await
        .unwrap();
    assert_eq!(app.cps(&["cache", "verify"]).await.status.code(), Some(1));
    // Redis on a port where nothing listens: unreachable.
    let closed = free_port();
    for args in [&["cache", "verify"][..], &["cache", "rebuild"]] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
            .args(args)
            .env("CPS_DATABASE_URL", &app.database_url)
            .env("CPS_REDIS_URL", format!("redis://127.0.0.1:{closed}"))
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{args:?} {out:?}");
    }
}

#[tokio::test]
async fn rebuild_repairs_a_hash_that_differs_at_the_same_version_and_keeps_newer_ones() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let Some((_, prefix)) = app.redis.clone() else {
        return;
    };
    app.registered(CARD).await;
    app.registered("42").await;
    let expected = app.cache_snapshot().await;
    let mut conn = app.redis_conn().await;
    // Same Version, other contents: edited by hand.
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}card:{CARD}"))
        .arg("Status")
        .arg("Active")
        .arg("Stray")
        .arg("x")
        .query_async(&mut conn)
        .await
        .unwrap();
    // A newer Version than the database's: left alone without --force.
    let _: () = redis::cmd("HSET")
        .arg(format!("{prefix}card:42"))
        .arg("Version")
        .arg("99")
        .query_async(&mut conn)
        .await
        .unwrap();
    let out = app.cps(&["cache", "rebuild"]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(stdout.contains("1 hashes written"), "{stdout}");
    assert!(stdout.contains("1 newer in Redis"), "{stdout}");
    let after = app.cache_snapshot().await;
    let card_key = format!("{prefix}card:{CARD}");
    assert_eq!(after[&card_key], expected[&card_key], "drift repaired");
    assert_eq!(after[&format!("{prefix}card:42")]["Version"], "99");
    // --force overwrites the newer one too; then everything agrees.
    assert!(
        app.cps(&["cache", "rebuild", "--force"])
            .await
            .status
            .success()
    );
    assert_eq!(app.cache_snapshot().await, expected);
    assert_eq!(app.cps(&["cache", "verify"]).await.status.code(), Some(0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_emptied_redis_is_refilled_by_the_service_itself() {
    if !backend().has_cache() {
        return;
    }
    let Some((db, _)) = TestApp::resources(backend()).await else {
        return;
    };
    let Some(mut redis) = PrivateRedis::start().await else {
        return;
    };
    let mut c = config(&db.url);
    c.cache = Some(CacheSettings {
        check: Some(Duration::from_secs(1)),
        ..cache_at(&redis.url(), "")
    });
    let app = TestApp::start(c, Some(db), None).await;
    let cards: Vec<String> = (0..150).map(|i| format!("7700{i:04}")).collect();
    for card in &cards {
        app.registered(card).await;
    }
    app.activate(&cards[0], PHONE).await.assert_no_content();
    assert_eq!(
        app.cps(&["cache", "verify"]).await.status.code(),
        Some(0),
        "the cache starts complete"
    );

    // Restarted without its data, as Redis without persistence comes back.
    redis.restart_empty().await;
    let emptied = Instant::now();
    // Empty now. Read at once, not through `cps cache verify`: the service refills as soon as
    // it reaches Redis again, and a loaded machine may start the command after it is done.
    assert!(
        app.cache_hash(&format!("card:{}", cards[2]))
            .await
            .is_empty()
    );
    // A request meanwhile still wins over the refill's older state.
    app.lock(&cards[1]).await.assert_no_content();
    app.cache_converges(Duration::from_secs(60))
        .await
        .unwrap_or_else(|drift| panic!("the cache was not refilled within 60 s:\n{drift}"));
    eprintln!(
        "refill: {} cards back in {:.1} s",
        cards.len(),
        emptied.elapsed().as_secs_f64()
    );
    let card = app.cache_hash(&format!("card:{}", cards[1])).await;
    assert_eq!(card["Status"], "Locked");
}

/// What a failover leaves, without the failover: the marker names this database, but the server
/// noted with it is another one (replicated from the old master), and a write the old master
/// acknowledged is missing. No instance saw the switch happen (this one looks only now); the
/// note in Redis is enough for it to repair, and to note the server it repaired on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_cache_filled_on_another_server_is_repaired_by_the_service_itself() {
    if !backend().has_cache() {
        return;
    }
    let Some(app) =
        TestApp::spawn_with(|c| c.cache.as_mut().unwrap().check = Some(Duration::from_secs(1)))
            .await
    else {
        return;
    };
    let cards: Vec<String> = (0..20).map(|i| format!("7710{i:04}")).collect();
    for card in &cards {
        app.registered(card).await;
    }
    let (_, prefix) = app.redis.clone().expect("an app with a cache");
    let noted = format!("{prefix}cps:{{meta}}:filled-on");
    let mut conn = app.redis_conn().await;
    // The first check fills or notes; wait for the note of this server.
    let started = Instant::now();
    let here = loop {
        let server: Option<String> = conn.get(&noted).await.unwrap();
        if let Some(server) = server {
            break server;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no server noted"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(app.cps(&["cache", "verify"]).await.status.code(), Some(0));

    let _: () = redis::pipe()
        .set(&noted, "a-server-gone/with-its-history")
        .del(format!("{prefix}card:{}", cards[3]))
        .query_async(&mut conn)
        .await
        .unwrap();
    app.cache_converges(Duration::from_secs(30))
        .await
        .unwrap_or_else(|drift| panic!("the lost write was not repaired:\n{drift}"));
    // The hash comes back during the repair; the note, at its end.
    let repaired = Instant::now();
    loop {
        let after: Option<String> = conn.get(&noted).await.unwrap();
        if after.as_deref() == Some(here.as_str()) {
            break;
        }
        assert!(
            repaired.elapsed() < Duration::from_secs(30),
            "the repair did not note the server: {after:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_redis_costs_one_timeout_not_one_per_request() {
    if !backend().has_cache() {
        return;
    }
    let Some((db, _)) = TestApp::resources(backend()).await else {
        return;
    };
    let Some(redis) = PrivateRedis::start().await else {
        return;
    };
    let mut c = config(&db.url);
    c.cache = Some(CacheSettings {
        timeout: Duration::from_millis(500),
        ..cache_at(&redis.url(), "")
    });
    let app = Arc::new(TestApp::start(c, Some(db), None).await);
    app.registered(CARD).await;

    redis.freeze();
    let started = Instant::now();
    let n = 20;
    for i in 0..n {
        app.registered(&format!("5500{i}")).await;
    }
    let took = started.elapsed();
    // Each would wait the 500 ms timeout without the breaker: 10 s at least.
    assert!(
        took < Duration::from_secs(4),
        "{n} registrations took {took:?} with Redis frozen"
    );
    eprintln!("frozen Redis: {n} registrations in {took:?}");
    redis.thaw();
    app.cache_converges(Duration::from_secs(30))
        .await
        .unwrap_or_else(|drift| panic!("no convergence after Redis thawed:\n{drift}"));
}
