//! The embedded default: one SQLite file in WAL mode.
//!
//! All writes go through one connection and its transactions start with `BEGIN IMMEDIATE`, so
//! a transaction that reads the card and then writes it can never fail with `SQLITE_BUSY` half
//! way (a deferred `BEGIN` would), and writers queue instead of racing; the writers that queue
//! share one commit (group commit, see `group.rs`). Reads use their own
//! pool and see the last committed state (WAL lets them run beside the writer).
//! `synchronous = FULL`: a commit is fsync'd before the API answers 2xx.

use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Row, SqliteConnection};

use super::group::{WriteTx, Writer};
use super::rows::{
    self, CACHE_COLUMNS, CacheRow, SNAPSHOT_COLUMNS, SnapshotRow, WalletRow, amount, status,
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

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub struct SqliteStore {
    writer: Writer,
    reader: SqlitePool,
    options: StoreOptions,
}

impl SqliteStore {
    /// Opens (creating if missing) and migrates the database file the URL names.
    pub async fn connect(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        // How long a request waits for the write lock or a connection before it is answered 503.
        let busy_timeout: Duration = opts.timeout;
        let options = SqliteConnectOptions::from_str(url)
            .map_err(|e| StoreError::failed("parse the SQLite URL", e))?;
        let file = options.get_filename();
        if !opts.create && file != std::path::Path::new(":memory:") && !file.exists() {
            return Err(StoreError::NoDatabase {
                file: file.display().to_string(),
            });
        }
        let options = options
            .create_if_missing(opts.create)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .acquire_timeout(busy_timeout)
            .connect_with(options.clone())
            .await
            .context("open the SQLite database")?;
        MIGRATOR
            .run(&writer)
            .await
            .map_err(|e| StoreError::failed("apply SQLite migrations", e))?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(busy_timeout)
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .context("open SQLite read connections")?;
        Ok(Self {
            writer: Writer::new(writer, busy_timeout),
            reader,
            options: opts.clone(),
        })
    }

    async fn begin(&self) -> Result<WriteTx, StoreError> {
        self.writer.begin().await
    }
}

fn ts(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

fn parse_ts(s: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| StoreError::failed("read a timestamp", e))
}

async fn audit(
    tx: &mut SqliteConnection,
    at: DateTime<Utc>,
    operation: &str,
    card: &CardNumber,
    customer: &str,
    identity: Option<String>,
    details: String,
) -> Result<(), StoreError> {
    sqlx::query(
        "insert into audit_log (occurred_at, operation, card_number, customer_id, identity, details)
         values (?, ?, ?, ?, ?, ?)",
    )
    .bind(ts(at))
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
    tx: &mut SqliteConnection,
    card: &CardNumber,
    since: DateTime<Utc>,
) -> Result<(i64, Option<DateTime<Utc>>), StoreError> {
    let (count, oldest): (i64, Option<String>) = sqlx::query_as(
        "select count(*), min(failed_at) from activation_failures
         where card_number = ? and failed_at > ?",
    )
    .bind(card.as_str())
    .bind(ts(since))
    .fetch_one(&mut *tx)
    .await
    .context("count failed activations")?;
    Ok((count, oldest.as_deref().map(parse_ts).transpose()?))
}

/// Records a failed activation of `card`, dropping its failures that left the window.
async fn record_activation_failure(
    tx: &mut SqliteConnection,
    card: &CardNumber,
    at: DateTime<Utc>,
    since: DateTime<Utc>,
) -> Result<(), StoreError> {
    sqlx::query("delete from activation_failures where card_number = ? and failed_at <= ?")
        .bind(card.as_str())
        .bind(ts(since))
        .execute(&mut *tx)
        .await
        .context("forget old failed activations")?;
    sqlx::query("insert into activation_failures (card_number, failed_at) values (?, ?)")
        .bind(card.as_str())
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .context("record a failed activation")?;
    Ok(())
}

#[async_trait]
impl Store for SqliteStore {
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
        // The card's primary key decides: a second registration of the number inserts nothing.
        sqlx::query(
            "insert into customers (id, status, phone_number, gender, created_at, updated_at)
             values (?, 'NotActivated', ?, ?, ?, ?)",
        )
        .bind(&customer)
        .bind(reg.phone.as_ref().map(PhoneNumber::as_str))
        .bind(reg.gender.as_str())
        .bind(ts(at))
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .context("insert the customer")?;
        let inserted = sqlx::query(
            "insert into cards (card_number, customer_id, status, pin_hmac,
                                registration_fingerprint, created_at, updated_at)
             values (?, ?, 'WaitingForActivation', ?, ?, ?, ?)
             on conflict (card_number) do nothing",
        )
        .bind(reg.card_number.as_str())
        .bind(&customer)
        .bind(reg.pin.expose())
        .bind(&fingerprint)
        .bind(ts(at))
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .context("insert the card")?
        .rows_affected();
        if inserted == 0 {
            // Someone registered the number first: committed, or earlier in this batch (then
            // this answer waits for that commit, in `rollback`). Either way this read sees it.
            let row = sqlx::query(
                "select customer_id, status, registration_fingerprint from cards where card_number = ?",
            )
            .bind(reg.card_number.as_str())
            .fetch_one(&mut *tx)
            .await
            .context("read the registered card")?;
            tx.rollback("read the registered card").await?;
            let status: String = row.get(1);
            let stored_fingerprint: String = row.get(2);
            if status == CardStatus::WaitingForActivation.as_str()
                && stored_fingerprint == fingerprint
            {
                let id = CustomerId::parse(row.get(0))
                    .map_err(|e| StoreError::failed("read a customer id", e))?;
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
                 values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(reg.card_number.as_str())
            .bind(w.id.as_str())
            .bind(i64::try_from(position).unwrap_or(i64::MAX))
            .bind(w.balance.to_string())
            .bind(w.stat.is_some())
            .bind(amount(stat.lost))
            .bind(amount(stat.transferred_out))
            .bind(amount(stat.transferred_in))
            .bind(amount(stat.issued))
            .bind(w.version.as_deref())
            .bind(ts(at))
            .bind(ts(at))
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
        tx.commit("commit the registration").await?;
        let id = CustomerId::parse(&customer)
            .map_err(|e| StoreError::failed("read a customer id", e))?;
        Ok(Outcome {
            result: Registered::Created(id),
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
        // Whatever the answer, it may rest on what earlier units of the batch wrote (see
        // `group.rs`): it waits for their commit, and fails with it.
        match self.apply_in(&mut tx, card, command, at).await {
            Ok(Step::Commit(outcome)) => {
                tx.commit("commit the change").await?;
                Ok(outcome)
            }
            Ok(Step::CommitThenRefuse(refusal)) => {
                tx.commit("commit the failed attempt").await?;
                Err(refusal)
            }
            Ok(Step::Discard(outcome)) => {
                tx.rollback("end a change that changed nothing").await?;
                Ok(outcome)
            }
            Err(e) => {
                tx.rollback("end a refused change").await?;
                Err(e)
            }
        }
    }

    async fn card(&self, card: &CardNumber) -> Result<Option<CardView>, StoreError> {
        // One read transaction, so the card and its wallets come from the same snapshot.
        let mut tx = self.reader.begin().await.context("begin a read")?;
        let Some(row) = sqlx::query(
            "select c.status, c.customer_id, u.status, u.phone_number, u.gender,
                    c.created_at, max(c.updated_at, u.updated_at)
             from cards c join customers u on u.id = c.customer_id
             where c.card_number = ?",
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
            customer_id: rows::customer_id(row.get(1))?,
            customer_status: status(row.get(2))?,
            phone: row
                .get::<Option<String>, _>(3)
                .map(PhoneNumber::from_stored),
            gender: rows::gender(row.get(4))?,
            wallets,
            created_at: parse_ts(row.get(5))?,
            updated_at: parse_ts(row.get(6))?,
        }))
    }

    async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("select 1")
            .execute(&self.reader)
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
        let mut tx = self.begin().await?;
        let rows = sqlx::query(
            "update outbox set attempts = attempts + 1, next_attempt_at = ?
             where id in (select id from outbox
                          where status = 'pending' and next_attempt_at <= ?
                          order by id limit ?)
             returning id, kind, payload, attempts, created_at",
        )
        .bind(ts(now + lease))
        .bind(ts(now))
        .bind(limit)
        .fetch_all(&mut *tx)
        .await
        .context("claim outbox rows")?;
        tx.commit("commit the claim").await?;
        rows.into_iter()
            .map(|row| {
                Ok(Pending {
                    id: row.get(0),
                    effect: Effect::decode(row.get(1), row.get(2))
                        .map_err(|e| StoreError::failed("decode an outbox row", e))?,
                    attempts: row.get(3),
                    created_at: parse_ts(row.get(4))?,
                })
            })
            .collect()
    }

    async fn effects_done(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = ts(Utc::now());
        let mut tx = self.begin().await?;
        for id in ids {
            sqlx::query("delete from outbox where id = ? and kind = 'cache_write'")
                .bind(id)
                .execute(&mut *tx)
                .await
                .context("remove a delivered outbox row")?;
            sqlx::query(
                "update outbox set status = 'delivered', delivered_at = ?, last_error = null
                 where id = ? and kind <> 'cache_write'",
            )
            .bind(&now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("mark an outbox row delivered")?;
        }
        tx.commit("commit the delivery").await?;
        Ok(())
    }

    async fn effect_dead(&self, id: i64, error: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("update outbox set status = 'dead', last_error = ? where id = ?")
            .bind(error)
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("give up an outbox row")?;
        tx.commit("commit the dead letter").await?;
        Ok(())
    }

    async fn release_effects(&self, ids: &[i64]) -> Result<(), StoreError> {
        if ids.is_empty() {
            return Ok(());
        }
        let now = ts(Utc::now());
        let mut tx = self.begin().await?;
        for id in ids {
            sqlx::query(
                "update outbox set next_attempt_at = ?, attempts = max(attempts - 1, 0)
                 where id = ? and status = 'pending'",
            )
            .bind(&now)
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("release an outbox row")?;
        }
        tx.commit("commit the release").await?;
        Ok(())
    }

    async fn outbox_summary(&self) -> Result<Vec<SummaryLine>, StoreError> {
        let rows = sqlx::query(&format!(
            "select kind, {} as state, count(*), min(created_at) from outbox
             group by kind, state order by kind, state",
            super::SUMMARY_STATE
        ))
        .fetch_all(&self.reader)
        .await
        .context("summarize the outbox")?;
        rows.into_iter()
            .map(|row| {
                Ok(SummaryLine {
                    kind: row.get(0),
                    state: row.get(1),
                    count: row.get(2),
                    oldest: parse_ts(row.get(3))?,
                })
            })
            .collect()
    }

    async fn retry_dead(&self) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "update outbox set status = 'pending', attempts = 0, next_attempt_at = ?
             where status in ('dead', 'unsent')",
        )
        .bind(ts(Utc::now()))
        .execute(&mut *tx)
        .await
        .context("queue dead outbox rows again")?
        .rows_affected();
        tx.commit("commit the retry").await?;
        Ok(n)
    }

    async fn effect_failed(
        &self,
        id: i64,
        retry_at: DateTime<Utc>,
        error: &str,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("update outbox set next_attempt_at = ?, last_error = ? where id = ?")
            .bind(ts(retry_at))
            .bind(error)
            .bind(id)
            .execute(&mut *tx)
            .await
            .context("reschedule an outbox row")?;
        tx.commit("commit the reschedule").await?;
        Ok(())
    }

    async fn cache_states(
        &self,
        after: Option<&CardNumber>,
        limit: i64,
    ) -> Result<Vec<CacheState>, StoreError> {
        let mut tx = self.reader.begin().await.context("begin a read")?;
        let numbers: Vec<String> = sqlx::query_scalar(
            "select card_number from cards where card_number > ? order by card_number limit ?",
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
            .fetch_one(&self.reader)
            .await
            .context("count cards")
    }

    async fn probe_write(&self, instance: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "insert into health_probes (instance, probed_at) values (?, ?)
             on conflict (instance) do update set probed_at = excluded.probed_at",
        )
        .bind(instance)
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .context("write a readiness probe")?;
        tx.commit("commit a readiness probe").await
    }

    async fn database_id(&self) -> Result<String, StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query(
            "insert into meta (key, value) values ('database_id', ?) on conflict do nothing",
        )
        .bind(uuid::Uuid::new_v4().simple().to_string())
        .execute(&mut *tx)
        .await
        .context("record the database id")?;
        let id: String = sqlx::query_scalar("select value from meta where key = 'database_id'")
            .fetch_one(&mut *tx)
            .await
            .context("read the database id")?;
        tx.commit("commit the database id").await?;
        Ok(id)
    }

    async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        ttl: Duration,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let until = at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
        let mut tx = self.begin().await?;
        let taken = sqlx::query(
            "insert into leases (name, holder, expires_at) values (?, ?, ?)
             on conflict (name) do update set holder = excluded.holder,
                 expires_at = excluded.expires_at
             where leases.holder = excluded.holder or leases.expires_at <= ?",
        )
        .bind(name)
        .bind(holder)
        .bind(ts(until))
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .context("take a lease")?
        .rows_affected();
        tx.commit("commit a lease").await?;
        Ok(taken == 1)
    }

    async fn drop_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        sqlx::query("delete from leases where name = ? and holder = ?")
            .bind(name)
            .bind(holder)
            .execute(&mut *tx)
            .await
            .context("drop a lease")?;
        tx.commit("commit dropping a lease").await
    }

    async fn expedite_cache_writes(&self, at: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut tx = self.begin().await?;
        let n = sqlx::query(
            "update outbox set next_attempt_at = ?
             where kind = 'cache_write' and status = 'pending' and next_attempt_at > ?",
        )
        .bind(ts(at))
        .bind(ts(at))
        .execute(&mut *tx)
        .await
        .context("make cache writes due")?
        .rows_affected();
        tx.commit("commit making cache writes due").await?;
        Ok(n)
    }
}

