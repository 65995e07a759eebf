//! One-time codes by SMS (contract section 8): a step-up, a phone change proven on the new
//! number, and a password reset to the phone on record, through the SMS gateway (the plain
//! webhook and SMSAPI's format), against the project's fake receiver.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

const PASSWORD: &str = "a long and private phrase";
const TOKEN: &str = "gateway-token-123";

/// An app whose portal sends text messages to `gateway` in `format`.
async fn with_gateway(
    gateway: &FakeReceiver,
    format: cps::outbox::sms::SmsFormat,
) -> Option<(TestApp, Portal, Desk, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("sms-token");
    std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
    let url = gateway.url("/sms.do");
    let (key_dir, key) = key_file();
    let (app, desk) = TestApp::spawn_desk_with(move |c| {
        c.portal = Some(cps::http::portal::PortalSettings::at(
            "127.0.0.1:0".parse().unwrap(),
            key,
        ));
        c.sms = Some(cps::outbox::sms::SmsSettings {
            format,
            token_file: Some(token),
            timeout: Duration::from_secs(2),
            ..cps::outbox::sms::SmsSettings::at(&url)
        });
    })
    .await?;
    let portal = Portal::at(app.portal.clone().unwrap(), key_dir);
    Some((app, portal, desk, dir))
}

/// The six digits of a message's text.
fn code_in(text: &str) -> String {
    let digits: Vec<String> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|w| w.len() == 6)
        .map(str::to_owned)
        .collect();
    assert_eq!(digits.len(), 1, "one code in {text:?}");
    digits[0].clone()
}

/// The form fields of an SMSAPI request.
fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[tokio::test]
async fn a_session_is_stepped_up_with_a_code_sent_to_the_phone_on_record() {
    let gateway = FakeReceiver::start().await;
    let Some((app, portal, _desk, _dir)) =
        with_gateway(&gateway, cps::outbox::sms::SmsFormat::Webhook).await
    else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let session = portal.with_password(CARD, PASSWORD).await;
    portal
        .send(
            Method::POST,
            "/loyalty/v1/step-up/code",
            Some(&session),
            None,
        )
        .await;
    let sent = gateway.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(sent[0].method, "POST");
    assert_eq!(
        sent[0].header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    let message = sent[0].json();
    assert_eq!(message["To"], json!(PHONE));
    assert_eq!(
        sent[0].header("idempotency-key"),
        message["MessageId"].as_str()
    );
    let code = code_in(message["Text"].as_str().unwrap());
    // Another code within the minute is refused, and nothing more is sent.
    portal
        .send(
            Method::POST,
            "/loyalty/v1/step-up/code",
            Some(&session),
            None,
        )
        .await
        .assert_error(429, "TooManyAttempts");
    // A wrong code is refused as a wrong password is; the right one raises the session once.
    portal
        .step_up(&session, &json!({ "Code": "000000" }))
        .await
        .assert_error(403, "NoAuthothorization");
    portal
        .step_up(&session, &json!({ "Code": code }))
        .await
        .assert_no_content();
    assert_eq!(
        portal
            .send(
                Method::GET,
                "/loyalty/v1/customers/current/export",
                Some(&session),
                None
            )
            .await
            .status,
        200
    );
    portal
        .step_up(&session, &json!({ "Code": code }))
        .await
        .assert_error(403, "NoAuthothorization");
    assert_eq!(gateway.received().len(), 1, "one message");
    // Delivered: the row (which held the number and the code) is gone.
    assert_eq!(app.stored_mentions(&code).await, Vec::<String>::new());
}

#[tokio::test]
async fn a_phone_change_is_proven_on_the_new_number_and_applied_as_alcs_applies_it() {
    let gateway = FakeReceiver::start().await;
    let Some((app, portal, _desk, _dir)) =
        with_gateway(&gateway, cps::outbox::sms::SmsFormat::Webhook).await
    else {
        return;
    };
    let customer = app.registered_with_pin(CARD).await;
    let session = portal.with_password(CARD, PASSWORD).await;
    let change = json!({ "PhoneNumber": OTHER_PHONE });
    portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/phone",
            Some(&session),
            Some(&change),
        )
        .await
        .assert_error(403, "StepUpRequired");
    portal
        .step_up(&session, &json!({ "Password": PASSWORD }))
        .await
        .assert_no_content();
    let asked = portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/phone",
            Some(&session),
            Some(&change),
        )
        .await;
    assert_eq!(asked.status, 202, "{}", asked.text);
    let sent = gateway.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        sent[0].json()["To"],
        json!(OTHER_PHONE),
        "the code goes to the new number"
    );
    let code = code_in(sent[0].json()["Text"].as_str().unwrap());
    let wrong = portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/phone/confirm",
            Some(&session),
            Some(&json!({ "Code": "999999" })),
        )
        .await;
    assert_eq!(wrong.status, 422, "{}", wrong.text);
    assert_eq!(
        app.get(CARD).await.json()["Customer"]["PhoneNumber"],
        json!(PHONE)
    );
    portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/phone/confirm",
            Some(&session),
            Some(&json!({ "Code": code })),
        )
        .await
        .assert_no_content();
    assert_eq!(
        app.get(CARD).await.json()["Customer"]["PhoneNumber"],
        json!(OTHER_PHONE)
    );
    let trail = app.audit(CARD).await;
    assert!(
        trail.iter().any(|(op, _, _)| op == "change_phone"),
        "{trail:?}"
    );
    if app.redis.is_some() {
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert_eq!(hash["PhoneNumber"], OTHER_PHONE);
    }
}

