//! The service desk API: look-ups, history, lock with a reason and unlock, replacement, the
//! desk's phone change, erasure, retrying an ALCS notice; who may do what; and a replacement
//! racing an activation.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

const NEW_CARD: &str = "99419283746390";
const NEW_PIN: &str = "+ewTfSPRI83xo7FIibxcqE2i3zjO/xImLEsUaCXUhtY=";

/// The desk's body of a card never carries a PIN HMAC, whatever else it shows.
#[track_caller]
fn no_secrets(reply: &Reply) {
    assert!(!reply.text.contains(PIN), "{}", reply.text);
    assert!(!reply.text.contains(NEW_PIN), "{}", reply.text);
    assert!(!reply.text.contains("CardPinHMac"), "{}", reply.text);
}

#[tokio::test]
async fn a_card_is_found_by_number_by_phone_in_any_format_and_through_its_customer() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let customer = app.registered(CARD).await;
    let reply = desk.get(&format!("/support/v1/cards/{CARD}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    no_secrets(&reply);
    let card = reply.json();
    assert_eq!(card["CardNumber"], json!(CARD));
    assert_eq!(card["Status"], json!("WaitingForActivation"));
    assert_eq!(card["Lock"], Value::Null);
    assert_eq!(card["Customer"]["CustomerId"], json!(customer));
    assert_eq!(card["Customer"]["PhoneNumber"], json!(PHONE));
    assert_eq!(card["Customer"]["Version"], json!(1));
    assert_eq!(card["Wallets"][0]["Id"], json!("Strickers2016"));
    assert_eq!(card["LastChange"]["Operation"], json!("register"));
    assert_eq!(card["LastChange"]["By"]["Kind"], json!("Alcs"));
    assert_eq!(card["AlcsNotice"], Value::Null);

    for phone in ["+48602123789", "48602123789", "602 123 789", "602-123-789"] {
        let reply = desk
            .get(&format!("/support/v1/cards?phone={}", urlencoding(phone)))
            .await;
        assert_eq!(reply.status, 200, "{phone}: {}", reply.text);
        let cards = reply.json()["Cards"].as_array().unwrap().clone();
        assert_eq!(cards.len(), 1, "{phone}");
        assert_eq!(cards[0]["CardNumber"], json!(CARD));
    }
    let none = desk.get("/support/v1/cards?phone=%2B48602123780").await;
    assert_eq!(none.json()["Cards"], json!([]));

    let reply = desk.customer(&customer).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    no_secrets(&reply);
    assert_eq!(reply.headers["etag"], "\"1\"");
    let body = reply.json();
    assert_eq!(body["CustomerId"], json!(customer));
    assert_eq!(body["Cards"][0]["CardNumber"], json!(CARD));
    assert_eq!(body["Cards"][0].get("Customer"), None);
}

/// Percent-encodes what a query value may not hold as it is.
fn urlencoding(s: &str) -> String {
    s.replace('+', "%2B").replace(' ', "%20")
}

#[tokio::test]
async fn look_ups_refuse_what_does_not_exist_or_does_not_parse() {
    let Some((_app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    desk.get(&format!("/support/v1/cards/{CARD}"))
        .await
        .assert_error(404, "CustomerWithGivenCardNumberNotFound");
    desk.get(&format!("/support/v1/cards/{CARD}/history"))
        .await
        .assert_error(404, "CustomerWithGivenCardNumberNotFound");
    let nobody = "0123456789abcdef0123456789abcdef";
    desk.customer(nobody)
        .await
        .assert_error(404, "CustomerNotFound");
    desk.get(&format!("/support/v1/customers/{nobody}/history"))
        .await
        .assert_error(404, "CustomerNotFound");
    let m = desk
        .customer("not-an-id")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(m.contains("{customer-id}"), "{m}");
    desk.get("/support/v1/cards/12ab")
        .await
        .assert_error(400, "InvalidRequest");
    let m = desk
        .get("/support/v1/cards")
        .await
        .assert_error(400, "InvalidRequest");
    assert!(m.contains("phone"), "{m}");
    desk.get("/support/v1/cards?phone=abc")
        .await
        .assert_error(400, "InvalidRequest");
    desk.get("/support/v1/nothing")
        .await
        .assert_error(404, "NotFound");
}

#[tokio::test]
async fn a_desk_lock_keeps_its_reason_and_an_unlock_restores_the_status_before_it() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let customer = app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    desk.lock(CARD, "Stolen", Some("Klientka zgłosiła kradzież"))
        .await
        .assert_no_content();
    let card = desk.card(CARD).await;
    assert_eq!(card["Status"], json!("Locked"));
    assert_eq!(card["Lock"]["Reason"], json!("Stolen"));
    assert_eq!(card["Lock"]["Note"], json!("Klientka zgłosiła kradzież"));
    assert_eq!(card["Lock"]["StatusBeforeLock"], json!("Active"));
    assert_eq!(card["Lock"]["CanUnlock"], json!(true));
    assert_eq!(
        card["LastChange"]["By"],
        json!({"Kind": "Desk", "Name": AGENT})
    );
    // ALCS sees the lock as any other.
    assert_eq!(app.get(CARD).await.json()["Status"], json!("Locked"));
    app.activate(CARD, PHONE)
        .await
        .assert_error(422, "CardWasNotWaitingForActivation");
    if app.redis.is_some() {
        assert_eq!(
            app.cache_hash(&format!("card:{CARD}")).await["Status"],
            "Locked"
        );
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert_eq!(hash[&format!("Card.{CARD}")], "Locked");
    }
    // Locking again changes nothing: the first reason holds.
    desk.lock(CARD, "Lost", None).await.assert_no_content();
    assert_eq!(desk.card(CARD).await["Lock"]["Reason"], json!("Stolen"));

    desk.unlock(CARD).await.assert_no_content();
    let card = desk.card(CARD).await;
    assert_eq!(card["Status"], json!("Active"));
    assert_eq!(card["Lock"], Value::Null);
    if app.redis.is_some() {
        assert_eq!(
            app.cache_hash(&format!("card:{CARD}")).await["Status"],
            "Active"
        );
    }
    desk.unlock(CARD).await.assert_error(409, "CardNotLocked");

    // ALCS's own lock records its reason, and the desk may lift it.
    app.lock(CARD).await.assert_no_content();
    assert_eq!(desk.card(CARD).await["Lock"]["Reason"], json!("Alcs"));
    desk.unlock(CARD).await.assert_no_content();
    assert_eq!(desk.card(CARD).await["Status"], json!("Active"));

    // The trail, newest first, names who did what; never the note.
    let history = desk.history(&format!("cards/{CARD}")).await;
    let operations: Vec<&str> = history
        .iter()
        .map(|e| e["Operation"].as_str().unwrap())
        .collect();
    assert_eq!(
        operations,
        [
            "unlock",
            "lock",
            "unlock",
            "desk_lock",
            "activate",
            "register"
        ]
    );
    assert_eq!(history[3]["By"], json!({"Kind": "Desk", "Name": AGENT}));
    assert_eq!(history[3]["Changes"]["LockReason"], json!("Stolen"));
    assert_eq!(history[3]["Changes"]["NoteGiven"], json!(true));
    assert_eq!(
        history[3]["Changes"]["CardStatus"],
        json!({"From": "Active", "To": "Locked"})
    );
    assert_eq!(history[2]["Changes"]["CardStatus"]["To"], json!("Active"));
    assert_eq!(history[1]["By"]["Kind"], json!("Alcs"));
    assert_eq!(history[5]["By"]["Identity"]["PosNumber"], json!("5"));
    let all = serde_json::to_string(&history).unwrap();
    assert!(!all.contains("kradzież"), "{all}");
    assert!(!all.contains("602123789"), "{all}");
    let customer_trail = desk.history(&format!("customers/{customer}")).await;
    assert_eq!(customer_trail.len(), 6);
}

#[tokio::test]
async fn a_lock_needs_a_desk_reason_and_other_needs_a_note() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    app.registered(CARD).await;
    let before = app.totals().await;
    for (body, field) in [
        (json!({}), "Reason"),
        (json!({"Reason": "Alcs"}), "Reason"),
        (json!({"Reason": "Erased"}), "Reason"),
        (json!({"Reason": 5}), "Reason"),
        (json!({"Reason": "Other"}), "Note"),
        (json!({"Reason": "Lost", "Note": ""}), "Note"),
        (json!({"Reason": "Lost", "Note": "a\u{0007}b"}), "Note"),
        (json!({"Reason": "Lost", "Note": "x".repeat(501)}), "Note"),
    ] {
        let m = desk
            .post(&format!("/support/v1/cards/{CARD}/lock"), Some(&body))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(m.contains(field), "{body}: {m}");
    }
    assert_eq!(app.totals().await, before, "nothing stored");
    desk.lock(CARD, "Other", Some("see ticket 4411"))
        .await
        .assert_no_content();
    desk.lock("12345", "Lost", None)
        .await
        .assert_error(404, "CustomerWithGivenCardNumberNotFound");
    desk.unlock("12345")
        .await
        .assert_error(404, "CustomerWithGivenCardNumberNotFound");
}

#[tokio::test]
async fn a_replacement_moves_the_wallets_exactly_and_keeps_the_status() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let wallets = r#"[{"Id": "W1", "Balance": 132.00, "Stat": {"Lost": 0.220}, "Version": 7},
                      {"Id": "W2", "Balance": 0.000001}]"#;
    let reply = app
        .send_raw(
            Method::PUT,
            &app.card_url(CARD),
            Some("application/json"),
            raw_registration(CARD, wallets),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let customer = reply.json()["CustomerId"].as_str().unwrap().to_owned();
    app.activate(CARD, PHONE).await.assert_no_content();

    let reply = desk.replace(CARD, NEW_CARD, NEW_PIN).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    no_secrets(&reply);
    assert!(reply.text.contains(r#""Balance":132.00"#), "{}", reply.text);
    assert!(reply.text.contains(r#""Lost":0.220"#), "{}", reply.text);
    assert!(
        reply.text.contains(r#""Balance":0.000001"#),
        "{}",
        reply.text
    );
    let new = reply.json();
    assert_eq!(new["CardNumber"], json!(NEW_CARD));
    assert_eq!(new["Status"], json!("Active"), "Active stays Active");
    assert_eq!(new["Customer"]["CustomerId"], json!(customer));

    let old = desk.card(CARD).await;
    assert_eq!(old["Status"], json!("Locked"));
    assert_eq!(old["Lock"]["Reason"], json!("Lost"));
    assert_eq!(old["Lock"]["ReplacedBy"], json!(NEW_CARD));
    assert_eq!(
        old["Lock"]["Note"],
        json!(format!("replaced by {NEW_CARD}"))
    );
    assert_eq!(old["Lock"]["CanUnlock"], json!(false));
    assert_eq!(old["Wallets"], json!([]));
    assert_eq!(app.count("customers").await, 1, "no second customer");
    assert_eq!(app.count("wallets").await, 2, "moved, not copied");

    // ALCS reads the new card as registered, with the wallets exact.
    let read = app.get(NEW_CARD).await;
    assert_eq!(read.status, 200, "{}", read.text);
    assert!(read.text.contains(r#""Balance":132.00"#), "{}", read.text);
    app.activate(CARD, PHONE)
        .await
        .assert_error(422, "CardWasNotWaitingForActivation");
    app.register(NEW_CARD, &registration(NEW_CARD))
        .await
        .assert_error(409, "CardAlreadyRegistered");

    let customer_body = desk.customer(&customer).await.json();
    let numbers: Vec<&str> = customer_body["Cards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["CardNumber"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, [CARD, NEW_CARD]);

    if app.redis.is_some() {
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert_eq!(hash[&format!("Card.{CARD}")], "Locked");
        assert_eq!(hash[&format!("Card.{NEW_CARD}")], "Active");
        let new_hash = app.cache_hash(&format!("card:{NEW_CARD}")).await;
        assert_eq!(new_hash["Status"], "Active");
        assert_eq!(new_hash["Guid"], customer);
        assert_eq!(new_hash["CardPinHMac"], NEW_PIN);
        assert_eq!(new_hash["Wallet.W1.Balance"], "132.00");
        assert_eq!(new_hash["Wallet.W1.Stat.Lost"], "0.220");
        assert_eq!(new_hash["Wallet.W1.Version"], "7");
        let old_hash = app.cache_hash(&format!("card:{CARD}")).await;
        assert_eq!(old_hash["Status"], "Locked");
        assert!(
            !old_hash.keys().any(|k| k.starts_with("Wallet.")),
            "{old_hash:?}"
        );
        app.cache_converges(std::time::Duration::from_secs(5))
            .await
            .expect("the cache agrees with the database");
    }

    // A replaced card is final.
    desk.unlock(CARD)
        .await
        .assert_error(409, "CardCannotBeUnlocked");
    desk.replace(CARD, "5555", NEW_PIN)
        .await
        .assert_error(409, "CardCannotBeReplaced");
    let history = desk.history(&format!("cards/{NEW_CARD}")).await;
    assert_eq!(history[0]["Operation"], json!("replacement"));
    assert_eq!(history[0]["Changes"]["ReplacementOf"], json!(CARD));
    assert_eq!(history[0]["By"]["Name"], json!(AGENT));
    let history = desk.history(&format!("cards/{CARD}")).await;
    assert_eq!(history[0]["Operation"], json!("replace"));
    assert_eq!(history[0]["Changes"]["ReplacedBy"], json!(NEW_CARD));
}

#[tokio::test]
async fn a_replacement_is_refused_for_a_taken_or_the_same_number_and_stores_nothing() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    app.registered(CARD).await;
    app.registered(NEW_CARD).await;
    let before = app.totals().await;
    desk.replace(CARD, NEW_CARD, NEW_PIN)
        .await
        .assert_error(409, "CardAlreadyRegistered");
    let m = desk
        .replace(CARD, CARD, NEW_PIN)
        .await
        .assert_error(400, "InvalidRequest");
    assert!(m.contains("NewCardNumber"), "{m}");
    for (body, field) in [
        (
            json!({"CardPinHMac": NEW_PIN, "Reason": "Lost"}),
            "NewCardNumber",
        ),
        (
            json!({"NewCardNumber": "77", "Reason": "Lost"}),
            "CardPinHMac",
        ),
        (
            json!({"NewCardNumber": "77", "CardPinHMac": NEW_PIN}),
            "Reason",
        ),
        (
            json!({"NewCardNumber": "7a", "CardPinHMac": NEW_PIN, "Reason": "Lost"}),
            "NewCardNumber",
        ),
    ] {
        let m = desk
            .post(&format!("/support/v1/cards/{CARD}/replace"), Some(&body))
            .await
            .assert_error(400, "InvalidRequest");
        assert!(m.contains(field), "{body}: {m}");
        assert!(!m.contains(NEW_PIN), "{m}");
    }
    desk.replace("12345", "77", NEW_PIN)
        .await
        .assert_error(404, "CustomerWithGivenCardNumberNotFound");
    assert_eq!(app.totals().await, before, "nothing stored");
    assert_eq!(
        desk.card(CARD).await["Status"],
        json!("WaitingForActivation")
    );
    // A waiting card's replacement waits too.
    let reply = desk.replace(CARD, "77", NEW_PIN).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json()["Status"], json!("WaitingForActivation"));
    app.activate("77", PHONE).await.assert_no_content();
}

#[tokio::test]
async fn the_desk_changes_a_phone_only_at_the_version_it_saw() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let customer = app.registered(CARD).await;
    let etag = desk.customer(&customer).await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    desk.change_phone(&customer, OTHER_PHONE, None)
        .await
        .assert_error(428, "PreconditionRequired");
    desk.change_phone(&customer, OTHER_PHONE, Some("3"))
        .await
        .assert_error(400, "InvalidRequest");
    // Well-formed tags that are not the current one are HTTP's 412, not 400: a foreign tag,
    // a weak tag (never matches for a change), a list without the current one.
    let weak = format!("W/{etag}");
    for other in ["\"stale-0\"", weak.as_str(), "\"999\", \"998\""] {
        desk.change_phone(&customer, OTHER_PHONE, Some(other))
            .await
            .assert_error(412, "PreconditionFailed");
    }
    desk.change_phone(&customer, OTHER_PHONE, Some("*, \"1\""))
        .await
        .assert_error(400, "InvalidRequest");
    // ALCS changes the card meanwhile: the version the desk saw is gone.
    app.lock(CARD).await.assert_no_content();
    desk.change_phone(&customer, OTHER_PHONE, Some(&etag))
        .await
        .assert_error(412, "PreconditionFailed");
    assert_eq!(
        desk.card(CARD).await["Customer"]["PhoneNumber"],
        json!(PHONE)
    );

    let etag = desk.customer(&customer).await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    // A list that holds the current tag matches.
    desk.change_phone(&customer, "602 123 780", Some(&format!("\"999\", {etag}")))
        .await
        .assert_no_content();
    let body = desk.customer(&customer).await;
    assert_eq!(body.json()["PhoneNumber"], json!(OTHER_PHONE));
    assert_ne!(body.headers["etag"].to_str().unwrap(), etag);
    if app.redis.is_some() {
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert_eq!(hash["PhoneNumber"], OTHER_PHONE);
    }
    let history = desk.history(&format!("customers/{customer}")).await;
    assert_eq!(history[0]["Operation"], json!("desk_change_phone"));
    assert_eq!(history[0]["CardNumber"], Value::Null);
    assert_eq!(history[0]["Changes"], json!({"PhoneNumberChanged": true}));
    assert_eq!(history[0]["By"]["Name"], json!(AGENT));
    desk.change_phone(&customer, "123", Some(&etag))
        .await
        .assert_error(400, "InvalidRequest");
    // `*`: any version of a customer that exists.
    desk.change_phone(&customer, PHONE, Some("*"))
        .await
        .assert_no_content();
    assert_eq!(
        desk.customer(&customer).await.json()["PhoneNumber"],
        json!(PHONE)
    );
    desk.change_phone(
        "0123456789abcdef0123456789abcdef",
        OTHER_PHONE,
        Some("\"1\""),
    )
    .await
    .assert_error(404, "CustomerNotFound");
}

/// With Redis down, the cache writes of a registration, an activation and a replacement stay
/// queued, each holding the customer's hash with the phone number (a replacement's subject
/// names both cards around the customer). The erasure removes them all, whatever their shape.
#[tokio::test]
async fn erasure_with_redis_down_leaves_no_queued_payload_holding_the_phone_number() {
    let closed = free_port();
    let Some((app, desk)) = TestApp::spawn_desk_with(move |c| {
        c.cache = Some(CacheSettings {
            timeout: std::time::Duration::from_millis(200),
            ..cache_at(&format!("redis://127.0.0.1:{closed}"), "erasure:")
        });
    })
    .await
    else {
        return;
    };
    let customer = app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let reply = desk.replace(CARD, NEW_CARD, NEW_PIN).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    let national = &PHONE[3..];
    assert_ne!(
        app.stored_mentions(national).await,
        Vec::<String>::new(),
        "the queued cache writes hold the phone number before the erasure"
    );
    desk.erase(&customer).await.assert_no_content();
    assert_eq!(app.stored_mentions(national).await, Vec::<String>::new());
    // The erasure's own cache writes are queued for when Redis is back.
    assert!(app.count("outbox").await > 0);
}

#[tokio::test]
async fn erasure_removes_personal_data_for_good_and_a_second_one_is_a_no_op() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let customer = app.registered(CARD).await;
    app.activate(CARD, PHONE).await.assert_no_content();
    let reply = desk.replace(CARD, NEW_CARD, NEW_PIN).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    desk.lock(NEW_CARD, "Other", Some("Pani Kowalska, tel. 602123789"))
        .await
        .assert_no_content();

    desk.erase(&customer).await.assert_no_content();
    let body = desk.customer(&customer).await.json();
    assert_eq!(body["PhoneNumber"], Value::Null);
    assert_eq!(body["Gender"], json!("U"));
    assert!(body["ErasedAt"].is_string(), "{body}");
    for card in body["Cards"].as_array().unwrap() {
        assert_eq!(card["Status"], json!("Locked"));
        assert_eq!(card["Lock"]["Reason"], json!("Erased"));
        assert_eq!(card["Lock"]["Note"], Value::Null);
        assert_eq!(card["Lock"]["CanUnlock"], json!(false));
    }
    let read = app.get(NEW_CARD).await.json();
    assert_eq!(read["Customer"]["PhoneNumber"], Value::Null);
    if app.redis.is_some() {
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert!(!hash.contains_key("PhoneNumber"), "{hash:?}");
        assert_eq!(hash["Gender"], "U");
        assert_eq!(hash[&format!("Card.{CARD}")], "Locked");
        assert_eq!(hash[&format!("Card.{NEW_CARD}")], "Locked");
        assert_eq!(
            app.cache_hash(&format!("card:{NEW_CARD}")).await["Status"],
            "Locked"
        );
        app.cache_converges(std::time::Duration::from_secs(5))
            .await
            .expect("the cache agrees with the database");
        let cached = serde_json::to_string(&app.cache_snapshot().await).unwrap();
        assert!(!cached.contains("602123789"), "{cached}");
    }
    // Nothing stored anywhere still names the number or the note.
    assert_eq!(app.stored_mentions("602123789").await, Vec::<String>::new());
    assert_eq!(app.stored_mentions("Kowalska").await, Vec::<String>::new());
    let none = desk.get("/support/v1/cards?phone=%2B48602123789").await;
    assert_eq!(none.json()["Cards"], json!([]));

    // The erasure is audited, by whom; its entries keep no personal data.
    let history = desk.history(&format!("customers/{customer}")).await;
    assert_eq!(history[0]["Operation"], json!("erase"));
    let erase_entries: Vec<&Value> = history
        .iter()
        .filter(|e| e["Operation"] == json!("erase"))
        .collect();
    assert_eq!(erase_entries.len(), 3, "the customer and its two cards");
    assert!(
        erase_entries
            .iter()
            .all(|e| e["By"] == json!({"Kind": "Desk", "Name": AGENT}))
    );
    assert!(
        erase_entries
            .iter()
            .any(|e| e["Changes"]["PersonalDataErased"] == json!(true))
    );

    // Irreversible: a second call does nothing, and nothing brings the data back.
    let entries = app.count("audit_log").await;
    desk.erase(&customer).await.assert_no_content();
    assert_eq!(
        app.count("audit_log").await,
        entries,
        "a no-op is not audited"
    );
    desk.unlock(NEW_CARD)
        .await
        .assert_error(409, "CardCannotBeUnlocked");
    desk.replace(NEW_CARD, "5555", NEW_PIN)
        .await
        .assert_error(409, "CardCannotBeReplaced");
    let etag = desk.customer(&customer).await.headers["etag"]
        .to_str()
        .unwrap()
        .to_owned();
    desk.change_phone(&customer, PHONE, Some(&etag))
        .await
        .assert_error(409, "CustomerErased");
    app.activate(NEW_CARD, PHONE)
        .await
        .assert_error(422, "CardWasNotWaitingForActivation");
    // The number is free again: a new registration with it is a new customer.
    app.registered("4444").await;
    assert_eq!(app.count("customers").await, 2);
}

#[tokio::test]
async fn a_card_s_unsent_alcs_notice_can_be_sent_again() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    app.registered(CARD).await;
    let path = format!("/support/v1/cards/{CARD}/alcs-notice/retry");
    desk.post(&path, None)
        .await
        .assert_error(409, "NoNoticeToRetry");
    // No ALCS URL is configured here: the activation's notice is kept as unsent.
    app.activate(CARD, PHONE).await.assert_no_content();
    let card = desk.card(CARD).await;
    assert_eq!(card["AlcsNotice"]["State"], json!("unsent"));
    let reply = desk.post(&path, None).await;
    assert_eq!(reply.status, 202, "{}", reply.text);
    assert_eq!(reply.json(), json!({"NoticesQueued": 1}));
    // Queued now (with no ALCS to send to it stays so, or fails again).
    assert_ne!(
        desk.card(CARD).await["AlcsNotice"]["State"],
        json!("unsent")
    );
    let history = desk.history(&format!("cards/{CARD}")).await;
    assert_eq!(history[0]["Operation"], json!("retry_notice"));
    assert_eq!(history[0]["By"]["Name"], json!(AGENT));
    desk.post("/support/v1/cards/12345/alcs-notice/retry", None)
        .await
        .assert_error(404, "CustomerWithGivenCardNumberNotFound");
}

/// Every route, with a body where it takes one.
fn routes(customer: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, format!("/support/v1/cards/{CARD}"), None),
        (
            Method::GET,
            "/support/v1/cards?phone=602123789".to_owned(),
            None,
        ),
        (
            Method::GET,
            format!("/support/v1/customers/{customer}"),
            None,
        ),
        (
            Method::GET,
            format!("/support/v1/cards/{CARD}/history"),
            None,
        ),
        (
            Method::GET,
            format!("/support/v1/customers/{customer}/history"),
            None,
        ),
        (
            Method::POST,
            format!("/support/v1/cards/{CARD}/lock"),
            Some(json!({"Reason": "Lost"})),
        ),
        (
            Method::POST,
            format!("/support/v1/cards/{CARD}/unlock"),
            None,
        ),
        (
            Method::POST,
            format!("/support/v1/cards/{CARD}/replace"),
            Some(json!({"NewCardNumber": "77", "CardPinHMac": NEW_PIN, "Reason": "Lost"})),
        ),
        (
            Method::PATCH,
            format!("/support/v1/customers/{customer}"),
            Some(json!({"PhoneNumber": OTHER_PHONE})),
        ),
        (
            Method::POST,
            format!("/support/v1/customers/{customer}/erase"),
            None,
        ),
        (
            Method::POST,
            format!("/support/v1/cards/{CARD}/alcs-notice/retry"),
            None,
        ),
    ]
}

#[tokio::test]
async fn every_route_needs_a_token_and_changes_need_the_agent_role() {
    // Two failures per route here: above the default brake, which has its own test.
    let Some((app, desk)) =
        TestApp::spawn_desk_with(|c| c.desk.as_mut().unwrap().max_auth_failures = 100).await
    else {
        return;
    };
    let customer = app.registered(CARD).await;
    let before = app.totals().await;
    for (method, path, body) in routes(&customer) {
        let what = format!("{method} {path}");
        let none = desk
            .send_as(None, method.clone(), &path, body.as_ref(), &[])
            .await;
        none.assert_error(401, "Unauthorized");
        assert_eq!(
            none.headers["www-authenticate"], "Bearer realm=\"cps-desk\"",
            "{what}"
        );
        desk.send_as(
            Some("cps_not-a-token"),
            method.clone(),
            &path,
            body.as_ref(),
            &[],
        )
        .await
        .assert_error(401, "Unauthorized");
        let viewer = desk
            .send_as(
                Some(&desk.viewer),
                method.clone(),
                &path,
                body.as_ref(),
                &[],
            )
            .await;
        if method == Method::GET {
            assert_eq!(viewer.status, 200, "{what}: {}", viewer.text);
        } else {
            viewer.assert_error(403, "Forbidden");
        }
    }
    assert_eq!(
        app.totals().await,
        before,
        "no refused call changed anything"
    );
    // The agent may do everything (the answers are the operations' own).
    for (method, path, body) in routes(&customer) {
        let reply = desk
            .send_as(Some(&desk.agent), method.clone(), &path, body.as_ref(), &[])
            .await;
        assert!(
            ![401, 403].contains(&reply.status.as_u16()),
            "{method} {path}: {} {}",
            reply.status,
            reply.text
        );
    }
    // The desk API is not on the ALCS listener, nor ALCS's API on the desk's.
    app.send(
        Method::GET,
        &format!("{}/support/v1/cards/{CARD}", app.base),
        None,
    )
    .await
    .assert_error(404, "NotFound");
    desk.send_as(
        Some(&desk.agent),
        Method::GET,
        &format!("/alcs/loyalty/v1/loyalty-cards/{CARD}"),
        None,
        &[],
    )
    .await
    .assert_error(404, "NotFound");
}

#[tokio::test]
async fn repeated_failures_from_one_address_are_slowed_down() {
    let Some((_app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let path = format!("/support/v1/cards/{CARD}");
    // No token at all guesses nothing (a browser's `/favicon.ico`): refused, not counted.
    for _ in 0..20 {
        desk.send_as(None, Method::GET, "/favicon.ico", None, &[])
            .await
            .assert_error(401, "Unauthorized");
    }
    for _ in 0..10 {
        desk.send_as(Some("cps_guess"), Method::GET, &path, None, &[])
            .await
            .assert_error(401, "Unauthorized");
    }
    // Now even the right token waits: guessing costs time, not just a 401.
    let braked = desk
        .send_as(Some(&desk.viewer), Method::GET, &path, None, &[])
        .await;
    braked.assert_error(429, "TooManyRequests");
    let wait: u64 = braked.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn desk_errors_speak_the_callers_language() {
    let Some((_app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let path = format!("/support/v1/cards/{CARD}");
    let en = desk
        .send_as(
            None,
            Method::GET,
            &path,
            None,
            &[("accept-language", "en-US")],
        )
        .await
        .assert_error(401, "Unauthorized");
    let pl = desk
        .send_as(None, Method::GET, &path, None, &[])
        .await
        .assert_error(401, "Unauthorized");
    assert!(en.starts_with("A valid token"), "{en}");
    assert!(pl.starts_with("Wymagany"), "{pl}");
}

#[tokio::test]
async fn the_tokens_file_is_read_again_on_sighup_and_a_broken_one_is_not_taken() {
    let Some((_app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    let _alone = SIGHUP.lock().await;
    let path = format!("/support/v1/cards/{CARD}");
    let token = cps::tokens::add(&desk.tokens_file, "new.colleague", "viewer").unwrap();
    let status = |reply: Reply| reply.status.as_u16();
    assert_eq!(
        status(
            desk.send_as(Some(&token), Method::GET, &path, None, &[])
                .await
        ),
        401,
        "not before the reload"
    );
    hang_up();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = status(
            desk.send_as(Some(&token), Method::GET, &path, None, &[])
                .await,
        );
        if got == 404 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still {got} after SIGHUP"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // A file that does not parse leaves the tokens in force.
    std::fs::write(&desk.tokens_file, "garbage\n").unwrap();
    hang_up();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        status(
            desk.send_as(Some(&token), Method::GET, &path, None, &[])
                .await
        ),
        404
    );
}

#[tokio::test]
async fn a_replacement_racing_an_activation_of_the_old_card_ends_in_one_consistent_state() {
    let Some((app, desk)) = TestApp::spawn_desk().await else {
        return;
    };
    for round in 0..8u32 {
        let old = format!("71{round}");
        let new = format!("72{round}");
        let customer = app.registered(&old).await;
        // Each sent first in turn: on SQLite's single writer the first one in usually wins.
        let (activation, replacement) = if round % 2 == 0 {
            tokio::join!(app.activate(&old, PHONE), desk.replace(&old, &new, NEW_PIN))
        } else {
            let (replacement, activation) =
                tokio::join!(desk.replace(&old, &new, NEW_PIN), app.activate(&old, PHONE));
            (activation, replacement)
        };
        assert_eq!(replacement.status, 200, "{}", replacement.text);
        let old_card = desk.card(&old).await;
        let new_card = desk.card(&new).await;
        assert_eq!(old_card["Status"], json!("Locked"));
        let customer_body = desk.customer(&customer).await.json();
        match activation.status.as_u16() {
            // Activated first: the replacement took the active status along.
            204 => {
                assert_eq!(new_card["Status"], json!("Active"), "round {round}");
                assert_eq!(customer_body["Status"], json!("Active"));
                assert_eq!(old_card["Lock"]["StatusBeforeLock"], json!("Active"));
            }
            // Replaced first: the old card was locked when the activation came.
            422 => {
                assert_eq!(
                    new_card["Status"],
                    json!("WaitingForActivation"),
                    "round {round}"
                );
                assert_eq!(customer_body["Status"], json!("NotActivated"));
            }
            other => panic!(
                "round {round}: activation answered {other}: {}",
                activation.text
            ),
        }
        if app.redis.is_some() {
            let hash = app.cache_hash(&format!("customer:{customer}")).await;
            assert_eq!(hash[&format!("Card.{old}")], "Locked");
            assert_eq!(
                json!(hash[&format!("Card.{new}")]),
                new_card["Status"],
                "round {round}"
            );
        }
    }
    assert_eq!(app.count("customers").await, 8);
    if app.redis.is_some() {
        app.cache_converges(std::time::Duration::from_secs(5))
            .await
            .expect("the cache agrees with the database");
    }
}

#[test]
fn cps_support_token_add_prints_a_token_once_and_stores_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tokens");
    let run = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_cps"))
            .args(args)
            .env_remove("CPS_SUPPORT_TOKENS_FILE")
            .output()
            .expect("run cps")
    };
    let file_arg = file.to_str().unwrap();
    let out = run(&[
        "support",
        "token",
        "add",
        "anna",
        "agent",
        "--support-tokens-file",
        file_arg,
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let token = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(token.starts_with("cps_") && token.len() > 60, "{token}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(!text.contains(&token), "only the hash is stored");
    assert_eq!(
        text,
        format!("anna, agent, {}\n", cps::secret::hash_hex(&token))
    );
    let tokens = cps::tokens::Tokens::load(&file).unwrap();
    assert_eq!(tokens.authenticate(&token).unwrap().user.as_str(), "anna");
    // Usage mistakes exit 2 and change nothing.
    for args in [
        vec![
            "support",
            "token",
            "add",
            "bob",
            "admin",
            "--support-tokens-file",
            file_arg,
        ],
        vec![
            "support",
            "token",
            "add",
            "bob smith",
            "viewer",
            "--support-tokens-file",
            file_arg,
        ],
        vec![
            "support",
            "token",
            "add",
            "anna",
            "viewer",
            "--support-tokens-file",
            file_arg,
        ],
        vec!["support", "token", "add", "bob", "viewer"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), text);
}
