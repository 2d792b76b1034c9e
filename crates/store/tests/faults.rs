//! Fault tests of the pipeline (PostgreSQL log → relay → JetStream →
//! projections), against a real PostgreSQL and real `nats-server`s, no
//! mocks. They prove that:
//!
//! 1. a NATS outage under load does not stop appends, and the relay then
//!    catches up so that the stream holds exactly the log's events, once
//!    each, in log order;
//! 2. a relay that dies between publishing and recording its progress (by
//!    hand-published messages, by aborting it mid-batch) is resumed by a
//!    fresh relay from the stream's last sequence, not from its recorded
//!    progress nor the deduplication window: still exactly the log, in
//!    order, once each; and that a relay task dying inside a live process
//!    does not keep the relay's leadership;
//! 3. a projection never applies an event twice (redelivered batches, a
//!    runner killed and restarted under load); a projection that cannot
//!    apply an event stops (from the log and from the bus), records why,
//!    and keeps nothing of that event or after it: its checkpoint stays
//!    before the event and its rows are exactly those of the checkpoint;
//!    and a runner that dies of a panic leaves nothing of its batch behind
//!    and does not keep the projection's lock.
//!
//! Each test has its own database, stream names and private `nats-server`;
//! the shared services are never stopped or touched.

use async_nats::jetstream::context::PublishErrorKind;
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use futures::{StreamExt, TryStreamExt};
use serde_json::json;
use sportello_domain::{AccountId, EventId, Metadata, NetworkId, OrganizationId, StreamId};
use sportello_store::bus::{self, BusConfig};
use sportello_store::projection::checkpoint::{self, BatchOutcome, Checkpoint};
use sportello_store::projection::runner::RunnerError;
use sportello_store::projection::{
    ApplyError, Projection, ProjectionRunner, ProjectionStatus, supervise,
};
use sportello_store::read::{count_after, read_log};
use sportello_store::relay::{Relay, RelayConfig, RelayStatus};
use sportello_store::{
    AppendRequest, EventStore, ExpectedVersion, Keyring, LogCursor, MasterKey, NewEvent,
    RecordedEvent, StoreError,
};
use sportello_testkit::{PrivateNats, TestDb, unique_bus};
use sqlx::postgres::PgPoolOptions;
use sqlx::{PgConnection, PgPool};
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// How long any awaited condition may take before the test fails.
const WAIT: Duration = Duration::from_secs(30);

