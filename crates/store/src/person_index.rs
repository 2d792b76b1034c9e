//! The blind index of people (`person_index`): keyed hashes of the search
//! terms of an identity (see [`sportello_domain::case::search`]), so likely
//! duplicates are found and the desk can search people without any name
//! kept in clear. The hashing key is derived from the master key; a
//! person's rows go with their key when they are crypto-shredded.

use crate::append::EventStore;
use crate::error::StoreError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use sportello_domain::case::search::{self, Term, TermKind};
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
    /// `terms` (the desk's search), most matches first (at most `limit`),
    /// and whether their birth year is the one in `terms`. A birth year only
    /// narrows: it never finds on its own, unless it is all `terms` hold. A
    /// word shared by more than [`MAX_PER_TERM`] people is too common to
    /// tell anyone apart: only that many of its people are considered.
    pub async fn find_people(
        &self,
        network: NetworkId,
        terms: &[Term],
        limit: i64,
    ) -> Result<Vec<Found>, StoreError> {
        let words_or_documents: Vec<Term> = terms
            .iter()
            .filter(|t| matches!(t.kind, TermKind::Name | TermKind::Document))
            .cloned()
            .collect();
        let drivers = match words_or_documents.is_empty() {
            true => terms.to_vec(),
            false => words_or_documents,
        };
        self.find(network, &drivers, terms, limit).await
    }

    /// The people of `network` who may be the person with these identity
    /// `terms` (see [`likely_duplicate`]): found through the few people
    /// sharing a document or a pair of name words with them
    /// ([`search::duplicate_drivers`]), never by reading everyone who
    /// shares one common word.
    pub async fn find_duplicates(
        &self,
        network: NetworkId,
        terms: &[Term],
        limit: i64,
    ) -> Result<Vec<Found>, StoreError> {
        self.find(network, &search::duplicate_drivers(terms), terms, limit)
            .await
    }

    /// The people holding any of `drivers` (at most [`MAX_PER_TERM`] a
    /// term), scored on `terms`: name words in common, same birth year,
    /// same document; most matches first.
    async fn find(
        &self,
        network: NetworkId,
        drivers: &[Term],
        terms: &[Term],
        limit: i64,
    ) -> Result<Vec<Found>, StoreError> {
        if drivers.is_empty() {
            return Ok(Vec::new());
        }
        let of_kind = |kind: TermKind| -> Vec<Vec<u8>> {
            terms
                .iter()
                .filter(|t| t.kind == kind)
                .map(|t| self.blind(t))
                .collect()
        };
        let year = of_kind(TermKind::BirthYear).into_iter().next();
        let drivers: Vec<Vec<u8>> = drivers.iter().map(|t| self.blind(t)).collect();
        let rows: Vec<(Uuid, i64, bool, bool)> = sqlx::query_as(
            "WITH found AS (
                 SELECT DISTINCT p.person_id
                   FROM unnest($2::bytea[]) AS q(term)
                  CROSS JOIN LATERAL (
                        SELECT person_id FROM person_index
                         WHERE network_id = $1 AND term = q.term
                         LIMIT $6) p
             ), scored AS (
                 SELECT f.person_id,
                        (SELECT count(*) FROM person_index n
                          WHERE n.network_id = $1 AND n.term = ANY($3)
                            AND n.person_id = f.person_id) AS words,
                        -- A count, not EXISTS: an EXISTS may be planned as
                        -- a hash of everyone born that year.
                        $4::bytea IS NOT NULL AND (
                            SELECT count(*) FROM person_index y
                             WHERE y.network_id = $1 AND y.term = $4
                               AND y.person_id = f.person_id) > 0 AS year,
                        EXISTS (
                            SELECT 1 FROM person_index d
                             WHERE d.network_id = $1 AND d.term = ANY($5)
                               AND d.person_id = f.person_id) AS document
                   FROM found f
             )
             SELECT person_id, words, year, document FROM scored
              ORDER BY document DESC, words DESC, year DESC, person_id
              LIMIT $7",
        )
        .bind(network.0)
        .bind(drivers)
        .bind(of_kind(TermKind::Name))
        .bind(year)
        .bind(of_kind(TermKind::Document))
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
