//! The transaction scripts, written once for both databases: register, apply, and the audit
//! entry and outbox rows every write records.
//!
//! Each returns how its transaction should end ([`Step`]) instead of ending it, so that its
//! caller (`ops.rs`) ends every transaction one way, and on SQLite's group commit no answer
//! leaves before the commit that holds what it rests on.

use chrono::{DateTime, Utc};

use super::rows::{
    self, CACHE_COLUMNS, CacheRow, SNAPSHOT_COLUMNS, SnapshotRow, WALLET_COLUMNS, WalletRow,
};
use super::sql::{Conn, Time, sql};
use super::{
    AttemptLimit, Consequences, Context, OutboxRow, StoreError, Write, WriteKind, WritePolicy,
};
use crate::domain::{
    Actor, Applied, CardCommand, CardNumber, CardRecord, CardStatus, CustomerId, CustomerStatus,
    Identity, LockChange, PhoneNumber, PinHmac, Refusal, Registered, Registration, RuleError,
    Wallet,
};

/// How a write's transaction ends.
pub(super) enum Step<T> {
    /// Keep what was written, and answer `T`.
    Commit(T),
    /// Keep nothing, and answer `T`.
    Discard(T),
}

/// What a registration did, and what it recorded for the caller.
pub(super) type Registering = (Registered, Vec<OutboxRow>);

pub(super) async fn register(
    tx: &mut Conn<'_>,
    reg: &Registration,
    identity: Option<&Identity>,
    at: DateTime<Utc>,
    policy: &dyn WritePolicy,
) -> Result<Step<Registering>, StoreError> {
    let customer = CustomerId::generate();
    // Stored with the card, and compared with the stored one when the number is taken.
    let fingerprint = reg.fingerprint();
    sql(
        "insert into customers (id, status, phone_number, gender, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $5)",
    )
    .bind(customer.to_string())
    .bind(CustomerStatus::NotActivated.as_str())
    .bind(reg.phone.as_ref().map(PhoneNumber::as_str))
    .bind(reg.gender.as_str())
    .bind(at)
    .execute(tx)
    .await
    .context("insert the customer")?;
    let card = NewCard {
        number: &reg.card_number,
        customer,
        status: CardStatus::WaitingForActivation,
        pin: &reg.pin,
        fingerprint: &fingerprint,
    };
    if !insert_card(tx, &card, at).await? {
        // Someone registered the number first, and committed (PostgreSQL's read committed
        // sees it in this next statement) or is earlier in this SQLite batch (then the answer
        // waits for that commit).
        let (owner, status, stored): (String, String, String) = sql(
            "select customer_id, status, registration_fingerprint from cards where card_number = $1",
        )
        .bind(reg.card_number.as_str())
        .fetch_one(tx)
        .await
        .context("read the registered card")?;
        let replay = rows::status::<CardStatus>(&status)? == CardStatus::WaitingForActivation
            && stored == fingerprint;
        let answer = if replay {
            Registered::Replayed(rows::customer_id(&owner)?)
        } else {
            Registered::AlreadyRegistered
        };
        return Ok(Step::Discard((answer, Vec::new())));
    }
    insert_wallets(tx, &reg.card_number, &reg.wallets, at).await?;
    let write = Write {
        customer,
        at,
        actor: &Actor::Alcs,
        kind: WriteKind::Registered {
            card: &reg.card_number,
            registration: reg,
            identity,
        },
    };
    // What was written is known: no need to read it back.
    let records: Vec<CardRecord> = if policy.needs_cards(&write) {
        vec![CardRecord::registered(reg, customer)]
    } else {
        Vec::new()
    };
    let effects = keep(tx, &write, policy.consequences(&write, &records)).await?;
    Ok(Step::Commit((Registered::Created(customer), effects)))
}

/// A card to insert.
pub(super) struct NewCard<'a> {
    pub(super) number: &'a CardNumber,
    pub(super) customer: CustomerId,
    pub(super) status: CardStatus,
    pub(super) pin: &'a PinHmac,
    /// Tells a replayed registration from another one.
    pub(super) fingerprint: &'a str,
}

