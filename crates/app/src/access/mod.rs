//! Who may do what: the one place that decides every (account, action,
//! resource). Handlers name the [`Act`] they are about to do and ask
//! [`allow`]; they never decide access themselves. The same decisions
//! filter the card ([`card::filter_card`]) and say which NATS subjects a
//! partner's system may subscribe to ([`nats_subjects`]).
//!
//! The rules, in words (docs/PRIVACY.md has the table):
//! - the desk (operators and supervisors) sees and works its cases; only a
//!   supervisor records a legal basis in place of consent, hands a person
//!   their data or erases it;
//! - partner staff see only referrals addressed to their organisation, and
//!   of those people only what their agreement and the person's consent
//!   allow;
//! - professionals see only the activations offered to them or theirs,
//!   with nothing of the person but whether there is one; they answer
//!   offers, keep their own availability, and record what they delivered;
//! - an activation is followed by the desk and by the organisation that
//!   asked for it; to anyone else it does not exist;
//! - coordinators see the directory and aggregates, never a person;
//! - administrators manage accounts and tokens and read the audit, never a
//!   person's data.
//!
//! Never: a decision here that depends on anything but the caller and the
//! resource's owner, or a handler that skips asking.

pub mod card;

pub use card::{PartnerCard, agreement_of, filter_card, filter_card_with};

use crate::{AppError, Caller};
use sportello_domain::OrganizationId;
use uuid::Uuid;

/// The roles' names as stored on accounts.
pub mod role {
    /// Desk staff: takes people in charge, screens, refers.
    pub const DESK_OPERATOR: &str = "desk_operator";
    /// Desk supervisor: a desk operator who may also record a legal basis,
    /// export and erase a person's data.
    pub const DESK_SUPERVISOR: &str = "desk_supervisor";
    /// A provider's staff: works its organisation's inbox.
    pub const PARTNER: &str = "partner";
    /// A professional of the registry (mediator, interpreter, lawyer).
    pub const PROFESSIONAL: &str = "professional";
    /// The coordination team: watches and runs the network.
    pub const COORDINATOR: &str = "coordinator";
    /// Administrator of the network: accounts, tokens, the audit.
    pub const ADMIN: &str = "admin";
}

/// The role of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// See [`role::DESK_OPERATOR`].
    DeskOperator,
    /// See [`role::DESK_SUPERVISOR`].
    DeskSupervisor,
    /// See [`role::PARTNER`].
    Partner,
    /// See [`role::PROFESSIONAL`].
    Professional,
    /// See [`role::COORDINATOR`].
    Coordinator,
    /// See [`role::ADMIN`].
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 6] = [
        Role::DeskOperator,
        Role::DeskSupervisor,
        Role::Partner,
        Role::Professional,
        Role::Coordinator,
        Role::Admin,
    ];

    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::DeskOperator => role::DESK_OPERATOR,
            Role::DeskSupervisor => role::DESK_SUPERVISOR,
            Role::Partner => role::PARTNER,
            Role::Professional => role::PROFESSIONAL,
            Role::Coordinator => role::COORDINATOR,
            Role::Admin => role::ADMIN,
        }
    }

    /// From its stored name.
    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }

    /// The desk's roles.
    pub fn is_desk(self) -> bool {
        matches!(self, Role::DeskOperator | Role::DeskSupervisor)
    }
}

/// Something a caller is about to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Act {
    /// Take in charge, search people, record visits, needs and consent,
    /// answer at the desk, close, reopen, match, send, cancel and redirect
    /// referrals.
    DeskWork,
    /// Record a legal basis that stands in for consent.
    RecordLegalBasis,
    /// Read a person's card (a partner: only people referred to it).
    ReadCard,
    /// Read a case's events in full.
    ReadHistory,
    /// Hand a person everything held about them, or erase it.
    SubjectRights,
    /// Act on a referral addressed to this organisation.
    WorkReferral(OrganizationId),
    /// Read this organisation's inbox.
    ReadInbox(OrganizationId),
    /// Read the directory of providers, services and agreements.
    ReadDirectory,
    /// Register and change organisations, services and agreements.
    ManageNetwork,
    /// Read the network's reports (aggregates).
    ReadReports,
    /// Read the feed of what moved (stream ids, event types).
    ReadActivity,
    /// Read the audit of reads and sign-ins.
    ReadAudit,
    /// Create accounts, issue and revoke API tokens.
    ManageAccounts,
    /// Admit professionals to the registry, change their profile and
    /// status, read the registry with names and contacts.
    ManageRegistry,
    /// Keep this professional's availability and absences.
    KeepAvailability(Uuid),
    /// Read the activations offered to this professional or theirs.
    ReadQueue(Uuid),
    /// Ask for a professional (the desk; a partner for its own
    /// appointments or referrals).
    RequestActivation,
    /// Read the board of activations (a partner: those it asked for).
    ReadBoard,
    /// Accept or decline an offer made to this professional.
    AnswerOffer(Uuid),
    /// Schedule or cancel an activation asked for by this organisation.
    ArrangeActivation(OrganizationId),
    /// Record that an activation took place (its confirmed professional,
    /// or the desk).
    RecordDelivery(Option<Uuid>),
}

