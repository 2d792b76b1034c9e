//! The directory of the network: `GET/POST /api/v1/organizations` and
//! `GET/PATCH /api/v1/organizations/{id}` — providers with their services
//! (need categories, languages, hours), onboarding status and agreement.
//! Writes are organisation commands through [`crate::command`]; a `PATCH`
//! is several commands decided in order and appended as one write, so it
//! applies whole or not at all.

use super::{ApiJson, ApiQuery, MinPosition, Page, Written, idempotency, if_match, path_id};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::command::{Expect, WriteRequest, answer_once, execute, load, written};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sportello_domain::aggregate::OrganizationAggregate;
use sportello_domain::ids::AgreementId;
use sportello_domain::organization::{
    AgreementSignedPayload, CardField, Contacts, OnboardingStatus, OrganizationCommand,
    OrganizationKind, Ownership, Service, ServicePayload, WeeklyHoursPayload, transition,
};
use sportello_domain::taxonomy::NeedCode;
use sportello_domain::{DecodeError, Metadata, OrganizationId, ServiceId, StreamId};
use sportello_projections::OrganizationRow;
use uuid::Uuid;

/// A service as the API takes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceIn {
    /// Its id, to update an existing service; new services get one.
    pub service_id: Option<Uuid>,
    /// Its name.
    pub name: String,
    /// The need categories it answers (taxonomy codes).
    #[schema(value_type = Vec<String>)]
    pub needs: Vec<NeedCode>,
    /// Languages it is given in (ISO 639-1).
    #[serde(default)]
    pub languages: Vec<String>,
    /// Whether interpretation is offered.
    #[serde(default)]
    pub interpretation: bool,
    /// Who may use it, in words.
    #[serde(default)]
    pub eligibility: String,
    /// Where it is given.
    #[serde(default)]
    pub location: String,
    /// Weekly hours: `{"monday": [{"open": "08:30", "close": "12:00"}], ...}`;
    /// a day left out is closed.
    #[schema(value_type = Object)]
    pub hours: WeeklyHoursPayload,
    /// Dates it is closed, `YYYY-MM-DD`.
    #[serde(default)]
    pub closed_on: Vec<String>,
}

/// An agreement (protocollo d'intesa) as the API takes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgreementIn {
    /// Signed on, `YYYY-MM-DD`.
    pub signed_on: String,
    /// First day it applies.
    pub valid_from: String,
    /// Last day it applies (included).
    pub valid_to: String,
    /// Working days to acknowledge a referral.
    pub acknowledge_within: u8,
    /// Working days to first contact the person.
    pub first_contact_within: u8,
    /// The card fields the provider may see.
    #[schema(value_type = Vec<String>)]
    pub visible_fields: Vec<CardField>,
}

/// Body of `POST /api/v1/organizations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationIn {
    /// Its name.
    pub name: String,
    /// `desk`, `questura`, `prefettura`, `health_authority`, `job_centre`,
    /// `school_office`, `comune_office`, `patronato`, `trade_union`,
    /// `non_profit` or `other`.
    #[schema(value_type = String)]
    pub kind: OrganizationKind,
    /// `public` or `private`.
    #[schema(value_type = String)]
    pub ownership: Ownership,
    /// Office phone, email, address.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub contacts: Contacts,
    /// Onboarding status to bring it to (`invited` if absent).
    #[schema(value_type = Option<String>)]
    pub status: Option<OnboardingStatus>,
    /// Its services.
    #[serde(default)]
    pub services: Vec<ServiceIn>,
    /// Its agreement.
    pub agreement: Option<AgreementIn>,
}

/// Body of `PATCH /api/v1/organizations/{id}`: every field optional;
/// the changes apply in the order of the fields below, all or none.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrganizationPatch {
    /// New name.
    pub name: Option<String>,
    /// New kind.
    #[schema(value_type = Option<String>)]
    pub kind: Option<OrganizationKind>,
    /// New ownership.
    #[schema(value_type = Option<String>)]
    pub ownership: Option<Ownership>,
    /// New office contacts.
    #[schema(value_type = Option<Object>)]
    pub contacts: Option<Contacts>,
    /// Services to add, or (with `service_id`) to replace.
    #[serde(default)]
    pub services: Vec<ServiceIn>,
    /// Services to remove.
    #[serde(default)]
    pub remove_services: Vec<Uuid>,
    /// A new agreement (replaces the current one).
    pub agreement: Option<AgreementIn>,
    /// End the current agreement on this day, `YYYY-MM-DD`.
    pub end_agreement_on: Option<String>,
    /// Onboarding status to bring it to.
    #[schema(value_type = Option<String>)]
    pub status: Option<OnboardingStatus>,
}

fn field_error(field: String, e: DecodeError) -> ApiError {
    let message = match e {
        DecodeError::Malformed { reason, .. } => reason,
        other => other.to_string(),
    };
    ApiError::Validation(vec![FieldError { field, message }])
}

