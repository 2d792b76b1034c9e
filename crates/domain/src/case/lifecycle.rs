//! The case's lifecycle: commands, state, and pure `decide`/`evolve`.
//!
//! A case opens when the desk takes a person in charge — always, whatever
//! comes of it — and stays open while anything is to be done. Every contact
//! is a visit. Needs are screened against the taxonomy; a need the desk
//! answers itself is resolved with its outcome; the others are referred
//! (their referrals are streams of their own). A closed case can be
//! reopened. Statuses and their transitions are here, in one place.
//! Consents and legal bases (see [`super::consent`]) are recorded on the
//! case, and [`Case::may_refer_to`] is what a referral's plan asks.

use super::consent::{
    self, Consent, ConsentPurpose, ConsentTerms, LegalBasis, ReasonPersonal, Sharing, Withdrawal,
};
use super::erasure::{ErasedPayload, ErasureReason};
use super::{Channel, PersonTakenInCharge, PersonTakenInChargePayload};
use crate::decode::{DecodeError, payload};
use crate::error::DomainError;
use crate::event::{DomainEvent, EventParts, part};
use crate::ids::{NeedId, OrganizationId, PersonId};
use crate::taxonomy::{NeedCode, Urgency};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Whether the case is open.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// The desk is working on it.
    Open,
    /// Nothing more to do, for now.
    Closed,
}

/// Where one need stands, as far as the case knows (its referrals have
/// streams of their own).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NeedStatus {
    /// Screened, not answered yet.
    Open,
    /// Answered by the desk itself.
    Resolved,
}

/// How the desk answered a need itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeskOutcome {
    /// Information given.
    InformationGiven,
    /// Orientation: where to go and how.
    Orientation,
}

/// One screened need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Need {
    /// Its category.
    pub code: NeedCode,
    /// How urgent.
    pub urgency: Urgency,
    /// Where it stands.
    pub status: NeedStatus,
}

/// A case as its events left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Case {
    /// The person (also the case's stream id).
    pub person: PersonId,
    /// The desk in charge.
    pub desk: OrganizationId,
    /// Open or closed.
    pub status: CaseStatus,
    /// Screened needs.
    pub needs: BTreeMap<NeedId, Need>,
    /// Contacts with the person, the first included.
    pub visits: u32,
    /// Consents recorded, withdrawn ones included, oldest first.
    pub consents: Vec<Consent>,
    /// Legal bases recorded, oldest first.
    pub legal_bases: Vec<LegalBasis>,
    /// The person's data was erased: the case takes no more commands.
    pub erased: bool,
}

impl Case {
    /// What `org` may receive of the card for `purpose` (see
    /// [`consent::sharing`]).
    pub fn sharing(&self, org: OrganizationId, purpose: ConsentPurpose) -> Sharing {
        consent::sharing(&self.consents, &self.legal_bases, org, purpose)
    }

    /// Whether a need may be referred to `org`: a consent in force for
    /// referrals covers it, or a legal basis does.
    pub fn may_refer_to(&self, org: OrganizationId) -> Result<(), DomainError> {
        if self.erased {
            return Err(DomainError::NotAllowed {
                action: "refer a need",
                status: "erased",
            });
        }
        if self.sharing(org, ConsentPurpose::Referral).covered() {
            Ok(())
        } else {
            Err(DomainError::NotCovered {
                organization: org,
                purpose: ConsentPurpose::Referral,
            })
        }
    }
}

/// What the desk asks of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseCommand {
    /// Take the person in charge: opens the case.
    TakeInCharge(PersonTakenInCharge),
    /// Record that the person's data is erased (the store shreds the key).
    Erase(ErasureReason),
    /// Another contact with the person.
    RecordVisit {
        /// How.
        channel: Channel,
        /// A note (personal: sealed).
        note: Option<String>,
    },
    /// A screened need.
    RecordNeed {
        /// Its id.
        need: NeedId,
        /// Its category.
        code: NeedCode,
        /// How urgent.
        urgency: Urgency,
        /// A note (personal: sealed).
        note: Option<String>,
    },
    /// The desk answered a need itself.
    ResolveNeed {
        /// Which.
        need: NeedId,
        /// How.
        outcome: DeskOutcome,
        /// A note (personal: sealed).
        note: Option<String>,
    },
    /// Close the case.
    Close,
    /// Reopen a closed case.
    Reopen,
    /// Record a consent the person gave.
    RecordConsent(ConsentTerms),
    /// The person withdraws a consent.
    WithdrawConsent(Withdrawal),
    /// Record a legal basis for sharing without consent.
    RecordLegalBasis {
        /// The basis.
        basis: LegalBasis,
        /// Why, in words (personal: sealed).
        reason: String,
    },
}

