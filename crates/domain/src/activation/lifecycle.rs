//! The activation's commands, state, and pure `decide`/`evolve`.
//!
//! One offer at a time: a professional is offered the activation until a
//! moment (the offer timeout); they accept — it is confirmed, and nobody
//! else ever can be — or decline, or the offer expires; then the next is
//! offered. A professional once declined or expired is not offered the
//! same activation again. Confirmed, it is scheduled (and may be
//! rescheduled), then delivered with the hours and an outcome; anything
//! not yet delivered may be cancelled. The deadline (24/48 h after the
//! request) passing with nobody confirmed is recorded once.

use super::{Request, Status, check_language};
use crate::error::DomainError;
use crate::ids::ProfessionalId;
use time::OffsetDateTime;

/// An activation as its events left it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Activation {
    /// What was asked.
    pub request: Request,
    /// Where it stands.
    pub status: Status,
    /// The live offer: to whom, until when.
    pub offer: Option<(ProfessionalId, OffsetDateTime)>,
    /// Professionals who declined or let their offer expire, in order.
    pub passed: Vec<ProfessionalId>,
    /// The professional who accepted.
    pub confirmed: Option<ProfessionalId>,
    /// When it was confirmed.
    pub confirmed_at: Option<OffsetDateTime>,
    /// When and where it takes place.
    pub scheduled: Option<(OffsetDateTime, String)>,
    /// The deadline passed with nobody confirmed (recorded once).
    pub deadline_missed: bool,
}

/// What may be asked of an activation. Every command carries its moment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActivationCommand {
    /// Ask for a professional.
    Request(Request),
    /// Offer it to a professional until `expires_at`.
    Offer {
        /// To whom.
        to: ProfessionalId,
        /// The offer lapses then.
        expires_at: OffsetDateTime,
        /// Now.
        now: OffsetDateTime,
    },
    /// The professional offered accepts.
    Accept {
        /// Who answers.
        by: ProfessionalId,
        /// Now.
        now: OffsetDateTime,
    },
    /// The professional offered declines.
    Decline {
        /// Who answers.
        by: ProfessionalId,
        /// Now.
        now: OffsetDateTime,
    },
    /// The live offer has run out (the scheduler).
    ExpireOffer {
        /// Now.
        now: OffsetDateTime,
    },
    /// Set (or change) the time and place.
    Schedule {
        /// When.
        at: OffsetDateTime,
        /// Where (an office, or "phone"/"video" details).
        place: String,
    },
    /// It took place.
    Deliver {
        /// Hours worked, in quarter hours (1 = 15 minutes).
        quarter_hours: u16,
        /// How it went (personal: sealed).
        outcome: String,
    },
    /// Call it off.
    Cancel {
        /// Why, in words.
        reason: String,
    },
    /// The deadline has passed with nobody confirmed (the scheduler).
    MissDeadline {
        /// Now.
        now: OffsetDateTime,
    },
}

/// What happened to an activation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActivationEvent {
    /// Asked for.
    Requested(Request),
    /// Offered to a professional.
    Offered {
        /// To whom.
        to: ProfessionalId,
        /// Until when.
        expires_at: OffsetDateTime,
    },
    /// Accepted: confirmed.
    Accepted {
        /// Who.
        by: ProfessionalId,
        /// When.
        at: OffsetDateTime,
    },
    /// Declined.
    Declined {
        /// Who.
        by: ProfessionalId,
    },
    /// The offer lapsed unanswered.
    OfferExpired {
        /// Whose offer.
        to: ProfessionalId,
    },
    /// Time and place set.
    Scheduled {
        /// When.
        at: OffsetDateTime,
        /// Where.
        place: String,
    },
    /// Delivered.
    Delivered {
        /// Quarter hours worked.
        quarter_hours: u16,
        /// How it went.
        outcome: String,
    },
    /// Called off.
    Cancelled {
        /// Why.
        reason: String,
    },
    /// The 24/48 h deadline passed with nobody confirmed.
    DeadlineMissed,
}

/// How far ahead of its request an activation may be needed or scheduled.
pub const HORIZON: time::Duration = time::Duration::days(366);

fn text(field: &'static str, s: &str, max: usize) -> Result<(), DomainError> {
    if s.trim().is_empty() || s.chars().count() > max {
        return Err(DomainError::Invalid {
            field,
            message: "must be 1 to the allowed number of characters",
        });
    }
    Ok(())
}

