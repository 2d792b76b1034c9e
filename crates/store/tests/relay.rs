//! Several server processes each run a relay: only one leads at a time,
//! and the stream still holds exactly the log's events, once, in order —
//! also when the leader goes away and another takes over.

mod common;

use common::{append_one, store};
use sportello_domain::{NetworkId, StreamId};
use sportello_store::ExpectedVersion;
use sportello_store::bus;
use sportello_store::relay::{Relay, RelayConfig};
use sportello_testkit::{TestDb, delete_stream, nats_url, unique_bus};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_relay_leads_and_the_stream_is_the_log() {
    let db = TestDb::new().await;
    let bus_cfg = unique_bus();
    let store = store(&db.pool);
    let client = async_nats::connect(nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);

    let mut relays = Vec::new();
    for _ in 0..3 {
        let token = CancellationToken::new();
        let relay = Relay::new(
            db.pool.clone(),
            js.clone(),
            RelayConfig {
                bus: bus_cfg.clone(),
                ..Default::default()
            },
            store.appended(),
        );
        let status = relay.status();
        let task = tokio::spawn(relay.run(token.clone()));
        relays.push((token, status, task));
    }

    let net = NetworkId::new();
    let mut total = 0;
    for round in 0..3 {
        for i in 0..200u64 {
            store
                .append(&append_one(
                    net,
                    StreamId::new(),
                    ExpectedVersion::NoStream,
                    i,
                ))
                .await
                .unwrap();
            total += 1;
            let leaders = relays
                .iter()
                .filter(|(_, s, _)| s.leader.load(Ordering::Relaxed))
                .count();
            assert!(leaders <= 1, "at most one relay leads, saw {leaders}");
        }
        if round < 2 {
            // Stop the current leader (a process going away); another takes over.
            let deadline = Instant::now() + Duration::from_secs(10);
            let leader = loop {
                if let Some(i) = relays
                    .iter()
                    .position(|(_, s, _)| s.leader.load(Ordering::Relaxed))
                {
                    break i;
                }
                assert!(Instant::now() < deadline, "no relay took the lead");
                tokio::time::sleep(Duration::from_millis(10)).await;
            };
            let (token, _, task) = relays.remove(leader);
            token.cancel();
            task.await.unwrap();
        }
    }

    // The stream ends holding exactly the log, in order.
    let log: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM events ORDER BY tx_id, position")
        .fetch_all(&db.pool)
        .await
        .unwrap();
    assert_eq!(log.len(), total);
    let mut stream = js.get_stream(&bus_cfg.stream_name).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while stream.info().await.unwrap().state.messages < total as u64 {
        assert!(
            Instant::now() < deadline,
            "the remaining relay did not catch up"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let info = stream.info().await.unwrap().state.clone();
    assert_eq!(info.messages, total as u64, "no duplicates");
    for (i, id) in log.iter().enumerate() {
        let msg = stream.get_raw_message(i as u64 + 1).await.unwrap();
        assert_eq!(
            msg.headers.get("Nats-Msg-Id").unwrap().as_str(),
            id.to_string(),
            "message {} is the log's event {}",
            i + 1,
            i + 1
        );
        assert_eq!(bus::decode(&msg.payload).unwrap().event_id.0, *id);
    }
    for (token, _, task) in relays {
        token.cancel();
        task.await.unwrap();
    }
    delete_stream(&nats_url(), &bus_cfg).await;
    db.drop_db().await;
}
