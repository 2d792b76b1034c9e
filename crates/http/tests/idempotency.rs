//! Retries with one `Idempotency-Key` over a real server: every answer is
//! the first answer — status, `ETag`, `Location` and body, byte for byte —
//! whether the retry races the first request or comes after it, and only
//! the first appends.
//!
//! To make retries race the first request for sure, the test holds every
//! append back (a lock on the events table) until all of them are in the
//! write path, and only then lets the first commit. The answers depend on
//! time (deadlines counted from the moment of the request, an offer's
//! expiry) or on what happened since (duplicates, an offer declined), so an
//! answer rendered again by a retry differs from the first.

use serde_json::{Value, json};
use sportello_domain::{NetworkId, OrganizationId};
use sportello_http::clock::Clock;
use std::time::{Duration as StdDuration, Instant};
use time::{Duration, OffsetDateTime};

mod common;
use common::*;

/// One answer as sent.
#[derive(Debug, PartialEq, Eq)]
struct Sent {
    status: u16,
    etag: Option<String>,
    location: Option<String>,
    content_type: Option<String>,
    body: String,
}

/// A server whose pool has room for many requests held in the write path
/// at once.
async fn server(tweak: impl FnOnce(&mut sportello_http::Settings)) -> Server {
    Server::start_with(|settings, _| {
        settings.db_max_connections = 30;
        tweak(settings);
    })
    .await
}

/// POST `body` to `path` with `key` in a task of its own.
fn spawn_post(
    s: &Server,
    path: &str,
    token: &str,
    body: &Value,
    key: &str,
) -> tokio::task::JoinHandle<Sent> {
    let req = s
        .http
        .post(s.url(path))
        .bearer_auth(token)
        .header("Idempotency-Key", key)
        .json(body);
    tokio::spawn(async move {
        let res = req.send().await.unwrap();
        let header = |name: &str| {
            res.headers()
                .get(name)
                .map(|v| v.to_str().unwrap().to_owned())
        };
        let (etag, location, content_type) =
            (header("etag"), header("location"), header("content-type"));
        Sent {
            status: res.status().as_u16(),
            etag,
            location,
            content_type,
            body: res.text().await.unwrap(),
        }
    })
}

