//! A referral: one need of a person's case sent to one provider's service,
//! followed until it is closed. Its own stream (kind `referral`), so the
//! partner acts on it without conflicting with the desk's case.
//!
//! The lifecycle lives in one place, [`transition`]:
//!
//! ```text
//! sent ──▶ acknowledged ──▶ accepted ──▶ in progress ──▶ completed
//!   │            │             │   └──────────────────▶ completed
//!   │            └─▶ declined ◀┘(no)        └──▶ failed
//!   └──▶ declined / accepted      accepted ──▶ failed
//! declined, failed ──▶ redirected (a new referral, linked)
//! sent, acknowledged, accepted, in progress ──▶ cancelled (by the desk)
//! ```
//!
//! `decide` is pure: the same state and command always give the same
//! events or the same refusal; a refusal gives no event.

use crate::decode::{DecodeError, payload};
use crate::error::DomainError;
use crate::event::{DomainEvent, EventParts, part};
use crate::ids::{NeedId, OrganizationId, PersonId, ReferralId, ServiceId};
use crate::taxonomy::NeedCode;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The stream kind of a referral.
pub const STREAM_KIND: &str = "referral";

/// Where a referral stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReferralStatus {
    /// Sent by the desk, not yet seen by the provider.
    Sent,
    /// The provider has seen it.
    Acknowledged,
    /// The provider will answer the need.
    Accepted,
    /// The provider will not (with a reason).
    Declined,
    /// The provider is working on it.
    InProgress,
    /// Done, with an outcome.
    Completed,
    /// Could not be done (with a reason).
    Failed,
    /// Withdrawn by the desk.
    Cancelled,
    /// Replaced by a new referral to another service.
    Redirected,
}

impl ReferralStatus {
    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralStatus::Sent => "sent",
            ReferralStatus::Acknowledged => "acknowledged",
            ReferralStatus::Accepted => "accepted",
            ReferralStatus::Declined => "declined",
            ReferralStatus::InProgress => "in_progress",
            ReferralStatus::Completed => "completed",
            ReferralStatus::Failed => "failed",
            ReferralStatus::Cancelled => "cancelled",
            ReferralStatus::Redirected => "redirected",
        }
    }

    /// No action leads anywhere from here.
    pub fn is_closed(self) -> bool {
        matches!(
            self,
            ReferralStatus::Completed | ReferralStatus::Cancelled | ReferralStatus::Redirected
        )
    }
}

/// What can be done to a referral (the `{action}` of the API).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralAction {
    /// The provider has seen it.
    Acknowledge,
    /// The provider takes it.
    Accept,
    /// The provider refuses it.
    Decline,
    /// The provider starts working on it.
    Start,
    /// The provider has answered the need.
    Complete,
    /// The provider could not answer it.
    Fail,
    /// The desk withdraws it.
    Cancel,
    /// The desk sends the need on to another service.
    Redirect,
}

impl ReferralAction {
    /// Every action.
    pub const ALL: [ReferralAction; 8] = [
        ReferralAction::Acknowledge,
        ReferralAction::Accept,
        ReferralAction::Decline,
        ReferralAction::Start,
        ReferralAction::Complete,
        ReferralAction::Fail,
        ReferralAction::Cancel,
        ReferralAction::Redirect,
    ];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralAction::Acknowledge => "acknowledge",
            ReferralAction::Accept => "accept",
            ReferralAction::Decline => "decline",
            ReferralAction::Start => "start",
            ReferralAction::Complete => "complete",
            ReferralAction::Fail => "fail",
            ReferralAction::Cancel => "cancel",
            ReferralAction::Redirect => "redirect",
        }
    }
}

/// The lifecycle, in one place: the status an action leads to, or `None`
/// when the action is not allowed from `from`.
pub fn transition(from: ReferralStatus, action: ReferralAction) -> Option<ReferralStatus> {
    use ReferralAction as A;
    use ReferralStatus as S;
    Some(match (from, action) {
        (S::Sent, A::Acknowledge) => S::Acknowledged,
        (S::Sent | S::Acknowledged, A::Accept) => S::Accepted,
        (S::Sent | S::Acknowledged, A::Decline) => S::Declined,
        (S::Accepted, A::Start) => S::InProgress,
        (S::Accepted | S::InProgress, A::Complete) => S::Completed,
        (S::Accepted | S::InProgress, A::Fail) => S::Failed,
        (S::Sent | S::Acknowledged | S::Accepted | S::InProgress, A::Cancel) => S::Cancelled,
        (S::Declined | S::Failed, A::Redirect) => S::Redirected,
        _ => return None,
    })
}

