//! Organisation events as stored: the payload structs (their JSON Schemas
//! are generated from them) and the split of an event into its parts.
//! Organisation data is not personal: there is never a personal part.

use super::service::WEEKDAYS;
use super::{
    CardField, Contacts, OnboardingStatus, OrganizationEvent, OrganizationKind, Ownership, Service,
    WeeklyHours,
};
use crate::event::{DomainEvent, EventParts, part};
use crate::ids::{AgreementId, OrganizationId, ServiceId};
use crate::taxonomy::NeedCode;
use serde::{Deserialize, Serialize};
use time::{Date, Time, Weekday};

fn iso_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

fn hh_mm(t: Time) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
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

/// Weekly opening hours on the wire: each weekday's periods, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WeeklyHoursPayload {
    /// Monday.
    pub monday: Vec<TimeRangePayload>,
    /// Tuesday.
    pub tuesday: Vec<TimeRangePayload>,
    /// Wednesday.
    pub wednesday: Vec<TimeRangePayload>,
    /// Thursday.
    pub thursday: Vec<TimeRangePayload>,
    /// Friday.
    pub friday: Vec<TimeRangePayload>,
    /// Saturday.
    pub saturday: Vec<TimeRangePayload>,
    /// Sunday.
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
