//! A projection fed live from JetStream and the same projection rebuilt
//! from the PostgreSQL log give identical rows; rows of two networks stay
//! apart, and every message on the bus is under its own network's subject.

use serde_json::json;
use sportello_domain::{AccountId, EventId, Metadata, NetworkId, OrganizationId, StreamId};
use sportello_projections::StreamActivity;
use sportello_store::bus::{self, BusConfig};
use sportello_store::projection::{ProjectionRunner, rebuild};
use sportello_store::relay::{Relay, RelayConfig};
use sportello_store::{AppendRequest, EventStore, ExpectedVersion, Keyring, MasterKey, NewEvent};
use sportello_testkit::{TestDb, delete_stream, nats_url, unique_bus};
use std::sync::Arc;
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio_util::sync::CancellationToken;

type Row = (uuid::Uuid, uuid::Uuid, String, i64, i64, String, i64);

async fn rows(pool: &sqlx::PgPool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT network_id, stream_id, stream_kind, version, events, last_event_type, last_position
           FROM stream_activity ORDER BY stream_id",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

fn event(kind: &str, n: i64, org: Option<OrganizationId>) -> NewEvent {
    NewEvent {
        event_id: EventId::new(),
        event_type: format!("{kind}Happened{}", n % 3),
        schema_version: 1,
        payload: json!({ "n": n }),
        personal: None,
        concerns: org,
    }
}

/// Log readers see an event once every older transaction in the cluster
/// has ended (other tests hold some open): wait until all `n` are readable.
async fn wait_all_readable(pool: &sqlx::PgPool, n: i64) {
    wait_until("every event readable", async || {
        sportello_store::read::count_after(pool, sportello_store::LogCursor::START)
            .await
            .unwrap()
            == n
    })
    .await;
}

async fn wait_until<F: AsyncFn() -> bool>(what: &str, f: F) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !f().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn live_rows_equal_rebuilt_rows_and_networks_stay_apart() {
    let db = TestDb::new().await;
    let bus: BusConfig = unique_bus();
    let store = EventStore::new(db.pool.clone(), Keyring::new(MasterKey::generate()));
    let client = async_nats::connect(nats_url()).await.unwrap();
    let js = async_nats::jetstream::new(client);
    let cancel = CancellationToken::new();
    let relay = Relay::new(
        db.pool.clone(),
        js.clone(),
        RelayConfig {
            bus: bus.clone(),
            ..Default::default()
        },
        store.appended(),
    );
    let relay_task = tokio::spawn(relay.run(cancel.clone()));
    let runner = ProjectionRunner::new(
        db.pool.clone(),
        Some(js.clone()),
        bus.clone(),
        Arc::new(StreamActivity),
    );
    let status = runner.status();
    let runner_task = tokio::spawn(runner.run(cancel.clone()));

    let networks = [NetworkId::new(), NetworkId::new()];
    let org = OrganizationId::new();
    let mut total = 0i64;
    for round in 0..20i64 {
        for (i, net) in networks.iter().enumerate() {
            for s in 0..5 {
                let stream = StreamId(uuid::Uuid::from_u128(
                    ((i as u128) << 64) | s as u128 | 1 << 100,
                ));
                let kind = if s % 2 == 0 { "case" } else { "referral" };
                let n = 1 + (round + s as i64) % 3;
                store
                    .append(&AppendRequest {
                        network: *net,
                        stream_id: stream,
                        stream_kind: kind,
                        expected: ExpectedVersion::Any,
                        events: (0..n)
                            .map(|k| event(kind, k, (s == 1).then_some(org)))
                            .collect(),
                        metadata: Metadata::for_command(
                            AccountId::new(),
                            org,
                            OffsetDateTime::now_utc(),
                        ),
                        idempotency: None,
                    })
                    .await
                    .unwrap();
                total += n;
            }
        }
    }
    let (last_position,): (i64,) = sqlx::query_as("SELECT max(position) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    wait_until("the live projection", async || {
        status.position.load(std::sync::atomic::Ordering::Relaxed) == last_position
    })
    .await;
    assert!(
        status.live.load(std::sync::atomic::Ordering::Relaxed),
        "fed from the bus"
    );
    let live = rows(&db.pool).await;
    assert_eq!(live.len(), 10);
    assert_eq!(
        live.iter().map(|r| r.4).sum::<i64>(),
        total,
        "each event counted once"
    );

    // Rows of one network never mention the other's streams.
    for net in networks {
        let (foreign,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM stream_activity a JOIN events e USING (stream_id)
              WHERE a.network_id = $1 AND e.network_id <> $1",
        )
        .bind(net.0)
        .fetch_one(&db.pool)
        .await
        .unwrap();
        assert_eq!(foreign, 0);
    }

    // Every message is under its own network's subject.
    let mut stream = js.get_stream(&bus.stream_name).await.unwrap();
    let n = stream.info().await.unwrap().state.messages;
    assert_eq!(n as i64, total);
    for seq in 1..=n {
        let msg = stream.get_raw_message(seq).await.unwrap();
        let e = bus::decode(&msg.payload).unwrap();
        assert_eq!(msg.subject.as_str(), bus.subject(&e));
        let token = msg.subject.split('.').nth(1).unwrap();
        assert_eq!(token, e.network_id.to_string());
    }

    cancel.cancel();
    relay_task.await.unwrap();
    runner_task.await.unwrap().unwrap();

    // A rebuild reads the log up to the oldest transaction still open in the
    // cluster (other tests hold some): wait until every event is readable.
    wait_all_readable(&db.pool, total).await;
    let applied = rebuild(&db.pool, &StreamActivity, 37, &|_, _| {})
        .await
        .unwrap();
    assert_eq!(applied as i64, total);
    let rebuilt = rows(&db.pool).await;
    assert_eq!(
        rebuilt, live,
        "rebuilt from the log == built live from the bus"
    );
    let (generation,): (i32,) = sqlx::query_as(
        "SELECT generation FROM projection_checkpoints WHERE name = 'stream_activity'",
    )
    .fetch_one(&db.pool)
    .await
    .unwrap();
    assert_eq!(generation, 2, "the rebuild swapped in a new generation");
    let (old_exists,): (bool,) =
        sqlx::query_as("SELECT to_regclass('stream_activity_g1') IS NOT NULL")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(!old_exists, "the old generation is dropped");

    delete_stream(&nats_url(), &bus).await;
    db.drop_db().await;
}

