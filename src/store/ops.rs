//! [`Store`] for both databases, written once: the transaction scripts run and ended, the
//! reads, the outbox queue, leases and probes.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::{Db, Tx};
use super::rows::{self, CACHE_COLUMNS, CardViewRow, WALLET_COLUMNS};
use super::script::{self, Step};
use super::sql::sql;
use super::{
    AuditEntry, Context, Outcome, PoolState, Recorder, RowCounts, Store, StoreError, StoreOptions,
};
use crate::domain::{
    Actor, Applied, CardCommand, CardNumber, CardRecord, CardView, Identity, Refusal, Registered,
    Registration,
};

pub struct SqlStore {
    db: Db,
    options: StoreOptions,
}

impl SqlStore {
    pub(super) fn new(db: Db, options: &StoreOptions) -> Self {
        Self {
            db,
            options: options.clone(),
        }
    }

    /// This database's identity: a random id written on first use and never changed. The
    /// cache carries it in its marker key, so an emptied or foreign cache is recognized.
    pub(crate) async fn database_id(&self) -> Result<String, StoreError> {
        let first =
            sql("insert into meta (key, value) values ('database_id', $1) on conflict do nothing")
                .bind(uuid::Uuid::new_v4().simple().to_string());
        self.db.execute(&first, "record the database id").await?;
        // Through the writer, not a reader: the read must see the write just made.
        let id: Vec<(String,)> = self
            .db
            .write_all(
                &sql("select value from meta where key = 'database_id'"),
                "read the database id",
            )
            .await?;
        id.into_iter()
            .next()
            .map(|(id,)| id)
            .ok_or_else(|| StoreError::failed("read the database id", "no database id"))
    }

    /// The database, for the capabilities written beside their users (the outbox queue).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Up to `limit` cards after `after` in card-number order, each with its customer: three
    /// statements for the whole batch (the cards and customers, their wallets, the customers'
    /// cards), over one snapshot, whatever its size.
    pub(crate) async fn records(
        &self,
        after: Option<&CardNumber>,
        limit: i64,
    ) -> Result<Vec<CardRecord>, StoreError> {
        let mut tx = self.db.begin_read().await?;
        let mut conn = tx.conn();
        let rows: Vec<rows::BatchRow> = sql(format!(
            "select c.card_number, {CACHE_COLUMNS} from cards c
             join customers u on u.id = c.customer_id
             where c.card_number > $1 order by c.card_number limit $2"
        ))
        .bind(after.map_or("", CardNumber::as_str))
        .bind(limit)
        .fetch_all(&mut conn)
        .await
        .context("list cards")?;
        let (Some(first), Some(last)) = (rows.first(), rows.last()) else {
            tx.end().await?;
            return Ok(Vec::new());
        };
        // The batch is exactly the cards in [first, last]: the same snapshot, keyset order.
        let (first, last) = (first.card_number.clone(), last.card_number.clone());
        let wallets: Vec<rows::BatchWalletRow> = sql(format!(
            "select card_number, {WALLET_COLUMNS} from wallets
             where card_number >= $1 and card_number <= $2 order by card_number, position"
        ))
        .bind(first.as_str())
        .bind(last.as_str())
        .fetch_all(&mut conn)
        .await
        .context("read the wallets")?;
        let customers_cards: Vec<(String, String, String)> =
            sql("select customer_id, card_number, status from cards
             where customer_id in (select customer_id from cards
                                   where card_number >= $1 and card_number <= $2)
             order by customer_id, card_number")
            .bind(first.as_str())
            .bind(last.as_str())
            .fetch_all(&mut conn)
            .await
            .context("read the customers' cards")?;
        tx.end().await?;
        let mut wallets_of: std::collections::HashMap<String, Vec<rows::WalletRow>> =
            std::collections::HashMap::new();
        for row in wallets {
            wallets_of
                .entry(row.card_number)
                .or_default()
                .push(row.wallet);
        }
        let mut cards_of: std::collections::HashMap<String, Vec<(String, String)>> =
            std::collections::HashMap::new();
        for (customer, card, status) in customers_cards {
            cards_of.entry(customer).or_default().push((card, status));
        }
        rows.into_iter()
            .map(|row| {
                let number = rows::card_number(&row.card_number)?;
                let wallets =
                    rows::wallets(wallets_of.remove(&row.card_number).unwrap_or_default())?;
                let cards = cards_of
                    .get(&row.row.customer_id)
                    .cloned()
                    .unwrap_or_default();
                row.row.into_record(&number, wallets, cards)
            })
            .collect()
    }

    pub(crate) async fn count_cards(&self) -> Result<i64, StoreError> {
        let counted: Vec<(i64,)> = self
            .db
            .read_all(&sql("select count(*) from cards"), "count cards")
            .await?;
        Ok(counted.first().map_or(0, |(n,)| *n))
    }
}

/// Ends a write's transaction as its script said, and returns the answer.
pub(super) async fn end<T>(tx: Tx, step: Result<Step<T>, StoreError>) -> Result<T, StoreError> {
    match step {
        Ok(Step::Commit(answer)) => {
            tx.commit("commit the change").await?;
            Ok(answer)
        }
        Ok(Step::Discard(answer)) => {
            tx.rollback("end a write that keeps nothing").await?;
            Ok(answer)
        }
        Err(e) => {
            // The error is the answer; on SQLite the unit is undone (and the connection
            // checked) when it is dropped.
            drop(tx);
            Err(e)
        }
    }
}

#[async_trait]
impl Store for SqlStore {
    async fn register(
        &self,
        registration: &Registration,
        identity: Option<&Identity>,
        at: DateTime<Utc>,
        recorder: &dyn Recorder,
    ) -> Result<Outcome<Registered>, StoreError> {
        let mut tx = self.db.begin().await?;
        let step = script::register(&mut tx.conn(), registration, identity, at, recorder).await;
        let (result, effects) = end(tx, step).await?;
        Ok(Outcome { result, effects })
    }

