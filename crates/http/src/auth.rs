//! Who is calling: the bearer token is hashed (SHA-256) and looked up;
//! only the hash is stored, so comparing is a keyed index lookup and no
//! token secret is ever compared byte by byte. A looked-up token is kept
//! for [`TOKEN_CACHE_TTL`] (a revoked token stops working within it).
//! What a caller may do is [`crate::access`]'s business.

use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine;
use sha2::{Digest, Sha256};
use sportello_domain::{AccountId, NetworkId, OrganizationId};
use sqlx::PgPool;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The authenticated account making a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The account.
    pub account_id: AccountId,
    /// Its network (the tenant every query is limited to).
    pub network_id: NetworkId,
    /// Its organisation.
    pub organization_id: OrganizationId,
    /// Its role.
    pub role: String,
}

fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// How long a looked-up token is trusted without asking the database
/// again: a revoked or expired token stops working within this time.
pub const TOKEN_CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(5);

/// Tokens looked up recently (by hash), so a busy client does not cost a
/// query per request. Bounded: cleared when it grows past 10,000 entries.
#[derive(Clone, Default)]
pub struct TokenCache(std::sync::Arc<std::sync::Mutex<CachedTokens>>);

type CachedTokens = std::collections::HashMap<Vec<u8>, (Caller, std::time::Instant)>;

impl TokenCache {
    fn get(&self, hash: &[u8]) -> Option<Caller> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        map.get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(c, _)| c.clone())
    }

    fn put(&self, hash: Vec<u8>, caller: Caller) {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= 10_000 {
            map.clear();
        }
        map.insert(hash, (caller, std::time::Instant::now()));
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or(ApiError::Unauthorized)?;
        let hashed = hash(token);
        if let Some(caller) = state.tokens.get(&hashed) {
            return Ok(caller);
        }
        let row: Option<(Uuid, Uuid, Uuid, String)> = sqlx::query_as(
            "SELECT a.account_id, a.network_id, a.organization_id, a.role
               FROM api_tokens t JOIN accounts a USING (account_id)
              WHERE t.token_hash = $1 AND t.revoked_at IS NULL AND t.expires_at > now()",
        )
        .bind(&hashed)
        .fetch_optional(state.pool())
        .await?;
        let (account, network, org, role) = row.ok_or(ApiError::Unauthorized)?;
        let caller = Caller {
            account_id: AccountId(account),
            network_id: NetworkId(network),
            organization_id: OrganizationId(org),
            role,
        };
        state.tokens.put(hashed, caller.clone());
        Ok(caller)
    }
}

/// Create an account (or keep the existing one).
pub async fn create_account(
    pool: &PgPool,
    account: AccountId,
    network: NetworkId,
    organization: OrganizationId,
    role: &str,
    label: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO accounts (account_id, network_id, organization_id, role, label)
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account_id) DO NOTHING",
    )
    .bind(account.0)
    .bind(network.0)
    .bind(organization.0)
    .bind(role)
    .bind(label)
    .execute(pool)
    .await?;
    Ok(())
}

/// Issue a new API token for an account, valid for `valid_for`. The token
/// is returned once; only its hash is kept.
pub async fn issue_token(
    pool: &PgPool,
    account: AccountId,
    valid_for: Duration,
) -> Result<String, sqlx::Error> {
    let mut secret = [0u8; 32];
    rand::fill(&mut secret);
    let token = format!(
        "spt_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret)
    );
    sqlx::query("INSERT INTO api_tokens (token_hash, account_id, expires_at) VALUES ($1, $2, $3)")
        .bind(hash(&token))
        .bind(account.0)
        .bind(OffsetDateTime::now_utc() + valid_for)
        .execute(pool)
        .await?;
    Ok(token)
}
