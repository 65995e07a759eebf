//! The two databases as one handle: where a transaction comes from and how it ends.
//!
//! **PostgreSQL**, the production system of record: a pool; uniqueness and concurrency are the
//! database's (primary keys, `for update` row locks, `skip locked` claims), so any number of
//! instances stay correct. Every connection carries `statement_timeout` and `lock_timeout`, and
//! the pool an acquire timeout: a database that is down or saturated answers 503 in bounded
//! time, and the pool reconnects by itself when it is back.
//!
//! **SQLite**, the embedded default: one file in WAL mode. All writes go through one
//! connection whose transactions start with `BEGIN IMMEDIATE` (a read-then-write can never fail
//! with `SQLITE_BUSY` half way) and are shared by the writers that queue (group commit, see
//! `group.rs`). Reads use their own pool and see the last commit. `synchronous = FULL`: a
//! commit is fsync'd before the API answers.

use std::future::Future;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Postgres, Sqlite, Transaction};

use super::group::{WriteTx, Writer};
use super::guard::{Guard, Probe, ReadOnlySeen};
use super::sql::{Conn, FromEither, Statement};
use super::{Context, StoreError, StoreOptions};

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Refuses, at start, what a PostgreSQL URL may say that this service cannot do: several hosts
/// (`host1,host2`, in the URL's authority or a `host`/`hostaddr`/`port` parameter) and
/// `target_session_attrs`. libpq picks the primary among several hosts; sqlx does neither and
/// ignores unknown parameters with a warning, so such a URL would connect to the first host
/// whatever it is. The supported shape for failover is one endpoint that follows the primary
/// (a proxy, a virtual IP, a DNS name). The message never repeats the URL (it may hold a
/// password).
pub fn check_postgres_url(url: &str) -> Result<(), String> {
    const ONE_ENDPOINT: &str = "give one endpoint that follows the primary (a proxy such as \
        HAProxy or PgBouncer, a virtual IP or a DNS name); the service checks that each \
        connection it opens is writable";
    let Some((_, rest)) = url.split_once("://") else {
        return Ok(());
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let hosts = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    if hosts.contains(',') {
        return Err(format!(
            "several hosts in one PostgreSQL URL are not supported: {ONE_ENDPOINT}"
        ));
    }
    let query = rest.split_once('?').map_or("", |(_, q)| q);
    for pair in query.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name = name.to_ascii_lowercase();
        if name == "target_session_attrs" {
            return Err(format!(
                "target_session_attrs is not supported in the PostgreSQL URL (it would be \
                 ignored): {ONE_ENDPOINT}"
            ));
        }
        if matches!(name.as_str(), "host" | "hostaddr" | "port")
            && (value.contains(',') || value.to_ascii_lowercase().contains("%2c"))
        {
            return Err(format!(
                "several hosts in one PostgreSQL URL are not supported: {ONE_ENDPOINT}"
            ));
        }
    }
    Ok(())
}

/// Whether a new connection opens, apart from any pool, to a server that takes writes.
async fn opens_writable(connect: &PgConnectOptions) -> bool {
    match PgConnection::connect_with(connect).await {
        Ok(mut conn) => {
            let ok = writable(&mut conn).await.unwrap_or(false);
            let _ = conn.close().await;
            ok
        }
        Err(_) => false,
    }
}

/// Whether the server takes writes: not a standby (`pg_is_in_recovery()`) and not fenced with
/// `default_transaction_read_only`.
const WRITABLE: &str =
    "not pg_is_in_recovery() and current_setting('transaction_read_only') = 'off'";

/// Whether a PostgreSQL connection's server takes writes ([`WRITABLE`]). One round trip.
async fn writable(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    sqlx::query_scalar(&format!("select {WRITABLE}"))
        .fetch_one(conn)
        .await
}

/// Readies a new connection, in one round trip: its timeouts (`statement_timeout` and
/// `lock_timeout` of `millis`, so that a database that hangs answers 503 in bounded time; an
/// idle transaction ended after a minute), and whether its server takes writes (see
/// [`writable`]).
async fn prepare(conn: &mut PgConnection, millis: u128) -> Result<bool, sqlx::Error> {
    use sqlx::Row as _;
    let sql = format!(
        "select {WRITABLE},
                set_config('statement_timeout', '{millis}', false),
                set_config('lock_timeout', '{millis}', false),
                set_config('idle_in_transaction_session_timeout', '60000', false)"
    );
    // Without arguments, by the simple protocol (no prepared statement): it works behind any
    // pooler, so that one in transaction mode is found and named at start rather than failing
    // here obscurely.
    let row = sqlx::Executor::fetch_one(conn, sql.as_str()).await?;
    row.try_get(0)
}

