//! Appending to a stream: expected version, idempotency record and events
//! in one transaction — one call of `sportello_append_one` (one event, no
//! idempotency key: the common command) or `sportello_append` (see
//! `migrations/0001_event_store.sql`).

use crate::crypto::Keyring;
use crate::envelope::NewEvent;
use crate::error::StoreError;
use sha2::{Digest, Sha256};
use sportello_domain::{Metadata, NetworkId, PersonId, StreamId};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::Notify;
use uuid::Uuid;

/// What the writer expects of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    /// Whatever its version (creates the stream if needed).
    Any,
    /// The stream must not exist yet.
    NoStream,
    /// The stream must be at exactly this version.
    Exact(i64),
}

impl ExpectedVersion {
    fn as_sql(self) -> i64 {
        match self {
            ExpectedVersion::Any => -1,
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Exact(v) => v,
        }
    }
}

/// An idempotency key and the hash of the request it came with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Idempotency {
    /// The client's key.
    pub key: Uuid,
    /// SHA-256 of the request (method, path and body, as the caller defines).
    pub request_hash: [u8; 32],
}

impl Idempotency {
    /// A key for this request's bytes.
    pub fn for_request(key: Uuid, request: &[u8]) -> Self {
        Idempotency {
            key,
            request_hash: Sha256::digest(request).into(),
        }
    }
}

/// One append: events for one stream, with who/why and expectations.
#[derive(Clone, Debug)]
pub struct AppendRequest {
    /// The tenant.
    pub network: NetworkId,
    /// The stream.
    pub stream_id: StreamId,
    /// The stream's kind.
    pub stream_kind: &'static str,
    /// Optimistic concurrency.
    pub expected: ExpectedVersion,
    /// The events, in order.
    pub events: Vec<NewEvent>,
    /// Who, when, why (the same for every event of one command).
    pub metadata: Metadata,
    /// Makes a retry answer the first answer.
    pub idempotency: Option<Idempotency>,
}

/// The answer to an append.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The stream appended to (on a replay: the stream of the first answer).
    pub stream_id: StreamId,
    /// Version of the first event appended.
    pub first_version: i64,
    /// The stream's version after the append (the HTTP `ETag`).
    pub last_version: i64,
    /// Global position of the last event (for read-your-writes).
    pub position: i64,
    /// True when this was a retry of an idempotent request: nothing appended.
    pub replayed: bool,
}

/// The event store.
#[derive(Clone, Debug)]
pub struct EventStore {
    pool: PgPool,
    keyring: Keyring,
    appended: Arc<Notify>,
}

impl EventStore {
    /// A store on this pool, sealing personal data with this keyring.
    pub fn new(pool: PgPool, keyring: Keyring) -> Self {
        EventStore {
            pool,
            keyring,
            appended: Arc::new(Notify::new()),
        }
    }

    /// The pool.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// The keyring.
    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    /// Woken after each append made through this store (the relay of the
    /// same process uses it to publish at once rather than at its next poll).
    pub fn appended(&self) -> Arc<Notify> {
        self.appended.clone()
    }

    /// Append in a transaction of its own, retrying when the database asks
    /// for it (a transaction older than the stream's last append).
    #[tracing::instrument(skip_all, fields(network = %req.network, stream = %req.stream_id, kind = req.stream_kind, n = req.events.len()))]
    pub async fn append(&self, req: &AppendRequest) -> Result<AppendResult, StoreError> {
        let started = std::time::Instant::now();
        let mut attempts = 0;
        let result = loop {
            let mut conn = self.pool.acquire().await?;
            match self.append_in(&mut conn, req).await {
                Err(StoreError::Retry) if attempts < 50 => {
                    attempts += 1;
                    // Back off a little, with jitter, so retrying writers
                    // of one hot stream do not collide again in step.
                    let jitter = rand::random_range(0..=attempts.min(20) * 200);
                    tokio::time::sleep(std::time::Duration::from_micros(jitter)).await;
                }
                other => break other,
            }
        };
        match &result {
            Ok(_) => {
                metrics::histogram!("sportello_append_seconds").record(started.elapsed());
                self.appended.notify_waiters();
            }
            Err(e) => tracing::debug!(error = %e, "append refused"),
        }
        result
    }

    /// Append inside the caller's connection or transaction. When this is
    /// part of a larger transaction, the events become visible (and get
    /// relayed) only when it commits; [`StoreError::Retry`] asks the caller
    /// to roll back and try again in a new transaction.
    pub async fn append_in(
        &self,
        conn: &mut PgConnection,
        req: &AppendRequest,
    ) -> Result<AppendResult, StoreError> {
        self.append_with(conn, req, None).await
    }

