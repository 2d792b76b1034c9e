//! Idempotent requests: an `Idempotency-Key` is claimed once per network,
//! and the request's first answer is kept with it in the transaction of
//! the request's events, so every retry — after the first answer or racing
//! it — is given that answer back and appends nothing.
//!
//! A request carried out under a key runs in one transaction that starts
//! by claiming the key ([`EventStore::claim_in`]): a concurrent request
//! with the same key waits on the claim until the first commits (and is
//! then given its answer) or rolls back (and then carries the request out
//! itself). The transaction ends by keeping the answer
//! ([`EventStore::keep_answer_in`]) and commits it with the events.
//!
//! The answer is the caller's, opaque here (a JSON value). One that holds
//! a person's data is sealed under the person's key, like an event's
//! personal part, so erasing the person erases it too.
//!
//! Never: keep an answer holding a person's data in clear.

use crate::append::{AppendResult, EventStore, Idempotency};
use crate::crypto::{open, seal};
use crate::error::StoreError;
use serde_json::Value;
use sportello_domain::{NetworkId, PersonId, StreamId};
use sqlx::PgConnection;
use uuid::Uuid;

/// A request already carried out under a key: what it appended and what
/// it answered.
#[derive(Clone, Debug, PartialEq)]
pub struct FirstAnswer {
    /// What the first request appended (`replayed` is true).
    pub result: AppendResult,
    /// The answer it gave, as the caller kept it; `None` for a record kept
    /// before answers were (its caller answers from `result`).
    pub answer: Option<Value>,
}

/// What claiming a key found.
#[derive(Debug)]
pub enum Claim {
    /// The key is this transaction's: it carries the request out, then
    /// keeps the answer ([`EventStore::keep_answer_in`]) before committing.
    Ours,
    /// The request was carried out already (a concurrent claim waited for
    /// it to commit): its first answer.
    Answered(FirstAnswer),
}

/// The associated data of a sealed answer: it cannot be moved onto another
/// key or network.
fn answer_aad(network: NetworkId, key: Uuid) -> Vec<u8> {
    [
        b"sportello idempotent answer\0".as_slice(),
        network.0.as_bytes().as_slice(),
        key.as_bytes().as_slice(),
    ]
    .concat()
}

type Row = (
    Vec<u8>,
    Uuid,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<Value>,
    Option<Uuid>,
    Option<Vec<u8>>,
);

impl EventStore {
    /// The first answer of an idempotent request already carried out, if
    /// any. The same key with another request is
    /// [`StoreError::IdempotencyMismatch`]; an answer about a person since
    /// erased is [`StoreError::Erased`].
    pub async fn idempotent_answer(
        &self,
        network: NetworkId,
        idem: &Idempotency,
    ) -> Result<Option<FirstAnswer>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        self.first_answer_in(&mut conn, network, idem).await
    }

    async fn first_answer_in(
        &self,
        conn: &mut PgConnection,
        network: NetworkId,
        idem: &Idempotency,
    ) -> Result<Option<FirstAnswer>, StoreError> {
        let row: Option<Row> = sqlx::query_as(
            "SELECT request_hash, stream_id, first_version, last_version, last_position,
                    answer, answer_person, answer_sealed
               FROM idempotency WHERE network_id = $1 AND key = $2",
        )
        .bind(network.0)
        .bind(idem.key)
        .fetch_optional(&mut *conn)
        .await?;
        let Some((hash, stream, first, last, position, answer, person, sealed)) = row else {
            return Ok(None);
        };
        if hash != idem.request_hash {
            return Err(StoreError::IdempotencyMismatch);
        }
        let (Some(first_version), Some(last_version), Some(position)) = (first, last, position)
        else {
            // Claimed by a transaction still running (only that one sees
            // its row): nothing to answer yet.
            return Ok(None);
        };
        let answer = match (answer, person, sealed) {
            (_, Some(person), Some(sealed)) => {
                let person = PersonId(person);
                let keys = self
                    .keyring()
                    .keys_for_reading(&mut *conn, &[person])
                    .await?;
                let key = keys.get(&person).ok_or(StoreError::Erased(person.0))?;
                let plain = open(key, &sealed, &answer_aad(network, idem.key))?;
                Some(
                    serde_json::from_slice(&plain)
                        .map_err(|e| StoreError::Corrupt(format!("kept answer: {e}")))?,
                )
            }
            (answer, _, _) => answer,
        };
        Ok(Some(FirstAnswer {
            result: AppendResult {
                stream_id: StreamId(stream),
                first_version,
                last_version,
                position,
                replayed: true,
            },
            answer,
        }))
    }

    /// Claim `idem` for the request the transaction `conn` is in carries
    /// out (on `stream`, the stream it creates or changes). The first
    /// claim is [`Claim::Ours`]; another waits until the first transaction
    /// ends: committed, it is [`Claim::Answered`] with its answer; rolled
    /// back, the claim is this one's. The same key with another request is
    /// [`StoreError::IdempotencyMismatch`].
    ///
    /// Appends in the same transaction carry no idempotency key of their
    /// own (the claim is the key's record).
    pub async fn claim_in(
        &self,
        conn: &mut PgConnection,
        network: NetworkId,
        idem: &Idempotency,
        stream: StreamId,
    ) -> Result<Claim, StoreError> {
        let claimed = sqlx::query(
            "INSERT INTO idempotency (network_id, key, request_hash, stream_id)
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(network.0)
        .bind(idem.key)
        .bind(idem.request_hash.as_slice())
        .bind(stream.0)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if claimed == 1 {
            return Ok(Claim::Ours);
        }
        // The conflicting record is committed (the insert waited for its
        // transaction), so this statement, with a newer snapshot, sees it.
        match self.first_answer_in(conn, network, idem).await? {
            Some(first) => Ok(Claim::Answered(first)),
            None => Err(StoreError::Corrupt(format!(
                "idempotency key {} claimed twice in one transaction",
                idem.key
            ))),
        }
    }

    /// Complete the record of `idem`, claimed in this transaction: what
    /// was appended (`result`) and the answer given, sealed under the key
    /// of `person` when it holds their data.
    pub async fn keep_answer_in(
        &self,
        conn: &mut PgConnection,
        network: NetworkId,
        idem: &Idempotency,
        result: &AppendResult,
        answer: &Value,
        person: Option<PersonId>,
    ) -> Result<(), StoreError> {
        let (clear, sealed) = match person {
            None => (Some(answer), None),
            Some(person) => {
                let key = self
                    .keyring()
                    .key_for_writing(conn, network, person)
                    .await?;
                let plain =
                    serde_json::to_vec(answer).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                (
                    None,
                    Some(seal(&key, &plain, &answer_aad(network, idem.key))?),
                )
            }
        };
        let kept = sqlx::query(
            "UPDATE idempotency
                SET stream_id = $4, first_version = $5, last_version = $6, last_position = $7,
                    answer = $8, answer_person = $9, answer_sealed = $10
              WHERE network_id = $1 AND key = $2 AND request_hash = $3",
        )
        .bind(network.0)
        .bind(idem.key)
        .bind(idem.request_hash.as_slice())
        .bind(result.stream_id.0)
        .bind(result.first_version)
        .bind(result.last_version)
        .bind(result.position)
        .bind(clear.map(sqlx::types::Json))
        .bind(person.map(|p| p.0))
        .bind(sealed)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if kept != 1 {
            return Err(StoreError::Corrupt(format!(
                "idempotency key {} was not claimed in this transaction",
                idem.key
            )));
        }
        Ok(())
    }
}
