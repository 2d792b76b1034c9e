//! Sign-in through an OpenID Connect provider (SPID/CIE through the
//! comune's identity provider, or any other): the authorization code flow
//! with PKCE (S256).
//!
//! - `GET /auth/oidc/login` sends the browser to the provider with a random
//!   `state` and `nonce` and a PKCE challenge. The state's SHA-256, the
//!   verifier and the nonce are kept in `oidc_requests`; the state itself
//!   also goes in a short-lived cookie (`SameSite=Lax`, so it comes back
//!   on the provider's redirect), which binds the flow to the browser that
//!   started it (no login CSRF).
//! - `GET /auth/oidc/callback` takes the request back (single use: the row
//!   is deleted whatever happens next; older than [`REQUEST_LIFETIME`] is
//!   refused), exchanges the code with the verifier, verifies the ID token
//!   (signature by the provider's keys, issuer, audience, expiry, nonce)
//!   and signs in the account bound to (issuer, subject), if there is one
//!   and it is not disabled.
//!
//! This module never creates an account: accounts are provisioned by an
//! administrator ([`super::accounts::set_oidc_identity`]). Every refusal is
//! recorded ([`AuthEvent::OidcRefused`]) with the account when one is
//! known — never a subject, an email, a code or a token, neither in the
//! record nor in the logs.
//!
//! The HTTP client that talks to the provider follows no redirect (a
//! redirect-following client on the token request is an SSRF hole) and
//! uses rustls on ring, the one crypto provider of the workspace.

use super::login::{PeerIp, signed_in};
use super::record::{AuthEvent, record};
use super::{session, token};
use crate::config::OidcSettings;
use crate::error::ApiError;
use crate::state::AppState;
use anyhow::Context;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken,
    EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, Nonce, PkceCodeChallenge,
    PkceCodeVerifier, RedirectUrl, TokenResponse,
};
use serde::Deserialize;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long a sign-in may take at the provider: an older request is
/// refused.
pub const REQUEST_LIFETIME: Duration = Duration::from_secs(10 * 60);
/// How long the provider's discovery document and keys are trusted before
/// they are fetched again (so a key rotation is picked up).
pub const DISCOVERY_TTL: Duration = Duration::from_secs(60 * 60);
/// The cookie holding the `state` of a sign-in in progress.
pub const STATE_COOKIE: &str = "sportello_oidc_state";

/// The client, as built from the provider's discovery document.
type Client = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Metadata as fetched, and when.
type Fetched = (Instant, Arc<CoreProviderMetadata>);

/// The provider's discovery document and keys, fetched on first use and
/// kept for [`DISCOVERY_TTL`], and the HTTP client to reach it.
#[derive(Clone, Default)]
pub struct Discovery {
    cached: Arc<Mutex<Option<Fetched>>>,
    http: Arc<OnceLock<openidconnect::reqwest::Client>>,
}

impl Discovery {
    fn http(&self) -> anyhow::Result<&openidconnect::reqwest::Client> {
        if let Some(c) = self.http.get() {
            return Ok(c);
        }
        let client = openidconnect::reqwest::Client::builder()
            // Never follow a redirect: the token request must go where the
            // discovery document says, nowhere else (SSRF).
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .context("building the OpenID Connect HTTP client")?;
        Ok(self.http.get_or_init(|| client))
    }

    /// The provider's metadata (with its keys), from the cache when fresh.
    async fn metadata(&self, settings: &OidcSettings) -> anyhow::Result<Arc<CoreProviderMetadata>> {
        {
            let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((at, meta)) = cached.as_ref()
                && at.elapsed() < DISCOVERY_TTL
            {
                return Ok(meta.clone());
            }
        }
        let issuer = IssuerUrl::new(settings.issuer_url.clone()).context("oidc.issuer_url")?;
        let meta = Arc::new(
            CoreProviderMetadata::discover_async(issuer, self.http()?)
                .await
                .context("discovering the OpenID Connect provider")?,
        );
        *self.cached.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((Instant::now(), meta.clone()));
        Ok(meta)
    }

    async fn client(&self, settings: &OidcSettings) -> anyhow::Result<Client> {
        let meta = self.metadata(settings).await?;
        Ok(CoreClient::from_provider_metadata(
            (*meta).clone(),
            ClientId::new(settings.client_id.clone()),
            Some(ClientSecret::new(settings.client_secret.clone())),
        )
        .set_redirect_uri(
            RedirectUrl::new(settings.redirect_url.clone()).context("oidc.redirect_url")?,
        ))
    }
}

