//! The `/api/v1` routes, one module per resource, plus the extractors they
//! share: [`ApiJson`] (JSON bodies whose rejections are problems) and
//! [`MinPosition`] (read your writes).

pub mod activity;
pub mod persons;

use crate::error::{ApiError, FieldError};
use crate::state::AppState;
use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::time::Duration;

/// The routes of `/api/v1`.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/persons", post(persons::take_in_charge))
        .route("/persons/{id}/history", get(persons::history))
        .route("/activity", get(activity::list))
}

/// A JSON body; a malformed one answers a 400/422 problem naming the
/// problem, never axum's plain-text rejection.
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
            return Err(ApiError::BadRequest(
                "the body must be JSON (Content-Type: application/json)".into(),
            ));
        }
        let body = bytes::Bytes::from_request(req, state).await.map_err(|e| {
            if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::PayloadTooLarge(crate::launch::MAX_BODY)
            } else {
                ApiError::BadRequest(e.body_text())
            }
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&body);
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => Ok(ApiJson(v, body)),
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
}

// Keep axum's JsonRejection reachable for handlers that use axum::Json.
impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        ApiError::BadRequest(r.body_text())
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

/// `?min_position=N`: read your writes.
#[derive(Debug, Default, Deserialize)]
pub struct MinPosition {
    /// Wait until the read model has applied this global position.
    pub min_position: Option<i64>,
}

/// The header telling how far a read model had got when a wait timed out.
pub const CAUGHT_UP_HEADER: &str = "sportello-caught-up-to";

/// How long a read waits for `min_position`.
pub const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(2);

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
            READ_YOUR_WRITES_WAIT,
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
