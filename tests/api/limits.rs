//! Hostile and careless clients, per request: input caps, the origin and media-type checks,
//! oversized and slow bodies, oversized request heads, load shedding, the activation attempt
//! limit, and a database that refuses connections.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use sqlx::Connection as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use super::support::*;

const CARD: &str = "99419283746389";
const PHONE: &str = "+48602123789";

/// A registration with the given wallets.
fn with_wallets(wallets: Value) -> Value {
    with(registration(CARD), "LoyaltyCard.Wallets", Some(wallets))
}

fn wallet(id: &str) -> Value {
    json!({ "Id": id, "Balance": 1.0 })
}

/// Sends `request` as raw bytes on a new connection and reads until the server closes it or
/// `wait` passes. Returns what was read and whether the server closed the connection.
async fn raw(base: &str, request: &[u8], wait: Duration) -> (String, bool) {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    let deadline = tokio::time::Instant::now() + wait;
    let closed = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break true,
            Ok(Ok(n)) => out.extend_from_slice(&buf[..n]),
            Err(_) => break false,
        }
    };
    (String::from_utf8_lossy(&out).into_owned(), closed)
}

/// The status and the envelope's `MessageCode` of a raw HTTP/1.1 answer.
fn status_and_code(answer: &str) -> (u16, String) {
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or_default();
    let code = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["MessageCode"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("no envelope in {answer:?}"));
    (status, code)
}

#[tokio::test]
async fn at_most_32_wallets_per_card() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let ids = |n: usize| Value::Array((0..n).map(|i| wallet(&format!("W{i}"))).collect());
    let totals = app.totals().await;
    let message = app
        .register(CARD, &with_wallets(ids(33)))
        .await
        .assert_error(400, "InvalidRequest");
    assert!(message.contains("LoyaltyCard.Wallets"), "{message}");
    assert_eq!(app.totals().await, totals, "nothing stored");
    let reply = app.register(CARD, &with_wallets(ids(32))).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        app.get(CARD).await.json()["Wallets"]
            .as_array()
            .unwrap()
            .len(),
        32
    );
}

#[tokio::test]
async fn wallet_ids_are_letters_digits_underscore_and_dash() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let totals = app.totals().await;
    let long = "a".repeat(65);
    for bad in [
        "a.Stat",
        "a.Stat.Lost",
        "two words",
        "zażółć",
        "a/b",
        "a\u{1b}[31m",
        &long,
    ] {
        let message = app
            .register(CARD, &with_wallets(json!([wallet(bad)])))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(
            message.contains("LoyaltyCard.Wallets[0].Id"),
            "{bad:?}: {message}"
        );
    }
    assert_eq!(app.totals().await, totals, "nothing stored");
    // The real clients' ids, and the longest allowed.
    let ok = json!([
        wallet("Strickers2016"),
        wallet("Stickers2016"),
        wallet("a_b-C9"),
        wallet(&"z".repeat(64))
    ]);
    let reply = app.register(CARD, &with_wallets(ok)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn control_characters_are_refused_in_every_stored_string() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let totals = app.totals().await;
    for text in [
        "a\u{0}b",
        "line\nbreak",
        "\u{1b}[2J",
        "tab\there",
        "del\u{7f}",
    ] {
        let version = with_wallets(json!([{ "Id": "A", "Balance": 1.0, "Version": text }]));
        let message = app
            .register(CARD, &version)
            .await
            .assert_error(400, "InvalidRequest");
        assert!(
            message.contains("LoyaltyCard.Wallets[0].Version"),
            "{message}"
        );
        for field in [
            "PosId",
            "PosNumber",
            "PosOperatorId",
            "PosOperatorNumber",
            "SiteId",
        ] {
            let identity = with(
                registration(CARD),
                &format!("Identity.{field}"),
                Some(json!(text)),
            );
            let message = app
                .register(CARD, &identity)
                .await
                .assert_error(400, "InvalidRequest");
            assert!(message.contains(&format!("Identity.{field}")), "{message}");
        }
    }
    assert_eq!(app.totals().await, totals, "nothing stored");
}

