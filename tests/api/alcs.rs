//! Telling ALCS a card is active (contract 5.2 step 5, section 7): through the outbox, at least
//! once, with an idempotency key, retried with backoff, dead-lettered when it keeps failing.
//! A real HTTP server stands in for ALCS: it records every call and can be told to fail.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::support::*;

#[derive(Debug, Clone)]
pub struct Call {
    pub card: String,
    pub key: Option<String>,
    pub body: Value,
    pub at: Instant,
}

/// ALCS's notice path; the card number in place of `{card-number}`.
const ACTIVATION: &str = "/alcs/loyalty/v1/loyalty-cards/{card-number}/activation";

/// The stand-in for ALCS: the shared fake receiver, its requests read as activation notices.
pub struct FakeAlcs(FakeReceiver);

impl FakeAlcs {
    pub async fn start() -> Self {
        Self(FakeReceiver::start().await)
    }

    /// On a given port, e.g. one the service was told about while nothing listened there.
    pub async fn start_on(port: u16) -> Self {
        Self(FakeReceiver::start_on(port).await)
    }

    /// Over HTTPS with `pki`'s certificate, requiring a client certificate when `mutual`.
    pub async fn start_https(pki: &Pki, mutual: bool) -> Self {
        Self(FakeReceiver::start_https(pki, mutual).await)
    }

    pub fn url(&self) -> String {
        self.0.url(ACTIVATION)
    }

    pub fn answer_next(&self, statuses: &[u16]) {
        self.0.answer_next(statuses);
    }

    /// Sends `Retry-After: value` with every failure from now on.
    pub fn ask_to_retry_after(&self, value: &str) {
        self.0.ask_to_retry_after(value);
    }

    pub fn answer_after(&self, delay: Duration) {
        self.0.answer_after(delay);
    }

    pub fn calls(&self) -> Vec<Call> {
        self.0.received().iter().map(notice).collect()
    }

    /// Waits (bounded) until at least `n` calls arrived, then a little longer to catch extras.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Call> {
        self.0
            .wait_for(n, within)
            .await
            .iter()
            .map(notice)
            .collect()
    }
}

/// A request to the fake ALCS, which must be a notice: a `POST` to the activation path.
fn notice(r: &Received) -> Call {
    let (head, tail) = ACTIVATION.split_once("{card-number}").unwrap();
    let card = r
        .path
        .strip_prefix(head)
        .and_then(|rest| rest.strip_suffix(tail))
        .unwrap_or_else(|| panic!("not an activation notice: {} {}", r.method, r.path));
    assert_eq!(r.method, "POST", "{}", r.path);
    Call {
        card: card.to_owned(),
        key: r.header("idempotency-key").map(str::to_owned),
        body: r.json(),
        at: r.at,
    }
}

pub fn url_on(port: u16) -> String {
    format!("http://127.0.0.1:{port}{ACTIVATION}")
}

async fn app_notifying(
    url: &str,
    adjust: impl FnOnce(&mut cps::config::Config),
) -> Option<TestApp> {
    let url = url.to_owned();
    TestApp::spawn_with(move |c| {
        c.alcs = Some(alcs_settings(&url));
        adjust(c);
    })
    .await
}