/// Inserts a card unless its number is taken; whether it did. The primary key decides: on
/// PostgreSQL a concurrent insert of the number waits here for the other transaction, then
/// inserts nothing; on SQLite writers take turns.
pub(super) async fn insert_card(
    tx: &mut Conn<'_>,
    card: &NewCard<'_>,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let inserted = sql(
        "insert into cards (card_number, customer_id, status, pin_hmac,
                            registration_fingerprint, created_at, updated_at)
         values ($1, $2, $3, $4, $5, $6, $6)
         on conflict (card_number) do nothing",
    )
    .bind(card.number.as_str())
    .bind(card.customer.to_string())
    .bind(card.status.as_str())
    .bind(card.pin.expose())
    .bind(card.fingerprint)
    .bind(at)
    .execute(tx)
    .await
    .context("insert the card")?;
    Ok(inserted == 1)
}

/// All wallets in one statement: one round trip however many.
async fn insert_wallets(
    tx: &mut Conn<'_>,
    card: &CardNumber,
    wallets: &[Wallet],
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if wallets.is_empty() {
        return Ok(());
    }
    // Card and time are $1 and $2; each wallet adds nine values.
    let values: Vec<String> = (0..wallets.len())
        .map(|i| {
            let p: Vec<String> = (3 + i * 9..12 + i * 9).map(|k| format!("${k}")).collect();
            format!(
                "($1, {}, {}, {}::numeric, {}, {}::numeric, {}::numeric, {}::numeric, {}::numeric, {}, $2, $2)",
                p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8]
            )
        })
        .collect();
    let mut statement = sql(format!(
        "insert into wallets (card_number, wallet_id, position, balance, has_stat,
             stat_lost, stat_transferred_out, stat_transferred_in, stat_issued,
             version, created_at, updated_at)
         values {}",
        values.join(", ")
    ))
    .bind(card.as_str())
    .bind(at);
    for (position, w) in wallets.iter().enumerate() {
        let stat = w.stat.clone().unwrap_or_default();
        statement = statement
            .bind(w.id.as_str())
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(w.balance.to_string())
            .bind(w.stat.is_some())
            .bind(rows::amount(stat.lost))
            .bind(rows::amount(stat.transferred_out))
            .bind(rows::amount(stat.transferred_in))
            .bind(rows::amount(stat.issued))
            .bind(w.version.as_deref());
    }
    statement.execute(tx).await.context("insert the wallets")?;
    Ok(())
}

/// What applying a command did, and what it recorded for the caller.
pub(super) type Application = (Result<Applied, Refusal>, Vec<OutboxRow>);

/// A command refused: nothing is kept.
pub(super) fn refused(refusal: Refusal) -> Result<Step<Application>, StoreError> {
    Ok(Step::Discard((Err(refusal), Vec::new())))
}

/// The card and its customer, as a command on the card decides on them, locked until the
/// transaction ends (PostgreSQL; SQLite's writer is exclusive anyway).
pub(super) async fn lock_card(
    tx: &mut Conn<'_>,
    card: &CardNumber,
) -> Result<Option<SnapshotRow>, StoreError> {
    sql(format!(
        "select {SNAPSHOT_COLUMNS} from cards c join customers u on u.id = c.customer_id
         where c.card_number = $1
         for update of c, u"
    ))
    .bind(card.as_str())
    .fetch_optional(tx)
    .await
    .context("lock the card")
}

