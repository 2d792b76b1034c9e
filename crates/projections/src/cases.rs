//! `cases` and `needs`: one row per person's case (desk, operator, status,
//! channel, visits, times) and one row per screened need (category, area,
//! urgency, whether the desk answered it itself). Ids, codes and times
//! only: the person's identity and every note stay sealed in the log, and
//! the card opens them at read time with the person's key.

use crate::referrals::wire;
use crate::rows::{RowModel, check_follows, payload};
use serde::{Deserialize, Serialize};
use sportello_domain::case::lifecycle::{NeedPayload, ResolvedPayload, VisitPayload};
use sportello_domain::case::{self, PersonTakenInChargePayload};
use sportello_domain::taxonomy;
use sportello_store::RecordedEvent;
use sportello_store::projection::ApplyError;
use time::OffsetDateTime;
use uuid::Uuid;

/// One contact with the person.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// `desk`, `phone` or `outreach`.
    pub channel: String,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// A row of `cases`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseRow {
    /// The tenant.
    pub network_id: Uuid,
    /// The person (the case's stream id).
    pub person_id: Uuid,
    /// The desk in charge.
    pub desk_id: Uuid,
    /// The operator in charge.
    pub operator_id: Option<Uuid>,
    /// `open` or `closed`.
    pub status: String,
    /// Opened.
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// Last closed, while closed.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// Every contact, the first included.
    pub visits: Vec<Visit>,
    /// The stream's version.
    pub version: i64,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl RowModel for CaseRow {
    const NAME: &'static str = "cases";
    const KEY: &'static str = "person_id";

    fn create_table(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                network_id  uuid NOT NULL,
                person_id   uuid PRIMARY KEY,
                desk_id     uuid NOT NULL,
                operator_id uuid,
                status      text NOT NULL,
                opened_at   timestamptz NOT NULL,
                closed_at   timestamptz,
                visits      jsonb NOT NULL,
                version     bigint NOT NULL,
                updated_at  timestamptz NOT NULL
            );
            CREATE INDEX {table}_network ON {table} (network_id, opened_at);"
        )
    }

    fn key(e: &RecordedEvent) -> Option<Uuid> {
        (e.stream_kind == case::STREAM_KIND).then_some(e.stream_id.0)
    }

    fn fold(row: Option<Self>, e: &RecordedEvent) -> Result<Option<Self>, ApplyError> {
        let at = e.metadata.occurred_at;
        let Some(mut c) = row else {
            check_follows(0, e)?;
            if e.event_type != case::PersonTakenInCharge::TYPE {
                return Err(ApplyError::Invalid(format!(
                    "case {} starts with {}",
                    e.stream_id, e.event_type
                )));
            }
            let p: PersonTakenInChargePayload = payload(e)?;
            return Ok(Some(CaseRow {
                network_id: e.network_id.0,
                person_id: p.person_id.0,
                desk_id: p.desk.0,
                operator_id: p.operator.map(|a| a.0),
                status: "open".into(),
                opened_at: at,
                closed_at: None,
                visits: vec![Visit {
                    channel: wire(&p.channel)?,
                    at,
                }],
                version: e.version,
                updated_at: at,
            }));
        };
        check_follows(c.version, e)?;
        match e.event_type.as_str() {
            "VisitRecorded" => {
                let p: VisitPayload = payload(e)?;
                c.visits.push(Visit {
                    channel: wire(&p.channel)?,
                    at,
                });
            }
            "CaseClosed" => {
                c.status = "closed".into();
                c.closed_at = Some(at);
            }
            "CaseReopened" => {
                c.status = "open".into();
                c.closed_at = None;
            }
            // Needs have rows of their own; consents and legal bases are
            // on the card only. An erasure changes no fact of the case (the
            // statistics stay), only what the person's key opened.
            "NeedRecorded" | "NeedResolved" | "ConsentRecorded" | "ConsentWithdrawn"
            | "LegalBasisRecorded" | "PersonErased" => {}
            other => {
                return Err(ApplyError::Invalid(format!(
                    "case {} cannot apply {other}",
                    e.stream_id
                )));
            }
        }
        c.version = e.version;
        c.updated_at = at;
        Ok(Some(c))
    }
}

