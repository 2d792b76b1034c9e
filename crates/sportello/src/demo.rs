//! `sportello demo`: the demo network of the Comune di Potenza, with
//! fictitious people only. The desk and the public and private bodies of
//! Potenza around it (by their real names; only the desk's own address
//! and phone are given, the others' contacts say the city only), their
//! services, hours and agreements; a desk operator, a coordinator, an
//! administrator and a partner account per provider; and about six months
//! of fictitious cases and referrals from [`crate::simulate`], so every
//! report, inbox and card has real shapes. The four patronati of Potenza
//! (INCA CGIL, INAS CISL, ACLI, ITAL UIL) answer permits' paperwork, the
//! job centre's and benefits, so a need the job centre declines can go to
//! a patronato; [story] tells that redirect, completed, in every demo. One
//! provider (ATER, social housing) is still onboarding, without an
//! agreement, so matching shows an unavailable service; nobody in the
//! network offers `housing_search`, so unmet needs show. The [registry]
//! of fictitious professionals, with deliberate gaps, and six months of
//! [activations] of them; a demo professional's account bound to one
//! entry.
//!
//! Ids are fixed: loading twice adds nothing (organisations that exist are
//! read back, people are loaded only into a network without cases, the
//! registry and its activations only into one without professionals). It
//! must never load anything but fictitious people: every name starts with
//! `Demo `.

mod activations;
mod registry;
mod story;

use crate::simulate::{self, HistoryAppend, Network, Provider, StreamHistory};
use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde_json::json;
use sportello_domain::aggregate::{Aggregate, OrganizationAggregate};
use sportello_domain::calendar::WorkingCalendar;
use sportello_domain::case::{PersonIdentity, PersonTakenInCharge, STREAM_KIND, search};
use sportello_domain::ids::AgreementId;
use sportello_domain::organization::{
    Agreement, CardField, Contacts, OnboardingStatus, Organization, OrganizationCommand,
    OrganizationKind, Ownership, Service, WeeklyHours,
};
use sportello_domain::referral;
use sportello_domain::taxonomy::NeedCode;
use sportello_domain::{
    AccountId, DomainError, Metadata, NetworkId, OrganizationId, PersonId, ServiceId, StreamId,
};
use sportello_http::Settings;
use sportello_http::access::role;
use sportello_http::auth::{insert_account, issue_token};
use sportello_store::{AppendRequest, EventStore, Keyring, db};
use std::path::Path;
use time::macros::time;
use time::{Duration, OffsetDateTime, Time, Weekday};
use uuid::Uuid;

const fn demo_id(n: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n)
}

/// The demo network's id: fixed, so the demo loads once.
pub const DEMO_NETWORK: Uuid = demo_id(0x0001);
/// The desk of the Comune di Potenza in the demo.
pub const DEMO_DESK: Uuid = demo_id(0x0d05);
/// The demo desk operator's account.
pub const DEMO_OPERATOR: Uuid = demo_id(0x0a01);
/// The demo coordinator's account (coordination team, on the desk).
pub const DEMO_COORDINATOR: Uuid = demo_id(0x0a02);
/// The demo administrator's account.
pub const DEMO_ADMIN: Uuid = demo_id(0x0a03);
/// The demo desk supervisor's account (records legal bases).
pub const DEMO_SUPERVISOR: Uuid = demo_id(0x0a04);
/// The account the demo's automatic activation events are recorded under
/// (an offer expiring, the next offer after a decline or an expiry, a
/// missed deadline), for the desk: the activation scheduler's own account
/// id. It is an id only — no account row, nobody signs in with it.
pub const DEMO_SCHEDULER: Uuid = sportello_http::activation::SCHEDULER_ACCOUNT.0;
/// The demo professional's account (an interpreter of the registry, bound
/// to [`registry::DEMO_PROFESSIONAL_ENTRY`]).
pub const DEMO_PROFESSIONAL: Uuid = demo_id(0x0a06);

/// The seed of the demo's people (and of its organisations' event ids).
const SEED: u64 = 0x5e0d_2026;
/// How many fictitious people are generated ([`story`] adds one more).
const PEOPLE: u64 = 200;
/// Over how many days before now they came.
const WINDOW_DAYS: i64 = 183;
/// How many days before now the network was set up (before the window).
const SETUP_DAYS: i64 = 200;
/// How many people are written at once.
const WRITERS: usize = 8;

const DESK_NAME: &str = "Comune di Potenza — Sportello Servizi per l'immigrazione";

const MON_FRI: &[Weekday] = &[
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
    Weekday::Friday,
];
const TUE_THU: &[Weekday] = &[Weekday::Tuesday, Weekday::Thursday];
const MON_WED_FRI: &[Weekday] = &[Weekday::Monday, Weekday::Wednesday, Weekday::Friday];

/// Weekly hours: days, opening, closing.
type Hours = &'static [(&'static [Weekday], Time, Time)];

/// A service of the demo.
struct ServiceSpec {
    id: u128,
    name: &'static str,
    needs: &'static [&'static str],
    languages: &'static [&'static str],
    interpretation: bool,
    eligibility: &'static str,
    hours: Hours,
}

