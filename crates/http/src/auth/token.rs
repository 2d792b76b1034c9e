//! API tokens for partner systems and scripts: random secrets handed out
//! once, stored as SHA-256 hashes only, bound to one account (and so to
//! its organisation and network), expiring and revocable.
//!
//! Checking a token is a keyed look-up of its hash: no secret is ever
//! compared byte by byte, so the time a check takes says nothing about how
//! much of a forged token was right. A token looked up is kept for
//! [`TOKEN_CACHE_TTL`]; revoking clears this process's cache at once (other
//! replicas stop accepting it within the TTL).

use super::Caller;
use base64::Engine;
use sha2::{Digest, Sha256};
use sportello_domain::AccountId;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// SHA-256 of a secret (token or session cookie), the form it is stored in.
pub fn hash(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// A new random secret with a recognisable prefix (32 random bytes).
pub fn secret(prefix: &str) -> String {
    let mut bytes = [0u8; 32];
    rand::fill(&mut bytes);
    format!(
        "{prefix}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// How long a looked-up token is trusted without asking the database
/// again: a token revoked on another replica, or expired, stops working
/// within this time.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Tokens looked up recently (by hash), so a busy client does not cost a
/// query per request. Bounded: cleared when it grows past 10,000 entries.
#[derive(Clone, Default)]
pub struct TokenCache(Arc<Mutex<CachedTokens>>);

/// Callers by token hash, with when they were looked up.
type CachedTokens = HashMap<Vec<u8>, (Caller, Instant)>;

impl TokenCache {
    pub(crate) fn get(&self, hash: &[u8]) -> Option<Caller> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(c, _)| c.clone())
    }

    pub(crate) fn put(&self, hash: Vec<u8>, caller: Caller) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 10_000 {
            map.clear();
        }
        map.insert(hash, (caller, Instant::now()));
    }

    /// Forget every cached token (after a revocation).
    pub fn clear(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

/// The account behind a token, if it is known, not revoked, not expired
/// and its account not disabled.
pub(crate) async fn lookup(pool: &PgPool, hashed: &[u8]) -> Result<Option<Caller>, sqlx::Error> {
    let row: Option<super::AccountRow> = sqlx::query_as(concat!(
        "SELECT ",
        super::account_columns!(),
        " FROM api_tokens t JOIN accounts a USING (account_id)
          WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()
            AND a.disabled_at IS NULL"
    ))
    .bind(hashed)
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(super::AccountRow::caller))
}

/// A token just issued: its secret is shown once (and never in `Debug`).
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Issued {
    /// Its id (to revoke it).
    pub token_id: Uuid,
    /// The secret, for `Authorization: Bearer`; not stored, not shown again.
    pub token: String,
    /// When it stops working.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub expires_at: OffsetDateTime,
}

impl std::fmt::Debug for Issued {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issued")
            .field("token_id", &self.token_id)
            .field("token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Issue a new API token for an account, valid for `valid_for`. The token
/// is returned once; only its hash is kept.
pub async fn issue(
    pool: &PgPool,
    account: AccountId,
    label: &str,
    valid_for: Duration,
) -> Result<Issued, sqlx::Error> {
    issue_by(pool, account, label, valid_for, None).await
}

/// [`issue`], recording the administrator who issued it.
pub async fn issue_by(
    pool: &PgPool,
    account: AccountId,
    label: &str,
    valid_for: Duration,
    issued_by: Option<AccountId>,
) -> Result<Issued, sqlx::Error> {
    let token = secret("spt_");
    let expires_at = OffsetDateTime::now_utc() + valid_for;
    let token_id: Uuid = sqlx::query_scalar(
        "INSERT INTO api_tokens (token_hash, account_id, expires_at, label, issued_by)
         VALUES ($1, $2, $3, $4, $5) RETURNING token_id",
    )
    .bind(hash(&token))
    .bind(account.0)
    .bind(expires_at)
    .bind(label)
    .bind(issued_by.map(|a| a.0))
    .fetch_one(pool)
    .await?;
    Ok(Issued {
        token_id,
        token,
        expires_at,
    })
}

/// Issue a new API token for an account (the secret only).
pub async fn issue_token(
    pool: &PgPool,
    account: AccountId,
    valid_for: Duration,
) -> Result<String, sqlx::Error> {
    Ok(issue(pool, account, "", valid_for).await?.token)
}

/// Revoke a token of `network`; whether there was such a token not yet
/// revoked.
pub async fn revoke(
    pool: &PgPool,
    network: sportello_domain::NetworkId,
    token_id: Uuid,
) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE api_tokens t SET revoked_at = now()
           FROM accounts a
          WHERE t.token_id = $1 AND a.account_id = t.account_id AND a.network_id = $2
            AND t.revoked_at IS NULL",
    )
    .bind(token_id)
    .bind(network.0)
    .execute(pool)
    .await?;
    Ok(done.rows_affected() == 1)
}
