//! The durable store: sessions, attempts, refunds, the shared bKash token, idempotency records and an audit
//! trail. One implementation over `sqlx::AnyPool` serves SQLite (the default, a single file) and PostgreSQL
//! (several instances): the SQL is portable and every state change is a conditional update
//! (`... WHERE status IN (...)`), so exactly-once holds across connections and instances alike.

use deshpay_api::{AttemptId, Currency, Method, Money, RefundId, RefundStatus, SessionId, SessionStatus};
use sqlx::any::{AnyPoolOptions, AnyQueryResult, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection, Executor, Row};
use std::ops::{Deref, DerefMut};
use std::sync::Arc;

mod group_commit;

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

/// Backend-side status of an attempt: finer than the widget's `AttemptStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AttemptState {
    /// Row written; the provider's create call is under way.
    Creating,
    /// Created at the provider; waiting for the customer.
    Created,
    /// A callback claimed the attempt and Execute (or Query) is under way.
    Executing,
    /// Paid.
    Completed,
    /// The provider refused, or the customer failed verification.
    Failed,
    /// The customer cancelled on the provider's page.
    Cancelled,
    /// The provider's create call failed; nothing exists at the provider that can take money.
    CreateFailed,
    /// Not executed because another attempt had already paid the session (no money moved).
    Superseded,
    /// Money moved but amount or invoice did not match: needs a person.
    Review,
    /// Never finished by the customer in time.
    Expired,
}

impl AttemptState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptState::Creating => "creating",
            AttemptState::Created => "created",
            AttemptState::Executing => "executing",
            AttemptState::Completed => "completed",
            AttemptState::Failed => "failed",
            AttemptState::Cancelled => "cancelled",
            AttemptState::CreateFailed => "create_failed",
            AttemptState::Superseded => "superseded",
            AttemptState::Review => "review",
            AttemptState::Expired => "expired",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "creating" => AttemptState::Creating,
            "created" => AttemptState::Created,
            "executing" => AttemptState::Executing,
            "completed" => AttemptState::Completed,
            "failed" => AttemptState::Failed,
            "cancelled" => AttemptState::Cancelled,
            "create_failed" => AttemptState::CreateFailed,
            "superseded" => AttemptState::Superseded,
            "review" => AttemptState::Review,
            "expired" => AttemptState::Expired,
            other => return Err(decode_err(format!("unknown attempt state {other:?}"))),
        })
    }

    /// Whether the attempt may still take the customer's money.
    pub fn is_in_flight(self) -> bool {
        matches!(self, AttemptState::Creating | AttemptState::Created | AttemptState::Executing)
    }
}

/// A session row.
#[derive(Debug, Clone)]
pub struct SessionRow {
    /// Id.
    pub id: SessionId,
    /// Amount and currency.
    pub amount: Money,
    /// Merchant invoice.
    pub invoice: String,
    /// Description.
    pub description: Option<String>,
    /// Return URL.
    pub return_url: String,
    /// Offered methods.
    pub methods: Vec<Method>,
    /// Status as stored (an open session past `expires_at` is shown as expired).
    pub status: SessionStatus,
    /// The attempt that paid.
    pub paid_attempt_id: Option<AttemptId>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub expires_at: i64,
}

/// An attempt row.
#[derive(Debug, Clone)]
pub struct AttemptRow {
    /// Id.
    pub id: AttemptId,
    /// Session.
    pub session_id: SessionId,
    /// Method.
    pub method: Method,
    /// State.
    pub state: AttemptState,
    /// Amount and currency at the time of the attempt.
    pub amount: Money,
    /// Provider's id for it (bKash paymentID).
    pub provider_ref: Option<String>,
    /// Where the customer goes (bkashURL).
    pub redirect_url: Option<String>,
    /// Provider transaction id once paid.
    pub trx_id: Option<String>,
    /// Masked payer.
    pub payer: Option<String>,
    /// Provider's failure code.
    pub failure_code: Option<String>,
    /// Provider's failure message (shown to the customer).
    pub failure_message: Option<String>,
    /// When Execute began (Unix ms).
    pub execute_started_at: Option<i64>,
    /// Our request id at the provider (Bestin `req_id`, fresh per attempt).
    pub req_id: Option<String>,
    /// Deep links as the provider returned them (JSON).
    pub links: Option<String>,
    /// When the provider's payment request expires (Unix ms).
    pub expires_at: Option<i64>,
    /// A provider-confirmed success that arrived after the attempt was closed and still paid the session.
    pub late: bool,
    /// Provider checks made so far (back-off schedule, retry budget).
    pub checks: i64,
    /// When to ask the provider next (Unix ms); `None`: not scheduled.
    pub next_check_at: Option<i64>,
    /// Unix ms.
    pub created_at: i64,
    /// Unix ms.
    pub updated_at: i64,
}

