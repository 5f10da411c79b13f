//! bKash IPN records: the SNS MessageIds handled (durable deduplication across redeliveries and instances) and
//! the payments bKash announced that no checkout of ours made.

use super::outbox::{insert_event, insert_webhook};
use super::{Store, StoreResult, WebhookRow};

/// A payment bKash announced that matches nothing we created (QR, USSD, app payments to the merchant).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct UnmatchedRow {
    /// bKash's trxID (unique).
    pub trx_id: String,
    /// The amount in poisha.
    pub amount_minor: i64,
    /// `BDT`.
    pub currency: String,
    /// The payer's wallet as bKash sent it (`debitMSISDN`).
    pub payer: Option<String>,
    /// bKash's `transactionType` (10003126 QR, 10002175 USSD, ...).
    pub transaction_type: Option<String>,
    /// `merchantInvoiceNumber`, when bKash sent one.
    pub invoice: Option<String>,
    /// `transactionReference`, when bKash sent one.
    pub reference: Option<String>,
    /// bKash's `dateTime` as sent (`yyyyMMddHHmmss`, Dhaka time).
    pub paid_at: Option<String>,
    /// The SNS MessageId that announced it.
    pub message_id: String,
    /// When we recorded it (Unix ms).
    pub created_at: i64,
}

impl Store {
    /// Whether an IPN MessageId was handled before.
    ///
    /// # Errors
    /// Database errors.
    pub async fn ipn_message_seen(&self, message_id: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT message_id FROM bkash_ipn_messages WHERE message_id = $1")
            .bind(message_id)
            .fetch_optional(self.db())
            .await?;
        Ok(row.is_some())
    }

    /// Records a handled IPN MessageId. Returns false when it was recorded before.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_ipn_message(
        &self,
        message_id: &str,
        trx_id: Option<&str>,
        outcome: &str,
        now: i64,
    ) -> StoreResult<bool> {
        let done = self
            .exec(
                sqlx::query(
                    "INSERT INTO bkash_ipn_messages (message_id, trx_id, outcome, received_at) \
                     VALUES ($1, $2, $3, $4) ON CONFLICT (message_id) DO NOTHING",
                )
                .bind(message_id)
                .bind(trx_id.map(str::to_owned))
                .bind(outcome)
                .bind(now),
            )
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records an unmatched payment with its audit event and its `payment.unmatched` webhook, in one transaction.
    /// Returns false (and writes nothing) when this trxID was recorded before.
    ///
    /// # Errors
    /// Database errors.
    pub async fn record_unmatched(&self, row: &UnmatchedRow, webhook: Option<&WebhookRow>) -> StoreResult<bool> {
        let mut tx = self.begin().await?;
        let done = sqlx::query(
            "INSERT INTO bkash_unmatched (trx_id, amount_minor, currency, payer, transaction_type, invoice, reference, \
             paid_at, message_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (trx_id) DO NOTHING",
        )
        .bind(&row.trx_id)
        .bind(row.amount_minor)
        .bind(&row.currency)
        .bind(row.payer.clone())
        .bind(row.transaction_type.clone())
        .bind(row.invoice.clone())
        .bind(row.reference.clone())
        .bind(row.paid_at.clone())
        .bind(&row.message_id)
        .bind(row.created_at)
        .execute(&mut tx)
        .await?;
        if done.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        insert_event(&mut tx, None, None, "bkash.unmatched", &row.trx_id, row.created_at).await?;
        if let Some(webhook) = webhook {
            insert_webhook(&mut tx, webhook).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Unmatched payments, newest first.
    ///
    /// # Errors
    /// Database errors.
    pub async fn unmatched(&self, limit: i64) -> StoreResult<Vec<UnmatchedRow>> {
        sqlx::query_as::<_, UnmatchedRow>(
            "SELECT trx_id, amount_minor, currency, payer, transaction_type, invoice, reference, paid_at, message_id, \
             created_at FROM bkash_unmatched ORDER BY created_at DESC, trx_id LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.db())
        .await
    }
}