/// The `Set-Cookie` value of the state cookie: `SameSite=Lax`, since it
/// must come back on the provider's cross-site redirect; only under
/// `/auth/oidc`. `max_age` zero deletes it.
fn state_cookie(value: &str, max_age: Duration) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{STATE_COOKIE}={value}; Path=/auth/oidc; HttpOnly; Secure; SameSite=Lax; Max-Age={}",
        max_age.as_secs()
    ))
    .expect("a cookie of URL-safe characters")
}

/// `GET /auth/oidc/login`: to the provider.
pub async fn login(State(state): State<AppState>, PeerIp(ip): PeerIp) -> Response {
    let Some(settings) = state.settings.oidc.as_ref() else {
        return ApiError::NotFound.into_response();
    };
    let pool = state.pool();
    // Each visit stores a row: limited like password sign-ins.
    if let Err(wait) = state.limits.login(ip) {
        record(pool, AuthEvent::RateLimited, None, None).await;
        return ApiError::TooManyRequests(wait).into_response();
    }
    let client = match state.oidc.client(settings).await {
        Ok(c) => c,
        Err(e) => return ApiError::Internal(e).into_response(),
    };
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = client
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .set_pkce_challenge(challenge)
        .url();
    let stored = async {
        // Requests never called back are of no use after their lifetime.
        sqlx::query(
            "DELETE FROM oidc_requests WHERE created_at < now() - make_interval(secs => $1)",
        )
        .bind(REQUEST_LIFETIME.as_secs_f64())
        .execute(pool)
        .await?;
        sqlx::query(
            "INSERT INTO oidc_requests (state_hash, pkce_verifier, nonce) VALUES ($1, $2, $3)",
        )
        .bind(token::hash(csrf.secret()))
        .bind(verifier.secret())
        .bind(nonce.secret())
        .execute(pool)
        .await
    };
    if let Err(e) = stored.await {
        return ApiError::from(e).into_response();
    }
    let mut res = Redirect::to(url.as_str()).into_response();
    res.headers_mut().append(
        header::SET_COOKIE,
        state_cookie(csrf.secret(), REQUEST_LIFETIME),
    );
    res
}

/// What the provider sends the browser back with.
#[derive(Deserialize, Default)]
struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// Why a callback was refused (for the logs: no personal data).
#[derive(Clone, Copy, Debug)]
enum Refusal {
    NoState,
    StateMismatch,
    UnknownState,
    Expired,
    ProviderError,
    NoCode,
    Discovery,
    TokenExchange,
    NoIdToken,
    IdToken(&'static str),
    UnknownSubject,
    Disabled,
}

impl Refusal {
    fn as_str(self) -> &'static str {
        match self {
            Refusal::NoState => "no_state",
            Refusal::StateMismatch => "state_not_from_this_browser",
            Refusal::UnknownState => "unknown_or_used_state",
            Refusal::Expired => "request_expired",
            Refusal::ProviderError => "provider_error",
            Refusal::NoCode => "no_code",
            Refusal::Discovery => "provider_unreachable",
            Refusal::TokenExchange => "token_exchange",
            Refusal::NoIdToken => "no_id_token",
            Refusal::IdToken(kind) => kind,
            Refusal::UnknownSubject => "unknown_subject",
            Refusal::Disabled => "account_disabled",
        }
    }
}

/// The kind of an ID token failure, without its details (they may carry
/// claims).
fn claims_failure(e: &ClaimsVerificationError) -> &'static str {
    match e {
        ClaimsVerificationError::Expired(_) => "id_token_expired",
        ClaimsVerificationError::InvalidAudience(_) => "id_token_audience",
        ClaimsVerificationError::InvalidIssuer(_) => "id_token_issuer",
        ClaimsVerificationError::InvalidNonce(_) => "id_token_nonce",
        ClaimsVerificationError::SignatureVerification(_) => "id_token_signature",
        ClaimsVerificationError::InvalidSubject(_) => "id_token_subject",
        ClaimsVerificationError::Unsupported(_) => "id_token_unsupported",
        _ => "id_token_other",
    }
}

/// A refused sign-in: recorded, logged by kind, answered 403 with the
/// state cookie cleared.
async fn refuse(state: &AppState, why: Refusal, account: Option<(Uuid, Uuid)>) -> Response {
    tracing::warn!(reason = why.as_str(), "OpenID Connect sign-in refused");
    record(
        state.pool(),
        AuthEvent::OidcRefused,
        account.map(|a| a.0),
        account.map(|a| a.1),
    )
    .await;
    let mut res = ApiError::Forbidden.into_response();
    res.headers_mut()
        .append(header::SET_COOKIE, state_cookie("", Duration::ZERO));
    res
}

