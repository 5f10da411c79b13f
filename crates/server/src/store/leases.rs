//! Named leases that serialise work across instances (e.g. renewing the shared bKash token).

use super::{Store, StoreResult};

impl Store {
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
}
