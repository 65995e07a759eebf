use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use super::support::*;

#[tokio::test]
async fn registering_a_new_card_returns_200_with_a_32_hex_customer_id() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let reply = app.register(CARD, &registration(CARD)).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(
        reply.headers["content-type"],
        "application/json; charset=utf-8"
    );
    let body = reply.json();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let id = body["CustomerId"].as_str().unwrap();
    assert_eq!(id.len(), 32);
    assert!(id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
}

#[tokio::test]
async fn registration_stores_customer_card_wallets_and_audit_record() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let id = app.registered(CARD).await;
    let card = app.get(CARD).await.json();
    assert_eq!(card["CardNumber"], json!(CARD));
    assert_eq!(card["Status"], json!("WaitingForActivation"));
    assert_eq!(
        card["Customer"],
        json!({ "CustomerId": id, "Status": "NotActivated", "PhoneNumber": PHONE, "Gender": "M" })
    );
    assert_eq!(card["Wallets"].as_array().unwrap().len(), 2);
    assert_eq!(app.totals().await, [1, 1, 2, 1]);
    let audit = app.audit(CARD).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].0, "register");
    assert_eq!(
        audit[0].1.clone().unwrap(),
        json!({ "PosId": "09fae9a5d4ea40e79dd7c1096c3694e0", "PosNumber": "5",
                "PosOperatorId": "b614f1dbda36454b970b4e1d409f4b01", "PosOperatorNumber": "23",
                "SiteId": "2345" })
    );
}

#[tokio::test]
async fn amounts_come_back_exactly_as_sent() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let body = raw_registration(
        CARD,
        r#"[{"Id": "A", "Balance": 132.00, "Stat": {"Lost": 0.220, "TransferredOut": 132.00,
             "TransferredIn": 9.12, "Issued": 199.000001}, "Version": "v"},
            {"Id": "B", "Balance": 12345678901234567890.123456},
            {"Id": "C", "Balance": -5, "Stat": {}, "Version": 42},
            {"Id": "D", "Balance": 0.0, "Stat": {"Issued": 1.50}}]"#,
    );
    let reply = app
        .send_raw(
            Method::PUT,
            &app.card_url(CARD),
            Some("application/json"),
            body,
        )
        .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let text = app.get(CARD).await.text;
    // Compare the text itself: a JSON parser in between could re-spell the numbers.
    assert!(
        text.contains(
            r#""Wallets":[{"Id":"A","Balance":132.00,"Stat":{"Lost":0.220,"TransferredOut":132.00,"TransferredIn":9.12,"Issued":199.000001},"Version":"v"},{"Id":"B","Balance":12345678901234567890.123456},{"Id":"C","Balance":-5,"Stat":{},"Version":"42"},{"Id":"D","Balance":0.0,"Stat":{"Issued":1.50}}]"#
        ),
        "{text}"
    );
}

#[tokio::test]
async fn leading_zeros_of_the_card_number_survive() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let zero = "0423770896985";
    let id = app.registered(zero).await;
    assert_eq!(app.get(zero).await.json()["CardNumber"], json!(zero));
    app.get("423770896985")
        .await
        .assert_error(404, "CustomerWithGivenCardNumberNotFound");
    assert_eq!(
        app.get(zero).await.json()["Customer"]["CustomerId"],
        json!(id)
    );
}

#[tokio::test]
async fn an_exact_replay_returns_200_with_the_same_customer_id() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let first = app.registered(CARD).await;
    // A retry may differ in what is not LoyaltyCard content: identity, languages, field order,
    // wallet order, how an amount is spelled, an absent CardNumber.
    let mut replay = registration(CARD);
    replay["Identity"] = json!({ "PosNumber": 7 });
    replay["ResponseLanguage"] = json!({ "CashierLanguage": "en_US" });
    replay["LoyaltyCard"]["Wallets"]
        .as_array_mut()
        .unwrap()
        .reverse();
    replay["LoyaltyCard"]["PhoneNumber"] = json!("48 602-123-789");
    let replay = with(replay, "LoyaltyCard.CardNumber", None);
    let reply = app.register(CARD, &replay).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    assert_eq!(reply.json()["CustomerId"], json!(first));
    assert_eq!(app.totals().await, [1, 1, 2, 1], "a replay stores nothing");
}

