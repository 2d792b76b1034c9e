//! The activations report over synthetic rows: judging against the
//! deadline, the cancellation rule, nearest-rank percentiles, offers,
//! groups, gaps and an empty period (the period's parsing is
//! `super::super::period`'s).

use super::*;
use sportello_domain::activation::ranking::RegistryStatus;
use sportello_domain::activation::{Mode, Status, Urgency};
use sportello_domain::case::Proficiency;
use sportello_domain::ids::ProfessionalId;
use sportello_domain::organization::WeeklyHours;
use time::Duration;
use time::macros::{date, datetime};
use uuid::Uuid;

const NOW: OffsetDateTime = datetime!(2026-03-10 12:00 UTC);
const FROM: Date = date!(2026 - 01 - 01);
const TO: Date = date!(2026 - 03 - 10);

use ProfessionalRole::{Interpreter, Lawyer, Mediator};
use Sector::{Health, Labour, Legal};

/// An activation requested at `requested_at` with a 24 h deadline,
/// waiting, never offered.
fn row(
    role: ProfessionalRole,
    sector: Sector,
    language: &str,
    requested_at: OffsetDateTime,
) -> ActivationRow {
    ActivationRow {
        network_id: Uuid::nil(),
        activation_id: Uuid::now_v7(),
        role,
        sector,
        language: language.into(),
        mode: Mode::InPerson,
        needed_at: requested_at + Duration::days(2),
        urgency: Urgency::Hours24,
        deadline: requested_at + Duration::hours(24),
        person_id: Some(Uuid::now_v7()),
        referral_id: None,
        requested_by: Uuid::nil(),
        requested_at,
        status: Status::Waiting,
        offered_to: None,
        offer_expires_at: None,
        offers: 0,
        declines: 0,
        expiries: 0,
        passed: Vec::new(),
        confirmed: None,
        confirmed_at: None,
        scheduled_for: None,
        delivered_at: None,
        quarter_hours: None,
        cancelled_at: None,
        deadline_missed_at: None,
        version: 1,
        updated_at: requested_at,
    }
}

/// A 24 h interpreter/health/ar activation requested `hours_ago` hours
/// before [`NOW`].
fn asked(hours_ago: i64) -> ActivationRow {
    row(Interpreter, Health, "ar", NOW - Duration::hours(hours_ago))
}

fn confirmed(mut a: ActivationRow, after: Duration) -> ActivationRow {
    a.status = Status::Confirmed;
    a.confirmed = Some(Uuid::now_v7());
    a.confirmed_at = Some(a.requested_at + after);
    a.offers += 1;
    a
}

fn cancelled(mut a: ActivationRow, after: Duration) -> ActivationRow {
    a.status = Status::Cancelled;
    a.cancelled_at = Some(a.requested_at + after);
    a
}

fn missed(mut a: ActivationRow) -> ActivationRow {
    a.deadline_missed_at = Some(a.deadline);
    a
}

fn run(rows: &[ActivationRow]) -> ActivationReport {
    report(FROM, TO, NOW, rows, &[])
}

fn professional(
    n: u128,
    status: RegistryStatus,
    roles: &[ProfessionalRole],
    sectors: &[Sector],
    languages: &[&str],
) -> Registered {
    Registered {
        id: ProfessionalId(Uuid::from_u128(n)),
        status,
        roles: roles.iter().copied().collect(),
        sectors: sectors.iter().copied().collect(),
        languages: languages
            .iter()
            .map(|l| ((*l).to_owned(), Proficiency::Fluent))
            .collect(),
        modes: [Mode::InPerson].into(),
        availability: WeeklyHours::new(),
        absences: Vec::new(),
    }
}

#[test]
fn confirmed_exactly_at_the_deadline_is_in_time_and_a_second_later_is_late() {
    let on_the_dot = confirmed(asked(30), Duration::hours(24));
    let a_second_late = confirmed(asked(30), Duration::hours(24) + Duration::seconds(1));
    assert_eq!(judge(&on_the_dot, NOW), Judgement::InTime);
    assert_eq!(judge(&a_second_late, NOW), Judgement::Late);
    let c = run(&[on_the_dot, a_second_late]).overall.compliance;
    assert_eq!(
        c,
        Compliance {
            requested: 2,
            cancelled_before_due: 0,
            due: 2,
            confirmed_in_time: 1,
            late: 1,
            pending: 0,
            rate: Some(0.5),
            deadlines_missed: 0,
        }
    );
}

