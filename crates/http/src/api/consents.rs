//! Consent on a person's case: `POST /api/v1/persons/{id}/consents`
//! (record), `.../consents/{cid}/withdraw` and `POST
//! /api/v1/persons/{id}/legal-bases` (a desk supervisor records a legal
//! basis for sharing without consent). Each is one command on the case's
//! stream through [`crate::command`], conditional on `If-Match` when given;
//! what a consent allows is the domain's ([`sportello_domain::case::consent`]).
//! The consent's body is also taken by `POST /api/v1/persons`, which
//! records it with the opening. Nothing about the person goes in a URL or a
//! log: ids only.

use super::intake::Problems;
use super::{ApiJson, OptionalJson, Written, idempotency, if_match, path_id};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::command::{Answer, Expect, WriteRequest, answer_once, execute, load};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sportello_domain::aggregate::{CaseAggregate, OrganizationAggregate};
use sportello_domain::case::consent::{
    self, CardField, ConsentId, ConsentPurpose, ConsentTerms, LegalBasis, LegalBasisId,
    LegalBasisKind, OrganizationScope, Withdrawal,
};
use sportello_domain::case::lifecycle::CaseCommand;
use sportello_domain::{AccountId, DomainError, Metadata, NetworkId, StreamId};
use sportello_store::{EventStore, Idempotency};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// A consent as the desk records it (body of `POST .../consents`, and the
/// `consent` of `POST /api/v1/persons`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsentIn {
    /// `referral` (share the card with providers to answer needs) or
    /// `mediation` (activate interpreters and mediators).
    #[schema(value_type = String, example = "referral")]
    pub purpose: ConsentPurpose,
    /// `"network"` (every organisation of the network) or a list of
    /// organisation ids.
    #[schema(value_type = Object, example = "network")]
    pub organizations: OrganizationScope,
    /// Which kinds of data (card fields): `names`, `birth_date`,
    /// `citizenship`, `languages`, `contacts`, `documents`,
    /// `vulnerabilities`, `needs`, `notes`; at least one.
    #[schema(value_type = Vec<String>, example = json!(["names", "languages", "needs"]))]
    pub data: Vec<CardField>,
    /// The day it was given, `YYYY-MM-DD`, not in the future.
    pub given_on: String,
    /// The language the information notice was given in (ISO 639-1).
    #[schema(example = "ar")]
    pub notice_language: String,
}

impl ConsentIn {
    /// Parse and check into the terms recorded, naming offending fields
    /// under `prefix` (`""` or `"consent."`).
    pub fn terms(
        self,
        id: ConsentId,
        recorded_by: AccountId,
        today: Date,
        prefix: &str,
    ) -> Result<ConsentTerms, ApiError> {
        let given_on = parse_day(&format!("{prefix}given_on"), &self.given_on, today)?;
        let terms = ConsentTerms {
            consent_id: id,
            purpose: self.purpose,
            organizations: self.organizations,
            data: self.data.into_iter().collect(),
            given_on,
            notice_language: self.notice_language,
            recorded_by,
        };
        consent::check_terms(&terms).map_err(|e| prefixed(e, prefix))?;
        Ok(terms)
    }
}

fn prefixed(e: DomainError, prefix: &str) -> ApiError {
    match e {
        DomainError::Invalid { field, message } => ApiError::Validation(vec![FieldError {
            field: format!("{prefix}{field}"),
            message: message.into(),
        }]),
        other => other.into(),
    }
}

/// A day `YYYY-MM-DD`, not after `today`.
fn parse_day(field: &str, s: &str, today: Date) -> Result<Date, ApiError> {
    let bad = |message: &str| {
        ApiError::Validation(vec![FieldError {
            field: field.into(),
            message: message.into(),
        }])
    };
    let d = Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|_| bad("must be a date YYYY-MM-DD"))?;
    if d > today {
        return Err(bad("cannot be in the future"));
    }
    Ok(d)
}

/// Today in Rome, the desk's day.
pub fn today(now: OffsetDateTime) -> Date {
    sportello_domain::matching::rome_date(now)
}

