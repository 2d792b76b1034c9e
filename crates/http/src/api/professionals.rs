//! The registry of professionals: `GET/POST /api/v1/professionals`,
//! `GET/PATCH /api/v1/professionals/{id}` and the professional's own queue,
//! `GET /api/v1/professionals/{id}/activations`.
//!
//! The desk admits professionals and changes their profile, contacts and
//! status; a professional keeps their own availability and absences. Names
//! and contacts are sealed under the professional's own key and opened
//! only for the desk and the professional themselves. A `PATCH` is several
//! commands decided in order and appended as one write.

use super::{
    ApiJson, ApiQuery, MinPosition, Written, clocked_metadata as metadata, idempotency, if_match,
    minted_id, path_id,
};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::command::{Expect, WriteRequest, execute, written};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sportello_domain::activation::ranking::RegistryStatus;
use sportello_domain::activation::{Mode, ProfessionalRole, Sector};
use sportello_domain::aggregate::ProfessionalAggregate;
use sportello_domain::ids::ProfessionalId;
use sportello_domain::organization::WeeklyHoursPayload;
use sportello_domain::registry::stored::{AbsencePayload, ContactPersonal, LanguagePayload};
use sportello_domain::registry::{Contact, ProfessionalCommand, Profile};
use sportello_domain::{NetworkId, StreamId};
use sportello_projections::{ActivationRow, ProfessionalRow};
use sportello_store::Personal;
use std::collections::{BTreeSet, HashMap};
use uuid::Uuid;

time::serde::format_description!(iso_day, Date, "[year]-[month]-[day]");

/// What the registry says a professional does, as the API takes it.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileIn {
    /// `mediator`, `interpreter`, `lawyer` (one or more).
    #[schema(value_type = Vec<String>)]
    pub roles: BTreeSet<ProfessionalRole>,
    /// `legal`, `labour`, `health`.
    #[schema(value_type = Vec<String>)]
    pub sectors: BTreeSet<Sector>,
    /// Languages besides Italian (for interpreters, each paired with
    /// Italian): `[{"code": "ar", "proficiency": "native"}]`.
    #[schema(value_type = Vec<Object>)]
    pub languages: Vec<LanguagePayload>,
    /// `in_person`, `phone`, `video`.
    #[schema(value_type = Vec<String>)]
    pub modes: BTreeSet<Mode>,
    /// Comuni or areas served.
    #[serde(default)]
    pub areas: Vec<String>,
    /// Admitted on, `YYYY-MM-DD`.
    #[serde(with = "iso_day")]
    #[schema(value_type = String, format = Date)]
    pub admitted_on: time::Date,
    /// A lawyer's bar registration.
    pub bar_registration: Option<String>,
}

impl ProfileIn {
    fn profile(self) -> Profile {
        Profile {
            roles: self.roles,
            sectors: self.sectors,
            languages: self
                .languages
                .into_iter()
                .map(|l| (l.code, l.proficiency))
                .collect(),
            modes: self.modes,
            areas: self.areas,
            admitted_on: self.admitted_on,
            bar_registration: self.bar_registration,
        }
    }
}

/// Who the professional is and how to reach them (personal: sealed).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactIn {
    /// Their name.
    pub name: String,
    /// Phone.
    pub phone: Option<String>,
    /// Email.
    pub email: Option<String>,
}

impl From<ContactIn> for Contact {
    fn from(c: ContactIn) -> Self {
        Contact {
            name: c.name,
            phone: c.phone,
            email: c.email,
        }
    }
}

/// Body of `POST /api/v1/professionals`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfessionalIn {
    /// What they do.
    pub profile: ProfileIn,
    /// Who they are.
    pub contact: ContactIn,
    /// Weekly hours in Potenza's time: `{"monday": [{"open": "09:00",
    /// "close": "13:00"}], ...}`; a day left out is a day off.
    #[schema(value_type = Option<Object>)]
    pub availability: Option<WeeklyHoursPayload>,
}

