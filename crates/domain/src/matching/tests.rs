//! Matching: Europe/Rome's offset around both switches, the next opening
//! of a service (local time, closing dates, Potenza's holidays, the
//! two-week horizon), and the ranking — language, interpretation,
//! availability, load, acceptance — with every score explained by its
//! reasons. Providers are built through the organisation's own
//! `decide`/`evolve`, as the desk would build them.

use super::*;
use crate::ids::AgreementId;
use crate::organization::{
    Agreement, Contacts, OnboardingStatus, OrganizationCommand, OrganizationKind, Ownership,
    WeeklyHours, decide, evolve,
};
use std::collections::BTreeSet;
use time::macros::{date, datetime, offset, time};
use time::{Date, Time};

// ---------------------------------------------------------------- helpers

fn code(c: &str) -> NeedCode {
    NeedCode::parse(c).unwrap()
}

/// Monday to Friday 08:30–12:00, and Thursday afternoon 16:30–18:00.
fn office_hours() -> WeeklyHours {
    let mut h = WeeklyHours::new();
    for day in [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
    ] {
        h = h.with(day, time!(8:30), time!(12:00));
    }
    // Added after the morning on purpose: the domain puts periods in order.
    h.with(Weekday::Thursday, time!(16:30), time!(18:00))
}

fn service(name: &str, needs: &[&str], languages: &[&str], interpretation: bool) -> Service {
    Service {
        id: ServiceId::new(),
        name: name.into(),
        needs: needs.iter().map(|c| code(c)).collect(),
        languages: languages.iter().map(|l| (*l).to_owned()).collect(),
        interpretation,
        eligibility: String::new(),
        location: "Potenza".into(),
        hours: office_hours(),
        closed_on: Vec::new(),
    }
}

/// An agreement in force through 2026 (and some), acknowledging within
/// `ack` working days.
fn agreement(ack: u8) -> Agreement {
    agreement_between(date!(2026 - 01 - 01), date!(2027 - 12 - 31), ack)
}

fn agreement_between(from: Date, to: Date, ack: u8) -> Agreement {
    Agreement {
        id: AgreementId::new(),
        signed_on: from,
        valid_from: from,
        valid_to: to,
        acknowledge_within: ack,
        first_contact_within: ack.max(5),
        visible_fields: BTreeSet::new(),
    }
}

fn run(state: Option<Organization>, command: OrganizationCommand) -> Option<Organization> {
    let events = decide(state.as_ref(), command).expect("the command is accepted");
    events.iter().fold(state, evolve)
}

/// An organisation built through `decide`/`evolve`: registered, its
/// services added, its agreement signed, and taken to `status` along the
/// onboarding table.
fn provider(
    name: &str,
    status: OnboardingStatus,
    agreement: Option<Agreement>,
    services: Vec<Service>,
) -> Organization {
    use OnboardingStatus as S;
    let mut org = run(
        None,
        OrganizationCommand::Register {
            id: OrganizationId::new(),
            name: name.into(),
            kind: OrganizationKind::NonProfit,
            ownership: Ownership::Private,
            contacts: Contacts::default(),
        },
    );
    for s in services {
        org = run(org, OrganizationCommand::AddService(s));
    }
    if let Some(a) = agreement {
        org = run(org, OrganizationCommand::SignAgreement(a));
    }
    let path: &[S] = match status {
        S::Invited => &[],
        S::Onboarding => &[S::Onboarding],
        S::Active => &[S::Onboarding, S::Active],
        S::Suspended => &[S::Onboarding, S::Active, S::Suspended],
    };
    for &to in path {
        org = run(org, OrganizationCommand::ChangeOnboarding(to));
    }
    let org = org.expect("registered");
    assert_eq!(org.status, status);
    org
}

/// An active provider with one service and an agreement acknowledging
/// within 2 working days.
fn active(name: &str, s: Service) -> Organization {
    provider(name, OnboardingStatus::Active, Some(agreement(2)), vec![s])
}

/// The only service of `org`, as the domain stored it.
fn only_service(org: &Organization) -> &Service {
    assert_eq!(org.services.len(), 1);
    org.services.values().next().unwrap()
}

fn no_stats(org: Organization) -> (Organization, Vec<(ServiceId, ServiceStats)>) {
    (org, Vec::new())
}

fn with_stats(
    org: Organization,
    stats: ServiceStats,
) -> (Organization, Vec<(ServiceId, ServiceStats)>) {
    let id = only_service(&org).id;
    (org, vec![(id, stats)])
}

