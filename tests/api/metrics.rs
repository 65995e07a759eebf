//! The admin listener: Prometheus metrics and the probes, apart from the API.

use reqwest::Method;
use serde_json::json;

use super::support::*;

/// The value of the series whose name and labels start `series` (e.g.
/// `cps_http_requests_total{method="PUT",route="…",status="200"}`), summed over the rest of
/// its labels; 0 when absent.
fn value(scrape: &str, series: &str) -> f64 {
    let (name, labels) = series.split_once('{').unwrap_or((series, ""));
    let wanted: Vec<&str> = labels
        .trim_end_matches('}')
        .split(',')
        .filter(|l| !l.is_empty())
        .collect();
    scrape
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter(|(s, _)| {
            let (n, rest) = s.split_once('{').unwrap_or((s, ""));
            n == name && wanted.iter().all(|w| rest.contains(w))
        })
        .filter_map(|(_, v)| v.parse::<f64>().ok())
        .sum()
}

async fn scrape(app: &TestApp) -> String {
    let admin = app.admin.as_ref().expect("an admin listener");
    let r = app
        .client
        .get(format!("{admin}/metrics"))
        .send()
        .await
        .expect("scraped");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4"),
    );
    r.text().await.unwrap()
}

const ROUTE: &str = "/alcs/loyalty/v1/loyalty-cards/{card_number}";

#[tokio::test]
async fn metrics_name_the_series_and_move_with_requests() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let card = "4000000000017";
    app.register(card, &registration(card)).await;
    let before = scrape(&app).await;
    // Three reads answered 200, two 404s, an activation refused for its phone number.
    for _ in 0..3 {
        assert_eq!(app.get(card).await.status.as_u16(), 200);
    }
    for _ in 0..2 {
        app.get("4000000000025")
            .await
            .assert_error(404, "CustomerWithGivenCardNumberNotFound");
    }
    app.send(
        Method::POST,
        &format!("{}/activate", app.card_url(card)),
        Some(&json!({ "PhoneNumber": "+48 601 000 000" })),
    )
    .await
    .assert_error(400, "IncorrectPhoneNumber");
    let after = scrape(&app).await;

    let requests = |s: &str, status: &str| {
        value(
            s,
            &format!(
                r#"cps_http_requests_total{{method="GET",route="{ROUTE}",status="{status}"}}"#
            ),
        )
    };
    // Other tests in this process share the recorder: counts only grow, by at least ours.
    assert!(
        requests(&after, "200") >= requests(&before, "200") + 3.0,
        "{after}"
    );
    assert!(
        requests(&after, "404") >= requests(&before, "404") + 2.0,
        "{after}"
    );
    let errors = |s: &str, code: &str| {
        value(
            s,
            &format!(r#"cps_http_error_responses_total{{message_code="{code}"}}"#),
        )
    };
    assert!(
        errors(&after, "CustomerWithGivenCardNumberNotFound")
            >= errors(&before, "CustomerWithGivenCardNumberNotFound") + 2.0
    );
    assert!(
        errors(&after, "IncorrectPhoneNumber") >= errors(&before, "IncorrectPhoneNumber") + 1.0
    );
    let latency =
        format!(r#"cps_http_request_duration_seconds_count{{method="GET",route="{ROUTE}"}}"#);
    assert!(
        value(&after, &latency) >= value(&before, &latency) + 5.0,
        "{after}"
    );
    let transactions = r#"cps_db_transaction_duration_seconds_count{operation="activate"}"#;
    assert!(
        value(&after, transactions) >= value(&before, transactions) + 1.0,
        "{after}"
    );
    for series in [
        "cps_http_request_duration_seconds_bucket",
        "cps_db_transaction_duration_seconds_bucket",
        "cps_uptime_seconds",
        "cps_build_info",
    ] {
        assert!(after.contains(series), "{series} in:\n{after}");
    }
    if app.redis.is_some() {
        for series in [
            "cps_cache_write_duration_seconds_count",
            "cps_outbox_deliveries_total",
        ] {
            assert!(after.contains(series), "{series} in:\n{after}");
        }
    }
    if app.database_url.starts_with("postgres") {
        assert!(
            after.contains(r#"cps_db_pool_connections{state="open"}"#),
            "{after}"
        );
    }
    // Card numbers, phone numbers and customer ids are never labels (the values are numbers
    // whose digits may hold anything).
    let labels: Vec<&str> = after
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('{')
                .and_then(|(_, rest)| rest.rsplit_once('}'))
        })
        .map(|(labels, _)| labels)
        .collect();
    for private in [card, "4000000000025", "601000000", "+48"] {
        assert!(
            labels.iter().all(|l| !l.contains(private)),
            "{private} in:\n{after}"
        );
    }
}

