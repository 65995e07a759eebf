//! Concurrency is decided by the database, not by luck: these race real requests.

use std::sync::Arc;

use reqwest::StatusCode;
use serde_json::json;

use super::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_identical_registrations_give_one_customer_and_sixteen_200s() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move { app.register(CARD, &registration(CARD)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for t in tasks {
        let reply = t.await.unwrap();
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.text);
        ids.push(reply.json()["CustomerId"].as_str().unwrap().to_owned());
    }
    ids.dedup();
    assert_eq!(ids.len(), 1, "one CustomerId for all: {ids:?}");
    assert_eq!(app.totals().await, [1, 1, 2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixteen_different_registrations_give_exactly_one_200_and_fifteen_409s() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let app = app.clone();
            tokio::spawn(async move {
                let body = with(
                    registration(CARD),
                    "LoyaltyCard.CardPinHMac",
                    Some(json!(format!("pin-{i}"))),
                );
                app.register(CARD, &body).await
            })
        })
        .collect();
    let (mut ok, mut conflict) = (0, 0);
    for t in tasks {
        let reply = t.await.unwrap();
        match reply.status.as_u16() {
            200 => ok += 1,
            409 => {
                reply.assert_error(409, "CardAlreadyRegistered");
                conflict += 1;
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!((ok, conflict), (1, 15));
    assert_eq!(app.totals().await, [1, 1, 2, 1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_lock_activate_and_phone_changes_end_in_a_serial_state() {
    let Some(app) = TestApp::spawn().await else {
        return;
    };
    let app = Arc::new(app);
    for round in 0..5 {
        let card = format!("77{round}");
        app.registered(&card).await;
        let mut tasks = Vec::new();
        for i in 0..24 {
            let app = app.clone();
            let card = card.clone();
            tasks.push(tokio::spawn(async move {
                let reply = match i % 3 {
                    0 => app.activate(&card, PHONE).await,
                    1 => app.lock(&card).await,
                    _ => app.change_phone(&card, OTHER_PHONE).await,
                };
                (i % 3, reply.status.as_u16())
            }));
        }
        let mut activated = false;
        for t in tasks {
            let (kind, status) = t.await.unwrap();
            match (kind, status) {
                (0, 204) => activated = true,
                // 429: five activations already failed on the changed number (the attempt limit).
                (0, 400 | 422 | 429) | (1, 204) | (2, 204) => {}
                other => panic!("unexpected answer {other:?}"),
            }
        }
        let card = app.get(&card).await.json();
        // Lock always happens and nothing unlocks; every phone change sets the same number.
        assert_eq!(card["Status"], json!("Locked"));
        assert_eq!(card["Customer"]["PhoneNumber"], json!(OTHER_PHONE));
        // The customer is active exactly when some activation answered 204.
        let expected = if activated { "Active" } else { "NotActivated" };
        assert_eq!(card["Customer"]["Status"], json!(expected), "round {round}");
    }
}
