use reqwest::Method;
use serde_json::json;

use super::support::*;

#[tokio::test]
async fn locking_returns_204_from_every_state_and_blocks_activation() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered("1").await;
    app.registered("2").await;
    app.activate("2", PHONE).await.assert_no_content();
    for card in ["1", "2"] {
        app.lock(card).await.assert_no_content();
        assert_eq!(app.get(card).await.json()["Status"], json!("Locked"));
        // Locking a locked card is a success too.
        app.lock(card).await.assert_no_content();
    }
    app.activate("1", PHONE)
        .await
        .assert_error(422, "CardWasNotWaitingForActivation");
    // Locking does not change the customer's status.
    assert_eq!(
        app.get("2").await.json()["Customer"]["Status"],
        json!("Active")
    );
    assert_eq!(app.audit("1").await.len(), 2);
}

#[tokio::test]
async fn locking_an_unknown_card_returns_400_customer_not_found() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.lock(CARD)
        .await
        .assert_error(400, "CustomerWithGivenCardNumberNotFound");
}

#[tokio::test]
async fn lock_accepts_no_body_or_an_empty_object_and_refuses_garbage() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    let url = format!("{}/lock", app.card_url(CARD));
    app.send(Method::POST, &url, Some(&json!({})))
        .await
        .assert_no_content();
    app.send_raw(Method::POST, &url, Some("application/json"), "")
        .await
        .assert_no_content();
    app.send_raw(Method::POST, &url, Some("application/json"), "{not json")
        .await
        .assert_error(400, "InvalidRequest");
    app.send_raw(Method::POST, &url, Some("application/json"), "[1]")
        .await
        .assert_error(400, "InvalidRequest");
    app.send_raw(Method::POST, &url, Some("text/plain"), "{}")
        .await
        .assert_error(415, "UnsupportedMediaType");
}
