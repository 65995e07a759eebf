use reqwest::Method;
use serde_json::json;

use super::support::*;

#[tokio::test]
async fn activating_a_waiting_card_with_the_right_phone_returns_204_and_activates_both() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let card = app.get(CARD).await.json();
    assert_eq!(card["Status"], json!("Active"));
    assert_eq!(card["Customer"]["Status"], json!("Active"));
    let audit = app.audit(CARD).await;
    assert_eq!(audit.len(), 2);
    assert_eq!(audit[1].0, "activate");
    assert_eq!(
        audit[1].2.clone().unwrap(),
        json!({ "CardStatus": { "From": "WaitingForActivation", "To": "Active" },
                "CustomerStatus": { "From": "NotActivated", "To": "Active" } })
    );
}

#[tokio::test]
async fn activating_an_active_card_again_returns_204_and_changes_nothing() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let before = app.get(CARD).await.json();
    app.activate(CARD, "602 123 789").await.assert_no_content();
    assert_eq!(app.get(CARD).await.json(), before);
    assert_eq!(
        app.audit(CARD).await.len(),
        2,
        "no audit record for a no-op"
    );
}

#[tokio::test]
async fn activating_an_unknown_card_returns_400_customer_not_found() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let message = app
        .activate(CARD, PHONE)
        .await
        .assert_error(400, "CustomerWithGivenCardNumberNotFound");
    assert_eq!(message, "Nie odnaleziono klienta o podanym numerze karty");
}

#[tokio::test]
async fn activating_a_locked_card_returns_422_even_with_a_wrong_phone() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    app.lock(CARD).await.assert_no_content();
    let message = app
        .activate(CARD, PHONE)
        .await
        .assert_error(422, "CardWasNotWaitingForActivation");
    assert_eq!(message, "Karta nie oczekiwała na aktywację");
    app.activate(CARD, OTHER_PHONE)
        .await
        .assert_error(422, "CardWasNotWaitingForActivation");
    assert_eq!(
        app.get(CARD).await.json()["Customer"]["Status"],
        json!("NotActivated")
    );
}

#[tokio::test]
async fn activating_with_a_different_phone_returns_400_incorrect_phone_number() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    let message = app
        .activate(CARD, OTHER_PHONE)
        .await
        .assert_error(400, "IncorrectPhoneNumber");
    assert_eq!(message, "Błędny numer telefonu");
    let card = app.get(CARD).await.json();
    assert_eq!(card["Status"], json!("WaitingForActivation"));
    // An active card checks the phone too, before answering "already active".
    app.activate(CARD, PHONE).await.assert_no_content();
    app.activate(CARD, OTHER_PHONE)
        .await
        .assert_error(400, "IncorrectPhoneNumber");
}

#[tokio::test]
async fn activating_a_card_whose_customer_has_no_phone_returns_400_incorrect_phone_number() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered_without_phone(CARD).await;
    app.activate(CARD, PHONE)
        .await
        .assert_error(400, "IncorrectPhoneNumber");
}

#[tokio::test]
async fn activation_accepts_every_phone_spelling() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    for (i, spelling) in ["48602123789", "602123789", "+48 602-123-789", "602 123 789"]
        .into_iter()
        .enumerate()
    {
        let card = format!("{}", 3000 + i);
        app.registered(&card).await;
        app.activate(&card, spelling).await.assert_no_content();
    }
}

#[tokio::test]
async fn activation_without_a_usable_phone_returns_400_invalid_request() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    let url = format!("{}/activate", app.card_url(CARD));
    for body in [
        json!({}),
        json!({ "PhoneNumber": null }),
        json!({ "PhoneNumber": 48602123789_u64 }),
        json!({ "PhoneNumber": "not a phone" }),
        json!([]),
    ] {
        let message = app
            .send(Method::POST, &url, Some(&body))
            .await
            .assert_error(400, "InvalidRequest");
        if body.is_object() {
            assert!(message.contains("PhoneNumber"), "{body}: {message}");
        }
    }
    assert_eq!(
        app.get(CARD).await.json()["Status"],
        json!("WaitingForActivation")
    );
}
