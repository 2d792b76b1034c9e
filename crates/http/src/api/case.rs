//! The desk's work on a case: `POST /api/v1/persons/{id}/visits`,
//! `.../needs`, `.../needs/{nid}/resolve`, `.../close` and `.../reopen`.
//! Each is one command on the case's stream through [`crate::command`],
//! conditional on `If-Match` when given.

use super::intake::Problems;
use super::{ApiJson, Written, idempotency, if_match, path_id};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::command::{Answer, Expect, WriteRequest, answer_once, execute};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sportello_domain::aggregate::CaseAggregate;
use sportello_domain::case::Channel;
use sportello_domain::case::lifecycle::{CaseCommand, DeskOutcome};
use sportello_domain::taxonomy::{NeedCode, Urgency};
use sportello_domain::{Metadata, NeedId, StreamId};

/// Carry out a command on the case `id` for `caller`, answering `status`
/// with what `respond` adds to the case's [`Written`] (a retry with the
/// same `Idempotency-Key`: the first answer).
#[expect(
    clippy::too_many_arguments,
    reason = "each is a separate input of one write"
)]
async fn run(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    id: &str,
    route: &str,
    raw: &[u8],
    command: CaseCommand,
    respond: &(dyn Fn(Written) -> Answer + Sync),
) -> Result<Response, ApiError> {
    allow(caller, Act::DeskWork)?;
    let id = path_id(id)?;
    let idem = idempotency(headers, caller, &format!("{route} {id}"), raw)?;
    let expect = Expect::from_if_match(if_match(headers)?);
    let answer = answer_once(&state.store, caller.network_id, idem.as_ref(), async {
        let done = execute::<CaseAggregate, _>(
            &state.store,
            WriteRequest {
                network: caller.network_id,
                stream: StreamId(id),
                expect,
                commands: vec![command],
                metadata: Metadata::for_command(
                    caller.account_id,
                    caller.organization_id,
                    state.clock().now(),
                ),
                idempotency: idem,
                loaded: None,
                then: None,
                respond: &|r, _| respond(Written::of(r)),
            },
        )
        .await?;
        Ok(done.answer)
    })
    .await?;
    Ok(answer.into_response())
}

fn check_note(p: &mut Problems, note: &Option<String>) {
    p.text("note", note.as_deref(), 4000);
}

/// Body of `POST /api/v1/persons/{id}/visits`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VisitIn {
    /// `desk`, `phone` or `outreach`.
    #[schema(value_type = String, example = "desk")]
    pub channel: Channel,
    /// A note about the contact (personal: sealed).
    pub note: Option<String>,
}

/// Record a contact with the person (open or closed case alike).
#[utoipa::path(post, path = "/api/v1/persons/{id}/visits", tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "The person")),
    request_body = VisitIn,
    responses(
        (status = 201, description = "Recorded; ETag is the case's version", body = Written),
        (status = 404, description = "No such case", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an older version", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn record_visit(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body, raw): ApiJson<VisitIn>,
) -> Result<Response, ApiError> {
    let mut p = Problems::default();
    check_note(&mut p, &body.note);
    p.finish()?;
    let command = CaseCommand::RecordVisit {
        channel: body.channel,
        note: body.note,
    };
    run(
        &state,
        &caller,
        &headers,
        &id,
        "visit",
        &raw,
        command,
        &|w| w.answer(StatusCode::CREATED),
    )
    .await
}

/// Body of `POST /api/v1/persons/{id}/needs`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NeedIn {
    /// A category code of the taxonomy, e.g. `health_ssn_registration`.
    pub code: String,
    /// `low`, `normal` (default), `high` or `immediate`.
    #[schema(value_type = Option<String>, example = "normal")]
    pub urgency: Option<Urgency>,
    /// A note (personal: sealed).
    pub note: Option<String>,
}

/// The answer of recording a need.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NeedWritten {
    /// The new need.
    pub need_id: uuid::Uuid,
    /// The case's version and the position.
    #[serde(flatten)]
    pub written: Written,
}