/// What happened to a case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CaseEvent {
    /// Opened.
    TakenInCharge(PersonTakenInCharge),
    /// A contact.
    VisitRecorded {
        /// How.
        channel: Channel,
        /// Note (personal).
        note: Option<String>,
    },
    /// A screened need.
    NeedRecorded {
        /// Its id.
        need: NeedId,
        /// Its category.
        code: NeedCode,
        /// How urgent.
        urgency: Urgency,
        /// Note (personal).
        note: Option<String>,
    },
    /// Answered at the desk.
    NeedResolved {
        /// Which.
        need: NeedId,
        /// How.
        outcome: DeskOutcome,
        /// Note (personal).
        note: Option<String>,
    },
    /// Closed.
    Closed,
    /// Reopened.
    Reopened,
    /// A consent recorded.
    ConsentRecorded(ConsentTerms),
    /// A consent withdrawn.
    ConsentWithdrawn(Withdrawal),
    /// The person's data was erased.
    Erased(ErasureReason),
    /// A legal basis recorded.
    LegalBasisRecorded {
        /// The basis.
        basis: LegalBasis,
        /// Why (personal; `None` when read back to decide).
        reason: Option<String>,
    },
}

fn check_note(note: &Option<String>) -> Result<(), DomainError> {
    match note {
        Some(n) if n.trim().is_empty() || n.len() > 4000 => Err(DomainError::Invalid {
            field: "note",
            message: "must be 1 to 4000 characters",
        }),
        _ => Ok(()),
    }
}

/// Decide what a command does to a case (`None`: no case yet).
pub fn decide(state: Option<&Case>, command: CaseCommand) -> Result<Vec<CaseEvent>, DomainError> {
    let Some(case) = state else {
        return match command {
            CaseCommand::TakeInCharge(opening) => {
                if opening.identity.names.is_empty() {
                    return Err(DomainError::Invalid {
                        field: "names",
                        message: "at least one name is required",
                    });
                }
                Ok(vec![CaseEvent::TakenInCharge(opening)])
            }
            _ => Err(DomainError::NotFound("case")),
        };
    };
    if case.erased {
        return Err(DomainError::NotAllowed {
            action: "change the case",
            status: "erased",
        });
    }
    let closed = case.status == CaseStatus::Closed;
    let refuse = |action: &'static str| DomainError::NotAllowed {
        action,
        status: if closed { "closed" } else { "open" },
    };
    Ok(vec![match command {
        CaseCommand::TakeInCharge(_) => return Err(DomainError::AlreadyExists("case")),
        // Erasure answers a right, open case or closed.
        CaseCommand::Erase(reason) => CaseEvent::Erased(reason),
        // The desk takes in charge whoever comes: a visit reopens nothing
        // by itself, but it is always recorded, open or closed.
        CaseCommand::RecordVisit { channel, note } => {
            check_note(&note)?;
            CaseEvent::VisitRecorded { channel, note }
        }
        CaseCommand::RecordNeed { .. } if closed => return Err(refuse("record a need")),
        CaseCommand::RecordNeed {
            need,
            code,
            urgency,
            note,
        } => {
            if case.needs.contains_key(&need) {
                return Err(DomainError::AlreadyExists("need"));
            }
            if code.is_retired() {
                return Err(DomainError::Invalid {
                    field: "code",
                    message: "this need category is retired",
                });
            }
            check_note(&note)?;
            CaseEvent::NeedRecorded {
                need,
                code,
                urgency,
                note,
            }
        }
        CaseCommand::ResolveNeed { .. } if closed => return Err(refuse("resolve a need")),
        CaseCommand::ResolveNeed {
            need,
            outcome,
            note,
        } => match case.needs.get(&need) {
            None => return Err(DomainError::NotFound("need")),
            Some(n) if n.status != NeedStatus::Open => {
                return Err(DomainError::NotAllowed {
                    action: "resolve the need",
                    status: "already resolved",
                });
            }
            Some(_) => {
                check_note(&note)?;
                CaseEvent::NeedResolved {
                    need,
                    outcome,
                    note,
                }
            }
        },
        CaseCommand::Close if closed => return Err(refuse("close")),
        CaseCommand::Close => CaseEvent::Closed,
        CaseCommand::Reopen if !closed => return Err(refuse("reopen")),
        CaseCommand::Reopen => CaseEvent::Reopened,
        // Consent, its withdrawal and legal bases are recorded whether the
        // case is open or closed: a person may withdraw at any time (and it
        // must be as easy as giving it, art. 7(3)), and a desk that gives
        // the notice at a later contact records what was said then, before
        // reopening anything.
        CaseCommand::RecordConsent(terms) => {
            if case
                .consents
                .iter()
                .any(|c| c.terms.consent_id == terms.consent_id)
            {
                return Err(DomainError::AlreadyExists("consent"));
            }
            consent::check_terms(&terms)?;
            CaseEvent::ConsentRecorded(terms)
        }
        CaseCommand::WithdrawConsent(w) => {
            let Some(c) = case
                .consents
                .iter()
                .find(|c| c.terms.consent_id == w.consent_id)
            else {
                return Err(DomainError::NotFound("consent"));
            };
            if !c.in_force() {
                return Err(DomainError::NotAllowed {
                    action: "withdraw the consent",
                    status: "already withdrawn",
                });
            }
            if w.withdrawn_on < c.terms.given_on {
                return Err(DomainError::Invalid {
                    field: "withdrawn_on",
                    message: "cannot be before the consent was given",
                });
            }
            CaseEvent::ConsentWithdrawn(w)
        }
        CaseCommand::RecordLegalBasis { basis, reason } => {
            if case
                .legal_bases
                .iter()
                .any(|b| b.legal_basis_id == basis.legal_basis_id)
            {
                return Err(DomainError::AlreadyExists("legal basis"));
            }
            consent::check_reason(&reason)?;
            CaseEvent::LegalBasisRecorded {
                basis,
                reason: Some(reason),
            }
        }
    }])
}

