//! `GET /api/v1/activity`: the `stream_activity` read model of the
//! caller's network — what moved, where, when. Paginated by an opaque
//! cursor; honours `?min_position=`.

use super::{ApiQuery, MinPosition, Page};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

/// Query of the list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivityQuery {
    /// Read your writes: wait until this global position is applied.
    pub min_position: Option<i64>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// One stream's activity.
#[derive(Debug, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ActivityRow {
    stream_id: Uuid,
    stream_kind: String,
    version: i64,
    events: i64,
    #[serde(with = "time::serde::rfc3339")]
    first_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    last_at: OffsetDateTime,
    last_event_type: String,
}

/// List the network's stream activity.
#[utoipa::path(
    get,
    path = "/api/v1/activity",
    tag = "activity",
    params(ActivityQuery),
    responses(
        (status = 200, description = "A page of `items` and a `next_cursor`; a `Sportello-Caught-Up-To` header when `min_position` was not reached in time", body = Object),
        (status = 401, description = "No valid bearer token", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ActivityQuery>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ReadActivity)?;
    let page = Page::parse(q.cursor.as_deref(), q.limit)?;
    let mut headers = HeaderMap::new();
    MinPosition {
        min_position: q.min_position,
    }
    .wait(&state, "stream_activity", &mut headers)
    .await?;
    let rows: Vec<ActivityRow> = sqlx::query_as(
        "SELECT stream_id, stream_kind, version, events, first_at, last_at, last_event_type
           FROM stream_activity
          WHERE network_id = $1 AND stream_id > $2
          ORDER BY stream_id LIMIT $3",
    )
    .bind(caller.network_id.0)
    .bind(page.after)
    .bind(page.limit)
    .fetch_all(state.pool())
    .await?;
    let next = page.next(rows.len(), rows.last().map(|r| r.stream_id));
    Ok((
        headers,
        Json(serde_json::json!({ "items": rows, "next_cursor": next })),
    )
        .into_response())
}
