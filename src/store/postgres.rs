//! PostgreSQL, the production system of record.
//!
//! Uniqueness and concurrency are the database's: the card number's primary key decides
//! between concurrent registrations (an `insert … on conflict do nothing` waits for the other
//! transaction), and changes lock the card and customer rows (`for update`) for the length of
//! their transaction, so any number of instances stay correct. Outbox rows are claimed with
//! `for update skip locked`, so instances share delivery without doing the same work twice.
//!
//! Every connection carries `statement_timeout` and `lock_timeout`, and the pool an acquire
//! timeout: a database that is down or saturated answers 503 in bounded time, and the pool
//! reconnects by itself when it is back.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::{Connection, Postgres, Row, Transaction};

use super::rows::{
    self, CACHE_COLUMNS, CacheRow, SNAPSHOT_COLUMNS, SnapshotRow, WalletRow, amount, customer_id,
    status,
};
use super::{
    Applied, ApplyError, CardView, Context, Outcome, Registered, Store, StoreError, StoreOptions,
};
use crate::cache::CacheState;
use crate::domain::{
    CardCommand, CardNumber, CardStatus, CustomerId, CustomerStatus, Identity, PhoneNumber,
    Registration, RuleError, Wallet,
};
use crate::outbox::{Effect, Pending, Status, SummaryLine};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

pub struct PgStore {
    pool: PgPool,
    /// For reachability probes, apart from the pool.
    connect_options: PgConnectOptions,
    options: StoreOptions,
}

impl PgStore {
    /// Connects and applies pending migrations under PostgreSQL's advisory lock (sqlx takes it),
    /// so several instances can start at once.
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        let millis = opts.timeout.as_millis().to_string();
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::failed("parse the PostgreSQL URL", e))?
            .options([
                ("statement_timeout", millis.as_str()),
                ("lock_timeout", millis.as_str()),
                ("idle_in_transaction_session_timeout", "60000"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.timeout)
            .connect_with(options.clone())
            .await
            .context("connect to PostgreSQL")?;
        let store = Self {
            pool,
            connect_options: options,
            options: opts.clone(),
        };
        store.migrate().await?;
        Ok(store)
    }

    pub async fn migrate(&self) -> Result<(), StoreError> {
        MIGRATOR
            .run(&self.pool)
            .await
            .map_err(|e| StoreError::failed("apply PostgreSQL migrations", e))
    }

    async fn begin(&self) -> Result<Transaction<'static, Postgres>, StoreError> {
        self.pool.begin().await.context("begin a transaction")
    }

    /// Records the cache writes for `card`'s current state, read inside the transaction.
    async fn record_effects(
        &self,
        tx: &mut PgConnection,
        card: &CardNumber,
        at: DateTime<Utc>,
        notice: Option<Effect>,
    ) -> Result<Vec<Pending>, StoreError> {
        let mut effects: Vec<Effect> = Vec::new();
        if self.options.cache_effects {
            let state = cache_state(tx, card).await?;
            effects.extend(state.hashes().into_iter().map(Effect::CacheWrite));
        }
        effects.extend(notice);
        if effects.is_empty() {
            return Ok(Vec::new());
        }
        // All rows in one statement: one round trip, however many effects.
        let mut columns: OutboxColumns = Default::default();
        let mut statuses = Vec::with_capacity(effects.len());
        for effect in &effects {
            let (status, due) = super::initial(effect, &self.options, at);
            let (kind, payload) = effect.encode();
            columns.0.push(kind);
            columns.1.push(effect.subject());
            columns.2.push(payload);
            columns.3.push(status.as_str());
            columns.4.push(due);
            statuses.push(status);
        }
        let mut ids: Vec<i64> = sqlx::query_scalar(
            "insert into outbox (kind, subject, payload, status, next_attempt_at, created_at)
             select kind, subject, payload::jsonb, status, due, $6
             from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
                  with ordinality as e(kind, subject, payload, status, due, n)
             order by n
             returning id",
        )
        .bind(&columns.0)
        .bind(&columns.1)
        .bind(&columns.2)
        .bind(&columns.3)
        .bind(&columns.4)
        .bind(at)
        .fetch_all(&mut *tx)
        .await
        .context("record the side effects")?;
        // Ids are drawn in insertion order, which is the order of the effects.
        ids.sort_unstable();
        if ids.len() != effects.len() {
            return Err(StoreError::failed(
                "record the side effects",
                "the outbox returned a different number of rows",
            ));
        }
        Ok(effects
            .into_iter()
            .zip(statuses)
            .zip(ids)
            .filter(|((_, status), _)| *status == Status::Pending)
            .map(|((effect, _), id)| Pending {
                id,
                effect,
                attempts: 0,
                created_at: at,
            })
            .collect())
    }
}