async fn outbox_report(app: &TestApp) -> String {
    let out = app.cps(&["outbox"]).await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn has_line(report: &str, kind: &str, state: &str, count: i64) -> bool {
    report.lines().any(|l| {
        let words: Vec<&str> = l.split_whitespace().collect();
        words.len() >= 3 && words[0] == kind && words[1] == state && words[2] == count.to_string()
    })
}

#[tokio::test]
async fn one_activation_delivers_exactly_one_notice_with_the_body_and_key() {
    let alcs = FakeAlcs::start().await;
    let Some(app) = app_notifying(&alcs.url(), |_| {}).await else {
        return;
    };
    let id = app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let calls = alcs.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(calls.len(), 1, "{calls:?}");
    let call = &calls[0];
    assert_eq!(call.card, CARD);
    let key = call.key.as_deref().expect("an Idempotency-Key");
    assert_eq!(key.len(), 32);
    let body = call.body.as_object().unwrap();
    assert_eq!(body.len(), 3, "{body:?}");
    assert_eq!(body["CardNumber"], json!(CARD));
    assert_eq!(body["CustomerId"], json!(id));
    let at = body["ActivatedAt"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(at).is_ok() && at.ends_with('Z'),
        "{at}"
    );
    // Delivered notices are kept, for operators.
    assert!(has_line(
        &outbox_report(&app).await,
        "alcs_activation",
        "delivered",
        1
    ));
}

#[tokio::test]
async fn activating_an_active_card_again_sends_nothing_new() {
    let alcs = FakeAlcs::start().await;
    let Some(app) = app_notifying(&alcs.url(), |_| {}).await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    alcs.wait_for(1, Duration::from_secs(10)).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    app.lock(CARD).await.assert_no_content();
    app.activate(CARD, PHONE)
        .await
        .assert_error(422, "CardWasNotWaitingForActivation");
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert_eq!(alcs.calls().len(), 1);
}

#[tokio::test]
async fn alcs_failing_three_times_then_answering_200_gets_the_notice_once_after_backoff() {
    let alcs = FakeAlcs::start().await;
    alcs.answer_next(&[500, 503, 408]);
    let Some(app) = app_notifying(&alcs.url(), |_| {}).await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let calls = alcs.wait_for(4, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 4, "three failures and one success: {calls:?}");
    let key = calls[0].key.clone();
    assert!(
        calls
            .iter()
            .all(|c| c.key == key && c.body == calls[0].body)
    );
    // Backoff: 0.5 s, 1 s, 1 s (capped in these tests), each with jitter down to half.
    let waited = calls[3].at - calls[0].at;
    assert!(waited >= Duration::from_millis(1200), "{waited:?}");
    assert!(has_line(
        &outbox_report(&app).await,
        "alcs_activation",
        "delivered",
        1
    ));
}

#[tokio::test]
async fn a_4xx_other_than_408_or_429_is_a_permanent_failure() {
    let alcs = FakeAlcs::start().await;
    alcs.answer_next(&[429, 400]);
    let Some(app) = app_notifying(&alcs.url(), |_| {}).await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let calls = alcs.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(calls.len(), 2, "429 retried, 400 not: {calls:?}");
    let report = outbox_report(&app).await;
    assert!(has_line(&report, "alcs_activation", "dead", 1), "{report}");
}

#[tokio::test]
async fn alcs_down_throughout_gives_a_dead_letter_that_retry_delivers_once_it_is_back() {
    let port = free_port();
    let Some(app) = app_notifying(&url_on(port), |c| c.outbox.max_attempts = 3).await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let report = outbox_report(&app).await;
        if has_line(&report, "alcs_activation", "dead", 1) {
            break;
        }
        assert!(Instant::now() < deadline, "no dead letter: {report}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alcs = FakeAlcs::start_on(port).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        alcs.calls().is_empty(),
        "a dead letter is not retried by itself"
    );
    let out = app.cps(&["outbox", "retry"]).await;
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "1 events queued again"
    );
    let calls = alcs.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(calls.len(), 1);
    assert!(has_line(
        &outbox_report(&app).await,
        "alcs_activation",
        "delivered",
        1
    ));
}

#[tokio::test]
async fn without_a_url_the_notice_is_recorded_as_not_sent() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    assert!(has_line(
        &outbox_report(&app).await,
        "alcs_activation",
        "unsent",
        1
    ));
}