/// Why a provider declines.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    /// No capacity now.
    NoCapacity,
    /// The person is not eligible for the service.
    NotEligible,
    /// Documents are missing.
    MissingDocuments,
    /// The person lives outside the service's area.
    OutsideArea,
    /// Already referred or already served.
    Duplicate,
    /// Another reason (see the text).
    Other,
}

/// Why a referral could not be done.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailReason {
    /// The person could not be reached.
    PersonUnreachable,
    /// The person did not come or withdrew.
    PersonWithdrew,
    /// The service could not be given after all.
    ServiceUnavailable,
    /// Another reason (see the text).
    Other,
}

/// How a completed referral ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The need was met.
    NeedMet,
    /// The need was partly met.
    PartlyMet,
    /// The need was not met by this service.
    NotMet,
}

/// A referral as its events left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Referral {
    /// Its id.
    pub id: ReferralId,
    /// Whose case.
    pub person: PersonId,
    /// Which need.
    pub need: NeedId,
    /// The need's category.
    pub need_code: NeedCode,
    /// To which provider.
    pub organization: OrganizationId,
    /// To which of its services.
    pub service: ServiceId,
    /// The referral this one replaces, if it was a redirection.
    pub redirected_from: Option<ReferralId>,
    /// Where it stands.
    pub status: ReferralStatus,
    /// The new referral that replaced this one, once redirected.
    pub redirected_to: Option<ReferralId>,
    /// By when the provider must acknowledge it.
    pub acknowledge_by: Option<OffsetDateTime>,
    /// By when the provider must first contact the person.
    pub first_contact_by: Option<OffsetDateTime>,
}

/// A referral as the desk sends it: the `Send` command and the `Sent`
/// event carry the same facts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewReferral {
    /// Its id.
    pub id: ReferralId,
    /// Whose case.
    pub person: PersonId,
    /// Which need.
    pub need: NeedId,
    /// The need's category.
    pub need_code: NeedCode,
    /// To which provider.
    pub organization: OrganizationId,
    /// To which of its services.
    pub service: ServiceId,
    /// The declined or failed referral this one replaces.
    pub redirected_from: Option<ReferralId>,
    /// By when the provider must acknowledge it (from its agreement).
    pub acknowledge_by: Option<OffsetDateTime>,
    /// By when the provider must first contact the person.
    pub first_contact_by: Option<OffsetDateTime>,
    /// A note for the provider (personal: sealed).
    pub note: Option<String>,
}

/// What a desk or a provider asks of a referral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReferralCommand {
    /// Open the referral.
    Send(NewReferral),
    /// The provider has seen it.
    Acknowledge,
    /// The provider takes it.
    Accept,
    /// The provider refuses it.
    Decline {
        /// Why.
        reason: DeclineReason,
        /// In words (personal: sealed); required when the reason is `other`.
        text: Option<String>,
    },
    /// The provider starts working on it.
    Start,
    /// The provider has answered the need.
    Complete {
        /// How it ended.
        outcome: Outcome,
        /// A note (personal: sealed).
        note: Option<String>,
    },
    /// The provider could not answer it.
    Fail {
        /// Why.
        reason: FailReason,
        /// In words (personal: sealed); required when the reason is `other`.
        text: Option<String>,
    },
    /// The desk withdraws it.
    Cancel,
    /// The desk sends the need on to another service, as the new referral
    /// `to` (which the caller then sends with `redirected_from`).
    Redirect {
        /// The new referral.
        to: ReferralId,
        /// Its provider.
        organization: OrganizationId,
        /// Its service.
        service: ServiceId,
    },
}

impl ReferralCommand {
    /// The action this command is, for the lifecycle (`None` for `Send`).
    pub fn action(&self) -> Option<ReferralAction> {
        Some(match self {
            ReferralCommand::Send(_) => return None,
            ReferralCommand::Acknowledge => ReferralAction::Acknowledge,
            ReferralCommand::Accept => ReferralAction::Accept,
            ReferralCommand::Decline { .. } => ReferralAction::Decline,
            ReferralCommand::Start => ReferralAction::Start,
            ReferralCommand::Complete { .. } => ReferralAction::Complete,
            ReferralCommand::Fail { .. } => ReferralAction::Fail,
            ReferralCommand::Cancel => ReferralAction::Cancel,
            ReferralCommand::Redirect { .. } => ReferralAction::Redirect,
        })
    }
}

