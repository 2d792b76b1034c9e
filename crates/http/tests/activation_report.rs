//! `GET /api/v1/reports/activations` against the real server, database and
//! bus: professionals and activations are written through the one write
//! path (`command::execute`; each activation's story is one append, so
//! the scheduler, which offers what waits, never sees it half-told), the
//! projections catch up (`?min_position=`), and the report judges them by
//! the application's clock — one confirmed in time, one whose deadline
//! was missed, one pending, one cancelled before it was due — finds the
//! registry's gaps, keeps to the caller's network, and answers only the
//! desk, the coordination team and admins.

use serde_json::{Value, json};
use sportello_domain::activation::ranking::RegistryStatus;
use sportello_domain::activation::{
    ActivationCommand, Mode, ProfessionalRole, Request, Sector, Urgency,
};
use sportello_domain::aggregate::{ActivationAggregate, ProfessionalAggregate};
use sportello_domain::case::Proficiency;
use sportello_domain::ids::{ActivationId, ProfessionalId};
use sportello_domain::registry::{Contact, ProfessionalCommand, Profile};
use sportello_domain::{
    AccountId, Aggregate, Metadata, NetworkId, OrganizationId, PersonId, StreamId,
};
use sportello_http::clock::Clock;
use sportello_http::command::{Expect, WriteRequest, execute, written};
use sportello_store::EventStore;
use time::macros::{date, datetime};
use time::{Duration, OffsetDateTime};

mod common;
use common::*;

/// The clock stands here.
const T0: OffsetDateTime = datetime!(2026-03-10 12:00 UTC);

/// Writes to one network as the desk would, through the one write path.
struct Desk {
    store: EventStore,
    network: NetworkId,
    organization: OrganizationId,
    account: AccountId,
    /// The global position of the last event written.
    position: i64,
}

impl Desk {
    /// Carry out `commands` on `stream` as one append at `at`.
    async fn run<A: Aggregate>(
        &mut self,
        stream: uuid::Uuid,
        expect: Expect,
        commands: Vec<A::Command>,
        at: OffsetDateTime,
    ) where
        A::Command: Clone,
    {
        let done = execute(
            &self.store,
            WriteRequest::<A, _>::new(
                self.network,
                StreamId(stream),
                expect,
                commands,
                Metadata::for_command(self.account, self.organization, at),
                &written,
            ),
        )
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
        self.position = self.position.max(done.result.position);
    }

    /// An active professional of the registry (a suspended one when
    /// `suspended`).
    async fn professional(
        &mut self,
        role: ProfessionalRole,
        sector: Sector,
        language: &str,
        suspended: bool,
    ) -> ProfessionalId {
        let id = ProfessionalId::new();
        let profile = Profile {
            roles: [role].into(),
            sectors: [sector].into(),
            languages: vec![(language.into(), Proficiency::Native)],
            modes: [Mode::InPerson, Mode::Phone].into(),
            areas: vec!["Potenza".into()],
            admitted_on: date!(2025 - 09 - 01),
            bar_registration: (role == ProfessionalRole::Lawyer).then(|| "PZ 1234".into()),
        };
        let contact = Contact {
            name: "Professionista Di Prova".into(),
            phone: None,
            email: None,
        };
        let at = T0 - Duration::days(30);
        self.run::<ProfessionalAggregate>(
            id.0,
            Expect::New,
            vec![ProfessionalCommand::Register {
                id,
                profile,
                contact,
            }],
            at,
        )
        .await;
        if suspended {
            self.run::<ProfessionalAggregate>(
                id.0,
                Expect::Latest,
                vec![ProfessionalCommand::SetStatus(RegistryStatus::Suspended)],
                at,
            )
            .await;
        }
        id
    }

