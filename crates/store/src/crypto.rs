//! Crypto-shredding: each person's personal data is sealed with a key of
//! their own (XChaCha20-Poly1305, random 192-bit nonces), and that key is
//! stored wrapped by the installation's master key. Deleting the person's
//! key makes every copy of their personal data unreadable — in the log, in
//! read models, on the bus — while the public part of each event stays.
//!
//! Keys are never cached across calls: a key deleted in one process must be
//! unusable in every other at once.

use crate::envelope::{Personal, SealedPersonal};
use crate::error::StoreError;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Generate, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use serde_json::Value;
use sportello_domain::{EventId, NetworkId, PersonId};
use sqlx::{PgConnection, PgPool};
use std::collections::HashMap;
use std::fmt;
use uuid::Uuid;

const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// The installation's master key. Its `Debug` never shows the key.
#[derive(Clone)]
pub struct MasterKey([u8; KEY_LEN]);

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

impl MasterKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        let mut k = [0u8; KEY_LEN];
        rand::fill(&mut k);
        MasterKey(k)
    }

    /// Parse from standard base64 of 32 bytes.
    pub fn from_base64(s: &str) -> Result<Self, StoreError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(s.trim())
            .map_err(|e| StoreError::Crypto(format!("master key is not base64: {e}")))?;
        let k: [u8; KEY_LEN] = bytes
            .try_into()
            .map_err(|_| StoreError::Crypto("master key must be 32 bytes".into()))?;
        Ok(MasterKey(k))
    }

    /// Standard base64, for writing a generated key to a file.
    pub fn to_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.0)
    }
}