/// Tuesday 10 March 2026, 10:00 in Rome (CET): the office hours are open.
const NOW: OffsetDateTime = datetime!(2026-03-10 09:00 UTC);

fn potenza() -> WorkingCalendar {
    WorkingCalendar::for_potenza()
}

fn rank_for(
    need: &str,
    languages: &[&str],
    providers: &[(Organization, Vec<(ServiceId, ServiceStats)>)],
) -> Vec<Match> {
    let languages: Vec<String> = languages.iter().map(|l| (*l).to_owned()).collect();
    rank(&code(need), &languages, providers, &potenza(), NOW)
}

fn find(matches: &[Match], service: ServiceId) -> &Match {
    matches
        .iter()
        .find(|m| m.service == service)
        .unwrap_or_else(|| panic!("{service:?} is listed"))
}

fn position(matches: &[Match], service: ServiceId) -> usize {
    matches
        .iter()
        .position(|m| m.service == service)
        .unwrap_or_else(|| panic!("{service:?} is listed"))
}

/// The points a reason line gives (`+40 ...`, `-6 ...`); `None` for a line
/// that gives none (`not available: ...`).
fn points(reason: &str) -> Option<i32> {
    reason.split_whitespace().next()?.parse().ok()
}

fn local(date: Date, t: Time) -> Option<PrimitiveDateTime> {
    Some(PrimitiveDateTime::new(date, t))
}

// ------------------------------------------------------------ rome_offset

#[test]
fn rome_is_on_cet_in_winter_and_cest_in_summer() {
    let cet = offset!(+1);
    let cest = offset!(+2);
    assert_eq!(rome_offset(datetime!(2026-01-15 12:00 UTC)), cet);
    assert_eq!(rome_offset(datetime!(2026-07-15 12:00 UTC)), cest);
    assert_eq!(rome_offset(datetime!(2026-12-31 23:59:59 UTC)), cet);
    assert_eq!(rome_offset(datetime!(2027-01-01 00:00 UTC)), cet);
    assert_eq!(rome_offset(datetime!(2026-05-01 00:00 UTC)), cest);
}

#[test]
fn rome_switches_at_01_utc_on_the_last_sunday_of_march_and_october() {
    let cet = offset!(+1);
    let cest = offset!(+2);
    // (last Sunday of March, last Sunday of October); in 2024 and 2027 the
    // 31st itself is the Sunday.
    for (march, october) in [
        (date!(2024 - 03 - 31), date!(2024 - 10 - 27)),
        (date!(2025 - 03 - 30), date!(2025 - 10 - 26)),
        (date!(2026 - 03 - 29), date!(2026 - 10 - 25)),
        (date!(2027 - 03 - 28), date!(2027 - 10 - 31)),
    ] {
        let switch = |d: Date| d.with_time(time!(1:00)).assume_utc();
        let second = Duration::seconds(1);
        assert_eq!(rome_offset(switch(march) - second), cet, "{march}");
        assert_eq!(rome_offset(switch(march)), cest, "{march}");
        assert_eq!(rome_offset(switch(october) - second), cest, "{october}");
        assert_eq!(rome_offset(switch(october)), cet, "{october}");
        // A week earlier, same hour: no switch yet.
        let week = Duration::weeks(1);
        assert_eq!(rome_offset(switch(march) - week), cet, "{march}");
        assert_eq!(rome_offset(switch(october) - week), cest, "{october}");
    }
}

#[test]
fn rome_offset_depends_on_the_instant_not_on_how_it_is_written() {
    // 00:30 UTC on the spring Sunday, written in three offsets: still CET.
    let before = datetime!(2026-03-29 00:30 UTC);
    for o in [offset!(UTC), offset!(+2), offset!(-5), offset!(+9:30)] {
        assert_eq!(rome_offset(before.to_offset(o)), offset!(+1), "{o}");
    }
    // 01:30 UTC the same day, written as Rome's new local time: CEST.
    assert_eq!(rome_offset(datetime!(2026-03-29 03:30 +2)), offset!(+2));
    // The autumn switch written in Rome's summer offset: 02:59 +2 is
    // 00:59 UTC, still summer; 03:00 +2 is 01:00 UTC, winter.
    assert_eq!(rome_offset(datetime!(2026-10-25 02:59 +2)), offset!(+2));
    assert_eq!(rome_offset(datetime!(2026-10-25 03:00 +2)), offset!(+1));
}