/// How many of the server's database sessions wait on a lock (a table or
/// another transaction; advisory locks of the workers aside).
async fn lock_waiters(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_stat_activity
          WHERE datname = current_database() AND wait_event_type = 'Lock'
            AND wait_event IN ('relation', 'transactionid', 'tuple')",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

async fn until_waiting(pool: &sqlx::PgPool, n: i64) {
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let waiting = lock_waiters(pool).await;
        if waiting >= n {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{waiting} of {n} requests reached the write path"
        );
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
}

/// Send the same request with `key` ten times at once: the first, then —
/// once it is held in the write path and `between` has run — nine retries.
/// No append can commit until all ten are in the write path (the events
/// table is locked meanwhile). Then a retry after them all. Returns the
/// eleven answers, the first first.
async fn ten_at_once_and_one_later(
    s: &Server,
    path: &str,
    token: &str,
    body: &Value,
    key: &str,
    between: impl AsyncFnOnce(),
) -> Vec<Sent> {
    let key = key.to_owned();
    let mut hold = s.db.pool.begin().await.unwrap();
    sqlx::query("LOCK TABLE events IN SHARE MODE")
        .execute(&mut *hold)
        .await
        .unwrap();
    let first = spawn_post(s, path, token, body, &key);
    until_waiting(&s.db.pool, 1).await;
    between().await;
    let retries: Vec<_> = (0..9)
        .map(|_| spawn_post(s, path, token, body, &key))
        .collect();
    until_waiting(&s.db.pool, 10).await;
    hold.rollback().await.unwrap();
    let mut answers = vec![first.await.unwrap()];
    for r in retries {
        answers.push(r.await.unwrap());
    }
    answers.push(spawn_post(s, path, token, body, &key).await.unwrap());
    answers
}

/// Every answer is the first, byte for byte.
fn all_the_first(answers: &[Sent], status: u16) {
    let first = &answers[0];
    assert_eq!(first.status, status, "{}", first.body);
    assert!(first.etag.is_some(), "{first:?}");
    assert_eq!(first.content_type.as_deref(), Some("application/json"));
    for (i, a) in answers.iter().enumerate() {
        assert_eq!(a, first, "answer {i} is not the first answer");
    }
}

async fn count(s: &Server, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(&s.db.pool)
        .await
        .unwrap()
}

/// An active provider with one health service and an agreement in force
/// today by the server's clock: its id and service.
async fn provider_now(s: &Server, token: &str, name: &str) -> (String, String) {
    let body = provider_body(s, name, "health_authority", &["health_stp_code"]);
    let w = s.post_ok("/api/v1/organizations", token, &body, 201).await;
    let id = w["id"].as_str().unwrap().to_owned();
    let org = s
        .get_ok(
            &format!("/api/v1/organizations/{id}?min_position={}", w["position"]),
            token,
        )
        .await;
    let service = org["services"][0]["service_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (id, service)
}

/// The case: ten parallel retries of one referral, whose answer
/// carries deadlines counted from the moment of the request. One
/// `ReferralSent`, and ten answers (and a later one) that are the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_retries_of_a_referral_answer_the_first_answer() {
    let s = server(|_| {}).await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    let coordinator = s.account(network, desk, "coordinator").await;
    let (org, service) = provider_now(&s, &coordinator, "ASL Demo").await;
    let (person, need, _) = s.person_with_need(&operator, "Demo Idem Uno").await;
    let body = json!({ "person_id": person, "need_id": need,
                       "organization_id": org, "service_id": service });
    let key = uuid::Uuid::new_v4().to_string();
    let answers = ten_at_once_and_one_later(
        &s,
        "/api/v1/referrals",
        &operator,
        &body,
        &key,
        async || {
            // The retries come a moment later: deadlines rendered again
            // would be later too.
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        },
    )
    .await;
    all_the_first(&answers, 201);
    let first: Value = serde_json::from_str(&answers[0].body).unwrap();
    assert!(first["acknowledge_by"].is_string(), "{first}");
    assert!(
        answers[0]
            .location
            .as_deref()
            .unwrap()
            .ends_with(first["referral_id"].as_str().unwrap())
    );
    assert_eq!(count(&s, "ReferralSent").await, 1);
    // The answer is what was stored.
    let stored: String = sqlx::query_scalar(
        "SELECT payload->>'acknowledge_by' FROM events WHERE event_type = 'ReferralSent'",
    )
    .fetch_one(&s.db.pool)
    .await
    .unwrap();
    let rfc3339 = &time::format_description::well_known::Rfc3339;
    assert_eq!(
        OffsetDateTime::parse(&stored, rfc3339).unwrap(),
        OffsetDateTime::parse(first["acknowledge_by"].as_str().unwrap(), rfc3339).unwrap()
    );
    // The first answer is given back only to whoever had it: another
    // operator sending the same key and body is told the key is taken.
    let colleague = s.account(network, desk, "desk_operator").await;
    let res = s
        .post_with(
            "/api/v1/referrals",
            &colleague,
            Some(&body),
            &[("idempotency-key", &key)],
        )
        .await;
    problem(res, 422).await;
    assert_eq!(count(&s, "ReferralSent").await, 1);
    s.stop().await;
}

/// A redirection sends a new referral (deadlines from the moment of the
/// request) and marks the old one: ten parallel retries are all the first
/// answer — never a refusal because the first already marked the old
/// referral — and one redirection is recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn parallel_retries_of_a_redirection_answer_the_first_answer() {
    let s = server(|_| {}).await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    let coordinator = s.account(network, desk, "coordinator").await;
    let (asl, asl_service) = provider_now(&s, &coordinator, "ASL Demo").await;
    let (other, other_service) = provider_now(&s, &coordinator, "Poliambulatorio Demo").await;
    let (person, need, _) = s.person_with_need(&operator, "Demo Idem Due").await;
    let sent = s
        .post_ok(
            "/api/v1/referrals",
            &operator,
            &json!({ "person_id": person, "need_id": need,
                     "organization_id": asl, "service_id": asl_service }),
            201,
        )
        .await;
    let referral = sent["referral_id"].as_str().unwrap();
    let staff = s
        .account(network, OrganizationId(asl.parse().unwrap()), "partner")
        .await;
    s.post_ok(
        &format!("/api/v1/referrals/{referral}/decline"),
        &staff,
        &json!({ "reason": "no_capacity" }),
        200,
    )
    .await;
    let body = json!({ "organization_id": other, "service_id": other_service });
    let path = format!("/api/v1/referrals/{referral}/redirect");
    let key = uuid::Uuid::new_v4().to_string();
    let answers = ten_at_once_and_one_later(&s, &path, &operator, &body, &key, async || {
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    })
    .await;
    all_the_first(&answers, 201);
    let first: Value = serde_json::from_str(&answers[0].body).unwrap();
    assert_eq!(first["redirected_from"], referral);
    assert_eq!(count(&s, "ReferralRedirected").await, 1);
    assert_eq!(count(&s, "ReferralSent").await, 2);
    s.stop().await;
}

