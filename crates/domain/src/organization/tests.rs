//! The organisation: the onboarding table as a matrix, validation, the
//! agreement's boundaries, and a property test over any sequence of
//! commands.

use super::*;
use crate::calendar::WorkingCalendar;
use crate::decode::DecodeError;
use crate::error::DomainError;
use crate::event::DomainEvent;
use crate::ids::AgreementId;
use crate::taxonomy::{self, NeedCode};
use proptest::prelude::*;
use serde_json::Value;
use std::collections::HashSet;
use time::macros::{date, time};
use time::{Date, Time, Weekday};

fn need() -> NeedCode {
    let c = taxonomy::all().iter().find(|c| !c.is_retired()).unwrap();
    NeedCode::parse(c.code).unwrap()
}

fn register(id: OrganizationId) -> OrganizationCommand {
    OrganizationCommand::Register {
        id,
        name: "Patronato Demo".into(),
        kind: OrganizationKind::Patronato,
        ownership: Ownership::Private,
        contacts: Contacts {
            phone: Some("+39 0971 000000".into()),
            email: Some("info@example.org".into()),
            address: Some("Via Demo 1, Potenza".into()),
        },
    }
}

fn registered() -> Organization {
    let events = decide(None, register(OrganizationId::new())).unwrap();
    events.iter().fold(None, evolve).unwrap()
}

fn run(state: Organization, cmd: OrganizationCommand) -> Result<Organization, DomainError> {
    let events = decide(Some(&state), cmd)?;
    Ok(events.iter().fold(Some(state), evolve).unwrap())
}

fn service(id: ServiceId) -> Service {
    Service {
        id,
        name: "Sportello lavoro".into(),
        needs: vec![need()],
        languages: vec!["it".into(), "en".into(), "ar".into()],
        interpretation: true,
        eligibility: "Residenti nel comune".into(),
        location: "Via Lacava 2, Potenza".into(),
        hours: WeeklyHours::new()
            .with(Weekday::Thursday, time!(16:30), time!(18:00))
            .with(Weekday::Thursday, time!(8:30), time!(12:00))
            .with(Weekday::Wednesday, time!(8:30), time!(12:00)),
        closed_on: vec![date!(2026 - 12 - 24), date!(2026 - 08 - 14)],
    }
}

fn agreement() -> Agreement {
    Agreement {
        id: AgreementId::new(),
        signed_on: date!(2026 - 01 - 10),
        valid_from: date!(2026 - 02 - 01),
        valid_to: date!(2027 - 01 - 31),
        acknowledge_within: 2,
        first_contact_within: 5,
        visible_fields: [CardField::Names, CardField::Languages, CardField::Needs]
            .into_iter()
            .collect(),
    }
}