#[tokio::test]
async fn the_server_says_at_start_up_when_notices_are_not_sent() {
    let Some((db, _prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let (mut child, mut lines, _addr) = start(&[("CPS_DATABASE_URL", db.url.as_str())]);
    child.stop();
    let log = lines.drain();
    assert!(
        log.iter()
            .any(|l| l.contains("activation notices are recorded but not sent")),
        "{log:?}"
    );
}

#[tokio::test]
async fn a_notice_cut_off_by_a_crash_is_delivered_after_restart() {
    let Some((db, _prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let port = free_port();
    let url = url_on(port);
    let env = [
        ("CPS_DATABASE_URL", db.url.as_str()),
        ("CPS_ALCS_ACTIVATION_URL", url.as_str()),
        ("CPS_OUTBOX_POLL_MS", "100"),
        ("CPS_OUTBOX_MAX_BACKOFF_SECS", "1"),
        // A row the first instance had claimed when it was killed waits out its lease (three
        // times the longest delivery, at least 5 s) before the second may take it: 5 s here,
        // well inside the wait below (with the default 5 s timeout it was 15 s, the whole wait).
        ("CPS_ALCS_TIMEOUT_MS", "1000"),
    ];
    let (mut first, _logs, addr) = start(&env);
    let app = TestApp::at(&format!("http://{addr}"));
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    // Killed (SIGKILL) after the commit, with the notice not delivered.
    first.stop();
    let alcs = FakeAlcs::start_on(port).await;
    let (_second, _logs, _addr) = start(&env);
    let calls = alcs.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].card, CARD);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_never_deliver_one_event_twice() {
    let Some((db, prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let alcs = FakeAlcs::start().await;
    let url = alcs.url();
    let redis = redis_url();
    let prefix_text = prefix.as_ref().map(|p| p.0.clone()).unwrap_or_default();
    let mut env = vec![
        ("CPS_DATABASE_URL", db.url.as_str()),
        ("CPS_ALCS_ACTIVATION_URL", url.as_str()),
        ("CPS_OUTBOX_POLL_MS", "20"),
        // 30 activations reach each instance at once: room for all of them (the shedding is
        // tested on its own).
        ("CPS_MAX_IN_FLIGHT", "64"),
    ];
    if prefix.is_some() {
        env.push(("CPS_REDIS_URL", redis.as_str()));
        env.push(("CPS_REDIS_PREFIX", prefix_text.as_str()));
    }
    let (_one, _l1, addr_one) = start(&env);
    let (_two, _l2, addr_two) = start(&env);
    let apps = [
        Arc::new(TestApp::at(&format!("http://{addr_one}"))),
        Arc::new(TestApp::at(&format!("http://{addr_two}"))),
    ];
    let cards: Vec<String> = (0..30).map(|i| format!("8{i:03}")).collect();
    for (i, card) in cards.iter().enumerate() {
        apps[i % 2].registered(card).await;
    }
    let tasks: Vec<_> = cards
        .iter()
        .enumerate()
        .map(|(i, card)| {
            // Each card activated through both instances at once: one activation, one notice.
            let (a, b, card) = (apps[i % 2].clone(), apps[(i + 1) % 2].clone(), card.clone());
            tokio::spawn(async move {
                let (x, y) = tokio::join!(a.activate(&card, PHONE), b.activate(&card, PHONE));
                x.assert_no_content();
                y.assert_no_content();
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let calls = alcs.wait_for(30, Duration::from_secs(20)).await;
    assert_eq!(calls.len(), 30, "one notice per card, no duplicates");
    let mut keys: Vec<_> = calls.iter().map(|c| c.key.clone().unwrap()).collect();
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 30);
    let mut seen: Vec<_> = calls.iter().map(|c| c.card.clone()).collect();
    seen.sort();
    assert_eq!(seen, cards);
}

/// ALCS answers 503 with `Retry-After: 3`: the notice waits those 3 s, longer than the
/// outbox's own backoff (at most 1 s in the tests), before it is sent again.
#[tokio::test]
async fn a_retry_after_from_alcs_is_waited_out() {
    let alcs = FakeAlcs::start().await;
    alcs.answer_next(&[503]);
    alcs.ask_to_retry_after("3");
    let Some(app) = app_notifying(&alcs.url(), |_| {}).await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let calls = alcs.wait_for(2, Duration::from_secs(15)).await;
    let waited = calls[1].at - calls[0].at;
    assert!(
        waited >= Duration::from_millis(2900),
        "retried after {waited:?}, before ALCS's Retry-After"
    );
    assert!(waited < Duration::from_secs(6), "retried after {waited:?}");
}

async fn wait_for_a_call(alcs: &FakeAlcs) {
    let calls = alcs.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(calls[0].card, CARD, "a notice over HTTPS");
}

#[tokio::test]
async fn notices_go_over_https_verified_with_the_configured_ca() {
    let pki = super::support::pki();
    let alcs = FakeAlcs::start_https(&pki, false).await;
    let url = alcs.url();
    let ca = pki.dir.path().join("ca.pem");
    let Some(app) = app_notifying(&url, |c| {
        c.alcs.as_mut().unwrap().tls = client_files(Some(ca), None)
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    wait_for_a_call(&alcs).await;
}

#[tokio::test]
async fn an_alcs_that_requires_mutual_tls_is_given_the_client_certificate() {
    let pki = super::support::pki();
    let alcs = FakeAlcs::start_https(&pki, true).await;
    let url = alcs.url();
    let dir = pki.dir.path().to_owned();
    let Some(app) = app_notifying(&url, |c| {
        c.alcs.as_mut().unwrap().tls = client_files(
            Some(dir.join("ca.pem")),
            Some((dir.join("client.pem"), dir.join("client.key"))),
        );
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    wait_for_a_call(&alcs).await;
    // Without the certificate the same ALCS refuses the handshake: the notice is not delivered
    // (a failure worth retrying, not a permanent refusal).
    let material =
        cps::tls::ClientFiles::check(Some(dir.join("ca.pem")), None, None, ["ca", "cert", "key"])
            .unwrap()
            .read()
            .unwrap();
    let bare = cps::outbox::alcs::AlcsClient::new(&url, Duration::from_secs(2), &material).unwrap();
    let card = cps::domain::CardNumber::parse(CARD).unwrap();
    let notice = cps::outbox::ActivationNotice::new(&card, "c", chrono::Utc::now());
    let refused = bare.notify(&notice).await.unwrap_err();
    assert!(!refused.permanent, "{refused}");
    assert_eq!(alcs.calls().len(), 1, "no second call got through");
}

// Multi-threaded: the fake ALCS must answer while this thread waits for the process to exit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_shutdown_lets_the_delivery_in_flight_finish() {
    let Some((db, _prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let alcs = FakeAlcs::start().await;
    alcs.answer_after(Duration::from_millis(1500));
    let url = alcs.url();
    let env = [
        ("CPS_DATABASE_URL", db.url.as_str()),
        ("CPS_ALCS_ACTIVATION_URL", url.as_str()),
    ];
    let (mut cps, mut logs, addr) = start(&env);
    let mut app = TestApp::at(&format!("http://{addr}"));
    app.database_url = db.url.clone();
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let deadline = Instant::now() + Duration::from_secs(10);
    while alcs.calls().is_empty() {
        assert!(Instant::now() < deadline, "no delivery started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // SIGTERM while ALCS is still answering.
    let term = std::process::Command::new("kill")
        .args(["-TERM", &cps.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let stopped = Instant::now();
    let status = cps.wait_for_exit(Duration::from_secs(15));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "a clean exit");
    assert!(
        stopped.elapsed() >= Duration::from_millis(500),
        "it waited for the delivery"
    );
    assert!(
        has_line(
            &outbox_report(&app).await,
            "alcs_activation",
            "delivered",
            1
        ),
        "{}\n{:#?}",
        outbox_report(&app).await,
        logs.drain()
    );
    assert_eq!(alcs.calls().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_that_times_out_is_retried() {
    let alcs = FakeAlcs::start().await;
    alcs.answer_after(Duration::from_millis(1500));
    let Some(app) = app_notifying(&alcs.url(), |c| {
        c.alcs.as_mut().unwrap().timeout = Duration::from_millis(300)
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    alcs.wait_for(1, Duration::from_secs(10)).await;
    alcs.answer_after(Duration::ZERO);
    let calls = alcs.wait_for(2, Duration::from_secs(10)).await;
    assert!(calls.len() >= 2, "{calls:?}");
    assert_eq!(calls[0].key, calls[1].key, "the retry carries the same key");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !has_line(
        &outbox_report(&app).await,
        "alcs_activation",
        "delivered",
        1,
    ) {
        assert!(Instant::now() < deadline, "{}", outbox_report(&app).await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn a_notice_failing_past_the_maximum_age_becomes_a_dead_letter() {
    let Some(app) = app_notifying(&url_on(free_port()), |c| {
        c.outbox.max_age = Duration::from_secs(1);
        c.outbox.max_attempts = 1000;
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let report = outbox_report(&app).await;
        if has_line(&report, "alcs_activation", "dead", 1) {
            break;
        }
        assert!(Instant::now() < deadline, "{report}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_desk_sends_a_dead_notice_again_with_the_same_key() {
    let alcs = FakeAlcs::start().await;
    alcs.answer_next(&[400]);
    let url = alcs.url();
    let Some((app, desk)) = TestApp::spawn_desk_with(move |c| {
        c.alcs = Some(alcs_settings(&url));
    })
    .await
    else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    alcs.wait_for(1, Duration::from_secs(10)).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while desk.card(CARD).await["AlcsNotice"]["State"] != json!("dead") {
        assert!(Instant::now() < deadline, "no dead letter");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let reply = desk
        .post(&format!("/support/v1/cards/{CARD}/alcs-notice/retry"), None)
        .await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json(), json!({"NoticesQueued": 1}));
    let calls = alcs.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(calls.len(), 2, "sent once more: {calls:?}");
    assert_eq!(calls[1].key, calls[0].key, "the same event to ALCS");
    let deadline = Instant::now() + Duration::from_secs(10);
    while desk.card(CARD).await["AlcsNotice"]["State"] != json!("delivered") {
        assert!(Instant::now() < deadline, "not delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Delivered: nothing left to retry.
    desk.post(&format!("/support/v1/cards/{CARD}/alcs-notice/retry"), None)
        .await
        .assert_error(409, "NoNoticeToRetry");
}
