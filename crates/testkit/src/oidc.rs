//! A small OpenID Connect provider for tests: an axum server on
//! `127.0.0.1`, port 0, plain HTTP, with discovery, keys, an authorization
//! endpoint with no user interface (it signs in the subject the test chose
//! with [`OidcProvider::next_subject`] and redirects back at once) and a
//! token endpoint that checks the client, the code (known, single use,
//! bound to its `redirect_uri`) and PKCE (S256 only), and answers an
//! RS256-signed ID token.
//!
//! [`OidcProvider::misbehave`] makes it answer bad ID tokens (another
//! audience, issuer or nonce, expired, signed with a key it does not
//! publish) so tests can show the client refuses them. It is for tests
//! only: it keeps everything in memory and trusts whoever calls it.

use axum::Router;
use axum::extract::{Form, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Json, Redirect, Response};
use axum::routing::{get, post};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use openidconnect::core::{
    CoreIdToken, CoreIdTokenClaims, CoreJsonWebKeySet, CoreJwsSigningAlgorithm,
    CoreRsaPrivateSigningKey,
};
use openidconnect::{
    Audience, EmptyAdditionalClaims, IssuerUrl, JsonWebKeyId, Nonce, PrivateSigningKey,
    StandardClaims, SubjectIdentifier,
};
use rsa::pkcs1::{EncodeRsaPrivateKey, LineEnding};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// How the provider misbehaves in the ID tokens it issues.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Misbehaviour {
    /// It does not: good tokens.
    #[default]
    None,
    /// The token is for another client.
    WrongAudience,
    /// The token names another issuer.
    WrongIssuer,
    /// The token carries another nonce than the one asked for.
    WrongNonce,
    /// The token expired an hour ago.
    Expired,
    /// The token is signed with a key the provider does not publish (under
    /// the published key's id).
    WrongKey,
}

/// An authorization code handed out, until it is redeemed.
struct Grant {
    subject: String,
    redirect_uri: String,
    challenge: String,
    nonce: Option<String>,
}

#[derive(Default)]
struct Mutable {
    subject: Option<String>,
    misbehaviour: Misbehaviour,
    codes: HashMap<String, Grant>,
    challenge_methods: Vec<String>,
}

struct Inner {
    issuer: String,
    client_id: String,
    client_secret: String,
    key: CoreRsaPrivateSigningKey,
    other_key: CoreRsaPrivateSigningKey,
    state: Mutex<Mutable>,
}

impl Inner {
    fn state(&self) -> std::sync::MutexGuard<'_, Mutable> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running test provider (stopped when dropped).
pub struct OidcProvider {
    inner: Arc<Inner>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The id of the key the provider publishes.
const KID: &str = "test-key-1";

/// Two RSA keys (PKCS#1 PEM), made once per process: generating one takes
/// a while.
fn keys() -> &'static (String, String) {
    static KEYS: OnceLock<(String, String)> = OnceLock::new();
    KEYS.get_or_init(|| {
        let make = || {
            rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .expect("an RSA key")
                .to_pkcs1_pem(LineEnding::LF)
                .expect("PEM")
                .to_string()
        };
        (make(), make())
    })
}

fn signing_key(pem: &str) -> CoreRsaPrivateSigningKey {
    CoreRsaPrivateSigningKey::from_pem(pem, Some(JsonWebKeyId::new(KID.into())))
        .expect("a valid RSA key")
}

impl OidcProvider {
    /// Start a provider that knows one client.
    pub async fn start(client_id: &str, client_secret: &str) -> OidcProvider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a port");
        let issuer = format!("http://{}", listener.local_addr().expect("an address"));
        let (pem, other_pem) = keys();
        let inner = Arc::new(Inner {
            issuer,
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            key: signing_key(pem),
            other_key: signing_key(other_pem),
            state: Mutex::default(),
        });
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(inner.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        OidcProvider { inner, task }
    }

    /// Its issuer URL (`http://127.0.0.1:PORT`).
    pub fn issuer_url(&self) -> &str {
        &self.inner.issuer
    }

    /// The subject every following authorization signs in, until changed.
    /// With none, `/authorize` answers `error=access_denied`.
    pub fn next_subject(&self, subject: &str) {
        self.inner.state().subject = Some(subject.into());
    }

    /// No subject any more: authorizations answer `error=access_denied`.
    pub fn clear_subject(&self) {
        self.inner.state().subject = None;
    }

    /// Issue bad ID tokens from now on (or good ones: [`Misbehaviour::None`]).
    pub fn misbehave(&self, how: Misbehaviour) {
        self.inner.state().misbehaviour = how;
    }

