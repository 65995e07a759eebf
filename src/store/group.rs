//! Group commit on SQLite's single write connection.
//!
//! SQLite has one writer, and with `synchronous = FULL` every `COMMIT` waits for an fsync: one
//! transaction per request caps writes at the disk's fsync rate. Here the requests that queue
//! for the writer share one transaction instead. Each runs in its own `SAVEPOINT` (a failing one
//! rolls back alone, `ROLLBACK TO`; a kept one is left open for `COMMIT`), and the batch
//! commits when nobody else is waiting for the writer (or it reached [`MAX_BATCH`]): one fsync
//! for all of them. No request is answered
//! before the commit that holds its work is on disk; if that commit fails, every request in the
//! batch fails with it, and nothing of any of them is stored.
//!
//! Every way out leaves the connection in a known state, as before: the batch committed, rolled
//! back, or the connection closed (the pool opens a fresh one). A failed `COMMIT` after which
//! SQLite has already rolled back is answered by closing the connection when `ROLLBACK` fails.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

use super::{Context as _, StoreError};

/// Most units of work in one transaction; then it commits even if more are waiting, so that a
/// steady stream of writers still sees its commits.
const MAX_BATCH: usize = 128;

/// The single write connection, shared by group commit.
#[derive(Clone)]
pub(crate) struct Writer {
    pool: SqlitePool,
    state: Arc<Mutex<State>>,
    /// Units waiting for the connection: while there are any, a finishing unit leaves the
    /// batch open for them.
    waiting: Arc<AtomicUsize>,
    /// How long a unit waits for the connection before it is answered 503.
    timeout: Duration,
    batches: Arc<AtomicU64>,
}

struct State {
    conn: Option<PoolConnection<Sqlite>>,
    batch: Option<Batch>,
}

/// The open transaction and the units in it.
struct Batch {
    id: u64,
    units: usize,
    /// Units whose work is kept (released savepoints).
    kept: usize,
    /// The outcome of the batch's end, for the units that wait for it.
    done: watch::Sender<Option<Outcome>>,
}

/// How a batch ended, as each of its units learns it.
#[derive(Clone)]
enum Outcome {
    Committed,
    Failed(Arc<sqlx::Error>),
}

impl Writer {
    pub(super) fn new(pool: SqlitePool, timeout: Duration) -> Self {
        Self {
            pool,
            state: Arc::new(Mutex::new(State {
                conn: None,
                batch: None,
            })),
            waiting: Arc::default(),
            timeout,
            batches: Arc::default(),
        }
    }

