//! The read audit: every read of a person's card, case history or export,
//! and every person shown in a search's results, is recorded — who (account, role, organisation), when, whose data, what
//! and for what purpose — in `read_audit`, append-only (the database
//! refuses updates and deletes). A read that cannot be recorded is not
//! served. Administrators query it (`GET /api/v1/audit/reads`); a person's
//! export tells them which organisations have seen their data.
//!
//! Never: the content of what was read, or anything but ids, in a row.

use crate::access::Role;
use crate::auth::Caller;
use crate::error::ApiError;
use sqlx::PgPool;
use uuid::Uuid;

/// What was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// The card.
    Card,
    /// The case's events.
    History,
    /// Everything held about the person, handed to them.
    Export,
    /// Their names and birth date among the results of a search.
    Search,
    /// An activation for them, with its place.
    Activation,
}

impl Read {
    /// Its stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Read::Card => "card",
            Read::History => "history",
            Read::Export => "export",
            Read::Search => "search",
            Read::Activation => "activation",
        }
    }
}

/// Why a read happens, from who reads and what: the desk works the case,
/// a partner answers a referral, an export answers the person's request.
pub fn purpose(role: Role, what: Read) -> &'static str {
    match (what, role) {
        (Read::Export, _) => "subject_access",
        (_, Role::Partner) => "referral",
        (_, Role::Professional) => "activation",
        _ => "case_work",
    }
}

/// Record that `caller` read `what` of `person`.
pub async fn record(
    pool: &PgPool,
    caller: &Caller,
    person: Uuid,
    what: Read,
) -> Result<(), ApiError> {
    record_many(pool, caller, &[person], what).await
}

/// Record that `caller` read `what` of each of `persons` (one statement).
pub async fn record_many(
    pool: &PgPool,
    caller: &Caller,
    persons: &[Uuid],
    what: Read,
) -> Result<(), ApiError> {
    if persons.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO read_audit (network_id, account_id, role, organization_id, person_id, what, purpose)
         SELECT $1, $2, $3, $4, p, $6, $7 FROM unnest($5::uuid[]) AS p",
    )
    .bind(caller.network_id.0)
    .bind(caller.account_id.0)
    .bind(caller.role.as_str())
    .bind(caller.organization_id.0)
    .bind(persons)
    .bind(what.as_str())
    .bind(purpose(caller.role, what))
    .execute(pool)
    .await?;
    metrics::counter!("sportello_audited_reads_total", "what" => what.as_str())
        .increment(persons.len() as u64);
    Ok(())
}

/// One recorded read.
#[derive(Debug, serde::Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct ReadRecord {
    /// Its number in the audit (increasing).
    pub id: i64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    pub at: time::OffsetDateTime,
    /// The account that read.
    pub account_id: Uuid,
    /// Its role then.
    pub role: String,
    /// Its organisation.
    pub organization_id: Uuid,
    /// The organisation's name, when it is in the directory.
    pub organization_name: Option<String>,
    /// Whose data.
    pub person_id: Uuid,
    /// `card`, `history`, `export` or `search`.
    pub what: String,
    /// `case_work`, `referral`, `activation` or `subject_access`.
    pub purpose: String,
}

/// Recorded reads of a network, newest first, after `before` (an id),
/// optionally of one person or by one account.
pub async fn reads(
    pool: &PgPool,
    network: Uuid,
    person: Option<Uuid>,
    account: Option<Uuid>,
    before: Option<i64>,
    limit: i64,
) -> Result<Vec<ReadRecord>, sqlx::Error> {
    sqlx::query_as(
        "SELECT r.id, r.at, r.account_id, r.role, r.organization_id, o.name AS organization_name,
                r.person_id, r.what, r.purpose
           FROM read_audit r
           LEFT JOIN organizations o ON o.network_id = r.network_id AND o.organization_id = r.organization_id
          WHERE r.network_id = $1
            AND ($2::uuid IS NULL OR r.person_id = $2)
            AND ($3::uuid IS NULL OR r.account_id = $3)
            AND ($4::bigint IS NULL OR r.id < $4)
          ORDER BY r.id DESC
          LIMIT $5",
    )
    .bind(network)
    .bind(person)
    .bind(account)
    .bind(before)
    .bind(limit)
    .fetch_all(pool)
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_purpose_follows_the_reader_and_the_read() {
        assert_eq!(purpose(Role::DeskOperator, Read::Card), "case_work");
        assert_eq!(purpose(Role::Partner, Read::Card), "referral");
        assert_eq!(
            purpose(Role::DeskSupervisor, Read::Export),
            "subject_access"
        );
    }
}