/// Every organisation a scope names exists in the network (else a field
/// error naming it).
pub async fn check_scope(
    store: &EventStore,
    network: NetworkId,
    scope: &OrganizationScope,
    field: &str,
) -> Result<(), ApiError> {
    let OrganizationScope::Only(orgs) = scope else {
        return Ok(());
    };
    let mut p = Problems::default();
    for (i, org) in orgs.iter().enumerate() {
        if !organization_exists(store, network, org.0).await? {
            p.add(
                format!("{field}[{i}]"),
                "no such organisation in this network",
            );
        }
    }
    p.finish()
}

async fn organization_exists(
    store: &EventStore,
    network: NetworkId,
    org: Uuid,
) -> Result<bool, ApiError> {
    match load::<OrganizationAggregate>(store, network, StreamId(org)).await {
        Ok((state, _)) => Ok(state.is_some()),
        Err(sportello_app::AppError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Carry out a command on the case `person` for `caller`, answering what
/// `respond` makes of the case's [`Written`].
#[expect(
    clippy::too_many_arguments,
    reason = "each is a separate input of one write"
)]
async fn run(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    person: Uuid,
    idem: Option<Idempotency>,
    command: CaseCommand,
    now: OffsetDateTime,
    respond: &(dyn Fn(Written) -> Answer + Sync),
) -> Result<Answer, ApiError> {
    let done = execute::<CaseAggregate, _>(
        &state.store,
        WriteRequest {
            network: caller.network_id,
            stream: StreamId(person),
            expect: Expect::from_if_match(if_match(headers)?),
            commands: vec![command],
            metadata: Metadata::for_command(caller.account_id, caller.organization_id, now),
            idempotency: idem,
            loaded: None,
            then: None,
            respond: &|r, _| respond(Written::of(r)),
        },
    )
    .await?;
    Ok(done.answer)
}

fn created(version: i64, body: &impl Serialize) -> Answer {
    Answer::json(StatusCode::CREATED, body).header(header::ETAG, &format!("\"{version}\""))
}

/// The answer of recording a consent.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ConsentWritten {
    /// The new consent.
    pub consent_id: Uuid,
    /// The case's version and the position.
    #[serde(flatten)]
    pub written: Written,
}

/// Record a consent the person gave (open or closed case alike).
#[utoipa::path(post, path = "/api/v1/persons/{id}/consents", tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "The person"),
        ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "A retry with the same key and body answers the first answer"),
        ("If-Match" = Option<String>, Header, description = "The case's version this write expects"),
    ),
    request_body = ConsentIn,
    responses(
        (status = 201, description = "Recorded; ETag is the case's version", body = ConsentWritten),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such case", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an older version", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: purpose, organisations, data kinds, date, notice language", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn record(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body, raw): ApiJson<ConsentIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::DeskWork)?;
    let person = path_id(&id)?;
    let idem = idempotency(&headers, &caller, &format!("consent {person}"), &raw)?;
    let now = state.clock().now();
    let network = caller.network_id;
    let answer = answer_once(&state.store, network, idem.as_ref(), async {
        let consent = ConsentId(super::minted_id(idem.as_ref(), "consent"));
        let terms = body.terms(consent, caller.account_id, today(now), "")?;
        check_scope(&state.store, network, &terms.organizations, "organizations").await?;
        let command = CaseCommand::RecordConsent(terms);
        run(
            &state,
            &caller,
            &headers,
            person,
            idem,
            command,
            now,
            &|w| {
                created(
                    w.version,
                    &ConsentWritten {
                        consent_id: consent.0,
                        written: w,
                    },
                )
            },
        )
        .await
    })
    .await?;
    Ok(answer.into_response())
}

/// Body of `POST /api/v1/persons/{id}/consents/{cid}/withdraw`.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawIn {
    /// The day the person withdrew it, `YYYY-MM-DD` (default: today).
    pub withdrawn_on: Option<String>,
}

