//! The demo's registry and activations, pure: a seed gives the same
//! histories; each replays through the domain's `decide`; offers follow
//! the real ranking; nothing is dated after `now`; the registry's gaps are
//! where the demo says they are.

use super::*;
use crate::demo::registry::{self, Registry};
use crate::demo::{DEMO_NETWORK, DEMO_SCHEDULER};
use sportello_domain::NetworkId;
use sportello_domain::activation::ranking::{RegistryStatus, coverage, rank};
use sportello_domain::activation::{Activation, ActivationCommand, ActivationEvent};
use sportello_domain::aggregate::{ActivationAggregate, Aggregate, ProfessionalAggregate};
use sportello_domain::registry::ProfessionalEvent;
use sportello_store::ExpectedVersion;
use std::collections::HashMap;
use std::collections::{BTreeSet, HashSet};
use time::macros::datetime;
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-11-27 15:20 UTC);
const WINDOW: Duration = Duration::days(183);
const SEED: u64 = 0x5e0d_2026;

/// Sixty people, taken in charge every third day of the window.
fn people() -> Vec<(PersonId, OffsetDateTime)> {
    (0..60)
        .map(|i| {
            let at = NOW - WINDOW + Duration::days(3 * i) + Duration::hours(1);
            (PersonId(Uuid::from_u128(0x5e0_0000 + i as u128)), at)
        })
        .collect()
}

fn generate(seed: u64) -> (Registry, Vec<HistoryAppend>) {
    let registry = registry::registry(NOW).expect("the registry builds");
    let calendar = WorkingCalendar::for_potenza();
    let all =
        activations(&registry, &people(), &calendar, NOW, WINDOW, seed).expect("valid histories");
    (registry, all)
}

/// An event's text (place, outcome, reason): in the payload, or sealed.
fn text(decoded: &str, e: &sportello_store::NewEvent) -> String {
    if !decoded.is_empty() {
        return decoded.to_owned();
    }
    let (_, personal) = e.personal.as_ref().expect("sealed when not in clear");
    personal["text"].as_str().expect("a text").to_owned()
}

#[test]
fn a_seed_gives_the_same_histories() {
    let key = |h: &HistoryAppend| (h.0.stream_id, h.0.events.clone(), h.1.clone());
    let a: Vec<_> = generate(7).1.iter().map(key).collect();
    let b: Vec<_> = generate(7).1.iter().map(key).collect();
    assert_eq!(a, b);
    let c: Vec<_> = generate(8).1.iter().map(key).collect();
    assert_ne!(a, c, "another seed, other activations");
    let r1: Vec<_> = registry::registry(NOW)
        .unwrap()
        .appends()
        .map(key)
        .collect();
    let r2: Vec<_> = registry::registry(NOW)
        .unwrap()
        .appends()
        .map(key)
        .collect();
    assert_eq!(r1, r2);
}

