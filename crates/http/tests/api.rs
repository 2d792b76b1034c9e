//! The HTTP server against the real PostgreSQL and NATS: operations
//! endpoints, read-your-writes, idempotency over HTTP, problem answers for
//! bad input, tenancy, and crypto-shredding seen from every side (tables,
//! JetStream, API answers).

use serde_json::{Value, json};
use sportello_domain::{NetworkId, OrganizationId, PersonId};
use sportello_store::Keyring;

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn operations_endpoints_and_read_your_writes() {
    let s = Server::start().await;
    assert_eq!(
        s.http.get(s.url("/healthz")).send().await.unwrap().status(),
        200
    );
    let token = s.token(NetworkId::new()).await;

    for i in 0..20 {
        let res = s
            .post_person(&token, &person(&format!("Demo Persona {i}")), None)
            .await;
        assert_eq!(res.status(), 201);
        let etag = res.headers()["etag"].to_str().unwrap().to_owned();
        let body: Value = res.json().await.unwrap();
        assert_eq!(etag, "\"1\"");
        let pos = body["position"].as_i64().unwrap();
        let list: Value = s
            .get(
                &format!("/api/v1/activity?min_position={pos}&limit=500"),
                &token,
            )
            .await
            .json()
            .await
            .unwrap();
        let ids: Vec<&str> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["stream_id"].as_str().unwrap())
            .collect();
        assert!(
            ids.contains(&body["person_id"].as_str().unwrap()),
            "the write is read back at once"
        );
        assert_eq!(ids.len(), i + 1);
    }

    let ready = s.http.get(s.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["bus"], "connected");
    let projections = ready["projections"].as_array().unwrap();
    assert!(projections.len() >= 5, "{ready}");
    assert!(projections.iter().all(|p| p["lag"] == 0), "{ready}");

    let metrics = s.metrics().await;
    assert!(
        metrics.contains("sportello_events_appended_total"),
        "{metrics}"
    );
    assert!(metrics.contains("sportello_relay_published_total"));
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn idempotency_keys_over_http() {
    let s = Server::start().await;
    let token = s.token(NetworkId::new()).await;
    let key = uuid::Uuid::new_v4().to_string();
    let first = s.post_person(&token, &person("Demo Uno"), Some(&key)).await;
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = s.post_person(&token, &person("Demo Uno"), Some(&key)).await;
    assert_eq!(again.status(), 201);
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        first,
        "a retry answers what the first answer said"
    );
    let other = s.post_person(&token, &person("Demo Due"), Some(&key)).await;
    let body = problem(other, 422).await;
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with("idempotency-key-reused")
    );
    let bad_key = s
        .post_person(&token, &person("Demo Tre"), Some("not-a-uuid"))
        .await;
    problem(bad_key, 422).await;
    let n = s.event_count().await;
    assert_eq!(n, 1, "only the first request appended");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_input_gets_a_problem_naming_the_field_and_appends_nothing() {
    let s = Server::start().await;
    let token = s.token(NetworkId::new()).await;
    let post_raw = |body: String| {
        s.http
            .post(s.url("/api/v1/persons"))
            .bearer_auth(&token)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    problem(post_raw("{\"names\": [".into()).await.unwrap(), 400).await;
    let wrong_type = problem(
        post_raw(r#"{"names": "Ana", "channel": "desk"}"#.into())
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(wrong_type["errors"][0]["field"], "names");
    let missing = problem(post_raw(r#"{"names": []}"#.into()).await.unwrap(), 422).await;
    assert!(
        missing["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("channel")
    );
    let unknown_channel = problem(
        post_raw(r#"{"names": [], "channel": "fax"}"#.into())
            .await
            .unwrap(),
        422,
    )
    .await;
    assert_eq!(unknown_channel["errors"][0]["field"], "channel");
    let bad_date = json!({ "names": [{ "kind": "as_used", "text": "Demo X" }], "birth_date": "1990-02-30", "channel": "desk" });
    let res = problem(s.post_person(&token, &bad_date, None).await, 422).await;
    assert_eq!(res["errors"][0]["field"], "birth_date");
    let no_names = json!({ "names": [], "channel": "desk" });
    let res = problem(s.post_person(&token, &no_names, None).await, 422).await;
    assert_eq!(res["errors"][0]["field"], "names");
    let huge =
        json!({ "names": [{ "kind": "as_used", "text": "x".repeat(300_000) }], "channel": "desk" });
    problem(s.post_person(&token, &huge, None).await, 413).await;
    let not_json = s
        .http
        .post(s.url("/api/v1/persons"))
        .bearer_auth(&token)
        .body("names=Ana")
        .send()
        .await
        .unwrap();
    // Not JSON at all: a body of a type the route does not take.
    problem(not_json, 415).await;
    // No token, wrong token.
    let anon = s
        .http
        .post(s.url("/api/v1/persons"))
        .json(&person("Demo A"))
        .send()
        .await
        .unwrap();
    problem(anon, 401).await;
    let forged = s.post_person("spt_forged", &person("Demo A"), None).await;
    problem(forged, 401).await;
    // Unknown ids.
    let res = s
        .get(
            &format!("/api/v1/persons/{}/history", PersonId::new()),
            &token,
        )
        .await;
    problem(res, 404).await;
    let res = s.get("/api/v1/persons/not-an-id/history", &token).await;
    problem(res, 404).await;
    let res = s.get("/api/v1/activity?limit=0", &token).await;
    problem(res, 422).await;
    let res = s.get("/api/v1/activity?limit=abc", &token).await;
    assert_eq!(problem(res, 422).await["errors"][0]["field"], "limit");
    let res = s.get("/api/v1/activity?min_position=-1", &token).await;
    problem(res, 422).await;

    let n = s.event_count().await;
    assert_eq!(n, 0, "nothing appended by bad requests");
    s.stop().await;
}

/// Every error under `/api/` is an RFC 9457 problem with a stable type,
/// whoever answers it: an unknown route (GET and POST), a method a route
/// does not take, malformed JSON, a body that is not JSON (with and
/// without details), a path that does not decode, a bad query, a body too
/// large, no token, too many requests, a `HEAD` on a person.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_error_under_the_api_is_a_problem() {
    let s = Server::start_with(|settings, _| settings.api_requests_per_second = 3).await;
    let network = NetworkId::new();
    let token = s.token(network).await;
    let id = uuid::Uuid::now_v7();
    let big = "x".repeat(sportello_http::launch::MAX_BODY + 1);
    let req = |method: &str, path: &str| {
        s.http
            .request(method.parse().unwrap(), s.url(path))
            .bearer_auth(&token)
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "unknown route",
            req("GET", "/api/v1/nothing-here"),
            404,
            "not-found",
        ),
        (
            "unknown route, POST",
            req("POST", "/api/v1/nothing/here").json(&json!({})),
            404,
            "not-found",
        ),
        (
            "unknown version",
            req("GET", "/api/v2/persons"),
            404,
            "not-found",
        ),
        (
            "unknown route, no token",
            s.http.get(s.url("/api/nothing")),
            404,
            "not-found",
        ),
        (
            "wrong method",
            req("DELETE", "/api/v1/persons"),
            405,
            "method-not-allowed",
        ),
        (
            "wrong method on an action",
            req("GET", &format!("/api/v1/referrals/{id}/accept")),
            405,
            "method-not-allowed",
        ),
        (
            "malformed JSON",
            req("POST", "/api/v1/persons")
                .header("content-type", "application/json")
                .body("{\"names\": ["),
            400,
            "bad-request",
        ),
        (
            "wrong JSON shape",
            req("POST", "/api/v1/persons").json(&json!({ "names": "Ana" })),
            422,
            "validation",
        ),
        (
            "not JSON",
            req("POST", "/api/v1/persons")
                .header("content-type", "text/plain")
                .body("names=Ana"),
            415,
            "unsupported-media-type",
        ),
        (
            "no content type",
            req("POST", "/api/v1/persons").body("{}"),
            415,
            "unsupported-media-type",
        ),
        (
            "action details not JSON",
            req("POST", &format!("/api/v1/referrals/{id}/decline"))
                .header("content-type", "text/plain")
                .body("no_capacity"),
            415,
            "unsupported-media-type",
        ),
        (
            "action details untyped",
            req("POST", &format!("/api/v1/referrals/{id}/decline")).body("no_capacity"),
            415,
            "unsupported-media-type",
        ),
        (
            "path that does not decode",
            req("GET", "/api/v1/persons/%FF%FE/history"),
            400,
            "bad-request",
        ),
        (
            "path id not a UUID",
            req("GET", "/api/v1/persons/not-an-id/history"),
            404,
            "not-found",
        ),
        (
            "bad query",
            req("GET", "/api/v1/organizations?limit=many"),
            422,
            "validation",
        ),
        (
            "query out of range",
            req("GET", "/api/v1/organizations?limit=0"),
            422,
            "validation",
        ),
        (
            "body too large",
            req("POST", "/api/v1/persons")
                .header("content-type", "application/json")
                .body(big.clone()),
            413,
            "payload-too-large",
        ),
        (
            "action body too large",
            req("POST", &format!("/api/v1/referrals/{id}/accept")).body(big.clone()),
            413,
            "payload-too-large",
        ),
        (
            "no token",
            s.http.get(s.url("/api/v1/organizations")),
            401,
            "unauthorized",
        ),
        (
            "bad token",
            s.http
                .get(s.url("/api/v1/organizations"))
                .bearer_auth("nope"),
            401,
            "unauthorized",
        ),
    ];
    // Every case is tried, and every one that is not a problem named.
    let mut wrong = Vec::new();
    for (case, request, status, kind) in cases {
        let res = request.send().await.unwrap();
        let got = res.status().as_u16();
        let content_type = res
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let allow = res.headers().contains_key("allow");
        let text = res.text().await.unwrap();
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        let is_problem = got == status
            && content_type.as_deref() == Some("application/problem+json")
            && body["type"] == format!("https://sportello.example/problems/{kind}")
            && body["title"].as_str().is_some_and(|t| !t.is_empty())
            && body["status"] == status
            && body["detail"].is_string()
            // A 405 says what the route takes.
            && (status != 405 || allow);
        if !is_problem {
            wrong.push(format!(
                "{case}: {got} {content_type:?} {text:?} (expected a {status} {kind} problem)"
            ));
        }
    }
    assert!(wrong.is_empty(), "not problems:\n{}", wrong.join("\n"));
    // Too many requests: the account's burst (ten seconds' worth) spent.
    let busy = s.token(network).await;
    let mut limited = None;
    for _ in 0..40 {
        let res = s.get("/api/v1/organizations", &busy).await;
        if res.status() == 429 {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("the rate limit answers 429");
    assert!(res.headers().contains_key("retry-after"));
    let body = problem(res, 429).await;
    assert!(
        body["type"]
            .as_str()
            .unwrap()
            .ends_with("/too-many-requests")
    );
    // HEAD on a person: refused, as a problem (HEAD answers carry no body).
    let res = s
        .http
        .head(s.url(&format!("/api/v1/persons/{id}/card")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    // Outside the API an unknown page is still a plain 404.
    let res = s.http.get(s.url("/no-such-page")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_ne!(
        res.headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap()),
        Some("application/problem+json")
    );
    s.stop().await;
}

/// Weekly hours may leave days out: a day left out is closed. An
/// organisation whose service lists only weekday hours is registered, and
/// reads back closed at the weekend.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hours_that_leave_days_out_leave_them_closed() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let coordinator = s
        .account(network, OrganizationId::new(), "coordinator")
        .await;
    let mut body = provider_body(&s, "Patronato Demo", "patronato", &["labour_dispute"]);
    // Registered only (no agreement, whose dates would meet the clock).
    body["agreement"] = Value::Null;
    body["status"] = Value::Null;
    let morning = json!([{ "open": "09:00", "close": "12:30" }]);
    body["services"][0]["hours"] = json!({
        "monday": morning, "tuesday": morning, "wednesday": morning,
        "thursday": morning, "friday": [{ "open": "09:00", "close": "12:30" },
                                        { "open": "15:00", "close": "17:00" }]
    });
    let w = s
        .post_ok("/api/v1/organizations", &coordinator, &body, 201)
        .await;
    let org = s
        .get_ok(
            &format!(
                "/api/v1/organizations/{}?min_position={}",
                w["id"].as_str().unwrap(),
                w["position"]
            ),
            &coordinator,
        )
        .await;
    let hours = &org["services"][0]["hours"];
    assert_eq!(hours["saturday"], json!([]), "{org}");
    assert_eq!(hours["sunday"], json!([]), "{org}");
    assert_eq!(hours["monday"], morning);
    assert_eq!(hours["friday"][1]["open"], "15:00");
    // Only some days again in a change of the service, and a professional's
    // availability likewise.
    let service = org["services"][0]["service_id"].as_str().unwrap();
    let mut changed = body["services"][0].clone();
    changed["service_id"] = service.into();
    changed["hours"] = json!({ "wednesday": morning });
    let res = s
        .http
        .patch(s.url(&format!(
            "/api/v1/organizations/{}",
            w["id"].as_str().unwrap()
        )))
        .bearer_auth(&coordinator)
        .json(&json!({ "services": [changed] }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    let operator = s
        .account(network, OrganizationId::new(), "desk_operator")
        .await;
    let professional = json!({
        "profile": {
            "roles": ["mediator"], "sectors": ["labour"],
            "languages": [{ "code": "ro", "proficiency": "native" }],
            "modes": ["in_person"], "areas": ["Potenza"], "admitted_on": "2025-01-10"
        },
        "contact": { "name": "Demo Mediatrice", "email": "demo@example.invalid" },
        "availability": { "tuesday": morning }
    });
    let p = s
        .post_ok("/api/v1/professionals", &operator, &professional, 201)
        .await;
    let entry = s
        .get_ok(
            &format!(
                "/api/v1/professionals/{}?min_position={}",
                p["id"].as_str().unwrap(),
                p["position"]
            ),
            &operator,
        )
        .await;
    assert_eq!(entry["availability"]["tuesday"], morning, "{entry}");
    assert_eq!(entry["availability"]["monday"], json!([]), "{entry}");
    // A day misspelt is refused, naming where, never taken as closed.
    let mut misspelt = professional.clone();
    misspelt["availability"] = json!({ "Tuesday": morning });
    let res = s
        .post_with("/api/v1/professionals", &operator, Some(&misspelt), &[])
        .await;
    let p = problem(res, 422).await;
    assert!(p.to_string().contains("Tuesday"), "{p}");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn networks_never_see_each_other_over_http() {
    let s = Server::start().await;
    let (a, b) = (
        s.token(NetworkId::new()).await,
        s.token(NetworkId::new()).await,
    );
    let res: Value = s
        .post_person(&a, &person("Demo Rete A"), None)
        .await
        .json()
        .await
        .unwrap();
    let id = res["person_id"].as_str().unwrap();
    let pos = res["position"].as_i64().unwrap();
    let own = s.get(&format!("/api/v1/persons/{id}/history"), &a).await;
    assert_eq!(own.status(), 200);
    let foreign = s.get(&format!("/api/v1/persons/{id}/history"), &b).await;
    problem(foreign, 404).await;
    let list: Value = s
        .get(&format!("/api/v1/activity?min_position={pos}"), &b)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["items"], json!([]), "B's activity holds nothing of A");
    s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn after_crypto_shredding_no_personal_value_is_found_anywhere() {
    let s = Server::start().await;
    let network = NetworkId::new();
    let token = s.token(network).await;
    let name = "Demo Zyxqvorth Plimbaxtel";
    let birth = "1937-11-05";
    let body = json!({ "names": [{ "kind": "as_in_document", "text": name }], "birth_date": birth, "channel": "outreach" });
    let created: Value = s
        .post_person(&token, &body, None)
        .await
        .json()
        .await
        .unwrap();
    let id = created["person_id"].as_str().unwrap().to_owned();
    let pos = created["position"].as_i64().unwrap();
    let history_url = s.url(&format!("/api/v1/persons/{id}/history"));

    // Before: the API shows the data to the desk; tables and bus hold it sealed.
    let before = s
        .http
        .get(&history_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        before.contains(name) && before.contains(birth),
        "the check can see the values: {before}"
    );
    // Wait until the relay has published it.
    let mut stream = relayed(&s, 1).await;
    let _ = pos;

    let keyring = Keyring::new(s.settings.master_key.clone().unwrap());
    let person = PersonId(id.parse().unwrap());
    assert!(keyring.shred(&s.db.pool, network, person).await.unwrap());

    let needles = [
        name.to_owned(),
        birth.to_owned(),
        hex(name),
        hex(birth),
        "Zyxqvorth".to_owned(),
    ];
    let tables = all_table_text(&s.db.pool).await;
    assert!(
        tables.contains(&id),
        "the scan sees the tables (the person id is there)"
    );
    for n in &needles {
        assert!(!tables.contains(n.as_str()), "found {n:?} in a table");
    }
    for raw in raw_messages(&mut stream).await {
        for n in &needles {
            assert!(!raw.contains(n.as_str()), "found {n:?} on the bus");
        }
    }
    let after = s
        .http
        .get(&history_url)
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(after.status(), 200, "the case's public part remains");
    let after = after.text().await.unwrap();
    assert!(after.contains("\"erased\""), "{after}");
    let activity = s
        .get("/api/v1/activity", &token)
        .await
        .text()
        .await
        .unwrap();
    for n in &needles {
        assert!(
            !after.contains(n.as_str()) && !activity.contains(n.as_str()),
            "found {n:?} in an answer"
        );
    }
    // And no new personal data can be written for an erased person: the
    // statistics-only public part stays countable.
    let (cases,): (i64,) = sqlx::query_as("SELECT count(*) FROM events WHERE stream_kind = 'case'")
        .fetch_one(&s.db.pool)
        .await
        .unwrap();
    assert_eq!(cases, 1);
    s.stop().await;
}

/// The OpenAPI document is served, describes every API route the router
/// has, and the interactive page loads nothing from the internet.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn openapi_document_and_offline_docs_page() {
    let s = Server::start().await;
    let res = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
    for (path, method) in [
        ("/api/v1/persons", "post"),
        ("/api/v1/persons/search", "post"),
        ("/api/v1/persons/{id}/card", "get"),
        ("/api/v1/persons/{id}/history", "get"),
        ("/api/v1/persons/{id}/visits", "post"),
        ("/api/v1/persons/{id}/needs", "post"),
        ("/api/v1/persons/{id}/needs/{nid}/resolve", "post"),
        ("/api/v1/persons/{id}/needs/{nid}/matches", "get"),
        ("/api/v1/persons/{id}/close", "post"),
        ("/api/v1/persons/{id}/reopen", "post"),
        ("/api/v1/referrals", "post"),
        ("/api/v1/referrals/{id}/{action}", "post"),
        ("/api/v1/organizations", "get"),
        ("/api/v1/organizations", "post"),
        ("/api/v1/organizations/{id}", "get"),
        ("/api/v1/organizations/{id}", "patch"),
        ("/api/v1/organizations/{id}/inbox", "get"),
        ("/api/v1/reports/bottlenecks", "get"),
        ("/api/v1/activity", "get"),
        ("/healthz", "get"),
        ("/readyz", "get"),
        ("/metrics", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} documented"
        );
    }
    assert!(doc["components"]["schemas"]["TakeInCharge"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let page = s.http.get(s.url("/api/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger"), "{html}");
    for line in html
        .lines()
        .filter(|l| l.contains("src=") || l.contains("href="))
    {
        assert!(
            !line.contains("http://") && !line.contains("https://"),
            "loads from the internet: {line}"
        );
    }
    s.stop().await;
}