/// The set-wise `apply_batch` of `stream_activity` gives the same rows as
/// applying one event at a time, whatever the batch boundaries; and it
/// refuses a batch in which a stream's versions do not follow.
#[tokio::test]
async fn set_wise_batches_give_the_rows_of_one_event_at_a_time() {
    use sportello_store::projection::Projection;
    let db = TestDb::new().await;
    let store = EventStore::new(db.pool.clone(), Keyring::new(MasterKey::generate()));
    let nets = [NetworkId::new(), NetworkId::new()];
    let streams: Vec<(NetworkId, StreamId)> =
        (0..12).map(|i| (nets[i % 2], StreamId::new())).collect();
    for round in 0..9 {
        for (i, (net, stream)) in streams.iter().enumerate() {
            if (round + i) % 3 == 0 {
                continue;
            }
            store
                .append(&AppendRequest {
                    network: *net,
                    stream_id: *stream,
                    stream_kind: if i % 2 == 0 { "case" } else { "referral" },
                    expected: ExpectedVersion::Any,
                    events: (0..1 + (i as i64 % 3))
                        .map(|k| event("Batch", k, None))
                        .collect(),
                    metadata: Metadata::for_command(
                        AccountId::new(),
                        OrganizationId::new(),
                        OffsetDateTime::now_utc(),
                    ),
                    idempotency: None,
                })
                .await
                .unwrap();
        }
    }
    let (total,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(&db.pool)
        .await
        .unwrap();
    wait_all_readable(&db.pool, total).await;
    let log =
        sportello_store::read::read_log(&db.pool, sportello_store::LogCursor::START, 10_000, None)
            .await
            .unwrap();
    let p = StreamActivity;
    let table_rows = async |table: &str| -> Vec<Row> {
        sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT network_id, stream_id, stream_kind, version, events, last_event_type, last_position
               FROM {table} ORDER BY stream_id"
        )))
        .fetch_all(&db.pool)
        .await
        .unwrap()
    };
    let mut conn = db.pool.acquire().await.unwrap();
    sqlx::raw_sql(sqlx::AssertSqlSafe(p.create_table("one_by_one")))
        .execute(&mut *conn)
        .await
        .unwrap();
    for e in &log {
        p.apply(&mut conn, "one_by_one", e).await.unwrap();
    }
    let expected = table_rows("one_by_one").await;
    assert_eq!(expected.len(), streams.len());
    for (k, size) in [1usize, 2, 7, 50, 10_000].into_iter().enumerate() {
        let table = format!("batched_{k}");
        sqlx::raw_sql(sqlx::AssertSqlSafe(p.create_table(&table)))
            .execute(&mut *conn)
            .await
            .unwrap();
        for chunk in log.chunks(size) {
            p.apply_batch(&mut conn, &table, chunk).await.unwrap();
        }
        assert_eq!(table_rows(&table).await, expected, "batches of {size}");
    }
    // A batch that skips a version of a stream is refused.
    let s0 = log[0].stream_id;
    let gap: Vec<_> = log
        .iter()
        .filter(|e| e.stream_id == s0 && e.version != 2)
        .cloned()
        .collect();
    assert!(gap.len() >= 2);
    sqlx::raw_sql(sqlx::AssertSqlSafe(p.create_table("gap")))
        .execute(&mut *conn)
        .await
        .unwrap();
    assert!(p.apply_batch(&mut conn, "gap", &gap).await.is_err());
    // A stream whose first event is missing is refused too, set-wise and
    // one by one.
    let second = log
        .iter()
        .find(|e| e.version == 2)
        .cloned()
        .expect("a stream with two events");
    assert!(
        p.apply_batch(&mut conn, "gap", std::slice::from_ref(&second))
            .await
            .is_err()
    );
    assert!(p.apply(&mut conn, "gap", &second).await.is_err());
    drop(conn);
    db.drop_db().await;
}

