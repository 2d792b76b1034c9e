//! Organisation events as stored: the payload structs (their JSON Schemas
//! are generated from them), the split of an event into its parts, and
//! [`decode`], its inverse. Organisation data is not personal: there is
//! never a personal part.

use super::service::WEEKDAYS;
use super::{
    Agreement, CardField, Contacts, OnboardingStatus, OrganizationEvent, OrganizationKind,
    Ownership, Service, TimeRange, WeeklyHours,
};
use crate::decode::{DecodeError, payload as read};
use crate::event::{DomainEvent, EventParts, part};
use crate::ids::{AgreementId, OrganizationId, ServiceId};
use crate::taxonomy::NeedCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::{Date, Month, Time, Weekday};

fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn hh_mm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// The inverse of [`iso_date`]. Only the exact form it writes is read back
/// (so a stored date means one thing): `2026-3-1` or `+2026-03-01` are not
/// dates here.
fn parse_iso_date(s: &str) -> Option<Date> {
    // From the right: a year before the common era starts with a `-`.
    let mut parts = s.rsplitn(3, '-');
    let (day, month, year) = (parts.next()?, parts.next()?, parts.next()?);
    let month = Month::try_from(month.parse::<u8>().ok()?).ok()?;
    let date = Date::from_calendar_date(year.parse().ok()?, month, day.parse().ok()?).ok()?;
    (iso_date(date) == s).then_some(date)
}

/// The inverse of [`hh_mm`], as strict as [`parse_iso_date`].
fn parse_hh_mm(s: &str) -> Option<Time> {
    let (hour, minute) = s.split_once(':')?;
    let time = Time::from_hms(hour.parse().ok()?, minute.parse().ok()?, 0).ok()?;
    (hh_mm(time) == s).then_some(time)
}

/// Public part of `OrganizationRegistered` and `OrganizationDetailsUpdated`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DetailsPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// Its name.
    pub name: String,
    /// What kind it is.
    pub kind: OrganizationKind,
    /// Public or private.
    pub ownership: Ownership,
    /// How to reach its office.
    pub contacts: Contacts,
}

/// Public part of `OrganizationOnboardingChanged`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OnboardingChangedPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// From.
    pub from: OnboardingStatus,
    /// To.
    pub to: OnboardingStatus,
}

/// One opening period on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TimeRangePayload {
    /// Opens at, `HH:MM`.
    pub open: String,
    /// Closes at, `HH:MM` (not included).
    pub close: String,
}

/// Weekly opening hours on the wire: each weekday's periods, in order. A
/// day left out is a day closed (no periods), wherever hours are read —
/// services, a professional's availability — so a caller writes only the
/// days something is open. Stored events always name all seven days: the
/// default only widens what is accepted, never how an event reads back.
/// A key that is not a day (`Monday`, `saturdy`) is refused, never taken
/// for a day closed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeeklyHoursPayload {
    /// Monday (left out: closed).
    #[serde(default)]
    pub monday: Vec<TimeRangePayload>,
    /// Tuesday (left out: closed).
    #[serde(default)]
    pub tuesday: Vec<TimeRangePayload>,
    /// Wednesday (left out: closed).
    #[serde(default)]
    pub wednesday: Vec<TimeRangePayload>,
    /// Thursday (left out: closed).
    #[serde(default)]
    pub thursday: Vec<TimeRangePayload>,
    /// Friday (left out: closed).
    #[serde(default)]
    pub friday: Vec<TimeRangePayload>,
    /// Saturday (left out: closed).
    #[serde(default)]
    pub saturday: Vec<TimeRangePayload>,
    /// Sunday (left out: closed).
    #[serde(default)]
    pub sunday: Vec<TimeRangePayload>,
}

impl From<&WeeklyHours> for WeeklyHoursPayload {
    fn from(h: &WeeklyHours) -> Self {
        let day = |d: Weekday| {
            h.on(d)
                .iter()
                .map(|r| TimeRangePayload {
                    open: hh_mm(r.open),
                    close: hh_mm(r.close),
                })
                .collect()
        };
        let [
            monday,
            tuesday,
            wednesday,
            thursday,
            friday,
            saturday,
            sunday,
        ] = WEEKDAYS.map(day);
        Self {
            monday,
            tuesday,
            wednesday,
            thursday,
            friday,
            saturday,
            sunday,
        }
    }
}