    /// Starts a unit of work: the connection, inside the current batch (or a new one), inside a
    /// savepoint of its own.
    pub(super) async fn begin(&self) -> Result<WriteTx, StoreError> {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        let locked = tokio::time::timeout(self.timeout, self.state.clone().lock_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        let mut state = locked.map_err(|_| StoreError::Unavailable {
            context: "get the write connection",
            source: "timed out waiting for the SQLite writer".into(),
        })?;
        if state.conn.is_none() {
            state.conn = Some(
                self.pool
                    .acquire()
                    .await
                    .context("get the write connection")?,
            );
        }
        let new_batch = state.batch.is_none();
        let conn = state.conn.as_deref_mut().expect("set above");
        if new_batch {
            // One call for both: every call is a round trip to SQLite's thread, and the
            // writer's round trips are what every queued unit waits behind.
            if let Err(e) = sqlx::query("BEGIN IMMEDIATE; SAVEPOINT unit")
                .execute(conn)
                .await
            {
                // Busy or failing, the transaction begun or not: do not trust the connection
                // (closing it ends whatever began).
                close(&mut state);
                return Err(e).context("begin a write transaction");
            }
            let (done, _) = watch::channel(None);
            state.batch = Some(Batch {
                id: self.batches.fetch_add(1, Ordering::AcqRel),
                units: 0,
                kept: 0,
                done,
            });
        } else if let Err(e) = sqlx::query("SAVEPOINT unit").execute(conn).await {
            self.end_batch(&mut state).await;
            return Err(e).context("begin a write transaction");
        }
        if let Some(batch) = state.batch.as_mut() {
            batch.units += 1;
        }
        Ok(WriteTx {
            state: Some(state),
            writer: self.clone(),
        })
    }

    /// Ends the open batch: commits what its units kept (or rolls back when they kept nothing),
    /// tells the units that wait, and returns the outcome.
    async fn end_batch(&self, state: &mut State) -> Outcome {
        let Some(batch) = state.batch.take() else {
            return Outcome::Committed;
        };
        let Some(conn) = state.conn.as_deref_mut() else {
            let outcome = Outcome::Failed(Arc::new(sqlx::Error::PoolClosed));
            let _ = batch.done.send(Some(outcome.clone()));
            return outcome;
        };
        let outcome = if batch.kept == 0 {
            // Nothing to keep: no commit, no fsync.
            if sqlx::query("ROLLBACK").execute(conn).await.is_err() {
                close(state);
            }
            Outcome::Committed
        } else {
            match sqlx::query("COMMIT").execute(&mut *conn).await {
                Ok(_) => {
                    metrics::counter!(crate::metrics::names::SQLITE_COMMITS).increment(1);
                    metrics::counter!(crate::metrics::names::SQLITE_COMMITTED_UNITS)
                        .increment(batch.kept as u64);
                    Outcome::Committed
                }
                Err(e) => {
                    // SQLite may already have rolled back (disk full, I/O error); then the
                    // ROLLBACK fails too, and the connection is replaced.
                    if sqlx::query("ROLLBACK").execute(conn).await.is_err() {
                        close(state);
                    }
                    Outcome::Failed(Arc::new(e))
                }
            }
        };
        let _ = batch.done.send(Some(outcome.clone()));
        outcome
    }

    /// Ends a unit: its savepoint released (`keep`) or rolled back. Then, if other units wait
    /// for the connection, leaves the batch to them and waits for its end; otherwise ends it.
    async fn finish(
        &self,
        mut state: OwnedMutexGuard<State>,
        keep: bool,
    ) -> Result<(), Arc<sqlx::Error>> {
        if state.conn.is_none() {
            return Err(Arc::new(sqlx::Error::PoolClosed));
        }
        if keep {
            // A kept unit's savepoint is left open, not released: the next unit's nests inside
            // it, `ROLLBACK TO unit` still undoes only the innermost, and `COMMIT` keeps them
            // all. That saves a round trip per unit on the one connection every writer queues
            // for.
            if let Some(batch) = state.batch.as_mut() {
                batch.kept += 1;
            }
        } else {
            self.undo_unit(&mut state).await;
        }
        let Some(batch) = state.batch.as_ref() else {
            // The batch was ended while undoing (a broken connection): nothing kept.
            return Ok(());
        };
        let others = self.waiting.load(Ordering::Acquire) > 0 && batch.units < MAX_BATCH;
        let outcome = if !others || batch.kept == 0 {
            // Ended now also when nothing is kept yet: that costs a `ROLLBACK`, no fsync, and
            // leaves no transaction open for a waiter that may give up (another process would
            // find the database locked until this one wrote again).
            self.end_batch(&mut state).await
        } else {
            // Even a unit that kept nothing may have read what an earlier unit of the batch
            // wrote (a card registered a moment ago): its answer waits for that to be on disk.
            let id = batch.id;
            let done = batch.done.subscribe();
            drop(state);
            self.wait_for_end(id, done).await
        };
        match outcome {
            Outcome::Failed(e) => Err(e),
            Outcome::Committed => Ok(()),
        }
    }

    /// Waits for batch `id` to end, ending it if the writer turns out free with it still open.
    async fn wait_for_end(&self, id: u64, mut done: watch::Receiver<Option<Outcome>>) -> Outcome {
        loop {
            tokio::select! {
                outcome = ended(&mut done) => {
                    return outcome.unwrap_or_else(|| Outcome::Failed(Arc::new(sqlx::Error::PoolClosed)));
                }
                // The unit that was waiting may have given up (its own timeout) without taking
                // the connection: whoever finds the writer free with this batch open ends it.
                () = tokio::time::sleep(Duration::from_millis(5)) => {
                    if let Ok(mut state) = self.state.clone().try_lock_owned()
                        && state.batch.as_ref().is_some_and(|b| b.id == id)
                    {
                        return self.end_batch(&mut state).await;
                    }
                }
            }
        }
    }

    /// Rolls back the current unit's savepoint; if even that fails, the whole batch is ended
    /// (rolled back) and the connection closed.
    async fn undo_unit(&self, state: &mut State) {
        let Some(conn) = state.conn.as_deref_mut() else {
            return;
        };
        // The innermost `unit` is this unit's: the kept units' savepoints around it stay.
        let undone = sqlx::query("ROLLBACK TO unit; RELEASE unit")
            .execute(&mut *conn)
            .await;
        if let Err(e) = undone {
            tracing::debug!(error = %e, "a savepoint could not be rolled back; abandoning the batch");
            if let Some(batch) = state.batch.take() {
                let _ = batch
                    .done
                    .send(Some(Outcome::Failed(Arc::new(sqlx::Error::PoolClosed))));
            }
            if let Some(conn) = state.conn.as_deref_mut()
                && sqlx::query("ROLLBACK").execute(conn).await.is_err()
            {
                close(state);
            }
        }
    }
}

/// How the batch a unit waits for ended; `None` if it was dropped unended.
async fn ended(done: &mut watch::Receiver<Option<Outcome>>) -> Option<Outcome> {
    // The borrow is dropped here, not held across the caller's `select!`.
    done.wait_for(Option::is_some)
        .await
        .ok()
        .and_then(|outcome| outcome.clone())
}

/// Drops the write connection without returning it to the pool (which opens a new one).
fn close(state: &mut State) {
    if let Some(mut conn) = state.conn.take() {
        conn.close_on_drop();
    }
}

/// One unit of work: a savepoint inside the writer's current transaction.
pub(crate) struct WriteTx {
    /// `None` once finished.
    state: Option<OwnedMutexGuard<State>>,
    writer: Writer,
}

impl WriteTx {
    /// Keeps this unit's work and returns once the transaction holding it is committed.
    pub(super) async fn commit(mut self, context: &'static str) -> Result<(), StoreError> {
        let Some(state) = self.state.take() else {
            return Ok(());
        };
        self.writer
            .finish(state, true)
            .await
            .map_err(|e| super::classify_shared(context, e))
    }

