//! Six months of the demo's activations: requests for a professional of
//! the [registry](super::registry), mostly by the desk (some for a person
//! of the demo), some by the health authority and the Questura for their
//! own appointments (no person named), in working hours, in the languages
//! of Potenza's foreign residents (Romanian most, then Albanian, Arabic,
//! Ukrainian, …), now and then in a combination the registry cannot
//! cover.
//!
//! Each one lives as the scheduler and the desk would make it: offered to
//! the first of the real ranking (the registry as it stood then, the
//! activations each professional accepted in the last 30 days, who already
//! passed), for two hours; accepted, declined, or left to expire — then
//! the next is offered; the deadline passing unconfirmed is recorded at
//! exactly 24 or 48 hours after the request; confirmed ones are scheduled,
//! then delivered or cancelled. All activations are simulated together in
//! time order, so the fair rotation counts only what had happened.
//!
//! Pure and deterministic: the seed, `now`, the window, the registry and
//! the people are the inputs; nothing is dated after `now`. Every event is
//! made by the domain's own `decide`/`evolve`.

use super::registry::{DEMO_PROFESSIONAL_ENTRY, Registry};
use super::{DEMO_DESK, DEMO_OPERATOR, DEMO_PROFESSIONAL, DEMO_SCHEDULER, PROVIDERS};
use crate::simulate::{self, HistoryAppend, WORKING_MINUTES, pick, v7};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sportello_domain::activation::{Mode, ProfessionalRole, Request, Sector, Urgency};
use sportello_domain::calendar::WorkingCalendar;
use sportello_domain::ids::{ActivationId, ProfessionalId};
use sportello_domain::matching::rome_date;
use sportello_domain::organization::OrganizationKind;
use sportello_domain::{AccountId, DomainError, OrganizationId, PersonId};
use time::{Duration, OffsetDateTime};

/// How many activations the window holds.
pub const ACTIVATIONS: usize = 200;
/// How long an offer stands unanswered.
pub const OFFER_FOR: Duration = Duration::hours(2);
/// The period the fair rotation counts accepted activations over.
pub const RECENT: Duration = Duration::days(30);

/// Languages asked for, weighted like Potenza's foreign residents.
const LANGUAGES: &[(&str, u32)] = &[
    ("ro", 26),
    ("sq", 14),
    ("ar", 14),
    ("uk", 10),
    ("en", 9),
    ("fr", 7),
    ("zh", 6),
    ("ur", 6),
    ("pa", 4),
    ("bn", 4),
];

/// Languages lawyers are asked for: where none speaks the person's
/// language the desk mostly asks for one in English or French.
const LAWYER_LANGUAGES: &[(&str, u32)] = &[
    ("ro", 26),
    ("sq", 14),
    ("ar", 14),
    ("uk", 10),
    ("en", 16),
    ("fr", 10),
    ("ur", 2),
    ("zh", 1),
];

/// Requests that hit the registry's gaps on purpose, one in twenty.
const GAP_REQUESTS: &[(ProfessionalRole, Sector, &str, Mode)] = &[
    (
        ProfessionalRole::Interpreter,
        Sector::Health,
        "bn",
        Mode::InPerson,
    ),
    (
        ProfessionalRole::Lawyer,
        Sector::Legal,
        "ur",
        Mode::InPerson,
    ),
    (
        ProfessionalRole::Interpreter,
        Sector::Legal,
        "zh",
        Mode::InPerson,
    ),
    (
        ProfessionalRole::Interpreter,
        Sector::Health,
        "pa",
        Mode::InPerson,
    ),
    (
        ProfessionalRole::Mediator,
        Sector::Health,
        "bn",
        Mode::Phone,
    ),
];

/// Who acts: an account and the organisation it acts for.
type Actor = (AccountId, OrganizationId);

fn desk() -> Actor {
    (AccountId(DEMO_OPERATOR), OrganizationId(DEMO_DESK))
}

fn scheduler() -> Actor {
    (AccountId(DEMO_SCHEDULER), OrganizationId(DEMO_DESK))
}

/// The professional's own account for the one who has one; the desk
/// records the others' answers (given by phone).
fn professional(p: ProfessionalId) -> Actor {
    if p.0 == DEMO_PROFESSIONAL_ENTRY {
        (AccountId(DEMO_PROFESSIONAL), OrganizationId(DEMO_DESK))
    } else {
        desk()
    }
}

/// The partner account and organisation of the demo's provider of `kind`.
fn partner(kind: OrganizationKind) -> Actor {
    let p = PROVIDERS
        .iter()
        .find(|p| p.kind == kind)
        .expect("the demo has one of each partner asking");
    (
        AccountId(super::demo_id(p.partner)),
        OrganizationId(super::demo_id(p.id)),
    )
}

