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

use crate::command::{Done, Expect, Respond, WriteRequest, execute};
use crate::error::ApiError;
use sportello_domain::activation::ranking::{Registered, rank};
use sportello_domain::activation::{Activation, ActivationCommand, Request, Status};
use sportello_domain::aggregate::ActivationAggregate;
use sportello_domain::ids::ProfessionalId;
use sportello_domain::{AccountId, Metadata, NetworkId, StreamId};
use sportello_projections::ProfessionalRow;
use sportello_store::{EventStore, Idempotency};
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
    ) -> Result<Self, ApiError> {
        let registry = registry(pool, network).await?;
        let counts: Vec<(Uuid, i64)> = sqlx::query_as(
            "SELECT confirmed, count(*) FROM activations
              WHERE network_id = $1 AND confirmed IS NOT NULL
                AND confirmed_at > $2 AND confirmed_at <= $3
              GROUP BY confirmed",
        )
        .bind(network.0)
        .bind(now - ROTATION_WINDOW)
        .bind(now)
        .fetch_all(pool)
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
pub async fn registry(pool: &PgPool, network: NetworkId) -> Result<Vec<Registered>, ApiError> {
    let rows: Vec<sqlx::types::Json<ProfessionalRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(p) FROM professionals p WHERE network_id = $1 AND status = 'active'",
    )
    .bind(network.0)
    .fetch_all(pool)
    .await?;
    Ok(rows.iter().filter_map(|r| r.0.registered()).collect())
}

/// Carry out `command` on the activation `id` and, if it leaves the
/// activation waiting for a moment still ahead, offer it to the
/// best-ranked professional in the same write ([`execute_then`]).
/// `command` `None`: only make the offer (the scheduler, for an activation
/// left waiting; `409` if nobody can take it). `loaded`: the state and
/// version the caller has just read (to check access), decided on at the
/// first attempt. `respond`: the answer, from the activation as the write
/// leaves it.
#[expect(
    clippy::too_many_arguments,
    reason = "each is a separate input of one write"
)]
pub async fn carry_out(
    store: &EventStore,
    offering: &Offering,
    network: NetworkId,
    id: StreamId,
    expect: Expect,
    command: Option<ActivationCommand>,
    metadata: Metadata,
    idempotency: Option<Idempotency>,
    loaded: Option<(Option<Activation>, i64)>,
    respond: &Respond<'_, Activation>,
) -> Result<Done<Activation>, ApiError> {
    let now = metadata.occurred_at;
    execute::<ActivationAggregate, _>(
        store,
        WriteRequest {
            network,
            stream: id,
            expect,
            commands: command.into_iter().collect(),
            metadata,
            idempotency,
            loaded,
            then: Some(&|a: &Activation| offering.after(a, now).into_iter().collect()),
            respond,
        },
    )
    .await
    .map_err(Into::into)
}