// ----------------------------------------------------------- next_opening

fn office() -> Service {
    let org = active(
        "Ufficio",
        service("Sportello", &["job_search"], &["it"], false),
    );
    only_service(&org).clone()
}

#[test]
fn next_opening_is_now_while_open_and_the_opening_before_it() {
    let s = office();
    let cal = potenza();
    // Wednesday 14 January 2026 (CET).
    let wed = date!(2026 - 01 - 14);
    // 08:00 local: opens at 08:30.
    let early = datetime!(2026-01-14 07:00 UTC);
    assert_eq!(next_opening(&s, &cal, early), local(wed, time!(8:30)));
    // 08:30 local exactly: open now.
    let opening = datetime!(2026-01-14 07:30 UTC);
    assert_eq!(next_opening(&s, &cal, opening), local(wed, time!(8:30)));
    // 10:15 local: open now, so now.
    let open = datetime!(2026-01-14 09:15 UTC);
    assert_eq!(next_opening(&s, &cal, open), local(wed, time!(10:15)));
}

#[test]
fn next_opening_is_later_today_between_two_periods() {
    let s = office();
    // Thursday 15 January 2026, 12:30 local: the afternoon opens at 16:30.
    let noon = datetime!(2026-01-15 11:30 UTC);
    assert_eq!(
        next_opening(&s, &potenza(), noon),
        local(date!(2026 - 01 - 15), time!(16:30))
    );
    // 07:00 local: the morning, not the afternoon.
    let dawn = datetime!(2026-01-15 06:00 UTC);
    assert_eq!(
        next_opening(&s, &potenza(), dawn),
        local(date!(2026 - 01 - 15), time!(8:30))
    );
}

#[test]
fn next_opening_after_closing_is_the_next_open_day() {
    let s = office();
    let cal = potenza();
    // Wednesday 12:00 local: closing time is not open; Thursday morning.
    let closing = datetime!(2026-01-14 11:00 UTC);
    assert_eq!(
        next_opening(&s, &cal, closing),
        local(date!(2026 - 01 - 15), time!(8:30))
    );
    // Thursday 18:00 local, the afternoon just closed: Friday.
    let evening = datetime!(2026-01-15 17:00 UTC);
    assert_eq!(
        next_opening(&s, &cal, evening),
        local(date!(2026 - 01 - 16), time!(8:30))
    );
    // Friday after closing: past the weekend, Monday.
    let friday = datetime!(2026-01-16 15:00 UTC);
    assert_eq!(
        next_opening(&s, &cal, friday),
        local(date!(2026 - 01 - 19), time!(8:30))
    );
}

#[test]
fn next_opening_reads_the_clock_in_rome() {
    let s = office();
    let cal = potenza();
    // Wednesday 15 July 2026, 07:00 UTC is 09:00 CEST: open now (in UTC
    // it would be before opening).
    assert_eq!(
        next_opening(&s, &cal, datetime!(2026-07-15 07:00 UTC)),
        local(date!(2026 - 07 - 15), time!(9:00))
    );
    // Thursday 15 January 2026, 11:30 UTC is 12:30 CET: closed until the
    // afternoon (in UTC it would still be the morning).
    assert_eq!(
        next_opening(&s, &cal, datetime!(2026-01-15 11:30 UTC)),
        local(date!(2026 - 01 - 15), time!(16:30))
    );
    // Friday 16 January 2026, 23:30 UTC is already Saturday in Rome.
    assert_eq!(
        next_opening(&s, &cal, datetime!(2026-01-16 23:30 UTC)),
        local(date!(2026 - 01 - 19), time!(8:30))
    );
    // The same instant, whatever offset it is written in.
    let t = datetime!(2026-07-15 07:00 UTC);
    assert_eq!(
        next_opening(&s, &cal, t.to_offset(offset!(-7))),
        next_opening(&s, &cal, t)
    );
}

#[test]
fn next_opening_skips_the_services_closing_dates() {
    let mut s = service("Sportello", &["job_search"], &["it"], false);
    s.closed_on = vec![date!(2026 - 01 - 16), date!(2026 - 01 - 15)];
    let org = active("Ufficio", s);
    let s = only_service(&org);
    let cal = potenza();
    // Wednesday after closing: Thursday and Friday are closing dates.
    assert_eq!(
        next_opening(s, &cal, datetime!(2026-01-14 15:00 UTC)),
        local(date!(2026 - 01 - 19), time!(8:30))
    );
    // Within the hours of a closing date: not open now.
    assert_eq!(
        next_opening(s, &cal, datetime!(2026-01-15 09:00 UTC)),
        local(date!(2026 - 01 - 19), time!(8:30))
    );
}