#[tokio::test]
async fn a_password_is_reset_with_a_code_in_smsapis_format() {
    let gateway = FakeReceiver::start().await;
    let Some((app, portal, _desk, _dir)) =
        with_gateway(&gateway, cps::outbox::sms::SmsFormat::Smsapi).await
    else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let old = portal.with_password(CARD, PASSWORD).await;
    // An unknown card is answered the same, and nothing is sent.
    for card in ["81000000000001", CARD] {
        let reply = portal
            .send(
                Method::POST,
                "/loyalty/v1/password-reset",
                None,
                Some(&json!({ "CardNumber": card })),
            )
            .await;
        assert_eq!(reply.status, 202, "{}", reply.text);
        assert!(reply.text.is_empty());
    }
    let sent = gateway.wait_for(1, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        gateway.received().len(),
        1,
        "one message: for the card that has a customer"
    );
    assert_eq!(
        sent[0].header("authorization"),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert_eq!(sent[0].path, "/sms.do");
    let fields = form(&sent[0].body);
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(field("to").as_deref(), Some(PHONE.trim_start_matches('+')));
    assert_eq!(field("format").as_deref(), Some("json"));
    assert_eq!(field("check_idx").as_deref(), Some("1"));
    assert_eq!(field("idx").map(|i| i.len()), Some(32));
    let code = code_in(&field("message").unwrap());
    let new = "a brand new private phrase";
    let confirm =
        |code: &str, card: &str| json!({ "CardNumber": card, "Code": code, "NewPassword": new });
    portal
        .send(
            Method::POST,
            "/loyalty/v1/password-reset/confirm",
            None,
            Some(&confirm("123456", CARD)),
        )
        .await
        .assert_error(403, "NoAuthothorization");
    portal
        .send(
            Method::POST,
            "/loyalty/v1/password-reset/confirm",
            None,
            Some(&confirm(&code, "81000000000001")),
        )
        .await
        .assert_error(403, "NoAuthothorization");
    portal
        .send(
            Method::POST,
            "/loyalty/v1/password-reset/confirm",
            None,
            Some(&confirm(&code, CARD)),
        )
        .await
        .assert_no_content();
    portal
        .sessions(&old)
        .await
        .assert_error(401, "SessionExpired");
    portal
        .login(CARD, PASSWORD)
        .await
        .assert_error(403, "NoAuthothorization");
    assert_eq!(portal.login(CARD, new).await.status, 200);
}

#[tokio::test]
async fn a_reset_by_sms_reopens_a_locked_sign_in() {
    use cps::store::PortalStore as _;
    let gateway = FakeReceiver::start().await;
    let Some((app, portal, _desk, _dir)) =
        with_gateway(&gateway, cps::outbox::sms::SmsFormat::Webhook).await
    else {
        return;
    };
    app.registered_with_pin(CARD).await;
    portal.with_password(CARD, PASSWORD).await;
    let store = app.store().await;
    for _ in 0..10 {
        store
            .record_sign_in_failure(CARD, chrono::Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap();
    }
    portal
        .login(CARD, PASSWORD)
        .await
        .assert_error(429, "TooManyAttempts");
    portal
        .send(
            Method::POST,
            "/loyalty/v1/password-reset",
            None,
            Some(&json!({ "CardNumber": CARD })),
        )
        .await;
    let sent = gateway.wait_for(1, Duration::from_secs(10)).await;
    let code = code_in(sent[0].json()["Text"].as_str().unwrap());
    let new = "a brand new private phrase";
    portal
        .send(
            Method::POST,
            "/loyalty/v1/password-reset/confirm",
            None,
            Some(&json!({ "CardNumber": CARD, "Code": code, "NewPassword": new })),
        )
        .await
        .assert_no_content();
    assert_eq!(portal.login(CARD, new).await.status, 200);
}

#[tokio::test]
async fn without_a_gateway_codes_are_unavailable_and_the_rest_works() {
    let Some((app, portal)) = TestApp::spawn_portal().await else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let session = portal.with_password(CARD, PASSWORD).await;
    portal
        .send(
            Method::POST,
            "/loyalty/v1/step-up/code",
            Some(&session),
            None,
        )
        .await
        .assert_error(503, "SmsUnavailable");
    portal
        .send(
            Method::POST,
            "/loyalty/v1/password-reset",
            None,
            Some(&json!({ "CardNumber": CARD })),
        )
        .await
        .assert_error(503, "SmsUnavailable");
    portal
        .step_up(&session, &json!({ "Password": PASSWORD }))
        .await
        .assert_no_content();
    portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/phone",
            Some(&session),
            Some(&json!({ "PhoneNumber": OTHER_PHONE })),
        )
        .await
        .assert_error(503, "SmsUnavailable");
    assert_eq!(portal.sessions(&session).await.status, 200);
}

/// A message the gateway has not taken yet holds the number and the code: the erasure
/// removes it with the rest.
#[tokio::test]
async fn a_queued_message_goes_with_the_erasure() {
    let gateway = FakeReceiver::start().await;
    // The gateway refuses for now: the message stays queued.
    gateway.answer_next(&[503; 50]);
    let Some((app, portal, desk, _dir)) =
        with_gateway(&gateway, cps::outbox::sms::SmsFormat::Webhook).await
    else {
        return;
    };
    let customer = app.registered_with_pin(CARD).await;
    let session = portal.with_password(CARD, PASSWORD).await;
    portal
        .send(
            Method::POST,
            "/loyalty/v1/step-up/code",
            Some(&session),
            None,
        )
        .await;
    let sent = gateway.wait_for(1, Duration::from_secs(10)).await;
    let code = code_in(sent[0].json()["Text"].as_str().unwrap());
    assert!(
        !app.stored_mentions(&code).await.is_empty(),
        "queued with its code"
    );
    desk.erase(&customer).await.assert_no_content();
    assert_eq!(app.stored_mentions(&code).await, Vec::<String>::new());
    assert_eq!(app.stored_mentions(&PHONE[3..]).await, Vec::<String>::new());
    let _: Value = json!(null);
}

/// Guessing reset codes counts against the card: a locked sign-in may be reset by SMS, but
/// only until as many failures again; then the desk must reopen it.
#[tokio::test]
async fn reset_codes_cannot_be_guessed_past_the_cards_limit() {
    use cps::store::PortalStore as _;
    let gateway = FakeReceiver::start().await;
    let Some((app, portal, _desk, _dir)) =
        with_gateway(&gateway, cps::outbox::sms::SmsFormat::Webhook).await
    else {
        return;
    };
    app.registered_with_pin(CARD).await;
    let store = app.store().await;
    for _ in 0..10 {
        store
            .record_sign_in_failure(CARD, chrono::Utc::now() - chrono::Duration::hours(1))
            .await
            .unwrap();
    }
    let wrong = json!({ "CardNumber": CARD, "Code": "000000", "NewPassword": "a brand new private phrase" });
    for i in 0..10 {
        let reply = portal
            .send(
                Method::POST,
                "/loyalty/v1/password-reset/confirm",
                None,
                Some(&wrong),
            )
            .await;
        assert_eq!(reply.status, 403, "try {i}: {}", reply.text);
    }
    portal
        .send(
            Method::POST,
            "/loyalty/v1/password-reset/confirm",
            None,
            Some(&wrong),
        )
        .await
        .assert_error(429, "TooManyAttempts");
    let asked = portal
        .send(
            Method::POST,
            "/loyalty/v1/password-reset",
            None,
            Some(&json!({ "CardNumber": CARD })),
        )
        .await;
    asked.assert_error(429, "TooManyAttempts");
}
