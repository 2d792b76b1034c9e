//! The errors of the application layer, one variant per kind of answer an
//! interface gives: the JSON API maps each to one HTTP status and problem
//! type (in one place, `sportello-http`'s `error.rs`), a page to a message.
//! Internal errors carry their cause for the log, never for the user.

use serde::Serialize;
use sportello_store::StoreError;

/// A field of the input that failed validation.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct FieldError {
    /// JSON pointer-ish path of the field, e.g. `names[0].text`.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

impl FieldError {
    /// `field` is wrong: `message`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// Everything the application layer can answer instead of a result.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No such thing (in the caller's network, or none the caller may
    /// know of).
    #[error("not found")]
    NotFound,
    /// The input is invalid: the offending fields.
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    /// The caller's role or organisation may not do this (the access
    /// policy refused it).
    #[error("this account may not do this")]
    Refused,
    /// The thing is not in a state that allows this, or moved on.
    #[error("{0}")]
    Conflict(String),
    /// No consent in force nor legal basis covers sharing the person's data
    /// with this organisation for this purpose.
    #[error(
        "no consent in force nor legal basis covers organisation {organization} for the purpose {purpose}"
    )]
    NotCovered {
        /// The organisation the data would go to.
        organization: sportello_domain::OrganizationId,
        /// What for.
        purpose: sportello_domain::case::consent::ConsentPurpose,
    },
    /// The caller acted on a version that is no longer the latest (the
    /// latest, as a string).
    #[error("the version has moved on to {0}")]
    PreconditionFailed(String),
    /// An idempotency key already used for another request.
    #[error("this idempotency key was used with another request")]
    IdempotencyMismatch,
    /// The person's data was erased.
    #[error("the person's personal data was erased")]
    Erased,
    /// Too busy now (a write kept colliding): try again shortly.
    #[error("busy; try again")]
    Busy,
    /// Anything else: logged with its cause, shown as an internal error.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    /// One invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        AppError::Invalid(vec![FieldError::new(field, message)])
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => AppError::Conflict("the stream has moved on".into()),
            StoreError::WrongTenant(_) => AppError::NotFound,
            StoreError::IdempotencyMismatch => AppError::IdempotencyMismatch,
            StoreError::Erased(_) => AppError::Erased,
            StoreError::Retry => AppError::Busy,
            StoreError::InvalidExpectedVersion(v) => AppError::invalid(
                "If-Match",
                format!("must name a version of 1 or more, got {v}"),
            ),
            other => AppError::Internal(other.into()),
        }
    }
}

impl From<sportello_domain::DomainError> for AppError {
    fn from(e: sportello_domain::DomainError) -> Self {
        use sportello_domain::DomainError as D;
        match e {
            D::NotFound(_) => AppError::NotFound,
            D::AlreadyExists(_) | D::NotAllowed { .. } => AppError::Conflict(e.to_string()),
            D::NotCovered {
                organization,
                purpose,
            } => AppError::NotCovered {
                organization,
                purpose,
            },
            D::Invalid { field, message } => AppError::invalid(field, message),
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(e: sqlx::Error) -> Self {
        AppError::Internal(e.into())
    }
}
