//! Activations of professionals: `POST /api/v1/activations` (ask for a
//! mediator, interpreter or lawyer; it is offered at once to the first of
//! the ranking, whose reasons the answer shows), `GET /api/v1/activations`
//! (the desk's board: waiting, offered, confirmed, overdue),
//! `GET /api/v1/activations/{id}` (one activation, with the current
//! ranking for who may arrange it) and `POST /api/v1/activations/{id}/{action}`
//! (`accept`, `decline` by the professional offered; `schedule`, `cancel`
//! by who asked or the desk; `deliver` by the confirmed professional or
//! the desk).
//!
//! An activation is the desk's and the asking organisation's: to another
//! partner it does not exist (`404`), and to a professional only while it
//! is or was offered to them. Times come from the application's clock
//! ([`crate::clock`]).

use super::ApiJson;
use super::{
    ApiQuery, MinPosition, OptionalJson, Written, clocked_metadata as metadata, idempotency,
    if_match, minted_id, path_id,
};
use crate::access::{Act, Role, allow};
use crate::activation::{Offering, carry_out};
use crate::auth::Caller;
use crate::command::{Answer, Expect, WriteRequest, answer_once, load, rebuild, written};
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sportello_domain::activation::ranking::rank;
use sportello_domain::activation::{
    Activation, ActivationCommand, Mode, ProfessionalRole, Request, Sector, Status, Urgency,
};
use sportello_domain::aggregate::{ActivationAggregate, CaseAggregate, ReferralAggregate};
use sportello_domain::ids::{ActivationId, ProfessionalId};
use sportello_domain::referral::ReferralStatus;
use sportello_domain::{PersonId, ReferralId, StreamId};
use sportello_projections::ActivationRow;
use sportello_store::{AppendResult, Personal, RecordedEvent};
use time::{Duration, OffsetDateTime};
use uuid::Uuid;

/// Body of `POST /api/v1/activations`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActivationIn {
    /// `mediator`, `interpreter`, `lawyer`.
    #[schema(value_type = String)]
    pub role: ProfessionalRole,
    /// `legal`, `labour`, `health`.
    #[schema(value_type = String)]
    pub sector: Sector,
    /// The language needed (ISO 639-1).
    pub language: String,
    /// `in_person`, `phone`, `video`.
    #[schema(value_type = String)]
    pub mode: Mode,
    /// Where (an address, or how to join); sealed when a person is named.
    pub place: String,
    /// When the professional is needed (RFC 3339).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub needed_at: OffsetDateTime,
    /// `24h` or `48h`: a professional confirmed within that of now.
    #[schema(value_type = String)]
    pub urgency: Urgency,
    /// The person (the desk; optional: an interpreter may be booked for
    /// an appointment without the desk's case).
    pub person_id: Option<Uuid>,
    /// The referral it serves (a partner: one addressed to it; the person
    /// is then the referral's).
    pub referral_id: Option<Uuid>,
}

/// A professional in the ranking, with the reasons of their place.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Ranked {
    /// Who.
    pub professional_id: Uuid,
    /// Available at the time needed.
    pub available: bool,
    /// Works in the mode asked.
    pub mode: bool,
    /// Activations confirmed in the last 30 days (fair rotation).
    pub recent: u32,
    /// Why they are where they are.
    pub reasons: Vec<String>,
}

/// The answer of a request, or of one activation read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ActivationOut {
    /// The activation.
    pub activation_id: Uuid,
    /// Where it stands.
    #[schema(value_type = String)]
    pub status: Status,
    /// Confirm by.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub deadline: OffsetDateTime,
    /// The professional offered it now, and until when.
    pub offered_to: Option<Uuid>,
    /// Until when the offer stands.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub offer_expires_at: Option<OffsetDateTime>,
    /// The professional confirmed.
    pub confirmed: Option<Uuid>,
    /// Who passed, in order.
    pub passed: Vec<Uuid>,
    /// The deadline passed with nobody confirmed.
    pub deadline_missed: bool,
    /// Where (opened for who may see it; empty when erased).
    pub place: String,
    /// When and where it takes place, once scheduled.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub scheduled_for: Option<OffsetDateTime>,
    /// The professionals who could still be offered it, best first, with
    /// why (for the desk and who asked; empty for a professional).
    pub ranking: Vec<Ranked>,
    /// The stream's version (also the `ETag`) and the log position.
    #[serde(flatten)]
    pub written: Option<Written>,
}