/// Apply an event.
pub fn evolve(state: Option<Case>, event: &CaseEvent) -> Option<Case> {
    match (state, event) {
        (None, CaseEvent::TakenInCharge(e)) => Some(Case {
            person: e.person_id,
            desk: e.desk,
            status: CaseStatus::Open,
            needs: BTreeMap::new(),
            visits: 1,
            consents: Vec::new(),
            legal_bases: Vec::new(),
            erased: false,
        }),
        (None, _) => None,
        (Some(mut c), e) => {
            match e {
                CaseEvent::TakenInCharge(_) => {}
                CaseEvent::VisitRecorded { .. } => c.visits += 1,
                CaseEvent::NeedRecorded {
                    need,
                    code,
                    urgency,
                    ..
                } => {
                    c.needs.entry(*need).or_insert(Need {
                        code: code.clone(),
                        urgency: *urgency,
                        status: NeedStatus::Open,
                    });
                }
                CaseEvent::NeedResolved { need, .. } => {
                    if let Some(n) = c.needs.get_mut(need) {
                        n.status = NeedStatus::Resolved;
                    }
                }
                CaseEvent::Closed => c.status = CaseStatus::Closed,
                CaseEvent::Erased(_) => c.erased = true,
                CaseEvent::Reopened => c.status = CaseStatus::Open,
                CaseEvent::ConsentRecorded(terms) => c.consents.push(Consent {
                    terms: terms.clone(),
                    withdrawn_on: None,
                }),
                CaseEvent::ConsentWithdrawn(w) => {
                    if let Some(x) = c
                        .consents
                        .iter_mut()
                        .find(|x| x.terms.consent_id == w.consent_id)
                    {
                        x.withdrawn_on = Some(w.withdrawn_on);
                    }
                }
                CaseEvent::LegalBasisRecorded { basis, .. } => c.legal_bases.push(basis.clone()),
            }
            Some(c)
        }
    }
}

impl CaseEvent {
    /// Its type on the wire.
    pub fn event_type(&self) -> &'static str {
        match self {
            CaseEvent::TakenInCharge(_) => PersonTakenInCharge::TYPE,
            CaseEvent::VisitRecorded { .. } => "VisitRecorded",
            CaseEvent::NeedRecorded { .. } => "NeedRecorded",
            CaseEvent::NeedResolved { .. } => "NeedResolved",
            CaseEvent::Closed => "CaseClosed",
            CaseEvent::Erased(_) => "PersonErased",
            CaseEvent::Reopened => "CaseReopened",
            CaseEvent::ConsentRecorded(_) => "ConsentRecorded",
            CaseEvent::ConsentWithdrawn(_) => "ConsentWithdrawn",
            CaseEvent::LegalBasisRecorded { .. } => "LegalBasisRecorded",
        }
    }
}

