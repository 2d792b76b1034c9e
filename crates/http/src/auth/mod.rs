//! Who is calling. A request is made as an account, with either an API
//! token (`Authorization: Bearer`, for partner systems and scripts) or a
//! browser session cookie (for the web pages, signed in by password or
//! OpenID Connect). An unsafe request made with a session must carry the
//! session's CSRF token. Refusals are recorded ([`record`]).
//!
//! What a caller may do is [`crate::access`]'s business, not this module's.

pub mod accounts;
pub mod login;
pub mod oidc;
pub mod password;
pub mod record;
pub mod session;
pub mod token;

pub use accounts::{create_account, insert_account};
pub use token::{TOKEN_CACHE_TTL, TokenCache, issue_token};

use crate::access::Role;
use crate::error::ApiError;
use crate::state::AppState;
use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use record::AuthEvent;
use sportello_domain::{AccountId, NetworkId, OrganizationId};
use uuid::Uuid;

pub use sportello_app::Caller;

/// The account columns every credential look-up reads, as `a.`.
macro_rules! account_columns {
    () => {
        "a.account_id, a.network_id, a.organization_id, a.role, a.professional_id"
    };
}
pub(crate) use account_columns;

/// An account as stored.
#[derive(sqlx::FromRow)]
pub(crate) struct AccountRow {
    account_id: Uuid,
    network_id: Uuid,
    organization_id: Uuid,
    role: String,
    professional_id: Option<Uuid>,
}

impl AccountRow {
    /// The caller, unless the stored role is unknown to this version.
    pub(crate) fn caller(self) -> Option<Caller> {
        Some(Caller {
            account_id: AccountId(self.account_id),
            network_id: NetworkId(self.network_id),
            organization_id: OrganizationId(self.organization_id),
            role: Role::parse(&self.role)?,
            professional_id: self.professional_id,
        })
    }
}

/// Whether a method changes nothing (and so needs no CSRF token).
fn is_safe(method: &axum::http::Method) -> bool {
    use axum::http::Method;
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Ok(WithSession::from_request_parts(parts, state).await?.0)
    }
}

/// The caller of a request and, when it came with a browser session, the
/// session (its CSRF token): for the few routes that show it.
pub struct WithSession(pub Caller, pub Option<session::Session>);

impl FromRequestParts<AppState> for WithSession {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (caller, session) = authenticate(parts, state).await?;
        state
            .limits
            .api(caller.account_id.0)
            .map_err(ApiError::TooManyRequests)?;
        Ok(WithSession(caller, session))
    }
}

/// The caller of a request, by token or session (CSRF checked), and the
/// session if it came with one.
async fn authenticate(
    parts: &Parts,
    state: &AppState,
) -> Result<(Caller, Option<session::Session>), ApiError> {
    if let Some(value) = parts.headers.get(AUTHORIZATION) {
        let secret = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(secret) = secret else {
            record::record(state.pool(), AuthEvent::TokenRefused, None, None).await;
            return Err(ApiError::Unauthorized);
        };
        let hashed = token::hash(secret);
        if let Some(caller) = state.tokens.get(&hashed) {
            return Ok((caller, None));
        }
        return match token::lookup(state.pool(), &hashed).await? {
            Some(caller) => {
                state.tokens.put(hashed, caller.clone());
                Ok((caller, None))
            }
            None => {
                record::record(state.pool(), AuthEvent::TokenRefused, None, None).await;
                Err(ApiError::Unauthorized)
            }
        };
    }
    let Some(secret) = session::cookie(&parts.headers, session::COOKIE) else {
        return Err(ApiError::Unauthorized);
    };
    let Some((caller, session)) = session::lookup(state.pool(), secret).await? else {
        record::record(state.pool(), AuthEvent::SessionRefused, None, None).await;
        return Err(ApiError::Unauthorized);
    };
    if !is_safe(&parts.method) {
        let sent = parts
            .headers
            .get(session::CSRF_HEADER)
            .and_then(|v| v.to_str().ok());
        if !session::csrf_matches(sent, &session.csrf) {
            record::record(
                state.pool(),
                AuthEvent::CsrfRefused,
                Some(caller.account_id.0),
                Some(caller.network_id.0),
            )
            .await;
            return Err(ApiError::CsrfRequired);
        }
    }
    Ok((caller, Some(session)))
}
