//! Signing in and being refused, tried as an attacker would, against a
//! real server: wrong passwords in a loop, too many attempts from one
//! address, forged, expired and revoked tokens, forms and API writes
//! without their CSRF token, a session cookie replayed after logout —
//! each refused with its status and recorded. Also: security headers,
//! accounts and tokens made by an administrator, and the read audit.

use serde_json::{Value, json};
use sportello_domain::{AccountId, NetworkId, OrganizationId};
use sportello_http::auth::{accounts, create_account, issue_token};

mod common;
use common::*;

/// A client that shows redirects instead of following them.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The value a `Set-Cookie` of the answer gives `name`.
fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// The value of the hidden `csrf` field of a page.
fn csrf_field(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_owned()
}

/// An account with a login and password, in a new network.
async fn person_with_login(s: &Server, role: &str, login: &str, password: &str) -> AccountId {
    let account = AccountId::new();
    create_account(
        &s.db.pool,
        account,
        NetworkId::new(),
        OrganizationId::new(),
        role,
        "Demo Operatrice",
    )
    .await
    .unwrap();
    accounts::set_login(&s.db.pool, account, login, password)
        .await
        .unwrap();
    account
}

/// The sign-in form's CSRF token and cookie.
async fn login_form(s: &Server, b: &reqwest::Client) -> (String, String) {
    let res = b.get(s.url("/login")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cookie = set_cookie(&res, "__Host-sportello_login_csrf").expect("a CSRF cookie");
    let html = res.text().await.unwrap();
    (csrf_field(&html), cookie)
}

/// Post the sign-in form.
async fn try_login(
    s: &Server,
    b: &reqwest::Client,
    login: &str,
    password: &str,
) -> reqwest::Response {
    let (csrf, cookie) = login_form(s, b).await;
    b.post(s.url("/login"))
        .header("cookie", format!("__Host-sportello_login_csrf={cookie}"))
        .form(&[("login", login), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

/// Kinds recorded in `auth_events`, oldest first (for one account, or for
/// none known).
async fn recorded(s: &Server, account: Option<AccountId>) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT kind FROM auth_events WHERE account_id IS NOT DISTINCT FROM $1 ORDER BY id",
    )
    .bind(account.map(|a| a.0))
    .fetch_all(&s.db.pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn wrong_passwords_in_a_loop_lock_the_account() {
    let s = Server::start().await;
    let b = browser();
    let account = person_with_login(
        &s,
        "desk_operator",
        "operatrice.demo",
        "correct horse battery",
    )
    .await;

    // Four wrong passwords: refused, counted.
    for _ in 0..4 {
        let res = try_login(&s, &b, "operatrice.demo", "wrong horse battery").await;
        assert_eq!(res.status(), 401);
        assert!(set_cookie(&res, "__Host-sportello_session").is_none());
    }
    // The fifth locks the account; now even the right password is refused,
    // with the same answer (an attacker learns nothing).
    let fifth = try_login(&s, &b, "operatrice.demo", "wrong horse battery").await;
    assert_eq!(fifth.status(), 401);
    let wrong_page = fifth.text().await.unwrap();
    let res = try_login(&s, &b, "OPERATRICE.demo", "correct horse battery").await;
    assert_eq!(res.status(), 401);
    assert!(set_cookie(&res, "__Host-sportello_session").is_none());
    assert_eq!(res.text().await.unwrap().len(), wrong_page.len());
    // An unknown login answers the same.
    let res = try_login(&s, &b, "nobody.here", "correct horse battery").await;
    assert_eq!(res.status(), 401);

    assert_eq!(
        recorded(&s, Some(account)).await,
        [
            "login_failed",
            "login_failed",
            "login_failed",
            "login_failed",
            "account_locked",
            "locked_out"
        ]
    );
    assert_eq!(recorded(&s, None).await, ["login_failed"]);

    // Once the lock has run out, the right password works and clears the count.
    sqlx::query(
        "UPDATE accounts SET locked_until = now() - interval '1 second' WHERE account_id = $1",
    )
    .bind(account.0)
    .execute(&s.db.pool)
    .await
    .unwrap();
    let res = try_login(&s, &b, "operatrice.demo", "correct horse battery").await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/");
    let failed: i32 =
        sqlx::query_scalar("SELECT failed_logins FROM accounts WHERE account_id = $1")
            .bind(account.0)
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert_eq!(failed, 0);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn too_many_attempts_from_one_address_are_slowed_down() {
    let s = Server::start().await;
    let b = browser();
    // The default: ten attempts a minute per address, one more every six
    // seconds. However slow this machine, the refusal comes before a
    // client can guess more than that.
    let started = std::time::Instant::now();
    let mut answered = 0;
    let res = loop {
        let res = try_login(&s, &b, &format!("guess{answered}"), "some password here").await;
        if res.status() == 429 {
            break res;
        }
        assert_eq!(res.status(), 401);
        answered += 1;
        let allowed = 10 + started.elapsed().as_secs() / 6 + 1;
        assert!(
            answered <= allowed,
            "{answered} attempts answered in {:?}",
            started.elapsed()
        );
    };
    assert!(answered >= 10, "only {answered} attempts before the limit");
    let wait: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(recorded(&s, None).await.last().unwrap(), "rate_limited");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forms_and_writes_without_their_csrf_token_are_refused() {
    let s = Server::start().await;
    let b = browser();
    let account = person_with_login(&s, "desk_operator", "op.csrf", "correct horse battery").await;

    // A sign-in form posted from elsewhere: no CSRF cookie, or a field
    // that does not match it.
    let res = b
        .post(s.url("/login"))
        .form(&[
            ("login", "op.csrf"),
            ("password", "correct horse battery"),
            ("csrf", "x"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (_, cookie) = login_form(&s, &b).await;
    let res = b
        .post(s.url("/login"))
        .header("cookie", format!("__Host-sportello_login_csrf={cookie}"))
        .form(&[
            ("login", "op.csrf"),
            ("password", "correct horse battery"),
            ("csrf", "forged"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(set_cookie(&res, "__Host-sportello_session").is_none());

    // Signed in: an API write with the session but without the token is
    // refused and appends nothing; with it, it goes through.
    let res = try_login(&s, &b, "op.csrf", "correct horse battery").await;
    assert_eq!(res.status(), 303);
    let session = set_cookie(&res, "__Host-sportello_session").unwrap();
    let cookie = format!("__Host-sportello_session={session}");
    let me: Value = b
        .get(s.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let csrf = me["csrf_token"].as_str().unwrap().to_owned();
    let before = s.event_count().await;
    let res = b
        .post(s.url("/api/v1/persons"))
        .header("cookie", &cookie)
        .json(&person("Demo Senzatoken"))
        .send()
        .await
        .unwrap();
    let body = problem(res, 403).await;
    assert!(body["type"].as_str().unwrap().ends_with("/csrf"), "{body}");
    let res = b
        .post(s.url("/api/v1/persons"))
        .header("cookie", &cookie)
        .header("x-csrf-token", "not-the-token")
        .json(&person("Demo Senzatoken"))
        .send()
        .await
        .unwrap();
    problem(res, 403).await;
    assert_eq!(s.event_count().await, before);
    let res = b
        .post(s.url("/api/v1/persons"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&person("Demo Contoken"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);

    // Logging out without the token is refused too: the session lives on.
    let res = b
        .post(s.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = b
        .get(s.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let kinds = recorded(&s, Some(account)).await;
    assert_eq!(
        kinds,
        [
            "login_succeeded",
            "csrf_refused",
            "csrf_refused",
            "csrf_refused"
        ]
    );
    assert_eq!(recorded(&s, None).await, ["csrf_refused", "csrf_refused"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_cookie_replayed_after_logout_is_refused() {
    let s = Server::start().await;
    let b = browser();
    let account = person_with_login(&s, "partner", "partner.demo", "correct horse battery").await;
    let res = try_login(&s, &b, "partner.demo", "correct horse battery").await;
    assert_eq!(res.status(), 303);
    let set = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with("__Host-sportello_session="))
        .unwrap();
    for flag in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
        assert!(set.contains(flag), "{set}");
    }
    let cookie = format!(
        "__Host-sportello_session={}",
        set_cookie(&res, "__Host-sportello_session").unwrap()
    );

    // The home page shows who is signed in and carries the sign-out form.
    let home = b
        .get(s.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(home.status(), 200);
    let html = home.text().await.unwrap();
    assert!(html.contains("partner"), "{html}");
    let csrf = csrf_field(&html);

    let res = b
        .post(s.url("/logout"))
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert!(set_cookie(&res, "__Host-sportello_session").is_some_and(|v| v.is_empty()));

    // Replayed: refused on the API and on the pages.
    let res = b
        .get(s.url("/api/v1/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    problem(res, 401).await;
    let res = b
        .get(s.url("/"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login");
    assert_eq!(
        recorded(&s, Some(account)).await,
        ["login_succeeded", "logged_out"]
    );
    assert_eq!(recorded(&s, None).await, ["session_refused"]);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forged_expired_and_revoked_tokens_are_refused() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let admin = s.account(network, desk, "admin").await;
    let expired_account = AccountId::new();
    create_account(
        &s.db.pool,
        expired_account,
        network,
        desk,
        "desk_operator",
        "t",
    )
    .await
    .unwrap();
    let expired = issue_token(&s.db.pool, expired_account, time::Duration::seconds(-1))
        .await
        .unwrap();
    for (what, header) in [
        (
            "forged",
            "Bearer spt_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ),
        ("expired", format!("Bearer {expired}")),
        ("not bearer", format!("Basic {expired}")),
        ("empty", "Bearer ".to_owned()),
    ] {
        let res = s
            .http
            .get(s.url("/api/v1/me"))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()["www-authenticate"], "Bearer", "{what}");
        problem(res, 401).await;
    }
    assert_eq!(recorded(&s, None).await, ["token_refused"; 4]);

    // An administrator issues a token for a partner system, then revokes
    // it: it stops working at once.
    let partner: Value = s
        .post_ok(
            "/api/v1/accounts",
            &admin,
            &json!({ "label": "Sistema ASL", "role": "partner", "organization_id": desk.0 }),
            201,
        )
        .await;
    let partner_id = partner["account_id"].as_str().unwrap();
    let issued = s
        .post_ok(
            &format!("/api/v1/accounts/{partner_id}/tokens"),
            &admin,
            &json!({ "label": "integrazione", "valid_days": 30 }),
            201,
        )
        .await;
    let token = issued["token"].as_str().unwrap();
    assert!(token.starts_with("spt_"));
    s.get_ok("/api/v1/me", token).await;
    let stored: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM api_tokens WHERE token_id = $1 AND position($2::bytea IN token_hash) = 0",
    )
    .bind(issued["token_id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap())
    .bind(token.as_bytes())
    .fetch_one(&s.db.pool)
    .await
    .unwrap();
    assert_eq!(stored, 1, "the token is stored, but only as a hash");
    let revoke = format!(
        "/api/v1/tokens/{}/revoke",
        issued["token_id"].as_str().unwrap()
    );
    let res = s.post_with(&revoke, &admin, None, &[]).await;
    assert_eq!(res.status(), 204);
    problem(s.get("/api/v1/me", token).await, 401).await;
    // Revoked twice: there is no such live token.
    let res = s.post_with(&revoke, &admin, None, &[]).await;
    problem(res, 404).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_an_administrator_makes_accounts_and_weak_passwords_are_refused() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let admin = s.account(network, desk, "admin").await;
    let operator = s.account(network, desk, "desk_operator").await;
    let body = json!({ "label": "Demo Nuova", "role": "desk_supervisor", "organization_id": desk.0,
                       "login": "nuova.demo", "password": "short" });
    problem(
        s.post_with("/api/v1/accounts", &operator, Some(&body), &[])
            .await,
        403,
    )
    .await;
    let res = s
        .post_with("/api/v1/accounts", &admin, Some(&body), &[])
        .await;
    let p = problem(res, 422).await;
    assert_eq!(p["errors"][0]["field"], "password", "{p}");
    let p = problem(
        s.post_with(
            "/api/v1/accounts",
            &admin,
            Some(&json!({ "label": "x", "role": "root", "organization_id": uuid::Uuid::now_v7() })),
            &[],
        )
        .await,
        422,
    )
    .await;
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["role", "organization_id"]);

    let ok = json!({ "label": "Demo Nuova", "role": "desk_supervisor", "organization_id": desk.0,
                     "login": "nuova.demo", "password": "a long enough phrase" });
    s.post_ok("/api/v1/accounts", &admin, &ok, 201).await;
    problem(
        s.post_with("/api/v1/accounts", &admin, Some(&ok), &[])
            .await,
        409,
    )
    .await;
    let stored: String =
        sqlx::query_scalar("SELECT password_hash FROM accounts WHERE login = 'nuova.demo'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert!(stored.starts_with("$argon2id$"), "{stored}");
    let res = try_login(&s, &browser(), "nuova.demo", "a long enough phrase").await;
    assert_eq!(res.status(), 303);
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_answer_carries_the_security_headers() {
    let s = Server::start().await;
    let token = s.token(NetworkId::new()).await;
    for (path, auth) in [
        ("/login", false),
        ("/api/v1/me", true),
        ("/healthz", false),
        ("/api/v1/nope", true),
    ] {
        let mut req = s.http.get(s.url(path));
        if auth {
            req = req.bearer_auth(&token);
        }
        let res = req.send().await.unwrap();
        let h = res.headers();
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'"),
            "{path}: {csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        // Not behind TLS in this test: no HSTS.
        assert!(!h.contains_key("strict-transport-security"), "{path}");
    }
    // HEAD on a person's route would record a read and send nothing.
    let res = s
        .http
        .head(s.url(&format!("/api/v1/persons/{}/card", uuid::Uuid::now_v7())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    // Too large a body: refused before anything is read into memory.

    let big = "x".repeat(sportello_http::launch::MAX_BODY + 1);
    let res = s
        .http
        .post(s.url("/api/v1/persons"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(big)
        .send()
        .await
        .unwrap();
    problem(res, 413).await;
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_read_of_a_person_is_audited_and_told_to_them() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    let supervisor = s.account(network, desk, "desk_supervisor").await;
    let admin = s.account(network, desk, "admin").await;
    let created = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &person("Demo Letta Dariga"),
            201,
        )
        .await;
    let id = created["person_id"].as_str().unwrap().to_owned();
    let pos = created["position"].as_i64().unwrap();

    s.get_ok(
        &format!("/api/v1/persons/{id}/card?min_position={pos}"),
        &operator,
    )
    .await;
    s.get_ok(&format!("/api/v1/persons/{id}/history"), &operator)
        .await;
    // Only a supervisor hands a person their data; the admin reads the
    // audit but no person.
    problem(
        s.get(&format!("/api/v1/persons/{id}/export"), &operator)
            .await,
        403,
    )
    .await;
    problem(
        s.get(&format!("/api/v1/persons/{id}/card"), &admin).await,
        403,
    )
    .await;
    let export = s
        .get_ok(&format!("/api/v1/persons/{id}/export"), &supervisor)
        .await;
    assert_eq!(
        export["card"]["identity"]["data"]["names"][0]["text"],
        "Demo Letta Dariga"
    );
    assert_eq!(export["events"][0]["event_type"], "PersonTakenInCharge");
    let seen: Vec<(&str, &str)> = export["seen_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["what"].as_str().unwrap(), r["purpose"].as_str().unwrap()))
        .collect();
    assert_eq!(
        seen,
        [
            ("export", "subject_access"),
            ("history", "case_work"),
            ("card", "case_work")
        ]
    );
    let html = s
        .get(
            &format!("/api/v1/persons/{id}/export?format=html"),
            &supervisor,
        )
        .await;
    assert_eq!(html.status(), 200);
    assert!(
        html.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = html.text().await.unwrap();
    assert!(html.contains("Demo Letta Dariga") && html.contains("Who has read your data"));

    // The administrator's view: every read, newest first, by person.
    let audit = s
        .get_ok(&format!("/api/v1/audit/reads?person_id={id}"), &admin)
        .await;
    let whats: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats, ["export", "export", "history", "card"]);
    problem(s.get("/api/v1/audit/reads", &supervisor).await, 403).await;
    // Paged.
    let first = s
        .get_ok(
            &format!("/api/v1/audit/reads?person_id={id}&limit=3"),
            &admin,
        )
        .await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let rest = s
        .get_ok(
            &format!("/api/v1/audit/reads?person_id={id}&limit=3&cursor={cursor}"),
            &admin,
        )
        .await;
    assert_eq!(rest["items"].as_array().unwrap().len(), 1);

    // Append-only: the database refuses to change or delete a read.
    assert!(
        sqlx::query("DELETE FROM read_audit")
            .execute(&s.db.pool)
            .await
            .is_err()
    );
    assert!(
        sqlx::query("UPDATE read_audit SET purpose = 'x'")
            .execute(&s.db.pool)
            .await
            .is_err()
    );
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_disabled_account_is_out_at_once_and_tokens_go_to_partner_systems_only() {
    let s = Server::start().await;
    let b = browser();
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let admin = s.account(network, desk, "admin").await;
    // A desk account with a password, signed in, with a session.
    let created = s
        .post_ok(
            "/api/v1/accounts",
            &admin,
            &json!({ "label": "Demo Uscente", "role": "desk_operator", "organization_id": desk.0,
                     "login": "uscente.demo", "password": "a long enough phrase" }),
            201,
        )
        .await;
    let leaver = created["account_id"].as_str().unwrap().to_owned();
    // No token for a desk account: an administrator would read people as
    // someone else.
    let p = problem(
        s.post_with(
            &format!("/api/v1/accounts/{leaver}/tokens"),
            &admin,
            Some(&json!({ "label": "x", "valid_days": 1 })),
            &[],
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["field"], "account", "{p}");
    let res = try_login(&s, &b, "uscente.demo", "a long enough phrase").await;
    assert_eq!(res.status(), 303);
    let cookie = format!(
        "__Host-sportello_session={}",
        set_cookie(&res, "__Host-sportello_session").unwrap()
    );
    assert_eq!(
        b.get(s.url("/api/v1/me"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    // A partner system's token, issued and recorded with its issuer.
    let system = s
        .post_ok(
            "/api/v1/accounts",
            &admin,
            &json!({ "label": "Sistema", "role": "partner", "organization_id": desk.0 }),
            201,
        )
        .await;
    let system = system["account_id"].as_str().unwrap().to_owned();
    let issued = s
        .post_ok(
            &format!("/api/v1/accounts/{system}/tokens"),
            &admin,
            &json!({ "label": "integrazione", "valid_days": 7 }),
            201,
        )
        .await;
    let token = issued["token"].as_str().unwrap().to_owned();
    s.get_ok("/api/v1/me", &token).await;

    // Both leave: session, password and token stop working at once.
    for who in [&leaver, &system] {
        let res = s
            .post_with(
                &format!("/api/v1/accounts/{who}/disable"),
                &admin,
                None,
                &[],
            )
            .await;
        assert_eq!(res.status(), 204);
    }
    problem(
        b.get(s.url("/api/v1/me"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap(),
        401,
    )
    .await;
    problem(s.get("/api/v1/me", &token).await, 401).await;
    assert_eq!(
        try_login(&s, &b, "uscente.demo", "a long enough phrase")
            .await
            .status(),
        401
    );
    // Disabled twice: no such live account.
    let res = s
        .post_with(
            &format!("/api/v1/accounts/{leaver}/disable"),
            &admin,
            None,
            &[],
        )
        .await;
    problem(res, 404).await;
    let leaver_id = AccountId(leaver.parse().unwrap());
    let kinds = recorded(&s, Some(leaver_id)).await;
    // (The refused sign-in after disabling names no account: to the
    // sign-in, a disabled login is as unknown as any.)
    assert_eq!(
        kinds,
        ["account_created", "login_succeeded", "account_disabled"]
    );
    let issued_by: Option<uuid::Uuid> =
        sqlx::query_scalar("SELECT issued_by FROM api_tokens WHERE token_id = $1")
            .bind(
                issued["token_id"]
                    .as_str()
                    .unwrap()
                    .parse::<uuid::Uuid>()
                    .unwrap(),
            )
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert!(issued_by.is_some());
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_past_card_is_shown_to_a_partner_as_todays_consent_allows() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    let asl = provider(
        &s,
        &operator,
        "Demo ASL",
        "health_authority",
        &["health_stp_code"],
    )
    .await;
    let partner = s
        .account(network, OrganizationId(asl.0.parse().unwrap()), "partner")
        .await;
    let r = s.referred(&operator, "Demo Ritirata Consenso", &asl).await;
    let (pid, consent) = (r.person, r.consent);
    let card = s
        .get_ok(
            &format!("/api/v1/persons/{pid}/card?min_position={}", r.position),
            &partner,
        )
        .await;
    assert_eq!(
        card["identity"]["data"]["names"][0]["text"],
        "Demo Ritirata Consenso"
    );
    let before = s
        .now()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    s.post_ok(
        &format!("/api/v1/persons/{pid}/consents/{consent}/withdraw"),
        &operator,
        &json!({ "withdrawn_on": s.day(0) }),
        200,
    )
    .await;
    // Today, and as the card was before the withdrawal: no name.
    for query in [String::new(), format!("?as_of={before}")] {
        let card = s
            .get_ok(&format!("/api/v1/persons/{pid}/card{query}"), &partner)
            .await;
        assert!(
            card["identity"]["data"].get("names").is_none(),
            "{query}: {card}"
        );
    }
    // The desk still sees the past card whole.
    let card = s
        .get_ok(
            &format!("/api/v1/persons/{pid}/card?as_of={before}"),
            &operator,
        )
        .await;
    assert_eq!(
        card["identity"]["data"]["names"][0]["text"],
        "Demo Ritirata Consenso"
    );
    s.stop().await;
}
