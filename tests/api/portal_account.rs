//! The customer's own data through the portal API (contract section 8): the profile with its
//! version, consents with their proof, the lost-card lock, the history, the download and the
//! erasure.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

const PASSWORD: &str = "a long and private phrase";

/// The texts the tests publish: two purposes, one in two versions.
const TEXTS: &str = r#"[
  {"Purpose": "Marketing", "Version": "1", "Language": "pl_PL", "Text": "Zgadzam się na oferty."},
  {"Purpose": "Marketing", "Version": "1", "Language": "en_US", "Text": "I agree to offers."},
  {"Purpose": "Marketing", "Version": "2", "Language": "pl_PL", "Text": "Zgadzam się na oferty SMS."},
  {"Purpose": "Profiling", "Version": "1", "Language": "pl_PL", "Text": "Zgadzam się na profilowanie."}
]"#;

/// An app with the portal, the desk, the test's consent texts and two mandatory properties;
/// a customer registered with the PIN and signed in with a password: their session.
async fn signed_in(
    adjust: impl FnOnce(&mut cps::config::Config) + Send + 'static,
) -> Option<(TestApp, Portal, Desk, String, String, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let texts = dir.path().join("consents.json");
    std::fs::write(&texts, TEXTS).unwrap();
    let (key_dir, key) = key_file();
    let (app, desk) = TestApp::spawn_desk_with(move |c| {
        let mut portal = cps::http::portal::PortalSettings::at("127.0.0.1:0".parse().unwrap(), key);
        portal.consent_texts_file = Some(texts);
        portal.mandatory = cps::domain::MandatoryFields::parse("FirstName,Email").unwrap();
        c.portal = Some(portal);
        adjust(c);
    })
    .await?;
    let portal = Portal::at(app.portal.clone().unwrap(), key_dir);
    let customer = app.registered_with_pin(CARD).await;
    let session = portal.with_password(CARD, PASSWORD).await;
    Some((app, portal, desk, customer, session, dir))
}

async fn profile(portal: &Portal, session: &str) -> Reply {
    portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current",
            Some(session),
            None,
        )
        .await
}

async fn patch(portal: &Portal, session: &str, if_match: Option<&str>, body: &Value) -> Reply {
    let headers: Vec<(&str, &str)> = if_match.map(|v| ("if-match", v)).into_iter().collect();
    portal
        .send_with(
            &reqwest::Client::new(),
            Method::PATCH,
            "/loyalty/v1/customers/current",
            Some(session),
            Some(body),
            &headers,
        )
        .await
}