/// Body of `PATCH /api/v1/professionals/{id}`: what to change. Profile,
/// contact and status are the desk's; availability and absences also the
/// professional's own.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfessionalPatch {
    /// The new profile.
    pub profile: Option<ProfileIn>,
    /// New contact details.
    pub contact: Option<ContactIn>,
    /// `active`, `suspended`, `left`.
    #[schema(value_type = Option<String>)]
    pub status: Option<RegistryStatus>,
    /// The new weekly hours (a day left out is a day off).
    #[schema(value_type = Option<Object>)]
    pub availability: Option<WeeklyHoursPayload>,
    /// Absences to add: `[{"from": "2026-08-01", "to": "2026-08-21"}]`.
    #[serde(default)]
    #[schema(value_type = Vec<Object>)]
    pub absences: Vec<AbsencePayload>,
}

/// Absences one change may add.
const MAX_ABSENCES: usize = 50;

fn hours(h: &WeeklyHoursPayload) -> Result<sportello_domain::organization::WeeklyHours, ApiError> {
    h.to_hours("availability").map_err(|e| {
        ApiError::Validation(vec![FieldError {
            field: "availability".into(),
            message: match e {
                sportello_domain::DecodeError::Malformed { reason, .. } => reason,
                other => other.to_string(),
            },
        }])
    })
}

/// Admit a professional to the registry.
#[utoipa::path(post, path = "/api/v1/professionals", tag = "registry",
    request_body = ProfessionalIn,
    params(("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "A retry with the same key and body answers the first answer")),
    responses(
        (status = 201, description = "Admitted; ETag is the entry's version", body = Written),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields (a lawyer without bar registration, Italian listed, no role…)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body, raw): ApiJson<ProfessionalIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ManageRegistry)?;
    let idem = idempotency(&headers, &caller, "POST /api/v1/professionals", &raw)?;
    let id = ProfessionalId(minted_id(idem.as_ref(), "professional"));
    let mut commands = vec![ProfessionalCommand::Register {
        id,
        profile: body.profile.profile(),
        contact: body.contact.into(),
    }];
    if let Some(h) = &body.availability {
        commands.push(ProfessionalCommand::SetAvailability(hours(h)?));
    }
    let done = execute::<ProfessionalAggregate, _>(
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
            respond: &|r, _| Written::of(r).created("/api/v1/professionals"),
        },
    )
    .await?;
    Ok(done.answer.into_response())
}

/// Change a professional's entry.
#[utoipa::path(patch, path = "/api/v1/professionals/{id}", tag = "registry",
    params(("id" = uuid::Uuid, Path, description = "The professional"),
           ("If-Match" = Option<String>, Header, description = "The version this change expects")),
    request_body = ProfessionalPatch,
    responses(
        (status = 200, description = "Changed; ETag is its version", body = Written),
        (status = 403, description = "Not the desk (profile, contact, status) nor the professional (availability, absences)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such professional", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The professional left the registry, or already has that status", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
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
    ApiJson(body, raw): ApiJson<ProfessionalPatch>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    allow(&caller, Act::KeepAvailability(id))?;
    if body.profile.is_some() || body.contact.is_some() || body.status.is_some() {
        allow(&caller, Act::ManageRegistry)?;
    }
    let idem = idempotency(&headers, &caller, &format!("PATCH professional {id}"), &raw)?;
    let mut commands = Vec::new();
    if body.profile.is_some() || body.contact.is_some() {
        let Some(profile) = body.profile else {
            return Err(ApiError::Validation(vec![FieldError {
                field: "profile".into(),
                message: "new contact details come with the profile they belong to".into(),
            }]));
        };
        commands.push(ProfessionalCommand::UpdateProfile {
            profile: profile.profile(),
            contact: body.contact.map(Contact::from),
        });
    }
    if let Some(h) = &body.availability {
        commands.push(ProfessionalCommand::SetAvailability(hours(h)?));
    }
    if body.absences.len() > MAX_ABSENCES {
        return Err(ApiError::Validation(vec![FieldError {
            field: "absences".into(),
            message: format!("at most {MAX_ABSENCES} at a time"),
        }]));
    }
    for a in body.absences {
        commands.push(ProfessionalCommand::AddAbsence {
            from: a.from,
            to: a.to,
        });
    }
    if let Some(s) = body.status {
        commands.push(ProfessionalCommand::SetStatus(s));
    }
    if commands.is_empty() {
        return Err(ApiError::Validation(vec![FieldError {
            field: String::new(),
            message: "nothing to change".into(),
        }]));
    }
    let done = execute::<ProfessionalAggregate, _>(
        &state.store,
        WriteRequest {
            network: caller.network_id,
            stream: StreamId(id),
            expect: Expect::from_if_match(if_match(&headers)?),
            commands,
            metadata: metadata(&state, &caller),
            idempotency: idem,
            loaded: None,
            then: None,
            respond: &written,
        },
    )
    .await?;
    Ok(done.answer.into_response())
}

/// A professional as the desk and the professional see them.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ProfessionalOut {
    /// The entry, as the registry's read model has it.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub entry: ProfessionalRow,
    /// Name and contacts (`null` once erased).
    #[schema(value_type = Option<Object>)]
    pub contact: Option<ContactPersonal>,
}

