//! Downstream of the log: filling it, relaying it to JetStream, reading
//! it, and catching a projection up from it.

use super::db::{self, EVENT_TYPE, STREAM_KIND};
use async_nats::jetstream;
use serde::Serialize;
use sportello_domain::{AccountId, EventId, NetworkId, OrganizationId, StreamId};
use sportello_projections::StreamActivity;
use sportello_store::bus::BusConfig;
use sportello_store::projection::{ProjectionRunner, rebuild};
use sportello_store::relay::{Relay, RelayConfig};
use sportello_store::{AppendRequest, EventStore, ExpectedVersion, LogCursor, NewEvent};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Events per second of one phase.
#[derive(Clone, Debug, Serialize)]
pub struct Rate {
    /// Events processed.
    pub events: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Events per second.
    pub per_sec: f64,
}

impl Rate {
    /// `events` in `elapsed`.
    pub(super) fn new(events: u64, elapsed: Duration) -> Rate {
        let seconds = elapsed.as_secs_f64();
        Rate {
            events,
            seconds,
            per_sec: events as f64 / seconds,
        }
    }
}

/// Wait until `done()` or fail after `limit`.
pub(super) async fn wait_until(
    what: &str,
    limit: Duration,
    done: impl Fn() -> bool,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + limit;
    while !done() {
        anyhow::ensure!(
            Instant::now() < deadline,
            "{what}: not done after {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    Ok(())
}

pub(super) fn events_for(n: usize, org: OrganizationId) -> Vec<NewEvent> {
    (0..n)
        .map(|_| NewEvent {
            event_id: EventId::new(),
            event_type: EVENT_TYPE.into(),
            schema_version: 1,
            payload: db::payload(org),
            personal: None,
            concerns: Some(org),
        })
        .collect()
}

/// Fill the log with `n` events: new streams of `per_stream` events each,
/// appended one stream per command by 8 writers.
pub async fn fill(store: &EventStore, n: u64, per_stream: usize) -> anyhow::Result<Rate> {
    let network = NetworkId::new();
    let account = AccountId::new();
    let org = OrganizationId::new();
    let claimed = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (store, claimed) = (store.clone(), claimed.clone());
        tasks.push(tokio::spawn(async move {
            let mut done = 0u64;
            loop {
                let from = claimed.fetch_add(per_stream as u64, Ordering::Relaxed);
                if from >= n {
                    return Ok::<_, anyhow::Error>(done);
                }
                let k = (n - from).min(per_stream as u64) as usize;
                let req = AppendRequest {
                    network,
                    stream_id: StreamId::new(),
                    stream_kind: STREAM_KIND,
                    expected: ExpectedVersion::NoStream,
                    events: events_for(k, org),
                    metadata: db::metadata(account, org),
                    idempotency: None,
                };
                store.append(&req).await?;
                done += k as u64;
            }
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    Ok(Rate::new(total, start.elapsed()))
}

/// Relay the whole log (`n` events) to a stream that is new: time until
/// the stream holds `n` messages (checked on the stream at the end), or an
/// error after `limit`; with `progress`, a line on stderr that often.
pub async fn relay(
    pool: &PgPool,
    js: &jetstream::Context,
    bus: &BusConfig,
    n: u64,
    limit: Duration,
    progress: Option<Duration>,
) -> anyhow::Result<Rate> {
    let config = RelayConfig {
        bus: bus.clone(),
        ..RelayConfig::default()
    };
    let relay = Relay::new(pool.clone(), js.clone(), config, Arc::new(Notify::new()));
    let status = relay.status();
    let stop = CancellationToken::new();
    let start = Instant::now();
    let task = tokio::spawn(relay.run(stop.clone()));
    let said = std::sync::Mutex::new(Instant::now());
    let waited = wait_until("relay", limit, || {
        let seq = status.stream_seq.load(Ordering::Relaxed) as u64;
        if let Some(every) = progress {
            let mut said = said.lock().unwrap_or_else(|e| e.into_inner());
            if said.elapsed() >= every {
                eprintln!("  {seq} / {n} events published");
                *said = Instant::now();
            }
        }
        seq >= n
    })
    .await;
    let elapsed = start.elapsed();
    stop.cancel();
    task.await?;
    waited?;
    let held = js
        .get_stream(&bus.stream_name)
        .await?
        .info()
        .await?
        .state
        .messages;
    anyhow::ensure!(
        held == n,
        "the stream holds {held} messages, the log {n} events"
    );
    Ok(Rate::new(n, elapsed))
}

/// A [`ProjectionRunner`] of `stream_activity` with no bus catching up
/// from the log until it has applied `head`.
pub async fn runner_catch_up(
    pool: &PgPool,
    bus: &BusConfig,
    n: u64,
    head: LogCursor,
) -> anyhow::Result<Rate> {
    let runner = ProjectionRunner::new(pool.clone(), None, bus.clone(), Arc::new(StreamActivity));
    let status = runner.status();
    let stop = CancellationToken::new();
    let start = Instant::now();
    let task = tokio::spawn(runner.run(stop.clone()));
    let waited = wait_until("projection catch-up", Duration::from_secs(300), || {
        status.position.load(Ordering::Relaxed) == head.position
            || status.failed.load(Ordering::Relaxed)
    })
    .await;
    let elapsed = start.elapsed();
    stop.cancel();
    task.await??;
    waited?;
    Ok(Rate::new(n, elapsed))
}

/// Read the whole log in batches of 5000 and decode it, applying nothing:
/// how much of a catch-up is reading.
pub async fn read_all(pool: &PgPool) -> anyhow::Result<Rate> {
    let start = Instant::now();
    let mut cursor = LogCursor::START;
    let mut n = 0u64;
    loop {
        let events = sportello_store::read::read_log(pool, cursor, 5000, None).await?;
        let Some(last) = events.last() else { break };
        cursor = last.cursor;
        n += events.len() as u64;
    }
    Ok(Rate::new(n, start.elapsed()))
}

/// A blue/green rebuild of `stream_activity` from the log, batches of 5000.
pub async fn rebuild_all(pool: &PgPool) -> anyhow::Result<Rate> {
    let start = Instant::now();
    let n = rebuild(pool, &StreamActivity, 5000, &|_, _| {}).await?;
    Ok(Rate::new(n, start.elapsed()))
}
