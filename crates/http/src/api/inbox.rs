//! `GET /api/v1/organizations/{id}/inbox`: a provider's referral queue in
//! the order to work it — by the deadline of the stage each waits in, so
//! the most overdue come first, then the next due, then those without a
//! deadline, oldest first — filterable by status, need category and age. Ids, codes, statuses and deadlines only: the person's details
//! are on the card, which the partner opens as its agreement allows.

use super::{ApiQuery, MinPosition, path_id};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::{Deserialize, Serialize};
use sportello_domain::OrganizationId;
use sportello_domain::referral::ReferralStatus;
use sportello_domain::taxonomy::NeedCode;
use time::OffsetDateTime;
use uuid::Uuid;

/// Query of the inbox.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Read your writes: wait until this global position is applied.
    pub min_position: Option<i64>,
    /// Comma-separated statuses (default: the open ones — sent,
    /// acknowledged, accepted, in_progress); `all` for every status.
    pub status: Option<String>,
    /// Only referrals of this need category (taxonomy code).
    pub need: Option<String>,
    /// Only referrals sent at least this many days ago.
    pub min_age_days: Option<i64>,
    /// Only referrals sent at most this many days ago.
    pub max_age_days: Option<i64>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// One referral in an inbox.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct InboxItem {
    /// The referral.
    pub referral_id: Uuid,
    /// The person (open the card for details).
    pub person_id: Uuid,
    /// The need.
    pub need_id: Uuid,
    /// Its category.
    pub need_code: String,
    /// The service it was sent to.
    pub service_id: Uuid,
    /// Where it stands.
    pub status: String,
    /// Sent.
    #[serde(with = "time::serde::rfc3339")]
    pub sent_at: OffsetDateTime,
    /// Acknowledge by.
    #[serde(with = "time::serde::rfc3339::option")]
    pub acknowledge_by: Option<OffsetDateTime>,
    /// First contact by.
    #[serde(with = "time::serde::rfc3339::option")]
    pub first_contact_by: Option<OffsetDateTime>,
    /// Past a deadline of the agreement at its stage.
    pub overdue: bool,
    /// The referral it replaces, for a redirection — only when that one
    /// was also this provider's (another's is not named).
    pub redirected_from: Option<Uuid>,
    /// Its version (the `If-Match` for the next action).
    pub version: i64,
}

fn bad(field: &str, message: impl Into<String>) -> ApiError {
    ApiError::Validation(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

const OPEN: [ReferralStatus; 4] = [
    ReferralStatus::Sent,
    ReferralStatus::Acknowledged,
    ReferralStatus::Accepted,
    ReferralStatus::InProgress,
];

const ALL: [ReferralStatus; 9] = [
    ReferralStatus::Sent,
    ReferralStatus::Acknowledged,
    ReferralStatus::Accepted,
    ReferralStatus::Declined,
    ReferralStatus::InProgress,
    ReferralStatus::Completed,
    ReferralStatus::Failed,
    ReferralStatus::Cancelled,
    ReferralStatus::Redirected,
];

fn statuses(s: Option<&str>) -> Result<Vec<&'static str>, ApiError> {
    let Some(s) = s else {
        return Ok(OPEN.iter().map(|x| x.as_str()).collect());
    };
    if s == "all" {
        return Ok(ALL.iter().map(|x| x.as_str()).collect());
    }
    s.split(',')
        .map(|part| {
            ALL.iter()
                .map(|x| x.as_str())
                .find(|x| *x == part.trim())
                .ok_or_else(|| {
                    bad(
                        "status",
                        format!("unknown status {part:?}: use sent, acknowledged, accepted, declined, in_progress, completed, failed, cancelled, redirected or all"),
                    )
                })
        })
        .collect()
}

/// A provider's referral queue.
#[utoipa::path(get, path = "/api/v1/organizations/{id}/inbox", tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "The provider"), InboxQuery),
    responses(
        (status = 200, description = "A page of `items` (by the deadline of their stage: the most overdue first; then oldest first) and a `next_cursor`", body = Object),
        (status = 403, description = "Another organisation's inbox", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<InboxQuery>,
) -> Result<Response, ApiError> {
    let org = OrganizationId(path_id(&id)?);
    allow(&caller, Act::ReadInbox(org))?;
    let statuses = statuses(q.status.as_deref())?;
    if let Some(n) = &q.need {
        NeedCode::parse(n).map_err(|e| bad("need", e.to_string()))?;
    }
    for (field, v) in [
        ("min_age_days", q.min_age_days),
        ("max_age_days", q.max_age_days),
    ] {
        if v.is_some_and(|d| !(0..=3650).contains(&d)) {
            return Err(bad(field, "must be 0 to 3650"));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(bad("limit", "must be 1 to 500"));
    }
    let offset: i64 = match &q.cursor {
        None => 0,
        Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(c)
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.strip_prefix("inbox:").and_then(|n| n.parse().ok()))
            .ok_or_else(|| bad("cursor", "not a cursor from this API"))?,
    };
    let mut headers = HeaderMap::new();
    MinPosition {
        min_position: q.min_position,
    }
    .wait(&state, "referrals", &mut headers)
    .await?;
    // The open queue (the default) reads the partial index in order.
    let open_only = q.status.is_none();
    let sql = format!(
        "SELECT referral_id, person_id, need_id, need_code, service_id, status, sent_at,
                acknowledge_by, first_contact_by,
                -- The referral it replaces only when that one was also this
                -- provider's: another organisation's referral is not its
                -- business (nor its id).
                (SELECT p.referral_id FROM referrals p
                  WHERE p.referral_id = r.redirected_from AND p.organization_id = $2
                ) AS redirected_from,
                version,
                coalesce(due_at < $9, false) AS overdue
           FROM referrals r
          WHERE network_id = $1 AND organization_id = $2 AND {status}
            AND ($4::text IS NULL OR need_code = $4)
            AND ($5::bigint IS NULL OR sent_at <= $9 - make_interval(days => $5::int))
            AND ($6::bigint IS NULL OR sent_at >= $9 - make_interval(days => $6::int))
          ORDER BY due_at, sent_at, referral_id
          LIMIT $7 OFFSET $8",
        status = if open_only {
            "status IN ('sent', 'acknowledged', 'accepted', 'in_progress') AND $3::text[] IS NOT NULL"
        } else {
            "status = ANY($3)"
        }
    );
    let items: Vec<InboxItem> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(caller.network_id.0)
        .bind(org.0)
        .bind(&statuses)
        .bind(q.need.as_deref())
        .bind(q.min_age_days)
        .bind(q.max_age_days)
        .bind(limit)
        .bind(offset)
        // Overdue and ages by the application's clock, like every deadline.
        .bind(state.clock().now())
        .fetch_all(state.pool())
        .await?;
    let next = (items.len() as i64 == limit).then(|| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("inbox:{}", offset + limit))
    });
    Ok((
        headers,
        Json(serde_json::json!({ "items": items, "next_cursor": next })),
    )
        .into_response())
}
