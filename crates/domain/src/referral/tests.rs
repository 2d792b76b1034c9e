//! The referral lifecycle: the transition table as a matrix, scenarios,
//! and a property test over any sequence of commands.

use super::*;
use proptest::prelude::*;
use std::collections::HashSet;

/// A referral to send, with deadlines two and five days out.
pub(crate) fn new_referral(note: Option<String>) -> NewReferral {
    let sent = time::macros::datetime!(2026-03-02 09:00 UTC);
    NewReferral {
        id: ReferralId::new(),
        person: PersonId::new(),
        need: NeedId::new(),
        need_code: NeedCode::parse("health_ssn_registration").unwrap(),
        organization: OrganizationId::new(),
        service: ServiceId::new(),
        redirected_from: None,
        acknowledge_by: Some(sent + time::Duration::days(2)),
        first_contact_by: Some(sent + time::Duration::days(5)),
        note,
    }
}

/// Every stored referral event reads back as itself (personal parts aside).
#[test]
fn stored_events_decode_back() {
    let (state, _) = sent();
    let events = [
        ReferralEvent::Sent(new_referral(None)),
        ReferralEvent::Acknowledged,
        ReferralEvent::Accepted,
        ReferralEvent::Declined {
            reason: DeclineReason::NoCapacity,
            text: None,
        },
        ReferralEvent::Started,
        ReferralEvent::Completed {
            outcome: Outcome::PartlyMet,
            note: None,
        },
        ReferralEvent::Failed {
            reason: FailReason::PersonWithdrew,
            text: None,
        },
        ReferralEvent::Cancelled,
        ReferralEvent::Redirected {
            to: ReferralId::new(),
            organization: OrganizationId::new(),
            service: ServiceId::new(),
        },
    ];
    for e in events {
        let mut e = e;
        if let ReferralEvent::Sent(n) = &mut e {
            n.person = state.person;
        }
        let parts = Stored {
            event: e.clone(),
            referral: &state,
        }
        .into_parts();
        assert_eq!(decode(parts.event_type, &parts.payload).unwrap(), e);
    }
    assert!(matches!(
        decode("ReferralSent", &serde_json::json!({"referral_id": 1})),
        Err(DecodeError::Malformed { .. })
    ));
    assert!(matches!(
        decode("Nope", &serde_json::json!({})),
        Err(DecodeError::UnknownType(_))
    ));
}

fn sent() -> (Referral, ReferralCommand) {
    let cmd = ReferralCommand::Send(new_referral(Some("Demo note".into())));
    let events = decide(None, cmd.clone()).unwrap();
    let state = events.iter().fold(None, evolve).unwrap();
    (state, cmd)
}

fn run(state: Referral, cmd: ReferralCommand) -> Result<Referral, DomainError> {
    let events = decide(Some(&state), cmd)?;
    Ok(events.iter().fold(Some(state), evolve).unwrap())
}

#[test]
fn the_transition_table() {
    use ReferralAction as A;
    use ReferralStatus as S;
    let allowed: HashSet<(S, A, S)> = [
        (S::Sent, A::Acknowledge, S::Acknowledged),
        (S::Sent, A::Accept, S::Accepted),
        (S::Sent, A::Decline, S::Declined),
        (S::Sent, A::Cancel, S::Cancelled),
        (S::Acknowledged, A::Accept, S::Accepted),
        (S::Acknowledged, A::Decline, S::Declined),
        (S::Acknowledged, A::Cancel, S::Cancelled),
        (S::Accepted, A::Start, S::InProgress),
        (S::Accepted, A::Complete, S::Completed),
        (S::Accepted, A::Fail, S::Failed),
        (S::Accepted, A::Cancel, S::Cancelled),
        (S::InProgress, A::Complete, S::Completed),
        (S::InProgress, A::Fail, S::Failed),
        (S::InProgress, A::Cancel, S::Cancelled),
        (S::Declined, A::Redirect, S::Redirected),
        (S::Failed, A::Redirect, S::Redirected),
    ]
    .into_iter()
    .collect();
    for from in STATUSES {
        for action in ReferralAction::ALL {
            let expected = allowed
                .iter()
                .find(|(f, a, _)| *f == from && *a == action)
                .map(|(_, _, to)| *to);
            assert_eq!(
                transition(from, action),
                expected,
                "{from:?} --{action:?}-->"
            );
        }
    }
    for s in STATUSES {
        let stuck = ReferralAction::ALL
            .iter()
            .all(|a| transition(s, *a).is_none());
        assert_eq!(stuck, s.is_closed(), "{s:?}: closed means no way out");
    }
}

const STATUSES: [ReferralStatus; 9] = [
    ReferralStatus::Sent,
    ReferralStatus::Acknowledged,
    ReferralStatus::Accepted,
    ReferralStatus::Declined,
    ReferralStatus::InProgress,
    ReferralStatus::Completed,
    ReferralStatus::Failed,
    ReferralStatus::Cancelled,
    ReferralStatus::Redirected,
];

