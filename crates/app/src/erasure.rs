//! Erasing a person, on their request or by the retention rule: their key
//! is shredded first (so once this returns, nothing of theirs can be read
//! anywhere — log, bus, read models, backups of the log), then the case
//! records `PersonErased` with the reason. Shredding first makes a retry
//! after a failure finish the job; an already erased case is not erased
//! twice. Read models keep the case's facts (needs, referrals, times), so
//! reports do not change.
//!
//! The retention rule ([`retain`]) erases every person whose case has
//! been closed longer than the retention period, and says what it did.

use crate::AppError;
use crate::command::{Expect, WriteRequest, execute, rebuild};
use sportello_domain::aggregate::CaseAggregate;
use sportello_domain::case::erasure::ErasureReason;
use sportello_domain::case::lifecycle::{CaseCommand, CaseStatus};
use sportello_domain::{AccountId, Metadata, NetworkId, PersonId, StreamId};
use sportello_store::{AppendResult, EventStore};
use time::OffsetDateTime;
use uuid::Uuid;

/// The account the retention rule acts as (no person signs its erasures).
pub const RETENTION_ACCOUNT: AccountId = AccountId(Uuid::nil());

/// Why a person is erased.
#[derive(Clone, Copy, Debug)]
pub enum Why {
    /// They asked; the account (and its organisation) that carries it out.
    Request(AccountId, sportello_domain::OrganizationId),
    /// The retention rule: the case must be closed, last closed before
    /// `cutoff` — checked on the case's own events, not on a read model
    /// that may lag behind a reopening.
    Retention {
        /// Closed before this moment.
        cutoff: OffsetDateTime,
    },
}

/// Erase `person` of `network`; the append, or `None` if the case was
/// already erased (its key is shredded again all the same) or — for the
/// retention rule — is not due after all.
pub async fn erase(
    store: &EventStore,
    network: NetworkId,
    person: PersonId,
    why: Why,
    now: OffsetDateTime,
) -> Result<Option<AppendResult>, AppError> {
    let stream = StreamId(person.0);
    let events = store.load_stream(network, stream).await?;
    let (case, version) = rebuild::<CaseAggregate>(&events)?;
    let case = case.ok_or(AppError::NotFound)?;
    let (reason, account, org) = match why {
        Why::Request(account, org) => (ErasureReason::Request, account, org),
        Why::Retention { cutoff } => {
            let last_closed = events
                .iter()
                .rev()
                .find(|e| e.event_type == "CaseClosed")
                .map(|e| e.metadata.occurred_at);
            let due = case.status == CaseStatus::Closed && last_closed.is_some_and(|t| t < cutoff);
            if !due {
                return Ok(None);
            }
            (ErasureReason::Retention, RETENTION_ACCOUNT, case.desk)
        }
    };
    store.keyring().shred(store.pool(), network, person).await?;
    if case.erased {
        return Ok(None);
    }
    let done = execute::<CaseAggregate, _>(
        store,
        WriteRequest {
            network,
            stream,
            expect: Expect::Latest,
            commands: vec![CaseCommand::Erase(reason)],
            metadata: Metadata::for_command(account, org, now),
            idempotency: None,
            loaded: Some((Some(case), version)),
            then: None,
            respond: &|_, _| (),
        },
    )
    .await;
    let done = match done {
        Ok(done) => done,
        // Erased meanwhile by someone else (another replica's retention
        // run, a supervisor): done, not by us.
        Err(e) => {
            let (again, _) = crate::command::load::<CaseAggregate>(store, network, stream).await?;
            if again.is_some_and(|c| c.erased) {
                return Ok(None);
            }
            return Err(e);
        }
    };
    metrics::counter!("sportello_erasures_total", "reason" => reason.as_str()).increment(1);
    tracing::info!(network = %network, person = %person, reason = reason.as_str(), "person erased");
    Ok(Some(done.result))
}

/// What a retention run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RetentionReport {
    /// People erased (network, person), oldest closing first.
    pub erased: Vec<(NetworkId, PersonId)>,
    /// People due whose erasure failed (and will be tried again next run).
    pub failed: usize,
}

/// The people of every network whose case was closed before `cutoff` and
/// whose erasure is not recorded yet, oldest closing first (see
/// [`sportello_projections::cases::closed_before`]).
pub async fn due(
    pool: &sqlx::PgPool,
    cutoff: OffsetDateTime,
) -> Result<Vec<(NetworkId, PersonId)>, sqlx::Error> {
    Ok(sportello_projections::cases::closed_before(pool, cutoff)
        .await?
        .into_iter()
        .map(|(n, p)| (NetworkId(n), PersonId(p)))
        .collect())
}

/// The moment `years` before `now` (29 February falls back a day).
pub fn cutoff(now: OffsetDateTime, years: u32) -> OffsetDateTime {
    let year = now.year() - i32::try_from(years).unwrap_or(i32::MAX / 2);
    now.replace_year(year)
        .or_else(|_| (now - time::Duration::days(1)).replace_year(year))
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Erase everyone whose case has been closed for `years` at `now`.
pub async fn retain(
    store: &EventStore,
    years: u32,
    now: OffsetDateTime,
) -> Result<RetentionReport, AppError> {
    let cutoff = cutoff(now, years);
    let mut report = RetentionReport::default();
    for (network, person) in due(store.pool(), cutoff).await? {
        match erase(store, network, person, Why::Retention { cutoff }, now).await {
            Ok(Some(_)) => report.erased.push((network, person)),
            // Erased meanwhile by another run: not this run's doing.
            // Erased meanwhile, or reopened since the read model saw it.
            Ok(None) => {}
            Err(e) => {
                report.failed += 1;
                tracing::warn!(network = %network, person = %person, error = %e, "retention: erasure failed");
            }
        }
    }
    tracing::info!(
        years,
        erased = report.erased.len(),
        failed = report.failed,
        "retention rule run"
    );
    Ok(report)
}

/// How often the retention rule runs in a server with workers.
pub const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

/// Run the retention rule now and then every [`RETENTION_EVERY`], until
/// cancelled. Several servers may run it: an erasure already done is not
/// done again.
pub async fn run_retention(
    store: EventStore,
    years: u32,
    clock: crate::clock::Clock,
    cancel: tokio_util::sync::CancellationToken,
) {
    let mut every = tokio::time::interval(RETENTION_EVERY);
    while cancel.run_until_cancelled(every.tick()).await.is_some() {
        if let Err(e) = retain(&store, years, clock.now()).await {
            tracing::warn!(error = %e, "retention rule run failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn the_cutoff_is_the_same_moment_years_before() {
        assert_eq!(
            cutoff(datetime!(2036-05-10 09:30 UTC), 10),
            datetime!(2026-05-10 09:30 UTC)
        );
        // No 29 February that year: the day before.
        assert_eq!(
            cutoff(datetime!(2028-02-29 12:00 UTC), 1),
            datetime!(2027-02-28 12:00 UTC)
        );
    }
}
