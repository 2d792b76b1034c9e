//! The body of `POST /api/v1/persons` and its validation: the person as
//! the desk knows them, parsed at the edge into the domain's
//! [`PersonIdentity`], every offending field named in one answer.

use crate::error::{ApiError, FieldError};
use serde::Deserialize;
use sportello_domain::case::{
    Channel, IdentityDocument, LanguageSkill, PersonContacts, PersonIdentity, PersonName,
    Proficiency, Sex, Vulnerability,
};
use sportello_domain::organization::is_language_code;

/// Body of `POST /api/v1/persons`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeInCharge {
    /// Names as in documents, as used, and aliases; at least one.
    pub names: Vec<NameIn>,
    /// Birth date as known: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`; absent if unknown.
    pub birth_date: Option<String>,
    /// `female`, `male` or `other`.
    #[schema(value_type = Option<String>, example = "female")]
    pub sex: Option<Sex>,
    /// Country of birth, ISO 3166-1 alpha-2 (e.g. `NG`).
    pub country_of_birth: Option<String>,
    /// Citizenships, ISO 3166-1 alpha-2.
    #[serde(default)]
    pub citizenships: Vec<String>,
    /// Languages spoken, with proficiency.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub languages: Vec<LanguageSkill>,
    /// Phone, email, address.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub contacts: PersonContacts,
    /// Documents held, if any (the desk serves people without documents).
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub documents: Vec<IdentityDocument>,
    /// Vulnerabilities, e.g. `pregnancy`, `unaccompanied_minor`.
    #[serde(default)]
    #[schema(value_type = Vec<String>)]
    pub vulnerabilities: Vec<Vulnerability>,
    /// How the person came: `desk`, `phone` or `outreach`.
    #[schema(value_type = String, example = "desk")]
    pub channel: Channel,
    /// The consent the person gave when the desk gave the information
    /// notice at intake, recorded with the opening (same write).
    pub consent: Option<super::consents::ConsentIn>,
}

/// One name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameIn {
    /// `as_in_document`, `as_used` or `alias`.
    pub kind: String,
    /// The name.
    pub text: String,
}

const DOCUMENT_KINDS: [&str; 6] = [
    "passport",
    "identity_card",
    "residence_permit",
    "asylum_application_receipt",
    "travel_document",
    "other",
];

/// Check a birth date as known: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
pub fn check_partial_date(s: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() > 3 {
        return Err("use YYYY, YYYY-MM or YYYY-MM-DD");
    }
    let year: i32 = parts[0].parse().map_err(|_| "year must be digits")?;
    if parts[0].len() != 4 || !(1900..=2100).contains(&year) {
        return Err("year must be four digits between 1900 and 2100");
    }
    let month = match parts.get(1) {
        None => return Ok(()),
        Some(m) if m.len() == 2 => m.parse::<u8>().map_err(|_| "month must be digits")?,
        Some(_) => return Err("month must be two digits"),
    };
    let month = time::Month::try_from(month).map_err(|_| "month must be 01 to 12")?;
    if let Some(d) = parts.get(2) {
        let day: u8 = d.parse().map_err(|_| "day must be digits")?;
        time::Date::from_calendar_date(year, month, day).map_err(|_| "no such day")?;
    }
    Ok(())
}

fn is_country(c: &str) -> bool {
    c.len() == 2 && c.bytes().all(|b| b.is_ascii_uppercase())
}

/// Collects the offending fields of one body.
#[derive(Default)]
pub struct Problems(Vec<FieldError>);

impl Problems {
    /// Note that `field` is wrong.
    pub fn add(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(FieldError {
            field: field.into(),
            message: message.into(),
        });
    }

    /// Check an optional free text's length.
    pub fn text(&mut self, field: &str, value: Option<&str>, max: usize) {
        if let Some(v) = value
            && (v.trim().is_empty() || v.chars().count() > max)
        {
            self.add(field, format!("must be 1 to {max} characters"));
        }
    }

    /// `Ok` when nothing was noted, else the validation problem.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(self.0))
        }
    }
}

impl TakeInCharge {
    /// Check every field and give the identity the case will hold.
    pub fn validate(self) -> Result<(Channel, PersonIdentity), ApiError> {
        let mut p = Problems::default();
        if self.names.is_empty() {
            p.add("names", "at least one name is required");
        }
        for (i, n) in self.names.iter().enumerate() {
            if !matches!(n.kind.as_str(), "as_in_document" | "as_used" | "alias") {
                p.add(
                    format!("names[{i}].kind"),
                    "must be as_in_document, as_used or alias",
                );
            }
            p.text(&format!("names[{i}].text"), Some(&n.text), 200);
        }
        if let Some(b) = &self.birth_date
            && let Err(message) = check_partial_date(b)
        {
            p.add("birth_date", message);
        }
        if let Some(c) = &self.country_of_birth
            && !is_country(c)
        {
            p.add(
                "country_of_birth",
                "must be an ISO 3166-1 alpha-2 code, e.g. NG",
            );
        }
        for (i, c) in self.citizenships.iter().enumerate() {
            if !is_country(c) {
                p.add(
                    format!("citizenships[{i}]"),
                    "must be an ISO 3166-1 alpha-2 code, e.g. NG",
                );
            }
        }
        for (i, l) in self.languages.iter().enumerate() {
            if !is_language_code(&l.code) {
                p.add(
                    format!("languages[{i}].code"),
                    "must be an ISO 639-1 code: two lowercase letters",
                );
            }
        }
        p.text("contacts.phone", self.contacts.phone.as_deref(), 40);
        p.text("contacts.email", self.contacts.email.as_deref(), 200);
        p.text("contacts.address", self.contacts.address.as_deref(), 300);
        if let Some(e) = &self.contacts.email
            && !e.contains('@')
        {
            p.add("contacts.email", "must be an email address");
        }
        for (i, d) in self.documents.iter().enumerate() {
            if !DOCUMENT_KINDS.contains(&d.kind.as_str()) {
                p.add(
                    format!("documents[{i}].kind"),
                    format!("must be one of {}", DOCUMENT_KINDS.join(", ")),
                );
            }
            p.text(&format!("documents[{i}].number"), Some(&d.number), 60);
            if let Some(c) = &d.issuing_country
                && !is_country(c)
            {
                p.add(
                    format!("documents[{i}].issuing_country"),
                    "must be an ISO 3166-1 alpha-2 code",
                );
            }
            if let Some(x) = &d.expires_on
                && (x.len() != 10 || check_partial_date(x).is_err())
            {
                p.add(
                    format!("documents[{i}].expires_on"),
                    "must be a date YYYY-MM-DD",
                );
            }
        }
        p.finish()?;
        let mut languages = self.languages;
        languages.dedup_by(|a, b| a.code == b.code);
        Ok((
            self.channel,
            PersonIdentity {
                names: self
                    .names
                    .into_iter()
                    .map(|n| PersonName {
                        kind: n.kind,
                        text: n.text.trim().to_owned(),
                    })
                    .collect(),
                birth_date: self.birth_date,
                sex: self.sex,
                country_of_birth: self.country_of_birth,
                citizenships: self.citizenships,
                languages,
                contacts: self.contacts,
                documents: self.documents,
                vulnerabilities: self.vulnerabilities,
            },
        ))
    }
}

/// The languages of an identity at a proficiency one can work in.
pub fn working_languages(identity: &PersonIdentity) -> Vec<String> {
    identity
        .languages
        .iter()
        .filter(|l| matches!(l.proficiency, Proficiency::Native | Proficiency::Fluent))
        .map(|l| l.code.clone())
        .collect()
}
