//! Domain errors: a command the rules refuse. Never a panic, never I/O.

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The thing does not exist (yet).
    #[error("{0} does not exist")]
    NotFound(&'static str),
    /// The thing exists already.
    #[error("{0} already exists")]
    AlreadyExists(&'static str),
    /// The lifecycle does not allow this action from the current status.
    #[error("cannot {action}: it is {status}")]
    NotAllowed {
        /// The action tried.
        action: &'static str,
        /// The status it was tried from.
        status: &'static str,
    },
    /// A field is invalid.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        message: &'static str,
    },
}