/// An agreement of the demo: working days to acknowledge and to first
/// contact, and the card fields the provider sees.
struct AgreementSpec {
    id: u128,
    acknowledge_within: u8,
    first_contact_within: u8,
    visible: &'static [CardField],
}

/// An organisation of the demo (`partner`: its partner account).
struct OrgSpec {
    id: u128,
    partner: u128,
    name: &'static str,
    kind: OrganizationKind,
    ownership: Ownership,
    services: &'static [ServiceSpec],
    agreement: Option<AgreementSpec>,
}

/// The desk's real weekly hours.
const DESK_HOURS: Hours = &[
    (
        &[Weekday::Wednesday, Weekday::Thursday, Weekday::Friday],
        time!(8:30),
        time!(12:00),
    ),
    (&[Weekday::Thursday], time!(16:30), time!(18:00)),
];

const DESK_SERVICES: &[ServiceSpec] = &[ServiceSpec {
    id: 0x0005_0d01,
    name: "Accoglienza, informazione e orientamento; mediazione interculturale e interpretariato",
    needs: &["intercultural_mediation", "interpreting"],
    languages: &["it", "en", "fr", "ar"],
    interpretation: true,
    eligibility: "Cittadini stranieri presenti nel territorio del Comune di Potenza",
    hours: DESK_HOURS,
}];

use CardField as F;