/// A row of `needs`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NeedRow {
    /// The tenant.
    pub network_id: Uuid,
    /// The need.
    pub need_id: Uuid,
    /// Whose case.
    pub person_id: Uuid,
    /// Its category code.
    pub code: String,
    /// The category's area.
    pub area: String,
    /// How urgent.
    pub urgency: String,
    /// `open` or `resolved` (answered by the desk itself).
    pub status: String,
    /// How the desk answered it.
    pub outcome: Option<String>,
    /// Screened.
    #[serde(with = "time::serde::rfc3339")]
    pub recorded_at: OffsetDateTime,
    /// Answered by the desk.
    #[serde(with = "time::serde::rfc3339::option")]
    pub resolved_at: Option<OffsetDateTime>,
}

impl RowModel for NeedRow {
    const NAME: &'static str = "needs";
    const KEY: &'static str = "need_id";

    fn create_table(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                network_id  uuid NOT NULL,
                need_id     uuid PRIMARY KEY,
                person_id   uuid NOT NULL,
                code        text NOT NULL,
                area        text NOT NULL,
                urgency     text NOT NULL,
                status      text NOT NULL,
                outcome     text,
                recorded_at timestamptz NOT NULL,
                resolved_at timestamptz
            );
            CREATE INDEX {table}_person ON {table} (network_id, person_id);
            CREATE INDEX {table}_code ON {table} (network_id, code, recorded_at) INCLUDE (status);"
        )
    }

    fn key(e: &RecordedEvent) -> Option<Uuid> {
        if e.stream_kind != case::STREAM_KIND {
            return None;
        }
        match e.event_type.as_str() {
            // An unreadable id still names a row (the nil one), so `fold`
            // sees the event and refuses it rather than it being skipped.
            "NeedRecorded" | "NeedResolved" => Some(
                e.payload
                    .get("need_id")
                    .and_then(|v| v.as_str())
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(Uuid::nil()),
            ),
            _ => None,
        }
    }

    fn fold(row: Option<Self>, e: &RecordedEvent) -> Result<Option<Self>, ApplyError> {
        let at = e.metadata.occurred_at;
        match (row, e.event_type.as_str()) {
            (None, "NeedRecorded") => {
                let p: NeedPayload = payload(e)?;
                if p.need_id.0.is_nil() {
                    return Err(ApplyError::Invalid("a need without an id".into()));
                }
                Ok(Some(NeedRow {
                    network_id: e.network_id.0,
                    need_id: p.need_id.0,
                    person_id: e.stream_id.0,
                    code: p.code.as_str().to_owned(),
                    area: taxonomy::area_of(&p.code).code().to_owned(),
                    urgency: wire(&p.urgency)?,
                    status: "open".into(),
                    outcome: None,
                    recorded_at: at,
                    resolved_at: None,
                }))
            }
            (Some(mut n), "NeedResolved") if n.person_id == e.stream_id.0 => {
                let p: ResolvedPayload = payload(e)?;
                n.status = "resolved".into();
                n.outcome = Some(wire(&p.outcome)?);
                n.resolved_at = Some(at);
                Ok(Some(n))
            }
            (_, other) => Err(ApplyError::Invalid(format!(
                "need in case {} cannot apply {other} at position {}",
                e.stream_id, e.cursor.position
            ))),
        }
    }
}

/// The people of every network whose case was closed before `cutoff` and
/// whose erasure is not recorded yet, oldest closing first: (network,
/// person). A person whose key is shredded but whose case has no
/// `PersonErased` (a run that failed between the two) is still listed, so
/// the next run finishes the job.
pub async fn closed_before(
    pool: &sqlx::PgPool,
    cutoff: OffsetDateTime,
) -> Result<Vec<(Uuid, Uuid)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT c.network_id, c.person_id FROM cases c
          WHERE c.status = 'closed' AND c.closed_at < $1
            AND NOT EXISTS (SELECT 1 FROM events e
                             WHERE e.stream_id = c.person_id
                               AND e.network_id = c.network_id
                               AND e.stream_kind = 'case'
                               AND e.event_type = 'PersonErased')
          ORDER BY c.closed_at",
    )
    .bind(cutoff)
    .fetch_all(pool)
    .await
}
