//! The taxonomy of needs the desk screens (tassonomia delle esigenze),
//! versioned and shipped with the code.
//!
//! Every screened need, every service a provider offers and every referral
//! names a *need category* by its code. The taxonomy is a two-level tree:
//! top-level [`Area`]s (residence permit, health, employment, ...) and, under
//! each, the [`NeedCategory`]s an operator picks from. A category may belong
//! to a [`Sector`] (legal, labour market, health), the sectors the registry
//! of professionals is organised by. Each area and category has an Italian
//! and an English label; other languages of the public guide are translated
//! from these elsewhere.
//!
//! # How codes evolve
//!
//! Codes are stored in events, which are never rewritten, so a code is a
//! published contract:
//!
//! - a code is stable snake_case and is **never renamed and never reused**
//!   for a different meaning; labels may be reworded freely;
//! - a category that is no longer offered is **retired**, not deleted: it
//!   stays in the table with [`Retired`] (the version that retired it and
//!   the codes that replace it), so old events still parse and display;
//!   new screenings should pick a current code;
//! - [`TAXONOMY_VERSION`] is bumped (`year.n`) whenever a category is added,
//!   retired or relabelled.
//!
//! A [`NeedCode`] can only be built by parsing against this table, so a
//! code held by the program is always a known one.

use Area as A;
use schemars::{JsonSchema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::borrow::Cow;
use std::fmt;

/// The version of the taxonomy compiled into this build.
pub const TAXONOMY_VERSION: &str = "2026.1";

/// A sector of expertise; professionals of the registry are expert in one or more.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Sector {
    /// Legal (settore legale).
    Legal,
    /// Labour market (mercato del lavoro).
    Labour,
    /// Health (settore sanitario).
    Health,
}

/// How urgent a screened need is; ordered from `low` to `immediate`.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Can wait for the ordinary course of the network.
    Low,
    /// The ordinary case.
    #[default]
    Normal,
    /// To be dealt with quickly (for example a permit about to expire).
    High,
    /// Rapid response (pronto intervento): danger or a deadline within hours.
    Immediate,
}

/// A top-level area of the taxonomy.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Area {
    /// Residence permit (permesso di soggiorno).
    ResidencePermit,
    /// International protection (protezione internazionale).
    InternationalProtection,
    /// Family reunification (ricongiungimento familiare).
    FamilyReunification,
    /// Citizenship (cittadinanza).
    Citizenship,
    /// Civil registration and residence (anagrafe e stato civile).
    CivilRegistration,
    /// Health (salute).
    Health,
    /// Employment and training (lavoro e formazione).
    Employment,
    /// Labour rights (diritti dei lavoratori).
    LabourRights,
    /// Housing (casa).
    Housing,
    /// Education: children's schooling, adult Italian courses (istruzione).
    Education,
    /// Legal assistance (assistenza legale).
    LegalAssistance,
    /// Social benefits (prestazioni sociali).
    SocialBenefits,
    /// Violence and trafficking (violenza e tratta).
    ViolenceTrafficking,
    /// Interpreting and mediation (interpretariato e mediazione).
    LanguageSupport,
}

impl Area {
    /// Every area, in display order.
    #[rustfmt::skip]
    pub const ALL: [Area; 14] = [
        Area::ResidencePermit, Area::InternationalProtection, Area::FamilyReunification,
        Area::Citizenship, Area::CivilRegistration, Area::Health, Area::Employment,
        Area::LabourRights, Area::Housing, Area::Education, Area::LegalAssistance,
        Area::SocialBenefits, Area::ViolenceTrafficking, Area::LanguageSupport,
    ];

