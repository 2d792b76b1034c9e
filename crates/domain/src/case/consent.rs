//! Consent (GDPR art. 6(1)(a), 7 and 9(2)(a)) and the legal bases that
//! stand in for it, recorded on the person's case; and [`sharing`], the one
//! rule saying what of the card an organisation may receive for a purpose.
//!
//! A consent says what for (its [`ConsentPurpose`]), to whom (every
//! organisation of the network, or some), which kinds of data (the card's
//! fields, [`CardField`]), when it was given, in which language the
//! information notice was given and who recorded it. It can be withdrawn;
//! a withdrawn consent never counts again (a new consent is recorded
//! instead). A legal basis (a legal obligation, the person's vital
//! interests, a public task) is recorded by a desk supervisor, for one
//! organisation, with a reason in words — personal: the reason travels in
//! the sealed part of its event.
//!
//! Pure: no clock. What a consent allows is decided here; whether the
//! caller may record one is the HTTP layer's access policy; which fields a
//! partner finally sees is also limited by its agreement (an allow-list
//! applied on top of [`sharing`]). Nothing here is ever logged.

use crate::error::DomainError;
use crate::ids::{AccountId, OrganizationId};
pub use crate::ids::{ConsentId, LegalBasisId};
pub use crate::organization::CardField;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use time::Date;

time::serde::format_description!(iso_day, Date, "[year]-[month]-[day]");

/// What the person consents to their data being used for.
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
pub enum ConsentPurpose {
    /// Sharing the card with providers of the network to answer needs.
    Referral,
    /// Activating interpreters and intercultural mediators.
    Mediation,
}

impl ConsentPurpose {
    /// Every purpose.
    pub const ALL: [ConsentPurpose; 2] = [ConsentPurpose::Referral, ConsentPurpose::Mediation];

    /// Its name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ConsentPurpose::Referral => "referral",
            ConsentPurpose::Mediation => "mediation",
        }
    }
}

impl std::fmt::Display for ConsentPurpose {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// To which organisations a consent extends. On the wire: the string
/// `"network"`, or a list of organisation ids.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrganizationScope {
    /// Every organisation of the network, now and later.
    Network,
    /// Only these.
    Only(BTreeSet<OrganizationId>),
}

impl OrganizationScope {
    /// Whether `org` is within the scope.
    pub fn covers(&self, org: OrganizationId) -> bool {
        match self {
            OrganizationScope::Network => true,
            OrganizationScope::Only(orgs) => orgs.contains(&org),
        }
    }
}

impl Serialize for OrganizationScope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OrganizationScope::Network => s.serialize_str("network"),
            OrganizationScope::Only(orgs) => orgs.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for OrganizationScope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Scope;
        impl<'de> serde::de::Visitor<'de> for Scope {
            type Value = OrganizationScope;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("\"network\" or a list of organisation ids")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v == "network" {
                    Ok(OrganizationScope::Network)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Self::Value, A::Error> {
                let mut orgs = BTreeSet::new();
                while let Some(o) = seq.next_element::<OrganizationId>()? {
                    orgs.insert(o);
                }
                Ok(OrganizationScope::Only(orgs))
            }
        }
        d.deserialize_any(Scope)
    }
}

impl schemars::JsonSchema for OrganizationScope {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OrganizationScope".into()
    }
    fn json_schema(g: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "Every organisation of the network (`\"network\"`), or these organisations.",
            "oneOf": [
                { "type": "string", "const": "network" },
                { "type": "array", "items": g.subschema_for::<OrganizationId>(), "uniqueItems": true },
            ]
        })
    }
}

/// What the person consented to, as recorded: the public part of
/// `ConsentRecorded` (no personal data: ids, codes, dates).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConsentTerms {
    /// The consent.
    pub consent_id: ConsentId,
    /// What for.
    pub purpose: ConsentPurpose,
    /// To whom.
    pub organizations: OrganizationScope,
    /// Which kinds of data (fields of the card); at least one.
    pub data: BTreeSet<CardField>,
    /// The day it was given, `YYYY-MM-DD`.
    #[serde(with = "iso_day")]
    #[schemars(with = "String")]
    pub given_on: Date,
    /// The language the information notice was given in, ISO 639-1.
    pub notice_language: String,
    /// The account that recorded it.
    pub recorded_by: AccountId,
}

/// A consent as the case holds it: its terms, and when it was withdrawn.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Consent {
    /// What was consented to.
    #[serde(flatten)]
    pub terms: ConsentTerms,
    /// The day it was withdrawn, `YYYY-MM-DD` (`None`: in force).
    #[serde(default, with = "iso_day::option")]
    #[schemars(with = "Option<String>")]
    pub withdrawn_on: Option<Date>,
}

