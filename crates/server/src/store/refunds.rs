//! Refunds: inserted within what was paid, settled once, checked by the reconciler while pending.

use super::outbox::insert_webhook;
use super::{Backend, Store, StoreResult, WebhookRow, decode, decode_err, money_of};
use deshpay_api::{AttemptId, Money, RefundId, RefundStatus, SessionId};

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

/// A `refunds` row as stored (the columns [`RefundRow`] is made of).
#[derive(Debug, sqlx::FromRow)]
struct RefundRecord {
    id: String,
    session_id: String,
    attempt_id: String,
    amount_minor: i64,
    currency: String,
    status: String,
    reason: Option<String>,
    sku: Option<String>,
    refund_trx_id: Option<String>,
    failure_message: Option<String>,
    created_at: i64,
}

impl TryFrom<RefundRecord> for RefundRow {
    type Error = sqlx::Error;

    fn try_from(r: RefundRecord) -> StoreResult<RefundRow> {
        Ok(RefundRow {
            id: decode(RefundId::parse(&r.id))?,
            session_id: decode(SessionId::parse(&r.session_id))?,
            attempt_id: decode(AttemptId::parse(&r.attempt_id))?,
            amount: money_of(r.amount_minor, &r.currency)?,
            status: refund_status_of(&r.status)?,
            reason: r.reason,
            sku: r.sku,
            refund_trx_id: r.refund_trx_id,
            failure_message: r.failure_message,
            created_at: r.created_at,
        })
    }
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

impl Store {
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
                .execute(&mut tx)
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
        .execute(&mut tx)
        .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    /// The refund made with a merchant's Idempotency-Key.
    ///
    /// # Errors
    /// Database errors.
    pub async fn refund_by_request_key(&self, key: &str) -> StoreResult<Option<RefundRow>> {
        sqlx::query_as::<_, RefundRecord>("SELECT * FROM refunds WHERE request_key = $1")
            .bind(key)
            .fetch_optional(self.db())
            .await?
            .map(RefundRow::try_from)
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
        .execute(&mut tx)
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
        sqlx::query_as::<_, RefundRecord>("SELECT * FROM refunds WHERE session_id = $1 ORDER BY created_at, id")
            .bind(session_id.as_str())
            .fetch_all(self.db())
            .await?
            .into_iter()
            .map(RefundRow::try_from)
            .collect()
    }

    /// Pending refunds older than `before`, for the reconciler.
    ///
    /// # Errors
    /// Database errors.
    pub async fn pending_refunds(&self, before: i64, limit: i64) -> StoreResult<Vec<RefundRow>> {
        sqlx::query_as::<_, RefundRecord>(
            "SELECT * FROM refunds WHERE status = 'pending' AND updated_at <= $1 ORDER BY updated_at LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.db())
        .await?
        .into_iter()
        .map(RefundRow::try_from)
        .collect()
    }
}