    /// The `code_challenge_method` of every authorization request so far.
    pub fn challenge_methods(&self) -> Vec<String> {
        self.inner.state().challenge_methods.clone()
    }
}

async fn discovery(State(p): State<Arc<Inner>>) -> Json<serde_json::Value> {
    let i = &p.issuer;
    Json(json!({
        "issuer": i,
        "authorization_endpoint": format!("{i}/authorize"),
        "token_endpoint": format!("{i}/token"),
        "jwks_uri": format!("{i}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid"],
    }))
}

async fn jwks(State(p): State<Arc<Inner>>) -> Json<CoreJsonWebKeySet> {
    Json(CoreJsonWebKeySet::new(vec![p.key.as_verification_key()]))
}

#[derive(Deserialize)]
struct AuthorizeQuery {
    response_type: Option<String>,
    client_id: Option<String>,
    redirect_uri: Option<String>,
    scope: Option<String>,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// `redirect_uri` with query parameters added.
fn back_to(redirect_uri: &str, params: &[(&str, &str)]) -> Response {
    let mut url = redirect_uri.to_owned();
    let mut sep = if url.contains('?') { '&' } else { '?' };
    for (k, v) in params {
        let v: String = form_urlencoded::byte_serialize(v.as_bytes()).collect();
        url.push(sep);
        url.push_str(k);
        url.push('=');
        url.push_str(&v);
        sep = '&';
    }
    Redirect::to(&url).into_response()
}

async fn authorize(State(p): State<Arc<Inner>>, Query(q): Query<AuthorizeQuery>) -> Response {
    if q.client_id.as_deref() != Some(p.client_id.as_str()) {
        return (StatusCode::BAD_REQUEST, "unknown client").into_response();
    }
    let Some(redirect_uri) = q.redirect_uri.filter(|r| r.starts_with("http")) else {
        return (StatusCode::BAD_REQUEST, "redirect_uri required").into_response();
    };
    let state = q.state.unwrap_or_default();
    let refuse = |error: &str| back_to(&redirect_uri, &[("error", error), ("state", &state)]);
    let method = q.code_challenge_method.unwrap_or_default();
    p.state().challenge_methods.push(method.clone());
    let scopes_ok = q
        .scope
        .as_deref()
        .is_some_and(|s| s.split(' ').any(|s| s == "openid"));
    if q.response_type.as_deref() != Some("code") || !scopes_ok {
        return refuse("invalid_request");
    }
    let Some(challenge) = q.code_challenge.filter(|c| !c.is_empty()) else {
        return refuse("invalid_request");
    };
    if method != "S256" {
        return refuse("invalid_request");
    }
    let code = uuid::Uuid::new_v4().simple().to_string();
    {
        let mut s = p.state();
        let Some(subject) = s.subject.clone() else {
            drop(s);
            return refuse("access_denied");
        };
        s.codes.insert(
            code.clone(),
            Grant {
                subject,
                redirect_uri: redirect_uri.clone(),
                challenge,
                nonce: q.nonce,
            },
        );
    }
    back_to(&redirect_uri, &[("code", &code), ("state", &state)])
}

#[derive(Deserialize)]
struct TokenForm {
    grant_type: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    code_verifier: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

fn oauth_error(status: StatusCode, error: &str) -> Response {
    (status, Json(json!({ "error": error }))).into_response()
}

/// The client's id and secret, from HTTP Basic (each form-encoded, as
/// RFC 6749 says) or from the form.
fn client_credentials(headers: &HeaderMap, form: &TokenForm) -> Option<(String, String)> {
    if let Some(basic) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
    {
        let decoded = String::from_utf8(STANDARD.decode(basic.trim()).ok()?).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        let decode = |s: &str| {
            form_urlencoded::parse(format!("v={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
        };
        return Some((decode(id)?, decode(secret)?));
    }
    Some((form.client_id.clone()?, form.client_secret.clone()?))
}

async fn token(
    State(p): State<Arc<Inner>>,
    headers: HeaderMap,
    Form(form): Form<TokenForm>,
) -> Response {
    let Some((id, secret)) = client_credentials(&headers, &form) else {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    };
    if id != p.client_id || secret != p.client_secret {
        return oauth_error(StatusCode::UNAUTHORIZED, "invalid_client");
    }
    if form.grant_type.as_deref() != Some("authorization_code") {
        return oauth_error(StatusCode::BAD_REQUEST, "unsupported_grant_type");
    }
    // Single use: the code is gone whether or not what follows is right.
    let (grant, misbehaviour) = {
        let mut s = p.state();
        let grant = form.code.as_deref().and_then(|c| s.codes.remove(c));
        (grant, s.misbehaviour)
    };
    let Some(grant) = grant else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    };
    if form.redirect_uri.as_deref() != Some(grant.redirect_uri.as_str()) {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }
    let verified = form
        .code_verifier
        .as_deref()
        .is_some_and(|v| URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes())) == grant.challenge);
    if !verified {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_grant");
    }

    let now = chrono::Utc::now();
    let (issued, expires) = match misbehaviour {
        Misbehaviour::Expired => (
            now - chrono::Duration::hours(2),
            now - chrono::Duration::hours(1),
        ),
        _ => (now, now + chrono::Duration::minutes(5)),
    };
    let issuer = match misbehaviour {
        Misbehaviour::WrongIssuer => format!("{}/other", p.issuer),
        _ => p.issuer.clone(),
    };
    let audience = match misbehaviour {
        Misbehaviour::WrongAudience => "another-client".to_owned(),
        _ => p.client_id.clone(),
    };
    let nonce = match misbehaviour {
        Misbehaviour::WrongNonce => Some("not-the-nonce-asked-for".to_owned()),
        _ => grant.nonce,
    };
    let claims = CoreIdTokenClaims::new(
        IssuerUrl::new(issuer).expect("a URL"),
        vec![Audience::new(audience)],
        expires,
        issued,
        StandardClaims::new(SubjectIdentifier::new(grant.subject)),
        EmptyAdditionalClaims {},
    )
    .set_nonce(nonce.map(Nonce::new));
    let key = match misbehaviour {
        Misbehaviour::WrongKey => &p.other_key,
        _ => &p.key,
    };
    let id_token = match CoreIdToken::new(
        claims,
        key,
        CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
        None,
        None,
    ) {
        Ok(t) => t,
        Err(_) => return oauth_error(StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
    };
    Json(json!({
        "access_token": uuid::Uuid::new_v4().simple().to_string(),
        "token_type": "Bearer",
        "expires_in": 300,
        "id_token": id_token.to_string(),
    }))
    .into_response()
}
