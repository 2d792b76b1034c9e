//! Helpers shared by the store's integration tests.

#![allow(dead_code)]

use serde_json::json;
use sportello_domain::{AccountId, EventId, Metadata, NetworkId, OrganizationId, StreamId};
use sportello_store::{AppendRequest, EventStore, ExpectedVersion, Keyring, MasterKey, NewEvent};
use sqlx::PgPool;
use time::OffsetDateTime;

/// A store on this pool with a fresh master key.
pub fn store(pool: &PgPool) -> EventStore {
    EventStore::new(pool.clone(), Keyring::new(MasterKey::generate()))
}

/// Some metadata.
pub fn meta() -> Metadata {
    Metadata::for_command(
        AccountId::new(),
        OrganizationId::new(),
        OffsetDateTime::now_utc(),
    )
}

/// A plain event without personal data.
pub fn plain(n: u64) -> NewEvent {
    NewEvent {
        event_id: EventId::new(),
        event_type: "TestHappened".into(),
        schema_version: 1,
        payload: json!({ "n": n }),
        personal: None,
        concerns: None,
    }
}

/// An append of one plain event.
pub fn append_one(
    network: NetworkId,
    stream: StreamId,
    expected: ExpectedVersion,
    n: u64,
) -> AppendRequest {
    AppendRequest {
        network,
        stream_id: stream,
        stream_kind: "case",
        expected,
        events: vec![plain(n)],
        metadata: meta(),
        idempotency: None,
    }
}
