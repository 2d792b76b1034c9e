//! A professional's events as stored: the profile, availability, absences
//! and status in clear (the ranking and the reports need them); the name
//! and contacts sealed under the professional's own key.

use super::{Contact, Professional, ProfessionalEvent, Profile};
use crate::activation::ranking::RegistryStatus;
use crate::activation::{Mode, ProfessionalRole, Sector};
use crate::case::Proficiency;
use crate::decode::{DecodeError, payload};
use crate::event::{DomainEvent, EventParts, part};
use crate::ids::{PersonId, ProfessionalId};
use crate::organization::WeeklyHoursPayload;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::Date;

time::serde::format_description!(iso_day, Date, "[year]-[month]-[day]");

/// A language and how well, on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LanguagePayload {
    /// ISO 639-1 (paired with Italian).
    pub code: String,
    /// `native`, `fluent`, `basic`.
    pub proficiency: Proficiency,
}

/// The profile on the wire (`ProfessionalRegistered`, `ProfessionalProfileUpdated`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProfilePayload {
    /// The professional.
    pub professional_id: ProfessionalId,
    /// Roles.
    pub roles: BTreeSet<ProfessionalRole>,
    /// Sectors.
    pub sectors: BTreeSet<Sector>,
    /// Languages besides Italian.
    pub languages: Vec<LanguagePayload>,
    /// Modes.
    pub modes: BTreeSet<Mode>,
    /// Areas served.
    pub areas: Vec<String>,
    /// Admitted on, `YYYY-MM-DD`.
    #[serde(with = "iso_day")]
    #[schemars(with = "String", extend("format" = "date"))]
    pub admitted_on: Date,
    /// A lawyer's bar registration.
    pub bar_registration: Option<String>,
}

/// Public part of `ProfessionalAvailabilitySet`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AvailabilityPayload {
    /// Weekly hours, Potenza's local time.
    pub hours: WeeklyHoursPayload,
}

/// Public part of `ProfessionalAbsenceAdded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AbsencePayload {
    /// From, `YYYY-MM-DD`.
    #[serde(with = "iso_day")]
    #[schemars(with = "String", extend("format" = "date"))]
    pub from: Date,
    /// To (included), `YYYY-MM-DD`.
    #[serde(with = "iso_day")]
    #[schemars(with = "String", extend("format" = "date"))]
    pub to: Date,
}

/// Public part of `ProfessionalStatusChanged`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StatusPayload {
    /// `active`, `suspended`, `left`.
    pub status: RegistryStatus,
}

/// Personal part: who the professional is and how to reach them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ContactPersonal {
    /// Name.
    pub name: String,
    /// Phone.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
}

impl ProfessionalEvent {
    /// Its type on the wire.
    pub fn event_type(&self) -> &'static str {
        match self {
            ProfessionalEvent::Registered { .. } => "ProfessionalRegistered",
            ProfessionalEvent::ProfileUpdated { .. } => "ProfessionalProfileUpdated",
            ProfessionalEvent::AvailabilitySet(_) => "ProfessionalAvailabilitySet",
            ProfessionalEvent::AbsenceAdded { .. } => "ProfessionalAbsenceAdded",
            ProfessionalEvent::StatusChanged(_) => "ProfessionalStatusChanged",
        }
    }
}

fn profile_payload(id: ProfessionalId, p: Profile) -> ProfilePayload {
    ProfilePayload {
        professional_id: id,
        roles: p.roles,
        sectors: p.sectors,
        languages: p
            .languages
            .into_iter()
            .map(|(code, proficiency)| LanguagePayload { code, proficiency })
            .collect(),
        modes: p.modes,
        areas: p.areas,
        admitted_on: p.admitted_on,
        bar_registration: p.bar_registration,
    }
}

fn profile(p: ProfilePayload) -> Profile {
    Profile {
        roles: p.roles,
        sectors: p.sectors,
        languages: p
            .languages
            .into_iter()
            .map(|l| (l.code, l.proficiency))
            .collect(),
        modes: p.modes,
        areas: p.areas,
        admitted_on: p.admitted_on,
        bar_registration: p.bar_registration,
    }
}

/// A professional's event with their entry, ready for storage.
pub struct Stored<'a> {
    /// The event.
    pub event: ProfessionalEvent,
    /// The entry after it.
    pub professional: &'a Professional,
}

impl DomainEvent for Stored<'_> {
    fn into_parts(self) -> EventParts {
        let id = self.professional.id;
        // Sealed under the professional's own key.
        let sealed = |c: Contact| {
            (
                PersonId(id.0),
                part(ContactPersonal {
                    name: c.name,
                    phone: c.phone,
                    email: c.email,
                }),
            )
        };
        let event_type = self.event.event_type();
        let (payload, personal) = match self.event {
            ProfessionalEvent::Registered {
                profile, contact, ..
            } => (part(profile_payload(id, profile)), Some(sealed(contact))),
            ProfessionalEvent::ProfileUpdated { profile, contact } => {
                (part(profile_payload(id, profile)), contact.map(sealed))
            }
            ProfessionalEvent::AvailabilitySet(h) => (
                part(AvailabilityPayload {
                    hours: WeeklyHoursPayload::from(&h),
                }),
                None,
            ),
            ProfessionalEvent::AbsenceAdded { from, to } => {
                (part(AbsencePayload { from, to }), None)
            }
            ProfessionalEvent::StatusChanged(status) => (part(StatusPayload { status }), None),
        };
        EventParts {
            event_type,
            schema_version: 1,
            payload,
            personal,
            // The registry is the desk's: no organisation to route to.
            concerns: None,
        }
    }
}

/// Read a stored event back (contacts come back empty: deciding never
/// needs them).
pub fn decode(
    event_type: &str,
    value: &serde_json::Value,
) -> Result<ProfessionalEvent, DecodeError> {
    Ok(match event_type {
        "ProfessionalRegistered" => {
            let p: ProfilePayload = payload(event_type, value)?;
            ProfessionalEvent::Registered {
                id: p.professional_id,
                profile: profile(p),
                contact: Contact::default(),
            }
        }
        "ProfessionalProfileUpdated" => {
            let p: ProfilePayload = payload(event_type, value)?;
            ProfessionalEvent::ProfileUpdated {
                profile: profile(p),
                contact: None,
            }
        }
        "ProfessionalAvailabilitySet" => {
            let p: AvailabilityPayload = payload(event_type, value)?;
            ProfessionalEvent::AvailabilitySet(p.hours.to_hours(event_type)?)
        }
        "ProfessionalAbsenceAdded" => {
            let p: AbsencePayload = payload(event_type, value)?;
            ProfessionalEvent::AbsenceAdded {
                from: p.from,
                to: p.to,
            }
        }
        "ProfessionalStatusChanged" => {
            let p: StatusPayload = payload(event_type, value)?;
            ProfessionalEvent::StatusChanged(p.status)
        }
        other => return Err(DecodeError::UnknownType(other.to_owned())),
    })
}
