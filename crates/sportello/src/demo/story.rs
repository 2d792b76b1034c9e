//! The demo's one scripted case, beside the generated people: the
//! network's classic redirect. A fictitious job seeker asks the desk for
//! the job centre's registration (the DID); the Centro per l'Impiego
//! declines for lack of capacity; the desk redirects the need to the
//! INCA CGIL patronato, which files the registration online and
//! completes it. The generator can tell such a story by chance; this one
//! is in every demo, whatever day it is loaded, so the card's chain, both
//! inboxes and the bottleneck report can always show it.
//!
//! Like the generator, it is pure — the histories are decided by the
//! domain's own rules from `now`, the network and a fixed seed — and names
//! only a fictitious person (`Demo ` names, a `+39 300 000` phone).

use crate::simulate::{HistoryAppend, Network, StreamHistory, local, metadata, v7};
use rand::SeedableRng;
use rand::rngs::StdRng;
use sportello_domain::aggregate::{CaseAggregate, ReferralAggregate};
use sportello_domain::case::consent::{
    CardField, ConsentId, ConsentPurpose, ConsentTerms, OrganizationScope,
};
use sportello_domain::case::lifecycle::CaseCommand;
use sportello_domain::case::{
    Channel, LanguageSkill, PersonContacts, PersonIdentity, PersonName, PersonTakenInCharge,
    Proficiency, Sex,
};
use sportello_domain::matching::rome_date;
use sportello_domain::referral::{self, DeclineReason, Outcome, ReferralCommand};
use sportello_domain::taxonomy::{NeedCode, Urgency};
use sportello_domain::{
    DomainError, NeedId, OrganizationId, PersonId, ReferralId, ServiceId, StreamId,
};
use time::{Date, Duration, OffsetDateTime, Weekday};

/// The seed of the story's ids.
const SEED: u64 = 0x5707_2026;
/// About how long before the load the person came to the desk.
const DAYS_AGO: i64 = 30;

/// The job centre and its registration service.
const JOB_CENTRE: (u128, u128) = (0x0e04, 0x0005_5401);
/// The INCA CGIL patronato and its work service.
const PATRONATO: (u128, u128) = (0x0e08, 0x0005_5803);

/// The provider (index in the network) and service of demo ids.
fn service_of(net: &Network, (org, service): (u128, u128)) -> Result<usize, DomainError> {
    let (org, service) = (super::demo_id(org), ServiceId(super::demo_id(service)));
    net.providers
        .iter()
        .position(|p| p.organization.id.0 == org && p.organization.services.contains_key(&service))
        .ok_or(DomainError::NotFound("demo provider"))
}

/// The day the person came: a Wednesday (the desk opens Wednesday to
/// Friday) about [`DAYS_AGO`] days before `now`, not a holiday.
fn first_day(net: &Network, now: OffsetDateTime) -> Date {
    let mut day = rome_date(now) - Duration::days(DAYS_AGO);
    while day.weekday() != Weekday::Wednesday || net.calendar.is_holiday(day) {
        day -= Duration::days(1);
    }
    day
}

