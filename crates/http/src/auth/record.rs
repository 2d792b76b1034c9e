//! The record of sign-ins and refused credentials (`auth_events`): what
//! happened and to which account when one is known — never the login typed,
//! a password, a token or an address. Each is also a `tracing` warning with
//! the same fields, and a counter by kind.

use sqlx::PgPool;
use uuid::Uuid;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthEvent {
    /// Signed in.
    LoginSucceeded,
    /// Wrong login or password.
    LoginFailed,
    /// Too many failures: the account is locked for a while.
    AccountLocked,
    /// A sign-in tried while the account was locked.
    LockedOut,
    /// Too many sign-in attempts from one address.
    RateLimited,
    /// A form or unsafe request without the right CSRF token.
    CsrfRefused,
    /// A bearer token unknown, expired or revoked.
    TokenRefused,
    /// A session cookie unknown, ended or expired.
    SessionRefused,
    /// Signed out.
    LoggedOut,
    /// An OpenID Connect sign-in refused (bad state, token or unknown
    /// subject).
    OidcRefused,
    /// Signed in through OpenID Connect.
    OidcSucceeded,
    /// An administrator created an account (the account named is the new one).
    AccountCreated,
    /// An administrator disabled an account: its sessions ended, its
    /// tokens revoked.
    AccountDisabled,
    /// An administrator issued an API token to an account.
    TokenIssued,
    /// An administrator revoked an API token.
    TokenRevoked,
}

impl AuthEvent {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthEvent::LoginSucceeded => "login_succeeded",
            AuthEvent::LoginFailed => "login_failed",
            AuthEvent::AccountLocked => "account_locked",
            AuthEvent::LockedOut => "locked_out",
            AuthEvent::RateLimited => "rate_limited",
            AuthEvent::CsrfRefused => "csrf_refused",
            AuthEvent::TokenRefused => "token_refused",
            AuthEvent::SessionRefused => "session_refused",
            AuthEvent::LoggedOut => "logged_out",
            AuthEvent::OidcRefused => "oidc_refused",
            AuthEvent::OidcSucceeded => "oidc_succeeded",
            AuthEvent::AccountCreated => "account_created",
            AuthEvent::AccountDisabled => "account_disabled",
            AuthEvent::TokenIssued => "token_issued",
            AuthEvent::TokenRevoked => "token_revoked",
        }
    }
}

/// Record an event (failures to record are logged, never fatal: refusing
/// a credential must not depend on the record).
pub async fn record(pool: &PgPool, kind: AuthEvent, account: Option<Uuid>, network: Option<Uuid>) {
    metrics::counter!("sportello_auth_events_total", "kind" => kind.as_str()).increment(1);
    match kind {
        AuthEvent::LoginSucceeded
        | AuthEvent::LoggedOut
        | AuthEvent::OidcSucceeded
        | AuthEvent::AccountCreated
        | AuthEvent::AccountDisabled
        | AuthEvent::TokenIssued
        | AuthEvent::TokenRevoked => {
            tracing::info!(kind = kind.as_str(), account = ?account, "auth")
        }
        _ => tracing::warn!(kind = kind.as_str(), account = ?account, "auth refused"),
    }
    if let Err(e) =
        sqlx::query("INSERT INTO auth_events (kind, account_id, network_id) VALUES ($1, $2, $3)")
            .bind(kind.as_str())
            .bind(account)
            .bind(network)
            .execute(pool)
            .await
    {
        tracing::error!(error = %e, "recording an auth event");
    }
}