    #[rustfmt::skip]
    const fn entry(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Area::ResidencePermit => ("residence_permit", "Permesso di soggiorno", "Residence permit"),
            Area::InternationalProtection => ("international_protection", "Protezione internazionale", "International protection"),
            Area::FamilyReunification => ("family_reunification", "Ricongiungimento familiare", "Family reunification"),
            Area::Citizenship => ("citizenship", "Cittadinanza", "Citizenship"),
            Area::CivilRegistration => ("civil_registration", "Anagrafe e stato civile", "Civil registration and residence"),
            Area::Health => ("health", "Salute", "Health"),
            Area::Employment => ("employment", "Lavoro e formazione", "Employment and training"),
            Area::LabourRights => ("labour_rights", "Diritti dei lavoratori", "Labour rights"),
            Area::Housing => ("housing", "Casa", "Housing"),
            Area::Education => ("education", "Istruzione e lingua italiana", "Education and Italian language"),
            Area::LegalAssistance => ("legal_assistance", "Assistenza legale", "Legal assistance"),
            Area::SocialBenefits => ("social_benefits", "Prestazioni sociali", "Social benefits"),
            Area::ViolenceTrafficking => ("violence_trafficking", "Violenza e tratta", "Violence and trafficking"),
            Area::LanguageSupport => ("language_support", "Interpretariato e mediazione", "Interpreting and mediation"),
        }
    }

    /// The stable snake_case code (the same string serde writes).
    pub const fn code(self) -> &'static str {
        self.entry().0
    }

    /// The Italian label.
    pub const fn label_it(self) -> &'static str {
        self.entry().1
    }

    /// The English label.
    pub const fn label_en(self) -> &'static str {
        self.entry().2
    }

    /// The categories of this area (current and retired), in table order.
    pub fn categories(self) -> impl Iterator<Item = &'static NeedCategory> {
        CATEGORIES.iter().filter(move |c| c.area == self)
    }
}

/// Marks a retired category: kept so old events parse, not to be used for new needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Retired {
    /// The taxonomy version that retired it.
    pub since: &'static str,
    /// The current codes that replace it.
    pub replaced_by: &'static [&'static str],
}

/// One need category: a leaf of the taxonomy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[non_exhaustive]
pub struct NeedCategory {
    /// Stable snake_case code, never renamed or reused.
    pub code: &'static str,
    /// The area it belongs to.
    pub area: Area,
    /// The sector of professionals that answers it, where one applies.
    pub sector: Option<Sector>,
    /// The Italian label.
    pub label_it: &'static str,
    /// The English label.
    pub label_en: &'static str,
    /// Set when the category is retired.
    pub retired: Option<Retired>,
}

impl NeedCategory {
    /// Whether the category is retired (still valid in old events, not for new needs).
    pub const fn is_retired(&self) -> bool {
        self.retired.is_some()
    }
}

const L: Option<Sector> = Some(Sector::Legal);
const W: Option<Sector> = Some(Sector::Labour);
const H: Option<Sector> = Some(Sector::Health);
const NO: Option<Sector> = None;

#[rustfmt::skip]
const fn cat(area: Area, code: &'static str, sector: Option<Sector>, label_it: &'static str, label_en: &'static str) -> NeedCategory {
    NeedCategory { code, area, sector, label_it, label_en, retired: None }
}

