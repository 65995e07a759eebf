//! Request ids: taken from the caller when safe to log and echo, made up otherwise, and sent
//! back on every answer, errors included.

use reqwest::Method;
use serde_json::json;

use super::support::*;

/// Sends `method url` with `X-Request-Id: id` (if any); returns the status and the id answered.
async fn answered_id(
    app: &TestApp,
    method: Method,
    url: &str,
    id: Option<&str>,
    body: Option<serde_json::Value>,
) -> (u16, String) {
    let mut req = app.client.request(method, url);
    if let Some(id) = id {
        req = req.header("x-request-id", id);
    }
    if let Some(body) = body {
        req = req.json(&body);
    }
    let r = req.send().await.expect("answered");
    let id = r
        .headers()
        .get("x-request-id")
        .expect("every answer carries a request id")
        .to_str()
        .expect("visible ASCII")
        .to_owned();
    (r.status().as_u16(), id)
}

fn is_generated(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn the_callers_request_id_is_echoed_on_success_and_on_errors() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let url = app.card_url(CARD);
    let cases = [
        (Method::PUT, url.clone(), Some(registration(CARD)), 200),
        (Method::GET, url.clone(), None, 200),
        (Method::GET, app.card_url("not-a-number"), None, 400),
        (Method::GET, app.card_url("4000000000009"), None, 404),
        (
            Method::POST,
            format!("{url}/activate"),
            Some(json!({ "PhoneNumber": "+48 601 000 000" })),
            400,
        ),
        (Method::GET, format!("{}/nowhere", app.base), None, 404),
        (Method::GET, format!("{}/health/live", app.base), None, 200),
    ];
    for (i, (method, url, body, status)) in cases.into_iter().enumerate() {
        let sent = format!("till-7/req:{i}");
        let (got, id) = answered_id(&app, method.clone(), &url, Some(&sent), body).await;
        assert_eq!(got, status, "{method} {url}");
        assert_eq!(id, sent, "{method} {url}");
    }
}

#[tokio::test]
async fn a_missing_or_unsafe_request_id_is_replaced_by_a_new_one() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let url = app.card_url("4000000000009");
    let (_, first) = answered_id(&app, Method::GET, &url, None, None).await;
    let (_, second) = answered_id(&app, Method::GET, &url, None, None).await;
    assert!(is_generated(&first), "{first}");
    assert!(is_generated(&second), "{second}");
    assert_ne!(first, second, "each request gets its own");
    let longest = "r".repeat(128);
    let (_, id) = answered_id(&app, Method::GET, &url, Some(&longest), None).await;
    assert_eq!(id, longest, "128 characters are taken");
    for unsafe_id in [
        "r".repeat(129),
        "two words".to_owned(),
        "tab\tid".to_owned(),
    ] {
        let (status, id) = answered_id(&app, Method::GET, &url, Some(&unsafe_id), None).await;
        assert_eq!(status, 404, "the request itself is served");
        assert!(is_generated(&id), "{unsafe_id:?} replaced, got {id:?}");
    }
}
