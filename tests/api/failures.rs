//! What clients see when the database fails: the app is built around a store that fails on
//! purpose, because a real database cannot be made to fail at a chosen statement.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cps::domain::{
    Applied, CardCommand, CardNumber, CardView, Country, Identity, Language, Refusal, Registered,
    Registration,
};
use cps::http::{AppState, router};
use cps::outbox::OutboxQueue;
use cps::outbox::worker::Deliverer;
use cps::service::{Policy, Service};
use cps::store::{OutboxCount, OutboxRow, Outcome, Store, StoreError, WritePolicy};
use reqwest::Method;
use serde_json::json;

use super::support::*;

#[derive(Clone, Copy)]
enum Failure {
    /// Connection refused, pool exhausted: nothing happened.
    Unavailable,
    /// An unexpected error inside the transaction (which rolls back).
    Broken,
    /// Answers after longer than the request deadline.
    Slow,
}

struct FailingStore(Failure);

impl FailingStore {
    async fn fail<T>(&self) -> Result<T, StoreError> {
        let source = "injected failure".into();
        match self.0 {
            Failure::Unavailable => Err(StoreError::Unavailable {
                context: "test",
                source,
            }),
            Failure::Broken => Err(StoreError::Failed {
                context: "test",
                source,
            }),
            Failure::Slow => {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Err(StoreError::Failed {
                    context: "test",
                    source,
                })
            }
        }
    }
}

#[async_trait]
impl Store for FailingStore {
    async fn register(
        &self,
        _: &Registration,
        _: Option<&Identity>,
        _: DateTime<Utc>,
        _: &dyn WritePolicy,
    ) -> Result<Outcome<Registered>, StoreError> {
        self.fail().await
    }

    async fn apply(
        &self,
        _: &CardNumber,
        _: &CardCommand,
        _: &cps::domain::Actor,
        _: DateTime<Utc>,
        _: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError> {
        self.fail().await
    }

    async fn card(&self, _: &CardNumber) -> Result<Option<CardView>, StoreError> {
        self.fail().await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.fail().await
    }

    async fn probe_write(&self, _: &str, _: DateTime<Utc>) -> Result<(), StoreError> {
        self.fail().await
    }

    async fn take_lease(
        &self,
        _: &str,
        _: &str,
        _: Duration,
        _: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        self.fail().await
    }

    async fn drop_lease(&self, _: &str, _: &str) -> Result<(), StoreError> {
        self.fail().await
    }
}

#[async_trait]
impl OutboxQueue for FailingStore {
    async fn claim_effects(
        &self,
        _: DateTime<Utc>,
        _: Duration,
        _: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        self.fail().await
    }

    async fn effects_done(&self, _: &[i64], _: &[i64]) -> Result<(), StoreError> {
        self.fail().await
    }

    async fn effect_failed(&self, _: i64, _: DateTime<Utc>, _: &str) -> Result<(), StoreError> {
        self.fail().await
    }

    async fn effect_dead(&self, _: i64, _: &str) -> Result<(), StoreError> {
        self.fail().await
    }

    async fn release_effects(&self, _: &[i64]) -> Result<(), StoreError> {
        self.fail().await
    }

    async fn outbox_summary(&self) -> Result<Vec<OutboxCount>, StoreError> {
        self.fail().await
    }

    async fn expedite(&self, _: &str, _: DateTime<Utc>) -> Result<u64, StoreError> {
        self.fail().await
    }

    async fn retry_dead(&self) -> Result<u64, StoreError> {
        self.fail().await
    }
}

async fn app_failing_with(failure: Failure) -> String {
    let state = AppState {
        pages: false,
        service: {
            let store = Arc::new(FailingStore(failure));
            Service::new(
                store.clone(),
                Deliverer::new(store, None, None, None),
                Policy::default(),
            )
        },
        default_country: Country::poland(),
        default_language: Language::English,
        request_timeout: Duration::from_secs(1),
        limits: cps::http::RequestLimits::default(),
        admission: Some(cps::http::admission::Admission::new(64, 64)),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    base
}

async fn every_operation(base: &str) -> Vec<(&'static str, Reply)> {
    let app = TestApp::at(base);
    vec![
        ("register", app.register(CARD, &registration(CARD)).await),
        ("activate", app.activate(CARD, PHONE).await),
        ("change_phone", app.change_phone(CARD, PHONE).await),
        ("lock", app.lock(CARD).await),
        ("read", app.get(CARD).await),
        (
            "ready",
            app.send(Method::GET, &format!("{base}/health/ready"), None)
                .await,
        ),
    ]
}

#[tokio::test]
async fn an_unreachable_database_gives_503_service_unavailable_everywhere() {
    let base = app_failing_with(Failure::Unavailable).await;
    for (operation, reply) in every_operation(&base).await {
        let message = reply.assert_error(503, "ServiceUnavailable");
        assert!(!message.contains("injected"), "{operation}: {message}");
    }
    // Liveness does not depend on the database.
    let live = TestApp::at(&base)
        .send(Method::GET, &format!("{base}/health/live"), None)
        .await;
    assert_eq!(live.status.as_u16(), 200);
}

#[tokio::test]
async fn an_unexpected_failure_in_activation_gives_500_customer_activation_error() {
    let base = app_failing_with(Failure::Broken).await;
    for (operation, reply) in every_operation(&base).await {
        let (status, code) = match operation {
            "activate" => (500, "CustomerActivationError"),
            "ready" => (503, "ServiceUnavailable"),
            _ => (500, "UnknownError"),
        };
        let message = reply.assert_error(status, code);
        // Opaque: the cause is logged, not answered.
        assert!(!message.contains("injected"), "{operation}: {message}");
    }
}

#[tokio::test]
async fn a_request_past_its_deadline_gives_503_timeout() {
    let base = app_failing_with(Failure::Slow).await;
    let started = std::time::Instant::now();
    let reply = TestApp::at(&base).register(CARD, &registration(CARD)).await;
    reply.assert_error(503, "Timeout");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        reply.json()["Message"],
        json!("The request timed out"),
        "the configured default language applies"
    );
}
