//! The database under stress: unreachable, locked, saturated, shared by several instances.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cps::startup::Application;
use reqwest::{Method, StatusCode};
use serde_json::json;

use super::support::*;

#[tokio::test]
async fn a_locked_database_answers_503_within_the_timeout_and_then_recovers() {
    let Some(app) = TestApp::spawn_with(|c| {
        c.database.options.timeout = Duration::from_secs(1);
        c.database.options.max_connections = 1;
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    // Another client holds the card's lock (PostgreSQL) or the database's write lock (SQLite).
    let holder = app.hold_lock("select * from cards for update").await;
    let started = Instant::now();
    let app = Arc::new(app);
    // Two at once: one waits for the lock, the other for the only pool connection.
    let (a, b) = tokio::join!(app.activate(CARD, PHONE), app.lock(CARD));
    for reply in [a, b] {
        reply.assert_error(503, "ServiceUnavailable");
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    drop(holder);
    // Nothing was done, and the service goes on by itself.
    assert_eq!(
        app.get(CARD).await.json()["Status"],
        json!("WaitingForActivation")
    );
    app.activate(CARD, PHONE).await.assert_no_content();
}

#[tokio::test]
async fn an_unreachable_database_answers_503_in_bounded_time_and_recovers_without_restart() {
    if !backend().is_postgres() {
        return;
    }
    let Some((db, prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let mut proxy = Proxy::start(socket_addr(&db.url)).await;
    let mut c = config(&via_port(&db.url, proxy.port));
    c.database.options.timeout = Duration::from_secs(2);
    c.cache = Some(cache_settings(
        &prefix.as_ref().map(|p| p.0.clone()).unwrap_or_default(),
    ));
    let app = TestApp::start(c, Some(db), prefix).await;
    app.registered(CARD).await;

    proxy.cut();
    let started = Instant::now();
    app.get(CARD).await.assert_error(503, "ServiceUnavailable");
    app.register("2", &registration("2"))
        .await
        .assert_error(503, "ServiceUnavailable");
    // Unavailable is not an activation failure: the request had no effect.
    app.activate(CARD, PHONE)
        .await
        .assert_error(503, "ServiceUnavailable");
    app.send(Method::GET, &format!("{}/health/ready", app.base), None)
        .await
        .assert_error(503, "ServiceUnavailable");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "four requests took {:?}",
        started.elapsed()
    );

    proxy.restore().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = app.register("2", &registration("2")).await;
        if reply.status == StatusCode::OK {
            break;
        }
        reply.assert_error(503, "ServiceUnavailable");
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.activate(CARD, PHONE).await.assert_no_content();
    assert_eq!(app.count("customers").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_processes_on_one_postgresql_never_duplicate_or_lose_a_customer() {
    if !backend().is_postgres() {
        return;
    }
    let Some((db, prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let redis = redis_url();
    let prefix_text = prefix.as_ref().map(|p| p.0.clone()).unwrap_or_default();
    let env = [
        ("CPS_DATABASE_URL", db.url.as_str()),
        ("CPS_REDIS_URL", redis.as_str()),
        ("CPS_REDIS_PREFIX", prefix_text.as_str()),
        // 40 registrations reach each instance at once: room for all of them, so that what is
        // tested is the database's consistency, not the (separately tested) shedding.
        ("CPS_MAX_IN_FLIGHT", "64"),
    ];
    let (_one, _logs_one, addr_one) = start(&env);
    let (_two, _logs_two, addr_two) = start(&env);
    let one = Arc::new(TestApp::at(&format!("http://{addr_one}")));
    let two = Arc::new(TestApp::at(&format!("http://{addr_two}")));
    let mut tasks = Vec::new();
    for i in 0..40 {
        let card = format!("5{i:03}");
        // Cards 0..30: the same registration to both; 30..40: a different one to each.
        let body_one = registration(&card);
        let body_two = if i < 30 {
            registration(&card)
        } else {
            with(registration(&card), "LoyaltyCard.Gender", Some(json!("F")))
        };
        for (app, body) in [(one.clone(), body_one), (two.clone(), body_two)] {
            let card = card.clone();
            tasks.push(tokio::spawn(async move {
                let reply = app.register(&card, &body).await;
                (card, reply.status.as_u16(), reply.text)
            }));
        }
    }
    let mut answers: std::collections::BTreeMap<String, Vec<(u16, String)>> = Default::default();
    for t in tasks {
        let (card, status, text) = t.await.unwrap();
        answers.entry(card).or_default().push((status, text));
    }
    for (card, replies) in &answers {
        let mut statuses: Vec<u16> = replies.iter().map(|r| r.0).collect();
        statuses.sort_unstable();
        let i: usize = card[1..].parse().unwrap();
        if i < 30 {
            assert_eq!(statuses, [200, 200], "{card}: {replies:?}");
            assert_eq!(replies[0].1, replies[1].1, "{card}: one CustomerId");
        } else {
            assert_eq!(statuses, [200, 409], "{card}: {replies:?}");
        }
    }
    let mut check = TestApp::at(&format!("http://{addr_one}"));
    check.database_url = db.url.clone();
    check.redis = Some((redis.clone(), prefix_text.clone()));
    assert_eq!(check.count("customers").await, 40);
    assert_eq!(check.count("cards").await, 40);
    check
        .cache_converges(Duration::from_secs(20))
        .await
        .expect("both instances' cache writes agree with the database");
}

#[tokio::test]
async fn cps_migrate_migrates_without_serving_and_instances_can_start_at_once() {
    let Some((db, prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let mut app = TestApp::at("http://127.0.0.1:9");
    app.database_url = db.url.clone();
    let out = app.cps(&["migrate"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "database migrated"
    );
    assert_eq!(app.count("cards").await, 0, "the schema exists");
    // Again: nothing to do, still fine.
    assert!(app.cps(&["migrate"]).await.status.success());
    drop(prefix);
    if !backend().is_postgres() {
        return;
    }
    // Four instances starting together on a fresh database: the advisory lock lets one migrate.
    let Some((fresh, _prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let builds = (0..4).map(|_| Application::build(config(&fresh.url)));
    for built in join_all(builds).await {
        built.expect("every instance starts");
    }
}

/// Runs the futures concurrently on their own tasks and collects their outputs in order.
async fn join_all<F>(futures: impl Iterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.expect("the task finishes"));
    }
    out
}

/// PgBouncer in transaction (or statement) mode hands a server connection to a client only for
/// a transaction: session locks (migrations) and prepared statements would not follow the
/// client. The start is refused, naming the setting to change, before any migration runs.
#[tokio::test]
async fn pgbouncer_in_transaction_mode_is_refused_at_start_with_the_setting_to_change() {
    // Once, in the PgBouncer suite (the PgBouncer is the test's own).
    if backend() != Backend::PgBouncerRedis {
        return;
    }
    let Some((db, _)) = TestApp::resources(backend()).await else {
        return;
    };
    let database = db.url.rsplit('/').next().unwrap().to_owned();
    let mut refused = String::new();
    for mode in ["transaction", "statement"] {
        let Some(bouncer) = PgBouncer::start(mode) else {
            return;
        };
        refused = match Application::build(config(&bouncer.url(&database))).await {
            Ok(_) => panic!("the service started behind {mode} pooling"),
            Err(e) => format!("{e:#}"),
        };
        assert!(refused.contains("pool_mode = session"), "{mode}: {refused}");
    }
    // Nothing was migrated.
    let server = postgres_url();
    let server = server.rsplit_once('/').unwrap().0;
    let mut direct = pg_connect(&format!("{server}/{database}")).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "select count(*) from information_schema.tables where table_schema = 'public'",
    )
    .fetch_one(&mut direct)
    .await
    .unwrap();
    assert_eq!(tables, 0, "{refused}");
}