#[rustfmt::skip]
#[cfg_attr(
    not(test),
    expect(dead_code, reason = "nothing is retired in 2026.1; this is how a later version retires a category")
)]
const fn retired(mut c: NeedCategory, since: &'static str, replaced_by: &'static [&'static str]) -> NeedCategory {
    c.retired = Some(Retired { since, replaced_by });
    c
}

#[rustfmt::skip]
static CATEGORIES: &[NeedCategory] = &[
    cat(A::ResidencePermit, "residence_permit_issue", L, "Rilascio del permesso di soggiorno", "Residence permit: first issue"),
    cat(A::ResidencePermit, "residence_permit_renewal", L, "Rinnovo del permesso di soggiorno", "Residence permit: renewal"),
    cat(A::ResidencePermit, "residence_permit_conversion", L, "Conversione del permesso di soggiorno", "Residence permit: conversion"),
    cat(A::ResidencePermit, "residence_permit_long_term", L, "Permesso UE per soggiornanti di lungo periodo", "EU long-term residence permit"),
    cat(A::InternationalProtection, "asylum_application", L, "Domanda di protezione internazionale", "Application for international protection"),
    cat(A::InternationalProtection, "asylum_appeal", L, "Ricorso contro il diniego di protezione", "Appeal against refusal of protection"),
    cat(A::InternationalProtection, "reception_system", NO, "Accoglienza (SAI, CAS)", "Reception system (SAI, CAS)"),
    cat(A::FamilyReunification, "family_reunification_clearance", L, "Nulla osta al ricongiungimento familiare", "Family reunification clearance"),
    cat(A::FamilyReunification, "family_permit", L, "Permesso per motivi familiari", "Residence permit for family reasons"),
    cat(A::Citizenship, "citizenship_residence", L, "Cittadinanza per residenza", "Citizenship by residence"),
    cat(A::Citizenship, "citizenship_marriage", L, "Cittadinanza per matrimonio", "Citizenship by marriage"),
    cat(A::CivilRegistration, "registry_residence", NO, "Iscrizione anagrafica e cambio di residenza", "Registration of residence"),
    cat(A::CivilRegistration, "civil_status_records", NO, "Atti di stato civile (nascita, matrimonio)", "Civil status records (birth, marriage)"),
    cat(A::CivilRegistration, "identity_card", NO, "Carta d'identità", "Identity card"),
    cat(A::CivilRegistration, "tax_code", NO, "Codice fiscale", "Tax code"),
    cat(A::Health, "health_ssn_registration", H, "Iscrizione al Servizio sanitario nazionale", "Registration with the national health service (SSN)"),
    cat(A::Health, "health_stp_code", H, "Codice STP (straniero temporaneamente presente)", "STP code (temporarily present foreigner)"),
    cat(A::Health, "health_eni_code", H, "Codice ENI (europeo non iscritto)", "ENI code (unregistered EU citizen)"),
    cat(A::Health, "health_maternal_child", H, "Percorso nascita e salute materno-infantile", "Maternal and child care"),
    cat(A::Health, "health_mental", H, "Salute mentale e sostegno psicologico", "Mental health and psychological support"),
    cat(A::Employment, "job_search", W, "Ricerca di lavoro", "Job search"),
    cat(A::Employment, "job_centre_registration", W, "Iscrizione al Centro per l'impiego", "Job-centre registration"),
    cat(A::Employment, "vocational_training", W, "Formazione professionale", "Vocational training"),
    cat(A::Employment, "qualification_recognition", W, "Riconoscimento di titoli di studio e qualifiche", "Recognition of qualifications"),
    cat(A::LabourRights, "labour_dispute", W, "Vertenza di lavoro (contratto, retribuzione)", "Labour dispute (contract, pay)"),
    cat(A::LabourRights, "labour_exploitation", W, "Sfruttamento lavorativo e caporalato", "Labour exploitation and gangmastering"),
    cat(A::LabourRights, "workplace_safety", W, "Sicurezza sul lavoro e infortuni", "Workplace safety and injuries"),
    cat(A::Housing, "housing_search", NO, "Ricerca di alloggio", "Finding a home"),
    cat(A::Housing, "social_housing", NO, "Edilizia residenziale pubblica", "Social housing"),
    cat(A::Housing, "housing_emergency", L, "Sfratto ed emergenza abitativa", "Eviction and housing emergency"),
    cat(A::Housing, "housing_suitability", NO, "Certificato di idoneità alloggiativa", "Housing suitability certificate"),
    cat(A::Education, "school_enrolment", NO, "Iscrizione scolastica dei figli", "School enrolment of children"),
    cat(A::Education, "school_support", NO, "Inserimento e sostegno scolastico", "School integration and support"),
    cat(A::Education, "italian_course_adults", NO, "Corsi di italiano per adulti (CPIA)", "Italian courses for adults (CPIA)"),
    cat(A::LegalAssistance, "legal_advice", L, "Consulenza legale", "Legal advice"),
    cat(A::LegalAssistance, "legal_aid", L, "Patrocinio a spese dello Stato", "Legal aid"),
    cat(A::LegalAssistance, "expulsion_detention", L, "Espulsione e trattenimento", "Expulsion and detention"),
    cat(A::SocialBenefits, "child_benefit", NO, "Assegno unico e universale per i figli", "Universal child benefit"),
    cat(A::SocialBenefits, "inclusion_allowance", NO, "Assegno di inclusione", "Inclusion allowance"),
    cat(A::SocialBenefits, "municipal_support", NO, "Contributi economici comunali", "Municipal financial support"),
    cat(A::ViolenceTrafficking, "gender_violence", L, "Violenza di genere e domestica", "Gender-based and domestic violence"),
    cat(A::ViolenceTrafficking, "trafficking", L, "Tratta di esseri umani", "Human trafficking"),
    cat(A::LanguageSupport, "interpreting", NO, "Interpretariato", "Interpreting"),
    cat(A::LanguageSupport, "intercultural_mediation", NO, "Mediazione interculturale", "Intercultural mediation"),
    cat(A::LanguageSupport, "document_translation", NO, "Traduzione di documenti", "Document translation"),
];

/// Every category of the taxonomy, current and retired, grouped by area.
pub fn all() -> &'static [NeedCategory] {
    CATEGORIES
}

/// The category with this code, current or retired.
pub fn lookup(code: &str) -> Option<&'static NeedCategory> {
    CATEGORIES.iter().find(|c| c.code == code)
}