impl AttemptRow {
    /// A new attempt in `creating`, written before the provider is called.
    pub fn new(id: AttemptId, session_id: SessionId, method: Method, amount: Money, now: i64) -> AttemptRow {
        AttemptRow {
            id,
            session_id,
            method,
            state: AttemptState::Creating,
            amount,
            provider_ref: None,
            redirect_url: None,
            trx_id: None,
            payer: None,
            failure_code: None,
            failure_message: None,
            execute_started_at: None,
            req_id: None,
            links: None,
            expires_at: None,
            late: false,
            checks: 0,
            next_check_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}

/// Fields to set along with a state transition; `None` keeps the stored value.
#[derive(Debug, Clone, Default)]
pub struct AttemptPatch {
    /// Provider id.
    pub provider_ref: Option<String>,
    /// Redirect URL.
    pub redirect_url: Option<String>,
    /// Transaction id.
    pub trx_id: Option<String>,
    /// Masked payer.
    pub payer: Option<String>,
    /// Failure code.
    pub failure_code: Option<String>,
    /// Failure message.
    pub failure_message: Option<String>,
    /// Execute start.
    pub execute_started_at: Option<i64>,
    /// Deep links (JSON).
    pub links: Option<String>,
    /// Provider deadline.
    pub expires_at: Option<i64>,
    /// Marks a late success.
    pub late: bool,
    /// Schedules the next provider check: `Some(Some(t))` sets it, `Some(None)` clears it.
    pub next_check_at: Option<Option<i64>>,
    /// Counts one provider check.
    pub count_check: bool,
    /// Forgets that Execute was sent (only after bKash said the payment was never approved: 2056 + Initiated).
    pub clear_execute: bool,
}

/// A refund row.
#[derive(Debug, Clone)]
pub struct RefundRow {
    /// Id.
    pub id: RefundId,
    /// Session.
    pub session_id: SessionId,
    /// The paying attempt.
    pub attempt_id: AttemptId,
    /// Amount.
    pub amount: Money,
    /// Status.
    pub status: RefundStatus,
    /// Reason.
    pub reason: Option<String>,
    /// SKU.
    pub sku: Option<String>,
    /// Provider's refund trx id.
    pub refund_trx_id: Option<String>,
    /// Provider's message on failure.
    pub failure_message: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

/// The persisted provider token.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// id_token (a credential: redacted in `Debug`, never logged).
    pub id_token: secrecy::SecretString,
    /// refresh_token (a credential: redacted in `Debug`, never logged).
    pub refresh_token: secrecy::SecretString,
    /// id_token expiry, Unix ms.
    pub expires_at: i64,
    /// refresh_token expiry, Unix ms.
    pub refresh_expires_at: i64,
}

fn decode_err(msg: String) -> sqlx::Error {
    sqlx::Error::Decode(msg.into())
}

fn currency_of(s: &str) -> StoreResult<Currency> {
    s.parse().map_err(|e| decode_err(format!("{e}")))
}

fn money_of(minor: i64, currency: &str) -> StoreResult<Money> {
    Money::from_minor(minor, currency_of(currency)?).map_err(|e| decode_err(e.to_string()))
}

fn session_status_of(s: &str) -> StoreResult<SessionStatus> {
    Ok(match s {
        "open" => SessionStatus::Open,
        "paid" => SessionStatus::Paid,
        "expired" => SessionStatus::Expired,
        "canceled" => SessionStatus::Canceled,
        other => return Err(decode_err(format!("unknown session status {other:?}"))),
    })
}

fn refund_status_str(s: RefundStatus) -> &'static str {
    match s {
        RefundStatus::Pending => "pending",
        RefundStatus::Completed => "completed",
        RefundStatus::Failed => "failed",
    }
}

fn refund_status_of(s: &str) -> StoreResult<RefundStatus> {
    Ok(match s {
        "pending" => RefundStatus::Pending,
        "completed" => RefundStatus::Completed,
        "failed" => RefundStatus::Failed,
        other => return Err(decode_err(format!("unknown refund status {other:?}"))),
    })
}

fn id_of<T>(row: &AnyRow, col: &str, parse: fn(&str) -> Result<T, deshpay_api::IdError>) -> StoreResult<T> {
    let text: String = row.try_get(col)?;
    parse(&text).map_err(|e| decode_err(e.to_string()))
}

fn session_from(row: &AnyRow) -> StoreResult<SessionRow> {
    let methods: String = row.try_get("methods")?;
    let paid: Option<String> = row.try_get("paid_attempt_id")?;
    Ok(SessionRow {
        id: id_of(row, "id", SessionId::parse)?,
        amount: money_of(row.try_get("amount_minor")?, &row.try_get::<String, _>("currency")?)?,
        invoice: row.try_get("invoice")?,
        description: row.try_get("description")?,
        return_url: row.try_get("return_url")?,
        methods: methods.split(',').filter_map(Method::parse).collect(),
        status: session_status_of(&row.try_get::<String, _>("status")?)?,
        paid_attempt_id: paid.as_deref().map(AttemptId::parse).transpose().map_err(|e| decode_err(e.to_string()))?,
        created_at: row.try_get("created_at")?,
        expires_at: row.try_get("expires_at")?,
    })
}

fn attempt_from(row: &AnyRow) -> StoreResult<AttemptRow> {
    let method: String = row.try_get("method")?;
    Ok(AttemptRow {
        id: id_of(row, "id", AttemptId::parse)?,
        session_id: id_of(row, "session_id", SessionId::parse)?,
        method: Method::parse(&method).ok_or_else(|| decode_err(format!("unknown method {method:?}")))?,
        state: AttemptState::parse(&row.try_get::<String, _>("status")?)?,
        amount: money_of(row.try_get("amount_minor")?, &row.try_get::<String, _>("currency")?)?,
        provider_ref: row.try_get("provider_ref")?,
        redirect_url: row.try_get("redirect_url")?,
        trx_id: row.try_get("trx_id")?,
        payer: row.try_get("payer")?,
        failure_code: row.try_get("failure_code")?,
        failure_message: row.try_get("failure_message")?,
        execute_started_at: row.try_get("execute_started_at")?,
        req_id: row.try_get("req_id")?,
        links: row.try_get("links")?,
        expires_at: row.try_get("expires_at")?,
        late: row.try_get::<i64, _>("late")? != 0,
        checks: row.try_get("checks")?,
        next_check_at: row.try_get("next_check_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn refund_from(row: &AnyRow) -> StoreResult<RefundRow> {
    Ok(RefundRow {
        id: id_of(row, "id", RefundId::parse)?,
        session_id: id_of(row, "session_id", SessionId::parse)?,
        attempt_id: id_of(row, "attempt_id", AttemptId::parse)?,
        amount: money_of(row.try_get("amount_minor")?, &row.try_get::<String, _>("currency")?)?,
        status: refund_status_of(&row.try_get::<String, _>("status")?)?,
        reason: row.try_get("reason")?,
        sku: row.try_get("sku")?,
        refund_trx_id: row.try_get("refund_trx_id")?,
        failure_message: row.try_get("failure_message")?,
        created_at: row.try_get("created_at")?,
    })
}

/// Backend-side payout state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayoutState {
    /// Written; the provider call is under way.
    Creating,
    /// Accepted by the provider.
    Pending,
    /// Sent.
    Succeeded,
    /// Failed (also when the provider refused it at creation).
    Failed,
    /// Canceled.
    Canceled,
}

impl PayoutState {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            PayoutState::Creating => "creating",
            PayoutState::Pending => "pending",
            PayoutState::Succeeded => "succeeded",
            PayoutState::Failed => "failed",
            PayoutState::Canceled => "canceled",
        }
    }

    fn parse(s: &str) -> StoreResult<Self> {
        Ok(match s {
            "creating" => PayoutState::Creating,
            "pending" => PayoutState::Pending,
            "succeeded" => PayoutState::Succeeded,
            "failed" => PayoutState::Failed,
            "canceled" => PayoutState::Canceled,
            other => return Err(decode_err(format!("unknown payout state {other:?}"))),
        })
    }
}

/// A payout row.
#[derive(Debug, Clone)]
pub struct PayoutRow {
    /// Id (`po_...`).
    pub id: String,
    /// Merchant reference (unique).
    pub reference: String,
    /// Our req_id at Bestin.
    pub req_id: String,
    /// Amount.
    pub amount: Money,
    /// Payee VPA.
    pub upi: String,
    /// State.
    pub status: PayoutState,
    /// Bestin trx id.
    pub trx_id: Option<String>,
    /// Failure reason.
    pub failure_message: Option<String>,
    /// Unix ms.
    pub created_at: i64,
}

fn payout_from(row: &AnyRow) -> StoreResult<PayoutRow> {
    Ok(PayoutRow {
        id: row.try_get("id")?,
        reference: row.try_get("reference")?,
        req_id: row.try_get("req_id")?,
        amount: money_of(row.try_get("amount_minor")?, &row.try_get::<String, _>("currency")?)?,
        upi: row.try_get("upi")?,
        status: PayoutState::parse(&row.try_get::<String, _>("status")?)?,
        trx_id: row.try_get("trx_id")?,
        failure_message: row.try_get("failure_message")?,
        created_at: row.try_get("created_at")?,
    })
}

/// The session holding an invoice (`$1` invoice, `$2` now): see [`Store::live_session_for_invoice`].
const LIVE_FOR_INVOICE: &str = "SELECT * FROM sessions WHERE invoice = $1 AND (status = 'paid' \
     OR (status = 'open' AND expires_at > $2) OR executing_attempt_id IS NOT NULL \
     OR EXISTS (SELECT 1 FROM attempts a WHERE a.session_id = sessions.id AND (a.status IN ('creating', 'executing') \
     OR (a.status = 'created' AND a.method = 'upi') OR (a.status = 'failed' AND a.next_check_at IS NOT NULL)))) \
     ORDER BY created_at DESC LIMIT 1";

/// Takes the lock of a session's invoice for the rest of the transaction: the invoice row before the session
/// row, everywhere, so that no two transactions wait for each other. A write, so that it can open a SQLite
/// transaction (which then holds the write lock at once).
async fn lock_invoice_of(tx: &mut AnyConnection, session: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO invoices (invoice, updated_at) SELECT invoice, $2 FROM sessions WHERE id = $1 \
         ON CONFLICT (invoice) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(session)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Takes the invoice's row lock (creating it on first use) for the rest of the transaction.
async fn lock_invoice(tx: &mut AnyConnection, invoice: &str, now: i64) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO invoices (invoice, updated_at) VALUES ($1, $2) \
         ON CONFLICT (invoice) DO UPDATE SET updated_at = excluded.updated_at",
    )
    .bind(invoice)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn state_list(states: &[AttemptState]) -> String {
    states.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(",")
}

const ATTEMPT_COLUMNS: &str = "id, session_id, method, status, amount_minor, currency, provider_ref, redirect_url, \
     trx_id, payer, failure_code, failure_message, execute_started_at, created_at, updated_at, req_id, links, expires_at, \
     late, checks, next_check_at";

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
    async fn exec<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> StoreResult<AnyQueryResult> {
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
            .connect(&url)
            .await?;
        sqlx::migrate!("./migrations").run(&pool).await?;
        let writer = if backend == Backend::Sqlite {
            let mut conn = AnyConnection::connect(&url).await?;
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
        let row = sqlx::query("PRAGMA synchronous").fetch_one(&self.pool).await?;
        Ok(Some(row.try_get::<i64, _>(0)?))
    }

    /// A trivial query, for `/healthz`.
    ///
    /// # Errors
    /// When the database does not answer.
    pub async fn ping(&self) -> StoreResult<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await.map(|_| ())
    }

