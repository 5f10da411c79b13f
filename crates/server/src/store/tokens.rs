//! The shared provider token (bKash's id_token and refresh_token), one row per name.

use super::{Store, StoreResult};

/// The persisted provider token.
#[derive(Debug, Clone)]
pub struct StoredToken {
    /// id_token (a credential: redacted in `Debug`, never logged).
    pub id_token: secrecy::SecretString,
    /// refresh_token (a credential: redacted in `Debug`, never logged).
    pub refresh_token: secrecy::SecretString,
    /// id_token expiry, Unix ms.
    pub expires_at: i64,
    /// refresh_token expiry, Unix ms.
    pub refresh_expires_at: i64,
}

/// A `provider_tokens` row as stored. No `Debug`: it holds the credentials in the clear.
#[derive(sqlx::FromRow)]
struct TokenRecord {
    id_token: String,
    refresh_token: String,
    expires_at: i64,
    refresh_expires_at: i64,
}

impl From<TokenRecord> for StoredToken {
    fn from(r: TokenRecord) -> StoredToken {
        StoredToken {
            id_token: r.id_token.into(),
            refresh_token: r.refresh_token.into(),
            expires_at: r.expires_at,
            refresh_expires_at: r.refresh_expires_at,
        }
    }
}

impl Store {
    /// Loads a provider token.
    ///
    /// # Errors
    /// Database errors.
    pub async fn token(&self, name: &str) -> StoreResult<Option<StoredToken>> {
        let row = sqlx::query_as::<_, TokenRecord>("SELECT * FROM provider_tokens WHERE name = $1")
            .bind(name)
            .fetch_optional(self.db())
            .await?;
        Ok(row.map(StoredToken::from))
    }

    /// Saves (inserts or replaces) a provider token.
    ///
    /// # Errors
    /// Database errors.
    pub async fn save_token(&self, name: &str, t: &StoredToken, now: i64) -> StoreResult<()> {
        self.exec(sqlx::query(
            "INSERT INTO provider_tokens (name, id_token, refresh_token, expires_at, refresh_expires_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (name) DO UPDATE SET id_token = excluded.id_token, \
             refresh_token = excluded.refresh_token, expires_at = excluded.expires_at, \
             refresh_expires_at = excluded.refresh_expires_at, updated_at = excluded.updated_at",
        )
        .bind(name)
        .bind(secrecy::ExposeSecret::expose_secret(&t.id_token))
        .bind(secrecy::ExposeSecret::expose_secret(&t.refresh_token))
        .bind(t.expires_at)
        .bind(t.refresh_expires_at)
        .bind(now)
        )
        .await
        .map(|_| ())
    }
}
