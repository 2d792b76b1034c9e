//! The activation lifecycle: the scenarios with a set clock, and a
//! property test over any interleaving of offers, answers, expiries,
//! deadlines and cancellations.

use super::*;
use crate::activation::{Mode, ProfessionalRole, Sector, Urgency};
use crate::ids::ActivationId;
use proptest::prelude::*;
use time::Duration;
use time::macros::datetime;

const T0: OffsetDateTime = datetime!(2026-03-02 09:00 UTC);

fn request(urgency: Urgency) -> Request {
    Request {
        id: ActivationId::new(),
        role: ProfessionalRole::Interpreter,
        sector: Sector::Health,
        language: "ar".into(),
        mode: Mode::InPerson,
        needed_at: T0 + Duration::hours(26),
        place: "Ospedale San Carlo, ambulatorio 3".into(),
        urgency,
        person: None,
        referral: None,
        requested_by: crate::ids::OrganizationId(uuid::Uuid::from_u128(9)),
        requested_at: T0,
    }
}

fn run(state: Option<Activation>, cmd: ActivationCommand) -> Result<Activation, DomainError> {
    let events = decide(state.as_ref(), cmd)?;
    Ok(events.iter().fold(state, evolve).expect("a state"))
}

#[test]
fn declined_then_unanswered_then_accepted_within_the_day() {
    let [first, second, third] = [(); 3].map(|_| ProfessionalId::new());
    let timeout = Duration::hours(2);
    let a = run(None, ActivationCommand::Request(request(Urgency::Hours24))).unwrap();
    let offer = |to, now| ActivationCommand::Offer {
        to,
        expires_at: now + timeout,
        now,
    };
    let a = run(Some(a), offer(first, T0)).unwrap();
    let t = T0 + Duration::minutes(30);
    let a = run(Some(a), ActivationCommand::Decline { by: first, now: t }).unwrap();
    let a = run(Some(a), offer(second, t)).unwrap();
    // Too early to expire; then it lapses.
    assert!(
        run(
            Some(a.clone()),
            ActivationCommand::ExpireOffer {
                now: t + Duration::hours(1)
            }
        )
        .is_err()
    );
    let t = t + timeout;
    let a = run(Some(a), ActivationCommand::ExpireOffer { now: t }).unwrap();
    assert_eq!(a.passed, [first, second]);
    // Neither is offered it again.
    assert!(run(Some(a.clone()), offer(second, t)).is_err());
    let a = run(Some(a), offer(third, t)).unwrap();
    // Only the one offered may answer.
    assert!(
        run(
            Some(a.clone()),
            ActivationCommand::Accept { by: first, now: t }
        )
        .is_err()
    );
    let a = run(
        Some(a),
        ActivationCommand::Accept {
            by: third,
            now: t + Duration::minutes(10),
        },
    )
    .unwrap();
    assert_eq!(a.status, Status::Confirmed);
    assert_eq!(a.confirmed, Some(third));
    let a = run(
        Some(a),
        ActivationCommand::Schedule {
            at: T0 + Duration::hours(20),
            place: "Ospedale San Carlo, Potenza".into(),
        },
    )
    .unwrap();
    assert_eq!(a.status, Status::Scheduled);
    // Confirmed within 24 hours: the deadline cannot be missed any more.
    assert!(a.confirmed_at.unwrap() <= a.request.deadline());
    assert!(
        run(
            Some(a.clone()),
            ActivationCommand::MissDeadline {
                now: T0 + Duration::hours(30)
            }
        )
        .is_err()
    );
    let a = run(
        Some(a),
        ActivationCommand::Deliver {
            quarter_hours: 6,
            outcome: "Demo: visit interpreted".into(),
        },
    )
    .unwrap();
    assert_eq!(a.status, Status::Delivered);
    assert!(run(Some(a), ActivationCommand::Cancel { reason: "x".into() }).is_err());
}

#[test]
fn nobody_accepts_the_deadline_is_missed_exactly_once_at_its_moment() {
    let a = run(None, ActivationCommand::Request(request(Urgency::Hours24))).unwrap();
    let deadline = T0 + Duration::hours(24);
    assert!(
        run(
            Some(a.clone()),
            ActivationCommand::MissDeadline {
                now: deadline - Duration::seconds(1)
            }
        )
        .is_err(),
        "not before its moment"
    );
    let a = run(Some(a), ActivationCommand::MissDeadline { now: deadline }).unwrap();
    assert!(a.deadline_missed);
    assert!(
        run(
            Some(a.clone()),
            ActivationCommand::MissDeadline {
                now: deadline + Duration::hours(1)
            }
        )
        .is_err(),
        "once"
    );
    // Still open to a late professional.
    let p = ProfessionalId::new();
    let a = run(
        Some(a),
        ActivationCommand::Offer {
            to: p,
            expires_at: deadline + Duration::hours(3),
            now: deadline + Duration::hours(1),
        },
    )
    .unwrap();
    assert_eq!(a.status, Status::Offered);
}