#[test]
fn next_opening_skips_potenzas_holidays() {
    let s = office();
    let potenza = potenza();
    // Thursday 29 May 2025, 19:00 CEST, after the afternoon: Friday 30 May
    // is San Gerardo, Monday 2 June the Festa della Repubblica, so
    // Tuesday 3 June.
    let thursday = datetime!(2025-05-29 17:00 UTC);
    assert_eq!(
        next_opening(&s, &potenza, thursday),
        local(date!(2025 - 06 - 03), time!(8:30))
    );
    // The national calendar has no patron saint: Friday 30 May.
    assert_eq!(
        next_opening(&s, &WorkingCalendar::national(), thursday),
        local(date!(2025 - 05 - 30), time!(8:30))
    );

    // A service open every day: Christmas and Santo Stefano are skipped,
    // Sunday 27 December is open.
    let mut every_day = WeeklyHours::new();
    for day in [
        Weekday::Monday,
        Weekday::Tuesday,
        Weekday::Wednesday,
        Weekday::Thursday,
        Weekday::Friday,
        Weekday::Saturday,
        Weekday::Sunday,
    ] {
        every_day = every_day.with(day, time!(9:00), time!(12:00));
    }
    let mut s = service("Sempre aperto", &["job_search"], &["it"], false);
    s.hours = every_day;
    let org = active("Ufficio", s);
    let christmas_eve = datetime!(2026-12-24 12:00 UTC);
    assert_eq!(
        next_opening(only_service(&org), &potenza, christmas_eve),
        local(date!(2026 - 12 - 27), time!(9:00))
    );
}

#[test]
fn next_opening_is_none_when_never_open_within_two_weeks() {
    let cal = potenza();
    let now = datetime!(2026-01-14 15:00 UTC);
    let mut closed = service("Mai aperto", &["job_search"], &["it"], false);
    closed.hours = WeeklyHours::new();
    let org = active("Ufficio", closed);
    assert_eq!(next_opening(only_service(&org), &cal, now), None);

    // Open on Wednesday mornings only; asked on a Wednesday afternoon.
    let wednesdays = || WeeklyHours::new().with(Weekday::Wednesday, time!(9:00), time!(11:00));
    let mut weekly = service("Il mercoledì", &["job_search"], &["it"], false);
    weekly.hours = wednesdays();
    let org = active("Ufficio", weekly.clone());
    assert_eq!(
        next_opening(only_service(&org), &cal, now),
        local(date!(2026 - 01 - 21), time!(9:00))
    );
    // Closed next Wednesday: the one after is two weeks out, beyond reach.
    weekly.closed_on = vec![date!(2026 - 01 - 21)];
    let org = active("Ufficio", weekly);
    assert_eq!(next_opening(only_service(&org), &cal, now), None);
}

// ------------------------------------------------------------------- rank

#[test]
fn a_service_speaking_the_persons_language_ranks_above_one_that_does_not() {
    // Names chosen so that the name tie-break would put the other first.
    let speaks = active(
        "Zeta",
        service("Arabo", &["job_search"], &["it", "ar"], false),
    );
    let does_not = active(
        "Alfa",
        service("Inglese", &["job_search"], &["it", "en"], false),
    );
    let (a, b) = (only_service(&speaks).id, only_service(&does_not).id);
    let ranked = rank_for(
        "job_search",
        &["fr", "ar"],
        &[no_stats(does_not), no_stats(speaks)],
    );
    assert_eq!(ranked.len(), 2);
    assert_eq!(ranked[0].service, a);
    assert_eq!(ranked[1].service, b);
    assert_eq!(ranked[0].score - ranked[1].score, 40);
    assert!(
        ranked[0]
            .reasons
            .contains(&"+40 speaks the person's language (ar)".to_owned()),
        "{:?}",
        ranked[0].reasons
    );
    assert!(
        ranked[1]
            .reasons
            .contains(&"+0 no common language and no interpretation".to_owned()),
        "{:?}",
        ranked[1].reasons
    );
}