/// The person withdraws a consent; it never counts again.
#[utoipa::path(post, path = "/api/v1/persons/{id}/consents/{cid}/withdraw", tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "The person"),
        ("cid" = uuid::Uuid, Path, description = "The consent"),
        ("If-Match" = Option<String>, Header, description = "The case's version this write expects"),
    ),
    request_body(content = WithdrawIn, description = "Optional"),
    responses(
        (status = 200, description = "Withdrawn; ETag is the case's version", body = Written),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such case or consent", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "Already withdrawn", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an older version", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid date", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn withdraw(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path((id, cid)): Path<(String, String)>,
    OptionalJson(body, raw): OptionalJson<WithdrawIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::DeskWork)?;
    let person = path_id(&id)?;
    let consent = ConsentId(path_id(&cid)?);
    let idem = idempotency(
        &headers,
        &caller,
        &format!("withdraw {person} {consent}"),
        &raw,
    )?;
    let now = state.clock().now();
    let answer = answer_once(&state.store, caller.network_id, idem.as_ref(), async {
        let withdrawn_on = match body.unwrap_or_default().withdrawn_on {
            Some(s) => parse_day("withdrawn_on", &s, today(now))?,
            None => today(now),
        };
        let command = CaseCommand::WithdrawConsent(Withdrawal {
            consent_id: consent,
            withdrawn_on,
        });
        run(
            &state,
            &caller,
            &headers,
            person,
            idem,
            command,
            now,
            &|w| w.answer(StatusCode::OK),
        )
        .await
    })
    .await?;
    Ok(answer.into_response())
}

/// Body of `POST /api/v1/persons/{id}/legal-bases` (its `Debug` leaves the
/// reason out: it is about the person).
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LegalBasisIn {
    /// The organisation it lets the desk share with.
    pub organization_id: Uuid,
    /// `legal_obligation`, `vital_interests` or `public_task`.
    #[schema(value_type = String, example = "vital_interests")]
    pub basis: LegalBasisKind,
    /// Why, in words (personal: sealed), 1 to 2000 characters.
    pub reason: String,
}

impl std::fmt::Debug for LegalBasisIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LegalBasisIn")
            .field("organization_id", &self.organization_id)
            .field("basis", &self.basis)
            .finish_non_exhaustive()
    }
}

/// The answer of recording a legal basis.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LegalBasisWritten {
    /// The new legal basis.
    pub legal_basis_id: Uuid,
    /// The case's version and the position.
    #[serde(flatten)]
    pub written: Written,
}

/// A desk supervisor records a legal basis for sharing the person's data
/// with one organisation without consent.
#[utoipa::path(post, path = "/api/v1/persons/{id}/legal-bases", tag = "cases",
    params(
        ("id" = uuid::Uuid, Path, description = "The person"),
        ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "A retry with the same key and body answers the first answer"),
        ("If-Match" = Option<String>, Header, description = "The case's version this write expects"),
    ),
    request_body = LegalBasisIn,
    responses(
        (status = 201, description = "Recorded; ETag is the case's version", body = LegalBasisWritten),
        (status = 403, description = "Not a desk supervisor", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such case", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an older version", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: unknown organisation or basis, empty reason", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn record_legal_basis(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(body, raw): ApiJson<LegalBasisIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::RecordLegalBasis)?;
    let person = path_id(&id)?;
    let idem = idempotency(&headers, &caller, &format!("legal basis {person}"), &raw)?;
    consent::check_reason(&body.reason).map_err(ApiError::from)?;
    let network = caller.network_id;
    let answer = answer_once(&state.store, network, idem.as_ref(), async {
        if !organization_exists(&state.store, network, body.organization_id).await? {
            return Err(ApiError::Validation(vec![FieldError {
                field: "organization_id".into(),
                message: "no such organisation in this network".into(),
            }]));
        }
        let basis_id = LegalBasisId(super::minted_id(idem.as_ref(), "legal_basis"));
        let command = CaseCommand::RecordLegalBasis {
            basis: LegalBasis {
                legal_basis_id: basis_id,
                organization_id: sportello_domain::OrganizationId(body.organization_id),
                basis: body.basis,
                recorded_by: caller.account_id,
            },
            reason: body.reason,
        };
        let now = state.clock().now();
        run(
            &state,
            &caller,
            &headers,
            person,
            idem,
            command,
            now,
            &|w| {
                created(
                    w.version,
                    &LegalBasisWritten {
                        legal_basis_id: basis_id.0,
                        written: w,
                    },
                )
            },
        )
        .await
    })
    .await?;
    Ok(answer.into_response())
}