#[tokio::test]
async fn state_changing_calls_from_a_browser_origin_are_refused() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    let lock_url = format!("{}/lock", app.card_url(CARD));
    // The cross-site form post a browser sends without a preflight.
    let forged = app
        .client
        .post(&lock_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let body: Value = forged.json().await.unwrap();
    assert_eq!(body["MessageCode"], "Forbidden");
    assert_eq!(body["HttpCode"], "403");
    // A JSON body does not help, on any state-changing route.
    for (method, url) in [
        (Method::POST, lock_url.clone()),
        (Method::POST, format!("{}/activate", app.card_url(CARD))),
        (Method::PATCH, app.card_url(CARD)),
        (Method::PUT, app.card_url(CARD)),
    ] {
        let reply = app
            .client
            .request(method, &url)
            .header("origin", "https://evil.example")
            .json(&json!({ "PhoneNumber": PHONE }))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), StatusCode::FORBIDDEN, "{url}");
    }
    // A form content type without an origin is still not JSON.
    let form = app
        .send_raw(
            Method::POST,
            &lock_url,
            Some("application/x-www-form-urlencoded"),
            "",
        )
        .await;
    form.assert_error(415, "UnsupportedMediaType");
    assert_eq!(app.get(CARD).await.json()["Status"], "WaitingForActivation");
    // Reading is not refused, and an empty lock without a content type still works.
    let read = app
        .client
        .get(app.card_url(CARD))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), StatusCode::OK);
    app.lock(CARD).await.assert_no_content();
}

#[tokio::test]
async fn a_configured_origin_may_change_cards() {
    // As an operator may write it: default port, trailing slash, capitals. A browser sends
    // `https://desk.example.com`: the same origin.
    let Some(app) = TestApp::spawn_with(|c| {
        c.http.requests.allowed_origins = ["https://Desk.Example.com:443/", "http://10.0.0.7:8080"]
            .map(|o| cps::http::origin::Origin::configured(o).unwrap())
            .to_vec()
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    let lock = |origin: &'static str| {
        app.client
            .post(format!("{}/lock", app.card_url(CARD)))
            .header("origin", origin)
            .send()
    };
    assert_eq!(
        lock("https://other.example.com").await.unwrap().status(),
        403
    );
    assert_eq!(
        lock("https://desk.example.com:8443")
            .await
            .unwrap()
            .status(),
        403,
        "another port is another origin"
    );
    assert_eq!(
        lock("http://desk.example.com").await.unwrap().status(),
        403,
        "another scheme is another origin"
    );
    assert_eq!(lock("null").await.unwrap().status(), 403);
    assert_eq!(
        lock("https://desk.example.com").await.unwrap().status(),
        204
    );
    app.registered("4001").await;
    let second = app
        .client
        .post(format!("{}/lock", app.card_url("4001")))
        .header("origin", "http://10.0.0.7:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 204);
}

#[test]
fn an_allowed_origin_with_a_path_is_a_configuration_error() {
    let at = ["--database-url", "sqlite://x.db", "--allowed-origins"];
    let problem =
        configured(&[&at[..], &["https://desk.example.com/console"]].concat()).unwrap_err();
    assert!(problem.contains("--allowed-origins"), "{problem}");
    assert!(configured(&[&at[..], &["https://desk.example.com/"]].concat()).is_ok());
}

#[tokio::test]
async fn oversized_request_heads_are_refused_in_the_envelope() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let url = app.card_url(CARD);
    let refused = async |request: reqwest::RequestBuilder, status: u16, code: &str| {
        let reply = request.send().await.unwrap();
        assert_eq!(reply.status(), status);
        let body: Value = reply.json().await.unwrap();
        assert_eq!(body["MessageCode"], code);
        assert_eq!(body["HttpCode"], status.to_string());
    };
    let with_headers = |n: usize| {
        (0..n).fold(app.client.get(&url), |r, i| {
            r.header(format!("x-h{i}"), "1")
        })
    };
    // Too many headers; headers too large in total; a long URI.
    refused(with_headers(70), 431, "RequestHeaderFieldsTooLarge").await;
    let big = |n: usize| app.client.get(&url).header("x-big", "a".repeat(n));
    refused(big(9000), 431, "RequestHeaderFieldsTooLarge").await;
    let long = app.client.get(format!("{url}?q={}", "a".repeat(5000)));
    refused(long, 414, "UriTooLong").await;
    // Far more headers than allowed, and more than hyper's defaults (100), or a header block
    // four times too large: still well-formed HTTP, so still the envelope (HTTP/2 below too).
    refused(with_headers(150), 431, "RequestHeaderFieldsTooLarge").await;
    refused(big(30_000), 431, "RequestHeaderFieldsTooLarge").await;
    // Below the limits, the same route answers normally.
    assert_eq!(app.get(CARD).await.status, 404);
    // HTTP/2 reaches the same check.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let mut many = h2.get(&url);
    for i in 0..150 {
        many = many.header(format!("x-h{i}"), "1");
    }
    let reply = many.send().await.unwrap();
    assert_eq!(reply.version(), reqwest::Version::HTTP_2);
    assert_eq!(reply.status(), 431);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["MessageCode"], "RequestHeaderFieldsTooLarge");
}

