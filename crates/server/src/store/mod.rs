//! The durable store: sessions, attempts, refunds, payouts, the shared bKash token, idempotency records, the
//! webhook outbox and an audit trail. One implementation over `sqlx::AnyPool` serves SQLite (the default, a
//! single file) and PostgreSQL (several instances): the SQL is portable and every state change is a conditional
//! update (`... WHERE status IN (...)`), so exactly-once holds across connections and instances alike.
//!
//! One file per aggregate; each reads its rows as a `sqlx::FromRow` record of plain column types and converts
//! it into the typed row (ids parsed, `Money` built, states parsed), so a corrupt row is a decode error.

use deshpay_api::{Currency, Money};
use futures_util::future::BoxFuture;
use futures_util::stream::BoxStream;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyQueryResult, AnyRow, AnyStatement, AnyTypeInfo};
use sqlx::{Any, AnyPool, ConnectOptions, Either, Execute, Executor};
use std::str::FromStr;
use std::sync::Arc;

mod attempts;
mod group_commit;
mod idempotency;
mod ipn;
mod leases;
mod lite;
mod outbox;
mod payment;
mod payouts;
mod refunds;
mod retention;
mod sessions;
mod tokens;

pub use attempts::{AttemptPatch, AttemptRow, AttemptState, UNSETTLED};
pub use ipn::UnmatchedRow;
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
    /// SQLite's readers, run in place (see `lite`); `None` on PostgreSQL. The pool still runs the migrations.
    readers: Option<Arc<lite::Readers>>,
}

/// A write transaction: on PostgreSQL a pooled transaction, on SQLite a unit of the group commit. Statements run
/// on `&mut tx` as on a connection; `commit` returns once the writes are durable.
#[derive(Debug)]
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

/// Where the store's reads run: the pool (PostgreSQL) or SQLite's readers in place.
#[derive(Debug, Clone, Copy)]
enum Db<'a> {
    Pool(&'a AnyPool),
    Lite(&'a lite::Readers),
}

/// What a statement run in place gave, as the stream sqlx's executors return.
fn steps_stream<'e>(steps: StoreResult<lite::Steps>) -> BoxStream<'e, StoreResult<Either<AnyQueryResult, AnyRow>>> {
    match steps {
        Ok(steps) => Box::pin(futures_util::stream::iter(steps.into_iter().map(Ok))),
        Err(e) => Box::pin(futures_util::stream::once(std::future::ready(Err(e)))),
    }
}

fn first_row<'e>(steps: StoreResult<lite::Steps>) -> BoxFuture<'e, StoreResult<Option<AnyRow>>> {
    Box::pin(std::future::ready(steps.map(|steps| steps.into_iter().find_map(Either::right))))
}

fn not_prepared<'e, T: Send + 'e>() -> BoxFuture<'e, StoreResult<T>> {
    Box::pin(std::future::ready(Err(sqlx::Error::Protocol("statements run in place are not prepared apart".into()))))
}

/// Implements sqlx's `Executor` for a type that runs a statement either on a sqlx executor (the first arm) or in
/// place (the second arm's value has `run`), so the store's statements are written once for both.
macro_rules! in_place_or {
    ($ty:ty, $sqlx_pat:pat => $sqlx:expr, $lite_pat:pat => $lite:expr) => {
        impl<'c> Executor<'c> for $ty {
            type Database = Any;

            fn fetch_many<'e, 'q: 'e, E>(self, query: E) -> BoxStream<'e, StoreResult<Either<AnyQueryResult, AnyRow>>>
            where
                'c: 'e,
                E: 'q + Execute<'q, Any>,
            {
                match self {
                    $sqlx_pat => $sqlx.fetch_many(query),
                    $lite_pat => steps_stream($lite.run(query)),
                }
            }

            fn fetch_optional<'e, 'q: 'e, E>(self, query: E) -> BoxFuture<'e, StoreResult<Option<AnyRow>>>
            where
                'c: 'e,
                E: 'q + Execute<'q, Any>,
            {
                match self {
                    $sqlx_pat => $sqlx.fetch_optional(query),
                    $lite_pat => first_row($lite.run(query)),
                }
            }

            fn prepare_with<'e, 'q: 'e>(
                self,
                sql: &'q str,
                parameters: &'e [AnyTypeInfo],
            ) -> BoxFuture<'e, StoreResult<AnyStatement<'q>>>
            where
                'c: 'e,
            {
                match self {
                    $sqlx_pat => $sqlx.prepare_with(sql, parameters),
                    $lite_pat => {
                        let _ = $lite;
                        not_prepared()
                    }
                }
            }

            fn describe<'e, 'q: 'e>(self, sql: &'q str) -> BoxFuture<'e, StoreResult<sqlx::Describe<Any>>>
            where
                'c: 'e,
            {
                match self {
                    $sqlx_pat => $sqlx.describe(sql),
                    $lite_pat => {
                        let _ = $lite;
                        not_prepared()
                    }
                }
            }
        }
    };
}

in_place_or!(&'c mut Tx, Tx::Pool(tx) => &mut **tx, Tx::Group(unit) => unit);
in_place_or!(Db<'c>, Db::Pool(pool) => pool, Db::Lite(readers) => readers);

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

    /// Where reads run.
    fn db(&self) -> Db<'_> {
        match &self.readers {
            Some(readers) => Db::Lite(readers),
            None => Db::Pool(&self.pool),
        }
    }

    /// One write statement, durable when this returns.
    async fn exec(&self, query: Query<'_>) -> StoreResult<AnyQueryResult> {
        if self.writer.is_none() {
            return query.execute(&self.pool).await;
        }
        let mut tx = self.begin().await?;
        let done = query.execute(&mut tx).await?;
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
        let (writer, readers) = if backend == Backend::Sqlite {
            let path = lite::path_of(&url)?;
            (Some(group_commit::GroupCommit::new(lite::open(&path)?)), Some(Arc::new(lite::Readers::new(path))))
        } else {
            (None, None)
        };
        Ok(Store { pool, backend, writer, readers })
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
        sqlx::query_scalar("PRAGMA synchronous").fetch_one(self.db()).await.map(Some)
    }

    /// A trivial query, for `/healthz`.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(self.db()).await.map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// sqlx percent-decodes a `sqlite://` URL's path (it documents `%3F` for a `?` in a file name) and runs the
    /// migrations on that file; the store's own connections must open the same file, not a new empty one.
    #[tokio::test]
    async fn attack_a_percent_encoded_sqlite_path_is_the_migrated_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let url = format!("sqlite://{}/deshpay%20live.db", dir.path().display());
        let store = Store::connect(&url, 2).await.expect("connect");
        assert!(dir.path().join("deshpay live.db").exists(), "sqlx migrated the decoded path");
        store.token("bkash").await.expect("a read on the migrated file");
        assert!(store.try_lease("l", "me", 1, 2).await.expect("a write on the migrated file"));
    }
}
