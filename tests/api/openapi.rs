//! The OpenAPI document: served, made from the router itself, and its examples accepted.

use reqwest::Method;
use serde_json::{Value, json};

use super::support::*;

async fn document(app: &TestApp) -> Value {
    let r = app
        .send(Method::GET, &format!("{}/openapi.json", app.base), None)
        .await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    r.json()
}

#[tokio::test]
async fn the_document_lists_every_route_the_router_serves_and_no_other() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(
        doc,
        serde_json::to_value(cps::http::openapi()).unwrap(),
        "the served document is the one `cps openapi` writes"
    );
    let paths = doc["paths"].as_object().expect("paths");
    let methods = ["GET", "PUT", "PATCH", "POST", "DELETE"];
    for (path, operations) in paths {
        let url = format!("{}{}", app.base, path.replace("{card_number}", CARD));
        for method in methods {
            let documented = operations.get(method.to_lowercase()).is_some();
            let m = Method::from_bytes(method.as_bytes()).unwrap();
            // An empty JSON object: enough to reach the handler, never enough to change data.
            let r = app.send(m, &url, Some(&serde_json::json!({}))).await;
            let code = r.json()["MessageCode"].clone();
            if documented {
                assert_ne!(
                    code, "MethodNotAllowed",
                    "{method} {path} is documented but not served"
                );
                assert_ne!(
                    code, "NotFound",
                    "{method} {path} is documented but not served"
                );
            } else {
                assert_eq!(
                    r.status.as_u16(),
                    405,
                    "{method} {path} is served but not documented: {}",
                    r.text
                );
            }
        }
    }
    // The router has no route beyond the document's (its routes are made from it); these
    // near misses fall through to the envelope's 404.
    for path in [
        "/metrics",
        "/openapi.yaml",
        "/alcs/loyalty/v1/loyalty-cards",
        "/health",
    ] {
        app.send(Method::GET, &format!("{}{path}", app.base), None)
            .await
            .assert_error(404, "NotFound");
    }
    // Every operation documents its error envelope and the statuses every request may get.
    for (path, operations) in paths {
        for (method, operation) in operations.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            if path.starts_with("/alcs/") {
                for status in ["400", "406", "500", "503"] {
                    assert!(responses.contains_key(status), "{method} {path}: {status}");
                }
            }
        }
    }
}

#[tokio::test]
async fn the_documented_examples_are_accepted() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let registration = schemas["RegistrationRequest"]["example"].clone();
    let card = registration["LoyaltyCard"]["CardNumber"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app.register(&card, &registration).await;
    assert_eq!(r.status.as_u16(), 200, "{}", r.text);
    assert!(r.json()["CustomerId"].is_string());
    let phone = schemas["PhoneRequest"]["example"].clone();
    let r = app
        .send(
            Method::POST,
            &format!("{}/activate", app.card_url(&card)),
            Some(&phone),
        )
        .await;
    r.assert_no_content();
    let r = app.get(&card).await;
    assert_eq!(r.status.as_u16(), 200);
    // The card read back has the documented shape's fields.
    let card_schema = schemas["CardBody"]["properties"].as_object().unwrap();
    for field in card_schema.keys() {
        assert!(r.json().get(field).is_some(), "{field} in {}", r.text);
    }
}