/// Record a screened need.
#[utoipa::path(post, path = "/api/v1/persons/{id}/needs", tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "The person")),
    request_body = NeedIn,
    responses(
        (status = 201, description = "Recorded; ETag is the case's version", body = NeedWritten),
        (status = 404, description = "No such case", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The case is closed", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an older version", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, e.g. an unknown category", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn record_need(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body, raw): ApiJson<NeedIn>,
) -> Result<Response, ApiError> {
    let code = NeedCode::parse(&body.code).map_err(|e| {
        ApiError::Validation(vec![FieldError {
            field: "code".into(),
            message: e.to_string(),
        }])
    })?;
    let mut p = Problems::default();
    check_note(&mut p, &body.note);
    p.finish()?;
    // A retry with the same key must name the same need: derive its id
    // from the key when there is one.
    let person = path_id(&id)?;
    let idem = idempotency(&headers, &caller, &format!("need {person}"), &raw)?;
    let need = NeedId(super::minted_id(idem.as_ref(), "need"));
    let command = CaseCommand::RecordNeed {
        need,
        code,
        urgency: body.urgency.unwrap_or_default(),
        note: body.note,
    };
    run(
        &state,
        &caller,
        &headers,
        &id,
        "need",
        &raw,
        command,
        &|written| {
            let etag = format!("\"{}\"", written.version);
            Answer::json(
                StatusCode::CREATED,
                &NeedWritten {
                    need_id: need.0,
                    written,
                },
            )
            .header(axum::http::header::ETAG, &etag)
        },
    )
    .await
}

/// Body of `POST /api/v1/persons/{id}/needs/{nid}/resolve`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolveIn {
    /// `information_given` or `orientation`.
    #[schema(value_type = String, example = "information_given")]
    pub outcome: DeskOutcome,
    /// A note (personal: sealed).
    pub note: Option<String>,
}

/// The desk answered a need itself.
#[utoipa::path(post, path = "/api/v1/persons/{id}/needs/{nid}/resolve", tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "The person"), ("nid" = uuid::Uuid, Path, description = "The need")),
    request_body = ResolveIn,
    responses(
        (status = 200, description = "Resolved; ETag is the case's version", body = Written),
        (status = 404, description = "No such case or need", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already resolved, or the case is closed", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an older version", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn resolve_need(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, nid)): Path<(String, String)>,
    ApiJson(body, raw): ApiJson<ResolveIn>,
) -> Result<Response, ApiError> {
    let need = NeedId(path_id(&nid)?);
    let mut p = Problems::default();
    check_note(&mut p, &body.note);
    p.finish()?;
    let command = CaseCommand::ResolveNeed {
        need,
        outcome: body.outcome,
        note: body.note,
    };
    let route = format!("resolve {need}");
    run(
        &state,
        &caller,
        &headers,
        &id,
        &route,
        &raw,
        command,
        &|w| w.answer(StatusCode::OK),
    )
    .await
}

/// Close the case.
#[utoipa::path(post, path = "/api/v1/persons/{id}/close", tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "The person")),
    responses(
        (status = 200, description = "Closed; ETag is the case's version", body = Written),
        (status = 404, description = "No such case", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already closed", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn close(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run(
        &state,
        &caller,
        &headers,
        &id,
        "close",
        b"",
        CaseCommand::Close,
        &|w| w.answer(StatusCode::OK),
    )
    .await
}

/// Reopen a closed case.
#[utoipa::path(post, path = "/api/v1/persons/{id}/reopen", tag = "cases",
    params(("id" = uuid::Uuid, Path, description = "The person")),
    responses(
        (status = 200, description = "Reopened; ETag is the case's version", body = Written),
        (status = 404, description = "No such case", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The case is open", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn reopen(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    run(
        &state,
        &caller,
        &headers,
        &id,
        "reopen",
        b"",
        CaseCommand::Reopen,
        &|w| w.answer(StatusCode::OK),
    )
    .await
}
