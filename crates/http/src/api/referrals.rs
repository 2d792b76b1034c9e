//! `POST /api/v1/referrals` (refer a need to a provider's service) and
//! `POST /api/v1/referrals/{id}/{action}` (`acknowledge`, `accept`,
//! `decline`, `start`, `complete`, `fail` by the provider; `cancel`,
//! `redirect` by the desk). An action the lifecycle does not allow from
//! the referral's status answers `409`. A redirection appends to two
//! streams — the old referral is marked redirected, the new one is sent
//! with a link back — in one transaction, so the chain is never half made.

use super::intake::Problems;
use super::{ApiJson, OptionalJson, Written, idempotency, if_match, path_id};
use crate::access::{self, Act, allow};
use crate::auth::Caller;
use crate::command::{
    Answer, Begun, Expect, WriteRequest, answer_once, begin, execute, kept, load, prepare, written,
};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sportello_app::AppError;
use sportello_domain::aggregate::{CaseAggregate, OrganizationAggregate, ReferralAggregate};
use sportello_domain::calendar::WorkingCalendar;
use sportello_domain::referral::{
    self, DeclineReason, FailReason, NewReferral, Outcome, Referral, ReferralAction,
    ReferralCommand,
};
use sportello_domain::{
    Metadata, NeedId, NetworkId, OrganizationId, PersonId, ReferralId, ServiceId, StreamId,
};
use sportello_store::{AppendResult, EventStore, FirstAnswer, Idempotency, StoreError};
use time::OffsetDateTime;
use uuid::Uuid;

/// Body of `POST /api/v1/referrals`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReferralIn {
    /// The person whose need it is.
    pub person_id: Uuid,
    /// The need (recorded on the person's case).
    pub need_id: Uuid,
    /// The provider.
    pub organization_id: Uuid,
    /// The provider's service.
    pub service_id: Uuid,
    /// A note for the provider (personal: sealed).
    pub note: Option<String>,
}

/// The answer of sending (or redirecting) a referral.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReferralWritten {
    /// The new referral.
    pub referral_id: Uuid,
    /// The referral it replaces, for a redirection.
    pub redirected_from: Option<Uuid>,
    /// Acknowledge by (from the agreement, in working days).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub acknowledge_by: Option<OffsetDateTime>,
    /// First contact by.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub first_contact_by: Option<OffsetDateTime>,
    /// The new referral's version (also the `ETag`) and the position.
    #[serde(flatten)]
    pub written: Written,
}

/// Everything needed to send a referral, minted once per request.
pub struct SendRequest {
    /// The new referral's id.
    pub id: ReferralId,
    /// The person.
    pub person: PersonId,
    /// The need.
    pub need: NeedId,
    /// The provider.
    pub organization: OrganizationId,
    /// Its service.
    pub service: ServiceId,
    /// The referral it replaces.
    pub redirected_from: Option<ReferralId>,
    /// A note for the provider.
    pub note: Option<String>,
}

/// Plan a referral on the current case and provider (pure checks in
/// [`referral::plan`]); a person, need or provider that does not exist is
/// a field error of the body, not a missing resource.
pub async fn plan_send(
    store: &EventStore,
    network: NetworkId,
    calendar: &WorkingCalendar,
    req: &SendRequest,
    now: OffsetDateTime,
) -> Result<NewReferral, ApiError> {
    let unknown = |field: &str, what: &str| {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: format!("no such {what} in this network"),
        }])
    };
    let (case, _) = load::<CaseAggregate>(store, network, StreamId(req.person.0))
        .await
        .map_err(|e| match e {
            AppError::NotFound => unknown("person_id", "person"),
            e => e.into(),
        })?;
    let case = case.ok_or_else(|| unknown("person_id", "person"))?;
    let (org, _) = load::<OrganizationAggregate>(store, network, StreamId(req.organization.0))
        .await
        .map_err(|e| match e {
            AppError::NotFound => unknown("organization_id", "organisation"),
            e => e.into(),
        })?;
    let org = org.ok_or_else(|| unknown("organization_id", "organisation"))?;
    let mut planned = referral::plan(
        req.id,
        &case,
        req.need,
        &org,
        req.service,
        req.redirected_from,
        calendar,
        now,
    )?;
    planned.note.clone_from(&req.note);
    Ok(planned)
}

