//! Idempotency keys of merchant calls: claimed (and locked) by the first request, answered with its stored
//! response afterwards.

use super::{Store, StoreResult};

/// An `idempotency` row as seen by a repeated request: the first request's hash and, once it finished, its
/// response (`status`, `body`).
#[derive(Debug, sqlx::FromRow)]
struct IdempotencyRecord {
    request_hash: String,
    status: Option<i32>,
    body: Option<String>,
}

impl Store {
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
        let seen =
            sqlx::query_as::<_, IdempotencyRecord>("SELECT request_hash, status, body FROM idempotency WHERE key = $1")
                .bind(key)
                .fetch_one(self.db())
                .await?;
        let response = match (seen.status, seen.body) {
            (Some(s), Some(b)) => Some((u16::try_from(s).unwrap_or(500), b)),
            _ => None,
        };
        Ok(Some((seen.request_hash, response)))
    }

    /// When a key was first claimed in its current life (a retake after its request died keeps it; a key
    /// reused after it expired starts a new life): what the handler's own records are keyed by.
    ///
    /// # Errors
    /// Database errors.
    pub async fn idempotency_generation(&self, key: &str) -> StoreResult<i64> {
        sqlx::query_scalar("SELECT created_at FROM idempotency WHERE key = $1").bind(key).fetch_one(self.db()).await
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
