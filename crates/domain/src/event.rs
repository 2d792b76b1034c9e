//! The contract between domain events and the store: an event splits into
//! a public part (kept in clear for statistics and routing) and a personal
//! part (encrypted under the person's key by the store).

use crate::ids::{OrganizationId, PersonId};
use serde_json::Value;

/// An event split for storage.
#[derive(Clone, Debug, PartialEq)]
pub struct EventParts {
    /// The event type, e.g. `PersonTakenInCharge`.
    pub event_type: &'static str,
    /// The current schema version of this type.
    pub schema_version: i32,
    /// The public part: no personal data.
    pub payload: Value,
    /// The personal part and whose it is, encrypted by the store.
    pub personal: Option<(PersonId, Value)>,
    /// The organisation this event concerns, if any (routes it on the bus).
    pub concerns: Option<OrganizationId>,
}

/// A domain event that knows how to split itself for storage.
pub trait DomainEvent {
    /// Split into public and personal parts.
    fn into_parts(self) -> EventParts;
}

/// The JSON of a payload or personal part (our parts always serialise).
pub fn part(v: impl serde::Serialize) -> Value {
    serde_json::to_value(v).expect("event parts serialise")
}