/// Each event decided again from the command that makes it, on the state
/// the previous ones left; dated in the window, in order; the automatic
/// ones at exactly their moment, by the scheduler.
#[test]
fn histories_replay_through_decide_and_nothing_is_after_now() {
    use ActivationCommand as C;
    use ActivationEvent as E;
    let (_, all) = generate(SEED);
    assert!((150..=250).contains(&all.len()), "{}", all.len());
    let mut seen: HashMap<&'static str, usize> = HashMap::new();
    let mut statuses = HashSet::new();
    let known: HashSet<_> = people().into_iter().map(|(p, _)| p).collect();
    for (req, meta) in &all {
        assert_eq!(req.expected, ExpectedVersion::NoStream);
        assert_eq!(req.stream_kind, "activation");
        assert_eq!(req.network, NetworkId(DEMO_NETWORK));
        assert_eq!(req.events.len(), meta.len());
        for w in meta.windows(2) {
            assert!(w[0].occurred_at <= w[1].occurred_at, "in order");
        }
        for m in meta {
            assert!(
                NOW - WINDOW <= m.occurred_at && m.occurred_at <= NOW,
                "{m:?}"
            );
        }
        let mut state: Option<Activation> = None;
        for (e, m) in req.events.iter().zip(meta) {
            let event = ActivationAggregate::decode(&e.event_type, &e.payload).unwrap();
            let at = m.occurred_at;
            let command = match event.clone() {
                E::Requested(r) => {
                    assert_eq!(r.requested_at, at);
                    assert_eq!(r.requested_by, m.organization_id);
                    assert!(r.person.is_none_or(|p| known.contains(&p)));
                    assert!(r.person.is_none() || r.requested_by.0 == DEMO_DESK);
                    let place = text(&r.place, e);
                    C::Request(Request { place, ..r })
                }
                E::Offered { to, expires_at } => {
                    assert_eq!(expires_at, at + OFFER_FOR);
                    C::Offer {
                        to,
                        expires_at,
                        now: at,
                    }
                }
                E::Accepted { by, at: when } => {
                    assert_eq!(when, at);
                    C::Accept { by, now: at }
                }
                E::Declined { by } => C::Decline { by, now: at },
                E::OfferExpired { .. } => {
                    let (_, until) = state.as_ref().unwrap().offer.unwrap();
                    assert_eq!(at, until, "expired when the offer ran out");
                    assert_eq!(m.account_id.0, DEMO_SCHEDULER);
                    C::ExpireOffer { now: at }
                }
                E::Scheduled { at: when, place } => C::Schedule {
                    at: when,
                    place: text(&place, e),
                },
                E::Delivered {
                    quarter_hours,
                    outcome,
                } => {
                    assert!((2..=8).contains(&quarter_hours));
                    C::Deliver {
                        quarter_hours,
                        outcome: text(&outcome, e),
                    }
                }
                E::Cancelled { reason } => C::Cancel {
                    reason: text(&reason, e),
                },
                E::DeadlineMissed => {
                    let deadline = state.as_ref().unwrap().request.deadline();
                    assert_eq!(at, deadline, "recorded at exactly the deadline");
                    assert_eq!(m.account_id.0, DEMO_SCHEDULER);
                    C::MissDeadline { now: at }
                }
            };
            let again = ActivationAggregate::decide(state.as_ref(), command)
                .unwrap_or_else(|err| panic!("{} refused: {err:?}", e.event_type));
            assert_eq!(again.len(), 1);
            assert_eq!(again[0].event_type(), event.event_type());
            *seen.entry(event.event_type()).or_default() += 1;
            state = ActivationAggregate::evolve(state, &again[0]);
        }
        let end = state.expect("requested");
        statuses.insert(end.status.as_str());
        if end.deadline_missed {
            assert!(end.confirmed_at.is_none_or(|t| t >= end.request.deadline()));
        }
    }
    for t in [
        "ActivationRequested",
        "ActivationOffered",
        "ActivationAccepted",
        "ActivationDeclined",
        "ActivationOfferExpired",
        "ActivationScheduled",
        "ActivationDelivered",
        "ActivationCancelled",
        "ActivationDeadlineMissed",
    ] {
        assert!(seen.get(t).is_some_and(|&n| n > 0), "no {t}: {seen:?}");
    }
    assert!(statuses.contains("delivered") && statuses.contains("cancelled"));
}

/// Every offer goes to the first of the ranking, on the registry as it
/// stood, with the accepted activations of the 30 days before and who
/// already passed.
#[test]
fn offers_follow_the_ranking() {
    let (registry, all) = generate(SEED);
    let mut accepted: Vec<(OffsetDateTime, ProfessionalId)> = Vec::new();
    let mut offers = Vec::new();
    for (req, meta) in &all {
        let mut state = None;
        for (e, m) in req.events.iter().zip(meta) {
            let event = ActivationAggregate::decode(&e.event_type, &e.payload).unwrap();
            match &event {
                ActivationEvent::Accepted { by, at } => accepted.push((*at, *by)),
                ActivationEvent::Offered { to, .. } => {
                    let a: &Activation = state.as_ref().unwrap();
                    offers.push((m.occurred_at, *to, a.request.clone(), a.passed.clone()));
                }
                _ => {}
            }
            state = ActivationAggregate::evolve(state, &event);
        }
    }
    assert!(offers.len() > ACTIVATIONS / 2);
    let recent = |at: OffsetDateTime, same_instant: bool| {
        let mut counts = HashMap::new();
        for (t, p) in &accepted {
            if *t > at - RECENT && (*t < at || (same_instant && *t == at)) {
                *counts.entry(*p).or_default() += 1;
            }
        }
        counts
    };
    for (at, to, request, passed) in offers {
        let reg = registry.at(at);
        // An acceptance at the very same minute may have come first or not.
        let first = |same| rank(&reg, &request, &recent(at, same), &passed)[0].professional;
        assert!(first(false) == to || first(true) == to, "{request:?}");
    }
}

