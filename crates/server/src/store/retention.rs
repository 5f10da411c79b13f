//! Retention: the sweep that forgets old idempotency keys, notification ids and audit events.

use super::{Store, StoreResult};

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
            notifications: run("DELETE FROM notifications WHERE received_at < $1", notifications_before).await?
                + run("DELETE FROM bkash_ipn_messages WHERE received_at < $1", notifications_before).await?,
            events: run("DELETE FROM events WHERE created_at < $1", events_before).await?,
        })
    }
}