#[test]
fn bad_requests_are_refused_naming_the_field() {
    let mut r = request(Urgency::Hours48);
    r.language = "ARA".into();
    assert!(matches!(
        decide(None, ActivationCommand::Request(r)),
        Err(DomainError::Invalid {
            field: "language",
            ..
        })
    ));
    let mut r = request(Urgency::Hours48);
    r.needed_at = T0 - Duration::hours(1);
    assert!(matches!(
        decide(None, ActivationCommand::Request(r)),
        Err(DomainError::Invalid {
            field: "needed_at",
            ..
        })
    ));
}

/// Any command, from a small pool of professionals and moments.
fn command(pros: [ProfessionalId; 3]) -> impl Strategy<Value = ActivationCommand> {
    let pro = prop::sample::select(pros.to_vec());
    let minutes = 0i64..(72 * 60);
    let at = move |m: i64| T0 + Duration::minutes(m);
    prop_oneof![
        (pro.clone(), minutes.clone(), 1i64..240).prop_map(move |(to, m, d)| {
            ActivationCommand::Offer {
                to,
                expires_at: at(m) + Duration::minutes(d),
                now: at(m),
            }
        }),
        (pro.clone(), minutes.clone())
            .prop_map(move |(by, m)| ActivationCommand::Accept { by, now: at(m) }),
        (pro, minutes.clone())
            .prop_map(move |(by, m)| ActivationCommand::Decline { by, now: at(m) }),
        minutes
            .clone()
            .prop_map(move |m| ActivationCommand::ExpireOffer { now: at(m) }),
        minutes
            .clone()
            .prop_map(move |m| ActivationCommand::MissDeadline { now: at(m) }),
        minutes
            .clone()
            .prop_map(move |m| ActivationCommand::Schedule {
                at: at(m),
                place: "Sportello".into()
            }),
        (1u16..10).prop_map(|q| ActivationCommand::Deliver {
            quarter_hours: q,
            outcome: "Demo".into()
        }),
        Just(ActivationCommand::Cancel {
            reason: "Demo".into()
        }),
    ]
}

proptest! {
    #[test]
    fn never_two_confirmed_professionals_never_outside_the_lifecycle(
        commands in prop::collection::vec(command([ProfessionalId(uuid::Uuid::from_u128(1)), ProfessionalId(uuid::Uuid::from_u128(2)), ProfessionalId(uuid::Uuid::from_u128(3))]), 0..40)
    ) {
        let mut state = Some(run(None, ActivationCommand::Request(request(Urgency::Hours24))).unwrap());
        let mut accepted = 0;
        let mut missed = 0;
        for cmd in commands {
            let before = state.clone().unwrap();
            let Ok(events) = decide(state.as_ref(), cmd) else { continue };
            for e in &events {
                match e {
                    ActivationEvent::Accepted { .. } => accepted += 1,
                    ActivationEvent::DeadlineMissed => missed += 1,
                    _ => {}
                }
                // Allowed transitions only.
                let next = evolve(state.clone(), e).unwrap();
                let ok = matches!(
                    (before.status, next.status),
                    (Status::Waiting, Status::Waiting | Status::Offered | Status::Cancelled)
                        | (Status::Offered, Status::Offered | Status::Waiting | Status::Confirmed | Status::Cancelled)
                        | (Status::Confirmed, Status::Scheduled | Status::Cancelled)
                        | (Status::Scheduled, Status::Scheduled | Status::Delivered | Status::Cancelled)
                );
                prop_assert!(ok, "{:?} -> {:?} by {:?}", before.status, next.status, e);
                // A live offer exactly when offered; never to one who passed.
                prop_assert_eq!(next.offer.is_some(), next.status == Status::Offered);
                if let Some((to, _)) = next.offer {
                    prop_assert!(!next.passed.contains(&to));
                }
                // Confirmed once, and it stays who it was.
                if before.confirmed.is_some() {
                    prop_assert_eq!(next.confirmed, before.confirmed);
                }
                state = Some(next);
            }
        }
        prop_assert!(accepted <= 1, "{} professionals confirmed", accepted);
        prop_assert!(missed <= 1, "deadline missed {} times", missed);
    }
}

/// The property above is only as good as the states its sequences reach:
/// this checks that random sequences do confirm, deliver, cancel and miss
/// deadlines, not only fail.
#[test]
fn random_sequences_reach_every_status() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let pros = [1u128, 2, 3].map(|n| ProfessionalId(uuid::Uuid::from_u128(n)));
    let mut runner = TestRunner::deterministic();
    let strategy = prop::collection::vec(command(pros), 0..40);
    let mut seen = std::collections::BTreeSet::new();
    let mut missed = false;
    for _ in 0..500 {
        let commands = strategy.new_tree(&mut runner).unwrap().current();
        let mut state =
            Some(run(None, ActivationCommand::Request(request(Urgency::Hours24))).unwrap());
        for cmd in commands {
            if let Ok(events) = decide(state.as_ref(), cmd) {
                missed |= events.contains(&ActivationEvent::DeadlineMissed);
                state = events.iter().fold(state, evolve);
                seen.insert(state.as_ref().unwrap().status.as_str());
            }
        }
    }
    for s in [
        "waiting",
        "offered",
        "confirmed",
        "scheduled",
        "delivered",
        "cancelled",
    ] {
        assert!(seen.contains(s), "never reached {s}: {seen:?}");
    }
    assert!(missed);
}
