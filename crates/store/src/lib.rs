//! The event store of Sportello: PostgreSQL as the truth, NATS JetStream as
//! the bus.
//!
//! - [`EventStore`] appends events to a stream with an expected version and
//!   an optional idempotency key, in one transaction, and reads streams and
//!   the whole log in one gap-free total order (see [`LogCursor`]).
//! - [`idempotency`] claims a request's `Idempotency-Key` once and keeps
//!   its first answer, so every retry is given that answer back.
//! - [`crypto`] seals the personal part of events under a key per person,
//!   so deleting that key erases the person everywhere (crypto-shredding).
//! - [`relay`] publishes the log, in order and exactly once, to JetStream.
//! - [`projection`] runs read models from the bus, catches up and rebuilds
//!   them from the log, with checkpoints in the same transaction as rows.
//!
//! This crate never decides anything about a case (that is the domain's
//! job) and never puts personal data in clear into a table, a subject, a
//! header or a log line.

pub mod append;
pub mod bus;
pub mod crypto;
pub mod db;
pub mod envelope;
pub mod error;
pub mod idempotency;
pub mod person_index;
pub mod projection;
pub mod read;
pub mod relay;

pub use append::{AppendRequest, AppendResult, EventStore, ExpectedVersion, Idempotency};
pub use crypto::{Keyring, MasterKey};
pub use envelope::{LogCursor, NewEvent, Personal, ReadEvent, RecordedEvent, SealedPersonal};
pub use error::StoreError;
pub use idempotency::{Claim, FirstAnswer};
