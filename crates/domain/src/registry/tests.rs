//! The registry's rules: what a profile must say, the statuses, a leaver's
//! entry closed; the stored form (contacts sealed under the professional's
//! own key) reads back; and an entry feeds the activation ranking.

use super::stored::{Stored, decode};
use super::*;
use crate::event::DomainEvent;
use time::macros::{date, time};

fn profile() -> Profile {
    Profile {
        roles: [ProfessionalRole::Interpreter, ProfessionalRole::Mediator].into(),
        sectors: [Sector::Health, Sector::Labour].into(),
        languages: vec![
            ("ar".into(), Proficiency::Native),
            ("fr".into(), Proficiency::Fluent),
        ],
        modes: [Mode::InPerson, Mode::Phone].into(),
        areas: vec!["Potenza".into()],
        admitted_on: date!(2025 - 09 - 01),
        bar_registration: None,
    }
}

fn contact() -> Contact {
    Contact {
        name: "Demo Interprete".into(),
        phone: Some("+39 0971 000000".into()),
        email: None,
    }
}

fn run(state: Option<Professional>, cmd: ProfessionalCommand) -> Result<Professional, DomainError> {
    let events = decide(state.as_ref(), cmd)?;
    Ok(events.iter().fold(state, evolve).expect("a state"))
}

fn registered() -> Professional {
    run(
        None,
        ProfessionalCommand::Register {
            id: ProfessionalId::new(),
            profile: profile(),
            contact: contact(),
        },
    )
    .unwrap()
}

#[test]
fn a_profile_says_what_the_registry_needs() {
    /// A way to spoil a profile, and the field the refusal names.
    type Spoil = (fn(&mut Profile), &'static str);
    let cases: [Spoil; 6] = [
        (|p| p.roles.clear(), "roles"),
        (|p| p.sectors.clear(), "sectors"),
        (|p| p.modes.clear(), "modes"),
        (
            |p| p.languages = vec![("it".into(), Proficiency::Native)],
            "languages",
        ),
        (
            |p| p.languages.push(("ar".into(), Proficiency::Basic)),
            "languages",
        ),
        (
            |p| {
                p.roles.insert(ProfessionalRole::Lawyer);
            },
            "bar_registration",
        ),
    ];
    for (spoil, field) in cases {
        let mut p = profile();
        spoil(&mut p);
        assert!(
            matches!(check_profile(&p), Err(DomainError::Invalid { field: f, .. }) if f == field),
            "{field}"
        );
    }
    let mut lawyer = profile();
    lawyer.roles = [ProfessionalRole::Lawyer].into();
    lawyer.bar_registration = Some("Ordine di Potenza n. 0000".into());
    assert_eq!(check_profile(&lawyer), Ok(()));
}

#[test]
fn availability_absences_statuses_and_a_leavers_closed_entry() {
    let p = registered();
    assert_eq!(p.status, RegistryStatus::Active);
    let hours = WeeklyHours::new().with(time::Weekday::Monday, time!(09:00), time!(13:00));
    let p = run(Some(p), ProfessionalCommand::SetAvailability(hours.clone())).unwrap();
    assert_eq!(p.availability, hours);
    let bad = WeeklyHours::new().with(time::Weekday::Monday, time!(13:00), time!(09:00));
    assert!(run(Some(p.clone()), ProfessionalCommand::SetAvailability(bad)).is_err());
    assert!(
        run(
            Some(p.clone()),
            ProfessionalCommand::AddAbsence {
                from: date!(2026 - 08 - 10),
                to: date!(2026 - 08 - 01)
            }
        )
        .is_err()
    );
    let p = run(
        Some(p),
        ProfessionalCommand::AddAbsence {
            from: date!(2026 - 08 - 01),
            to: date!(2026 - 08 - 10),
        },
    )
    .unwrap();
    let p = run(
        Some(p),
        ProfessionalCommand::SetStatus(RegistryStatus::Suspended),
    )
    .unwrap();
    assert!(
        run(
            Some(p.clone()),
            ProfessionalCommand::SetStatus(RegistryStatus::Suspended)
        )
        .is_err()
    );
    let p = run(
        Some(p),
        ProfessionalCommand::SetStatus(RegistryStatus::Left),
    )
    .unwrap();
    assert!(matches!(
        run(
            Some(p),
            ProfessionalCommand::SetStatus(RegistryStatus::Active)
        ),
        Err(DomainError::NotAllowed { status: "left", .. })
    ));
}

#[test]
fn contacts_are_sealed_under_the_professionals_own_key_and_events_read_back() {
    let p = registered();
    let hours = WeeklyHours::new().with(time::Weekday::Friday, time!(14:00), time!(18:30));
    let events = vec![
        ProfessionalEvent::Registered {
            id: p.id,
            profile: profile(),
            contact: contact(),
        },
        ProfessionalEvent::ProfileUpdated {
            profile: profile(),
            contact: Some(contact()),
        },
        ProfessionalEvent::AvailabilitySet(hours),
        ProfessionalEvent::AbsenceAdded {
            from: date!(2026 - 08 - 01),
            to: date!(2026 - 08 - 10),
        },
        ProfessionalEvent::StatusChanged(RegistryStatus::Suspended),
    ];
    let schemas = crate::schema::event_schemas();
    for e in events {
        let parts = Stored {
            event: e.clone(),
            professional: &p,
        }
        .into_parts();
        assert!(!parts.payload.to_string().contains("Demo Interprete"));
        if let Some((who, personal)) = &parts.personal {
            assert_eq!(who.0, p.id.0);
            assert_eq!(personal["name"], "Demo Interprete");
        }
        assert!(
            schemas.iter().any(|s| s.event_type == parts.event_type),
            "{} has a schema",
            parts.event_type
        );
        let back = decode(parts.event_type, &parts.payload).unwrap();
        let without_contacts = match e {
            ProfessionalEvent::Registered { id, profile, .. } => ProfessionalEvent::Registered {
                id,
                profile,
                contact: Contact::default(),
            },
            ProfessionalEvent::ProfileUpdated { profile, .. } => {
                ProfessionalEvent::ProfileUpdated {
                    profile,
                    contact: None,
                }
            }
            other => other,
        };
        assert_eq!(back, without_contacts);
    }
}

#[test]
fn an_entry_feeds_the_ranking() {
    let p = registered();
    let r = p.registered();
    assert_eq!(r.id, p.id);
    assert_eq!(r.languages, profile().languages);
    assert!(r.roles.contains(&ProfessionalRole::Interpreter));
}
