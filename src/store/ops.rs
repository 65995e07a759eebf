//! [`Store`] for both databases, written once: the transaction scripts run and ended, the
//! reads, the outbox queue, leases and probes.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::db::{Db, Tx};
use super::rows::{self, CACHE_COLUMNS, CardViewRow, WALLET_COLUMNS};
use super::script::{self, Step};
use super::sql::{FromEither, Statement, placeholders, sql};
use super::{Context, Outcome, PoolState, Store, StoreError, StoreOptions, WritePolicy};
use crate::domain::{
    Actor, Applied, CardCommand, CardNumber, CardRecord, CardView, Identity, Refusal, Registered,
    Registration,
};

/// A card's place in the order bulk reads go in (most recently changed first, then by card
/// number, both descending): a batch starts after the last one's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub changed_at: DateTime<Utc>,
    pub card: CardNumber,
}

/// A batch of cards as the cache shows them, and where the next batch starts.
#[derive(Debug, Default)]
pub struct Batch {
    pub records: Vec<CardRecord>,
    /// The last card's position; `None` when the batch is empty (no card is left).
    pub last: Option<Position>,
}

/// What the database says of a card, for telling whether a key in the cache is accounted for.
#[derive(Debug, Clone)]
pub struct Known {
    pub card: String,
    /// `None` if the stored HMAC does not parse (then no PIN index key accounts for it).
    pub pin: Option<crate::domain::PinHmac>,
    /// Whether the card stands in the PIN index (not replaced, its customer not erased).
    pub pin_indexed: bool,
}

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

    /// Any read of what is stored, in PostgreSQL's spelling ([`super::sql`] runs it on either
    /// database): for what no operation shows, as the tests' peeks at what a request left.
    pub async fn read<T: FromEither>(
        &self,
        statement: &Statement,
        context: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        self.db.read_all(statement, context).await
    }

    /// The database, for the capabilities written beside their users (the outbox queue).
    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// Up to `limit` cards after `after` in the reading order (most recently changed first,
    /// then by card number, descending), each with its customer: three statements for the whole
    /// batch (the cards and customers, their wallets, the customers' cards), over one snapshot,
    /// whatever its size. Each batch is its own short read: no snapshot is held across batches,
    /// so a scan of millions of cards never holds back vacuum.
    pub(crate) async fn records(
        &self,
        after: Option<&Position>,
        limit: i64,
    ) -> Result<Batch, StoreError> {
        let mut tx = self.db.begin_read().await?;
        let mut conn = tx.conn();
        let columns = format!(
            "select c.card_number, c.updated_at as changed_at, {CACHE_COLUMNS}
             from cards c join customers u on u.id = c.customer_id"
        );
        let order = "order by c.updated_at desc, c.card_number desc";
        let statement = match after {
            None => sql(format!("{columns} {order} limit $1")).bind(limit),
            Some(p) => sql(format!(
                "{columns} where (c.updated_at, c.card_number) < ($1, $2) {order} limit $3"
            ))
            .bind(p.changed_at)
            .bind(p.card.as_str())
            .bind(limit),
        };
        let rows: Vec<rows::BatchRow> =
            statement.fetch_all(&mut conn).await.context("list cards")?;
        let Some(last) = rows.last() else {
            tx.end().await?;
            return Ok(Batch::default());
        };
        let last = Position {
            changed_at: last.changed_at.into(),
            card: rows::card_number(&last.card_number)?,
        };
        let numbers: Vec<&str> = rows.iter().map(|r| r.card_number.as_str()).collect();
        let mut customers: Vec<&str> = rows.iter().map(|r| r.row.customer_id.as_str()).collect();
        customers.sort_unstable();
        customers.dedup();
        let wallets: Vec<rows::BatchWalletRow> = numbers
            .iter()
            .fold(
                sql(format!(
                    "select card_number, {WALLET_COLUMNS} from wallets
                     where card_number in ({}) order by card_number, position",
                    placeholders(0, numbers.len())
                )),
                |s, n| s.bind(*n),
            )
            .fetch_all(&mut conn)
            .await
            .context("read the wallets")?;
        let customers_cards: Vec<(String, String, String)> = customers
            .iter()
            .fold(
                sql(format!(
                    "select customer_id, card_number, status from cards
                     where customer_id in ({}) order by customer_id, card_number",
                    placeholders(0, customers.len())
                )),
                |s, c| s.bind(*c),
            )
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
        let records = rows
            .into_iter()
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
            .collect::<Result<_, _>>()?;
        Ok(Batch {
            records,
            last: Some(last),
        })
    }

    /// What the database says of each of these cards (those it has), for finding keys in the
    /// cache that no card accounts for.
    pub(crate) async fn known_cards(&self, numbers: &[String]) -> Result<Vec<Known>, StoreError> {
        if numbers.is_empty() {
            return Ok(Vec::new());
        }
        let statement = numbers.iter().fold(
            sql(format!(
                "select c.card_number, c.pin_hmac,
                        case when c.replaced_by is null and u.erased_at is null
                             then 1 else 0 end as pin_indexed
                 from cards c join customers u on u.id = c.customer_id
                 where c.card_number in ({})",
                placeholders(0, numbers.len())
            )),
            |s, n| s.bind(n),
        );
        let rows: Vec<(String, String, i32)> =
            self.db.read_all(&statement, "look cards up").await?;
        Ok(rows
            .into_iter()
            .map(|(card, pin, indexed)| Known {
                card,
                pin: crate::domain::PinHmac::parse(&pin).ok(),
                pin_indexed: indexed == 1,
            })
            .collect())
    }

    /// Which of these customers have a card (every customer the cache shows has one).
    pub(crate) async fn known_customers(&self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let statement = ids.iter().fold(
            sql(format!(
                "select distinct customer_id from cards where customer_id in ({})",
                placeholders(0, ids.len())
            )),
            |s, id| s.bind(id),
        );
        let rows: Vec<(String,)> = self.db.read_all(&statement, "look customers up").await?;
        Ok(rows.into_iter().map(|(id,)| id).collect())
    }

    pub(crate) async fn count_cards(&self) -> Result<i64, StoreError> {
        self.count("select count(*) from cards", "count cards")
            .await
    }

    pub(crate) async fn count_customers(&self) -> Result<i64, StoreError> {
        self.count(
            "select count(distinct customer_id) from cards",
            "count customers with a card",
        )
        .await
    }

    async fn count(
        &self,
        statement: &'static str,
        context: &'static str,
    ) -> Result<i64, StoreError> {
        let counted: Vec<(i64,)> = self.db.read_all(&sql(statement), context).await?;
        Ok(counted.first().map_or(0, |(n,)| *n))
    }
}