/// Taking a person in charge answers likely duplicates: a retry after
/// someone alike was taken in charge still answers the first answer, as
/// do ten parallel retries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_of_taking_in_charge_answer_the_first_duplicates() {
    let s = server(|_| {}).await;
    let token = s.token(NetworkId::new()).await;
    let body = person("Demo Idem Ruggiero");
    let key = uuid::Uuid::new_v4().to_string();
    let first = spawn_post(&s, "/api/v1/persons", &token, &body, &key)
        .await
        .unwrap();
    assert_eq!(first.status, 201, "{}", first.body);
    let answer: Value = serde_json::from_str(&first.body).unwrap();
    assert_eq!(answer["duplicates"], json!([]));
    // Someone alike, after the first answer.
    s.post_ok("/api/v1/persons", &token, &body, 201).await;
    let again = spawn_post(&s, "/api/v1/persons", &token, &body, &key)
        .await
        .unwrap();
    assert_eq!(again, first, "a retry answers the first duplicates");

    let key = uuid::Uuid::new_v4().to_string();
    let body = person("Demo Idem Tre");
    let answers =
        ten_at_once_and_one_later(&s, "/api/v1/persons", &token, &body, &key, async || {}).await;
    all_the_first(&answers, 201);
    assert_eq!(count(&s, "PersonTakenInCharge").await, 3);
    s.stop().await;
}

