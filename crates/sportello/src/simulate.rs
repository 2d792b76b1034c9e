//! A pure, deterministic generator of fictitious case histories: one
//! person taken in charge by the desk, their visits and screened needs,
//! the needs the desk answers itself, and the referrals of the others to
//! the network's providers with their whole lifecycle — acknowledged late
//! or never, declined and redirected, started, completed, failed,
//! cancelled — dated in the past, in working hours.
//!
//! The demo loader and the benchmark's dataset both use it. It must never
//! do I/O, read the clock or the system's randomness: everything comes
//! from the [`Network`] fixture, the seeded RNG, `now` and the window, so
//! a seed always gives the same histories (ids and event ids included).
//! Every event is made by the domain's own `decide`/`evolve`, so a
//! generated history holds only transitions the rules allow.
//!
//! Demo data is marked: every name of a person starts with `Demo `, phones
//! are `+39 300 000 ...`, emails are at `example.org`, document numbers
//! start with `DEMO`.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use sportello_domain::aggregate::{Aggregate, CaseAggregate, ReferralAggregate};
use sportello_domain::calendar::WorkingCalendar;
use sportello_domain::case::consent::{
    CardField, ConsentId, ConsentPurpose, ConsentTerms, OrganizationScope,
};
use sportello_domain::case::lifecycle::{Case, CaseCommand, DeskOutcome};
use sportello_domain::case::{
    Channel, IdentityDocument, LanguageSkill, PersonContacts, PersonIdentity, PersonName,
    PersonTakenInCharge, Proficiency, Sex, Vulnerability,
};
use sportello_domain::matching::rome_offset;
use sportello_domain::organization::{Organization, OrganizationKind, WeeklyHours};
use sportello_domain::referral::{
    self, DeclineReason, FailReason, Outcome, ReferralCommand, ReferralStatus,
};
use sportello_domain::taxonomy::{self, Area, NeedCode, Urgency};
use sportello_domain::{
    AccountId, CommandId, CorrelationId, DomainError, EventId, Metadata, NeedId, NetworkId,
    OrganizationId, PersonId, ReferralId, ServiceId, StreamId,
};
use sportello_store::{AppendRequest, ExpectedVersion, NewEvent};
use std::collections::HashMap;
use time::{Date, Duration, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};
use uuid::Uuid;

/// One stream's history: the append (expected version `NoStream`) and
/// each event's own metadata, for `EventStore::append_history`.
pub type HistoryAppend = (AppendRequest, Vec<Metadata>);

/// A provider as the generator sees it: its organisation (services,
/// agreement, status) and the partner account that works its inbox.
#[derive(Clone, Debug)]
pub struct Provider {
    /// The organisation, as its events left it.
    pub organization: Organization,
    /// The account its referral actions are made by.
    pub partner: AccountId,
}

/// The network the histories are generated in.
#[derive(Clone, Debug)]
pub struct Network {
    /// The tenant.
    pub id: NetworkId,
    /// The desk that takes people in charge, refers, cancels and redirects.
    pub desk: OrganizationId,
    /// The desk operator account its actions are made by.
    pub operator: AccountId,
    /// The providers.
    pub providers: Vec<Provider>,
    /// The working calendar deadlines and delays are counted in.
    pub calendar: WorkingCalendar,
    /// When the desk receives people (its services' hours together).
    desk_hours: WeeklyHours,
    /// The need categories the desk answers itself (its services').
    desk_answers: Vec<NeedCode>,
    /// The services answering each category: (provider index, service).
    by_need: HashMap<NeedCode, Vec<(usize, ServiceId)>>,
    /// Current categories with cumulative screening weights.
    needs: Vec<(NeedCode, u32)>,
    /// Follow-up contacts (phone calls, desk visits) per person on
    /// average after the screening is done, spread up to now; 0 by
    /// default. The benchmark raises it for people followed for months.
    pub follow_up_visits: u32,
}

/// How often each category is screened, relative to the others (1).
const COMMON_NEEDS: &[(&str, u32)] = &[
    ("residence_permit_renewal", 16),
    ("job_search", 12),
    ("health_ssn_registration", 10),
    ("italian_course_adults", 10),
    ("job_centre_registration", 9),
    ("housing_search", 8),
    ("registry_residence", 7),
    ("legal_advice", 7),
    ("health_stp_code", 6),
    ("school_enrolment", 5),
    ("family_reunification_clearance", 5),
    ("asylum_application", 4),
    ("residence_permit_issue", 4),
    ("child_benefit", 4),
    ("interpreting", 3),
    ("intercultural_mediation", 3),
    ("inclusion_allowance", 3),
    ("labour_dispute", 3),
    ("health_maternal_child", 3),
    ("citizenship_residence", 3),
    ("tax_code", 3),
    ("social_housing", 2),
];

impl Network {
    /// The fixture: the desk's hours and own categories are taken from its
    /// services; providers are indexed by the categories they answer.
    pub fn new(
        id: NetworkId,
        desk: &Organization,
        operator: AccountId,
        providers: Vec<Provider>,
        calendar: WorkingCalendar,
    ) -> Self {
        let mut desk_hours = WeeklyHours::new();
        let mut desk_answers = Vec::new();
        for s in desk.services.values() {
            for day in WEEKDAYS {
                let mut ranges = desk_hours.on(day).to_vec();
                ranges.extend_from_slice(s.hours.on(day));
                desk_hours.set(day, ranges);
            }
            desk_answers.extend(s.needs.iter().cloned());
        }
        let mut by_need: HashMap<NeedCode, Vec<(usize, ServiceId)>> = HashMap::new();
        for (i, p) in providers.iter().enumerate() {
            for s in p.organization.services.values() {
                for code in &s.needs {
                    by_need.entry(code.clone()).or_default().push((i, s.id));
                }
            }
        }
        let mut needs = Vec::new();
        let mut total = 0;
        for c in taxonomy::all().iter().filter(|c| !c.is_retired()) {
            total += COMMON_NEEDS
                .iter()
                .find(|(code, _)| *code == c.code)
                .map_or(1, |(_, w)| *w);
            needs.push((NeedCode::parse(c.code).expect("from the table"), total));
        }
        Network {
            id,
            desk: desk.id,
            operator,
            providers,
            calendar,
            desk_hours,
            desk_answers,
            by_need,
            needs,
            follow_up_visits: 0,
        }
    }

    /// A category to screen, weighted towards the common ones.
    fn pick_need(&self, rng: &mut StdRng) -> &NeedCode {
        let total = self.needs.last().map_or(1, |(_, w)| *w);
        let roll = rng.random_range(0..total);
        let i = self.needs.partition_point(|(_, w)| *w <= roll);
        &self.needs[i.min(self.needs.len() - 1)].0
    }