/// What happened to a referral.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReferralEvent {
    /// Opened.
    Sent(NewReferral),
    /// Seen by the provider.
    Acknowledged,
    /// Taken by the provider.
    Accepted,
    /// Refused by the provider.
    Declined {
        /// Why.
        reason: DeclineReason,
        /// In words (personal).
        text: Option<String>,
    },
    /// Work started.
    Started,
    /// Done.
    Completed {
        /// How it ended.
        outcome: Outcome,
        /// Note (personal).
        note: Option<String>,
    },
    /// Could not be done.
    Failed {
        /// Why.
        reason: FailReason,
        /// In words (personal).
        text: Option<String>,
    },
    /// Withdrawn by the desk.
    Cancelled,
    /// Replaced by a new referral.
    Redirected {
        /// The new referral.
        to: ReferralId,
        /// Its provider.
        organization: OrganizationId,
        /// Its service.
        service: ServiceId,
    },
}

fn needs_text(reason_is_other: bool, text: &Option<String>) -> Result<(), DomainError> {
    match text {
        Some(t) if t.trim().is_empty() || t.len() > 2000 => Err(DomainError::Invalid {
            field: "text",
            message: "must be 1 to 2000 characters",
        }),
        None if reason_is_other => Err(DomainError::Invalid {
            field: "text",
            message: "is required when the reason is other",
        }),
        _ => Ok(()),
    }
}

/// Decide what a command does to a referral (`None`: not sent yet).
pub fn decide(
    state: Option<&Referral>,
    command: ReferralCommand,
) -> Result<Vec<ReferralEvent>, DomainError> {
    let Some(referral) = state else {
        return match command {
            ReferralCommand::Send(r) => {
                needs_text(false, &r.note)?;
                if r.redirected_from == Some(r.id) {
                    return Err(DomainError::Invalid {
                        field: "redirected_from",
                        message: "a referral cannot replace itself",
                    });
                }
                Ok(vec![ReferralEvent::Sent(r)])
            }
            _ => Err(DomainError::NotFound("referral")),
        };
    };
    let Some(action) = command.action() else {
        return Err(DomainError::AlreadyExists("referral"));
    };
    if transition(referral.status, action).is_none() {
        return Err(DomainError::NotAllowed {
            action: action.as_str(),
            status: referral.status.as_str(),
        });
    }
    let event = match command {
        ReferralCommand::Send(_) => unreachable!("handled above"),
        ReferralCommand::Acknowledge => ReferralEvent::Acknowledged,
        ReferralCommand::Accept => ReferralEvent::Accepted,
        ReferralCommand::Decline { reason, text } => {
            needs_text(reason == DeclineReason::Other, &text)?;
            ReferralEvent::Declined { reason, text }
        }
        ReferralCommand::Start => ReferralEvent::Started,
        ReferralCommand::Complete { outcome, note } => {
            needs_text(false, &note)?;
            ReferralEvent::Completed { outcome, note }
        }
        ReferralCommand::Fail { reason, text } => {
            needs_text(reason == FailReason::Other, &text)?;
            ReferralEvent::Failed { reason, text }
        }
        ReferralCommand::Cancel => ReferralEvent::Cancelled,
        ReferralCommand::Redirect {
            to,
            organization,
            service,
        } => {
            if to == referral.id {
                return Err(DomainError::Invalid {
                    field: "to",
                    message: "a referral cannot be redirected to itself",
                });
            }
            ReferralEvent::Redirected {
                to,
                organization,
                service,
            }
        }
    };
    Ok(vec![event])
}

impl ReferralEvent {
    /// The lifecycle action this event records (`None` for `Sent`).
    pub fn action(&self) -> Option<ReferralAction> {
        Some(match self {
            ReferralEvent::Sent(_) => return None,
            ReferralEvent::Acknowledged => ReferralAction::Acknowledge,
            ReferralEvent::Accepted => ReferralAction::Accept,
            ReferralEvent::Declined { .. } => ReferralAction::Decline,
            ReferralEvent::Started => ReferralAction::Start,
            ReferralEvent::Completed { .. } => ReferralAction::Complete,
            ReferralEvent::Failed { .. } => ReferralAction::Fail,
            ReferralEvent::Cancelled => ReferralAction::Cancel,
            ReferralEvent::Redirected { .. } => ReferralAction::Redirect,
        })
    }
}

/// Apply an event. Events are facts: one the lifecycle would not have
/// produced leaves the state as it was (it cannot come from `decide`).
pub fn evolve(state: Option<Referral>, event: &ReferralEvent) -> Option<Referral> {
    match (state, event) {
        (None, ReferralEvent::Sent(n)) => Some(Referral {
            id: n.id,
            person: n.person,
            need: n.need,
            need_code: n.need_code.clone(),
            organization: n.organization,
            service: n.service,
            redirected_from: n.redirected_from,
            status: ReferralStatus::Sent,
            redirected_to: None,
            acknowledge_by: n.acknowledge_by,
            first_contact_by: n.first_contact_by,
        }),
        (Some(mut r), e) => {
            if let Some(next) = e.action().and_then(|a| transition(r.status, a)) {
                r.status = next;
                if let ReferralEvent::Redirected { to, .. } = e {
                    r.redirected_to = Some(*to);
                }
            }
            Some(r)
        }
        (None, _) => None,
    }
}