/// Whether the connections lead to a pooler that hands a server connection to a client only
/// for a transaction or a statement (PgBouncer's transaction or statement pooling), where
/// session state (prepared statements, advisory locks, settings) does not follow the client.
/// Asked once at start: while a second client holds a transaction open, a first client's server
/// process must stay the same, as it does on PostgreSQL itself and under session pooling. Under
/// transaction pooling the first client's last server is the one the second just took
/// (PgBouncer reuses the most recently freed server first), so it gets another. A pool of one
/// connection cannot tell.
async fn pooled_per_transaction(pool: &PgPool) -> Result<bool, StoreError> {
    const CONTEXT: &str = "check the PostgreSQL connection";
    if pool.options().get_max_connections() < 2 {
        return Ok(false);
    }
    // The simple protocol (statements without arguments): a prepared statement would not
    // survive the switch it looks for.
    async fn pid(conn: &mut PgConnection) -> Result<i32, StoreError> {
        use sqlx::Row as _;
        let row = sqlx::Executor::fetch_one(conn, "select pg_backend_pid()")
            .await
            .context(CONTEXT)?;
        row.try_get(0).context(CONTEXT)
    }
    let mut first = pool.acquire().await.context(CONTEXT)?;
    let before = pid(&mut first).await?;
    let mut second = pool.acquire().await.context(CONTEXT)?;
    match sqlx::Executor::execute(&mut *second, "begin").await {
        Ok(_) => {}
        // PostgreSQL itself refuses no `begin`; a pooler in statement mode refuses them all
        // ("transaction blocks not allowed in statement pooling mode").
        Err(sqlx::Error::Database(_)) => {
            second.close_on_drop();
            return Ok(true);
        }
        Err(e) => return Err(e).context(CONTEXT),
    }
    pid(&mut second).await?;
    let after = pid(&mut first).await?;
    sqlx::Executor::execute(&mut *second, "rollback")
        .await
        .context(CONTEXT)?;
    Ok(before != after)
}

/// A new connection found on a server that takes no writes (a standby behind the endpoint
/// after a failover, or a primary fenced read-only): the pool drops it and tries again.
#[derive(Debug, thiserror::Error)]
#[error(
    "the PostgreSQL server behind the URL is read-only (a standby, or default_transaction_read_only is on); waiting for a writable primary"
)]
struct ReadOnlyServer;

pub(crate) enum Db {
    Postgres {
        pool: PgPool,
        /// The circuit breaker every acquisition passes, with its reachability probe (a file
        /// cannot be down: SQLite has none).
        guard: Arc<Guard>,
    },
    Sqlite {
        writer: Writer,
        reader: SqlitePool,
    },
}

/// A write transaction (on SQLite: one unit of the writer's shared transaction).
pub(crate) enum Tx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(WriteTx),
}