    /// An activation requested at `requested_at`, then `then`, all in
    /// one append made at `at` (the scheduler, which offers what waits,
    /// never sees it half-told).
    #[expect(clippy::too_many_arguments, reason = "what an activation asks")]
    async fn activation(
        &mut self,
        role: ProfessionalRole,
        sector: Sector,
        language: &str,
        urgency: Urgency,
        person: Option<PersonId>,
        requested_at: OffsetDateTime,
        then: Vec<ActivationCommand>,
        at: OffsetDateTime,
    ) -> ActivationId {
        let id = ActivationId::new();
        let request = Request {
            id,
            role,
            sector,
            language: language.into(),
            mode: Mode::InPerson,
            needed_at: requested_at + Duration::hours(20),
            place: "Via Lacava 2, Potenza".into(),
            urgency,
            person,
            referral: None,
            requested_by: self.organization,
            requested_at,
        };
        let mut commands = vec![ActivationCommand::Request(request)];
        commands.extend(then);
        self.run::<ActivationAggregate>(id.0, Expect::New, commands, at)
            .await;
        id
    }
}

/// Offered to `to` at `at` for two hours.
fn offer(to: ProfessionalId, at: OffsetDateTime) -> ActivationCommand {
    ActivationCommand::Offer {
        to,
        expires_at: at + Duration::hours(2),
        now: at,
    }
}

fn desk(s: &Server, network: NetworkId) -> Desk {
    Desk {
        store: s.store(),
        network,
        organization: OrganizationId::new(),
        account: AccountId::new(),
        position: 0,
    }
}

/// The report, having waited for `position`; it must have been reached.
async fn report(s: &Server, token: &str, query: &str, position: i64) -> Value {
    let res = s
        .get(
            &format!("/api/v1/reports/activations?min_position={position}{query}"),
            token,
        )
        .await;
    assert_eq!(res.status().as_u16(), 200);
    assert!(
        res.headers().get("sportello-caught-up-to").is_none(),
        "the read models reached position {position}"
    );
    res.json().await.unwrap()
}

