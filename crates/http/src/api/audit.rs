//! `GET /api/v1/audit/reads` and `GET /api/v1/audit/sign-ins`: the
//! administrator's view of who read whose data, and of sign-ins and
//! refused credentials, newest first.

use super::ApiQuery;
use crate::access::{Act, allow};
use crate::audit::{self, ReadRecord};
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Query of the audit.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// Only reads of this person's data.
    pub person_id: Option<Uuid>,
    /// Only what this account did.
    pub account_id: Option<Uuid>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// A page of the audit.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage<T> {
    /// Newest first.
    pub items: Vec<T>,
    /// The cursor of the next page, if there may be one.
    pub next_cursor: Option<String>,
}

fn page(q: &AuditQuery) -> Result<(Option<i64>, i64), ApiError> {
    let bad = |f: &str, m: &str| {
        ApiError::Validation(vec![FieldError {
            field: f.into(),
            message: m.into(),
        }])
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(bad("limit", "must be 1 to 500"));
    }
    let before = match &q.cursor {
        None => None,
        Some(c) => Some(
            c.strip_prefix("a")
                .and_then(|n| n.parse::<i64>().ok())
                .ok_or_else(|| bad("cursor", "not a cursor from this API"))?,
        ),
    };
    Ok((before, limit))
}

fn next(items: usize, limit: i64, last: Option<i64>) -> Option<String> {
    (items as i64 == limit)
        .then_some(last)
        .flatten()
        .map(|id| format!("a{id}"))
}

/// Who read whose data.
#[utoipa::path(get, path = "/api/v1/audit/reads", tag = "accounts",
    params(AuditQuery),
    responses(
        (status = 200, description = "Recorded reads, newest first", body = AuditPage<ReadRecord>),
        (status = 403, description = "Not an administrator", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn reads(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage<ReadRecord>>, ApiError> {
    allow(&caller, Act::ReadAudit)?;
    let (before, limit) = page(&q)?;
    let items = audit::reads(
        state.pool(),
        caller.network_id.0,
        q.person_id,
        q.account_id,
        before,
        limit,
    )
    .await?;
    let next_cursor = next(items.len(), limit, items.last().map(|r| r.id));
    Ok(Json(AuditPage { items, next_cursor }))
}

/// A sign-in, or a credential refused.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct SignInRecord {
    /// Its number (increasing).
    pub id: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: time::OffsetDateTime,
    /// `login_succeeded`, `login_failed`, `account_locked`, `locked_out`,
    /// `rate_limited`, `csrf_refused`, `token_refused`, `session_refused`,
    /// `logged_out`, `oidc_succeeded`, `oidc_refused`.
    pub kind: String,
    /// The account, when one was known.
    pub account_id: Option<Uuid>,
}

/// Sign-ins and refused credentials of the network's accounts (those
/// that named no known account are kept for the installation's
/// operators, not shown to a network).
#[utoipa::path(get, path = "/api/v1/audit/sign-ins", tag = "accounts",
    params(AuditQuery),
    responses(
        (status = 200, description = "Recorded sign-ins and refusals, newest first", body = AuditPage<SignInRecord>),
        (status = 403, description = "Not an administrator", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn sign_ins(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage<SignInRecord>>, ApiError> {
    allow(&caller, Act::ReadAudit)?;
    let (before, limit) = page(&q)?;
    let items: Vec<SignInRecord> = sqlx::query_as(
        "SELECT id, at, kind, account_id FROM auth_events
          WHERE network_id = $1
            AND ($2::uuid IS NULL OR account_id = $2)
            AND ($3::bigint IS NULL OR id < $3)
          ORDER BY id DESC LIMIT $4",
    )
    .bind(caller.network_id.0)
    .bind(q.account_id)
    .bind(before)
    .bind(limit)
    .fetch_all(state.pool())
    .await?;
    let next_cursor = next(items.len(), limit, items.last().map(|r| r.id));
    Ok(Json(AuditPage { items, next_cursor }))
}
