//! Commit-to-projection lag: a relay and a live projection runner in
//! this process, appends at a steady pace, and for each event the time
//! from its commit to its publication and to its projection.

use super::db::{self, STREAM_KIND};
use super::pipeline::{events_for, wait_until};
use super::write::histogram;
use anyhow::Context;
use async_nats::jetstream;
use hdrhistogram::Histogram;
use serde::Serialize;
use sportello_domain::{AccountId, NetworkId, OrganizationId, StreamId};
use sportello_projections::StreamActivity;
use sportello_store::bus::BusConfig;
use sportello_store::projection::ProjectionRunner;
use sportello_store::relay::{Relay, RelayConfig};
use sportello_store::{AppendRequest, EventStore, ExpectedVersion, LogCursor};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Commit-to-projection lag at a paced append rate.
#[derive(Clone, Debug, Serialize)]
pub struct Lag {
    /// Target append rate, events/s.
    pub target_per_sec: f64,
    /// Appends done.
    pub events: u64,
    /// Rate actually achieved, events/s.
    pub achieved_per_sec: f64,
    /// Append latency (call to return), p50 and p99, ms.
    pub append_p50_ms: f64,
    /// See `append_p50_ms`.
    pub append_p99_ms: f64,
    /// Commit to published on JetStream (relay acked), p50, ms.
    pub relay_p50_ms: f64,
    /// Same, p99.
    pub relay_p99_ms: f64,
    /// Commit to applied by the live projection (checkpoint committed), p50, ms.
    pub projection_p50_ms: f64,
    /// Same, p99.
    pub projection_p99_ms: f64,
    /// Same, max.
    pub projection_max_ms: f64,
    /// Published (relay acked) to applied by the projection, p50, ms.
    pub published_to_projected_p50_ms: f64,
    /// Same, p99.
    pub published_to_projected_p99_ms: f64,
    /// Events seen applied before `append` had returned (counted as 0 ms).
    pub applied_before_return: u64,
    /// How often the watcher sampled the progress counters, ms.
    pub sampling_ms: f64,
    /// Write transactions of other databases of the same server seen
    /// during the phase: log readers wait for them (`pg_snapshot_xmin` is
    /// cluster-wide).
    pub foreign_writers: ForeignWriters,
}

/// Samples, every 5 ms, of the oldest transaction holding a transaction id
/// in another database of the server.
#[derive(Clone, Debug, Default, Serialize)]
pub struct ForeignWriters {
    /// Samples taken.
    pub samples: u64,
    /// Samples where such a transaction had been open for over 10 ms.
    pub over_10ms: u64,
    /// The oldest seen, ms since its transaction started.
    pub max_ms: f64,
}

/// Sample other databases' writers until `stop`.
async fn sample_foreign_writers(pool: PgPool, stop: CancellationToken) -> ForeignWriters {
    let mut seen = ForeignWriters::default();
    let Ok(mut conn) = pool.acquire().await else {
        return seen;
    };
    while !stop.is_cancelled() {
        let age: Result<(f64,), _> = sqlx::query_as(
            "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8 * 1000
               FROM pg_stat_activity
              WHERE backend_xid IS NOT NULL AND datname IS DISTINCT FROM current_database()",
        )
        .fetch_one(&mut *conn)
        .await;
        if let Ok((ms,)) = age {
            seen.samples += 1;
            if ms > 10.0 {
                seen.over_10ms += 1;
            }
            seen.max_ms = seen.max_ms.max(ms);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    seen
}

/// Samples two counters on a thread of its own, keeping every change.
struct Watcher {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<[Vec<(Instant, i64)>; 2]>,
}

const SAMPLING: Duration = Duration::from_micros(500);

impl Watcher {
    fn start(counters: [Arc<dyn Fn() -> i64 + Send + Sync>; 2]) -> Watcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut seen: [Vec<(Instant, i64)>; 2] = [Vec::new(), Vec::new()];
            let mut last = [i64::MIN; 2];
            while !flag.load(Ordering::Relaxed) {
                for k in 0..2 {
                    let v = counters[k]();
                    if v != last[k] {
                        last[k] = v;
                        seen[k].push((Instant::now(), v));
                    }
                }
                std::thread::sleep(SAMPLING);
            }
            seen
        });
        Watcher { stop, thread }
    }

    fn finish(self) -> [Vec<(Instant, i64)>; 2] {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the watcher does not panic")
    }
}