/// The event type names on the wire.
impl ReferralEvent {
    /// Its type on the wire.
    pub fn event_type(&self) -> &'static str {
        match self {
            ReferralEvent::Sent(_) => "ReferralSent",
            ReferralEvent::Acknowledged => "ReferralAcknowledged",
            ReferralEvent::Accepted => "ReferralAccepted",
            ReferralEvent::Declined { .. } => "ReferralDeclined",
            ReferralEvent::Started => "ReferralStarted",
            ReferralEvent::Completed { .. } => "ReferralCompleted",
            ReferralEvent::Failed { .. } => "ReferralFailed",
            ReferralEvent::Cancelled => "ReferralCancelled",
            ReferralEvent::Redirected { .. } => "ReferralRedirected",
        }
    }
}

/// Public part of `ReferralSent`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SentPayload {
    /// The referral.
    pub referral_id: ReferralId,
    /// Whose case.
    pub person_id: PersonId,
    /// Which need.
    pub need_id: NeedId,
    /// The need's category in the taxonomy.
    pub need_code: NeedCode,
    /// To which provider.
    pub organization_id: OrganizationId,
    /// To which service.
    pub service_id: ServiceId,
    /// The referral it replaces, if any.
    pub redirected_from: Option<ReferralId>,
    /// By when the provider must acknowledge it, by its agreement (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub acknowledge_by: Option<OffsetDateTime>,
    /// By when the provider must first contact the person (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub first_contact_by: Option<OffsetDateTime>,
}

/// Public part of `ReferralDeclined`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeclinedPayload {
    /// Why.
    pub reason: DeclineReason,
}

/// Public part of `ReferralCompleted`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CompletedPayload {
    /// How it ended.
    pub outcome: Outcome,
}

/// Public part of `ReferralFailed`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailedPayload {
    /// Why.
    pub reason: FailReason,
}

/// Public part of `ReferralRedirected`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RedirectedPayload {
    /// The new referral.
    pub to: ReferralId,
    /// Its provider.
    pub organization_id: OrganizationId,
    /// Its service.
    pub service_id: ServiceId,
}

/// Public part of the events that carry nothing but their type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NoPayload {}

/// Personal part of the events with a free-text note.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NotePersonal {
    /// The note (free text about the person: sealed).
    pub note: String,
}

/// Personal part of the events with a reason in words.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TextPersonal {
    /// The reason in words (free text about the person: sealed).
    pub text: String,
}

/// A referral event with the referral it belongs to, ready for storage
/// (the referral says whose personal data it is and which provider it
/// concerns).
pub struct Stored<'a> {
    /// The event.
    pub event: ReferralEvent,
    /// The referral it belongs to.
    pub referral: &'a Referral,
}

impl DomainEvent for Stored<'_> {
    fn into_parts(self) -> EventParts {
        let r = self.referral;
        let person = r.person;
        let note = |n: Option<String>| n.map(|note| (person, part(NotePersonal { note })));
        let text = |t: Option<String>| t.map(|text| (person, part(TextPersonal { text })));
        let event_type = self.event.event_type();
        let (payload, personal) = match self.event {
            ReferralEvent::Sent(n) => (
                part(SentPayload {
                    referral_id: n.id,
                    person_id: person,
                    need_id: n.need,
                    need_code: n.need_code,
                    organization_id: n.organization,
                    service_id: n.service,
                    redirected_from: n.redirected_from,
                    acknowledge_by: n.acknowledge_by,
                    first_contact_by: n.first_contact_by,
                }),
                note(n.note),
            ),
            ReferralEvent::Declined { reason, text: t } => {
                (part(DeclinedPayload { reason }), text(t))
            }
            ReferralEvent::Completed { outcome, note: n } => {
                (part(CompletedPayload { outcome }), note(n))
            }
            ReferralEvent::Failed { reason, text: t } => (part(FailedPayload { reason }), text(t)),
            ReferralEvent::Redirected {
                to,
                organization,
                service,
            } => (
                part(RedirectedPayload {
                    to,
                    organization_id: organization,
                    service_id: service,
                }),
                None,
            ),
            ReferralEvent::Acknowledged
            | ReferralEvent::Accepted
            | ReferralEvent::Started
            | ReferralEvent::Cancelled => (part(NoPayload {}), None),
        };
        EventParts {
            event_type,
            schema_version: 1,
            payload,
            personal,
            // Routed to the provider it is addressed to.
            concerns: Some(r.organization),
        }
    }
}

