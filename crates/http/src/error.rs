//! The HTTP error policy: one enum, each variant one status, rendered as an
//! RFC 9457 `application/problem+json` with a stable `type` URI. Internal
//! errors are logged with their cause and shown as a plain 500 — never a
//! database message, a stack trace or personal data.
//!
//! Every error answered under `/api/` is such a problem, whoever made it:
//! our handlers and extractors answer an [`ApiError`]; what the router
//! answers itself (an unknown route, a method a route does not take) and
//! any rejection of axum's own extractors (a path that does not decode)
//! are turned into one by [`problems`], so a client never has to parse
//! an empty or plain-text error.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use sportello_store::StoreError;

/// Base of the problem type URIs.
pub const PROBLEM_BASE: &str = "https://sportello.example/problems/";

use sportello_app::AppError;
pub use sportello_app::FieldError;

/// A field that failed validation, as the OpenAPI document describes it
/// (the application layer's [`FieldError`]).
#[derive(utoipa::ToSchema)]
#[schema(as = FieldError)]
#[expect(dead_code, reason = "a schema only: FieldError is what is sent")]
pub struct FieldErrorDoc {
    /// JSON pointer-ish path of the field, e.g. `names[0].text`.
    field: String,
    /// What is wrong with it.
    message: String,
}

/// Every error an API handler can answer.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body is not valid JSON or has the wrong shape.
    #[error("{0}")]
    BadRequest(String),
    /// 413: the body is larger than the server accepts.
    #[error("the body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// 401: no valid bearer token.
    #[error("a valid bearer token is required")]
    Unauthorized,
    /// 403: the caller's account may not do this.
    #[error("this account may not do this")]
    Forbidden,
    /// 403: a request made with a session cookie lacks its CSRF token.
    #[error("a request made with a session must carry its CSRF token (X-CSRF-Token)")]
    CsrfRequired,
    /// 429: too many requests; retry after this many seconds.
    #[error("too many requests; retry in {0} s")]
    TooManyRequests(u64),
    /// 404: no such resource (in the caller's network).
    #[error("not found")]
    NotFound,
    /// 404: no route at this path.
    #[error("no route at this path; the routes are listed in /api/v1/openapi.json")]
    NoRoute,
    /// 405: the route does not take this method.
    #[error("this route does not take this method (see the Allow header)")]
    MethodNotAllowed,
    /// 415: the body is not of a type the route takes.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 409: the stream moved on (or already exists).
    #[error("{0}")]
    Conflict(String),
    /// 409: no consent in force nor legal basis covers sharing the
    /// person's data with this organisation for this purpose; the problem
    /// names both (`organization_id`, `purpose`).
    #[error(
        "no consent in force nor legal basis covers organisation {organization} for the purpose {purpose}"
    )]
    NotCovered {
        /// The organisation the data would go to.
        organization: sportello_domain::OrganizationId,
        /// What for.
        purpose: sportello_domain::case::consent::ConsentPurpose,
    },
    /// 412: `If-Match` names a version the stream is no longer at.
    #[error("the resource changed since version {0}")]
    PreconditionFailed(String),
    /// 422: fields failed validation.
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    /// 422: an idempotency key reused with another body.
    #[error("this Idempotency-Key was used with a different request")]
    IdempotencyMismatch,
    /// 410: the person's data was erased.
    #[error("the personal data of this person was erased")]
    Erased,
    /// 503: the stream is too busy right now; retry shortly.
    #[error("the resource is busy; retry shortly")]
    Busy,
    /// 500: anything else; logged, not shown.
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// An RFC 9457 problem, as documented (the answer of every error).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Problem)]
pub struct ProblemDoc {
    /// A stable URI per kind of error.
    #[serde(rename = "type")]
    pub type_: String,
    /// Short human summary.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong here.
    pub detail: String,
    /// For validation errors: the offending fields.
    #[schema(value_type = Option<Vec<FieldErrorDoc>>)]
    pub errors: Option<Vec<FieldError>>,
    /// For `consent-required`: the organisation not covered.
    pub organization_id: Option<uuid::Uuid>,
    /// For `consent-required`: the purpose not covered (`referral`, `mediation`).
    pub purpose: Option<String>,
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    type_: String,
    title: &'a str,
    status: u16,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [FieldError]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    organization_id: Option<uuid::Uuid>,
    #[serde(skip_serializing_if = "Option::is_none")]
    purpose: Option<&'static str>,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => {
                (StatusCode::BAD_REQUEST, "bad-request", "Malformed request")
            }
            ApiError::PayloadTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload-too-large",
                "Body too large",
            ),
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Not authenticated",
            ),
            ApiError::Forbidden => (StatusCode::FORBIDDEN, "forbidden", "Not allowed"),
            ApiError::CsrfRequired => (StatusCode::FORBIDDEN, "csrf", "CSRF token missing"),
            ApiError::TooManyRequests(_) => (
                StatusCode::TOO_MANY_REQUESTS,
                "too-many-requests",
                "Too many requests",
            ),
            ApiError::NotFound | ApiError::NoRoute => {
                (StatusCode::NOT_FOUND, "not-found", "Not found")
            }
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "Method not allowed",
            ),
            ApiError::UnsupportedMediaType(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
            ),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::NotCovered { .. } => (
                StatusCode::CONFLICT,
                "consent-required",
                "No consent or legal basis covers this organisation",
            ),
            ApiError::PreconditionFailed(_) => (
                StatusCode::PRECONDITION_FAILED,
                "precondition-failed",
                "Version mismatch",
            ),
            ApiError::Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "Invalid fields",
            ),
            ApiError::IdempotencyMismatch => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "idempotency-key-reused",
                "Idempotency key reused",
            ),
            ApiError::Erased => (StatusCode::GONE, "erased", "Personal data erased"),
            ApiError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "busy", "Busy"),
            ApiError::Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Internal error",
            ),
        }
    }
}

