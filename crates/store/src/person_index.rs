//! The blind index of people (`person_index`): keyed hashes of the search
//! terms of an identity (see [`sportello_domain::case::search`]), so likely
//! duplicates are found and the desk can search people without any name
//! kept in clear. The hashing key is derived from the master key; a
//! person's rows go with their key when they are crypto-shredded.

use crate::append::EventStore;
use crate::error::StoreError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sportello_domain::case::search::{Term, TermKind};
use sportello_domain::{NetworkId, PersonId};
use sqlx::PgConnection;
use std::collections::BTreeSet;
use uuid::Uuid;

/// A person found by their terms, with what matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Found {
    /// The person.
    pub person: PersonId,
    /// How many distinct name words matched.
    pub name_words: usize,
    /// Whether the birth year matched.
    pub birth_year: bool,
    /// Whether a document number matched.
    pub document: bool,
}

impl EventStore {
    fn blind(&self, term: &Term) -> Vec<u8> {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.keyring().index_key())
            .expect("HMAC takes any key length");
        mac.update(term.kind.as_str().as_bytes());
        mac.update(&[0]);
        mac.update(term.value.as_bytes());
        mac.finalize().into_bytes()[..16].to_vec()
    }

    /// Index a person's terms, inside the caller's transaction (the one
    /// that appends the event the identity comes from).
    pub async fn index_person_in(
        &self,
        conn: &mut PgConnection,
        network: NetworkId,
        person: PersonId,
        terms: &[Term],
    ) -> Result<(), StoreError> {
        let hashes: Vec<Vec<u8>> = terms.iter().map(|t| self.blind(t)).collect();
        let kinds: Vec<&str> = terms.iter().map(|t| t.kind.as_str()).collect();
        sqlx::query(
            "INSERT INTO person_index (network_id, term, kind, person_id)
             SELECT $1, t, k, $3 FROM unnest($2::bytea[], $4::text[]) AS x(t, k)
             ON CONFLICT DO NOTHING",
        )
        .bind(network.0)
        .bind(hashes)
        .bind(person.0)
        .bind(kinds)
        .execute(conn)
        .await?;
        Ok(())
    }

    /// The people of `network` sharing any of `terms`, most matches first
    /// (at most `limit`).
    pub async fn find_people(
        &self,
        network: NetworkId,
        terms: &[Term],
        limit: i64,
    ) -> Result<Vec<Found>, StoreError> {
        if terms.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<Vec<u8>> = terms.iter().map(|t| self.blind(t)).collect();
        let rows: Vec<(Uuid, i64, bool, bool)> = sqlx::query_as(
            "SELECT person_id,
                    count(*) FILTER (WHERE kind = 'name'),
                    bool_or(kind = 'birth_year'),
                    bool_or(kind = 'document')
               FROM person_index
              WHERE network_id = $1 AND term = ANY($2)
              GROUP BY person_id
              ORDER BY bool_or(kind = 'document') DESC, count(*) DESC, person_id
              LIMIT $3",
        )
        .bind(network.0)
        .bind(hashes)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows
            .into_iter()
            .map(|(p, n, y, d)| Found {
                person: PersonId(p),
                name_words: usize::try_from(n).unwrap_or(0),
                birth_year: y,
                document: d,
            })
            .collect())
    }
}

/// Whether a found person is a likely duplicate of an identity with these
/// terms: the same document number, or at least two name words (all of
/// them, if it has fewer) and a birth year that matches or is unknown on
/// the new side.
pub fn likely_duplicate(found: &Found, terms: &[Term]) -> bool {
    let names: BTreeSet<&str> = terms
        .iter()
        .filter(|t| t.kind == TermKind::Name)
        .map(|t| t.value.as_str())
        .collect();
    let has_year = terms.iter().any(|t| t.kind == TermKind::BirthYear);
    found.document
        || (found.name_words >= names.len().clamp(1, 2) && (found.birth_year || !has_year))
}
