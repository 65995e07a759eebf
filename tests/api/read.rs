use serde_json::{Value, json};

use super::support::*;

#[tokio::test]
async fn reading_a_card_returns_the_contract_shape() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let id = app.registered(CARD).await;
    let reply = app.get(CARD).await;
    assert_eq!(reply.status.as_u16(), 200);
    let card = reply.json();
    let keys: Vec<&String> = card.as_object().unwrap().keys().collect();
    assert_eq!(
        keys.len(),
        6,
        "CardNumber, Status, Customer, Wallets, CreatedAt, UpdatedAt: {card}"
    );
    assert_eq!(
        card["Customer"],
        json!({ "CustomerId": id, "Status": "NotActivated", "PhoneNumber": PHONE, "Gender": "M" })
    );
    assert_eq!(
        card["Wallets"][1],
        json!({ "Id": "SomethingElse", "Balance": 0.0, "Stat": { "Lost": 0.0, "TransferredOut": 0.0 }, "Version": "xyz" })
    );
    for field in ["CreatedAt", "UpdatedAt"] {
        let t = card[field].as_str().unwrap();
        // 2026-11-29T10:00:00.123Z
        assert_eq!(t.len(), 24, "{t}");
        assert!(t.ends_with('Z') && t.as_bytes()[19] == b'.', "{t}");
        assert!(chrono::DateTime::parse_from_rfc3339(t).is_ok(), "{t}");
    }
}

#[tokio::test]
async fn updated_at_moves_with_changes_and_created_at_does_not() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    let before = app.get(CARD).await.json();
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    app.change_phone(CARD, OTHER_PHONE)
        .await
        .assert_no_content();
    let after = app.get(CARD).await.json();
    assert_eq!(after["CreatedAt"], before["CreatedAt"]);
    assert!(after["UpdatedAt"].as_str() > before["UpdatedAt"].as_str());
}

#[tokio::test]
async fn reading_an_unknown_card_returns_404_customer_not_found() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.get(CARD)
        .await
        .assert_error(404, "CustomerWithGivenCardNumberNotFound");
}

#[tokio::test]
async fn a_customer_without_a_phone_reads_as_null() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered_without_phone(CARD).await;
    let card = app.get(CARD).await.json();
    assert!(
        card["Customer"]
            .as_object()
            .unwrap()
            .contains_key("PhoneNumber")
    );
    assert_eq!(card["Customer"]["PhoneNumber"], Value::Null);
}
