//! `activations`: one row per activation of a professional — what was
//! asked (role, sector, language, mode, when, urgency, its deadline), by
//! which organisation, for which person and referral (ids only), where it
//! stands, the live offer, who passed, who confirmed and when, when it was
//! scheduled, delivered or cancelled, and whether its 24/48 h deadline was
//! missed. The desk's board, each professional's queue, the scheduler's
//! due moments and the activations report read it. Texts (place, outcome,
//! reason) stay sealed in the stream.

use crate::rows::{RowModel, check_follows};
use serde::{Deserialize, Serialize};
use sportello_domain::activation::{
    self, ActivationEvent, Mode, ProfessionalRole, Sector, Status, Urgency,
};
use sportello_domain::{Aggregate, aggregate::ActivationAggregate};
use sportello_store::RecordedEvent;
use sportello_store::projection::ApplyError;
use time::OffsetDateTime;
use uuid::Uuid;

/// A row of `activations`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActivationRow {
    /// The tenant.
    pub network_id: Uuid,
    /// The activation (its stream id).
    pub activation_id: Uuid,
    /// Mediator, interpreter, lawyer.
    pub role: ProfessionalRole,
    /// Legal, labour, health.
    pub sector: Sector,
    /// ISO 639-1.
    pub language: String,
    /// In person, phone, video.
    pub mode: Mode,
    /// When the professional is needed.
    #[serde(with = "time::serde::rfc3339")]
    pub needed_at: OffsetDateTime,
    /// 24 h or 48 h.
    pub urgency: Urgency,
    /// Confirm by (request + 24/48 h).
    #[serde(with = "time::serde::rfc3339")]
    pub deadline: OffsetDateTime,
    /// The person, if any.
    pub person_id: Option<Uuid>,
    /// The referral it serves, if any.
    pub referral_id: Option<Uuid>,
    /// The organisation that asked.
    pub requested_by: Uuid,
    /// When it was asked.
    #[serde(with = "time::serde::rfc3339")]
    pub requested_at: OffsetDateTime,
    /// Where it stands.
    pub status: Status,
    /// The professional offered it now.
    pub offered_to: Option<Uuid>,
    /// Until when the offer stands.
    #[serde(with = "time::serde::rfc3339::option")]
    pub offer_expires_at: Option<OffsetDateTime>,
    /// Offers made.
    pub offers: i32,
    /// Offers declined.
    pub declines: i32,
    /// Offers that lapsed unanswered.
    pub expiries: i32,
    /// Who declined or let an offer lapse, in order.
    pub passed: Vec<Uuid>,
    /// The professional confirmed.
    pub confirmed: Option<Uuid>,
    /// When they accepted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub confirmed_at: Option<OffsetDateTime>,
    /// When it takes place (once scheduled).
    #[serde(with = "time::serde::rfc3339::option")]
    pub scheduled_for: Option<OffsetDateTime>,
    /// Delivered.
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
    /// Quarter hours worked.
    pub quarter_hours: Option<i32>,
    /// Cancelled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub cancelled_at: Option<OffsetDateTime>,
    /// The deadline passed with nobody confirmed (recorded then).
    #[serde(with = "time::serde::rfc3339::option")]
    pub deadline_missed_at: Option<OffsetDateTime>,
    /// The stream's version.
    pub version: i64,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl RowModel for ActivationRow {
    const NAME: &'static str = "activations";
    const KEY: &'static str = "activation_id";

    fn create_table(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                network_id         uuid NOT NULL,
                activation_id      uuid PRIMARY KEY,
                role               text NOT NULL,
                sector             text NOT NULL,
                language           text NOT NULL,
                mode               text NOT NULL,
                needed_at          timestamptz NOT NULL,
                urgency            text NOT NULL,
                deadline           timestamptz NOT NULL,
                person_id          uuid,
                referral_id        uuid,
                requested_by       uuid NOT NULL,
                requested_at       timestamptz NOT NULL,
                status             text NOT NULL,
                offered_to         uuid,
                offer_expires_at   timestamptz,
                offers             integer NOT NULL,
                declines           integer NOT NULL,
                expiries           integer NOT NULL,
                passed             uuid[] NOT NULL,
                confirmed          uuid,
                confirmed_at       timestamptz,
                scheduled_for      timestamptz,
                delivered_at       timestamptz,
                quarter_hours      integer,
                cancelled_at       timestamptz,
                deadline_missed_at timestamptz,
                version            bigint NOT NULL,
                updated_at         timestamptz NOT NULL
            );
            CREATE INDEX {table}_board ON {table} (network_id, status, deadline);
            CREATE INDEX {table}_offers ON {table} (offer_expires_at) WHERE status = 'offered';
            CREATE INDEX {table}_unconfirmed ON {table} (deadline)
                WHERE status IN ('waiting', 'offered') AND deadline_missed_at IS NULL;
            CREATE INDEX {table}_requested ON {table} (network_id, requested_at);"
        )
    }

    fn key(e: &RecordedEvent) -> Option<Uuid> {
        (e.stream_kind == activation::STREAM_KIND).then_some(e.stream_id.0)
    }

    fn fold(row: Option<Self>, e: &RecordedEvent) -> Result<Option<Self>, ApplyError> {
        let invalid = |why: &str| {
            ApplyError::Invalid(format!(
                "activation {} at position {}: {why}",
                e.stream_id, e.cursor.position
            ))
        };
        let event = ActivationAggregate::decode(&e.event_type, &e.payload)
            .map_err(|err| invalid(&err.to_string()))?;
        let at = e.metadata.occurred_at;
        let Some(mut a) = row else {
            check_follows(0, e)?;
            let ActivationEvent::Requested(r) = event else {
                return Err(invalid("an activation starts with its request"));
            };
            return Ok(Some(ActivationRow {
                network_id: e.network_id.0,
                activation_id: e.stream_id.0,
                role: r.role,
                sector: r.sector,
                language: r.language.clone(),
                mode: r.mode,
                needed_at: r.needed_at,
                urgency: r.urgency,
                deadline: r.deadline(),
                person_id: r.person.map(|p| p.0),
                referral_id: r.referral.map(|p| p.0),
                requested_by: r.requested_by.0,
                requested_at: r.requested_at,
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
                version: e.version,
                updated_at: at,
            }));
        };
        check_follows(a.version, e)?;
        if a.status.is_final() {
            return Err(invalid("a change after the activation ended"));
        }
        let offered =
            |a: &ActivationRow, who: Uuid| a.status == Status::Offered && a.offered_to == Some(who);
        match event {
            ActivationEvent::Requested(_) => return Err(invalid("requested twice")),
            ActivationEvent::Offered { to, expires_at } => {
                if a.status != Status::Waiting {
                    return Err(invalid(
                        "an offer while another stands or after confirmation",
                    ));
                }
                if a.passed.contains(&to.0) {
                    return Err(invalid("an offer to a professional who passed"));
                }
                a.status = Status::Offered;
                a.offered_to = Some(to.0);
                a.offer_expires_at = Some(expires_at);
                a.offers += 1;
            }
            ActivationEvent::Accepted { by, at } => {
                if !offered(&a, by.0) {
                    return Err(invalid("accepted by someone not offered it"));
                }
                if a.offer_expires_at.is_some_and(|until| at >= until) {
                    return Err(invalid("accepted after the offer ran out"));
                }
                a.status = Status::Confirmed;
                a.confirmed = Some(by.0);
                a.confirmed_at = Some(at);
                a.offered_to = None;
                a.offer_expires_at = None;
            }
            ActivationEvent::Declined { by: who } | ActivationEvent::OfferExpired { to: who } => {
                if !offered(&a, who.0) {
                    return Err(invalid("an answer from someone not offered it"));
                }
                if e.event_type == "ActivationDeclined" {
                    a.declines += 1;
                } else {
                    a.expiries += 1;
                }
                a.status = Status::Waiting;
                a.passed.push(who.0);
                a.offered_to = None;
                a.offer_expires_at = None;
            }
            ActivationEvent::Scheduled { at, .. } => {
                if !matches!(a.status, Status::Confirmed | Status::Scheduled) {
                    return Err(invalid("scheduled before confirmation"));
                }
                a.status = Status::Scheduled;
                a.scheduled_for = Some(at);
            }
            ActivationEvent::Delivered { quarter_hours, .. } => {
                if a.status != Status::Scheduled {
                    return Err(invalid("delivered before it was scheduled"));
                }
                a.status = Status::Delivered;
                a.delivered_at = Some(at);
                a.quarter_hours = Some(i32::from(quarter_hours));
            }
            ActivationEvent::Cancelled { .. } => {
                a.status = Status::Cancelled;
                a.cancelled_at = Some(at);
                a.offered_to = None;
                a.offer_expires_at = None;
            }
            ActivationEvent::DeadlineMissed => {
                if a.deadline_missed_at.is_some()
                    || !matches!(a.status, Status::Waiting | Status::Offered)
                {
                    return Err(invalid("a deadline missed twice or after confirmation"));
                }
                a.deadline_missed_at = Some(at);
            }
        }
        a.version = e.version;
        a.updated_at = at;
        Ok(Some(a))
    }
}

