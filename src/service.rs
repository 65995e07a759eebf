//! The operations ALCS calls, independent of HTTP.
//!
//! Each operation runs on its own task: if the caller goes away mid-request (the till timed
//! out, the connection dropped), the database transaction and the cache writes after it still
//! run to their end instead of being cancelled between two statements.

use std::sync::Arc;

use chrono::Utc;

use crate::domain::{CardCommand, CardNumber, Identity, Registration};
use crate::outbox::worker::Deliverer;
use crate::store::{Applied, ApplyError, CardView, Registered, Store, StoreError};

#[derive(Clone)]
pub struct Service {
    store: Arc<dyn Store>,
    deliverer: Deliverer,
}

impl Service {
    pub fn new(store: Arc<dyn Store>, deliverer: Deliverer) -> Self {
        Self { store, deliverer }
    }

    /// Registers a card; its cache writes are delivered before this returns (or left to the
    /// outbox worker when Redis is unreachable).
    pub async fn register(
        &self,
        registration: Registration,
        identity: Option<Identity>,
    ) -> Result<Registered, StoreError> {
        let (store, deliverer) = (self.store.clone(), self.deliverer.clone());
        let card = registration.card_number.clone();
        let outcome = detach(async move {
            let outcome = store
                .register(&registration, identity.as_ref(), Utc::now())
                .await?;
            deliverer.deliver_now(outcome.effects).await;
            Ok::<_, StoreError>(outcome.result)
        })
        .await??;
        match outcome {
            Registered::Created(id) => {
                tracing::info!(card_number = %card, customer_id = %id, "card registered");
            }
            Registered::Replayed(id) => {
                tracing::info!(card_number = %card, customer_id = %id, "registration replayed");
            }
            Registered::AlreadyRegistered => {
                tracing::info!(card_number = %card, "registration refused: card already registered");
            }
        }
        Ok(outcome)
    }

    pub async fn apply(
        &self,
        card: CardNumber,
        command: CardCommand,
    ) -> Result<Applied, ApplyError> {
        let (store, deliverer) = (self.store.clone(), self.deliverer.clone());
        let (card_for_task, command_for_task) = (card.clone(), command.clone());
        let result = detach(async move {
            let outcome = store
                .apply(&card_for_task, &command_for_task, Utc::now())
                .await?;
            deliverer.deliver_now(outcome.effects).await;
            Ok::<_, ApplyError>(outcome.result)
        })
        .await
        .map_err(ApplyError::Store)
        .and_then(|r| r);
        let operation = command.name();
        match &result {
            Ok(applied) => {
                tracing::info!(card_number = %card, operation, changed = *applied == Applied::Changed, "card updated");
            }
            Err(ApplyError::CardNotFound) => {
                tracing::info!(card_number = %card, operation, "refused: no such card");
            }
            Err(ApplyError::Rule(rule)) => {
                tracing::info!(card_number = %card, operation, reason = %rule, "refused");
            }
            Err(ApplyError::Store(_)) => {}
        }
        result
    }

    pub async fn card(&self, card: &CardNumber) -> Result<Option<CardView>, StoreError> {
        self.store.card(card).await
    }

    pub async fn ready(&self) -> Result<(), StoreError> {
        self.store.ping().await
    }
}

/// Runs a store call to completion on its own task, whatever happens to the caller.
async fn detach<T: Send + 'static>(
    work: impl Future<Output = T> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::spawn(work)
        .await
        .map_err(|e| StoreError::failed("finish the operation", e))
}
