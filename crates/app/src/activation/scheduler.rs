//! The scheduler: turns the moments activations wait for into events —
//! an offer unanswered past its timeout expires (and the next professional
//! is offered), a 24/48 h deadline passed with nobody confirmed is recorded
//! as missed (the desk's alert), and an activation left waiting is offered
//! as soon as someone in the registry can take it.
//!
//! One instance is active among all the server processes of a database:
//! the one holding a PostgreSQL advisory lock on a dedicated connection
//! (the lock goes with the connection if the process dies). What fell due
//! while no scheduler ran is found on the next [`tick`] — due moments are
//! read from the `activations` read model, not remembered in memory — and
//! each is carried out as a command decided on the activation's own
//! events, so a moment is turned into an event once: a second attempt (by
//! another process, or after a read model that lagged) is refused by the
//! lifecycle (the deadline was already missed, the offer already answered)
//! or by the version check of the append.

use super::{Offering, SCHEDULER_ACCOUNT, carry_out};
use crate::AppError;
use crate::clock::Clock;
use crate::command::{Expect, WriteRequest};
use sportello_domain::activation::{ActivationCommand, Request};
use sportello_domain::ids::{ActivationId, OrganizationId, PersonId, ProfessionalId, ReferralId};
use sportello_domain::{Metadata, NetworkId, StreamId};
use sportello_projections::ActivationRow;
use sportello_projections::activations::Due as Moment;
use sportello_store::EventStore;
use std::collections::HashMap;
use std::time::Duration as StdDuration;
use time::{Duration, OffsetDateTime};
use tokio_util::sync::CancellationToken;

/// How many due moments of each kind one tick takes on.
const BATCH: i64 = 500;

/// How many waiting activations one tick ranks.
const WAITING: i64 = 20_000;

/// What one tick did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tick {
    /// Deadlines recorded as missed.
    pub deadlines_missed: usize,
    /// Offers expired.
    pub offers_expired: usize,
    /// Offers made (after an expiry, or to an activation left waiting).
    pub offers_made: usize,
    /// Moments another writer had already dealt with.
    pub already_done: usize,
    /// Moments that failed (retried on the next tick).
    pub failed: usize,
}

/// A moment an activation waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Due {
    /// Its 24/48 h deadline, nobody confirmed.
    Deadline,
    /// Its offer's timeout.
    OfferTimeout,
    /// Someone to offer it to, as it waits.
    Offer,
}

/// The request an activation row records (for ranking without loading
/// its stream).
fn request_of(row: &ActivationRow) -> Request {
    Request {
        id: ActivationId(row.activation_id),
        role: row.role,
        sector: row.sector,
        language: row.language.clone(),
        mode: row.mode,
        needed_at: row.needed_at,
        place: String::new(),
        urgency: row.urgency,
        person: row.person_id.map(PersonId),
        referral: row.referral_id.map(ReferralId),
        requested_by: OrganizationId(row.requested_by),
        requested_at: row.requested_at,
    }
}