impl Consent {
    /// Not withdrawn.
    pub fn in_force(&self) -> bool {
        self.withdrawn_on.is_none()
    }
}

/// The public part of `ConsentWithdrawn`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Withdrawal {
    /// The consent withdrawn.
    pub consent_id: ConsentId,
    /// The day, `YYYY-MM-DD`.
    #[serde(with = "iso_day")]
    #[schemars(with = "String")]
    pub withdrawn_on: Date,
}

/// A lawful ground other than consent (GDPR art. 6(1)(c)–(e), 9(2)(c)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum LegalBasisKind {
    /// A legal obligation of the desk (art. 6(1)(c)).
    LegalObligation,
    /// The person's vital interests, when they cannot consent (art. 6(1)(d), 9(2)(c)).
    VitalInterests,
    /// A task in the public interest (art. 6(1)(e)).
    PublicTask,
}

/// A legal basis as the case holds it: the public part of
/// `LegalBasisRecorded` (the reason in words is personal and sealed; it is
/// never needed to decide).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LegalBasis {
    /// The legal basis.
    pub legal_basis_id: LegalBasisId,
    /// The organisation it lets the desk share with.
    pub organization_id: OrganizationId,
    /// Which ground.
    pub basis: LegalBasisKind,
    /// The (supervisor's) account that recorded it.
    pub recorded_by: AccountId,
}

/// The personal part of `LegalBasisRecorded`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ReasonPersonal {
    /// Why, in words (about the person: sealed).
    pub reason: String,
}

/// What an organisation may receive of a person's card for a purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sharing {
    /// Neither a consent in force nor a legal basis covers it: nothing.
    NotCovered,
    /// Consents in force cover it, for these fields (never empty).
    Consent(BTreeSet<CardField>),
    /// A legal basis covers it, for every field; the organisation's
    /// agreement still limits what it sees.
    LegalBasis(LegalBasisKind),
}

impl Sharing {
    /// Whether anything may be shared with the organisation.
    pub fn covered(&self) -> bool {
        !matches!(self, Sharing::NotCovered)
    }

    /// Whether this field may be shared (before the agreement's own limit).
    pub fn allows(&self, field: CardField) -> bool {
        match self {
            Sharing::NotCovered => false,
            Sharing::Consent(fields) => fields.contains(&field),
            Sharing::LegalBasis(_) => true,
        }
    }

    /// The fields that may be shared (before the agreement's own limit).
    pub fn fields(&self) -> BTreeSet<CardField> {
        CardField::ALL
            .into_iter()
            .filter(|f| self.allows(*f))
            .collect()
    }
}

/// The one rule of what may be shared with `org` for `purpose`: the
/// union of the data kinds of every consent in force for that purpose whose
/// scope covers `org`; or, if a legal basis names `org`, every field (a
/// legal basis is recorded for an organisation, not a purpose, and stands
/// for whatever the desk must share with it). Withdrawn consents never
/// count. The organisation's agreement is a further allow-list, applied by
/// the caller: this says what the person's consent or the law allows, not
/// what the agreement lets the organisation see.
pub fn sharing(
    consents: &[Consent],
    bases: &[LegalBasis],
    org: OrganizationId,
    purpose: ConsentPurpose,
) -> Sharing {
    if let Some(b) = bases.iter().find(|b| b.organization_id == org) {
        return Sharing::LegalBasis(b.basis);
    }
    let fields: BTreeSet<CardField> = consents
        .iter()
        .filter(|c| c.in_force() && c.terms.purpose == purpose && c.terms.organizations.covers(org))
        .flat_map(|c| c.terms.data.iter().copied())
        .collect();
    if fields.is_empty() {
        Sharing::NotCovered
    } else {
        Sharing::Consent(fields)
    }
}

/// Check a consent's terms before it is recorded.
pub fn check_terms(terms: &ConsentTerms) -> Result<(), DomainError> {
    if terms.data.is_empty() {
        return Err(DomainError::Invalid {
            field: "data",
            message: "name at least one kind of data",
        });
    }
    if matches!(&terms.organizations, OrganizationScope::Only(o) if o.is_empty()) {
        return Err(DomainError::Invalid {
            field: "organizations",
            message: "name at least one organisation, or \"network\"",
        });
    }
    if !crate::organization::is_language_code(&terms.notice_language) {
        return Err(DomainError::Invalid {
            field: "notice_language",
            message: "must be an ISO 639-1 code: two lowercase letters",
        });
    }
    Ok(())
}

/// Check a legal basis's reason before it is recorded.
pub fn check_reason(reason: &str) -> Result<(), DomainError> {
    if reason.trim().is_empty() || reason.chars().count() > 2000 {
        return Err(DomainError::Invalid {
            field: "reason",
            message: "must be 1 to 2000 characters",
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