    /// Appends an audit event.
    ///
    /// # Errors
    /// Database errors.
    pub async fn add_event(
        &self,
        session_id: Option<&SessionId>,
        attempt_id: Option<&AttemptId>,
        kind: &str,
        detail: &str,
        now: i64,
    ) -> StoreResult<()> {
        self.exec(sqlx::query(
            "INSERT INTO events (id, session_id, attempt_id, kind, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(crate::ids::event_id())
        .bind(session_id.map(|s| s.as_str().to_owned()))
        .bind(attempt_id.map(|a| a.as_str().to_owned()))
        .bind(kind)
        .bind(detail)
        .bind(now)
        )
        .await
        .map(|_| ())
    }

    /// Audit events of a session, oldest first: `(kind, detail)`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn events(&self, session_id: &SessionId) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT kind, detail FROM events WHERE session_id = $1 ORDER BY created_at, id")
            .bind(session_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("kind")?, r.try_get::<Option<String>, _>("detail")?.unwrap_or_default())))
            .collect()
    }

    // ----- sessions -----

    /// Loads a session.
    ///
    /// # Errors
    /// Database errors.
    pub async fn session(&self, id: &SessionId) -> StoreResult<Option<SessionRow>> {
        sqlx::query("SELECT * FROM sessions WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(session_from)
            .transpose()
    }

    /// A session with this invoice that holds it: paid, open and not yet expired, or with an attempt that can
    /// still take money (being created or confirmed, or a UPI request Bestin Pay has not closed).
    ///
    /// # Errors
    /// Database errors.
    pub async fn live_session_for_invoice(&self, invoice: &str, now: i64) -> StoreResult<Option<SessionRow>> {
        sqlx::query(LIVE_FOR_INVOICE)
            .bind(invoice)
            .bind(now)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(session_from)
            .transpose()
    }

    /// Inserts a session unless its invoice is held by another (see [`Store::live_session_for_invoice`]),
    /// under the invoice's lock: concurrent creates for one invoice are serialised, and exactly one wins.
    /// Returns the session that holds the invoice when it is not this one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_session_for_invoice(&self, s: &SessionRow, now: i64) -> StoreResult<Option<SessionRow>> {
        let mut tx = self.begin().await?;
        lock_invoice(&mut tx, &s.invoice, now).await?;
        let holder = sqlx::query(LIVE_FOR_INVOICE).bind(&s.invoice).bind(now).fetch_optional(&mut *tx).await?;
        if let Some(holder) = holder {
            tx.rollback().await?;
            return session_from(&holder).map(Some);
        }
        let methods = s.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(",");
        sqlx::query(
            "INSERT INTO sessions (id, amount_minor, currency, invoice, description, return_url, methods, status, \
             paid_attempt_id, created_at, expires_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $9)",
        )
        .bind(s.id.as_str())
        .bind(s.amount.minor())
        .bind(s.amount.currency().code())
        .bind(&s.invoice)
        .bind(s.description.clone())
        .bind(&s.return_url)
        .bind(methods)
        .bind(s.status.as_str())
        .bind(s.created_at)
        .bind(s.expires_at)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, Some(&s.id), None, "session.created", &s.amount.to_string(), now).await?;
        tx.commit().await?;
        Ok(None)
    }

    // ----- attempts -----

    /// Inserts a new attempt.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_attempt(&self, a: &AttemptRow) -> StoreResult<()> {
        let mut tx = self.begin().await?;
        insert_attempt_in(&mut tx, a).await?;
        tx.commit().await
    }

    /// Moves an attempt from one of `from` to `to`, setting the patch's fields. Returns whether this call made
    /// the change: of concurrent callers (threads or instances) exactly one gets `true`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn transition_attempt(
        &self,
        attempt: &AttemptRow,
        from: &[AttemptState],
        to: AttemptState,
        patch: &AttemptPatch,
        now: i64,
    ) -> StoreResult<bool> {
        let sql = transition_sql(from);
        let done = self.exec(bind_transition(sqlx::query(&sql), attempt, to, patch, now)).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Loads an attempt.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempt(&self, id: &AttemptId) -> StoreResult<Option<AttemptRow>> {
        sqlx::query(&format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(attempt_from)
            .transpose()
    }

    /// Finds an attempt by the provider's id for it (bKash paymentID).
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempt_by_provider_ref(&self, method: Method, provider_ref: &str) -> StoreResult<Option<AttemptRow>> {
        sqlx::query(&format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE method = $1 AND provider_ref = $2"))
            .bind(method.as_str())
            .bind(provider_ref)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(attempt_from)
            .transpose()
    }

    /// Finds an attempt by our request id at the provider.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempt_by_req_id(&self, req_id: &str) -> StoreResult<Option<AttemptRow>> {
        sqlx::query(&format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE req_id = $1"))
            .bind(req_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(attempt_from)
            .transpose()
    }

    /// Whether a notification id was recorded before.
    ///
    /// # Errors
    /// Database errors.
    pub async fn notification_seen(&self, notify_id: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT notify_id FROM notifications WHERE notify_id = $1")
            .bind(notify_id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// The newest attempt of a session.
    ///
    /// # Errors
    /// Database errors.
    pub async fn latest_attempt(&self, session_id: &SessionId) -> StoreResult<Option<AttemptRow>> {
        sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE session_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(session_id.as_str())
        .fetch_optional(&self.pool)
        .await?
        .as_ref()
        .map(attempt_from)
        .transpose()
    }

    /// Attempts in one of `states` not updated since `before` (Unix ms), oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempts_in(&self, states: &[AttemptState], before: i64, limit: i64) -> StoreResult<Vec<AttemptRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE status IN ({}) AND updated_at <= $1 ORDER BY updated_at LIMIT $2",
            state_list(states)
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from).collect()
    }

    /// Attempts of one method in one of `states` not updated since `before`, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn method_attempts_in(
        &self,
        method: Method,
        states: &[AttemptState],
        before: i64,
        limit: i64,
    ) -> StoreResult<Vec<AttemptRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE method = $1 AND status IN ({}) AND updated_at <= $2 \
             ORDER BY updated_at LIMIT $3",
            state_list(states)
        ))
        .bind(method.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from).collect()
    }

    /// Counts a session's attempts in one of `states`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_attempts(&self, session_id: &SessionId, states: &[AttemptState]) -> StoreResult<i64> {
        let row = sqlx::query(&format!(
            "SELECT COUNT(*) AS n FROM attempts WHERE session_id = $1 AND status IN ({})",
            state_list(states)
        ))
        .bind(session_id.as_str())
        .fetch_one(&self.pool)
        .await?;
        row.try_get("n")
    }

    // ----- refunds -----

    /// Inserts a pending refund only if the refunds of the attempt (pending or completed) plus this one stay
    /// within `paid_minor`. Returns whether it was inserted.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_refund_within(
        &self,
        r: &RefundRow,
        paid_minor: i64,
        request_key: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        if self.backend == Backend::Postgres {
            // Serialise refunds of one payment across instances: read-committed sums would race.
            sqlx::query("SELECT id FROM attempts WHERE id = $1 FOR UPDATE")
                .bind(r.attempt_id.as_str())
                .execute(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "INSERT INTO refunds (id, session_id, attempt_id, amount_minor, currency, status, reason, sku, refund_trx_id, \
             failure_message, created_at, updated_at, request_key) \
             SELECT $1, $2, $3, $4, $5, 'pending', $6, $7, NULL, NULL, $8, $8, $10 \
             WHERE (SELECT COALESCE(SUM(amount_minor), 0) FROM refunds WHERE attempt_id = $3 \
                    AND status IN ('pending', 'completed')) + $4 <= $9",
        )
        .bind(r.id.as_str())
        .bind(r.session_id.as_str())
        .bind(r.attempt_id.as_str())
        .bind(r.amount.minor())
        .bind(r.amount.currency().code())
        .bind(r.reason.clone())
        .bind(r.sku.clone())
        .bind(now)
        .bind(paid_minor)
        .bind(request_key.map(str::to_owned))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The refund made with a merchant's Idempotency-Key.
    ///
    /// # Errors
    /// Database errors.
    pub async fn refund_by_request_key(&self, key: &str) -> StoreResult<Option<RefundRow>> {
        sqlx::query("SELECT * FROM refunds WHERE request_key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(refund_from)
            .transpose()
    }

    /// Counts one refund status check of a pending refund (and touches it, so the reconciler waits a period).
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_refund_check(&self, id: &RefundId, now: i64) -> StoreResult<()> {
        self.exec(
            sqlx::query("UPDATE refunds SET checks = checks + 1, updated_at = $1 WHERE id = $2 AND status = 'pending'")
                .bind(now)
                .bind(id.as_str()),
        )
        .await?;
        Ok(())
    }

    /// Settles a pending refund. Returns whether this call changed it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn settle_refund(
        &self,
        id: &RefundId,
        status: RefundStatus,
        refund_trx_id: Option<&str>,
        failure_message: Option<&str>,
        webhook: Option<&WebhookRow>,
        now: i64,
    ) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "UPDATE refunds SET status = $1, refund_trx_id = COALESCE($2, refund_trx_id), \
             failure_message = COALESCE($3, failure_message), updated_at = $4 WHERE id = $5 AND status = 'pending'",
        )
        .bind(refund_status_str(status))
        .bind(refund_trx_id.map(str::to_owned))
        .bind(failure_message.map(str::to_owned))
        .bind(now)
        .bind(id.as_str())
        .execute(&mut *tx)
        .await;
        let done = match done {
            // Another of our refunds claimed this bKash refund first (the unique index): not this one's.
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                tx.rollback().await?;
                return Ok(false);
            }
            other => other?,
        };
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        if let Some(webhook) = webhook {
            insert_webhook(&mut tx, webhook).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Refunds of a session, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn refunds(&self, session_id: &SessionId) -> StoreResult<Vec<RefundRow>> {
        let rows = sqlx::query("SELECT * FROM refunds WHERE session_id = $1 ORDER BY created_at, id")
            .bind(session_id.as_str())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(refund_from).collect()
    }

    /// Pending refunds older than `before`, for the reconciler.
    ///
    /// # Errors
    /// Database errors.
    pub async fn pending_refunds(&self, before: i64, limit: i64) -> StoreResult<Vec<RefundRow>> {
        let rows = sqlx::query(
            "SELECT * FROM refunds WHERE status = 'pending' AND updated_at <= $1 ORDER BY updated_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(refund_from).collect()
    }

    // ----- tokens -----

    /// Loads a provider token.
    ///
    /// # Errors
    /// Database errors.
    pub async fn token(&self, name: &str) -> StoreResult<Option<StoredToken>> {
        let row =
            sqlx::query("SELECT * FROM provider_tokens WHERE name = $1").bind(name).fetch_optional(&self.pool).await?;
        row.map(|r| {
            Ok(StoredToken {
                id_token: r.try_get::<String, _>("id_token")?.into(),
                refresh_token: r.try_get::<String, _>("refresh_token")?.into(),
                expires_at: r.try_get("expires_at")?,
                refresh_expires_at: r.try_get("refresh_expires_at")?,
            })
        })
        .transpose()
    }

    /// Saves (inserts or replaces) a provider token.
    ///
    /// # Errors
    /// Database errors.
    pub async fn save_token(&self, name: &str, t: &StoredToken, now: i64) -> StoreResult<()> {
        self.exec(sqlx::query(
            "INSERT INTO provider_tokens (name, id_token, refresh_token, expires_at, refresh_expires_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET id_token = excluded.id_token, \
             refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, \
             refresh_expires_at = excluded.refresh_expires_at, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(secrecy::ExposeSecret::expose_secret(&t.id_token))
        .bind(secrecy::ExposeSecret::expose_secret(&t.refresh_token))
        .bind(t.expires_at)
        .bind(t.refresh_expires_at)
        .bind(now)
        )
        .await
        .map(|_| ())
    }

    // ----- notifications -----

    /// Records a provider notification by its id. Returns false when this id was seen before (a redelivery).
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_notification(
        &self,
        notify_id: &str,
        trx_id: &str,
        status: &str,
        outcome: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let done = self.exec(sqlx::query(
            "INSERT INTO notifications (notify_id, trx_id, status, outcome, received_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (notify_id) DO NOTHING",
        )
        .bind(notify_id)
        .bind(trx_id)
        .bind(status)
        .bind(outcome)
        .bind(now)
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    // ----- payouts -----

    /// Inserts a payout unless its reference exists. Returns whether it was inserted.
    ///
    /// # Errors
    /// Database errors.
    pub async fn insert_payout(&self, p: &PayoutRow) -> StoreResult<bool> {
        let done = self.exec(sqlx::query(
            "INSERT INTO payouts (id, reference, req_id, amount_minor, currency, upi, status, trx_id, failure_message, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, NULL, $8, $8) ON CONFLICT (reference) DO NOTHING",
        )
        .bind(&p.id)
        .bind(&p.reference)
        .bind(&p.req_id)
        .bind(p.amount.minor())
        .bind(p.amount.currency().code())
        .bind(&p.upi)
        .bind(p.status.as_str())
        .bind(p.created_at)
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Loads a payout by id, reference or provider trx id (`column` is one of our own column names).
    async fn payout_by(&self, column: &str, value: &str) -> StoreResult<Option<PayoutRow>> {
        sqlx::query(&format!("SELECT * FROM payouts WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(payout_from)
            .transpose()
    }

    /// Loads a payout by id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn payout(&self, id: &str) -> StoreResult<Option<PayoutRow>> {
        self.payout_by("id", id).await
    }

    /// Loads a payout by the merchant's reference.
    ///
    /// # Errors
    /// Database errors.
    pub async fn payout_by_reference(&self, reference: &str) -> StoreResult<Option<PayoutRow>> {
        self.payout_by("reference", reference).await
    }

    /// Loads a payout by our req_id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn payout_by_req_id(&self, req_id: &str) -> StoreResult<Option<PayoutRow>> {
        if req_id.is_empty() {
            return Ok(None);
        }
        self.payout_by("req_id", req_id).await
    }

    /// Loads a payout by Bestin's trx id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn payout_by_trx(&self, trx_id: &str) -> StoreResult<Option<PayoutRow>> {
        self.payout_by("trx_id", trx_id).await
    }

    /// Moves a payout between states (conditional). Returns whether this call changed it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn transition_payout(
        &self,
        id: &str,
        from: &[PayoutState],
        to: PayoutState,
        trx_id: Option<&str>,
        failure_message: Option<&str>,
        now: i64,
    ) -> StoreResult<bool> {
        let from = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(",");
        let done = self.exec(sqlx::query(&format!(
            "UPDATE payouts SET status = $1, trx_id = COALESCE($2, trx_id), failure_message = COALESCE($3, failure_message), \
             updated_at = $4 WHERE id = $5 AND status IN ({from})"
        ))
        .bind(to.as_str())
        .bind(trx_id.map(str::to_owned))
        .bind(failure_message.map(str::to_owned))
        .bind(now)
        .bind(id)
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Payouts in one of `states` not updated since `before`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn payouts_in(&self, states: &[PayoutState], before: i64, limit: i64) -> StoreResult<Vec<PayoutRow>> {
        let list = states.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(",");
        let rows = sqlx::query(&format!(
            "SELECT * FROM payouts WHERE status IN ({list}) AND updated_at <= $1 ORDER BY updated_at LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(payout_from).collect()
    }

    // ----- leases -----

    /// Takes the lease `name` for `holder` until `until` (Unix ms) if it is free or expired. Returns whether
    /// `holder` now has it. Works the same on SQLite and PostgreSQL, across processes.
    ///
    /// # Errors
    /// Database errors.
    pub async fn try_lease(&self, name: &str, holder: &str, now: i64, until: i64) -> StoreResult<bool> {
        let done = self
            .exec(
                sqlx::query(
                    "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at \
             WHERE leases.expires_at < $4 OR leases.holder = excluded.holder",
                )
                .bind(name)
                .bind(holder)
                .bind(until)
                .bind(now),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives a lease back.
    ///
    /// # Errors
    /// Database errors.
    pub async fn release_lease(&self, name: &str, holder: &str) -> StoreResult<()> {
        self.exec(sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2").bind(name).bind(holder))
            .await
            .map(|_| ())
    }

    // ----- idempotency -----

    /// Claims an idempotency key until `locked_until`. `Ok(None)`: claimed, go ahead. `Ok(Some((hash,
    /// response)))`: seen before; `response` is `None` while the first request still runs. A key older than
    /// `expired_before` is forgotten, and an in-flight key whose lock ran out (its request died) is retaken by
    /// the same request.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim_idempotency_key(
        &self,
        key: &str,
        request_hash: &str,
        now: i64,
        locked_until: i64,
        expired_before: i64,
    ) -> StoreResult<Option<(String, Option<(u16, String)>)>> {
        let claimed = self.exec(sqlx::query(
            "INSERT INTO idempotency (key, request_hash, status, body, created_at, locked_until) \
             VALUES ($1, $2, NULL, NULL, $3, $4) ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash, \
             status = NULL, body = NULL, locked_until = excluded.locked_until, \
             created_at = CASE WHEN idempotency.created_at < $5 THEN excluded.created_at ELSE idempotency.created_at END \
             WHERE idempotency.created_at < $5 OR (idempotency.status IS NULL \
             AND COALESCE(idempotency.locked_until, 0) < $3 AND idempotency.request_hash = excluded.request_hash)",
        )
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .bind(locked_until)
        .bind(expired_before)
        )
        .await?;
        if claimed.rows_affected() == 1 {
            return Ok(None);
        }
        let row = sqlx::query("SELECT request_hash, status, body FROM idempotency WHERE key = $1")
            .bind(key)
            .fetch_one(&self.pool)
            .await?;
        let status: Option<i32> = row.try_get("status")?;
        let body: Option<String> = row.try_get("body")?;
        let response = match (status, body) {
            (Some(s), Some(b)) => Some((u16::try_from(s).unwrap_or(500), b)),
            _ => None,
        };
        Ok(Some((row.try_get("request_hash")?, response)))
    }

    /// When a key was first claimed in its current life (a retake after its request died keeps it; a key
    /// reused after it expired starts a new life): what the handler's own records are keyed by.
    ///
    /// # Errors
    /// Database errors.
    pub async fn idempotency_generation(&self, key: &str) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT created_at FROM idempotency WHERE key = $1").bind(key).fetch_one(&self.pool).await
    }

    /// Stores the response for a claimed key.
    ///
    /// # Errors
    /// Database errors.
    pub async fn finish_idempotency_key(&self, key: &str, status: u16, body: &str) -> StoreResult<()> {
        self.exec(
            sqlx::query("UPDATE idempotency SET status = $1, body = $2 WHERE key = $3")
                .bind(i32::from(status))
                .bind(body)
                .bind(key),
        )
        .await
        .map(|_| ())
    }

    /// Releases a claimed key whose request failed before doing anything, so a retry can run.
    ///
    /// # Errors
    /// Database errors.
    pub async fn release_idempotency_key(&self, key: &str) -> StoreResult<()> {
        self.exec(sqlx::query("DELETE FROM idempotency WHERE key = $1 AND status IS NULL").bind(key)).await.map(|_| ())
    }
}

/// One webhook to deliver: its event id, type and JSON body (fixed when the change is recorded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// `evt_...`: the same on every retry, so that the merchant can deduplicate.
    pub id: String,
    /// E.g. `session.paid`.
    pub event_type: String,
    /// The request body.
    pub payload: String,
    /// When it was recorded (Unix ms).
    pub created_at: i64,
    /// Deliveries tried so far.
    pub attempts: i64,
}

async fn insert_webhook(tx: &mut AnyConnection, w: &WebhookRow) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, event_type, payload, created_at, attempts, next_attempt_at) \
         VALUES ($1, $2, $3, $4, 0, $4)",
    )
    .bind(&w.id)
    .bind(&w.event_type)
    .bind(&w.payload)
    .bind(w.created_at)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl Store {
    /// Webhooks due for a delivery attempt (not delivered, not given up, not leased by another instance).
    ///
    /// # Errors
    /// Database errors.
    pub async fn due_webhooks(&self, now: i64, limit: i64) -> StoreResult<Vec<WebhookRow>> {
        let rows = sqlx::query(
            "SELECT id, event_type, payload, created_at, attempts FROM webhook_deliveries \
             WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(WebhookRow {
                    id: r.try_get("id")?,
                    event_type: r.try_get("event_type")?,
                    payload: r.try_get("payload")?,
                    created_at: r.try_get("created_at")?,
                    attempts: r.try_get("attempts")?,
                })
            })
            .collect()
    }

    /// Takes the delivery of `id` until `until`, unless another instance holds it or it is done: whether this
    /// caller may deliver it now.
    ///
    /// # Errors
    /// Database errors.
    pub async fn lease_webhook(&self, id: &str, now: i64, until: i64) -> StoreResult<bool> {
        let done = self
            .exec(
                sqlx::query(
                    "UPDATE webhook_deliveries SET lease_until = $1 WHERE id = $2 AND delivered_at IS NULL \
             AND gave_up_at IS NULL AND (lease_until IS NULL OR lease_until < $3)",
                )
                .bind(until)
                .bind(id)
                .bind(now),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a delivery attempt: delivered, or failed with `error` and retried at `retry_at` (`None`: gave up).
    ///
    /// # Errors
    /// Database errors.
    pub async fn webhook_attempted(
        &self,
        id: &str,
        delivered: bool,
        error: Option<&str>,
        retry_at: Option<i64>,
        now: i64,
    ) -> StoreResult<()> {
        self.exec(
            sqlx::query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, lease_until = NULL, last_error = $1, \
             delivered_at = CASE WHEN $2 = 1 THEN $3 ELSE NULL END, \
             gave_up_at = CASE WHEN $2 = 0 AND $4 < 0 THEN $3 ELSE NULL END, \
             next_attempt_at = CASE WHEN $4 < 0 THEN next_attempt_at ELSE $4 END WHERE id = $5",
            )
            .bind(error.map(str::to_owned))
            .bind(i64::from(delivered))
            .bind(now)
            .bind(retry_at.unwrap_or(-1))
            .bind(id),
        )
        .await?;
        Ok(())
    }

    /// Delivery state of every webhook, oldest first: `(id, type, attempts, delivered, gave up, last error)`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn webhooks(&self) -> StoreResult<Vec<(String, String, i64, bool, bool, Option<String>)>> {
        let rows = sqlx::query(
            "SELECT id, event_type, attempts, delivered_at, gave_up_at, last_error FROM webhook_deliveries \
             ORDER BY created_at, id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("event_type")?,
                    r.try_get("attempts")?,
                    r.try_get::<Option<i64>, _>("delivered_at")?.is_some(),
                    r.try_get::<Option<i64>, _>("gave_up_at")?.is_some(),
                    r.try_get("last_error")?,
                ))
            })
            .collect()
    }
}

