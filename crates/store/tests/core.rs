//! The event store's guarantees, against the real PostgreSQL:
//! optimistic concurrency, no skipped events under concurrent commits,
//! idempotency, tenancy, upcasting of stored old versions, append-only.

mod common;

use common::{append_one, meta, plain, store};
use rand::{Rng, SeedableRng};
use serde_json::json;
use sportello_domain::{EventId, NetworkId, PersonId, StreamId};
use sportello_store::read::read_log;
use sportello_store::{
    AppendRequest, ExpectedVersion, Idempotency, Keyring, LogCursor, Personal, StoreError,
};
use sportello_testkit::TestDb;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Barrier;
use uuid::Uuid;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thirty_two_writers_on_one_stream_each_version_won_once() {
    let db = TestDb::with_pool_size(40).await;
    let store = store(&db.pool);
    let net = NetworkId::new();
    let stream = StreamId::new();
    store
        .append(&append_one(net, stream, ExpectedVersion::NoStream, 0))
        .await
        .unwrap();

    const WRITERS: usize = 32;
    const ROUNDS: i64 = 10;
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for round in 1..=ROUNDS {
        let barrier = Arc::new(Barrier::new(WRITERS));
        let mut tasks = Vec::new();
        for w in 0..WRITERS {
            let store = store.clone();
            let barrier = barrier.clone();
            tasks.push(tokio::spawn(async move {
                let req = append_one(net, stream, ExpectedVersion::Exact(round), w as u64);
                barrier.wait().await;
                (w, store.append(&req).await)
            }));
        }
        let mut won = 0;
        for t in tasks {
            match t.await.unwrap() {
                (w, Ok(r)) => {
                    assert_eq!(r.last_version, round + 1);
                    winners.push((round + 1, w));
                    won += 1;
                }
                (_, Err(StoreError::Conflict { .. })) => conflicts += 1,
                (_, Err(e)) => panic!("unexpected error: {e}"),
            }
        }
        assert_eq!(
            won,
            1,
            "round {round}: exactly one writer wins version {}",
            round + 1
        );
    }
    assert_eq!(
        conflicts,
        (WRITERS - 1) * ROUNDS as usize,
        "every loser got a conflict"
    );

    let events = store.read_stream(net, stream).await.unwrap();
    let versions: Vec<i64> = events.iter().map(|e| e.event.version).collect();
    assert_eq!(
        versions,
        (1..=ROUNDS + 1).collect::<Vec<_>>(),
        "nothing lost, no gap"
    );
    for (version, w) in winners {
        let e = &events[(version - 1) as usize].event;
        assert_eq!(
            e.payload["n"],
            json!(w),
            "version {version} holds the winner's event"
        );
    }
    db.drop_db().await;
}