#[tokio::test]
async fn a_client_that_writes_an_oversized_body_first_still_reads_the_413() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let path = format!("/alcs/loyalty/v1/loyalty-cards/{CARD}");
    let body = format!(r#"{{"x": "{}"}}"#, "a".repeat(300_000));
    for framing in ["length", "chunked"] {
        let head = match framing {
            "length" => format!(
                "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                body.len()
            ),
            _ => format!(
                "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                body.len()
            ),
        };
        let mut request = head.into_bytes();
        request.extend_from_slice(body.as_bytes());
        if framing == "chunked" {
            request.extend_from_slice(b"\r\n0\r\n\r\n");
        }
        // The whole request is written before anything is read, as most clients do.
        let (answer, closed) = raw(&app.base, &request, Duration::from_secs(10)).await;
        assert_eq!(
            status_and_code(&answer),
            (413, "PayloadTooLarge".into()),
            "{framing}"
        );
        assert!(
            answer.to_ascii_lowercase().contains("connection: close"),
            "{answer}"
        );
        assert!(closed, "the connection is closed after a 413");
    }
    assert_eq!(app.count("cards").await, 0);
}

#[tokio::test]
async fn a_body_that_comes_too_slowly_is_a_408() {
    let Some(app) =
        TestApp::spawn_with(|c| c.http.requests.body_timeout = Duration::from_secs(1)).await
    else {
        return;
    };
    let path = format!("/alcs/loyalty/v1/loyalty-cards/{CARD}");
    let request = format!(
        "PUT {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"Loyal"
    );
    let started = Instant::now();
    let (answer, closed) = raw(&app.base, request.as_bytes(), Duration::from_secs(5)).await;
    assert_eq!(status_and_code(&answer), (408, "RequestTimeout".into()));
    assert!(closed, "the connection is closed after a 408");
    assert!(started.elapsed() < Duration::from_secs(4));
    // A handler that is slow is still a 503 `Timeout` (see the database tests); the body
    // timeout only blames the client for its own bytes.
    assert_eq!(app.count("cards").await, 0);
}