fn transition_sql(from: &[AttemptState]) -> String {
    // The statement text is built from our own enum names only; values are bound.
    format!(
        "UPDATE attempts SET status = $1, provider_ref = COALESCE($2, provider_ref), \
         redirect_url = COALESCE($3, redirect_url), trx_id = COALESCE($4, trx_id), payer = COALESCE($5, payer), \
         failure_code = COALESCE($6, failure_code), failure_message = COALESCE($7, failure_message), \
         execute_started_at = CASE WHEN $15 = 1 THEN NULL ELSE COALESCE($8, execute_started_at) END, \
         updated_at = $9, links = COALESCE($11, links), expires_at = COALESCE($12, expires_at), \
         late = CASE WHEN $13 = 1 THEN 1 ELSE late END, checks = checks + $14, \
         next_check_at = CASE WHEN $16 = 1 THEN $17 ELSE next_check_at END, lease_until = NULL \
         WHERE id = $10 AND status IN ({})",
        state_list(from)
    )
}

fn bind_transition<'q>(
    query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    attempt: &AttemptRow,
    to: AttemptState,
    patch: &AttemptPatch,
    now: i64,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    query
        .bind(to.as_str())
        .bind(patch.provider_ref.clone())
        .bind(patch.redirect_url.clone())
        .bind(patch.trx_id.clone())
        .bind(patch.payer.clone())
        .bind(patch.failure_code.clone())
        .bind(patch.failure_message.clone())
        .bind(patch.execute_started_at)
        .bind(now)
        .bind(attempt.id.as_str().to_owned())
        .bind(patch.links.clone())
        .bind(patch.expires_at)
        .bind(i64::from(patch.late))
        .bind(i64::from(patch.count_check))
        .bind(i64::from(patch.clear_execute))
        .bind(i64::from(patch.next_check_at.is_some()))
        .bind(patch.next_check_at.flatten())
}