    /// Undoes this unit's work, and returns once what it may have read of its batch is
    /// committed (an error if the batch failed: then the unit's answer would be wrong too).
    pub(super) async fn rollback(mut self, context: &'static str) -> Result<(), StoreError> {
        let Some(state) = self.state.take() else {
            return Ok(());
        };
        self.writer
            .finish(state, false)
            .await
            .map_err(|e| super::classify_shared(context, e))
    }
}

impl std::ops::Deref for WriteTx {
    type Target = SqliteConnection;

    fn deref(&self) -> &SqliteConnection {
        // Only `commit`, `rollback` and `drop` take the state; the first two consume `self`.
        self.state
            .as_ref()
            .and_then(|s| s.conn.as_deref())
            .expect("a write transaction is used only while open")
    }
}

impl std::ops::DerefMut for WriteTx {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        self.state
            .as_mut()
            .and_then(|s| s.conn.as_deref_mut())
            .expect("a write transaction is used only while open")
    }
}

impl Drop for WriteTx {
    /// Left without commit (an early return, an error, a cancelled task): undo the unit before
    /// the connection serves anyone else (the lock is held until then).
    fn drop(&mut self) {
        let Some(mut state) = self.state.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                let writer = self.writer.clone();
                runtime.spawn(async move {
                    let _ = writer.finish(state, false).await;
                });
            }
            Err(_) => {
                state.batch = None;
                close(&mut state);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::str::FromStr as _;

    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};

    use super::*;

