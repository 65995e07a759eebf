//! The customer portal's JSON API (contract section 8): sign-in by card and PIN, the one
//! refusal, the password that replaces the PIN, sessions, and the throttles.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use super::support::*;

const PASSWORD: &str = "a long and private phrase";

/// The parts of a refusal that must not differ between its causes: status, body, and every
/// header but those naming the request or the moment.
fn refusal_bytes(reply: &Reply) -> (u16, String, Vec<(String, String)>) {
    let mut headers: Vec<(String, String)> = reply
        .headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-request-id" | "date"))
        .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
        .collect();
    headers.sort();
    (reply.status.as_u16(), reply.text.clone(), headers)
}

#[tokio::test]
async fn signing_in_with_the_pin_opens_a_session_that_may_only_set_a_password() {
    let Some((app, portal)) = TestApp::spawn_portal().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let reply = portal.login(CARD, CARD_PIN).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(
        reply.headers.get("cache-control").unwrap(),
        "no-store",
        "a session id is never cached"
    );
    let body = reply.json();
    assert_eq!(body["MustSetPassword"], json!(true));
    let session = body["SessionId"].as_str().unwrap();
    assert!(session.len() >= 32, "at least 128 random bits");
    portal
        .sessions(session)
        .await
        .assert_error(403, "PasswordChangeRequired");

    portal
        .set_password(session, CARD_PIN, PASSWORD)
        .await
        .assert_no_content();
    // The same session goes on, now a password session.
    let listed = portal.sessions(session).await;
    assert_eq!(listed.status, 200, "{}", listed.text);
    assert_eq!(listed.json().as_array().unwrap().len(), 1);
    assert_eq!(listed.json()[0]["Current"], json!(true));

    // The PIN no longer signs in on the web; the password does.
    portal
        .login(CARD, CARD_PIN)
        .await
        .assert_error(403, "NoAuthothorization");
    let reply = portal.login(CARD, PASSWORD).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["MustSetPassword"], json!(false));
    // `Login` stands for `CardNumber`, as in 2016.
    let body = json!({ "Login": CARD, "Password": PASSWORD });
    let reply = portal
        .send(Method::POST, "/loyalty/v1/login", None, Some(&body))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

#[tokio::test]
async fn every_refused_sign_in_is_the_same_answer_byte_for_byte() {
    let Some((app, portal, desk)) = TestApp::spawn_portal_and_desk().await else {
        return;
    };
    let (locked, erased, fine) = ("71000000000001", "71000000000002", "71000000000003");
    app.registered_with_pin(locked).await;
    app.lock(locked).await.assert_no_content();
    let customer = app.registered_with_pin(erased).await;
    desk.erase(&customer).await.assert_no_content();
    app.registered_with_pin(fine).await;

    let unknown = portal.login("71000000000009", CARD_PIN).await;
    let wrong_pin = portal.login(fine, "4321").await;
    let locked = portal.login(locked, CARD_PIN).await;
    let erased = portal.login(erased, CARD_PIN).await;
    let malformed = portal
        .send(
            Method::POST,
            "/loyalty/v1/login",
            None,
            Some(&json!({ "CardNumber": 42, "Password": [] })),
        )
        .await;
    let not_json = portal
        .send_with(
            &reqwest::Client::new(),
            Method::POST,
            "/loyalty/v1/login",
            None,
            None,
            &[("content-type", "application/json")],
        )
        .await;
    let message = unknown.assert_error(403, "NoAuthothorization");
    assert_eq!(message, "Błędny numer karty lub pin");
    for (kind, reply) in [
        ("a wrong PIN", &wrong_pin),
        ("a locked card", &locked),
        ("an erased customer", &erased),
        ("a malformed body", &malformed),
        ("no body", &not_json),
    ] {
        assert_eq!(
            refusal_bytes(reply),
            refusal_bytes(&unknown),
            "{kind} is refused exactly as an unknown card"
        );
    }
}

