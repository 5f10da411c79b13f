//! UPI payouts through Bestin Pay: one per merchant reference, moved between states conditionally.

use super::{Store, StoreResult, decode_err, money_of, name_list};
use deshpay_api::Money;

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

/// A `payouts` row as stored (the columns [`PayoutRow`] is made of).
#[derive(Debug, sqlx::FromRow)]
struct PayoutRecord {
    id: String,
    reference: String,
    req_id: String,
    amount_minor: i64,
    currency: String,
    upi: String,
    status: String,
    trx_id: Option<String>,
    failure_message: Option<String>,
    created_at: i64,
}

impl TryFrom<PayoutRecord> for PayoutRow {
    type Error = sqlx::Error;

    fn try_from(r: PayoutRecord) -> StoreResult<PayoutRow> {
        Ok(PayoutRow {
            id: r.id,
            reference: r.reference,
            req_id: r.req_id,
            amount: money_of(r.amount_minor, &r.currency)?,
            upi: r.upi,
            status: PayoutState::parse(&r.status)?,
            trx_id: r.trx_id,
            failure_message: r.failure_message,
            created_at: r.created_at,
        })
    }
}

impl Store {
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
        sqlx::query_as::<_, PayoutRecord>(&format!("SELECT * FROM payouts WHERE {column} = $1"))
            .bind(value)
            .fetch_optional(self.db())
            .await?
            .map(PayoutRow::try_from)
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
        let from = name_list(from.iter().map(|s| s.as_str()));
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
        let list = name_list(states.iter().map(|s| s.as_str()));
        sqlx::query_as::<_, PayoutRecord>(&format!(
            "SELECT * FROM payouts WHERE status IN ({list}) AND updated_at <= $1 ORDER BY updated_at LIMIT $2"
        ))
        .bind(before)
        .bind(limit)
        .fetch_all(self.db())
        .await?
        .into_iter()
        .map(PayoutRow::try_from)
        .collect()
    }
}