#[test]
fn interpretation_beats_no_common_language_but_not_a_common_one() {
    let speaks = active("Uno", service("Parla", &["job_search"], &["uk"], false));
    let interprets = active("Due", service("Interpreta", &["job_search"], &["it"], true));
    let neither = active("Tre", service("Nessuno", &["job_search"], &["it"], false));
    let ids = [&speaks, &interprets, &neither].map(|o| only_service(o).id);
    let providers = [no_stats(neither), no_stats(interprets), no_stats(speaks)];
    let ranked = rank_for("job_search", &["uk"], &providers);
    let order: Vec<ServiceId> = ranked.iter().map(|m| m.service).collect();
    assert_eq!(order, ids);
    assert_eq!(ranked[0].score - ranked[1].score, 15);
    assert_eq!(ranked[1].score - ranked[2].score, 25);
    assert!(
        ranked[1]
            .reasons
            .contains(&"+25 no common language, interpretation offered".to_owned()),
        "{:?}",
        ranked[1].reasons
    );

    // Languages not recorded: every service gets the same +20, whatever
    // it speaks or offers.
    let ranked = rank_for("job_search", &[], &providers);
    assert!(
        ranked.windows(2).all(|w| w[0].score == w[1].score),
        "{ranked:?}"
    );
    for m in &ranked {
        assert!(
            m.reasons
                .contains(&"+20 the person's languages are not recorded".to_owned()),
            "{:?}",
            m.reasons
        );
    }
}

#[test]
fn unavailable_providers_are_listed_last_with_the_reason() {
    use OnboardingStatus as S;
    let good = || service("Lavoro", &["job_search"], &["ar"], true);
    let plain = service("Lavoro", &["job_search"], &["it"], false);
    let available = active("Zeta", plain);
    let onboarding = provider("Alfa", S::Onboarding, Some(agreement(1)), vec![good()]);
    let suspended = provider("Beta", S::Suspended, Some(agreement(1)), vec![good()]);
    let no_agreement = provider("Gamma", S::Active, None, vec![good()]);
    let expired = provider(
        "Delta",
        S::Active,
        Some(agreement_between(
            date!(2025 - 01 - 01),
            date!(2025 - 12 - 31),
            1,
        )),
        vec![good()],
    );
    let not_yet = provider(
        "Epsilon",
        S::Active,
        Some(agreement_between(
            date!(2026 - 03 - 11),
            date!(2026 - 12 - 31),
            1,
        )),
        vec![good()],
    );
    // Signed, then ended: no agreement any more.
    let ended = run(
        Some(provider("Eta", S::Active, Some(agreement(1)), vec![good()])),
        OrganizationCommand::EndAgreement {
            on: date!(2026 - 03 - 01),
        },
    )
    .unwrap();
    assert!(ended.agreement.is_none());

    let unavailable = [
        &onboarding,
        &suspended,
        &no_agreement,
        &expired,
        &not_yet,
        &ended,
    ]
    .map(|o| only_service(o).id);
    let best = only_service(&available).id;
    let ranked = rank_for(
        "job_search",
        &["ar"],
        &[
            no_stats(onboarding),
            no_stats(suspended),
            no_stats(no_agreement),
            no_stats(expired),
            no_stats(available),
            no_stats(not_yet),
            no_stats(ended),
        ],
    );
    assert_eq!(ranked.len(), 7);
    // The only available one is first although it speaks no common
    // language and the others would score better.
    assert_eq!(ranked[0].service, best);
    assert!(ranked[0].available);
    assert!(ranked[0].score > 0);
    for id in unavailable {
        let m = find(&ranked, id);
        assert!(!m.available, "{}", m.organization_name);
        assert_eq!(m.score, 0, "{}", m.organization_name);
        assert_eq!(m.reasons.len(), 1, "{:?}", m.reasons);
        assert!(
            m.reasons[0].starts_with("not available: "),
            "{:?}",
            m.reasons
        );
        assert!(position(&ranked, id) > 0);
    }
    let reason = |name: &str| {
        let m = ranked.iter().find(|m| m.organization_name == name).unwrap();
        m.reasons[0].clone()
    };
    assert!(reason("Alfa").contains("onboarding"), "{}", reason("Alfa"));
    assert!(reason("Beta").contains("suspended"), "{}", reason("Beta"));
    assert!(
        reason("Delta").contains("not in force"),
        "{}",
        reason("Delta")
    );
    assert!(
        reason("Epsilon").contains("not in force"),
        "{}",
        reason("Epsilon")
    );
    for name in ["Gamma", "Eta"] {
        assert_eq!(reason(name), "not available: no agreement in force");
    }
    // Unavailable ones keep a stable order among themselves: by name.
    let names: Vec<&str> = ranked[1..]
        .iter()
        .map(|m| m.organization_name.as_str())
        .collect();
    assert_eq!(names, ["Alfa", "Beta", "Delta", "Epsilon", "Eta", "Gamma"]);
    // They still say when they next open (the desk may call them).
    assert!(ranked.iter().all(|m| m.next_opening.is_some()));
}