impl SqliteStore {
    /// Records the cache writes for `card`'s current state (read inside the transaction, so
    /// they carry exactly the versions this transaction commits).
    async fn record_effects(
        &self,
        tx: &mut SqliteConnection,
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
        let mut pending = Vec::new();
        for effect in effects {
            let (status, due) = super::initial(&effect, &self.options, at);
            let (kind, payload) = effect.encode();
            let id: i64 = sqlx::query_scalar(
                "insert into outbox (kind, subject, payload, status, next_attempt_at, created_at)
                 values (?, ?, ?, ?, ?, ?) returning id",
            )
            .bind(kind)
            .bind(effect.subject())
            .bind(payload)
            .bind(status.as_str())
            .bind(ts(due))
            .bind(ts(at))
            .fetch_one(&mut *tx)
            .await
            .context("record a side effect")?;
            if status == Status::Pending {
                pending.push(Pending {
                    id,
                    effect,
                    attempts: 0,
                    created_at: at,
                });
            }
        }
        Ok(pending)
    }
}

/// A card and its customer as the cache shows them.
async fn cache_state(
    conn: &mut SqliteConnection,
    card: &CardNumber,
) -> Result<CacheState, StoreError> {
    let row: CacheRow = sqlx::query_as(&format!(
        "select {CACHE_COLUMNS} from cards c join customers u on u.id = c.customer_id
         where c.card_number = ?"
    ))
    .bind(card.as_str())
    .fetch_one(&mut *conn)
    .await
    .context("read the card for the cache")?;
    let wallets = wallets(conn, card).await?;
    let cards: Vec<(String, String)> = sqlx::query_as(
        "select card_number, status from cards where customer_id = ? order by card_number",
    )
    .bind(&row.customer_id)
    .fetch_all(&mut *conn)
    .await
    .context("read the customer's cards")?;
    row.into_state(card, wallets, cards)
}