/// The latest contact details of each professional, opened.
async fn contacts(
    state: &AppState,
    network: NetworkId,
    ids: &[Uuid],
) -> Result<HashMap<Uuid, ContactPersonal>, ApiError> {
    let streams: Vec<StreamId> = ids.iter().copied().map(StreamId).collect();
    let events = state.store.load_streams(network, &streams).await?;
    let opened = state.store.open(events).await?;
    let mut out = HashMap::new();
    for e in opened {
        if let Personal::Open(v) = e.personal
            && let Ok(c) = serde_json::from_value::<ContactPersonal>(v)
        {
            out.insert(e.event.stream_id.0, c);
        }
    }
    Ok(out)
}

/// Query of the registry.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RegistryQuery {
    /// Only this role.
    #[param(value_type = Option<String>)]
    pub role: Option<ProfessionalRole>,
    /// Only this sector.
    #[param(value_type = Option<String>)]
    pub sector: Option<Sector>,
    /// Only who speaks this language (ISO 639-1).
    pub language: Option<String>,
    /// Only this status.
    #[param(value_type = Option<String>)]
    pub status: Option<RegistryStatus>,
    /// Read your writes.
    pub min_position: Option<i64>,
}

/// The registry, with names and contacts.
#[utoipa::path(get, path = "/api/v1/professionals", tag = "registry",
    params(RegistryQuery),
    responses(
        (status = 200, description = "The professionals, by admission", body = Object),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<RegistryQuery>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ManageRegistry)?;
    let mut headers = HeaderMap::new();
    MinPosition {
        min_position: q.min_position,
    }
    .wait(&state, "professionals", &mut headers)
    .await?;
    let rows: Vec<sqlx::types::Json<ProfessionalRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(p) FROM professionals p WHERE network_id = $1
          ORDER BY p.profile->>'admitted_on', professional_id",
    )
    .bind(caller.network_id.0)
    .fetch_all(state.pool())
    .await?;
    let rows: Vec<ProfessionalRow> = rows
        .into_iter()
        .map(|r| r.0)
        .filter(|r| q.role.is_none_or(|x| r.profile.roles.contains(&x)))
        .filter(|r| q.sector.is_none_or(|x| r.profile.sectors.contains(&x)))
        .filter(|r| {
            q.language
                .as_deref()
                .is_none_or(|x| r.profile.languages.iter().any(|l| l.code == x))
        })
        .filter(|r| q.status.is_none_or(|x| r.status == x))
        .collect();
    let ids: Vec<Uuid> = rows.iter().map(|r| r.professional_id).collect();
    let mut contacts = contacts(&state, caller.network_id, &ids).await?;
    let items: Vec<ProfessionalOut> = rows
        .into_iter()
        .map(|entry| ProfessionalOut {
            contact: contacts.remove(&entry.professional_id),
            entry,
        })
        .collect();
    Ok((headers, Json(serde_json::json!({ "items": items }))).into_response())
}