#[test]
fn the_agreements_first_and_last_days_count_as_in_force() {
    let s = || service("Lavoro", &["job_search"], &["it"], false);
    let starts_today = provider(
        "Inizio",
        OnboardingStatus::Active,
        Some(agreement_between(NOW.date(), date!(2026 - 12 - 31), 1)),
        vec![s()],
    );
    let ends_today = provider(
        "Fine",
        OnboardingStatus::Active,
        Some(agreement_between(date!(2026 - 01 - 01), NOW.date(), 1)),
        vec![s()],
    );
    let ranked = rank_for(
        "job_search",
        &["it"],
        &[no_stats(starts_today), no_stats(ends_today)],
    );
    assert!(ranked.iter().all(|m| m.available), "{ranked:?}");
}

#[test]
fn a_higher_open_load_lowers_the_score() {
    let s = || service("Lavoro", &["job_search"], &["it"], false);
    let idle = active("Zeta", s());
    let busy = active("Alfa", s());
    let swamped = active("Beta", s());
    let ids = [&idle, &busy, &swamped].map(|o| only_service(o).id);
    let load = |open| ServiceStats {
        open,
        ..ServiceStats::default()
    };
    let ranked = rank_for(
        "job_search",
        &["it"],
        &[
            with_stats(busy, load(6)),
            with_stats(swamped, load(40)),
            with_stats(idle, load(0)),
        ],
    );
    let order: Vec<ServiceId> = ranked.iter().map(|m| m.service).collect();
    assert_eq!(order, ids, "idle, busy, swamped");
    let (idle, busy, swamped) = (&ranked[0], &ranked[1], &ranked[2]);
    assert_eq!(idle.score - busy.score, 6);
    assert!(
        busy.reasons
            .contains(&"-6 holds 6 open referrals".to_owned())
    );
    // The penalty stops at 15.
    assert_eq!(idle.score - swamped.score, 15);
    assert!(
        swamped
            .reasons
            .contains(&"-15 holds 40 open referrals".to_owned())
    );
}

#[test]
fn acceptance_counts_only_from_three_decisions() {
    let s = || service("Lavoro", &["job_search"], &["it"], false);
    let stats = |accepted, declined| ServiceStats {
        open: 0,
        accepted,
        declined,
    };
    // (accepted, declined, points, reason)
    let cases = [
        (0, 0, 12, "+12 too few past referrals to judge acceptance"),
        (2, 0, 12, "+12 too few past referrals to judge acceptance"),
        (0, 2, 12, "+12 too few past referrals to judge acceptance"),
        (3, 0, 25, "+25 accepted 100% of 3 referrals"),
        (0, 3, 0, "+0 accepted 0% of 3 referrals"),
        (2, 1, 17, "+17 accepted 67% of 3 referrals"),
        (1, 3, 6, "+6 accepted 25% of 4 referrals"),
    ];
    let providers: Vec<_> = cases
        .iter()
        .enumerate()
        .map(|(i, &(a, d, ..))| with_stats(active(&format!("Ente {i}"), s()), stats(a, d)))
        .collect();
    let ids: Vec<ServiceId> = providers.iter().map(|(o, _)| only_service(o).id).collect();
    let ranked = rank_for("job_search", &["it"], &providers);
    let baseline = find(&ranked, ids[0]).score - 12;
    for (id, &(accepted, declined, points, reason)) in ids.iter().zip(&cases) {
        let m = find(&ranked, *id);
        assert_eq!(
            m.score - baseline,
            points,
            "{accepted} accepted, {declined} declined: {:?}",
            m.reasons
        );
        assert!(m.reasons.contains(&reason.to_owned()), "{:?}", m.reasons);
    }
    // Two declines out of two do not sink a service below a judged one...
    assert!(find(&ranked, ids[2]).score > find(&ranked, ids[4]).score);
    // ...and a full record of three beats no record at all.
    assert!(find(&ranked, ids[3]).score > find(&ranked, ids[0]).score);
}