/// 16 appenders, some holding their transaction open for random
/// milliseconds, 11,200 events, while a reader follows the log.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_reader_following_the_log_never_skips_a_late_commit() {
    const APPENDERS: usize = 16;
    const PER_APPENDER: usize = 700;
    let db = TestDb::with_pool_size(24).await;
    let store = store(&db.pool);
    let net = NetworkId::new();
    let shared = StreamId::new();

    let reader_pool = db.pool.clone();
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader_done = done.clone();
    let reader = tokio::spawn(async move {
        let mut cursor = LogCursor::START;
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let finished = reader_done.load(std::sync::atomic::Ordering::SeqCst);
            let batch = read_log(&reader_pool, cursor, 300, None).await.unwrap();
            for e in &batch {
                assert!(e.cursor > cursor, "log order is strictly increasing");
                cursor = e.cursor;
                seen.push((e.event_id, e.stream_id, e.version));
            }
            if batch.is_empty() {
                if finished {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            assert!(Instant::now() < deadline, "reader timed out");
        }
    });

    let mut tasks = Vec::new();
    for a in 0..APPENDERS {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let own = StreamId::new();
            let mut committed = Vec::new();
            let mut rng = rand::rngs::StdRng::from_rng(&mut rand::rng());
            for i in 0..PER_APPENDER {
                // A third of the appends go to one shared stream, to check
                // that log order keeps every stream's version order.
                let stream = if i % 3 == 0 { shared } else { own };
                let hold = a % 2 == 0 && rng.random_bool(0.3);
                let hold_ms = rng.random_range(0..15);
                loop {
                    let req = append_one(net, stream, ExpectedVersion::Any, i as u64);
                    let id = req.events[0].event_id;
                    let mut tx = store.pool().begin().await.unwrap();
                    match store.append_in(&mut tx, &req).await {
                        Ok(_) => {
                            if hold {
                                tokio::time::sleep(Duration::from_millis(hold_ms)).await;
                            }
                            tx.commit().await.unwrap();
                            committed.push(id);
                            break;
                        }
                        Err(StoreError::Retry) | Err(StoreError::Conflict { .. }) => {
                            tx.rollback().await.unwrap();
                        }
                        Err(e) => panic!("append failed: {e}"),
                    }
                }
            }
            committed
        }));
    }
    let mut committed = HashSet::new();
    for t in tasks {
        committed.extend(t.await.unwrap());
    }
    done.store(true, std::sync::atomic::Ordering::SeqCst);
    let seen = reader.await.unwrap();

    assert_eq!(committed.len(), APPENDERS * PER_APPENDER);
    let ids: Vec<EventId> = seen.iter().map(|s| s.0).collect();
    let unique: HashSet<EventId> = ids.iter().copied().collect();
    assert_eq!(unique.len(), ids.len(), "no event seen twice");
    assert_eq!(unique, committed, "every committed event seen");

    // The order seen is the log's order.
    let log_order: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM events ORDER BY tx_id, position")
            .fetch_all(&db.pool)
            .await
            .unwrap();
    assert_eq!(ids.iter().map(|e| e.0).collect::<Vec<_>>(), log_order);

    // And within each stream, versions come in order with no gap.
    let mut last: HashMap<StreamId, i64> = HashMap::new();
    for (_, stream, version) in &seen {
        let prev = last.insert(*stream, *version).unwrap_or(0);
        assert_eq!(*version, prev + 1, "stream {stream} read in version order");
    }
    db.drop_db().await;
}

#[tokio::test]
async fn an_idempotent_retry_appends_once_and_a_reused_key_is_refused() {
    let db = TestDb::new().await;
    let store = store(&db.pool);
    let net = NetworkId::new();
    let key = Uuid::new_v4();
    let mut req = append_one(net, StreamId::new(), ExpectedVersion::NoStream, 1);
    req.idempotency = Some(Idempotency::for_request(key, b"body one"));

    let first = store.append(&req).await.unwrap();
    assert!(!first.replayed);

    // A retry mints a new stream id and event id (as a client retrying a
    // create would cause): it still gets the first answer.
    let mut retry = append_one(net, StreamId::new(), ExpectedVersion::NoStream, 1);
    retry.idempotency = Some(Idempotency::for_request(key, b"body one"));
    let again = store.append(&retry).await.unwrap();
    assert!(again.replayed);
    assert_eq!(
        (again.stream_id, again.last_version, again.position),
        (first.stream_id, first.last_version, first.position)
    );

    let mut other = append_one(net, StreamId::new(), ExpectedVersion::NoStream, 2);
    other.idempotency = Some(Idempotency::for_request(key, b"body two"));
    assert!(matches!(
        store.append(&other).await,
        Err(StoreError::IdempotencyMismatch)
    ));

    // The same key in another network is another key.
    let mut elsewhere = append_one(
        NetworkId::new(),
        StreamId::new(),
        ExpectedVersion::NoStream,
        2,
    );
    elsewhere.idempotency = Some(Idempotency::for_request(key, b"body two"));
    assert!(!store.append(&elsewhere).await.unwrap().replayed);

    let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM events WHERE network_id = $1")
        .bind(net.0)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(n, 1, "retries appended nothing");

    // Concurrent retries of one request: one append.
    let key = Uuid::new_v4();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = append_one(net, StreamId::new(), ExpectedVersion::NoStream, 3);
            r.idempotency = Some(Idempotency::for_request(key, b"same"));
            store.append(&r).await.unwrap()
        }));
    }
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    assert_eq!(results.iter().filter(|r| !r.replayed).count(), 1);
    assert!(results.iter().all(|r| r.stream_id == results[0].stream_id));
    db.drop_db().await;
}