    async fn writer(dir: &tempfile::TempDir) -> (Writer, SqlitePool) {
        let url = format!("sqlite://{}", dir.path().join("g.db").display());
        let options = SqliteConnectOptions::from_str(&url)
            .unwrap()
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let pool = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .unwrap();
        sqlx::query("create table t (x integer primary key)")
            .execute(&pool)
            .await
            .unwrap();
        let reader = SqlitePoolOptions::new()
            .connect_with(options)
            .await
            .unwrap();
        (Writer::new(pool, Duration::from_secs(5)), reader)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn waiting_writers_share_commits_and_a_failing_one_rolls_back_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir).await;
        let units: Vec<_> = (0..64)
            .map(|i| {
                let writer = writer.clone();
                tokio::spawn(async move {
                    let mut tx = writer.begin().await.unwrap();
                    // Unit 13 inserts a row twice: its own failure, undone alone.
                    let x = if i == 13 { 12 } else { i };
                    let inserted = sqlx::query("insert into t (x) values (?)")
                        .bind(x)
                        .execute(&mut *tx)
                        .await;
                    match inserted {
                        Ok(_) => tx.commit("commit").await.is_ok(),
                        Err(_) => {
                            tx.rollback("undo").await.unwrap();
                            false
                        }
                    }
                })
            })
            .collect();
        let mut committed = 0;
        for unit in units {
            if unit.await.unwrap() {
                committed += 1;
            }
        }
        let rows: i64 = sqlx::query_scalar("select count(*) from t")
            .fetch_one(&reader)
            .await
            .unwrap();
        // Unit 12 or 13 lost the race for x = 12; the other 63 are stored and were answered only
        // after their commit.
        assert_eq!((committed, rows), (63, 63));
        let batches = writer.batches.load(Ordering::Acquire);
        assert!(batches < 63, "63 commits in {batches} transactions");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_one_batch_a_unit_between_kept_ones_is_undone_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir).await;
        // Someone is said to wait for the writer: the batch stays open after each unit.
        writer.waiting.fetch_add(1, Ordering::AcqRel);
        let start = |x: i64| {
            let writer = writer.clone();
            async move {
                let mut tx = writer.begin().await.unwrap();
                sqlx::query("insert into t (x) values (?)")
                    .bind(x)
                    .execute(&mut *tx)
                    .await
                    .unwrap();
                tx
            }
        };
        // Each answer waits for the batch's end, so it runs on a task of its own.
        let answer = |tx: WriteTx, keep: bool| {
            tokio::spawn(async move {
                if keep {
                    tx.commit("commit").await
                } else {
                    tx.rollback("undo").await
                }
            })
        };
        let first = answer(start(1).await, true);
        let second = start(2).await;
        // The third queues for the writer while the second holds it.
        let third = tokio::spawn(start(3));
        let second = answer(second, false);
        let third = third.await.unwrap();
        writer.waiting.fetch_sub(1, Ordering::AcqRel);
        let third = answer(third, true);
        for answer in [first, second, third] {
            answer.await.unwrap().unwrap();
        }
        let rows: Vec<i64> = sqlx::query_scalar("select x from t order by x")
            .fetch_all(&reader)
            .await
            .unwrap();
        assert_eq!(rows, [1, 3]);
        // One transaction, unless the writer sat free between the second and the third long
        // enough for the second to end the batch itself (then the nesting was not exercised,
        // and the rows above still hold).
        assert!(writer.batches.load(Ordering::Acquire) <= 2);
    }

    #[tokio::test]
    async fn a_unit_dropped_without_commit_leaves_nothing_and_the_writer_usable() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = writer(&dir).await;
        {
            let mut tx = writer.begin().await.unwrap();
            sqlx::query("insert into t (x) values (1)")
                .execute(&mut *tx)
                .await
                .unwrap();
            // Dropped: an early return, a cancelled request.
        }
        let mut tx = writer.begin().await.unwrap();
        sqlx::query("insert into t (x) values (2)")
            .execute(&mut *tx)
            .await
            .unwrap();
        tx.commit("commit").await.unwrap();
        let rows: Vec<i64> = sqlx::query_scalar("select x from t")
            .fetch_all(&reader)
            .await
            .unwrap();
        assert_eq!(rows, [2]);
    }
}