/// The demo's activations over `window` before `now`, each as one stream's
/// append, in the order they were requested. `people`: the demo's people
/// and when each was taken in charge (a desk request may name one taken
/// in charge before it).
pub fn activations(
    registry: &Registry,
    people: &[(PersonId, OffsetDateTime)],
    calendar: &WorkingCalendar,
    now: OffsetDateTime,
    window: Duration,
    seed: u64,
) -> Result<Vec<HistoryAppend>, DomainError> {
    let mut rng = StdRng::seed_from_u64(seed ^ 0xac71);
    let mut people = people.to_vec();
    people.sort_by_key(|&(p, at)| (at, p));
    let mut asked: Vec<(Request, Actor)> = (0..ACTIVATIONS)
        .filter_map(|i| request(&mut rng, i, &people, calendar, now, window))
        .collect();
    asked.sort_by_key(|(r, _)| (r.requested_at, r.id));
    life::run(registry, calendar, now, rng, asked)
}

/// Request number `i`: what, by whom, when (`None` if no moment of the
/// window was found).
fn request(
    rng: &mut StdRng,
    i: usize,
    people: &[(PersonId, OffsetDateTime)],
    calendar: &WorkingCalendar,
    now: OffsetDateTime,
    window: Duration,
) -> Option<(Request, Actor)> {
    use ProfessionalRole as R;
    use Sector as S;
    let start = now - window;
    let requested_at = (0..32).find_map(|_| {
        let day = rome_date(start) + Duration::days(rng.random_range(0..=window.whole_days()));
        let t = simulate::local(day, rng.random_range(WORKING_MINUTES.0..WORKING_MINUTES.1));
        (calendar.is_working_day(day) && start <= t && t <= now).then_some(t)
    })?;
    let (role, sector, language, mode) = if i % 20 == 7 {
        GAP_REQUESTS[(i / 20) % GAP_REQUESTS.len()]
    } else {
        let role = pick(
            rng,
            &[(R::Interpreter, 50), (R::Mediator, 35), (R::Lawyer, 15)],
        );
        let sector = if role == R::Lawyer {
            pick(rng, &[(S::Legal, 80), (S::Labour, 20)])
        } else {
            pick(rng, &[(S::Health, 45), (S::Legal, 35), (S::Labour, 20)])
        };
        let mode = pick(
            rng,
            &[(Mode::InPerson, 65), (Mode::Phone, 20), (Mode::Video, 15)],
        );
        let languages = if role == R::Lawyer {
            LAWYER_LANGUAGES
        } else {
            LANGUAGES
        };
        (role, sector, pick(rng, languages), mode)
    };
    let interpreter = role == R::Interpreter && i % 20 != 7;
    let by = if interpreter && sector == S::Health && rng.random_bool(0.3) {
        partner(OrganizationKind::HealthAuthority)
    } else if interpreter && sector == S::Legal && rng.random_bool(0.25) {
        partner(OrganizationKind::Questura)
    } else {
        desk()
    };
    // Someone of the demo, taken in charge before the request.
    let person = (by == desk() && rng.random_bool(0.6))
        .then(|| people.partition_point(|(_, at)| *at < requested_at))
        .filter(|&n| n > 0)
        .map(|n| people[rng.random_range(0..n)].0);
    let urgency = pick(rng, &[(Urgency::Hours24, 40), (Urgency::Hours48, 60)]);
    let days = match urgency {
        Urgency::Hours24 => 1,
        Urgency::Hours48 => rng.random_range(2..=3),
    };
    // On a quarter hour, mostly in the morning (09:00–12:45), else
    // 14:30–16:30.
    let day = rome_date(calendar.add_working_days(requested_at, days));
    let minute = if rng.random_bool(0.75) {
        540 + 15 * rng.random_range(0..=15)
    } else {
        870 + 15 * rng.random_range(0..=8)
    };
    let needed_at = simulate::local(day, minute);
    let place = match mode {
        Mode::InPerson if by == desk() => "Sportello, via Lacava 2, Potenza",
        Mode::InPerson => "Presso l'ente richiedente, Potenza",
        Mode::Phone => "Per telefono: la sede richiedente chiama",
        Mode::Video => "In video: collegamento inviato dalla sede richiedente",
    };
    let request = Request {
        id: ActivationId(v7(rng, requested_at)),
        role,
        sector,
        language: language.to_owned(),
        mode,
        needed_at,
        place: place.to_owned(),
        urgency,
        person,
        referral: None,
        requested_by: by.1,
        requested_at,
    };
    Some((request, by))
}

mod life;

#[cfg(test)]
mod tests;
