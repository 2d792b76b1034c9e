//! Sign-in through OpenID Connect against the test provider of
//! `sportello_testkit::oidc`: a browser driven by hand (redirects followed
//! one by one, cookies carried by hand since reqwest's store keeps
//! `Secure` cookies off plain HTTP).

mod common;

use common::Server;
use sportello_domain::{AccountId, NetworkId, OrganizationId};
use sportello_http::auth::{accounts, create_account};
use sportello_http::config::OidcSettings;
use sportello_testkit::oidc::{Misbehaviour, OidcProvider};
use std::collections::HashMap;

const CLIENT_ID: &str = "sportello-test";
const CLIENT_SECRET: &str = "a secret: with/odd+characters";

/// A browser: no automatic redirects, cookies kept by hand.
struct Browser {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

impl Browser {
    fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    /// GET a URL with the cookies, keeping those the answer sets.
    async fn get(&mut self, url: &str) -> reqwest::Response {
        let mut req = self.http.get(url);
        if !self.cookies.is_empty() {
            let header: Vec<String> = self
                .cookies
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            req = req.header("cookie", header.join("; "));
        }
        let res = req.send().await.unwrap();
        for set in res.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            let (pair, attributes) = set.split_once(';').unwrap_or((set, ""));
            let (name, value) = pair.split_once('=').unwrap();
            if value.is_empty() || attributes.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.into(), value.into());
            }
        }
        res
    }

    fn session(&self) -> Option<&String> {
        self.cookies.get("__Host-sportello_session")
    }
}

fn location(res: &reqwest::Response) -> String {
    assert!(
        res.status().is_redirection(),
        "expected a redirect, got {}",
        res.status()
    );
    res.headers()["location"].to_str().unwrap().to_owned()
}

/// A provider and a server configured to sign in with it.
async fn setup() -> (Server, OidcProvider) {
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    let issuer = provider.issuer_url().to_owned();
    let server = Server::start_with(|s, base| {
        s.oidc = Some(OidcSettings {
            issuer_url: issuer,
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_url: format!("{base}/auth/oidc/callback"),
        });
        s.login_attempts_per_minute = 1000;
    })
    .await;
    (server, provider)
}

/// A desk operator's account bound to `subject` at the provider.
async fn provision(server: &Server, provider: &OidcProvider, subject: &str) -> AccountId {
    let account = AccountId::new();
    create_account(
        &server.db.pool,
        account,
        NetworkId::new(),
        OrganizationId::new(),
        "desk_operator",
        "Operatrice OIDC",
    )
    .await
    .unwrap();
    accounts::set_oidc_identity(&server.db.pool, account, provider.issuer_url(), subject)
        .await
        .unwrap();
    account
}

/// From the sign-in link to the provider and back: the callback URL the
/// provider sends the browser to (not yet visited).
async fn to_provider_and_back(server: &Server, browser: &mut Browser) -> String {
    let res = browser.get(&server.url("/auth/oidc/login")).await;
    let authorize = location(&res);
    assert!(
        authorize.contains("code_challenge_method=S256"),
        "{authorize}"
    );
    assert!(authorize.contains("nonce="), "{authorize}");
    let res = browser.get(&authorize).await;
    let callback = location(&res);
    assert!(
        callback.starts_with(&server.url("/auth/oidc/callback?")),
        "{callback}"
    );
    callback
}

async fn events(server: &Server, kind: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM auth_events WHERE kind = $1")
        .bind(kind)
        .fetch_one(&server.db.pool)
        .await
        .unwrap()
}

async fn sessions(server: &Server) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM sessions")
        .fetch_one(&server.db.pool)
        .await
        .unwrap()
}

/// A refused callback: 403, no session.
async fn assert_refused(browser: &mut Browser, url: &str) {
    let res = browser.get(url).await;
    assert_eq!(res.status().as_u16(), 403, "{url}");
    assert!(browser.session().is_none());
}

#[tokio::test]
async fn a_provisioned_account_signs_in() {
    let (server, provider) = setup().await;
    let account = provision(&server, &provider, "sub-123").await;
    provider.next_subject("sub-123");
    let mut browser = Browser::new();

    let callback = to_provider_and_back(&server, &mut browser).await;
    assert!(browser.cookies.contains_key("sportello_oidc_state"));
    let res = browser.get(&callback).await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("url=/"));
    assert!(browser.session().is_some(), "a session cookie");
    assert!(
        !browser.cookies.contains_key("sportello_oidc_state"),
        "the state cookie is cleared"
    );
    assert_eq!(provider.challenge_methods(), ["S256"]);

    let res = browser.get(&server.url("/")).await;
    assert_eq!(res.status().as_u16(), 200);
    let home = res.text().await.unwrap();
    assert!(home.contains("desk_operator"), "{home}");
    assert!(home.contains("Operatrice OIDC"), "{home}");

    assert_eq!(events(&server, "oidc_succeeded").await, 1);
    assert_eq!(events(&server, "oidc_refused").await, 0);
    let recorded: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT account_id FROM auth_events WHERE kind = 'oidc_succeeded'")
            .fetch_one(&server.db.pool)
            .await
            .unwrap();
    assert_eq!(recorded, Some(account.0));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM oidc_requests")
        .fetch_one(&server.db.pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "the request is used up");
    server.stop().await;
}