/// The request constraints the document states are the parser's: at each stated limit a
/// registration is accepted, one past it refused (`InvalidRequest`).
#[tokio::test]
async fn the_documented_request_limits_are_the_parsers_limits() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let card = &schemas["LoyaltyCardRequest"]["properties"];
    let wallet = &schemas["WalletRequest"]["properties"];
    let number = |v: &Value| v.as_u64().expect("a number") as usize;
    let max_wallets = number(&card["Wallets"]["maxItems"]);
    let max_id = number(&wallet["Id"]["maxLength"]);
    let max_pin = number(&card["CardPinHMac"]["maxLength"]);
    assert_eq!(
        wallet["Id"]["pattern"],
        format!("^[A-Za-z0-9_-]{{1,{max_id}}}$")
    );
    let card_digits: usize = card["CardNumber"]["pattern"]
        .as_str()
        .unwrap()
        .trim_start_matches("^[0-9]{1,")
        .trim_end_matches("}$")
        .parse()
        .unwrap();
    let balance = wallet["Balance"]["description"].as_str().unwrap();
    let digits: usize = balance
        .split("at most ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no digit count in {balance:?}"));
    assert!(wallet["Balance"].get("format").is_none(), "not a double");

    let body = |wallets: Vec<Value>, pin: String| {
        let b = with(
            registration(CARD),
            "LoyaltyCard.Wallets",
            Some(json!(wallets)),
        );
        with(b, "LoyaltyCard.CardPinHMac", Some(json!(pin)))
    };
    let wallet_of = |id: String, balance: &str| {
        serde_json::from_str::<Value>(&format!(r#"{{"Id": "{id}", "Balance": {balance}}}"#))
            .unwrap()
    };
    let register = |card: String, body: Value| {
        let body = with(body, "LoyaltyCard.CardNumber", Some(json!(card)));
        let app = &app;
        async move { app.register(&card, &body).await }
    };
    let many = |n: usize| (0..n).map(|i| wallet_of(format!("w{i}"), "1")).collect();
    let pin = |n: usize| "p".repeat(n);
    let digits_of = |n: usize| "7".repeat(n);
    let id = |n: usize| vec![wallet_of("i".repeat(n), "1")];
    let balance_of = |n: usize| vec![wallet_of("b".into(), &digits_of(n))];
    // (what, card, body, accepted): at each limit, and one past it.
    let cases = [
        ("wallets", "1001", body(many(max_wallets), pin(1)), true),
        (
            "wallets",
            "1002",
            body(many(max_wallets + 1), pin(1)),
            false,
        ),
        ("wallet id", "1003", body(id(max_id), pin(1)), true),
        ("wallet id", "1004", body(id(max_id + 1), pin(1)), false),
        (
            "id pattern",
            "1005",
            body(vec![wallet_of("a.b".into(), "1")], pin(1)),
            false,
        ),
        ("PIN HMAC", "1006", body(id(1), pin(max_pin)), true),
        ("PIN HMAC", "1007", body(id(1), pin(max_pin + 1)), false),
        ("digits", "1008", body(balance_of(digits), pin(1)), true),
        (
            "digits",
            "1009",
            body(balance_of(digits + 1), pin(1)),
            false,
        ),
    ];
    for (what, card, body, accepted) in cases {
        let reply = register(card.to_owned(), body).await;
        if accepted {
            assert_eq!(reply.status.as_u16(), 200, "{what}: {}", reply.text);
        } else {
            assert_eq!(reply.status.as_u16(), 400, "{what}: {}", reply.text);
            assert_eq!(reply.json()["MessageCode"], "InvalidRequest", "{what}");
        }
    }
    let reply = register(digits_of(card_digits), body(id(1), pin(1))).await;
    assert_eq!(reply.status.as_u16(), 200, "card number: {}", reply.text);
    let long = digits_of(card_digits + 1);
    let reply = app
        .send(
            reqwest::Method::PUT,
            &app.card_url(&long),
            Some(&body(id(1), pin(1))),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 400, "card number: {}", reply.text);
}

#[tokio::test]
async fn each_listener_documents_its_own_operations_and_codes() {
    let Some((app, portal)) = TestApp::spawn_portal().await else {
        return;
    };
    let codes = |doc: &serde_json::Value| -> Vec<String> {
        doc["components"]["schemas"]["MessageCode"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let alcs = app
        .send(Method::GET, &format!("{}/openapi.json", app.base), None)
        .await
        .json();
    let customer = portal.send(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(customer.status, 200);
    let customer = customer.json();
    assert_eq!(customer["openapi"], "3.1.0");
    assert_eq!(
        customer,
        serde_json::to_value(cps::http::portal::openapi()).unwrap()
    );
    for path in [
        "/loyalty/v1/login",
        "/loyalty/v1/customers/current",
        "/loyalty/v1/customers/current/consents/{purpose}",
        "/loyalty/v1/customers/current/export",
        "/loyalty/v1/customers/current/erase",
    ] {
        assert!(customer["paths"][path].is_object(), "{path}");
        assert!(
            alcs["paths"][path].is_null(),
            "{path} is not the ALCS API's"
        );
    }
    assert!(customer["paths"]["/alcs/loyalty/v1/loyalty-cards/{card_number}"].is_null());
    assert!(codes(&customer).contains(&"NoAuthothorization".to_owned()));
    assert!(!codes(&customer).contains(&"CardAlreadyRegistered".to_owned()));
    assert!(codes(&alcs).contains(&"CardAlreadyRegistered".to_owned()));
    assert!(!codes(&alcs).contains(&"NoAuthothorization".to_owned()));
    assert!(
        !codes(&alcs).contains(&"CardNotLocked".to_owned()),
        "a desk code"
    );
    // The customer's operations name the session they need.
    assert_eq!(
        customer["paths"]["/loyalty/v1/customers/current"]["get"]["security"],
        serde_json::json!([{ "session": [] }])
    );
}
