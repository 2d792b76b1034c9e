//! The life of the demo's activations, all simulated together one step
//! at a time in time order, as the scheduler and the desk would live them:
//! each offered to the first of the ranking at that moment, answered or
//! left to expire, the deadline recorded when it passes unconfirmed,
//! scheduled, delivered or called off. Nothing is queued after `now`.

use super::{Actor, OFFER_FOR, RECENT, desk, professional, scheduler};
use crate::demo::registry::Registry;
use crate::demo::{DEMO_DESK, DEMO_NETWORK};
use crate::simulate::{self, HistoryAppend, StreamHistory, WORKING_MINUTES};
use rand::Rng;
use rand::rngs::StdRng;
use sportello_domain::activation::ranking::rank;
use sportello_domain::activation::{ActivationCommand, Mode, Request, Status};
use sportello_domain::aggregate::ActivationAggregate;
use sportello_domain::calendar::WorkingCalendar;
use sportello_domain::ids::ProfessionalId;
use sportello_domain::matching::{rome_date, rome_offset};
use sportello_domain::{CorrelationId, DomainError, EventId, NetworkId, StreamId};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use time::{Duration, OffsetDateTime};

/// What is written when a confirmed activation took place (no personal
/// data: the text is sealed when a person is named, in clear otherwise).
const OUTCOMES: &[&str] = &[
    "Demo: colloquio svolto, informazioni comprese.",
    "Demo: visita accompagnata, nessuna criticità.",
    "Demo: consulenza svolta, documenti da integrare.",
    "Demo: interpretariato svolto, seguito fissato dall'ente.",
];
const NOBODY: &str = "Demo: nessun professionista disponibile entro la scadenza.";
const POSTPONED: &str = "Demo: appuntamento rinviato dall'ente richiedente.";
const NO_SHOW: &str = "Demo: la persona non si è presentata.";
const DESK_PLACE: &str = "Sportello, via Lacava 2";

/// Live every request of `asked` (in the order requested) up to `now`;
/// each activation's stream, in the same order.
pub(super) fn run(
    registry: &Registry,
    calendar: &WorkingCalendar,
    now: OffsetDateTime,
    rng: StdRng,
    asked: Vec<(Request, Actor)>,
) -> Result<Vec<HistoryAppend>, DomainError> {
    let mut sim = Sim {
        registry,
        calendar,
        now,
        rng,
        live: Vec::with_capacity(asked.len()),
        queue: BinaryHeap::new(),
        seq: 0,
        accepted: Vec::new(),
    };
    for (i, (request, by)) in asked.into_iter().enumerate() {
        let at = request.requested_at;
        sim.live.push(Live {
            request,
            by,
            history: StreamHistory::default(),
            cause: None,
            pending: None,
        });
        sim.schedule(i, at, Step::Request);
    }
    while let Some(Reverse((at, _, i))) = sim.queue.pop() {
        let (_, step) = sim.live[i].pending.take().expect("one pending step each");
        if let Some((next, step)) = sim.step(i, at, step)? {
            sim.push(i, next, step);
        }
    }
    Ok(sim
        .live
        .into_iter()
        .filter_map(|l| {
            l.history
                .finish(NetworkId(DEMO_NETWORK), StreamId(l.request.id.0))
        })
        .collect())
}

/// What happens next to an activation.
enum Step {
    Request,
    /// Offered to the best of the ranking (the first by the desk, the
    /// next ones by the scheduler).
    Offer {
        first: bool,
    },
    Answer {
        by: ProfessionalId,
        accept: bool,
    },
    Expire,
    /// The deadline, before what was to happen then.
    MissDeadline {
        then: Option<Box<(OffsetDateTime, Step)>>,
    },
    Schedule,
    Deliver {
        quarter_hours: u16,
    },
    Cancel {
        reason: &'static str,
    },
}

/// One activation being simulated.
struct Live {
    request: Request,
    /// Who asked.
    by: Actor,
    history: StreamHistory<ActivationAggregate>,
    /// The request's correlation and the last event: what the next
    /// command follows from.
    cause: Option<(CorrelationId, EventId)>,
    pending: Option<(OffsetDateTime, Step)>,
}

/// All activations at once, one step at a time in time order.
struct Sim<'a> {
    registry: &'a Registry,
    calendar: &'a WorkingCalendar,
    now: OffsetDateTime,
    rng: StdRng,
    live: Vec<Live>,
    /// (when, order of scheduling, activation): the next steps.
    queue: BinaryHeap<Reverse<(OffsetDateTime, u64, usize)>>,
    seq: u64,
    /// Who accepted what when, in time order (the fair rotation's counts).
    accepted: Vec<(OffsetDateTime, ProfessionalId)>,
}