// ----- the payment core's transactions -----

/// What a transition does to the attempt's session, in the same transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEffect {
    /// Nothing.
    None,
    /// Claims the session for this attempt's confirmation (`executing_attempt_id`): fails unless the session is
    /// open, not past its expiry, and not claimed by another attempt.
    Claim,
    /// Gives the claim back (the attempt failed or went back to waiting).
    Release,
    /// Pays the session with this attempt: fails unless the session is unpaid, not claimed by another attempt,
    /// and (for an expired session) no other session of its invoice was paid.
    Pay,
}

/// One attempt transition with everything that goes with it.
#[derive(Debug)]
pub struct Change<'a> {
    /// The attempt.
    pub attempt: &'a AttemptRow,
    /// States it may move from.
    pub from: &'a [AttemptState],
    /// State it moves to.
    pub to: AttemptState,
    /// Fields set with it.
    pub patch: AttemptPatch,
    /// Its effect on the session.
    pub session: SessionEffect,
    /// Audit event kind, e.g. `attempt.completed`.
    pub event: &'a str,
    /// Audit event detail (no secrets; payers masked).
    pub detail: String,
    /// Webhook to the merchant, written to the outbox.
    pub webhook: Option<WebhookRow>,
}

/// Result of [`Store::begin_attempt`].
#[derive(Debug)]
pub enum Begin {
    /// The new attempt was written (`creating`); these earlier attempts were superseded with it.
    Started(Vec<AttemptId>),
    /// A live attempt of the same method that the caller should hand out again.
    Reuse(Box<AttemptRow>),
    /// Another attempt is being created or confirmed, or cannot be superseded.
    Busy,
    /// The session is not open, past its expiry, or claimed: the caller reloads it to say why.
    NotPayable,
}

