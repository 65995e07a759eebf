//! What the customer portal needs of the store: the sign-in look-up (a card's status, PIN HMAC
//! and customer, with the web password once set), the failures per submitted card number that
//! throttle sign-ins (shared by every instance), and the password's own write: a transaction
//! script like `script.rs`'s, recording its audit entry through the same [`WritePolicy`].

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::ops::{SqlStore, end};
use super::rows;
use super::script::{Step, lock_card, record_write};
use super::sql::{Conn, Time, sql};
use super::{Context, StoreError, Write, WriteKind, WritePolicy};
use crate::domain::{Actor, CardNumber, CardStatus, CustomerId, PinHmac, Refusal};

/// A card as the portal signs its customer in with it.
#[derive(Debug, Clone)]
pub struct SignInSubject {
    pub customer: CustomerId,
    pub card_status: CardStatus,
    pub pin: PinHmac,
    pub erased: bool,
    /// The web password's Argon2id hash (PHC string), once the customer set one.
    pub password_hash: Option<String>,
}

/// The failures of one submitted card number in a row, and when the last was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    pub count: i64,
    pub last: DateTime<Utc>,
}

#[async_trait]
pub trait PortalStore: Send + Sync + 'static {
    async fn sign_in_subject(&self, card: &CardNumber)
    -> Result<Option<SignInSubject>, StoreError>;

    /// The failures of the submitted card number `card` (any text a client sent as one).
    async fn sign_in_failures(&self, card: &str) -> Result<Option<Failures>, StoreError>;

    /// Counts one more failure of `card` at `at`; how many in a row it has now.
    async fn record_sign_in_failure(
        &self,
        card: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError>;

    /// Forgets the failures of `card` (a success, the desk); whether it had any.
    async fn clear_sign_in_failures(&self, card: &str) -> Result<bool, StoreError>;

    /// How many card numbers failed to sign in since `since` (the service-wide breaker).
    async fn failing_card_numbers(&self, since: DateTime<Utc>) -> Result<i64, StoreError>;

    /// Forgets the failed sign-ins of the registered `card` for `actor` (the desk), with an
    /// audit entry; whether it had any (`Err`: no such card).
    async fn clear_sign_in_lock(
        &self,
        card: &CardNumber,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Result<bool, Refusal>, StoreError>;

    /// Sets the customer's web password to `hash`, signed in with `card` in the session
    /// `session` (its id's hash, and the level it is raised to): every other portal session
    /// of the customer ends.
    async fn set_password(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        hash: &str,
        session: (&str, &str),
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<(), StoreError>;
}

#[derive(sqlx::FromRow)]
struct SubjectRow {
    customer_id: String,
    status: String,
    pin_hmac: String,
    erased_at: Option<Time>,
    secret_hash: Option<String>,
}

#[derive(sqlx::FromRow)]
struct FailuresRow {
    failures: i64,
    last_failed_at: Time,
}

#[async_trait]
impl PortalStore for SqlStore {
    async fn sign_in_subject(
        &self,
        card: &CardNumber,
    ) -> Result<Option<SignInSubject>, StoreError> {
        let find = sql(
            "select c.customer_id, c.status, c.pin_hmac, u.erased_at, p.secret_hash
             from cards c join customers u on u.id = c.customer_id
             left join web_credentials p on p.customer_id = c.customer_id
             where c.card_number = $1",
        )
        .bind(card.as_str());
        let found: Vec<SubjectRow> = self.db().read_all(&find, "look up a sign-in").await?;
        let Some(row) = found.into_iter().next() else {
            return Ok(None);
        };
        Ok(Some(SignInSubject {
            customer: rows::customer_id(&row.customer_id)?,
            card_status: rows::status(&row.status)?,
            // Stored as registered, which parsed it.
            pin: PinHmac::parse(&row.pin_hmac)
                .map_err(|e| StoreError::failed("read a card's PIN HMAC", e))?,
            erased: row.erased_at.is_some(),
            password_hash: row.secret_hash,
        }))
    }

    async fn sign_in_failures(&self, card: &str) -> Result<Option<Failures>, StoreError> {
        let find = sql("select failures, last_failed_at from sign_in_failures
             where card_number = $1")
        .bind(card);
        let found: Vec<FailuresRow> = self.db().read_all(&find, "read failed sign-ins").await?;
        Ok(found.into_iter().next().map(|row| Failures {
            count: row.failures,
            last: row.last_failed_at.into(),
        }))
    }

    async fn record_sign_in_failure(
        &self,
        card: &str,
        at: DateTime<Utc>,
    ) -> Result<i64, StoreError> {
        let count = sql(
            "insert into sign_in_failures (card_number, failures, last_failed_at)
             values ($1, 1, $2)
             on conflict (card_number) do update
                set failures = sign_in_failures.failures + 1,
                    last_failed_at = excluded.last_failed_at
             returning failures",
        )
        .bind(card)
        .bind(at);
        let counted: Vec<(i64,)> = self
            .db()
            .write_all(&count, "count a failed sign-in")
            .await?;
        Ok(counted.first().map_or(1, |(n,)| *n))
    }

    async fn clear_sign_in_failures(&self, card: &str) -> Result<bool, StoreError> {
        let clear = sql("delete from sign_in_failures where card_number = $1").bind(card);
        Ok(self.db().execute(&clear, "forget failed sign-ins").await? > 0)
    }

    async fn failing_card_numbers(&self, since: DateTime<Utc>) -> Result<i64, StoreError> {
        let count =
            sql("select count(*) from sign_in_failures where last_failed_at > $1").bind(since);
        let counted: Vec<(i64,)> = self
            .db()
            .read_all(&count, "count failing card numbers")
            .await?;
        Ok(counted.first().map_or(0, |(n,)| *n))
    }

    async fn clear_sign_in_lock(
        &self,
        card: &CardNumber,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Result<bool, Refusal>, StoreError> {
        let mut tx = self.db().begin().await?;
        let step = clear_sign_in_lock(&mut tx.conn(), card, actor, at, policy).await;
        end(self.db(), tx, step).await
    }

    async fn set_password(
        &self,
        (customer, card): (&CustomerId, &CardNumber),
        hash: &str,
        session: (&str, &str),
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<(), StoreError> {
        let mut tx = self.db().begin().await?;
        let step = set_password(&mut tx.conn(), (customer, card), hash, session, at, policy).await;
        end(self.db(), tx, step).await
    }
}

async fn clear_sign_in_lock(
    tx: &mut Conn<'_>,
    card: &CardNumber,
    actor: &Actor,
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<Result<bool, Refusal>>, StoreError> {
    let Some(row) = lock_card(tx, card).await? else {
        return Ok(Step::Discard(Err(Refusal::CardNotFound)));
    };
    let cleared = sql("delete from sign_in_failures where card_number = $1")
        .bind(card.as_str())
        .execute(tx)
        .await
        .context("forget failed sign-ins")?;
    if cleared == 0 {
        return Ok(Step::Discard(Ok(false)));
    }
    let write = Write {
        customer: rows::customer_id(&row.customer_id)?,
        at,
        actor,
        kind: WriteKind::SignInCleared { card },
    };
    record_write(tx, &write, policy).await?;
    Ok(Step::Commit(Ok(true)))
}

async fn set_password(
    tx: &mut Conn<'_>,
    (customer, card): (&CustomerId, &CardNumber),
    hash: &str,
    (session, level): (&str, &str),
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<()>, StoreError> {
    let id = customer.to_string();
    sql(
        "insert into web_credentials (customer_id, secret_hash, set_at) values ($1, $2, $3)
         on conflict (customer_id) do update
            set secret_hash = excluded.secret_hash, set_at = excluded.set_at",
    )
    .bind(id.as_str())
    .bind(hash)
    .bind(at)
    .execute(tx)
    .await
    .context("set the web credential")?;
    // A new password ends every other session: one opened by whoever knew the old one too.
    sql("delete from sessions where audience = 'portal' and holder = $1 and id_hash <> $2")
        .bind(id.as_str())
        .bind(session)
        .execute(tx)
        .await
        .context("end the other portal sessions")?;
    sql("update sessions set level = $1 where id_hash = $2")
        .bind(level)
        .bind(session)
        .execute(tx)
        .await
        .context("raise the session")?;
    let write = Write {
        customer: *customer,
        at,
        actor: &Actor::Customer(*customer),
        kind: WriteKind::PasswordSet { card },
    };
    record_write(tx, &write, policy).await?;
    Ok(Step::Commit(()))
}