#[tokio::test]
async fn a_weak_new_password_is_refused_with_its_property() {
    let Some((app, portal)) = TestApp::spawn_portal().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let session = portal.session(CARD, CARD_PIN).await;
    for weak in ["short", "Password123", &"x".repeat(129)] {
        let reply = portal.set_password(&session, CARD_PIN, weak).await;
        assert_eq!(reply.status, 422, "{}", reply.text);
        let body = reply.json();
        assert_eq!(body["MessageCode"], json!("ValidationErrorCodes"));
        assert_eq!(body["HttpCode"], json!("422"));
        assert_eq!(
            body["ValidationErrorCodes"],
            json!([{ "Property": "NewPassword", "Error": "Invalid" }])
        );
        assert!(
            !reply.text.contains(weak),
            "the refused value is not echoed"
        );
    }
    // A wrong old PIN is the one refusal.
    portal
        .set_password(&session, "9999", PASSWORD)
        .await
        .assert_error(403, "NoAuthothorization");
    // Nothing was set: the PIN still signs in.
    assert_eq!(portal.login(CARD, CARD_PIN).await.status, 200);
}

#[tokio::test]
async fn the_throttle_answers_alike_for_real_and_unknown_card_numbers() {
    let Some((app, portal)) = TestApp::spawn_portal().await else {
        return;
    };
    let real = "72000000000001";
    app.registered_with_pin(real).await;
    let unknown = "72000000000002";
    let mut waits = Vec::new();
    for card in [real, unknown] {
        // Three free failures and a fourth that starts the first wait.
        for _ in 0..4 {
            portal
                .login(card, "0000")
                .await
                .assert_error(403, "NoAuthothorization");
        }
        let throttled = portal.login(card, CARD_PIN).await;
        throttled.assert_error(429, "TooManyAttempts");
        let wait: u64 = throttled.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((29..=30).contains(&wait), "{wait}");
        waits.push(wait);
    }
    // Even the right PIN waits: the answer says nothing of the card.
    assert!(waits[0].abs_diff(waits[1]) <= 1);
    // A success forgets the failures of its card.
    let other = "72000000000003";
    app.registered_with_pin(other).await;
    for _ in 0..3 {
        portal
            .login(other, "0000")
            .await
            .assert_error(403, "NoAuthothorization");
    }
    assert_eq!(portal.login(other, CARD_PIN).await.status, 200);
    for _ in 0..4 {
        portal
            .login(other, "0000")
            .await
            .assert_error(403, "NoAuthothorization");
    }
}

#[tokio::test]
async fn a_spray_of_one_pin_from_one_address_is_braked() {
    let Some((app, portal)) = TestApp::spawn_portal().await else {
        return;
    };
    let real = "73000000000007";
    app.registered_with_pin(real).await;
    let sprayer = Portal::client_from(IpAddr::from([127, 0, 3, 7]));
    let mut refused = 0;
    let mut braked = 0;
    for i in 0..200 {
        let card = format!("730000000{i:05}");
        let reply = portal.login_with(&sprayer, &card, "1111").await;
        match reply.status.as_u16() {
            403 => refused += 1,
            429 => {
                reply.assert_error(429, "TooManyAttempts");
                assert!(reply.headers.contains_key("retry-after"));
                braked += 1;
            }
            other => panic!("{other}: {}", reply.text),
        }
    }
    assert_eq!(refused, 20, "the address's budget");
    assert_eq!(braked, 180);
    // The braked address is refused even with the right PIN; another address is not.
    portal
        .login_with(&sprayer, real, CARD_PIN)
        .await
        .assert_error(429, "TooManyAttempts");
    let other = Portal::client_from(IpAddr::from([127, 0, 3, 8]));
    assert_eq!(portal.login_with(&other, real, CARD_PIN).await.status, 200);
}