/// Whether `caller` may do `act`.
pub fn permits(caller: &Caller, act: Act) -> bool {
    use Role::*;
    let r = caller.role;
    match act {
        Act::DeskWork | Act::ReadHistory | Act::ReadActivity => r.is_desk(),
        Act::RecordLegalBasis | Act::SubjectRights => r == DeskSupervisor,
        Act::ReadCard => r.is_desk() || r == Partner,
        Act::WorkReferral(org) => r == Partner && caller.organization_id == org,
        Act::ReadInbox(org) => r.is_desk() || (r == Partner && caller.organization_id == org),
        Act::ReadDirectory => true,
        Act::ManageNetwork => r.is_desk() || r == Coordinator || r == Admin,
        Act::ReadReports => r.is_desk() || r == Coordinator || r == Admin,
        Act::ReadAudit | Act::ManageAccounts => r == Admin,
        Act::ManageRegistry => r.is_desk(),
        Act::KeepAvailability(p) | Act::ReadQueue(p) => {
            r.is_desk() || (r == Professional && caller.professional_id == Some(p))
        }
        Act::RequestActivation | Act::ReadBoard => r.is_desk() || r == Partner,
        Act::AnswerOffer(p) => r == Professional && caller.professional_id == Some(p),
        Act::ArrangeActivation(org) => {
            r.is_desk() || (r == Partner && caller.organization_id == org)
        }
        Act::RecordDelivery(p) => {
            r.is_desk() || (r == Professional && p.is_some() && caller.professional_id == p)
        }
    }
}

/// Whether `caller` may do `act`; [`AppError::Refused`] if not.
pub fn allow(caller: &Caller, act: Act) -> Result<(), AppError> {
    if permits(caller, act) {
        Ok(())
    } else {
        Err(AppError::Refused)
    }
}

/// A resource of `owner` (a referral) does not exist for a partner of
/// another organisation ([`AppError::NotFound`]), so its id is never
/// confirmed to them.
pub fn hide_from_other_partners(caller: &Caller, owner: OrganizationId) -> Result<(), AppError> {
    match partner_scope(caller) {
        Some(org) if org != owner => Err(AppError::NotFound),
        _ => Ok(()),
    }
}

/// The organisation a partner account is limited to (`None`: the desk
/// sees the whole card).
pub fn partner_scope(caller: &Caller) -> Option<OrganizationId> {
    (caller.role == Role::Partner).then_some(caller.organization_id)
}

/// The NATS subjects a partner organisation's system may subscribe to:
/// the events of referrals addressed to it and of activations it asked
/// for, nothing else (subjects carry ids and event types only, never
/// personal data; payloads carry personal parts sealed). `prefix` is the
/// installation's subject prefix.
pub fn nats_subjects(
    prefix: &str,
    network: sportello_domain::NetworkId,
    org: OrganizationId,
) -> Vec<String> {
    vec![
        format!("{prefix}.{network}.referral.{org}.>"),
        format!("{prefix}.{network}.activation.{org}.>"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use sportello_domain::{AccountId, NetworkId};

    fn caller(role: Role) -> Caller {
        Caller {
            account_id: AccountId::new(),
            network_id: NetworkId::new(),
            organization_id: OrganizationId::new(),
            role,
            professional_id: None,
        }
    }

    #[test]
    fn roles_round_trip_through_their_stored_names() {
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn nobody_but_the_desk_reads_a_history_and_only_a_supervisor_erases() {
        for r in Role::ALL {
            let c = caller(r);
            assert_eq!(permits(&c, Act::ReadHistory), r.is_desk(), "{r:?}");
            assert_eq!(
                permits(&c, Act::SubjectRights),
                r == Role::DeskSupervisor,
                "{r:?}"
            );
        }
    }

    #[test]
    fn a_partner_works_only_its_own_organisations_referrals() {
        let c = caller(Role::Partner);
        assert!(permits(&c, Act::WorkReferral(c.organization_id)));
        assert!(permits(&c, Act::ReadInbox(c.organization_id)));
        let other = OrganizationId::new();
        assert!(!permits(&c, Act::WorkReferral(other)));
        assert!(!permits(&c, Act::ReadInbox(other)));
        // Nobody else works a partner's referrals, the desk included.
        for r in Role::ALL.into_iter().filter(|r| *r != Role::Partner) {
            let mut c = caller(r);
            c.organization_id = other;
            assert!(!permits(&c, Act::WorkReferral(other)), "{r:?}");
        }
    }

    #[test]
    fn coordinators_and_administrators_never_read_a_person() {
        for r in [Role::Coordinator, Role::Admin, Role::Professional] {
            let c = caller(r);
            for act in [
                Act::ReadCard,
                Act::ReadHistory,
                Act::SubjectRights,
                Act::DeskWork,
                Act::ReadActivity,
                Act::ReadInbox(c.organization_id),
            ] {
                assert!(!permits(&c, act), "{r:?} {act:?}");
            }
        }
    }
}