/// `GET /auth/oidc/callback?code=&state=` (or `?error=&state=`).
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let Some(settings) = state.settings.oidc.as_ref() else {
        return ApiError::NotFound.into_response();
    };
    let pool = state.pool();
    let q: Callback = query
        .as_deref()
        .and_then(|q| serde_urlencoded::from_str(q).ok())
        .unwrap_or_default();
    let Some(sent_state) = q.state.filter(|s| !s.is_empty() && s.len() <= 256) else {
        return refuse(&state, Refusal::NoState, None).await;
    };
    // The request is used up now, whatever follows: a callback replayed,
    // or sent after an error, finds nothing.
    type Row = (String, String, bool);
    let row: Option<Row> = match sqlx::query_as(
        "DELETE FROM oidc_requests WHERE state_hash = $1
         RETURNING pkce_verifier, nonce, created_at > now() - make_interval(secs => $2)",
    )
    .bind(token::hash(&sent_state))
    .bind(REQUEST_LIFETIME.as_secs_f64())
    .fetch_optional(pool)
    .await
    {
        Ok(r) => r,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let from_this_browser =
        session::csrf_matches(session::cookie(&headers, STATE_COOKIE), &sent_state);
    if !from_this_browser {
        return refuse(&state, Refusal::StateMismatch, None).await;
    }
    let Some((verifier, nonce, fresh)) = row else {
        return refuse(&state, Refusal::UnknownState, None).await;
    };
    if q.error.is_some() {
        // The provider's own refusal (the user cancelled, access denied):
        // its error code is a protocol word, but what it sends is not
        // trusted enough to be logged.
        return refuse(&state, Refusal::ProviderError, None).await;
    }
    if !fresh {
        return refuse(&state, Refusal::Expired, None).await;
    }
    let Some(code) = q.code.filter(|c| !c.is_empty()) else {
        return refuse(&state, Refusal::NoCode, None).await;
    };
    let client = match state.oidc.client(settings).await {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "OpenID Connect provider unreachable");
            return refuse(&state, Refusal::Discovery, None).await;
        }
    };
    let http = match state.oidc.http() {
        Ok(h) => h,
        Err(e) => return ApiError::Internal(e).into_response(),
    };
    let exchange = match client.exchange_code(AuthorizationCode::new(code)) {
        Ok(request) => {
            request
                .set_pkce_verifier(PkceCodeVerifier::new(verifier))
                .request_async(http)
                .await
        }
        Err(_) => return refuse(&state, Refusal::TokenExchange, None).await,
    };
    let Ok(tokens) = exchange else {
        return refuse(&state, Refusal::TokenExchange, None).await;
    };
    let Some(id_token) = tokens.id_token() else {
        return refuse(&state, Refusal::NoIdToken, None).await;
    };
    let claims = match id_token.claims(&client.id_token_verifier(), &Nonce::new(nonce)) {
        Ok(c) => c,
        Err(e) => return refuse(&state, Refusal::IdToken(claims_failure(&e)), None).await,
    };
    let account: Option<(Uuid, Uuid, bool)> = match sqlx::query_as(
        "SELECT account_id, network_id, disabled_at IS NOT NULL FROM accounts
          WHERE oidc_issuer = $1 AND oidc_subject = $2",
    )
    .bind(claims.issuer().as_str())
    .bind(claims.subject().as_str())
    .fetch_optional(pool)
    .await
    {
        Ok(a) => a,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let (account, network) = match account {
        None => return refuse(&state, Refusal::UnknownSubject, None).await,
        Some((a, n, true)) => return refuse(&state, Refusal::Disabled, Some((a, n))).await,
        Some((a, n, false)) => (a, n),
    };
    record(pool, AuthEvent::OidcSucceeded, Some(account), Some(network)).await;
    home_from_cross_site(signed_in(pool, account).await)
}

/// The answer of a successful sign-in, turned from a redirect into a page
/// that moves on to `/` by itself. The callback is reached by a redirect
/// from the provider's site, and a browser does not send `SameSite=Strict`
/// cookies on a redirect chain started cross-site: redirected straight to
/// `/`, the new session would not be seen until the next click. A page
/// of our own that refreshes is a same-site navigation.
fn home_from_cross_site(res: Response) -> Response {
    if !res.status().is_redirection() {
        return res;
    }
    let cookies: Vec<HeaderValue> = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    let mut page = (
        StatusCode::OK,
        Html(
            "<!doctype html><html lang=\"it\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"refresh\" content=\"0;url=/\"><title>Sportello</title></head>\
             <body><p><a href=\"/\">Continua · Continue</a></p></body></html>",
        ),
    )
        .into_response();
    let headers = page.headers_mut();
    for c in cookies {
        headers.append(header::SET_COOKIE, c);
    }
    headers.append(header::SET_COOKIE, state_cookie("", Duration::ZERO));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    page
}
