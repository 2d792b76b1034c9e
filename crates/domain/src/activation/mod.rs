//! An activation (attivazione): a request for a professional of the
//! registry — an intercultural mediator, an interpreter, a lawyer — in a
//! sector and a language, by a mode, for a moment, to be confirmed within
//! 24 or 48 hours of the request. Its lifecycle: requested, then offered to
//! one professional at a time (who accepts, declines, or lets the offer
//! expire — then the next is offered), confirmed, scheduled, delivered; or
//! cancelled. A deadline passed with nobody confirmed is recorded once.
//!
//! Pure: every moment is an input (the command's `now`), so tests and the
//! scheduler set the clock; which professional is offered next is the
//! matching's business, not this module's. The statuses and their
//! transitions are here, in one place.

use crate::error::DomainError;
use crate::ids::{ActivationId, OrganizationId, PersonId, ReferralId};
use serde::{Deserialize, Serialize};
use time::{Duration, OffsetDateTime};

/// The stream kind of an activation.
pub const STREAM_KIND: &str = "activation";

/// What kind of professional is asked for.
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
pub enum ProfessionalRole {
    /// Intercultural mediator.
    Mediator,
    /// Interpreter.
    Interpreter,
    /// Lawyer.
    Lawyer,
}

/// The sector the professional works in.
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
pub enum Sector {
    /// Legal (permits, asylum, courts).
    Legal,
    /// The labour market.
    Labour,
    /// Health.
    Health,
}

/// How the professional works with the person.
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
pub enum Mode {
    /// In person.
    InPerson,
    /// By phone.
    Phone,
    /// By video.
    Video,
}

/// Within how long of the request a professional must be confirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum Urgency {
    /// Within 24 hours.
    #[serde(rename = "24h")]
    Hours24,
    /// Within 48 hours.
    #[serde(rename = "48h")]
    Hours48,
}

impl Urgency {
    /// The time allowed.
    pub fn within(self) -> Duration {
        match self {
            Urgency::Hours24 => Duration::hours(24),
            Urgency::Hours48 => Duration::hours(48),
        }
    }
}

/// What is asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// The activation (its stream id).
    pub id: ActivationId,
    /// Mediator, interpreter or lawyer.
    pub role: ProfessionalRole,
    /// Legal, labour, health.
    pub sector: Sector,
    /// The language needed (ISO 639-1).
    pub language: String,
    /// In person, phone, video.
    pub mode: Mode,
    /// When the professional is needed.
    pub needed_at: OffsetDateTime,
    /// Where (an office's address, or how to join by phone or video);
    /// about the person when there is one (then sealed).
    pub place: String,
    /// 24 h or 48 h.
    pub urgency: Urgency,
    /// The person, when there is one (an interpreter may be booked for a
    /// partner's appointment without the desk's case).
    pub person: Option<PersonId>,
    /// The referral it serves, if any.
    pub referral: Option<ReferralId>,
    /// The organisation asking (the desk, or a partner for its appointment).
    pub requested_by: OrganizationId,
    /// When it was asked.
    pub requested_at: OffsetDateTime,
}

impl Request {
    /// The moment by which a professional must be confirmed.
    pub fn deadline(&self) -> OffsetDateTime {
        self.requested_at + self.urgency.within()
    }
}

/// Where an activation stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Nobody is being asked right now.
    Waiting,
    /// Offered to one professional, waiting for their answer.
    Offered,
    /// A professional accepted.
    Confirmed,
    /// Time and place set.
    Scheduled,
    /// Done.
    Delivered,
    /// Called off.
    Cancelled,
}

impl Status {
    /// Its wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Waiting => "waiting",
            Status::Offered => "offered",
            Status::Confirmed => "confirmed",
            Status::Scheduled => "scheduled",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
        }
    }

    /// Nothing more happens to it.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Delivered | Status::Cancelled)
    }
}

pub mod lifecycle;
pub mod ranking;
pub mod stored;

pub use lifecycle::{Activation, ActivationCommand, ActivationEvent, decide, evolve};

/// Check what types cannot: a two-letter language code.
pub fn check_language(code: &str) -> Result<(), DomainError> {
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_lowercase()) {
        Ok(())
    } else {
        Err(DomainError::Invalid {
            field: "language",
            message: "must be an ISO 639-1 code, two lowercase letters",
        })
    }
}
