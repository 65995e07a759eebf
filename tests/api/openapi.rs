//! The OpenAPI document: served, made from the router itself, and its examples accepted.

use reqwest::Method;
use serde_json::Value;

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
