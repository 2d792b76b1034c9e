//! A read model that cannot apply an event stops, visibly: `/readyz`
//! answers 503 naming it (no ids or error text), its checkpoint keeps the
//! refusal and the event it stopped on, and `/metrics` says it failed.
//!
//! A test binary of its own: the Prometheus recorder is the process's, so
//! another test's server in the same process would report its own healthy
//! projection under the same labels and overwrite the gauge this one reads.

use serde_json::Value;
use sportello_domain::{AccountId, OrganizationId};
use std::time::{Duration, Instant};

mod common;
use common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projection_that_cannot_apply_an_event_stops_and_readyz_says_so() {
    let s = Server::start().await;
    // A stream whose versions jump from 1 to 3 (written straight into the
    // table, as a bug or a bad migration might): the projection must stop
    // on version 3 rather than build a wrong row.
    let stream = uuid::Uuid::now_v7();
    let network = uuid::Uuid::now_v7();
    for version in [1i64, 3] {
        sqlx::query(
            "INSERT INTO events (event_id, network_id, stream_id, stream_kind, version, event_type,
                                 schema_version, payload, metadata)
             VALUES ($1, $2, $3, 'test', $4, 'TestHappened', 1, '{}', $5)",
        )
        .bind(uuid::Uuid::now_v7())
        .bind(network)
        .bind(stream)
        .bind(version)
        .bind(
            serde_json::to_value(sportello_domain::Metadata::for_command(
                AccountId::new(),
                OrganizationId::new(),
                time::OffsetDateTime::now_utc(),
            ))
            .unwrap(),
        )
        .execute(&s.db.pool)
        .await
        .unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let res = s.http.get(s.url("/readyz")).send().await.unwrap();
        if res.status() == 503 {
            break res.json::<Value>().await.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "readyz never reported the stopped projection: {}",
            res.text().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(body["ready"], false);
    let p = body["projections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "stream_activity")
        .unwrap();
    assert_eq!(p["stopped"], true, "{p}");
    assert!(
        !body.to_string().contains(&stream.to_string()),
        "no ids or error text on /readyz"
    );
    let (error,): (String,) =
        sqlx::query_as("SELECT error FROM projection_checkpoints WHERE name = 'stream_activity'")
            .fetch_one(&s.db.pool)
            .await
            .unwrap();
    assert!(error.contains("version 3"), "{error}");
    // The event it stopped on is not skipped: it (at least) is still to
    // apply. (Whether version 1 went in with it depends on how the two
    // events were batched.)
    assert!(p["lag"].as_i64().unwrap() >= 1, "{p}");
    let metrics = s.metrics().await;
    assert!(
        metrics.lines().any(|l| l.starts_with("sportello_projection_failed{projection=\"stream_activity\"} 1")),
        "{metrics}"
    );
    s.stop().await;
}