/// Poll `f` until it holds; fail the test after `limit`.
async fn wait_for(what: &str, limit: Duration, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + limit;
    loop {
        if f().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn store_on(pool: &PgPool) -> EventStore {
    EventStore::new(pool.clone(), Keyring::new(MasterKey::generate()))
}

fn event(event_type: &str, n: u64, concerns: Option<OrganizationId>) -> NewEvent {
    NewEvent {
        event_id: EventId::new(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        payload: json!({ "n": n }),
        personal: None,
        concerns,
    }
}

fn request(
    network: NetworkId,
    stream: StreamId,
    version: i64,
    events: Vec<NewEvent>,
) -> AppendRequest {
    AppendRequest {
        network,
        stream_id: stream,
        stream_kind: "case",
        expected: if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        },
        events,
        metadata: Metadata::for_command(
            AccountId::new(),
            OrganizationId::new(),
            OffsetDateTime::now_utc(),
        ),
        idempotency: None,
    }
}

/// Append `appends` appends of `per_append` events each, round robin over
/// `streams` new streams; returns the number of events appended.
async fn append_many(
    store: &EventStore,
    streams: usize,
    appends: usize,
    per_append: usize,
    event_type: &str,
) -> u64 {
    let network = NetworkId::new();
    let org = OrganizationId::new();
    let mut streams: Vec<(StreamId, i64)> = (0..streams).map(|_| (StreamId::new(), 0)).collect();
    let mut n = 0u64;
    for i in 0..appends {
        let s = i % streams.len();
        let (stream, version) = streams[s];
        let events = (0..per_append)
            .map(|k| event(event_type, n + k as u64, (k % 2 == 0).then_some(org)))
            .collect();
        let r = store
            .append(&request(network, stream, version, events))
            .await
            .expect("append");
        streams[s].1 = r.last_version;
        n += per_append as u64;
    }
    n
}

/// Writers appending continuously from several tasks until told to stop.
struct Load {
    stop: Arc<AtomicBool>,
    appended: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<Result<u64, StoreError>>>,
}

impl Load {
    fn start(store: &EventStore, writers: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let appended = Arc::new(AtomicU64::new(0));
        let tasks = (0..writers)
            .map(|_| {
                let (store, stop, appended) = (store.clone(), stop.clone(), appended.clone());
                tokio::spawn(async move {
                    let network = NetworkId::new();
                    let org = OrganizationId::new();
                    let mut streams: Vec<(StreamId, i64)> =
                        (0..5).map(|_| (StreamId::new(), 0)).collect();
                    let (mut i, mut total) = (0u64, 0u64);
                    while !stop.load(Ordering::SeqCst) {
                        let s = (i % streams.len() as u64) as usize;
                        let n = 1 + i % 3;
                        let (stream, version) = streams[s];
                        let events = (0..n)
                            .map(|k| {
                                event("FaultLoadRecorded", i * 10 + k, (k == 0).then_some(org))
                            })
                            .collect();
                        let r = store
                            .append(&request(network, stream, version, events))
                            .await?;
                        streams[s].1 = r.last_version;
                        total += n;
                        appended.fetch_add(n, Ordering::SeqCst);
                        i += 1;
                        // Pacing only (keeps the log at a few thousand events).
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    Ok::<u64, StoreError>(total)
                })
            })
            .collect();
        Load {
            stop,
            appended,
            tasks,
        }
    }

    /// Events appended so far.
    fn appended(&self) -> u64 {
        self.appended.load(Ordering::SeqCst)
    }

    /// Fail at once if a writer stopped by itself (an append failed).
    fn assert_running(&self) {
        assert!(
            self.tasks.iter().all(|t| !t.is_finished()),
            "a writer stopped: an append failed"
        );
    }

    /// Stop the writers; every append must have succeeded. Returns the
    /// number of events appended.
    async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::SeqCst);
        let mut total = 0;
        for t in self.tasks {
            total += t
                .await
                .expect("writer task")
                .expect("every append succeeds");
        }
        assert_eq!(total, self.appended.load(Ordering::SeqCst));
        total
    }
}

/// The whole log in log order, once every committed event is readable.
async fn whole_log(pool: &PgPool) -> Vec<RecordedEvent> {
    let (committed,): (i64,) = sqlx::query_as("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await
        .unwrap();
    wait_for(
        "every committed event to be readable in log order",
        WAIT,
        async || count_after(pool, LogCursor::START).await.unwrap() == committed,
    )
    .await;
    let log = read_log(pool, LogCursor::START, committed + 1, None)
        .await
        .unwrap();
    assert_eq!(log.len() as i64, committed);
    log
}

async fn js_client(url: &str) -> jetstream::Context {
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(url)
        .await
        .expect("NATS client");
    jetstream::new(client)
}

/// The stream's state, or None when it (or NATS) is not there.
async fn stream_state(js: &jetstream::Context, bus: &BusConfig) -> Option<stream::State> {
    let mut s = js.get_stream(&bus.stream_name).await.ok()?;
    Some(s.info().await.ok()?.state.clone())
}

/// The relay's recorded progress (its informational checkpoint).
async fn relay_progress(pool: &PgPool, bus: &BusConfig) -> Option<i64> {
    sqlx::query_as::<_, (i64,)>("SELECT stream_seq FROM relay_progress WHERE stream_name = $1")
        .bind(&bus.stream_name)
        .fetch_optional(pool)
        .await
        .unwrap()
        .map(|(s,)| s)
}

fn start_relay(
    pool: &PgPool,
    js: &jetstream::Context,
    bus: &BusConfig,
    store: &EventStore,
    batch: i64,
    cancel: &CancellationToken,
) -> (Arc<RelayStatus>, JoinHandle<()>) {
    let relay = Relay::new(
        pool.clone(),
        js.clone(),
        RelayConfig {
            bus: bus.clone(),
            batch,
            poll: Duration::from_millis(5),
        },
        store.appended(),
    );
    let status = relay.status();
    (status, tokio::spawn(relay.run(cancel.clone())))
}

/// A test database, a private NATS, a bus of their own and a relay
/// publishing the log on it: what the live tests start from.
struct Live {
    db: TestDb,
    nats: PrivateNats,
    bus: BusConfig,
    store: EventStore,
    js: jetstream::Context,
    cancel: CancellationToken,
    relay_status: Arc<RelayStatus>,
    relay_task: JoinHandle<()>,
}

impl Live {
    /// Start it, the relay publishing `batch` events at a time.
    async fn start(batch: i64) -> Live {
        let db = TestDb::new().await;
        let nats = PrivateNats::start().await;
        let bus = unique_bus();
        let store = store_on(&db.pool);
        let js = js_client(&nats.url()).await;
        let cancel = CancellationToken::new();
        let (relay_status, relay_task) = start_relay(&db.pool, &js, &bus, &store, batch, &cancel);
        Live {
            db,
            nats,
            bus,
            store,
            js,
            cancel,
            relay_status,
            relay_task,
        }
    }
}

/// Publish one event exactly as the relay does.
async fn publish_like_the_relay(
    js: &jetstream::Context,
    bus: &BusConfig,
    e: &RecordedEvent,
    expected_last_sequence: u64,
) -> Result<jetstream::publish::PublishAck, jetstream::context::PublishError> {
    js.send_publish(
        bus.subject(e),
        PublishMessage::build()
            .payload(bus::encode(e))
            .message_id(e.event_id.to_string())
            .expected_last_sequence(expected_last_sequence),
    )
    .await
    .expect("publish sent")
    .await
}

/// The stream holds exactly `log`: message `i + 1` is event `i`, with its
/// id as `Nats-Msg-Id`, its subject and its body; nothing more, nothing twice.
async fn assert_stream_is_the_log(js: &jetstream::Context, bus: &BusConfig, log: &[RecordedEvent]) {
    let mut stream = js.get_stream(&bus.stream_name).await.expect("the stream");
    let state = stream.info().await.expect("stream info").state.clone();
    let n = log.len() as u64;
    assert_eq!(
        (state.messages, state.first_sequence, state.last_sequence),
        (n, 1, n),
        "the stream must hold exactly the {n} events of the log"
    );
    let messages: Vec<_> = futures::stream::iter(1..=n)
        .map(|seq| stream.get_raw_message(seq))
        .buffered(32)
        .try_collect()
        .await
        .expect("every message of the stream");
    let mut seen = HashSet::new();
    for (i, (m, e)) in messages.iter().zip(log).enumerate() {
        assert_eq!(m.sequence, i as u64 + 1);
        let id = m
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .unwrap_or_else(|| panic!("message {} has no Nats-Msg-Id", m.sequence));
        assert_eq!(
            id.as_str(),
            e.event_id.to_string(),
            "message {} is not the log's event #{}",
            m.sequence,
            i + 1
        );
        let body = bus::decode(&m.payload).expect("a recorded event");
        assert_eq!(&body, e, "body of message {}", m.sequence);
        assert_eq!(m.subject.as_str(), bus.subject(e));
        assert!(
            seen.insert(body.event_id),
            "event {} published twice",
            body.event_id
        );
    }
}

// ---------------------------------------------------------------- 1. outage

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nats_outage_appends_go_on_and_the_relay_catches_up_in_log_order() {
    let Live {
        db,
        mut nats,
        bus,
        store,
        js,
        cancel,
        relay_status: status,
        relay_task,
    } = Live::start(200).await;

    let started = Instant::now();
    let load = Load::start(&store, 4);
    wait_for("the relay to publish under load", WAIT, async || {
        load.assert_running();
        status.stream_seq.load(Ordering::SeqCst) >= 100
    })
    .await;

    // Outage: the bus dies mid-load.
    nats.stop();
    let at_stop = load.appended();
    eprintln!(
        "{:?}: NATS stopped after {at_stop} events",
        started.elapsed()
    );
    wait_for(
        "appends to go on, and the relay to fall behind and fail, while NATS is down",
        WAIT,
        async || {
            load.assert_running();
            load.appended() >= at_stop + 300
                && status.failing.load(Ordering::SeqCst)
                && sportello_store::relay::relay_lag(&db.pool, &bus.stream_name)
                    .await
                    .unwrap()
                    > 0
        },
    )
    .await;
    load.assert_running();

    // The bus comes back; the relay must catch up while appends go on.
    nats.resume().await;
    let at_resume = load.appended();
    eprintln!(
        "{:?}: NATS resumed after {at_resume} events",
        started.elapsed()
    );
    wait_for(
        "the relay to lead again and publish past the outage, under load",
        Duration::from_secs(60),
        async || {
            load.assert_running();
            status.leader.load(Ordering::SeqCst)
                && !status.failing.load(Ordering::SeqCst)
                && status.stream_seq.load(Ordering::SeqCst) >= at_resume as i64
                && load.appended() >= at_resume + 200
        },
    )
    .await;

    let total = load.finish().await;
    eprintln!(
        "{:?}: relay caught up; {total} events appended",
        started.elapsed()
    );
    let log = whole_log(&db.pool).await;
    assert_eq!(
        log.len() as u64,
        total,
        "the log holds every event appended"
    );
    wait_for(
        "the stream to hold as many messages as the log",
        WAIT,
        async || {
            stream_state(&js, &bus)
                .await
                .is_some_and(|s| s.last_sequence >= total)
        },
    )
    .await;
    cancel.cancel();
    relay_task.await.expect("relay task");

    assert_stream_is_the_log(&js, &bus, &log).await;
    assert_eq!(relay_progress(&db.pool, &bus).await, Some(total as i64));
    drop(nats);
    db.drop_db().await;
}

// ------------------------------------------------------- 2. relay crashes

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_resumes_from_the_stream_after_dying_between_publish_and_checkpoint() {
    let db = TestDb::new().await;
    let nats = PrivateNats::start().await;
    let bus = unique_bus();
    let store = store_on(&db.pool);
    let js = js_client(&nats.url()).await;

    // A relay publishes the first 10 events and records its progress.
    append_many(&store, 2, 5, 2, "FaultRecorded").await;
    let cancel = CancellationToken::new();
    let (status, task) = start_relay(&db.pool, &js, &bus, &store, 1000, &cancel);
    wait_for(
        "the first relay to publish and record 10 events",
        WAIT,
        async || {
            status.stream_seq.load(Ordering::SeqCst) == 10
                && relay_progress(&db.pool, &bus).await == Some(10)
        },
    )
    .await;
    cancel.cancel();
    task.await.unwrap();

    // Shrink the deduplication window, so that what is published next can
    // fall out of it.
    js.update_stream(stream::Config {
        name: bus.stream_name.clone(),
        subjects: vec![bus.all_subjects()],
        storage: stream::StorageType::File,
        allow_direct: true,
        duplicate_window: Duration::from_millis(250),
        ..Default::default()
    })
    .await
    .expect("stream updated");

    append_many(&store, 3, 10, 2, "FaultRecorded").await;
    let log = whole_log(&db.pool).await;
    assert_eq!(log.len(), 30);

    // The relay that crashed: it published events 11..=15, exactly as the
    // relay does, then died before recording anything.
    for (i, e) in log[10..15].iter().enumerate() {
        let ack = publish_like_the_relay(&js, &bus, e, 10 + i as u64)
            .await
            .expect("published");
        assert_eq!((ack.sequence, ack.duplicate), (11 + i as u64, false));
    }
    assert_eq!(relay_progress(&db.pool, &bus).await, Some(10));

    // Wait until the deduplication window no longer covers them: a
    // republication of event 15 (with a wrong expected last sequence, so
    // that it cannot be stored) is no longer reported as a duplicate.
    let last_by_hand = &log[14];
    wait_for(
        "the duplicate window to pass",
        WAIT,
        async || match publish_like_the_relay(&js, &bus, last_by_hand, 1).await {
            Ok(ack) if ack.duplicate => false,
            Ok(ack) => panic!("the probe was stored at {}", ack.sequence),
            Err(e) if e.kind() == PublishErrorKind::WrongLastSequence => true,
            Err(e) => panic!("unexpected probe error: {e}"),
        },
    )
    .await;
    assert_eq!(stream_state(&js, &bus).await.unwrap().last_sequence, 15);

    // A fresh relay, on a fresh connection, must go on from the stream's
    // last message (15), not from its recorded progress (10) nor rely on
    // deduplication.
    let js2 = js_client(&nats.url()).await;
    let cancel = CancellationToken::new();
    let (status, task) = start_relay(&db.pool, &js2, &bus, &store, 1000, &cancel);
    wait_for(
        "the fresh relay to publish the rest of the log",
        WAIT,
        async || status.stream_seq.load(Ordering::SeqCst) == 30,
    )
    .await;
    cancel.cancel();
    task.await.unwrap();

    assert_stream_is_the_log(&js, &bus, &log).await;
    assert_eq!(relay_progress(&db.pool, &bus).await, Some(30));
    drop(nats);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn relay_killed_mid_batch_is_resumed_exactly_once_by_a_fresh_relay() {
    let db = TestDb::new().await;
    let nats = PrivateNats::start().await;
    let bus = unique_bus();
    let store = store_on(&db.pool);
    let n = append_many(&store, 6, 150, 20, "FaultRecorded").await;
    let log = whole_log(&db.pool).await;
    assert_eq!(log.len() as u64, n);
    let observer = js_client(&nats.url()).await;

    // The process that crashes: a pool and a NATS connection of its own.
    let crash_pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&db.url)
        .await
        .unwrap();
    let crash_js = js_client(&nats.url()).await;
    let cancel = CancellationToken::new();
    let (_, task) = start_relay(&crash_pool, &crash_js, &bus, &store, 500, &cancel);
    wait_for("the first messages on the stream", WAIT, async || {
        stream_state(&observer, &bus)
            .await
            .is_some_and(|s| s.messages > 0)
    })
    .await;
    task.abort();
    assert!(task.await.expect_err("aborted").is_cancelled());
    // The process is gone: its connections close (and the relay lock with
    // them).
    drop(crash_js);
    crash_pool.close().await;
    let at_crash = stream_state(&observer, &bus).await.unwrap().last_sequence;
    let recorded = relay_progress(&db.pool, &bus).await.unwrap_or(0);
    eprintln!("killed with {at_crash} messages on the stream, {recorded} recorded");
    assert!(at_crash <= n);

    let js = js_client(&nats.url()).await;
    let (status, task) = start_relay(&db.pool, &js, &bus, &store, 500, &cancel);
    wait_for(
        "the fresh relay to publish the whole log",
        WAIT,
        async || status.stream_seq.load(Ordering::SeqCst) == n as i64,
    )
    .await;
    cancel.cancel();
    task.await.unwrap();

    assert_stream_is_the_log(&observer, &bus, &log).await;
    assert_eq!(relay_progress(&db.pool, &bus).await, Some(n as i64));
    drop(nats);
    db.drop_db().await;
}

/// A relay task can die while its process lives on (a panic in the task,
/// an aborted task). Its lock must die with it, or no relay anywhere can
/// lead until that process exits.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_dead_relay_task_does_not_keep_the_relay_lock() {
    let db = TestDb::new().await;
    let nats = PrivateNats::start().await;
    let bus = unique_bus();
    let store = store_on(&db.pool);
    append_many(&store, 2, 10, 2, "FaultRecorded").await;

    // Process A: its relay leads, then its task dies; A's pool lives on.
    let pool_a = PgPoolOptions::new()
        .max_connections(4)
        .connect(&db.url)
        .await
        .unwrap();
    let js_a = js_client(&nats.url()).await;
    let cancel_a = CancellationToken::new();
    let (status_a, task_a) = start_relay(&pool_a, &js_a, &bus, &store, 1000, &cancel_a);
    wait_for("relay A to lead and publish", WAIT, async || {
        status_a.stream_seq.load(Ordering::SeqCst) == 20
    })
    .await;
    task_a.abort();
    assert!(task_a.await.expect_err("aborted").is_cancelled());
    // Process A goes on working with its pool.
    let store_a = store_on(&pool_a);
    append_many(&store_a, 2, 10, 2, "FaultRecorded").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let holders = advisory_lock_holders(&db.pool).await;
        if holders.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "relay A's task is dead, but its relay lock is still held by PostgreSQL \
             session(s) (pid, state) {holders:?}: a connection returned to process A's \
             pool, so no relay can lead while process A lives"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Process B's relay must take over.
    let js_b = js_client(&nats.url()).await;
    let cancel_b = CancellationToken::new();
    let (status_b, task_b) = start_relay(&db.pool, &js_b, &bus, &store, 1000, &cancel_b);
    wait_for(
        "relay B to take the lead and publish the rest",
        WAIT,
        async || status_b.stream_seq.load(Ordering::SeqCst) == 40,
    )
    .await;
    cancel_b.cancel();
    task_b.await.unwrap();
    let log = whole_log(&db.pool).await;
    assert_stream_is_the_log(&js_b, &bus, &log).await;
    pool_a.close().await;
    drop(nats);
    db.drop_db().await;
}

/// Sessions of this database holding an advisory lock: (pid, state).
async fn advisory_lock_holders(pool: &PgPool) -> Vec<(i32, Option<String>)> {
    sqlx::query_as(
        "SELECT a.pid, a.state FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
          WHERE l.locktype = 'advisory' AND l.granted
            AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

// ------------------------------------------------------- 3. projections

/// A read model counting events per stream. Its `apply` is deliberately
/// not idempotent (it adds one), so only the checkpoint keeps an event from
/// counting twice. It refuses events of type `poison`, and panics on the
/// `FaultPanic` event it sees while `panic_while` is armed (a bug, until fixed).
struct CountPerStream {
    name: &'static str,
    poison: Option<&'static str>,
    panic_while: Option<Arc<AtomicBool>>,
}

impl CountPerStream {
    fn counting(name: &'static str) -> Self {
        CountPerStream {
            name,
            poison: None,
            panic_while: None,
        }
    }

    fn refusing(name: &'static str, poison: &'static str) -> Self {
        CountPerStream {
            poison: Some(poison),
            ..Self::counting(name)
        }
    }
}

#[async_trait::async_trait]
impl Projection for CountPerStream {
    fn name(&self) -> &'static str {
        self.name
    }

    fn create_table(&self, table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                stream_id     uuid PRIMARY KEY,
                events        bigint NOT NULL,
                last_position bigint NOT NULL
            )"
        )
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        table: &str,
        e: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        if e.event_type == "FaultPanic"
            && let Some(armed) = &self.panic_while
            && armed.load(Ordering::SeqCst)
        {
            panic!("the projection panics on {}", e.event_id);
        }
        if self.poison == Some(e.event_type.as_str()) {
            return Err(ApplyError::Invalid(format!(
                "{} cannot be applied",
                e.event_type
            )));
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} AS t (stream_id, events, last_position) VALUES ($1, 1, $2)
             ON CONFLICT (stream_id) DO UPDATE
                SET events = t.events + 1, last_position = excluded.last_position"
        )))
        .bind(e.stream_id.0)
        .bind(e.cursor.position)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

