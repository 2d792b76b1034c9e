//! Matching: for a need, rank the services of the network that answer it,
//! and say why each ranks where it does. Pure: the candidates, their
//! current load and past acceptance, the person's languages, the calendar
//! and the moment all come in.
//!
//! A service is a candidate when it answers the need's category. It is
//! *available* when its provider is active with an agreement in force;
//! unavailable ones are listed last, with the reason, so the desk sees the
//! gap. Available ones are scored on, in order of weight: a common
//! language with the person (or interpretation offered), the provider's
//! past acceptance rate, how soon the service next opens, how many
//! referrals it holds open now, and how fast its agreement promises to
//! acknowledge.

use crate::calendar::WorkingCalendar;
use crate::ids::{OrganizationId, ServiceId};
use crate::organization::{Organization, Service};
use crate::taxonomy::NeedCode;
use time::{Duration, OffsetDateTime, PrimitiveDateTime, UtcOffset, Weekday};

/// What the network knows of a service's recent work.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServiceStats {
    /// Referrals it holds open now.
    pub open: u32,
    /// Referrals it accepted (ever).
    pub accepted: u32,
    /// Referrals it declined (ever).
    pub declined: u32,
}

/// One ranked service.
#[derive(Clone, Debug, PartialEq)]
pub struct Match {
    /// The provider.
    pub organization: OrganizationId,
    /// The provider's name.
    pub organization_name: String,
    /// The service.
    pub service: ServiceId,
    /// The service's name.
    pub service_name: String,
    /// Whether a referral may be sent to it now.
    pub available: bool,
    /// The score (higher is better; unavailable services score 0).
    pub score: i32,
    /// When it next opens (Europe/Rome local time), within two weeks.
    pub next_opening: Option<PrimitiveDateTime>,
    /// Why it ranks where it does, one reason per line.
    pub reasons: Vec<String>,
}

/// Europe/Rome's offset from UTC at `t`: CET, or CEST from the last Sunday
/// of March to the last Sunday of October (01:00 UTC both ends, the EU rule).
pub fn rome_offset(t: OffsetDateTime) -> UtcOffset {
    let t = t.to_offset(UtcOffset::UTC);
    let last_sunday = |month: time::Month| {
        let mut d = time::Date::from_calendar_date(t.year(), month, 31).expect("31 exists");
        while d.weekday() != Weekday::Sunday {
            d = d.previous_day().expect("in range");
        }
        d.with_hms(1, 0, 0).expect("valid").assume_utc()
    };
    let summer = t >= last_sunday(time::Month::March) && t < last_sunday(time::Month::October);
    UtcOffset::from_hms(if summer { 2 } else { 1 }, 0, 0).expect("valid offset")
}

/// The date in Potenza (Europe/Rome) at `t`, whatever offset `t` is
/// written in: agreements are in force by local dates.
pub fn rome_date(t: OffsetDateTime) -> time::Date {
    t.to_offset(rome_offset(t)).date()
}

/// The instant of a Europe/Rome local time (in the hour the clocks skip
/// or repeat, the offset before the switch is taken).
pub fn rome_instant(local: PrimitiveDateTime) -> OffsetDateTime {
    let guess = local.assume_offset(UtcOffset::from_hms(1, 0, 0).expect("valid offset"));
    local.assume_offset(rome_offset(guess))
}

/// When `service` next opens at or after `now` (Rome local time), within
/// 14 days, skipping its closing dates and the calendar's holidays.
pub fn next_opening(
    service: &Service,
    calendar: &WorkingCalendar,
    now: OffsetDateTime,
) -> Option<PrimitiveDateTime> {
    let local = now.to_offset(rome_offset(now));
    let (today, time_now) = (local.date(), local.time());
    (0..14).find_map(|i| {
        let date = today + Duration::days(i);
        if service.closed_on.contains(&date) || calendar.is_holiday(date) {
            return None;
        }
        service.hours.on(date.weekday()).iter().find_map(|r| {
            if i > 0 || time_now < r.open {
                Some(PrimitiveDateTime::new(date, r.open))
            } else if r.contains(time_now) {
                Some(PrimitiveDateTime::new(date, time_now))
            } else {
                None
            }
        })
    })
}