#[test]
fn declined_for_no_capacity_then_redirected() {
    let (r, _) = sent();
    let r = run(r, ReferralCommand::Acknowledge).unwrap();
    let r = run(
        r,
        ReferralCommand::Decline {
            reason: DeclineReason::NoCapacity,
            text: None,
        },
    )
    .unwrap();
    assert_eq!(r.status, ReferralStatus::Declined);
    let to = ReferralId::new();
    let r = run(
        r,
        ReferralCommand::Redirect {
            to,
            organization: OrganizationId::new(),
            service: ServiceId::new(),
        },
    )
    .unwrap();
    assert_eq!(
        (r.status, r.redirected_to),
        (ReferralStatus::Redirected, Some(to))
    );
}

#[test]
fn refusals_are_errors_not_panics() {
    let (r, send) = sent();
    assert_eq!(
        decide(Some(&r), send),
        Err(DomainError::AlreadyExists("referral"))
    );
    assert_eq!(
        decide(None, ReferralCommand::Accept),
        Err(DomainError::NotFound("referral"))
    );
    assert_eq!(
        decide(Some(&r), ReferralCommand::Start),
        Err(DomainError::NotAllowed {
            action: "start",
            status: "sent"
        })
    );
    let other_without_text = ReferralCommand::Decline {
        reason: DeclineReason::Other,
        text: None,
    };
    assert!(matches!(
        decide(Some(&r), other_without_text),
        Err(DomainError::Invalid { field: "text", .. })
    ));
    let declined = run(
        r,
        ReferralCommand::Decline {
            reason: DeclineReason::OutsideArea,
            text: None,
        },
    )
    .unwrap();
    let to_itself = ReferralCommand::Redirect {
        to: declined.id,
        organization: OrganizationId::new(),
        service: ServiceId::new(),
    };
    assert!(decide(Some(&declined), to_itself).is_err());
}

#[test]
fn free_text_travels_in_the_personal_part_only() {
    let (r, _) = sent();
    let event = ReferralEvent::Declined {
        reason: DeclineReason::Other,
        text: Some("Demo reason text".into()),
    };
    let parts = Stored {
        event,
        referral: &r,
    }
    .into_parts();
    assert_eq!(parts.event_type, "ReferralDeclined");
    assert!(!parts.payload.to_string().contains("Demo reason text"));
    let (person, personal) = parts.personal.unwrap();
    assert_eq!(person, r.person);
    assert_eq!(personal["text"], "Demo reason text");
    assert_eq!(parts.concerns, Some(r.organization));
}

fn any_command() -> impl Strategy<Value = ReferralCommand> {
    prop_oneof![
        Just(ReferralCommand::Acknowledge),
        Just(ReferralCommand::Accept),
        prop_oneof![
            Just(DeclineReason::NoCapacity),
            Just(DeclineReason::NotEligible),
            Just(DeclineReason::Other)
        ]
        .prop_flat_map(|reason| proptest::option::of("[a-z ]{0,12}")
            .prop_map(move |text| ReferralCommand::Decline { reason, text })),
        Just(ReferralCommand::Start),
        proptest::option::of("[a-z]{1,8}").prop_map(|note| ReferralCommand::Complete {
            outcome: Outcome::NeedMet,
            note
        }),
        proptest::option::of("[a-z]{1,8}").prop_map(|text| ReferralCommand::Fail {
            reason: FailReason::Other,
            text
        }),
        Just(ReferralCommand::Cancel),
        Just(ReferralCommand::Redirect {
            to: ReferralId::new(),
            organization: OrganizationId::new(),
            service: ServiceId::new(),
        }),
    ]
}

/// Every status reachable from `sent` through the table.
fn reachable() -> HashSet<ReferralStatus> {
    let mut seen = HashSet::from([ReferralStatus::Sent]);
    let mut todo = vec![ReferralStatus::Sent];
    while let Some(s) = todo.pop() {
        for a in ReferralAction::ALL {
            if let Some(n) = transition(s, a)
                && seen.insert(n)
            {
                todo.push(n);
            }
        }
    }
    seen
}

proptest! {
    /// Whatever commands come, in whatever order: the referral is always in
    /// a status the lifecycle reaches, each accepted command moves it by
    /// exactly the table, and a refused command changes nothing.
    #[test]
    fn any_sequence_of_commands_stays_in_the_lifecycle(
        commands in proptest::collection::vec(any_command(), 0..40)
    ) {
        let reachable = reachable();
        let (mut state, _) = sent();
        for cmd in commands {
            let before = state.clone();
            let action = cmd.action().expect("not a send");
            match decide(Some(&state), cmd) {
                Ok(events) => {
                    prop_assert_eq!(events.len(), 1);
                    state = events.iter().fold(Some(state), evolve).unwrap();
                    prop_assert_eq!(Some(state.status), transition(before.status, action));
                }
                Err(_) => {
                    // A refusal appends nothing: the state is what it was.
                    prop_assert_eq!(&state, &before);
                }
            }
            prop_assert!(reachable.contains(&state.status));
            prop_assert_eq!(state.redirected_to.is_some(), state.status == ReferralStatus::Redirected);
        }
    }
}
