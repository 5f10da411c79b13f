//! Group commit for SQLite: every write of the process runs on one connection, and the writes that arrive while
//! one is being made durable share the next `COMMIT` (and its fsync).
//!
//! Why: with `synchronous = FULL` each commit waits for an fsync of the WAL, and SQLite admits one writer at a
//! time. Separate transactions on pooled connections therefore queue on the file lock (SQLite's busy handler
//! sleeps 1 to 100 ms between tries) and pay one fsync each. Here a write is a *unit*: a savepoint inside the
//! batch's transaction. A unit that fails or is dropped is rolled back to its savepoint alone; a unit that
//! finishes waits until its batch is committed, so it is durable before the caller acts on it (money rule 7),
//! and a batch whose `COMMIT` fails fails every unit in it. Readers use the pool and see committed data only.

use super::lite::{self, Steps};
use rusqlite::Connection;
use sqlx::{Any, Execute};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, OwnedMutexGuard, watch};

/// The most units one `COMMIT` takes, and the longest a batch stays open while units keep arriving.
const MAX_UNITS: usize = 64;
const MAX_OPEN: Duration = Duration::from_millis(4);
/// How long a finished unit waits for its batch before committing it itself (its last unit was dropped).
const HELP_AFTER: Duration = Duration::from_millis(10);

type Outcome = Option<Result<(), String>>;

struct Batch {
    id: u64,
    units: usize,
    opened: Instant,
    done: watch::Sender<Outcome>,
}

struct Writer {
    /// Statements run on it in place, by the holder of the writer; only `COMMIT` (an fsync) moves to a blocking
    /// thread, which is why it sits behind a (never contended) mutex of its own.
    conn: Arc<std::sync::Mutex<Connection>>,
    batch: Option<Batch>,
    /// A unit was dropped inside its savepoint: the next holder rolls it back first.
    dirty: bool,
}

impl Writer {
    /// Rolls back a unit dropped inside its savepoint. When that fails the savepoint is gone (SQLite rolls the
    /// whole transaction back by itself after some I/O and full-disk errors): the batch is failed, so that the
    /// writer starts afresh instead of failing every later unit on the missing savepoint.
    fn clean(&mut self) -> Result<(), sqlx::Error> {
        if self.dirty {
            if let Err(e) = self.batch_sql("ROLLBACK TO unit; RELEASE unit") {
                self.fail(&e);
                return Err(e);
            }
            self.dirty = false;
        }
        Ok(())
    }

    /// Runs statements without values (transaction control) in place.
    fn batch_sql(&self, sql: &str) -> Result<(), sqlx::Error> {
        let conn = self.conn.lock().map_err(|_| sqlx::Error::Protocol("group commit: writer poisoned".into()))?;
        conn.execute_batch(sql).map_err(lite::lite_err)
    }

    /// Rolls the open batch back and fails its units.
    fn fail(&mut self, e: &sqlx::Error) {
        // Fails when SQLite already rolled the transaction back by itself: nothing is open then either.
        let _ = self.batch_sql("ROLLBACK");
        self.dirty = false;
        if let Some(batch) = self.batch.take() {
            tracing::error!(error = %e, units = batch.units, "group commit failed; its writes are rolled back");
            batch.done.send_replace(Some(Err(e.to_string())));
        }
    }

    /// Runs transaction control that may wait on a blocking thread: `COMMIT` (the fsync) and `BEGIN IMMEDIATE`
    /// (which waits up to the busy timeout when another process holds the file's write lock), so that neither
    /// stalls a runtime worker.
    async fn blocking_sql(&self, sql: &'static str) -> Result<(), sqlx::Error> {
        let conn = self.conn.clone();
        tokio::task::spawn_blocking(move || {
            let conn = conn.lock().map_err(|_| sqlx::Error::Protocol("group commit: writer poisoned".into()))?;
            conn.execute_batch(sql).map_err(lite::lite_err)
        })
        .await
        .unwrap_or_else(|e| Err(sqlx::Error::Protocol(format!("group commit: {e}"))))
    }

    /// Commits the open batch, then tells its units.
    async fn commit(&mut self) {
        if self.batch.is_none() || self.clean().is_err() {
            return;
        }
        match self.blocking_sql("COMMIT").await {
            Ok(()) => {
                if let Some(batch) = self.batch.take() {
                    batch.done.send_replace(Some(Ok(())));
                }
            }
            Err(e) => self.fail(&e),
        }
    }
}