/// The outbox rows of one change, column by column, for `unnest`: kind, subject, payload,
/// status, due.
type OutboxColumns = (
    Vec<&'static str>,
    Vec<String>,
    Vec<String>,
    Vec<&'static str>,
    Vec<DateTime<Utc>>,
);

async fn audit(
    tx: &mut PgConnection,
    at: DateTime<Utc>,
    operation: &str,
    card: &CardNumber,
    customer: &str,
    identity: Option<String>,
    details: String,
) -> Result<(), StoreError> {
    sqlx::query(
        "insert into audit_log (occurred_at, operation, card_number, customer_id, identity, details)
         values ($1, $2, $3, $4, $5::jsonb, $6::jsonb)",
    )
    .bind(at)
    .bind(operation)
    .bind(card.as_str())
    .bind(customer)
    .bind(identity)
    .bind(details)
    .execute(&mut *tx)
    .await
    .context("write the audit record")?;
    Ok(())
}

/// Failed activations of `card` since `since`: how many, and the oldest.
async fn activation_failures(
    tx: &mut PgConnection,
    card: &CardNumber,
    since: DateTime<Utc>,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    sqlx::query_as(
        "select count(*), min(failed_at) from activation_failures
         where card_number = $1 and failed_at > $2",
    )
    .bind(card.as_str())
    .bind(since)
    .fetch_one(&mut *tx)
    .await
    .context("count failed activations")
}

/// Records a failed activation of `card`, dropping its failures that left the window.
async fn record_activation_failure(
    tx: &mut PgConnection,
    card: &CardNumber,
    at: DateTime<Utc>,
    since: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query(
        "with old as (delete from activation_failures where card_number = $1 and failed_at <= $3)
         insert into activation_failures (card_number, failed_at) values ($1, $2)",
    )
    .bind(card.as_str())
    .bind(at)
    .bind(since)
    .execute(&mut *tx)
    .await
    .context("record a failed activation")?;
    Ok(())
}

async fn wallets(conn: &mut PgConnection, card: &CardNumber) -> Result<Vec<Wallet>, StoreError> {
    // Amounts as text, so that numeric's scale (`132.00`) survives.
    let rows: Vec<WalletRow> = sqlx::query_as(
        "select wallet_id, balance::text as balance, has_stat, stat_lost::text as stat_lost,
                stat_transferred_out::text as stat_transferred_out,
                stat_transferred_in::text as stat_transferred_in,
                stat_issued::text as stat_issued, version
         from wallets where card_number = $1 order by position",
    )
    .bind(card.as_str())
    .fetch_all(&mut *conn)
    .await
    .context("read the wallets")?;
    rows::wallets(rows)
}

/// A card and its customer as the cache shows them.
async fn cache_state(conn: &mut PgConnection, card: &CardNumber) -> Result<CacheState, StoreError> {
    let row: CacheRow = sqlx::query_as(&format!(
        "select {CACHE_COLUMNS} from cards c join customers u on u.id = c.customer_id
         where c.card_number = $1"
    ))
    .bind(card.as_str())
    .fetch_one(&mut *conn)
    .await
    .context("read the card for the cache")?;
    let wallets = wallets(conn, card).await?;
    let cards: Vec<(String, String)> = sqlx::query_as(
        "select card_number, status from cards where customer_id = $1 order by card_number",
    )
    .bind(&row.customer_id)
    .fetch_all(&mut *conn)
    .await
    .context("read the customer's cards")?;
    row.into_state(card, wallets, cards)
}