#[tokio::test]
async fn a_spray_from_fifty_addresses_trips_the_service_wide_breaker() {
    let Some((app, portal)) = TestApp::spawn_portal().await else {
        return;
    };
    let real = "74000000000999";
    app.registered_with_pin(real).await;
    let mut tripped = 0;
    for i in 0..200u32 {
        // 50 addresses, four card numbers each: no address and no card is over its own limit.
        let addr = IpAddr::from([127, 0, 4, 1 + (i % 50) as u8]);
        let reply = portal
            .login_with(
                &Portal::client_from(addr),
                &format!("740000000{i:05}"),
                "1234",
            )
            .await;
        match reply.status.as_u16() {
            403 => {}
            429 => tripped += 1,
            other => panic!("{other}: {}", reply.text),
        }
    }
    assert_eq!(
        tripped, 100,
        "refused once 100 card numbers failed within the minute"
    );
    // While it holds, every sign-in waits, the real customer's from a fresh address too.
    let fresh = Portal::client_from(IpAddr::from([127, 0, 5, 1]));
    portal
        .login_with(&fresh, real, CARD_PIN)
        .await
        .assert_error(429, "TooManyAttempts");
}

#[tokio::test]
async fn an_unknown_card_takes_the_time_a_known_one_takes() {
    // Every try is a hash: the address and the service-wide limits are lifted for the test.
    let Some((app, portal)) = TestApp::spawn_portal_with(|c| {
        let p = c.portal.as_mut().unwrap();
        p.max_failures_per_address = 100_000;
        p.breaker.max_failing_cards = 100_000;
    })
    .await
    else {
        return;
    };
    const CARDS: usize = 50;
    for i in 0..CARDS {
        app.registered_with_pin(&format!("7500000000{i:04}")).await;
    }
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    // Interleaved, so that whatever else the machine does falls on both alike; three tries a
    // card (the free ones), 150 of each kind.
    for round in 0..3 {
        for i in 0..CARDS {
            for (card, times) in [
                (format!("7500000000{i:04}"), &mut known),
                (format!("7600000000{i:04}"), &mut unknown),
            ] {
                let started = Instant::now();
                let reply = portal.login(&card, &format!("{round}{round}99")).await;
                times.push(started.elapsed());
                reply.assert_error(403, "NoAuthothorization");
            }
        }
    }
    // The statistic: the medians of the two, which must differ by less than a fifth of the
    // larger (and 3 ms): the work is the same (one HMAC under each key, one Argon2id check), so
    // what is left is noise.
    let median = |times: &mut Vec<Duration>| {
        times.sort();
        times[times.len() / 2]
    };
    let (k, u) = (median(&mut known), median(&mut unknown));
    let larger = k.max(u);
    eprintln!("sign-in refusal medians: known {k:?}, unknown {u:?} (150 tries each)");
    assert!(
        k.abs_diff(u) < (larger / 5).max(Duration::from_millis(3)),
        "known {k:?} against unknown {u:?}"
    );
}

#[tokio::test]
async fn sessions_are_listed_and_ended_by_their_customer() {
    let Some((app, portal)) = TestApp::spawn_portal().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let first = portal.with_password(CARD, PASSWORD).await;
    let second = portal.session(CARD, PASSWORD).await;
    let listed = portal.sessions(&second).await.json();
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2);
    let other = listed
        .iter()
        .find(|s| s["Current"] == json!(false))
        .unwrap();
    let id = other["Id"].as_str().unwrap();
    assert!(
        !first.contains(id) && !second.contains(id),
        "never the session id"
    );
    portal
        .send(
            Method::DELETE,
            &format!("/loyalty/v1/customers/current/sessions/{id}"),
            Some(&second),
            None,
        )
        .await
        .assert_no_content();
    portal
        .sessions(&first)
        .await
        .assert_error(401, "SessionExpired");
    // Ending it again finds nothing.
    portal
        .send(
            Method::DELETE,
            &format!("/loyalty/v1/customers/current/sessions/{id}"),
            Some(&second),
            None,
        )
        .await
        .assert_error(404, "NotFound");
    // Signing out ends this one; the 2016 form of the header is read as well.
    let reply = portal
        .send_with(
            &reqwest::Client::new(),
            Method::POST,
            "/loyalty/v1/logout",
            None,
            None,
            &[("authorization", &second)],
        )
        .await;
    reply.assert_no_content();
    portal
        .sessions(&second)
        .await
        .assert_error(401, "SessionExpired");
    portal
        .sessions("cps_not-a-session")
        .await
        .assert_error(401, "SessionExpired");
    portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current/sessions",
            None,
            None,
        )
        .await
        .assert_error(401, "SessionExpired");
}

