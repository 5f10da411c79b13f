//! The durable store: sessions, attempts, refunds, payouts, the shared bKash token, idempotency records, the
//! webhook outbox and an audit trail. One implementation over `sqlx::AnyPool` serves SQLite (the default, a
//! single file) and PostgreSQL (several instances): the SQL is portable and every state change is a conditional
//! update (`... WHERE status IN (...)`), so exactly-once holds across connections and instances alike.
//!
//! One file per aggregate; each reads its rows as a `sqlx::FromRow` record of plain column types and converts
//! it into the typed row (ids parsed, `Money` built, states parsed), so a corrupt row is a decode error.

use deshpay_api::{Currency, Money};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyQueryResult};
use sqlx::{AnyConnection, AnyPool, ConnectOptions, Connection, Executor};
use std::ops::{Deref, DerefMut};
use std::str::FromStr;
use std::sync::Arc;

mod attempts;
mod group_commit;
mod idempotency;
mod leases;
mod outbox;
mod payment;
mod payouts;
mod refunds;
mod retention;
mod sessions;
mod tokens;

pub use attempts::{AttemptPatch, AttemptRow, AttemptState, UNSETTLED};
pub use outbox::WebhookRow;
pub use payment::{Begin, Change, SessionEffect};
pub use payouts::{PayoutRow, PayoutState};
pub use refunds::RefundRow;
pub use retention::Purged;
pub use sessions::SessionRow;
pub use tokens::StoredToken;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// Handle to the store; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// SQLite's one writer (group commit); `None` on PostgreSQL, whose transactions run on the pool.
    writer: Option<Arc<group_commit::GroupCommit>>,
}

/// A write transaction: on PostgreSQL a pooled transaction, on SQLite a unit of the group commit. It
/// dereferences to the connection the statements run on; `commit` returns once the writes are durable.
enum Tx {
    Pool(sqlx::Transaction<'static, sqlx::Any>),
    Group(group_commit::Unit),
}

impl Tx {
    async fn commit(self) -> StoreResult<()> {
        match self {
            Tx::Pool(tx) => tx.commit().await,
            Tx::Group(unit) => unit.commit().await,
        }
    }

    async fn rollback(self) -> StoreResult<()> {
        match self {
            Tx::Pool(tx) => tx.rollback().await,
            Tx::Group(unit) => unit.rollback().await,
        }
    }
}

impl Deref for Tx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        match self {
            Tx::Pool(tx) => tx,
            Tx::Group(unit) => unit,
        }
    }
}

impl DerefMut for Tx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        match self {
            Tx::Pool(tx) => tx,
            Tx::Group(unit) => unit,
        }
    }
}

/// Store errors carry sqlx's cause; callers map them to `internal` (logged, not shown).
pub type StoreResult<T> = Result<T, sqlx::Error>;

/// A statement over the `Any` driver, with its bound values.
type Query<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn decode_err(msg: String) -> sqlx::Error {
    sqlx::Error::Decode(msg.into())
}

/// A stored value that does not parse (an id, a state) makes the row a decode error.
fn decode<T, E: std::fmt::Display>(parsed: Result<T, E>) -> StoreResult<T> {
    parsed.map_err(|e| decode_err(e.to_string()))
}

fn money_of(minor: i64, currency: &str) -> StoreResult<Money> {
    decode(Money::from_minor(minor, decode(currency.parse::<Currency>())?))
}

/// `'a','b'` for `IN (...)`: the statement text is built from our own enum names only; values are bound.
fn name_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    names.into_iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(",")
}

/// Every SQLite connection's settings. WAL lets the pool's readers run beside the one writer (the group
/// commit); the busy timeout covers another process on the same file; FULL: a committed payment survives a power
/// cut, not only a crash of the process.
const SQLITE_PRAGMAS: &[&str] = &[
    "PRAGMA journal_mode = WAL",
    "PRAGMA busy_timeout = 15000",
    "PRAGMA foreign_keys = ON",
    "PRAGMA synchronous = FULL",
];

impl Store {
    /// A write transaction (see [`Tx`]).
    async fn begin(&self) -> StoreResult<Tx> {
        match &self.writer {
            Some(group) => Ok(Tx::Group(group.unit().await?)),
            None => Ok(Tx::Pool(self.pool.begin().await?)),
        }
    }

    /// One write statement, durable when this returns.
    async fn exec(&self, query: Query<'_>) -> StoreResult<AnyQueryResult> {
        if self.writer.is_none() {
            return query.execute(&self.pool).await;
        }
        let mut tx = self.begin().await?;
        let done = query.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(done)
    }

    /// Connects and runs the migrations. A `sqlite://` file is created if missing.
    ///
    /// # Errors
    /// Connection or migration failures.
    pub async fn connect(url: &str, max_connections: u32) -> StoreResult<Store> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(sqlx::Error::Configuration("database.url must start with sqlite:// or postgres://".into()));
        };
        let url = if backend == Backend::Sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        // Statement logging off: sqlx would build a summary of every statement for a log line nobody reads on
        // the hot path (a few percent of the backend's CPU per journey).
        let options = AnyConnectOptions::from_str(&url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(*pragma).await?;
                        }
                    }
                    Ok(())
                })
            })
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let writer = if backend == Backend::Sqlite {
            let mut conn = AnyConnection::connect_with(&options).await?;
            for pragma in SQLITE_PRAGMAS {
                conn.execute(*pragma).await?;
            }
            Some(group_commit::GroupCommit::new(conn))
        } else {
            None
        };
        Ok(Store { pool, backend, writer })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// SQLite's `synchronous` level on a pooled connection (2 is FULL); `None` on PostgreSQL.
    ///
    /// # Errors
    /// Database errors.
    pub async fn sqlite_synchronous(&self) -> StoreResult<Option<i64>> {
        if self.backend != Backend::Sqlite {
            return Ok(None);
        }
        sqlx::query_scalar("PRAGMA synchronous").fetch_one(&self.pool).await.map(Some)
    }

    /// A trivial query, for `/healthz`.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }
}