#[tokio::test]
async fn requests_beyond_the_running_and_queued_bounds_are_shed_at_once() {
    let Some(app) = TestApp::spawn_with(|c| {
        c.http.requests.max_in_flight = 2;
        c.http.requests.max_queued = 1;
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    // Two writes wait on a lock another client holds: every place is taken.
    let lock = app.hold_lock("lock table cards in exclusive mode").await;
    let register = |card: &'static str| {
        let (client, url, body) = (app.client.clone(), app.card_url(card), registration(card));
        tokio::spawn(async move { client.put(url).json(&body).send().await.unwrap().status() })
    };
    let waiting = vec![register("1001"), register("1002")];
    tokio::time::sleep(Duration::from_millis(500)).await;
    // The next request waits in line briefly (30 ms) for a place, then is shed: it is not
    // queued behind the lock.
    let started = Instant::now();
    let shed = app.get(CARD).await;
    let took = started.elapsed();
    shed.assert_error(503, "ServiceUnavailable");
    assert_eq!(shed.headers["retry-after"], "1");
    assert!(
        took < Duration::from_secs(1),
        "shed at once, not queued: {took:?}"
    );
    // Health checks are not shed.
    let live = app
        .client
        .get(format!("{}/health/live", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(live.status(), StatusCode::OK);
    drop(lock);
    // The admitted requests finish: nothing that was admitted is lost.
    for task in waiting {
        assert_eq!(task.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(app.count("cards").await, 3);
    assert_eq!(
        app.get(CARD).await.status,
        StatusCode::OK,
        "capacity is back"
    );
}

#[tokio::test]
async fn activation_is_refused_after_five_wrong_numbers_until_the_window_passes() {
    let Some(app) = TestApp::spawn_with(|c| {
        c.database.options.activation_limit.window = Duration::from_secs(3)
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    let started = Instant::now();
    for _ in 0..5 {
        app.activate(CARD, "+48601000001")
            .await
            .assert_error(400, "IncorrectPhoneNumber");
    }
    // Locked: even the right number is refused, so the answer tells a guesser nothing.
    for phone in ["+48601000002", PHONE] {
        let reply = app.activate(CARD, phone).await;
        reply.assert_error(429, "TooManyAttempts");
        let retry: u64 = reply.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=4).contains(&retry), "Retry-After {retry}");
    }
    let english = app
        .client
        .post(format!("{}/activate", app.card_url(CARD)))
        .header("accept-language", "en-US")
        .json(&json!({ "PhoneNumber": PHONE }))
        .send()
        .await
        .unwrap();
    let body: Value = english.json().await.unwrap();
    assert!(
        body["Message"]
            .as_str()
            .unwrap()
            .starts_with("Too many failed activation attempts")
    );
    assert_eq!(body["HttpCode"], "429");
    // Another instance on the same database counts the same failures.
    let other = TestApp::start(
        {
            let mut c = config(&app.database_url);
            c.database.options.activation_limit.window = Duration::from_secs(3);
            c.cache = app
                .redis
                .as_ref()
                .map(|(url, prefix)| cache_at(url, prefix));
            c
        },
        None,
        None,
    )
    .await;
    other
        .activate(CARD, PHONE)
        .await
        .assert_error(429, "TooManyAttempts");
    // Every failure is audited; the refusals while locked write nothing.
    let audit = app.audit(CARD).await;
    let failures: Vec<_> = audit.iter().filter(|a| a.0 == "activate-failed").collect();
    assert_eq!(failures.len(), 5);
    assert_eq!(failures[4].2.as_ref().unwrap()["FailedAttempts"], 5);
    assert_eq!(failures[4].2.as_ref().unwrap()["Locked"], true);
    assert_eq!(app.get(CARD).await.json()["Status"], "WaitingForActivation");
    // Once the window has passed, the right number activates.
    let wait =
        Duration::from_secs(3).saturating_sub(started.elapsed()) + Duration::from_millis(300);
    tokio::time::sleep(wait).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    assert_eq!(app.get(CARD).await.json()["Status"], "Active");
}

#[tokio::test]
async fn a_database_not_accepting_connections_is_a_503_and_the_service_recovers() {
    if !backend().is_postgres() {
        return;
    }
    let base = postgres_url();
    let Ok(mut admin) = sqlx::PgConnection::connect(&base).await else {
        assert!(std::env::var("CI").is_err(), "no PostgreSQL at {base}");
        return;
    };
    // A database of its own: refusing connections must not touch the other tests' database.
    let name = format!("cps_refuse_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("create database {name}"))
        .execute(&mut admin)
        .await
        .unwrap();
    let url = match base.rsplit_once('/') {
        Some((server, _)) => format!("{server}/{name}"),
        None => panic!("a database URL with a path: {base}"),
    };
    let app = TestApp::start(config(&url), None, None).await;
    app.registered(CARD).await;

    // What a shutting-down (or being-dropped) database answers: 55000, "not currently
    // accepting connections", to every new connection; the open ones are ended.
    sqlx::query(&format!("alter database {name} allow_connections false"))
        .execute(&mut admin)
        .await
        .unwrap();
    sqlx::query("select pg_terminate_backend(pid) from pg_stat_activity where datname = $1")
        .bind(&name)
        .execute(&mut admin)
        .await
        .unwrap();
    let started = Instant::now();
    app.get(CARD).await.assert_error(503, "ServiceUnavailable");
    app.register("2001", &registration("2001"))
        .await
        .assert_error(503, "ServiceUnavailable");
    app.activate(CARD, PHONE)
        .await
        .assert_error(503, "ServiceUnavailable");
    app.lock(CARD).await.assert_error(503, "ServiceUnavailable");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );

    sqlx::query(&format!("alter database {name} allow_connections true"))
        .execute(&mut admin)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let reply = app.activate(CARD, PHONE).await;
        if reply.status == StatusCode::NO_CONTENT {
            break;
        }
        reply.assert_error(503, "ServiceUnavailable");
        assert!(Instant::now() < deadline, "no recovery");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(app.get(CARD).await.json()["Status"], "Active");
    drop(app);
    let _ = sqlx::query(&format!("drop database {name} with (force)"))
        .execute(&mut admin)
        .await;
}

#[tokio::test]
async fn slow_bodies_do_not_take_the_places_of_requests_in_progress() {
    let Some(app) = TestApp::spawn_with(|c| {
        c.http.requests.max_in_flight = 1;
        c.http.requests.max_queued = 0;
        c.http.requests.body_timeout = Duration::from_secs(3);
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    let path = format!("/alcs/loyalty/v1/loyalty-cards/{CARD}/activate");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{{"
    );
    // Three clients trickle their bodies; the one place stays free for a complete request.
    let base = app.base.clone();
    let slow: Vec<_> = (0..3)
        .map(|_| {
            let (base, request) = (base.clone(), request.clone());
            tokio::spawn(
                async move { raw(&base, request.as_bytes(), Duration::from_secs(6)).await },
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(app.get(CARD).await.status, StatusCode::OK);
    app.lock(CARD).await.assert_no_content();
    for task in slow {
        let (answer, _) = task.await.unwrap();
        assert_eq!(status_and_code(&answer), (408, "RequestTimeout".into()));
    }
}
