//! `referrals`: one row per referral — who it is for (ids only), which
//! need and category, which provider and service, where it stands, when it
//! reached each status, its deadlines from the agreement, why it was
//! declined or failed, and its status history. Each provider's inbox, the
//! card's referral list and chain, and the bottleneck report read it.

use crate::rows::{RowModel, check_follows, payload};
use serde::{Deserialize, Serialize};
use sportello_domain::referral::{
    self, CompletedPayload, DeclinedPayload, FailedPayload, RedirectedPayload, ReferralStatus,
    SentPayload,
};
use sportello_domain::taxonomy;
use sportello_store::RecordedEvent;
use sportello_store::projection::ApplyError;
use time::OffsetDateTime;
use uuid::Uuid;

/// One status a referral reached.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusChange {
    /// The status.
    pub status: ReferralStatus,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The organisation of the account that acted.
    pub by_organization: Uuid,
}

/// A row of `referrals`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralRow {
    /// The tenant.
    pub network_id: Uuid,
    /// The referral (its stream id).
    pub referral_id: Uuid,
    /// Whose case.
    pub person_id: Uuid,
    /// Which need.
    pub need_id: Uuid,
    /// The need's category code.
    pub need_code: String,
    /// The category's area.
    pub need_area: String,
    /// The provider.
    pub organization_id: Uuid,
    /// Its service.
    pub service_id: Uuid,
    /// The referral this one replaces.
    pub redirected_from: Option<Uuid>,
    /// The referral that replaced this one.
    pub redirected_to: Option<Uuid>,
    /// Where it stands.
    pub status: ReferralStatus,
    /// Sent.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// Acknowledged.
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledged_at: Option<OffsetDateTime>,
    /// Accepted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub accepted_at: Option<OffsetDateTime>,
    /// Declined.
    #[serde(with = "time::serde::rfc3339::option")]
    pub declined_at: Option<OffsetDateTime>,
    /// Work started.
    #[serde(with = "time::serde::rfc3339::option")]
    pub started_at: Option<OffsetDateTime>,
    /// Completed, failed or cancelled.
    #[serde(with = "time::serde::rfc3339::option")]
    pub closed_at: Option<OffsetDateTime>,
    /// Redirected to another service.
    #[serde(with = "time::serde::rfc3339::option")]
    pub redirected_at: Option<OffsetDateTime>,
    /// Why it was declined.
    pub decline_reason: Option<String>,
    /// Why it failed.
    pub fail_reason: Option<String>,
    /// How it ended, when completed.
    pub outcome: Option<String>,
    /// Acknowledge by (the agreement's deadline).
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledge_by: Option<OffsetDateTime>,
    /// First contact by.
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_contact_by: Option<OffsetDateTime>,
    /// The deadline of the stage it waits in now: `acknowledge_by` while
    /// sent, `first_contact_by` while acknowledged or accepted.
    #[serde(with = "time::serde::rfc3339::option")]
    pub due_at: Option<OffsetDateTime>,
    /// Every status it reached, oldest first.
    pub history: Vec<StatusChange>,
    /// The stream's version.
    pub version: i64,
    /// Last change.
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

impl RowModel for ReferralRow {
    const NAME: &'static str = "referrals";
    const KEY: &'static str = "referral_id";

