//! Running activations: carrying out a command on an activation and, when
//! it leaves nobody offered (a request, a decline, an expired offer), offering
//! it to the best-ranked professional in the same write; and the
//! [`scheduler`], which turns due moments into events.
//!
//! The ranking reads the registry and the recent activations from their read
//! models (`professionals`, `activations`); the activation itself is always
//! decided on its own events, so a stale read model can only make an offer
//! less apt, never make two professionals confirmed or a step the lifecycle
//! forbids.

pub mod scheduler;

use crate::AppError;
use crate::command::{Done, Keep, WriteRequest, execute};
use sportello_domain::activation::ranking::{Registered, rank};
use sportello_domain::activation::{Activation, ActivationCommand, Request, Status};
use sportello_domain::aggregate::ActivationAggregate;
use sportello_domain::ids::ProfessionalId;
use sportello_domain::{AccountId, NetworkId};
use sportello_store::EventStore;
use sqlx::PgPool;
use std::collections::HashMap;
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// The account the scheduler acts as (no person signs an expiry or a
/// missed deadline).
pub const SCHEDULER_ACCOUNT: AccountId = AccountId(Uuid::from_u128(1));

/// How far back activations count for fair rotation.
pub const ROTATION_WINDOW: Duration = Duration::days(30);

/// Who can be offered activations, and how busy they have been lately.
pub struct Offering {
    /// The network's registry.
    pub registry: Vec<Registered>,
    /// Activations each professional confirmed in the [`ROTATION_WINDOW`].
    pub recent: HashMap<ProfessionalId, u32>,
    /// How long an offer stands.
    pub timeout: Duration,
}

impl Offering {
    /// The registry and rotation of `network` as the read models have them
    /// at `now`.
    pub async fn load(
        pool: &PgPool,
        network: NetworkId,
        now: OffsetDateTime,
        timeout: Duration,
    ) -> Result<Self, AppError> {
        let registry = registry(pool, network).await?;
        let counts = sportello_projections::activations::confirmed_counts(
            pool,
            network.0,
            now - ROTATION_WINDOW,
            now,
        )
        .await?;
        let recent = counts
            .into_iter()
            .map(|(p, n)| (ProfessionalId(p), u32::try_from(n).unwrap_or(u32::MAX)))
            .collect();
        Ok(Offering {
            registry,
            recent,
            timeout,
        })
    }

    /// The offer to make for `request` when nobody is offered it now and
    /// `passed` have passed: to the first of the ranking, if anyone.
    pub fn next(
        &self,
        request: &Request,
        passed: &[ProfessionalId],
        now: OffsetDateTime,
    ) -> Option<ActivationCommand> {
        let first = rank(&self.registry, request, &self.recent, passed)
            .into_iter()
            .next()?;
        Some(ActivationCommand::Offer {
            to: first.professional,
            expires_at: now + self.timeout,
            now,
        })
    }

    /// The offer to make after `state`, if it is left waiting for a
    /// moment still ahead.
    fn after(&self, state: &Activation, now: OffsetDateTime) -> Option<ActivationCommand> {
        (state.status == Status::Waiting && state.request.needed_at > now)
            .then(|| self.next(&state.request, &state.passed, now))
            .flatten()
    }
}

/// The active professionals of `network`'s registry, as the ranking and
/// the coverage of the registry's gaps read them.
pub async fn registry(pool: &PgPool, network: NetworkId) -> Result<Vec<Registered>, AppError> {
    let rows = sportello_projections::professionals::active(pool, network.0).await?;
    Ok(rows.iter().filter_map(|r| r.registered()).collect())
}

/// Carry out a write on an activation and, if it leaves the activation
/// waiting for a moment still ahead, offer it to the best-ranked
/// professional in the same write (as its follow-up: decided again with
/// it at every attempt). No command: only make the offer (the scheduler,
/// for an activation left waiting; a conflict if nobody can take it).
/// What the caller has just read to check access may be given as
/// `loaded`, and is decided on at the first attempt.
pub async fn carry_out<R: Keep>(
    store: &EventStore,
    offering: &Offering,
    req: WriteRequest<'_, ActivationAggregate, R>,
) -> Result<Done<Activation, R>, AppError> {
    let now = req.metadata.occurred_at;
    let then = |a: &Activation| offering.after(a, now).into_iter().collect();
    execute(
        store,
        WriteRequest {
            then: Some(&then),
            ..req
        },
    )
    .await
}