/// Public part of `VisitRecorded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VisitPayload {
    /// How the person came.
    pub channel: Channel,
}

/// Public part of `NeedRecorded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NeedPayload {
    /// The need.
    pub need_id: NeedId,
    /// Its category in the taxonomy.
    pub code: NeedCode,
    /// How urgent.
    pub urgency: Urgency,
}

/// Public part of `NeedResolved`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ResolvedPayload {
    /// The need.
    pub need_id: NeedId,
    /// How the desk answered it.
    pub outcome: DeskOutcome,
}

/// Public part of the events that carry nothing but their type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NoPayload {}

/// Personal part of the events with a note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotePersonal {
    /// The note (free text about the person: sealed).
    pub note: String,
}

/// A case event with its case, ready for storage.
pub struct Stored<'a> {
    /// The event.
    pub event: CaseEvent,
    /// The case (whose personal data, which desk).
    pub case: &'a Case,
}

impl DomainEvent for Stored<'_> {
    fn into_parts(self) -> EventParts {
        let person = self.case.person;
        let note = |n: Option<String>| n.map(|note| (person, part(NotePersonal { note })));
        let event_type = self.event.event_type();
        let (payload, personal) = match self.event {
            CaseEvent::TakenInCharge(e) => return e.into_parts(),
            CaseEvent::VisitRecorded { channel, note: n } => {
                (part(VisitPayload { channel }), note(n))
            }
            CaseEvent::NeedRecorded {
                need,
                code,
                urgency,
                note: n,
            } => (
                part(NeedPayload {
                    need_id: need,
                    code,
                    urgency,
                }),
                note(n),
            ),
            CaseEvent::NeedResolved {
                need,
                outcome,
                note: n,
            } => (
                part(ResolvedPayload {
                    need_id: need,
                    outcome,
                }),
                note(n),
            ),
            CaseEvent::Closed | CaseEvent::Reopened => (part(NoPayload {}), None),
            CaseEvent::Erased(reason) => (part(ErasedPayload { reason }), None),
            CaseEvent::ConsentRecorded(terms) => (part(terms), None),
            CaseEvent::ConsentWithdrawn(w) => (part(w), None),
            CaseEvent::LegalBasisRecorded { basis, reason } => (
                part(basis),
                reason.map(|reason| (person, part(ReasonPersonal { reason }))),
            ),
        };
        EventParts {
            event_type,
            schema_version: 1,
            payload,
            personal,
            concerns: Some(self.case.desk),
        }
    }
}

/// Read a stored case event back from its type and public payload (the
/// inverse of [`Stored`]). Personal parts — identity, notes — are not
/// needed to decide and come back empty.
pub fn decode(event_type: &str, value: &serde_json::Value) -> Result<CaseEvent, DecodeError> {
    Ok(match event_type {
        PersonTakenInCharge::TYPE => {
            let p: PersonTakenInChargePayload = payload(event_type, value)?;
            CaseEvent::TakenInCharge(PersonTakenInCharge {
                person_id: p.person_id,
                desk: p.desk,
                channel: p.channel,
                operator: p.operator,
                identity: Default::default(),
            })
        }
        "VisitRecorded" => {
            let p: VisitPayload = payload(event_type, value)?;
            CaseEvent::VisitRecorded {
                channel: p.channel,
                note: None,
            }
        }
        "NeedRecorded" => {
            let p: NeedPayload = payload(event_type, value)?;
            CaseEvent::NeedRecorded {
                need: p.need_id,
                code: p.code,
                urgency: p.urgency,
                note: None,
            }
        }
        "NeedResolved" => {
            let p: ResolvedPayload = payload(event_type, value)?;
            CaseEvent::NeedResolved {
                need: p.need_id,
                outcome: p.outcome,
                note: None,
            }
        }
        "CaseClosed" => CaseEvent::Closed,
        "PersonErased" => {
            let p: ErasedPayload = payload(event_type, value)?;
            CaseEvent::Erased(p.reason)
        }
        "CaseReopened" => CaseEvent::Reopened,
        "ConsentRecorded" => CaseEvent::ConsentRecorded(payload(event_type, value)?),
        "ConsentWithdrawn" => CaseEvent::ConsentWithdrawn(payload(event_type, value)?),
        "LegalBasisRecorded" => CaseEvent::LegalBasisRecorded {
            basis: payload(event_type, value)?,
            reason: None,
        },
        other => return Err(DecodeError::UnknownType(other.to_owned())),
    })
}

#[cfg(test)]
mod tests;