    fn create_table(table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                network_id       uuid NOT NULL,
                referral_id      uuid PRIMARY KEY,
                person_id        uuid NOT NULL,
                need_id          uuid NOT NULL,
                need_code        text NOT NULL,
                need_area        text NOT NULL,
                organization_id  uuid NOT NULL,
                service_id       uuid NOT NULL,
                redirected_from  uuid,
                redirected_to    uuid,
                status           text NOT NULL,
                sent_at          timestamptz NOT NULL,
                acknowledged_at  timestamptz,
                accepted_at      timestamptz,
                declined_at      timestamptz,
                started_at       timestamptz,
                closed_at        timestamptz,
                redirected_at    timestamptz,
                decline_reason   text,
                fail_reason      text,
                outcome          text,
                acknowledge_by   timestamptz,
                first_contact_by timestamptz,
                due_at           timestamptz,
                history          jsonb NOT NULL,
                version          bigint NOT NULL,
                updated_at       timestamptz NOT NULL
            );
            CREATE INDEX {table}_inbox ON {table} (network_id, organization_id, status, sent_at);
            CREATE INDEX {table}_person ON {table} (network_id, person_id);
            -- The columns the bottleneck report reads are included, so
            -- its look-ups need not visit the rows (index-only scans).
            CREATE INDEX {table}_need ON {table} (network_id, need_id) INCLUDE (declined_at);
            CREATE INDEX {table}_status ON {table} (network_id, status, sent_at) INCLUDE (need_id);
            -- Each provider's open queue in its order: the most overdue
            -- first, then the next due, then those without a deadline.
            CREATE INDEX {table}_queue ON {table} (network_id, organization_id, due_at, sent_at, referral_id)
             INCLUDE (need_code, status, acknowledged_at, accepted_at, started_at)
             WHERE status IN ('sent', 'acknowledged', 'accepted', 'in_progress');"
        )
    }

    fn key(e: &RecordedEvent) -> Option<Uuid> {
        (e.stream_kind == referral::STREAM_KIND).then_some(e.stream_id.0)
    }

    fn fold(row: Option<Self>, e: &RecordedEvent) -> Result<Option<Self>, ApplyError> {
        let at = e.metadata.occurred_at;
        let change = |status| StatusChange {
            status,
            at,
            by_organization: e.metadata.organization_id.0,
        };
        let Some(mut r) = row else {
            check_follows(0, e)?;
            if e.event_type != "ReferralSent" {
                return Err(ApplyError::Invalid(format!(
                    "referral {} starts with {}",
                    e.stream_id, e.event_type
                )));
            }
            let p: SentPayload = payload(e)?;
            let code = p.need_code.as_str();
            return Ok(Some(ReferralRow {
                network_id: e.network_id.0,
                referral_id: p.referral_id.0,
                person_id: p.person_id.0,
                need_id: p.need_id.0,
                need_code: code.to_owned(),
                need_area: taxonomy::area_of(&p.need_code).code().to_owned(),
                organization_id: p.organization_id.0,
                service_id: p.service_id.0,
                redirected_from: p.redirected_from.map(|r| r.0),
                redirected_to: None,
                status: ReferralStatus::Sent,
                sent_at: at,
                acknowledged_at: None,
                accepted_at: None,
                declined_at: None,
                started_at: None,
                closed_at: None,
                redirected_at: None,
                decline_reason: None,
                fail_reason: None,
                outcome: None,
                acknowledge_by: p.acknowledge_by,
                first_contact_by: p.first_contact_by,
                due_at: p.acknowledge_by,
                history: vec![change(ReferralStatus::Sent)],
                version: e.version,
                updated_at: at,
            }));
        };
        check_follows(r.version, e)?;
        let action = referral::decode(&e.event_type, &e.payload)
            .map_err(|err| ApplyError::Invalid(err.to_string()))?
            .action();
        if action
            .and_then(|a| referral::transition(r.status, a))
            .is_none()
        {
            return Err(ApplyError::Invalid(format!(
                "referral {} cannot go by {} from {}",
                e.stream_id,
                e.event_type,
                r.status.as_str()
            )));
        }
        let status = match e.event_type.as_str() {
            "ReferralAcknowledged" => {
                r.acknowledged_at = Some(at);
                ReferralStatus::Acknowledged
            }
            "ReferralAccepted" => {
                r.accepted_at = Some(at);
                ReferralStatus::Accepted
            }
            "ReferralDeclined" => {
                let p: DeclinedPayload = payload(e)?;
                r.declined_at = Some(at);
                r.decline_reason = Some(wire(&p.reason)?);
                ReferralStatus::Declined
            }
            "ReferralStarted" => {
                r.started_at = Some(at);
                ReferralStatus::InProgress
            }
            "ReferralCompleted" => {
                let p: CompletedPayload = payload(e)?;
                r.closed_at = Some(at);
                r.outcome = Some(wire(&p.outcome)?);
                ReferralStatus::Completed
            }
            "ReferralFailed" => {
                let p: FailedPayload = payload(e)?;
                r.closed_at = Some(at);
                r.fail_reason = Some(wire(&p.reason)?);
                ReferralStatus::Failed
            }
            "ReferralCancelled" => {
                r.closed_at = Some(at);
                ReferralStatus::Cancelled
            }
            "ReferralRedirected" => {
                let p: RedirectedPayload = payload(e)?;
                r.redirected_at = Some(at);
                r.redirected_to = Some(p.to.0);
                ReferralStatus::Redirected
            }
            other => {
                return Err(ApplyError::Invalid(format!(
                    "referral {} cannot apply {other}",
                    e.stream_id
                )));
            }
        };
        r.status = status;
        r.due_at = match status {
            ReferralStatus::Sent => r.acknowledge_by,
            ReferralStatus::Acknowledged | ReferralStatus::Accepted => r.first_contact_by,
            _ => None,
        };
        r.history.push(change(status));
        r.version = e.version;
        r.updated_at = at;
        Ok(Some(r))
    }
}

/// The wire name of a serde enum value.
pub(crate) fn wire<T: Serialize>(v: &T) -> Result<String, ApplyError> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(ApplyError::Invalid("not a plain enum value".into())),
    }
}