    /// A service that may receive a referral for `code` at `at`, other
    /// than `except`, preferably of another provider.
    fn pick_service(
        &self,
        rng: &mut StdRng,
        code: &NeedCode,
        at: OffsetDateTime,
        except: Option<(usize, ServiceId)>,
    ) -> Option<(usize, ServiceId)> {
        let candidates = self.by_need.get(code)?;
        let open = |&&(p, s): &&(usize, ServiceId)| {
            except.is_none_or(|(_, x)| x != s)
                && self.providers[p]
                    .organization
                    .can_receive_referrals(at.date())
        };
        let other_provider = |c: &&(usize, ServiceId)| except.is_none_or(|(xp, _)| xp != c.0);
        let n = candidates
            .iter()
            .filter(open)
            .filter(other_provider)
            .count();
        if n > 0 {
            let k = rng.random_range(0..n);
            return candidates
                .iter()
                .filter(open)
                .filter(other_provider)
                .nth(k)
                .copied();
        }
        let n = candidates.iter().filter(open).count();
        (n > 0).then(|| {
            let k = rng.random_range(0..n);
            *candidates.iter().filter(open).nth(k).expect("counted")
        })
    }
}

const WEEKDAYS: [time::Weekday; 7] = [
    time::Weekday::Monday,
    time::Weekday::Tuesday,
    time::Weekday::Wednesday,
    time::Weekday::Thursday,
    time::Weekday::Friday,
    time::Weekday::Saturday,
    time::Weekday::Sunday,
];

