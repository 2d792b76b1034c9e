//! Write throughput at a given concurrency: raw single-row inserts (the
//! baseline, what pgbench would show) and event store appends of one event
//! per command.
//!
//! The workloads of one concurrency are interleaved in slices of one
//! second (baseline, appends on new streams, appends on existing streams,
//! baseline, ...), so that the noise of a shared machine falls on all of
//! them alike and their ratio stays meaningful.

use super::db::{self, BASELINE_INSERT, EVENT_TYPE, STREAM_KIND};
use futures::future::BoxFuture;
use hdrhistogram::Histogram;
use serde::Serialize;
use sportello_domain::{AccountId, EventId, NetworkId, OrganizationId, StreamId};
use sportello_store::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use sqlx::PgPool;
use sqlx::types::Json;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

/// Commits per second at one concurrency.
#[derive(Clone, Debug, Serialize)]
pub struct Throughput {
    /// Concurrent connections (one writer task each).
    pub concurrency: usize,
    /// Commits done.
    pub commits: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Commits per second.
    pub per_sec: f64,
    /// Median latency of one commit, ms.
    pub p50_ms: f64,
    /// 99th percentile latency of one commit, ms.
    pub p99_ms: f64,
}

/// A histogram of microseconds, up to 10 minutes, 3 significant figures.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000, 3).expect("valid bounds")
}

/// One operation of writer `w`.
type Op = Arc<dyn Fn(usize) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// A workload and what it has measured so far.
struct Workload {
    op: Op,
    hist: Histogram<u64>,
    seconds: f64,
}

impl Workload {
    fn new(op: Op) -> Self {
        Workload {
            op,
            hist: histogram(),
            seconds: 0.0,
        }
    }

    /// Run the op from `concurrency` writers, each in a loop, for `duration`.
    async fn slice(&mut self, concurrency: usize, duration: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        let deadline = start + duration;
        let mut tasks = Vec::with_capacity(concurrency);
        for w in 0..concurrency {
            let op = self.op.clone();
            tasks.push(tokio::spawn(async move {
                let mut hist = histogram();
                while Instant::now() < deadline {
                    let t = Instant::now();
                    op(w).await?;
                    hist.saturating_record(t.elapsed().as_micros() as u64);
                }
                Ok::<_, anyhow::Error>(hist)
            }));
        }
        for t in tasks {
            self.hist.add(t.await??)?;
        }
        self.seconds += start.elapsed().as_secs_f64();
        Ok(())
    }

    fn throughput(&self, concurrency: usize) -> Throughput {
        Throughput {
            concurrency,
            commits: self.hist.len(),
            seconds: self.seconds,
            per_sec: self.hist.len() as f64 / self.seconds,
            p50_ms: self.hist.value_at_quantile(0.5) as f64 / 1000.0,
            p99_ms: self.hist.value_at_quantile(0.99) as f64 / 1000.0,
        }
    }
}

/// Baseline: autocommit single-row inserts into `bench_rows`, each row
/// with fresh ids, metadata and payload, like an append's event row.
fn baseline(pool: &PgPool) -> Op {
    let network = NetworkId::new();
    let account = AccountId::new();
    let org = OrganizationId::new();
    let pool = pool.clone();
    Arc::new(move |_| {
        let pool = pool.clone();
        Box::pin(async move {
            sqlx::query(BASELINE_INSERT)
                .bind(EventId::new().0)
                .bind(network.0)
                .bind(StreamId::new().0)
                .bind(STREAM_KIND)
                .bind(EVENT_TYPE)
                .bind(Json(db::payload(org)))
                .bind(org.0)
                .bind(Json(db::metadata(account, org)))
                .execute(&pool)
                .await?;
            Ok(())
        })
    })
}

fn one_event(
    network: NetworkId,
    stream_id: StreamId,
    expected: ExpectedVersion,
    account: AccountId,
    org: OrganizationId,
) -> AppendRequest {
    AppendRequest {
        network,
        stream_id,
        stream_kind: STREAM_KIND,
        expected,
        events: vec![NewEvent {
            event_id: EventId::new(),
            event_type: EVENT_TYPE.into(),
            schema_version: 1,
            payload: db::payload(org),
            personal: None,
            concerns: Some(org),
        }],
        metadata: db::metadata(account, org),
        idempotency: None,
    }
}

/// Appends of one event, each to a new stream (`ExpectedVersion::NoStream`).
fn appends_new_stream(store: &EventStore) -> Op {
    let network = NetworkId::new();
    let account = AccountId::new();
    let org = OrganizationId::new();
    let store = store.clone();
    Arc::new(move |_| {
        let store = store.clone();
        let req = one_event(
            network,
            StreamId::new(),
            ExpectedVersion::NoStream,
            account,
            org,
        );
        Box::pin(async move {
            store.append(&req).await?;
            Ok(())
        })
    })
}

/// Appends of one event to the writer's own stream, made beforehand, at
/// its exact version (`ExpectedVersion::Exact`).
async fn appends_existing_stream(store: &EventStore, writers: usize) -> anyhow::Result<Op> {
    let network = NetworkId::new();
    let account = AccountId::new();
    let org = OrganizationId::new();
    let mut streams = Vec::with_capacity(writers);
    for _ in 0..writers {
        let s = StreamId::new();
        store
            .append(&one_event(
                network,
                s,
                ExpectedVersion::NoStream,
                account,
                org,
            ))
            .await?;
        streams.push((s, AtomicI64::new(1)));
    }
    let streams = Arc::new(streams);
    let store = store.clone();
    Ok(Arc::new(move |w| {
        let store = store.clone();
        let (stream, version) = &streams[w];
        // Each writer is sequential: its stream is at the version it counted.
        let v = version.fetch_add(1, Ordering::Relaxed);
        let req = one_event(network, *stream, ExpectedVersion::Exact(v), account, org);
        Box::pin(async move {
            store.append(&req).await?;
            Ok(())
        })
    }))
}

/// Baseline, appends on new streams, appends on existing streams, at one
/// concurrency.
pub struct Writes {
    /// Baseline inserts.
    pub baseline: Throughput,
    /// Appends, a new stream per command.
    pub new_stream: Throughput,
    /// Appends, one existing stream per writer.
    pub existing_stream: Throughput,
}

/// Measure the three workloads at `concurrency`, `seconds` slices of one
/// second each, interleaved.
pub async fn writes(
    pool: &PgPool,
    store: &EventStore,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Writes> {
    let mut workloads = [
        Workload::new(baseline(pool)),
        Workload::new(appends_new_stream(store)),
        Workload::new(appends_existing_stream(store, concurrency).await?),
    ];
    for _ in 0..seconds {
        for w in &mut workloads {
            w.slice(concurrency, Duration::from_secs(1)).await?;
        }
    }
    let [b, n, e] = workloads.map(|w| w.throughput(concurrency));
    Ok(Writes {
        baseline: b,
        new_stream: n,
        existing_stream: e,
    })
}

/// The baseline alone at `concurrency`, in `seconds` slices of one second
/// (for benchmarks that compare another workload with it).
pub async fn baseline_only(
    pool: &PgPool,
    concurrency: usize,
    seconds: u64,
) -> anyhow::Result<Throughput> {
    let mut w = Workload::new(baseline(pool));
    for _ in 0..seconds {
        w.slice(concurrency, Duration::from_secs(1)).await?;
    }
    Ok(w.throughput(concurrency))
}
