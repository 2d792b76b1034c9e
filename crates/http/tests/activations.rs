//! Activations of professionals over a real server, with a set clock: the
//! issue's scenarios (an Arabic interpreter for health within 24 h found
//! after a decline and an unanswered offer; a request nobody accepts, its
//! deadline missed exactly once at 24 h, on the desk's board and in the
//! activations report), and the
//! scheduler across a restart and beside a second server process.
//!
//! Nothing sleeps for time to pass: the clock is set, the scheduler wakes
//! when it moves, and the tests wait only for the server to have acted.

use serde_json::{Value, json};
use sportello_domain::{NetworkId, OrganizationId};
use sportello_http::activation::scheduler::{Tick, tick};
use sportello_http::clock::{Clock, ManualClock};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

mod common;
use common::*;

/// Monday 2 March 2026, 10:00 in Potenza.
const T0: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);
/// The offer timeout the server runs with (its default).
const OFFER: Duration = Duration::hours(2);

fn at(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

struct Desk {
    s: Server,
    hand: Arc<ManualClock>,
    network: NetworkId,
    desk: OrganizationId,
    operator: String,
}

async fn desk() -> Desk {
    let (clock, hand) = Clock::manual(T0);
    let s = Server::start_with(|settings, _| {
        settings.clock = clock;
        settings.scheduler_period_ms = 200;
    })
    .await;
    let network = NetworkId::new();
    let desk = OrganizationId::new();
    let operator = s.account(network, desk, "desk_operator").await;
    Desk {
        s,
        hand,
        network,
        desk,
        operator,
    }
}

impl Desk {
    /// Admit a professional; their id and a token of their own account.
    async fn professional(
        &self,
        name: &str,
        role: &str,
        sector: &str,
        language: &str,
        proficiency: &str,
    ) -> (String, String) {
        let body = json!({
            "profile": {
                "roles": [role], "sectors": [sector],
                "languages": [{ "code": language, "proficiency": proficiency }],
                "modes": ["in_person", "phone"], "areas": ["Potenza"],
                "admitted_on": "2025-01-10",
                "bar_registration": (role == "lawyer").then_some("Ordine di Potenza n. DEMO-1")
            },
            "contact": { "name": name, "email": "demo@example.invalid" },
            "availability": every_day()
        });
        let w = self
            .s
            .post_ok("/api/v1/professionals", &self.operator, &body, 201)
            .await;
        let id = w["id"].as_str().unwrap().to_owned();
        // In the registry's read model before anything is ranked.
        self.s
            .get_ok(
                &format!("/api/v1/professionals/{id}?min_position={}", w["position"]),
                &self.operator,
            )
            .await;
        let (_, token) = self
            .s
            .bound_account(self.network, self.desk, "professional", Some(&id))
            .await;
        (id, token)
    }

    async fn request(&self, body: Value) -> Value {
        self.s
            .post_ok("/api/v1/activations", &self.operator, &body, 201)
            .await
    }

    async fn act(&self, token: &str, id: &str, action: &str, body: Option<Value>) -> u16 {
        self.s
            .post_with(
                &format!("/api/v1/activations/{id}/{action}"),
                token,
                body.as_ref(),
                &[],
            )
            .await
            .status()
            .as_u16()
    }

    async fn activation(&self, id: &str) -> Value {
        self.s
            .get_ok(&format!("/api/v1/activations/{id}"), &self.operator)
            .await
    }

    /// The activation once `done` holds of it (the scheduler acts on its
    /// own, a moment after the clock moves).
    async fn until(&self, id: &str, what: &str, done: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + StdDuration::from_secs(20);
        loop {
            let a = self.activation(id).await;
            if done(&a) {
                return a;
            }
            assert!(Instant::now() < deadline, "{what}: {a}");
            tokio::time::sleep(StdDuration::from_millis(20)).await;
        }
    }

    /// The activation's events of `event_type`: when each was recorded
    /// (the clock's time).
    async fn events(&self, id: &str, event_type: &str) -> Vec<OffsetDateTime> {
        let times: Vec<String> = sqlx::query_scalar(
            "SELECT metadata->>'occurred_at' FROM events
              WHERE stream_id = $1 AND event_type = $2 ORDER BY version",
        )
        .bind(uuid::Uuid::parse_str(id).unwrap())
        .bind(event_type)
        .fetch_all(&self.s.db.pool)
        .await
        .unwrap();
        times
            .iter()
            .map(|t| {
                OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).unwrap()
            })
            .collect()
    }
}

