//! Sessions, the per-invoice lock that serialises them, and their expiry.

use super::attempts::state_list;
use super::outbox::{insert_event, insert_webhook};
use super::{AttemptState, Store, StoreResult, WebhookRow, decode, decode_err, money_of};
use deshpay_api::{AttemptId, Method, Money, SessionId, SessionStatus};

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
    /// Where the browser returns after the provider's page: the merchant's return URL, or the hosted page's
    /// URL when `hosted_return`.
    pub return_url: String,
    /// The customer returns to the hosted page (the merchant gave no return URL).
    pub hosted_return: bool,
    /// A payment link.
    pub link: bool,
    /// The hosted page's theme.
    pub page_theme: Option<String>,
    /// The hosted page's language.
    pub page_locale: Option<String>,
    /// Where the hosted page sends the customer after a successful payment.
    pub success_url: Option<String>,
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

/// A `sessions` row as stored (the columns [`SessionRow`] is made of).
#[derive(Debug, sqlx::FromRow)]
struct SessionRecord {
    id: String,
    amount_minor: i64,
    currency: String,
    invoice: String,
    description: Option<String>,
    return_url: String,
    methods: String,
    status: String,
    paid_attempt_id: Option<String>,
    created_at: i64,
    expires_at: i64,
    link: i64,
    hosted_return: i64,
    page_theme: Option<String>,
    page_locale: Option<String>,
    success_url: Option<String>,
}

impl TryFrom<SessionRecord> for SessionRow {
    type Error = sqlx::Error;

    fn try_from(r: SessionRecord) -> StoreResult<SessionRow> {
        Ok(SessionRow {
            id: decode(SessionId::parse(&r.id))?,
            amount: money_of(r.amount_minor, &r.currency)?,
            invoice: r.invoice,
            description: r.description,
            return_url: r.return_url,
            hosted_return: r.hosted_return != 0,
            link: r.link != 0,
            page_theme: r.page_theme,
            page_locale: r.page_locale,
            success_url: r.success_url,
            methods: r.methods.split(',').filter_map(Method::parse).collect(),
            status: session_status_of(&r.status)?,
            paid_attempt_id: decode(r.paid_attempt_id.as_deref().map(AttemptId::parse).transpose())?,
            created_at: r.created_at,
            expires_at: r.expires_at,
        })
    }
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

/// The session holding an invoice (`$1` invoice, `$2` now): see [`Store::live_session_for_invoice`].
const LIVE_FOR_INVOICE: &str = "SELECT * FROM sessions WHERE invoice = $1 AND (status = 'paid' \
     OR (status = 'open' AND expires_at > $2) OR executing_attempt_id IS NOT NULL \
     OR EXISTS (SELECT 1 FROM attempts a WHERE a.session_id = sessions.id AND (a.status IN ('creating', 'executing') \
     OR (a.status = 'created' AND a.method = 'upi') OR (a.status = 'failed' AND a.next_check_at IS NOT NULL)))) \
     ORDER BY created_at DESC LIMIT 1";

/// Takes the lock of a session's invoice for the rest of the transaction: the invoice row before the session
/// row, everywhere, so that no two transactions wait for each other. A write, so that it can open a SQLite
/// transaction (which then holds the write lock at once).
pub(super) async fn lock_invoice_of(tx: &mut super::Tx, session: &str, now: i64) -> StoreResult<()> {
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
async fn lock_invoice(tx: &mut super::Tx, invoice: &str, now: i64) -> StoreResult<()> {
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

impl Store {
    /// Loads a session.
    ///
    /// # Errors
    /// Database errors.
    pub async fn session(&self, id: &SessionId) -> StoreResult<Option<SessionRow>> {
        sqlx::query_as::<_, SessionRecord>("SELECT * FROM sessions WHERE id = $1")
            .bind(id.as_str())
            .fetch_optional(self.db())
            .await?
            .map(SessionRow::try_from)
            .transpose()
    }

    /// A session with this invoice that holds it: paid, open and not yet expired, or with an attempt that can
    /// still take money (being created or confirmed, or a UPI request Bestin Pay has not closed).
    ///
    /// # Errors
    /// Database errors.
    pub async fn live_session_for_invoice(&self, invoice: &str, now: i64) -> StoreResult<Option<SessionRow>> {
        sqlx::query_as::<_, SessionRecord>(LIVE_FOR_INVOICE)
            .bind(invoice)
            .bind(now)
            .fetch_optional(self.db())
            .await?
            .map(SessionRow::try_from)
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
        let holder = sqlx::query_as::<_, SessionRecord>(LIVE_FOR_INVOICE)
            .bind(&s.invoice)
            .bind(now)
            .fetch_optional(&mut tx)
            .await?;
        if let Some(holder) = holder {
            tx.rollback().await?;
            return SessionRow::try_from(holder).map(Some);
        }
        let methods = s.methods.iter().map(|m| m.as_str()).collect::<Vec<_>>().join(",");
        sqlx::query(
            "INSERT INTO sessions (id, amount_minor, currency, invoice, description, return_url, methods, status, \
             paid_attempt_id, created_at, expires_at, updated_at, link, hosted_return, page_theme, page_locale, \
             success_url) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, $9, $10, $9, $11, $12, $13, $14, $15)",
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
        .bind(i64::from(s.link))
        .bind(i64::from(s.hosted_return))
        .bind(s.page_theme.clone())
        .bind(s.page_locale.clone())
        .bind(s.success_url.clone())
        .execute(&mut tx)
        .await?;
        insert_event(&mut tx, Some(&s.id), None, "session.created", &s.amount.to_string(), now).await?;
        tx.commit().await?;
        Ok(None)
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
        .execute(&mut tx)
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
        .fetch_one(&mut tx)
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
        .execute(&mut tx)
        .await?;
        insert_event(&mut tx, Some(id), None, "session.expired", "", now).await?;
        if let Some(webhook) = webhook {
            insert_webhook(&mut tx, webhook).await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
