//! The person's rights over their data (GDPR arts. 15, 17, 20):
//! `GET /api/v1/persons/{id}/export` hands over everything held about
//! them — the whole card, every event of their case with its personal
//! parts opened, and who has read their data — as JSON, or as a document
//! to print with `?format=html`. Exports are themselves audited reads.
//! `POST /api/v1/persons/{id}/erase` erases them (see [`crate::erasure`]).

use super::{ApiQuery, path_id};
use crate::access::{Act, allow};
use crate::audit::{self, Read};
use crate::auth::Caller;
use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use askama::Template;
use axum::Json;
use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use uuid::Uuid;

/// Query of the export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `json` (default) or `html` (a document to hand to the person).
    pub format: Option<String>,
}

/// A read of the person's data, as the person is told of it: which
/// organisation, in which role, when, what and why.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeenBy {
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: OffsetDateTime,
    /// The organisation.
    pub organization_id: Uuid,
    /// Its name.
    pub organization_name: Option<String>,
    /// The reader's role.
    pub role: String,
    /// `card`, `history` or `export`.
    pub what: String,
    /// Why.
    pub purpose: String,
}

/// Everything held about a person.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Export {
    /// The person.
    pub person_id: Uuid,
    /// When this export was made.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub exported_at: OffsetDateTime,
    /// The whole card (as the desk sees it).
    #[schema(value_type = Object)]
    pub card: Value,
    /// Every event of the case, oldest first, personal parts opened.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<Value>,
    /// Who has read the person's data, newest first.
    pub seen_by: Vec<SeenBy>,
}

/// Everything held about a person, for them.
#[utoipa::path(get, path = "/api/v1/persons/{id}/export", tag = "persons",
    params(("id" = uuid::Uuid, Path, description = "The person"), ExportQuery),
    responses(
        (status = 200, description = "Everything held about the person (JSON, or an HTML document with ?format=html)", body = Export),
        (status = 403, description = "Only a desk supervisor hands a person their data", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such case in the network", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Unknown format", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::SubjectRights)?;
    let html = match q.format.as_deref() {
        None | Some("json") => false,
        Some("html") => true,
        Some(_) => {
            return Err(ApiError::Validation(vec![FieldError {
                field: "format".into(),
                message: "must be json or html".into(),
            }]));
        }
    };
    let person = path_id(&id)?;
    let Some(super::card::CardView::Desk(card)) =
        super::card::card_for(&state, &caller, person, None).await?
    else {
        // Only the desk hands a person their data (`allow` above).
        return Err(ApiError::NotFound);
    };
    let events = super::persons::case_history(&state, caller.network_id, person)
        .await?
        .unwrap_or_default();
    audit::record(state.pool(), &caller, person, Read::Export).await?;
    let seen_by = audit::reads(
        state.pool(),
        caller.network_id.0,
        Some(person),
        None,
        None,
        10_000,
    )
    .await?
    .into_iter()
    .map(|r| SeenBy {
        at: r.at,
        organization_id: r.organization_id,
        organization_name: r.organization_name,
        role: r.role,
        what: r.what,
        purpose: r.purpose,
    })
    .collect();
    let internal = |e: serde_json::Error| ApiError::Internal(e.into());
    let export = Export {
        person_id: person,
        exported_at: state.clock().now(),
        card: serde_json::to_value(&card).map_err(internal)?,
        events: events
            .iter()
            .map(serde_json::to_value)
            .collect::<Result<_, _>>()
            .map_err(internal)?,
        seen_by,
    };
    if html {
        document(&export).map(|d| Html(d).into_response())
    } else {
        Ok(Json(export).into_response())
    }
}

/// Body of `POST /api/v1/persons/{id}/erase`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseIn {
    /// `request`: the person asked (the retention rule erases on its own).
    pub reason: String,
}

