//! The service desk's operations, independent of HTTP: look-ups and history, and changes made
//! on a customer's behalf. Each change is one transaction with its audit entries and outbox
//! rows, through the same store, policy and delivery as ALCS's operations; every change names
//! the desk user who made it.

use std::future::Future;
use std::sync::Arc;

use chrono::Utc;

use super::{ApplyError, Failure, Service, traced};
use crate::domain::{
    Actor, Applied, CardCommand, CardNumber, Consents, CustomerCommand, CustomerId, DeskUser,
    ExpectedVersion, LockNote, LockReason, PhoneNumber, Refusal, Replacement, SignInLimits,
    Throttle,
};
use crate::outbox::AlcsActivation;
use crate::store::{
    ConsentEvent, DeskCard, DeskCustomer, DeskStore, Failures, HistoryEntry, HistoryOf, NoticeRows,
    Outcome, PortalStore, StoreError,
};

/// Where a card's ALCS notices are: the outbox says.
const NOTICES: NoticeRows = AlcsActivation::ROWS;

#[derive(Clone)]
pub struct Desk {
    service: Service,
    store: Arc<dyn DeskStore>,
    /// The portal's sign-in throttle, which the desk sees and clears.
    sign_ins: (Arc<dyn PortalStore>, SignInLimits),
}

/// A card number's web sign-in as the throttle holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInState {
    pub failures: Option<Failures>,
    pub throttle: Throttle,
}

impl Desk {
    pub fn new(
        service: Service,
        store: Arc<dyn DeskStore>,
        sign_ins: (Arc<dyn PortalStore>, SignInLimits),
    ) -> Self {
        Self {
            service,
            store,
            sign_ins,
        }
    }

    /// The customer's consents in force and their whole history, oldest first.
    pub async fn consents(
        &self,
        customer: &CustomerId,
    ) -> Result<(Consents, Vec<ConsentEvent>), Failure> {
        let store = &self.sign_ins.0;
        let state = store
            .account(customer)
            .await?
            .map(|a| a.consents)
            .unwrap_or_default();
        Ok((state, store.consent_events(customer).await?))
    }

    /// The web sign-in of `card`: its failures in a row, and whether it waits or is locked.
    pub async fn sign_in(&self, card: &CardNumber) -> Result<SignInState, Failure> {
        let (store, limits) = &self.sign_ins;
        let failures = store.sign_in_failures(card.as_str()).await?;
        let throttle = failures.map_or(Throttle::Open, |f| {
            limits.throttle(f.count, f.last, Utc::now())
        });
        Ok(SignInState { failures, throttle })
    }

    /// Reopens the web sign-in of `card` (its failures forgotten); whether it had any.
    pub async fn clear_sign_in(
        &self,
        card: CardNumber,
        user: DeskUser,
    ) -> Result<bool, ApplyError> {
        let (store, policy) = (self.sign_ins.0.clone(), self.service.policy);
        let actor = Actor::Desk(user);
        let work = move || {
            let (store, card, actor) = (store.clone(), card.clone(), actor.clone());
            async move {
                let result = store
                    .clear_sign_in_lock(&card, &actor, Utc::now(), &policy)
                    .await?;
                Ok(Outcome::without_effects(result))
            }
        };
        let cleared = self.write("clear_sign_in_lock", work).await?;
        tracing::info!(cleared, "web sign-in reopened by the desk");
        Ok(cleared)
    }

    pub async fn card(&self, card: &CardNumber) -> Result<Option<DeskCard>, Failure> {
        Ok(self.store.desk_card(card, NOTICES).await?)
    }

    pub async fn cards_by_phone(&self, phone: &PhoneNumber) -> Result<Vec<DeskCard>, Failure> {
        Ok(self.store.cards_by_phone(phone, NOTICES).await?)
    }

    pub async fn customer(&self, id: &CustomerId) -> Result<Option<DeskCustomer>, Failure> {
        Ok(self.store.desk_customer(id, NOTICES).await?)
    }

