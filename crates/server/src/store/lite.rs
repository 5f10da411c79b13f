//! SQLite in place: the store's statements (written once, for sqlx's `Any` driver) run on rusqlite connections
//! that the store owns, inside the calling task.
//!
//! Why: sqlx's SQLite driver gives every connection a thread of its own, and every statement is a hand-off to
//! that thread and back (two wake-ups, two context switches). A bKash journey is about fifty statements, and on
//! a 2-core machine those hand-offs were most of the backend's CPU. A statement on a WAL database takes a few
//! microseconds, less than one hand-off, so running it in place is both cheaper and simpler; only the `COMMIT`,
//! which waits for an fsync, leaves the task (see `group_commit`).
//!
//! The same `sqlx::query(..).bind(..)` values are executed here: [`run`] takes the statement's text and bound
//! values and returns sqlx's own `AnyQueryResult` and `AnyRow`, built the way sqlx's SQLite driver builds them
//! (a value's kind from its storage class), so every `FromRow` record decodes exactly as it did. sqlx is pinned
//! to the exact version whose `Any` types this relies on.

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use sqlx::{Any, Either, Error, Execute};
use sqlx_core::HashMap;
use sqlx_core::any::{AnyColumn, AnyQueryResult, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValue, AnyValueKind};
use sqlx_core::ext::ustr::UStr;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

/// Prepared statements kept per connection: the store has about seventy distinct statements.
const STATEMENT_CACHE: usize = 128;

/// Opens a connection on the store's file with the store's settings.
pub(super) fn open(path: &Path) -> Result<Connection, Error> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(lite_err)?;
    for pragma in super::SQLITE_PRAGMAS {
        // `journal_mode` answers with a row: run each pragma as a query and ignore what it returns.
        conn.query_row(pragma, [], |_| Ok(())).or_else(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => Ok(()),
            e => Err(lite_err(e)),
        })?;
    }
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    Ok(conn)
}

/// The file of a `sqlite://` URL, as sqlx reads it (percent-decoding included), so that the pool that ran the
/// migrations and the connections here open the same file.
pub(super) fn path_of(url: &str) -> Result<PathBuf, Error> {
    Ok(sqlx::sqlite::SqliteConnectOptions::from_str(url)?.get_filename().to_path_buf())
}

/// A rusqlite error as the store's error type (the store's callers see sqlx errors only).
pub(super) fn lite_err(e: rusqlite::Error) -> Error {
    match e {
        rusqlite::Error::SqliteFailure(code, message) => {
            Error::Database(Box::new(LiteDbError { code: code.extended_code, message: message.unwrap_or_default() }))
        }
        other => Error::AnyDriverError(Box::new(other)),
    }
}

/// What one statement gave: its changes, then its rows.
pub(super) type Steps = Vec<Either<AnyQueryResult, AnyRow>>;

/// Runs one sqlx statement on `conn`: its text, with the bound values by their `$N` names.
pub(super) fn run<'q>(conn: &Connection, mut query: impl Execute<'q, Any>) -> Result<Steps, Error> {
    let sql = query.sql();
    // SQLite prepares the first statement of a text only; sqlx would run them all. The store has no statement
    // with a `;` inside (values are bound), so a second statement is refused rather than silently dropped.
    if sql.trim_end().trim_end_matches(';').contains(';') {
        return Err(Error::Protocol(format!("one statement at a time: {sql}")));
    }
    let values = query.take_arguments().map_err(Error::Encode)?.map(|a| a.values.0).unwrap_or_default();
    let mut stmt = conn.prepare_cached(sql).map_err(lite_err)?;
    for index in 1..=stmt.parameter_count() {
        let value = match stmt.parameter_name(index) {
            // `$N` (and `?N`) name the N-th bound value; a bare `?` takes the next one, as in SQLite.
            Some(name) => name[1..].parse::<usize>().ok().and_then(|n| values.get(n.wrapping_sub(1))),
            None => values.get(index - 1),
        };
        let Some(value) = value else {
            return Err(Error::Protocol(format!("statement parameter {index} has no bound value: {sql}")));
        };
        bind(&mut stmt, index, value)?;
    }
    let columns = stmt.column_count();
    let mut steps = Vec::new();
    if columns == 0 {
        let changed = stmt.raw_execute().map_err(lite_err)?;
        steps.push(Either::Left(AnyQueryResult { rows_affected: changed as u64, last_insert_id: None }));
        return Ok(steps);
    }
    let names: Vec<UStr> = stmt.column_names().into_iter().map(|n| UStr::Shared(Arc::from(n))).collect();
    let by_name: Arc<HashMap<UStr, usize>> = Arc::new(names.iter().cloned().enumerate().map(|(i, n)| (n, i)).collect());
    // `changes()` is the last write's count: a read (without RETURNING) changed nothing.
    let readonly = stmt.readonly();
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next().map_err(lite_err)? {
        let mut out = AnyRow { column_names: by_name.clone(), columns: Vec::with_capacity(columns), values: Vec::new() };
        for (i, name) in names.iter().enumerate() {
            let kind = match row.get_ref(i).map_err(lite_err)? {
                ValueRef::Null => AnyValueKind::Null(AnyTypeInfoKind::Null),
                ValueRef::Integer(v) => AnyValueKind::BigInt(v),
                ValueRef::Real(v) => AnyValueKind::Double(v),
                ValueRef::Text(t) => AnyValueKind::Text(String::from_utf8_lossy(t).into_owned().into()),
                ValueRef::Blob(b) => AnyValueKind::Blob(b.to_vec().into()),
            };
            let type_info = AnyTypeInfo { kind: kind_of(&kind) };
            out.columns.push(AnyColumn { ordinal: i, name: name.clone(), type_info });
            out.values.push(AnyValue { kind });
        }
        steps.push(Either::Right(out));
    }
    drop(rows);
    let rows_affected = if readonly { 0 } else { conn.changes() };
    steps.push(Either::Left(AnyQueryResult { rows_affected, last_insert_id: None }));
    Ok(steps)
}

