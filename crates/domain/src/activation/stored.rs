//! An activation's events as stored: the public payloads (ids, roles,
//! sectors, languages, times — what the reports and the bus need) and the
//! personal parts. Where the activation is for a person, the place, the
//! outcome and a cancellation's reason are sealed under their key; for an
//! interpreter booked for a partner's appointment with no person named,
//! there is no one to seal for and they travel in the payload, so the
//! desk must not write personal details there (the API says so).

use super::lifecycle::{Activation, ActivationEvent};
use super::{Mode, ProfessionalRole, Request, Sector, Urgency};
use crate::decode::{DecodeError, payload};
use crate::event::{DomainEvent, EventParts, part};
use crate::ids::{ActivationId, OrganizationId, PersonId, ProfessionalId, ReferralId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// Public part of `ActivationRequested`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RequestedPayload {
    /// The activation.
    pub activation_id: ActivationId,
    /// Mediator, interpreter, lawyer.
    pub role: ProfessionalRole,
    /// Legal, labour, health.
    pub sector: Sector,
    /// ISO 639-1.
    pub language: String,
    /// In person, phone, video.
    pub mode: Mode,
    /// When the professional is needed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub needed_at: OffsetDateTime,
    /// Where, when no person is named (else sealed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// `24h` or `48h`.
    pub urgency: Urgency,
    /// The person, if any.
    pub person_id: Option<PersonId>,
    /// The referral it serves, if any.
    pub referral_id: Option<ReferralId>,
    /// The organisation asking.
    pub requested_by: OrganizationId,
    /// When it was asked.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub requested_at: OffsetDateTime,
}

/// Public part of the events naming one professional.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProfessionalPayload {
    /// The professional.
    pub professional_id: ProfessionalId,
    /// `ActivationOffered`: until when the offer stands.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub expires_at: Option<OffsetDateTime>,
    /// `ActivationAccepted`: when.
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>", extend("format" = "date-time"))]
    pub at: Option<OffsetDateTime>,
}

/// Public part of `ActivationScheduled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ScheduledPayload {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub at: OffsetDateTime,
    /// Where — only when no person is named (else sealed).
    pub place: Option<String>,
}

/// Public part of `ActivationDelivered`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DeliveredPayload {
    /// Quarter hours worked.
    pub quarter_hours: u16,
    /// How it went — only when no person is named (else sealed).
    pub outcome: Option<String>,
}

/// Public part of `ActivationCancelled`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct CancelledPayload {
    /// Why — only when no person is named (else sealed).
    pub reason: Option<String>,
}

/// Public part of an event with nothing but its type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct NoPayload {}

/// Personal part: the text of a place, an outcome or a reason.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TextPersonal {
    /// The text.
    pub text: String,
}

impl ActivationEvent {
    /// Its type on the wire.
    pub fn event_type(&self) -> &'static str {
        match self {
            ActivationEvent::Requested(_) => "ActivationRequested",
            ActivationEvent::Offered { .. } => "ActivationOffered",
            ActivationEvent::Accepted { .. } => "ActivationAccepted",
            ActivationEvent::Declined { .. } => "ActivationDeclined",
            ActivationEvent::OfferExpired { .. } => "ActivationOfferExpired",
            ActivationEvent::Scheduled { .. } => "ActivationScheduled",
            ActivationEvent::Delivered { .. } => "ActivationDelivered",
            ActivationEvent::Cancelled { .. } => "ActivationCancelled",
            ActivationEvent::DeadlineMissed => "ActivationDeadlineMissed",
        }
    }
}

/// An activation event with its activation, ready for storage.
pub struct Stored<'a> {
    /// The event.
    pub event: ActivationEvent,
    /// The activation (whose person, which organisation asked).
    pub activation: &'a Activation,
}