#[test]
fn an_open_activation_is_pending_until_its_deadline_has_passed() {
    // Requested exactly 24 h ago: its deadline is now, not passed yet.
    assert_eq!(judge(&asked(24), NOW), Judgement::Pending);
    assert_eq!(judge(&asked(1), NOW), Judgement::Pending);
    let past = asked(24);
    assert_eq!(judge(&past, NOW + Duration::seconds(1)), Judgement::Late);
    // A confirmation in time made before "now" is due even though the
    // deadline has not passed.
    let early = confirmed(asked(2), Duration::hours(1));
    assert_eq!(judge(&early, NOW), Judgement::InTime);
    let c = run(&[asked(1), early]).overall.compliance;
    assert_eq!((c.due, c.pending, c.rate), (1, 1, Some(1.0)));
}

#[test]
fn a_recorded_missed_deadline_is_late_and_counted() {
    let a = missed(asked(30));
    assert_eq!(judge(&a, NOW), Judgement::Late);
    // Recorded, then confirmed late: still late, still a missed deadline.
    let b = confirmed(missed(asked(40)), Duration::hours(30));
    assert_eq!(judge(&b, NOW), Judgement::Late);
    let c = run(&[a, b, asked(1)]).overall.compliance;
    assert_eq!(
        (c.due, c.late, c.deadlines_missed, c.pending, c.rate),
        (2, 2, 2, 1, Some(0.0))
    );
}

#[test]
fn cancelled_before_the_deadline_with_nobody_confirmed_is_not_judged() {
    let before = cancelled(asked(30), Duration::hours(3));
    let at_the_deadline = cancelled(asked(30), Duration::hours(24));
    let after = cancelled(asked(30), Duration::hours(25));
    let confirmed_then_cancelled =
        cancelled(confirmed(asked(30), Duration::hours(2)), Duration::hours(3));
    let open_then_cancelled_soon = cancelled(asked(2), Duration::hours(1));
    assert_eq!(judge(&before, NOW), Judgement::CancelledBeforeDue);
    assert_eq!(judge(&at_the_deadline, NOW), Judgement::CancelledBeforeDue);
    assert_eq!(judge(&after, NOW), Judgement::Late);
    assert_eq!(judge(&confirmed_then_cancelled, NOW), Judgement::InTime);
    assert_eq!(
        judge(&open_then_cancelled_soon, NOW),
        Judgement::CancelledBeforeDue
    );
    let c = run(&[
        before,
        at_the_deadline,
        after,
        confirmed_then_cancelled,
        open_then_cancelled_soon,
    ])
    .overall
    .compliance;
    assert_eq!(
        c,
        Compliance {
            requested: 5,
            cancelled_before_due: 3,
            due: 2,
            confirmed_in_time: 1,
            late: 1,
            pending: 0,
            rate: Some(0.5),
            deadlines_missed: 0,
        }
    );
    // Only cancellations before due: nothing to judge.
    let c = run(&[cancelled(asked(30), Duration::hours(1))])
        .overall
        .compliance;
    assert_eq!((c.requested, c.due, c.rate), (1, 0, None));
}

#[test]
fn nearest_rank_percentiles() {
    assert_eq!(nearest_rank(&[], 50), None);
    assert_eq!(nearest_rank(&[], 90), None);
    // One value: it is every percentile.
    assert_eq!(nearest_rank(&[7], 50), Some(7));
    assert_eq!(nearest_rank(&[7], 90), Some(7));
    // Two: the median is the lower, the 90th the higher.
    assert_eq!(nearest_rank(&[3, 9], 50), Some(3));
    assert_eq!(nearest_rank(&[3, 9], 90), Some(9));
    // Ten: ranks 5 and 9.
    let ten: Vec<i64> = (1..=10).map(|i| i * 10).collect();
    assert_eq!(nearest_rank(&ten, 50), Some(50));
    assert_eq!(nearest_rank(&ten, 90), Some(90));
    assert_eq!(nearest_rank(&ten, 100), Some(100));
    assert_eq!(nearest_rank(&ten, 0), Some(10));
    // Eleven: ranks 6 and 10.
    let eleven: Vec<i64> = (1..=11).collect();
    assert_eq!(nearest_rank(&eleven, 50), Some(6));
    assert_eq!(nearest_rank(&eleven, 90), Some(10));
}