#[test]
fn sooner_openings_and_faster_acknowledgement_score_higher() {
    let open_now = service("Aperto", &["job_search"], &["it"], false);
    let mut friday = service("Venerdì", &["job_search"], &["it"], false);
    friday.hours = WeeklyHours::new().with(Weekday::Friday, time!(9:00), time!(12:00));
    let a = active("Uno", open_now);
    let b = active("Due", friday);
    let fast = provider(
        "Tre",
        OnboardingStatus::Active,
        Some(agreement(1)),
        vec![service("Rapido", &["job_search"], &["it"], false)],
    );
    let slow = provider(
        "Quattro",
        OnboardingStatus::Active,
        Some(agreement(5)),
        vec![service("Lento", &["job_search"], &["it"], false)],
    );
    let ids = [&a, &b, &fast, &slow].map(|o| only_service(o).id);
    let ranked = rank_for(
        "job_search",
        &["it"],
        &[no_stats(a), no_stats(b), no_stats(fast), no_stats(slow)],
    );
    let [now, friday, fast, slow] = ids.map(|id| find(&ranked, id));
    // Tuesday 10:00 to Friday 09:00 is 2 whole days: 15 - 4 = 11 points.
    assert_eq!(now.next_opening, local(date!(2026 - 03 - 10), time!(10:00)));
    assert_eq!(
        friday.next_opening,
        local(date!(2026 - 03 - 13), time!(9:00))
    );
    assert!(
        now.reasons
            .contains(&"+15 next open 2026-03-10 10:00:00.0".to_owned()),
        "{:?}",
        now.reasons
    );
    assert_eq!(now.score - friday.score, 4);
    // Acknowledging within 1 working day gives 4, within 5 gives 0.
    assert_eq!(fast.score - slow.score, 4);
    assert!(
        fast.reasons
            .contains(&"+4 acknowledges within 1 working days".to_owned())
    );
    assert!(
        slow.reasons
            .contains(&"+0 acknowledges within 5 working days".to_owned())
    );
}

#[test]
fn every_match_has_reasons_that_add_up_to_its_score() {
    use OnboardingStatus as S;
    let mut rare = service("Di rado", &["job_search"], &["ar", "it"], true);
    rare.hours = WeeklyHours::new();
    let providers = vec![
        with_stats(
            active("Uno", service("A", &["job_search"], &["it", "ar"], false)),
            ServiceStats {
                open: 3,
                accepted: 5,
                declined: 2,
            },
        ),
        with_stats(
            active(
                "Due",
                service("B", &["job_search", "legal_advice"], &["fr"], true),
            ),
            ServiceStats {
                open: 20,
                accepted: 1,
                declined: 0,
            },
        ),
        no_stats(active("Tre", rare)),
        no_stats(provider(
            "Quattro",
            S::Invited,
            None,
            vec![service("D", &["job_search"], &["ar"], true)],
        )),
    ];
    for languages in [&["ar"][..], &["sw"], &[]] {
        let ranked = rank_for("job_search", languages, &providers);
        assert_eq!(ranked.len(), 4);
        for m in &ranked {
            assert!(!m.reasons.is_empty(), "{} has no reason", m.service_name);
            if m.available {
                // Language, acceptance, opening, load and agreement.
                assert_eq!(m.reasons.len(), 5, "{:?}", m.reasons);
                let sum: i32 = m
                    .reasons
                    .iter()
                    .map(|r| points(r).unwrap_or_else(|| panic!("no points in {r:?}")))
                    .sum();
                assert_eq!(sum, m.score, "{:?}", m.reasons);
            }
        }
        // Best first: available before unavailable, then by score.
        assert!(
            ranked
                .windows(2)
                .all(|w| (w[0].available, w[0].score) >= (w[1].available, w[1].score)),
            "{ranked:?}"
        );
        let never = ranked.iter().find(|m| m.service_name == "Di rado").unwrap();
        assert_eq!(never.next_opening, None);
        assert!(
            never
                .reasons
                .contains(&"+0 not open in the next two weeks".to_owned())
        );
    }
}

