//! The relay: publishes the log to JetStream in log order, exactly once.
//!
//! - Only one relay is active per stream among all server processes: it
//!   holds a PostgreSQL advisory lock on a dedicated connection, and reads
//!   the log through that same connection, so losing the connection loses
//!   both the lock and the right to publish.
//! - Each message carries `Nats-Msg-Id` = event id (JetStream drops a
//!   duplicate) and `Nats-Expected-Last-Sequence` (JetStream refuses a
//!   message that would not be the next one), so the stream's sequence is
//!   the log's order, one message per event.
//! - On start and after any error the relay does not trust its memory nor
//!   the deduplication window: it reads the stream's last message, finds
//!   that event in the log, and goes on from there.
//! - While NATS is down the relay retries with backoff; appends never wait
//!   for it.

use crate::bus::{self, BusConfig};
use crate::envelope::LogCursor;
use crate::error::StoreError;
use crate::read::{cursor_of_event, read_log};
use async_nats::jetstream::{self, message::PublishMessage};
use sportello_domain::EventId;
use sqlx::pool::PoolConnection;
use sqlx::{PgPool, Postgres};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Why a relay round stopped.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// NATS failed (down, timed out, refused a message).
    #[error("bus: {0}")]
    Bus(String),
    /// The stream holds something the log does not explain.
    #[error("stream out of step with the log: {0}")]
    OutOfStep(String),
}

fn bus_err(e: impl std::fmt::Display) -> RelayError {
    RelayError::Bus(e.to_string())
}

/// What the relay has done, for `/readyz` and metrics.
#[derive(Debug, Default)]
pub struct RelayStatus {
    /// This process holds the relay lock.
    pub leader: AtomicBool,
    /// Last stream sequence published.
    pub stream_seq: AtomicI64,
    /// Position of the last event published.
    pub position: AtomicI64,
    /// The last round ended in an error (NATS down, ...).
    pub failing: AtomicBool,
}

/// Settings of a relay.
#[derive(Clone, Debug)]
pub struct RelayConfig {
    /// Stream and subjects.
    pub bus: BusConfig,
    /// Events read and published per round.
    pub batch: i64,
    /// How often to look at the log when no append in this process woke us
    /// (appends from other processes are seen at this pace).
    pub poll: Duration,
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            bus: BusConfig::default(),
            batch: 1000,
            poll: Duration::from_millis(5),
        }
    }
}

/// The relay of one installation.
pub struct Relay {
    pool: PgPool,
    js: jetstream::Context,
    config: RelayConfig,
    appended: Arc<Notify>,
    status: Arc<RelayStatus>,
}

impl Relay {
    /// A relay from this pool to this JetStream, woken by `appended`.
    pub fn new(
        pool: PgPool,
        js: jetstream::Context,
        config: RelayConfig,
        appended: Arc<Notify>,
    ) -> Self {
        Relay {
            pool,
            js,
            config,
            appended,
            status: Arc::new(RelayStatus::default()),
        }
    }

    /// Its status, shared.
    pub fn status(&self) -> Arc<RelayStatus> {
        self.status.clone()
    }

