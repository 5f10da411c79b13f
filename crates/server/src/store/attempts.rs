//! Attempts: their states, reads, conditional moves, the Execute claim, reconciler leases and provider checks.

use super::{Query, Store, StoreResult, decode, decode_err, money_of, name_list};
use deshpay_api::{AttemptId, Method, Money, SessionId};

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

/// `IN (...)` list of attempt states.
pub(super) fn state_list(states: &[AttemptState]) -> String {
    name_list(states.iter().map(|s| s.as_str()))
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

/// The columns of an attempt, in the order `insert_attempt_in` binds them; [`AttemptRecord`] reads them by name.
pub(super) const ATTEMPT_COLUMNS: &str = "id, session_id, method, status, amount_minor, currency, provider_ref, \
     redirect_url, trx_id, payer, failure_code, failure_message, execute_started_at, created_at, updated_at, req_id, \
     links, expires_at, late, checks, next_check_at";

/// An `attempts` row as stored ([`ATTEMPT_COLUMNS`]).
#[derive(Debug, sqlx::FromRow)]
pub(super) struct AttemptRecord {
    id: String,
    session_id: String,
    method: String,
    status: String,
    amount_minor: i64,
    currency: String,
    provider_ref: Option<String>,
    redirect_url: Option<String>,
    trx_id: Option<String>,
    payer: Option<String>,
    failure_code: Option<String>,
    failure_message: Option<String>,
    execute_started_at: Option<i64>,
    req_id: Option<String>,
    links: Option<String>,
    expires_at: Option<i64>,
    late: i64,
    checks: i64,
    next_check_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<AttemptRecord> for AttemptRow {
    type Error = sqlx::Error;

    fn try_from(r: AttemptRecord) -> StoreResult<AttemptRow> {
        Ok(AttemptRow {
            id: decode(AttemptId::parse(&r.id))?,
            session_id: decode(SessionId::parse(&r.session_id))?,
            method: Method::parse(&r.method).ok_or_else(|| decode_err(format!("unknown method {:?}", r.method)))?,
            state: AttemptState::parse(&r.status)?,
            amount: money_of(r.amount_minor, &r.currency)?,
            provider_ref: r.provider_ref,
            redirect_url: r.redirect_url,
            trx_id: r.trx_id,
            payer: r.payer,
            failure_code: r.failure_code,
            failure_message: r.failure_message,
            execute_started_at: r.execute_started_at,
            req_id: r.req_id,
            links: r.links,
            expires_at: r.expires_at,
            late: r.late != 0,
            checks: r.checks,
            next_check_at: r.next_check_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
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

pub(super) async fn insert_attempt_in(tx: &mut super::Tx, a: &AttemptRow) -> StoreResult<()> {
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

pub(super) fn transition_sql(from: &[AttemptState]) -> String {
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

pub(super) fn bind_transition<'q>(
    query: Query<'q>,
    attempt: &AttemptRow,
    to: AttemptState,
    patch: &AttemptPatch,
    now: i64,
) -> Query<'q> {
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

impl Store {
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
        sqlx::query_as::<_, AttemptRecord>(&format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE id = $1"))
            .bind(id.as_str())
            .fetch_optional(self.db())
            .await?
            .map(AttemptRow::try_from)
            .transpose()
    }

    /// Finds an attempt by the provider's id for it (bKash paymentID).
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempt_by_provider_ref(&self, method: Method, provider_ref: &str) -> StoreResult<Option<AttemptRow>> {
        sqlx::query_as::<_, AttemptRecord>(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE method = $1 AND provider_ref = $2"
        ))
        .bind(method.as_str())
        .bind(provider_ref)
        .fetch_optional(self.db())
        .await?
        .map(AttemptRow::try_from)
        .transpose()
    }

    /// Finds an attempt by the provider's transaction id (bKash trxID), once recorded.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempt_by_trx_id(&self, method: Method, trx_id: &str) -> StoreResult<Option<AttemptRow>> {
        sqlx::query_as::<_, AttemptRecord>(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE method = $1 AND trx_id = $2 ORDER BY created_at LIMIT 1"
        ))
        .bind(method.as_str())
        .bind(trx_id)
        .fetch_optional(self.db())
        .await?
        .map(AttemptRow::try_from)
        .transpose()
    }

    /// The attempts with `method` that a provider id was recorded for, of every session with this invoice, newest
    /// first (at most 20).
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempts_for_invoice(&self, method: Method, invoice: &str) -> StoreResult<Vec<AttemptRow>> {
        sqlx::query_as::<_, AttemptRecord>(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE method = $1 AND provider_ref IS NOT NULL \
             AND session_id IN (SELECT id FROM sessions WHERE invoice = $2) ORDER BY created_at DESC, id DESC LIMIT 20"
        ))
        .bind(method.as_str())
        .bind(invoice)
        .fetch_all(self.db())
        .await?
        .into_iter()
        .map(AttemptRow::try_from)
        .collect()
    }

    /// Finds an attempt by our request id at the provider.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempt_by_req_id(&self, req_id: &str) -> StoreResult<Option<AttemptRow>> {
        sqlx::query_as::<_, AttemptRecord>(&format!("SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE req_id = $1"))
            .bind(req_id)
            .fetch_optional(self.db())
            .await?
            .map(AttemptRow::try_from)
            .transpose()
    }

    /// The newest attempt of a session.
    ///
    /// # Errors
    /// Database errors.
    pub async fn latest_attempt(&self, session_id: &SessionId) -> StoreResult<Option<AttemptRow>> {
        sqlx::query_as::<_, AttemptRecord>(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE session_id = $1 ORDER BY created_at DESC, id DESC LIMIT 1"
        ))
        .bind(session_id.as_str())
        .fetch_optional(self.db())
        .await?
        .map(AttemptRow::try_from)
        .transpose()
    }

    /// Every attempt of a session, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempts_of(&self, session_id: &SessionId) -> StoreResult<Vec<AttemptRow>> {
        sqlx::query_as::<_, AttemptRecord>(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE session_id = $1 ORDER BY created_at, id"
        ))
        .bind(session_id.as_str())
        .fetch_all(self.db())
        .await?
        .into_iter()
        .map(AttemptRow::try_from)
        .collect()
    }

    /// Attempts in one of `states` not updated since `before` (Unix ms), oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn attempts_in(&self, states: &[AttemptState], before: i64, limit: i64) -> StoreResult<Vec<AttemptRow>> {
        sqlx::query_as::<_, AttemptRecord>(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE status IN ({}) AND updated_at <= $1 ORDER BY updated_at LIMIT $2",
            state_list(states)
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(self.db())
        .await?
        .into_iter()
        .map(AttemptRow::try_from)
        .collect()
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
        sqlx::query_as::<_, AttemptRecord>(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE method = $1 AND status IN ({}) AND updated_at <= $2 \
             ORDER BY updated_at LIMIT $3",
            state_list(states)
        ))
        .bind(method.as_str())
        .bind(before)
        .bind(limit)
        .fetch_all(self.db())
        .await?
        .into_iter()
        .map(AttemptRow::try_from)
        .collect()
    }

    /// Counts a session's attempts in one of `states`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_attempts(&self, session_id: &SessionId, states: &[AttemptState]) -> StoreResult<i64> {
        sqlx::query_scalar(&format!(
            "SELECT COUNT(*) AS n FROM attempts WHERE session_id = $1 AND status IN ({})",
            state_list(states)
        ))
        .bind(session_id.as_str())
        .fetch_one(self.db())
        .await
    }

    /// The claim that lets exactly one caller send Execute for an attempt it (or a crashed caller) claimed:
    /// stamps `execute_started_at` only if no one stamped it before.
    ///
    /// # Errors
    /// Database errors.
    pub async fn claim_execute(&self, attempt: &AttemptId, now: i64) -> StoreResult<bool> {
        let done = self
            .exec(
                sqlx::query(
                    "UPDATE attempts SET execute_started_at = $1, updated_at = $1 WHERE id = $2 \
                     AND status = 'executing' AND execute_started_at IS NULL",
                )
                .bind(now)
                .bind(attempt.as_str()),
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
        sqlx::query_as::<_, AttemptRecord>(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE method = $1 AND status IN ({}) AND next_check_at <= $2 \
             AND (lease_until IS NULL OR lease_until < $2) ORDER BY next_check_at LIMIT $3",
            state_list(states)
        ))
        .bind(method.as_str())
        .bind(now)
        .bind(limit)
        .fetch_all(self.db())
        .await?
        .into_iter()
        .map(AttemptRow::try_from)
        .collect()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> AttemptRecord {
        AttemptRecord {
            id: format!("att_{}", "a".repeat(24)),
            session_id: format!("cs_{}", "b".repeat(24)),
            method: "bkash".into(),
            status: "executing".into(),
            amount_minor: 10_150,
            currency: "BDT".into(),
            provider_ref: Some("TR0011".into()),
            redirect_url: None,
            trx_id: None,
            payer: None,
            failure_code: None,
            failure_message: None,
            execute_started_at: Some(5),
            req_id: None,
            links: None,
            expires_at: None,
            late: 1,
            checks: 2,
            next_check_at: None,
            created_at: 1,
            updated_at: 2,
        }
    }

    #[test]
    fn a_stored_attempt_becomes_a_typed_row() {
        let row = AttemptRow::try_from(record()).expect("valid record");
        assert_eq!(row.state, AttemptState::Executing);
        assert_eq!(row.method, Method::Bkash);
        assert_eq!(row.amount.minor(), 10_150);
        assert_eq!(row.amount.currency().code(), "BDT");
        assert!(row.late);
        assert_eq!(row.execute_started_at, Some(5));
    }

    #[test]
    fn a_corrupt_attempt_is_a_decode_error_not_a_guess() {
        let corrupt: [fn(&mut AttemptRecord); 4] = [
            |r| r.status = "paid".into(),
            |r| r.id = "att_short".into(),
            |r| r.method = "card".into(),
            |r| r.currency = "USD".into(),
        ];
        for spoil in corrupt {
            let mut r = record();
            spoil(&mut r);
            assert!(matches!(AttemptRow::try_from(r), Err(sqlx::Error::Decode(_))));
        }
    }
}