fn etag(reply: &Reply) -> String {
    reply.headers["etag"].to_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_profile_is_completed_under_its_version() {
    let Some((app, portal, _desk, customer, session, _dir)) = signed_in(|_| {}).await else {
        return;
    };
    let first = profile(&portal, &session).await;
    assert_eq!(first.status, 200, "{}", first.text);
    let body = first.json();
    assert_eq!(body["CustomerId"], json!(customer));
    assert_eq!(body["FirstName"], Value::Null);
    assert_eq!(body["PhoneNumber"], json!(PHONE));
    assert_eq!(body["LoyaltyCard"]["CardNumber"], json!(CARD));
    assert_eq!(
        body["LoyaltyCard"]["Wallets"][0]["Id"],
        json!("Strickers2016")
    );
    assert_eq!(body["MissingMandatoryData"], json!(["FirstName", "Email"]));
    assert!(!first.text.contains("CardPinHMac"));
    let tag = etag(&first);
    // Unchanged since: 304.
    let unchanged = portal
        .send_with(
            &reqwest::Client::new(),
            Method::GET,
            "/loyalty/v1/customers/current",
            Some(&session),
            None,
            &[("if-none-match", &tag)],
        )
        .await;
    assert_eq!(unchanged.status, 304);

    // Without If-Match: 428.
    let change =
        json!({ "FirstName": "Zofia", "Email": "zofia@example.pl", "PreferredLanguage": "en" });
    patch(&portal, &session, None, &change)
        .await
        .assert_error(428, "PreconditionRequired");
    let done = patch(&portal, &session, Some(&tag), &change).await;
    assert_eq!(done.status, 200, "{}", done.text);
    let body = done.json();
    assert_eq!(body["FirstName"], json!("Zofia"));
    assert_eq!(body["PreferredLanguage"], json!("en_US"));
    assert_eq!(body["MissingMandatoryData"], json!([]));
    assert_ne!(etag(&done), tag);
    // Stale: 412, and nothing changed.
    patch(
        &portal,
        &session,
        Some(&tag),
        &json!({ "FirstName": "Zenon" }),
    )
    .await
    .assert_error(412, "CustomerModifiedByAnotherUserOrProcess");
    assert_eq!(
        profile(&portal, &session).await.json()["FirstName"],
        json!("Zofia")
    );
    // The cache shows the language, never the names.
    if app.redis.is_some() {
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert_eq!(hash["PreferredLanguage"], "en_US");
        assert!(
            !hash
                .values()
                .any(|v| v.contains("Zofia") || v.contains("zofia@")),
            "{hash:?}"
        );
    }
    // The trail names the properties, never their values.
    let trail = app.audit(CARD).await;
    let entry = trail
        .iter()
        .find(|(op, _, _)| op == "profile_change")
        .unwrap();
    assert_eq!(
        entry.2.as_ref().unwrap()["Fields"],
        json!(["FirstName", "Email", "PreferredLanguage"])
    );
    assert!(!format!("{trail:?}").contains("Zofia"));
}

#[tokio::test]
async fn refused_profile_values_are_named_and_nothing_is_stored() {
    let Some((_app, portal, _desk, _customer, session, _dir)) = signed_in(|_| {}).await else {
        return;
    };
    let tag = etag(&profile(&portal, &session).await);
    let unknown = patch(
        &portal,
        &session,
        Some(&tag),
        &json!({ "FirstName": "Ola", "Shoe": 42 }),
    )
    .await;
    unknown.assert_error(400, "NotSupportedProperties");
    let invalid = patch(
        &portal,
        &session,
        Some(&tag),
        &json!({ "Email": "not-an-address", "DateOfBirth": "2999-01-01", "PhoneNumber": "+48602123780", "FirstName": null, "City": "Kraków" }),
    )
    .await;
    assert_eq!(invalid.status, 422, "{}", invalid.text);
    let body = invalid.json();
    assert_eq!(body["MessageCode"], json!("ValidationErrorCodes"));
    let mut codes: Vec<(String, String)> = body["ValidationErrorCodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["Property"].as_str().unwrap().to_owned(),
                v["Error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    codes.sort();
    assert_eq!(
        codes,
        [
            ("DateOfBirth", "Invalid"),
            ("Email", "Invalid"),
            ("FirstName", "Missing"),
            ("PhoneNumber", "ReadOnly"),
        ]
        .map(|(p, e)| (p.to_owned(), e.to_owned()))
    );
    assert!(
        !invalid.text.contains("not-an-address"),
        "values are not echoed"
    );
    let now = profile(&portal, &session).await;
    assert_eq!(etag(&now), tag, "nothing was stored");
    assert_eq!(now.json()["City"], Value::Null);
}

#[tokio::test]
async fn a_consent_is_given_and_withdrawn_in_one_call_each_with_its_proof() {
    let Some((app, portal, desk, customer, session, _dir)) = signed_in(|_| {}).await else {
        return;
    };
    let texts = portal
        .send(Method::GET, "/loyalty/v1/consent-texts", None, None)
        .await;
    assert_eq!(texts.status, 200, "public, no session");
    let texts = texts.json();
    let shown = texts
        .as_array()
        .unwrap()
        .iter()
        .find(|t| {
            t["Purpose"] == json!("Marketing")
                && t["Version"] == json!("1")
                && t["Language"] == json!("en_US")
        })
        .unwrap()
        .clone();
    let give = portal
        .send_with(
            &reqwest::Client::new(),
            Method::PUT,
            "/loyalty/v1/customers/current/consents/Marketing",
            Some(&session),
            Some(&json!({ "TextVersion": "1" })),
            &[
                ("accept-language", "en-US"),
                ("x-request-id", "give-marketing-1"),
            ],
        )
        .await;
    give.assert_no_content();
    // Given again on the same text: nothing new to prove.
    portal
        .give(&session, "Marketing", "1")
        .await
        .assert_no_content();
    if app.redis.is_some() {
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert_eq!(
            hash.get("Consent.Marketing").map(String::as_str),
            Some("1"),
            "{hash:?}"
        );
    }
    // The withdrawal: one call, no body, nothing asked.
    portal
        .send(
            Method::DELETE,
            "/loyalty/v1/customers/current/consents/Marketing",
            Some(&session),
            None,
        )
        .await
        .assert_no_content();
    let state = portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current/consents",
            Some(&session),
            None,
        )
        .await
        .json();
    let marketing = state["Consents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["Purpose"] == json!("Marketing"))
        .unwrap();
    assert_eq!(marketing["Given"], json!(false));
    let history = state["History"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{state}");
    assert_eq!(history[0]["Action"], json!("Given"));
    assert_eq!(history[0]["TextVersion"], json!("1"));
    assert_eq!(history[0]["TextSha256"], shown["Sha256"]);
    assert_eq!(history[0]["Language"], json!("en_US"));
    assert_eq!(history[0]["Channel"], json!("api"));
    assert_eq!(history[0]["By"], json!("Customer"));
    assert_eq!(history[0]["RequestId"], json!("give-marketing-1"));
    assert_eq!(history[1]["Action"], json!("Withdrawn"));
    assert_eq!(
        history[1]["TextVersion"],
        json!("1"),
        "the text it had been given on"
    );
    if app.redis.is_some() {
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert!(!hash.contains_key("Consent.Marketing"), "{hash:?}");
    }
    // The event rows as stored: purpose, action, version, hash, channel, actor.
    let rows: Vec<(String, String, String, Option<String>, String)> = app
        .store()
        .await
        .read(
            &cps::store::sql::sql(format!(
                "select purpose, action, text_version, text_sha256, channel || ' ' || actor
             from consent_events where customer_id = '{customer}' order by id"
            )),
            "read the consent events",
        )
        .await
        .unwrap();
    assert_eq!(rows[0].3.as_deref(), shown["Sha256"].as_str());
    assert_eq!(rows[1].3, None, "a withdrawal shows no text");
    assert_eq!(rows[0].4, "api customer:self");
    // An unknown version is refused, an unknown purpose is not found.
    let stale = portal.give(&session, "Profiling", "9").await;
    assert_eq!(stale.status, 422, "{}", stale.text);
    portal
        .give(&session, "Lottery", "1")
        .await
        .assert_error(404, "NotFound");
    // The desk's view of the customer shows the consents and their history.
    let seen = desk.customer(&customer).await.json();
    assert_eq!(
        seen["Consents"]["History"].as_array().unwrap().len(),
        2,
        "{seen}"
    );
}

#[tokio::test]
async fn the_objection_overrides_every_consent() {
    let Some((app, portal, _desk, customer, session, _dir)) = signed_in(|_| {}).await else {
        return;
    };
    for purpose in ["Marketing", "Profiling"] {
        portal
            .send(
                Method::PUT,
                &format!("/loyalty/v1/customers/current/consents/{purpose}"),
                Some(&session),
                Some(&json!({ "TextVersion": "1" })),
            )
            .await
            .assert_no_content();
    }
    portal
        .send(
            Method::PUT,
            "/loyalty/v1/customers/current/objection",
            Some(&session),
            None,
        )
        .await
        .assert_no_content();
    let state = portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current/consents",
            Some(&session),
            None,
        )
        .await
        .json();
    assert_eq!(state["MarketingObjection"], json!(true));
    for c in state["Consents"].as_array().unwrap() {
        assert_eq!(c["Given"], json!(true));
        assert_eq!(c["InForce"], json!(false), "{c}");
    }
    if app.redis.is_some() {
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert_eq!(hash["MarketingObjection"], "1");
        assert!(!hash.keys().any(|k| k.starts_with("Consent.")), "{hash:?}");
    }
    portal
        .send(
            Method::DELETE,
            "/loyalty/v1/customers/current/objection",
            Some(&session),
            None,
        )
        .await
        .assert_no_content();
    if app.redis.is_some() {
        let hash = app.cache_hash(&format!("customer:{customer}")).await;
        assert!(!hash.contains_key("MarketingObjection"));
        assert_eq!(hash["Consent.Profiling"], "1");
        app.cache_converges(std::time::Duration::from_secs(5))
            .await
            .expect("a rebuild would write the same");
    }
}

#[tokio::test]
async fn sensitive_operations_need_a_step_up() {
    let Some((_app, portal, _desk, _customer, session, _dir)) = signed_in(|_| {}).await else {
        return;
    };
    portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current/export",
            Some(&session),
            None,
        )
        .await
        .assert_error(403, "StepUpRequired");
    portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/erase",
            Some(&session),
            Some(&json!({ "Confirm": true })),
        )
        .await
        .assert_error(403, "StepUpRequired");
    portal
        .step_up(&session, &json!({ "Password": "wrong one" }))
        .await
        .assert_error(403, "NoAuthothorization");
    portal
        .step_up(&session, &json!({ "Password": PASSWORD }))
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
}

/// The download is valid against the schema the project publishes, holds what was given, and
/// nothing of another customer.
#[tokio::test]
async fn the_download_holds_every_datum_and_matches_its_schema() {
    let Some((app, portal, _desk, _customer, session, _dir)) = signed_in(|_| {}).await else {
        return;
    };
    // Another customer, with their own data.
    let other = "88000000000001";
    let other_id = app.registered_with_pin(other).await;
    app.change_phone(other, OTHER_PHONE)
        .await
        .assert_no_content();
    let tag = etag(&profile(&portal, &session).await);
    patch(
        &portal,
        &session,
        Some(&tag),
        &json!({ "FirstName": "Zofia", "Email": "zofia@example.pl", "City": "Łódź" }),
    )
    .await;
    portal
        .give(&session, "Marketing", "2")
        .await
        .assert_no_content();
    portal
        .step_up(&session, &json!({ "Password": PASSWORD }))
        .await
        .assert_no_content();
    let reply = portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current/export",
            Some(&session),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert!(
        reply.headers["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    let document = reply.json();
    let schema: Value =
        serde_json::from_str(include_str!("../../docs/portal-export.schema.json")).unwrap();
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler
        .add_resource("https://cps.invalid/schemas/portal-export/1", schema)
        .unwrap();
    let index = compiler
        .compile("https://cps.invalid/schemas/portal-export/1", &mut schemas)
        .expect("the schema compiles");
    if let Err(e) = schemas.validate(&document, index) {
        panic!("the download is not valid against its schema: {e:#}\n{document:#}");
    }
    assert_eq!(document["Customer"]["Profile"]["City"], json!("Łódź"));
    assert_eq!(document["Customer"]["PhoneNumber"], json!(PHONE));
    assert_eq!(document["Cards"][0]["CardNumber"], json!(CARD));
    assert_eq!(
        document["Consents"]["History"][0]["TextVersion"],
        json!("2")
    );
    assert!(!document["Sessions"].as_array().unwrap().is_empty());
    let operations: Vec<&str> = document["History"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["Operation"].as_str().unwrap())
        .collect();
    for op in [
        "register",
        "set_password",
        "profile_change",
        "consent_change",
    ] {
        assert!(operations.contains(&op), "{op} in {operations:?}");
    }
    let till = document["History"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["Operation"] == json!("register"))
        .unwrap();
    assert_eq!(
        till["By"],
        json!({ "Kind": "Till", "SiteId": "2345", "PosNumber": "5" })
    );
    assert!(document["Processing"]["Rights"].as_array().unwrap().len() > 3);
    let text = document.to_string();
    for foreign in [other, other_id.as_str(), &OTHER_PHONE[3..]] {
        assert!(
            !text.contains(foreign),
            "another customer's {foreign} in the download"
        );
    }
    assert!(!text.contains("CardPinHMac") && !text.contains(&pin_hmac(CARD, CARD_PIN)));
}

#[tokio::test]
async fn a_lost_card_is_locked_by_its_customer_and_the_history_says_who() {
    let Some((app, portal, _desk, _customer, session, _dir)) = signed_in(|_| {}).await else {
        return;
    };
    portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/card/lock",
            Some(&session),
            None,
        )
        .await
        .assert_no_content();
    assert_eq!(app.get(CARD).await.json()["Status"], json!("Locked"));
    // The lock ended every session, this one too.
    profile(&portal, &session)
        .await
        .assert_error(401, "SessionExpired");
    // The lock with a reason (the desk's operation), made by the customer.
    let history = app
        .store()
        .await
        .read::<(String, Option<String>)>(
            &cps::store::sql::sql(format!(
                "select operation, actor from audit_log where card_number = '{CARD}' order by id desc"
            )),
            "read the trail",
        )
        .await
        .unwrap();
    assert_eq!(
        history[0],
        ("desk_lock".to_owned(), Some("customer:self".to_owned()))
    );
}

#[tokio::test]
async fn the_history_shows_the_till_the_customer_and_the_desk() {
    let Some((app, portal, desk, customer, session, _dir)) = signed_in(|_| {}).await else {
        return;
    };
    desk.change_phone(&customer, OTHER_PHONE, Some("*"))
        .await
        .assert_no_content();
    let tag = etag(&profile(&portal, &session).await);
    patch(&portal, &session, Some(&tag), &json!({ "City": "Gdańsk" })).await;
    let page = portal
        .send(
            Method::GET,
            "/loyalty/v1/customers/current/history?limit=2",
            Some(&session),
            None,
        )
        .await
        .json();
    let entries = page["Entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["By"], json!({ "Kind": "Customer" }));
    assert_eq!(
        entries[1]["By"],
        json!({ "Kind": "Desk" }),
        "staff by role, not by name"
    );
    let next = page["NextCursor"].as_str().unwrap();
    let rest = portal
        .send(
            Method::GET,
            &format!("/loyalty/v1/customers/current/history?cursor={next}"),
            Some(&session),
            None,
        )
        .await
        .json();
    assert!(
        rest["Entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["By"]["Kind"] == json!("Till"))
    );
    let _ = app;
}

/// Erasure through the portal is the desk's erasure: with Redis down, nothing personal is left
/// in any table or queued row, the sessions end, and sign-in is refused.
#[tokio::test]
async fn erasure_with_redis_down_leaves_nothing_personal() {
    let closed = free_port();
    let Some((app, portal, _desk, customer, session, _dir)) = signed_in(move |c| {
        c.cache = Some(CacheSettings {
            timeout: std::time::Duration::from_millis(200),
            ..cache_at(&format!("redis://127.0.0.1:{closed}"), "portal-erasure:")
        });
    })
    .await
    else {
        return;
    };
    let tag = etag(&profile(&portal, &session).await);
    patch(
        &portal,
        &session,
        Some(&tag),
        &json!({ "FirstName": "Bożydar", "LastName": "Wiśniewski", "Email": "bozydar@example.pl",
                 "Street": "Długa", "HouseNumber": "17", "PostalCode": "80-831", "City": "Gdańsk",
                 "DateOfBirth": "1984-05-06", "PreferredStore": "Gdansk-Dluga" }),
    )
    .await;
    portal
        .give(&session, "Marketing", "1")
        .await
        .assert_no_content();
    portal
        .send(
            Method::PUT,
            "/loyalty/v1/customers/current/objection",
            Some(&session),
            None,
        )
        .await
        .assert_no_content();
    let personal = [
        "Bożydar",
        "Wiśniewski",
        "bozydar@",
        "Długa",
        "80-831",
        "1984-05-06",
        "Gdansk-Dluga",
        &PHONE[3..],
    ];
    assert!(
        !app.stored_mentions("Bożydar").await.is_empty(),
        "stored before"
    );
    portal
        .step_up(&session, &json!({ "Password": PASSWORD }))
        .await
        .assert_no_content();
    // Not without the confirmation.
    let unconfirmed = portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/erase",
            Some(&session),
            Some(&json!({})),
        )
        .await;
    assert_eq!(unconfirmed.status, 422, "{}", unconfirmed.text);
    let receipt = portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/erase",
            Some(&session),
            Some(&json!({ "Confirm": true })),
        )
        .await;
    assert_eq!(receipt.status, 200, "{}", receipt.text);
    let receipt = receipt.json();
    assert_eq!(receipt["ReceiptId"].as_str().unwrap().len(), 32);
    assert!(receipt["ErasedAt"].is_string());
    assert_eq!(
        receipt["ConsentEventsRemoved"],
        json!({ "Marketing": 1, "MarketingObjection": 1 })
    );
    for datum in personal {
        assert_eq!(
            app.stored_mentions(datum).await,
            Vec::<String>::new(),
            "{datum}"
        );
    }
    let left: Vec<(i64,)> = app
        .store()
        .await
        .read(
            &cps::store::sql::sql(format!(
                "select (select count(*) from consent_events where customer_id = '{customer}')
                  + (select count(*) from web_credentials where customer_id = '{customer}')
                  + (select count(*) from sessions where holder = '{customer}')"
            )),
            "count what is left",
        )
        .await
        .unwrap();
    assert_eq!(
        left[0].0, 0,
        "no consent event, credential or session is left"
    );
    profile(&portal, &session)
        .await
        .assert_error(401, "SessionExpired");
    portal
        .login(CARD, PASSWORD)
        .await
        .assert_error(403, "NoAuthothorization");
    portal
        .login(CARD, CARD_PIN)
        .await
        .assert_error(403, "NoAuthothorization");
}

/// After the customer's own erasure the tills' cache holds none of their choices and no
/// number, and agrees with the database.
#[tokio::test]
async fn erasure_rewrites_the_tills_cache_without_the_customers_choices() {
    let Some((app, portal, _desk, customer, session, _dir)) = signed_in(|_| {}).await else {
        return;
    };
    let tag = etag(&profile(&portal, &session).await);
    patch(
        &portal,
        &session,
        Some(&tag),
        &json!({ "PreferredLanguage": "en_US" }),
    )
    .await;
    portal
        .give(&session, "Marketing", "1")
        .await
        .assert_no_content();
    let key = format!("customer:{customer}");
    if app.redis.is_some() {
        let hash = app.cache_hash(&key).await;
        assert_eq!(hash["PreferredLanguage"], "en_US");
        assert_eq!(hash["Consent.Marketing"], "1");
    }
    portal
        .step_up(&session, &json!({ "Password": PASSWORD }))
        .await
        .assert_no_content();
    let erased = portal
        .send(
            Method::POST,
            "/loyalty/v1/customers/current/erase",
            Some(&session),
            Some(&json!({ "Confirm": true })),
        )
        .await;
    assert_eq!(erased.status, 200, "{}", erased.text);
    if app.redis.is_some() {
        let hash = app.cache_hash(&key).await;
        for field in ["PreferredLanguage", "Consent.Marketing", "PhoneNumber"] {
            assert!(!hash.contains_key(field), "{field} in {hash:?}");
        }
        app.cache_converges(std::time::Duration::from_secs(5))
            .await
            .expect("the cache agrees with the database");
        let cached = serde_json::to_string(&app.cache_snapshot().await).unwrap();
        assert!(!cached.contains(&PHONE[3..]), "{cached}");
    }
}
