//! The `/api/v1` routes ([`routes`]), one module per resource, plus the
//! extractors they share: [`ApiJson`] (JSON bodies whose rejections are problems) and
//! [`MinPosition`] (read your writes).

pub mod accounts;
pub mod activation_report;
pub mod activations;
pub mod activity;
pub mod audit;
pub mod card;
pub mod case;
pub mod consents;
pub mod inbox;
pub mod intake;
pub mod matches;
pub mod organizations;
pub mod period;
pub mod persons;
pub mod professionals;
pub mod referrals;
pub mod reports;
pub mod subject;

use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::Duration;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Every route of the API and the operations endpoints, each registered
/// with its OpenAPI description (`#[utoipa::path]`): the router and the
/// document come from this one list, so no route goes undocumented, and
/// the authorization matrix test (`tests/matrix.rs`) enumerates exactly
/// the routes served. Routes are added here and nowhere else (the sign-in
/// pages, which are not API, are in [`crate::launch::router`]).
pub fn routes() -> OpenApiRouter<AppState> {
    use crate::ops;
    OpenApiRouter::with_openapi(crate::openapi::ApiDoc::openapi())
        .routes(routes!(ops::healthz))
        .routes(routes!(ops::readyz))
        .routes(routes!(ops::metrics))
        .routes(routes!(persons::take_in_charge))
        .routes(routes!(persons::search))
        .routes(routes!(card::get))
        .routes(routes!(persons::history))
        .routes(routes!(subject::export))
        .routes(routes!(subject::erase))
        .routes(routes!(case::record_visit))
        .routes(routes!(case::record_need))
        .routes(routes!(case::resolve_need))
        .routes(routes!(matches::get))
        .routes(routes!(consents::record))
        .routes(routes!(consents::withdraw))
        .routes(routes!(consents::record_legal_basis))
        .routes(routes!(case::close))
        .routes(routes!(case::reopen))
        .routes(routes!(referrals::send))
        .routes(routes!(referrals::act))
        .routes(routes!(organizations::list, organizations::create))
        .routes(routes!(organizations::get, organizations::patch))
        .routes(routes!(inbox::get))
        .routes(routes!(reports::bottlenecks))
        .routes(routes!(activation_report::get))
        .routes(routes!(activity::list))
        .routes(routes!(accounts::me))
        .routes(routes!(accounts::create))
        .routes(routes!(accounts::issue))
        .routes(routes!(accounts::revoke))
        .routes(routes!(accounts::disable))
        .routes(routes!(audit::reads))
        .routes(routes!(audit::sign_ins))
        .routes(routes!(professionals::list, professionals::create))
        .routes(routes!(professionals::get, professionals::patch))
        .routes(routes!(professionals::queue))
        .routes(routes!(activations::board, activations::request))
        .routes(routes!(activations::get))
        .routes(routes!(activations::act))
}

/// A JSON body; a malformed one answers a 400/422 problem naming the
/// problem, one of another type a 415, one too large a 413 — never axum's
/// plain-text rejection.
pub struct ApiJson<T>(pub T, pub bytes::Bytes);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let content_json = req
            .headers()
            .get(axum::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !content_json {
            return Err(not_json());
        }
        let body = read_body(req, state).await?;
        parse_json(&body).map(|v| ApiJson(v, body))
    }
}

/// A body that is not JSON: `415`.
fn not_json() -> ApiError {
    ApiError::UnsupportedMediaType("the body must be JSON (Content-Type: application/json)".into())
}

/// The body's bytes, within [`crate::launch::MAX_BODY`] (`413` beyond).
async fn read_body<S: Send + Sync>(req: Request, state: &S) -> Result<bytes::Bytes, ApiError> {
    bytes::Bytes::from_request(req, state).await.map_err(|e| {
        if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(crate::launch::MAX_BODY)
        } else {
            ApiError::BadRequest(e.body_text())
        }
    })
}

/// Parse a JSON body, naming the offending field on failure.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let field = e.path().to_string();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(ApiError::BadRequest(format!("malformed JSON: {inner}")))
            } else {
                Err(ApiError::Validation(vec![FieldError {
                    field: if field == "." { String::new() } else { field },
                    message: inner.to_string(),
                }]))
            }
        }
    }
}