fn bad(field: &str, message: &str) -> ApiError {
    ApiError::Validation(vec![FieldError {
        field: field.into(),
        message: message.into(),
    }])
}

fn offer_timeout(state: &AppState) -> Duration {
    Duration::minutes(i64::from(state.settings.offer_timeout_minutes))
}

/// The person and referral of a request, checked: the desk names an
/// existing person (and a referral of theirs); a partner names a referral
/// addressed to it, and the person is the referral's.
async fn subject(
    state: &AppState,
    caller: &Caller,
    person: Option<Uuid>,
    referral: Option<Uuid>,
) -> Result<(Option<PersonId>, Option<ReferralId>), ApiError> {
    let network = caller.network_id;
    let referral = match referral {
        None => None,
        Some(r) => {
            let (r, _) = load::<ReferralAggregate>(&state.store, network, StreamId(r))
                .await
                .map_err(|_| bad("referral_id", "no such referral in this network"))?;
            let r = r.ok_or_else(|| bad("referral_id", "no such referral in this network"))?;
            if caller.role == Role::Partner && r.organization != caller.organization_id {
                return Err(bad("referral_id", "no such referral in this network"));
            }
            if r.status.is_closed() || r.status == ReferralStatus::Declined {
                return Err(bad(
                    "referral_id",
                    "the referral is closed or declined: no activation serves it",
                ));
            }
            Some(r)
        }
    };
    if caller.role == Role::Partner {
        if person.is_some() {
            return Err(bad(
                "person_id",
                "a partner names its referral (referral_id), not the person",
            ));
        }
        return Ok((referral.as_ref().map(|r| r.person), referral.map(|r| r.id)));
    }
    let person = match (person, &referral) {
        (Some(p), Some(r)) if PersonId(p) != r.person => {
            return Err(bad("referral_id", "is not a referral of this person"));
        }
        (Some(p), _) => {
            let (case, _) = load::<CaseAggregate>(&state.store, network, StreamId(p))
                .await
                .map_err(|_| bad("person_id", "no such person in this network"))?;
            case.ok_or_else(|| bad("person_id", "no such person in this network"))?;
            Some(PersonId(p))
        }
        (None, Some(r)) => Some(r.person),
        (None, None) => None,
    };
    Ok((person, referral.map(|r| r.id)))
}

/// The ranking of who could still be offered `a`, best first.
fn ranking(offering: &Offering, a: &Activation) -> Vec<Ranked> {
    let mut passed = a.passed.clone();
    passed.extend(a.offer.map(|(p, _)| p));
    passed.extend(a.confirmed);
    rank(&offering.registry, &a.request, &offering.recent, &passed)
        .into_iter()
        .map(|c| Ranked {
            professional_id: c.professional.0,
            available: c.available,
            mode: c.mode,
            recent: c.recent,
            reasons: c.reasons,
        })
        .collect()
}

fn out(
    a: &Activation,
    place: String,
    ranking: Vec<Ranked>,
    written: Option<Written>,
) -> ActivationOut {
    ActivationOut {
        activation_id: a.request.id.0,
        status: a.status,
        deadline: a.request.deadline(),
        offered_to: a.offer.map(|(p, _)| p.0),
        offer_expires_at: a.offer.map(|(_, t)| t),
        confirmed: a.confirmed.map(|p| p.0),
        passed: a.passed.iter().map(|p| p.0).collect(),
        deadline_missed: a.deadline_missed,
        place,
        scheduled_for: a.scheduled.as_ref().map(|(t, _)| *t),
        ranking,
        written,
    }
}

