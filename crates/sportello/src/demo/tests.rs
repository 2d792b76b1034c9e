//! The demo's directory: the four patronati of Potenza answer job search,
//! the job centre's paperwork and permits' under an agreement in force,
//! so matching a job need offers a patronato besides the job centre.
//! Loading the demo into a real database: the registry and its
//! activations are written with the rest, activations name only people
//! the demo stored, the professional's account is bound to its entry,
//! a job centre's decline is redirected to a patronato and completed,
//! nothing is dated in the future, and loading again adds nothing.

use super::registry::DEMO_PROFESSIONAL_ENTRY;
use super::*;
use sportello_domain::matching::{self, rome_date};
use sportello_store::MasterKey;
use sportello_testkit::TestDb;
use time::macros::datetime;

/// A moment to build the directory at (nothing here depends on the day).
const NOW: OffsetDateTime = datetime!(2026-11-27 15:20 UTC);

fn code(c: &str) -> NeedCode {
    NeedCode::parse(c).unwrap()
}

#[test]
fn the_four_patronati_take_job_and_permit_paperwork_under_an_agreement() {
    let net = network(NOW).unwrap();
    for name in ["INCA CGIL", "INAS CISL", "ACLI", "ITAL UIL"] {
        let p = net
            .providers
            .iter()
            .map(|p| &p.organization)
            .find(|o| o.name.contains(name))
            .unwrap_or_else(|| panic!("no patronato {name}"));
        assert_eq!(p.kind, OrganizationKind::Patronato, "{name}");
        assert!(p.can_receive_referrals(rome_date(NOW)), "{name}: in force");
        let agreement = p.agreement.as_ref().unwrap();
        assert!(agreement.acknowledge_within >= 1 && agreement.first_contact_within >= 1);
        assert!(
            agreement.may_see(CardField::Documents),
            "{name}: permits need them"
        );
        for need in [
            "job_search",
            "job_centre_registration",
            "residence_permit_renewal",
            "residence_permit_long_term",
            "child_benefit",
            "inclusion_allowance",
        ] {
            let service = p.services.values().find(|s| s.answers(&code(need)));
            let service = service.unwrap_or_else(|| panic!("{name} answers {need}"));
            assert!(service.languages.len() >= 2, "{name}: {}", service.name);
            assert!(
                MON_FRI.iter().any(|d| !service.hours.on(*d).is_empty()),
                "{name}: {} has hours",
                service.name
            );
        }
    }
}