#[async_trait]
impl Store for PgStore {
    async fn register(
        &self,
        reg: &Registration,
        identity: Option<&Identity>,
        at: DateTime<Utc>,
    ) -> Result<Outcome<Registered>, StoreError> {
        let customer = CustomerId::generate().to_string();
        // Stored with the card, and compared with the stored one when the number is taken.
        let fingerprint = reg.fingerprint();
        let mut tx = self.begin().await?;
        sqlx::query(
            "insert into customers (id, status, phone_number, gender, created_at, updated_at)
             values ($1, 'NotActivated', $2, $3, $4, $4)",
        )
        .bind(&customer)
        .bind(reg.phone.as_ref().map(PhoneNumber::as_str))
        .bind(reg.gender.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await
        .context("insert the customer")?;
        // The primary key decides: a concurrent registration of the number waits here for the
        // other transaction, then inserts nothing.
        let inserted = sqlx::query(
            "insert into cards (card_number, customer_id, status, pin_hmac,
                                registration_fingerprint, created_at, updated_at)
             values ($1, $2, 'WaitingForActivation', $3, $4, $5, $5)
             on conflict (card_number) do nothing",
        )
        .bind(reg.card_number.as_str())
        .bind(&customer)
        .bind(reg.pin.expose())
        .bind(&fingerprint)
        .bind(at)
        .execute(&mut *tx)
        .await
        .context("insert the card")?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await.context("roll back")?;
            // The winner has committed (the conflict waited for it): a fresh read sees it.
            let row = sqlx::query(
                "select customer_id, status, registration_fingerprint from cards where card_number = $1",
            )
            .bind(reg.card_number.as_str())
            .fetch_one(&self.pool)
            .await
            .context("read the registered card")?;
            let card_status: String = row.get(1);
            let stored_fingerprint: String = row.get(2);
            if card_status == CardStatus::WaitingForActivation.as_str()
                && stored_fingerprint == fingerprint
            {
                let id = customer_id(row.get(0))?;
                return Ok(Outcome::without_effects(Registered::Replayed(id)));
            }
            return Ok(Outcome::without_effects(Registered::AlreadyRegistered));
        }
        for (position, w) in reg.wallets.iter().enumerate() {
            let stat = w.stat.clone().unwrap_or_default();
            sqlx::query(
                "insert into wallets (card_number, wallet_id, position, balance, has_stat,
                     stat_lost, stat_transferred_out, stat_transferred_in, stat_issued,
                     version, created_at, updated_at)
                 values ($1, $2, $3, $4::numeric, $5, $6::numeric, $7::numeric, $8::numeric,
                         $9::numeric, $10, $11, $11)",
            )
            .bind(reg.card_number.as_str())
            .bind(w.id.as_str())
            .bind(i32::try_from(position).unwrap_or(i32::MAX))
            .bind(w.balance.to_string())
            .bind(w.stat.is_some())
            .bind(amount(stat.lost))
            .bind(amount(stat.transferred_out))
            .bind(amount(stat.transferred_in))
            .bind(amount(stat.issued))
            .bind(w.version.as_deref())
            .bind(at)
            .execute(&mut *tx)
            .await
            .context("insert a wallet")?;
        }
        let identity = identity
            .map(serde_json::to_string)
            .transpose()
            .map_err(|e| StoreError::failed("encode the POS identity", e))?;
        audit(
            &mut tx,
            at,
            "register",
            &reg.card_number,
            &customer,
            identity,
            super::registration_details(reg),
        )
        .await?;
        let effects = self
            .record_effects(&mut tx, &reg.card_number, at, None)
            .await?;
        tx.commit().await.context("commit the registration")?;
        Ok(Outcome {
            result: Registered::Created(customer_id(&customer)?),
            effects,
        })
    }

    async fn apply(
        &self,
        card: &CardNumber,
        command: &CardCommand,
        at: DateTime<Utc>,
    ) -> Result<Outcome<Applied>, ApplyError> {
        let mut tx = self.begin().await?;
        let Some(row) = sqlx::query_as::<_, SnapshotRow>(&format!(
            "select {SNAPSHOT_COLUMNS} from cards c join customers u on u.id = c.customer_id
             where c.card_number = $1
             for update of c, u"
        ))
        .bind(card.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("lock the card")?
        else {
            return Err(ApplyError::CardNotFound);
        };
        let customer = row.customer_id.clone();
        let snapshot = row.snapshot()?;
        let limit = self.options.activation_limit;
        let failures = if matches!(command, CardCommand::Activate { .. }) {
            let (failures, oldest) = activation_failures(&mut tx, card, limit.since(at)).await?;
            if let Some(retry_after) = limit.locked(failures, oldest, at) {
                // Refused without a write: a client hammering a locked card costs one read.
                return Err(ApplyError::TooManyAttempts { retry_after });
            }
            failures
        } else {
            0
        };
        let change = match command.decide(&snapshot) {
            Err(RuleError::IncorrectPhoneNumber)
                if matches!(command, CardCommand::Activate { .. }) =>
            {
                // The failure counts towards the limit, so it is committed, with its audit record.
                record_activation_failure(&mut tx, card, at, limit.since(at)).await?;
                audit(
                    &mut tx,
                    at,
                    super::ACTIVATION_FAILED,
                    card,
                    &customer,
                    None,
                    limit.failure_details(failures + 1),
                )
                .await?;
                tx.commit().await.context("commit the failed attempt")?;
                return Err(RuleError::IncorrectPhoneNumber.into());
            }
            decided => decided?,
        };
        if change.is_empty() {
            return Ok(Outcome::without_effects(Applied::Unchanged));
        }
        if let Some(new) = change.card_status {
            sqlx::query(
                "update cards set status = $1, version = version + 1, updated_at = $2
                 where card_number = $3",
            )
            .bind(new.as_str())
            .bind(at)
            .bind(card.as_str())
            .execute(&mut *tx)
            .await
            .context("update the card")?;
        }
        // The customer's cache hash lists its cards' statuses, so a card change bumps it too.
        sqlx::query(
            "update customers set status = coalesce($1, status),
                 phone_number = coalesce($2, phone_number),
                 version = version + 1, updated_at = $3
             where id = $4",
        )
        .bind(change.customer_status.map(CustomerStatus::as_str))
        .bind(change.phone.as_ref().map(PhoneNumber::as_str))
        .bind(at)
        .bind(&customer)
        .execute(&mut *tx)
        .await
        .context("update the customer")?;
        audit(
            &mut tx,
            at,
            command.name(),
            card,
            &customer,
            None,
            super::change_details(&snapshot, &change),
        )
        .await?;
        let notice = super::notices(command, &change, card, &customer, at);
        let effects = self.record_effects(&mut tx, card, at, notice).await?;
        tx.commit().await.context("commit the change")?;
        Ok(Outcome {
            result: Applied::Changed,
            effects,
        })
    }

    async fn card(&self, card: &CardNumber) -> Result<Option<CardView>, StoreError> {
        // Repeatable read: the card and its wallets come from one snapshot.
        let mut tx = self.begin().await?;
        sqlx::query("set transaction isolation level repeatable read, read only")
            .execute(&mut *tx)
            .await
            .context("begin a read")?;
        let Some(row) = sqlx::query(
            "select c.status, c.customer_id, u.status, u.phone_number, u.gender,
                    c.created_at, greatest(c.updated_at, u.updated_at)
             from cards c join customers u on u.id = c.customer_id
             where c.card_number = $1",
        )
        .bind(card.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("read the card")?
        else {
            return Ok(None);
        };
        let wallets = wallets(&mut tx, card).await?;
        tx.commit().await.context("end the read")?;
        Ok(Some(CardView {
            card_number: card.clone(),
            status: status(row.get(0))?,
            customer_id: customer_id(row.get(1))?,
            customer_status: status(row.get(2))?,
            phone: row
                .get::<Option<String>, _>(3)
                .map(PhoneNumber::from_stored),
            gender: rows::gender(row.get(4))?,
            wallets,
            created_at: row.get(5),
            updated_at: row.get(6),
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1")
            .execute(&self.pool)
            .await
            .context("ping the database")?;
        Ok(())
    }

    async fn claim_effects(
        &self,
        now: DateTime<Utc>,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<Pending>, StoreError> {
        let lease = chrono::Duration::from_std(lease).unwrap_or(chrono::Duration::MAX);
        let rows = sqlx::query(
            "update outbox set attempts = attempts + 1, next_attempt_at = $1
             where id in (select id from outbox
                          where status = 'pending' and next_attempt_at <= $2
                          order by id limit $3
                          for update skip locked)
             returning id, kind, payload::text, attempts, created_at",
        )
        .bind(now + lease)
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await
        .context("claim outbox rows")?;
        rows.into_iter()
            .map(|row| {
                Ok(Pending {
                    id: row.get(0),
                    effect: Effect::decode(row.get(1), row.get(2))
                        .map_err(|e| StoreError::failed("decode an outbox row", e))?,
                    attempts: row.get(3),
                    created_at: row.get(4),
                })
            })
            .collect()
    }

    async fn effects_done(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        // One statement, no explicit transaction: the marks arrive in batches off the request
        // path (see `outbox::worker::mark_done`), so one commit covers many rows, and a task
        // stopped between statements can leave no transaction open.
        sqlx::query(
            "with gone as (delete from outbox where id = any($1) and kind = 'cache_write')
             update outbox set status = 'delivered', delivered_at = now(), last_error = null
             where id = any($1) and kind <> 'cache_write'",
        )
        .bind(ids)
        .execute(&self.pool)
        .await
        .context("mark outbox rows delivered")?;
        Ok(())
    }

    async fn effect_dead(&self, id: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query("update outbox set status = 'dead', last_error = $1 where id = $2")
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await
            .context("give up an outbox row")?;
        Ok(())
    }

    async fn release_effects(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "update outbox set next_attempt_at = now(), attempts = greatest(attempts - 1, 0)
             where id = any($1) and status = 'pending'",
        )
        .bind(ids)
        .execute(&self.pool)
        .await
        .context("release outbox rows")?;
        Ok(())
    }

    async fn outbox_summary(&self) -> Result<Vec<SummaryLine>, StoreError> {
        let rows = sqlx::query(&format!(
            "select kind, {} as state, count(*), min(created_at) from outbox
             group by kind, state order by kind, state",
            super::SUMMARY_STATE
        ))
        .fetch_all(&self.pool)
        .await
        .context("summarize the outbox")?;
        Ok(rows
            .into_iter()
            .map(|row| SummaryLine {
                kind: row.get(0),
                state: row.get(1),
                count: row.get(2),
                oldest: row.get(3),
            })
            .collect())
    }

    async fn retry_dead(&self) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "update outbox set status = 'pending', attempts = 0, next_attempt_at = now()
             where status in ('dead', 'unsent')",
        )
        .execute(&self.pool)
        .await
        .context("queue dead outbox rows again")?
        .rows_affected())
    }

    async fn effect_failed(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("update outbox set next_attempt_at = $1, last_error = $2 where id = $3")
            .bind(retry_at)
            .bind(error)
            .bind(id)
            .execute(&self.pool)
            .await
            .context("reschedule an outbox row")?;
        Ok(())
    }

    async fn cache_states(
        &self,
        after: Option<&CardNumber>,
        limit: i64,
    ) -> Result<Vec<CacheState>, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("set transaction isolation level repeatable read, read only")
            .execute(&mut *tx)
            .await
            .context("begin a read")?;
        let numbers: Vec<String> = sqlx::query_scalar(
            "select card_number from cards where card_number > $1 order by card_number limit $2",
        )
        .bind(after.map_or("", CardNumber::as_str))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .context("list cards")?;
        let mut states = Vec::with_capacity(numbers.len());
        for number in numbers {
            let number = CardNumber::parse(&number)
                .map_err(|e| StoreError::failed("read a card number", e))?;
            states.push(cache_state(&mut tx, &number).await?);
        }
        tx.commit().await.context("end the read")?;
        Ok(states)
    }

    async fn count_cards(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("select count(*) from cards")
            .fetch_one(&self.pool)
            .await
            .context("count cards")
    }

    async fn probe_write(&self, instance: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        // One statement commits on its own; old instances' rows go with the same write.
        sqlx::query(
            "with gone as (delete from health_probes
                           where probed_at < $2 - interval '1 day' and instance <> $1)
             insert into health_probes (instance, probed_at) values ($1, $2)
             on conflict (instance) do update set probed_at = excluded.probed_at",
        )
        .bind(instance)
        .bind(at)
        .execute(&self.pool)
        .await
        .context("write a readiness probe")?;
        Ok(())
    }

    async fn reachable(&self) -> bool {
        // A connection of its own: the pool's timeout cannot tell "down" from "busy".
        match PgConnection::connect_with(&self.connect_options).await {
            Ok(mut conn) => {
                let ok = sqlx::query("select 1").execute(&mut conn).await.is_ok();
                let _ = conn.close().await;
                ok
            }
            Err(_) => false,
        }
    }

    async fn database_id(&self) -> Result<String, StoreError> {
        sqlx::query(
            "insert into meta (key, value) values ('database_id', $1) on conflict do nothing",
        )
        .bind(uuid::Uuid::new_v4().simple().to_string())
        .execute(&self.pool)
        .await
        .context("record the database id")?;
        sqlx::query_scalar("select value from meta where key = 'database_id'")
            .fetch_one(&self.pool)
            .await
            .context("read the database id")
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let until = at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let taken = sqlx::query(
            "insert into leases (name, holder, expires_at) values ($1, $2, $3)
             on conflict (name) do update set holder = excluded.holder,
                 expires_at = excluded.expires_at
             where leases.holder = excluded.holder or leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(until)
        .bind(at)
        .execute(&self.pool)
        .await
        .context("take a lease")?
        .rows_affected();
        Ok(taken == 1)
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("delete from leases where name = $1 and holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await
            .context("drop a lease")?;
        Ok(())
    }

    async fn expedite_cache_writes(&self, at: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "update outbox set next_attempt_at = $1
             where kind = 'cache_write' and status = 'pending' and next_attempt_at > $1",
        )
        .bind(at)
        .execute(&self.pool)
        .await
        .context("make cache writes due")?
        .rows_affected())
    }
}