#[test]
fn time_to_confirm_is_in_minutes_over_the_confirmed_ones() {
    let minutes = |m: &[i64]| {
        let rows: Vec<ActivationRow> = m
            .iter()
            .map(|&m| confirmed(asked(30), Duration::minutes(m)))
            .chain([asked(1), cancelled(asked(30), Duration::hours(2))])
            .collect();
        run(&rows).overall.time_to_confirm
    };
    let one = minutes(&[95]);
    assert_eq!(
        one,
        TimeToConfirm {
            confirmed: 1,
            median_minutes: Some(95.0),
            p90_minutes: Some(95.0),
        }
    );
    let two = minutes(&[300, 20]);
    assert_eq!(
        (two.confirmed, two.median_minutes, two.p90_minutes),
        (2, Some(20.0), Some(300.0))
    );
    // Given out of order: sorted before ranking.
    let ten = minutes(&[100, 10, 90, 20, 80, 30, 70, 40, 60, 50]);
    assert_eq!(
        (ten.confirmed, ten.median_minutes, ten.p90_minutes),
        (10, Some(50.0), Some(90.0))
    );
    let none = minutes(&[]);
    assert_eq!((none.confirmed, none.median_minutes), (0, None));
    // Seconds are kept, as hundredths of a minute.
    let a = confirmed(asked(30), Duration::seconds(100));
    assert_eq!(run(&[a]).overall.time_to_confirm.median_minutes, Some(1.67));
}

#[test]
fn offers_declines_and_expiries_add_up_with_rates_per_offer() {
    let mut a = confirmed(asked(30), Duration::hours(5));
    a.offers = 4;
    a.declines = 2;
    a.expiries = 1;
    let mut b = asked(2);
    b.offers = 1;
    b.expiries = 1;
    let o = run(&[a, b, asked(1)]).overall.offers;
    assert_eq!(
        o,
        Offers {
            made: 5,
            declined: 2,
            expired: 2,
            decline_rate: Some(0.4),
            expiry_rate: Some(0.4),
        }
    );
    let o = run(&[asked(1)]).overall.offers;
    assert_eq!((o.made, o.decline_rate, o.expiry_rate), (0, None, None));
}

#[test]
fn groups_split_by_role_sector_language_and_their_combination() {
    let t = NOW - Duration::hours(30);
    let rows = [
        confirmed(row(Lawyer, Legal, "fr", t), Duration::hours(1)),
        row(Interpreter, Health, "ar", t),
        confirmed(row(Interpreter, Health, "ar", t), Duration::hours(2)),
        row(Mediator, Labour, "ar", t),
        cancelled(row(Mediator, Legal, "uk", t), Duration::hours(1)),
    ];
    let r = run(&rows);
    let roles: Vec<_> = r
        .by_role
        .iter()
        .map(|g| (g.role, g.figures.compliance.requested))
        .collect();
    assert_eq!(roles, [(Mediator, 2), (Interpreter, 2), (Lawyer, 1)]);
    let sectors: Vec<_> = r
        .by_sector
        .iter()
        .map(|g| (g.sector, g.figures.compliance.requested))
        .collect();
    assert_eq!(sectors, [(Legal, 2), (Labour, 1), (Health, 2)]);
    let languages: Vec<_> = r
        .by_language
        .iter()
        .map(|g| (g.language.as_str(), g.figures.compliance.requested))
        .collect();
    assert_eq!(languages, [("ar", 3), ("fr", 1), ("uk", 1)]);
    let combos: Vec<_> = r
        .by_combination
        .iter()
        .map(|g| {
            (
                g.role,
                g.sector,
                g.language.as_str(),
                g.figures.compliance.confirmed_in_time,
                g.figures.compliance.late,
            )
        })
        .collect();
    assert_eq!(
        combos,
        [
            (Mediator, Legal, "uk", 0, 0),
            (Mediator, Labour, "ar", 0, 1),
            (Interpreter, Health, "ar", 1, 1),
            (Lawyer, Legal, "fr", 1, 0),
        ]
    );
    let ar = &r.by_language[0].figures;
    assert_eq!(ar.compliance.rate, Some(0.3333));
    assert_eq!(ar.time_to_confirm.median_minutes, Some(120.0));
    // Every group adds up to the whole.
    let total: i64 = r
        .by_combination
        .iter()
        .map(|g| g.figures.compliance.requested)
        .sum();
    assert_eq!(total, r.overall.compliance.requested);
    let c = &r.overall.compliance;
    assert_eq!(c.requested, c.cancelled_before_due + c.due + c.pending);
    assert_eq!(c.due, c.confirmed_in_time + c.late);
}

