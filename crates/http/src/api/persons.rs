//! `POST /api/v1/persons` (take a person in charge) and
//! `GET /api/v1/persons/{id}/history` (the case's events, personal parts
//! opened while the person's key exists).

use super::ApiJson;
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sportello_domain::case::lifecycle::{self, CaseCommand};
use sportello_domain::case::{Channel, PersonIdentity, PersonName, STREAM_KIND};
use sportello_domain::{DomainEvent, Metadata, PersonId, StreamId};
use sportello_store::{AppendRequest, ExpectedVersion, Idempotency, NewEvent, Personal};
use time::OffsetDateTime;
use uuid::Uuid;

/// Body of `POST /api/v1/persons`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TakeInCharge {
    /// Names as in documents and as used; at least one.
    pub names: Vec<NameIn>,
    /// Birth date as known: `YYYY`, `YYYY-MM` or `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// How the person came: `desk`, `phone` or `outreach`.
    #[schema(value_type = String, example = "desk")]
    pub channel: Channel,
}

/// One name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NameIn {
    /// `as_in_document` or `as_used`.
    pub kind: String,
    /// The name.
    pub text: String,
}

/// Answer of a write.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WriteAnswer {
    /// The person (and case stream) id.
    #[schema(value_type = uuid::Uuid)]
    pub person_id: PersonId,
    /// The case stream's version (also the `ETag`).
    pub version: i64,
    /// Global position of the last event (for `?min_position=`).
    pub position: i64,
}

fn parse_birth_date(s: &str) -> Result<(), &'static str> {
    let parts: Vec<&str> = s.split('-').collect();
    let year: i32 = parts[0].parse().map_err(|_| "year must be digits")?;
    if parts[0].len() != 4 || !(1900..=2100).contains(&year) {
        return Err("year must be four digits between 1900 and 2100");
    }
    let month = match parts.get(1) {
        None => return Ok(()),
        Some(m) => m.parse::<u8>().map_err(|_| "month must be digits")?,
    };
    let month = time::Month::try_from(month).map_err(|_| "month must be 01 to 12")?;
    if let Some(d) = parts.get(2) {
        let day: u8 = d.parse().map_err(|_| "day must be digits")?;
        time::Date::from_calendar_date(year, month, day).map_err(|_| "no such day")?;
    }
    if parts.len() > 3 {
        return Err("use YYYY, YYYY-MM or YYYY-MM-DD");
    }
    Ok(())
}

impl TakeInCharge {
    fn validate(self) -> Result<PersonIdentity, ApiError> {
        let mut errors = Vec::new();
        if self.names.is_empty() {
            errors.push(FieldError {
                field: "names".into(),
                message: "at least one name is required".into(),
            });
        }
        for (i, n) in self.names.iter().enumerate() {
            if !matches!(n.kind.as_str(), "as_in_document" | "as_used") {
                errors.push(FieldError {
                    field: format!("names[{i}].kind"),
                    message: "must be as_in_document or as_used".into(),
                });
            }
            if n.text.trim().is_empty() || n.text.len() > 200 {
                errors.push(FieldError {
                    field: format!("names[{i}].text"),
                    message: "must be 1 to 200 characters".into(),
                });
            }
        }
        if let Some(b) = &self.birth_date
            && let Err(message) = parse_birth_date(b)
        {
            errors.push(FieldError {
                field: "birth_date".into(),
                message: message.into(),
            });
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        Ok(PersonIdentity {
            names: self
                .names
                .into_iter()
                .map(|n| PersonName {
                    kind: n.kind,
                    text: n.text.trim().to_owned(),
                })
                .collect(),
            birth_date: self.birth_date,
        })
    }
}

fn idempotency(
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
) -> Result<Option<Idempotency>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError {
                field: "Idempotency-Key".into(),
                message: "must be a UUID".into(),
            }])
        })?;
    let mut request = route.as_bytes().to_vec();
    request.push(0);
    request.extend_from_slice(body);
    Ok(Some(Idempotency::for_request(key, &request)))
}

/// Take a person in charge: opens their case.
#[utoipa::path(
    post,
    path = "/api/v1/persons",
    tag = "persons",
    request_body = TakeInCharge,
    params(("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "A retry with the same key and body answers the first answer")),
    responses(
        (status = 201, description = "Taken in charge; ETag is the case's version", body = WriteAnswer),
        (status = 400, description = "Malformed JSON", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
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
    let idem = idempotency(&headers, "POST /api/v1/persons", &raw)?;
    let channel = body.channel;
    let identity = body.validate()?;
    let person_id = PersonId::new();
    let events = lifecycle::decide(
        None,
        CaseCommand::TakeInCharge {
            person: person_id,
            desk: caller.organization_id,
            channel,
            identity,
        },
    )?;
    let case = events
        .iter()
        .fold(None, lifecycle::evolve)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("taking in charge opened no case")))?;
    let events: Vec<NewEvent> = events
        .into_iter()
        .map(|event| NewEvent::from(lifecycle::Stored { event, case: &case }.into_parts()))
        .collect();
    let req = AppendRequest {
        network: caller.network_id,
        stream_id: StreamId(person_id.0),
        stream_kind: STREAM_KIND,
        expected: ExpectedVersion::NoStream,
        events,
        metadata: Metadata::for_command(
            caller.account_id,
            caller.organization_id,
            OffsetDateTime::now_utc(),
        ),
        idempotency: idem,
    };
    let result = state.store.append(&req).await?;
    let answer = WriteAnswer {
        person_id: PersonId(result.stream_id.0),
        version: result.last_version,
        position: result.position,
    };
    Ok((
        StatusCode::CREATED,
        [
            (header::ETAG, format!("\"{}\"", result.last_version)),
            (
                header::LOCATION,
                format!("/api/v1/persons/{}/card", answer.person_id),
            ),
        ],
        Json(answer),
    )
        .into_response())
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
    let id: Uuid = id.parse().map_err(|_| ApiError::NotFound)?;
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
