//! A person's case (the stream kind `case`): taking in charge, visits,
//! screened needs, the desk's own answers, closing and reopening, consent
//! and legal bases for sharing ([`consent`]). The
//! identity types and the opening event are here; the commands, the state
//! and the pure `decide`/`evolve` are in [`lifecycle`].

pub mod consent;
pub mod erasure;
pub mod lifecycle;
pub mod search;

use crate::event::{DomainEvent, EventParts};
use crate::ids::{AccountId, OrganizationId, PersonId};
use serde::{Deserialize, Serialize};

/// The stream kind of a person's case.
pub const STREAM_KIND: &str = "case";

/// How the person reached the desk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// In person, at the desk.
    Desk,
    /// By phone.
    Phone,
    /// Met by outreach work.
    Outreach,
}

/// A name of the person, as written in a document, as used, or an alias.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PersonName {
    /// `as_in_document`, `as_used` or `alias`.
    pub kind: String,
    /// The name as written.
    pub text: String,
}

/// The person's sex, when they give it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
    /// Another answer.
    Other,
}

/// How well the person speaks a language.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Proficiency {
    /// Mother tongue.
    Native,
    /// Speaks it well.
    Fluent,
    /// Gets by.
    Basic,
}

/// A language the person speaks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct LanguageSkill {
    /// ISO 639-1 code, two lowercase letters.
    pub code: String,
    /// How well.
    pub proficiency: Proficiency,
}

/// How to reach the person.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PersonContacts {
    /// Phone.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
    /// Where they live or can be found.
    pub address: Option<String>,
}

/// A document the person holds (the desk serves people without any).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IdentityDocument {
    /// `passport`, `identity_card`, `residence_permit`,
    /// `asylum_application_receipt`, `travel_document` or `other`.
    pub kind: String,
    /// Its number as written.
    pub number: String,
    /// Issuing country, ISO 3166-1 alpha-2.
    pub issuing_country: Option<String>,
    /// Expiry date `YYYY-MM-DD`, if it has one.
    pub expires_on: Option<String>,
}

/// A vulnerability the desk records (special category: sealed).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Vulnerability {
    /// A minor without a parent or guardian.
    UnaccompaniedMinor,
    /// Pregnant.
    Pregnancy,
    /// A disability.
    Disability,
    /// A serious illness.
    SeriousIllness,
    /// A victim of violence or torture.
    ViolenceSurvivor,
    /// A victim of trafficking.
    TraffickingVictim,
    /// A single parent with minor children.
    SingleParent,
    /// Elderly.
    Elderly,
    /// Without a home.
    Homeless,
}

/// The personal part of [`PersonTakenInCharge`] (schema version 2; the
/// fields after `birth_date` were added later with defaults, so every
/// stored version 2 still reads).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PersonIdentity {
    /// Names, as in documents, as used, and aliases.
    pub names: Vec<PersonName>,
    /// Birth date as known (may be approximate), free form `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// Sex, if given.
    #[serde(default)]
    pub sex: Option<Sex>,
    /// Country of birth, ISO 3166-1 alpha-2.
    #[serde(default)]
    pub country_of_birth: Option<String>,
    /// Citizenships, ISO 3166-1 alpha-2 (none: stateless or unknown).
    #[serde(default)]
    pub citizenships: Vec<String>,
    /// Languages spoken.
    #[serde(default)]
    pub languages: Vec<LanguageSkill>,
    /// How to reach them.
    #[serde(default)]
    pub contacts: PersonContacts,
    /// Documents held, if any.
    #[serde(default)]
    pub documents: Vec<IdentityDocument>,
    /// Vulnerabilities.
    #[serde(default)]
    pub vulnerabilities: Vec<Vulnerability>,
}

/// The public part of [`PersonTakenInCharge`] (schema version 2): no
/// personal data, kept in clear for statistics and routing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct PersonTakenInChargePayload {
    /// The person (and case stream) id.
    pub person_id: PersonId,
    /// The desk that took them in charge.
    pub desk: OrganizationId,
    /// How they came.
    pub channel: Channel,
    /// The operator in charge of the case.
    #[serde(default)]
    pub operator: Option<AccountId>,
}

/// The desk took a person in charge: the case opens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PersonTakenInCharge {
    /// The person.
    pub person_id: PersonId,
    /// The desk that took them in charge.
    pub desk: OrganizationId,
    /// How they came.
    pub channel: Channel,
    /// The operator in charge of the case.
    pub operator: Option<AccountId>,
    /// Who they are (personal, encrypted).
    pub identity: PersonIdentity,
}

impl PersonTakenInCharge {
    /// The event type on the wire.
    pub const TYPE: &'static str = "PersonTakenInCharge";
    /// The current schema version.
    pub const SCHEMA_VERSION: i32 = 2;
}

impl DomainEvent for PersonTakenInCharge {
    fn into_parts(self) -> EventParts {
        EventParts {
            event_type: Self::TYPE,
            schema_version: Self::SCHEMA_VERSION,
            payload: serde_json::to_value(PersonTakenInChargePayload {
                person_id: self.person_id,
                desk: self.desk,
                channel: self.channel,
                operator: self.operator,
            })
            .expect("payload serialises"),
            personal: Some((
                self.person_id,
                serde_json::to_value(&self.identity).expect("identity serialises"),
            )),
            concerns: Some(self.desk),
        }
    }
}
