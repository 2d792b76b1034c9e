//! Reading stored events back: the public payload of an event, as stored,
//! turned back into the domain event it came from, so a command can be
//! decided on the state its stream's events build. Personal parts are not
//! needed to decide and are never opened here.

/// Why a stored payload could not be read back as an event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The event type is not one this aggregate knows.
    #[error("unknown event type {0}")]
    UnknownType(String),
    /// The payload does not have the shape of its type.
    #[error("{event_type}: {reason}")]
    Malformed {
        /// The event type.
        event_type: String,
        /// What is wrong.
        reason: String,
    },
}

impl DecodeError {
    /// A payload that failed to deserialise.
    pub fn malformed(event_type: &str, reason: impl std::fmt::Display) -> Self {
        DecodeError::Malformed {
            event_type: event_type.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// Deserialise a public payload as `T`, naming the event type on failure.
pub fn payload<T: serde::de::DeserializeOwned>(
    event_type: &str,
    value: &serde_json::Value,
) -> Result<T, DecodeError> {
    T::deserialize(value).map_err(|e| DecodeError::malformed(event_type, e))
}