#[test]
fn only_services_answering_the_need_are_listed() {
    let mixed = provider(
        "Misto",
        OnboardingStatus::Active,
        Some(agreement(2)),
        vec![
            service("Lavoro", &["job_search"], &["it"], false),
            service("Legale", &["legal_advice"], &["it"], false),
            service("Entrambi", &["legal_advice", "job_search"], &["it"], false),
        ],
    );
    let legal_only = active(
        "Avvocati",
        service("Consulenza", &["legal_advice"], &["it"], false),
    );
    let inactive = provider(
        "Invitato",
        OnboardingStatus::Invited,
        None,
        vec![service("Lavoro", &["job_search"], &["it"], false)],
    );
    let answering: BTreeSet<ServiceId> = mixed
        .services
        .values()
        .chain(inactive.services.values())
        .filter(|s| s.answers(&code("job_search")))
        .map(|s| s.id)
        .collect();
    assert_eq!(answering.len(), 3);
    let providers = [no_stats(mixed), no_stats(legal_only), no_stats(inactive)];
    let ranked = rank_for("job_search", &["it"], &providers);
    let listed: BTreeSet<ServiceId> = ranked.iter().map(|m| m.service).collect();
    assert_eq!(listed, answering);
    assert_eq!(ranked.len(), 3, "each service once");
    assert!(ranked.iter().all(|m| m.organization_name != "Avvocati"));
    // A need nobody answers: nothing.
    assert!(rank_for("trafficking", &["it"], &providers).is_empty());
    // Stats of a service not listed are ignored, not misattributed.
    let (org, _) = &providers[0];
    let legal = org
        .services
        .values()
        .find(|s| s.name == "Legale")
        .unwrap()
        .id;
    let busy_legal = vec![(
        org.clone(),
        vec![(
            legal,
            ServiceStats {
                open: 15,
                ..ServiceStats::default()
            },
        )],
    )];
    let ranked = rank_for("job_search", &["it"], &busy_legal);
    assert!(
        ranked
            .iter()
            .all(|m| m.reasons.contains(&"-0 holds 0 open referrals".to_owned())),
        "{ranked:?}"
    );
}

#[test]
fn equal_scores_are_ordered_by_provider_name() {
    let s = || service("Lavoro", &["job_search"], &["it"], false);
    let providers = ["Caritas", "Arci", "Binario"].map(|n| no_stats(active(n, s())));
    let ranked = rank_for("job_search", &["it"], &providers);
    let names: Vec<&str> = ranked
        .iter()
        .map(|m| m.organization_name.as_str())
        .collect();
    assert_eq!(names, ["Arci", "Binario", "Caritas"]);
    assert!(ranked.windows(2).all(|w| w[0].score == w[1].score));
}

// ----------------------------------------------------------- found bugs

/// The same instant must rank the same whatever offset it is written in
/// ("the moment" comes in): `score` takes the provider's availability
/// from `now.date()`, the date in `now`'s own offset, while everything
/// else converts to Rome's time first.
#[test]
fn availability_does_not_depend_on_the_offset_now_is_written_in() {
    // 23:30 UTC on 31 January is 00:30 on 1 February in Rome, the first
    // day of the agreement.
    let org = provider(
        "Ente",
        OnboardingStatus::Active,
        Some(agreement_between(
            date!(2026 - 02 - 01),
            date!(2026 - 12 - 31),
            2,
        )),
        vec![service("Lavoro", &["job_search"], &["it"], false)],
    );
    let providers = [no_stats(org)];
    let need = code("job_search");
    let it = ["it".to_owned()];
    let utc = datetime!(2026-01-31 23:30 UTC);
    let in_rome = utc.to_offset(rome_offset(utc));
    let a = rank(&need, &it, &providers, &potenza(), utc);
    let b = rank(&need, &it, &providers, &potenza(), in_rome);
    assert_eq!(a, b);
}

/// The wait to the next opening is measured in Rome's offset of *now*,
/// so across the spring switch it is an hour too long.
#[test]
fn the_wait_to_the_next_opening_is_right_across_the_spring_switch() {
    let mut monday = service("Lunedì", &["job_search"], &["it"], false);
    monday.hours = WeeklyHours::new().with(Weekday::Monday, time!(9:00), time!(12:00));
    let providers = [no_stats(active("Ente", monday))];
    // Saturday 28 March 2026, 08:30 CET (07:30 UTC). The service opens on
    // Monday 30 March at 09:00 CEST (07:00 UTC): 47 h 30 min away, one
    // whole day, so 15 - 2 = 13 points.
    let now = datetime!(2026-03-28 07:30 UTC);
    let ranked = rank(
        &code("job_search"),
        &["it".to_owned()],
        &providers,
        &potenza(),
        now,
    );
    assert_eq!(
        ranked[0].next_opening,
        local(date!(2026 - 03 - 30), time!(9:00))
    );
    assert!(
        ranked[0]
            .reasons
            .contains(&"+13 next open 2026-03-30 9:00:00.0".to_owned()),
        "{:?}",
        ranked[0].reasons
    );
}
