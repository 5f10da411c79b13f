//! The payment core's transactions: an attempt's move together with its session, audit event and webhook, and
//! the start of an attempt (reuse, supersede or refuse the live ones) in one transaction.

use super::attempts::{ATTEMPT_COLUMNS, AttemptRecord, bind_transition, insert_attempt_in, state_list, transition_sql};
use super::outbox::{insert_event, insert_webhook};
use super::sessions::lock_invoice_of;
use super::{AttemptPatch, AttemptRow, AttemptState, Store, StoreResult, WebhookRow};
use deshpay_api::{AttemptId, Method};

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
                .execute(&mut tx)
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
                .execute(&mut tx)
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
                .execute(&mut tx)
                .await?
                .rows_affected()
            }),
        };
        if required.is_some_and(|n| n != 1) {
            tx.rollback().await?;
            return Ok(false);
        }
        let sql = transition_sql(c.from);
        let moved = bind_transition(sqlx::query(&sql), c.attempt, c.to, &c.patch, now).execute(&mut tx).await?;
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
        .execute(&mut tx)
        .await?;
        if open.rows_affected() != 1 {
            tx.rollback().await?;
            return Ok(Begin::NotPayable);
        }
        let live = sqlx::query_as::<_, AttemptRecord>(&format!(
            "SELECT {ATTEMPT_COLUMNS} FROM attempts WHERE session_id = $1 AND status IN ({}) ORDER BY created_at, id",
            state_list(&[AttemptState::Creating, AttemptState::Created, AttemptState::Executing])
        ))
        .bind(new.session_id.as_str())
        .fetch_all(&mut tx)
        .await?
        .into_iter()
        .map(AttemptRow::try_from)
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
            .execute(&mut tx)
            .await?;
            insert_event(&mut tx, Some(&new.session_id), Some(id), "attempt.superseded", new.id.as_str(), now).await?;
        }
        insert_attempt_in(&mut tx, new).await?;
        insert_event(&mut tx, Some(&new.session_id), Some(&new.id), "attempt.creating", new.method.as_str(), now)
            .await?;
        tx.commit().await?;
        Ok(Begin::Started(supersede))
    }
}