/// The story's case and its two referrals, in the order they are written.
pub fn person(net: &Network, now: OffsetDateTime) -> Result<Vec<HistoryAppend>, DomainError> {
    let rng = &mut StdRng::seed_from_u64(SEED);
    let day = first_day(net, now);
    // Minutes of a working day `n` working days after the first.
    let on = |n: u32, minute: u16| {
        let date = net.calendar.add_working_days(local(day, 9 * 60), n).date();
        local(date, minute)
    };
    let t0 = local(day, 9 * 60 + 15);
    let (desk, operator) = (net.desk, net.operator);

    let person = PersonId(v7(rng, t0));
    let mut case = StreamHistory::<CaseAggregate>::default();
    let opening = PersonTakenInCharge {
        person_id: person,
        desk,
        channel: Channel::Desk,
        operator: Some(operator),
        identity: identity(),
    };
    let m = metadata(rng, operator, desk, t0, None);
    case.apply(rng, CaseCommand::TakeInCharge(opening), m)?;
    let consent = ConsentTerms {
        consent_id: ConsentId(v7(rng, t0)),
        purpose: ConsentPurpose::Referral,
        organizations: OrganizationScope::Network,
        data: CardField::ALL.into_iter().collect(),
        given_on: day,
        notice_language: "fr".into(),
        recorded_by: operator,
    };
    let m = metadata(rng, operator, desk, t0, None);
    case.apply(rng, CaseCommand::RecordConsent(consent), m)?;
    let t = t0 + Duration::minutes(10);
    let need = NeedId(v7(rng, t));
    let m = metadata(rng, operator, desk, t, None);
    let correlation = m.correlation_id;
    let recorded = case.apply(
        rng,
        CaseCommand::RecordNeed {
            need,
            code: NeedCode::parse("job_centre_registration").expect("in the taxonomy"),
            urgency: Urgency::Normal,
            note: None,
        },
        m,
    )?;
    let state = case.state.clone().ok_or(DomainError::NotFound("case"))?;

    // Sent to the job centre, which cannot see the person for months.
    let (cpi, cpi_service) = (service_of(net, JOB_CENTRE)?, JOB_CENTRE.1);
    let cpi_partner = &net.providers[cpi];
    let sent = t0 + Duration::minutes(20);
    let first = ReferralId(v7(rng, sent));
    let planned = referral::plan(
        first,
        &state,
        need,
        &cpi_partner.organization,
        ServiceId(super::demo_id(cpi_service)),
        None,
        &net.calendar,
        sent,
    )?;
    let mut to_cpi = StreamHistory::<ReferralAggregate>::default();
    let m = metadata(rng, operator, desk, sent, Some((correlation, recorded)));
    to_cpi.apply(rng, ReferralCommand::Send(planned), m)?;
    let (partner, org) = (cpi_partner.partner, cpi_partner.organization.id);
    let m = metadata(rng, partner, org, on(2, 10 * 60 + 30), None);
    let decline = ReferralCommand::Decline {
        reason: DeclineReason::NoCapacity,
        text: Some("Demo: nessun appuntamento disponibile prima di tre mesi.".into()),
    };
    to_cpi.apply(rng, decline, m)?;

    // The desk sends the need on to the patronato, in one write with the
    // new referral (as a redirection over HTTP is).
    let (pat, pat_service) = (service_of(net, PATRONATO)?, PATRONATO.1);
    let patronato = &net.providers[pat];
    let at = on(3, 9 * 60);
    let second = ReferralId(v7(rng, at));
    let m = metadata(rng, operator, desk, at, None);
    let cause = to_cpi.apply(
        rng,
        ReferralCommand::Redirect {
            to: second,
            organization: patronato.organization.id,
            service: ServiceId(super::demo_id(pat_service)),
        },
        m.clone(),
    )?;
    let planned = referral::plan(
        second,
        &state,
        need,
        &patronato.organization,
        ServiceId(super::demo_id(pat_service)),
        Some(first),
        &net.calendar,
        at,
    )?;
    let mut to_patronato = StreamHistory::<ReferralAggregate>::default();
    let m = sportello_domain::Metadata {
        causation_id: Some(cause),
        ..m
    };
    to_patronato.apply(rng, ReferralCommand::Send(planned), m)?;
    // The patronato sees the person the next day and files the DID online.
    let (partner, org): (_, OrganizationId) = (patronato.partner, patronato.organization.id);
    for (at, command) in [
        (on(3, 11 * 60), ReferralCommand::Acknowledge),
        (on(4, 10 * 60), ReferralCommand::Accept),
        (on(5, 9 * 60 + 30), ReferralCommand::Start),
        (
            on(5, 10 * 60 + 15),
            ReferralCommand::Complete {
                outcome: Outcome::NeedMet,
                note: None,
            },
        ),
    ] {
        let m = metadata(rng, partner, org, at, None);
        to_patronato.apply(rng, command, m)?;
    }

    let network = net.id;
    Ok([
        case.finish(network, StreamId(person.0)),
        to_cpi.finish(network, StreamId(first.0)),
        to_patronato.finish(network, StreamId(second.0)),
    ]
    .into_iter()
    .flatten()
    .collect())
}

/// The story's fictitious person.
fn identity() -> PersonIdentity {
    PersonIdentity {
        names: vec![PersonName {
            kind: "as_in_document".into(),
            text: "Demo Youssef Benali".into(),
        }],
        birth_date: Some("1994".into()),
        sex: Some(Sex::Male),
        country_of_birth: Some("MA".into()),
        citizenships: vec!["MA".into()],
        languages: vec![
            LanguageSkill {
                code: "ar".into(),
                proficiency: Proficiency::Native,
            },
            LanguageSkill {
                code: "fr".into(),
                proficiency: Proficiency::Fluent,
            },
            LanguageSkill {
                code: "it".into(),
                proficiency: Proficiency::Basic,
            },
        ],
        contacts: PersonContacts {
            phone: Some("+39 300 000 9001".into()),
            email: None,
            address: None,
        },
        documents: Vec::new(),
        vulnerabilities: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sportello_domain::referral::ReferralEvent;
    use time::macros::datetime;

    /// The events of a stream, decoded.
    fn events(append: &HistoryAppend) -> Vec<ReferralEvent> {
        append
            .0
            .events
            .iter()
            .map(|e| referral::decode(&e.event_type, &e.payload).unwrap())
            .collect()
    }

    #[test]
    fn the_job_centre_declines_and_a_patronato_completes_on_any_day() {
        // Any day of the year, holidays and the clocks' changes included.
        let start = datetime!(2026-01-01 07:00 UTC);
        for d in 0..366 {
            let now = start + Duration::days(d) + Duration::hours(d % 13);
            let net = super::super::network(now).unwrap();
            let story = person(&net, now).unwrap();
            assert_eq!(story.len(), 3, "a case and two referrals");
            for (req, meta) in &story {
                for m in meta {
                    assert!(m.occurred_at < now, "{now}: {m:?}");
                }
                assert!(
                    meta.windows(2)
                        .all(|w| w[0].occurred_at <= w[1].occurred_at)
                );
                assert_eq!(req.network, net.id);
            }
            let first = events(&story[1]);
            let ReferralEvent::Sent(sent) = &first[0] else {
                panic!("sent first")
            };
            assert_eq!(sent.organization.0, super::super::demo_id(JOB_CENTRE.0));
            assert!(matches!(
                first[1],
                ReferralEvent::Declined {
                    reason: DeclineReason::NoCapacity,
                    ..
                }
            ));
            let ReferralEvent::Redirected { to, .. } = &first[2] else {
                panic!("redirected")
            };
            let second = events(&story[2]);
            let ReferralEvent::Sent(again) = &second[0] else {
                panic!("sent first")
            };
            assert_eq!(again.id, *to);
            assert_eq!(again.redirected_from, Some(sent.id));
            assert_eq!(again.organization.0, super::super::demo_id(PATRONATO.0));
            assert!(matches!(
                second.last(),
                Some(ReferralEvent::Completed {
                    outcome: Outcome::NeedMet,
                    ..
                })
            ));
        }
    }
}
