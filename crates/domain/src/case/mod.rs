//! A person's case (the stream kind `case`): taking in charge, visits,
//! screened needs, the desk's own answers, closing and reopening. The
//! identity types and the opening event are here; the commands, the state
//! and the pure `decide`/`evolve` are in [`lifecycle`].

pub mod lifecycle;

use crate::event::{DomainEvent, EventParts};
use crate::ids::{OrganizationId, PersonId};
use serde::{Deserialize, Serialize};

/// The stream kind of a person's case.
pub const STREAM_KIND: &str = "case";

/// How the person reached the desk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// In person, at the desk.
    Desk,
    /// By phone.
    Phone,
    /// Met by outreach work.
    Outreach,
}

/// A name of the person, as written in a document or as used.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PersonName {
    /// `as_in_document` or `as_used`.
    pub kind: String,
    /// The name as written.
    pub text: String,
}

/// The personal part of [`PersonTakenInCharge`] (schema version 2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PersonIdentity {
    /// Names, as in documents and as used.
    pub names: Vec<PersonName>,
    /// Birth date as known (may be approximate), free form `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: Option<String>,
}

/// The public part of [`PersonTakenInCharge`] (schema version 2): no
/// personal data, kept in clear for statistics and routing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PersonTakenInChargePayload {
    /// The person (and case stream) id.
    pub person_id: PersonId,
    /// The desk that took them in charge.
    pub desk: OrganizationId,
    /// How they came.
    pub channel: Channel,
}

/// The desk took a person in charge: the case opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonTakenInCharge {
    /// The person.
    pub person_id: PersonId,
    /// The desk that took them in charge.
    pub desk: OrganizationId,
    /// How they came.
    pub channel: Channel,
    /// Who they are (personal, encrypted).
    pub identity: PersonIdentity,
}

impl PersonTakenInCharge {
    /// The event type on the wire.
    pub const TYPE: &'static str = "PersonTakenInCharge";
    /// The current schema version.
    pub const SCHEMA_VERSION: i32 = 2;
}

impl DomainEvent for PersonTakenInCharge {
    fn into_parts(self) -> EventParts {
        EventParts {
            event_type: Self::TYPE,
            schema_version: Self::SCHEMA_VERSION,
            payload: serde_json::to_value(PersonTakenInChargePayload {
                person_id: self.person_id,
                desk: self.desk,
                channel: self.channel,
            })
            .expect("payload serialises"),
            personal: Some((
                self.person_id,
                serde_json::to_value(&self.identity).expect("identity serialises"),
            )),
            concerns: Some(self.desk),
        }
    }
}
