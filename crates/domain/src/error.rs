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
    /// Neither a consent in force nor a legal basis covers sharing the
    /// person's data with this organisation for this purpose.
    #[error(
        "no consent in force nor legal basis covers organisation {organization} for the purpose {purpose}"
    )]
    NotCovered {
        /// The organisation the data would go to.
        organization: crate::ids::OrganizationId,
        /// What for.
        purpose: crate::case::consent::ConsentPurpose,
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