/// A key claimed in a write's transaction keeps that write's answer: a
/// claim racing it waits, then gets the answer; an answer about a person
/// is sealed under their key (not in clear) and, once they are erased,
/// refused as erased; the same key with another request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_claimed_key_keeps_its_first_answer_sealed_for_a_person() {
    use sportello_store::Claim;
    let db = TestDb::new().await;
    let store = store(&db.pool);
    let net = NetworkId::new();
    let person = PersonId::new();
    let idem = Idempotency::for_request(Uuid::new_v4(), b"the request");
    let stream = StreamId::new();
    let answer = json!({ "status": 201, "body": "{\"place\":\"Demo: via Segreta 1\"}" });

    let mut tx = store.pool().begin().await.unwrap();
    assert!(matches!(
        store.claim_in(&mut tx, net, &idem, stream).await.unwrap(),
        Claim::Ours
    ));
    // A retry racing the first: waits on the claim until it commits.
    let racing = tokio::spawn({
        let store = store.clone();
        async move {
            let mut tx = store.pool().begin().await.unwrap();
            let claim = store.claim_in(&mut tx, net, &idem, StreamId::new()).await;
            tx.rollback().await.unwrap();
            claim.unwrap()
        }
    });
    let result = store
        .append_in(
            &mut tx,
            &append_one(net, stream, ExpectedVersion::NoStream, 1),
        )
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        !racing.is_finished(),
        "the racing claim waits for the first"
    );
    store
        .keep_answer_in(&mut tx, net, &idem, &result, &answer, Some(person))
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let Claim::Answered(first) = racing.await.unwrap() else {
        panic!("the racing claim gets the first answer");
    };
    assert_eq!(first.answer.as_ref(), Some(&answer));
    assert_eq!(first.result.stream_id, stream);
    assert!(first.result.replayed);
    let later = store.idempotent_answer(net, &idem).await.unwrap().unwrap();
    assert_eq!(later, first);
    let (clear, sealed): (Option<serde_json::Value>, Option<Vec<u8>>) =
        sqlx::query_as("SELECT answer, answer_sealed FROM idempotency WHERE key = $1")
            .bind(idem.key)
            .fetch_one(&db.pool)
            .await
            .unwrap();
    assert!(
        clear.is_none() && sealed.is_some(),
        "kept sealed, not in clear"
    );

    let other = Idempotency::for_request(idem.key, b"another request");
    assert!(matches!(
        store.idempotent_answer(net, &other).await,
        Err(StoreError::IdempotencyMismatch)
    ));
    store.keyring().shred(&db.pool, net, person).await.unwrap();
    assert!(matches!(
        store.idempotent_answer(net, &idem).await,
        Err(StoreError::Erased(p)) if p == person.0
    ));
    db.drop_db().await;
}

