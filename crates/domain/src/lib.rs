//! The Sportello domain: identifiers, event metadata and the events of a
//! person's case, as plain data.
//!
//! This crate is pure. It never touches a database, the network, the clock
//! or the file system: time comes in as an argument, and every decision is
//! a function of its inputs. Storage lives in `sportello-store`, HTTP in
//! `sportello-http`.

pub mod activation;
pub mod aggregate;
pub mod calendar;
pub mod case;
pub mod decode;
pub mod error;
pub mod event;
pub mod ids;
pub mod matching;
pub mod metadata;
pub mod organization;
pub mod referral;
pub mod registry;
pub mod schema;
pub mod taxonomy;
pub mod upcast;

pub use aggregate::Aggregate;
pub use decode::DecodeError;
pub use error::DomainError;
pub use event::{DomainEvent, EventParts};
pub use ids::{
    AccountId, CommandId, ConsentId, CorrelationId, EventId, LegalBasisId, NeedId, NetworkId,
    OrganizationId, PersonId, ReferralId, ServiceId, StreamId,
};
pub use metadata::Metadata;
pub use upcast::{Part, UpcastError, upcast};