/// A JSON body that may be absent (an action without details): an empty
/// body is `None`; a present one must be JSON, as for [`ApiJson`].
pub struct OptionalJson<T>(pub Option<T>, pub bytes::Bytes);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for OptionalJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let has_body = req
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|v| v != "0");
        let typed = req.headers().contains_key(axum::http::header::CONTENT_TYPE);
        if !has_body || !typed {
            let body = read_body(req, state).await?;
            if body.is_empty() {
                return Ok(OptionalJson(None, body));
            }
            return Err(not_json());
        }
        let ApiJson(v, raw) = ApiJson::<T>::from_request(req, state).await?;
        Ok(OptionalJson(Some(v), raw))
    }
}

// Keep axum's JsonRejection reachable for handlers that use axum::Json,
// each kind with its own status.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            axum::http::StatusCode::UNSUPPORTED_MEDIA_TYPE => not_json(),
            axum::http::StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::PayloadTooLarge(crate::launch::MAX_BODY)
            }
            axum::http::StatusCode::UNPROCESSABLE_ENTITY => {
                ApiError::Validation(vec![FieldError {
                    field: String::new(),
                    message: r.body_text(),
                }])
            }
            _ => ApiError::BadRequest(r.body_text()),
        }
    }
}

/// Query parameters; a malformed query answers a 422 problem naming the
/// parameter, never axum's plain-text rejection.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> axum::extract::FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, ApiError> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(ApiQuery)
            .map_err(|e| {
                ApiError::Validation(vec![FieldError {
                    field: e.path().to_string(),
                    message: e.into_inner().to_string(),
                }])
            })
    }
}

/// The `Idempotency-Key` of a request, bound to the account making it, its
/// route and body: a retry with the same key and body answers the first
/// answer; the same key with another body, or from another account,
/// answers `422` — a first answer is given back only to whoever had it
/// (a retry is answered before some access checks, which depend on what
/// the first request changed).
pub fn idempotency(
    headers: &HeaderMap,
    caller: &crate::auth::Caller,
    route: &str,
    body: &[u8],
) -> Result<Option<sportello_store::Idempotency>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = v
        .to_str()
        .ok()
        .and_then(|s| uuid::Uuid::parse_str(s.trim()).ok())
        .ok_or_else(|| {
            ApiError::Validation(vec![FieldError {
                field: "Idempotency-Key".into(),
                message: "must be a UUID".into(),
            }])
        })?;
    let mut request = caller.account_id.0.as_bytes().to_vec();
    request.extend_from_slice(route.as_bytes());
    request.push(0);
    request.extend_from_slice(body);
    Ok(Some(sportello_store::Idempotency::for_request(
        key, &request,
    )))
}

/// An id for what a request creates: derived from its idempotency key,
/// route and body when there is a key — a retry names the same thing, the
/// same body under another key a new one — and random (v7) otherwise.
/// `what` keeps apart the things one request creates.
pub fn minted_id(idem: Option<&sportello_store::Idempotency>, what: &str) -> uuid::Uuid {
    use sha2::{Digest, Sha256};
    match idem {
        None => uuid::Uuid::now_v7(),
        Some(i) => {
            let digest = Sha256::new()
                .chain_update(i.key.as_bytes())
                .chain_update(i.request_hash)
                .chain_update(what.as_bytes())
                .finalize();
            uuid::Builder::from_custom_bytes(digest[..16].try_into().expect("16 bytes")).into_uuid()
        }
    }
}

/// The metadata of `caller`'s command, at the time of the application's
/// clock (what time drives — activations and their scheduler — reads it).
pub fn clocked_metadata(
    state: &AppState,
    caller: &crate::auth::Caller,
) -> sportello_domain::Metadata {
    sportello_domain::Metadata::for_command(
        caller.account_id,
        caller.organization_id,
        state.settings.clock.now(),
    )
}

/// `If-Match: "<version>"`: the stream version the write expects.
pub fn if_match(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(v) = headers.get(axum::http::header::IF_MATCH) else {
        return Ok(None);
    };
    let bad = || {
        ApiError::Validation(vec![FieldError {
            field: "If-Match".into(),
            message: "must be an ETag this API gave, like \"3\"".into(),
        }])
    };
    let s = v.to_str().map_err(|_| bad())?.trim();
    let s = s.strip_prefix("W/").unwrap_or(s);
    let s = s.trim_matches('"');
    let version: i64 = s.parse().map_err(|_| bad())?;
    if version < 1 {
        return Err(bad());
    }
    Ok(Some(version))
}