#[tokio::test]
async fn networks_never_see_each_other_in_the_store() {
    let db = TestDb::new().await;
    let store = store(&db.pool);
    let (a, b) = (NetworkId::new(), NetworkId::new());
    let (sa, sb) = (StreamId::new(), StreamId::new());
    for i in 0..5 {
        store
            .append(&append_one(a, sa, ExpectedVersion::Any, i))
            .await
            .unwrap();
        store
            .append(&append_one(b, sb, ExpectedVersion::Any, i))
            .await
            .unwrap();
    }
    assert_eq!(store.read_stream(a, sa).await.unwrap().len(), 5);
    assert!(
        store.read_stream(b, sa).await.unwrap().is_empty(),
        "B cannot read A's stream"
    );
    // The log shows events once every older transaction in the cluster has
    // ended (other tests hold some open): wait for all five, bounded.
    let deadline = Instant::now() + Duration::from_secs(30);
    let log_a = loop {
        let log = read_log(&db.pool, LogCursor::START, 100, Some(a))
            .await
            .unwrap();
        if log.len() >= 5 || Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(log_a.len(), 5);
    assert!(log_a.iter().all(|e| e.network_id == a));
    // Writing into A's stream as B is refused, and appends nothing.
    assert!(matches!(
        store
            .append(&append_one(b, sa, ExpectedVersion::Any, 9))
            .await,
        Err(StoreError::WrongTenant(_))
    ));
    assert!(matches!(
        store
            .append(&append_one(b, sa, ExpectedVersion::Exact(5), 9))
            .await,
        Err(StoreError::WrongTenant(_))
    ));
    assert_eq!(store.read_stream(a, sa).await.unwrap().len(), 5);
    // A person's key belongs to one network too.
    let person = PersonId::new();
    let mut with_personal = append_one(a, StreamId::new(), ExpectedVersion::NoStream, 0);
    with_personal.events[0].personal = Some((person, json!({"x": 1})));
    store.append(&with_personal).await.unwrap();
    let mut foreign = append_one(b, StreamId::new(), ExpectedVersion::NoStream, 0);
    foreign.events[0].personal = Some((person, json!({"x": 2})));
    assert!(matches!(
        store.append(&foreign).await,
        Err(StoreError::WrongTenant(_))
    ));
    db.drop_db().await;
}

#[tokio::test]
async fn a_stored_old_version_reads_back_upcast_and_is_never_rewritten() {
    let db = TestDb::new().await;
    let store = store(&db.pool);
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/person_taken_in_charge_v1.json")).unwrap();
    let net = NetworkId::new();
    let person = PersonId::new();
    let event_id = EventId::new();
    let mut payload = fixture["payload"].clone();
    payload["person_id"] = json!(person);

    // Store it as an old version of the code would have: straight into the table.
    let mut conn = db.pool.acquire().await.unwrap();
    let key = store
        .keyring()
        .key_for_writing(&mut conn, net, person)
        .await
        .unwrap();
    let sealed = Keyring::seal_with(&key, event_id, &fixture["personal"]).unwrap();
    sqlx::query(
        "INSERT INTO events (event_id, network_id, stream_id, stream_kind, version, event_type,
                             schema_version, payload, person_id, personal, metadata)
         VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $10)",
    )
    .bind(event_id.0)
    .bind(net.0)
    .bind(person.0)
    .bind(fixture["stream_kind"].as_str().unwrap())
    .bind(fixture["event_type"].as_str().unwrap())
    .bind(fixture["schema_version"].as_i64().unwrap() as i32)
    .bind(&payload)
    .bind(person.0)
    .bind(&sealed)
    .bind(&fixture["metadata"])
    .execute(&mut *conn)
    .await
    .unwrap();

    let events = store.read_stream(net, StreamId(person.0)).await.unwrap();
    assert_eq!(events.len(), 1);
    let e = &events[0];
    assert_eq!(e.event.schema_version, 2);
    assert_eq!(e.event.stored_schema_version, 1);
    assert_eq!(e.event.payload["channel"], "desk");
    let Personal::Open(p) = &e.personal else {
        panic!("personal part opens")
    };
    assert_eq!(p["names"][0]["text"], "Demo Vecchia Versione");
    assert_eq!(p["names"][0]["kind"], "as_in_document");

    // The stored row is as it was.
    let (sv, stored): (i32, serde_json::Value) =
        sqlx::query_as("SELECT schema_version, payload FROM events WHERE event_id = $1")
            .bind(event_id.0)
            .fetch_one(&mut *conn)
            .await
            .unwrap();
    assert_eq!((sv, stored), (1, payload));

    // And the log refuses to be rewritten or pruned.
    let update = sqlx::query("UPDATE events SET schema_version = 2 WHERE event_id = $1")
        .bind(event_id.0)
        .execute(&mut *conn)
        .await;
    assert!(update.is_err(), "events are append-only");
    let delete = sqlx::query("DELETE FROM events").execute(&mut *conn).await;
    assert!(delete.is_err(), "events are append-only");
    drop(conn);
    db.drop_db().await;
}