impl WeeklyHoursPayload {
    /// Each weekday with its name on the wire and its periods, Monday first.
    fn days(&self) -> [(Weekday, &'static str, &[TimeRangePayload]); 7] {
        [
            (Weekday::Monday, "monday", &self.monday),
            (Weekday::Tuesday, "tuesday", &self.tuesday),
            (Weekday::Wednesday, "wednesday", &self.wednesday),
            (Weekday::Thursday, "thursday", &self.thursday),
            (Weekday::Friday, "friday", &self.friday),
            (Weekday::Saturday, "saturday", &self.saturday),
            (Weekday::Sunday, "sunday", &self.sunday),
        ]
    }
}

/// Public part of `OrganizationServiceAdded` and `OrganizationServiceUpdated`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServicePayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// The service.
    pub service_id: ServiceId,
    /// Its name.
    pub name: String,
    /// The need categories it answers.
    pub needs: Vec<NeedCode>,
    /// Its languages (ISO 639-1).
    pub languages: Vec<String>,
    /// Whether interpretation is offered.
    pub interpretation: bool,
    /// Who may use it, in words.
    pub eligibility: String,
    /// Where it is given.
    pub location: String,
    /// Weekly opening hours.
    pub hours: WeeklyHoursPayload,
    /// Dates it is closed, `YYYY-MM-DD`, in order.
    pub closed_on: Vec<String>,
}

/// Public part of `OrganizationServiceRemoved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceRemovedPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// The service.
    pub service_id: ServiceId,
}

/// Public part of `OrganizationAgreementSigned`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgreementSignedPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// The agreement.
    pub agreement_id: AgreementId,
    /// The agreement it replaces, if any.
    pub replaces: Option<AgreementId>,
    /// Signed on, `YYYY-MM-DD`.
    pub signed_on: String,
    /// First day it applies, `YYYY-MM-DD`.
    pub valid_from: String,
    /// Last day it applies (included), `YYYY-MM-DD`.
    pub valid_to: String,
    /// Working days to acknowledge a referral.
    pub acknowledge_within: u8,
    /// Working days to first contact the person.
    pub first_contact_within: u8,
    /// The card fields the provider may see.
    pub visible_fields: Vec<CardField>,
}

/// Public part of `OrganizationAgreementEnded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AgreementEndedPayload {
    /// The organisation.
    pub organization_id: OrganizationId,
    /// The agreement.
    pub agreement_id: AgreementId,
    /// The day it ended, `YYYY-MM-DD`.
    pub on: String,
}

/// Stands for the personal part in the schemas: organisation events have
/// none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NoPersonal {}

/// An organisation event with the organisation it belongs to, ready for
/// storage.
pub struct Stored {
    /// The event.
    pub event: OrganizationEvent,
    /// The organisation it belongs to.
    pub organization: OrganizationId,
}

impl DomainEvent for Stored {
    fn into_parts(self) -> EventParts {
        use OrganizationEvent as E;
        let organization_id = self.organization;
        let event_type = self.event.event_type();
        let service = |s: Service| ServicePayload {
            organization_id,
            service_id: s.id,
            hours: WeeklyHoursPayload::from(&s.hours),
            closed_on: s.closed_on.iter().copied().map(iso_date).collect(),
            name: s.name,
            needs: s.needs,
            languages: s.languages,
            interpretation: s.interpretation,
            eligibility: s.eligibility,
            location: s.location,
        };
        let payload = match self.event {
            E::Registered {
                name,
                kind,
                ownership,
                contacts,
                ..
            }
            | E::DetailsUpdated {
                name,
                kind,
                ownership,
                contacts,
            } => part(DetailsPayload {
                organization_id,
                name,
                kind,
                ownership,
                contacts,
            }),
            E::OnboardingChanged { from, to } => part(OnboardingChangedPayload {
                organization_id,
                from,
                to,
            }),
            E::ServiceAdded(s) | E::ServiceUpdated(s) => part(service(s)),
            E::ServiceRemoved(service_id) => part(ServiceRemovedPayload {
                organization_id,
                service_id,
            }),
            E::AgreementSigned {
                agreement: a,
                replaces,
            } => part(AgreementSignedPayload {
                organization_id,
                agreement_id: a.id,
                replaces,
                signed_on: iso_date(a.signed_on),
                valid_from: iso_date(a.valid_from),
                valid_to: iso_date(a.valid_to),
                acknowledge_within: a.acknowledge_within,
                first_contact_within: a.first_contact_within,
                visible_fields: a.visible_fields.into_iter().collect(),
            }),
            E::AgreementEnded { agreement, on } => part(AgreementEndedPayload {
                organization_id,
                agreement_id: agreement,
                on: iso_date(on),
            }),
        };
        EventParts {
            event_type,
            schema_version: 1,
            payload,
            // Organisation data is not personal.
            personal: None,
            // Routed to the organisation itself.
            concerns: Some(organization_id),
        }
    }
}

impl WeeklyHoursPayload {
    /// The hours these stand for (`event_type`: named in errors).
    pub fn to_hours(&self, event_type: &str) -> Result<WeeklyHours, DecodeError> {
        Reader { event_type }.hours(self)
    }
}

/// Reads the fields of one stored event back, naming the event type and the
/// field in what it reports.
struct Reader<'a> {
    event_type: &'a str,
}

