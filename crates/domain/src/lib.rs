//! The Sportello domain: identifiers, event metadata and the events of a
//! person's case, as plain data.
//!
//! This crate is pure. It never touches a database, the network, the clock
//! or the file system: time comes in as an argument, and every decision is
//! a function of its inputs. Storage lives in `sportello-store`, HTTP in
//! `sportello-http`.

pub mod case;
pub mod event;
pub mod ids;
pub mod metadata;
pub mod schema;
pub mod upcast;

pub use event::{DomainEvent, EventParts};
pub use ids::{
    AccountId, CommandId, CorrelationId, EventId, NetworkId, OrganizationId, PersonId, StreamId,
};
pub use metadata::Metadata;
pub use upcast::{Part, UpcastError, upcast};
