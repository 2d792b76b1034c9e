//! The life of an organisation: its onboarding status and the one place
//! its transitions live, the commands and events, and the pure `decide` and
//! `evolve`. No I/O and no clock here: time comes in as dates.

use super::details::text;
use super::{Agreement, Contacts, Organization, OrganizationKind, Ownership, Service};
use crate::error::DomainError;
use crate::ids::{AgreementId, OrganizationId, ServiceId};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use time::Date;

/// Where an organisation stands in its onboarding into the network.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnboardingStatus {
    /// Listed and invited to join.
    Invited,
    /// Joining: agreement and services being set up.
    Onboarding,
    /// A working member of the network: referrals may be sent to it.
    Active,
    /// Temporarily out: no referrals are sent to it.
    Suspended,
}

impl OnboardingStatus {
    /// Every status.
    pub const ALL: [OnboardingStatus; 4] = [
        OnboardingStatus::Invited,
        OnboardingStatus::Onboarding,
        OnboardingStatus::Active,
        OnboardingStatus::Suspended,
    ];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            OnboardingStatus::Invited => "invited",
            OnboardingStatus::Onboarding => "onboarding",
            OnboardingStatus::Active => "active",
            OnboardingStatus::Suspended => "suspended",
        }
    }
}

/// The onboarding lifecycle, in one place: whether an organisation may go
/// from `from` to `to` (staying where it is is not a transition).
pub fn transition(from: OnboardingStatus, to: OnboardingStatus) -> bool {
    use OnboardingStatus as S;
    matches!(
        (from, to),
        (S::Invited, S::Onboarding)
            | (S::Onboarding, S::Active)
            | (S::Active, S::Suspended)
            | (S::Suspended, S::Active)
    )
}

/// What the desk or the coordination team asks of an organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganizationCommand {
    /// List a new organisation (it starts invited).
    Register {
        /// Its id.
        id: OrganizationId,
        /// Its name.
        name: String,
        /// What kind it is.
        kind: OrganizationKind,
        /// Public or private.
        ownership: Ownership,
        /// How to reach its office.
        contacts: Contacts,
    },
    /// Change its name, kind, ownership or contacts.
    UpdateDetails {
        /// Its name.
        name: String,
        /// What kind it is.
        kind: OrganizationKind,
        /// Public or private.
        ownership: Ownership,
        /// How to reach its office.
        contacts: Contacts,
    },
    /// Move it along its onboarding.
    ChangeOnboarding(OnboardingStatus),
    /// Add a service.
    AddService(Service),
    /// Replace a service (same id).
    UpdateService(Service),
    /// Remove a service.
    RemoveService(ServiceId),
    /// Sign an agreement; it replaces the current one, if any.
    SignAgreement(Agreement),
    /// End the current agreement.
    EndAgreement {
        /// The day it ends.
        on: Date,
    },
}

/// What happened to an organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganizationEvent {
    /// Listed.
    Registered {
        /// Its id.
        id: OrganizationId,
        /// Its name.
        name: String,
        /// What kind it is.
        kind: OrganizationKind,
        /// Public or private.
        ownership: Ownership,
        /// How to reach its office.
        contacts: Contacts,
    },
    /// Details changed.
    DetailsUpdated {
        /// Its name.
        name: String,
        /// What kind it is.
        kind: OrganizationKind,
        /// Public or private.
        ownership: Ownership,
        /// How to reach its office.
        contacts: Contacts,
    },
    /// Onboarding moved.
    OnboardingChanged {
        /// From.
        from: OnboardingStatus,
        /// To.
        to: OnboardingStatus,
    },
    /// A service added.
    ServiceAdded(Service),
    /// A service replaced.
    ServiceUpdated(Service),
    /// A service removed.
    ServiceRemoved(ServiceId),
    /// An agreement signed.
    AgreementSigned {
        /// The agreement.
        agreement: Agreement,
        /// The agreement it replaces.
        replaces: Option<AgreementId>,
    },
    /// The agreement ended.
    AgreementEnded {
        /// The agreement.
        agreement: AgreementId,
        /// The day it ended.
        on: Date,
    },
}

impl OrganizationEvent {
    /// Its type on the wire.
    pub fn event_type(&self) -> &'static str {
        match self {
            OrganizationEvent::Registered { .. } => "OrganizationRegistered",
            OrganizationEvent::DetailsUpdated { .. } => "OrganizationDetailsUpdated",
            OrganizationEvent::OnboardingChanged { .. } => "OrganizationOnboardingChanged",
            OrganizationEvent::ServiceAdded(_) => "OrganizationServiceAdded",
            OrganizationEvent::ServiceUpdated(_) => "OrganizationServiceUpdated",
            OrganizationEvent::ServiceRemoved(_) => "OrganizationServiceRemoved",
            OrganizationEvent::AgreementSigned { .. } => "OrganizationAgreementSigned",
            OrganizationEvent::AgreementEnded { .. } => "OrganizationAgreementEnded",
        }
    }
}