/// A referral id for this request: derived from the idempotency key when
/// there is one, so a retry names the same referral.
fn referral_id(idem: Option<&Idempotency>) -> ReferralId {
    ReferralId(super::minted_id(idem, "referral"))
}

/// The answer of a request that sent a referral (a send or a redirection),
/// from the referral it made: what a retry with the same key is answered
/// when its first answer was not kept (a record older than kept answers).
fn sent(result: &AppendResult, r: &Referral) -> Answer {
    let written = Written::of(result);
    let etag = format!("\"{}\"", written.version);
    let location = format!("/api/v1/referrals/{}", written.id);
    Answer::json(
        StatusCode::CREATED,
        &ReferralWritten {
            referral_id: written.id,
            redirected_from: r.redirected_from.map(|r| r.0),
            acknowledge_by: r.acknowledge_by,
            first_contact_by: r.first_contact_by,
            written,
        },
    )
    .header(header::ETAG, &etag)
    .header(header::LOCATION, &location)
}

/// The first answer of a request that sent a referral, carried out
/// already (see [`sent`] for a record without a kept answer).
async fn replayed(
    store: &EventStore,
    network: NetworkId,
    first: FirstAnswer,
) -> Result<Answer, ApiError> {
    let result = first.result;
    if let Some(answer) = kept(first)? {
        return Ok(answer);
    }
    let (r, _) = load::<ReferralAggregate>(store, network, result.stream_id).await?;
    Ok(sent(&result, &r.ok_or(ApiError::NotFound)?))
}

/// Refer a need to a provider's service.
#[utoipa::path(post, path = "/api/v1/referrals", tag = "referrals",
    request_body = ReferralIn,
    params(("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "A retry with the same key and body answers the first answer")),
    responses(
        (status = 201, description = "Sent; ETag is the referral's version", body = ReferralWritten),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The case is closed, the need resolved, or the provider cannot receive referrals", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: unknown person, need, organisation or service, or a service that does not answer the need", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn send(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body, raw): ApiJson<ReferralIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::DeskWork)?;
    let idem = idempotency(&headers, &caller, "POST /api/v1/referrals", &raw)?;
    let mut p = Problems::default();
    p.text("note", body.note.as_deref(), 2000);
    p.finish()?;
    let req = SendRequest {
        id: referral_id(idem.as_ref()),
        person: PersonId(body.person_id),
        need: NeedId(body.need_id),
        organization: OrganizationId(body.organization_id),
        service: ServiceId(body.service_id),
        redirected_from: None,
        note: body.note,
    };
    let now = state.clock().now();
    let metadata = Metadata::for_command(caller.account_id, caller.organization_id, now);
    let network = caller.network_id;
    let answer = answer_once(&state.store, network, idem.as_ref(), async {
        let planned = plan_send(
            &state.store,
            network,
            &state.settings.working_calendar(),
            &req,
            now,
        )
        .await?;
        let done = execute::<ReferralAggregate, _>(
            &state.store,
            WriteRequest {
                network,
                stream: StreamId(req.id.0),
                expect: Expect::New,
                commands: vec![ReferralCommand::Send(planned)],
                metadata,
                idempotency: idem,
                loaded: None,
                then: None,
                respond: &sent,
            },
        )
        .await?;
        Ok(done.answer)
    })
    .await?;
    Ok(answer.into_response())
}

/// Body of `POST /api/v1/referrals/{id}/{action}`; which fields apply
/// depends on the action.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionIn {
    /// `decline`: `no_capacity`, `not_eligible`, `missing_documents`,
    /// `outside_area`, `duplicate` or `other`; `fail`:
    /// `person_unreachable`, `person_withdrew`, `service_unavailable` or
    /// `other`.
    pub reason: Option<String>,
    /// `decline`, `fail`: the reason in words (required with `other`).
    pub text: Option<String>,
    /// `complete`: `need_met`, `partly_met` or `not_met`.
    pub outcome: Option<String>,
    /// `complete`, `redirect`: a note (personal: sealed).
    pub note: Option<String>,
    /// `redirect`: the provider to send the need on to.
    pub organization_id: Option<Uuid>,
    /// `redirect`: its service.
    pub service_id: Option<Uuid>,
}

fn parse_action(s: &str) -> Result<ReferralAction, ApiError> {
    ReferralAction::ALL
        .into_iter()
        .find(|a| a.as_str() == s)
        .ok_or(ApiError::NotFound)
}

