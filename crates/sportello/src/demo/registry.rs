//! The demo's registry of professionals: 24 fictitious intercultural
//! mediators, interpreters and lawyers for the languages most spoken by
//! Potenza's foreign residents (Romanian, Albanian, Arabic, Ukrainian,
//! English, French, Chinese, Urdu, Punjabi, Bengali), with their sectors,
//! modes, areas, weekly hours in Potenza's time, a few absences, one
//! suspended, one who left and one admitted during the window.
//!
//! Its gaps are deliberate, so the activations report has something to
//! show: nobody speaks Bengali in health, one professional only speaks
//! Punjabi, no lawyer speaks Urdu, Chinese is by video only, and no
//! lawyer works in health.
//!
//! Pure: everything is a function of `now`. It must never hold a real
//! person: every name starts with `Demo `, phones are `+39 555 …`, emails
//! are at `example.invalid`, bar registrations are `DEMO-…`.

use super::{DEMO_DESK, DEMO_NETWORK, DEMO_OPERATOR, DEMO_PROFESSIONAL};
use super::{Hours, MON_FRI, MON_WED_FRI, SEED, SETUP_DAYS, TUE_THU, demo_id, weekly};
use crate::simulate::{self, HistoryAppend, StreamHistory};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sportello_domain::activation::ranking::{Registered, RegistryStatus};
use sportello_domain::activation::{Mode, ProfessionalRole, Sector};
use sportello_domain::aggregate::ProfessionalAggregate;
use sportello_domain::case::Proficiency;
use sportello_domain::ids::ProfessionalId;
use sportello_domain::matching::rome_date;
use sportello_domain::registry::{Contact, Professional, ProfessionalCommand, Profile};
use sportello_domain::{AccountId, DomainError, NetworkId, OrganizationId, StreamId};
use time::macros::time;
use time::{Duration, OffsetDateTime, Weekday};
use uuid::Uuid;

/// The registry entry the demo professional's account is bound to (an
/// interpreter: English and French, health, legal and labour).
pub const DEMO_PROFESSIONAL_ENTRY: Uuid = demo_id(0x0006_000e);

const MON_THU: &[Weekday] = &[
    Weekday::Monday,
    Weekday::Tuesday,
    Weekday::Wednesday,
    Weekday::Thursday,
];
const TUE_WED_THU: &[Weekday] = &[Weekday::Tuesday, Weekday::Wednesday, Weekday::Thursday];
const MON_TUE_THU: &[Weekday] = &[Weekday::Monday, Weekday::Tuesday, Weekday::Thursday];
const MON_WED: &[Weekday] = &[Weekday::Monday, Weekday::Wednesday];
const WED_FRI: &[Weekday] = &[Weekday::Wednesday, Weekday::Friday];

/// One professional of the demo. Days are counted back from `now`.
struct Spec {
    /// Their id's low bits (`demo_id(0x0006_0000 | n)`) and number.
    n: u16,
    name: &'static str,
    roles: &'static [ProfessionalRole],
    sectors: &'static [Sector],
    languages: &'static [(&'static str, Proficiency)],
    modes: &'static [Mode],
    areas: &'static [&'static str],
    hours: Hours,
    /// Admitted this many days ago (`None`: when the registry opened).
    admitted: Option<i64>,
    /// Away from this many days ago, for so many days.
    absences: &'static [(i64, i64)],
    /// Suspended or left this many days ago.
    status: Option<(i64, RegistryStatus)>,
}

use Mode::{InPerson as IN_PERSON, Phone as PHONE, Video as VIDEO};
use ProfessionalRole::{Interpreter as INT, Lawyer as LAW, Mediator as MED};
use Proficiency::{Basic as B, Fluent as F, Native as N};
use Sector::{Health as HEALTH, Labour as LABOUR, Legal as LEGAL};

