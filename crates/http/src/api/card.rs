//! `GET /api/v1/persons/{id}/card`: the shared card, filtered for the
//! caller; `?as_of=` for the card as it was. The card is built by
//! [`sportello_projections::card`] from the person's case and referral
//! streams, with personal parts opened by the person's key; which
//! referrals a person has comes from the `referrals` read model (so
//! `?min_position=` applies to it).

use super::{ApiQuery, MinPosition, path_id};
use crate::access::{self, Act, allow};
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use sportello_domain::StreamId;
use sportello_domain::case::STREAM_KIND;
use sportello_domain::case::consent::{ConsentPurpose, Sharing};
use sportello_projections::card::{self, Card};
use time::OffsetDateTime;
use uuid::Uuid;

/// Query of the card.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CardQuery {
    /// Read your writes: wait until this global position is applied.
    pub min_position: Option<i64>,
    /// The card as it was at this moment (RFC 3339).
    pub as_of: Option<String>,
}

/// A card as the caller may see it: the desk's whole card, or what a
/// partner may see of it.
#[derive(Debug, serde::Serialize)]
#[serde(untagged)]
pub enum CardView {
    /// The desk's card.
    Desk(Card),
    /// A partner's card.
    Partner(access::PartnerCard),
}

/// The card of a person, as the caller may see it (`None`: no such case,
/// or none the caller may see).
pub async fn card_for(
    state: &AppState,
    caller: &Caller,
    person: Uuid,
    as_of: Option<OffsetDateTime>,
) -> Result<Option<CardView>, ApiError> {
    let referrals: Vec<(Uuid, Uuid)> = sqlx::query_as(
        "SELECT referral_id, organization_id FROM referrals WHERE network_id = $1 AND person_id = $2",
    )
    .bind(caller.network_id.0)
    .bind(person)
    .fetch_all(state.pool())
    .await?;
    let partner_of = access::partner_scope(caller);
    if let Some(org) = partner_of
        && !referrals.iter().any(|(_, o)| *o == org.0)
    {
        // A partner sees only the people referred to it.
        return Ok(None);
    }
    let mut streams = vec![StreamId(person)];
    streams.extend(referrals.iter().map(|(r, _)| StreamId(*r)));
    let events = state
        .store
        .load_streams(caller.network_id, &streams)
        .await?;
    if !events
        .iter()
        .any(|e| e.stream_id.0 == person && e.stream_kind == STREAM_KIND)
    {
        return Ok(None);
    }
    let events = state.store.open(events).await?;
    let now = state.clock().now();
    let build = |at| {
        card::build(&events, at, now)
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("building a card: {e}")))
    };
    let Some(card) = build(as_of)? else {
        return Ok(None);
    };
    let Some(org) = partner_of else {
        return Ok(Some(CardView::Desk(card)));
    };
    let agreement =
        access::agreement_of(state.pool(), state.clock(), caller.network_id, org).await?;
    // What the person allows today, whatever moment the card shows.
    let sharing = match as_of {
        None => card.sharing(org, ConsentPurpose::Referral),
        Some(_) => build(None)?
            .map(|today| today.sharing(org, ConsentPurpose::Referral))
            .unwrap_or(Sharing::NotCovered),
    };
    Ok(Some(CardView::Partner(access::filter_card_with(
        card,
        org,
        agreement.as_ref(),
        &sharing,
    ))))
}

/// A person's card.
#[utoipa::path(get, path = "/api/v1/persons/{id}/card", tag = "persons",
    params(("id" = uuid::Uuid, Path, description = "The person"), CardQuery),
    responses(
        (status = 200, description = "The card. A need's `state` tells where it stands: `open` (neither answered nor referred), `resolved_at_desk` (with `desk_outcome` and `resolved_at`), `referred` (its last referral sent or acknowledged), `in_progress` (accepted or started), `met` (completed with the need met), `not_met` (completed not met, or its last referral declined, failed, cancelled or redirected). A partner receives its own referrals and their needs only (each need standing as far as its referrals go), no visits, and the identity fields and notes both its agreement and the person's consent allow; the desk's card has an ETag, the case's version", body = Object),
        (status = 403, description = "Not allowed to read cards", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such case (or none the caller may see)", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query parameters", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<CardQuery>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ReadCard)?;
    let person = path_id(&id)?;
    let as_of = match &q.as_of {
        None => None,
        Some(s) => Some(
            OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).map_err(
                |_| {
                    ApiError::Validation(vec![FieldError {
                        field: "as_of".into(),
                        message: "must be an RFC 3339 date-time, e.g. 2026-05-01T10:00:00Z".into(),
                    }])
                },
            )?,
        ),
    };
    let mut headers = HeaderMap::new();
    MinPosition {
        min_position: q.min_position,
    }
    .wait(&state, "referrals", &mut headers)
    .await?;
    let card = card_for(&state, &caller, person, as_of)
        .await?
        .ok_or(ApiError::NotFound)?;
    crate::audit::record(state.pool(), &caller, person, crate::audit::Read::Card).await?;
    // The case's version is the desk's to write on; to a partner it would
    // tell how many things happened on the case.
    if let CardView::Desk(card) = &card {
        headers.insert(
            header::ETAG,
            format!("\"{}\"", card.case.version)
                .parse()
                .expect("digits are a header value"),
        );
    }
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    Ok((headers, Json(card)).into_response())
}