    async fn apply(
        &self,
        card: &CardNumber,
        command: &CardCommand,
        actor: &Actor,
        at: DateTime<Utc>,
        recorder: &dyn Recorder,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError> {
        let limit = self.options.activation_limit;
        let mut tx = self.db.begin().await?;
        let step = script::apply(&mut tx.conn(), card, command, actor, at, limit, recorder).await;
        let (result, effects) = end(tx, step).await?;
        Ok(Outcome { result, effects })
    }

    async fn card(&self, card: &CardNumber) -> Result<Option<CardView>, StoreError> {
        // One snapshot: the card and its wallets agree.
        let mut tx = self.db.begin_read().await?;
        let mut conn = tx.conn();
        let Some(row): Option<CardViewRow> = sql(
            "select c.status as card_status, c.customer_id, u.status as customer_status,
                    u.phone_number, u.gender, c.created_at,
                    greatest(c.updated_at, u.updated_at) as updated_at
             from cards c join customers u on u.id = c.customer_id
             where c.card_number = $1",
        )
        .bind(card.as_str())
        .fetch_optional(&mut conn)
        .await
        .context("read the card")?
        else {
            return Ok(None);
        };
        let wallets = script::wallets(&mut conn, card).await?;
        tx.end().await?;
        row.into_view(card, wallets).map(Some)
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.db
            .read_all::<(i32,)>(&sql("select 1"), "ping the database")
            .await?;
        Ok(())
    }

    async fn count_rows(&self) -> Result<RowCounts, StoreError> {
        let counts = sql("select (select count(*) from customers) as customers,
                    (select count(*) from cards) as cards,
                    (select count(*) from wallets) as wallets,
                    (select count(*) from audit_log) as audit_entries,
                    (select count(*) from outbox) as outbox");
        let counted: Vec<RowCounts> = self.db.read_all(&counts, "count rows").await?;
        counted
            .into_iter()
            .next()
            .ok_or_else(|| StoreError::failed("count rows", "no answer"))
    }

    async fn audit_trail(&self, card: &CardNumber) -> Result<Vec<AuditEntry>, StoreError> {
        let trail = sql(
            "select occurred_at, operation, customer_id, identity::text as identity,
                    details::text as details
             from audit_log where card_number = $1 order by id",
        )
        .bind(card.as_str());
        self.db.read_all(&trail, "read the audit trail").await
    }

    async fn probe_write(&self, instance: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let probe = sql(
            "insert into health_probes (instance, probed_at) values ($1, $2)
             on conflict (instance) do update set probed_at = excluded.probed_at",
        )
        .bind(instance)
        .bind(at);
        self.db.execute(&probe, "write a readiness probe").await?;
        // Instances that stopped long ago leave the table.
        let gone = sql("delete from health_probes where probed_at < $1 and instance <> $2")
            .bind(at - chrono::Duration::days(1))
            .bind(instance);
        self.db.execute(&gone, "write a readiness probe").await?;
        Ok(())
    }

    async fn reachable(&self) -> bool {
        self.db.reachable().await
    }

    fn pool(&self) -> Option<PoolState> {
        self.db.pool()
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let until = at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let take = sql(
            "insert into leases (name, holder, expires_at) values ($1, $2, $3)
             on conflict (name) do update set holder = excluded.holder,
                 expires_at = excluded.expires_at
             where leases.holder = excluded.holder or leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(at);
        Ok(self.db.execute(&take, "take a lease").await? == 1)
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let drop = sql("delete from leases where name = $1 and holder = $2")
            .bind(name)
            .bind(holder);
        self.db.execute(&drop, "drop a lease").await?;
        Ok(())
    }
}