#[tokio::test]
async fn a_password_change_ends_the_other_sessions_and_a_lock_ends_all() {
    let Some((app, portal)) = TestApp::spawn_portal().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let first = portal.with_password(CARD, PASSWORD).await;
    let second = portal.session(CARD, PASSWORD).await;
    let new = "another private phrase";
    portal
        .set_password(&second, PASSWORD, new)
        .await
        .assert_no_content();
    portal
        .sessions(&first)
        .await
        .assert_error(401, "SessionExpired");
    assert_eq!(portal.sessions(&second).await.status, 200);
    portal
        .login(CARD, PASSWORD)
        .await
        .assert_error(403, "NoAuthothorization");
    let third = portal.session(CARD, new).await;
    // ALCS locks the card: every session of its customer ends, and sign-in is refused.
    app.lock(CARD).await.assert_no_content();
    for session in [&second, &third] {
        portal
            .sessions(session)
            .await
            .assert_error(401, "SessionExpired");
    }
    portal
        .login(CARD, new)
        .await
        .assert_error(403, "NoAuthothorization");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_is_braked() {
    let Some((_app, portal)) = TestApp::spawn_portal_with(|c| {
        let p = c.portal.as_mut().unwrap();
        p.trusted_proxies = cps::http::portal::TrustedProxies::parse("127.0.0.1/32").unwrap();
        p.max_failures_per_address = 3;
    })
    .await
    else {
        return;
    };
    let proxy = Portal::client_from(IpAddr::from([127, 0, 0, 1]));
    let body = json!({ "CardNumber": "77000000000001", "Password": "0000" });
    let from = |client: &'static str| [("x-forwarded-for", client)];
    for _ in 0..3 {
        portal
            .send_with(
                &proxy,
                Method::POST,
                "/loyalty/v1/login",
                None,
                Some(&body),
                &from("203.0.113.5"),
            )
            .await
            .assert_error(403, "NoAuthothorization");
    }
    portal
        .send_with(
            &proxy,
            Method::POST,
            "/loyalty/v1/login",
            None,
            Some(&body),
            &from("203.0.113.5"),
        )
        .await
        .assert_error(429, "TooManyAttempts");
    // Another client behind the same proxy is not braked.
    let other = json!({ "CardNumber": "77000000000002", "Password": "0000" });
    portal
        .send_with(
            &proxy,
            Method::POST,
            "/loyalty/v1/login",
            None,
            Some(&other),
            &from("203.0.113.6"),
        )
        .await
        .assert_error(403, "NoAuthothorization");
    // From a peer that is not trusted the header is not believed: its own address counts.
    let stranger = Portal::client_from(IpAddr::from([127, 0, 6, 1]));
    for i in 0..3 {
        let body = json!({ "CardNumber": format!("7700000000100{i}"), "Password": "0000" });
        let forged = format!("198.51.100.{i}");
        portal
            .send_with(
                &stranger,
                Method::POST,
                "/loyalty/v1/login",
                None,
                Some(&body),
                &[("x-forwarded-for", &forged)],
            )
            .await
            .assert_error(403, "NoAuthothorization");
    }
    portal
        .send_with(
            &stranger,
            Method::POST,
            "/loyalty/v1/login",
            None,
            Some(&other),
            &from("198.51.100.99"),
        )
        .await
        .assert_error(429, "TooManyAttempts");
}

#[tokio::test]
async fn the_portal_needs_a_pin_key_file() {
    let refused = configured(&["--portal-listen", "127.0.0.1:0"]).unwrap_err();
    assert!(
        refused
            .contains("--pin-hmac-key-file / CPS_PIN_HMAC_KEY_FILE: required with --portal-listen"),
        "{refused}"
    );
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("keys");
    std::fs::write(&empty, "\n").unwrap();
    let mut config = configured(&[
        "--portal-listen",
        "127.0.0.1:0",
        "--pin-hmac-key-file",
        empty.to_str().unwrap(),
        "--pin-hmac-encoding",
        "utf8",
    ])
    .unwrap();
    assert_eq!(
        config.portal.as_ref().unwrap().pin_encoding,
        cps::domain::PinEncoding::Utf8
    );
    config.database.url = "sqlite::memory:".to_owned();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.admin_listen = None;
    let error = match cps::startup::Application::build(config).await {
        Ok(_) => panic!("a key file without a key starts no portal"),
        Err(e) => cps::error_chain(e.as_ref()),
    };
    assert!(error.contains("holds no key"), "{error}");
    assert!(
        configured(&["--pin-hmac-encoding", "latin1"])
            .unwrap_err()
            .contains("--pin-hmac-encoding")
    );
}

#[tokio::test]
async fn the_desk_sees_and_reopens_a_locked_web_sign_in() {
    use cps::store::PortalStore as _;
    let Some((app, portal, desk)) = TestApp::spawn_portal_and_desk().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let path = format!("/support/v1/cards/{CARD}/sign-in");
    let open = desk.get(&path).await;
    assert_eq!(open.status, 200, "{}", open.text);
    assert_eq!(open.json()["State"], json!("Open"));
    assert_eq!(open.json()["Failures"], json!(0));
    // Ten failures in a row, as a patient guesser would have left them over hours.
    let store = app.store().await;
    for _ in 0..10 {
        store
            .record_sign_in_failure(CARD, chrono::Utc::now() - chrono::Duration::hours(2))
            .await
            .unwrap();
    }
    let locked = desk.get(&path).await.json();
    assert_eq!(locked["State"], json!("Locked"), "{locked}");
    assert_eq!(locked["Failures"], json!(10));
    portal
        .login(CARD, CARD_PIN)
        .await
        .assert_error(429, "TooManyAttempts");
    // A viewer may look but not reopen.
    desk.send_as(Some(&desk.viewer), Method::DELETE, &path, None, &[])
        .await
        .assert_error(403, "Forbidden");
    desk.send_as(Some(&desk.agent), Method::DELETE, &path, None, &[])
        .await
        .assert_no_content();
    assert_eq!(desk.get(&path).await.json()["State"], json!("Open"));
    assert_eq!(portal.login(CARD, CARD_PIN).await.status, 200);
    let trail = desk.history(&format!("cards/{CARD}")).await;
    assert_eq!(
        trail[0]["Operation"],
        json!("clear_sign_in_lock"),
        "{trail:?}"
    );
    assert_eq!(trail[0]["By"], json!({ "Kind": "Desk", "Name": AGENT }));
    // Unknown cards are the desk's 404.
    desk.send_as(
        Some(&desk.agent),
        Method::DELETE,
        "/support/v1/cards/123/sign-in",
        None,
        &[],
    )
    .await
    .assert_error(404, "CustomerWithGivenCardNumberNotFound");
}

/// With TLS configured the portal serves HTTPS with the service's certificate, and asks the
/// customer for no client certificate (the ALCS listener's mutual TLS is its own).
#[tokio::test]
async fn over_tls_the_portal_signs_in_without_a_client_certificate() {
    let pki = pki();
    let dir = pki.dir.path().to_owned();
    let Some((_app, portal)) = TestApp::spawn_portal_with(move |c| {
        c.tls = Some(cps::tls::ServerFiles {
            cert: dir.join("server.pem"),
            key: dir.join("server.key"),
            client_ca: Some(dir.join("ca.pem")),
        });
    })
    .await
    else {
        return;
    };
    let addr: std::net::SocketAddr = portal.base.trim_start_matches("http://").parse().unwrap();
    let client = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca_pem.as_bytes()).unwrap())
        .resolve("localhost", addr)
        .build()
        .unwrap();
    let reply = client
        .post(format!(
            "https://localhost:{}/loyalty/v1/login",
            addr.port()
        ))
        .json(&json!({ "CardNumber": CARD, "Password": CARD_PIN }))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 403, "the portal answers over TLS");
    let plain = reqwest::Client::new()
        .post(format!("{}/loyalty/v1/login", portal.base))
        .json(&json!({ "CardNumber": CARD, "Password": CARD_PIN }))
        .send()
        .await;
    assert!(
        plain.is_err() || !plain.unwrap().status().is_success(),
        "no plain HTTP"
    );
}