async fn checkpoint_of(pool: &PgPool, name: &str) -> Option<Checkpoint> {
    checkpoint::all(pool)
        .await
        .unwrap()
        .into_iter()
        .find(|c| c.name == name)
}

/// The read model's rows: (stream, events counted).
async fn projected(pool: &PgPool, name: &str) -> Vec<(Uuid, i64)> {
    sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT stream_id, events FROM {name} ORDER BY stream_id"
    )))
    .fetch_all(pool)
    .await
    .unwrap()
}

/// What the rows must be: events per stream of the log up to `cursor`.
async fn log_counts_upto(pool: &PgPool, cursor: LogCursor) -> Vec<(Uuid, i64)> {
    sqlx::query_as(
        "SELECT stream_id, count(*) FROM events
          WHERE (tx_id, position) <= ($1::text::xid8, $2)
          GROUP BY stream_id ORDER BY stream_id",
    )
    .bind(cursor.tx.to_string())
    .bind(cursor.position)
    .fetch_all(pool)
    .await
    .unwrap()
}

fn applied(outcome: BatchOutcome) -> (LogCursor, usize) {
    match outcome {
        BatchOutcome::Applied { cursor, applied } => (cursor, applied),
        BatchOutcome::Failed { event, error } => {
            panic!("batch failed on {}: {error}", event.event_id)
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn redelivered_events_have_no_second_effect() {
    let db = TestDb::new().await;
    let store = store_on(&db.pool);
    append_many(&store, 8, 40, 3, "FaultRecorded").await;
    let log = whole_log(&db.pool).await;
    let n = log.len();
    let last = log[n - 1].cursor;
    let p = CountPerStream::counting("fault_counts");
    checkpoint::setup(&db.pool, &p).await.unwrap();

    let (half, quarter) = (n / 2, n / 4);
    let out = applied(
        checkpoint::apply_batch(&db.pool, &p, &log[..half])
            .await
            .unwrap(),
    );
    assert_eq!(out, (log[half - 1].cursor, half));
    // Redelivery overlapping what was applied: only the new part counts.
    let out = applied(
        checkpoint::apply_batch(&db.pool, &p, &log[quarter..])
            .await
            .unwrap(),
    );
    assert_eq!(out, (last, n - half));
    // The whole log again, and an old batch again: nothing.
    let out = applied(checkpoint::apply_batch(&db.pool, &p, &log).await.unwrap());
    assert_eq!(out, (last, 0));
    let out = applied(
        checkpoint::apply_batch(&db.pool, &p, &log[..quarter])
            .await
            .unwrap(),
    );
    assert_eq!(out, (last, 0));

    let cp = checkpoint_of(&db.pool, p.name).await.unwrap();
    assert_eq!((cp.cursor, cp.applied, cp.error), (last, n as i64, None));
    let rows = projected(&db.pool, p.name).await;
    assert_eq!(rows.len(), 8);
    assert_eq!(rows, log_counts_upto(&db.pool, last).await);
    db.drop_db().await;
}

/// A redelivered copy can arrive *behind* messages already buffered in
/// one batch (JetStream re-sends after `ack_wait`): `[e2, e3, e2]` must
/// count each once and leave the checkpoint at e3, not move it back.
#[tokio::test]
async fn a_copy_inside_a_batch_is_applied_once_and_the_checkpoint_never_goes_back() {
    let db = TestDb::new().await;
    let store = store_on(&db.pool);
    append_many(&store, 1, 4, 1, "FaultRecorded").await;
    let log = whole_log(&db.pool).await;
    assert_eq!(log.len(), 4);
    let p = CountPerStream::counting("fault_copies");
    checkpoint::setup(&db.pool, &p).await.unwrap();
    let out = applied(
        checkpoint::apply_batch(&db.pool, &p, &log[..1])
            .await
            .unwrap(),
    );
    assert_eq!(out, (log[0].cursor, 1));
    let batch = vec![log[1].clone(), log[2].clone(), log[1].clone()];
    let out = applied(checkpoint::apply_batch(&db.pool, &p, &batch).await.unwrap());
    assert_eq!(out, (log[2].cursor, 2));
    let out = applied(checkpoint::apply_batch(&db.pool, &p, &log).await.unwrap());
    assert_eq!(out, (log[3].cursor, 1));
    assert_eq!(
        projected(&db.pool, p.name).await,
        log_counts_upto(&db.pool, log[3].cursor).await
    );
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn projection_runner_killed_under_load_and_restarted_applies_each_event_once() {
    let Live {
        db,
        nats,
        bus,
        store,
        cancel,
        relay_task,
        ..
    } = Live::start(200).await;
    let name = "fault_live";
    let load = Load::start(&store, 3);

    // Runner 1 in a process of its own, following the bus.
    let crash_pool = PgPoolOptions::new()
        .max_connections(4)
        .connect(&db.url)
        .await
        .unwrap();
    let crash_js = js_client(&nats.url()).await;
    let runner = ProjectionRunner::new(
        crash_pool.clone(),
        Some(crash_js.clone()),
        bus.clone(),
        Arc::new(CountPerStream::counting(name)),
    );
    let status1 = runner.status();
    let task1 = tokio::spawn(runner.run(cancel.clone()));
    wait_for("runner 1 to follow the bus", WAIT, async || {
        load.assert_running();
        status1.live.load(Ordering::SeqCst)
            && checkpoint_of(&db.pool, name)
                .await
                .is_some_and(|c| c.applied >= 300)
    })
    .await;
    // Kill it mid-stream: the process dies with its connections.
    task1.abort();
    assert!(task1.await.expect_err("aborted").is_cancelled());
    drop(crash_js);
    crash_pool.close().await;
    let at_kill = load.appended();
    wait_for("more appends while no runner runs", WAIT, async || {
        load.assert_running();
        load.appended() >= at_kill + 300
    })
    .await;

    // Runner 2, a fresh process: catches up, then a new durable consumer.
    let js2 = js_client(&nats.url()).await;
    let runner = ProjectionRunner::new(
        db.pool.clone(),
        Some(js2),
        bus.clone(),
        Arc::new(CountPerStream::counting(name)),
    );
    let status2 = runner.status();
    let task2 = tokio::spawn(runner.run(cancel.clone()));
    let at_restart = load.appended();
    wait_for("runner 2 to follow the bus under load", WAIT, async || {
        load.assert_running();
        status2.live.load(Ordering::SeqCst) && load.appended() >= at_restart + 300
    })
    .await;

    let total = load.finish().await;
    let log = whole_log(&db.pool).await;
    assert_eq!(log.len() as u64, total);
    let last = log.last().unwrap().cursor;
    wait_for("runner 2 to apply the whole log", WAIT, async || {
        checkpoint_of(&db.pool, name)
            .await
            .is_some_and(|c| c.cursor == last)
    })
    .await;
    assert!(
        status2.live.load(Ordering::SeqCst),
        "runner 2 follows the bus"
    );
    cancel.cancel();
    task2.await.unwrap().expect("runner 2 stops cleanly");
    relay_task.await.unwrap();

    let cp = checkpoint_of(&db.pool, name).await.unwrap();
    assert_eq!((cp.applied, cp.error), (total as i64, None));
    assert_eq!(
        projected(&db.pool, name).await,
        log_counts_upto(&db.pool, last).await
    );
    drop(nats);
    db.drop_db().await;
}

/// Append good events then one that `CountPerStream` refuses, all in one
/// transaction (one batch for whoever reads the log), and two more good
/// events after it; returns the refused event's id.
async fn append_poisoned_batch(store: &EventStore) -> EventId {
    let network = NetworkId::new();
    let mut events: Vec<NewEvent> = (0..5).map(|k| event("FaultRecorded", k, None)).collect();
    events.push(event("FaultPoison", 5, None));
    events.extend((6..8).map(|k| event("FaultRecorded", k, None)));
    let poison = events[5].event_id;
    store
        .append(&request(network, StreamId::new(), 0, events))
        .await
        .unwrap();
    append_many(store, 1, 1, 2, "FaultRecorded").await;
    poison
}

/// How long a runner may take to stop on an event it cannot apply.
const STOP: Duration = Duration::from_secs(10);

/// The result of a runner task that must end by itself within `STOP`. On
/// timeout the task is aborted first (its connections go back to the pool
/// and whatever transaction it left open is rolled back), so that a hung
/// runner does not hold locks, nor the cluster's snapshot xmin, for longer.
async fn runner_result(mut task: JoinHandle<Result<(), RunnerError>>) -> Result<(), RunnerError> {
    match tokio::time::timeout(STOP, &mut task).await {
        Ok(result) => result.expect("runner task"),
        Err(_) => {
            task.abort();
            let _ = task.await;
            panic!("the runner did not stop by itself within {STOP:?}");
        }
    }
}

/// What must hold once the projection stopped on `poison`.
async fn assert_stopped_on(pool: &PgPool, name: &str, poison: EventId) -> Checkpoint {
    let cp = checkpoint_of(pool, name).await.unwrap();
    let error = cp
        .error
        .clone()
        .expect("the checkpoint records the failure");
    assert!(
        error.contains(&poison.to_string()),
        "error names the event: {error}"
    );
    let (failed,): (Option<Uuid>,) =
        sqlx::query_as("SELECT failed_event FROM projection_checkpoints WHERE name = $1")
            .bind(name)
            .fetch_one(pool)
            .await
            .unwrap();
    assert_eq!(failed, Some(poison.0));
    let log = whole_log(pool).await;
    let at = log.iter().position(|e| e.event_id == poison).unwrap();
    assert!(
        cp.cursor < log[at].cursor,
        "the checkpoint went past the refused event"
    );
    let applied = log.iter().filter(|e| e.cursor <= cp.cursor).count();
    assert_eq!(cp.applied, applied as i64);
    // Rows are exactly the events up to the checkpoint: nothing of the
    // failing batch was kept.
    assert_eq!(
        projected(pool, name).await,
        log_counts_upto(pool, cp.cursor).await
    );
    cp
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projection_that_cannot_apply_an_event_stops_right_before_it() {
    let db = TestDb::new().await;
    let store = store_on(&db.pool);
    let name = "fault_picky";
    let picky = || Arc::new(CountPerStream::refusing(name, "FaultPoison"));
    append_many(&store, 2, 5, 2, "FaultRecorded").await;
    let runner = ProjectionRunner::new(db.pool.clone(), None, unique_bus(), picky());
    let status = runner.status();
    let task = tokio::spawn(runner.run(CancellationToken::new()));
    wait_for("the first 10 events applied", WAIT, async || {
        checkpoint_of(&db.pool, name)
            .await
            .is_some_and(|c| c.applied == 10)
    })
    .await;
    let before = checkpoint_of(&db.pool, name).await.unwrap().cursor;

    let poison = append_poisoned_batch(&store).await;
    match runner_result(task).await {
        Err(RunnerError::Stopped { event_id, .. }) => assert_eq!(event_id, poison),
        other => panic!("the runner must stop on the refused event, got {other:?}"),
    }
    assert!(status.failed.load(Ordering::SeqCst));
    let cp = assert_stopped_on(&db.pool, name, poison).await;
    // The five good events before it came in the same batch (they were
    // appended in one transaction): they are kept and checkpointed (the
    // contract of `BatchOutcome::Failed`), so the checkpoint is exactly the
    // event before the refused one; the refused one and those after it are
    // not kept.
    let log = whole_log(&db.pool).await;
    let at = log.iter().position(|e| e.event_id == poison).unwrap();
    assert!(
        log[at - 5].cursor > before,
        "the five came after the first batch"
    );
    assert_eq!(cp.cursor, log[at - 1].cursor);
    let rows_stopped = projected(&db.pool, name).await;

    // It stays stopped: a new runner refuses to start, a batch is refused.
    let again = runner_result(tokio::spawn(
        ProjectionRunner::new(db.pool.clone(), None, unique_bus(), picky())
            .run(CancellationToken::new()),
    ))
    .await;
    assert!(
        matches!(again, Err(RunnerError::Stopped { .. })),
        "{again:?}"
    );
    let refused = checkpoint::apply_batch(&db.pool, picky().as_ref(), &log).await;
    assert!(
        matches!(refused, Err(StoreError::Corrupt(_))),
        "{refused:?}"
    );
    assert_eq!(assert_stopped_on(&db.pool, name, poison).await, cp);
    assert_eq!(projected(&db.pool, name).await, rows_stopped);
    db.drop_db().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_live_projection_stops_on_an_event_it_cannot_apply() {
    let Live {
        db,
        nats,
        bus,
        store,
        js,
        cancel,
        relay_task,
        ..
    } = Live::start(1000).await;
    let name = "fault_picky_live";
    append_many(&store, 2, 5, 2, "FaultRecorded").await;
    let runner = ProjectionRunner::new(
        db.pool.clone(),
        Some(js.clone()),
        bus.clone(),
        Arc::new(CountPerStream::refusing(name, "FaultPoison")),
    );
    let status = runner.status();
    let task = tokio::spawn(runner.run(cancel.clone()));
    wait_for("the runner to follow the bus", WAIT, async || {
        status.live.load(Ordering::SeqCst)
            && checkpoint_of(&db.pool, name)
                .await
                .is_some_and(|c| c.applied == 10)
    })
    .await;

    let poison = append_poisoned_batch(&store).await;
    match runner_result(task).await {
        Err(RunnerError::Stopped { event_id, .. }) => assert_eq!(event_id, poison),
        other => panic!("the runner must stop on the refused event, got {other:?}"),
    }
    assert!(status.failed.load(Ordering::SeqCst));
    assert_stopped_on(&db.pool, name, poison).await;
    cancel.cancel();
    relay_task.await.unwrap();
    drop(nats);
    db.drop_db().await;
}

/// A panic in a projection's `apply` (read-model code) is a refusal like
/// any other: the runner stops visibly (checkpoint error, `Err` from `run`)
/// instead of its task dying silently; the batch keeps nothing of the
/// panicking event, and the runner's lock is released while its process
/// lives on, so once the failure is cleared another runner takes over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_projection_that_panics_stops_visibly_and_releases_its_lock() {
    let db = TestDb::new().await;
    let store = store_on(&db.pool);
    let name = "fault_panicky";
    let armed = Arc::new(AtomicBool::new(true));
    let projection = || {
        Arc::new(CountPerStream {
            panic_while: Some(armed.clone()),
            ..CountPerStream::counting(name)
        })
    };
    append_many(&store, 2, 5, 2, "FaultRecorded").await;

    // Process A: its runner dies of a panic; A's pool lives on.
    let pool_a = PgPoolOptions::new()
        .max_connections(4)
        .connect(&db.url)
        .await
        .unwrap();
    let task_a = tokio::spawn(
        ProjectionRunner::new(pool_a.clone(), None, unique_bus(), projection())
            .run(CancellationToken::new()),
    );
    wait_for("runner A to apply the first 10 events", WAIT, async || {
        checkpoint_of(&db.pool, name)
            .await
            .is_some_and(|c| c.applied == 10)
    })
    .await;
    let network = NetworkId::new();
    let events = vec![
        event("FaultRecorded", 0, None),
        event("FaultPanic", 1, None),
        event("FaultRecorded", 2, None),
    ];
    store
        .append(&request(network, StreamId::new(), 0, events))
        .await
        .unwrap();
    let stopped = tokio::time::timeout(STOP, task_a)
        .await
        .expect("runner A stops on the panic")
        .expect("runner A's task itself does not die");
    let err = stopped.expect_err("runner A reports the stop");
    assert!(err.to_string().contains("panicked"), "{err}");

    // It stopped right before the panicking event: the event before it in
    // the batch is kept, the panicking one is not.
    let cp = checkpoint_of(&db.pool, name).await.unwrap();
    assert_eq!(cp.applied, 11);
    assert!(cp.error.as_deref().is_some_and(|e| e.contains("panicked")));
    assert_eq!(
        projected(&db.pool, name).await,
        log_counts_upto(&db.pool, cp.cursor).await
    );

    // Process A lives on; its dead runner must not hold the lock.
    append_many(&store_on(&pool_a), 1, 2, 2, "FaultRecorded").await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let holders = advisory_lock_holders(&db.pool).await;
        if holders.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "runner A is dead, but its projection lock is still held by PostgreSQL \
             session(s) (pid, state) {holders:?}: a connection returned to process A's \
             pool, so no runner can take the projection over while process A lives"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // The bug is fixed (the projection is disarmed) and the failure cleared:
    armed.store(false, Ordering::SeqCst);
    // process B's runner takes over and applies everything, once.
    sportello_store::projection::checkpoint::clear_failure(&db.pool, name)
        .await
        .unwrap();
    let cancel = CancellationToken::new();
    let task_b = tokio::spawn(
        ProjectionRunner::new(db.pool.clone(), None, unique_bus(), projection())
            .run(cancel.clone()),
    );
    let log = whole_log(&db.pool).await;
    let last = log.last().unwrap().cursor;
    wait_for("runner B to apply the whole log", WAIT, async || {
        checkpoint_of(&db.pool, name)
            .await
            .is_some_and(|c| c.cursor == last)
    })
    .await;
    cancel.cancel();
    task_b.await.unwrap().expect("runner B stops cleanly");
    let cp = checkpoint_of(&db.pool, name).await.unwrap();
    assert_eq!(cp.applied, log.len() as i64);
    assert_eq!(
        projected(&db.pool, name).await,
        log_counts_upto(&db.pool, last).await
    );
    pool_a.close().await;
    db.drop_db().await;
}

/// Several projections in one supervised runner (as the server runs its
/// read models): one that panics on an event stops alone, right before
/// it, while the others go past it live; once the bug is fixed and the
/// failure cleared, the supervisor starts the runner again and the
/// stopped one catches up, each event counted once in every read model.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn in_a_group_a_projection_stops_alone_and_starts_again_once_cleared() {
    let Live {
        db,
        nats,
        bus,
        store,
        js,
        cancel,
        relay_task,
        ..
    } = Live::start(1000).await;
    let (steady, fragile) = ("fault_group_steady", "fault_group_fragile");
    let armed = Arc::new(AtomicBool::new(true));
    let statuses: Vec<Arc<ProjectionStatus>> = (0..2).map(|_| Arc::default()).collect();
    let group: Vec<(Arc<dyn Projection>, Arc<ProjectionStatus>)> = vec![
        (
            Arc::new(CountPerStream::counting(steady)),
            statuses[0].clone(),
        ),
        (
            Arc::new(CountPerStream {
                panic_while: Some(armed.clone()),
                ..CountPerStream::counting(fragile)
            }),
            statuses[1].clone(),
        ),
    ];
    let supervisor = tokio::spawn(supervise(
        db.pool.clone(),
        Some(js.clone()),
        bus.clone(),
        group,
        cancel.clone(),
    ));
    append_many(&store, 2, 5, 2, "FaultRecorded").await;
    wait_for("both to follow the bus with 10 events", WAIT, async || {
        let mut ok = statuses.iter().all(|s| s.live.load(Ordering::SeqCst));
        for name in [steady, fragile] {
            ok &= checkpoint_of(&db.pool, name)
                .await
                .is_some_and(|c| c.applied == 10);
        }
        ok
    })
    .await;

    let events = vec![
        event("FaultRecorded", 0, None),
        event("FaultPanic", 1, None),
        event("FaultRecorded", 2, None),
    ];
    let panicking = events[1].event_id;
    store
        .append(&request(NetworkId::new(), StreamId::new(), 0, events))
        .await
        .unwrap();
    append_many(&store, 1, 2, 2, "FaultRecorded").await;
    let log = whole_log(&db.pool).await;
    let last = log.last().unwrap().cursor;
    wait_for(
        "the steady one past the event, the fragile one stopped",
        WAIT,
        async || {
            statuses[1].failed.load(Ordering::SeqCst)
                && checkpoint_of(&db.pool, steady)
                    .await
                    .is_some_and(|c| c.cursor == last)
        },
    )
    .await;
    assert!(!statuses[0].failed.load(Ordering::SeqCst));
    let cp = checkpoint_of(&db.pool, fragile).await.unwrap();
    assert!(
        cp.error
            .as_deref()
            .is_some_and(|e| e.contains(&panicking.to_string()))
    );
    assert_eq!(cp.applied, 11, "stopped right before the panicking event");
    assert_eq!(
        projected(&db.pool, fragile).await,
        log_counts_upto(&db.pool, cp.cursor).await
    );
    assert_eq!(
        projected(&db.pool, steady).await,
        log_counts_upto(&db.pool, last).await
    );

    // The bug is fixed and the failure cleared: the supervisor starts the
    // runner again, and the fragile one catches up.
    armed.store(false, Ordering::SeqCst);
    checkpoint::clear_failure(&db.pool, fragile).await.unwrap();
    wait_for("the fragile one to catch up", WAIT, async || {
        !statuses[1].failed.load(Ordering::SeqCst)
            && checkpoint_of(&db.pool, fragile)
                .await
                .is_some_and(|c| c.cursor == last)
    })
    .await;
    append_many(&store, 1, 1, 2, "FaultRecorded").await;
    let log = whole_log(&db.pool).await;
    let last = log.last().unwrap().cursor;
    wait_for("both live again with the last event", WAIT, async || {
        let mut ok = statuses.iter().all(|s| s.live.load(Ordering::SeqCst));
        for name in [steady, fragile] {
            ok &= checkpoint_of(&db.pool, name)
                .await
                .is_some_and(|c| c.cursor == last);
        }
        ok
    })
    .await;
    for name in [steady, fragile] {
        let cp = checkpoint_of(&db.pool, name).await.unwrap();
        assert_eq!(cp.applied, log.len() as i64, "{name}");
        assert_eq!(
            projected(&db.pool, name).await,
            log_counts_upto(&db.pool, last).await,
            "{name}: each event counted once"
        );
    }
    cancel.cancel();
    supervisor.await.unwrap();
    relay_task.await.unwrap();
    drop(nats);
    db.drop_db().await;
}