/// Rank the services of `providers` that answer `need` (best first).
pub fn rank(
    need: &NeedCode,
    person_languages: &[String],
    providers: &[(Organization, Vec<(ServiceId, ServiceStats)>)],
    calendar: &WorkingCalendar,
    now: OffsetDateTime,
) -> Vec<Match> {
    let mut out = Vec::new();
    for (org, stats) in providers {
        for service in org.services.values().filter(|s| s.answers(need)) {
            let stat = stats
                .iter()
                .find(|(id, _)| *id == service.id)
                .map(|(_, s)| *s)
                .unwrap_or_default();
            out.push(score(org, service, stat, person_languages, calendar, now));
        }
    }
    out.sort_by(|a, b| {
        (b.available, b.score)
            .cmp(&(a.available, a.score))
            .then_with(|| a.organization_name.cmp(&b.organization_name))
            .then_with(|| a.service.cmp(&b.service))
    });
    out
}

fn score(
    org: &Organization,
    service: &Service,
    stat: ServiceStats,
    person_languages: &[String],
    calendar: &WorkingCalendar,
    now: OffsetDateTime,
) -> Match {
    let mut reasons = Vec::new();
    let next = next_opening(service, calendar, now);
    let mut m = Match {
        organization: org.id,
        organization_name: org.name.clone(),
        service: service.id,
        service_name: service.name.clone(),
        available: org.can_receive_referrals(rome_date(now)),
        score: 0,
        next_opening: next,
        reasons: Vec::new(),
    };
    if !m.available {
        reasons.push(if org.agreement.is_none() {
            "not available: no agreement in force".to_owned()
        } else {
            format!(
                "not available: the provider is {} or its agreement is not in force",
                org.status.as_str()
            )
        });
        m.reasons = reasons;
        return m;
    }
    let mut score = 0;
    let common: Vec<&String> = person_languages
        .iter()
        .filter(|l| service.languages.contains(l))
        .collect();
    if !common.is_empty() {
        score += 40;
        reasons.push(format!(
            "+40 speaks the person's language ({})",
            common
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    } else if person_languages.is_empty() {
        score += 20;
        reasons.push("+20 the person's languages are not recorded".to_owned());
    } else if service.interpretation {
        score += 25;
        reasons.push("+25 no common language, interpretation offered".to_owned());
    } else {
        reasons.push("+0 no common language and no interpretation".to_owned());
    }
    let decided = stat.accepted + stat.declined;
    if decided >= 3 {
        let rate = f64::from(stat.accepted) / f64::from(decided);
        let points = (rate * 25.0).round() as i32;
        score += points;
        reasons.push(format!(
            "+{points} accepted {}% of {decided} referrals",
            (rate * 100.0).round()
        ));
    } else {
        score += 12;
        reasons.push("+12 too few past referrals to judge acceptance".to_owned());
    }
    match next {
        Some(at) => {
            let wait = rome_instant(at) - now;
            let days = wait.whole_hours().max(0) / 24;
            let points = (15 - 2 * days as i32).max(0);
            score += points;
            reasons.push(format!("+{points} next open {at}"));
        }
        None => reasons.push("+0 not open in the next two weeks".to_owned()),
    }
    let load_penalty = stat.open.min(15) as i32;
    score -= load_penalty;
    reasons.push(format!(
        "-{load_penalty} holds {} open referrals",
        stat.open
    ));
    if let Some(a) = &org.agreement {
        let points = (5 - i32::from(a.acknowledge_within)).max(0);
        score += points;
        reasons.push(format!(
            "+{points} acknowledges within {} working days",
            a.acknowledge_within
        ));
    }
    m.score = score;
    m.reasons = reasons;
    m
}

#[cfg(test)]
mod tests;