#[tokio::test]
async fn the_report_judges_by_the_clock_finds_gaps_and_keeps_to_its_network() {
    let (clock, hand) = Clock::manual(T0);
    let s = Server::start_with(move |settings, _| settings.clock = clock).await;
    let network = NetworkId::new();
    let coordinator = s
        .account(network, OrganizationId::new(), "coordinator")
        .await;
    let mut d = desk(&s, network);
    use ProfessionalRole::{Interpreter, Lawyer, Mediator};
    use Sector::{Health, Labour, Legal};

    // The registry: one Arabic health interpreter (a thin spot), two
    // French legal mediators, and a Pashto lawyer who is suspended.
    let arabic = d.professional(Interpreter, Health, "ar", false).await;
    let french_a = d.professional(Mediator, Legal, "fr", false).await;
    let french_b = d.professional(Mediator, Legal, "fr", false).await;
    d.professional(Lawyer, Legal, "ps", true).await;

    // Confirmed 90 minutes after the request: in time.
    let t = T0 - Duration::hours(10);
    let confirmed_at = t + Duration::minutes(90);
    let in_time = d
        .activation(
            Interpreter,
            Health,
            "ar",
            Urgency::Hours24,
            None,
            t,
            vec![
                offer(arabic, t + Duration::minutes(1)),
                ActivationCommand::Accept {
                    by: arabic,
                    now: confirmed_at,
                },
            ],
            confirmed_at,
        )
        .await;

    // Declined by one, let lapse by the other, deadline missed.
    let t = T0 - Duration::hours(30);
    let deadline = t + Duration::hours(24);
    d.activation(
        Mediator,
        Legal,
        "fr",
        Urgency::Hours24,
        None,
        t,
        vec![
            offer(french_a, t + Duration::minutes(1)),
            ActivationCommand::Decline {
                by: french_a,
                now: t + Duration::minutes(30),
            },
            offer(french_b, t + Duration::minutes(31)),
            ActivationCommand::ExpireOffer {
                now: t + Duration::hours(3),
            },
            ActivationCommand::MissDeadline { now: deadline },
        ],
        deadline,
    )
    .await;

    // A Pashto lawyer within 48 h, asked an hour ago for a person: pending.
    let person = PersonId::new();
    let t = T0 - Duration::hours(1);
    d.activation(
        Lawyer,
        Legal,
        "ps",
        Urgency::Hours48,
        Some(person),
        t,
        vec![],
        t,
    )
    .await;
    // Another, called off before its deadline: not judged.
    let t = T0 - Duration::hours(3);
    let cancel = ActivationCommand::Cancel {
        reason: "the appointment was moved".into(),
    };
    d.activation(
        Lawyer,
        Legal,
        "ps",
        Urgency::Hours24,
        None,
        t,
        vec![cancel],
        t + Duration::hours(1),
    )
    .await;
    // Long before the default period (the scheduler may record its
    // missed deadline at any time: not asserted).
    let t = T0 - Duration::days(200);
    d.activation(Mediator, Labour, "en", Urgency::Hours48, None, t, vec![], t)
        .await;

    // Another network asks for a Pashto lawyer too.
    let elsewhere = NetworkId::new();
    let mut other = desk(&s, elsewhere);
    let t = T0 - Duration::hours(2);
    other
        .activation(Lawyer, Legal, "ps", Urgency::Hours24, None, t, vec![], t)
        .await;
    let position = d.position.max(other.position);

    let r = report(&s, &coordinator, "", position).await;
    assert_eq!(r["from"], "2025-12-11", "90 days to today by the clock");
    assert_eq!(r["to"], "2026-03-10");
    assert_eq!(r["generated_at"], "2026-03-10T12:00:00Z");
    assert_eq!(
        r["overall"]["compliance"],
        json!({
            "requested": 4, "cancelled_before_due": 1, "due": 2,
            "confirmed_in_time": 1, "late": 1, "pending": 1,
            "rate": 0.5, "deadlines_missed": 1
        })
    );
    assert_eq!(
        r["overall"]["time_to_confirm"],
        json!({ "confirmed": 1, "median_minutes": 90.0, "p90_minutes": 90.0 })
    );
    assert_eq!(
        r["overall"]["offers"],
        json!({ "made": 3, "declined": 1, "expired": 1,
                "decline_rate": 0.3333, "expiry_rate": 0.3333 })
    );
    let roles: Vec<(&str, i64, Value)> = r["by_role"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["role"].as_str().unwrap(),
                g["compliance"]["requested"].as_i64().unwrap(),
                g["compliance"]["rate"].clone(),
            )
        })
        .collect();
    assert_eq!(
        roles,
        [
            ("mediator", 1, json!(0.0)),
            ("interpreter", 1, json!(1.0)),
            ("lawyer", 2, Value::Null),
        ]
    );
    let languages: Vec<&str> = r["by_language"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["language"].as_str().unwrap())
        .collect();
    assert_eq!(languages, ["ar", "fr", "ps"]);
    let mediators = &r["by_combination"][0];
    assert_eq!(
        (
            &mediators["role"],
            &mediators["sector"],
            &mediators["language"]
        ),
        (&json!("mediator"), &json!("legal"), &json!("fr"))
    );
    assert_eq!(mediators["compliance"]["deadlines_missed"], 1);
    assert_eq!(mediators["offers"]["decline_rate"], 0.5);
    assert_eq!(mediators["time_to_confirm"]["median_minutes"], Value::Null);
    assert_eq!(
        r["gaps"],
        json!({
            "uncovered": [{ "role": "lawyer", "sector": "legal", "language": "ps", "requests": 2 }],
            "single": [{ "role": "interpreter", "sector": "health", "language": "ar", "requests": 1 }]
        })
    );
    let text = r.to_string();
    for id in [person.0, arabic.0, french_a.0, french_b.0, in_time.0] {
        assert!(!text.contains(&id.to_string()), "no ids in the report");
    }

    // The other network sees its own request only.
    let theirs = s
        .account(elsewhere, OrganizationId::new(), "coordinator")
        .await;
    let r = report(&s, &theirs, "", position).await;
    assert_eq!(r["overall"]["compliance"]["requested"], 1);
    assert_eq!(r["gaps"]["uncovered"][0]["requests"], 1);

    // A period that reaches back to the old request.
    let r = report(&s, &coordinator, "&from=2025-08-01&to=2025-08-31", position).await;
    assert_eq!(r["overall"]["compliance"]["requested"], 1);
    assert_eq!(r["overall"]["compliance"]["late"], 1);
    assert_eq!(r["by_combination"][0]["language"], "en");
    // A period with nothing in it.
    let r = report(&s, &coordinator, "&from=2026-03-11&to=2026-03-20", position).await;
    assert_eq!(r["overall"]["compliance"]["requested"], 0);
    assert_eq!(r["overall"]["compliance"]["rate"], Value::Null);
    assert_eq!(r["by_role"], json!([]));
    assert_eq!(r["gaps"], json!({ "uncovered": [], "single": [] }));

    // Two days on, by the clock alone, the Pashto request is late too.
    hand.set(T0 + Duration::hours(48));
    let r = report(&s, &coordinator, "&to=2026-03-12", position).await;
    assert_eq!(r["generated_at"], "2026-03-12T12:00:00Z");
    let c = &r["overall"]["compliance"];
    // (Not `deadlines_missed`: the scheduler, woken by the clock, records
    // the miss when it gets to it — the report does not wait for that.)
    assert_eq!(
        (&c["due"], &c["late"], &c["pending"], &c["rate"]),
        (&json!(3), &json!(2), &json!(0), &json!(0.3333))
    );

    s.stop().await;
}