/// Erase a person's data: their key is deleted, so nothing personal of
/// theirs can be read anywhere again; the case keeps its facts (and the
/// reports their figures) and records the erasure.
#[utoipa::path(post, path = "/api/v1/persons/{id}/erase", tag = "persons",
    params(("id" = uuid::Uuid, Path, description = "The person")),
    request_body = EraseIn,
    responses(
        (status = 200, description = "Erased; ETag is the case's version", body = super::Written),
        (status = 403, description = "Only a desk supervisor erases a person's data", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 404, description = "No such case in the network", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 410, description = "Already erased", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid reason", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = [])))]
#[tracing::instrument(skip_all, fields(network = %caller.network_id, account = %caller.account_id))]
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    super::ApiJson(body, _): super::ApiJson<EraseIn>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::SubjectRights)?;
    let person = path_id(&id)?;
    if body.reason != "request" {
        return Err(ApiError::Validation(vec![FieldError {
            field: "reason".into(),
            message: "must be request (the retention rule erases on its own)".into(),
        }]));
    }
    let done = crate::erasure::erase(
        &state.store,
        caller.network_id,
        sportello_domain::PersonId(person),
        crate::erasure::Why::Request(caller.account_id, caller.organization_id),
        state.clock().now(),
    )
    .await?
    .ok_or(ApiError::Erased)?;
    Ok(super::Written::of(&done)
        .answer(axum::http::StatusCode::OK)
        .into_response())
}

struct Section {
    title: &'static str,
    body: String,
}

#[derive(Template)]
#[template(path = "export.html")]
struct ExportPage<'a> {
    person_id: Uuid,
    exported_at: &'a str,
    sections: Vec<Section>,
}

/// The export as a document a person can read: each part of the card in
/// its own section, values as nested lists, every text escaped.
fn document(export: &Export) -> Result<String, ApiError> {
    let part = |key: &str| export.card.get(key).cloned().unwrap_or(Value::Null);
    let sections = vec![
        Section {
            title: "Chi sei · Who you are",
            body: render(&part("identity")),
        },
        Section {
            title: "Consensi · Consents",
            body: render(&Value::Array(
                ["consents", "legal_bases"]
                    .iter()
                    .map(|k| part(k))
                    .filter(|v| !v.is_null())
                    .collect(),
            )),
        },
        Section {
            title: "Bisogni · Needs",
            body: render(&part("needs")),
        },
        Section {
            title: "Invii ai servizi · Referrals",
            body: render(&part("referrals")),
        },
        Section {
            title: "Contatti con lo Sportello · Visits",
            body: render(&part("visits")),
        },
        Section {
            title: "Chi ha consultato i tuoi dati · Who has read your data",
            body: render(&serde_json::to_value(&export.seen_by).unwrap_or_default()),
        },
        Section {
            title: "Registro completo · Full record",
            body: render(&Value::Array(export.events.clone())),
        },
    ];
    let exported_at = export
        .exported_at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    ExportPage {
        person_id: export.person_id,
        exported_at: &exported_at,
        sections,
    }
    .render()
    .map_err(|e| ApiError::Internal(e.into()))
}

/// Escape text for HTML.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A JSON value as nested HTML lists (keys made readable).
fn render(v: &Value) -> String {
    match v {
        Value::Null => "<p>—</p>".into(),
        Value::Bool(b) => escape(if *b { "sì · yes" } else { "no" }),
        Value::Number(n) => escape(&n.to_string()),
        Value::String(s) => escape(s),
        Value::Array(items) if items.is_empty() => "<p>—</p>".into(),
        Value::Array(items) => {
            let lis: String = items
                .iter()
                .map(|i| format!("<li>{}</li>", render(i)))
                .collect();
            format!("<ol>{lis}</ol>")
        }
        Value::Object(map) => {
            let rows: String = map
                .iter()
                .map(|(k, v)| {
                    format!(
                        "<dt>{}</dt><dd>{}</dd>",
                        escape(&k.replace('_', " ")),
                        render(v)
                    )
                })
                .collect();
            format!("<dl>{rows}</dl>")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_escapes_every_text() {
        let v = serde_json::json!({"names": [{"text": "<script>alert('x')</script> & co"}], "a_b": true});
        let html = render(&v);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; co"));
        assert!(html.contains("<dt>a b</dt>"));
    }
}