impl DomainEvent for Stored<'_> {
    fn into_parts(self) -> EventParts {
        let r = &self.activation.request;
        let person = r.person;
        // Text about the person is sealed under their key; with no person
        // it stays in the payload.
        let text = |t: String| match person {
            Some(p) => (None, Some((p, part(TextPersonal { text: t })))),
            None => (Some(t), None),
        };
        let who = |p: ProfessionalId| ProfessionalPayload {
            professional_id: p,
            expires_at: None,
            at: None,
        };
        let event_type = self.event.event_type();
        let (payload, personal) = match self.event {
            ActivationEvent::Requested(r) => {
                let (place, personal) = text(r.place);
                (
                    part(RequestedPayload {
                        activation_id: r.id,
                        role: r.role,
                        sector: r.sector,
                        language: r.language,
                        mode: r.mode,
                        needed_at: r.needed_at,
                        place,
                        urgency: r.urgency,
                        person_id: r.person,
                        referral_id: r.referral,
                        requested_by: r.requested_by,
                        requested_at: r.requested_at,
                    }),
                    personal,
                )
            }
            ActivationEvent::Offered { to, expires_at } => (
                part(ProfessionalPayload {
                    expires_at: Some(expires_at),
                    ..who(to)
                }),
                None,
            ),
            ActivationEvent::Accepted { by, at } => (
                part(ProfessionalPayload {
                    at: Some(at),
                    ..who(by)
                }),
                None,
            ),
            ActivationEvent::Declined { by } => (part(who(by)), None),
            ActivationEvent::OfferExpired { to } => (part(who(to)), None),
            ActivationEvent::Scheduled { at, place } => {
                let (place, personal) = text(place);
                (part(ScheduledPayload { at, place }), personal)
            }
            ActivationEvent::Delivered {
                quarter_hours,
                outcome,
            } => {
                let (outcome, personal) = text(outcome);
                (
                    part(DeliveredPayload {
                        quarter_hours,
                        outcome,
                    }),
                    personal,
                )
            }
            ActivationEvent::Cancelled { reason } => {
                let (reason, personal) = text(reason);
                (part(CancelledPayload { reason }), personal)
            }
            ActivationEvent::DeadlineMissed => (part(NoPayload {}), None),
        };
        EventParts {
            event_type,
            schema_version: 1,
            payload,
            personal,
            concerns: Some(r.requested_by),
        }
    }
}

/// Read a stored activation event back from its type and public payload
/// (the inverse of [`Stored`]; sealed texts come back empty — deciding
/// never needs them).
pub fn decode(event_type: &str, value: &serde_json::Value) -> Result<ActivationEvent, DecodeError> {
    let who = || -> Result<ProfessionalPayload, DecodeError> { payload(event_type, value) };
    Ok(match event_type {
        "ActivationRequested" => {
            let p: RequestedPayload = payload(event_type, value)?;
            ActivationEvent::Requested(Request {
                id: p.activation_id,
                role: p.role,
                sector: p.sector,
                language: p.language,
                mode: p.mode,
                needed_at: p.needed_at,
                place: p.place.unwrap_or_default(),
                urgency: p.urgency,
                person: p.person_id,
                referral: p.referral_id,
                requested_by: p.requested_by,
                requested_at: p.requested_at,
            })
        }
        "ActivationOffered" => {
            let p = who()?;
            ActivationEvent::Offered {
                to: p.professional_id,
                expires_at: p
                    .expires_at
                    .ok_or_else(|| missing(event_type, "expires_at"))?,
            }
        }
        "ActivationAccepted" => {
            let p = who()?;
            ActivationEvent::Accepted {
                by: p.professional_id,
                at: p.at.ok_or_else(|| missing(event_type, "at"))?,
            }
        }
        "ActivationDeclined" => ActivationEvent::Declined {
            by: who()?.professional_id,
        },
        "ActivationOfferExpired" => ActivationEvent::OfferExpired {
            to: who()?.professional_id,
        },
        "ActivationScheduled" => {
            let p: ScheduledPayload = payload(event_type, value)?;
            ActivationEvent::Scheduled {
                at: p.at,
                place: p.place.unwrap_or_default(),
            }
        }
        "ActivationDelivered" => {
            let p: DeliveredPayload = payload(event_type, value)?;
            ActivationEvent::Delivered {
                quarter_hours: p.quarter_hours,
                outcome: p.outcome.unwrap_or_default(),
            }
        }
        "ActivationCancelled" => {
            let p: CancelledPayload = payload(event_type, value)?;
            ActivationEvent::Cancelled {
                reason: p.reason.unwrap_or_default(),
            }
        }
        "ActivationDeadlineMissed" => ActivationEvent::DeadlineMissed,
        other => return Err(DecodeError::UnknownType(other.to_owned())),
    })
}

