//! `GET /api/v1/persons/{id}/needs/{nid}/matches`: the services that
//! answer a need, best first, each with the reasons of its rank (see
//! [`sportello_domain::matching`]). The providers come from their streams
//! (the truth), their load and acceptance from the `referrals` read model,
//! the person's languages from their sealed identity.

use super::path_id;
use crate::access::{Act, allow};
use crate::api::intake::working_languages;
use crate::auth::Caller;
use crate::command::rebuild;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sportello_domain::aggregate::{CaseAggregate, OrganizationAggregate};
use sportello_domain::case::{PersonIdentity, PersonTakenInCharge, STREAM_KIND};
use sportello_domain::matching::{self, ServiceStats};
use sportello_domain::{NeedId, ServiceId, StreamId};
use sportello_store::Personal;
use std::collections::HashMap;
use uuid::Uuid;

/// One ranked service.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct MatchOut {
    /// The provider.
    pub organization_id: Uuid,
    /// Its name.
    pub organization_name: String,
    /// The service.
    pub service_id: Uuid,
    /// Its name.
    pub service_name: String,
    /// Whether a referral may be sent to it now.
    pub available: bool,
    /// Higher is better.
    pub score: i32,
    /// When it next opens, Europe/Rome local time (`YYYY-MM-DDTHH:MM`).
    pub next_opening: Option<String>,
    /// Why it ranks where it does.
    pub reasons: Vec<String>,
}

/// The services that answer a need, best first.
#[utoipa::path(get, path = "/api/v1/persons/{id}/needs/{nid}/matches", tag = "referrals",
    params(("id" = uuid::Uuid, Path, description = "The person"), ("nid" = uuid::Uuid, Path, description = "The need")),
    responses(
        (status = 200, description = "`need_code` and the ranked `matches`", body = Object),
        (status = 403, description = "Not a desk account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such person or need", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path((id, nid)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::DeskWork)?;
    let person = path_id(&id)?;
    let need = NeedId(path_id(&nid)?);
    let events = state
        .store
        .read_stream(caller.network_id, StreamId(person))
        .await?;
    let recorded: Vec<_> = events.iter().map(|e| e.event.clone()).collect();
    let (case, _) = rebuild::<CaseAggregate>(&recorded)?;
    let case = case.ok_or(ApiError::NotFound)?;
    let code = case
        .needs
        .get(&need)
        .ok_or(ApiError::NotFound)?
        .code
        .clone();
    let identity: PersonIdentity = events
        .iter()
        .find(|e| {
            e.event.stream_kind == STREAM_KIND && e.event.event_type == PersonTakenInCharge::TYPE
        })
        .and_then(|e| match &e.personal {
            Personal::Open(v) => serde_json::from_value(v.clone()).ok(),
            _ => None,
        })
        .unwrap_or_default();
    let languages = working_languages(&identity);

    let org_ids: Vec<Uuid> = sqlx::query_scalar(
        "SELECT organization_id FROM organizations o
          WHERE network_id = $1
            AND EXISTS (SELECT 1 FROM jsonb_array_elements(o.services) s
                         WHERE s->'needs' ? $2)",
    )
    .bind(caller.network_id.0)
    .bind(code.as_str())
    .fetch_all(state.pool())
    .await?;
    let streams: Vec<StreamId> = org_ids.iter().copied().map(StreamId).collect();
    let mut by_stream: HashMap<Uuid, Vec<_>> = HashMap::new();
    for e in state
        .store
        .load_streams(caller.network_id, &streams)
        .await?
    {
        by_stream.entry(e.stream_id.0).or_default().push(e);
    }
    let stats: Vec<(Uuid, Uuid, i64, i64, i64)> = sqlx::query_as(
        "SELECT organization_id, service_id,
                count(*) FILTER (WHERE status IN ('sent', 'acknowledged', 'accepted', 'in_progress')),
                count(*) FILTER (WHERE accepted_at IS NOT NULL),
                count(*) FILTER (WHERE declined_at IS NOT NULL)
           FROM referrals WHERE network_id = $1 AND organization_id = ANY($2)
          GROUP BY organization_id, service_id",
    )
    .bind(caller.network_id.0)
    .bind(&org_ids)
    .fetch_all(state.pool())
    .await?;
    let mut providers = Vec::new();
    for (id, events) in by_stream {
        let (org, _) = rebuild::<OrganizationAggregate>(&events)?;
        let Some(org) = org else { continue };
        let count = |n: i64| u32::try_from(n).unwrap_or(u32::MAX);
        let s = stats
            .iter()
            .filter(|(o, ..)| *o == id)
            .map(|(_, sid, open, acc, dec)| {
                (
                    ServiceId(*sid),
                    ServiceStats {
                        open: count(*open),
                        accepted: count(*acc),
                        declined: count(*dec),
                    },
                )
            })
            .collect();
        providers.push((org, s));
    }
    let ranked = matching::rank(
        &code,
        &languages,
        &providers,
        &state.settings.working_calendar(),
        state.clock().now(),
    );
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let matches: Vec<MatchOut> = ranked
        .into_iter()
        .map(|m| MatchOut {
            organization_id: m.organization.0,
            organization_name: m.organization_name,
            service_id: m.service.0,
            service_name: m.service_name,
            available: m.available,
            score: m.score,
            next_opening: m.next_opening.and_then(|t| t.format(&fmt).ok()),
            reasons: m.reasons,
        })
        .collect();
    Ok(Json(serde_json::json!({
        "person_id": person,
        "need_id": need.0,
        "need_code": code.as_str(),
        "matches": matches,
    }))
    .into_response())
}