#[test]
fn the_registrys_gaps_hold() {
    use ProfessionalRole as R;
    use Sector as S;
    let (registry, all) = generate(SEED);
    assert_eq!(registry.len(), 24);
    let now = registry.at(NOW);
    // Nobody speaks Bengali in health.
    for role in [R::Mediator, R::Interpreter, R::Lawyer] {
        assert_eq!(coverage(&now, role, S::Health, "bn"), 0);
    }
    // One professional only speaks Punjabi.
    assert_eq!(coverage(&now, R::Interpreter, S::Health, "pa"), 1);
    let punjabi = registry
        .professionals_at(NOW)
        .filter(|p| p.profile.languages.iter().any(|(l, _)| l == "pa"))
        .count();
    assert_eq!(punjabi, 1);
    // No lawyer speaks Urdu, none works in health.
    assert_eq!(coverage(&now, R::Lawyer, S::Legal, "ur"), 0);
    assert_eq!(coverage(&now, R::Lawyer, S::Labour, "ur"), 0);
    assert!(
        now.iter()
            .all(|p| !p.roles.contains(&R::Lawyer) || !p.sectors.contains(&S::Health))
    );
    // Chinese by video only.
    let chinese: Vec<_> = now
        .iter()
        .filter(|p| p.languages.iter().any(|(l, _)| l == "zh"))
        .collect();
    assert!(!chinese.is_empty());
    assert!(
        chinese
            .iter()
            .all(|p| p.modes == BTreeSet::from([Mode::Video]))
    );
    // Romanian is well covered.
    assert!(coverage(&now, R::Interpreter, S::Health, "ro") >= 2);
    // One suspended, one who left, one admitted during the window.
    let count = |s| now.iter().filter(|p| p.status == s).count();
    assert_eq!(count(RegistryStatus::Suspended), 1);
    assert_eq!(count(RegistryStatus::Left), 1);
    assert_eq!(registry.at(NOW - WINDOW).len(), 23);
    // The gap requests were never offered to anyone, and missed their deadline.
    let mut gaps = 0;
    for (req, meta) in &all {
        let Ok(ActivationEvent::Requested(r)) =
            ActivationAggregate::decode(&req.events[0].event_type, &req.events[0].payload)
        else {
            panic!("an activation opens with its request");
        };
        if r.sector == S::Health && r.language == "bn" {
            gaps += 1;
            let types: Vec<_> = req.events.iter().map(|e| e.event_type.as_str()).collect();
            assert!(!types.contains(&"ActivationOffered"), "{types:?}");
            if r.deadline() <= NOW {
                assert!(types.contains(&"ActivationDeadlineMissed"), "{types:?}");
                assert!(meta.iter().any(|m| m.occurred_at == r.deadline()));
            }
        }
    }
    assert!(gaps > 0, "the Bengali health gap is asked for");
}

/// The registry's streams replay to the states it ranks on; every name,
/// phone and email is a demo one; the demo professional's account keeps
/// their own hours.
#[test]
fn the_registry_is_fictitious_and_replays() {
    let registry = registry::registry(NOW).unwrap();
    let states: Vec<_> = registry.professionals_at(NOW).cloned().collect();
    for ((req, meta), expected) in registry.appends().zip(&states) {
        assert_eq!(req.stream_kind, "professional");
        assert_eq!(req.stream_id.0, expected.id.0);
        let mut state = None;
        for (e, m) in req.events.iter().zip(meta) {
            assert!(m.occurred_at <= NOW);
            let event = ProfessionalAggregate::decode(&e.event_type, &e.payload).unwrap();
            if let ProfessionalEvent::Registered { .. } = event {
                let (key, contact) = e.personal.as_ref().expect("contacts are sealed");
                assert_eq!(key.0, expected.id.0, "under the professional's own key");
                assert!(contact["name"].as_str().unwrap().starts_with("Demo "));
                assert!(contact["phone"].as_str().unwrap().starts_with("+39 555 "));
                assert!(
                    contact["email"]
                        .as_str()
                        .unwrap()
                        .ends_with("@example.invalid")
                );
            }
            if let ProfessionalEvent::AvailabilitySet(_) = event
                && expected.id.0 == DEMO_PROFESSIONAL_ENTRY
                && e != &req.events[1]
            {
                assert_eq!(m.account_id.0, DEMO_PROFESSIONAL, "set by themselves");
            }
            state = ProfessionalAggregate::evolve(state, &event);
        }
        assert_eq!(state.as_ref(), Some(expected));
    }
    let mine = states
        .iter()
        .find(|p| p.id.0 == DEMO_PROFESSIONAL_ENTRY)
        .unwrap();
    assert!(mine.profile.roles.contains(&ProfessionalRole::Interpreter));
}