#[test]
fn matching_a_job_need_offers_a_patronato_besides_the_job_centre() {
    let net = network(NOW).unwrap();
    let providers: Vec<_> = net
        .providers
        .iter()
        .map(|p| (p.organization.clone(), Vec::new()))
        .collect();
    let kind = |id: OrganizationId| {
        net.providers
            .iter()
            .find(|p| p.organization.id == id)
            .unwrap()
            .organization
            .kind
    };
    for need in ["job_search", "job_centre_registration"] {
        let ranked = matching::rank(
            &code(need),
            &["ar".into(), "fr".into()],
            &providers,
            &WorkingCalendar::for_potenza(),
            NOW,
        );
        let available: Vec<OrganizationKind> = ranked
            .iter()
            .filter(|m| m.available)
            .map(|m| kind(m.organization))
            .collect();
        assert!(available.contains(&OrganizationKind::JobCentre), "{need}");
        let patronati = available
            .iter()
            .filter(|k| **k == OrganizationKind::Patronato)
            .count();
        assert_eq!(patronati, 4, "{need}: {available:?}");
    }
    // One provider is still onboarding: matching shows it, unavailable.
    let housing = matching::rank(
        &code("social_housing"),
        &["it".into()],
        &providers,
        &WorkingCalendar::for_potenza(),
        NOW,
    );
    assert_eq!(housing.len(), 1);
    assert!(!housing[0].available);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loads_its_registry_and_activations_once() {
    let db = TestDb::new().await;
    let settings = Settings {
        database_url: db.url.clone(),
        master_key: Some(MasterKey::generate()),
        ..Settings::default()
    };
    let dir = tempfile::tempdir().unwrap();
    let creds = dir.path().join("creds.json");
    run(&settings, Some(&creds)).await.unwrap();

    let streams = |kind: &'static str| {
        let pool = db.pool.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(
                "SELECT count(DISTINCT stream_id) FROM events
                  WHERE network_id = $1 AND stream_kind = $2",
            )
            .bind(DEMO_NETWORK)
            .bind(kind)
            .fetch_one(&pool)
            .await
            .unwrap();
            n
        }
    };
    assert_eq!(streams("professional").await, 24);
    let activations = streams("activation").await;
    assert!((150..=250).contains(&activations), "{activations}");
    assert_eq!(streams("case").await, PEOPLE as i64 + 1, "and the story");

    // The classic redirect, completed: the job centre declines, the desk
    // sends the need on to a patronato, which completes it.
    let patronati: Vec<String> = PROVIDERS
        .iter()
        .filter(|p| p.kind == OrganizationKind::Patronato)
        .map(|p| demo_id(p.id).to_string())
        .collect();
    let (redirects,): (i64,) = sqlx::query_as(
        "SELECT count(*)
           FROM events sent
           JOIN events declined ON declined.stream_id = sent.stream_id
                               AND declined.event_type = 'ReferralDeclined'
           JOIN events redirected ON redirected.stream_id = sent.stream_id
                                 AND redirected.event_type = 'ReferralRedirected'
           JOIN events again ON again.stream_id = (redirected.payload->>'to')::uuid
                            AND again.event_type = 'ReferralSent'
           JOIN events done ON done.stream_id = again.stream_id
                           AND done.event_type = 'ReferralCompleted'
          WHERE sent.network_id = $1 AND sent.event_type = 'ReferralSent'
            AND sent.payload->>'organization_id' = $2
            AND again.payload->>'organization_id' = ANY($3)",
    )
    .bind(DEMO_NETWORK)
    .bind(demo_id(0x0e04).to_string())
    .bind(&patronati)
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(
        redirects >= 1,
        "a job centre decline redirected to a patronato"
    );

    let (named, unknown): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE a.payload->>'person_id' IS NOT NULL),
                count(*) FILTER (WHERE a.payload->>'person_id' IS NOT NULL AND NOT EXISTS (
                    SELECT 1 FROM events c WHERE c.stream_kind = 'case'
                       AND c.stream_id = (a.payload->>'person_id')::uuid))
           FROM events a WHERE a.event_type = 'ActivationRequested'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert!(named > 0, "some activations are for a person of the demo");
    assert_eq!(unknown, 0, "and only for people the demo stored");

    let (future,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM events WHERE (metadata->>'occurred_at')::timestamptz > now()",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(future, 0, "nothing dated after the load");

    let (role, entry): (String, Option<Uuid>) =
        sqlx::query_as("SELECT role, professional_id FROM accounts WHERE account_id = $1")
            .bind(DEMO_PROFESSIONAL)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!(role, "professional");
    assert_eq!(entry, Some(DEMO_PROFESSIONAL_ENTRY));
    let creds: serde_json::Value = serde_json::from_slice(&std::fs::read(&creds).unwrap()).unwrap();
    let accounts = creds["accounts"].as_array().unwrap();
    assert_eq!(accounts[0]["role"], "desk_operator");
    let professional = accounts
        .iter()
        .find(|a| a["role"] == "professional")
        .expect("the professional's credentials");
    assert!(
        professional["token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );

    let total = || {
        let pool = db.pool.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
                .fetch_one(&pool)
                .await
                .unwrap();
            n
        }
    };
    let before = total().await;
    run(&settings, None).await.unwrap();
    assert_eq!(total().await, before, "loading again adds nothing");

    db.drop_db().await;
}