/// `problem` as an `application/problem+json` answer of `status`.
fn render(status: StatusCode, problem: Problem<'_>) -> Response {
    let mut res = (status, Json(problem)).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    res
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, kind, title) = self.parts();
        if let ApiError::Internal(e) = &self {
            tracing::error!(error = ?e, "internal error");
        }
        let errors = match &self {
            ApiError::Validation(f) => Some(f.as_slice()),
            _ => None,
        };
        let (organization_id, purpose) = match &self {
            ApiError::NotCovered {
                organization,
                purpose,
            } => (Some(organization.0), Some(purpose.as_str())),
            _ => (None, None),
        };
        let mut res = render(
            status,
            Problem {
                type_: format!("{PROBLEM_BASE}{kind}"),
                title,
                status: status.as_u16(),
                detail: self.to_string(),
                errors,
                organization_id,
                purpose,
            },
        );
        let retry_after = match &self {
            ApiError::Busy => Some(1),
            ApiError::TooManyRequests(s) => Some(*s),
            _ => None,
        };
        if status == StatusCode::UNAUTHORIZED {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(s) = retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(s));
        }
        res
    }
}

impl ApiError {
    /// The error an answer of `status` made elsewhere than by our handlers
    /// stands for (an axum rejection, the router's own answers), with
    /// `detail` where it says more than the status; `None` for a status
    /// none of ours has.
    fn of_status(status: StatusCode, detail: Option<String>) -> Option<Self> {
        let detail = || {
            detail.clone().unwrap_or_else(|| {
                status
                    .canonical_reason()
                    .unwrap_or("the request failed")
                    .to_owned()
            })
        };
        Some(match status {
            StatusCode::BAD_REQUEST => ApiError::BadRequest(detail()),
            StatusCode::NOT_FOUND => ApiError::NoRoute,
            StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(crate::launch::MAX_BODY),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(detail()),
            StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
            StatusCode::FORBIDDEN => ApiError::Forbidden,
            StatusCode::TOO_MANY_REQUESTS => ApiError::TooManyRequests(1),
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::Validation(vec![FieldError {
                field: String::new(),
                message: detail(),
            }]),
            StatusCode::SERVICE_UNAVAILABLE => ApiError::Busy,
            StatusCode::INTERNAL_SERVER_ERROR => {
                ApiError::Internal(anyhow::anyhow!("answered outside a handler: {}", detail()))
            }
            _ => return None,
        })
    }
}

/// Turn every error answered under `/api/` that is not a problem yet — the
/// router's own `404` and `405`, a rejection of one of axum's extractors —
/// into one, keeping the answer's status and other headers (`Allow`,
/// `Retry-After`). A plain-text rejection's words become the `detail`; a
/// status none of our errors has gets the type `http-<status>`.
pub async fn problems(req: Request, next: Next) -> Response {
    let api = req.uri().path().starts_with("/api/");
    let res = next.run(req).await;
    let status = res.status();
    if !api || !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let content_type = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if content_type.starts_with("application/problem+json") {
        return res;
    }
    let plain = content_type.starts_with("text/plain");
    let (parts, body) = res.into_parts();
    // Rejections are a line or two; anything longer is not shown.
    let detail = match axum::body::to_bytes(body, 1024).await {
        Ok(text) if plain && !text.is_empty() => Some(String::from_utf8_lossy(&text).into_owned()),
        _ => None,
    };
    let mut problem = match ApiError::of_status(status, detail.clone()) {
        Some(e) => e.into_response(),
        None => {
            let title = status.canonical_reason().unwrap_or("Error");
            render(
                status,
                Problem {
                    type_: format!("{PROBLEM_BASE}http-{}", status.as_u16()),
                    title,
                    status: status.as_u16(),
                    detail: detail.unwrap_or_else(|| title.to_owned()),
                    errors: None,
                    organization_id: None,
                    purpose: None,
                },
            )
        }
    };
    // The answer's own headers stand (a 503's Retry-After, a 405's
    // Allow); only the body and its type are the problem's.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            problem.headers_mut().insert(name, value.clone());
        }
    }
    problem
}

/// The answer to a request no route takes: under `/api/`, a `404`
/// problem; elsewhere (the pages), a plain `404`.
pub async fn no_route(req: Request) -> Response {
    if req.uri().path().starts_with("/api/") {
        ApiError::NoRoute.into_response()
    } else {
        StatusCode::NOT_FOUND.into_response()
    }
}

/// The application layer's answers, each to its one status.
impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        match e {
            AppError::NotFound => ApiError::NotFound,
            AppError::Invalid(fields) => ApiError::Validation(fields),
            AppError::Refused => ApiError::Forbidden,
            AppError::Conflict(why) => ApiError::Conflict(why),
            AppError::NotCovered {
                organization,
                purpose,
            } => ApiError::NotCovered {
                organization,
                purpose,
            },
            AppError::PreconditionFailed(v) => ApiError::PreconditionFailed(v),
            AppError::IdempotencyMismatch => ApiError::IdempotencyMismatch,
            AppError::Erased => ApiError::Erased,
            AppError::Busy => ApiError::Busy,
            AppError::Internal(e) => ApiError::Internal(e),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        AppError::from(e).into()
    }
}

impl From<sportello_domain::DomainError> for ApiError {
    fn from(e: sportello_domain::DomainError) -> Self {
        AppError::from(e).into()
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::Internal(e.into())
    }
}