#[tokio::test]
async fn a_different_registration_of_a_registered_card_returns_409() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    for (field, value) in [
        ("LoyaltyCard.Gender", json!("F")),
        ("LoyaltyCard.PhoneNumber", json!(OTHER_PHONE)),
        ("LoyaltyCard.PhoneNumber", Value::Null),
        ("LoyaltyCard.CardPinHMac", json!("other")),
        ("LoyaltyCard.Wallets", json!([])),
    ] {
        let body = with(registration(CARD), field, Some(value));
        app.register(CARD, &body)
            .await
            .assert_error(409, "CardAlreadyRegistered");
    }
    assert_eq!(app.totals().await, [1, 1, 2, 1]);
}

#[tokio::test]
async fn a_replay_after_activation_returns_409() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    app.register(CARD, &registration(CARD))
        .await
        .assert_error(409, "CardAlreadyRegistered");
}

#[tokio::test]
async fn a_body_card_number_different_from_the_path_returns_400_card_number_mismatch() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.register(CARD, &registration("1234"))
        .await
        .assert_error(400, "CardNumberMismatch");
    // Leading zeros matter here too.
    app.register("01234", &registration("1234"))
        .await
        .assert_error(400, "CardNumberMismatch");
    assert_eq!(app.totals().await, [0, 0, 0, 0]);
}

#[tokio::test]
async fn only_loyalty_card_gender_and_pin_are_required() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let minimal = json!({ "LoyaltyCard": { "Gender": "U", "CardPinHMac": "+ewTfSPRI83xo7FIibxcqE2i3zjO/xImLEsUaCXUhtY=" } });
    let reply = app.register(CARD, &minimal).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
    let card = app.get(CARD).await.json();
    assert_eq!(card["Customer"]["PhoneNumber"], Value::Null);
    assert_eq!(card["Wallets"], json!([]));
}

#[tokio::test]
async fn phone_number_variants_are_stored_in_e164() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    for (i, (input, stored)) in [
        (json!("+48602123789"), json!(PHONE)),
        (json!("48602123789"), json!(PHONE)),
        (json!("602123789"), json!(PHONE)),
        (json!("+48 602 123 789"), json!(PHONE)),
        (json!("602-123-789"), json!(PHONE)),
        (json!("+48123456789"), json!("+48123456789")),
        (json!("4915112345678"), json!("+4915112345678")),
        (json!(""), Value::Null),
        (Value::Null, Value::Null),
    ]
    .into_iter()
    .enumerate()
    {
        let card = format!("{}", 1000 + i);
        let body = with(
            registration(&card),
            "LoyaltyCard.PhoneNumber",
            Some(input.clone()),
        );
        let reply = app.register(&card, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{input}: {}", reply.text);
        assert_eq!(
            app.get(&card).await.json()["Customer"]["PhoneNumber"],
            stored,
            "{input}"
        );
    }
}

#[tokio::test]
async fn identity_fields_are_accepted_as_numbers_or_strings() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    for (i, identity) in [
        json!({ "PosNumber": "5", "PosOperatorNumber": "23", "SiteId": "2345" }),
        json!({ "PosNumber": 5, "PosOperatorNumber": 23, "SiteId": 2345 }),
        json!({ "PosId": "09fae9a5-d4ea-40e7-9dd7-c1096c3694e0", "PosOperatorId": "" , "PosOperatorNumber": 0 }),
        json!({}),
        Value::Null,
    ]
    .into_iter()
    .enumerate()
    {
        let card = format!("{}", 2000 + i);
        let body = with(registration(&card), "Identity", Some(identity.clone()));
        let reply = app.register(&card, &body).await;
        assert_eq!(reply.status, StatusCode::OK, "{identity}: {}", reply.text);
    }
    let audit = app.audit("2001").await;
    assert_eq!(
        audit[0].1,
        Some(json!({ "PosNumber": "5", "PosOperatorNumber": "23", "SiteId": "2345" }))
    );
    // No cashier logged in: neither operator field is recorded.
    let audit = app.audit("2002").await;
    assert_eq!(
        audit[0].1,
        Some(json!({ "PosId": "09fae9a5-d4ea-40e7-9dd7-c1096c3694e0" }))
    );
    assert_eq!(app.audit("2004").await[0].1, None);
}

