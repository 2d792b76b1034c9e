//! Appending to a stream: expected version, idempotency record and events
//! in one transaction (one call of the `sportello_append` SQL function,
//! see `migrations/0001_event_store.sql`).

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
                Err(StoreError::Retry) if attempts < 10 => attempts += 1,
                other => break other,
            }
        };
        match &result {
            Ok(r) => {
                metrics::counter!("sportello_events_appended_total").increment(if r.replayed {
                    0
                } else {
                    req.events.len() as u64
                });
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
        if req.events.is_empty() {
            return Err(StoreError::Empty);
        }
        let n = req.events.len();
        let mut ids = Vec::with_capacity(n);
        let mut types = Vec::with_capacity(n);
        let mut versions = Vec::with_capacity(n);
        let mut payloads = Vec::with_capacity(n);
        let mut persons: Vec<Option<Uuid>> = Vec::with_capacity(n);
        let mut personal: Vec<Option<Vec<u8>>> = Vec::with_capacity(n);
        let mut orgs: Vec<Option<Uuid>> = Vec::with_capacity(n);
        let mut metadata = Vec::with_capacity(n);
        let md = sqlx::types::Json(&req.metadata);
        let mut keys: HashMap<PersonId, [u8; 32]> = HashMap::new();
        for e in &req.events {
            ids.push(e.event_id.0);
            types.push(e.event_type.as_str());
            versions.push(e.schema_version);
            payloads.push(sqlx::types::Json(&e.payload));
            orgs.push(e.concerns.map(|o| o.0));
            metadata.push(md);
            match &e.personal {
                None => {
                    persons.push(None);
                    personal.push(None);
                }
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
                    persons.push(Some(person.0));
                    personal.push(Some(Keyring::seal_with(&key, e.event_id, value)?));
                }
            }
        }
        let (idem_key, idem_hash) = match req.idempotency {
            Some(i) => (Some(i.key), Some(i.request_hash.to_vec())),
            None => (None, None),
        };
        let row: (Uuid, i64, i64, i64, bool) = sqlx::query_as(
            "SELECT r_stream_id, r_first_version, r_last_version, r_last_position, r_replayed
               FROM sportello_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
        )
        .bind(req.network.0)
        .bind(req.stream_id.0)
        .bind(req.stream_kind)
        .bind(req.expected.as_sql())
        .bind(&ids)
        .bind(&types)
        .bind(&versions)
        .bind(&payloads)
        .bind(&persons)
        .bind(&personal)
        .bind(&orgs)
        .bind(&metadata)
        .bind(idem_key)
        .bind(idem_hash)
        .fetch_one(&mut *conn)
        .await
        .map_err(|e| StoreError::from_append(e, req.stream_id.0))?;
        Ok(AppendResult {
            stream_id: StreamId(row.0),
            first_version: row.1,
            last_version: row.2,
            position: row.3,
            replayed: row.4,
        })
    }
}