/// The RNG of one person: a function of the network, the seed and the
/// person's index only, so people can be generated in any order or in
/// parallel and still come out the same.
pub fn person_rng(network: NetworkId, seed: u64, index: u64) -> StdRng {
    let (hi, lo) = network.0.as_u64_pair();
    let mix = |mut z: u64| {
        // splitmix64's finaliser.
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    StdRng::seed_from_u64(mix(mix(mix(hi ^ seed) ^ lo) ^ index))
}

/// A UUID v7 of the instant `at` with random bits from `rng`: ids sort by
/// when the thing happened, as minted ones do, and stay reproducible.
pub fn v7(rng: &mut StdRng, at: OffsetDateTime) -> Uuid {
    let ms = u64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let bytes: [u8; 10] = rng.random();
    uuid::Builder::from_unix_timestamp_millis(ms, &bytes).into_uuid()
}

/// Metadata of a command made by `account` for `organization` at `at`,
/// with reproducible ids; `cause` continues a correlation from an event.
pub fn metadata(
    rng: &mut StdRng,
    account: AccountId,
    organization: OrganizationId,
    at: OffsetDateTime,
    cause: Option<(CorrelationId, EventId)>,
) -> Metadata {
    let command_id = CommandId(v7(rng, at));
    Metadata {
        account_id: account,
        organization_id: organization,
        command_id,
        correlation_id: cause.map_or(CorrelationId(command_id.0), |(c, _)| c),
        causation_id: cause.map(|(_, e)| e),
        occurred_at: at,
    }
}

/// One stream's history being built: each command decided on the state
/// the previous ones left, each event with its own metadata.
pub struct StreamHistory<A: Aggregate> {
    /// The state after the events so far.
    pub state: Option<A::State>,
    events: Vec<NewEvent>,
    metadata: Vec<Metadata>,
}

impl<A: Aggregate> Default for StreamHistory<A> {
    fn default() -> Self {
        Self {
            state: None,
            events: Vec::new(),
            metadata: Vec::new(),
        }
    }
}

impl<A: Aggregate> StreamHistory<A> {
    /// Decide `command` and add its events, dated by `metadata`; the id
    /// of the last event.
    pub fn apply(
        &mut self,
        rng: &mut StdRng,
        command: A::Command,
        metadata: Metadata,
    ) -> Result<EventId, DomainError> {
        let mut last = None;
        for event in A::decide(self.state.as_ref(), command)? {
            self.state = A::evolve(self.state.take(), &event);
            let state = self.state.as_ref().ok_or(DomainError::NotFound("stream"))?;
            let mut new = NewEvent::from(A::parts(state, event));
            new.event_id = EventId(v7(rng, metadata.occurred_at));
            last = Some(new.event_id);
            self.events.push(new);
            self.metadata.push(metadata.clone());
        }
        last.ok_or(DomainError::Invalid {
            field: "command",
            message: "decided no event",
        })
    }

    /// The append of a new stream (`None` if nothing happened).
    pub fn finish(self, network: NetworkId, stream: StreamId) -> Option<HistoryAppend> {
        let first = self.metadata.first()?.clone();
        Some((
            AppendRequest {
                network,
                stream_id: stream,
                stream_kind: A::STREAM_KIND,
                expected: ExpectedVersion::NoStream,
                events: self.events,
                metadata: first,
                idempotency: None,
            },
            self.metadata,
        ))
    }
}

/// How a kind of provider treats referrals: the network's bottlenecks.
struct Behaviour {
    /// Goes from sent straight to an answer.
    skip_acknowledge: f64,
    /// Answers (acknowledges, first contacts) after the agreement's deadline.
    late: f64,
    /// Declines, and why.
    decline: f64,
    reasons: &'static [(DeclineReason, u32)],
    /// Never answers at all: the overdue items of its inbox.
    stall: f64,
    /// Of the accepted, how many are started before they close.
    start: f64,
    /// Of the accepted, how many fail.
    fail: f64,
    /// Working days of work, from acceptance or start to the end.
    work_days: (u32, u32),
}

const USUAL_REASONS: &[(DeclineReason, u32)] = &[
    (DeclineReason::NotEligible, 30),
    (DeclineReason::MissingDocuments, 30),
    (DeclineReason::NoCapacity, 15),
    (DeclineReason::OutsideArea, 10),
    (DeclineReason::Duplicate, 10),
    (DeclineReason::Other, 5),
];

fn behaviour(kind: OrganizationKind) -> Behaviour {
    use DeclineReason as R;
    use OrganizationKind as K;
    let usual = Behaviour {
        skip_acknowledge: 0.4,
        late: 0.1,
        decline: 0.1,
        reasons: USUAL_REASONS,
        stall: 0.03,
        start: 0.8,
        fail: 0.08,
        work_days: (3, 20),
    };
    match kind {
        // Slow to acknowledge, often past the agreement's deadline.
        K::Questura => Behaviour {
            skip_acknowledge: 0.1,
            late: 0.55,
            decline: 0.12,
            reasons: &[
                (R::MissingDocuments, 55),
                (R::NotEligible, 25),
                (R::Duplicate, 15),
                (R::Other, 5),
            ],
            stall: 0.12,
            start: 0.9,
            fail: 0.06,
            work_days: (10, 40),
        },
        K::Prefettura => Behaviour {
            skip_acknowledge: 0.2,
            late: 0.3,
            decline: 0.12,
            reasons: &[
                (R::MissingDocuments, 50),
                (R::NotEligible, 40),
                (R::Other, 10),
            ],
            stall: 0.06,
            work_days: (15, 50),
            ..usual
        },
        // Declines about 45% of referrals for lack of capacity.
        K::JobCentre => Behaviour {
            skip_acknowledge: 0.3,
            late: 0.25,
            decline: 0.5,
            reasons: &[
                (R::NoCapacity, 90),
                (R::NotEligible, 5),
                (R::MissingDocuments, 5),
            ],
            stall: 0.08,
            fail: 0.15,
            work_days: (5, 30),
            ..usual
        },
        K::HealthAuthority => Behaviour {
            skip_acknowledge: 0.25,
            late: 0.12,
            decline: 0.08,
            start: 0.9,
            work_days: (2, 15),
            ..usual
        },
        K::SchoolOffice => Behaviour {
            skip_acknowledge: 0.3,
            late: 0.15,
            decline: 0.12,
            reasons: &[
                (R::NoCapacity, 45),
                (R::OutsideArea, 25),
                (R::NotEligible, 25),
                (R::Other, 5),
            ],
            work_days: (5, 25),
            ..usual
        },
        K::ComuneOffice => Behaviour {
            late: 0.15,
            reasons: &[
                (R::MissingDocuments, 60),
                (R::OutsideArea, 20),
                (R::NotEligible, 20),
            ],
            start: 0.7,
            fail: 0.05,
            ..usual
        },
        K::Patronato | K::TradeUnion => Behaviour {
            skip_acknowledge: 0.5,
            late: 0.08,
            stall: 0.02,
            fail: 0.1,
            work_days: (3, 25),
            ..usual
        },
        K::NonProfit => Behaviour {
            skip_acknowledge: 0.5,
            late: 0.05,
            decline: 0.15,
            reasons: &[(R::NoCapacity, 60), (R::OutsideArea, 20), (R::Other, 20)],
            stall: 0.02,
            start: 0.85,
            fail: 0.12,
            work_days: (1, 15),
        },
        K::Desk | K::Other => usual,
    }
}

/// The desk withdraws a referral (at each of two points of its life).
const CANCEL: f64 = 0.03;
/// A declined or failed referral is sent on to another service.
const REDIRECT: f64 = 0.6;
/// Referrals of one need at most (the first and its redirections).
const MAX_CHAIN: usize = 4;

/// The whole history of person number `index`: the case stream's append
/// first, then one append per referral stream, in the order they were
/// sent. Every event is dated in `[now - window, now]`, in working hours,
/// and non-decreasing within its stream.
pub fn person(
    net: &Network,
    rng: &mut StdRng,
    index: u64,
    now: OffsetDateTime,
    window: Duration,
) -> Result<Vec<HistoryAppend>, DomainError> {
    let now = now.to_offset(UtcOffset::UTC);
    let start = now - window;
    let mut g = Gen {
        net,
        rng,
        now,
        referrals: Vec::new(),
        settled: Some(start),
    };
    let (profile, identity) = identity(g.rng, index, now.date());
    let channel = g.channel();
    let t0 = g.arrival(channel, start);
    let person = PersonId(v7(g.rng, t0));
    let mut case = StreamHistory::<CaseAggregate>::default();
    let opening = PersonTakenInCharge {
        person_id: person,
        desk: net.desk,
        channel,
        operator: Some(net.operator),
        identity,
    };
    let m = g.desk_meta(t0, None);
    case.apply(g.rng, CaseCommand::TakeInCharge(opening), m)?;
    // The information notice is given at intake: everyone simulated
    // consents to referrals to the whole network, every kind of data (the
    // demo has people with narrower consents and legal bases).
    let consent = ConsentTerms {
        consent_id: ConsentId(v7(g.rng, t0)),
        purpose: ConsentPurpose::Referral,
        organizations: OrganizationScope::Network,
        data: CardField::ALL.into_iter().collect(),
        given_on: sportello_domain::matching::rome_date(t0),
        notice_language: "it".into(),
        recorded_by: net.operator,
    };
    let m = g.desk_meta(t0, None);
    case.apply(g.rng, CaseCommand::RecordConsent(consent), m)?;
    let mut at = t0;
    let total = pick(g.rng, &[(1usize, 50), (2, 35), (3, 15)]);
    let visits = pick(g.rng, &[(0usize, 35), (1, 35), (2, 20), (3, 10)]);
    let first = if visits == 0 {
        total
    } else {
        g.rng.random_range(1..=total)
    };
    g.screen(&mut case, &mut at, first, &profile)?;
    let mut recorded = first;
    for v in 0..visits {
        let days = g.rng.random_range(3..=30);
        let day = net.calendar.add_working_days(at, days).date();
        let channel = g.channel();
        let t = g.contact(channel, day).max(at + Duration::minutes(1));
        if t > now {
            break;
        }
        let note = g.rng.random_bool(0.2).then(|| DEMO_NOTE.to_owned());
        let m = g.desk_meta(t, None);
        case.apply(g.rng, CaseCommand::RecordVisit { channel, note }, m)?;
        at = t;
        let new = match total - recorded {
            0 => 0,
            left if v + 1 == visits => left,
            left => g.rng.random_range(0..=left),
        };
        g.screen(&mut case, &mut at, new, &profile)?;
        recorded += new;
    }
    // Closed once nothing is left moving; a few come back and reopen.
    if let Some(settled) = g.settled
        && g.rng.random_bool(0.3)
    {
        let days = g.rng.random_range(1..=15);
        let t = g.working(at.max(settled), days, at.max(settled));
        if t <= now {
            let m = g.desk_meta(t, None);
            case.apply(g.rng, CaseCommand::Close, m)?;
            at = t;
            if g.rng.random_bool(0.06) {
                let days = g.rng.random_range(10..=60);
                let day = net.calendar.add_working_days(at, days).date();
                let t = g.contact(Channel::Desk, day).max(at + Duration::minutes(1));
                if t <= now {
                    let m = g.desk_meta(t, None);
                    let visit = CaseCommand::RecordVisit {
                        channel: Channel::Desk,
                        note: None,
                    };
                    case.apply(g.rng, visit, m)?;
                    at = t + Duration::minutes(g.rng.random_range(1..=3));
                    if at <= now {
                        let m = g.desk_meta(at, None);
                        case.apply(g.rng, CaseCommand::Reopen, m)?;
                        let more = usize::from(g.rng.random_bool(0.7));
                        g.screen(&mut case, &mut at, more, &profile)?;
                    }
                }
            }
        }
    }
    // Follow-up contacts: the desk keeps hearing from people it follows.
    if net.follow_up_visits > 0 {
        let n = g.rng.random_range(0..=2 * net.follow_up_visits);
        for _ in 0..n {
            let days = g.rng.random_range(1..=5);
            let day = net.calendar.add_working_days(at, days).date();
            let channel = g.channel();
            let t = g.contact(channel, day).max(at + Duration::minutes(1));
            if t > now {
                break;
            }
            let m = g.desk_meta(t, None);
            case.apply(
                g.rng,
                CaseCommand::RecordVisit {
                    channel,
                    note: None,
                },
                m,
            )?;
            at = t;
        }
    }
    let mut appends = Vec::with_capacity(1 + g.referrals.len());
    appends.extend(case.finish(net.id, StreamId(person.0)));
    appends.append(&mut g.referrals);
    Ok(appends)
}

const DEMO_NOTE: &str = "Demo: nota di esempio (persona fittizia).";

/// Working hours of the providers and of the desk's back office, in
/// minutes of the Rome day: 08:30 to 17:30.
pub(crate) const WORKING_MINUTES: (u16, u16) = (510, 1050);

/// The generation of one person.
struct Gen<'a> {
    net: &'a Network,
    rng: &'a mut StdRng,
    now: OffsetDateTime,
    /// The referral streams made so far.
    referrals: Vec<HistoryAppend>,
    /// When the last referral chain settled; `None` once one is still open.
    settled: Option<OffsetDateTime>,
}