/// The area a need belongs to.
pub fn area_of(code: &NeedCode) -> Area {
    code.0.area
}

/// The sector of professionals for a need, where one applies.
pub fn sector_of(code: &NeedCode) -> Option<Sector> {
    code.0.sector
}

/// A code was not found in the taxonomy.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown need category `{code}` (not in needs taxonomy {version})", version = TAXONOMY_VERSION)]
pub struct UnknownNeed {
    /// The refused code (cut at 80 characters).
    pub code: String,
}

/// The code of a need category, known to be in the taxonomy (it may be retired).
/// Codes compare and order by their string. (Cheap to clone: a reference into the table.)
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NeedCode(&'static NeedCategory);

impl NeedCode {
    /// Parses a code against the taxonomy; retired codes are accepted.
    pub fn parse(code: &str) -> Result<NeedCode, UnknownNeed> {
        lookup(code).map(NeedCode).ok_or_else(|| UnknownNeed {
            code: code.chars().take(80).collect(),
        })
    }

    /// The code as a string.
    pub fn as_str(&self) -> &'static str {
        self.0.code
    }

    /// The category this code names.
    pub fn category(&self) -> &'static NeedCategory {
        self.0
    }

    /// Whether the category is retired.
    pub fn is_retired(&self) -> bool {
        self.0.is_retired()
    }
}

impl fmt::Debug for NeedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NeedCode({:?})", self.as_str())
    }
}

impl fmt::Display for NeedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl AsRef<str> for NeedCode {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl std::str::FromStr for NeedCode {
    type Err = UnknownNeed;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        NeedCode::parse(s)
    }
}

