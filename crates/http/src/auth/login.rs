//! The sign-in pages: `GET /login` (the form), `POST /login` (password),
//! `POST /logout`, and `GET /` (who is signed in). Every form carries a
//! CSRF token: before sign-in a double-submit cookie, after it the
//! session's own. Sign-in attempts are limited per client address and per
//! account (lockout); every refusal is recorded.

use super::accounts::{self, SignIn};
use super::record::{AuthEvent, record};
use super::{session, token};
use crate::error::ApiError;
use crate::state::AppState;
use askama::Template;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Deserialize;
use std::net::IpAddr;
use time::Duration;

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    csrf: &'a str,
    message: Option<&'a str>,
    oidc: bool,
}

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    label: &'a str,
    role: &'a str,
    csrf: &'a str,
}

/// The address of the client, when the server knows it.
pub struct PeerIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(PeerIp(
            parts
                .extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip()),
        ))
    }
}

fn html(status: StatusCode, page: impl Template) -> Response {
    match page.render() {
        Ok(body) => (status, Html(body)).into_response(),
        Err(e) => ApiError::Internal(e.into()).into_response(),
    }
}

/// The sign-in form, with a fresh CSRF token in a cookie and in the form.
fn login_form(state: &AppState, status: StatusCode, message: Option<&str>) -> Response {
    let csrf = token::secret("");
    let mut res = html(
        status,
        LoginPage {
            csrf: &csrf,
            message,
            oidc: state.settings.oidc.is_some(),
        },
    );
    let cookie = session::set_cookie(session::LOGIN_CSRF_COOKIE, &csrf, Duration::hours(1));
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("a cookie of URL-safe characters"),
    );
    res
}

/// `GET /login`.
pub async fn form(State(state): State<AppState>) -> Response {
    login_form(&state, StatusCode::OK, None)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
}

/// What every failed sign-in says, whatever failed: it tells an attacker
/// nothing about which logins exist or are locked.
const WRONG: &str = "Nome utente o password errati, oppure troppi tentativi: riprova più tardi. \
                     Wrong login or password, or too many attempts: try again later.";

/// `POST /login`.
pub async fn submit(
    State(state): State<AppState>,
    PeerIp(ip): PeerIp,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let pool = state.pool();
    if let Err(wait) = state.limits.login(ip) {
        record(pool, AuthEvent::RateLimited, None, None).await;
        let mut res = login_form(&state, StatusCode::TOO_MANY_REQUESTS, Some(WRONG));
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
        return res;
    }
    let form: LoginForm = serde_urlencoded::from_bytes(&body).unwrap_or(LoginForm {
        login: String::new(),
        password: String::new(),
        csrf: String::new(),
    });
    let expected = session::cookie(&headers, session::LOGIN_CSRF_COOKIE).unwrap_or_default();
    if !session::csrf_matches(Some(&form.csrf), expected) {
        record(pool, AuthEvent::CsrfRefused, None, None).await;
        return login_form(
            &state,
            StatusCode::FORBIDDEN,
            Some("Il modulo è scaduto: riprova. The form expired: try again."),
        );
    }
    if form.password.len() > super::password::MAX_LEN * 4 {
        record(pool, AuthEvent::LoginFailed, None, None).await;
        return login_form(&state, StatusCode::UNAUTHORIZED, Some(WRONG));
    }
    let outcome = match accounts::sign_in(pool, form.login.trim(), &form.password).await {
        Ok(o) => o,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (kind, who) = match outcome {
        SignIn::Ok(account, network) => {
            record(
                pool,
                AuthEvent::LoginSucceeded,
                Some(account),
                Some(network),
            )
            .await;
            return signed_in(pool, account).await;
        }
        SignIn::Wrong(who) => (AuthEvent::LoginFailed, who),
        SignIn::NowLocked(a, n) => (AuthEvent::AccountLocked, Some((a, n))),
        SignIn::Locked(a, n) => (AuthEvent::LockedOut, Some((a, n))),
    };
    record(pool, kind, who.map(|w| w.0), who.map(|w| w.1)).await;
    login_form(&state, StatusCode::UNAUTHORIZED, Some(WRONG))
}

/// Start a session for an account and send the browser home with its
/// cookie (the sign-in form's CSRF cookie is cleared).
pub async fn signed_in(pool: &sqlx::PgPool, account: uuid::Uuid) -> Response {
    let started = match session::start(pool, account).await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let mut res = Redirect::to("/").into_response();
    for cookie in [
        session::set_cookie(session::COOKIE, &started.secret, session::LIFETIME),
        session::set_cookie(session::LOGIN_CSRF_COOKIE, "", Duration::ZERO),
    ] {
        res.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).expect("a cookie of URL-safe characters"),
        );
    }
    res
}

/// The caller of the session a request's cookie names, if it is live.
async fn signed_in_caller(
    pool: &sqlx::PgPool,
    headers: &HeaderMap,
) -> Result<Option<(crate::auth::Caller, session::Session)>, ApiError> {
    let Some(secret) = session::cookie(headers, session::COOKIE) else {
        return Ok(None);
    };
    Ok(session::lookup(pool, secret).await?)
}

/// `GET /`: who is signed in, with the sign-out form; the sign-in form
/// when nobody is.
pub async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let (caller, session) = match signed_in_caller(state.pool(), &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => return Redirect::to("/login").into_response(),
        Err(e) => return e.into_response(),
    };
    let label: String = sqlx::query_scalar("SELECT label FROM accounts WHERE account_id = $1")
        .bind(caller.account_id.0)
        .fetch_one(state.pool())
        .await
        .unwrap_or_default();
    html(
        StatusCode::OK,
        HomePage {
            label: &label,
            role: caller.role.as_str(),
            csrf: &session.csrf,
        },
    )
}

#[derive(Deserialize)]
struct LogoutForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /logout`: ends the session (its cookie, replayed, is refused).
pub async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: bytes::Bytes,
) -> Response {
    let pool = state.pool();
    let (caller, session) = match signed_in_caller(pool, &headers).await {
        Ok(Some(found)) => found,
        Ok(None) => {
            record(pool, AuthEvent::SessionRefused, None, None).await;
            return ApiError::Unauthorized.into_response();
        }
        Err(e) => return e.into_response(),
    };
    let form: Option<LogoutForm> = serde_urlencoded::from_bytes(&body).ok();
    let sent = form.as_ref().map(|f| f.csrf.as_str());
    let (account, network) = (Some(caller.account_id.0), Some(caller.network_id.0));
    if !session::csrf_matches(sent, &session.csrf) {
        record(pool, AuthEvent::CsrfRefused, account, network).await;
        return ApiError::CsrfRequired.into_response();
    }
    if let Err(e) = session::end(pool, &session.hash).await {
        return ApiError::from(e).into_response();
    }
    record(pool, AuthEvent::LoggedOut, account, network).await;
    let mut res = Redirect::to("/login").into_response();
    let cookie = session::set_cookie(session::COOKIE, "", Duration::ZERO);
    res.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).expect("static"),
    );
    res
}