impl Sim<'_> {
    /// Queue `step` of activation `i` at `at`, unless it is after `now`.
    fn schedule(&mut self, i: usize, at: OffsetDateTime, step: Step) {
        if at > self.now {
            return;
        }
        self.live[i].pending = Some((at, step));
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq, i)));
    }

    /// Queue the next step, the missed deadline first if it comes before.
    fn push(&mut self, i: usize, at: OffsetDateTime, step: Step) {
        if let Some(a) = &self.live[i].history.state {
            let unconfirmed =
                matches!(a.status, Status::Waiting | Status::Offered) && !a.deadline_missed;
            let deadline = a.request.deadline();
            if unconfirmed && deadline <= at && !matches!(step, Step::MissDeadline { .. }) {
                let then = Some(Box::new((at, step)));
                return self.schedule(i, deadline, Step::MissDeadline { then });
            }
        }
        self.schedule(i, at, step);
    }

    fn apply(
        &mut self,
        i: usize,
        at: OffsetDateTime,
        (account, organization): Actor,
        command: ActivationCommand,
    ) -> Result<(), DomainError> {
        let live = &mut self.live[i];
        let meta = simulate::metadata(&mut self.rng, account, organization, at, live.cause);
        let correlation = meta.correlation_id;
        let last = live.history.apply(&mut self.rng, command, meta)?;
        live.cause = Some((correlation, last));
        Ok(())
    }

    fn minutes(&mut self, lo: i64, hi: i64) -> Duration {
        Duration::minutes(self.rng.random_range(lo..=hi))
    }

    /// The activations each professional accepted in the period before `at`.
    fn recent(&self, at: OffsetDateTime) -> HashMap<ProfessionalId, u32> {
        let mut counts = HashMap::new();
        for (_, p) in self
            .accepted
            .iter()
            .rev()
            .take_while(|(t, _)| *t > at - RECENT)
        {
            *counts.entry(*p).or_default() += 1;
        }
        counts
    }

    /// A moment the desk works, a little after `after`.
    fn desk_moment(&mut self, after: OffsetDateTime) -> OffsetDateTime {
        let t = after + self.minutes(5, 45);
        let local = t.to_offset(rome_offset(t));
        let minute = u16::from(local.hour()) * 60 + u16::from(local.minute());
        let mut day = local.date();
        if self.calendar.is_working_day(day)
            && (WORKING_MINUTES.0..WORKING_MINUTES.1).contains(&minute)
        {
            return t;
        }
        if minute >= WORKING_MINUTES.1 || !self.calendar.is_working_day(day) {
            day += Duration::days(1);
            while !self.calendar.is_working_day(day) {
                day += Duration::days(1);
            }
        }
        let m = self
            .rng
            .random_range(WORKING_MINUTES.0..WORKING_MINUTES.0 + 90);
        simulate::local(day, m).max(t)
    }

    /// After the deadline was missed with nobody left to ask: most are
    /// called off by the desk, the others wait.
    fn after_missed(&mut self, at: OffsetDateTime) -> Option<(OffsetDateTime, Step)> {
        self.rng
            .random_bool(0.7)
            .then(|| (self.desk_moment(at), Step::Cancel { reason: NOBODY }))
    }

    /// After a decline or an expiry: the next is offered at once, unless
    /// the deadline has already passed.
    fn after_pass(&mut self, i: usize, at: OffsetDateTime) -> Option<(OffsetDateTime, Step)> {
        let missed = self.live[i]
            .history
            .state
            .as_ref()
            .is_some_and(|a| a.deadline_missed);
        if missed {
            self.after_missed(at)
        } else {
            Some((at, Step::Offer { first: false }))
        }
    }

    /// Take `step` at `at`; what comes next.
    fn step(
        &mut self,
        i: usize,
        at: OffsetDateTime,
        step: Step,
    ) -> Result<Option<(OffsetDateTime, Step)>, DomainError> {
        Ok(match step {
            Step::Request => {
                let (request, by) = (self.live[i].request.clone(), self.live[i].by);
                self.apply(i, at, by, ActivationCommand::Request(request))?;
                Some((at + self.minutes(3, 20), Step::Offer { first: true }))
            }
            Step::Offer { first } => self.offer(i, at, first)?,
            Step::Answer { by, accept: true } => {
                let command = ActivationCommand::Accept { by, now: at };
                self.apply(i, at, professional(by), command)?;
                self.accepted.push((at, by));
                Some((self.desk_moment(at), Step::Schedule))
            }
            Step::Answer { by, accept: false } => {
                let command = ActivationCommand::Decline { by, now: at };
                self.apply(i, at, professional(by), command)?;
                self.after_pass(i, at)
            }
            Step::Expire => {
                let command = ActivationCommand::ExpireOffer { now: at };
                self.apply(i, at, scheduler(), command)?;
                self.after_pass(i, at)
            }
            Step::MissDeadline { then } => {
                let command = ActivationCommand::MissDeadline { now: at };
                self.apply(i, at, scheduler(), command)?;
                match then {
                    // A live offer still runs its course.
                    Some(next) if matches!(next.1, Step::Answer { .. } | Step::Expire) => {
                        Some(*next)
                    }
                    _ => self.after_missed(at),
                }
            }
            Step::Schedule => self.schedule_it(i, at)?,
            Step::Deliver { quarter_hours } => {
                let outcome = OUTCOMES[self.rng.random_range(0..OUTCOMES.len())].to_owned();
                let by = self.live[i]
                    .history
                    .state
                    .as_ref()
                    .and_then(|a| a.confirmed)
                    .map_or_else(desk, professional);
                let command = ActivationCommand::Deliver {
                    quarter_hours,
                    outcome,
                };
                self.apply(i, at, by, command)?;
                None
            }
            Step::Cancel { reason } => {
                let command = ActivationCommand::Cancel {
                    reason: reason.to_owned(),
                };
                self.apply(i, at, desk(), command)?;
                None
            }
        })
    }

    /// Offer it to the best of the ranking; then their answer, or silence.
    fn offer(
        &mut self,
        i: usize,
        at: OffsetDateTime,
        first: bool,
    ) -> Result<Option<(OffsetDateTime, Step)>, DomainError> {
        let state = self.live[i]
            .history
            .state
            .as_ref()
            .ok_or(DomainError::NotFound("activation"))?;
        let registry = self.registry.at(at);
        let ranked = rank(&registry, &state.request, &self.recent(at), &state.passed);
        let Some(best) = ranked.first() else {
            // Nobody left: the deadline will pass.
            let deadline = state.request.deadline();
            return Ok(Some((deadline, Step::MissDeadline { then: None })));
        };
        let (to, available, mode) = (best.professional, best.available, best.mode);
        let by = if first { desk() } else { scheduler() };
        let expires_at = at + OFFER_FOR;
        let command = ActivationCommand::Offer {
            to,
            expires_at,
            now: at,
        };
        self.apply(i, at, by, command)?;
        let p_accept = match (available, mode) {
            (true, true) => 0.8,
            (true, false) | (false, true) => 0.5,
            (false, false) => 0.25,
        };
        Ok(Some(if self.rng.random_bool(p_accept) {
            (
                at + self.minutes(5, 110),
                Step::Answer {
                    by: to,
                    accept: true,
                },
            )
        } else if self.rng.random_bool(0.55) {
            (
                at + self.minutes(5, 110),
                Step::Answer {
                    by: to,
                    accept: false,
                },
            )
        } else {
            (expires_at, Step::Expire)
        }))
    }

    /// Set the time and place (the professional's own mode where they do
    /// not work in the one asked); then it takes place, or is called off.
    fn schedule_it(
        &mut self,
        i: usize,
        at: OffsetDateTime,
    ) -> Result<Option<(OffsetDateTime, Step)>, DomainError> {
        let state = self.live[i]
            .history
            .state
            .as_ref()
            .ok_or(DomainError::NotFound("activation"))?;
        let request = &state.request;
        let confirmed = state
            .confirmed
            .ok_or(DomainError::NotFound("professional"))?;
        let modes = self
            .registry
            .professionals_at(at)
            .find(|p| p.id == confirmed)
            .map(|p| p.profile.modes.clone())
            .unwrap_or_default();
        let mode = if modes.contains(&request.mode) {
            request.mode
        } else {
            modes.first().copied().unwrap_or(request.mode)
        };
        let place = match mode {
            Mode::InPerson if request.requested_by.0 == DEMO_DESK => DESK_PLACE.to_owned(),
            Mode::InPerson => "Sede dell'ente richiedente, Potenza".to_owned(),
            Mode::Phone => "phone".to_owned(),
            Mode::Video => "video".to_owned(),
        };
        // Confirmed too late for the moment asked: the next working morning.
        let when = if request.needed_at >= at + Duration::hours(1) {
            request.needed_at
        } else {
            let day = rome_date(self.calendar.add_working_days(at, 1));
            simulate::local(day, 600)
        };
        self.apply(
            i,
            at,
            desk(),
            ActivationCommand::Schedule { at: when, place },
        )?;
        let roll = self.rng.random_range(0..100);
        Ok(Some(if roll < 7 {
            let before = at + (when - at) / 2;
            (before, Step::Cancel { reason: POSTPONED })
        } else if roll < 12 {
            (
                when + Duration::minutes(45),
                Step::Cancel { reason: NO_SHOW },
            )
        } else {
            let quarter_hours = self.rng.random_range(2..=8);
            let done = when + Duration::minutes(15 * i64::from(quarter_hours));
            (
                done + self.minutes(10, 120),
                Step::Deliver { quarter_hours },
            )
        }))
    }
}