#[tokio::test]
async fn only_the_desk_coordination_and_admins_read_it_and_the_query_is_checked() {
    let (clock, _hand) = Clock::manual(T0);
    let s = Server::start_with(move |settings, _| settings.clock = clock).await;
    let network = NetworkId::new();
    let org = OrganizationId::new();
    let path = "/api/v1/reports/activations";
    for role in ["coordinator", "admin", "desk_operator", "desk_supervisor"] {
        let token = s.account(network, org, role).await;
        let res = s.get(path, &token).await;
        assert_eq!(res.status().as_u16(), 200, "{role}");
    }
    let partner = s.account(network, org, "partner").await;
    problem(s.get(path, &partner).await, 403).await;
    let (_, professional) = s
        .bound_account(network, OrganizationId::new(), "professional", None)
        .await;
    problem(s.get(path, &professional).await, 403).await;
    let anonymous = s.http.get(s.url(path)).send().await.unwrap();
    problem(anonymous, 401).await;
    // A bad query is refused only once the caller may ask at all.
    let res = s
        .get(&format!("{path}?from=2026-03-10&to=2026-03-09"), &partner)
        .await;
    problem(res, 403).await;

    let coordinator = s.account(network, org, "coordinator").await;
    let field_of = |p: &Value| p["errors"][0]["field"].as_str().unwrap().to_owned();
    let p = problem(
        s.get(
            &format!("{path}?from=2026-03-10&to=2026-03-09"),
            &coordinator,
        )
        .await,
        422,
    )
    .await;
    // Both bounds given, both named (the one rule of `api::period`).
    assert_eq!(p["errors"][0]["field"], "from", "{p}");
    assert_eq!(p["errors"][1]["field"], "to", "{p}");
    let p = problem(
        s.get(&format!("{path}?to=2026-03-09T12:00:00Z"), &coordinator)
            .await,
        422,
    )
    .await;
    assert_eq!(field_of(&p), "to");
    let p = problem(
        s.get(&format!("{path}?from=10/03/2026"), &coordinator)
            .await,
        422,
    )
    .await;
    assert_eq!(field_of(&p), "from");
    let p = problem(
        s.get(&format!("{path}?min_position=x"), &coordinator).await,
        422,
    )
    .await;
    assert_eq!(field_of(&p), "min_position");
    let p = problem(
        s.get(&format!("{path}?min_position=-1"), &coordinator)
            .await,
        422,
    )
    .await;
    assert_eq!(field_of(&p), "min_position");

    // The OpenAPI document describes it.
    let doc: Value = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let op = &doc["paths"]["/api/v1/reports/activations"]["get"];
    assert_eq!(op["tags"], json!(["reports"]));
    assert!(doc["components"]["schemas"]["ActivationReport"].is_object());

    s.stop().await;
}
