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
    let path = sqlx::sqlite::SqliteConnectOptions::from_str(url)?.get_filename().to_path_buf();
    // An in-memory database would be a different, empty one on every connection.
    if path.as_os_str().is_empty() || path.to_string_lossy().contains(":memory:") {
        return Err(Error::Configuration("database.url must name a SQLite file, not an in-memory database".into()));
    }
    Ok(path)
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
        let mut out =
            AnyRow { column_names: by_name.clone(), columns: Vec::with_capacity(columns), values: Vec::new() };
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
            None => {
                let conn = open(&self.path)?;
                // Writes go through the group commit; a write sent here by mistake fails instead of waiting on
                // the file's lock in place.
                conn.execute_batch("PRAGMA query_only = ON").map_err(lite_err)?;
                conn
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::Row;

    fn db() -> (tempfile::TempDir, Connection) {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = open(&dir.path().join("l.db")).expect("open");
        conn.execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER, s TEXT, UNIQUE (s))").expect("create");
        (dir, conn)
    }

    fn changed(steps: &Steps) -> u64 {
        steps.iter().filter_map(|s| s.as_ref().left()).map(|r| r.rows_affected).sum()
    }

    fn rows(steps: Steps) -> Vec<AnyRow> {
        steps.into_iter().filter_map(Either::right).collect()
    }

    fn values(conn: &Connection) -> Vec<i64> {
        let mut stmt = conn.prepare("SELECT v FROM t ORDER BY v").expect("prepare");
        stmt.query_map([], |r| r.get(0)).expect("select").collect::<Result<_, _>>().expect("rows")
    }

    /// sqlx's SQLite driver runs every statement of a query's text; running the first and reporting success is
    /// a partial write nobody sees (rusqlite 0.32's `prepare` ignores the tail).
    #[test]
    fn attack_a_second_statement_in_one_query_is_not_silently_dropped() {
        let (_dir, conn) = db();
        let ran = run(&conn, sqlx::query("INSERT INTO t (v) VALUES (1); INSERT INTO t (v) VALUES (2)"));
        let kept = values(&conn);
        assert!(ran.is_err() || kept == vec![1, 2], "reported ok={} but kept {kept:?}", ran.is_ok());
    }

    /// refunds.rs relies on `is_unique_violation()` (UNIQUE index and primary key alike).
    #[test]
    fn unique_and_primary_key_violations_are_unique_violations() {
        let (_dir, conn) = db();
        run(&conn, sqlx::query("INSERT INTO t (id, v, s) VALUES ($1, $2, $3)").bind(1_i64).bind(1_i64).bind("a"))
            .expect("insert");
        run(&conn, sqlx::query("INSERT INTO t (id, v, s) VALUES (2, 2, 'b')")).expect("insert");
        for q in [
            sqlx::query("INSERT INTO t (id, v, s) VALUES ($1, 3, 'c')").bind(1_i64),
            sqlx::query("UPDATE t SET s = $1 WHERE id = 2").bind("a"),
            sqlx::query("INSERT INTO t (v, s) VALUES (3, $1) RETURNING id").bind("a"),
        ] {
            match run(&conn, q) {
                Err(Error::Database(e)) => assert!(e.is_unique_violation(), "{e}"),
                other => panic!("not a database error: ok={}", other.is_ok()),
            }
        }
    }

    /// The money rules rely on conditional updates returning rows_affected == 1, RETURNING or not.
    #[test]
    fn rows_affected_counts_the_statements_own_changes() {
        let (_dir, conn) = db();
        let ins = run(&conn, sqlx::query("INSERT INTO t (v, s) VALUES (1, 'a'), (2, 'b')")).expect("insert");
        assert_eq!(changed(&ins), 2);
        // A read after a write changed nothing.
        let read = run(&conn, sqlx::query("SELECT v FROM t")).expect("select");
        assert_eq!(changed(&read), 0);
        // Nothing matched: 0, not the previous statement's count.
        let none = run(&conn, sqlx::query("UPDATE t SET v = 5 WHERE v = $1").bind(99_i64)).expect("update");
        assert_eq!(changed(&none), 0);
        let ret = run(&conn, sqlx::query("UPDATE t SET v = v + 10 RETURNING v")).expect("update");
        assert_eq!(changed(&ret), 2);
        assert_eq!(rows(ret).len(), 2);
        let ret0 = run(&conn, sqlx::query("UPDATE t SET v = 0 WHERE v < 0 RETURNING v")).expect("update");
        assert_eq!(changed(&ret0), 0);
        let ignored =
            run(&conn, sqlx::query("INSERT INTO t (v, s) VALUES (7, 'a') ON CONFLICT (s) DO NOTHING")).expect("insert");
        assert_eq!(changed(&ignored), 0);
        let upsert =
            run(&conn, sqlx::query("INSERT INTO t (v, s) VALUES (7, 'a') ON CONFLICT (s) DO UPDATE SET v = 8"))
                .expect("upsert");
        assert_eq!(changed(&upsert), 1);
    }

    /// `$1` is not `$10`; a repeated `$N` is one value; the text order of `$N` does not matter.
    #[test]
    fn dollar_parameters_bind_by_number() {
        let (_dir, conn) = db();
        let mut q = sqlx::query(
            "SELECT $10 AS ten, $1 AS one, $2 + $2 AS twice, $3 AS three, $4 AS four, $5, $6, $7, $8, $9, $11",
        );
        for v in 1..=11_i64 {
            q = q.bind(v * 100);
        }
        let row = rows(run(&conn, q).expect("select")).remove(0);
        assert_eq!(row.try_get::<i64, _>("ten").expect("ten"), 1000);
        assert_eq!(row.try_get::<i64, _>("one").expect("one"), 100);
        assert_eq!(row.try_get::<i64, _>("twice").expect("twice"), 400);
        assert_eq!(row.try_get::<i64, _>("three").expect("three"), 300);
    }

    /// A statement with more parameters than bound values is an error, not a NULL written silently.
    #[test]
    fn a_missing_value_is_an_error_not_null() {
        let (_dir, conn) = db();
        let ran = run(&conn, sqlx::query("INSERT INTO t (v, s) VALUES ($1, $2)").bind(1_i64));
        assert!(ran.is_err());
        assert!(values(&conn).is_empty());
    }

    /// Values decode as through sqlx's SQLite driver: integers as i64, NULL as None, text as text, and an integer
    /// is not silently a string (or the reverse).
    #[test]
    fn values_decode_by_storage_class() {
        let (_dir, conn) = db();
        let row = rows(
            run(
                &conn,
                sqlx::query("SELECT $1 AS i, $2 AS n, $3 AS s, $4 AS b, 1.5 AS f, '12' AS digits")
                    .bind(i64::MIN)
                    .bind(None::<i64>)
                    .bind("tk_secret")
                    .bind(true),
            )
            .expect("select"),
        )
        .remove(0);
        assert_eq!(row.try_get::<i64, _>("i").expect("i"), i64::MIN);
        assert_eq!(row.try_get::<Option<i64>, _>("n").expect("n"), None);
        assert_eq!(row.try_get::<Option<String>, _>("n").expect("n"), None);
        assert!(row.try_get::<i64, _>("n").is_err(), "NULL is not 0");
        assert_eq!(row.try_get::<String, _>("s").expect("s"), "tk_secret");
        assert_eq!(row.try_get::<i64, _>("b").expect("b"), 1);
        assert!((row.try_get::<f64, _>("f").expect("f") - 1.5).abs() < f64::EPSILON);
        assert!(row.try_get::<i64, _>("digits").is_err(), "text is not an integer");
        assert!(row.try_get::<String, _>("i").is_err(), "an integer is not text");
    }

    /// A reused reader is not left inside a read transaction (a stale snapshot): it sees later commits.
    #[test]
    fn a_reused_reader_sees_later_commits() {
        let (dir, conn) = db();
        let readers = Readers::new(dir.path().join("l.db"));
        let count = |readers: &Readers| {
            let row = rows(readers.run(sqlx::query("SELECT COUNT(*) AS n FROM t")).expect("count")).remove(0);
            row.try_get::<i64, _>("n").expect("n")
        };
        assert_eq!(count(&readers), 0);
        // A read that fails (no value for `$1`) does not keep a snapshot either.
        assert!(readers.run(sqlx::query("SELECT v FROM t WHERE v = $1")).is_err());
        conn.execute_batch("INSERT INTO t (v) VALUES (1)").expect("insert");
        assert_eq!(count(&readers), 1);
        conn.execute_batch("BEGIN; INSERT INTO t (v) VALUES (2)").expect("open write");
        assert_eq!(count(&readers), 1, "a reader sees uncommitted data");
        conn.execute_batch("COMMIT").expect("commit");
        assert_eq!(count(&readers), 2);
    }
}
