//! `Message` language: the body's CashierLanguage (register only), then Accept-Language, then
//! the configured default; unknown languages fall back.

use serde_json::json;

use super::support::*;

const PL: &str = "Nie odnaleziono klienta o podanym numerze karty";
const EN: &str = "No customer was found with the given card number";

async fn lock_message(app: &TestApp, accept_language: Option<&str>) -> String {
    let mut req = app.client.post(format!("{}/lock", app.card_url(CARD)));
    if let Some(l) = accept_language {
        req = req.header("accept-language", l);
    }
    let reply = req.send().await.unwrap();
    assert_eq!(reply.status().as_u16(), 400);
    let body: serde_json::Value = serde_json::from_str(&reply.text().await.unwrap()).unwrap();
    body["Message"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn messages_default_to_polish_and_follow_accept_language() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    assert_eq!(lock_message(&app, None).await, PL);
    for header in [
        "en",
        "en-US",
        "en_US",
        "en-US,pl;q=0.5",
        "de-AT, en;q=0.3",
        "EN-us",
    ] {
        assert_eq!(lock_message(&app, Some(header)).await, EN, "{header}");
    }
    for header in ["pl", "pl-PL", "pl_PL", "de_AT", "fr, de", "en;q=0", "*"] {
        assert_eq!(lock_message(&app, Some(header)).await, PL, "{header}");
    }
}

#[tokio::test]
async fn the_configured_default_language_applies_when_none_is_recognized() {
    let Some(app) =
        TestApp::spawn_with(|c| c.http.default_language = cps::domain::Language::English).await
    else {
        return;
    };
    assert_eq!(lock_message(&app, None).await, EN);
    assert_eq!(lock_message(&app, Some("de_AT")).await, EN);
    assert_eq!(lock_message(&app, Some("pl")).await, PL);
}

#[tokio::test]
async fn register_prefers_the_cashier_language_over_accept_language() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    let conflict = with(registration(CARD), "LoyaltyCard.Gender", Some(json!("F")));
    let send = |body: serde_json::Value, header: Option<&'static str>| {
        let mut req = app
            .client
            .put(app.card_url(CARD))
            .header("content-type", "application/json")
            .body(body.to_string());
        if let Some(h) = header {
            req = req.header("accept-language", h);
        }
        async move {
            let reply = req.send().await.unwrap();
            assert_eq!(reply.status().as_u16(), 409);
            let body: serde_json::Value =
                serde_json::from_str(&reply.text().await.unwrap()).unwrap();
            body["Message"].as_str().unwrap().to_owned()
        }
    };
    let en = "The card is already registered";
    let pl = "Karta jest już zarejestrowana";
    let cashier = |lang: &str| {
        with(
            conflict.clone(),
            "ResponseLanguage.CashierLanguage",
            Some(json!(lang)),
        )
    };
    assert_eq!(send(cashier("en_US"), Some("pl")).await, en);
    assert_eq!(send(cashier("en"), None).await, en);
    assert_eq!(send(cashier("pl-PL"), Some("en")).await, pl);
    // An unknown cashier language falls through to the header, then the default.
    assert_eq!(send(cashier("de_AT"), Some("en")).await, en);
    assert_eq!(send(cashier("de_AT"), None).await, pl);
    // The client's language is not the cashier's.
    let client_only = with(
        with(conflict.clone(), "ResponseLanguage.CashierLanguage", None),
        "ResponseLanguage.ClientLanguage",
        Some(json!("en_US")),
    );
    assert_eq!(send(client_only, None).await, pl);
}

#[tokio::test]
async fn validation_messages_are_localized_too() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let body = with(
        with(registration(CARD), "LoyaltyCard.Gender", Some(json!("X"))),
        "ResponseLanguage.CashierLanguage",
        Some(json!("en_US")),
    );
    let message = app
        .register(CARD, &body)
        .await
        .assert_error(400, "InvalidRequest");
    assert_eq!(
        message,
        "Invalid field LoyaltyCard.Gender: allowed values are M, F and U"
    );
    let body = with(
        body,
        "ResponseLanguage.CashierLanguage",
        Some(json!("pl_PL")),
    );
    let message = app
        .register(CARD, &body)
        .await
        .assert_error(400, "InvalidRequest");
    assert_eq!(
        message,
        "Nieprawidłowe pole LoyaltyCard.Gender: dozwolone wartości to M, F i U"
    );
}