#[test]
fn gaps_are_what_nobody_or_only_one_covers_most_requested_first() {
    use RegistryStatus::{Active, Suspended};
    let t = NOW - Duration::hours(3);
    let rows = [
        // Nobody: a suspended lawyer speaks Pashto, an active one does not.
        row(Lawyer, Legal, "ps", t),
        // Nobody: one speaks Tigrinya, but in health, not labour.
        row(Mediator, Labour, "ti", t),
        row(Mediator, Labour, "ti", t),
        row(Mediator, Labour, "ti", t),
        // One.
        row(Interpreter, Health, "ar", t),
        row(Interpreter, Health, "ar", t),
        // One (the other speaks it but is a mediator).
        row(Interpreter, Legal, "fr", t),
        // Two: no gap.
        row(Mediator, Legal, "fr", t),
    ];
    let registry = [
        professional(1, Suspended, &[Lawyer], &[Legal], &["ps"]),
        professional(2, Active, &[Lawyer], &[Legal], &["en"]),
        professional(3, Active, &[Mediator], &[Health], &["ti"]),
        professional(4, Active, &[Interpreter], &[Health, Legal], &["ar", "fr"]),
        professional(5, Active, &[Mediator], &[Legal], &["fr"]),
        professional(6, Active, &[Mediator, Interpreter], &[Legal], &["fr", "en"]),
    ];
    let r = report(FROM, TO, NOW, &rows, &registry);
    let gap = |role, sector, language: &str, requests| Gap {
        role,
        sector,
        language: language.into(),
        requests,
    };
    assert_eq!(
        r.gaps.uncovered,
        [gap(Mediator, Labour, "ti", 3), gap(Lawyer, Legal, "ps", 1)]
    );
    // Interpreter/legal/fr: professionals 4 and 6 — two. So only Arabic.
    assert_eq!(r.gaps.single, [gap(Interpreter, Health, "ar", 2)]);

    // Professional 6 leaves interpreting: French legal interpreting now
    // rests on one; equal requests keep the role, sector, language order.
    let mut thinner = registry.clone();
    thinner[5].roles = [Mediator].into();
    let r = report(FROM, TO, NOW, &rows, &thinner);
    assert_eq!(
        r.gaps.single,
        [
            gap(Interpreter, Health, "ar", 2),
            gap(Interpreter, Legal, "fr", 1),
        ]
    );
    assert_eq!(r.gaps.uncovered.len(), 2);
}

#[test]
fn an_empty_period_is_all_zeros_with_no_rates_and_no_groups() {
    let r = report(FROM, TO, NOW, &[], &[]);
    assert_eq!(r.overall, Figures::default());
    assert_eq!(r.overall.compliance.rate, None);
    assert_eq!(r.overall.time_to_confirm.median_minutes, None);
    assert!(r.by_role.is_empty() && r.by_sector.is_empty());
    assert!(r.by_language.is_empty() && r.by_combination.is_empty());
    assert_eq!(r.gaps, Gaps::default());
    assert_eq!((r.from, r.to, r.generated_at), (FROM, TO, NOW));
}

#[test]
fn the_json_has_the_documented_names_and_no_ids() {
    let rows = [confirmed(asked(30), Duration::hours(1)), asked(2)];
    let v = serde_json::to_value(run(&rows)).unwrap();
    assert_eq!(v["from"], "2026-01-01");
    assert_eq!(v["to"], "2026-03-10");
    assert_eq!(v["generated_at"], "2026-03-10T12:00:00Z");
    let keys = |v: &serde_json::Value| {
        let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
        k.sort();
        k
    };
    assert_eq!(
        keys(&v),
        [
            "by_combination",
            "by_language",
            "by_role",
            "by_sector",
            "from",
            "gaps",
            "generated_at",
            "overall",
            "to"
        ]
    );
    assert_eq!(
        keys(&v["by_combination"][0]),
        [
            "compliance",
            "language",
            "offers",
            "role",
            "sector",
            "time_to_confirm"
        ]
    );
    assert_eq!(v["by_role"][0]["role"], "interpreter");
    assert_eq!(v["by_sector"][0]["sector"], "health");
    assert_eq!(
        keys(&v["overall"]["compliance"]),
        [
            "cancelled_before_due",
            "confirmed_in_time",
            "deadlines_missed",
            "due",
            "late",
            "pending",
            "rate",
            "requested"
        ]
    );
    assert_eq!(
        keys(&v["overall"]["offers"]),
        ["decline_rate", "declined", "expired", "expiry_rate", "made"]
    );
    assert_eq!(
        keys(&v["overall"]["time_to_confirm"]),
        ["confirmed", "median_minutes", "p90_minutes"]
    );
    // No id of anyone, anywhere.
    let text = v.to_string();
    for a in &rows {
        assert!(!text.contains(&a.person_id.unwrap().to_string()));
        if let Some(c) = a.confirmed {
            assert!(!text.contains(&c.to_string()));
        }
        assert!(!text.contains(&a.activation_id.to_string()));
    }
}