async fn wallets(
    conn: &mut SqliteConnection,
    card: &CardNumber,
) -> Result<Vec<Wallet>, StoreError> {
    let rows: Vec<WalletRow> = sqlx::query_as(
        "select wallet_id, balance, has_stat, stat_lost, stat_transferred_out,
                stat_transferred_in, stat_issued, version
         from wallets where card_number = ? order by position",
    )
    .bind(card.as_str())
    .fetch_all(&mut *conn)
    .await
    .context("read the wallets")?;
    rows::wallets(rows)
}

impl SqliteStore {
    /// The work of `apply` inside its unit of the write transaction; what to do with the unit
    /// is returned, not done, so that every answer waits for the batch's commit.
    async fn apply_in(
        &self,
        tx: &mut WriteTx,
        card: &CardNumber,
        command: &CardCommand,
        at: DateTime<Utc>,
    ) -> Result<Step, ApplyError> {
        let tx: &mut SqliteConnection = tx;
        let Some(row) = sqlx::query_as::<_, SnapshotRow>(&format!(
            "select {SNAPSHOT_COLUMNS} from cards c join customers u on u.id = c.customer_id
             where c.card_number = ?"
        ))
        .bind(card.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("read the card")?
        else {
            return Err(ApplyError::CardNotFound);
        };
        let customer = row.customer_id.clone();
        let snapshot = row.snapshot()?;
        let limit = self.options.activation_limit;
        let failures = if matches!(command, CardCommand::Activate { .. }) {
            let (failures, oldest) = activation_failures(tx, card, limit.since(at)).await?;
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
                record_activation_failure(tx, card, at, limit.since(at)).await?;
                audit(
                    tx,
                    at,
                    super::ACTIVATION_FAILED,
                    card,
                    &customer,
                    None,
                    limit.failure_details(failures + 1),
                )
                .await?;
                return Ok(Step::CommitThenRefuse(
                    RuleError::IncorrectPhoneNumber.into(),
                ));
            }
            decided => decided?,
        };
        if change.is_empty() {
            return Ok(Step::Discard(Outcome::without_effects(Applied::Unchanged)));
        }
        if let Some(new) = change.card_status {
            sqlx::query(
                "update cards set status = ?, version = version + 1, updated_at = ?
                 where card_number = ?",
            )
            .bind(new.as_str())
            .bind(ts(at))
            .bind(card.as_str())
            .execute(&mut *tx)
            .await
            .context("update the card")?;
        }
        // The customer's cache hash lists its cards' statuses, so a card change bumps it too.
        sqlx::query(
            "update customers set status = coalesce(?, status),
                 phone_number = coalesce(?, phone_number),
                 version = version + 1, updated_at = ?
             where id = ?",
        )
        .bind(change.customer_status.map(CustomerStatus::as_str))
        .bind(change.phone.as_ref().map(PhoneNumber::as_str))
        .bind(ts(at))
        .bind(&customer)
        .execute(&mut *tx)
        .await
        .context("update the customer")?;
        audit(
            tx,
            at,
            command.name(),
            card,
            &customer,
            None,
            super::change_details(&snapshot, &change),
        )
        .await?;
        let notice = super::notices(command, &change, card, &customer, at);
        let effects = self.record_effects(tx, card, at, notice).await?;
        Ok(Step::Commit(Outcome {
            result: Applied::Changed,
            effects,
        }))
    }
}

/// How a write ends.
enum Step {
    /// Keep the change.
    Commit(Outcome<Applied>),
    /// Keep what was recorded (a failed attempt), and answer with the refusal.
    CommitThenRefuse(ApplyError),
    /// Nothing to keep.
    Discard(Outcome<Applied>),
}