/// Turn every moment due at `now` into its event (see the module
/// documentation). Safe to run anywhere at any time: what is not due, or
/// already done, is left alone.
pub async fn tick(
    store: &EventStore,
    now: OffsetDateTime,
    offer_timeout: Duration,
) -> Result<Tick, AppError> {
    let mut done = Tick::default();
    let mut offerings: HashMap<NetworkId, Offering> = HashMap::new();
    let pool = store.pool();
    let missed =
        sportello_projections::activations::due(pool, Moment::MissedDeadline, now, BATCH).await?;
    let expired =
        sportello_projections::activations::due(pool, Moment::ExpiredOffer, now, BATCH).await?;
    // Ranked in memory, most skipped (nobody can take them yet): all of
    // them, so those nobody covers never hide the others.
    let waiting =
        sportello_projections::activations::due(pool, Moment::Waiting, now, WAITING).await?;
    let work = missed
        .into_iter()
        .map(|r| (r, Due::Deadline))
        .chain(expired.into_iter().map(|r| (r, Due::OfferTimeout)))
        .chain(waiting.into_iter().map(|r| (r, Due::Offer)));
    for (row, due) in work {
        let network = NetworkId(row.network_id);
        let offering = match offerings.entry(network) {
            std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(Offering::load(store.pool(), network, now, offer_timeout).await?)
            }
        };
        let command = match due {
            Due::Deadline => Some(ActivationCommand::MissDeadline { now }),
            Due::OfferTimeout => Some(ActivationCommand::ExpireOffer { now }),
            Due::Offer => None,
        };
        if command.is_none() {
            let passed: Vec<ProfessionalId> =
                row.passed.iter().copied().map(ProfessionalId).collect();
            if offering.next(&request_of(&row), &passed, now).is_none() {
                continue; // nobody to offer it to yet: not worth a load
            }
        }
        let metadata =
            Metadata::for_command(SCHEDULER_ACCOUNT, OrganizationId(row.requested_by), now);
        match carry_out(
            store,
            offering,
            WriteRequest::new(
                network,
                StreamId(row.activation_id),
                Expect::Latest,
                command.into_iter().collect(),
                metadata,
                &|_, _| (),
            ),
        )
        .await
        {
            Ok(d) => {
                let offered = d
                    .state
                    .and_then(|a| a.offer)
                    .is_some_and(|(_, until)| until > now);
                match due {
                    Due::Deadline => {
                        done.deadlines_missed += 1;
                        metrics::counter!("sportello_activation_deadlines_missed_total")
                            .increment(1);
                        // The desk's alert: on the board, on the bus, and here.
                        tracing::warn!(
                            network = %network,
                            activation = %row.activation_id,
                            "activation deadline missed: nobody confirmed in time"
                        );
                    }
                    Due::OfferTimeout => {
                        done.offers_expired += 1;
                        metrics::counter!("sportello_activation_offers_expired_total").increment(1);
                    }
                    Due::Offer => {}
                }
                if offered && due != Due::Deadline {
                    done.offers_made += 1;
                }
            }
            // Dealt with meanwhile (another process, a professional's
            // answer, a read model that lagged): the lifecycle refuses the
            // repeat.
            Err(AppError::Conflict(_) | AppError::NotFound) => {
                done.already_done += 1;
            }
            // One activation that fails does not hold up the others.
            Err(e) => {
                done.failed += 1;
                metrics::counter!("sportello_scheduler_errors_total").increment(1);
                tracing::warn!(
                    network = %network,
                    activation = %row.activation_id,
                    error = %e,
                    "scheduler could not carry out a due moment; will retry"
                );
            }
        }
    }
    Ok(done)
}

/// Run the scheduler until `cancel`: try to become the active instance
/// (an advisory lock), and while active tick every `period` or whenever a
/// manual clock moves.
pub async fn run(
    store: EventStore,
    clock: Clock,
    period: StdDuration,
    offer_timeout: Duration,
    cancel: CancellationToken,
) {
    while !cancel.is_cancelled() {
        if let Err(e) = lead(&store, &clock, period, offer_timeout, &cancel).await {
            metrics::counter!("sportello_scheduler_errors_total").increment(1);
            tracing::warn!(error = %e, "scheduler round failed; will retry");
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = clock.tick(period) => {}
        }
    }
}

/// One term as the active scheduler: returns when the lock is held
/// elsewhere or on `cancel`, with an error on any failure.
async fn lead(
    store: &EventStore,
    clock: &Clock,
    period: StdDuration,
    offer_timeout: Duration,
    cancel: &CancellationToken,
) -> Result<(), AppError> {
    let mut conn = store.pool().acquire().await?;
    let (got,): (bool,) =
        sqlx::query_as("SELECT pg_try_advisory_lock(hashtextextended('sportello-scheduler', 0))")
            .fetch_one(&mut *conn)
            .await?;
    if !got {
        return Ok(());
    }
    // As the relay: never back to the pool, so the lock dies with the task.
    conn.close_on_drop();
    tracing::info!("scheduler active");
    let result = async {
        loop {
            // Still holding the lock: the connection is alive.
            sqlx::query("SELECT 1").execute(&mut *conn).await?;
            let done = tick(store, clock.now(), offer_timeout).await?;
            if done != Tick::default() {
                tracing::debug!(?done, "scheduler tick");
            }
            tokio::select! {
                _ = cancel.cancelled() => return Ok::<(), AppError>(()),
                _ = clock.tick(period) => {}
            }
        }
    }
    .await;
    let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *conn)
        .await;
    result
}