fn invalid_field(r: Result<Vec<OrganizationEvent>, DomainError>) -> &'static str {
    match r {
        Err(DomainError::Invalid { field, .. }) => field,
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[test]
fn the_onboarding_table() {
    use OnboardingStatus as S;
    let allowed: HashSet<(S, S)> = [
        (S::Invited, S::Onboarding),
        (S::Onboarding, S::Active),
        (S::Active, S::Suspended),
        (S::Suspended, S::Active),
    ]
    .into_iter()
    .collect();
    for from in S::ALL {
        for to in S::ALL {
            assert_eq!(
                transition(from, to),
                allowed.contains(&(from, to)),
                "{from:?} --> {to:?}"
            );
        }
    }
}

#[test]
fn onboarding_through_decide() {
    use OnboardingStatus as S;
    let org = registered();
    assert_eq!(org.status, S::Invited);
    assert_eq!(
        decide(Some(&org), OrganizationCommand::ChangeOnboarding(S::Active)),
        Err(DomainError::NotAllowed {
            action: "make that onboarding change",
            status: "invited"
        })
    );
    let org = run(org, OrganizationCommand::ChangeOnboarding(S::Onboarding)).unwrap();
    let org = run(org, OrganizationCommand::ChangeOnboarding(S::Active)).unwrap();
    let org = run(org, OrganizationCommand::ChangeOnboarding(S::Suspended)).unwrap();
    let org = run(org, OrganizationCommand::ChangeOnboarding(S::Active)).unwrap();
    assert_eq!(org.status, S::Active);
}

#[test]
fn refusals_are_errors_not_panics() {
    let org = registered();
    assert_eq!(
        decide(Some(&org), register(org.id)),
        Err(DomainError::AlreadyExists("organization"))
    );
    assert_eq!(
        decide(None, OrganizationCommand::RemoveService(ServiceId::new())),
        Err(DomainError::NotFound("organization"))
    );
    assert_eq!(
        decide(
            Some(&org),
            OrganizationCommand::RemoveService(ServiceId::new())
        ),
        Err(DomainError::NotFound("service"))
    );
    assert_eq!(
        decide(
            Some(&org),
            OrganizationCommand::UpdateService(service(ServiceId::new()))
        ),
        Err(DomainError::NotFound("service"))
    );
    assert_eq!(
        decide(
            Some(&org),
            OrganizationCommand::EndAgreement {
                on: date!(2026 - 05 - 01)
            }
        ),
        Err(DomainError::NotFound("agreement"))
    );
    let sid = ServiceId::new();
    let org = run(org, OrganizationCommand::AddService(service(sid))).unwrap();
    assert_eq!(
        decide(Some(&org), OrganizationCommand::AddService(service(sid))),
        Err(DomainError::AlreadyExists("service"))
    );
}

#[test]
fn a_bad_language_code_is_refused() {
    let org = registered();
    for bad in ["EN", "eng", "e", "", "e1", "é"] {
        let mut s = service(ServiceId::new());
        s.languages.push(bad.into());
        assert_eq!(
            invalid_field(decide(Some(&org), OrganizationCommand::AddService(s))),
            "languages",
            "{bad:?}"
        );
    }
    let mut s = service(ServiceId::new());
    s.languages.push("it".into());
    assert_eq!(
        invalid_field(decide(Some(&org), OrganizationCommand::AddService(s))),
        "languages"
    );
    assert!(is_language_code("uk"));
}

#[test]
fn overlapping_or_empty_hours_are_refused() {
    let org = registered();
    let overlapping = WeeklyHours::new()
        .with(Weekday::Monday, time!(9:00), time!(12:00))
        .with(Weekday::Monday, time!(11:30), time!(13:00));
    let backwards = WeeklyHours::new().with(Weekday::Friday, time!(12:00), time!(8:30));
    let empty = WeeklyHours::new().with(Weekday::Friday, time!(8:30), time!(8:30));
    let seconds = WeeklyHours::new().with(Weekday::Friday, time!(8:30:15), time!(9:00));
    for hours in [overlapping, backwards, empty, seconds] {
        let mut s = service(ServiceId::new());
        s.hours = hours;
        assert_eq!(
            invalid_field(decide(Some(&org), OrganizationCommand::AddService(s))),
            "hours"
        );
    }
    // Back to back is not an overlap.
    let mut s = service(ServiceId::new());
    s.hours = WeeklyHours::new()
        .with(Weekday::Monday, time!(12:00), time!(13:00))
        .with(Weekday::Monday, time!(9:00), time!(12:00));
    assert!(decide(Some(&org), OrganizationCommand::AddService(s)).is_ok());
}

#[test]
fn other_service_fields_are_validated() {
    let org = registered();
    let mut s = service(ServiceId::new());
    s.needs.clear();
    assert_eq!(
        invalid_field(decide(Some(&org), OrganizationCommand::AddService(s))),
        "needs"
    );
    let mut s = service(ServiceId::new());
    s.needs.push(need());
    assert_eq!(
        invalid_field(decide(Some(&org), OrganizationCommand::AddService(s))),
        "needs"
    );
    let mut s = service(ServiceId::new());
    s.name = "  ".into();
    assert_eq!(
        invalid_field(decide(Some(&org), OrganizationCommand::AddService(s))),
        "name"
    );
}

#[test]
fn contacts_are_validated() {
    let bad = |contacts: Contacts| OrganizationCommand::UpdateDetails {
        name: "Ente".into(),
        kind: OrganizationKind::NonProfit,
        ownership: Ownership::Private,
        contacts,
    };
    let org = registered();
    let phone = Contacts {
        phone: Some("call me".into()),
        ..Contacts::default()
    };
    assert_eq!(invalid_field(decide(Some(&org), bad(phone))), "phone");
    let email = Contacts {
        email: Some("nobody".into()),
        ..Contacts::default()
    };
    assert_eq!(invalid_field(decide(Some(&org), bad(email))), "email");
    let org = run(org, bad(Contacts::default())).unwrap();
    assert_eq!(org.name, "Ente");
    assert_eq!(org.kind, OrganizationKind::NonProfit);
}

#[test]
fn services_are_stored_in_order_and_answer_their_hours() {
    let sid = ServiceId::new();
    let org = run(registered(), OrganizationCommand::AddService(service(sid))).unwrap();
    let s = &org.services[&sid];
    assert_eq!(
        s.hours.on(Weekday::Thursday),
        &[
            TimeRange::new(time!(8:30), time!(12:00)),
            TimeRange::new(time!(16:30), time!(18:00))
        ]
    );
    assert_eq!(
        s.closed_on,
        vec![date!(2026 - 08 - 14), date!(2026 - 12 - 24)]
    );
    assert!(s.answers(&need()));
    // Thursday 2026-03-12.
    assert!(s.is_open_at(date!(2026 - 03 - 12), time!(17:00)));
    assert!(!s.is_open_at(date!(2026 - 03 - 12), time!(12:00)));
    assert!(!s.is_open_at(date!(2026 - 03 - 13), time!(9:00)));
    // Thursday 2026-12-24 is a closing date.
    assert!(!s.is_open_at(date!(2026 - 12 - 24), time!(9:00)));

    let mut changed = service(sid);
    changed.interpretation = false;
    let org = run(org, OrganizationCommand::UpdateService(changed)).unwrap();
    assert!(!org.services[&sid].interpretation);
    let org = run(org, OrganizationCommand::RemoveService(sid)).unwrap();
    assert!(org.services.is_empty());
}

/// A day left out of weekly hours is a day closed — in a service added
/// through the API and in a professional's availability alike (one type) —
/// and a stored event, which names every day, reads back the same.
#[test]
fn a_day_left_out_of_the_hours_is_closed() {
    let weekdays_only: WeeklyHoursPayload = serde_json::from_value(serde_json::json!({
        "monday": [{ "open": "09:00", "close": "12:00" }],
        "wednesday": [{ "open": "09:00", "close": "12:00" }],
        "friday": [{ "open": "14:00", "close": "17:00" }],
    }))
    .expect("days may be left out");
    let hours = weekdays_only.to_hours("service").unwrap();
    for closed in [
        Weekday::Tuesday,
        Weekday::Thursday,
        Weekday::Saturday,
        Weekday::Sunday,
    ] {
        assert!(hours.on(closed).is_empty(), "{closed} is closed");
    }
    assert_eq!(
        hours.on(Weekday::Friday),
        &[TimeRange::new(time!(14:00), time!(17:00))]
    );
    // A misspelt day is an error, not a day closed.
    for wrong in ["Monday", "saturdy", "lun"] {
        let err = serde_json::from_value::<WeeklyHoursPayload>(serde_json::json!({
            wrong: [{ "open": "09:00", "close": "12:00" }],
        }))
        .expect_err(wrong)
        .to_string();
        assert!(err.contains("unknown field"), "{wrong}: {err}");
    }
    let none: WeeklyHoursPayload = serde_json::from_value(serde_json::json!({})).unwrap();
    assert_eq!(none, WeeklyHoursPayload::from(&WeeklyHours::new()));
    // What is stored names all seven days, so it reads back unchanged.
    let stored = serde_json::to_value(WeeklyHoursPayload::from(&hours)).unwrap();
    assert_eq!(stored.as_object().unwrap().len(), 7, "{stored}");
    assert_eq!(stored["saturday"], serde_json::json!([]));
    let back: WeeklyHoursPayload = serde_json::from_value(stored).unwrap();
    assert_eq!(back.to_hours("service").unwrap(), hours);

    // A service added with only weekday hours: closed at the weekend.
    let sid = ServiceId::new();
    let payload = ServicePayload {
        organization_id: OrganizationId::new(),
        service_id: sid,
        name: "Sportello".into(),
        needs: vec![need()],
        languages: vec!["it".into()],
        interpretation: false,
        eligibility: String::new(),
        location: String::new(),
        hours: weekdays_only,
        closed_on: vec![],
    };
    let s = payload.to_service().unwrap();
    // Monday 2026-03-09 and the Saturday after.
    assert!(s.is_open_at(date!(2026 - 03 - 09), time!(10:00)));
    assert!(!s.is_open_at(date!(2026 - 03 - 14), time!(10:00)));
    let org = run(registered(), OrganizationCommand::AddService(s)).unwrap();
    assert!(org.services[&sid].hours.on(Weekday::Sunday).is_empty());
}

#[test]
fn agreement_validation() {
    let org = registered();
    let mut a = agreement();
    a.valid_from = date!(2027 - 02 - 01);
    assert_eq!(
        invalid_field(decide(Some(&org), OrganizationCommand::SignAgreement(a))),
        "valid_to"
    );
    let mut a = agreement();
    a.acknowledge_within = 0;
    assert_eq!(
        invalid_field(decide(Some(&org), OrganizationCommand::SignAgreement(a))),
        "acknowledge_within"
    );
    let mut a = agreement();
    a.first_contact_within = 0;
    assert_eq!(
        invalid_field(decide(Some(&org), OrganizationCommand::SignAgreement(a))),
        "first_contact_within"
    );
    let mut a = agreement();
    a.first_contact_within = 1;
    assert_eq!(
        invalid_field(decide(Some(&org), OrganizationCommand::SignAgreement(a))),
        "first_contact_within"
    );
    // One day is a valid agreement.
    let mut a = agreement();
    a.valid_to = a.valid_from;
    assert!(decide(Some(&org), OrganizationCommand::SignAgreement(a)).is_ok());
}

#[test]
fn agreement_in_force_on_boundary_dates() {
    let a = agreement();
    assert!(!a.in_force(date!(2026 - 01 - 31)));
    assert!(a.in_force(date!(2026 - 02 - 01)));
    assert!(a.in_force(date!(2026 - 07 - 15)));
    assert!(a.in_force(date!(2027 - 01 - 31)));
    assert!(!a.in_force(date!(2027 - 02 - 01)));
    assert!(a.may_see(CardField::Needs));
    assert!(!a.may_see(CardField::Vulnerabilities));
}

#[test]
fn agreement_deadlines_count_working_days() {
    let a = agreement();
    let calendar = WorkingCalendar::national();
    // Friday 2026-03-13, 10:00 UTC: 2 working days is Tuesday, 5 is Friday.
    let sent = date!(2026 - 03 - 13).with_time(time!(10:00)).assume_utc();
    assert_eq!(
        a.acknowledge_by(&calendar, sent).unwrap().date(),
        date!(2026 - 03 - 17)
    );
    assert_eq!(
        a.first_contact_by(&calendar, sent).unwrap().date(),
        date!(2026 - 03 - 20)
    );
}

#[test]
fn a_new_agreement_replaces_the_old_one_and_can_be_ended() {
    let org = registered();
    let first = agreement();
    let org = run(org, OrganizationCommand::SignAgreement(first.clone())).unwrap();
    assert_eq!(
        decide(
            Some(&org),
            OrganizationCommand::SignAgreement(first.clone())
        ),
        Err(DomainError::AlreadyExists("agreement"))
    );
    let second = Agreement {
        id: AgreementId::new(),
        ..agreement()
    };
    let events = decide(
        Some(&org),
        OrganizationCommand::SignAgreement(second.clone()),
    )
    .unwrap();
    assert_eq!(
        events,
        vec![OrganizationEvent::AgreementSigned {
            agreement: second.clone(),
            replaces: Some(first.id)
        }]
    );
    let org = events.iter().fold(Some(org), evolve).unwrap();
    assert_eq!(org.agreement.as_ref(), Some(&second));

    let org = run(
        org,
        OrganizationCommand::ChangeOnboarding(OnboardingStatus::Onboarding),
    )
    .unwrap();
    let org = run(
        org,
        OrganizationCommand::ChangeOnboarding(OnboardingStatus::Active),
    )
    .unwrap();
    assert!(org.can_receive_referrals(date!(2026 - 06 - 01)));
    assert!(!org.can_receive_referrals(date!(2027 - 06 - 01)));

    let org = run(
        org,
        OrganizationCommand::EndAgreement {
            on: date!(2026 - 06 - 30),
        },
    )
    .unwrap();
    assert_eq!(org.agreement, None);
    assert!(!org.can_receive_referrals(date!(2026 - 06 - 01)));
}

#[test]
fn events_split_into_a_public_part_only() {
    let org = registered();
    let sid = ServiceId::new();
    let events = [
        decide(None, register(org.id)).unwrap().remove(0),
        OrganizationEvent::ServiceAdded(service(sid).normalized()),
        OrganizationEvent::AgreementSigned {
            agreement: agreement(),
            replaces: None,
        },
        OrganizationEvent::AgreementEnded {
            agreement: AgreementId::new(),
            on: date!(2026 - 06 - 30),
        },
    ];
    for event in events {
        let parts = Stored {
            event,
            organization: org.id,
        }
        .into_parts();
        assert_eq!(parts.personal, None, "{}", parts.event_type);
        assert_eq!(parts.concerns, Some(org.id));
        assert_eq!(parts.payload["organization_id"], org.id.to_string());
        match parts.event_type {
            "OrganizationServiceAdded" => {
                assert_eq!(parts.payload["hours"]["thursday"][0]["open"], "08:30");
                assert_eq!(parts.payload["closed_on"][0], "2026-08-14");
                assert_eq!(parts.payload["needs"][0], need().as_str());
            }
            "OrganizationAgreementSigned" => {
                assert_eq!(parts.payload["valid_from"], "2026-02-01");
                assert_eq!(parts.payload["visible_fields"][0], "names");
            }
            "OrganizationAgreementEnded" => assert_eq!(parts.payload["on"], "2026-06-30"),
            "OrganizationRegistered" => assert_eq!(parts.payload["kind"], "patronato"),
            other => panic!("unexpected {other}"),
        }
    }
}

/// Every event type has a schema whose payload properties are the keys the
/// event's payload has, and no personal part.
#[test]
fn events_match_their_schemas() {
    let org = registered();
    let events = vec![
        decide(None, register(org.id)).unwrap().remove(0),
        OrganizationEvent::DetailsUpdated {
            name: "n".into(),
            kind: OrganizationKind::Questura,
            ownership: Ownership::Public,
            contacts: Contacts::default(),
        },
        OrganizationEvent::OnboardingChanged {
            from: OnboardingStatus::Invited,
            to: OnboardingStatus::Onboarding,
        },
        OrganizationEvent::ServiceAdded(service(ServiceId::new())),
        OrganizationEvent::ServiceUpdated(service(ServiceId::new())),
        OrganizationEvent::ServiceRemoved(ServiceId::new()),
        OrganizationEvent::AgreementSigned {
            agreement: agreement(),
            replaces: Some(AgreementId::new()),
        },
        OrganizationEvent::AgreementEnded {
            agreement: AgreementId::new(),
            on: date!(2026 - 06 - 30),
        },
    ];
    for event in events {
        let parts = Stored {
            event,
            organization: org.id,
        }
        .into_parts();
        assert!(
            parts.personal.is_none(),
            "organisation data is not personal"
        );
        crate::schema::assert_parts_match_schema(&parts, STREAM_KIND);
    }
}

fn any_status() -> impl Strategy<Value = OnboardingStatus> {
    proptest::sample::select(OnboardingStatus::ALL.to_vec())
}

/// A small pool of ids, so commands hit existing and missing ones alike.
fn any_service_id(pool: [ServiceId; 3]) -> impl Strategy<Value = ServiceId> {
    proptest::sample::select(pool.to_vec())
}

/// A service, valid or not (bad language code, overlapping hours).
fn any_service(services: [ServiceId; 3]) -> impl Strategy<Value = Service> {
    (
        any_service_id(services),
        prop_oneof![Just("it"), Just("en"), Just("EN"), Just("xyz")],
        any::<bool>(),
    )
        .prop_map(|(id, lang, overlapping)| {
            let mut s = service(id);
            s.languages = vec![lang.to_string()];
            if overlapping {
                s.hours = s.hours.with(Weekday::Wednesday, time!(11:00), time!(13:00));
            }
            s
        })
}

fn any_command(
    org: OrganizationId,
    services: [ServiceId; 3],
    agreements: [AgreementId; 2],
) -> impl Strategy<Value = OrganizationCommand> {
    let any_agreement = (
        proptest::sample::select(agreements.to_vec()),
        0u8..4,
        0u8..6,
        any::<bool>(),
    )
        .prop_map(|(id, ack, contact, backwards)| {
            let mut a = agreement();
            a.id = id;
            a.acknowledge_within = ack;
            a.first_contact_within = contact;
            if backwards {
                std::mem::swap(&mut a.valid_from, &mut a.valid_to);
            }
            a
        });
    prop_oneof![
        Just(register(org)),
        prop_oneof![Just(""), Just("Ente")].prop_map(|name| OrganizationCommand::UpdateDetails {
            name: name.into(),
            kind: OrganizationKind::TradeUnion,
            ownership: Ownership::Private,
            contacts: Contacts::default(),
        }),
        any_status().prop_map(OrganizationCommand::ChangeOnboarding),
        any_service(services).prop_map(OrganizationCommand::AddService),
        any_service(services).prop_map(OrganizationCommand::UpdateService),
        any_service_id(services).prop_map(OrganizationCommand::RemoveService),
        any_agreement.prop_map(OrganizationCommand::SignAgreement),
        Just(OrganizationCommand::EndAgreement {
            on: date!(2026 - 06 - 30)
        }),
    ]
}

/// Every status reachable from `invited` through the table.
fn reachable() -> HashSet<OnboardingStatus> {
    let mut seen = HashSet::from([OnboardingStatus::Invited]);
    let mut todo = vec![OnboardingStatus::Invited];
    while let Some(s) = todo.pop() {
        for n in OnboardingStatus::ALL {
            if transition(s, n) && seen.insert(n) {
                todo.push(n);
            }
        }
    }
    seen
}

fn commands() -> impl Strategy<Value = (OrganizationId, Vec<OrganizationCommand>)> {
    let org = OrganizationId::new();
    let services = [ServiceId::new(), ServiceId::new(), ServiceId::new()];
    let agreements = [AgreementId::new(), AgreementId::new()];
    proptest::collection::vec(any_command(org, services, agreements), 0..40)
        .prop_map(move |cmds| (org, cmds))
}

proptest! {
    /// Whatever commands come, in whatever order: the organisation is
    /// always in a status onboarding reaches, each accepted command gives
    /// one event that `evolve` applies, every stored service and agreement
    /// is valid, and a refused command changes nothing.
    #[test]
    fn any_sequence_of_commands_stays_in_the_lifecycle((org_id, commands) in commands()) {
        let reachable = reachable();
        let mut state: Option<Organization> = None;
        for cmd in commands {
            let before = state.clone();
            let target = match &cmd {
                OrganizationCommand::ChangeOnboarding(to) => Some(*to),
                _ => None,
            };
            match decide(state.as_ref(), cmd) {
                Ok(events) => {
                    prop_assert_eq!(events.len(), 1);
                    state = events.iter().fold(state, evolve);
                    prop_assert!(state.is_some());
                    if let (Some(to), Some(b), Some(s)) = (target, &before, &state) {
                        prop_assert!(transition(b.status, to));
                        prop_assert_eq!(s.status, to);
                    }
                }
                Err(_) => {
                    // A refusal appends nothing: the state is what it was.
                    prop_assert_eq!(&state, &before);
                }
            }
            if let Some(s) = &state {
                prop_assert_eq!(s.id, org_id);
                prop_assert!(reachable.contains(&s.status));
                for service in s.services.values() {
                    prop_assert!(service.validate().is_ok());
                }
                if let Some(a) = &s.agreement {
                    prop_assert!(a.validate().is_ok());
                }
            }
        }
    }
}

fn stored(event: OrganizationEvent, organization: OrganizationId) -> (&'static str, Value) {
    let parts = Stored {
        event,
        organization,
    }
    .into_parts();
    (parts.event_type, parts.payload)
}

/// Any id, from any UUID (the stored form does not care for the version).
fn any_id<T: From<uuid::Uuid> + std::fmt::Debug>() -> impl Strategy<Value = T> {
    any::<u128>().prop_map(|n| T::from(uuid::Uuid::from_u128(n)))
}

/// Any date `time` can hold, years before the common era included.
fn any_date() -> impl Strategy<Value = Date> {
    (Date::MIN.to_julian_day()..=Date::MAX.to_julian_day())
        .prop_map(|day| Date::from_julian_day(day).unwrap())
}

/// Any whole minute (stored hours are `HH:MM`).
fn any_minute() -> impl Strategy<Value = Time> {
    (0u8..24, 0u8..60).prop_map(|(h, m)| Time::from_hms(h, m, 0).unwrap())
}

/// Any hours, as a fact may hold them: periods in any order, overlapping
/// or backwards (decoding checks no rule).
fn any_hours() -> impl Strategy<Value = WeeklyHours> {
    let weekdays = [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ];
    let period = (
        proptest::sample::select(weekdays.to_vec()),
        any_minute(),
        any_minute(),
    );
    proptest::collection::vec(period, 0..8).prop_map(|periods| {
        periods
            .into_iter()
            .fold(WeeklyHours::new(), |h, (day, open, close)| {
                h.with(day, open, close)
            })
    })
}

/// Any service: the generator of the command test, with any hours, any
/// closing dates and any text.
fn any_stored_service() -> impl Strategy<Value = Service> {
    let pool = [ServiceId::new(), ServiceId::new(), ServiceId::new()];
    (
        any_service(pool),
        any_hours(),
        proptest::collection::vec(any_date(), 0..4),
        ".{0,20}",
        proptest::sample::subsequence(
            taxonomy::all()
                .iter()
                .map(|c| NeedCode::parse(c.code).unwrap())
                .collect::<Vec<_>>(),
            0..4,
        ),
    )
        .prop_map(|(mut s, hours, closed_on, text, needs)| {
            s.hours = hours;
            s.closed_on = closed_on;
            s.eligibility = text;
            s.needs = needs;
            s
        })
}

fn any_kind() -> impl Strategy<Value = OrganizationKind> {
    use OrganizationKind as K;
    proptest::sample::select(vec![
        K::Desk,
        K::Questura,
        K::Prefettura,
        K::HealthAuthority,
        K::JobCentre,
        K::SchoolOffice,
        K::ComuneOffice,
        K::Patronato,
        K::TradeUnion,
        K::NonProfit,
        K::Other,
    ])
}

fn any_details() -> impl Strategy<Value = (String, OrganizationKind, Ownership, Contacts)> {
    (
        ".{0,30}",
        any_kind(),
        prop_oneof![Just(Ownership::Public), Just(Ownership::Private)],
        proptest::option::of(".{0,12}"),
        proptest::option::of(".{0,12}"),
        proptest::option::of(".{0,12}"),
    )
        .prop_map(|(name, kind, ownership, phone, email, address)| {
            let contacts = Contacts {
                phone,
                email,
                address,
            };
            (name, kind, ownership, contacts)
        })
}

fn any_stored_agreement() -> impl Strategy<Value = Agreement> {
    (
        any_id(),
        [any_date(), any_date(), any_date()],
        any::<u8>(),
        any::<u8>(),
        proptest::sample::subsequence(CardField::ALL.to_vec(), 0..=CardField::ALL.len()),
    )
        .prop_map(
            |(id, [signed_on, valid_from, valid_to], ack, contact, fields)| Agreement {
                id,
                signed_on,
                valid_from,
                valid_to,
                acknowledge_within: ack,
                first_contact_within: contact,
                visible_fields: fields.into_iter().collect(),
            },
        )
}

/// Any organisation event of any kind, with the organisation it belongs to
/// (a registration's own id).
fn any_event() -> impl Strategy<Value = (OrganizationId, OrganizationEvent)> {
    use OrganizationEvent as E;
    let event = prop_oneof![
        (any_id(), any_details()).prop_map(|(id, (name, kind, ownership, contacts))| {
            E::Registered {
                id,
                name,
                kind,
                ownership,
                contacts,
            }
        }),
        any_details().prop_map(|(name, kind, ownership, contacts)| E::DetailsUpdated {
            name,
            kind,
            ownership,
            contacts,
        }),
        (any_status(), any_status()).prop_map(|(from, to)| E::OnboardingChanged { from, to }),
        any_stored_service().prop_map(E::ServiceAdded),
        any_stored_service().prop_map(E::ServiceUpdated),
        any_id().prop_map(E::ServiceRemoved),
        (any_stored_agreement(), proptest::option::of(any_id())).prop_map(
            |(agreement, replaces)| E::AgreementSigned {
                agreement,
                replaces,
            }
        ),
        (any_id(), any_date()).prop_map(|(agreement, on)| E::AgreementEnded { agreement, on }),
    ];
    (any_id(), event).prop_map(|(org, event)| match event {
        E::Registered { id, .. } => (id, event),
        _ => (org, event),
    })
}

proptest! {
    /// What is stored reads back as the event it was: `decode` is the
    /// inverse of `into_parts`, for every kind of event.
    #[test]
    fn a_stored_event_decodes_to_itself((org, event) in any_event()) {
        let (event_type, payload) = stored(event.clone(), org);
        prop_assert_eq!(decode(event_type, &payload), Ok(event));
    }
}

#[test]
fn events_from_decide_decode_to_themselves() {
    let org = registered();
    let sid = ServiceId::new();
    let commands = [
        OrganizationCommand::AddService(service(sid)),
        OrganizationCommand::SignAgreement(agreement()),
        OrganizationCommand::EndAgreement {
            on: date!(2026 - 06 - 30),
        },
        OrganizationCommand::ChangeOnboarding(OnboardingStatus::Onboarding),
    ];
    let mut state = org.clone();
    let mut events = decide(None, register(org.id)).unwrap();
    for cmd in commands {
        let new = decide(Some(&state), cmd).unwrap();
        state = new.iter().fold(Some(state), evolve).unwrap();
        events.extend(new);
    }
    let rebuilt = events
        .into_iter()
        .map(|e| {
            let (event_type, payload) = stored(e, org.id);
            decode(event_type, &payload).unwrap()
        })
        .collect::<Vec<_>>();
    // The HTTP layer's way: the state the stored events rebuild.
    assert_eq!(rebuilt.iter().fold(None, evolve), Some(state));
}

#[test]
fn a_malformed_payload_is_an_error_not_a_panic() {
    let org = OrganizationId::new();
    let (service_added, good) = stored(
        OrganizationEvent::ServiceAdded(service(ServiceId::new())),
        org,
    );
    let malformed = |event_type: &str, payload: &Value| match decode(event_type, payload) {
        Err(DecodeError::Malformed {
            event_type: t,
            reason,
        }) => {
            assert_eq!(t, event_type);
            reason
        }
        other => panic!("expected a malformed {event_type}, got {other:?}"),
    };

    for bad in [
        "8:30", "24:00", "08:60", "08:30:00", "0830", "", "-1:30", "+8:30",
    ] {
        let mut payload = good.clone();
        payload["hours"]["thursday"][0]["open"] = bad.into();
        let reason = malformed(service_added, &payload);
        assert!(reason.contains("hours.thursday[0].open"), "{reason}");
    }
    for bad in [
        "2026-8-14",
        "2026-02-30",
        "+2026-08-14",
        "14/08/2026",
        "2026-08",
        "x",
    ] {
        let mut payload = good.clone();
        payload["closed_on"][1] = bad.into();
        let reason = malformed(service_added, &payload);
        assert!(reason.contains("closed_on[1]"), "{reason}");
    }
    let mut payload = good.clone();
    payload["needs"][0] = "NOT-A-NEED".into();
    malformed(service_added, &payload);
    let mut payload = good.clone();
    payload.as_object_mut().unwrap().remove("service_id");
    malformed(service_added, &payload);
    malformed(service_added, &Value::Null);
    malformed(service_added, &serde_json::json!([1, 2]));

    let (ended, mut payload) = stored(
        OrganizationEvent::AgreementEnded {
            agreement: AgreementId::new(),
            on: date!(2026 - 06 - 30),
        },
        org,
    );
    payload["on"] = "2026-06-31".into();
    assert!(malformed(ended, &payload).contains("on"));

    assert_eq!(
        decode("OrganizationExploded", &good),
        Err(DecodeError::UnknownType("OrganizationExploded".into()))
    );
    // Another aggregate's event is not an organisation's.
    assert_eq!(
        decode("PersonTakenInCharge", &good),
        Err(DecodeError::UnknownType("PersonTakenInCharge".into()))
    );
}

#[test]
fn dates_read_back_on_every_side_of_the_calendar() {
    let org = OrganizationId::new();
    for on in [
        Date::MIN,
        date!(-0001 - 12 - 31),
        date!(0000 - 01 - 01),
        date!(0099 - 03 - 01),
        Date::MAX,
    ] {
        let event = OrganizationEvent::AgreementEnded {
            agreement: AgreementId::new(),
            on,
        };
        let (event_type, payload) = stored(event.clone(), org);
        assert_eq!(decode(event_type, &payload), Ok(event), "{on}");
    }
}