/// A referral about to be sent.
struct Sending {
    id: ReferralId,
    /// The provider (index) and service.
    to: (usize, ServiceId),
    redirected_from: Option<ReferralId>,
    /// The desk's command that sends it.
    meta: Metadata,
}

/// How one referral ended up.
enum End {
    /// Still waiting for someone (at `now`).
    Open,
    /// Nothing more will happen to it (or to its need, through it).
    Settled(OffsetDateTime),
    /// Sent on to another service: the new referral to send.
    Redirected {
        to: ReferralId,
        pick: (usize, ServiceId),
        meta: Metadata,
        cause: EventId,
    },
}

impl Gen<'_> {
    fn desk_meta(
        &mut self,
        at: OffsetDateTime,
        cause: Option<(CorrelationId, EventId)>,
    ) -> Metadata {
        metadata(self.rng, self.net.operator, self.net.desk, at, cause)
    }

    fn channel(&mut self) -> Channel {
        pick(
            self.rng,
            &[
                (Channel::Desk, 75),
                (Channel::Phone, 15),
                (Channel::Outreach, 10),
            ],
        )
    }

    /// When the person first came: a contact in the window.
    fn arrival(&mut self, channel: Channel, start: OffsetDateTime) -> OffsetDateTime {
        let days = (self.now - start).whole_days().max(1);
        for _ in 0..16 {
            let day = start.date() + Duration::days(self.rng.random_range(1..=days));
            let t = self.contact(channel, day);
            if start <= t && t <= self.now {
                return t;
            }
        }
        start + (self.now - start) / 2
    }

    /// A contact by `channel` on the first day from `day` it can happen:
    /// at the desk in its opening hours, by phone in the morning, outreach
    /// in working hours.
    fn contact(&mut self, channel: Channel, day: Date) -> OffsetDateTime {
        let net = self.net;
        let cal = &net.calendar;
        let working = |i: i64| {
            let d = day + Duration::days(i);
            cal.is_working_day(d).then_some(d)
        };
        if channel == Channel::Desk {
            let hours = &net.desk_hours;
            let open = (0..21).filter_map(working).find_map(|d| {
                let ranges = hours.on(d.weekday());
                (!ranges.is_empty()).then_some((d, ranges))
            });
            if let Some((d, ranges)) = open {
                let r = ranges[self.rng.random_range(0..ranges.len())];
                let (open, close) = (minutes(r.open), minutes(r.close));
                let m = self
                    .rng
                    .random_range(open..close.saturating_sub(10).max(open + 1));
                return local(d, m);
            }
        }
        let (lo, hi) = if channel == Channel::Phone {
            (540, 780)
        } else {
            (570, 1020)
        };
        let d = (0..14).find_map(working).unwrap_or(day);
        local(d, self.rng.random_range(lo..hi))
    }

    /// A moment in working hours `days` working days after `base` (on the
    /// same day if 0), and after `not_before`.
    fn working(
        &mut self,
        base: OffsetDateTime,
        days: u32,
        not_before: OffsetDateTime,
    ) -> OffsetDateTime {
        let day = self.net.calendar.add_working_days(base, days).date();
        let t = local(
            day,
            self.rng.random_range(WORKING_MINUTES.0..WORKING_MINUTES.1),
        );
        if t > not_before {
            t
        } else {
            not_before + Duration::minutes(self.rng.random_range(5..=90))
        }
    }

    /// Screen `n` needs at the current contact: record each, answer some
    /// at the desk, refer the others to a provider that answers them.
    fn screen(
        &mut self,
        case: &mut StreamHistory<CaseAggregate>,
        at: &mut OffsetDateTime,
        n: usize,
        profile: &Profile,
    ) -> Result<(), DomainError> {
        for _ in 0..n {
            let t = *at + Duration::minutes(self.rng.random_range(2..=10));
            if t > self.now {
                return Ok(());
            }
            let code = self.need_code(case.state.as_ref(), profile);
            let urgency = pick(
                self.rng,
                if profile.vulnerable {
                    &[
                        (Urgency::Low, 5),
                        (Urgency::Normal, 45),
                        (Urgency::High, 35),
                        (Urgency::Immediate, 15),
                    ]
                } else {
                    &[
                        (Urgency::Low, 15),
                        (Urgency::Normal, 62),
                        (Urgency::High, 20),
                        (Urgency::Immediate, 3),
                    ]
                },
            );
            let need = NeedId(v7(self.rng, t));
            let note = self.rng.random_bool(0.15).then(|| DEMO_NOTE.to_owned());
            let m = self.desk_meta(t, None);
            let correlation = m.correlation_id;
            let recorded = case.apply(
                self.rng,
                CaseCommand::RecordNeed {
                    need,
                    code: code.clone(),
                    urgency,
                    note,
                },
                m,
            )?;
            let cause = (correlation, recorded);
            *at = t;
            let own = self.net.desk_answers.contains(&code);
            if self.rng.random_bool(if own { 0.9 } else { 0.25 }) {
                let t = *at + Duration::minutes(self.rng.random_range(1..=5));
                if t <= self.now {
                    let outcome = pick(
                        self.rng,
                        &[
                            (DeskOutcome::InformationGiven, 50),
                            (DeskOutcome::Orientation, 50),
                        ],
                    );
                    let m = self.desk_meta(t, Some(cause));
                    let resolve = CaseCommand::ResolveNeed {
                        need,
                        outcome,
                        note: None,
                    };
                    case.apply(self.rng, resolve, m)?;
                    *at = t;
                }
                continue;
            }
            // A few wait for the person's documents before being referred.
            if self.rng.random_bool(0.05) {
                continue;
            }
            let sent = t + Duration::minutes(self.rng.random_range(3..=20));
            if sent > self.now {
                continue;
            }
            let Some(service) = self.net.pick_service(self.rng, &code, sent, None) else {
                continue; // nobody answers it: an unmet need
            };
            let state = case.state.as_ref().ok_or(DomainError::NotFound("case"))?;
            let meta = self.desk_meta(sent, Some(cause));
            let end = self.chain(state, need, service, meta)?;
            self.settled = match (self.settled, end) {
                (Some(a), Some(b)) => Some(a.max(b)),
                _ => None,
            };
        }
        Ok(())
    }

    /// A category for the next need: weighted, not one the case already
    /// has, and fitting the person (EU citizens need no permits).
    fn need_code(&mut self, case: Option<&Case>, profile: &Profile) -> NeedCode {
        let mut code = self.net.pick_need(self.rng).clone();
        for _ in 0..4 {
            if !case.is_some_and(|c| c.needs.values().any(|n| n.code == code)) {
                break;
            }
            code = self.net.pick_need(self.rng).clone();
        }
        let swap = |c: &str| NeedCode::parse(c).expect("in the taxonomy");
        match (profile.eu, code.as_str()) {
            (true, "health_stp_code") => swap("health_eni_code"),
            (false, "health_eni_code") => swap("health_stp_code"),
            (true, _)
                if matches!(
                    taxonomy::area_of(&code),
                    Area::ResidencePermit
                        | Area::InternationalProtection
                        | Area::FamilyReunification
                ) =>
            {
                swap("registry_residence")
            }
            _ => code,
        }
    }

    /// A need's referrals: the first, and each redirection of a declined
    /// or failed one. When the chain settled (`None`: still open).
    fn chain(
        &mut self,
        case: &Case,
        need: NeedId,
        pick: (usize, ServiceId),
        meta: Metadata,
    ) -> Result<Option<OffsetDateTime>, DomainError> {
        let mut sending = Sending {
            id: ReferralId(v7(self.rng, meta.occurred_at)),
            to: pick,
            redirected_from: None,
            meta,
        };
        for depth in 1..=MAX_CHAIN {
            let from = sending.id;
            match self.referral(case, need, sending, depth < MAX_CHAIN)? {
                End::Open => return Ok(None),
                End::Settled(t) => return Ok(Some(t)),
                End::Redirected {
                    to,
                    pick: next,
                    meta,
                    cause,
                } => {
                    sending = Sending {
                        id: to,
                        to: next,
                        redirected_from: Some(from),
                        meta: Metadata {
                            causation_id: Some(cause),
                            ..meta
                        },
                    };
                }
            }
        }
        Ok(None)
    }

    /// One referral's life, from `meta.occurred_at` (its sending) on, as
    /// far as `now`.
    fn referral(
        &mut self,
        case: &Case,
        need: NeedId,
        sending: Sending,
        may_redirect: bool,
    ) -> Result<End, DomainError> {
        let Sending {
            id,
            to: (pi, service),
            redirected_from,
            meta,
        } = sending;
        let net = self.net;
        let provider = &net.providers[pi];
        let org = &provider.organization;
        let b = behaviour(org.kind);
        let (ack_within, contact_within) = org.agreement.as_ref().map_or((3, 7), |a| {
            (
                u32::from(a.acknowledge_within),
                u32::from(a.first_contact_within),
            )
        });
        let sent = meta.occurred_at;
        let planned = referral::plan(
            id,
            case,
            need,
            org,
            service,
            redirected_from,
            &net.calendar,
            sent,
        )?;
        let mut r = StreamHistory::<ReferralAggregate>::default();
        r.apply(self.rng, ReferralCommand::Send(planned), meta)?;
        let end = self.life(&mut r, &b, sent, (ack_within, contact_within), pi)?;
        let end = match end {
            Some(t) if may_redirect && self.refused(&r) && self.rng.random_bool(REDIRECT) => {
                self.redirect(&mut r, t, (pi, service))?
            }
            Some(t) => End::Settled(t),
            None => End::Open,
        };
        self.referrals.extend(r.finish(net.id, StreamId(id.0)));
        Ok(end)
    }

    fn refused(&self, r: &StreamHistory<ReferralAggregate>) -> bool {
        r.state
            .as_ref()
            .is_some_and(|s| matches!(s.status, ReferralStatus::Declined | ReferralStatus::Failed))
    }

    /// The provider's (and maybe the desk's) actions on a sent referral;
    /// when it ended (`None`: still open at `now`).
    fn life(
        &mut self,
        r: &mut StreamHistory<ReferralAggregate>,
        b: &Behaviour,
        sent: OffsetDateTime,
        (ack_within, contact_within): (u32, u32),
        pi: usize,
    ) -> Result<Option<OffsetDateTime>, DomainError> {
        let now = self.now;
        let provider = &self.net.providers[pi];
        let (partner, org) = (provider.partner, provider.organization.id);
        if self.rng.random_bool(b.stall) {
            return Ok(None);
        }
        if let Some(end) = self.maybe_cancel(r, sent)? {
            return Ok(end);
        }
        // Seen, and answered, within the agreement's days or late.
        let answer_days = if self.rng.random_bool(b.late) {
            ack_within + self.rng.random_range(1..=6)
        } else {
            self.rng.random_range(0..=ack_within)
        };
        let decide_at = if self.rng.random_bool(b.skip_acknowledge) {
            self.working(sent, answer_days, sent)
        } else {
            let a = self.working(sent, answer_days, sent);
            if a > now {
                return Ok(None);
            }
            let m = metadata(self.rng, partner, org, a, None);
            r.apply(self.rng, ReferralCommand::Acknowledge, m)?;
            let days = self.rng.random_range(0..=2);
            self.working(a, days, a)
        };
        if decide_at > now {
            return Ok(None);
        }
        let mut t = decide_at;
        if self.rng.random_bool(b.decline) {
            let reason = pick(self.rng, b.reasons);
            let text = (reason == DeclineReason::Other)
                .then(|| "Demo: servizio sospeso per il periodo.".to_owned());
            let m = metadata(self.rng, partner, org, t, None);
            r.apply(self.rng, ReferralCommand::Decline { reason, text }, m)?;
            return Ok(Some(t));
        }
        let m = metadata(self.rng, partner, org, t, None);
        r.apply(self.rng, ReferralCommand::Accept, m)?;
        if let Some(end) = self.maybe_cancel(r, t)? {
            return Ok(end);
        }
        if self.rng.random_bool(b.start) {
            let days = if self.rng.random_bool(b.late) {
                contact_within + self.rng.random_range(1..=5)
            } else {
                self.rng.random_range(0..=contact_within)
            };
            let s = self.working(sent, days, t);
            if s > now {
                return Ok(None);
            }
            let m = metadata(self.rng, partner, org, s, None);
            r.apply(self.rng, ReferralCommand::Start, m)?;
            t = s;
        }
        let days = self.rng.random_range(b.work_days.0..=b.work_days.1);
        let end = self.working(t, days, t);
        if end > now {
            return Ok(None);
        }
        let m = metadata(self.rng, partner, org, end, None);
        if self.rng.random_bool(b.fail) {
            let reason = pick(
                self.rng,
                &[
                    (FailReason::PersonUnreachable, 40),
                    (FailReason::PersonWithdrew, 30),
                    (FailReason::ServiceUnavailable, 20),
                    (FailReason::Other, 10),
                ],
            );
            let text = (reason == FailReason::Other)
                .then(|| "Demo: la persona si è trasferita in un altro comune.".to_owned());
            r.apply(self.rng, ReferralCommand::Fail { reason, text }, m)?;
        } else {
            let outcome = pick(
                self.rng,
                &[
                    (Outcome::NeedMet, 70),
                    (Outcome::PartlyMet, 20),
                    (Outcome::NotMet, 10),
                ],
            );
            let note = self.rng.random_bool(0.2).then(|| DEMO_NOTE.to_owned());
            r.apply(self.rng, ReferralCommand::Complete { outcome, note }, m)?;
        }
        Ok(Some(end))
    }

    /// Now and then the desk withdraws a referral (the person moved, or
    /// solved it alone): `Some` with how it ended if it did.
    fn maybe_cancel(
        &mut self,
        r: &mut StreamHistory<ReferralAggregate>,
        after: OffsetDateTime,
    ) -> Result<Option<Option<OffsetDateTime>>, DomainError> {
        if !self.rng.random_bool(CANCEL) {
            return Ok(None);
        }
        let days = self.rng.random_range(1..=8);
        let c = self.working(after, days, after);
        if c > self.now {
            return Ok(Some(None));
        }
        let m = self.desk_meta(c, None);
        r.apply(self.rng, ReferralCommand::Cancel, m)?;
        Ok(Some(Some(c)))
    }

    /// Send a declined or failed referral on to another service that
    /// answers the need, if there is one.
    fn redirect(
        &mut self,
        r: &mut StreamHistory<ReferralAggregate>,
        refused: OffsetDateTime,
        current: (usize, ServiceId),
    ) -> Result<End, DomainError> {
        let days = self.rng.random_range(0..=3);
        let at = self.working(refused, days, refused);
        let code = match &r.state {
            Some(s) => s.need_code.clone(),
            None => return Ok(End::Settled(refused)),
        };
        let Some(next) = self.net.pick_service(self.rng, &code, at, Some(current)) else {
            return Ok(End::Settled(refused));
        };
        if at > self.now {
            return Ok(End::Open);
        }
        let to = ReferralId(v7(self.rng, at));
        let meta = self.desk_meta(at, None);
        let organization = self.net.providers[next.0].organization.id;
        let command = ReferralCommand::Redirect {
            to,
            organization,
            service: next.1,
        };
        let cause = r.apply(self.rng, command, meta.clone())?;
        Ok(End::Redirected {
            to,
            pick: next,
            meta,
            cause,
        })
    }
}