/// The process's one SQLite writer.
pub(super) struct GroupCommit {
    writer: Arc<Mutex<Writer>>,
    /// Units waiting for the writer: while there are some, a finished unit leaves the commit to the last.
    waiting: AtomicUsize,
    next_batch: AtomicU64,
}

impl GroupCommit {
    pub(super) fn new(conn: Connection) -> Arc<GroupCommit> {
        let conn = Arc::new(std::sync::Mutex::new(conn));
        Arc::new(GroupCommit {
            writer: Arc::new(Mutex::new(Writer { conn, batch: None, dirty: false })),
            waiting: AtomicUsize::new(0),
            next_batch: AtomicU64::new(1),
        })
    }

    /// Starts a unit: a savepoint in the open batch (opening one when there is none).
    ///
    /// The start runs in a task of its own, to the end even when the caller goes away (client gone, request
    /// timeout): cut off half-way, a `BEGIN` or `SAVEPOINT` the connection ran would be unknown to the writer (every
    /// later `BEGIN` failing), and `waiting` would never come down. A unit started for nobody is dropped, which
    /// rolls it back.
    pub(super) async fn unit(self: &Arc<Self>) -> Result<Unit, sqlx::Error> {
        detached(self.clone().start()).await
    }

    async fn start(self: Arc<Self>) -> Result<Unit, sqlx::Error> {
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let mut w = self.writer.clone().lock_owned().await;
        self.waiting.fetch_sub(1, Ordering::SeqCst);
        // A clean that fails has failed the batch it was in (logged there): this unit starts a new one.
        let _ = w.clean();
        if w.batch.is_none() {
            w.blocking_sql("BEGIN IMMEDIATE").await?;
            let id = self.next_batch.fetch_add(1, Ordering::SeqCst);
            w.batch = Some(Batch { id, units: 0, opened: Instant::now(), done: watch::channel(None).0 });
        }
        w.batch_sql("SAVEPOINT unit")?;
        Ok(Unit { writer: Some(w), group: self })
    }

    /// Commits batch `id` if it is still open (its last unit went away without committing it).
    async fn help(&self, id: u64) {
        let mut w = self.writer.lock().await;
        if w.batch.as_ref().is_some_and(|b| b.id == id) {
            w.commit().await;
        }
    }
}

/// Runs `work` in a task of its own: the `RELEASE`, `COMMIT` or `BEGIN` it sends is not cut off half-way when the
/// caller's future is dropped (the connection would run it while the writer believed otherwise).
async fn detached<T: Send + 'static>(
    work: impl Future<Output = Result<T, sqlx::Error>> + Send + 'static,
) -> Result<T, sqlx::Error> {
    tokio::spawn(work).await.map_err(|e| sqlx::Error::Protocol(format!("group commit: {e}")))?
}

/// One write: statements run on it as on a transaction (it dereferences to the connection); [`Unit::commit`]
/// returns once they are durable. Dropped unfinished, it is rolled back alone.
pub(crate) struct Unit {
    writer: Option<OwnedMutexGuard<Writer>>,
    group: Arc<GroupCommit>,
}

impl Unit {
    /// Keeps the unit's writes and waits until its batch is committed.
    ///
    /// # Errors
    /// The unit's `RELEASE` or its batch's `COMMIT` failed: nothing of it was kept.
    pub(crate) async fn commit(self) -> Result<(), sqlx::Error> {
        detached(self.finish(false)).await
    }

    /// Undoes the unit's writes; still waits for its batch, since what it read may have come from units of the
    /// same batch that are not durable yet.
    ///
    /// # Errors
    /// As [`Unit::commit`].
    pub(crate) async fn rollback(self) -> Result<(), sqlx::Error> {
        detached(self.finish(true)).await
    }