/// One professional's entry (the desk, or the professional themselves).
#[utoipa::path(get, path = "/api/v1/professionals/{id}", tag = "registry",
    params(("id" = uuid::Uuid, Path, description = "The professional"), MinPosition),
    responses(
        (status = 200, description = "The entry; ETag is its version", body = ProfessionalOut),
        (status = 403, description = "Neither the desk nor this professional", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such professional", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<MinPosition>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    allow(&caller, Act::KeepAvailability(id))?;
    let mut headers = HeaderMap::new();
    q.wait(&state, "professionals", &mut headers).await?;
    let row: Option<sqlx::types::Json<ProfessionalRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(p) FROM professionals p WHERE network_id = $1 AND professional_id = $2",
    )
    .bind(caller.network_id.0)
    .bind(id)
    .fetch_optional(state.pool())
    .await?;
    let entry = row.ok_or(ApiError::NotFound)?.0;
    let contact = contacts(&state, caller.network_id, &[id])
        .await?
        .remove(&id);
    headers.insert(
        header::ETAG,
        format!("\"{}\"", entry.version)
            .parse()
            .expect("digits are a header value"),
    );
    Ok((headers, Json(ProfessionalOut { entry, contact })).into_response())
}

/// An activation as a professional sees it: what, when, where, how it
/// stands for them — nothing of the person but whether there is one.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueueItem {
    /// The activation.
    pub activation_id: Uuid,
    /// `offered` (to them, now), `confirmed`/`scheduled`/`delivered`
    /// (theirs), `passed` (they declined or let it lapse), `cancelled`.
    pub standing: &'static str,
    /// Mediator, interpreter, lawyer.
    #[schema(value_type = String)]
    pub role: ProfessionalRole,
    /// Sector.
    #[schema(value_type = String)]
    pub sector: Sector,
    /// Language.
    pub language: String,
    /// Mode.
    #[schema(value_type = String)]
    pub mode: Mode,
    /// When they are needed.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub needed_at: time::OffsetDateTime,
    /// Until when the offer stands (offered only).
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub offer_expires_at: Option<time::OffsetDateTime>,
    /// When it takes place, once scheduled.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scheduled_for: Option<time::OffsetDateTime>,
    /// Whether a person is named (never who).
    pub with_person: bool,
}

/// What an activation is to professional `p`.
fn standing(row: &ActivationRow, p: Uuid) -> &'static str {
    if row.confirmed == Some(p) {
        row.status.as_str()
    } else if row.offered_to == Some(p) {
        "offered"
    } else if row.status == sportello_domain::activation::Status::Cancelled {
        "cancelled"
    } else {
        "passed"
    }
}

/// A professional's queue: the activations offered to them now, theirs,
/// and those they passed; the live offers first.
#[utoipa::path(get, path = "/api/v1/professionals/{id}/activations", tag = "registry",
    params(("id" = uuid::Uuid, Path, description = "The professional"), MinPosition),
    responses(
        (status = 200, description = "Their activations: `items`", body = Object),
        (status = 403, description = "Neither the desk nor this professional", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn queue(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<MinPosition>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    allow(&caller, Act::ReadQueue(id))?;
    let mut headers = HeaderMap::new();
    q.wait(&state, "activations", &mut headers).await?;
    let rows: Vec<sqlx::types::Json<ActivationRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(a) FROM activations a
          WHERE network_id = $1 AND (offered_to = $2 OR confirmed = $2 OR $2 = ANY(passed))
          ORDER BY (offered_to = $2) DESC NULLS LAST, needed_at DESC
          LIMIT 500",
    )
    .bind(caller.network_id.0)
    .bind(id)
    .fetch_all(state.pool())
    .await?;
    let items: Vec<QueueItem> = rows
        .into_iter()
        .map(|r| {
            let r = r.0;
            let standing = standing(&r, id);
            QueueItem {
                activation_id: r.activation_id,
                standing,
                role: r.role,
                sector: r.sector,
                language: r.language,
                mode: r.mode,
                needed_at: r.needed_at,
                offer_expires_at: (standing == "offered")
                    .then_some(r.offer_expires_at)
                    .flatten(),
                scheduled_for: (r.confirmed == Some(id))
                    .then_some(r.scheduled_for)
                    .flatten(),
                with_person: r.person_id.is_some(),
            }
        })
        .collect();
    Ok((headers, Json(serde_json::json!({ "items": items }))).into_response())
}