/// Ask for a professional.
#[utoipa::path(post, path = "/api/v1/activations", tag = "activations",
    request_body = ActivationIn,
    params(("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "A retry with the same key and body answers the first answer")),
    responses(
        (status = 201, description = "Requested, and offered to the first of the ranking if anyone can take it; the answer shows the ranking and why", body = ActivationOut),
        (status = 403, description = "Neither the desk nor a partner", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields: a language that is not ISO 639-1, needed before now, an unknown person or referral", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn request(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiJson(body, raw): ApiJson<ActivationIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::RequestActivation)?;
    let idem = idempotency(&headers, &caller, "POST /api/v1/activations", &raw)?;
    // Whom it is for is checked on the referral as it is now: a retry is
    // given its first answer before that.
    let answer = answer_once(&state.store, caller.network_id, idem.as_ref(), async {
        let (person, referral) = subject(&state, &caller, body.person_id, body.referral_id).await?;
        let metadata = metadata(&state, &caller);
        let now = metadata.occurred_at;
        let id = ActivationId(minted_id(idem.as_ref(), "activation"));
        let request = Request {
            id,
            role: body.role,
            sector: body.sector,
            language: body.language,
            mode: body.mode,
            needed_at: body.needed_at,
            place: body.place.clone(),
            urgency: body.urgency,
            person,
            referral,
            requested_by: caller.organization_id,
            requested_at: now,
        };
        let offering =
            Offering::load(state.pool(), caller.network_id, now, offer_timeout(&state)).await?;
        // The answer shows the activation as the write left it and the ranking
        // of then: a retry is given it as it was, not as things are by then.
        let respond = |r: &AppendResult, a: &Activation| {
            let written = Written::of(r);
            let etag = format!("\"{}\"", written.version);
            let location = format!("/api/v1/activations/{}", written.id);
            Answer::json(
                StatusCode::CREATED,
                &out(a, body.place.clone(), ranking(&offering, a), Some(written)),
            )
            .header(header::ETAG, &etag)
            .header(header::LOCATION, &location)
            // The place is the person's data when one is named.
            .about(a.request.person)
        };
        let done = carry_out(
            &state.store,
            &offering,
            WriteRequest::new(
                caller.network_id,
                StreamId(id.0),
                Expect::New,
                vec![ActivationCommand::Request(request)],
                metadata,
                &respond,
            )
            .idempotency(idem),
        )
        .await?;
        Ok(done.answer)
    })
    .await?;
    Ok(answer.into_response())
}

/// Load an activation and check the caller may see it at all: the desk;
/// the partner that asked; the professional it is offered to now or who
/// accepted it. To any other partner or professional it does not exist.
async fn visible(
    state: &AppState,
    caller: &Caller,
    id: Uuid,
) -> Result<(Activation, i64, Vec<RecordedEvent>), ApiError> {
    // Who may never see one is told so before anything is looked up.
    if !(caller.role.is_desk() || matches!(caller.role, Role::Partner | Role::Professional)) {
        return Err(ApiError::Forbidden);
    }
    let events = state
        .store
        .load_stream(caller.network_id, StreamId(id))
        .await?;
    let (a, version) = rebuild::<ActivationAggregate>(&events)?;
    let a = a.ok_or(ApiError::NotFound)?;
    let seen = match caller.role {
        Role::Partner => a.request.requested_by == caller.organization_id,
        // Offered to them now, or theirs: one who passed no longer sees it
        // (their queue still lists it as passed, with nothing of it).
        Role::Professional => caller.professional_id.is_some_and(|p| {
            let p = ProfessionalId(p);
            a.offer.is_some_and(|(o, _)| o == p) || a.confirmed == Some(p)
        }),
        _ => true,
    };
    if !seen {
        return Err(ApiError::NotFound);
    }
    Ok((a, version, events))
}

/// The place of an activation, opened (the latest: scheduled, else
/// requested).
async fn place(state: &AppState, events: Vec<RecordedEvent>) -> Result<String, ApiError> {
    let mut place = String::new();
    for e in state.store.open(events).await? {
        let from_payload = e.event.payload.get("place").and_then(|v| v.as_str());
        let opened = match &e.personal {
            Personal::Open(v) => v.get("text").and_then(|v| v.as_str()),
            _ => None,
        };
        if matches!(
            e.event.event_type.as_str(),
            "ActivationRequested" | "ActivationScheduled"
        ) && let Some(p) = from_payload.or(opened)
        {
            place = p.to_owned();
        }
    }
    Ok(place)
}

/// One activation: where it stands, where it takes place, and (for the
/// desk and who asked) who could still be offered it, with why.
#[utoipa::path(get, path = "/api/v1/activations/{id}", tag = "activations",
    params(("id" = uuid::Uuid, Path, description = "The activation")),
    responses(
        (status = 200, description = "The activation; ETag is its version", body = ActivationOut),
        (status = 403, description = "A coordinator or administrator", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such activation for this caller", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let id = path_id(&id)?;
    let (a, version, events) = visible(&state, &caller, id).await?;
    let ranking = if caller.role == Role::Professional {
        Vec::new()
    } else {
        let now = state.settings.clock.now();
        ranking(
            &Offering::load(state.pool(), caller.network_id, now, offer_timeout(&state)).await?,
            &a,
        )
    };
    if let Some(person) = a.request.person {
        crate::audit::record(
            state.pool(),
            &caller,
            person.0,
            crate::audit::Read::Activation,
        )
        .await?;
    }
    let place = place(&state, events).await?;
    Ok((
        [(header::ETAG, format!("\"{version}\""))],
        Json(out(&a, place, ranking, None)),
    )
        .into_response())
}

/// Body of an action (each action reads its own fields).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionIn {
    /// `schedule`: when (RFC 3339).
    #[serde(default, with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    pub at: Option<OffsetDateTime>,
    /// `schedule`: where.
    pub place: Option<String>,
    /// `deliver`: hours worked, in quarter hours (1 = 15 minutes).
    pub quarter_hours: Option<u16>,
    /// `deliver`: how it went.
    pub outcome: Option<String>,
    /// `cancel`: why.
    pub reason: Option<String>,
}

/// Act on an activation.
#[utoipa::path(post, path = "/api/v1/activations/{id}/{action}", tag = "activations",
    params(("id" = uuid::Uuid, Path, description = "The activation"),
           ("action" = String, Path, description = "`accept`, `decline`, `schedule`, `deliver`, `cancel`"),
           ("If-Match" = Option<String>, Header, description = "The version this action expects"),
           ("Idempotency-Key" = Option<uuid::Uuid>, Header, description = "A retry with the same key and body answers the first answer")),
    request_body = ActionIn,
    responses(
        (status = 200, description = "Done; ETag is the new version", body = Written),
        (status = 403, description = "Not this action's actor", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such activation for this caller, or no such action", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 409, description = "The lifecycle does not allow it now (not offered to you, the offer lapsed, already confirmed…)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 412, description = "If-Match names an older version", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid or missing fields", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
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
    let id = path_id(&id)?;
    if !matches!(
        action.as_str(),
        "accept" | "decline" | "schedule" | "deliver" | "cancel"
    ) {
        return Err(ApiError::NotFound);
    }
    // A retry is answered before the access check, which depends on where
    // the activation stands (one who declined no longer sees it): the key
    // is bound to the caller's account (`idempotency`).
    let route = format!("activation {id} {action}");
    let idem = idempotency(&headers, &caller, &route, &raw)?;
    let answer = answer_once(&state.store, caller.network_id, idem.as_ref(), async {
        let (a, version, _) = visible(&state, &caller, id).await?;
        let me = ProfessionalId(caller.professional_id.unwrap_or_default());
        match action.as_str() {
            "accept" | "decline" => allow(&caller, Act::AnswerOffer(me.0))?,
            "deliver" => allow(&caller, Act::RecordDelivery(a.confirmed.map(|p| p.0)))?,
            _ => allow(&caller, Act::ArrangeActivation(a.request.requested_by))?,
        }
        let body = body.unwrap_or_default();
        let metadata = metadata(&state, &caller);
        let now = metadata.occurred_at;
        let required = |v: Option<String>, field: &str| v.ok_or_else(|| bad(field, "is required"));
        let command = match action.as_str() {
            "accept" => ActivationCommand::Accept { by: me, now },
            "decline" => ActivationCommand::Decline { by: me, now },
            "schedule" => ActivationCommand::Schedule {
                at: body.at.ok_or_else(|| bad("at", "is required"))?,
                place: required(body.place, "place")?,
            },
            "deliver" => ActivationCommand::Deliver {
                quarter_hours: body
                    .quarter_hours
                    .ok_or_else(|| bad("quarter_hours", "is required"))?,
                outcome: required(body.outcome, "outcome")?,
            },
            _ => ActivationCommand::Cancel {
                reason: required(body.reason, "reason")?,
            },
        };
        let offering =
            Offering::load(state.pool(), caller.network_id, now, offer_timeout(&state)).await?;
        let done = carry_out(
            &state.store,
            &offering,
            WriteRequest::new(
                caller.network_id,
                StreamId(id),
                Expect::from_if_match(if_match(&headers)?),
                vec![command],
                metadata,
                &written,
            )
            .idempotency(idem)
            .loaded(Some(a), version),
        )
        .await?;
        Ok(done.answer)
    })
    .await?;
    Ok(answer.into_response())
}

/// Query of the board.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BoardQuery {
    /// Read your writes.
    pub min_position: Option<i64>,
}

/// One activation on the board.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BoardItem {
    /// The activation as its read model has it.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub row: ActivationRow,
    /// Minutes left to confirm (negative: overdue).
    pub minutes_to_deadline: i64,
}

/// The board: activations not yet done, by where they stand.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Board {
    /// When it was read (the application's clock).
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub now: OffsetDateTime,
    /// Nobody offered, nobody confirmed, deadline ahead.
    pub waiting: Vec<BoardItem>,
    /// Offered to a professional, deadline ahead.
    pub offered: Vec<BoardItem>,
    /// Confirmed or scheduled, not yet delivered.
    pub confirmed: Vec<BoardItem>,
    /// The alerts: the deadline passed with nobody confirmed.
    pub overdue: Vec<BoardItem>,
}

/// The board of activations: the desk's whole network; a partner's own
/// requests.
#[utoipa::path(get, path = "/api/v1/activations", tag = "activations",
    params(BoardQuery),
    responses(
        (status = 200, description = "The board", body = Board),
        (status = 403, description = "Neither the desk nor a partner", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
pub async fn board(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<BoardQuery>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ReadBoard)?;
    let mut headers = HeaderMap::new();
    MinPosition {
        min_position: q.min_position,
    }
    .wait(&state, "activations", &mut headers)
    .await?;
    let partner = (caller.role == Role::Partner).then_some(caller.organization_id.0);
    let rows: Vec<sqlx::types::Json<ActivationRow>> = sqlx::query_scalar(
        "SELECT to_jsonb(a) FROM activations a
          WHERE network_id = $1 AND status NOT IN ('delivered', 'cancelled')
            AND ($2::uuid IS NULL OR requested_by = $2)
          ORDER BY deadline, activation_id
          LIMIT 1000",
    )
    .bind(caller.network_id.0)
    .bind(partner)
    .fetch_all(state.pool())
    .await?;
    let now = state.settings.clock.now();
    let mut board = Board {
        now,
        waiting: Vec::new(),
        offered: Vec::new(),
        confirmed: Vec::new(),
        overdue: Vec::new(),
    };
    for r in rows {
        let row = r.0;
        let item = BoardItem {
            minutes_to_deadline: (row.deadline - now).whole_minutes(),
            row,
        };
        let unconfirmed = matches!(item.row.status, Status::Waiting | Status::Offered);
        let list =
            if unconfirmed && (item.row.deadline_missed_at.is_some() || item.row.deadline <= now) {
                &mut board.overdue
            } else {
                match item.row.status {
                    Status::Waiting => &mut board.waiting,
                    Status::Offered => &mut board.offered,
                    _ => &mut board.confirmed,
                }
            };
        list.push(item);
    }
    Ok((headers, Json(board)).into_response())
}