fn service(org: OrganizationId, i: usize, s: ServiceIn) -> Result<Service, ApiError> {
    ServicePayload {
        organization_id: org,
        service_id: s.service_id.map_or_else(ServiceId::new, ServiceId),
        name: s.name,
        needs: s.needs,
        languages: s.languages,
        interpretation: s.interpretation,
        eligibility: s.eligibility,
        location: s.location,
        hours: s.hours,
        closed_on: s.closed_on,
    }
    .to_service()
    .map_err(|e| field_error(format!("services[{i}]"), e))
}

fn agreement(org: OrganizationId, a: AgreementIn) -> Result<OrganizationCommand, ApiError> {
    let agreement = AgreementSignedPayload {
        organization_id: org,
        agreement_id: AgreementId::new(),
        replaces: None,
        signed_on: a.signed_on,
        valid_from: a.valid_from,
        valid_to: a.valid_to,
        acknowledge_within: a.acknowledge_within,
        first_contact_within: a.first_contact_within,
        visible_fields: a.visible_fields,
    }
    .to_agreement()
    .map_err(|e| field_error("agreement".into(), e))?;
    Ok(OrganizationCommand::SignAgreement(agreement))
}

/// The onboarding steps from `from` to `to` (none if already there; at
/// most two steps, e.g. invited → onboarding → active).
fn onboarding_steps(
    from: OnboardingStatus,
    to: OnboardingStatus,
) -> Result<Vec<OrganizationCommand>, ApiError> {
    if from == to {
        return Ok(vec![]);
    }
    if transition(from, to) {
        return Ok(vec![OrganizationCommand::ChangeOnboarding(to)]);
    }
    OnboardingStatus::ALL
        .into_iter()
        .find(|via| transition(from, *via) && transition(*via, to))
        .map(|via| {
            vec![
                OrganizationCommand::ChangeOnboarding(via),
                OrganizationCommand::ChangeOnboarding(to),
            ]
        })
        .ok_or_else(|| {
            ApiError::Conflict(format!(
                "cannot go from {} to {}",
                from.as_str(),
                to.as_str()
            ))
        })
}

fn parse_date(field: &str, s: &str) -> Result<time::Date, ApiError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s, &fmt).map_err(|_| {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: "must be a date YYYY-MM-DD".into(),
        }])
    })
}

fn metadata(state: &AppState, caller: &Caller) -> Metadata {
    Metadata::for_command(
        caller.account_id,
        caller.organization_id,
        state.clock().now(),
    )
}

/// Register an organisation, with its services and agreement if given.
#[utoipa::path(post, path = "/api/v1/organizations", tag = "organizations",
    request_body = OrganizationIn,
    responses(
        (status = 201, description = "Registered; ETag is its version", body = Written),
        (status = 403, description = "Not allowed to manage the network", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body, raw): ApiJson<OrganizationIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ManageNetwork)?;
    let idem = idempotency(&headers, &caller, "POST /api/v1/organizations", &raw)?;
    let id = OrganizationId::new();
    let mut commands = vec![OrganizationCommand::Register {
        id,
        name: body.name,
        kind: body.kind,
        ownership: body.ownership,
        contacts: body.contacts,
    }];
    for (i, s) in body.services.into_iter().enumerate() {
        commands.push(OrganizationCommand::AddService(service(id, i, s)?));
    }
    if let Some(a) = body.agreement {
        commands.push(agreement(id, a)?);
    }
    if let Some(to) = body.status {
        commands.extend(onboarding_steps(OnboardingStatus::Invited, to)?);
    }
    let done = execute::<OrganizationAggregate, _>(
        &state.store,
        WriteRequest {
            network: caller.network_id,
            stream: StreamId(id.0),
            expect: Expect::New,
            commands,
            metadata: metadata(&state, &caller),
            idempotency: idem,
            loaded: None,
            then: None,
            respond: &|r, _| Written::of(r).created("/api/v1/organizations"),
        },
    )
    .await?;
    Ok(done.answer.into_response())
}