    /// A page of a trail, newest first; `None` when the card or customer does not exist.
    pub async fn history(
        &self,
        of: &HistoryOf,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Option<Vec<HistoryEntry>>, Failure> {
        let entries = self.store.history(of, before, limit).await?;
        if !entries.is_empty() {
            return Ok(Some(entries));
        }
        // Every card and customer has an entry from its creation, but a trail may be paged to
        // its end: an empty page is only "not found" when there is no such card or customer.
        let exists = match of {
            HistoryOf::Card(card) => self.store.desk_card(card, NOTICES).await?.is_some(),
            HistoryOf::Customer(id) => self.store.desk_customer(id, NOTICES).await?.is_some(),
        };
        Ok(exists.then_some(entries))
    }

    pub async fn lock(
        &self,
        card: CardNumber,
        reason: LockReason,
        note: Option<LockNote>,
        user: DeskUser,
    ) -> Result<Applied, ApplyError> {
        let command = CardCommand::Lock { reason, note };
        self.service
            .apply_as(card, command, Actor::Desk(user))
            .await
    }

    pub async fn unlock(&self, card: CardNumber, user: DeskUser) -> Result<Applied, ApplyError> {
        self.service
            .apply_as(card, CardCommand::Unlock, Actor::Desk(user))
            .await
    }

    pub async fn replace(
        &self,
        card: CardNumber,
        replacement: Replacement,
        user: DeskUser,
    ) -> Result<Applied, ApplyError> {
        let span = tracing::info_span!(
            "desk_replace",
            card_number = %card,
            new_card_number = %replacement.new_card,
            user = %user,
            outcome = tracing::field::Empty
        );
        let (store, policy) = (self.store.clone(), self.service.policy);
        let actor = Actor::Desk(user);
        let work = move || {
            let (store, card, replacement, actor) = (
                store.clone(),
                card.clone(),
                replacement.clone(),
                actor.clone(),
            );
            async move {
                store
                    .replace(&card, &replacement, &actor, Utc::now(), &policy)
                    .await
            }
        };
        traced(span, self.write("replace", work), outcome).await
    }

    pub async fn change_phone(
        &self,
        customer: CustomerId,
        phone: PhoneNumber,
        expected_version: ExpectedVersion,
        user: DeskUser,
    ) -> Result<Applied, ApplyError> {
        let command = CustomerCommand::ChangePhone {
            phone,
            expected_version,
        };
        self.apply_to_customer_as(customer, command, Actor::Desk(user))
            .await
    }

    pub async fn erase(&self, customer: CustomerId, user: DeskUser) -> Result<Applied, ApplyError> {
        self.apply_to_customer_as(customer, CustomerCommand::Erase, Actor::Desk(user))
            .await
    }

    /// Applies a command to a customer on behalf of `actor` (a desk user, or the customer
    /// through the portal: its erasure is this one); its cache writes are delivered before this
    /// returns.
    pub async fn apply_to_customer_as(
        &self,
        customer: CustomerId,
        command: CustomerCommand,
        actor: Actor,
    ) -> Result<Applied, ApplyError> {
        let operation = command.name();
        let span = tracing::info_span!(
            "customer_command",
            operation,
            customer_id = %customer,
            actor = actor.audit_name().unwrap_or("alcs"),
            outcome = tracing::field::Empty
        );
        let (store, policy) = (self.store.clone(), self.service.policy);
        let work = move || {
            let (store, command, actor) = (store.clone(), command.clone(), actor.clone());
            async move {
                store
                    .apply_to_customer(&customer, &command, &actor, Utc::now(), &policy)
                    .await
            }
        };
        traced(span, self.write(operation, work), outcome).await
    }

    /// Queues the card's dead (or never sent) ALCS notices again; how many.
    pub async fn retry_notice(&self, card: CardNumber, user: DeskUser) -> Result<u64, ApplyError> {
        let (store, policy) = (self.store.clone(), self.service.policy);
        let actor = Actor::Desk(user);
        let work = move || {
            let (store, card, actor) = (store.clone(), card.clone(), actor.clone());
            async move {
                let result = store
                    .retry_notice((&card, NOTICES), &actor, Utc::now(), &policy)
                    .await?;
                Ok(Outcome::without_effects(result))
            }
        };
        let queued = self.write("retry_notice", work).await?;
        // Due now: the worker need not wait for its next poll.
        self.service.deliverer.waker().notify_one();
        tracing::info!(queued, "ALCS notices queued again");
        Ok(queued)
    }

    /// A write through the service's one write path; a refusal is logged and answered.
    async fn write<T, F, Fut>(&self, operation: &'static str, work: F) -> Result<T, ApplyError>
    where
        T: Send + 'static,
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Outcome<Result<T, Refusal>>, StoreError>> + Send,
    {
        let result = self
            .service
            .write(operation, work)
            .await
            .map_err(|e| ApplyError::Failed(e.into()))?;
        result.map_err(|refusal| {
            tracing::info!(operation, reason = %refusal, "refused");
            ApplyError::Refused(refusal)
        })
    }
}

fn outcome(result: &Result<Applied, ApplyError>) -> &'static str {
    match result {
        Ok(Applied::Changed) => "changed",
        Ok(Applied::Unchanged) => "unchanged",
        Err(ApplyError::Refused(_)) => "refused",
        Err(ApplyError::Failed(_)) => "failed",
    }
}