/// Attempt states from which no provider success has been recorded yet.
pub const UNSETTLED: [AttemptState; 8] = [
    AttemptState::Creating,
    AttemptState::Created,
    AttemptState::Executing,
    AttemptState::Failed,
    AttemptState::Cancelled,
    AttemptState::CreateFailed,
    AttemptState::Superseded,
    AttemptState::Expired,
];

impl Store {
    /// Applies a [`Change`]: the session effect, the attempt's conditional move, its audit event and its outbox
    /// webhook in one transaction. Returns whether it happened; when any conditional part fails nothing does.
    ///
    /// # Errors
    /// Database errors.
    pub async fn apply(&self, c: &Change<'_>, now: i64) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let session = c.attempt.session_id.as_str();
        let attempt = c.attempt.id.as_str();
        // The session row is written first: it serialises the attempts of one session (and SQLite takes its write
        // lock at once instead of upgrading a read lock).
        let required = match c.session {
            SessionEffect::None => None,
            SessionEffect::Claim => Some({
                lock_invoice_of(&mut tx, session, now).await?;
                sqlx::query(
                    "UPDATE sessions SET executing_attempt_id = $1, updated_at = $2 WHERE id = $3 AND status = 'open' \
                     AND expires_at > $2 AND (executing_attempt_id IS NULL OR executing_attempt_id = $1) \
                     AND NOT EXISTS (SELECT 1 FROM sessions other WHERE other.invoice = sessions.invoice \
                     AND other.id <> sessions.id AND other.status = 'paid')",
                )
                .bind(attempt)
                .bind(now)
                .bind(session)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            }),
            SessionEffect::Release => {
                sqlx::query(
                    "UPDATE sessions SET executing_attempt_id = NULL, updated_at = $2 WHERE id = $3 \
                     AND executing_attempt_id = $1",
                )
                .bind(attempt)
                .bind(now)
                .bind(session)
                .execute(&mut *tx)
                .await?;
                None
            }
            SessionEffect::Pay => Some({
                // The invoice's lock first (then the session's, as everywhere): two sessions of one invoice are
                // paid one after the other, and the second sees the first.
                lock_invoice_of(&mut tx, session, now).await?;
                sqlx::query(
                    "UPDATE sessions SET status = 'paid', paid_attempt_id = $1, executing_attempt_id = NULL, \
                     updated_at = $2 WHERE id = $3 AND status IN ('open', 'expired') AND NOT EXISTS \
                     (SELECT 1 FROM sessions other WHERE other.invoice = sessions.invoice AND other.id <> sessions.id \
                     AND other.status = 'paid') AND (executing_attempt_id IS NULL OR executing_attempt_id = $1)",
                )
                .bind(attempt)
                .bind(now)
                .bind(session)
                .execute(&mut *tx)
                .await?
                .rows_affected()
            }),
        };
        if required.is_some_and(|n| n != 1) {
            tx.rollback().await?;
            return Ok(false);
        }
        let sql = transition_sql(c.from);
        let moved = bind_transition(sqlx::query(&sql), c.attempt, c.to, &c.patch, now).execute(&mut *tx).await?;
        if moved.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_event(&mut tx, Some(&c.attempt.session_id), Some(&c.attempt.id), c.event, &c.detail, now).await?;
        if let Some(webhook) = &c.webhook {
            insert_webhook(&mut tx, webhook).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Starts an attempt on a session in one transaction: the session must be open, unexpired and unclaimed; a
    /// live attempt of the same UPI method is reused, live bKash attempts are superseded (bKash takes money only
    /// at our Execute, which a superseded attempt never gets), and a live UPI request (which the customer could
    /// still approve) or an attempt being created or confirmed makes the start `Busy`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn begin_attempt(&self, new: &AttemptRow, now: i64) -> StoreResult<Begin> {
        let mut tx = self.begin().await?;
        lock_invoice_of(&mut tx, new.session_id.as_str(), now).await?;
        let open = sqlx::query(
            "UPDATE sessions SET updated_at = $2 WHERE id = $1 AND status = 'open' AND expires_at > $2 \
             AND executing_attempt_id IS NULL AND NOT EXISTS (SELECT 1 FROM sessions other \
             WHERE other.invoice = sessions.invoice AND other.id <> sessions.id AND other.status = 'paid')",
        )
        .bind(new.session_id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if open.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Begin::NotPayable);
        }
        let live = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE session_id = $1 AND status IN ({}) ORDER BY created_at, id",
            state_list(&[AttemptState::Creating, AttemptState::Created, AttemptState::Executing])
        ))
        .bind(new.session_id.as_str())
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(attempt_from)
        .collect::<StoreResult<Vec<_>>>()?;
        let mut supersede = Vec::new();
        for a in live {
            let reusable = a.method == Method::Upi
                && new.method == Method::Upi
                && a.state == AttemptState::Created
                && a.expires_at.is_some_and(|e| e > now);
            if reusable {
                tx.rollback().await?;
                return Ok(Begin::Reuse(Box::new(a)));
            }
            // A UPI request is live until Bestin Pay closes it, whatever our own countdown says.
            if a.method == Method::Bkash && a.state != AttemptState::Executing {
                supersede.push(a.id);
            } else {
                tx.rollback().await?;
                return Ok(Begin::Busy);
            }
        }
        for id in &supersede {
            sqlx::query(
                "UPDATE attempts SET status = 'superseded', failure_message = 'Replaced by a newer attempt', \
                 updated_at = $2 WHERE id = $1 AND status IN ('creating', 'created')",
            )
            .bind(id.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            insert_event(&mut tx, Some(&new.session_id), Some(id), "attempt.superseded", new.id.as_str(), now).await?;
        }
        insert_attempt_in(&mut tx, new).await?;
        insert_event(&mut tx, Some(&new.session_id), Some(&new.id), "attempt.creating", new.method.as_str(), now)
            .await?;
        tx.commit().await?;
        Ok(Begin::Started(supersede))
    }

    /// The claim that lets exactly one caller send Execute for an attempt it (or a crashed caller) claimed:
    /// stamps `execute_started_at` only if no one stamped it before.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim_execute(&self, attempt: &AttemptId, now: i64) -> StoreResult<bool> {
        let done = self.exec(sqlx::query(
            "UPDATE attempts SET execute_started_at = $1, updated_at = $1 WHERE id = $2 AND status = 'executing' \
             AND execute_started_at IS NULL",
        )
        .bind(now)
        .bind(attempt.as_str())
        )
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Leases an attempt to one reconciler until `until`; whether this caller got it.
    ///
    /// # Errors
    /// Database errors.
    pub async fn lease_attempt(&self, attempt: &AttemptId, now: i64, until: i64) -> StoreResult<bool> {
        let done = self
            .exec(
                sqlx::query(
                    "UPDATE attempts SET lease_until = $1 WHERE id = $2 AND (lease_until IS NULL OR lease_until < $3)",
                )
                .bind(until)
                .bind(attempt.as_str())
                .bind(now),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Expires an open session past its expiry, unless an attempt is being created or confirmed, together with
    /// its waiting bKash attempts (never executed afterwards), an audit event and the `session.expired` webhook.
    ///
    /// # Errors
    /// Database errors.
    pub async fn expire_session(&self, id: &SessionId, webhook: Option<&WebhookRow>, now: i64) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(&format!(
            "UPDATE sessions SET status = 'expired', updated_at = $2 WHERE id = $1 AND status = 'open' \
             AND expires_at <= $2 AND executing_attempt_id IS NULL \
             AND NOT EXISTS (SELECT 1 FROM attempts WHERE session_id = $1 AND status IN ({}))",
            state_list(&[AttemptState::Creating, AttemptState::Executing])
        ))
        .bind(id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        // PostgreSQL evaluated the NOT EXISTS above on the statement's snapshot: an attempt that a start committed
        // while this update waited for the session row is seen only by a new statement.
        let busy: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM attempts WHERE session_id = $1 AND status IN ({})",
            state_list(&[AttemptState::Creating, AttemptState::Executing])
        ))
        .bind(id.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if busy > 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "UPDATE attempts SET status = 'expired', failure_message = 'The payment session expired', updated_at = $2 \
             WHERE session_id = $1 AND method = 'bkash' AND status = 'created'",
        )
        .bind(id.as_str())
        .bind(now)
        .execute(&mut *tx)
        .await?;
        insert_event(&mut tx, Some(id), None, "session.expired", "", now).await?;
        if let Some(webhook) = webhook {
            insert_webhook(&mut tx, webhook).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Every attempt of a session, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempts_of(&self, session_id: &SessionId) -> StoreResult<Vec<AttemptRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE session_id = $1 ORDER BY created_at, id"
        ))
        .bind(session_id.as_str())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from).collect()
    }

    /// Attempts of `method` in one of `states` whose provider check is due, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn checks_due(
        &self,
        method: Method,
        states: &[AttemptState],
        now: i64,
        limit: i64,
    ) -> StoreResult<Vec<AttemptRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE method = $1 AND status IN ({}) AND next_check_at <= $2 \
             AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_check_at LIMIT $3",
            state_list(states)
        ))
        .bind(method.as_str())
        .bind(now)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(attempt_from).collect()
    }

    /// Sets (or clears) an attempt's next provider check without changing its state, counting one check.
    ///
    /// # Errors
    /// Database errors.
    pub async fn schedule_check(&self, attempt: &AttemptId, next: Option<i64>, now: i64) -> StoreResult<()> {
        self.exec(
            sqlx::query(
                "UPDATE attempts SET next_check_at = $1, checks = checks + 1, lease_until = NULL, updated_at = $2 \
             WHERE id = $3",
            )
            .bind(next)
            .bind(now)
            .bind(attempt.as_str()),
        )
        .await?;
        Ok(())
    }
}

