//! `POST /api/v1/persons` (take a person in charge; the body is in
//! [`super::intake`]) and
//! `GET /api/v1/persons/{id}/history` (the case's events, personal parts
//! opened while the person's key exists).

use super::intake::TakeInCharge;
use super::{ApiJson, Written, idempotency, path_id};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::command::{Expect, execute};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sportello_domain::aggregate::CaseAggregate;
use sportello_domain::case::lifecycle::CaseCommand;
use sportello_domain::case::{PersonTakenInCharge, STREAM_KIND};
use sportello_domain::{Metadata, PersonId, StreamId};
use sportello_store::Personal;
use time::OffsetDateTime;

/// Take a person in charge: opens their case.
#[utoipa::path(
    post,
    path = "/api/v1/persons",
    tag = "persons",
    request_body = TakeInCharge,
    params(("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "A retry with the same key and body answers the first answer")),
    responses(
        (status = 201, description = "Taken in charge; ETag is the case's version", body = Written),
        (status = 400, description = "Malformed JSON", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or an Idempotency-Key reused with another body", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn take_in_charge(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body, raw): ApiJson<TakeInCharge>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::DeskWork)?;
    let idem = idempotency(&headers, "POST /api/v1/persons", &raw)?;
    let (channel, identity) = body.validate()?;
    let person = PersonId::new();
    let done = execute::<CaseAggregate>(
        &state.store,
        caller.network_id,
        StreamId(person.0),
        Expect::New,
        CaseCommand::TakeInCharge(PersonTakenInCharge {
            person_id: person,
            desk: caller.organization_id,
            channel,
            operator: Some(caller.account_id),
            identity,
        }),
        Metadata::for_command(
            caller.account_id,
            caller.organization_id,
            OffsetDateTime::now_utc(),
        ),
        idem,
    )
    .await?;
    let written = Written::of(&done.result);
    let location = format!("/api/v1/persons/{}/card", written.id);
    let mut res = written.respond(StatusCode::CREATED);
    res.headers_mut().insert(
        header::LOCATION,
        location.parse().expect("a path is a header value"),
    );
    Ok(res)
}

/// One event of a history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEvent {
    event_id: String,
    event_type: String,
    schema_version: i32,
    version: i64,
    position: i64,
    #[serde(with = "time::serde::rfc3339")]
    recorded_at: OffsetDateTime,
    payload: serde_json::Value,
    /// `{"state": "none"}`, `{"state": "open", "data": {...}}` or `{"state": "erased"}`.
    #[schema(value_type = Object)]
    personal: Personal,
}

/// The events of a person's case, oldest first.
#[utoipa::path(
    get,
    path = "/api/v1/persons/{id}/history",
    tag = "persons",
    params(("id" = uuid::Uuid, Path, description = "The person (case) id")),
    responses(
        (status = 200, description = "The case's events; personal parts opened while the person's key exists", body = Vec<HistoryEvent>),
        (status = 401, description = "No valid bearer token", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such case in the caller's network", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn history(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ReadCard)?;
    let id = path_id(&id)?;
    let events = state
        .store
        .read_stream(caller.network_id, StreamId(id))
        .await?;
    if events.is_empty() || events[0].event.stream_kind != STREAM_KIND {
        return Err(ApiError::NotFound);
    }
    let version = events.last().map(|e| e.event.version).unwrap_or(0);
    let out: Vec<HistoryEvent> = events
        .into_iter()
        .map(|e| HistoryEvent {
            event_id: e.event.event_id.to_string(),
            event_type: e.event.event_type,
            schema_version: e.event.schema_version,
            version: e.event.version,
            position: e.event.cursor.position,
            recorded_at: e.event.recorded_at,
            payload: e.event.payload,
            personal: e.personal,
        })
        .collect();
    Ok((
        [(header::ETAG, format!("\"{version}\""))],
        Json(serde_json::json!({ "events": out })),
    )
        .into_response())
}