/// An activation's answer shows the offer made and its expiry, the
/// deadline counted from the request, and the ranking: ten parallel
/// retries — the clock moved on before the nine — and a retry after the
/// offer was declined are all the first answer. The answer holds the place
/// (the person's data): it is kept sealed, never in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn retries_of_an_activation_answer_the_first_answer() {
    // Monday 2 March 2026, 10:00 in Potenza: the server's clock.
    let t0 = time::macros::datetime!(2026-03-02 09:00 UTC);
    let (clock, hand) = Clock::manual(t0);
    let s = server(|settings| settings.clock = clock).await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    for name in ["Demo Interprete Uno", "Demo Interprete Due"] {
        let w = s
            .post_ok(
                "/api/v1/professionals",
                &operator,
                &json!({
                    "profile": {
                        "roles": ["interpreter"], "sectors": ["health"],
                        "languages": [{ "code": "ar", "proficiency": "native" }],
                        "modes": ["in_person"], "areas": ["Potenza"],
                        "admitted_on": "2025-01-10"
                    },
                    "contact": { "name": name, "email": "demo@example.invalid" },
                    "availability": every_day()
                }),
                201,
            )
            .await;
        let id = w["id"].as_str().unwrap().to_owned();
        s.get_ok(
            &format!("/api/v1/professionals/{id}?min_position={}", w["position"]),
            &operator,
        )
        .await;
    }
    let person = s
        .post_ok(
            "/api/v1/persons",
            &operator,
            &person("Demo Idem Quattro"),
            201,
        )
        .await["person_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let place = "Demo: ambulatorio 7, secondo piano";
    let needed_at = (t0 + Duration::days(1))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let body = json!({
        "role": "interpreter", "sector": "health", "language": "ar", "mode": "in_person",
        "place": place, "needed_at": needed_at, "urgency": "24h", "person_id": person
    });
    let key = uuid::Uuid::new_v4().to_string();
    let answers = ten_at_once_and_one_later(
        &s,
        "/api/v1/activations",
        &operator,
        &body,
        &key,
        async || {
            // The retries come later by the server's clock.
            hand.set(t0 + Duration::minutes(7));
        },
    )
    .await;
    all_the_first(&answers, 201);
    let first: Value = serde_json::from_str(&answers[0].body).unwrap();
    assert_eq!(first["status"], "offered", "{first}");
    assert_eq!(first["place"], place);
    assert_eq!(count(&s, "ActivationRequested").await, 1);

    // The one offered declines: the activation moves on; a retry does not.
    let offered = first["offered_to"].as_str().unwrap();
    let (_, professional) = s
        .bound_account(network, desk, "professional", Some(offered))
        .await;
    let id = first["activation_id"].as_str().unwrap();
    let decline = format!("/api/v1/activations/{id}/decline");
    let decline_key = uuid::Uuid::new_v4().to_string();
    let declined = spawn_post(&s, &decline, &professional, &json!({}), &decline_key)
        .await
        .unwrap();
    assert_eq!(declined.status, 200, "{}", declined.body);
    // Its retry: the first answer, although who declined no longer sees
    // the activation.
    let again = spawn_post(&s, &decline, &professional, &json!({}), &decline_key)
        .await
        .unwrap();
    assert_eq!(again, declined);
    assert_eq!(count(&s, "ActivationDeclined").await, 1);
    let later = spawn_post(&s, "/api/v1/activations", &operator, &body, &key)
        .await
        .unwrap();
    assert_eq!(
        later, answers[0],
        "a retry after a decline is the first answer"
    );

    // Kept sealed under the person's key: the place is in no table in clear.
    assert!(!all_table_text(&s.db.pool).await.contains(place));
    s.stop().await;
}

/// A change worked out from the resource as it is — a `PATCH` bringing an
/// organisation to a status — is answered its first answer on a retry,
/// not worked out again from what the first request made of it (which
/// would leave nothing to change).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retried_patch_answers_the_first_answer() {
    let s = server(|_| {}).await;
    let coordinator = s
        .account(NetworkId::new(), OrganizationId::new(), "coordinator")
        .await;
    let mut body = provider_body(&s, "Ente Demo", "non_profit", &["health_stp_code"]);
    body["agreement"] = Value::Null;
    body["status"] = Value::Null;
    let w = s
        .post_ok("/api/v1/organizations", &coordinator, &body, 201)
        .await;
    let path = format!("/api/v1/organizations/{}", w["id"].as_str().unwrap());
    let key = uuid::Uuid::new_v4().to_string();
    let patch = || async {
        let res = s
            .http
            .patch(s.url(&path))
            .bearer_auth(&coordinator)
            .header("Idempotency-Key", &key)
            .json(&json!({ "status": "onboarding" }))
            .send()
            .await
            .unwrap();
        let etag = res
            .headers()
            .get("etag")
            .map(|v| v.to_str().unwrap().to_owned());
        (res.status().as_u16(), etag, res.text().await.unwrap())
    };
    let first = patch().await;
    assert_eq!(first.0, 200, "{}", first.2);
    assert_eq!(patch().await, first);
    assert_eq!(count(&s, "OrganizationOnboardingChanged").await, 1);
    s.stop().await;
}