/// A wire value of one of our enums, or a field error listing the values.
fn wire<T: serde::de::DeserializeOwned>(
    field: &str,
    value: Option<&str>,
    values: &str,
) -> Result<T, ApiError> {
    let bad = |message: String| {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message,
        }])
    };
    let v = value.ok_or_else(|| bad(format!("is required: one of {values}")))?;
    serde_json::from_value(serde_json::Value::String(v.to_owned()))
        .map_err(|_| bad(format!("must be one of {values}")))
}

/// The command an action with this body is; fields that do not apply to
/// the action are refused, so nothing is silently dropped.
fn command_of(action: ReferralAction, body: ActionIn) -> Result<ReferralCommand, ApiError> {
    let mut p = Problems::default();
    let allowed: &[&str] = match action {
        ReferralAction::Decline | ReferralAction::Fail => &["reason", "text"],
        ReferralAction::Complete => &["outcome", "note"],
        ReferralAction::Redirect => &["organization_id", "service_id", "note"],
        _ => &[],
    };
    let given = [
        ("reason", body.reason.is_some()),
        ("text", body.text.is_some()),
        ("outcome", body.outcome.is_some()),
        ("note", body.note.is_some()),
        ("organization_id", body.organization_id.is_some()),
        ("service_id", body.service_id.is_some()),
    ];
    for (field, present) in given {
        if present && !allowed.contains(&field) {
            p.add(field, format!("does not apply to {}", action.as_str()));
        }
    }
    p.text("text", body.text.as_deref(), 2000);
    p.text("note", body.note.as_deref(), 2000);
    p.finish()?;
    Ok(match action {
        ReferralAction::Acknowledge => ReferralCommand::Acknowledge,
        ReferralAction::Accept => ReferralCommand::Accept,
        ReferralAction::Start => ReferralCommand::Start,
        ReferralAction::Cancel => ReferralCommand::Cancel,
        ReferralAction::Decline => ReferralCommand::Decline {
            reason: wire::<DeclineReason>(
                "reason",
                body.reason.as_deref(),
                "no_capacity, not_eligible, missing_documents, outside_area, duplicate, other",
            )?,
            text: body.text,
        },
        ReferralAction::Fail => ReferralCommand::Fail {
            reason: wire::<FailReason>(
                "reason",
                body.reason.as_deref(),
                "person_unreachable, person_withdrew, service_unavailable, other",
            )?,
            text: body.text,
        },
        ReferralAction::Complete => ReferralCommand::Complete {
            outcome: wire::<Outcome>(
                "outcome",
                body.outcome.as_deref(),
                "need_met, partly_met, not_met",
            )?,
            note: body.note,
        },
        ReferralAction::Redirect => unreachable!("redirect is handled by redirect()"),
    })
}

