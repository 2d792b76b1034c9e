//! The shapes of events around the store: what goes in ([`NewEvent`]),
//! what is stored and published ([`RecordedEvent`]), and what a reader
//! allowed to see personal data gets ([`ReadEvent`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sportello_domain::{
    EventId, EventParts, Metadata, NetworkId, OrganizationId, PersonId, StreamId,
};
use std::fmt;
use time::OffsetDateTime;

/// A place in the log's total order: the transaction that wrote the event,
/// then its position. Readers only read below the oldest running
/// transaction, so no event can later appear before a cursor already
/// passed: reading "after cursor" never skips a late commit.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub struct LogCursor {
    /// The writing transaction's id (`xid8`).
    pub tx: i64,
    /// The event's position (unique, increasing within a transaction).
    pub position: i64,
}

impl LogCursor {
    /// Before the first event.
    pub const START: LogCursor = LogCursor { tx: 0, position: 0 };
}

impl fmt::Display for LogCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.tx, self.position)
    }
}

/// An event to append.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Its id, minted by the caller so a retry can carry the same one.
    pub event_id: EventId,
    /// The event type.
    pub event_type: String,
    /// The schema version the payload is written in.
    pub schema_version: i32,
    /// The public part.
    pub payload: Value,
    /// The personal part, sealed by the store under this person's key.
    pub personal: Option<(PersonId, Value)>,
    /// The organisation the event concerns (routing on the bus).
    pub concerns: Option<OrganizationId>,
}

impl From<EventParts> for NewEvent {
    fn from(p: EventParts) -> Self {
        NewEvent {
            event_id: EventId::new(),
            event_type: p.event_type.to_owned(),
            schema_version: p.schema_version,
            payload: p.payload,
            personal: p.personal,
            concerns: p.concerns,
        }
    }
}

/// A personal part as stored: ciphertext under a person's key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SealedPersonal {
    /// Whose key.
    pub person_id: PersonId,
    /// Nonce (24 bytes) and ciphertext, standard base64 on the wire.
    #[serde(with = "crate::bus::base64_bytes")]
    #[schemars(with = "String", extend("contentEncoding" = "base64"))]
    pub ciphertext: Vec<u8>,
}

/// An event as stored in the log and published on the bus. The public
/// payload is upcast to the current schema version; the personal part stays
/// sealed (and in its stored version) until opened by [`crate::Keyring`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecordedEvent {
    /// Place in the log.
    pub cursor: LogCursor,
    /// Event id.
    pub event_id: EventId,
    /// The tenant.
    pub network_id: NetworkId,
    /// The stream.
    pub stream_id: StreamId,
    /// The stream's kind (`case`, `referral`, ...).
    pub stream_kind: String,
    /// Version within the stream, from 1.
    pub version: i64,
    /// Event type.
    pub event_type: String,
    /// Schema version of `payload` (current, after upcasting).
    pub schema_version: i32,
    /// Schema version as stored (the personal part is still in it).
    pub stored_schema_version: i32,
    /// Public part.
    pub payload: Value,
    /// Sealed personal part.
    pub personal: Option<SealedPersonal>,
    /// Organisation concerned.
    pub concerns: Option<OrganizationId>,
    /// Who, when, why.
    pub metadata: Metadata,
    /// Commit time in the database.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub recorded_at: OffsetDateTime,
}

/// The personal part of an event as a reader sees it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", content = "data", rename_all = "snake_case")]
pub enum Personal {
    /// The event has no personal part.
    None,
    /// Decrypted and upcast to the current version.
    Open(Value),
    /// The person's key was deleted: the data is gone for good.
    Erased,
}

/// An event with its personal part opened.
#[derive(Clone, Debug, PartialEq)]
pub struct ReadEvent {
    /// The event as recorded (personal part still sealed inside).
    pub event: RecordedEvent,
    /// The personal part, opened.
    pub personal: Personal,
}
