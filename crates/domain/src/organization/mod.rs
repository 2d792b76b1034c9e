//! An organisation of the network (ente, nodo della rete): the desk or a
//! provider, with its services and its agreement (protocollo d'intesa). Its
//! own stream (kind `organization`).
//!
//! Onboarding lives in one place, [`transition`]:
//!
//! ```text
//! invited ──▶ onboarding ──▶ active ⇄ suspended
//! ```
//!
//! A service answers need categories of the taxonomy, in some languages,
//! with weekly opening hours and dates it is closed. The agreement says how
//! fast the provider answers a referral (in working days) and which fields
//! of the card it may see; signing a new one replaces the previous one.
//!
//! Organisation data is not personal: every event has a public part only.
//! `decide` is pure: the same state and command always give the same events
//! or the same refusal; a refusal gives no event. Time comes in as dates.
//!
//! The code is split by concept, everything re-exported here:
//! `details` (kind, ownership, contacts and the text checks), `service`
//! (services, languages, weekly hours, closing dates), `agreement` (the
//! agreement, card fields, deadlines), `lifecycle` (onboarding, commands,
//! events, `decide`, `evolve`) and `stored` (the payloads on the wire, the
//! split into event parts and `decode`, which reads them back).

mod agreement;
mod details;
mod lifecycle;
mod service;
mod stored;

pub use agreement::{Agreement, CardField};
pub use details::{Contacts, OrganizationKind, Ownership};
pub use lifecycle::{
    OnboardingStatus, OrganizationCommand, OrganizationEvent, decide, evolve, transition,
};
pub use service::{Service, TimeRange, WeeklyHours, is_language_code};
pub use stored::{
    AgreementEndedPayload, AgreementSignedPayload, DetailsPayload, NoPersonal,
    OnboardingChangedPayload, ServicePayload, ServiceRemovedPayload, Stored, TimeRangePayload,
    WeeklyHoursPayload, decode,
};

use crate::ids::{OrganizationId, ServiceId};
use std::collections::BTreeMap;
use time::Date;

/// The stream kind of an organisation.
pub const STREAM_KIND: &str = "organization";

/// An organisation as its events left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Organization {
    /// Its id (also its stream id).
    pub id: OrganizationId,
    /// Its name.
    pub name: String,
    /// What kind it is.
    pub kind: OrganizationKind,
    /// Public or private.
    pub ownership: Ownership,
    /// How to reach its office.
    pub contacts: Contacts,
    /// Where it stands in onboarding.
    pub status: OnboardingStatus,
    /// Its services.
    pub services: BTreeMap<ServiceId, Service>,
    /// Its current agreement, if any.
    pub agreement: Option<Agreement>,
}

impl Organization {
    /// Whether it is active and its agreement is in force on `date`: the
    /// desk may send it referrals.
    pub fn can_receive_referrals(&self, date: Date) -> bool {
        self.status == OnboardingStatus::Active
            && self.agreement.as_ref().is_some_and(|a| a.in_force(date))
    }
}

#[cfg(test)]
mod tests;