/// The type a value of `kind` reports, as sqlx's SQLite driver maps storage classes.
fn kind_of(kind: &AnyValueKind<'_>) -> AnyTypeInfoKind {
    match kind {
        AnyValueKind::BigInt(_) => AnyTypeInfoKind::BigInt,
        AnyValueKind::Double(_) => AnyTypeInfoKind::Double,
        AnyValueKind::Text(_) => AnyTypeInfoKind::Text,
        AnyValueKind::Blob(_) => AnyTypeInfoKind::Blob,
        _ => AnyTypeInfoKind::Null,
    }
}

fn bind(stmt: &mut rusqlite::CachedStatement<'_>, index: usize, value: &AnyValueKind<'_>) -> Result<(), Error> {
    let bound = match value {
        AnyValueKind::Null(_) => stmt.raw_bind_parameter(index, rusqlite::types::Null),
        AnyValueKind::Bool(b) => stmt.raw_bind_parameter(index, i64::from(*b)),
        AnyValueKind::SmallInt(i) => stmt.raw_bind_parameter(index, i64::from(*i)),
        AnyValueKind::Integer(i) => stmt.raw_bind_parameter(index, i64::from(*i)),
        AnyValueKind::BigInt(i) => stmt.raw_bind_parameter(index, *i),
        AnyValueKind::Real(r) => stmt.raw_bind_parameter(index, f64::from(*r)),
        AnyValueKind::Double(d) => stmt.raw_bind_parameter(index, *d),
        AnyValueKind::Text(t) => stmt.raw_bind_parameter(index, t.as_ref()),
        AnyValueKind::Blob(b) => stmt.raw_bind_parameter(index, b.as_ref()),
        other => return Err(Error::Protocol(format!("unsupported bound value {other:?}"))),
    };
    bound.map_err(lite_err)
}

/// The pool's readers: connections used one at a time, each by the task that took it, and put back.
pub(crate) struct Readers {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(path: PathBuf) -> Readers {
        Readers { path, idle: Mutex::new(Vec::new()) }
    }

    /// Runs one statement on an idle connection (opening one when none is idle).
    pub(super) fn run<'q>(&self, query: impl Execute<'q, Any>) -> Result<Steps, Error> {
        let taken = self.idle.lock().map_err(|_| Error::PoolClosed)?.pop();
        let conn = match taken {
            Some(conn) => conn,
            None => open(&self.path)?,
        };
        let steps = run(&conn, query);
        // A connection left inside a transaction by a failed statement is not reused.
        if conn.is_autocommit()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.push(conn);
        }
        steps
    }
}

impl std::fmt::Debug for Readers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Readers").field("path", &self.path).finish_non_exhaustive()
    }
}

/// SQLite's error, with its extended code (e.g. 2067 for a unique constraint), as sqlx reports database errors.
#[derive(Debug)]
struct LiteDbError {
    code: std::ffi::c_int,
    message: String,
}

impl std::fmt::Display for LiteDbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for LiteDbError {}

impl sqlx::error::DatabaseError for LiteDbError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> sqlx::error::ErrorKind {
        use sqlx::error::ErrorKind;
        // The extended result codes of SQLite's constraint errors (sqlite3.h).
        match self.code {
            2067 | 1555 => ErrorKind::UniqueViolation,
            787 => ErrorKind::ForeignKeyViolation,
            1299 => ErrorKind::NotNullViolation,
            275 => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}