fn arabic_for_health(needed_at: OffsetDateTime) -> Value {
    json!({
        "role": "interpreter", "sector": "health", "language": "ar", "mode": "in_person",
        "place": "Demo: Ospedale San Carlo, ambulatorio 3",
        "needed_at": at(needed_at), "urgency": "24h"
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_arabic_interpreter_after_a_decline_and_an_unanswered_offer_and_a_request_nobody_takes()
{
    let d = desk().await;
    // Three Arabic interpreters for health, ranked by how well they speak
    // it (none has had an activation yet); one Urdu mediator for legal.
    let (a, a_token) = d
        .professional(
            "Demo Interprete Amal",
            "interpreter",
            "health",
            "ar",
            "native",
        )
        .await;
    let (b, _) = d
        .professional(
            "Demo Interprete Bashir",
            "interpreter",
            "health",
            "ar",
            "fluent",
        )
        .await;
    let (c, c_token) = d
        .professional(
            "Demo Interprete Chadia",
            "interpreter",
            "health",
            "ar",
            "basic",
        )
        .await;
    let (u, _) = d
        .professional("Demo Mediatore Usman", "mediator", "legal", "ur", "native")
        .await;

    // 1. Requested at T0, needed 20 h later: offered to the first.
    let first = d.request(arabic_for_health(T0 + Duration::hours(20))).await;
    let id = first["activation_id"].as_str().unwrap().to_owned();
    assert_eq!(first["status"], "offered");
    assert_eq!(first["offered_to"], a.as_str());
    assert_eq!(first["deadline"], at(T0 + Duration::hours(24)));
    assert_eq!(first["offer_expires_at"], at(T0 + OFFER));
    // The ranking of who comes next, and why.
    let next: Vec<&str> = first["ranking"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["professional_id"].as_str().unwrap())
        .collect();
    assert_eq!(next, [b.as_str(), c.as_str()]);
    assert!(
        first["ranking"][0]["reasons"]
            .as_array()
            .unwrap()
            .contains(&json!("speaks ar (fluent)")),
        "{first}"
    );

    // 2. The first declines ten minutes later: the second is offered.
    d.hand.set(T0 + Duration::minutes(10));
    assert_eq!(d.act(&a_token, &id, "decline", None).await, 200);
    let a1 = d.activation(&id).await;
    assert_eq!(a1["offered_to"], b.as_str());
    assert_eq!(a1["passed"], json!([a]));
    // Who passed no longer sees it: accepting it now is a 404.
    assert_eq!(d.act(&a_token, &id, "accept", None).await, 404);

    // The other request, at the same moment: an Urdu mediator for legal.
    let other = d
        .request(json!({
            "role": "mediator", "sector": "legal", "language": "ur", "mode": "in_person",
            "place": "Demo: Questura, ufficio immigrazione",
            "needed_at": at(T0 + Duration::hours(30)), "urgency": "24h"
        }))
        .await;
    let other_id = other["activation_id"].as_str().unwrap().to_owned();
    assert_eq!(other["offered_to"], u.as_str());
    let other_deadline = T0 + Duration::minutes(10) + Duration::hours(24);

    // 3. Nobody answers: at the offer's end the scheduler expires it and
    // offers the third; the Urdu mediator lets theirs lapse too.
    d.hand.set(T0 + Duration::minutes(10) + OFFER);
    let a2 = d
        .until(&id, "the third offered", |v| v["offered_to"] == c.as_str())
        .await;
    assert_eq!(a2["passed"], json!([a, b]));
    let o = d
        .until(&other_id, "the mediator's offer lapsed", |v| {
            v["status"] == "waiting"
        })
        .await;
    assert_eq!(o["passed"], json!([u]));

    // 4. The third accepts; the desk schedules it 20 h after the request.
    d.hand.set(T0 + Duration::minutes(150));
    assert_eq!(d.act(&c_token, &id, "accept", None).await, 200);
    let place = json!({ "at": at(T0 + Duration::hours(20)), "place": "Demo: Ospedale San Carlo, ambulatorio 3" });
    assert_eq!(d.act(&d.operator, &id, "schedule", Some(place)).await, 200);
    let done = d.activation(&id).await;
    assert_eq!(done["status"], "scheduled");
    assert_eq!(done["confirmed"], c.as_str());
    assert_eq!(done["scheduled_for"], at(T0 + Duration::hours(20)));
    assert_eq!(done["deadline_missed"], false);

    // 5. The other: a minute before its deadline nothing is due…
    let store = d.s.store();
    let before = tick(&store, other_deadline - Duration::minutes(1), OFFER)
        .await
        .unwrap();
    // (A lagging read model may show moments already dealt with: the
    // lifecycle refuses them, and nothing is done.)
    assert_eq!(
        Tick {
            already_done: 0,
            ..before
        },
        Tick::default(),
        "{before:?}"
    );
    // …at its deadline the scheduler records it missed, once, then.
    d.hand.set(other_deadline);
    d.until(&other_id, "the deadline missed", |v| {
        v["deadline_missed"] == true
    })
    .await;
    assert_eq!(
        d.events(&other_id, "ActivationDeadlineMissed").await,
        [other_deadline]
    );
    // Later ticks, here and the server's own, add nothing.
    d.hand.set(other_deadline + Duration::hours(6));
    let later = tick(&store, other_deadline + Duration::hours(6), OFFER)
        .await
        .unwrap();
    assert_eq!(later.deadlines_missed, 0);
    assert_eq!(
        d.events(&other_id, "ActivationDeadlineMissed").await.len(),
        1
    );
    assert!(d.events(&id, "ActivationDeadlineMissed").await.is_empty());

    // The desk's alert: the board shows it overdue, the other confirmed.
    let deadline = Instant::now() + StdDuration::from_secs(20);
    let board = loop {
        let board = d.s.get_ok("/api/v1/activations", &d.operator).await;
        if board["overdue"][0]["deadline_missed_at"].is_string() {
            break board;
        }
        assert!(Instant::now() < deadline, "no alert on the board: {board}");
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    };
    assert_eq!(board["overdue"][0]["activation_id"], other_id.as_str());
    assert_eq!(
        board["overdue"][0]["deadline_missed_at"],
        at(other_deadline)
    );
    assert_eq!(board["confirmed"][0]["activation_id"], id.as_str());

    // The report shows both: one confirmed in time (after 150 minutes),
    // one late with its deadline missed; three offers for the first (one
    // declined, one lapsed), one lapsed for the other; the Urdu mediator a
    // registry gap of one.
    let coordinator = d.s.account(d.network, d.desk, "coordinator").await;
    let report =
        d.s.get_ok("/api/v1/reports/activations", &coordinator)
            .await;
    let overall = &report["overall"];
    assert_eq!(overall["compliance"]["requested"], 2, "{report}");
    assert_eq!(overall["compliance"]["due"], 2);
    assert_eq!(overall["compliance"]["confirmed_in_time"], 1);
    assert_eq!(overall["compliance"]["late"], 1);
    assert_eq!(overall["compliance"]["deadlines_missed"], 1);
    assert_eq!(overall["compliance"]["rate"], 0.5);
    assert_eq!(overall["time_to_confirm"]["median_minutes"], 150.0);
    assert_eq!(overall["offers"]["made"], 4);
    assert_eq!(overall["offers"]["declined"], 1);
    assert_eq!(overall["offers"]["expired"], 2);
    let language = |code: &str| {
        report["by_language"]
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["language"] == code)
            .unwrap()
            .clone()
    };
    assert_eq!(language("ar")["compliance"]["rate"], 1.0);
    assert_eq!(language("ur")["compliance"]["rate"], 0.0);
    assert_eq!(
        report["gaps"]["single"],
        json!([{ "role": "mediator", "sector": "legal", "language": "ur", "requests": 1 }])
    );
    assert_eq!(report["gaps"]["uncovered"], json!([]));

    // The professional's own queue: theirs, nothing of the person.
    let queue =
        d.s.get_ok(&format!("/api/v1/professionals/{c}/activations"), &c_token)
            .await;
    assert_eq!(queue["items"][0]["activation_id"], id.as_str());
    assert_eq!(queue["items"][0]["standing"], "scheduled");
    assert!(queue["items"][0].get("person_id").is_none());
    // Another professional's queue is not theirs to read.
    let res =
        d.s.get(&format!("/api/v1/professionals/{a}/activations"), &c_token)
            .await;
    assert_eq!(res.status(), 403);
    // The one who declined sees it as passed; the mediator never saw this one.
    let queue =
        d.s.get_ok(&format!("/api/v1/professionals/{a}/activations"), &a_token)
            .await;
    assert_eq!(queue["items"][0]["standing"], "passed");
    d.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_scheduler_catches_up_after_a_restart_and_two_processes_never_double_a_deadline() {
    let mut d = desk().await;
    let (p, _) = d
        .professional(
            "Demo Interprete Nadia",
            "interpreter",
            "health",
            "ar",
            "native",
        )
        .await;
    let x = d.request(arabic_for_health(T0 + Duration::hours(20))).await;
    let x = x["activation_id"].as_str().unwrap().to_owned();

    // Down while the offer lapses and the deadline passes.
    d.s.halt().await;
    d.hand.set(T0 + Duration::hours(25));
    d.s.resume().await;
    // Both moments, each its own write of the first ticks after start.
    d.until(&x, "caught up on start", |v| {
        v["deadline_missed"] == true && v["status"] == "waiting"
    })
    .await;
    assert_eq!(
        d.events(&x, "ActivationDeadlineMissed").await,
        [T0 + Duration::hours(25)]
    );
    assert_eq!(d.events(&x, "ActivationOfferExpired").await.len(), 1);
    let a = d.activation(&x).await;
    assert_eq!(a["passed"], json!([p]));

    // Two server processes, and four more ticks besides, all at once
    // when the next deadline falls due: one expiry, one deadline missed.
    let second = Replica::start(d.s.settings.clone()).await;
    let y = d.request(arabic_for_health(T0 + Duration::hours(40))).await;
    // The read model the ticks read holds the request.
    d.s.get_ok(
        &format!("/api/v1/activations?min_position={}", y["position"]),
        &d.operator,
    )
    .await;
    let y = y["activation_id"].as_str().unwrap().to_owned();
    assert_eq!(d.activation(&y).await["offered_to"], p.as_str());
    let due = T0 + Duration::hours(50);
    let store = d.s.store();
    d.hand.set(due);
    let ticks: Vec<_> = (0..4)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move { tick(&store, due, OFFER).await.unwrap() })
        })
        .collect();
    let mut missed = 0;
    for t in ticks {
        missed += t.await.unwrap().deadlines_missed;
    }
    d.until(
        &y,
        "the second deadline missed and its offer expired",
        |v| v["deadline_missed"] == true && v["status"] == "waiting",
    )
    .await;
    assert!(missed <= 1, "{missed} ticks each recorded the deadline");
    assert_eq!(d.events(&y, "ActivationDeadlineMissed").await, [due]);
    assert_eq!(d.events(&y, "ActivationOfferExpired").await.len(), 1);
    // And one of the two processes is the active scheduler, not both.
    let holders: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
          WHERE locktype = 'advisory' AND granted
            AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
            AND ((classid::bigint << 32) | objid::bigint)
                = hashtextextended('sportello-scheduler', 0)",
    )
    .fetch_one(&d.s.db.pool)
    .await
    .unwrap();
    assert_eq!(holders, 1);
    second.stop().await;
    d.s.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_name_their_field_and_write_nothing() {
    let d = desk().await;
    let (p, p_token) = d
        .professional(
            "Demo Interprete Olga",
            "interpreter",
            "health",
            "uk",
            "native",
        )
        .await;
    let events = d.s.event_count().await;
    let with = |field: &str, value: Value| {
        let mut body = arabic_for_health(T0 + Duration::hours(20));
        body[field] = value;
        body
    };
    for (body, field) in [
        (
            with("needed_at", json!(at(T0 - Duration::hours(1)))),
            "needed_at",
        ),
        (
            with("needed_at", json!("9999-12-31T23:30:00Z")),
            "needed_at",
        ),
        (with("language", json!("arabic")), "language"),
        (with("place", json!("  ")), "place"),
        (with("urgency", json!("72h")), "urgency"),
        (with("person_id", json!(uuid::Uuid::now_v7())), "person_id"),
        (
            with("referral_id", json!(uuid::Uuid::now_v7())),
            "referral_id",
        ),
    ] {
        let res =
            d.s.post_with("/api/v1/activations", &d.operator, Some(&body), &[])
                .await;
        let problem = problem(res, 422).await;
        assert!(problem.to_string().contains(field), "{field}: {problem}");
    }
    // A partner names its referral, never a person.
    let partner =
        d.s.account(d.network, OrganizationId::new(), "partner")
            .await;
    let res =
        d.s.post_with(
            "/api/v1/activations",
            &partner,
            Some(&with("person_id", json!(uuid::Uuid::now_v7()))),
            &[],
        )
        .await;
    assert!(problem(res, 422).await.to_string().contains("person_id"));
    // The registry: contacts without their profile, too many absences, a
    // lawyer without bar registration.
    let path = format!("/api/v1/professionals/{p}");
    let res =
        d.s.http
            .patch(d.s.url(&path))
            .bearer_auth(&d.operator)
            .json(&json!({ "contact": { "name": "Demo Altro" } }))
            .send()
            .await
            .unwrap();
    assert!(problem(res, 422).await.to_string().contains("profile"));
    let absences: Vec<Value> = (0..51)
        .map(|_| json!({ "from": "2026-08-01", "to": "2026-08-02" }))
        .collect();
    let res =
        d.s.http
            .patch(d.s.url(&path))
            .bearer_auth(&p_token)
            .json(&json!({ "absences": absences }))
            .send()
            .await
            .unwrap();
    assert!(problem(res, 422).await.to_string().contains("absences"));
    // …and a professional changes only their availability, not their profile.
    let res =
        d.s.http
            .patch(d.s.url(&path))
            .bearer_auth(&p_token)
            .json(&json!({ "status": "suspended" }))
            .send()
            .await
            .unwrap();
    assert_eq!(res.status(), 403);
    let lawyer = json!({
        "profile": { "roles": ["lawyer"], "sectors": ["legal"],
                     "languages": [{ "code": "sq", "proficiency": "native" }],
                     "modes": ["in_person"], "admitted_on": "2025-01-10" },
        "contact": { "name": "Demo Avvocata" }
    });
    let res =
        d.s.post_with("/api/v1/professionals", &d.operator, Some(&lawyer), &[])
            .await;
    assert!(
        problem(res, 422)
            .await
            .to_string()
            .contains("bar_registration")
    );
    assert_eq!(d.s.event_count().await, events, "nothing written");

    // Scheduling before the request is refused too.
    let ukrainian = json!({
        "role": "interpreter", "sector": "health", "language": "uk", "mode": "phone",
        "place": "Demo: per telefono", "needed_at": at(T0 + Duration::hours(5)), "urgency": "48h"
    });
    let a = d.request(ukrainian).await;
    let id = a["activation_id"].as_str().unwrap();
    assert_eq!(d.act(&p_token, id, "accept", None).await, 200);
    let res =
        d.s.post_with(
            &format!("/api/v1/activations/{id}/schedule"),
            &d.operator,
            Some(&json!({ "at": at(T0 - Duration::days(1)), "place": "Demo" })),
            &[],
        )
        .await;
    assert!(problem(res, 422).await.to_string().contains("\"at\""));
    d.s.stop().await;
}
