//! Runs projections: catch up from the PostgreSQL log, then follow the
//! JetStream stream through a durable consumer; back to the log whenever
//! the bus fails. A runner may carry several projections: each event is
//! read and decoded once, and every batch is applied to all of them in one
//! transaction with all their checkpoints (see
//! [`checkpoint::apply_group`]), each projection still skipping what its
//! own checkpoint says it has. A projection that cannot apply an event
//! stops alone; the others go on. Only one runner per projection is active
//! among all processes (an advisory lock per projection), though the
//! checkpoint alone would keep a second one from applying anything twice.

use super::Projection;
use super::checkpoint::{self, BatchOutcome};
use crate::bus::{self, BusConfig};
use crate::envelope::{LogCursor, RecordedEvent};
use crate::error::StoreError;
use crate::read::read_log;
use async_nats::jetstream::{self, consumer};
use futures::{FutureExt, StreamExt};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// A runner's state, for `/readyz` and metrics.
#[derive(Debug, Default)]
pub struct ProjectionStatus {
    /// Position of the last event applied.
    pub position: AtomicI64,
    /// Following the bus (rather than catching up from the log).
    pub live: AtomicBool,
    /// Stopped on an event it could not apply.
    pub failed: AtomicBool,
}

/// A projection a runner carries, and its status.
struct Member {
    projection: Arc<dyn Projection>,
    status: Arc<ProjectionStatus>,
}

/// Runs one or several projections.
pub struct ProjectionRunner {
    pool: PgPool,
    js: Option<jetstream::Context>,
    bus: BusConfig,
    members: Vec<Member>,
    batch: i64,
}