/// The registry. Gaps: no `bn` in health, one `pa`, no `ur` lawyer, `zh`
/// by video only, no lawyer in health.
#[rustfmt::skip]
const PROFESSIONALS: &[Spec] = &[
    Spec { n: 0x01, name: "Demo Mediatrice Ana Ionescu", roles: &[MED, INT], sectors: &[HEALTH, LABOUR, LEGAL],
        languages: &[("ro", N), ("en", F)], modes: &[IN_PERSON, PHONE], areas: &["Potenza", "Avigliano"],
        hours: &[(MON_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[(150, 14)], status: None },
    Spec { n: 0x02, name: "Demo Interprete Mihai Dumitru", roles: &[INT], sectors: &[LEGAL, HEALTH, LABOUR],
        languages: &[("ro", N), ("en", F), ("fr", B)], modes: &[IN_PERSON, PHONE, VIDEO], areas: &["Potenza", "Melfi"],
        hours: &[(MON_WED_FRI, time!(9:00), time!(17:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x03, name: "Demo Avvocata Elena Marin", roles: &[LAW], sectors: &[LEGAL, LABOUR],
        languages: &[("ro", N), ("en", F)], modes: &[IN_PERSON, VIDEO], areas: &["Potenza"],
        hours: &[(TUE_THU, time!(9:00), time!(13:00)), (TUE_THU, time!(15:00), time!(18:00))],
        admitted: None, absences: &[], status: None },
    Spec { n: 0x04, name: "Demo Mediatrice Ioana Stan", roles: &[MED], sectors: &[LABOUR, LEGAL],
        languages: &[("ro", N), ("fr", B)], modes: &[IN_PERSON], areas: &["Melfi", "Rionero in Vulture"],
        hours: &[(MON_THU, time!(14:00), time!(18:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x05, name: "Demo Mediatore Arben Hoxha", roles: &[MED, INT], sectors: &[LEGAL, HEALTH, LABOUR],
        languages: &[("sq", N), ("en", B)], modes: &[IN_PERSON, PHONE], areas: &["Potenza"],
        hours: &[(MON_FRI, time!(8:30), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x06, name: "Demo Interprete Elira Krasniqi", roles: &[INT], sectors: &[HEALTH, LEGAL],
        languages: &[("sq", N), ("en", F)], modes: &[IN_PERSON, PHONE, VIDEO], areas: &["Potenza", "Picerno"],
        hours: &[(MON_FRI, time!(13:00), time!(19:00))], admitted: None, absences: &[(60, 10)], status: None },
    Spec { n: 0x07, name: "Demo Avvocato Gentian Dervishi", roles: &[LAW], sectors: &[LEGAL, LABOUR],
        languages: &[("sq", N), ("en", F)], modes: &[IN_PERSON, VIDEO], areas: &["Potenza"],
        hours: &[(MON_WED_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x08, name: "Demo Mediatore Youssef El Amrani", roles: &[MED, INT], sectors: &[HEALTH, LEGAL, LABOUR],
        languages: &[("ar", N), ("fr", F)], modes: &[IN_PERSON, PHONE], areas: &["Potenza", "Tito"],
        hours: &[(MON_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x09, name: "Demo Interprete Salma Haddad", roles: &[INT], sectors: &[HEALTH, LEGAL],
        languages: &[("ar", N), ("fr", F), ("en", F)], modes: &[IN_PERSON, PHONE, VIDEO], areas: &["Potenza", "Melfi"],
        hours: &[(MON_FRI, time!(14:00), time!(18:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x0a, name: "Demo Avvocata Leila Benali", roles: &[LAW], sectors: &[LEGAL, LABOUR],
        languages: &[("ar", N), ("fr", F)], modes: &[IN_PERSON, PHONE, VIDEO], areas: &["Potenza"],
        hours: &[(TUE_WED_THU, time!(9:00), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x0b, name: "Demo Mediatrice Olena Kovalenko", roles: &[MED, INT], sectors: &[HEALTH, LABOUR, LEGAL],
        languages: &[("uk", N), ("ru", F)], modes: &[IN_PERSON, PHONE], areas: &["Potenza"],
        hours: &[(MON_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[(30, 7)], status: None },
    Spec { n: 0x0c, name: "Demo Interprete Taras Shevchuk", roles: &[INT], sectors: &[LEGAL, HEALTH],
        languages: &[("uk", N), ("en", F)], modes: &[PHONE, VIDEO], areas: &["Potenza", "Lauria"],
        hours: &[(MON_FRI, time!(15:00), time!(19:00))], admitted: Some(90), absences: &[], status: None },
    Spec { n: 0x0d, name: "Demo Avvocata Iryna Bondar", roles: &[LAW], sectors: &[LEGAL],
        languages: &[("uk", N), ("en", B)], modes: &[IN_PERSON, VIDEO], areas: &["Potenza"],
        hours: &[(WED_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x0e, name: "Demo Interprete Grace Okafor", roles: &[INT], sectors: &[HEALTH, LEGAL, LABOUR],
        languages: &[("en", N), ("fr", F)], modes: &[IN_PERSON, PHONE, VIDEO], areas: &["Potenza", "Melfi", "Venosa"],
        hours: &[(MON_FRI, time!(9:00), time!(13:00)), (MON_FRI, time!(14:00), time!(18:00))],
        admitted: None, absences: &[(100, 5)], status: None },
    Spec { n: 0x0f, name: "Demo Mediatore Mamadou Diallo", roles: &[MED, INT], sectors: &[LEGAL, LABOUR, HEALTH],
        languages: &[("fr", N), ("en", B)], modes: &[IN_PERSON, PHONE], areas: &["Potenza"],
        hours: &[(MON_TUE_THU, time!(9:00), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x10, name: "Demo Avvocato Paolo Ferri", roles: &[LAW], sectors: &[LEGAL, LABOUR],
        languages: &[("en", F), ("fr", F)], modes: &[IN_PERSON, PHONE, VIDEO], areas: &["Potenza", "Melfi"],
        hours: &[(MON_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x11, name: "Demo Interprete Li Wei", roles: &[INT], sectors: &[LEGAL, LABOUR, HEALTH],
        languages: &[("zh", N), ("en", F)], modes: &[VIDEO], areas: &["Basilicata (a distanza)"],
        hours: &[(MON_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x12, name: "Demo Mediatrice Chen Jing", roles: &[MED], sectors: &[HEALTH, LABOUR, LEGAL],
        languages: &[("zh", N)], modes: &[VIDEO], areas: &["Basilicata (a distanza)"],
        hours: &[(MON_WED, time!(14:00), time!(18:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x13, name: "Demo Mediatore Imran Qureshi", roles: &[MED, INT], sectors: &[HEALTH, LABOUR, LEGAL],
        languages: &[("ur", N), ("en", F)], modes: &[IN_PERSON, PHONE], areas: &["Potenza", "Melfi"],
        hours: &[(TUE_THU, time!(9:00), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x14, name: "Demo Interprete Ayesha Malik", roles: &[INT], sectors: &[LEGAL, HEALTH],
        languages: &[("ur", N), ("en", F)], modes: &[PHONE, VIDEO], areas: &["Potenza"],
        hours: &[(MON_FRI, time!(14:00), time!(17:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x15, name: "Demo Mediatore Harpreet Singh", roles: &[MED, INT], sectors: &[HEALTH, LABOUR],
        languages: &[("pa", N), ("hi", F), ("en", B)], modes: &[IN_PERSON, PHONE], areas: &["Melfi", "Potenza"],
        hours: &[(MON_WED_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[(20, 12)], status: None },
    Spec { n: 0x16, name: "Demo Mediatore Rahim Uddin", roles: &[MED, INT], sectors: &[LEGAL, LABOUR],
        languages: &[("bn", N), ("en", F)], modes: &[IN_PERSON, PHONE], areas: &["Potenza"],
        hours: &[(MON_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[], status: None },
    Spec { n: 0x17, name: "Demo Mediatrice Fatima Zahra Amrani", roles: &[MED], sectors: &[HEALTH],
        languages: &[("ar", N), ("fr", F)], modes: &[IN_PERSON], areas: &["Potenza"],
        hours: &[(MON_FRI, time!(9:00), time!(13:00))], admitted: None, absences: &[],
        status: Some((120, RegistryStatus::Suspended)) },
    Spec { n: 0x18, name: "Demo Interprete Sorin Vasile", roles: &[INT], sectors: &[LEGAL, LABOUR],
        languages: &[("ro", N)], modes: &[IN_PERSON, PHONE], areas: &["Potenza", "Melfi"],
        hours: &[(TUE_THU, time!(9:00), time!(17:00))], admitted: None, absences: &[(140, 3)],
        status: Some((75, RegistryStatus::Left)) },
];

/// How many days ago the demo professional changed their own hours, and
/// to what (no more Friday afternoons).
const OWN_HOURS_CHANGED: i64 = 45;
const OWN_HOURS: Hours = &[
    (MON_FRI, time!(9:00), time!(13:00)),
    (MON_THU, time!(14:00), time!(18:00)),
];

/// The registry as the demo builds it: each professional's states over
/// time (to rank activations as the registry stood then) and the stream
/// to write.
pub struct Registry {
    entries: Vec<Entry>,
}

struct Entry {
    /// The states after each command, with its moment, in order.
    states: Vec<(OffsetDateTime, Professional)>,
    append: HistoryAppend,
}

impl Registry {
    /// The professionals registered at `at`, as they stood then.
    pub fn at(&self, at: OffsetDateTime) -> Vec<Registered> {
        self.professionals_at(at)
            .map(Professional::registered)
            .collect()
    }

    /// The professionals registered at `at`, as they stood then.
    pub fn professionals_at(&self, at: OffsetDateTime) -> impl Iterator<Item = &Professional> {
        self.entries.iter().filter_map(move |e| {
            e.states
                .iter()
                .take_while(|(t, _)| *t <= at)
                .last()
                .map(|(_, p)| p)
        })
    }

    /// Each professional's stream (expected version: none yet).
    pub fn appends(&self) -> impl Iterator<Item = &HistoryAppend> {
        self.entries.iter().map(|e| &e.append)
    }

    /// How many professionals.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// The moment `minute` (of the Rome day) `days` days before `now`.
fn days_ago(now: OffsetDateTime, days: i64, minute: u16) -> OffsetDateTime {
    simulate::local(rome_date(now) - Duration::days(days), minute)
}

/// The registry as of `now`: it opens a day after the network's
/// organisations are active (`SETUP_DAYS` before `now`).
pub fn registry(now: OffsetDateTime) -> Result<Registry, DomainError> {
    let mut rng = StdRng::seed_from_u64(SEED ^ 0x7e9);
    let opened = SETUP_DAYS - 9;
    let entries = PROFESSIONALS
        .iter()
        .enumerate()
        .map(|(i, spec)| entry(&mut rng, spec, now, opened, i as u16))
        .collect::<Result<_, _>>()?;
    Ok(Registry { entries })
}

fn entry(
    rng: &mut StdRng,
    spec: &Spec,
    now: OffsetDateTime,
    opened: i64,
    i: u16,
) -> Result<Entry, DomainError> {
    let id = ProfessionalId(demo_id(0x0006_0000 | u128::from(spec.n)));
    // Registered in the morning, a few minutes apart.
    let admitted = days_ago(now, spec.admitted.unwrap_or(opened), 540 + 3 * i);
    let lawyer = spec.roles.contains(&ProfessionalRole::Lawyer);
    let profile = Profile {
        roles: spec.roles.iter().copied().collect(),
        sectors: spec.sectors.iter().copied().collect(),
        languages: spec
            .languages
            .iter()
            .map(|&(code, p)| (code.to_owned(), p))
            .collect(),
        modes: spec.modes.iter().copied().collect(),
        areas: spec.areas.iter().map(|&a| a.to_owned()).collect(),
        admitted_on: rome_date(admitted),
        bar_registration: lawyer
            .then(|| format!("Ordine degli Avvocati di Potenza n. DEMO-{:04}", spec.n)),
    };
    let contact = Contact {
        name: spec.name.to_owned(),
        phone: Some(format!("+39 555 010 {:04}", spec.n)),
        email: Some(format!("demo.professionista.{:02}@example.invalid", spec.n)),
    };
    let desk = (AccountId(DEMO_OPERATOR), OrganizationId(DEMO_DESK));
    let mut commands = vec![
        (
            admitted,
            desk,
            ProfessionalCommand::Register {
                id,
                profile,
                contact,
            },
        ),
        (
            admitted + Duration::minutes(1),
            desk,
            ProfessionalCommand::SetAvailability(weekly(spec.hours)),
        ),
    ];
    for &(from, days) in spec.absences {
        // Announced two weeks ahead.
        let at = days_ago(now, from + 14, 600 + i);
        let from = rome_date(now) - Duration::days(from);
        let to = from + Duration::days(days - 1);
        commands.push((at, desk, ProfessionalCommand::AddAbsence { from, to }));
    }
    if id.0 == DEMO_PROFESSIONAL_ENTRY {
        // The professional keeps their own hours, from their account.
        let own = (AccountId(DEMO_PROFESSIONAL), OrganizationId(DEMO_DESK));
        let at = days_ago(now, OWN_HOURS_CHANGED, 1140);
        let hours = weekly(OWN_HOURS);
        commands.push((at, own, ProfessionalCommand::SetAvailability(hours)));
    }
    if let Some((days, status)) = spec.status {
        let at = days_ago(now, days, 630 + i);
        commands.push((at, desk, ProfessionalCommand::SetStatus(status)));
    }
    commands.sort_by_key(|(at, ..)| *at);
    let mut history = StreamHistory::<ProfessionalAggregate>::default();
    let mut states = Vec::with_capacity(commands.len());
    for (at, (account, organization), command) in commands {
        let meta = simulate::metadata(rng, account, organization, at, None);
        history.apply(rng, command, meta)?;
        let state = history
            .state
            .clone()
            .ok_or(DomainError::NotFound("professional"))?;
        states.push((at, state));
    }
    let append = history
        .finish(NetworkId(DEMO_NETWORK), StreamId(id.0))
        .ok_or(DomainError::NotFound("professional"))?;
    Ok(Entry { states, append })
}