/// Act on a referral.
#[utoipa::path(post, path = "/api/v1/referrals/{id}/{action}", tag = "referrals",
    params(
        ("id" = uuid::Uuid, Path, description = "The referral"),
        ("action" = String, Path, description = "acknowledge, accept, decline, start, complete, fail, cancel or redirect"),
        ("If-Match" = Option<String>, Header, description = "The referral's version this action expects"),
    ),
    request_body(content = ActionIn, description = "Only for decline, fail, complete and redirect"),
    responses(
        (status = 200, description = "Done; ETag is the referral's version", body = Written),
        (status = 201, description = "Redirected: the new referral", body = ReferralWritten),
        (status = 403, description = "Not this referral's provider (or not the desk, for cancel and redirect)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such referral or action", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The lifecycle does not allow this action from the referral's status", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an older version", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn act(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, action)): Path<(String, String)>,
    OptionalJson(body, raw): OptionalJson<ActionIn>,
) -> Result<Response, ApiError> {
    let id = ReferralId(path_id(&id)?);
    let action = parse_action(&action)?;
    let body = body.unwrap_or_default();
    let (current, version) =
        load::<ReferralAggregate>(&state.store, caller.network_id, StreamId(id.0)).await?;
    let current = current.ok_or(ApiError::NotFound)?;
    access::hide_from_other_partners(&caller, current.organization)?;
    match action {
        ReferralAction::Cancel | ReferralAction::Redirect => allow(&caller, Act::DeskWork)?,
        _ => allow(&caller, Act::WorkReferral(current.organization))?,
    }
    let route = format!("referral {id} {}", action.as_str());
    let idem = idempotency(&headers, &caller, &route, &raw)?;
    let expect = Expect::from_if_match(if_match(&headers)?);
    let now = state.clock().now();
    let metadata = Metadata::for_command(caller.account_id, caller.organization_id, now);
    let answer = answer_once(&state.store, caller.network_id, idem.as_ref(), async {
        if action == ReferralAction::Redirect {
            return redirect(&state, &caller, id, body, expect, metadata, idem).await;
        }
        let command = command_of(action, body)?;
        // Decided on the state just loaded for the access check (reloaded
        // only if another writer moved the referral on meanwhile).
        let done = execute::<ReferralAggregate, _>(
            &state.store,
            WriteRequest {
                network: caller.network_id,
                stream: StreamId(id.0),
                expect,
                commands: vec![command],
                metadata,
                idempotency: idem,
                loaded: Some((Some(current), version)),
                then: None,
                respond: &written,
            },
        )
        .await?;
        Ok(done.answer)
    })
    .await?;
    Ok(answer.into_response())
}

/// Redirect a declined or failed referral to another service: the old
/// stream gets `ReferralRedirected`, a new stream `ReferralSent` with
/// `redirected_from`, in one transaction.
async fn redirect(
    state: &AppState,
    caller: &Caller,
    id: ReferralId,
    body: ActionIn,
    expect: Expect,
    metadata: Metadata,
    idem: Option<Idempotency>,
) -> Result<Answer, ApiError> {
    let mut p = Problems::default();
    if body.organization_id.is_none() {
        p.add("organization_id", "is required to redirect");
    }
    if body.service_id.is_none() {
        p.add("service_id", "is required to redirect");
    }
    p.text("note", body.note.as_deref(), 2000);
    p.finish()?;
    let store = &state.store;
    let network = caller.network_id;
    let new_id = referral_id(idem.as_ref());
    let calendar = state.settings.working_calendar();
    let mut retries = 0;
    let mut attempt = 0;
    while attempt < 5 {
        attempt += 1;
        let (old, version) = load::<ReferralAggregate>(store, network, StreamId(id.0)).await?;
        let old = old.ok_or(ApiError::NotFound)?;
        if let Expect::Version(v) = expect
            && v != version
        {
            return Err(ApiError::PreconditionFailed(v.to_string()));
        }
        let to = SendRequest {
            id: new_id,
            person: old.person,
            need: old.need,
            organization: OrganizationId(body.organization_id.expect("checked")),
            service: ServiceId(body.service_id.expect("checked")),
            redirected_from: Some(id),
            note: body.note.clone(),
        };
        let (mark, _) = prepare::<ReferralAggregate>(
            network,
            StreamId(id.0),
            Some(old),
            version,
            ReferralCommand::Redirect {
                to: new_id,
                organization: to.organization,
                service: to.service,
            },
            metadata.clone(),
        )?;
        let planned = plan_send(store, network, &calendar, &to, metadata.occurred_at).await?;
        let (send, after) = prepare::<ReferralAggregate>(
            network,
            StreamId(new_id.0),
            None,
            0,
            ReferralCommand::Send(planned),
            metadata.clone(),
        )?;
        // The key is claimed first in the transaction: a retry racing the
        // first request waits for it here and is given its answer.
        let mut write = match begin(store, network, idem.as_ref(), StreamId(new_id.0)).await? {
            Begun::Answered(first) => return replayed(store, network, first).await,
            Begun::Write(w) => w,
        };
        let written = async {
            store.append_in(write.conn(), &mark).await?;
            store.append_in(write.conn(), &send).await
        }
        .await;
        match written {
            Ok(result) => {
                let answer = sent(&result, &after);
                write.commit(store, &result, &answer).await?;
                return Ok(answer);
            }
            // A transaction older than the stream's last append: not a
            // decision on a stale state, so not counted as an attempt.
            Err(StoreError::Retry) if retries < crate::command::RETRIES => {
                retries += 1;
                attempt -= 1;
                crate::command::back_off(retries).await;
            }
            Err(StoreError::Conflict { .. }) if expect == Expect::Latest => {}
            Err(StoreError::Conflict { .. }) if matches!(expect, Expect::Version(_)) => {
                return Err(ApiError::PreconditionFailed(version.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(ApiError::Conflict("the stream has moved on".into()))
}
