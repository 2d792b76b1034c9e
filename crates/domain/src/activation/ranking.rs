//! Who to offer an activation to, best first, and why: the registry's
//! professionals are filtered on what is required (active, the role, the
//! sector, the language, not already passed on this activation) and
//! ranked on the rest — available at the moment needed (their weekly
//! hours in Potenza's time, not absent that day), offering the mode asked,
//! fair rotation (fewest recent activations first), then how well they
//! speak the language. Each candidate carries the reasons of its place, so
//! the desk sees why the first was first.
//!
//! Pure: the registry, the recent activation counts and the moment are
//! inputs.

use super::{Mode, ProfessionalRole, Request, Sector};
use crate::case::Proficiency;
use crate::ids::ProfessionalId;
use crate::matching::rome_offset;
use crate::organization::WeeklyHours;
use std::collections::{BTreeSet, HashMap};
use time::Date;

/// Whether a professional of the registry takes activations.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum RegistryStatus {
    /// Takes activations.
    Active,
    /// Suspended for now.
    Suspended,
    /// Left the registry.
    Left,
}

/// What the ranking needs to know of a professional.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registered {
    /// Their entry.
    pub id: ProfessionalId,
    /// Active, suspended, left.
    pub status: RegistryStatus,
    /// Mediator, interpreter, lawyer (one or more).
    pub roles: BTreeSet<ProfessionalRole>,
    /// Their sectors.
    pub sectors: BTreeSet<Sector>,
    /// Languages (for interpreters: paired with Italian) and how well.
    pub languages: Vec<(String, Proficiency)>,
    /// How they work.
    pub modes: BTreeSet<Mode>,
    /// When they are usually available (Potenza's local time).
    pub availability: WeeklyHours,
    /// Days they are away (from, to, both included).
    pub absences: Vec<(Date, Date)>,
}

impl Registered {
    /// Available at the moment `at` (Potenza's local time).
    pub fn available_at(&self, at: time::OffsetDateTime) -> bool {
        let local = at.to_offset(rome_offset(at));
        let (day, clock) = (local.date(), local.time());
        let away = self
            .absences
            .iter()
            .any(|(from, to)| *from <= day && day <= *to);
        !away && self.availability.is_open(day.weekday(), clock)
    }
}

/// A professional who can take the activation, with their place's reasons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Who.
    pub professional: ProfessionalId,
    /// Available at the moment needed.
    pub available: bool,
    /// Works in the mode asked.
    pub mode: bool,
    /// Activations in the recent period.
    pub recent: u32,
    /// How well they speak the language.
    pub proficiency: Proficiency,
    /// Why they are where they are, in words.
    pub reasons: Vec<String>,
}

fn proficiency_rank(p: Proficiency) -> u8 {
    match p {
        Proficiency::Native => 0,
        Proficiency::Fluent => 1,
        Proficiency::Basic => 2,
    }
}

/// The professionals who can take `request`, best first. `recent`: each
/// one's activations in the recent period (fair rotation); `passed`: who
/// declined or let an offer of this activation expire.
pub fn rank(
    registry: &[Registered],
    request: &Request,
    recent: &HashMap<ProfessionalId, u32>,
    passed: &[ProfessionalId],
) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = registry
        .iter()
        .filter(|p| p.status == RegistryStatus::Active)
        .filter(|p| p.roles.contains(&request.role) && p.sectors.contains(&request.sector))
        .filter(|p| !passed.contains(&p.id))
        .filter_map(|p| {
            let proficiency = p
                .languages
                .iter()
                .find(|(code, _)| *code == request.language)
                .map(|(_, prof)| *prof)?;
            let available = p.available_at(request.needed_at);
            let mode = p.modes.contains(&request.mode);
            let recent = recent.get(&p.id).copied().unwrap_or(0);
            let reasons = vec![
                if available {
                    "available at the time needed".to_owned()
                } else {
                    "not usually available at the time needed".to_owned()
                },
                if mode {
                    "works in the mode asked".to_owned()
                } else {
                    "does not work in the mode asked".to_owned()
                },
                format!("{recent} recent activations"),
                format!(
                    "speaks {} ({})",
                    request.language,
                    match proficiency {
                        Proficiency::Native => "mother tongue",
                        Proficiency::Fluent => "fluent",
                        Proficiency::Basic => "basic",
                    }
                ),
            ];
            Some(Candidate {
                professional: p.id,
                available,
                mode,
                recent,
                proficiency,
                reasons,
            })
        })
        .collect();
    out.sort_by_key(|c| {
        (
            !c.available,
            !c.mode,
            c.recent,
            proficiency_rank(c.proficiency),
            c.professional,
        )
    });
    out
}