impl Reader<'_> {
    fn date(&self, field: &str, s: &str) -> Result<Date, DecodeError> {
        parse_iso_date(s).ok_or_else(|| {
            DecodeError::malformed(
                self.event_type,
                format_args!("{field}: {s:?} is not a YYYY-MM-DD date"),
            )
        })
    }

    fn time(&self, field: &str, s: &str) -> Result<Time, DecodeError> {
        parse_hh_mm(s).ok_or_else(|| {
            DecodeError::malformed(
                self.event_type,
                format_args!("{field}: {s:?} is not an HH:MM time"),
            )
        })
    }

    fn hours(&self, p: &WeeklyHoursPayload) -> Result<WeeklyHours, DecodeError> {
        let mut hours = WeeklyHours::new();
        for (day, name, ranges) in p.days() {
            let ranges = ranges
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    Ok(TimeRange::new(
                        self.time(&format!("hours.{name}[{i}].open"), &r.open)?,
                        self.time(&format!("hours.{name}[{i}].close"), &r.close)?,
                    ))
                })
                .collect::<Result<_, DecodeError>>()?;
            hours.set(day, ranges);
        }
        Ok(hours)
    }

    fn service(&self, p: ServicePayload) -> Result<Service, DecodeError> {
        Ok(Service {
            id: p.service_id,
            hours: self.hours(&p.hours)?,
            closed_on: p
                .closed_on
                .iter()
                .enumerate()
                .map(|(i, d)| self.date(&format!("closed_on[{i}]"), d))
                .collect::<Result<_, _>>()?,
            name: p.name,
            needs: p.needs,
            languages: p.languages,
            interpretation: p.interpretation,
            eligibility: p.eligibility,
            location: p.location,
        })
    }
}

impl ServicePayload {
    /// The service this payload describes (its times and dates parsed);
    /// the error names the field.
    pub fn to_service(&self) -> Result<Service, DecodeError> {
        Reader {
            event_type: "service",
        }
        .service(self.clone())
    }
}

impl AgreementSignedPayload {
    /// The agreement this payload describes (its dates parsed); the error
    /// names the field.
    pub fn to_agreement(&self) -> Result<Agreement, DecodeError> {
        let r = Reader {
            event_type: "agreement",
        };
        Ok(Agreement {
            id: self.agreement_id,
            signed_on: r.date("signed_on", &self.signed_on)?,
            valid_from: r.date("valid_from", &self.valid_from)?,
            valid_to: r.date("valid_to", &self.valid_to)?,
            acknowledge_within: self.acknowledge_within,
            first_contact_within: self.first_contact_within,
            visible_fields: self.visible_fields.iter().copied().collect(),
        })
    }
}

/// Read a stored organisation event back from its type and public payload:
/// the inverse of [`Stored::into_parts`] (the payload at the current schema
/// version, so upcast it first). The organisation id in the payload is only
/// read for `OrganizationRegistered`: the other events take it from their
/// stream.
///
/// No domain rule is checked: events are facts, and [`super::evolve`] is
/// what decides how a stored one applies. Only the shape is: an unknown
/// type or a payload that does not have the shape of its type (a missing
/// field, a time that is not `HH:MM`, a date that is not `YYYY-MM-DD`) is a
/// [`DecodeError`], never a panic.
pub fn decode(event_type: &str, payload: &Value) -> Result<OrganizationEvent, DecodeError> {
    use OrganizationEvent as E;
    let r = Reader { event_type };
    let event = match event_type {
        "OrganizationRegistered" => {
            let p: DetailsPayload = read(event_type, payload)?;
            E::Registered {
                id: p.organization_id,
                name: p.name,
                kind: p.kind,
                ownership: p.ownership,
                contacts: p.contacts,
            }
        }
        "OrganizationDetailsUpdated" => {
            let p: DetailsPayload = read(event_type, payload)?;
            E::DetailsUpdated {
                name: p.name,
                kind: p.kind,
                ownership: p.ownership,
                contacts: p.contacts,
            }
        }
        "OrganizationOnboardingChanged" => {
            let p: OnboardingChangedPayload = read(event_type, payload)?;
            E::OnboardingChanged {
                from: p.from,
                to: p.to,
            }
        }
        "OrganizationServiceAdded" => E::ServiceAdded(r.service(read(event_type, payload)?)?),
        "OrganizationServiceUpdated" => E::ServiceUpdated(r.service(read(event_type, payload)?)?),
        "OrganizationServiceRemoved" => {
            let p: ServiceRemovedPayload = read(event_type, payload)?;
            E::ServiceRemoved(p.service_id)
        }
        "OrganizationAgreementSigned" => {
            let p: AgreementSignedPayload = read(event_type, payload)?;
            E::AgreementSigned {
                agreement: p.to_agreement().map_err(|e| match e {
                    DecodeError::Malformed { reason, .. } => {
                        DecodeError::malformed(event_type, reason)
                    }
                    other => other,
                })?,
                replaces: p.replaces,
            }
        }
        "OrganizationAgreementEnded" => {
            let p: AgreementEndedPayload = read(event_type, payload)?;
            E::AgreementEnded {
                agreement: p.agreement_id,
                on: r.date("on", &p.on)?,
            }
        }
        other => return Err(DecodeError::UnknownType(other.to_owned())),
    };
    Ok(event)
}