/// Why a runner stopped for good.
#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    /// The projection could not apply an event.
    #[error("projection {projection} stopped on event {event_id}: {error}")]
    Stopped {
        /// The projection.
        projection: &'static str,
        /// The event.
        event_id: sportello_domain::EventId,
        /// Why.
        error: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

enum Live {
    Shutdown,
    BusFailed(String),
}

impl ProjectionRunner {
    /// A runner of one projection. Without a JetStream context it follows
    /// the log only.
    pub fn new(
        pool: PgPool,
        js: Option<jetstream::Context>,
        bus: BusConfig,
        projection: Arc<dyn Projection>,
    ) -> Self {
        Self::group(
            pool,
            js,
            bus,
            vec![(projection, Arc::new(ProjectionStatus::default()))],
        )
    }

    /// A runner of several projections, each reporting into its status.
    pub fn group(
        pool: PgPool,
        js: Option<jetstream::Context>,
        bus: BusConfig,
        projections: Vec<(Arc<dyn Projection>, Arc<ProjectionStatus>)>,
    ) -> Self {
        assert!(!projections.is_empty(), "a runner runs something");
        ProjectionRunner {
            pool,
            js,
            bus,
            members: projections
                .into_iter()
                .map(|(projection, status)| Member { projection, status })
                .collect(),
            batch: 1000,
        }
    }

    /// The status of its first projection (its only one, for a runner of
    /// one), shared.
    pub fn status(&self) -> Arc<ProjectionStatus> {
        self.members[0].status.clone()
    }

    /// The projections still running (not stopped on an event).
    fn active(&self) -> Vec<&Member> {
        self.members
            .iter()
            .filter(|m| !m.status.failed.load(Ordering::Relaxed))
            .collect()
    }

    /// A readable name for the runner's logs: its projections' names.
    fn label(&self) -> String {
        let names: Vec<&str> = self.members.iter().map(|m| m.projection.name()).collect();
        names.join(",")
    }

    /// Mark a projection stopped on an event; the others go on.
    fn stop_member(
        &self,
        m: &Member,
        event_id: sportello_domain::EventId,
        error: String,
    ) -> RunnerError {
        let name = m.projection.name();
        // The gauge first: whoever sees the projection stopped (readyz)
        // finds the metric saying so too.
        metrics::gauge!("sportello_projection_failed", "projection" => name).set(1.0);
        m.status.failed.store(true, Ordering::Relaxed);
        RunnerError::Stopped {
            projection: name,
            event_id,
            error,
        }
    }

    /// Run until shutdown, or until every projection has stopped on an
    /// event (the first such stop is the error).
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunnerError> {
        let label = self.label();
        let mut first_stop = None;
        loop {
            match self.lead(&shutdown).await {
                Ok(()) if shutdown.is_cancelled() => return Ok(()),
                Ok(()) => {}
                Err(e @ RunnerError::Stopped { .. }) => {
                    first_stop.get_or_insert(e);
                }
                Err(e) => {
                    tracing::warn!(projections = %label, error = %e, "projection round failed")
                }
            }
            if self.active().is_empty() {
                return Err(first_stop.unwrap_or_else(|| RunnerError::Stopped {
                    projection: self.members[0].projection.name(),
                    event_id: sportello_domain::EventId(uuid::Uuid::nil()),
                    error: "stopped before this runner started".into(),
                }));
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    /// Lead if no other runner holds any of our projections, until
    /// shutdown or a failure.
    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), RunnerError> {
        let mut lock = self.pool.acquire().await.map_err(StoreError::from)?;
        // Close (not pool) this connection when dropped: a dead task must
        // not leave a lock held by an idle pooled connection.
        lock.close_on_drop();
        let names: Vec<&str> = self.members.iter().map(|m| m.projection.name()).collect();
        let (got,): (bool,) = sqlx::query_as(
            "SELECT bool_and(pg_try_advisory_lock(hashtextextended('sportello-projection:' || n, 0)))
               FROM unnest($1::text[]) AS n",
        )
        .bind(&names)
        .fetch_one(&mut *lock)
        .await
        .map_err(StoreError::from)?;
        let result = match got {
            true => self.follow(shutdown).await,
            false => Ok(()),
        };
        let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
            .execute(&mut *lock)
            .await;
        result
    }

    /// Catch up from the log; then follow the bus until it fails; repeat.
    async fn follow(&self, shutdown: &CancellationToken) -> Result<(), RunnerError> {
        let mut stopped = None;
        for m in self.active() {
            let cp = checkpoint::setup(&self.pool, m.projection.as_ref()).await?;
            if let Some(error) = cp.error {
                stopped =
                    Some(self.stop_member(m, sportello_domain::EventId(uuid::Uuid::nil()), error));
            }
        }
        if let Some(e) = stopped
            && self.active().is_empty()
        {
            return Err(e);
        }
        loop {
            for m in &self.members {
                m.status.live.store(false, Ordering::Relaxed);
            }
            let cursor = self.catch_up(shutdown).await?;
            if shutdown.is_cancelled() {
                return Ok(());
            }
            let outcome = match &self.js {
                Some(js) => self.live(js, cursor, shutdown).await?,
                None => self.poll_log(shutdown).await?,
            };
            match outcome {
                Live::Shutdown => return Ok(()),
                Live::BusFailed(why) => {
                    tracing::warn!(projections = %self.label(), error = %why, "bus failed; following the log");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    }

    /// Where the runner reads from: the earliest checkpoint of its running
    /// projections.
    async fn earliest(&self) -> Result<LogCursor, RunnerError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let mut cursor = None::<LogCursor>;
        for m in self.active() {
            let cp = checkpoint::load(&mut conn, m.projection.name(), false).await?;
            cursor = Some(cursor.map_or(cp.cursor, |c| c.min(cp.cursor)));
        }
        Ok(cursor.unwrap_or(LogCursor::START))
    }

    /// Apply from the log until it has nothing more; returns the cursor
    /// every running projection has reached.
    async fn catch_up(&self, shutdown: &CancellationToken) -> Result<LogCursor, RunnerError> {
        let mut cursor = self.earliest().await?;
        loop {
            let events = read_log(&self.pool, cursor, self.batch, None).await?;
            if events.is_empty() {
                return Ok(cursor);
            }
            cursor = self.apply(&events).await?;
            if (events.len() as i64) < self.batch || shutdown.is_cancelled() {
                return Ok(cursor);
            }
        }
    }

    /// Follow the log by polling (no bus configured).
    async fn poll_log(&self, shutdown: &CancellationToken) -> Result<Live, RunnerError> {
        loop {
            self.catch_up(shutdown).await?;
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(Live::Shutdown),
                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
    }

    /// Apply a batch to every running projection; returns the batch's last
    /// cursor. A projection that stops on an event of the batch is marked
    /// stopped; the error only when none is left running.
    async fn apply(&self, events: &[RecordedEvent]) -> Result<LogCursor, RunnerError> {
        let active = self.active();
        let projections: Vec<&dyn Projection> =
            active.iter().map(|m| m.projection.as_ref()).collect();
        let outcomes = checkpoint::apply_group(&self.pool, &projections, events).await?;
        let mut stopped = None;
        for (m, outcome) in active.iter().zip(outcomes) {
            match outcome {
                BatchOutcome::Applied { cursor, applied } => {
                    m.status.position.store(cursor.position, Ordering::Relaxed);
                    metrics::counter!("sportello_projection_applied_total", "projection" => m.projection.name())
                        .increment(applied as u64);
                }
                BatchOutcome::Failed { event, error } => {
                    tracing::error!(projection = m.projection.name(), event_id = %event.event_id, "projection stopped; the others go on");
                    stopped = Some(self.stop_member(m, event.event_id, error));
                }
            }
        }
        match stopped {
            Some(e) if self.active().is_empty() => Err(e),
            _ => Ok(events.last().map_or(LogCursor::START, |e| e.cursor)),
        }
    }

    /// The first stream sequence holding an event after `cursor`: a binary
    /// search over the stream, whose order is the log's.
    async fn start_sequence(
        stream: &mut jetstream::stream::Stream,
        cursor: LogCursor,
    ) -> Result<u64, async_nats::Error> {
        let state = stream.info().await?.state.clone();
        if state.messages == 0 {
            return Ok(state.last_sequence + 1);
        }
        let (mut lo, mut hi) = (state.first_sequence, state.last_sequence + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let msg = stream.get_raw_message(mid).await?;
            let e = bus::decode(&msg.payload)?;
            if e.cursor > cursor {
                hi = mid;
            } else {
                lo = mid + 1;
            }
        }
        Ok(lo)
    }

    /// The durable consumer's name: the projection's, or one for the group.
    fn durable(&self) -> String {
        match self.members.as_slice() {
            [one] => format!("projection_{}", one.projection.name()),
            many => {
                use sha2::Digest;
                let mut h = sha2::Sha256::new();
                for m in many {
                    h.update(m.projection.name().as_bytes());
                    h.update([0]);
                }
                let digest = h.finalize();
                let hex: String = digest[..6].iter().map(|b| format!("{b:02x}")).collect();
                format!("projections_{}_{hex}", many.len())
            }
        }
    }

    async fn live(
        &self,
        js: &jetstream::Context,
        cursor: LogCursor,
        shutdown: &CancellationToken,
    ) -> Result<Live, RunnerError> {
        let setup = async {
            let mut stream = self.bus.ensure_stream(js).await?;
            let start = Self::start_sequence(&mut stream, cursor).await?;
            let durable = self.durable();
            // The start is decided by our checkpoints, not by the consumer's
            // memory: replace the consumer each time we go live.
            let _ = stream.delete_consumer(&durable).await;
            let consumer = stream
                .create_consumer(consumer::pull::Config {
                    durable_name: Some(durable),
                    deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                        start_sequence: start,
                    },
                    ack_policy: consumer::AckPolicy::All,
                    ack_wait: Duration::from_secs(60),
                    max_ack_pending: 20_000,
                    filter_subject: self.bus.all_subjects(),
                    ..Default::default()
                })
                .await?;
            Ok::<_, async_nats::Error>((consumer.messages().await?, start))
        };
        let (mut messages, mut next_seq) = match setup.await {
            Ok(m) => m,
            Err(e) => return Ok(Live::BusFailed(e.to_string())),
        };
        for m in self.active() {
            m.status.live.store(true, Ordering::Relaxed);
        }
        loop {
            let first = tokio::select! {
                _ = shutdown.cancelled() => return Ok(Live::Shutdown),
                m = messages.next() => m,
            };
            let mut batch = match first {
                None => return Ok(Live::BusFailed("consumer ended".into())),
                Some(Err(e)) => return Ok(Live::BusFailed(e.to_string())),
                Some(Ok(m)) => vec![m],
            };
            // Take whatever else is already here, without waiting.
            while batch.len() < self.batch as usize {
                match messages.next().now_or_never() {
                    Some(Some(Ok(m))) => batch.push(m),
                    Some(Some(Err(e))) => return Ok(Live::BusFailed(e.to_string())),
                    Some(None) | None => break,
                }
            }
            // Under load (more than one message was waiting), linger a
            // little for more: one transaction per batch, so bigger batches
            // cost far fewer statements per event. An event alone goes at
            // once, so a quiet network sees no added lag.
            if batch.len() > 1 {
                let until = tokio::time::Instant::now() + LIVE_LINGER;
                while batch.len() < self.batch as usize {
                    match tokio::time::timeout_at(until, messages.next()).await {
                        Ok(Some(Ok(m))) => batch.push(m),
                        Ok(Some(Err(e))) => return Ok(Live::BusFailed(e.to_string())),
                        Ok(None) | Err(_) => break,
                    }
                }
            }
            let mut events = Vec::with_capacity(batch.len());
            for m in &batch {
                // The stream's sequence is the log's order: a gap means this
                // consumer is not seeing every message (shared with another
                // runner, or the stream was tampered with) — back to the log.
                // A sequence already seen is a redelivery: skip it.
                let seq = match m.info() {
                    Ok(info) => info.stream_sequence,
                    Err(e) => return Ok(Live::BusFailed(format!("message without info: {e}"))),
                };
                if seq < next_seq {
                    continue;
                }
                if seq > next_seq {
                    return Ok(Live::BusFailed(format!(
                        "expected stream sequence {next_seq}, got {seq}"
                    )));
                }
                next_seq = seq + 1;
                match bus::decode(&m.payload) {
                    Ok(e) => events.push(e),
                    // Not one of ours: follow the log (the truth) instead.
                    Err(e) => {
                        return Ok(Live::BusFailed(format!(
                            "undecodable message at stream sequence {seq}: {e}"
                        )));
                    }
                }
            }
            self.apply(&events).await?;
            // Acknowledge only after the checkpoints are committed; with
            // AckPolicy::All the last ack covers the batch. A lost ack means
            // a redelivery, which the checkpoints skip.
            if let Err(e) = batch.last().expect("non-empty").ack().await {
                return Ok(Live::BusFailed(e.to_string()));
            }
        }
    }
}

/// How long a live batch waits for more messages when several are
/// already waiting.
const LIVE_LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// Run projections for the life of a server, in one runner: a projection
/// that stops on an event stops alone; once its failure is cleared (after
/// a fix: `sportello rebuild`, or `checkpoint::clear_failure`), the runner
/// starts again with it. Returns on shutdown.
pub async fn supervise(
    pool: PgPool,
    js: Option<jetstream::Context>,
    bus: BusConfig,
    projections: Vec<(Arc<dyn Projection>, Arc<ProjectionStatus>)>,
    shutdown: CancellationToken,
) {
    loop {
        let runner =
            ProjectionRunner::group(pool.clone(), js.clone(), bus.clone(), projections.clone());
        let round = shutdown.child_token();
        let mut task = tokio::spawn(runner.run(round.clone()));
        // Watch the stopped projections' checkpoints: when one is cleared,
        // end this round and start again with it.
        let again = loop {
            tokio::select! {
                _ = shutdown.cancelled() => {
                    round.cancel();
                    let _ = task.await;
                    return;
                }
                result = &mut task => match result {
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "every projection stopped; waiting for a failure to be cleared");
                        break wait_for_clearance(&pool, &projections, &shutdown).await;
                    }
                    // Ended without a stop (a panic outside the guarded
                    // read-model code): start again.
                    _ => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        break !shutdown.is_cancelled();
                    }
                },
                _ = tokio::time::sleep(Duration::from_secs(1)) => {
                    if cleared(&pool, &projections, false).await {
                        round.cancel();
                        let _ = task.await;
                        break true;
                    }
                }
            }
        };
        if !again {
            return;
        }
        cleared(&pool, &projections, true).await;
    }
}

/// Whether a projection marked stopped has had its failure cleared; with
/// `reset`, mark each such projection running again.
async fn cleared(
    pool: &PgPool,
    projections: &[(Arc<dyn Projection>, Arc<ProjectionStatus>)],
    reset: bool,
) -> bool {
    if !projections
        .iter()
        .any(|(_, s)| s.failed.load(Ordering::Relaxed))
    {
        return false;
    }
    let Ok(mut conn) = pool.acquire().await else {
        return false;
    };
    let mut any = false;
    for (p, status) in projections {
        if !status.failed.load(Ordering::Relaxed) {
            continue;
        }
        if matches!(checkpoint::load(&mut conn, p.name(), false).await, Ok(cp) if cp.error.is_none())
        {
            any = true;
            if !reset {
                break;
            }
            tracing::info!(projection = p.name(), "failure cleared; starting again");
            status.failed.store(false, Ordering::Relaxed);
            metrics::gauge!("sportello_projection_failed", "projection" => p.name()).set(0.0);
        }
    }
    any
}

/// Wait until a stopped projection's failure is cleared (true), or
/// shutdown (false).
async fn wait_for_clearance(
    pool: &PgPool,
    projections: &[(Arc<dyn Projection>, Arc<ProjectionStatus>)],
    shutdown: &CancellationToken,
) -> bool {
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
        if cleared(pool, projections, false).await {
            return true;
        }
    }
}