#[tokio::test]
async fn unknown_fields_are_ignored() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let mut body = registration(CARD);
    body["Extra"] = json!({ "Nested": [1, 2, 3] });
    body["LoyaltyCard"]["FutureField"] = json!("x");
    body["LoyaltyCard"]["Wallets"][0]["Colour"] = json!("red");
    let reply = app.register(CARD, &body).await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
}

#[tokio::test]
async fn invalid_registrations_return_400_naming_the_field_and_store_nothing() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let cases: Vec<(&str, &str, Option<Value>, &str)> = vec![
        ("no LoyaltyCard", "LoyaltyCard", None, "LoyaltyCard"),
        (
            "LoyaltyCard not an object",
            "LoyaltyCard",
            Some(json!("x")),
            "LoyaltyCard",
        ),
        (
            "no Gender",
            "LoyaltyCard.Gender",
            None,
            "LoyaltyCard.Gender",
        ),
        (
            "null Gender",
            "LoyaltyCard.Gender",
            Some(Value::Null),
            "LoyaltyCard.Gender",
        ),
        (
            "lowercase Gender",
            "LoyaltyCard.Gender",
            Some(json!("m")),
            "LoyaltyCard.Gender",
        ),
        (
            "unknown Gender",
            "LoyaltyCard.Gender",
            Some(json!("X")),
            "LoyaltyCard.Gender",
        ),
        (
            "numeric Gender",
            "LoyaltyCard.Gender",
            Some(json!(1)),
            "LoyaltyCard.Gender",
        ),
        (
            "no PIN",
            "LoyaltyCard.CardPinHMac",
            None,
            "LoyaltyCard.CardPinHMac",
        ),
        (
            "empty PIN",
            "LoyaltyCard.CardPinHMac",
            Some(json!("")),
            "LoyaltyCard.CardPinHMac",
        ),
        (
            "PIN too long",
            "LoyaltyCard.CardPinHMac",
            Some(json!("a".repeat(257))),
            "LoyaltyCard.CardPinHMac",
        ),
        (
            "PIN not printable",
            "LoyaltyCard.CardPinHMac",
            Some(json!("ab\ncd")),
            "LoyaltyCard.CardPinHMac",
        ),
        (
            "unparseable phone",
            "LoyaltyCard.PhoneNumber",
            Some(json!("call me")),
            "LoyaltyCard.PhoneNumber",
        ),
        (
            "too short phone",
            "LoyaltyCard.PhoneNumber",
            Some(json!("12")),
            "LoyaltyCard.PhoneNumber",
        ),
        (
            "numeric phone",
            "LoyaltyCard.PhoneNumber",
            Some(json!(48602123789_u64)),
            "LoyaltyCard.PhoneNumber",
        ),
        (
            "card number not digits",
            "LoyaltyCard.CardNumber",
            Some(json!("99x")),
            "LoyaltyCard.CardNumber",
        ),
        (
            "Wallets not an array",
            "LoyaltyCard.Wallets",
            Some(json!({})),
            "LoyaltyCard.Wallets",
        ),
        (
            "wallet not an object",
            "LoyaltyCard.Wallets",
            Some(json!([1])),
            "LoyaltyCard.Wallets[0]",
        ),
        (
            "wallet without Id",
            "LoyaltyCard.Wallets.0.Id",
            None,
            "LoyaltyCard.Wallets[0].Id",
        ),
        (
            "wallet with empty Id",
            "LoyaltyCard.Wallets.0.Id",
            Some(json!("")),
            "LoyaltyCard.Wallets[0].Id",
        ),
        (
            "wallet Id with a newline",
            "LoyaltyCard.Wallets.0.Id",
            Some(json!("a\nb")),
            "LoyaltyCard.Wallets[0].Id",
        ),
        (
            "wallet Id too long",
            "LoyaltyCard.Wallets.0.Id",
            Some(json!("w".repeat(129))),
            "LoyaltyCard.Wallets[0].Id",
        ),
        (
            "duplicate wallet Id",
            "LoyaltyCard.Wallets.1.Id",
            Some(json!("Strickers2016")),
            "LoyaltyCard.Wallets[1].Id",
        ),
        (
            "wallet without Balance",
            "LoyaltyCard.Wallets.1.Balance",
            None,
            "LoyaltyCard.Wallets[1].Balance",
        ),
        (
            "Balance as a string",
            "LoyaltyCard.Wallets.0.Balance",
            Some(json!("10.0")),
            "LoyaltyCard.Wallets[0].Balance",
        ),
        (
            "Stat not an object",
            "LoyaltyCard.Wallets.0.Stat",
            Some(json!([])),
            "LoyaltyCard.Wallets[0].Stat",
        ),
        (
            "Stat figure as a string",
            "LoyaltyCard.Wallets.0.Stat.Lost",
            Some(json!("1")),
            "LoyaltyCard.Wallets[0].Stat.Lost",
        ),
        (
            "fractional Version",
            "LoyaltyCard.Wallets.0.Version",
            Some(json!(1.5)),
            "LoyaltyCard.Wallets[0].Version",
        ),
        (
            "boolean Version",
            "LoyaltyCard.Wallets.0.Version",
            Some(json!(true)),
            "LoyaltyCard.Wallets[0].Version",
        ),
        (
            "Identity not an object",
            "Identity",
            Some(json!("pos")),
            "Identity",
        ),
        (
            "PosNumber an object",
            "Identity.PosNumber",
            Some(json!({})),
            "Identity.PosNumber",
        ),
        (
            "PosId too long",
            "Identity.PosId",
            Some(json!("x".repeat(65))),
            "Identity.PosId",
        ),
        (
            "CashierLanguage a number",
            "ResponseLanguage.CashierLanguage",
            Some(json!(1)),
            "ResponseLanguage.CashierLanguage",
        ),
    ];
    for (description, path, value, field) in cases {
        let body = with(registration(CARD), path, value);
        let message = app
            .register(CARD, &body)
            .await
            .assert_error(400, "InvalidRequest");
        assert!(
            message.contains(field),
            "{description}: message {message:?} does not name {field}"
        );
    }
    assert_eq!(app.totals().await, [0, 0, 0, 0]);
}