/// Who the person is, as far as their needs go.
struct Profile {
    eu: bool,
    vulnerable: bool,
}

/// Where people come from: country, weight, languages and name parts.
struct Origin {
    country: &'static str,
    weight: u32,
    eu: bool,
    languages: &'static [(&'static str, Proficiency)],
    male: &'static [&'static str],
    female: &'static [&'static str],
    family: &'static [&'static str],
}

use Proficiency::{Basic, Fluent, Native};

#[rustfmt::skip]
const ORIGINS: &[Origin] = &[
    Origin { country: "NG", weight: 12, eu: false, languages: &[("en", Fluent), ("yo", Native)],
        male: &["Chinedu", "Emeka", "Tunde", "Ibrahim"], female: &["Ngozi", "Blessing", "Aisha", "Funmilayo"],
        family: &["Okafor", "Adeyemi", "Eze", "Bello"] },
    Origin { country: "MA", weight: 12, eu: false, languages: &[("ar", Native), ("fr", Fluent)],
        male: &["Youssef", "Mohamed", "Hamza", "Karim"], female: &["Fatima", "Khadija", "Salma", "Imane"],
        family: &["El Amrani", "Benali", "Ouazzani", "Tahiri"] },
    Origin { country: "UA", weight: 10, eu: false, languages: &[("uk", Native), ("ru", Fluent)],
        male: &["Oleksandr", "Andrii", "Dmytro"], female: &["Olena", "Iryna", "Oksana", "Nataliia"],
        family: &["Kovalenko", "Shevchenko", "Bondarenko", "Tkachenko"] },
    Origin { country: "PK", weight: 8, eu: false, languages: &[("ur", Native), ("en", Basic)],
        male: &["Muhammad", "Ali", "Usman", "Bilal"], female: &["Ayesha", "Sana", "Hina"],
        family: &["Khan", "Ahmed", "Hussain", "Butt"] },
    Origin { country: "AL", weight: 9, eu: false, languages: &[("sq", Native), ("it", Fluent)],
        male: &["Arben", "Besnik", "Ermal"], female: &["Elira", "Ardita", "Mirela"],
        family: &["Hoxha", "Shehu", "Leka", "Gashi"] },
    Origin { country: "RO", weight: 10, eu: true, languages: &[("ro", Native), ("it", Fluent)],
        male: &["Andrei", "Ionut", "Mihai"], female: &["Elena", "Ioana", "Maria"],
        family: &["Popescu", "Ionescu", "Popa", "Stan"] },
    Origin { country: "SN", weight: 6, eu: false, languages: &[("wo", Native), ("fr", Fluent)],
        male: &["Mamadou", "Cheikh", "Abdoulaye"], female: &["Awa", "Fatou", "Mariama"],
        family: &["Diop", "Ndiaye", "Fall", "Sow"] },
    Origin { country: "BD", weight: 6, eu: false, languages: &[("bn", Native), ("en", Basic)],
        male: &["Rahim", "Hasan", "Sabbir"], female: &["Nusrat", "Taslima", "Ruma"],
        family: &["Hossain", "Rahman", "Islam", "Uddin"] },
    Origin { country: "TN", weight: 5, eu: false, languages: &[("ar", Native), ("fr", Fluent)],
        male: &["Anis", "Sami", "Walid"], female: &["Amira", "Ines", "Rania"],
        family: &["Ben Salah", "Trabelsi", "Jebali"] },
    Origin { country: "EG", weight: 4, eu: false, languages: &[("ar", Native), ("en", Basic)],
        male: &["Ahmed", "Mostafa", "Omar"], female: &["Mona", "Nour", "Heba"],
        family: &["Hassan", "Mahmoud", "Saleh"] },
    Origin { country: "CN", weight: 5, eu: false, languages: &[("zh", Native)],
        male: &["Wei", "Jun", "Hao"], female: &["Li Na", "Xiu Ying", "Mei"],
        family: &["Wang", "Zhang", "Chen", "Liu"] },
    Origin { country: "GH", weight: 5, eu: false, languages: &[("en", Fluent), ("ak", Native)],
        male: &["Kwame", "Kofi", "Yaw"], female: &["Ama", "Akosua", "Abena"],
        family: &["Mensah", "Owusu", "Boateng"] },
    Origin { country: "GM", weight: 5, eu: false, languages: &[("wo", Native), ("en", Basic)],
        male: &["Lamin", "Ebrima", "Modou"], female: &["Isatou", "Fatoumata", "Haddy"],
        family: &["Jallow", "Ceesay", "Touray", "Bah"] },
    Origin { country: "ML", weight: 5, eu: false, languages: &[("bm", Native), ("fr", Basic)],
        male: &["Moussa", "Bakary", "Seydou"], female: &["Aminata", "Kadiatou", "Oumou"],
        family: &["Traoré", "Keita", "Coulibaly", "Diarra"] },
];

