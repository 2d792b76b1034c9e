//! Loading the demo into a real database: the registry and its
//! activations are written with the rest, activations name only people
//! the demo stored, the professional's account is bound to its entry,
//! nothing is dated in the future, and loading again adds nothing.

use super::registry::DEMO_PROFESSIONAL_ENTRY;
use super::*;
use sportello_store::MasterKey;
use sportello_testkit::TestDb;

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
    assert_eq!(streams("case").await, PEOPLE as i64);

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