#[tokio::test]
async fn the_outbox_is_counted_by_kind_and_state() {
    // Without ALCS configured, every activation leaves an `unsent` notice behind.
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let card = "4000000000033";
    app.registered(card).await;
    app.activate(card, PHONE).await.assert_no_content();
    let scraped = scrape(&app).await;
    assert!(
        scraped.contains("cps_outbox_events{")
            && scraped.contains("cps_outbox_oldest_event_age_seconds{"),
        "{scraped}"
    );
    assert!(
        value(&scraped, r#"cps_outbox_events{kind="alcs_activation""#) >= 1.0,
        "{scraped}"
    );
}

#[tokio::test]
async fn metrics_and_probes_are_on_the_admin_listener_only() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let admin = app.admin.clone().expect("an admin listener");
    app.send(Method::GET, &format!("{}/metrics", app.base), None)
        .await
        .assert_error(404, "NotFound");
    for probe in ["/health/ready", "/health/live"] {
        let r = app
            .client
            .get(format!("{admin}{probe}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{probe}");
        assert!(r.headers().contains_key("x-request-id"));
    }
    // The admin listener serves nothing of the API.
    let r = app
        .client
        .get(format!("{admin}/alcs/loyalty/v1/loyalty-cards/{CARD}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
}

#[tokio::test]
async fn methods_a_client_makes_up_do_not_make_new_series() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    for made_up in ["FROB", "XYZZY"] {
        let method = Method::from_bytes(made_up.as_bytes()).unwrap();
        app.send(method, &app.card_url("4000000000025"), None)
            .await
            .assert_error(405, "MethodNotAllowed");
    }
    let scraped = scrape(&app).await;
    assert!(
        !scraped.contains("FROB") && !scraped.contains("XYZZY"),
        "{scraped}"
    );
    let other =
        format!(r#"cps_http_requests_total{{method="other",route="{ROUTE}",status="405"}}"#);
    // The recorder is the process's: other tests may have added to it, never taken away.
    assert!(value(&scraped, &other) >= 2.0, "{scraped}");
}

/// A fresh process's first scrape already shows every series an operator's dashboard and
/// alerts need: the outbox by every kind and state (0), the breakers, the refill, and the
/// standard `process_*` series.
#[tokio::test]
async fn a_fresh_process_exposes_every_series_from_its_first_scrape() {
    let Some((db, prefix)) = TestApp::resources(backend()).await else {
        return;
    };
    let admin = format!("127.0.0.1:{}", free_port());
    let redis = redis_url();
    let prefix_text = prefix.as_ref().map(|p| p.0.clone()).unwrap_or_default();
    let mut env = vec![
        ("CPS_DATABASE_URL", db.url.as_str()),
        ("CPS_ADMIN_LISTEN", admin.as_str()),
    ];
    if prefix.is_some() {
        env.push(("CPS_REDIS_URL", redis.as_str()));
        env.push(("CPS_REDIS_PREFIX", prefix_text.as_str()));
    }
    let (_cps, _logs, _addr) = start(&env);
    let scrape = reqwest::get(format!("http://{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |series: &str| scrape.lines().any(|l| l.starts_with(series));
    for kind in ["cache_write", "alcs_activation"] {
        for state in ["pending", "failed", "dead", "unsent", "delivered"] {
            for name in ["cps_outbox_events", "cps_outbox_oldest_event_age_seconds"] {
                let series = format!(r#"{name}{{kind="{kind}",state="{state}"}} 0"#);
                assert!(has(&series), "{series} missing:\n{scrape}");
            }
        }
    }
    for series in [
        "process_cpu_seconds_total ",
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "process_max_fds ",
        "process_start_time_seconds ",
    ] {
        assert!(has(series), "{series} missing:\n{scrape}");
    }
    if db.url.starts_with("postgres") {
        assert!(
            has(r#"cps_breaker_open{dependency="database"} 0"#),
            "{scrape}"
        );
    }
    if prefix.is_some() {
        assert!(has(r#"cps_breaker_open{dependency="redis"} 0"#), "{scrape}");
        assert!(has("cps_cache_refill_running "), "{scrape}");
        assert!(has(r#"cps_cache_refill_cards{state="done"}"#), "{scrape}");
    }
}