/// Ends a write's transaction as its script said, and returns the answer. A failure (the
/// script's, or the commit's) is shown to the database's breaker: a write refused by a read-only
/// server shows only here.
pub(super) async fn end<T>(
    db: &Db,
    tx: Tx,
    step: Result<Step<T>, StoreError>,
) -> Result<T, StoreError> {
    let result = finish(tx, step).await;
    if let Err(e) = &result {
        db.observe(e);
    }
    result
}

async fn finish<T>(tx: Tx, step: Result<Step<T>, StoreError>) -> Result<T, StoreError> {
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
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Registered>, StoreError> {
        let mut tx = self.db.begin().await?;
        let step = script::register(&mut tx.conn(), registration, identity, at, policy).await;
        let (result, effects) = end(&self.db, tx, step).await?;
        Ok(Outcome { result, effects })
    }

    async fn apply(
        &self,
        card: &CardNumber,
        command: &CardCommand,
        actor: &Actor,
        at: DateTime<Utc>,
        policy: &dyn WritePolicy,
    ) -> Result<Outcome<Result<Applied, Refusal>>, StoreError> {
        let limit = self.options.activation_limit;
        let mut tx = self.db.begin().await?;
        let step = script::apply(&mut tx.conn(), card, command, actor, at, limit, policy).await;
        let (result, effects) = end(&self.db, tx, step).await?;
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