async fn insert_event(
    tx: &mut AnyConnection,
    session_id: Option<&SessionId>,
    attempt_id: Option<&AttemptId>,
    kind: &str,
    detail: &str,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO events (id, session_id, attempt_id, kind, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::ids::event_id())
    .bind(session_id.map(|s| s.as_str().to_owned()))
    .bind(attempt_id.map(|a| a.as_str().to_owned()))
    .bind(kind)
    .bind(detail)
    .bind(now)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

async fn insert_attempt_in(tx: &mut AnyConnection, a: &AttemptRow) -> StoreResult<()> {
    sqlx::query(&format!(
        "INSERT INTO attempts ({ATTEMPT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, \
         $15, $16, $17, $18, $19, $20, $21)"
    ))
    .bind(a.id.as_str())
    .bind(a.session_id.as_str())
    .bind(a.method.as_str())
    .bind(a.state.as_str())
    .bind(a.amount.minor())
    .bind(a.amount.currency().code())
    .bind(a.provider_ref.clone())
    .bind(a.redirect_url.clone())
    .bind(a.trx_id.clone())
    .bind(a.payer.clone())
    .bind(a.failure_code.clone())
    .bind(a.failure_message.clone())
    .bind(a.execute_started_at)
    .bind(a.created_at)
    .bind(a.updated_at)
    .bind(a.req_id.clone())
    .bind(a.links.clone())
    .bind(a.expires_at)
    .bind(i64::from(a.late))
    .bind(a.checks)
    .bind(a.next_check_at)
    .execute(&mut *tx)
    .await
    .map(|_| ())
}

/// How many rows a retention sweep removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Purged {
    /// Idempotency keys.
    pub idempotency_keys: u64,
    /// Notification ids (their deduplication window is over).
    pub notifications: u64,
    /// Audit events.
    pub events: u64,
}

impl Store {
    /// Deletes idempotency keys created before `keys_before`, notification records received before
    /// `notifications_before` and audit events created before `events_before` (all Unix ms).
    ///
    /// # Errors
    /// Database errors.
    pub async fn purge(&self, keys_before: i64, notifications_before: i64, events_before: i64) -> StoreResult<Purged> {
        let run = |sql: &'static str, before: i64| async move {
            self.exec(sqlx::query(sql).bind(before)).await.map(|r| r.rows_affected())
        };
        Ok(Purged {
            idempotency_keys: run("DELETE FROM idempotency WHERE created_at < $1", keys_before).await?,
            notifications: run("DELETE FROM notifications WHERE received_at < $1", notifications_before).await?,
            events: run("DELETE FROM events WHERE created_at < $1", events_before).await?,
        })
    }
}