    /// Run until `shutdown`: wait for the lock, then publish; after any
    /// error, back off and reconcile.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut backoff = Duration::from_millis(100);
        while !shutdown.is_cancelled() {
            match self.lead(&shutdown).await {
                Ok(()) => backoff = Duration::from_millis(100),
                Err(e) => {
                    self.status.failing.store(true, Ordering::Relaxed);
                    metrics::counter!("sportello_relay_errors_total").increment(1);
                    tracing::warn!(error = %e, "relay round failed; will reconcile");
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                }
            }
            self.status.leader.store(false, Ordering::Relaxed);
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tokio::time::sleep(backoff) => {}
            }
        }
    }

    /// One term as leader: returns Ok when the lock is held elsewhere or on
    /// shutdown, Err on any failure.
    async fn lead(&self, shutdown: &CancellationToken) -> Result<(), RelayError> {
        let mut conn = self.pool.acquire().await.map_err(StoreError::from)?;
        let (got,): (bool,) = sqlx::query_as(
            "SELECT pg_try_advisory_lock(hashtextextended('sportello-relay:' || $1, 0))",
        )
        .bind(&self.config.bus.stream_name)
        .fetch_one(&mut *conn)
        .await
        .map_err(StoreError::from)?;
        if !got {
            return Ok(());
        }
        // Never give this connection back to the pool: if this task dies
        // (aborted, panicked) the connection closes and the lock goes with
        // it, instead of staying held by an idle pooled connection.
        conn.close_on_drop();
        let result = self.publish_loop(&mut conn, shutdown).await;
        let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
            .execute(&mut *conn)
            .await;
        result
    }

    /// Find where the stream ends in the log.
    async fn reconcile(
        &self,
        conn: &mut PoolConnection<Postgres>,
    ) -> Result<(LogCursor, u64), RelayError> {
        let mut stream = self
            .config
            .bus
            .ensure_stream(&self.js)
            .await
            .map_err(bus_err)?;
        let last_seq = stream.info().await.map_err(bus_err)?.state.last_sequence;
        if last_seq == 0 {
            return Ok((LogCursor::START, 0));
        }
        let msg = match stream.get_raw_message(last_seq).await {
            Ok(m) => m,
            Err(e) => {
                // The last message may have aged out of a stream with limits.
                // Then the relay's own record is the only witness; it is
                // used only when it names exactly that sequence.
                let recorded: Option<(i64, i64, i64)> = sqlx::query_as(
                    "SELECT tx_id::text::bigint, position, stream_seq FROM relay_progress
                      WHERE stream_name = $1",
                )
                .bind(&self.config.bus.stream_name)
                .fetch_optional(&mut **conn)
                .await
                .map_err(StoreError::from)?;
                return match recorded {
                    Some((tx, position, seq)) if seq as u64 == last_seq => {
                        Ok((LogCursor { tx, position }, last_seq))
                    }
                    _ => Err(RelayError::OutOfStep(format!(
                        "cannot read message {last_seq}: {e}"
                    ))),
                };
            }
        };
        let id = msg
            .headers
            .get(async_nats::header::NATS_MESSAGE_ID)
            .ok_or_else(|| {
                RelayError::OutOfStep(format!("message {last_seq} has no Nats-Msg-Id"))
            })?;
        let event_id: EventId = id
            .as_str()
            .parse()
            .map_err(|_| RelayError::OutOfStep(format!("message {last_seq} has a foreign id")))?;
        let cursor = cursor_of_event(&mut **conn, event_id)
            .await?
            .ok_or_else(|| {
                RelayError::OutOfStep(format!("event of message {last_seq} is not in the log"))
            })?;
        Ok((cursor, last_seq))
    }

    async fn publish_loop(
        &self,
        conn: &mut PoolConnection<Postgres>,
        shutdown: &CancellationToken,
    ) -> Result<(), RelayError> {
        let (mut cursor, mut seq) = self.reconcile(conn).await?;
        self.status.leader.store(true, Ordering::Relaxed);
        self.status.failing.store(false, Ordering::Relaxed);
        self.status.stream_seq.store(seq as i64, Ordering::Relaxed);
        tracing::info!(stream = %self.config.bus.stream_name, seq, %cursor, "relay leading");
        loop {
            if shutdown.is_cancelled() {
                return Ok(());
            }
            // Register for a wake-up before reading, so an append between the
            // read and the wait is not missed.
            let woken = self.appended.notified();
            let batch = read_log(&mut **conn, cursor, self.config.batch, None).await?;
            if batch.is_empty() {
                tokio::select! {
                    _ = shutdown.cancelled() => return Ok(()),
                    _ = woken => {}
                    _ = tokio::time::sleep(self.config.poll) => {}
                }
                continue;
            }
            let mut acks = Vec::with_capacity(batch.len());
            for (i, e) in batch.iter().enumerate() {
                let publish = PublishMessage::build()
                    .payload(bus::encode(e))
                    .message_id(e.event_id.to_string())
                    .expected_last_sequence(seq + i as u64);
                let ack = self
                    .js
                    .send_publish(self.config.bus.subject(e), publish)
                    .await
                    .map_err(bus_err)?;
                acks.push(ack);
            }
            for (i, ack) in acks.into_iter().enumerate() {
                let ack = ack.await.map_err(bus_err)?;
                let want = seq + i as u64 + 1;
                if ack.duplicate || ack.sequence != want {
                    return Err(RelayError::OutOfStep(format!(
                        "published at {} (duplicate: {}), expected {want}",
                        ack.sequence, ack.duplicate
                    )));
                }
            }
            seq += batch.len() as u64;
            cursor = batch.last().expect("non-empty").cursor;
            metrics::counter!("sportello_relay_published_total").increment(batch.len() as u64);
            self.status.stream_seq.store(seq as i64, Ordering::Relaxed);
            self.status
                .position
                .store(cursor.position, Ordering::Relaxed);
            sqlx::query(
                "INSERT INTO relay_progress (stream_name, tx_id, position, stream_seq, updated_at)
                 VALUES ($1, $2::text::xid8, $3, $4, now())
                 ON CONFLICT (stream_name) DO UPDATE
                   SET tx_id = excluded.tx_id, position = excluded.position,
                       stream_seq = excluded.stream_seq, updated_at = now()",
            )
            .bind(&self.config.bus.stream_name)
            .bind(cursor.tx.to_string())
            .bind(cursor.position)
            .bind(seq as i64)
            .execute(&mut **conn)
            .await
            .map_err(StoreError::from)?;
        }
    }
}

/// How many events the relay of `stream_name` has still to publish.
pub async fn relay_lag(pool: &PgPool, stream_name: &str) -> Result<i64, StoreError> {
    let cursor: Option<(i64, i64)> = sqlx::query_as(
        "SELECT tx_id::text::bigint, position FROM relay_progress WHERE stream_name = $1",
    )
    .bind(stream_name)
    .fetch_optional(pool)
    .await?;
    let cursor = cursor
        .map(|(tx, position)| LogCursor { tx, position })
        .unwrap_or(LogCursor::START);
    crate::read::count_after(pool, cursor).await
}