fn details(name: &str, contacts: &Contacts) -> Result<(), DomainError> {
    text("name", name, 1, 200)?;
    contacts.validate()
}

/// Decide what a command does to an organisation (`None`: not registered).
pub fn decide(
    state: Option<&Organization>,
    command: OrganizationCommand,
) -> Result<Vec<OrganizationEvent>, DomainError> {
    use OrganizationCommand as C;
    use OrganizationEvent as E;
    let Some(org) = state else {
        return match command {
            C::Register {
                id,
                name,
                kind,
                ownership,
                contacts,
            } => {
                details(&name, &contacts)?;
                Ok(vec![E::Registered {
                    id,
                    name,
                    kind,
                    ownership,
                    contacts,
                }])
            }
            _ => Err(DomainError::NotFound("organization")),
        };
    };
    let event = match command {
        C::Register { .. } => return Err(DomainError::AlreadyExists("organization")),
        C::UpdateDetails {
            name,
            kind,
            ownership,
            contacts,
        } => {
            details(&name, &contacts)?;
            E::DetailsUpdated {
                name,
                kind,
                ownership,
                contacts,
            }
        }
        C::ChangeOnboarding(to) => {
            if !transition(org.status, to) {
                return Err(DomainError::NotAllowed {
                    action: "make that onboarding change",
                    status: org.status.as_str(),
                });
            }
            E::OnboardingChanged {
                from: org.status,
                to,
            }
        }
        C::AddService(service) => {
            if org.services.contains_key(&service.id) {
                return Err(DomainError::AlreadyExists("service"));
            }
            let service = service.normalized();
            service.validate()?;
            E::ServiceAdded(service)
        }
        C::UpdateService(service) => {
            if !org.services.contains_key(&service.id) {
                return Err(DomainError::NotFound("service"));
            }
            let service = service.normalized();
            service.validate()?;
            E::ServiceUpdated(service)
        }
        C::RemoveService(id) => {
            if !org.services.contains_key(&id) {
                return Err(DomainError::NotFound("service"));
            }
            E::ServiceRemoved(id)
        }
        C::SignAgreement(agreement) => {
            let replaces = org.agreement.as_ref().map(|a| a.id);
            if replaces == Some(agreement.id) {
                return Err(DomainError::AlreadyExists("agreement"));
            }
            agreement.validate()?;
            E::AgreementSigned {
                agreement,
                replaces,
            }
        }
        C::EndAgreement { on } => {
            let Some(current) = &org.agreement else {
                return Err(DomainError::NotFound("agreement"));
            };
            E::AgreementEnded {
                agreement: current.id,
                on,
            }
        }
    };
    Ok(vec![event])
}

/// Apply an event. Events are facts: one the rules would not have produced
/// leaves the state as it was (it cannot come from `decide`).
pub fn evolve(state: Option<Organization>, event: &OrganizationEvent) -> Option<Organization> {
    use OrganizationEvent as E;
    match (state, event) {
        (
            None,
            E::Registered {
                id,
                name,
                kind,
                ownership,
                contacts,
            },
        ) => Some(Organization {
            id: *id,
            name: name.clone(),
            kind: *kind,
            ownership: *ownership,
            contacts: contacts.clone(),
            status: OnboardingStatus::Invited,
            services: BTreeMap::new(),
            agreement: None,
        }),
        (None, _) => None,
        (Some(mut org), e) => {
            match e {
                E::Registered { .. } => {}
                E::DetailsUpdated {
                    name,
                    kind,
                    ownership,
                    contacts,
                } => {
                    org.name = name.clone();
                    org.kind = *kind;
                    org.ownership = *ownership;
                    org.contacts = contacts.clone();
                }
                E::OnboardingChanged { from, to } => {
                    if *from == org.status && transition(org.status, *to) {
                        org.status = *to;
                    }
                }
                E::ServiceAdded(service) => {
                    org.services
                        .entry(service.id)
                        .or_insert_with(|| service.clone());
                }
                E::ServiceUpdated(service) => {
                    if let Some(s) = org.services.get_mut(&service.id) {
                        *s = service.clone();
                    }
                }
                E::ServiceRemoved(id) => {
                    org.services.remove(id);
                }
                E::AgreementSigned { agreement, .. } => {
                    org.agreement = Some(agreement.clone());
                }
                E::AgreementEnded { agreement, .. } => {
                    if org.agreement.as_ref().map(|a| a.id) == Some(*agreement) {
                        org.agreement = None;
                    }
                }
            }
            Some(org)
        }
    }
}