/// A read-only transaction over one snapshot.
pub(crate) enum ReadTx {
    Postgres(Transaction<'static, Postgres>),
    Sqlite(Transaction<'static, Sqlite>),
}

impl Db {
    /// PostgreSQL's pool; SQLite has one writer and a few readers, not worth a metric.
    pub(crate) fn pool(&self) -> Option<super::PoolState> {
        match self {
            Self::Postgres { pool, .. } => Some(super::PoolState {
                open: pool.size(),
                idle: u32::try_from(pool.num_idle()).unwrap_or(u32::MAX),
            }),
            Self::Sqlite { .. } => None,
        }
    }

    /// Connects and applies pending migrations under PostgreSQL's advisory lock (sqlx takes
    /// it), so several instances can start at once.
    pub(crate) async fn postgres(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
        check_postgres_url(url).map_err(|e| StoreError::failed("parse the PostgreSQL URL", e))?;
        let millis = opts.timeout.as_millis();
        // No startup parameter beyond the protocol's own: PgBouncer refuses unknown ones
        // (`extra_float_digits`, `options`), and dropping them there (its
        // `ignore_startup_parameters`) would drop the timeouts with them. The timeouts are set
        // when a connection opens instead; no value this service reads is a float.
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::failed("parse the PostgreSQL URL", e))?
            .extra_float_digits(None);
        let read_only = Arc::new(ReadOnlySeen::new());
        let seen = read_only.clone();
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.timeout)
            // A new connection must reach a writable primary: after a failover the endpoint
            // may still lead to the old one, now a standby. Refused, the pool tries again
            // until its timeout (the request then answers 503; the breaker takes over).
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    match prepare(conn, millis).await? {
                        true => Ok(()),
                        false => Err(sqlx::Error::Configuration(Box::new(ReadOnlyServer))),
                    }
                })
            })
            // A connection reported the server read-only: until that is a while ago, each
            // pooled connection is checked before it is handed out, and dropped if its server
            // takes no writes (one round trip; none otherwise).
            .before_acquire(move |conn, _| {
                let seen = seen.clone();
                Box::pin(async move {
                    if !seen.suspect() {
                        return Ok(true);
                    }
                    writable(conn).await
                })
            })
            .connect_with(connect.clone())
            .await
            .context("connect to PostgreSQL")?;
        if pooled_per_transaction(&pool).await? {
            return Err(StoreError::failed(
                "check the PostgreSQL connection",
                "the URL leads to a pooler that shares server connections between transactions \
                 (PgBouncer's pool_mode = transaction or statement): not supported, as \
                 migrations take session locks and statements are prepared per session; set \
                 pool_mode = session for this service's database",
            ));
        }
        POSTGRES_MIGRATIONS
            .run(&pool)
            .await
            .map_err(|e| StoreError::failed("apply PostgreSQL migrations", e))?;
        // Which database, never the password (the URL's other parts are not secret).
        tracing::info!(
            host = connect.get_host(),
            port = connect.get_port(),
            database = connect.get_database().unwrap_or("(the user's)"),
            user = connect.get_username(),
            "database: PostgreSQL"
        );
        let connect = Arc::new(connect);
        let probe: Probe = Arc::new(move || {
            let connect = connect.clone();
            Box::pin(async move { opens_writable(&connect).await })
        });
        Ok(Self::Postgres {
            pool,
            guard: Guard::new(probe, read_only),
        })
    }

    /// Opens (creating it when `opts.create`) and migrates the database file the URL names.
    pub(crate) async fn sqlite(url: &str, opts: &StoreOptions) -> Result<Self, StoreError> {
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
        SQLITE_MIGRATIONS
            .run(&writer)
            .await
            .map_err(|e| StoreError::failed("apply SQLite migrations", e))?;
        tracing::info!(file = %options.get_filename().display(), "database: SQLite");
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(busy_timeout)
            .connect_with(options.pragma("query_only", "ON"))
            .await
            .context("open SQLite read connections")?;
        Ok(Self::Sqlite {
            writer: Writer::new(writer, busy_timeout),
            reader,
        })
    }

    /// Runs `work` unless the database is known to be unreachable, and looks at its failure
    /// (see [`Guard`]).
    async fn guarded<T>(
        &self,
        work: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let Self::Postgres { guard, .. } = self else {
            return work.await;
        };
        guard.admit()?;
        let result = work.await;
        if let Err(e) = &result {
            guard.observe(e);
        }
        result
    }

    /// Looks at the failure of work done on a connection this gave out (a transaction's
    /// statements, its commit): it may show the server unreachable or read-only.
    pub(crate) fn observe(&self, e: &StoreError) {
        if let Self::Postgres { guard, .. } = self {
            guard.observe(e);
        }
    }

    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        self.guarded(async {
            Ok(match self {
                Self::Postgres { pool, .. } => {
                    Tx::Postgres(pool.begin().await.context("begin a transaction")?)
                }
                Self::Sqlite { writer, .. } => Tx::Sqlite(writer.begin().await?),
            })
        })
        .await
    }

    /// A read of one snapshot (PostgreSQL: repeatable read; SQLite: a WAL read transaction).
    pub(crate) async fn begin_read(&self) -> Result<ReadTx, StoreError> {
        self.guarded(self.begin_read_unguarded()).await
    }

    async fn begin_read_unguarded(&self) -> Result<ReadTx, StoreError> {
        Ok(match self {
            Self::Postgres { pool, .. } => {
                let mut tx = pool.begin().await.context("begin a read")?;
                sqlx::query("set transaction isolation level repeatable read, read only")
                    .execute(&mut *tx)
                    .await
                    .context("begin a read")?;
                ReadTx::Postgres(tx)
            }
            Self::Sqlite { reader, .. } => {
                ReadTx::Sqlite(reader.begin().await.context("begin a read")?)
            }
        })
    }

    /// Runs one writing statement on its own; returns the rows it changed.
    pub(crate) async fn execute(
        &self,
        statement: &Statement,
        context: &'static str,
    ) -> Result<u64, StoreError> {
        self.guarded(self.execute_unguarded(statement, context))
            .await
    }

    async fn execute_unguarded(
        &self,
        statement: &Statement,
        context: &'static str,
    ) -> Result<u64, StoreError> {
        match self {
            // Autocommit, no explicit transaction: a task stopped or frozen mid-way (shutdown,
            // a blocked runtime) can leave no transaction open, holding locks, behind it.
            Self::Postgres { pool, .. } => {
                let mut conn = pool.acquire().await.context(context)?;
                statement
                    .execute(&mut Conn::Postgres(&mut conn))
                    .await
                    .context(context)
            }
            // A unit of the writer's shared transaction (group commit).
            Self::Sqlite { writer, .. } => {
                let mut tx = Tx::Sqlite(writer.begin().await?);
                let n = statement.execute(&mut tx.conn()).await.context(context)?;
                tx.commit(context).await?;
                Ok(n)
            }
        }
    }

    /// Runs one writing statement that returns rows on its own (as [`Db::execute`]).
    pub(crate) async fn write_all<T: FromEither>(
        &self,
        statement: &Statement,
        context: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        self.guarded(self.write_all_unguarded(statement, context))
            .await
    }

    async fn write_all_unguarded<T: FromEither>(
        &self,
        statement: &Statement,
        context: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        match self {
            Self::Postgres { pool, .. } => {
                let mut conn = pool.acquire().await.context(context)?;
                statement
                    .fetch_all(&mut Conn::Postgres(&mut conn))
                    .await
                    .context(context)
            }
            Self::Sqlite { writer, .. } => {
                let mut tx = Tx::Sqlite(writer.begin().await?);
                let rows = statement.fetch_all(&mut tx.conn()).await.context(context)?;
                tx.commit(context).await?;
                Ok(rows)
            }
        }
    }

    /// Runs one reading statement.
    pub(crate) async fn read_all<T: FromEither>(
        &self,
        statement: &Statement,
        context: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        self.guarded(self.read_all_unguarded(statement, context))
            .await
    }

    async fn read_all_unguarded<T: FromEither>(
        &self,
        statement: &Statement,
        context: &'static str,
    ) -> Result<Vec<T>, StoreError> {
        let rows = match self {
            Self::Postgres { pool, .. } => {
                let mut conn = pool.acquire().await.context(context)?;
                statement.fetch_all(&mut Conn::Postgres(&mut conn)).await
            }
            Self::Sqlite { reader, .. } => {
                let mut conn = reader.acquire().await.context(context)?;
                statement.fetch_all(&mut Conn::Sqlite(&mut conn)).await
            }
        };
        rows.context(context)
    }

    /// Whether a new connection to the database can be opened now, apart from the pool (whose
    /// timeout cannot tell "down" from "busy"), to a server that takes writes. SQLite is a
    /// file: it always can.
    pub(crate) async fn reachable(&self) -> bool {
        match self {
            Self::Postgres { guard, .. } => guard.reachable().await,
            Self::Sqlite { .. } => true,
        }
    }
}

