//! The case lifecycle: scenarios and a property test over any sequence of
//! commands.

use super::*;
use crate::case::{PersonIdentity, PersonName};
use proptest::prelude::*;

fn code(c: &str) -> NeedCode {
    NeedCode::parse(c).expect("a code of the taxonomy")
}

fn some_code() -> NeedCode {
    crate::taxonomy::all()
        .iter()
        .map(|c| code(c.code))
        .find(|c| !c.is_retired())
        .expect("an active code")
}

fn opened() -> Case {
    let events = decide(
        None,
        CaseCommand::TakeInCharge(PersonTakenInCharge {
            person_id: PersonId::new(),
            desk: OrganizationId::new(),
            channel: Channel::Desk,
            operator: None,
            identity: PersonIdentity {
                names: vec![PersonName {
                    kind: "as_used".into(),
                    text: "Demo Persona".into(),
                }],
                ..Default::default()
            },
        }),
    )
    .unwrap();
    events.iter().fold(None, evolve).unwrap()
}

fn run(state: Case, cmd: CaseCommand) -> Result<Case, DomainError> {
    let events = decide(Some(&state), cmd)?;
    Ok(events.iter().fold(Some(state), evolve).unwrap())
}

#[test]
fn three_needs_one_resolved_at_the_desk_then_closed_and_reopened() {
    let mut case = opened();
    let needs: Vec<NeedId> = (0..3).map(|_| NeedId::new()).collect();
    for n in &needs {
        case = run(
            case,
            CaseCommand::RecordNeed {
                need: *n,
                code: some_code(),
                urgency: Urgency::Normal,
                note: None,
            },
        )
        .unwrap();
    }
    case = run(
        case,
        CaseCommand::ResolveNeed {
            need: needs[0],
            outcome: DeskOutcome::InformationGiven,
            note: Some("Demo: told where to renew".into()),
        },
    )
    .unwrap();
    assert_eq!(case.needs[&needs[0]].status, NeedStatus::Resolved);
    assert_eq!(case.needs[&needs[1]].status, NeedStatus::Open);
    let again = CaseCommand::ResolveNeed {
        need: needs[0],
        outcome: DeskOutcome::Orientation,
        note: None,
    };
    assert!(decide(Some(&case), again).is_err());
    case = run(case, CaseCommand::Close).unwrap();
    // A closed case still records whoever comes, but takes no new need.
    case = run(
        case,
        CaseCommand::RecordVisit {
            channel: Channel::Phone,
            note: None,
        },
    )
    .unwrap();
    assert_eq!(case.visits, 2);
    let need = CaseCommand::RecordNeed {
        need: NeedId::new(),
        code: some_code(),
        urgency: Urgency::High,
        note: None,
    };
    assert!(matches!(
        decide(Some(&case), need),
        Err(DomainError::NotAllowed { .. })
    ));
    case = run(case, CaseCommand::Reopen).unwrap();
    assert_eq!(case.status, CaseStatus::Open);
}

#[test]
fn notes_travel_sealed_and_the_desk_is_the_organisation_concerned() {
    let case = opened();
    let event = CaseEvent::VisitRecorded {
        channel: Channel::Outreach,
        note: Some("Demo private note".into()),
    };
    let parts = Stored { event, case: &case }.into_parts();
    assert_eq!(parts.event_type, "VisitRecorded");
    assert!(!parts.payload.to_string().contains("Demo private note"));
    assert_eq!(parts.personal.unwrap().1["note"], "Demo private note");
    assert_eq!(parts.concerns, Some(case.desk));
}

#[test]
fn every_case_event_matches_its_schema() {
    let case = opened();
    let need = NeedId::new();
    let events = vec![
        CaseEvent::VisitRecorded {
            channel: Channel::Phone,
            note: Some("n".into()),
        },
        CaseEvent::NeedRecorded {
            need,
            code: some_code(),
            urgency: Urgency::High,
            note: Some("n".into()),
        },
        CaseEvent::NeedResolved {
            need,
            outcome: DeskOutcome::Orientation,
            note: Some("n".into()),
        },
        CaseEvent::Closed,
        CaseEvent::Reopened,
    ];
    for event in events {
        let parts = Stored { event, case: &case }.into_parts();
        crate::schema::assert_parts_match_schema(&parts, crate::case::STREAM_KIND);
    }
}

fn any_command(needs: Vec<NeedId>) -> impl Strategy<Value = CaseCommand> {
    let pick = proptest::sample::select(needs);
    prop_oneof![
        Just(CaseCommand::RecordVisit {
            channel: Channel::Desk,
            note: None
        }),
        pick.clone().prop_map(|need| CaseCommand::RecordNeed {
            need,
            code: some_code(),
            urgency: Urgency::Normal,
            note: None
        }),
        pick.prop_map(|need| CaseCommand::ResolveNeed {
            need,
            outcome: DeskOutcome::Orientation,
            note: None
        }),
        Just(CaseCommand::Close),
        Just(CaseCommand::Reopen),
    ]
}

proptest! {
    /// Whatever the desk does, in whatever order: a refused command changes
    /// nothing; an accepted one gives one event; visits only grow; a
    /// need is resolved only once recorded, and never goes back to open.
    #[test]
    fn any_sequence_of_case_commands_keeps_the_rules(
        commands in proptest::collection::vec(
            any_command((0..4).map(|_| NeedId::new()).collect()), 0..40)
    ) {
        let mut case = opened();
        for cmd in commands {
            let before = case.clone();
            match decide(Some(&case), cmd) {
                Ok(events) => {
                    prop_assert_eq!(events.len(), 1);
                    case = events.iter().fold(Some(case), evolve).unwrap();
                }
                Err(_) => prop_assert_eq!(&case, &before),
            }
            prop_assert!(case.visits >= before.visits);
            for (id, n) in &before.needs {
                prop_assert!(case.needs.contains_key(id));
                if n.status == NeedStatus::Resolved {
                    prop_assert_eq!(case.needs[id].status, NeedStatus::Resolved);
                }
            }
            if before.status == CaseStatus::Closed {
                prop_assert_eq!(case.needs.len(), before.needs.len());
            }
        }
    }
}

#[test]
fn an_erased_case_takes_no_more_commands_and_refers_nothing() {
    let case = run(opened(), CaseCommand::Close).unwrap();
    // Erasure answers a right whether the case is open or closed.
    let erased = run(case, CaseCommand::Erase(ErasureReason::Retention)).unwrap();
    assert!(erased.erased);
    for cmd in [
        CaseCommand::Reopen,
        CaseCommand::RecordVisit {
            channel: Channel::Phone,
            note: None,
        },
        CaseCommand::Erase(ErasureReason::Request),
    ] {
        assert_eq!(
            decide(Some(&erased), cmd),
            Err(DomainError::NotAllowed {
                action: "change the case",
                status: "erased",
            })
        );
    }
    assert!(erased.may_refer_to(OrganizationId::new()).is_err());
    // The event carries the reason and nothing personal.
    let parts = Stored {
        event: CaseEvent::Erased(ErasureReason::Request),
        case: &erased,
    }
    .into_parts();
    assert_eq!(parts.event_type, "PersonErased");
    assert!(parts.personal.is_none());
    assert_eq!(
        decode("PersonErased", &parts.payload).unwrap(),
        CaseEvent::Erased(ErasureReason::Request)
    );
}
