//! The outbox and the records beside it: webhook deliveries (written in the transaction of the change they
//! report, delivered with retries under a lease), the audit trail and the ids of provider notifications.

use super::{Query, Store, StoreResult};
use deshpay_api::{AttemptId, SessionId};

/// The statement that appends an audit event, with its values bound.
fn event_query<'q>(
    session_id: Option<&SessionId>,
    attempt_id: Option<&AttemptId>,
    kind: &'q str,
    detail: &'q str,
    now: i64,
) -> Query<'q> {
    sqlx::query(
        "INSERT INTO events (id, session_id, attempt_id, kind, detail, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(crate::ids::event_id())
    .bind(session_id.map(|s| s.as_str().to_owned()))
    .bind(attempt_id.map(|a| a.as_str().to_owned()))
    .bind(kind)
    .bind(detail)
    .bind(now)
}

/// Appends an audit event in the caller's transaction.
pub(super) async fn insert_event(
    tx: &mut super::Tx,
    session_id: Option<&SessionId>,
    attempt_id: Option<&AttemptId>,
    kind: &str,
    detail: &str,
    now: i64,
) -> StoreResult<()> {
    event_query(session_id, attempt_id, kind, detail, now).execute(&mut *tx).await?;
    Ok(())
}

/// One webhook to deliver: its event id, type and JSON body (fixed when the change is recorded).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
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

/// Writes a webhook to the outbox in the caller's transaction.
pub(super) async fn insert_webhook(tx: &mut super::Tx, w: &WebhookRow) -> StoreResult<()> {
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

/// A `webhook_deliveries` row's delivery state, for [`Store::webhooks`].
#[derive(Debug, sqlx::FromRow)]
struct DeliveryRecord {
    id: String,
    event_type: String,
    attempts: i64,
    delivered_at: Option<i64>,
    gave_up_at: Option<i64>,
    last_error: Option<String>,
}

impl Store {
    /// Webhooks due for a delivery attempt (not delivered, not given up, not leased by another instance).
    ///
    /// # Errors
    /// Database errors.
    pub async fn due_webhooks(&self, now: i64, limit: i64) -> StoreResult<Vec<WebhookRow>> {
        sqlx::query_as(
            "SELECT id, event_type, payload, created_at, attempts FROM webhook_deliveries \
             WHERE delivered_at IS NULL AND gave_up_at IS NULL AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until < $1) ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(self.db())
        .await
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
        let rows = sqlx::query_as::<_, DeliveryRecord>(
            "SELECT id, event_type, attempts, delivered_at, gave_up_at, last_error FROM webhook_deliveries \
             ORDER BY created_at, id",
        )
        .fetch_all(self.db())
        .await?;
        Ok(rows
            .into_iter()
            .map(|r| (r.id, r.event_type, r.attempts, r.delivered_at.is_some(), r.gave_up_at.is_some(), r.last_error))
            .collect())
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
        self.exec(event_query(session_id, attempt_id, kind, detail, now)).await.map(|_| ())
    }

    /// Details of the audit events of `kind`, oldest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn events_of_kind(&self, kind: &str) -> StoreResult<Vec<String>> {
        let rows =
            sqlx::query_as::<_, (Option<String>,)>("SELECT detail FROM events WHERE kind = $1 ORDER BY created_at, id")
                .bind(kind)
                .fetch_all(self.db())
                .await?;
        Ok(rows.into_iter().map(|(detail,)| detail.unwrap_or_default()).collect())
    }

    /// Audit events of a session, oldest first: `(kind, detail)`.
    ///
    /// # Errors
    /// Database errors.
    pub async fn events(&self, session_id: &SessionId) -> StoreResult<Vec<(String, String)>> {
        let rows = sqlx::query_as::<_, (String, Option<String>)>(
            "SELECT kind, detail FROM events WHERE session_id = $1 ORDER BY created_at, id",
        )
        .bind(session_id.as_str())
        .fetch_all(self.db())
        .await?;
        Ok(rows.into_iter().map(|(kind, detail)| (kind, detail.unwrap_or_default())).collect())
    }

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

    /// Whether a notification id was recorded before.
    ///
    /// # Errors
    /// Database errors.
    pub async fn notification_seen(&self, notify_id: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT notify_id FROM notifications WHERE notify_id = $1")
            .bind(notify_id)
            .fetch_optional(self.db())
            .await?;
        Ok(row.is_some())
    }
}