    /// Append a stream's history whose events happened at different times:
    /// `metadata[i]` is the `i`-th event's (loaders of past data — the demo,
    /// the benchmark's dataset — use it; commands use [`Self::append`]).
    pub async fn append_history(
        &self,
        req: &AppendRequest,
        metadata: &[Metadata],
    ) -> Result<AppendResult, StoreError> {
        if metadata.len() != req.events.len() {
            return Err(StoreError::Corrupt(
                "one metadata per event is required".into(),
            ));
        }
        let mut attempts = 0;
        loop {
            let mut conn = self.pool.acquire().await?;
            match self.append_with(&mut conn, req, Some(metadata)).await {
                Err(StoreError::Retry) if attempts < 50 => attempts += 1,
                other => {
                    if other.is_ok() {
                        self.appended.notify_waiters();
                    }
                    return other;
                }
            }
        }
    }

    async fn append_with(
        &self,
        conn: &mut PgConnection,
        req: &AppendRequest,
        per_event: Option<&[Metadata]>,
    ) -> Result<AppendResult, StoreError> {
        if req.events.is_empty() {
            return Err(StoreError::Empty);
        }
        if let ExpectedVersion::Exact(v) = req.expected
            && v < 1
        {
            return Err(StoreError::InvalidExpectedVersion(v));
        }
        // Seal personal parts first (this may create a person's key).
        let mut keys: HashMap<PersonId, [u8; 32]> = HashMap::new();
        let mut sealed: Vec<Option<(Uuid, Vec<u8>)>> = Vec::with_capacity(req.events.len());
        for e in &req.events {
            sealed.push(match &e.personal {
                None => None,
                Some((person, value)) => {
                    let key = match keys.get(person) {
                        Some(k) => *k,
                        None => {
                            let k = self
                                .keyring
                                .key_for_writing(conn, req.network, *person)
                                .await?;
                            keys.insert(*person, k);
                            k
                        }
                    };
                    Some((person.0, Keyring::seal_with(&key, e.event_id, value)?))
                }
            });
        }
        let md = sqlx::types::Json(per_event.map_or(&req.metadata, |m| &m[0]));
        let result = if let ([e], None) = (req.events.as_slice(), req.idempotency) {
            // The common command: one event, no key — scalar parameters.
            let (person, personal) = sealed.pop().flatten().unzip();
            sqlx::query_as::<_, (i64, i64)>(
                "SELECT r_version, r_position
                   FROM sportello_append_one($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            )
            .bind(req.network.0)
            .bind(req.stream_id.0)
            .bind(req.stream_kind)
            .bind(req.expected.as_sql())
            .bind(e.event_id.0)
            .bind(&e.event_type)
            .bind(e.schema_version)
            .bind(sqlx::types::Json(&e.payload))
            .bind(person)
            .bind(personal)
            .bind(e.concerns.map(|o| o.0))
            .bind(md)
            .fetch_one(&mut *conn)
            .await
            .map(|(version, position)| AppendResult {
                stream_id: req.stream_id,
                first_version: version,
                last_version: version,
                position,
                replayed: false,
            })
        } else {
            let (persons, personal): (Vec<Option<Uuid>>, Vec<Option<Vec<u8>>>) =
                sealed.into_iter().map(Option::unzip).unzip();
            let (idem_key, idem_hash) = match req.idempotency {
                Some(i) => (Some(i.key), Some(i.request_hash.to_vec())),
                None => (None, None),
            };
            sqlx::query_as::<_, (Uuid, i64, i64, i64, bool)>(
                "SELECT r_stream_id, r_first_version, r_last_version, r_last_position, r_replayed
                   FROM sportello_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
            )
            .bind(req.network.0)
            .bind(req.stream_id.0)
            .bind(req.stream_kind)
            .bind(req.expected.as_sql())
            .bind(req.events.iter().map(|e| e.event_id.0).collect::<Vec<_>>())
            .bind(req.events.iter().map(|e| e.event_type.as_str()).collect::<Vec<_>>())
            .bind(req.events.iter().map(|e| e.schema_version).collect::<Vec<_>>())
            .bind(
                req.events
                    .iter()
                    .map(|e| sqlx::types::Json(&e.payload))
                    .collect::<Vec<_>>(),
            )
            .bind(persons)
            .bind(personal)
            .bind(req.events.iter().map(|e| e.concerns.map(|o| o.0)).collect::<Vec<_>>())
            .bind(match per_event {
                Some(m) => m.iter().map(sqlx::types::Json).collect::<Vec<_>>(),
                None => vec![md; req.events.len()],
            })
            .bind(idem_key)
            .bind(idem_hash)
            .fetch_one(&mut *conn)
            .await
            .map(|row| AppendResult {
                stream_id: StreamId(row.0),
                first_version: row.1,
                last_version: row.2,
                position: row.3,
                replayed: row.4,
            })
        };
        let result = result.map_err(|e| {
            StoreError::from_append(e, req.stream_id.0, req.expected == ExpectedVersion::Any)
        })?;
        // Counted when written (inside a caller's transaction that later
        // rolls back, the count runs ahead: it is a rate, not a ledger).
        metrics::counter!("sportello_events_appended_total").increment(if result.replayed {
            0
        } else {
            req.events.len() as u64
        });
        Ok(result)
    }
}