impl Serialize for NeedCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for NeedCode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = Cow::<'de, str>::deserialize(deserializer)?;
        NeedCode::parse(&s).map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for NeedCode {
    fn schema_name() -> Cow<'static, str> {
        "NeedCode".into()
    }

    fn json_schema(_: &mut SchemaGenerator) -> schemars::Schema {
        let codes: Vec<&str> = CATEGORIES.iter().map(|c| c.code).collect();
        json_schema!({
            "type": "string",
            "description": format!("A need category of the needs taxonomy {TAXONOMY_VERSION} (retired codes included)."),
            "enum": codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashSet;

    fn is_snake(s: &str) -> bool {
        !s.is_empty()
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && !s.ends_with('_')
            && !s.contains("__")
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    }

    #[test]
    fn codes_are_unique_snake_case_and_labelled() {
        let mut seen = HashSet::new();
        for c in all() {
            assert!(seen.insert(c.code), "duplicate code {}", c.code);
            assert!(is_snake(c.code), "not snake_case: {}", c.code);
            assert!(
                !c.label_it.trim().is_empty(),
                "{} lacks an Italian label",
                c.code
            );
            assert!(
                !c.label_en.trim().is_empty(),
                "{} lacks an English label",
                c.code
            );
        }
        let mut areas = HashSet::new();
        for a in Area::ALL {
            assert!(areas.insert(a.code()) && is_snake(a.code()));
            assert!(!a.label_it().is_empty() && !a.label_en().is_empty());
            assert_eq!(serde_json::to_value(a).unwrap(), a.code());
            assert!(
                a.categories().any(|c| !c.is_retired()),
                "{a:?} has no current category"
            );
        }
    }

    #[test]
    fn every_code_parses_and_round_trips() {
        for c in all() {
            let code = NeedCode::parse(c.code).unwrap();
            assert_eq!(code.as_str(), c.code);
            assert_eq!(code.to_string().parse::<NeedCode>().unwrap(), code);
            assert_eq!(area_of(&code), c.area);
            assert_eq!(sector_of(&code), c.sector);
            assert_eq!(lookup(c.code), Some(c));
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", c.code));
            assert_eq!(serde_json::from_str::<NeedCode>(&json).unwrap(), code);
        }
    }

    #[test]
    fn unknown_codes_are_refused_naming_them() {
        let err = NeedCode::parse("residence_permit_renewall").unwrap_err();
        assert_eq!(err.code, "residence_permit_renewall");
        let msg = err.to_string();
        assert!(
            msg.contains("`residence_permit_renewall`") && msg.contains(TAXONOMY_VERSION),
            "{msg}"
        );
        assert!(NeedCode::parse("").is_err());
        assert!(NeedCode::parse("Job_Search").is_err());
        let de = serde_json::from_str::<NeedCode>("\"no_such_need\"").unwrap_err();
        assert!(de.to_string().contains("no_such_need"), "{de}");
        assert!(serde_json::from_str::<NeedCode>("42").is_err());
        assert_eq!(
            NeedCode::parse(&"x".repeat(10_000)).unwrap_err().code.len(),
            80
        );
    }

    #[test]
    fn required_categories_exist() {
        #[rustfmt::skip]
        let expect = [
            ("residence_permit_issue", Area::ResidencePermit, L), ("residence_permit_renewal", Area::ResidencePermit, L),
            ("residence_permit_conversion", Area::ResidencePermit, L), ("asylum_application", Area::InternationalProtection, L),
            ("family_reunification_clearance", Area::FamilyReunification, L), ("citizenship_residence", Area::Citizenship, L),
            ("registry_residence", Area::CivilRegistration, NO), ("health_ssn_registration", Area::Health, H),
            ("health_stp_code", Area::Health, H), ("health_eni_code", Area::Health, H),
            ("health_maternal_child", Area::Health, H), ("job_search", Area::Employment, W),
            ("job_centre_registration", Area::Employment, W), ("vocational_training", Area::Employment, W),
            ("qualification_recognition", Area::Employment, W), ("labour_dispute", Area::LabourRights, W),
            ("housing_search", Area::Housing, NO), ("school_enrolment", Area::Education, NO),
            ("italian_course_adults", Area::Education, NO), ("legal_advice", Area::LegalAssistance, L),
            ("inclusion_allowance", Area::SocialBenefits, NO), ("gender_violence", Area::ViolenceTrafficking, L),
            ("trafficking", Area::ViolenceTrafficking, L), ("interpreting", Area::LanguageSupport, NO),
            ("intercultural_mediation", Area::LanguageSupport, NO),
        ];
        for (code, area, sector) in expect {
            let c = NeedCode::parse(code).unwrap();
            assert!(!c.is_retired(), "{code} retired");
            assert_eq!((area_of(&c), sector_of(&c)), (area, sector), "{code}");
        }
        for s in [Sector::Legal, Sector::Labour, Sector::Health] {
            assert!(all().iter().any(|c| c.sector == Some(s)));
        }
    }

    /// Version 2026.1 is the first: nothing is retired yet. Retiring marks
    /// a category and names its replacements, which must be current.
    #[test]
    fn retirement_marks_a_category_and_names_current_replacements() {
        let old = retired(
            cat(
                Area::Health,
                "health_old_example",
                Some(Sector::Health),
                "Esempio",
                "Example",
            ),
            "2027.1",
            &["health_stp_code", "health_eni_code"],
        );
        assert!(old.is_retired());
        assert_eq!(old.retired.unwrap().since, "2027.1");
        for c in all().iter().chain([&old]) {
            if let Some(r) = c.retired {
                assert!(!r.since.is_empty() && !r.replaced_by.is_empty());
                for new in r.replaced_by {
                    let n = lookup(new)
                        .unwrap_or_else(|| panic!("{} replaced by unknown {new}", c.code));
                    assert!(!n.is_retired(), "{} replaced by retired {new}", c.code);
                }
            }
        }
    }

    #[test]
    fn schemas() {
        let s = serde_json::to_value(schemars::schema_for!(NeedCode)).unwrap();
        assert_eq!(s["type"], "string");
        let codes = s["enum"].as_array().unwrap();
        assert_eq!(codes.len(), all().len());
        assert!(codes.contains(&"health_stp_code".into()));
        let u = serde_json::to_value(schemars::schema_for!(Urgency)).unwrap();
        assert!(u.to_string().contains("immediate"));
        assert_eq!(
            serde_json::to_value(Urgency::Immediate).unwrap(),
            "immediate"
        );
        assert!(serde_json::from_str::<Urgency>("\"urgent\"").is_err());
        assert!(Urgency::Low < Urgency::Normal && Urgency::High < Urgency::Immediate);
        assert_eq!(Urgency::default(), Urgency::Normal);
        assert_eq!(serde_json::to_value(Sector::Labour).unwrap(), "labour");
    }

    proptest! {
        #[test]
        fn parse_agrees_with_lookup(s in "[a-z_]{0,30}|\\PC{0,20}") {
            match NeedCode::parse(&s) {
                Ok(c) => prop_assert_eq!(c.as_str(), s.as_str()),
                Err(e) => {
                    prop_assert!(lookup(&s).is_none());
                    prop_assert_eq!(e.code, s);
                }
            }
        }
    }
}
