//! Runs one projection: catch up from the PostgreSQL log, then follow the
//! JetStream stream through a durable consumer; back to the log whenever
//! the bus fails. Only one runner per projection is active among all
//! processes (an advisory lock), though the checkpoint alone would keep a
//! second one from applying anything twice.

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

/// Runs one projection.
pub struct ProjectionRunner {
    pool: PgPool,
    js: Option<jetstream::Context>,
    bus: BusConfig,
    projection: Arc<dyn Projection>,
    status: Arc<ProjectionStatus>,
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
    /// A runner. Without a JetStream context it follows the log only.
    pub fn new(
        pool: PgPool,
        js: Option<jetstream::Context>,
        bus: BusConfig,
        projection: Arc<dyn Projection>,
    ) -> Self {
        ProjectionRunner {
            pool,
            js,
            bus,
            projection,
            status: Arc::new(ProjectionStatus::default()),
            batch: 1000,
        }
    }

    /// Its status, shared.
    pub fn status(&self) -> Arc<ProjectionStatus> {
        self.status.clone()
    }

    /// Report into this status (one status across restarts of a runner).
    pub fn with_status(mut self, status: Arc<ProjectionStatus>) -> Self {
        self.status = status;
        self
    }

    /// The projection.
    pub fn projection(&self) -> &Arc<dyn Projection> {
        &self.projection
    }

    /// Run until shutdown, or until the projection stops on an event.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), RunnerError> {
        let name = self.projection.name();
        loop {
            match self.lead(&shutdown).await {
                Ok(()) if shutdown.is_cancelled() => return Ok(()),
                Ok(()) => {}
                Err(e @ RunnerError::Stopped { .. }) => {
                    self.status.failed.store(true, Ordering::Relaxed);
                    metrics::gauge!("sportello_projection_failed", "projection" => name).set(1.0);
                    return Err(e);
                }
                Err(e) => tracing::warn!(projection = name, error = %e, "projection round failed"),
            }
            tokio::select! {
                _ = shutdown.cancelled() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }

    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), RunnerError> {
        let name = self.projection.name();
        let mut lock = self.pool.acquire().await.map_err(StoreError::from)?;
        let (got,): (bool,) = sqlx::query_as(
            "SELECT pg_try_advisory_lock(hashtextextended('sportello-projection:' || $1, 0))",
        )
        .bind(name)
        .fetch_one(&mut *lock)
        .await
        .map_err(StoreError::from)?;
        if !got {
            return Ok(());
        }
        // Close (not pool) this connection when dropped: a dead task must
        // not leave the lock held by an idle pooled connection.
        lock.close_on_drop();
        let result = self.follow(shutdown).await;
        let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
            .execute(&mut *lock)
            .await;
        result
    }

    /// Catch up from the log; then follow the bus until it fails; repeat.
    async fn follow(&self, shutdown: &CancellationToken) -> Result<(), RunnerError> {
        let cp = checkpoint::setup(&self.pool, self.projection.as_ref()).await?;
        if let Some(error) = cp.error {
            return Err(RunnerError::Stopped {
                projection: self.projection.name(),
                event_id: sportello_domain::EventId(uuid::Uuid::nil()),
                error,
            });
        }
        loop {
            self.status.live.store(false, Ordering::Relaxed);
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
                    tracing::warn!(projection = self.projection.name(), error = %why, "bus failed; following the log");
                    tokio::select! {
                        _ = shutdown.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                    }
                }
            }
        }
    }

    /// Apply from the log until it has nothing more; returns the checkpoint.
    async fn catch_up(&self, shutdown: &CancellationToken) -> Result<LogCursor, RunnerError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let mut cursor = checkpoint::load(&mut conn, self.projection.name(), false)
            .await?
            .cursor;
        drop(conn);
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

    async fn apply(&self, events: &[RecordedEvent]) -> Result<LogCursor, RunnerError> {
        match checkpoint::apply_batch(&self.pool, self.projection.as_ref(), events).await? {
            BatchOutcome::Applied { cursor, applied } => {
                self.status
                    .position
                    .store(cursor.position, Ordering::Relaxed);
                metrics::counter!("sportello_projection_applied_total", "projection" => self.projection.name())
                    .increment(applied as u64);
                Ok(cursor)
            }
            BatchOutcome::Failed { event, error } => Err(RunnerError::Stopped {
                projection: self.projection.name(),
                event_id: event.event_id,
                error,
            }),
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

    async fn live(
        &self,
        js: &jetstream::Context,
        cursor: LogCursor,
        shutdown: &CancellationToken,
    ) -> Result<Live, RunnerError> {
        let name = self.projection.name();
        let setup = async {
            let mut stream = self.bus.ensure_stream(js).await?;
            let start = Self::start_sequence(&mut stream, cursor).await?;
            let durable = format!("projection_{name}");
            // The start is decided by our checkpoint, not by the consumer's
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
        self.status.live.store(true, Ordering::Relaxed);
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
            // Acknowledge only after the checkpoint is committed; with
            // AckPolicy::All the last ack covers the batch. A lost ack means
            // a redelivery, which the checkpoint skips.
            if let Err(e) = batch.last().expect("non-empty").ack().await {
                return Ok(Live::BusFailed(e.to_string()));
            }
        }
    }
}

/// How long a live batch waits for more messages when several are
/// already waiting.
const LIVE_LINGER: std::time::Duration = std::time::Duration::from_millis(10);

/// Run a projection for the life of a server: when it stops on an event,
/// wait until its failure is cleared (after a fix: `sportello rebuild`,
/// or `checkpoint::clear_failure`), then start it again. Returns on
/// shutdown.
pub async fn supervise(
    pool: PgPool,
    js: Option<jetstream::Context>,
    bus: BusConfig,
    projection: Arc<dyn Projection>,
    status: Arc<ProjectionStatus>,
    shutdown: CancellationToken,
) {
    let name = projection.name();
    loop {
        let runner =
            ProjectionRunner::new(pool.clone(), js.clone(), bus.clone(), projection.clone())
                .with_status(status.clone());
        match runner.run(shutdown.clone()).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(projection = name, error = %e, "projection stopped; waiting for the failure to be cleared")
            }
        }
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
            let Ok(mut conn) = pool.acquire().await else {
                continue;
            };
            match checkpoint::load(&mut conn, name, false).await {
                Ok(cp) if cp.error.is_none() => break,
                _ => {}
            }
        }
        tracing::info!(projection = name, "failure cleared; starting again");
        status.failed.store(false, Ordering::Relaxed);
        metrics::gauge!("sportello_projection_failed", "projection" => name).set(0.0);
    }
}
