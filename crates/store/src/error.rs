//! The store's error type. Callers map these to domain or HTTP answers;
//! database details stay inside (they are logged, never shown).

use uuid::Uuid;

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The stream is not at the expected version (optimistic concurrency).
    #[error("version conflict on stream {stream_id}: {detail}")]
    Conflict {
        /// The stream.
        stream_id: Uuid,
        /// What the database said (versions only, no data).
        detail: String,
    },
    /// The stream belongs to another network or is of another kind.
    #[error("stream {0} belongs to another network or kind")]
    WrongTenant(Uuid),
    /// The idempotency key was already used with a different request.
    #[error("idempotency key reused with a different request")]
    IdempotencyMismatch,
    /// An expected version below 1 (use `NoStream` for a new stream).
    #[error("an expected version must be at least 1, got {0}")]
    InvalidExpectedVersion(i64),
    /// An append carried no events.
    #[error("an append needs at least one event")]
    Empty,
    /// The transaction is older than the stream's last append; retry in a
    /// new transaction (the pool-level `append` does so by itself).
    #[error("transaction older than the stream's last append; retry")]
    Retry,
    /// The person's key was shredded: no personal data can be written for them.
    #[error("personal data of person {0} was erased")]
    Erased(Uuid),
    /// Encryption or decryption failed (wrong master key, corrupt data).
    #[error("crypto: {0}")]
    Crypto(String),
    /// A stored event cannot be upcast.
    #[error(transparent)]
    Upcast(#[from] sportello_domain::UpcastError),
    /// A stored value does not have the expected shape.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
}

impl StoreError {
    /// Map a database error raised by `sportello_append` to its meaning.
    /// `any_version` says the writer did not expect a version: a
    /// concurrent append taking the version it computed is then a reason
    /// to retry, not a conflict.
    pub(crate) fn from_append(err: sqlx::Error, stream_id: Uuid, any_version: bool) -> Self {
        if let Some(db) = err.as_database_error() {
            match db.code().as_deref() {
                Some("SPC01") => {
                    return StoreError::Conflict {
                        stream_id,
                        detail: db.message().to_owned(),
                    };
                }
                Some("SPC02") => return StoreError::Retry,
                Some("SPT01") => return StoreError::WrongTenant(stream_id),
                Some("SPI01") => return StoreError::IdempotencyMismatch,
                Some("SPE01") => return StoreError::Empty,
                Some("23505") if db.constraint() == Some("events_stream_id_version_key") => {
                    // Another append took this version first.
                    return if any_version {
                        StoreError::Retry
                    } else {
                        StoreError::Conflict {
                            stream_id,
                            detail: "the stream has moved on".into(),
                        }
                    };
                }
                Some("23505") if db.constraint() == Some("events_event_id_key") => {
                    return StoreError::Conflict {
                        stream_id,
                        detail: "an event with this id already exists".into(),
                    };
                }
                _ => {}
            }
        }
        StoreError::Database(err)
    }
}
