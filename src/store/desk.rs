//! What the service desk needs of the store, beside [`super::Store`]: its look-ups and history,
//! and its writes that are not a command on one card (a replacement, a command on a customer,
//! a retried ALCS notice). The writes are transaction scripts like `script.rs`'s, ended the
//! same way, recording their audit entries and outbox rows through the same [`WritePolicy`].

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::ops::{SqlStore, end};
use super::rows;
use super::rows::WALLET_COLUMNS;
use super::script::{
    Application, NewCard, Step, insert_card, lock_card, record_write, refused, update_card,
};
use super::sql::{Conn, Time, placeholders, sql};
use super::{Context, OutboxStatus, Outcome, StoreError, Write, WriteKind, WritePolicy};
use crate::domain::{
    Actor, Applied, CardNumber, CardStatus, CustomerCard, CustomerCommand, CustomerId,
    CustomerSnapshot, CustomerStatus, Gender, Lock, PhoneNumber, Refusal, Replacement, Wallet,
};

/// Where a card's ALCS notices are in the outbox: their kind, and the subject that names the
/// card. The outbox spells both; the desk's caller passes them in.
#[derive(Debug, Clone, Copy)]
pub struct NoticeRows {
    pub kind: &'static str,
    /// The subject of a card's notices, from its number.
    pub subject: fn(&str) -> String,
}

/// A customer as the desk sees it: never the PIN HMAC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskCustomerHead {
    pub id: CustomerId,
    pub status: CustomerStatus,
    pub phone: Option<PhoneNumber>,
    pub gender: Gender,
    /// Bumped by every change of the customer's cache hash: what `If-Match` names.
    pub version: i64,
    pub erased_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A card as the desk sees it: status, lock, customer, wallets, the ALCS notice and the last
/// change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskCard {
    pub number: CardNumber,
    pub status: CardStatus,
    pub lock: Option<Lock>,
    /// The desk's note on the lock.
    pub lock_note: Option<String>,
    pub version: i64,
    pub customer: DeskCustomerHead,
    pub wallets: Vec<Wallet>,
    /// The latest ALCS activation notice of the card, if any.
    pub notice: Option<NoticeState>,
    pub last_change: Option<HistoryEntry>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A customer with all of its cards.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeskCustomer {
    pub customer: DeskCustomerHead,
    pub cards: Vec<DeskCard>,
}

/// Where an ALCS activation notice stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeState {
    /// `pending`, `delivered`, `dead` or `unsent`.
    pub status: String,
    pub attempts: i32,
    /// Why the last attempt failed (never personal data).
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

#[derive(sqlx::FromRow)]
struct NoticeRow {
    /// `card:{number}`: whose notice it is.
    subject: String,
    status: String,
    attempts: i32,
    last_error: Option<String>,
    #[sqlx(try_from = "Time")]
    created_at: DateTime<Utc>,
    delivered_at: Option<Time>,
}

/// One entry of an audit trail, as the desk's history shows it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct HistoryEntry {
    /// Its place in the trail: the cursor of the next page.
    pub id: i64,
    #[sqlx(try_from = "Time")]
    pub occurred_at: DateTime<Utc>,
    pub operation: String,
    pub card_number: Option<String>,
    pub customer_id: String,
    /// The POS identity, as JSON.
    pub identity: Option<String>,
    /// What changed, as JSON.
    pub details: Option<String>,
    /// The desk user who made the change; none for ALCS.
    pub actor: Option<String>,
}

/// Whose audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HistoryOf {
    Card(CardNumber),
    Customer(CustomerId),
}