/// A fictitious identity (every name starts with `Demo `).
fn identity(rng: &mut StdRng, index: u64, today: Date) -> (Profile, PersonIdentity) {
    let total: u32 = ORIGINS.iter().map(|o| o.weight).sum();
    let mut roll = rng.random_range(0..total);
    let o = ORIGINS
        .iter()
        .find(|o| {
            let hit = roll < o.weight;
            roll = roll.saturating_sub(o.weight);
            hit
        })
        .unwrap_or(&ORIGINS[0]);
    let sex = pick(
        rng,
        &[
            (Some(Sex::Female), 44),
            (Some(Sex::Male), 52),
            (Some(Sex::Other), 1),
            (None, 3),
        ],
    );
    let given_names = match sex {
        Some(Sex::Female) => o.female,
        Some(Sex::Male) => o.male,
        _ if rng.random_bool(0.5) => o.female,
        _ => o.male,
    };
    let given = one(rng, given_names);
    let family = one(rng, o.family);
    let mut names = vec![PersonName {
        kind: "as_in_document".into(),
        text: format!("Demo {given} {family}"),
    }];
    if rng.random_bool(0.12) {
        names.push(PersonName {
            kind: "as_used".into(),
            text: format!("Demo {given}"),
        });
    }
    let minor = rng.random_bool(0.05);
    let age: i32 = if minor {
        rng.random_range(15..=17)
    } else if rng.random_bool(0.04) {
        rng.random_range(65..=78)
    } else {
        rng.random_range(18..=60)
    };
    let year = today.year() - age;
    let birth_date = match rng.random_range(0..100) {
        0..12 => None,
        12..42 => Some(format!("{year}")),
        42..55 => Some(format!("{year}-{:02}", rng.random_range(1..=12))),
        _ => Some(format!(
            "{year}-{:02}-{:02}",
            rng.random_range(1..=12),
            rng.random_range(1..=28)
        )),
    };
    let mut languages: Vec<LanguageSkill> = o
        .languages
        .iter()
        .map(|&(code, proficiency)| LanguageSkill {
            code: code.into(),
            proficiency,
        })
        .collect();
    if !o.languages.iter().any(|(c, _)| *c == "it") {
        let it = pick(rng, &[(None, 30), (Some(Basic), 55), (Some(Fluent), 15)]);
        languages.extend(it.map(|proficiency| LanguageSkill {
            code: "it".into(),
            proficiency,
        }));
    }
    let contacts = PersonContacts {
        phone: rng
            .random_bool(0.7)
            .then(|| format!("+39 300 000 {:04}", index % 10_000)),
        email: rng
            .random_bool(0.15)
            .then(|| format!("demo.person.{index}@example.org")),
        address: rng
            .random_bool(0.2)
            .then(|| "Demo, 85100 Potenza".to_owned()),
    };
    let number = |rng: &mut StdRng| format!("DEMO{:07}", rng.random_range(0..10_000_000));
    let expires = |rng: &mut StdRng, from: i64, to: i64| {
        Some((today + Duration::days(rng.random_range(from..=to))).to_string())
    };
    let document = if o.eu {
        rng.random_bool(0.8).then(|| IdentityDocument {
            kind: "identity_card".into(),
            number: number(rng),
            issuing_country: Some(o.country.into()),
            expires_on: expires(rng, 60, 3000),
        })
    } else {
        match rng.random_range(0..100) {
            0..45 => Some(IdentityDocument {
                kind: "residence_permit".into(),
                number: number(rng),
                issuing_country: Some("IT".into()),
                expires_on: expires(rng, -120, 700),
            }),
            45..80 => Some(IdentityDocument {
                kind: "passport".into(),
                number: number(rng),
                issuing_country: Some(o.country.into()),
                expires_on: expires(rng, 30, 3000),
            }),
            80..88 => Some(IdentityDocument {
                kind: "asylum_application_receipt".into(),
                number: number(rng),
                issuing_country: Some("IT".into()),
                expires_on: None,
            }),
            _ => None,
        }
    };
    let mut vulnerabilities = Vec::new();
    if minor && rng.random_bool(0.6) {
        vulnerabilities.push(Vulnerability::UnaccompaniedMinor);
    }
    if age >= 65 {
        vulnerabilities.push(Vulnerability::Elderly);
    }
    if rng.random_bool(0.12) {
        let v = pick(
            rng,
            &[
                (Vulnerability::Disability, 15),
                (Vulnerability::SeriousIllness, 15),
                (Vulnerability::ViolenceSurvivor, 15),
                (Vulnerability::TraffickingVictim, 5),
                (Vulnerability::SingleParent, 25),
                (Vulnerability::Homeless, 15),
                (Vulnerability::Pregnancy, 10),
            ],
        );
        let fits =
            v != Vulnerability::Pregnancy || (sex == Some(Sex::Female) && (18..=45).contains(&age));
        if fits {
            vulnerabilities.push(v);
        }
    }
    let profile = Profile {
        eu: o.eu,
        vulnerable: !vulnerabilities.is_empty(),
    };
    let identity = PersonIdentity {
        names,
        birth_date,
        sex,
        country_of_birth: rng.random_bool(0.92).then(|| o.country.into()),
        citizenships: if rng.random_bool(0.97) {
            vec![o.country.into()]
        } else {
            Vec::new()
        },
        languages,
        contacts,
        documents: document.into_iter().collect(),
        vulnerabilities,
    };
    (profile, identity)
}