/// For each event (cursor): the first instant a progress timeline
/// (instants and positions reached) covers its cursor.
fn reached(
    events: &[(Instant, LogCursor)],
    timeline: &[(Instant, i64)],
    cursors: &HashMap<i64, LogCursor>,
) -> anyhow::Result<Vec<Instant>> {
    // Positions from before this phase are not in `cursors`: they cover
    // none of this phase's events.
    let timeline: Vec<(Instant, LogCursor)> = timeline
        .iter()
        .map(|(t, p)| (*t, cursors.get(p).copied().unwrap_or(LogCursor::START)))
        .collect();
    events
        .iter()
        .map(|(_, cursor)| {
            let i = timeline.partition_point(|(_, c)| c < cursor);
            timeline
                .get(i)
                .map(|r| r.0)
                .with_context(|| format!("event at {cursor} never reached"))
        })
        .collect()
}

/// The histogram of `to - from`, pairwise (negative counts as 0), and how
/// many were negative.
fn delays(from: &[Instant], to: &[Instant]) -> (Histogram<u64>, u64) {
    let mut hist = histogram();
    let mut early = 0;
    for (a, b) in from.iter().zip(to) {
        if b < a {
            early += 1;
        }
        hist.saturating_record(b.saturating_duration_since(*a).as_micros() as u64);
    }
    (hist, early)
}

