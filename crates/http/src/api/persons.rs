//! `POST /api/v1/persons` (take a person in charge; the body is in
//! [`super::intake`]) and
//! `GET /api/v1/persons/{id}/history` (the case's events, personal parts
//! opened while the person's key exists).

use super::consents::{check_scope, today};
use super::intake::TakeInCharge;
use super::{ApiJson, Written, idempotency, path_id};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::command::{Answer, Begun, answer_once, begin, kept, prepare_all};
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sportello_domain::aggregate::CaseAggregate;
use sportello_domain::case::lifecycle::CaseCommand;
use sportello_domain::case::{PersonTakenInCharge, STREAM_KIND, search};
use sportello_domain::{ConsentId, Metadata, PersonId, StreamId};
use sportello_store::person_index::likely_duplicate;
use sportello_store::{AppendResult, Personal, StoreError};
use time::OffsetDateTime;

/// Take a person in charge: opens their case.
#[utoipa::path(
    post,
    path = "/api/v1/persons",
    tag = "persons",
    request_body = TakeInCharge,
    params(("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "A retry with the same key and body answers the first answer")),
    responses(
        (status = 201, description = "Taken in charge, with any likely duplicates (never merged); ETag is the case's version", body = TakenInCharge),
        (status = 400, description = "Malformed JSON", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 401, description = "No valid bearer token", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 415, description = "The body is not JSON (Content-Type: application/json)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or an Idempotency-Key reused with another body", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn take_in_charge(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(mut body, raw): ApiJson<TakeInCharge>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::DeskWork)?;
    let idem = idempotency(&headers, &caller, "POST /api/v1/persons", &raw)?;
    let now = state.clock().now();
    let consent_in = body.consent.take();
    let (channel, identity) = body.validate()?;
    // A retry with the same key names the same consent.
    let consent_id = ConsentId(super::minted_id(idem.as_ref(), "consent"));
    let consent = match consent_in {
        Some(c) => Some(c.terms(consent_id, caller.account_id, today(now), "consent.")?),
        None => None,
    };
    let store = &state.store;
    let network = caller.network_id;
    if let Some(c) = &consent {
        check_scope(store, network, &c.organizations, "consent.organizations").await?;
    }
    let terms = search::terms(&identity);
    let answer = answer_once(store, network, idem.as_ref(), async {
        let found = store.find_duplicates(network, &terms, 20).await?;
        // The answer, from what was appended: kept with the key, so a
        // retry gets these duplicates even once more people are in charge.
        let respond = |result: &AppendResult| {
            let duplicates: Vec<DuplicateCandidate> = found
                .iter()
                .filter(|f| f.person.0 != result.stream_id.0 && likely_duplicate(f, &terms))
                .map(|f| DuplicateCandidate {
                    person_id: f.person.0,
                    same_document: f.document,
                    name_words_in_common: f.name_words,
                    same_birth_year: f.birth_year,
                })
                .collect();
            let written = Written::of(result);
            let etag = format!("\"{}\"", written.version);
            let location = format!("/api/v1/persons/{}/card", written.id);
            Answer::json(
                StatusCode::CREATED,
                &TakenInCharge {
                    person_id: written.id,
                    consent_id: consent.as_ref().map(|c| c.consent_id.0),
                    written,
                    duplicates,
                },
            )
            .header(header::ETAG, &etag)
            .header(header::LOCATION, &location)
            // Kept sealed under the person's key: the likely duplicates
            // tie them to others, and erasing them must undo that too.
            .about(Some(PersonId(result.stream_id.0)))
        };
        let person = PersonId::new();
        // The opening and the consent given at intake: one write.
        let mut commands = vec![CaseCommand::TakeInCharge(PersonTakenInCharge {
            person_id: person,
            desk: caller.organization_id,
            channel,
            operator: Some(caller.account_id),
            identity,
        })];
        commands.extend(consent.iter().cloned().map(CaseCommand::RecordConsent));
        let (req, _) = prepare_all::<CaseAggregate>(
            network,
            StreamId(person.0),
            None,
            0,
            commands,
            Metadata::for_command(caller.account_id, caller.organization_id, now),
        )?;
        // The events, the person's index rows and the answer in one
        // transaction.
        let mut attempts = 0;
        loop {
            let mut write = match begin(store, network, idem.as_ref(), StreamId(person.0)).await? {
                Begun::Answered(first) => {
                    let result = first.result;
                    return Ok(match kept(first)? {
                        Some(answer) => answer,
                        None => respond(&result),
                    });
                }
                Begun::Write(w) => w,
            };
            match store.append_in(write.conn(), &req).await {
                Ok(result) => {
                    store
                        .index_person_in(write.conn(), network, person, &terms)
                        .await?;
                    let answer = respond(&result);
                    write.commit(store, &result, &answer).await?;
                    return Ok(answer);
                }
                Err(StoreError::Retry) if attempts < crate::command::RETRIES => {
                    attempts += 1;
                    crate::command::back_off(attempts).await;
                }
                Err(e) => return Err(e.into()),
            }
        }
    })
    .await?;
    Ok(answer.into_response())
}

/// A person already in charge who may be the same person: shown to the
/// operator, never merged.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DuplicateCandidate {
    /// The other person.
    pub person_id: uuid::Uuid,
    /// A document number in common.
    pub same_document: bool,
    /// How many name words the two have in common.
    pub name_words_in_common: usize,
    /// The same birth year.
    pub same_birth_year: bool,
}

/// The answer of taking a person in charge.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TakenInCharge {
    /// The person (and case) id.
    pub person_id: uuid::Uuid,
    /// The consent recorded with the opening, if one was given.
    pub consent_id: Option<uuid::Uuid>,
    /// The new case: `id` is the person too.
    #[serde(flatten)]
    pub written: Written,
    /// Likely duplicates (similar names and birth year, or the same
    /// document): the case is opened anyway; the operator decides.
    pub duplicates: Vec<DuplicateCandidate>,
}

/// Body of the search: in the body, never in the URL (names and document
/// numbers would end up in proxies' and browsers' logs and histories).
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchIn {
    /// Name words, a birth year, a document number (any order).
    pub q: String,
}

/// One person found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FoundPerson {
    /// The person.
    pub person_id: uuid::Uuid,
    /// How many words of the query matched their names.
    pub name_words: usize,
    /// Their birth year matched.
    pub birth_year: bool,
    /// A document number matched.
    pub document: bool,
    /// Their names and birth date (erased: absent).
    #[schema(value_type = Object)]
    pub identity: Personal,
}