/// Change an organisation: details, services, agreement, onboarding.
#[utoipa::path(patch, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(("id" = uuid::Uuid, Path, description = "The organisation"),
           ("If-Match" = Option<String>, Header, description = "The version this change expects")),
    request_body = OrganizationPatch,
    responses(
        (status = 200, description = "Changed; ETag is its version", body = Written),
        (status = 403, description = "Not allowed to manage the network", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such organisation", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "An onboarding change the lifecycle does not allow", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an older version", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or nothing to change", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body, raw): ApiJson<OrganizationPatch>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ManageNetwork)?;
    let id = OrganizationId(path_id(&id)?);
    let idem = idempotency(&headers, &caller, &format!("PATCH organization {id}"), &raw)?;
    let expect = Expect::from_if_match(if_match(&headers)?);
    // The changes are worked out from the organisation as it is: a retry
    // is given its first answer before that (the first may have made
    // them already).
    let answer = answer_once(&state.store, caller.network_id, idem.as_ref(), async {
        let (current, version) =
            load::<OrganizationAggregate>(&state.store, caller.network_id, StreamId(id.0)).await?;
        let current = current.ok_or(ApiError::NotFound)?;
        let mut commands = Vec::new();
        if body.name.is_some()
            || body.kind.is_some()
            || body.ownership.is_some()
            || body.contacts.is_some()
        {
            commands.push(OrganizationCommand::UpdateDetails {
                name: body.name.unwrap_or_else(|| current.name.clone()),
                kind: body.kind.unwrap_or(current.kind),
                ownership: body.ownership.unwrap_or(current.ownership),
                contacts: body.contacts.unwrap_or_else(|| current.contacts.clone()),
            });
        }
        for (i, s) in body.services.into_iter().enumerate() {
            let existing = s
                .service_id
                .is_some_and(|sid| current.services.contains_key(&ServiceId(sid)));
            let s = service(id, i, s)?;
            commands.push(if existing {
                OrganizationCommand::UpdateService(s)
            } else {
                OrganizationCommand::AddService(s)
            });
        }
        for (i, sid) in body.remove_services.into_iter().enumerate() {
            if !current.services.contains_key(&ServiceId(sid)) {
                return Err(ApiError::Validation(vec![FieldError {
                    field: format!("remove_services[{i}]"),
                    message: "no such service of this organisation".into(),
                }]));
            }
            commands.push(OrganizationCommand::RemoveService(ServiceId(sid)));
        }
        if let Some(a) = body.agreement {
            commands.push(agreement(id, a)?);
        }
        if let Some(on) = &body.end_agreement_on {
            commands.push(OrganizationCommand::EndAgreement {
                on: parse_date("end_agreement_on", on)?,
            });
        }
        if let Some(to) = body.status {
            commands.extend(onboarding_steps(current.status, to)?);
        }
        if commands.is_empty() {
            return Err(ApiError::Validation(vec![FieldError {
                field: String::new(),
                message: "nothing to change".into(),
            }]));
        }
        let done = execute::<OrganizationAggregate, _>(
            &state.store,
            WriteRequest {
                network: caller.network_id,
                stream: StreamId(id.0),
                expect,
                commands,
                metadata: metadata(&state, &caller),
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

/// Query of the directory.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Read your writes: wait until this global position is applied.
    pub min_position: Option<i64>,
    /// Only organisations with this onboarding status.
    pub status: Option<String>,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
    /// Page size, 1 to 500 (default 100).
    pub limit: Option<i64>,
}

/// The rows of the caller's network, by id, after `page`.
pub async fn rows(
    state: &AppState,
    caller: &Caller,
    status: Option<&str>,
    page: Page,
) -> Result<Vec<OrganizationRow>, ApiError> {
    let docs: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT to_jsonb(o) FROM organizations o
          WHERE network_id = $1 AND organization_id > $2 AND ($3::text IS NULL OR status = $3)
          ORDER BY organization_id LIMIT $4",
    )
    .bind(caller.network_id.0)
    .bind(page.after)
    .bind(status)
    .bind(page.limit)
    .fetch_all(state.pool())
    .await?;
    docs.into_iter()
        .map(|d| serde_json::from_value(d).map_err(|e| ApiError::Internal(e.into())))
        .collect()
}

/// The network's organisations, with services and agreements.
#[utoipa::path(get, path = "/api/v1/organizations", tag = "organizations",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of `items` and a `next_cursor`", body = Object),
        (status = 422, description = "Invalid query parameters", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ReadDirectory)?;
    let page = Page::parse(q.cursor.as_deref(), q.limit)?;
    if let Some(s) = &q.status
        && !OnboardingStatus::ALL.iter().any(|x| x.as_str() == s)
    {
        return Err(ApiError::Validation(vec![FieldError {
            field: "status".into(),
            message: "must be invited, onboarding, active or suspended".into(),
        }]));
    }
    let mut headers = HeaderMap::new();
    MinPosition {
        min_position: q.min_position,
    }
    .wait(&state, "organizations", &mut headers)
    .await?;
    let items = rows(&state, &caller, q.status.as_deref(), page).await?;
    let next = page.next(items.len(), items.last().map(|o| o.organization_id));
    Ok((
        headers,
        Json(serde_json::json!({ "items": items, "next_cursor": next })),
    )
        .into_response())
}

/// One organisation of the directory.
#[utoipa::path(get, path = "/api/v1/organizations/{id}", tag = "organizations",
    params(("id" = uuid::Uuid, Path, description = "The organisation"), MinPosition),
    responses(
        (status = 200, description = "The organisation; ETag is its version", body = Object),
        (status = 404, description = "No such organisation", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<MinPosition>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ReadDirectory)?;
    let id = path_id(&id)?;
    let mut headers = HeaderMap::new();
    q.wait(&state, "organizations", &mut headers).await?;
    let doc: Option<serde_json::Value> = sqlx::query_scalar(
        "SELECT to_jsonb(o) FROM organizations o WHERE network_id = $1 AND organization_id = $2",
    )
    .bind(caller.network_id.0)
    .bind(id)
    .fetch_optional(state.pool())
    .await?;
    let row: OrganizationRow = serde_json::from_value(doc.ok_or(ApiError::NotFound)?)
        .map_err(|e| ApiError::Internal(e.into()))?;
    headers.insert(
        header::ETAG,
        format!("\"{}\"", row.version)
            .parse()
            .expect("digits are a header value"),
    );
    Ok((headers, Json(row)).into_response())
}