/// The facts of a referral the desk may send now: the need is open in an
/// open case, the provider is active with an agreement in force, and the
/// service answers the need's category. The deadlines come from the
/// agreement, counted in working days of `calendar` from `now`.
#[expect(clippy::too_many_arguments, reason = "each input is a separate fact")]
pub fn plan(
    id: ReferralId,
    case: &crate::case::lifecycle::Case,
    need: NeedId,
    provider: &crate::organization::Organization,
    service: ServiceId,
    redirected_from: Option<ReferralId>,
    calendar: &crate::calendar::WorkingCalendar,
    now: OffsetDateTime,
) -> Result<NewReferral, DomainError> {
    use crate::case::lifecycle::{CaseStatus, NeedStatus};
    if case.status == CaseStatus::Closed {
        return Err(DomainError::NotAllowed {
            action: "refer a need",
            status: "closed",
        });
    }
    let Some(n) = case.needs.get(&need) else {
        return Err(DomainError::Invalid {
            field: "need_id",
            message: "this case has no such need",
        });
    };
    if n.status != NeedStatus::Open {
        return Err(DomainError::NotAllowed {
            action: "refer the need",
            status: "resolved at the desk",
        });
    }
    let Some(s) = provider.services.get(&service) else {
        return Err(DomainError::Invalid {
            field: "service_id",
            message: "no such service",
        });
    };
    if !s.answers(&n.code) {
        return Err(DomainError::Invalid {
            field: "service_id",
            message: "this service does not answer the need's category",
        });
    }
    if !provider.can_receive_referrals(crate::matching::rome_date(now)) {
        return Err(DomainError::NotAllowed {
            action: "refer to this provider",
            status: "not active or without an agreement in force",
        });
    }
    // The person's consent (or a legal basis) must cover the recipient:
    // checked last, so a refusal for consent means everything else was right.
    case.may_refer_to(provider.id)?;
    let agreement = provider.agreement.as_ref();
    Ok(NewReferral {
        id,
        person: case.person,
        need,
        need_code: n.code.clone(),
        organization: provider.id,
        service,
        redirected_from,
        acknowledge_by: agreement.and_then(|a| a.acknowledge_by(calendar, now)),
        first_contact_by: agreement.and_then(|a| a.first_contact_by(calendar, now)),
        note: None,
    })
}

/// Read a stored referral event back from its type and public payload
/// (the inverse of [`Stored`]; personal parts — notes, reasons in words —
/// are not needed to decide and come back as `None`).
pub fn decode(event_type: &str, value: &serde_json::Value) -> Result<ReferralEvent, DecodeError> {
    Ok(match event_type {
        "ReferralSent" => {
            let p: SentPayload = payload(event_type, value)?;
            ReferralEvent::Sent(NewReferral {
                id: p.referral_id,
                person: p.person_id,
                need: p.need_id,
                need_code: p.need_code,
                organization: p.organization_id,
                service: p.service_id,
                redirected_from: p.redirected_from,
                acknowledge_by: p.acknowledge_by,
                first_contact_by: p.first_contact_by,
                note: None,
            })
        }
        "ReferralAcknowledged" => ReferralEvent::Acknowledged,
        "ReferralAccepted" => ReferralEvent::Accepted,
        "ReferralDeclined" => {
            let p: DeclinedPayload = payload(event_type, value)?;
            ReferralEvent::Declined {
                reason: p.reason,
                text: None,
            }
        }
        "ReferralStarted" => ReferralEvent::Started,
        "ReferralCompleted" => {
            let p: CompletedPayload = payload(event_type, value)?;
            ReferralEvent::Completed {
                outcome: p.outcome,
                note: None,
            }
        }
        "ReferralFailed" => {
            let p: FailedPayload = payload(event_type, value)?;
            ReferralEvent::Failed {
                reason: p.reason,
                text: None,
            }
        }
        "ReferralCancelled" => ReferralEvent::Cancelled,
        "ReferralRedirected" => {
            let p: RedirectedPayload = payload(event_type, value)?;
            ReferralEvent::Redirected {
                to: p.to,
                organization: p.organization_id,
                service: p.service_id,
            }
        }
        other => return Err(DecodeError::UnknownType(other.to_owned())),
    })
}

#[cfg(test)]
pub(crate) mod tests;
