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

    /// The people of `network` sharing a name word or a document number of
    /// `terms`, most matches first (at most `limit`), and whether their
    /// birth year is the one in `terms`. A birth year only narrows: it
    /// never finds on its own, unless it is all `terms` hold. A word shared
    /// by more than [`MAX_PER_TERM`] people is too common to tell anyone
    /// apart: only that many of its people are considered.
    pub async fn find_people(
        &self,
        network: NetworkId,
        terms: &[Term],
        limit: i64,
    ) -> Result<Vec<Found>, StoreError> {
        let year = terms
            .iter()
            .find(|t| t.kind == TermKind::BirthYear)
            .map(|t| self.blind(t));
        let drivers: Vec<&Term> = match terms.iter().any(|t| t.kind != TermKind::BirthYear) {
            true => terms
                .iter()
                .filter(|t| t.kind != TermKind::BirthYear)
                .collect(),
            false => terms.iter().collect(),
        };
        if drivers.is_empty() {
            return Ok(Vec::new());
        }
        let hashes: Vec<Vec<u8>> = drivers.iter().map(|t| self.blind(t)).collect();
        let kinds: Vec<&str> = drivers.iter().map(|t| t.kind.as_str()).collect();
        let rows: Vec<(Uuid, i64, bool, bool)> = sqlx::query_as(
            "WITH hits AS (
                 SELECT p.person_id, q.kind
                   FROM unnest($2::bytea[], $3::text[]) AS q(term, kind)
                  CROSS JOIN LATERAL (
                        SELECT person_id FROM person_index
                         WHERE network_id = $1 AND term = q.term
                         LIMIT $5) p
             )
             SELECT h.person_id,
                    count(*) FILTER (WHERE h.kind = 'name'),
                    $4::bytea IS NOT NULL AND EXISTS (
                        SELECT 1 FROM person_index y
                         WHERE y.network_id = $1 AND y.term = $4 AND y.person_id = h.person_id),
                    bool_or(h.kind = 'document')
               FROM hits h
              GROUP BY h.person_id
              ORDER BY bool_or(h.kind = 'document') DESC, count(*) DESC, h.person_id
              LIMIT $6",
        )
        .bind(network.0)
        .bind(hashes)
        .bind(kinds)
        .bind(year)
        .bind(MAX_PER_TERM)
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

/// How many people of one search term are considered at most.
pub const MAX_PER_TERM: i64 = 1000;

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