/// A path id: anything but a UUID is not found.
pub fn path_id(s: &str) -> Result<uuid::Uuid, ApiError> {
    s.parse().map_err(|_| ApiError::NotFound)
}

/// The answer of a write: the stream's new version (also the `ETag`) and
/// the global position of its last event (for `?min_position=`).
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct Written {
    /// The stream written to (person, referral or organisation id).
    pub id: uuid::Uuid,
    /// The stream's version after the write.
    pub version: i64,
    /// Global position of the last event.
    pub position: i64,
}

impl Written {
    /// From the store's answer.
    pub fn of(r: &sportello_store::AppendResult) -> Self {
        Written {
            id: r.stream_id.0,
            version: r.last_version,
            position: r.position,
        }
    }

    /// `201 Created` with the `ETag`, this body, and the `Location` of
    /// what was created under `collection`.
    pub fn created(self, collection: &str) -> crate::answer::Answer {
        let location = format!("{collection}/{}", self.id);
        self.answer(axum::http::StatusCode::CREATED)
            .header(axum::http::header::LOCATION, &location)
    }

    /// `status` with the `ETag` and this body.
    pub fn answer(self, status: axum::http::StatusCode) -> crate::answer::Answer {
        let etag = format!("\"{}\"", self.version);
        crate::answer::Answer::json(status, &self).header(axum::http::header::ETAG, &etag)
    }
}

/// A page of a list: after an opaque cursor (a row id), at most `limit`
/// rows (1 to 500, default 100).
#[derive(Clone, Copy, Debug)]
pub struct Page {
    /// The last row id of the previous page (nil: from the start).
    pub after: uuid::Uuid,
    /// Page size.
    pub limit: i64,
}

impl Page {
    /// Parse `cursor` and `limit` query parameters.
    pub fn parse(cursor: Option<&str>, limit: Option<i64>) -> Result<Self, ApiError> {
        use base64::Engine;
        let bad = |field: &str, message: &str| {
            ApiError::Validation(vec![FieldError {
                field: field.into(),
                message: message.into(),
            }])
        };
        let limit = limit.unwrap_or(100);
        if !(1..=500).contains(&limit) {
            return Err(bad("limit", "must be 1 to 500"));
        }
        let after = match cursor {
            None => uuid::Uuid::nil(),
            Some(c) => base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c)
                .ok()
                .and_then(|b| uuid::Uuid::from_slice(&b).ok())
                .ok_or_else(|| bad("cursor", "not a cursor from this API"))?,
        };
        Ok(Page { after, limit })
    }

    /// The cursor of the next page, if this one was full (`last`: the id
    /// of its last row).
    pub fn next(&self, rows: usize, last: Option<uuid::Uuid>) -> Option<String> {
        use base64::Engine;
        (rows as i64 == self.limit)
            .then_some(last)
            .flatten()
            .map(|id| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(id.as_bytes()))
    }
}

/// `?min_position=N`: read your writes.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MinPosition {
    /// Wait until the read model has applied this global position.
    pub min_position: Option<i64>,
}

/// The header telling how far a read model had got when a wait timed out.
pub const CAUGHT_UP_HEADER: &str = "sportello-caught-up-to";

impl MinPosition {
    /// Wait (bounded) for `projection` to reach `min_position`; on timeout
    /// add the [`CAUGHT_UP_HEADER`] with the position it had reached.
    pub async fn wait(
        &self,
        state: &AppState,
        projection: &str,
        headers: &mut HeaderMap,
    ) -> Result<(), ApiError> {
        let Some(pos) = self.min_position else {
            return Ok(());
        };
        if pos < 0 {
            return Err(ApiError::Validation(vec![FieldError {
                field: "min_position".into(),
                message: "must be zero or more".into(),
            }]));
        }
        let (reached, cp) = sportello_store::projection::wait_for_position(
            state.pool(),
            projection,
            pos,
            Duration::from_millis(state.settings.read_your_writes_wait_ms),
        )
        .await?;
        if !reached {
            headers.insert(
                CAUGHT_UP_HEADER,
                cp.cursor
                    .position
                    .to_string()
                    .parse()
                    .expect("digits are a header value"),
            );
        }
        Ok(())
    }
}
