//! Who an organisation is: its kind, its ownership and how to reach its
//! office, with the text checks the other parts of the organisation share.
//! Organisation data only: nothing here may hold a person's data.

use crate::error::DomainError;
use serde::{Deserialize, Serialize};

/// What kind of organisation it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrganizationKind {
    /// The comune's immigration services desk (sportello).
    Desk,
    /// Questura (police headquarters: residence permits).
    Questura,
    /// Prefettura (prefecture: immigration office).
    Prefettura,
    /// Azienda Sanitaria Locale (local health authority).
    HealthAuthority,
    /// Centro per l'impiego (job centre).
    JobCentre,
    /// Ufficio scolastico (regional or provincial school office).
    SchoolOffice,
    /// Another office of the comune.
    ComuneOffice,
    /// Patronato (welfare advice bureau).
    Patronato,
    /// Trade union.
    TradeUnion,
    /// Non-profit organisation (association, cooperative, charity).
    NonProfit,
    /// Anything else.
    Other,
}

/// Whether the organisation is public or private.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ownership {
    /// A public body.
    Public,
    /// A private one (patronati, unions, non-profits, ...).
    Private,
}

/// How to reach the organisation's office (organisation data, not personal).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Contacts {
    /// Office phone.
    pub phone: Option<String>,
    /// Office email.
    pub email: Option<String>,
    /// Office address.
    pub address: Option<String>,
}

impl Contacts {
    /// Check every field: present fields are not blank, an email has an `@`
    /// between two non-empty parts, a phone has digits and only `+ -()/.`
    /// and spaces besides.
    pub fn validate(&self) -> Result<(), DomainError> {
        optional_text("phone", &self.phone)?;
        optional_text("email", &self.email)?;
        optional_text("address", &self.address)?;
        if let Some(phone) = &self.phone {
            let ok = phone.chars().any(|c| c.is_ascii_digit())
                && phone
                    .chars()
                    .all(|c| c.is_ascii_digit() || " +-()/.".contains(c));
            if !ok {
                return Err(DomainError::Invalid {
                    field: "phone",
                    message: "must be digits, spaces and + - ( ) / .",
                });
            }
        }
        if let Some(email) = &self.email {
            let ok = email
                .trim()
                .split_once('@')
                .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && !b.contains('@'));
            if !ok || email.trim().contains(char::is_whitespace) {
                return Err(DomainError::Invalid {
                    field: "email",
                    message: "must be an email address",
                });
            }
        }
        Ok(())
    }
}

pub(super) fn text(
    field: &'static str,
    value: &str,
    min: usize,
    max: usize,
) -> Result<(), DomainError> {
    let len = value.trim().chars().count();
    if len < min {
        return Err(DomainError::Invalid {
            field,
            message: "must not be empty",
        });
    }
    if value.chars().count() > max {
        return Err(DomainError::Invalid {
            field,
            message: "is too long",
        });
    }
    Ok(())
}

fn optional_text(field: &'static str, value: &Option<String>) -> Result<(), DomainError> {
    match value {
        Some(v) => text(field, v, 1, 300),
        None => Ok(()),
    }
}