    async fn finish(mut self, undo: bool) -> Result<(), sqlx::Error> {
        let Some(mut w) = self.writer.take() else { return Ok(()) };
        w.dirty = true;
        if undo {
            w.clean()?;
        } else if let Err(e) = w.batch_sql("RELEASE unit") {
            // Nothing of the unit is kept: rolled back alone now (or its batch failed when the savepoint is gone).
            let _ = w.clean();
            return Err(e);
        } else {
            w.dirty = false;
        }
        let Some(batch) = w.batch.as_mut() else {
            return Err(sqlx::Error::Protocol("group commit: the unit's batch is gone".into()));
        };
        batch.units += 1;
        let (id, mut done) = (batch.id, batch.done.subscribe());
        let now = self.group.waiting.load(Ordering::SeqCst) == 0
            || batch.units >= MAX_UNITS
            || batch.opened.elapsed() >= MAX_OPEN;
        if now {
            w.commit().await;
        }
        drop(w);
        loop {
            // The watch's borrow is dropped before any await: the outcome is copied out.
            let waited = tokio::time::timeout(HELP_AFTER, done.wait_for(Option::is_some))
                .await
                .map(|r| r.map(|outcome| outcome.clone().unwrap_or(Ok(()))));
            match waited {
                Ok(Ok(Ok(()))) => return Ok(()),
                Ok(Ok(Err(e))) => return Err(sqlx::Error::Protocol(format!("group commit failed: {e}"))),
                Ok(Err(_)) => return Err(sqlx::Error::Protocol("group commit: the batch was dropped".into())),
                Err(_) => self.group.help(id).await,
            }
        }
    }
}

impl Drop for Unit {
    /// Dropped unfinished (an error, or its request went away): the next holder of the writer rolls it back;
    /// when no unit is waiting, a task does it now and commits the rest of the batch, so that the file's write
    /// lock is not held until the next write.
    fn drop(&mut self) {
        let Some(mut w) = self.writer.take() else { return };
        w.dirty = true;
        if self.group.waiting.load(Ordering::SeqCst) == 0
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let mut w = w;
                w.commit().await;
            });
        }
    }
}

impl std::fmt::Debug for Unit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Unit").field("live", &self.writer.is_some()).finish_non_exhaustive()
    }
}

impl Unit {
    /// Runs one statement of the unit, in place.
    pub(super) fn run<'q>(&self, query: impl Execute<'q, Any>) -> Result<Steps, sqlx::Error> {
        let w = self.writer.as_ref().ok_or_else(|| sqlx::Error::Protocol("group commit: unit finished".into()))?;
        let conn = w.conn.lock().map_err(|_| sqlx::Error::Protocol("group commit: writer poisoned".into()))?;
        lite::run(&conn, query)
    }
}