#[tokio::test]
async fn an_unknown_or_disabled_subject_is_refused() {
    let (server, provider) = setup().await;
    let mut browser = Browser::new();

    // Nobody provisioned this subject: no account is created for it.
    provider.next_subject("sub-nobody");
    let callback = to_provider_and_back(&server, &mut browser).await;
    assert_refused(&mut browser, &callback).await;
    let accounts: i64 = sqlx::query_scalar("SELECT count(*) FROM accounts")
        .fetch_one(&server.db.pool)
        .await
        .unwrap();
    assert_eq!(accounts, 0);

    // A disabled account does not sign in either.
    let account = provision(&server, &provider, "sub-disabled").await;
    sqlx::query("UPDATE accounts SET disabled_at = now() WHERE account_id = $1")
        .bind(account.0)
        .execute(&server.db.pool)
        .await
        .unwrap();
    provider.next_subject("sub-disabled");
    let callback = to_provider_and_back(&server, &mut browser).await;
    assert_refused(&mut browser, &callback).await;
    let recorded: Option<uuid::Uuid> = sqlx::query_scalar(
        "SELECT account_id FROM auth_events WHERE kind = 'oidc_refused' ORDER BY id DESC LIMIT 1",
    )
    .fetch_one(&server.db.pool)
    .await
    .unwrap();
    assert_eq!(recorded, Some(account.0), "the refusal names the account");

    // The same subject at another issuer is another identity.
    sqlx::query(
        "UPDATE accounts SET disabled_at = NULL, oidc_issuer = 'https://elsewhere.example'",
    )
    .execute(&server.db.pool)
    .await
    .unwrap();
    let callback = to_provider_and_back(&server, &mut browser).await;
    assert_refused(&mut browser, &callback).await;

    assert_eq!(events(&server, "oidc_refused").await, 3);
    assert_eq!(events(&server, "oidc_succeeded").await, 0);
    assert_eq!(sessions(&server).await, 0);
    server.stop().await;
}

#[tokio::test]
async fn a_tampered_replayed_foreign_or_stale_state_is_refused() {
    let (server, provider) = setup().await;
    provision(&server, &provider, "sub-123").await;
    provider.next_subject("sub-123");

    // Tampered: the state is not one the server handed out.
    let mut browser = Browser::new();
    let callback = to_provider_and_back(&server, &mut browser).await;
    let (before, state) = callback.split_once("state=").unwrap();
    let tampered = format!("{before}state={}x", &state[..state.len() - 1]);
    assert_refused(&mut browser, &tampered).await;

    // A callback reached from a browser that did not start the sign-in
    // (no state cookie: a login CSRF) is refused and uses the request up.
    let mut browser = Browser::new();
    let callback = to_provider_and_back(&server, &mut browser).await;
    let mut other = Browser::new();
    assert_refused(&mut other, &callback).await;
    assert_refused(&mut browser, &callback).await;

    // Replayed: the first callback signs in, the second is refused.
    let mut browser = Browser::new();
    let callback = to_provider_and_back(&server, &mut browser).await;
    let state_cookie = browser.cookies["sportello_oidc_state"].clone();
    assert_eq!(browser.get(&callback).await.status().as_u16(), 200);
    assert!(browser.session().is_some());
    let mut replay = Browser::new();
    replay
        .cookies
        .insert("sportello_oidc_state".into(), state_cookie);
    assert_refused(&mut replay, &callback).await;

    // Stale: a request older than ten minutes.
    let mut browser = Browser::new();
    let callback = to_provider_and_back(&server, &mut browser).await;
    sqlx::query("UPDATE oidc_requests SET created_at = now() - interval '11 minutes'")
        .execute(&server.db.pool)
        .await
        .unwrap();
    assert_refused(&mut browser, &callback).await;

    // No state at all.
    assert_refused(&mut browser, &server.url("/auth/oidc/callback?code=abc")).await;

    // The provider's own refusal (`error=access_denied`).
    let mut browser = Browser::new();
    let res = browser.get(&server.url("/auth/oidc/login")).await;
    let authorize = location(&res);
    // A subject nobody chose: the test provider denies access.
    provider.clear_subject();
    let callback = location(&browser.get(&authorize).await);
    assert!(callback.contains("error=access_denied"), "{callback}");
    assert_refused(&mut browser, &callback).await;

    assert_eq!(events(&server, "oidc_succeeded").await, 1);
    assert_eq!(events(&server, "oidc_refused").await, 7);
    assert_eq!(sessions(&server).await, 1);
    server.stop().await;
}