#[allow(clippy::too_many_arguments)] // one transaction's inputs, each used once
pub(super) async fn apply(
    tx: &mut Conn<'_>,
    card: &CardNumber,
    command: &CardCommand,
    actor: &Actor,
    at: DateTime<Utc>,
    limit: AttemptLimit,
    policy: &dyn WritePolicy,
) -> Result<Step<Application>, StoreError> {
    let Some(row) = lock_card(tx, card).await? else {
        return refused(Refusal::CardNotFound);
    };
    let customer = rows::customer_id(&row.customer_id)?;
    let before = row.snapshot()?;
    let activation = matches!(command, CardCommand::Activate { .. });
    let mut failures = 0;
    if activation {
        let (count, oldest): (i64, Option<Time>) =
            sql("select count(*), min(failed_at) from activation_failures
             where card_number = $1 and failed_at > $2")
            .bind(card.as_str())
            .bind(limit.since(at))
            .fetch_one(tx)
            .await
            .context("count failed activations")?;
        if let Some(retry_after) = limit.locked(count, oldest.map(DateTime::from), at) {
            // Refused without a write: a client hammering a locked card costs one read.
            return refused(Refusal::TooManyAttempts { retry_after });
        }
        failures = count;
    }
    let change = match command.decide(&before) {
        Ok(change) => change,
        Err(RuleError::IncorrectPhoneNumber) if activation => {
            // The failure counts towards the limit, so it is committed, with its audit entry.
            record_activation_failure(tx, card, at, limit).await?;
            let write = Write {
                customer,
                at,
                actor,
                kind: WriteKind::ActivationFailed {
                    card,
                    failures: failures + 1,
                    limit,
                },
            };
            keep(tx, &write, policy.consequences(&write, &[])).await?;
            let refusal = Refusal::Rule(RuleError::IncorrectPhoneNumber);
            return Ok(Step::Commit((Err(refusal), Vec::new())));
        }
        Err(rule) => return refused(Refusal::Rule(rule)),
    };
    if change.is_empty() {
        return Ok(Step::Discard((Ok(Applied::Unchanged), Vec::new())));
    }
    update_card(tx, card, change.card_status, change.lock.as_ref(), at).await?;
    // The customer's cache hash lists its cards' statuses, so a card change bumps it too.
    sql("update customers set status = coalesce($1, status),
             phone_number = coalesce($2, phone_number),
             version = version + 1, updated_at = $3
         where id = $4")
    .bind(change.customer_status.map(CustomerStatus::as_str))
    .bind(change.phone.as_ref().map(PhoneNumber::as_str))
    .bind(at)
    .bind(customer.to_string())
    .execute(tx)
    .await
    .context("update the customer")?;
    let write = Write {
        customer,
        at,
        actor,
        kind: WriteKind::Changed {
            card,
            command,
            before: &before,
            change: &change,
        },
    };
    let effects = record_write(tx, &write, policy).await?;
    Ok(Step::Commit((Ok(Applied::Changed), effects)))
}

/// Writes a card's new status and lock (each when given), bumping its version.
pub(super) async fn update_card(
    tx: &mut Conn<'_>,
    card: &CardNumber,
    status: Option<CardStatus>,
    lock: Option<&LockChange>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    if status.is_none() && lock.is_none() {
        return Ok(());
    }
    // `set_lock` = 1 writes the four lock columns as given (nulls clear them).
    let (set_lock, reason, note, before, replaced_by) = match lock {
        None => (false, None, None, None, None),
        Some(LockChange::Clear) => (true, None, None, None, None),
        Some(LockChange::Set {
            reason,
            note,
            before,
            replaced_by,
        }) => (
            true,
            Some(reason.as_str()),
            note.as_ref().map(|n| n.as_str().to_owned()),
            Some(before.as_str()),
            replaced_by.as_ref().map(|c| c.as_str().to_owned()),
        ),
    };
    sql("update cards set status = coalesce($1, status),
             lock_reason = case when $2 then $3 else lock_reason end,
             lock_note = case when $2 then $4 else lock_note end,
             status_before_lock = case when $2 then $5 else status_before_lock end,
             replaced_by = case when $2 then $6 else replaced_by end,
             version = version + 1, updated_at = $7
         where card_number = $8")
    .bind(status.map(CardStatus::as_str))
    .bind(set_lock)
    .bind(reason)
    .bind(note)
    .bind(before)
    .bind(replaced_by)
    .bind(at)
    .bind(card.as_str())
    .execute(tx)
    .await
    .context("update the card")?;
    if status == Some(CardStatus::Locked) {
        // A lock (lost card, ALCS, the desk, an erasure) ends the customer's portal sessions:
        // whoever holds the card may be signed in with it.
        sql("delete from sessions where audience = 'portal'
             and holder = (select customer_id from cards where card_number = $1)")
        .bind(card.as_str())
        .execute(tx)
        .await
        .context("end the portal sessions of a locked card's customer")?;
    }
    Ok(())
}

/// Writes the audit entries and outbox rows of `write`, giving the policy the changed cards
/// as the write leaves them when it asks for them.
pub(super) async fn record_write(
    tx: &mut Conn<'_>,
    write: &Write<'_>,
    policy: &dyn WritePolicy,
) -> Result<Vec<OutboxRow>, StoreError> {
    let mut records = Vec::new();
    if policy.needs_cards(write) {
        for card in write.kind.cards() {
            records.push(record(tx, card).await?);
        }
    }
    keep(tx, write, policy.consequences(write, &records)).await
}

/// Records a failed activation of `card`, forgetting its failures that left the window.
async fn record_activation_failure(
    tx: &mut Conn<'_>,
    card: &CardNumber,
    at: DateTime<Utc>,
    limit: AttemptLimit,
) -> Result<(), StoreError> {
    sql("delete from activation_failures where card_number = $1 and failed_at <= $2")
        .bind(card.as_str())
        .bind(limit.since(at))
        .execute(tx)
        .await
        .context("forget old failed activations")?;
    sql("insert into activation_failures (card_number, failed_at) values ($1, $2)")
        .bind(card.as_str())
        .bind(at)
        .execute(tx)
        .await
        .context("record a failed activation")?;
    Ok(())
}

/// Writes a write's audit entries and outbox rows; returns the rows the policy asked back.
async fn keep(
    tx: &mut Conn<'_>,
    write: &Write<'_>,
    consequences: Consequences,
) -> Result<Vec<OutboxRow>, StoreError> {
    for audit in &consequences.audit {
        sql(
            "insert into audit_log (occurred_at, operation, card_number, customer_id, identity,
                                    details, actor)
             values ($1, $2, $3, $4, $5::jsonb, $6::jsonb, $7)",
        )
        .bind(write.at)
        .bind(audit.operation)
        .bind(audit.card.as_ref().map(CardNumber::as_str))
        .bind(write.customer.to_string())
        .bind(audit.identity.as_deref())
        .bind(audit.details.as_str())
        .bind(write.actor.audit_name())
        .execute(tx)
        .await
        .context("write the audit record")?;
    }
    let effects = consequences.effects;
    if effects.is_empty() {
        return Ok(Vec::new());
    }
    // All rows in one statement: one round trip however many. `created_at` is $1, the
    // customer every row concerns $2.
    let rows: Vec<String> = (0..effects.len())
        .map(|i| {
            let n = 3 + i * 6;
            format!(
                "(${n}, ${}, ${}::jsonb, ${}, ${}, ${}, $1, $2)",
                n + 1,
                n + 2,
                n + 3,
                n + 4,
                n + 5
            )
        })
        .collect();
    let mut statement = sql(format!(
        "insert into outbox (kind, subject, payload, personal, status, next_attempt_at,
                             created_at, customer_id)
         values {}
         returning id",
        rows.join(", ")
    ))
    .bind(write.at)
    .bind(write.customer.to_string());
    for effect in &effects {
        statement = statement
            .bind(effect.kind)
            .bind(effect.subject.as_str())
            .bind(effect.payload.as_str())
            .bind(effect.personal)
            .bind(effect.status.as_str())
            .bind(effect.due);
    }
    let mut ids: Vec<(i64,)> = statement
        .fetch_all(tx)
        .await
        .context("record the side effects")?;
    if ids.len() != effects.len() {
        return Err(StoreError::failed(
            "record the side effects",
            "the outbox returned a different number of rows",
        ));
    }
    // Ids are drawn in the order the rows are inserted, which is the order of the effects.
    ids.sort_unstable();
    Ok(effects
        .into_iter()
        .zip(ids)
        .filter(|(effect, _)| effect.report)
        .map(|(effect, (id,))| OutboxRow {
            id,
            kind: effect.kind.to_owned(),
            payload: effect.payload,
            attempts: 0,
            created_at: write.at,
        })
        .collect())
}

/// The card and its customer as stored now.
pub(super) async fn record(tx: &mut Conn<'_>, card: &CardNumber) -> Result<CardRecord, StoreError> {
    let row: CacheRow = sql(format!(
        "select {CACHE_COLUMNS} from cards c join customers u on u.id = c.customer_id
         where c.card_number = $1"
    ))
    .bind(card.as_str())
    .fetch_one(tx)
    .await
    .context("read the card")?;
    let wallets = wallets(tx, card).await?;
    let cards: Vec<(String, String)> =
        sql("select card_number, status from cards where customer_id = $1 order by card_number")
            .bind(row.customer_id.as_str())
            .fetch_all(tx)
            .await
            .context("read the customer's cards")?;
    row.into_record(card, wallets, cards)
}

/// A card's wallets in the order they were registered. Amounts are read as text, so that
/// numeric's scale (`132.00`) survives.
pub(super) async fn wallets(
    conn: &mut Conn<'_>,
    card: &CardNumber,
) -> Result<Vec<Wallet>, StoreError> {
    let rows: Vec<WalletRow> = sql(format!(
        "select {WALLET_COLUMNS} from wallets where card_number = $1 order by position"
    ))
    .bind(card.as_str())
    .fetch_all(conn)
    .await
    .context("read the wallets")?;
    rows::wallets(rows)
}