#[tokio::test]
async fn an_append_with_several_events_is_all_or_nothing() {
    let db = TestDb::new().await;
    let store = store(&db.pool);
    let net = NetworkId::new();
    let stream = StreamId::new();
    let req = AppendRequest {
        network: net,
        stream_id: stream,
        stream_kind: "case",
        expected: ExpectedVersion::NoStream,
        events: vec![plain(1), plain(2), plain(3)],
        metadata: meta(),
        idempotency: None,
    };
    let r = store.append(&req).await.unwrap();
    assert_eq!((r.first_version, r.last_version), (1, 3));
    // Re-using an event id makes the whole append fail: nothing half-written.
    let mut dup = req.clone();
    dup.expected = ExpectedVersion::Exact(3);
    dup.events = vec![plain(4), req.events[0].clone()];
    assert!(store.append(&dup).await.is_err());
    assert_eq!(store.read_stream(net, stream).await.unwrap().len(), 3);
    let (v,): (i64,) = sqlx::query_as("SELECT max(version) FROM events WHERE stream_id = $1")
        .bind(stream.0)
        .fetch_one(&db.pool)
        .await
        .unwrap();
    assert_eq!(v, 3);
    assert!(matches!(
        store
            .append(&AppendRequest {
                expected: ExpectedVersion::Exact(0),
                ..req.clone()
            })
            .await,
        Err(StoreError::InvalidExpectedVersion(0))
    ));
    assert!(matches!(
        store
            .append(&AppendRequest {
                events: vec![],
                ..req.clone()
            })
            .await,
        Err(StoreError::Empty)
    ));
    db.drop_db().await;
}

/// Several appends to one stream inside one transaction (a command that
/// touches a stream twice) all succeed, in order.
#[tokio::test]
async fn two_appends_to_one_stream_in_one_transaction() {
    let db = TestDb::new().await;
    let store = store(&db.pool);
    let net = NetworkId::new();
    let stream = StreamId::new();
    let mut tx = db.pool.begin().await.unwrap();
    store
        .append_in(
            &mut tx,
            &append_one(net, stream, ExpectedVersion::NoStream, 1),
        )
        .await
        .unwrap();
    let second = store
        .append_in(
            &mut tx,
            &append_one(net, stream, ExpectedVersion::Exact(1), 2),
        )
        .await
        .unwrap();
    assert_eq!(second.last_version, 2);
    store
        .append_in(&mut tx, &append_one(net, stream, ExpectedVersion::Any, 3))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let versions: Vec<i64> = store
        .read_stream(net, stream)
        .await
        .unwrap()
        .iter()
        .map(|e| e.event.version)
        .collect();
    assert_eq!(versions, vec![1, 2, 3]);
    db.drop_db().await;
}

/// A server started with another master key than the database was written
/// with refuses, instead of making keys no other process can unwrap.
#[tokio::test]
async fn a_wrong_master_key_is_refused() {
    let db = TestDb::new().await;
    let right = sportello_store::Keyring::new(sportello_store::MasterKey::generate());
    right.verify_master_key(&db.pool).await.unwrap();
    right.verify_master_key(&db.pool).await.unwrap();
    let wrong = sportello_store::Keyring::new(sportello_store::MasterKey::generate());
    let err = wrong.verify_master_key(&db.pool).await.unwrap_err();
    assert!(err.to_string().contains("not the one"), "{err}");
    db.drop_db().await;
}
