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

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{Connection, Postgres, Sqlite, Transaction};

use super::group::{WriteTx, Writer};
use super::sql::{Conn, FromEither, Statement};
use super::{Context, StoreError, StoreOptions};

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

pub(crate) enum Db {
    Postgres {
        pool: PgPool,
        /// For reachability probes, apart from the pool (boxed: it is large, and rarely used).
        connect: Box<PgConnectOptions>,
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
        let millis = opts.timeout.as_millis().to_string();
        let connect = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::failed("parse the PostgreSQL URL", e))?
            .options([
                ("statement_timeout", millis.as_str()),
                ("lock_timeout", millis.as_str()),
                ("idle_in_transaction_session_timeout", "60000"),
            ]);
        let pool = PgPoolOptions::new()
            .max_connections(opts.max_connections)
            .acquire_timeout(opts.timeout)
            .connect_with(connect.clone())
            .await
            .context("connect to PostgreSQL")?;
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
        Ok(Self::Postgres {
            pool,
            connect: Box::new(connect),
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

    pub(crate) async fn begin(&self) -> Result<Tx, StoreError> {
        Ok(match self {
            Self::Postgres { pool, .. } => {
                Tx::Postgres(pool.begin().await.context("begin a transaction")?)
            }
            Self::Sqlite { writer, .. } => Tx::Sqlite(writer.begin().await?),
        })
    }

    /// A read of one snapshot (PostgreSQL: repeatable read; SQLite: a WAL read transaction).
    pub(crate) async fn begin_read(&self) -> Result<ReadTx, StoreError> {
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
    /// timeout cannot tell "down" from "busy"). SQLite is a file: it always can.
    pub(crate) async fn reachable(&self) -> bool {
        let Self::Postgres { connect, .. } = self else {
            return true;
        };
        match PgConnection::connect_with(connect).await {
            Ok(mut conn) => {
                let ok = sqlx::query("select 1").execute(&mut conn).await.is_ok();
                let _ = conn.close().await;
                ok
            }
            Err(_) => false,
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
