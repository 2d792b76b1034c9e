//! The agreement (protocollo d'intesa) of an organisation: how fast it
//! answers a referral, in working days, and which fields of the card it may
//! see. Pure: the calendar comes in, the clock never does.

use crate::calendar::WorkingCalendar;
use crate::error::DomainError;
use crate::ids::AgreementId;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::{Date, OffsetDateTime};

/// A field of the card (scheda unica) a provider may be allowed to see.
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
pub enum CardField {
    /// Given and family names.
    Names,
    /// Date of birth.
    BirthDate,
    /// Citizenship.
    Citizenship,
    /// Languages spoken.
    Languages,
    /// Phone, email, address of the person.
    Contacts,
    /// Identity and residence documents.
    Documents,
    /// Vulnerabilities (special categories).
    Vulnerabilities,
    /// The screened needs.
    Needs,
    /// The desk's notes.
    Notes,
}

impl CardField {
    /// Every field.
    pub const ALL: [CardField; 9] = [
        CardField::Names,
        CardField::BirthDate,
        CardField::Citizenship,
        CardField::Languages,
        CardField::Contacts,
        CardField::Documents,
        CardField::Vulnerabilities,
        CardField::Needs,
        CardField::Notes,
    ];
}

/// The agreement (protocollo d'intesa) of an organisation: what it commits
/// to, how fast, and what of the card it may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// Its id.
    pub id: AgreementId,
    /// When it was signed.
    pub signed_on: Date,
    /// First day it applies.
    pub valid_from: Date,
    /// Last day it applies (included).
    pub valid_to: Date,
    /// Working days within which a referral is acknowledged (at least 1).
    pub acknowledge_within: u8,
    /// Working days within which the person is first contacted (at least
    /// 1, and not fewer than `acknowledge_within`).
    pub first_contact_within: u8,
    /// The card fields the provider may see.
    pub visible_fields: BTreeSet<CardField>,
}

impl Agreement {
    /// Whether it applies on `date` (both ends included).
    pub fn in_force(&self, date: Date) -> bool {
        self.valid_from <= date && date <= self.valid_to
    }

    /// Whether the provider may see `field` of the card.
    pub fn may_see(&self, field: CardField) -> bool {
        self.visible_fields.contains(&field)
    }

    /// When a referral sent at `sent` must be acknowledged by, counted in
    /// working days of `calendar` (`None` beyond year 9999).
    pub fn acknowledge_by(
        &self,
        calendar: &WorkingCalendar,
        sent: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        calendar.checked_add_working_days(sent, u32::from(self.acknowledge_within))
    }

    /// When the person must be first contacted by, for a referral sent at
    /// `sent` (`None` beyond year 9999).
    pub fn first_contact_by(
        &self,
        calendar: &WorkingCalendar,
        sent: OffsetDateTime,
    ) -> Option<OffsetDateTime> {
        calendar.checked_add_working_days(sent, u32::from(self.first_contact_within))
    }

    /// Check every field.
    pub fn validate(&self) -> Result<(), DomainError> {
        if self.valid_from > self.valid_to {
            return Err(DomainError::Invalid {
                field: "valid_to",
                message: "must not be before valid_from",
            });
        }
        if self.acknowledge_within == 0 {
            return Err(DomainError::Invalid {
                field: "acknowledge_within",
                message: "must be at least 1 working day",
            });
        }
        if self.first_contact_within == 0 {
            return Err(DomainError::Invalid {
                field: "first_contact_within",
                message: "must be at least 1 working day",
            });
        }
        if self.first_contact_within < self.acknowledge_within {
            return Err(DomainError::Invalid {
                field: "first_contact_within",
                message: "must not be shorter than acknowledge_within",
            });
        }
        Ok(())
    }
}