fn missing(event_type: &str, field: &str) -> DecodeError {
    DecodeError::malformed(event_type, format!("{field} is missing"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::lifecycle::evolve;
    use time::macros::datetime;

    fn activation(person: Option<PersonId>) -> Activation {
        let r = Request {
            id: ActivationId::new(),
            role: ProfessionalRole::Lawyer,
            sector: Sector::Legal,
            language: "uk".into(),
            mode: Mode::Video,
            needed_at: datetime!(2026-04-01 10:00 UTC),
            place: "Demo: Sportello, via Lacava 2".into(),
            urgency: Urgency::Hours48,
            person,
            referral: None,
            requested_by: OrganizationId::new(),
            requested_at: datetime!(2026-03-31 08:00 UTC),
        };
        evolve(None, &ActivationEvent::Requested(r)).unwrap()
    }

    fn events(a: &Activation) -> Vec<ActivationEvent> {
        let p = ProfessionalId::new();
        vec![
            ActivationEvent::Requested(a.request.clone()),
            ActivationEvent::Offered {
                to: p,
                expires_at: datetime!(2026-03-31 10:00 UTC),
            },
            ActivationEvent::Accepted {
                by: p,
                at: datetime!(2026-03-31 09:00 UTC),
            },
            ActivationEvent::Declined { by: p },
            ActivationEvent::OfferExpired { to: p },
            ActivationEvent::Scheduled {
                at: datetime!(2026-04-01 10:00 UTC),
                place: "Demo: via Pretoria".into(),
            },
            ActivationEvent::Delivered {
                quarter_hours: 4,
                outcome: "Demo: advice given".into(),
            },
            ActivationEvent::Cancelled {
                reason: "Demo: moved".into(),
            },
            ActivationEvent::DeadlineMissed,
        ]
    }

    #[test]
    fn texts_are_sealed_for_a_person_and_every_event_reads_back() {
        for person in [Some(PersonId::new()), None] {
            let a = activation(person);
            let schemas = crate::schema::event_schemas();
            for e in events(&a) {
                let parts = Stored {
                    event: e.clone(),
                    activation: &a,
                }
                .into_parts();
                let text = parts.payload.to_string();
                let has_text = matches!(
                    e,
                    ActivationEvent::Requested(_)
                        | ActivationEvent::Scheduled { .. }
                        | ActivationEvent::Delivered { .. }
                        | ActivationEvent::Cancelled { .. }
                );
                assert_eq!(
                    text.contains("Demo:"),
                    has_text && person.is_none(),
                    "{}: {text}",
                    parts.event_type
                );
                if let Some((p, _)) = &parts.personal {
                    assert_eq!(Some(*p), person);
                }
                assert_eq!(parts.concerns, Some(a.request.requested_by));
                // The payload's keys are its schema's properties.
                let schema = schemas
                    .iter()
                    .find(|s| s.event_type == parts.event_type)
                    .expect("a schema");
                let props = schema.schema["properties"]["payload"]["properties"]
                    .as_object()
                    .map(|o| o.keys().cloned().collect::<Vec<_>>())
                    .unwrap_or_default();
                for k in parts.payload.as_object().unwrap().keys() {
                    assert!(
                        props.contains(k),
                        "{}: {k} not in its schema",
                        parts.event_type
                    );
                }
                let back = decode(parts.event_type, &parts.payload).unwrap();
                let sealed_texts_dropped = match (&e, person) {
                    (ActivationEvent::Requested(r), Some(_)) => {
                        ActivationEvent::Requested(Request {
                            place: String::new(),
                            ..r.clone()
                        })
                    }
                    (ActivationEvent::Scheduled { at, .. }, Some(_)) => {
                        ActivationEvent::Scheduled {
                            at: *at,
                            place: String::new(),
                        }
                    }
                    (ActivationEvent::Delivered { quarter_hours, .. }, Some(_)) => {
                        ActivationEvent::Delivered {
                            quarter_hours: *quarter_hours,
                            outcome: String::new(),
                        }
                    }
                    (ActivationEvent::Cancelled { .. }, Some(_)) => ActivationEvent::Cancelled {
                        reason: String::new(),
                    },
                    _ => e.clone(),
                };
                assert_eq!(back, sealed_texts_dropped);
            }
        }
    }
}
