//! Browser sessions: a random secret in a cookie (`Secure`, `HttpOnly`,
//! `SameSite=Strict`), stored as its SHA-256 hash with the account, an
//! absolute expiry and a CSRF token. Every unsafe request made with a
//! session must carry that token — a form field or the `X-CSRF-Token`
//! header — compared in constant time. Logging out ends the session in
//! the database: the cookie, replayed, is refused.
//!
//! Sessions are looked up on every request (no cache), so logging out
//! takes effect at once on every replica.

use super::{Caller, token};
use sqlx::PgPool;
use subtle::ConstantTimeEq;
use time::{Duration, OffsetDateTime};

/// The session cookie's name.
pub const COOKIE: &str = "__Host-sportello_session";
/// The cookie holding the CSRF token of the sign-in form (before there is
/// a session).
pub const LOGIN_CSRF_COOKIE: &str = "__Host-sportello_login_csrf";
/// The header carrying a session's CSRF token on unsafe API requests.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// How long a session lasts (a working day), however busy.
pub const LIFETIME: Duration = Duration::hours(9);

/// A live session, as a request carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    /// The SHA-256 of the cookie's secret (its key in `sessions`).
    pub hash: Vec<u8>,
    /// The CSRF token unsafe requests must send back.
    pub csrf: String,
}

/// A new session: the cookie's secret (shown once) and its CSRF token.
pub struct Started {
    /// The cookie's value.
    pub secret: String,
    /// The CSRF token forms and scripts must send back.
    pub csrf: String,
}

/// Start a session for an account.
pub async fn start(pool: &PgPool, account: uuid::Uuid) -> Result<Started, sqlx::Error> {
    let secret = token::secret("");
    let csrf = token::secret("");
    sqlx::query(
        "INSERT INTO sessions (session_hash, account_id, csrf_token, expires_at)
         VALUES ($1, $2, $3, $4)",
    )
    .bind(token::hash(&secret))
    .bind(account)
    .bind(&csrf)
    .bind(OffsetDateTime::now_utc() + LIFETIME)
    .execute(pool)
    .await?;
    Ok(Started { secret, csrf })
}

/// The caller of a live session, and the session (its CSRF token).
pub async fn lookup(pool: &PgPool, secret: &str) -> Result<Option<(Caller, Session)>, sqlx::Error> {
    #[derive(sqlx::FromRow)]
    struct Row {
        #[sqlx(flatten)]
        account: super::AccountRow,
        csrf_token: String,
    }
    let row: Option<Row> = sqlx::query_as(concat!(
        "SELECT ",
        super::account_columns!(),
        ", s.csrf_token FROM sessions s JOIN accounts a USING (account_id)
          WHERE s.session_hash = $1 AND s.ended_at IS NULL AND s.expires_at > now()
            AND a.disabled_at IS NULL"
    ))
    .bind(token::hash(secret))
    .fetch_optional(pool)
    .await?;
    Ok(row.and_then(|r| {
        let caller = r.account.caller()?;
        let session = Session {
            hash: token::hash(secret),
            csrf: r.csrf_token,
        };
        Some((caller, session))
    }))
}

/// End a session (logging out).
pub async fn end(pool: &PgPool, session_hash: &[u8]) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE sessions SET ended_at = now() WHERE session_hash = $1 AND ended_at IS NULL",
    )
    .bind(session_hash)
    .execute(pool)
    .await?;
    Ok(())
}

/// Whether a CSRF token sent matches the expected one, in constant time.
pub fn csrf_matches(sent: Option<&str>, expected: &str) -> bool {
    sent.is_some_and(|s| !s.is_empty() && bool::from(s.as_bytes().ct_eq(expected.as_bytes())))
}

/// The value of a cookie in the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

/// A `Set-Cookie` value: `HttpOnly`, `SameSite=Strict`, `Path=/`, `Secure`.
/// (Browsers accept `Secure` cookies from `http://localhost`, so the demo
/// works without TLS.) `max_age` zero deletes the cookie.
pub fn set_cookie(name: &str, value: &str, max_age: Duration) -> String {
    format!(
        "{name}={value}; Path=/; HttpOnly; Secure; SameSite=Strict; Max-Age={}",
        max_age.whole_seconds()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_tokens_must_match_exactly() {
        assert!(csrf_matches(Some("abc"), "abc"));
        assert!(!csrf_matches(Some("abd"), "abc"));
        assert!(!csrf_matches(Some("ab"), "abc"));
        assert!(!csrf_matches(Some(""), ""));
        assert!(!csrf_matches(None, "abc"));
    }

    #[test]
    fn cookies_are_found_by_name_among_several() {
        let mut h = axum::http::HeaderMap::new();
        h.append(
            "cookie",
            "a=1; __Host-sportello_session=xyz".parse().unwrap(),
        );
        h.append("cookie", "b=2".parse().unwrap());
        assert_eq!(cookie(&h, COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "b"), Some("2"));
        assert_eq!(cookie(&h, "c"), None);
    }
}