/// Decide what a command does (`None`: not requested yet).
pub fn decide(
    state: Option<&Activation>,
    command: ActivationCommand,
) -> Result<Vec<ActivationEvent>, DomainError> {
    use ActivationCommand as C;
    use ActivationEvent as E;
    let Some(a) = state else {
        return match command {
            C::Request(r) => {
                check_language(&r.language)?;
                text("place", &r.place, 500)?;
                if r.needed_at < r.requested_at {
                    return Err(DomainError::Invalid {
                        field: "needed_at",
                        message: "must not be before the request",
                    });
                }
                if r.needed_at > r.requested_at + HORIZON {
                    return Err(DomainError::Invalid {
                        field: "needed_at",
                        message: "must be within a year of the request",
                    });
                }
                Ok(vec![E::Requested(r)])
            }
            _ => Err(DomainError::NotFound("activation")),
        };
    };
    let refuse = |action: &'static str| DomainError::NotAllowed {
        action,
        status: a.status.as_str(),
    };
    if let C::Request(_) = command {
        return Err(DomainError::AlreadyExists("activation"));
    }
    if a.status.is_final() {
        return Err(refuse("change the activation"));
    }
    let event = match command {
        C::Request(_) => unreachable!("answered above"),
        C::Offer {
            to,
            expires_at,
            now,
        } => {
            if a.status != Status::Waiting {
                return Err(refuse("offer"));
            }
            if a.passed.contains(&to) {
                return Err(DomainError::NotAllowed {
                    action: "offer it again to a professional who passed",
                    status: a.status.as_str(),
                });
            }
            if expires_at <= now {
                return Err(DomainError::Invalid {
                    field: "expires_at",
                    message: "must be after now",
                });
            }
            E::Offered { to, expires_at }
        }
        C::Accept { by, now } => match a.offer {
            Some((to, until)) if to == by && now < until => E::Accepted { by, at: now },
            Some((to, _)) if to == by => return Err(refuse("accept an expired offer")),
            _ => return Err(refuse("accept")),
        },
        C::Decline { by, .. } => match a.offer {
            Some((to, _)) if to == by => E::Declined { by },
            _ => return Err(refuse("decline")),
        },
        C::ExpireOffer { now } => match a.offer {
            Some((to, until)) if now >= until => E::OfferExpired { to },
            _ => return Err(refuse("expire the offer")),
        },
        C::Schedule { at, place } => {
            if !matches!(a.status, Status::Confirmed | Status::Scheduled) {
                return Err(refuse("schedule"));
            }
            if at < a.request.requested_at || at > a.request.requested_at + HORIZON {
                return Err(DomainError::Invalid {
                    field: "at",
                    message: "must be after the request and within a year of it",
                });
            }
            text("place", &place, 500)?;
            E::Scheduled { at, place }
        }
        C::Deliver {
            quarter_hours,
            outcome,
        } => {
            if a.status != Status::Scheduled {
                return Err(refuse("deliver"));
            }
            if !(1..=96).contains(&quarter_hours) {
                return Err(DomainError::Invalid {
                    field: "quarter_hours",
                    message: "must be 1 to 96 (15 minutes to 24 hours)",
                });
            }
            text("outcome", &outcome, 4000)?;
            E::Delivered {
                quarter_hours,
                outcome,
            }
        }
        C::Cancel { reason } => {
            text("reason", &reason, 2000)?;
            E::Cancelled { reason }
        }
        C::MissDeadline { now } => {
            let unconfirmed = matches!(a.status, Status::Waiting | Status::Offered);
            if !unconfirmed || a.deadline_missed || now < a.request.deadline() {
                return Err(refuse("miss the deadline"));
            }
            E::DeadlineMissed
        }
    };
    Ok(vec![event])
}

/// Apply an event.
pub fn evolve(state: Option<Activation>, event: &ActivationEvent) -> Option<Activation> {
    use ActivationEvent as E;
    match (state, event) {
        (None, E::Requested(r)) => Some(Activation {
            request: r.clone(),
            status: Status::Waiting,
            offer: None,
            passed: Vec::new(),
            confirmed: None,
            confirmed_at: None,
            scheduled: None,
            deadline_missed: false,
        }),
        (None, _) => None,
        (Some(mut a), e) => {
            match e {
                E::Requested(_) => {}
                E::Offered { to, expires_at } => {
                    a.offer = Some((*to, *expires_at));
                    a.status = Status::Offered;
                }
                E::Accepted { by, at } => {
                    a.offer = None;
                    a.confirmed = Some(*by);
                    a.confirmed_at = Some(*at);
                    a.status = Status::Confirmed;
                }
                E::Declined { by } | E::OfferExpired { to: by } => {
                    a.offer = None;
                    a.passed.push(*by);
                    a.status = Status::Waiting;
                }
                E::Scheduled { at, place } => {
                    a.scheduled = Some((*at, place.clone()));
                    a.status = Status::Scheduled;
                }
                E::Delivered { .. } => a.status = Status::Delivered,
                E::Cancelled { .. } => {
                    a.offer = None;
                    a.status = Status::Cancelled;
                }
                E::DeadlineMissed => a.deadline_missed = true,
            }
            Some(a)
        }
    }
}

#[cfg(test)]
mod tests;