pub(crate) fn seal(
    key: &[u8; KEY_LEN],
    plaintext: &[u8],
    aad: &[u8],
) -> Result<Vec<u8>, StoreError> {
    let cipher = XChaCha20Poly1305::new(key.into());
    let nonce = XNonce::generate();
    let ct = cipher
        .encrypt(
            &nonce,
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .map_err(|_| StoreError::Crypto("encryption failed".into()))?;
    let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
    out.extend_from_slice(nonce.as_slice());
    out.extend_from_slice(&ct);
    Ok(out)
}

pub(crate) fn open(key: &[u8; KEY_LEN], sealed: &[u8], aad: &[u8]) -> Result<Vec<u8>, StoreError> {
    if sealed.len() < NONCE_LEN {
        return Err(StoreError::Crypto("sealed value too short".into()));
    }
    let (nonce, ct) = sealed.split_at(NONCE_LEN);
    let nonce = XNonce::try_from(nonce).map_err(|_| StoreError::Crypto("bad nonce".into()))?;
    XChaCha20Poly1305::new(key.into())
        .decrypt(&nonce, Payload { msg: ct, aad })
        .map_err(|_| StoreError::Crypto("decryption failed (wrong key or tampered data)".into()))
}

fn wrap_aad(network: NetworkId, person: PersonId) -> Vec<u8> {
    [
        network.0.as_bytes().as_slice(),
        person.0.as_bytes().as_slice(),
    ]
    .concat()
}

/// Seals and opens personal data with per-person keys kept in `person_keys`.
#[derive(Clone, Debug)]
pub struct Keyring {
    master: MasterKey,
}

impl Keyring {
    /// A keyring under this master key.
    pub fn new(master: MasterKey) -> Self {
        Keyring { master }
    }

    /// The person's key, creating it if the person has none yet. Fails with
    /// [`StoreError::Erased`] if the person's key was shredded.
    pub async fn key_for_writing(
        &self,
        conn: &mut PgConnection,
        network: NetworkId,
        person: PersonId,
    ) -> Result<[u8; KEY_LEN], StoreError> {
        let row: Option<(Uuid, Option<Vec<u8>>)> =
            sqlx::query_as("SELECT network_id, wrapped_key FROM person_keys WHERE person_id = $1")
                .bind(person.0)
                .fetch_optional(&mut *conn)
                .await?;
        match row {
            Some((net, _)) if net != network.0 => Err(StoreError::WrongTenant(person.0)),
            Some((_, None)) => Err(StoreError::Erased(person.0)),
            Some((_, Some(wrapped))) => self.unwrap_key(network, person, &wrapped),
            None => {
                let mut key = [0u8; KEY_LEN];
                rand::fill(&mut key);
                let wrapped = seal(&self.master.0, &key, &wrap_aad(network, person))?;
                let inserted = sqlx::query(
                    "INSERT INTO person_keys (person_id, network_id, wrapped_key) VALUES ($1, $2, $3)
                     ON CONFLICT (person_id) DO NOTHING",
                )
                .bind(person.0)
                .bind(network.0)
                .bind(&wrapped)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if inserted == 1 {
                    Ok(key)
                } else {
                    // Created concurrently: use the one that won.
                    Box::pin(self.key_for_writing(conn, network, person)).await
                }
            }
        }
    }

    fn unwrap_key(
        &self,
        network: NetworkId,
        person: PersonId,
        wrapped: &[u8],
    ) -> Result<[u8; KEY_LEN], StoreError> {
        open(&self.master.0, wrapped, &wrap_aad(network, person))?
            .try_into()
            .map_err(|_| StoreError::Crypto("unwrapped key has the wrong length".into()))
    }

    /// Seal one event's personal part. The event id is the associated data,
    /// so a ciphertext cannot be moved onto another event.
    pub fn seal_with(
        key: &[u8; KEY_LEN],
        event_id: EventId,
        value: &Value,
    ) -> Result<Vec<u8>, StoreError> {
        let plaintext =
            serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        seal(key, &plaintext, event_id.0.as_bytes())
    }

    /// The usable keys of these persons; a person whose key was shredded
    /// (or who never had one) is absent from the map.
    pub async fn keys_for_reading<'c>(
        &self,
        db: impl sqlx::PgExecutor<'c>,
        persons: &[PersonId],
    ) -> Result<HashMap<PersonId, [u8; KEY_LEN]>, StoreError> {
        if persons.is_empty() {
            return Ok(HashMap::new());
        }
        let ids: Vec<Uuid> = persons.iter().map(|p| p.0).collect();
        let rows: Vec<(Uuid, Uuid, Vec<u8>)> = sqlx::query_as(
            "SELECT person_id, network_id, wrapped_key FROM person_keys
              WHERE person_id = ANY($1) AND wrapped_key IS NOT NULL",
        )
        .bind(&ids)
        .fetch_all(db)
        .await?;
        rows.into_iter()
            .map(|(p, n, w)| {
                let person = PersonId(p);
                Ok((person, self.unwrap_key(NetworkId(n), person, &w)?))
            })
            .collect()
    }

    /// Open a sealed personal part with the keys from [`Self::keys_for_reading`].
    pub fn open_with(
        keys: &HashMap<PersonId, [u8; KEY_LEN]>,
        event_id: EventId,
        sealed: &SealedPersonal,
    ) -> Result<Personal, StoreError> {
        let Some(key) = keys.get(&sealed.person_id) else {
            return Ok(Personal::Erased);
        };
        let plaintext = open(key, &sealed.ciphertext, event_id.0.as_bytes())?;
        let value = serde_json::from_slice(&plaintext)
            .map_err(|e| StoreError::Corrupt(format!("personal part is not JSON: {e}")))?;
        Ok(Personal::Open(value))
    }

    /// Check that this keyring's master key is the one the database was
    /// written with (the first call stores a check value). A wrong key is
    /// an error, never a silent start.
    pub async fn verify_master_key(&self, pool: &PgPool) -> Result<(), StoreError> {
        const CHECK: &[u8] = b"sportello master key check";
        let sealed = seal(&self.master.0, CHECK, CHECK)?;
        sqlx::query(
            "INSERT INTO installation (master_key_check) VALUES ($1) ON CONFLICT DO NOTHING",
        )
        .bind(&sealed)
        .execute(pool)
        .await?;
        let (stored,): (Vec<u8>,) = sqlx::query_as("SELECT master_key_check FROM installation")
            .fetch_one(pool)
            .await?;
        match open(&self.master.0, &stored, CHECK) {
            Ok(v) if v == CHECK => Ok(()),
            _ => Err(StoreError::Crypto(
                "this master key is not the one this database was written with".into(),
            )),
        }
    }

    /// The key of the person index's keyed hashes, derived from the master
    /// key (never the master key itself).
    pub fn index_key(&self) -> [u8; 32] {
        use sha2::Digest;
        let mut h = sha2::Sha256::new();
        h.update(b"sportello person index v1\0");
        h.update(self.master.0);
        h.finalize().into()
    }

    /// Crypto-shred a person: delete their key, keeping a tombstone so no
    /// new key is made for them, and their rows of the person index.
    /// Returns whether there was a key to delete.
    /// One statement, so a first write racing with the erasure cannot slip
    /// a key in between.
    pub async fn shred(
        &self,
        pool: &PgPool,
        network: NetworkId,
        person: PersonId,
    ) -> Result<bool, StoreError> {
        let row: Option<(bool,)> = sqlx::query_as(
            "WITH before AS (
                 SELECT wrapped_key IS NOT NULL AS had_key FROM person_keys WHERE person_id = $1
             ), unindexed AS (
                 DELETE FROM person_index WHERE person_id = $1 AND network_id = $2
             )
             INSERT INTO person_keys (person_id, network_id, wrapped_key, shredded_at)
             VALUES ($1, $2, NULL, now())
             ON CONFLICT (person_id) DO UPDATE
                SET wrapped_key = NULL, shredded_at = coalesce(person_keys.shredded_at, now())
              WHERE person_keys.network_id = excluded.network_id
             RETURNING coalesce((SELECT had_key FROM before), false)",
        )
        .bind(person.0)
        .bind(network.0)
        .fetch_optional(pool)
        .await?;
        match row {
            Some((had_key,)) => Ok(had_key),
            // The person's key belongs to another network.
            None => Err(StoreError::WrongTenant(person.0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_then_open_round_trips_and_binds_the_event() {
        let mut key = [0u8; KEY_LEN];
        rand::fill(&mut key);
        let event = EventId::new();
        let value = serde_json::json!({ "name": "Ana Esempio" });
        let sealed = Keyring::seal_with(&key, event, &value).unwrap();
        assert!(!sealed.windows(11).any(|w| w == b"Ana Esempio"));
        let sp = SealedPersonal {
            person_id: PersonId::new(),
            ciphertext: sealed,
        };
        let keys = HashMap::from([(sp.person_id, key)]);
        assert_eq!(
            Keyring::open_with(&keys, event, &sp).unwrap(),
            Personal::Open(value)
        );
        // Moved onto another event: refused.
        assert!(Keyring::open_with(&keys, EventId::new(), &sp).is_err());
        // Without the key: erased, not an error.
        assert_eq!(
            Keyring::open_with(&HashMap::new(), event, &sp).unwrap(),
            Personal::Erased
        );
    }

    #[test]
    fn master_key_is_redacted_and_round_trips() {
        let k = MasterKey::generate();
        assert_eq!(format!("{k:?}"), "MasterKey(<redacted>)");
        assert_eq!(MasterKey::from_base64(&k.to_base64()).unwrap().0, k.0);
        assert!(MasterKey::from_base64("c2hvcnQ=").is_err());
    }
}