#[tokio::test]
async fn bad_id_tokens_are_refused() {
    let (server, provider) = setup().await;
    provision(&server, &provider, "sub-123").await;
    provider.next_subject("sub-123");
    let bad = [
        Misbehaviour::WrongAudience,
        Misbehaviour::WrongNonce,
        Misbehaviour::Expired,
        Misbehaviour::WrongKey,
        Misbehaviour::WrongIssuer,
    ];
    for how in bad {
        provider.misbehave(how);
        let mut browser = Browser::new();
        let callback = to_provider_and_back(&server, &mut browser).await;
        let res = browser.get(&callback).await;
        assert_eq!(res.status().as_u16(), 403, "{how:?}");
        assert!(browser.session().is_none(), "{how:?}");
    }
    assert_eq!(events(&server, "oidc_refused").await, bad.len() as i64);
    assert_eq!(sessions(&server).await, 0);

    // The same provider, behaving, is accepted: the refusals were the
    // tokens', not the set-up's.
    provider.misbehave(Misbehaviour::None);
    let mut browser = Browser::new();
    let callback = to_provider_and_back(&server, &mut browser).await;
    assert_eq!(browser.get(&callback).await.status().as_u16(), 200);
    assert!(browser.session().is_some());
    server.stop().await;
}

/// The test provider itself: PKCE S256 only, codes single use and bound
/// to the verifier and the redirect URI, clients authenticated.
#[tokio::test]
async fn the_test_provider_checks_pkce_and_codes() {
    use base64::Engine;
    use sha2::{Digest, Sha256};
    let provider = OidcProvider::start(CLIENT_ID, CLIENT_SECRET).await;
    provider.next_subject("sub-123");
    let issuer = provider.issuer_url().to_owned();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let verifier = "a-verifier-of-more-than-forty-three-characters-0123456789";
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(Sha256::digest(verifier.as_bytes()));
    let redirect = "http://127.0.0.1:1/cb";
    let authorize = |method: &str, challenge: &str| {
        format!(
            "{issuer}/authorize?response_type=code&scope=openid&client_id={CLIENT_ID}\
             &redirect_uri={redirect}&state=st&nonce=n&code_challenge={challenge}\
             &code_challenge_method={method}"
        )
    };
    let code_of = |res: &reqwest::Response| {
        let loc = location(res);
        let query = loc.split_once('?').unwrap().1;
        form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "code")
            .map(|(_, v)| v.into_owned())
    };
    let redeem = |code: String, verifier: &'static str, redirect: &'static str| {
        http.post(format!("{issuer}/token"))
            .basic_auth(
                CLIENT_ID,
                Some(form_urlencoded::byte_serialize(CLIENT_SECRET.as_bytes()).collect::<String>()),
            )
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", redirect),
                ("code_verifier", verifier),
            ])
            .send()
    };

    // Anything but S256 is refused at the authorization.
    let res = http.get(authorize("plain", verifier)).send().await.unwrap();
    assert!(location(&res).contains("error=invalid_request"));
    assert_eq!(code_of(&res), None);

    // The wrong verifier: invalid_grant, and the code is used up.
    let res = http
        .get(authorize("S256", &challenge))
        .send()
        .await
        .unwrap();
    let code = code_of(&res).unwrap();
    let res = redeem(
        code.clone(),
        "the-wrong-verifier-0123456789012345678901234",
        redirect,
    )
    .await
    .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );
    let res = redeem(code, verifier, redirect).await.unwrap();
    assert_eq!(res.status().as_u16(), 400);

    // Another redirect URI than the one authorised: invalid_grant.
    let res = http
        .get(authorize("S256", &challenge))
        .send()
        .await
        .unwrap();
    let code = code_of(&res).unwrap();
    let res = redeem(code, verifier, "http://127.0.0.1:1/other")
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);

    // The right verifier: an ID token, once.
    let res = http
        .get(authorize("S256", &challenge))
        .send()
        .await
        .unwrap();
    let code = code_of(&res).unwrap();
    let res = redeem(code.clone(), verifier, redirect).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["id_token"].as_str().unwrap().split('.').count(), 3);
    let res = redeem(code, verifier, redirect).await.unwrap();
    assert_eq!(res.status().as_u16(), 400);

    // A client with the wrong secret (in the form this time).
    let res = http
        .get(authorize("S256", &challenge))
        .send()
        .await
        .unwrap();
    let code = code_of(&res).unwrap();
    let res = http
        .post(format!("{issuer}/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect),
            ("code_verifier", verifier),
            ("client_id", CLIENT_ID),
            ("client_secret", "wrong"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 401);
}