impl std::fmt::Debug for GroupCommit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GroupCommit").field("waiting", &self.waiting.load(Ordering::Relaxed)).finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;
    use std::path::PathBuf;

    async fn open(dir: &std::path::Path) -> (Arc<GroupCommit>, PathBuf) {
        let path = dir.join("g.db");
        let conn = lite::open(&path).expect("open");
        conn.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)").expect("create");
        (GroupCommit::new(conn), path)
    }

    async fn insert(group: &Arc<GroupCommit>, v: i64) -> Result<(), sqlx::Error> {
        let unit = group.unit().await?;
        unit.run(sqlx::query("INSERT INTO t (v) VALUES (?)").bind(v))?;
        unit.commit().await
    }

    async fn committed(path: &std::path::Path) -> Vec<i64> {
        let other = lite::open(path).expect("open");
        let mut stmt = other.prepare("SELECT v FROM t ORDER BY v").expect("prepare");
        stmt.query_map([], |r| r.get(0)).expect("select").collect::<Result<_, _>>().expect("rows")
    }

    /// A request that goes away (client gone, request timeout) while its unit's `BEGIN IMMEDIATE` is in flight
    /// must not leave the writer inside a transaction it does not know about.
    #[tokio::test]
    async fn attack_cancelled_unit_start_keeps_writer_usable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (group, url) = open(dir.path()).await;
        // Polled once: the lock is free, the BEGIN is sent to the connection's worker, then the future is dropped.
        assert!(group.unit().now_or_never().is_none(), "unit() finished in one poll");
        tokio::time::sleep(Duration::from_millis(50)).await;
        insert(&group, 1).await.expect("the next write works");
        assert_eq!(committed(&url).await, vec![1]);
    }

    /// A request that goes away while its unit's `RELEASE` / `COMMIT` is in flight must not brick the writer.
    #[tokio::test]
    async fn attack_cancelled_unit_commit_keeps_writer_usable() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (group, url) = open(dir.path()).await;
        let unit = group.unit().await.expect("unit");
        unit.run(sqlx::query("INSERT INTO t (v) VALUES (1)")).expect("insert");
        assert!(unit.commit().now_or_never().is_none(), "commit finished in one poll");
        tokio::time::sleep(Duration::from_millis(50)).await;
        insert(&group, 2).await.expect("the next write works");
        // The cancelled unit may or may not be kept; the later one must be.
        assert!(committed(&url).await.contains(&2));
    }

    /// A caller that gives up waiting for the writer must not make the writer believe, forever, that units are
    /// waiting: then a dropped unit leaves its batch open and the file's write lock held until the next write.
    #[tokio::test]
    async fn attack_cancelled_wait_does_not_leave_write_lock_held() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (group, url) = open(dir.path()).await;
        let held = group.unit().await.expect("unit");
        // Waits for the writer, then gives up.
        assert!(tokio::time::timeout(Duration::from_millis(20), group.unit()).await.is_err());
        drop(held);
        // A unit dropped unfinished, alone: its batch must be closed without waiting for another write.
        let unit = group.unit().await.expect("unit");
        drop(unit);
        tokio::time::sleep(Duration::from_millis(100)).await;
        // Another process (or another Store on the same file) can take the write lock.
        let other = lite::open(&url).expect("open");
        other.busy_timeout(Duration::from_millis(200)).expect("busy timeout");
        other.execute_batch("BEGIN IMMEDIATE").expect("the write lock is free");
        other.execute_batch("ROLLBACK").expect("rollback");
    }

    /// Many writers at once, a third of them abandoned at some point (request timeouts): every write that was
    /// acknowledged is durable, none that failed is, and the writer still works afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn abandoned_units_under_load_keep_acknowledged_writes_and_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (group, url) = open(dir.path()).await;
        let mut tasks = Vec::new();
        for v in 0..300_i64 {
            let group = group.clone();
            tasks.push(tokio::spawn(async move {
                let write = insert(&group, v);
                if v % 3 == 0 {
                    // Abandoned after 0 to 4 ms.
                    let after = Duration::from_micros(u64::try_from(v * 131 % 4000).unwrap_or(0));
                    match tokio::time::timeout(after, write).await {
                        Ok(r) => (v, Some(r.is_ok())),
                        Err(_) => (v, None),
                    }
                } else {
                    (v, Some(write.await.is_ok()))
                }
            }));
        }
        let mut acknowledged = Vec::new();
        let mut failed = Vec::new();
        for t in tasks {
            match t.await.expect("task") {
                (v, Some(true)) => acknowledged.push(v),
                (v, Some(false)) => failed.push(v),
                (_, None) => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        insert(&group, 1000).await.expect("the writer still works");
        let kept = committed(&url).await;
        for v in &acknowledged {
            assert!(kept.contains(v), "acknowledged write {v} is not durable");
        }
        for v in &failed {
            assert!(!kept.contains(v), "failed write {v} was kept");
        }
        assert!(acknowledged.len() >= 150, "only {} writes acknowledged", acknowledged.len());
    }

    /// On some I/O and full-disk errors SQLite rolls the whole transaction back by itself: the batch and the unit's
    /// savepoint are gone. When a write is waiting as that unit goes away, the writer must still start afresh
    /// (and not fail every later write on the missing savepoint until a restart).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn attack_a_batch_sqlite_rolled_back_itself_does_not_brick_the_writer() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (group, url) = open(dir.path()).await;
        let unit = group.unit().await.expect("unit");
        // What SQLite does after such an error.
        unit.run(sqlx::query("ROLLBACK")).expect("rollback");
        let waiting = tokio::spawn({
            let group = group.clone();
            async move { insert(&group, 1).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(unit);
        waiting.await.expect("task").expect("the waiting write starts a new batch");
        insert(&group, 2).await.expect("the writer works again");
        assert_eq!(committed(&url).await, vec![1, 2]);
    }

    /// Another connection on the file (another process, an operator's `sqlite3`, a second `Store`) holds the
    /// write lock: the writer's `BEGIN IMMEDIATE` now waits for it (busy_timeout, up to 15 s) in place, on a tokio
    /// worker, and every task queued on that worker (HTTP, reads, timers) waits with it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn attack_a_busy_write_lock_does_not_block_a_tokio_worker() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (group, path) = open(dir.path()).await;
        let (locked, is_locked) = std::sync::mpsc::channel();
        let holder = std::thread::spawn(move || {
            let other = lite::open(&path).expect("open");
            other.execute_batch("BEGIN IMMEDIATE").expect("take the write lock");
            locked.send(()).expect("send");
            std::thread::sleep(Duration::from_millis(1500));
            other.execute_batch("ROLLBACK").expect("release the write lock");
        });
        is_locked.recv().expect("locked");
        let write = tokio::spawn({
            let group = group.clone();
            async move { insert(&group, 1).await }
        });
        // Not a tokio sleep: the timer is driven by the worker under test.
        std::thread::sleep(Duration::from_millis(200));
        let asked = Instant::now();
        tokio::spawn(async {}).await.expect("trivial task");
        let waited = asked.elapsed();
        write.await.expect("task").expect("the write succeeds once the lock is free");
        holder.join().expect("holder");
        assert!(waited < Duration::from_millis(300), "a trivial task waited {waited:?} for the only tokio worker");
    }

    /// A reader (WAL, another connection) sees a unit's writes only once its batch is committed.
    #[tokio::test]
    async fn readers_do_not_see_a_batch_before_its_commit() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (group, path) = open(dir.path()).await;
        let readers = lite::Readers::new(path);
        let count = |readers: &lite::Readers| {
            let steps = readers.run(sqlx::query("SELECT COUNT(*) FROM t")).expect("count");
            let row = steps.into_iter().find_map(sqlx::Either::right).expect("row");
            sqlx::Row::try_get::<i64, _>(&row, 0).expect("n")
        };
        let unit = group.unit().await.expect("unit");
        unit.run(sqlx::query("INSERT INTO t (v) VALUES (1)")).expect("insert");
        assert_eq!(count(&readers), 0, "a reader saw a unit not yet committed");
        unit.commit().await.expect("commit");
        assert_eq!(count(&readers), 1, "a reader missed an acknowledged write");
    }

    /// The writer runs with the store's settings: FULL (a commit survives a power cut), WAL, foreign keys.
    #[tokio::test]
    async fn the_writer_commits_with_synchronous_full() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (group, _) = open(dir.path()).await;
        let unit = group.unit().await.expect("unit");
        let value = |sql: &'static str| {
            let steps = unit.run(sqlx::query(sql)).expect("pragma");
            let row = steps.into_iter().find_map(sqlx::Either::right).expect("row");
            let v: sqlx_core::any::AnyValueKind<'static> = row.values[0].kind.clone();
            format!("{v:?}")
        };
        assert_eq!(value("PRAGMA synchronous"), "BigInt(2)");
        assert_eq!(value("PRAGMA journal_mode"), "Text(\"wal\")");
        assert_eq!(value("PRAGMA foreign_keys"), "BigInt(1)");
        unit.commit().await.expect("commit");
    }

    /// A real SQLITE_FULL (the file capped) in one unit while another unit of the batch waits for its commit:
    /// the other write is acknowledged only if it is in the file, the full unit leaves nothing, and the writer
    /// works afterwards.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_in_one_unit_neither_loses_nor_fakes_another_units_write() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("g.db");
        let conn = lite::open(&path).expect("open");
        conn.execute_batch(
            "CREATE TABLE t (v INTEGER NOT NULL); CREATE TABLE big (b BLOB); PRAGMA max_page_count = 64",
        )
        .expect("create");
        let group = GroupCommit::new(conn);
        for round in 0..20_i64 {
            let a = group.unit().await.expect("unit");
            a.run(sqlx::query("INSERT INTO t (v) VALUES ($1)").bind(round)).expect("insert");
            let full = tokio::spawn({
                let group = group.clone();
                async move {
                    let unit = group.unit().await?;
                    unit.run(sqlx::query(
                        "INSERT INTO big (b) WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c \
                         WHERE x < 200) SELECT zeroblob(4096) FROM c",
                    ))?;
                    unit.commit().await
                }
            });
            while group.waiting.load(Ordering::SeqCst) == 0 && !full.is_finished() {
                tokio::task::yield_now().await;
            }
            let a_done = a.commit().await;
            let full_done = full.await.expect("task");
            assert!(full_done.is_err(), "a write past the file's cap was acknowledged");
            let kept = committed(&path).await;
            assert_eq!(a_done.is_ok(), kept.contains(&round), "round {round}: acknowledged {a_done:?}, kept {kept:?}");
            let other = lite::open(&path).expect("open");
            let blobs: i64 = other.query_row("SELECT COUNT(*) FROM big", [], |r| r.get(0)).expect("count");
            assert_eq!(blobs, 0, "part of the full unit was kept");
        }
        insert(&group, 1000).await.expect("the writer still works");
        assert!(committed(&path).await.contains(&1000));
    }
}