/// How many active professionals cover a role, sector and language: 0 is
/// a gap of the registry, 1 a thin one (the activations report lists
/// both for what was asked).
pub fn coverage(
    registry: &[Registered],
    role: ProfessionalRole,
    sector: Sector,
    language: &str,
) -> usize {
    registry
        .iter()
        .filter(|p| p.status == RegistryStatus::Active)
        .filter(|p| p.roles.contains(&role) && p.sectors.contains(&sector))
        .filter(|p| p.languages.iter().any(|(code, _)| code == language))
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::activation::Urgency;
    use crate::ids::ActivationId;
    use time::macros::{date, datetime, time};

    fn interpreter(n: u128, lang: &str, prof: Proficiency) -> Registered {
        Registered {
            id: ProfessionalId(uuid::Uuid::from_u128(n)),
            status: RegistryStatus::Active,
            roles: [ProfessionalRole::Interpreter].into(),
            sectors: [Sector::Health].into(),
            languages: vec![(lang.into(), prof)],
            modes: [Mode::InPerson, Mode::Phone].into(),
            availability: WeeklyHours::new().with(
                time::Weekday::Tuesday,
                time!(09:00),
                time!(13:00),
            ),
            absences: vec![],
        }
    }

    fn request() -> Request {
        Request {
            id: ActivationId::new(),
            role: ProfessionalRole::Interpreter,
            sector: Sector::Health,
            language: "ar".into(),
            mode: Mode::InPerson,
            // Tuesday 3 March 2026, 10:30 in Potenza (CET, UTC+1).
            needed_at: datetime!(2026-03-03 09:30 UTC),
            place: "ASP, via Torraca 2".into(),
            urgency: Urgency::Hours24,
            person: None,
            referral: None,
            requested_by: crate::ids::OrganizationId(uuid::Uuid::from_u128(9)),
            requested_at: datetime!(2026-03-02 09:00 UTC),
        }
    }

    #[test]
    fn available_first_then_fewest_recent_then_the_better_speaker() {
        let a = interpreter(1, "ar", Proficiency::Fluent);
        let b = interpreter(2, "ar", Proficiency::Native);
        let mut away = interpreter(3, "ar", Proficiency::Native);
        away.absences = vec![(date!(2026 - 03 - 02), date!(2026 - 03 - 06))];
        let mut suspended = interpreter(4, "ar", Proficiency::Native);
        suspended.status = RegistryStatus::Suspended;
        let english = interpreter(5, "en", Proficiency::Native);
        let registry = [a.clone(), b.clone(), away.clone(), suspended, english];
        // b has had more activations lately: a goes first despite b's mother tongue.
        let recent = HashMap::from([(b.id, 3), (a.id, 1)]);
        let ranked = rank(&registry, &request(), &recent, &[]);
        let order: Vec<_> = ranked.iter().map(|c| c.professional).collect();
        assert_eq!(order, [a.id, b.id, away.id]);
        assert!(!ranked[2].available);
        assert!(
            ranked[0]
                .reasons
                .contains(&"1 recent activations".to_owned())
        );
        // Equal counts: the better speaker first.
        let ranked = rank(&registry, &request(), &HashMap::new(), &[]);
        assert_eq!(ranked[0].professional, b.id);
        // Who passed is not offered again.
        let ranked = rank(&registry, &request(), &HashMap::new(), &[b.id]);
        assert_eq!(ranked[0].professional, a.id);
    }

    #[test]
    fn availability_is_read_in_potenzas_time() {
        let p = interpreter(1, "ar", Proficiency::Native);
        // 08:30 UTC = 09:30 CET on Tuesday: inside 09:00–13:00.
        assert!(p.available_at(datetime!(2026-03-03 08:30 UTC)));
        // 07:30 UTC = 08:30 CET: before.
        assert!(!p.available_at(datetime!(2026-03-03 07:30 UTC)));
        // Summer time: 11:30 UTC = 13:30 CEST on Tuesday 2 June: after.
        assert!(!p.available_at(datetime!(2026-06-02 11:30 UTC)));
        assert!(p.available_at(datetime!(2026-06-02 10:30 UTC)));
    }

    #[test]
    fn coverage_counts_active_professionals_for_a_language() {
        let mut left = interpreter(2, "ur", Proficiency::Native);
        left.status = RegistryStatus::Left;
        let registry = [interpreter(1, "ur", Proficiency::Basic), left];
        assert_eq!(
            coverage(
                &registry,
                ProfessionalRole::Interpreter,
                Sector::Health,
                "ur"
            ),
            1
        );
        assert_eq!(
            coverage(
                &registry,
                ProfessionalRole::Interpreter,
                Sector::Health,
                "bn"
            ),
            0
        );
    }
}