/// Search people by name words, birth year or document number.
#[utoipa::path(post, path = "/api/v1/persons/search", tag = "persons",
    request_body = SearchIn,
    responses(
        (status = 200, description = "`items`: people found, best first (at most 20)", body = Object),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "An empty query", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn search(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(q, _): ApiJson<SearchIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::DeskWork)?;
    let terms = search::query_terms(&q.q);
    if terms.is_empty() {
        return Err(ApiError::Validation(vec![crate::error::FieldError {
            field: "q".into(),
            message: "give at least one word of two characters".into(),
        }]));
    }
    // A birth year narrows a search by name; it does not find on its own
    // unless it is all the query gives.
    let words_given =
        q.q.split_whitespace()
            .any(|w| !w.bytes().all(|b| b.is_ascii_digit()));
    let found: Vec<_> = state
        .store
        .find_people(caller.network_id, &terms, 50)
        .await?
        .into_iter()
        .filter(|f| !words_given || f.name_words > 0 || f.document)
        .take(20)
        .collect();
    let streams: Vec<StreamId> = found.iter().map(|f| StreamId(f.person.0)).collect();
    let openings: Vec<_> = state
        .store
        .load_streams(caller.network_id, &streams)
        .await?
        .into_iter()
        .filter(|e| e.event_type == PersonTakenInCharge::TYPE)
        .collect();
    let opened = state.store.open(openings).await?;
    let items: Vec<FoundPerson> = found
        .into_iter()
        .map(|f| FoundPerson {
            identity: opened
                .iter()
                .find(|e| e.event.stream_id.0 == f.person.0)
                .map(|e| match &e.personal {
                    Personal::Open(v) => Personal::Open(serde_json::json!({
                        "names": v.get("names"),
                        "birth_date": v.get("birth_date"),
                    })),
                    other => other.clone(),
                })
                .unwrap_or(Personal::None),
            person_id: f.person.0,
            name_words: f.name_words,
            birth_year: f.birth_year,
            document: f.document,
        })
        .collect();
    let shown: Vec<uuid::Uuid> = items.iter().map(|i| i.person_id).collect();
    crate::audit::record_many(state.pool(), &caller, &shown, crate::audit::Read::Search).await?;
    Ok(Json(serde_json::json!({ "items": items })).into_response())
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

/// The events of the case of `person`, oldest first, personal parts opened
/// (`None`: no such case in `network`).
pub async fn case_history(
    state: &AppState,
    network: sportello_domain::NetworkId,
    person: uuid::Uuid,
) -> Result<Option<Vec<HistoryEvent>>, ApiError> {
    let events = state.store.read_stream(network, StreamId(person)).await?;
    if events.is_empty() || events[0].event.stream_kind != STREAM_KIND {
        return Ok(None);
    }
    Ok(Some(
        events
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
            .collect(),
    ))
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
    allow(&caller, Act::ReadHistory)?;
    let id = path_id(&id)?;
    let out = case_history(&state, caller.network_id, id)
        .await?
        .ok_or(ApiError::NotFound)?;
    crate::audit::record(state.pool(), &caller, id, crate::audit::Read::History).await?;
    let version = out.last().map(|e| e.version).unwrap_or(0);
    Ok((
        [(header::ETAG, format!("\"{version}\""))],
        Json(serde_json::json!({ "events": out })),
    )
        .into_response())
}