#[tokio::test]
async fn amounts_beyond_28_digits_or_6_decimals_return_400() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    for amount in [
        "0.0000001",
        "1.1234567",
        "12345678901234567890123456789",
        "1e28",
        "1e-7",
        "1e999999999",
        &format!("1{}", "0".repeat(400)),
    ] {
        let body = raw_registration(CARD, &format!(r#"[{{"Id": "A", "Balance": {amount}}}]"#));
        let message = app
            .send_raw(
                Method::PUT,
                &app.card_url(CARD),
                Some("application/json"),
                body,
            )
            .await
            .assert_error(400, "InvalidRequest");
        assert!(
            message.contains("LoyaltyCard.Wallets[0].Balance"),
            "{amount}: {message}"
        );
    }
    assert_eq!(app.totals().await, [0, 0, 0, 0]);
}

#[tokio::test]
async fn the_pin_hmac_is_never_returned() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    app.registered(CARD).await;
    let replies = [
        app.get(CARD).await,
        app.register(
            CARD,
            &with(registration(CARD), "LoyaltyCard.Gender", Some(json!("F"))),
        )
        .await,
        app.register(
            CARD,
            &with(
                registration(CARD),
                "LoyaltyCard.CardPinHMac",
                Some(json!("a\nb")),
            ),
        )
        .await,
    ];
    for reply in replies {
        assert!(!reply.text.contains(PIN), "{}", reply.text);
        assert!(!reply.text.contains("a\\nb"), "{}", reply.text);
    }
}

#[tokio::test]
async fn the_database_file_is_created_migrated_and_in_wal_mode() {
    use sqlx::Connection;
    if backend().is_postgres() {
        return;
    }
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let mut conn = sqlx::SqliteConnection::connect(&app.database_url)
        .await
        .unwrap();
    let mode: String = sqlx::query_scalar("pragma journal_mode")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    let applied: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert!(applied >= 1);
}