/// How many activations each professional of `network` confirmed in
/// `(since, until]` (fair rotation).
pub async fn confirmed_counts(
    pool: &sqlx::PgPool,
    network: Uuid,
    since: OffsetDateTime,
    until: OffsetDateTime,
) -> Result<Vec<(Uuid, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT confirmed, count(*) FROM activations
          WHERE network_id = $1 AND confirmed IS NOT NULL
            AND confirmed_at > $2 AND confirmed_at <= $3
          GROUP BY confirmed",
    )
    .bind(network)
    .bind(since)
    .bind(until)
    .fetch_all(pool)
    .await
}

/// A moment activations wait for, as the scheduler looks for them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Due {
    /// Waiting or offered, nobody confirmed, past the 24/48 h deadline
    /// and not yet recorded as missed; earliest deadline first.
    MissedDeadline,
    /// Offered, the offer past its timeout; earliest first.
    ExpiredOffer,
    /// Waiting for someone, still needed later; earliest deadline first.
    Waiting,
}

/// The activations of every network with the moment `due` reached at
/// `now`, at most `limit`.
pub async fn due(
    pool: &sqlx::PgPool,
    due: Due,
    now: OffsetDateTime,
    limit: i64,
) -> Result<Vec<ActivationRow>, sqlx::Error> {
    let condition = match due {
        Due::MissedDeadline => {
            "status IN ('waiting', 'offered') AND deadline_missed_at IS NULL AND deadline <= $1
             ORDER BY deadline"
        }
        Due::ExpiredOffer => {
            "status = 'offered' AND offer_expires_at <= $1 ORDER BY offer_expires_at"
        }
        Due::Waiting => "status = 'waiting' AND needed_at > $1 ORDER BY deadline",
    };
    let rows: Vec<sqlx::types::Json<ActivationRow>> = sqlx::query_scalar(sqlx::AssertSqlSafe(
        format!("SELECT to_jsonb(a) FROM activations a WHERE {condition} LIMIT $2"),
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