impl Tx {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Postgres(tx) => Conn::Postgres(tx),
            Self::Sqlite(tx) => Conn::Sqlite(tx),
        }
    }

    /// Keeps the work; returns once it is committed (on SQLite: once the batch holding it is).
    pub(crate) async fn commit(self, context: &'static str) -> Result<(), StoreError> {
        match self {
            Self::Postgres(tx) => tx.commit().await.context(context),
            Self::Sqlite(tx) => tx.commit(context).await,
        }
    }

    /// Undoes the work. On SQLite the answer still waits for the batch's commit: what this
    /// unit read may have been written by an earlier unit of the batch.
    pub(crate) async fn rollback(self, context: &'static str) -> Result<(), StoreError> {
        match self {
            Self::Postgres(tx) => tx.rollback().await.context(context),
            Self::Sqlite(tx) => tx.rollback(context).await,
        }
    }
}

impl ReadTx {
    pub(crate) fn conn(&mut self) -> Conn<'_> {
        match self {
            Self::Postgres(tx) => Conn::Postgres(tx),
            Self::Sqlite(tx) => Conn::Sqlite(tx),
        }
    }

    pub(crate) async fn end(self) -> Result<(), StoreError> {
        match self {
            Self::Postgres(tx) => tx.commit().await,
            Self::Sqlite(tx) => tx.commit().await,
        }
        .context("end the read")
    }
}

#[cfg(test)]
mod tests {
    use super::check_postgres_url;

    #[test]
    fn one_endpoint_is_taken_and_several_hosts_or_a_session_choice_are_refused() {
        for ok in [
            "postgres://cps:secret@db.example:5432/cps?sslmode=verify-full&sslrootcert=ca.pem",
            "postgresql://localhost/cps",
            "postgres://u@[::1]:5432/cps?application_name=a,b",
        ] {
            assert_eq!(check_postgres_url(ok), Ok(()), "{ok}");
        }
        for refused in [
            "postgres://cps:secret@db1:5432,db2:5432/cps",
            "postgres://db1,db2/cps",
            "postgres://db/cps?target_session_attrs=read-write",
            "postgres://db/cps?sslmode=require&Target_Session_Attrs=any",
            "postgres:///cps?host=db1,db2",
            "postgres:///cps?host=db1%2Cdb2",
            "postgres://db/cps?port=5432,5433",
        ] {
            let e = check_postgres_url(refused).expect_err(refused);
            assert!(e.contains("one endpoint that follows the primary"), "{e}");
            assert!(!e.contains("secret"), "{e}");
        }
    }
}