/// The desk's capabilities of the store. One transaction per write.
#[async_trait]
pub trait DeskStore: Send + Sync + 'static {
    /// Locks `card` and attaches `replacement.new_card` to its customer with the old card's
    /// wallets, in one transaction.
    async fn replace(
        &self,
        card: &CardNumber,
        replacement: &Replacement,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError>;

    /// Loads the customer and its cards under a write lock, lets the domain decide, and writes
    /// the change, in one transaction.
    async fn apply_to_customer(
        &self,
        customer: &CustomerId,
        command: &CustomerCommand,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError>;

    /// Puts `card`'s dead (or never sent) ALCS notices back in the queue; the number queued.
    async fn retry_notice(
        &self,
        (card, notices): (&CardNumber, NoticeRows),
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Result<u64, Refusal>, StoreError>;

    async fn desk_card(
        &self,
        card: &CardNumber,
        notices: NoticeRows,
    ) -> Result<Option<DeskCard>, StoreError>;

    /// The cards of every customer with this phone number.
    async fn cards_by_phone(
        &self,
        phone: &PhoneNumber,
        notices: NoticeRows,
    ) -> Result<Vec<DeskCard>, StoreError>;

    async fn desk_customer(
        &self,
        id: &CustomerId,
        notices: NoticeRows,
    ) -> Result<Option<DeskCustomer>, StoreError>;

    /// Up to `limit` entries of a trail, newest first, older than the entry `before` if given.
    async fn history(
        &self,
        of: &HistoryOf,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, StoreError>;
}

#[async_trait]
impl DeskStore for SqlStore {
    async fn replace(
        &self,
        card: &CardNumber,
        replacement: &Replacement,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError> {
        let mut tx = self.db().begin().await?;
        let step = replace(&mut tx.conn(), card, replacement, actor, at, policy).await;
        let (result, effects) = end(self.db(), tx, step).await?;
        Ok(Outcome { result, effects })
    }

    async fn apply_to_customer(
        &self,
        customer: &CustomerId,
        command: &CustomerCommand,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError> {
        let mut tx = self.db().begin().await?;
        let step = apply_to_customer(&mut tx.conn(), customer, command, actor, at, policy).await;
        let (result, effects) = end(self.db(), tx, step).await?;
        Ok(Outcome { result, effects })
    }

    async fn retry_notice(
        &self,
        (card, notices): (&CardNumber, NoticeRows),
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Result<u64, Refusal>, StoreError> {
        let mut tx = self.db().begin().await?;
        let step = retry_notice(&mut tx.conn(), (card, notices), actor, at, policy).await;
        end(self.db(), tx, step).await
    }

    async fn desk_card(
        &self,
        card: &CardNumber,
        notices: NoticeRows,
    ) -> Result<Option<DeskCard>, StoreError> {
        let mut tx = self.db().begin_read().await?;
        let found =
            desk_cards(&mut tx.conn(), notices, "c.card_number = $1", card.as_str()).await?;
        tx.end().await?;
        Ok(found.into_iter().next())
    }

    async fn cards_by_phone(
        &self,
        phone: &PhoneNumber,
        notices: NoticeRows,
    ) -> Result<Vec<DeskCard>, StoreError> {
        let mut tx = self.db().begin_read().await?;
        // The first 100 customers of the number by the index, then their cards: the listing
        // stops early however many customers gave the number (a shop's own number typed at the
        // till), whatever the planner estimates. Each customer has a card, so their first 100
        // cards are among them.
        let found = desk_cards(
            &mut tx.conn(),
            notices,
            "u.id in (select id from customers where phone_number = $1 order by id limit 100)",
            phone.as_str(),
        )
        .await?;
        tx.end().await?;
        Ok(found)
    }

    async fn desk_customer(
        &self,
        id: &CustomerId,
        notices: NoticeRows,
    ) -> Result<Option<DeskCustomer>, StoreError> {
        let mut tx = self.db().begin_read().await?;
        let cards = desk_cards(&mut tx.conn(), notices, "u.id = $1", &id.to_string()).await?;
        tx.end().await?;
        // Every customer has a card: none found is no such customer.
        let Some(customer) = cards.first().map(|card| card.customer.clone()) else {
            return Ok(None);
        };
        Ok(Some(DeskCustomer { customer, cards }))
    }

    async fn history(
        &self,
        of: &HistoryOf,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Vec<HistoryEntry>, StoreError> {
        let (column, key) = match of {
            HistoryOf::Card(card) => ("card_number", card.to_string()),
            HistoryOf::Customer(id) => ("customer_id", id.to_string()),
        };
        let trail = sql(format!(
            "select {HISTORY_COLUMNS} from audit_log
             where {column} = $1 and id < $2 order by id desc limit $3"
        ))
        .bind(key)
        .bind(before.unwrap_or(i64::MAX))
        .bind(limit);
        self.db().read_all(&trail, "read the history").await
    }
}

const HISTORY_COLUMNS: &str = "id, occurred_at, operation, card_number, customer_id,
    identity::text as identity, details::text as details, actor";

async fn replace(
    tx: &mut Conn<'_>,
    old: &CardNumber,
    replacement: &Replacement,
    actor: &Actor,
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<Application>, StoreError> {
    let Some(row) = lock_card(tx, old).await? else {
        return refused(Refusal::CardNotFound);
    };
    let customer = rows::customer_id(&row.customer_id)?;
    let before = row.snapshot()?;
    let plan = match replacement.decide(old, before.card_status, before.lock.as_ref()) {
        Ok(plan) => plan,
        Err(rule) => return refused(Refusal::Rule(rule)),
    };
    // The fingerprint is no registration's (a registration's is hex), so a later PUT of this
    // number is never taken for a replay.
    let fingerprint = format!("replacement of {old}");
    let card = NewCard {
        number: &replacement.new_card,
        customer,
        status: plan.new_status,
        pin: &replacement.pin,
        fingerprint: &fingerprint,
    };
    if !insert_card(tx, &card, at).await? {
        return refused(Refusal::CardAlreadyRegistered);
    }
    // Moved, not copied: the rows themselves, so every amount stays exactly as it was.
    sql("update wallets set card_number = $1, updated_at = $2 where card_number = $3")
        .bind(replacement.new_card.as_str())
        .bind(at)
        .bind(old.as_str())
        .execute(tx)
        .await
        .context("move the wallets")?;
    update_card(tx, old, plan.old_status, Some(&plan.old_lock), at).await?;
    bump_customer(tx, &customer, at).await?;
    let write = Write {
        customer,
        at,
        actor,
        kind: WriteKind::Replaced {
            old,
            before: &before,
            replacement,
            plan: &plan,
        },
    };
    let effects = record_write(tx, &write, policy).await?;
    Ok(Step::Commit((Ok(Applied::Changed), effects)))
}

/// The customer's cache hash lists its cards: any change of them bumps its version.
async fn bump_customer(
    tx: &mut Conn<'_>,
    customer: &CustomerId,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    sql("update customers set version = version + 1, updated_at = $1 where id = $2")
        .bind(at)
        .bind(customer.to_string())
        .execute(tx)
        .await
        .context("update the customer")?;
    Ok(())
}

/// A customer and one of its cards, as a customer command locks them.
#[derive(sqlx::FromRow)]
struct CustomerCardRow {
    card_number: String,
    card_status: String,
    lock_reason: Option<String>,
    status_before_lock: Option<String>,
    replaced_by: Option<String>,
    customer_status: String,
    phone_number: Option<String>,
    gender: String,
    version: i64,
    erased_at: Option<Time>,
}

async fn apply_to_customer(
    tx: &mut Conn<'_>,
    id: &CustomerId,
    command: &CustomerCommand,
    actor: &Actor,
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<Application>, StoreError> {
    // Cards, then their customer, as a command on one card locks them.
    let rows: Vec<CustomerCardRow> = sql(
        "select c.card_number, c.status as card_status, c.lock_reason, c.status_before_lock,
                c.replaced_by, u.status as customer_status, u.phone_number, u.gender, u.version,
                u.erased_at
         from cards c join customers u on u.id = c.customer_id
         where u.id = $1 order by c.card_number
         for update of c, u",
    )
    .bind(id.to_string())
    .fetch_all(tx)
    .await
    .context("lock the customer")?;
    let Some(first) = rows.first() else {
        return refused(Refusal::CustomerNotFound);
    };
    let mut before = CustomerSnapshot {
        status: rows::status(&first.customer_status)?,
        phone: first.phone_number.clone().map(PhoneNumber::from_stored),
        gender: rows::gender(&first.gender)?,
        version: first.version,
        erased: first.erased_at.is_some(),
        cards: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        before.cards.push(CustomerCard {
            number: rows::card_number(&row.card_number)?,
            status: rows::status(&row.card_status)?,
            lock: rows::lock(
                &row.card_status,
                row.lock_reason.as_deref(),
                row.status_before_lock.as_deref(),
                row.replaced_by.as_deref(),
            )?,
        });
    }
    let change = match command.decide(&before) {
        Ok(change) => change,
        Err(rule) => return refused(Refusal::Rule(rule)),
    };
    if change.is_empty() {
        return Ok(Step::Discard((Ok(Applied::Unchanged), Vec::new())));
    }
    for (card, status, lock) in &change.cards {
        update_card(tx, card, *status, Some(lock), at).await?;
    }
    let phone = change.phone.as_ref();
    sql("update customers set
             phone_number = case when $1 then $2 else phone_number end,
             gender = coalesce($3, gender),
             erased_at = case when $4 then $5 else erased_at end,
             version = version + 1, updated_at = $5
         where id = $6")
    .bind(phone.is_some())
    .bind(phone.and_then(|p| p.as_ref()).map(PhoneNumber::as_str))
    .bind(change.gender.map(Gender::as_str))
    .bind(change.erase)
    .bind(at)
    .bind(id.to_string())
    .execute(tx)
    .await
    .context("update the customer")?;
    if change.erase {
        forget(tx, id).await?;
    }
    let write = Write {
        customer: *id,
        at,
        actor,
        kind: WriteKind::CustomerChanged {
            command,
            before: &before,
            change: &change,
        },
    };
    let effects = record_write(tx, &write, policy).await?;
    Ok(Step::Commit((Ok(Applied::Changed), effects)))
}

/// What an erasure removes besides the customer's columns: the registration fingerprints (a
/// hash of the registration, phone number included, that a guess could be checked against),
/// the desk's notes, and every queued side effect whose payload holds the customer's personal
/// data (cache writes hold the old hashes, phone number included), found by the customer they
/// concern, not by their subject's text (the erasure queues their successors); and what the
/// portal holds: the profile, the consents with their events, the credential, the sessions.
async fn forget(tx: &mut Conn<'_>, id: &CustomerId) -> Result<(), StoreError> {
    sql(
        "update cards set registration_fingerprint = 'erased', lock_note = null
         where customer_id = $1",
    )
    .bind(id.to_string())
    .execute(tx)
    .await
    .context("erase the cards' personal data")?;
    sql("delete from outbox where customer_id = $1 and personal")
        .bind(id.to_string())
        .execute(tx)
        .await
        .context("drop the queued side effects holding personal data")?;
    // The portal: the profile, the consents and their history, the web credential, and every
    // session (an erased customer signs in no more).
    sql(
        "update customers set first_name = null, last_name = null, email = null, street = null,
             house_number = null, apartment_number = null, postal_code = null, city = null,
             date_of_birth = null, preferred_language = null, preferred_store = null,
             consents = '', objected_at = null
         where id = $1",
    )
    .bind(id.to_string())
    .execute(tx)
    .await
    .context("erase the profile")?;
    sql("delete from sms_codes where customer_id = $1")
        .bind(id.to_string())
        .execute(tx)
        .await
        .context("erase the one-time codes")?;
    sql("delete from consent_events where customer_id = $1")
        .bind(id.to_string())
        .execute(tx)
        .await
        .context("erase the consent history")?;
    sql("delete from web_credentials where customer_id = $1")
        .bind(id.to_string())
        .execute(tx)
        .await
        .context("erase the web credential")?;
    sql("delete from sessions where audience = 'portal' and holder = $1")
        .bind(id.to_string())
        .execute(tx)
        .await
        .context("end the portal sessions")?;
    Ok(())
}

async fn retry_notice(
    tx: &mut Conn<'_>,
    (card, notices): (&CardNumber, NoticeRows),
    actor: &Actor,
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<Result<u64, Refusal>>, StoreError> {
    let Some(row) = lock_card(tx, card).await? else {
        return Ok(Step::Discard(Err(Refusal::CardNotFound)));
    };
    let queued = sql(
        "update outbox set status = $1, attempts = 0, next_attempt_at = $2
         where kind = $3 and subject = $4 and status in ($5, $6)",
    )
    .bind(OutboxStatus::Pending.as_str())
    .bind(at)
    .bind(notices.kind)
    .bind((notices.subject)(card.as_str()))
    .bind(OutboxStatus::Dead.as_str())
    .bind(OutboxStatus::Unsent.as_str())
    .execute(tx)
    .await
    .context("queue the card's ALCS notice again")?;
    if queued == 0 {
        return Ok(Step::Discard(Err(Refusal::NoNoticeToRetry)));
    }
    let write = Write {
        customer: rows::customer_id(&row.customer_id)?,
        at,
        actor,
        kind: WriteKind::NoticeRetried { card, queued },
    };
    record_write(tx, &write, policy).await?;
    Ok(Step::Commit(Ok(queued)))
}

/// A card, its customer and its lock, as the desk reads them.
#[derive(sqlx::FromRow)]
struct DeskCardRow {
    card_number: String,
    card_status: String,
    lock_reason: Option<String>,
    lock_note: Option<String>,
    status_before_lock: Option<String>,
    replaced_by: Option<String>,
    card_version: i64,
    #[sqlx(try_from = "Time")]
    card_created_at: DateTime<Utc>,
    #[sqlx(try_from = "Time")]
    card_updated_at: DateTime<Utc>,
    customer_id: String,
    customer_status: String,
    phone_number: Option<String>,
    gender: String,
    customer_version: i64,
    erased_at: Option<Time>,
    #[sqlx(try_from = "Time")]
    customer_created_at: DateTime<Utc>,
    #[sqlx(try_from = "Time")]
    customer_updated_at: DateTime<Utc>,
}

/// The cards (with customer, wallets, notice and last change) that `filter` (on `cards c` and
/// `customers u`, one placeholder) selects, in card number order.
async fn desk_cards(
    conn: &mut Conn<'_>,
    notice_rows: NoticeRows,
    filter: &'static str,
    key: &str,
) -> Result<Vec<DeskCard>, StoreError> {
    let found: Vec<DeskCardRow> = sql(format!(
        "select c.card_number, c.status as card_status, c.lock_reason, c.lock_note,
                c.status_before_lock, c.replaced_by, c.version as card_version,
                c.created_at as card_created_at, c.updated_at as card_updated_at,
                u.id as customer_id, u.status as customer_status, u.phone_number, u.gender,
                u.version as customer_version, u.erased_at,
                u.created_at as customer_created_at, u.updated_at as customer_updated_at
         from cards c join customers u on u.id = c.customer_id
         where {filter} order by u.id, c.card_number limit 100"
    ))
    .bind(key)
    .fetch_all(conn)
    .await
    .context("read the cards")?;
    // Each card's wallets, latest ALCS notice and last change: one statement each for all
    // the cards found (a phone shared by a hundred cards costs four statements, not 301).
    let numbers: Vec<&str> = found.iter().map(|r| r.card_number.as_str()).collect();
    if numbers.is_empty() {
        return Ok(Vec::new());
    }
    let list = placeholders(0, numbers.len());
    let mut wallets_of: HashMap<String, Vec<rows::WalletRow>> = HashMap::new();
    let wallets: Vec<rows::BatchWalletRow> = numbers
        .iter()
        .fold(
            sql(format!(
                "select card_number, {WALLET_COLUMNS} from wallets
                 where card_number in ({list}) order by card_number, position"
            )),
            |s, n| s.bind(*n),
        )
        .fetch_all(conn)
        .await
        .context("read the wallets")?;
    for row in wallets {
        wallets_of
            .entry(row.card_number)
            .or_default()
            .push(row.wallet);
    }
    let subjects = placeholders(1, numbers.len());
    let notices: Vec<NoticeRow> = numbers
        .iter()
        .fold(
            // Each card's newest notice: driven by the subjects' index, one probe per notice
            // found (a plan over `max(id) … group by` could run the aggregate once per row of
            // the outbox when statistics are stale).
            sql(format!(
                "select o.subject, o.status, o.attempts, o.last_error, o.created_at,
                        o.delivered_at
                 from outbox o
                 where o.kind = $1 and o.subject in ({subjects})
                   and not exists (select 1 from outbox n
                                   where n.subject = o.subject and n.kind = $1 and n.id > o.id)"
            ))
            .bind(notice_rows.kind),
            |s, n| s.bind((notice_rows.subject)(n)),
        )
        .fetch_all(conn)
        .await
        .context("read the cards' ALCS notices")?;
    let mut notice_of: HashMap<String, NoticeRow> = notices
        .into_iter()
        .map(|n| (n.subject.clone(), n))
        .collect();
    let changes: Vec<HistoryEntry> = numbers
        .iter()
        .fold(
            sql(format!(
                "select {HISTORY_COLUMNS} from audit_log a
                 where a.card_number in ({list})
                   and not exists (select 1 from audit_log n
                                   where n.card_number = a.card_number and n.id > a.id)"
            )),
            |s, n| s.bind(*n),
        )
        .fetch_all(conn)
        .await
        .context("read the cards' last changes")?;
    let mut change_of: HashMap<String, HistoryEntry> = changes
        .into_iter()
        .filter_map(|c| Some((c.card_number.clone()?, c)))
        .collect();
    let mut cards = Vec::with_capacity(found.len());
    for row in found {
        let number = rows::card_number(&row.card_number)?;
        let wallets = rows::wallets(wallets_of.remove(&row.card_number).unwrap_or_default())?;
        let notice = notice_of.remove(&(notice_rows.subject)(number.as_str()));
        let last_change = change_of.remove(&row.card_number);
        cards.push(DeskCard {
            status: rows::status(&row.card_status)?,
            lock: rows::lock(
                &row.card_status,
                row.lock_reason.as_deref(),
                row.status_before_lock.as_deref(),
                row.replaced_by.as_deref(),
            )?,
            lock_note: row.lock_note,
            version: row.card_version,
            customer: DeskCustomerHead {
                id: rows::customer_id(&row.customer_id)?,
                status: rows::status(&row.customer_status)?,
                phone: row.phone_number.map(PhoneNumber::from_stored),
                gender: rows::gender(&row.gender)?,
                version: row.customer_version,
                erased_at: row.erased_at.map(DateTime::from),
                created_at: row.customer_created_at,
                updated_at: row.customer_updated_at,
            },
            wallets,
            notice: notice.map(|n| NoticeState {
                status: n.status,
                attempts: n.attempts,
                last_error: n.last_error,
                created_at: n.created_at,
                delivered_at: n.delivered_at.map(DateTime::from),
            }),
            last_change,
            created_at: row.card_created_at,
            updated_at: row.card_updated_at,
            number,
        });
    }
    Ok(cards)
}
