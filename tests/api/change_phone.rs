use reqwest::Method;
use serde_json::json;

use super::support::*;

#[tokio::test]
async fn changing_the_phone_returns_204_and_the_new_number_is_used_for_activation() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    app.change_phone(CARD, "602-123-780")
        .await
        .assert_no_content();
    assert_eq!(
        app.get(CARD).await.json()["Customer"]["PhoneNumber"],
        json!(OTHER_PHONE)
    );
    app.activate(CARD, PHONE)
        .await
        .assert_error(400, "IncorrectPhoneNumber");
    app.activate(CARD, OTHER_PHONE).await.assert_no_content();
    let audit = app.audit(CARD).await;
    let operations: Vec<&str> = audit.iter().map(|a| a.0.as_str()).collect();
    // The refused activation is audited too: it counts towards the attempt limit.
    assert_eq!(
        operations,
        ["register", "change_phone", "activate-failed", "activate"]
    );
    // The audit trail records that the phone changed, not the number.
    assert_eq!(audit[1].2, Some(json!({ "PhoneNumberChanged": true })));
}

#[tokio::test]
async fn setting_the_same_number_again_returns_204() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    app.change_phone(CARD, PHONE).await.assert_no_content();
    app.change_phone(CARD, "48602123789")
        .await
        .assert_no_content();
    assert_eq!(app.audit(CARD).await.len(), 1);
}

#[tokio::test]
async fn a_customer_without_a_phone_can_be_given_one() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered_without_phone(CARD).await;
    app.change_phone(CARD, PHONE).await.assert_no_content();
    app.activate(CARD, PHONE).await.assert_no_content();
}

#[tokio::test]
async fn changing_the_phone_of_an_unknown_card_returns_400_customer_not_found() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.change_phone(CARD, PHONE)
        .await
        .assert_error(400, "CustomerWithGivenCardNumberNotFound");
}

#[tokio::test]
async fn a_missing_null_or_invalid_phone_returns_400_and_keeps_the_old_one() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    for body in [
        json!({}),
        json!({ "PhoneNumber": null }),
        json!({ "PhoneNumber": "" }),
        json!({ "PhoneNumber": "+48abc" }),
    ] {
        app.send(Method::PATCH, &app.card_url(CARD), Some(&body))
            .await
            .assert_error(400, "InvalidRequest");
    }
    assert_eq!(
        app.get(CARD).await.json()["Customer"]["PhoneNumber"],
        json!(PHONE)
    );
}