fn ms(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Run a relay and a live `stream_activity` runner in this process, append
/// one event per command (new stream each) at `rate` per second for
/// `duration`, and measure from each append's return to the relay having
/// published it and the projection having applied it.
pub async fn lag(
    store: &EventStore,
    js: &jetstream::Context,
    bus: &BusConfig,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Lag> {
    let pool = store.pool().clone();
    let config = RelayConfig {
        bus: bus.clone(),
        ..RelayConfig::default()
    };
    let relay = Relay::new(pool.clone(), js.clone(), config, store.appended());
    let relay_status = relay.status();
    let runner = ProjectionRunner::new(
        pool.clone(),
        Some(js.clone()),
        bus.clone(),
        Arc::new(StreamActivity),
    );
    let status = runner.status();
    let stop = CancellationToken::new();
    let relay_task = tokio::spawn(relay.run(stop.clone()));
    let runner_task = tokio::spawn(runner.run(stop.clone()));
    let result = async {
        wait_until("relay and runner start", Duration::from_secs(30), || {
            relay_status.leader.load(Ordering::Relaxed) && status.live.load(Ordering::Relaxed)
        })
        .await?;
        let (a, b) = (relay_status.clone(), status.clone());
        let watcher = Watcher::start([
            Arc::new(move || a.position.load(Ordering::Relaxed)),
            Arc::new(move || b.position.load(Ordering::Relaxed)),
        ]);
        let sampling = CancellationToken::new();
        let foreign = tokio::spawn(sample_foreign_writers(pool.clone(), sampling.clone()));
        let measured = async {
            let (appended, append_hist, issued) = paced_appends(store, rate, duration).await?;
            let first = appended.iter().map(|a| a.1).min().unwrap_or(0);
            let cursors = cursors_from(&pool, first).await?;
            let committed: Vec<(Instant, LogCursor)> = appended
                .iter()
                .map(|(at, p)| {
                    Ok((
                        *at,
                        *cursors.get(p).context("appended event not in the log")?,
                    ))
                })
                .collect::<anyhow::Result<_>>()?;
            // The last event in log order is the last one the runner applies.
            if let Some(last) = committed.iter().map(|c| c.1).max() {
                wait_until("projection lag", Duration::from_secs(30), || {
                    status.position.load(Ordering::Relaxed) == last.position
                })
                .await?;
            }
            Ok::<_, anyhow::Error>((committed, cursors, append_hist, issued))
        }
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
        let [relay_timeline, projection_timeline] = watcher.finish();
        sampling.cancel();
        let foreign_writers = foreign.await?;
        let (committed, cursors, append_hist, elapsed) = measured?;
        let commits: Vec<Instant> = committed.iter().map(|c| c.0).collect();
        let published = reached(&committed, &relay_timeline, &cursors)?;
        let projected = reached(&committed, &projection_timeline, &cursors)?;
        let (relay_hist, _) = delays(&commits, &published);
        let (proj_hist, early) = delays(&commits, &projected);
        let (bus_hist, _) = delays(&published, &projected);
        Ok(Lag {
            target_per_sec: f64::from(rate),
            events: committed.len() as u64,
            achieved_per_sec: committed.len() as f64 / elapsed.as_secs_f64(),
            append_p50_ms: ms(&append_hist, 0.5),
            append_p99_ms: ms(&append_hist, 0.99),
            relay_p50_ms: ms(&relay_hist, 0.5),
            relay_p99_ms: ms(&relay_hist, 0.99),
            projection_p50_ms: ms(&proj_hist, 0.5),
            projection_p99_ms: ms(&proj_hist, 0.99),
            projection_max_ms: proj_hist.max() as f64 / 1000.0,
            published_to_projected_p50_ms: ms(&bus_hist, 0.5),
            published_to_projected_p99_ms: ms(&bus_hist, 0.99),
            applied_before_return: early,
            sampling_ms: SAMPLING.as_secs_f64() * 1000.0,
            foreign_writers,
        })
    }
    .await;
    stop.cancel();
    relay_task.await?;
    runner_task.await??;
    result
}

/// The cursor of every event from `position` on.
async fn cursors_from(pool: &PgPool, position: i64) -> anyhow::Result<HashMap<i64, LogCursor>> {
    let rows: Vec<(i64, i64)> =
        sqlx::query_as("SELECT position, tx_id::text::bigint FROM events WHERE position >= $1")
            .bind(position)
            .fetch_all(pool)
            .await?;
    Ok(rows
        .into_iter()
        .map(|(position, tx)| (position, LogCursor { tx, position }))
        .collect())
}

type Appended = (Vec<(Instant, i64)>, Histogram<u64>, Duration);

/// Start one append every `1/rate` s (each on a task of its own, so a slow
/// commit does not hold the next back) for `duration`; returns for each
/// the instant `append` returned and the event's position, the append
/// latencies and the time taken to start them all.
async fn paced_appends(
    store: &EventStore,
    rate: u32,
    duration: Duration,
) -> anyhow::Result<Appended> {
    let network = NetworkId::new();
    let account = AccountId::new();
    let org = OrganizationId::new();
    let total = (duration.as_secs_f64() * f64::from(rate)) as u64;
    let interval = Duration::from_secs(1) / rate;
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total as usize);
    for i in 0..total {
        tokio::time::sleep_until(start + interval * i as u32).await;
        let store = store.clone();
        let req = AppendRequest {
            network,
            stream_id: StreamId::new(),
            stream_kind: STREAM_KIND,
            expected: ExpectedVersion::NoStream,
            events: events_for(1, org),
            metadata: db::metadata(account, org),
            idempotency: None,
        };
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let r = store.append(&req).await?;
            Ok::<_, anyhow::Error>((Instant::now(), t, r.position))
        }));
    }
    let issued = start.elapsed();
    let mut out = Vec::with_capacity(tasks.len());
    let mut hist = histogram();
    for t in tasks {
        let (done, began, position) = t.await??;
        hist.saturating_record(done.duration_since(began).as_micros() as u64);
        out.push((done, position));
    }
    Ok((out, hist, issued))
}