/// One of `items`, by weight.
pub(crate) fn pick<T: Copy>(rng: &mut StdRng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|(_, w)| w).sum();
    let mut roll = rng.random_range(0..total.max(1));
    for &(item, w) in items {
        if roll < w {
            return item;
        }
        roll -= w;
    }
    items[items.len() - 1].0
}

/// One of `items`, uniformly.
fn one<'a>(rng: &mut StdRng, items: &[&'a str]) -> &'a str {
    items[rng.random_range(0..items.len())]
}

fn minutes(t: Time) -> u16 {
    u16::from(t.hour()) * 60 + u16::from(t.minute())
}

/// `minute` of the Rome day `day`, in UTC.
pub(crate) fn local(day: Date, minute: u16) -> OffsetDateTime {
    let time = Time::from_hms((minute / 60).min(23) as u8, (minute % 60) as u8, 0)
        .expect("a minute of the day");
    let naive = PrimitiveDateTime::new(day, time);
    naive
        .assume_offset(rome_offset(naive.assume_utc()))
        .to_offset(UtcOffset::UTC)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sportello_domain::case::lifecycle::{self as case, CaseEvent};
    use sportello_domain::referral::ReferralEvent;
    use std::collections::HashSet;
    use time::macros::datetime;

    const NOW: OffsetDateTime = datetime!(2026-11-27 15:20 UTC);
    const WINDOW: Duration = Duration::days(183);

    fn net() -> Network {
        crate::demo::network(NOW).expect("the demo network builds")
    }

    fn people(net: &Network, seed: u64, n: u64) -> Vec<HistoryAppend> {
        (0..n)
            .flat_map(|i| {
                let mut rng = person_rng(net.id, seed, i);
                person(net, &mut rng, i, NOW, WINDOW).expect("a valid history")
            })
            .collect()
    }

    #[test]
    fn a_seed_gives_the_same_histories() {
        let net = net();
        let key = |h: &HistoryAppend| (h.0.stream_id, h.0.events.clone(), h.1.clone());
        let a: Vec<_> = people(&net, 7, 30).iter().map(key).collect();
        let b: Vec<_> = people(&net, 7, 30).iter().map(key).collect();
        assert_eq!(a, b);
        let c: Vec<_> = people(&net, 8, 30).iter().map(key).collect();
        assert_ne!(a, c, "another seed, other people");
    }

    /// Each stored event read back and decided again from its command:
    /// the history is one the rules allow; and its times are in the
    /// window, in order, and a referral comes after its need.
    #[test]
    fn histories_replay_through_decide_and_are_dated_in_the_window() {
        let net = net();
        let start = NOW - WINDOW;
        let all = people(&net, 1, 200);
        let mut need_at = HashMap::new();
        for (req, meta) in &all {
            assert_eq!(req.expected, ExpectedVersion::NoStream);
            assert_eq!(req.events.len(), meta.len());
            assert_eq!(req.network, net.id);
            for w in meta.windows(2) {
                assert!(w[0].occurred_at <= w[1].occurred_at, "in order");
            }
            for m in meta {
                assert!(start <= m.occurred_at && m.occurred_at <= NOW, "{m:?}");
            }
            match req.stream_kind {
                "case" => {
                    let mut state = None;
                    for (e, m) in req.events.iter().zip(meta) {
                        let event = CaseAggregate::decode(&e.event_type, &e.payload).unwrap();
                        let again = match event.clone() {
                            CaseEvent::TakenInCharge(_) => {
                                let (_, identity) = e.personal.clone().unwrap();
                                let identity: PersonIdentity =
                                    serde_json::from_value(identity).unwrap();
                                assert!(identity.names.iter().all(|n| n.text.starts_with("Demo ")));
                                assert!(state.is_none());
                                vec![event.clone()]
                            }
                            CaseEvent::VisitRecorded { channel, note } => case::decide(
                                state.as_ref(),
                                CaseCommand::RecordVisit { channel, note },
                            )
                            .unwrap(),
                            CaseEvent::NeedRecorded {
                                need,
                                code,
                                urgency,
                                note,
                            } => {
                                need_at.insert(need, m.occurred_at);
                                case::decide(
                                    state.as_ref(),
                                    CaseCommand::RecordNeed {
                                        need,
                                        code,
                                        urgency,
                                        note,
                                    },
                                )
                                .unwrap()
                            }
                            CaseEvent::NeedResolved {
                                need,
                                outcome,
                                note,
                            } => case::decide(
                                state.as_ref(),
                                CaseCommand::ResolveNeed {
                                    need,
                                    outcome,
                                    note,
                                },
                            )
                            .unwrap(),
                            CaseEvent::Closed => {
                                case::decide(state.as_ref(), CaseCommand::Close).unwrap()
                            }
                            CaseEvent::Reopened => {
                                case::decide(state.as_ref(), CaseCommand::Reopen).unwrap()
                            }
                            CaseEvent::ConsentRecorded(terms) => {
                                case::decide(state.as_ref(), CaseCommand::RecordConsent(terms))
                                    .unwrap()
                            }
                            CaseEvent::ConsentWithdrawn(w) => {
                                case::decide(state.as_ref(), CaseCommand::WithdrawConsent(w))
                                    .unwrap()
                            }
                            CaseEvent::LegalBasisRecorded { .. } | CaseEvent::Erased(_) => {
                                panic!("the simulation records no legal basis and erases no one")
                            }
                        };
                        assert_eq!(again, vec![event.clone()]);
                        assert_eq!(m.account_id, net.operator);
                        state = case::evolve(state, &event);
                    }
                }
                "referral" => {
                    let mut state = None;
                    for (e, m) in req.events.iter().zip(meta) {
                        let event = ReferralAggregate::decode(&e.event_type, &e.payload).unwrap();
                        let command = match event.clone() {
                            ReferralEvent::Sent(n) => {
                                let recorded = need_at[&n.need];
                                assert!(recorded < m.occurred_at, "referred after the need");
                                ReferralCommand::Send(n)
                            }
                            ReferralEvent::Acknowledged => ReferralCommand::Acknowledge,
                            ReferralEvent::Accepted => ReferralCommand::Accept,
                            ReferralEvent::Declined { reason, .. } => ReferralCommand::Decline {
                                reason,
                                text: (reason == DeclineReason::Other).then(|| "x".into()),
                            },
                            ReferralEvent::Started => ReferralCommand::Start,
                            ReferralEvent::Completed { outcome, note } => {
                                ReferralCommand::Complete { outcome, note }
                            }
                            ReferralEvent::Failed { reason, .. } => ReferralCommand::Fail {
                                reason,
                                text: (reason == FailReason::Other).then(|| "x".into()),
                            },
                            ReferralEvent::Cancelled => ReferralCommand::Cancel,
                            ReferralEvent::Redirected {
                                to,
                                organization,
                                service,
                            } => ReferralCommand::Redirect {
                                to,
                                organization,
                                service,
                            },
                        };
                        let desk_act = matches!(
                            event,
                            ReferralEvent::Sent(_)
                                | ReferralEvent::Cancelled
                                | ReferralEvent::Redirected { .. }
                        );
                        let r: Option<&referral::Referral> = state.as_ref();
                        if desk_act {
                            assert_eq!((m.account_id, m.organization_id), (net.operator, net.desk));
                        } else {
                            let org = r.unwrap().organization;
                            assert_eq!(m.organization_id, org, "the provider acts on its own");
                            let p = net
                                .providers
                                .iter()
                                .find(|p| p.organization.id == org)
                                .unwrap();
                            assert_eq!(m.account_id, p.partner);
                        }
                        assert_eq!(referral::decide(r, command).unwrap().len(), 1);
                        state = referral::evolve(state, &event);
                    }
                }
                other => panic!("unexpected stream kind {other}"),
            }
        }
    }

    #[test]
    fn every_referral_status_shows_across_200_people() {
        let net = net();
        let mut seen = HashSet::new();
        for (req, _) in people(&net, 1, 200) {
            if req.stream_kind != referral::STREAM_KIND {
                continue;
            }
            let state = req.events.iter().fold(None, |s, e| {
                let event = ReferralAggregate::decode(&e.event_type, &e.payload).unwrap();
                referral::evolve(s, &event)
            });
            seen.insert(state.unwrap().status);
        }
        use ReferralStatus as S;
        for s in [
            S::Sent,
            S::Acknowledged,
            S::Accepted,
            S::Declined,
            S::InProgress,
            S::Completed,
            S::Failed,
            S::Cancelled,
            S::Redirected,
        ] {
            assert!(seen.contains(&s), "{s:?} never appears in {seen:?}");
        }
    }
}