/// The providers. Contacts are the city only: we know no more of them.
#[rustfmt::skip]
const PROVIDERS: &[OrgSpec] = &[
    OrgSpec {
        id: 0x0e01, partner: 0x0b01, name: "Questura di Potenza — Ufficio Immigrazione",
        kind: OrganizationKind::Questura, ownership: Ownership::Public,
        services: &[
            ServiceSpec { id: 0x0005_5101, name: "Permessi di soggiorno: rilascio, rinnovo e conversione",
                needs: &["residence_permit_issue", "residence_permit_renewal", "residence_permit_conversion", "residence_permit_long_term", "family_permit"],
                languages: &["it", "en"], interpretation: false,
                eligibility: "Cittadini di paesi non UE, su appuntamento o con ricevuta del kit postale",
                hours: &[(MON_FRI, time!(8:30), time!(12:30)), (TUE_THU, time!(15:00), time!(17:00))] },
            ServiceSpec { id: 0x0005_5102, name: "Domande di protezione internazionale",
                needs: &["asylum_application"], languages: &["it", "en", "fr"], interpretation: true,
                eligibility: "Persone che chiedono protezione internazionale",
                hours: &[(MON_WED_FRI, time!(8:30), time!(12:30))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_0001, acknowledge_within: 5, first_contact_within: 10,
            visible: &[F::Names, F::BirthDate, F::Citizenship, F::Documents] }),
    },
    OrgSpec {
        id: 0x0e02, partner: 0x0b02, name: "Prefettura di Potenza — Sportello Unico per l'Immigrazione",
        kind: OrganizationKind::Prefettura, ownership: Ownership::Public,
        services: &[
            ServiceSpec { id: 0x0005_5201, name: "Nulla osta al ricongiungimento familiare",
                needs: &["family_reunification_clearance"], languages: &["it", "en"], interpretation: false,
                eligibility: "Cittadini stranieri regolarmente soggiornanti",
                hours: &[(MON_FRI, time!(9:00), time!(12:00))] },
            ServiceSpec { id: 0x0005_5202, name: "Cittadinanza italiana: istruttoria delle domande",
                needs: &["citizenship_residence", "citizenship_marriage"], languages: &["it"], interpretation: false,
                eligibility: "Chi ha presentato domanda di cittadinanza",
                hours: &[(TUE_THU, time!(9:00), time!(12:00))] },
            ServiceSpec { id: 0x0005_5203, name: "Accoglienza dei richiedenti asilo (CAS)",
                needs: &["reception_system"], languages: &["it", "en", "fr"], interpretation: true,
                eligibility: "Richiedenti protezione internazionale privi di mezzi",
                hours: &[(MON_FRI, time!(9:00), time!(13:00))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_0002, acknowledge_within: 5, first_contact_within: 10,
            visible: &[F::Names, F::BirthDate, F::Citizenship, F::Contacts, F::Documents] }),
    },
    OrgSpec {
        id: 0x0e03, partner: 0x0b03, name: "Azienda Sanitaria Locale di Potenza (ASP Basilicata)",
        kind: OrganizationKind::HealthAuthority, ownership: Ownership::Public,
        services: &[
            ServiceSpec { id: 0x0005_5301, name: "Anagrafe sanitaria: iscrizione al SSN e scelta del medico",
                needs: &["health_ssn_registration"], languages: &["it", "en", "fr"], interpretation: false,
                eligibility: "Cittadini stranieri con permesso di soggiorno o in attesa di rinnovo",
                hours: &[(MON_FRI, time!(8:30), time!(12:30)), (&[Weekday::Tuesday], time!(15:00), time!(17:00))] },
            ServiceSpec { id: 0x0005_5302, name: "Ambulatorio per stranieri STP/ENI",
                needs: &["health_stp_code", "health_eni_code"], languages: &["it", "en", "fr", "ar"], interpretation: true,
                eligibility: "Stranieri temporaneamente presenti e cittadini UE non iscritti al SSN",
                hours: &[(TUE_THU, time!(9:00), time!(12:00))] },
            ServiceSpec { id: 0x0005_5303, name: "Consultorio familiare",
                needs: &["health_maternal_child"], languages: &["it", "en"], interpretation: false,
                eligibility: "Donne, coppie e famiglie",
                hours: &[(MON_FRI, time!(8:30), time!(13:00))] },
            ServiceSpec { id: 0x0005_5304, name: "Centro di salute mentale",
                needs: &["health_mental"], languages: &["it"], interpretation: false,
                eligibility: "Adulti residenti o domiciliati nel distretto",
                hours: &[(MON_FRI, time!(8:00), time!(14:00))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_0003, acknowledge_within: 2, first_contact_within: 5,
            visible: &[F::Names, F::BirthDate, F::Languages, F::Needs] }),
    },
    OrgSpec {
        id: 0x0e04, partner: 0x0b04, name: "Centro per l'Impiego di Potenza",
        kind: OrganizationKind::JobCentre, ownership: Ownership::Public,
        services: &[
            ServiceSpec { id: 0x0005_5401, name: "Iscrizione, DID e patto di servizio",
                needs: &["job_centre_registration"], languages: &["it", "en"], interpretation: false,
                eligibility: "Persone in età lavorativa, disoccupate o in cerca di lavoro",
                hours: &[(MON_FRI, time!(9:00), time!(12:00)), (TUE_THU, time!(15:00), time!(16:30))] },
            ServiceSpec { id: 0x0005_5402, name: "Orientamento al lavoro e incrocio domanda-offerta",
                needs: &["job_search", "vocational_training"], languages: &["it", "en"], interpretation: false,
                eligibility: "Iscritti al Centro per l'Impiego",
                hours: &[(MON_FRI, time!(9:00), time!(12:00))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_0004, acknowledge_within: 3, first_contact_within: 7,
            visible: &[F::Names, F::BirthDate, F::Languages, F::Contacts, F::Needs] }),
    },
    OrgSpec {
        id: 0x0e05, partner: 0x0b05, name: "Ufficio Scolastico Regionale per la Basilicata",
        kind: OrganizationKind::SchoolOffice, ownership: Ownership::Public,
        services: &[
            ServiceSpec { id: 0x0005_5501, name: "Inserimento scolastico degli alunni stranieri",
                needs: &["school_enrolment", "school_support"], languages: &["it"], interpretation: false,
                eligibility: "Minori in età scolare e le loro famiglie",
                hours: &[(MON_FRI, time!(9:00), time!(12:00))] },
            ServiceSpec { id: 0x0005_5502, name: "Riconoscimento dei titoli di studio esteri",
                needs: &["qualification_recognition"], languages: &["it"], interpretation: false,
                eligibility: "Titolari di un titolo di studio conseguito all'estero",
                hours: &[(TUE_THU, time!(9:00), time!(12:00))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_0005, acknowledge_within: 3, first_contact_within: 10,
            visible: &[F::Names, F::BirthDate, F::Languages, F::Needs] }),
    },
    OrgSpec {
        id: 0x0e06, partner: 0x0b06, name: "CPIA di Potenza",
        kind: OrganizationKind::SchoolOffice, ownership: Ownership::Public,
        services: &[
            ServiceSpec { id: 0x0005_5601, name: "Corsi di lingua italiana (A1-B1) e test A2",
                needs: &["italian_course_adults"], languages: &["it", "en", "fr", "ar"], interpretation: false,
                eligibility: "Adulti stranieri dai 16 anni",
                hours: &[(MON_FRI, time!(9:00), time!(13:00)),
                    (&[Weekday::Monday, Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday], time!(15:00), time!(19:00))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_0006, acknowledge_within: 2, first_contact_within: 5,
            visible: &[F::Names, F::Languages, F::Contacts] }),
    },
    OrgSpec {
        id: 0x0e07, partner: 0x0b07, name: "Comune di Potenza — Ufficio Anagrafe",
        kind: OrganizationKind::ComuneOffice, ownership: Ownership::Public,
        services: &[
            ServiceSpec { id: 0x0005_5701, name: "Iscrizione anagrafica e cambio di residenza",
                needs: &["registry_residence"], languages: &["it"], interpretation: false,
                eligibility: "Chi dimora abitualmente nel Comune di Potenza",
                hours: &[(MON_FRI, time!(9:00), time!(12:00)), (&[Weekday::Thursday], time!(15:30), time!(17:30))] },
            ServiceSpec { id: 0x0005_5702, name: "Carta d'identità elettronica",
                needs: &["identity_card"], languages: &["it"], interpretation: false,
                eligibility: "Residenti nel Comune di Potenza",
                hours: &[(MON_FRI, time!(8:30), time!(12:30))] },
            ServiceSpec { id: 0x0005_5703, name: "Stato civile: nascite, matrimoni, trascrizioni",
                needs: &["civil_status_records"], languages: &["it"], interpretation: false,
                eligibility: "Residenti nel Comune di Potenza",
                hours: &[(MON_FRI, time!(9:00), time!(12:00))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_0007, acknowledge_within: 3, first_contact_within: 7,
            visible: &[F::Names, F::BirthDate, F::Citizenship, F::Contacts, F::Documents] }),
    },
    // The patronati: where people go for the paperwork of permits (the
    // kit postale), of the job centre (the DID filed online) and of
    // benefits — and where the desk sends whom the job centre cannot see.
    OrgSpec {
        id: 0x0e08, partner: 0x0b08, name: "Patronato INCA CGIL Potenza",
        kind: OrganizationKind::Patronato, ownership: Ownership::Private,
        services: &[
            ServiceSpec { id: 0x0005_5801, name: "Permessi di soggiorno: kit postale per rinnovo e conversione, permesso UE di lungo periodo; ricongiungimento e cittadinanza",
                needs: &["residence_permit_renewal", "residence_permit_conversion", "residence_permit_long_term", "family_permit",
                    "family_reunification_clearance", "citizenship_residence", "citizenship_marriage"],
                languages: &["it", "en", "fr"], interpretation: false,
                eligibility: "Lavoratori e cittadini stranieri",
                hours: &[(MON_FRI, time!(9:00), time!(12:30)), (&[Weekday::Monday, Weekday::Wednesday], time!(15:30), time!(18:00))] },
            ServiceSpec { id: 0x0005_5802, name: "Prestazioni sociali e previdenziali: assegno unico, assegno di inclusione, infortuni",
                needs: &["child_benefit", "inclusion_allowance", "workplace_safety"], languages: &["it", "en"], interpretation: false,
                eligibility: "Lavoratori, pensionati e famiglie",
                hours: &[(MON_FRI, time!(9:00), time!(12:30))] },
            ServiceSpec { id: 0x0005_5803, name: "Lavoro: DID online e patto di servizio, NASpI, orientamento alla ricerca di lavoro",
                needs: &["job_centre_registration", "job_search"], languages: &["it", "en", "fr"], interpretation: false,
                eligibility: "Persone in cerca di lavoro, anche senza appuntamento al Centro per l'Impiego",
                hours: &[(MON_WED_FRI, time!(9:00), time!(12:30)), (&[Weekday::Wednesday], time!(15:30), time!(18:00))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_0008, acknowledge_within: 1, first_contact_within: 3,
            visible: &[F::Names, F::BirthDate, F::Citizenship, F::Contacts, F::Documents, F::Needs] }),
    },
    OrgSpec {
        id: 0x0e0c, partner: 0x0b0c, name: "Patronato INAS CISL Potenza",
        kind: OrganizationKind::Patronato, ownership: Ownership::Private,
        services: &[
            ServiceSpec { id: 0x0005_5c01, name: "Permessi di soggiorno: compilazione del kit postale, rinnovi, conversioni, permesso UE di lungo periodo",
                needs: &["residence_permit_renewal", "residence_permit_conversion", "residence_permit_long_term", "family_permit"],
                languages: &["it", "en", "ro"], interpretation: false,
                eligibility: "Cittadini stranieri, su appuntamento",
                hours: &[(MON_FRI, time!(8:30), time!(12:30)), (TUE_THU, time!(15:00), time!(17:30))] },
            ServiceSpec { id: 0x0005_5c02, name: "Ricongiungimento familiare e cittadinanza: domande online",
                needs: &["family_reunification_clearance", "citizenship_residence", "citizenship_marriage"],
                languages: &["it", "en"], interpretation: false,
                eligibility: "Cittadini stranieri regolarmente soggiornanti",
                hours: &[(TUE_THU, time!(8:30), time!(12:30))] },
            ServiceSpec { id: 0x0005_5c03, name: "Lavoro e famiglia: DID e NASpI, ricerca di lavoro, assegno unico e assegno di inclusione",
                needs: &["job_centre_registration", "job_search", "child_benefit", "inclusion_allowance"],
                languages: &["it", "en", "ro"], interpretation: false,
                eligibility: "Lavoratori, disoccupati e famiglie",
                hours: &[(MON_FRI, time!(8:30), time!(12:30))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_000c, acknowledge_within: 2, first_contact_within: 5,
            visible: &[F::Names, F::BirthDate, F::Citizenship, F::Languages, F::Contacts, F::Documents, F::Needs] }),
    },
    OrgSpec {
        id: 0x0e09, partner: 0x0b09, name: "Patronato ACLI Potenza",
        kind: OrganizationKind::Patronato, ownership: Ownership::Private,
        services: &[
            ServiceSpec { id: 0x0005_5901, name: "Pratiche di soggiorno e cittadinanza: kit postale, rinnovi, ricongiungimento",
                needs: &["residence_permit_renewal", "residence_permit_long_term", "family_reunification_clearance", "citizenship_residence"],
                languages: &["it", "en", "es"], interpretation: false,
                eligibility: "Cittadini stranieri",
                hours: &[(MON_FRI, time!(9:00), time!(12:00))] },
            ServiceSpec { id: 0x0005_5902, name: "Assegno unico, ISEE e assegno di inclusione",
                needs: &["child_benefit", "inclusion_allowance"], languages: &["it", "en"], interpretation: false,
                eligibility: "Famiglie",
                hours: &[(TUE_THU, time!(15:30), time!(18:00))] },
            ServiceSpec { id: 0x0005_5903, name: "Lavoro: DID online, NASpI e orientamento alla ricerca di lavoro",
                needs: &["job_centre_registration", "job_search"], languages: &["it", "en", "es"], interpretation: false,
                eligibility: "Persone disoccupate o in cerca di lavoro",
                hours: &[(MON_WED_FRI, time!(9:00), time!(12:00)), (&[Weekday::Tuesday], time!(15:30), time!(18:00))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_0009, acknowledge_within: 2, first_contact_within: 5,
            visible: &[F::Names, F::BirthDate, F::Citizenship, F::Contacts, F::Documents, F::Needs] }),
    },
    OrgSpec {
        id: 0x0e0d, partner: 0x0b0d, name: "Patronato ITAL UIL Potenza",
        kind: OrganizationKind::Patronato, ownership: Ownership::Private,
        services: &[
            ServiceSpec { id: 0x0005_5d01, name: "Permessi di soggiorno: kit postale, rinnovi, conversioni, permesso per motivi familiari",
                needs: &["residence_permit_renewal", "residence_permit_conversion", "residence_permit_long_term", "family_permit"],
                languages: &["it", "en", "fr", "ar"], interpretation: false,
                eligibility: "Cittadini stranieri",
                hours: &[(MON_WED_FRI, time!(9:00), time!(12:30)), (&[Weekday::Wednesday], time!(15:00), time!(17:00))] },
            ServiceSpec { id: 0x0005_5d02, name: "Lavoro e prestazioni: DID e NASpI, ricerca di lavoro, assegno unico, infortuni",
                needs: &["job_centre_registration", "job_search", "child_benefit", "inclusion_allowance", "workplace_safety"],
                languages: &["it", "en", "fr", "ar"], interpretation: false,
                eligibility: "Lavoratori, disoccupati e famiglie",
                hours: &[(MON_WED_FRI, time!(9:00), time!(12:30))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_000d, acknowledge_within: 3, first_contact_within: 7,
            visible: &[F::Names, F::BirthDate, F::Citizenship, F::Languages, F::Contacts, F::Documents, F::Needs] }),
    },
    OrgSpec {
        id: 0x0e0a, partner: 0x0b0a, name: "CGIL Potenza — Ufficio Migranti",
        kind: OrganizationKind::TradeUnion, ownership: Ownership::Private,
        services: &[
            ServiceSpec { id: 0x0005_5a01, name: "Tutela individuale, vertenze e orientamento al lavoro",
                needs: &["labour_dispute", "labour_exploitation", "job_search"], languages: &["it", "en", "fr", "ar"], interpretation: true,
                eligibility: "Lavoratrici e lavoratori stranieri",
                hours: &[(MON_WED_FRI, time!(9:30), time!(12:30)), (&[Weekday::Tuesday], time!(15:30), time!(18:00))] },
            ServiceSpec { id: 0x0005_5a02, name: "Consulenza legale sull'immigrazione",
                needs: &["legal_advice", "expulsion_detention"], languages: &["it", "en", "fr"], interpretation: false,
                eligibility: "Cittadini stranieri",
                hours: &[(TUE_THU, time!(9:30), time!(12:30))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_000a, acknowledge_within: 2, first_contact_within: 5,
            visible: &[F::Names, F::Languages, F::Contacts, F::Needs, F::Notes] }),
    },
    OrgSpec {
        id: 0x0e0b, partner: 0x0b0b, name: "Caritas Diocesana di Potenza",
        kind: OrganizationKind::NonProfit, ownership: Ownership::Private,
        services: &[
            ServiceSpec { id: 0x0005_5b01, name: "Centro di ascolto ed emergenza abitativa",
                needs: &["housing_emergency"], languages: &["it", "en", "fr"], interpretation: false,
                eligibility: "Persone e famiglie in difficoltà",
                hours: &[(MON_FRI, time!(9:00), time!(12:00))] },
            ServiceSpec { id: 0x0005_5b02, name: "Scuola di italiano per stranieri",
                needs: &["italian_course_adults"], languages: &["it", "en", "fr", "ar"], interpretation: false,
                eligibility: "Adulti stranieri",
                hours: &[(TUE_THU, time!(15:00), time!(18:00))] },
            ServiceSpec { id: 0x0005_5b03, name: "Sportello legale",
                needs: &["legal_advice", "legal_aid", "asylum_appeal"], languages: &["it", "en", "fr"], interpretation: false,
                eligibility: "Persone senza mezzi",
                hours: &[(&[Weekday::Wednesday], time!(15:00), time!(18:00))] },
        ],
        agreement: Some(AgreementSpec { id: 0x0a9e_000b, acknowledge_within: 1, first_contact_within: 3,
            visible: &[F::Names, F::Languages, F::Contacts, F::Needs, F::Vulnerabilities] }),
    },
    // Still onboarding: no agreement yet, so no referrals — matching shows
    // its service unavailable, and social housing stays an unmet need.
    OrgSpec {
        id: 0x0e0e, partner: 0x0b0e, name: "ATER di Potenza — Azienda Territoriale per l'Edilizia Residenziale",
        kind: OrganizationKind::Other, ownership: Ownership::Public,
        services: &[
            ServiceSpec { id: 0x0005_5e01, name: "Alloggi di edilizia residenziale pubblica: bandi e domande",
                needs: &["social_housing"], languages: &["it"], interpretation: false,
                eligibility: "Residenti o lavoratori nel territorio, secondo il bando",
                hours: &[(TUE_THU, time!(9:00), time!(12:00))] },
        ],
        agreement: None,
    },
];

/// The desk's organisation.
const DESK: OrgSpec = OrgSpec {
    id: 0x0d05,
    partner: 0x0a01,
    name: DESK_NAME,
    kind: OrganizationKind::Desk,
    ownership: Ownership::Public,
    services: DESK_SERVICES,
    agreement: None,
};

/// Weekly hours from the demo's table form.
fn weekly(spec: Hours) -> WeeklyHours {
    let mut hours = WeeklyHours::new();
    for &(days, open, close) in spec {
        for &day in days {
            hours = hours.with(day, open, close);
        }
    }
    hours
}

fn service(spec: &ServiceSpec) -> Service {
    let hours = weekly(spec.hours);
    Service {
        id: ServiceId(demo_id(spec.id)),
        name: spec.name.into(),
        needs: spec
            .needs
            .iter()
            .map(|c| NeedCode::parse(c).expect("demo codes are in the taxonomy"))
            .collect(),
        languages: spec.languages.iter().map(|&l| l.into()).collect(),
        interpretation: spec.interpretation,
        eligibility: spec.eligibility.into(),
        location: if spec.id == DESK_SERVICES[0].id {
            DESK_ADDRESS.into()
        } else {
            "Potenza".into()
        },
        hours,
        closed_on: Vec::new(),
    }
}

const DESK_ADDRESS: &str = "Unità di Direzione Servizi Sociali, via Lacava 2, 85100 Potenza";

/// An organisation's history, set up from `setup` on by the demo
/// administrator: registered, onboarding, its services, then (with an
/// agreement valid for a year) active.
fn organization(
    rng: &mut StdRng,
    spec: &OrgSpec,
    setup: OffsetDateTime,
) -> Result<(Organization, HistoryAppend), DomainError> {
    let id = OrganizationId(demo_id(spec.id));
    let contacts = if spec.id == DESK.id {
        Contacts {
            phone: Some("+39 0971 415111".into()),
            email: None,
            address: Some(DESK_ADDRESS.into()),
        }
    } else {
        Contacts {
            address: Some("Potenza".into()),
            ..Contacts::default()
        }
    };
    let mut commands = vec![
        (
            setup,
            OrganizationCommand::Register {
                id,
                name: spec.name.into(),
                kind: spec.kind,
                ownership: spec.ownership,
                contacts,
            },
        ),
        (
            setup + Duration::days(1),
            OrganizationCommand::ChangeOnboarding(OnboardingStatus::Onboarding),
        ),
    ];
    for (i, s) in spec.services.iter().enumerate() {
        let at = setup + Duration::days(2) + Duration::minutes(5 * i as i64);
        commands.push((at, OrganizationCommand::AddService(service(s))));
    }
    if let Some(a) = &spec.agreement {
        let signed = setup + Duration::days(7);
        let agreement = Agreement {
            id: AgreementId(demo_id(a.id)),
            signed_on: signed.date(),
            valid_from: signed.date(),
            valid_to: signed.date() + Duration::days(365),
            acknowledge_within: a.acknowledge_within,
            first_contact_within: a.first_contact_within,
            visible_fields: a.visible.iter().copied().collect(),
        };
        commands.push((signed, OrganizationCommand::SignAgreement(agreement)));
    }
    if spec.agreement.is_some() || spec.id == DESK.id {
        commands.push((
            setup + Duration::days(8),
            OrganizationCommand::ChangeOnboarding(OnboardingStatus::Active),
        ));
    }
    let admin = AccountId(DEMO_ADMIN);
    let desk = OrganizationId(DEMO_DESK);
    let mut history = StreamHistory::<OrganizationAggregate>::default();
    for (at, command) in commands {
        let meta = simulate::metadata(rng, admin, desk, at, None);
        history.apply(rng, command, meta)?;
    }
    let state = history
        .state
        .clone()
        .ok_or(DomainError::NotFound("organization"))?;
    let append = history
        .finish(NetworkId(DEMO_NETWORK), StreamId(id.0))
        .ok_or(DomainError::NotFound("organization"))?;
    Ok((state, append))
}

/// Every organisation of the demo, desk first, set up `SETUP_DAYS`
/// before `now` (also the benchmark's network).
pub(crate) fn organizations(
    now: OffsetDateTime,
) -> Result<Vec<(Organization, HistoryAppend)>, DomainError> {
    let mut rng = StdRng::seed_from_u64(SEED ^ 0x0e);
    let setup = now
        .to_offset(time::UtcOffset::UTC)
        .replace_time(time!(8:00))
        - Duration::days(SETUP_DAYS);
    std::iter::once(&DESK)
        .chain(PROVIDERS)
        .map(|spec| organization(&mut rng, spec, setup))
        .collect()
}

/// The generator's network from the organisations' states, desk first.
pub(crate) fn fixture(orgs: Vec<Organization>, calendar: WorkingCalendar) -> Network {
    let mut orgs = orgs.into_iter();
    let desk = orgs.next().expect("the desk comes first");
    let providers = orgs
        .zip(PROVIDERS)
        .map(|(organization, spec)| Provider {
            organization,
            partner: AccountId(demo_id(spec.partner)),
        })
        .collect();
    Network::new(
        NetworkId(DEMO_NETWORK),
        &desk,
        AccountId(DEMO_OPERATOR),
        providers,
        calendar,
    )
}

/// The demo network as of `now`, in memory (what the tests generate in).
#[cfg(test)]
pub fn network(now: OffsetDateTime) -> Result<Network, DomainError> {
    let orgs = organizations(now)?.into_iter().map(|(o, _)| o).collect();
    Ok(fixture(orgs, WorkingCalendar::for_potenza()))
}

/// An account of the demo: role, id, organisation id and name; for a
/// professional, their entry of the registry.
struct DemoAccount {
    role: &'static str,
    id: Uuid,
    organization: Uuid,
    organization_name: &'static str,
    label: String,
    professional: Option<Uuid>,
}

fn accounts() -> Vec<DemoAccount> {
    let desk = |role, id, label: &str| DemoAccount {
        role,
        id,
        organization: DEMO_DESK,
        organization_name: DESK_NAME,
        label: label.into(),
        professional: None,
    };
    let mut all = vec![
        desk(role::DESK_OPERATOR, DEMO_OPERATOR, "Demo desk operator"),
        desk(role::COORDINATOR, DEMO_COORDINATOR, "Demo coordinator"),
        desk(role::ADMIN, DEMO_ADMIN, "Demo administrator"),
        desk(
            role::DESK_SUPERVISOR,
            DEMO_SUPERVISOR,
            "Demo desk supervisor",
        ),
    ];
    all.extend(PROVIDERS.iter().map(|p| DemoAccount {
        role: role::PARTNER,
        id: demo_id(p.partner),
        organization: demo_id(p.id),
        organization_name: p.name,
        label: format!("Demo partner, {}", p.name),
        professional: None,
    }));
    all.push(DemoAccount {
        professional: Some(registry::DEMO_PROFESSIONAL_ENTRY),
        ..desk(
            role::PROFESSIONAL,
            DEMO_PROFESSIONAL,
            "Demo professional (interpreter)",
        )
    });
    all
}

/// Load the demo.
pub async fn run(settings: &Settings, credentials: Option<&Path>) -> anyhow::Result<()> {
    db::create_database_if_missing(&settings.database_url).await?;
    let pool = db::connect(&settings.database_url, WRITERS as u32 + 2).await?;
    db::migrate(&pool).await?;
    let network = NetworkId(DEMO_NETWORK);
    let keyring = Keyring::new(settings.master_key.clone().context("master key")?);
    keyring.verify_master_key(&pool).await?;
    let store = EventStore::new(pool.clone(), keyring);
    let now = settings.clock.now();

    // The organisations: written once, read back afterwards.
    let mut states = Vec::new();
    for (built, (req, metadata)) in organizations(now)? {
        let stored = store.load_stream(network, req.stream_id).await?;
        if stored.is_empty() {
            store
                .append_history(&req, &metadata)
                .await
                .with_context(|| format!("registering {}", built.name))?;
            states.push(built);
        } else {
            let mut state = None;
            for e in &stored {
                let event = OrganizationAggregate::decode(&e.event_type, &e.payload)?;
                state = OrganizationAggregate::evolve(state, &event);
            }
            states.push(state.context("a stored organisation without state")?);
        }
    }
    for a in accounts() {
        insert_account(
            &pool,
            AccountId(a.id),
            network,
            OrganizationId(a.organization),
            a.role,
            &a.label,
            a.professional,
        )
        .await?;
    }

    let (existing,): (i64,) = sqlx::query_as(
        "SELECT count(DISTINCT stream_id) FROM events WHERE network_id = $1 AND stream_kind = $2",
    )
    .bind(network.0)
    .bind(STREAM_KIND)
    .fetch_one(&pool)
    .await?;
    if existing == 0 {
        let net = fixture(states, settings.working_calendar());
        let window = Duration::days(WINDOW_DAYS);
        let mut people = (0..PEOPLE)
            .map(|i| {
                let mut rng = simulate::person_rng(network, SEED, i);
                simulate::person(&net, &mut rng, i, now, window)
            })
            .collect::<Result<Vec<_>, _>>()?;
        people.push(story::person(&net, now)?);
        let persons = people.len();
        let referrals = people
            .iter()
            .flatten()
            .filter(|(r, _)| r.stream_kind == referral::STREAM_KIND)
            .count();
        let events: usize = people.iter().flatten().map(|(r, _)| r.events.len()).sum();
        let store = &store;
        futures::stream::iter(people)
            .map(|appends| async move {
                // The case first, then its referrals.
                for (req, metadata) in &appends {
                    store.append_history(req, metadata).await?;
                    index_person(store, req).await?;
                }
                Ok::<_, anyhow::Error>(())
            })
            .buffer_unordered(WRITERS)
            .try_collect::<()>()
            .await
            .context("writing the demo people")?;
        println!(
            "demo network loaded: {persons} fictitious people taken in charge, {referrals} referrals, {events} events, {} organisations",
            PROVIDERS.len() + 1
        );
    } else {
        println!("demo network already loaded ({existing} cases)");
    }
    load_registry(&store, settings, now).await?;

    if let Some(path) = credentials {
        let mut out = Vec::new();
        for (i, a) in accounts().into_iter().enumerate() {
            let token = issue_token(&pool, AccountId(a.id), time::Duration::days(30)).await?;
            // A login for the sign-in page too, with a fresh random
            // password each time the credentials are written.
            let login = format!("demo.{}.{i}", a.role.replace('_', "-"));
            let password = sportello_http::auth::token::secret("");
            sportello_http::auth::accounts::set_login(&pool, AccountId(a.id), &login, &password)
                .await?;
            out.push(json!({
                "role": a.role,
                "account_id": a.id,
                "organization_id": a.organization,
                "organization": a.organization_name,
                "token": token,
                "login": login,
                "password": password,
            }));
        }
        let out = json!({
            "network_id": network,
            "base_url": format!("http://{}", settings.listen),
            "accounts": out,
        });
        write_private(path, &serde_json::to_vec_pretty(&out)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("demo credentials written to {}", path.display());
    }
    Ok(())
}

/// The registry and its activations, into a network without professionals
/// yet; the activations name people of the demo already stored.
async fn load_registry(
    store: &EventStore,
    settings: &Settings,
    now: OffsetDateTime,
) -> anyhow::Result<()> {
    let network = NetworkId(DEMO_NETWORK);
    let pool = store.pool();
    let (existing,): (i64,) = sqlx::query_as(
        "SELECT count(DISTINCT stream_id) FROM events WHERE network_id = $1 AND stream_kind = $2",
    )
    .bind(network.0)
    .bind(sportello_domain::registry::STREAM_KIND)
    .fetch_one(pool)
    .await?;
    if existing > 0 {
        println!("demo registry already loaded ({existing} professionals)");
        return Ok(());
    }
    // Each person and when they were taken in charge.
    let opened: Vec<(Uuid, sqlx::types::Json<Metadata>)> = sqlx::query_as(
        "SELECT stream_id, metadata FROM events
          WHERE network_id = $1 AND stream_kind = $2 AND version = 1",
    )
    .bind(network.0)
    .bind(STREAM_KIND)
    .fetch_all(pool)
    .await?;
    let people: Vec<_> = opened
        .into_iter()
        .map(|(id, m)| (PersonId(id), m.0.occurred_at))
        .collect();
    let registry = registry::registry(now)?;
    let activations = activations::activations(
        &registry,
        &people,
        &settings.working_calendar(),
        now,
        Duration::days(WINDOW_DAYS),
        SEED,
    )?;
    let mut events = 0;
    for (req, metadata) in registry.appends() {
        store
            .append_history(req, metadata)
            .await
            .context("writing the demo registry")?;
        events += req.events.len();
    }
    events += activations
        .iter()
        .map(|(r, _)| r.events.len())
        .sum::<usize>();
    futures::stream::iter(&activations)
        .map(|(req, metadata)| store.append_history(req, metadata))
        .buffer_unordered(WRITERS)
        .try_collect::<Vec<_>>()
        .await
        .context("writing the demo activations")?;
    println!(
        "demo registry loaded: {} fictitious professionals, {} activations, {events} events",
        registry.len(),
        activations.len()
    );
    Ok(())
}

/// Index the person a case opens with, as taking in charge over HTTP does,
/// so the desk finds demo people by name and document.
pub(crate) async fn index_person(store: &EventStore, req: &AppendRequest) -> anyhow::Result<()> {
    let Some(opening) = req
        .events
        .first()
        .filter(|e| req.stream_kind == STREAM_KIND && e.event_type == PersonTakenInCharge::TYPE)
    else {
        return Ok(());
    };
    let Some((person, identity)) = &opening.personal else {
        return Ok(());
    };
    let identity: PersonIdentity = serde_json::from_value(identity.clone())?;
    let mut conn = store.pool().acquire().await?;
    store
        .index_person_in(&mut conn, req.network, *person, &search::terms(&identity))
        .await?;
    Ok(())
}

/// Write a file only its owner can read (it holds bearer tokens).
fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(contents)
}

#[cfg(test)]
mod tests;