/// Two rebuilds of one projection at once: one runs, the other is refused
/// (or runs after it); the read model is right either way.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_rebuilds_never_corrupt_the_read_model() {
    let db = TestDb::new().await;
    let store = EventStore::new(db.pool.clone(), Keyring::new(MasterKey::generate()));
    let net = NetworkId::new();
    for _ in 0..200 {
        store
            .append(&AppendRequest {
                network: net,
                stream_id: StreamId::new(),
                stream_kind: "case",
                expected: ExpectedVersion::NoStream,
                events: (0..5).map(|k| event("Rebuilt", k, None)).collect(),
                metadata: Metadata::for_command(
                    AccountId::new(),
                    OrganizationId::new(),
                    OffsetDateTime::now_utc(),
                ),
                idempotency: None,
            })
            .await
            .unwrap();
    }
    wait_all_readable(&db.pool, 1000).await;
    let (a, b) = tokio::join!(
        rebuild(&db.pool, &StreamActivity, 50, &|_, _| {}),
        rebuild(&db.pool, &StreamActivity, 50, &|_, _| {})
    );
    for r in [&a, &b] {
        if let Err(e) = r {
            assert!(e.to_string().contains("already running"), "{e}");
        }
    }
    assert!(a.is_ok() || b.is_ok());
    let (rows, events): (i64, Option<i64>) =
        sqlx::query_as("SELECT count(*), sum(events)::bigint FROM stream_activity")
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert_eq!((rows, events), (200, Some(1000)));
    db.drop_db().await;
}
