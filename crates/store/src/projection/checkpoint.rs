//! The checkpoint of each projection, in `projection_checkpoints`, and
//! the helpers around it: set-up, batches applied under the checkpoint's
//! row lock, failures recorded, and read-your-writes waits.

use super::{ApplyError, Projection, table_name};
use crate::envelope::{LogCursor, RecordedEvent};
use crate::error::StoreError;
use crate::read::cursor_of_position;
use futures::FutureExt;
use sqlx::{Acquire, PgConnection, PgPool};
use std::borrow::Cow;
use std::panic::AssertUnwindSafe;
use std::time::{Duration, Instant};

/// A projection's checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// Projection name.
    pub name: String,
    /// Table generation in use.
    pub generation: i32,
    /// Last event applied.
    pub cursor: LogCursor,
    /// Events applied in this generation.
    pub applied: i64,
    /// Set when the projection stopped on an event.
    pub error: Option<String>,
}

/// Make sure the checkpoint row, the table of its generation and the view
/// exist. Safe to call from several processes at once.
pub async fn setup(pool: &PgPool, p: &dyn Projection) -> Result<Checkpoint, StoreError> {
    let mut tx = pool.begin().await?;
    // Serialise set-up of one projection across processes.
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended('sportello-setup:' || $1, 0))")
        .bind(p.name())
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(p.name())
        .execute(&mut *tx)
        .await?;
    let cp = load(&mut tx, p.name(), false).await?;
    let table = table_name(p.name(), cp.generation);
    let (exists,): (bool,) = sqlx::query_as("SELECT to_regclass($1) IS NOT NULL")
        .bind(&table)
        .fetch_one(&mut *tx)
        .await?;
    if !exists {
        sqlx::raw_sql(sqlx::AssertSqlSafe(p.create_table(&table)))
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE OR REPLACE VIEW {0} AS SELECT * FROM {table}",
            p.name()
        )))
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(cp)
}

/// Read a checkpoint, optionally locking its row until the transaction ends.
pub async fn load(
    conn: &mut PgConnection,
    name: &str,
    for_update: bool,
) -> Result<Checkpoint, StoreError> {
    let sql = if for_update {
        "SELECT generation, tx_id::text::bigint, position, applied, error
           FROM projection_checkpoints WHERE name = $1 FOR UPDATE"
    } else {
        "SELECT generation, tx_id::text::bigint, position, applied, error
           FROM projection_checkpoints WHERE name = $1"
    };
    let (generation, tx, position, applied, error): (i32, i64, i64, i64, Option<String>) =
        sqlx::query_as(sql).bind(name).fetch_one(&mut *conn).await?;
    Ok(Checkpoint {
        name: name.to_owned(),
        generation,
        cursor: LogCursor { tx, position },
        applied,
        error,
    })
}

/// Every projection's checkpoint.
pub async fn all(pool: &PgPool) -> Result<Vec<Checkpoint>, StoreError> {
    let rows: Vec<(String, i32, i64, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT name, generation, tx_id::text::bigint, position, applied, error
           FROM projection_checkpoints ORDER BY name",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(name, generation, tx, position, applied, error)| Checkpoint {
                name,
                generation,
                cursor: LogCursor { tx, position },
                applied,
                error,
            },
        )
        .collect())
}

/// What happened to a batch. On `Failed`, the events before the failing
/// one are applied and checkpointed; the failing one and those after it
/// are not.
#[derive(Debug)]
pub enum BatchOutcome {
    /// Applied (or skipped as already applied); the new checkpoint.
    Applied {
        /// Checkpoint after the batch.
        cursor: LogCursor,
        /// Events applied (not counting skipped ones).
        applied: usize,
    },
    /// The projection could not apply this event; the failure is recorded.
    Failed {
        /// The event.
        event: Box<RecordedEvent>,
        /// Why.
        error: String,
    },
}

/// Run read-model code, turning a panic into a refusal: a panic stops the
/// projection visibly rather than killing its task silently.
async fn guarded(
    f: impl std::future::Future<Output = Result<(), ApplyError>>,
) -> Result<(), ApplyError> {
    AssertUnwindSafe(f)
        .catch_unwind()
        .await
        .unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(ApplyError::Invalid(format!(
                "the projection panicked: {what}"
            )))
        })
}

/// Errors that say nothing about the event being applied: retry them,
/// never stop a projection on them.
fn is_transient(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => db.code().is_some_and(|c| {
            matches!(c.as_ref(), "40001" | "40P01" | "55P03" | "57014")
                || c.starts_with("08")
                || c.starts_with("53")
                || c.starts_with("57P")
        }),
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        _ => false,
    }
}

async fn set_checkpoint(
    conn: &mut PgConnection,
    name: &str,
    cursor: LogCursor,
    applied: usize,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE projection_checkpoints
            SET tx_id = $2::text::xid8, position = $3, applied = applied + $4, updated_at = now()
          WHERE name = $1",
    )
    .bind(name)
    .bind(cursor.tx.to_string())
    .bind(cursor.position)
    .bind(applied as i64)
    .execute(conn)
    .await?;
    Ok(())
}

/// Apply a batch in one transaction with the checkpoint: events at or
/// before the checkpoint are skipped. The batch goes through the
/// projection's [`Projection::apply_batch`] (set-wise where it can); if that
/// refuses, the batch is rolled back and replayed one event at a time to
/// find the event refused, keep the ones before it, and stop there.
pub async fn apply_batch(
    pool: &PgPool,
    p: &dyn Projection,
    events: &[RecordedEvent],
) -> Result<BatchOutcome, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let cp = load(&mut tx, p.name(), true).await?;
    if let Some(error) = cp.error {
        tx.rollback().await?;
        return Err(StoreError::Corrupt(format!(
            "projection {} is stopped: {error}",
            p.name()
        )));
    }
    let table = table_name(p.name(), cp.generation);
    let fresh = after(events, cp.cursor);
    let Some(last) = fresh.last().map(|e| e.cursor) else {
        tx.rollback().await?;
        return Ok(BatchOutcome::Applied {
            cursor: cp.cursor,
            applied: 0,
        });
    };
    if guarded(p.apply_batch(&mut tx, &table, &fresh))
        .await
        .is_ok()
    {
        set_checkpoint(&mut tx, p.name(), last, fresh.len()).await?;
        tx.commit().await?;
        return Ok(BatchOutcome::Applied {
            cursor: last,
            applied: fresh.len(),
        });
    }
    // Roll back now: a dropped transaction only rolls back when its
    // connection is used again, and would keep the checkpoint row locked.
    tx.rollback().await?;

    // Slow path: one event at a time, each in a savepoint, to find which
    // event is refused; the ones before it keep their effect.
    let mut tx = conn.begin().await?;
    let cp = load(&mut tx, p.name(), true).await?;
    let mut cursor = cp.cursor;
    let mut applied = 0;
    let mut failure = None;
    for e in fresh.iter().filter(|e| e.cursor > cp.cursor) {
        let mut sp = tx.begin().await?;
        match guarded(p.apply(&mut sp, &table, e)).await {
            Ok(()) => sp.commit().await?,
            Err(ApplyError::Database(db)) if is_transient(&db) => {
                // Not the event's fault (deadlock, timeout, lost
                // connection...): let the runner try the batch again.
                sp.rollback().await?;
                tx.rollback().await?;
                return Err(StoreError::Database(db));
            }
            Err(err) => {
                sp.rollback().await?;
                let error = match err {
                    ApplyError::Database(db) => format!("database error: {db}"),
                    ApplyError::Invalid(why) => why,
                };
                failure = Some((e, error));
                break;
            }
        }
        cursor = e.cursor;
        applied += 1;
    }
    if applied > 0 {
        set_checkpoint(&mut tx, p.name(), cursor, applied).await?;
    }
    if let Some((e, error)) = failure {
        // Record the failure in the same transaction that keeps the
        // events before it, so the checkpoint row is never left locked.
        record_failure(&mut tx, p.name(), e, &error).await?;
        tx.commit().await?;
        return Ok(BatchOutcome::Failed {
            event: Box::new(e.clone()),
            error,
        });
    }
    // The batch was refused as a whole but every event applies alone
    // (a set-wise apply stricter than its per-event one): keep the result.
    tx.commit().await?;
    Ok(BatchOutcome::Applied { cursor, applied })
}

/// Apply a batch to several projections in one transaction, with all
/// their checkpoints (one statement locks them, one moves them): each
/// projection gets only the events after its own checkpoint, through its
/// [`Projection::apply_batch`]. If any refuses, the transaction is rolled
/// back and each projection takes the batch on its own ([`apply_batch`]),
/// so the one refusing stops right before the event it refuses and the
/// others are not held back. One outcome per projection, in order.
pub async fn apply_group(
    pool: &PgPool,
    projections: &[&dyn Projection],
    events: &[RecordedEvent],
) -> Result<Vec<BatchOutcome>, StoreError> {
    if let [one] = projections {
        return Ok(vec![apply_batch(pool, *one, events).await?]);
    }
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    // Locked in name order, as any other holder of several would.
    let rows: Vec<(String, i32, i64, i64, Option<String>)> = sqlx::query_as(
        "SELECT name, generation, tx_id::text::bigint, position, error
           FROM projection_checkpoints WHERE name = ANY($1) ORDER BY name FOR UPDATE",
    )
    .bind(&names)
    .fetch_all(&mut *tx)
    .await?;
    let mut outcomes = Vec::with_capacity(projections.len());
    let (mut moved, mut txs, mut positions, mut counts) = (vec![], vec![], vec![], vec![]);
    let mut refused = false;
    for p in projections {
        let Some((_, generation, tx_id, position, error)) = rows.iter().find(|r| r.0 == p.name())
        else {
            tx.rollback().await?;
            return Err(StoreError::Corrupt(format!(
                "projection {} has no checkpoint",
                p.name()
            )));
        };
        if let Some(error) = error {
            tx.rollback().await?;
            return Err(StoreError::Corrupt(format!(
                "projection {} is stopped: {error}",
                p.name()
            )));
        }
        let since = LogCursor {
            tx: *tx_id,
            position: *position,
        };
        let fresh = after(events, since);
        let Some(last) = fresh.last().map(|e| e.cursor) else {
            outcomes.push(BatchOutcome::Applied {
                cursor: since,
                applied: 0,
            });
            continue;
        };
        let table = table_name(p.name(), *generation);
        if guarded(p.apply_batch(&mut tx, &table, &fresh))
            .await
            .is_err()
        {
            refused = true;
            break;
        }
        moved.push(p.name());
        txs.push(last.tx);
        positions.push(last.position);
        counts.push(fresh.len() as i64);
        outcomes.push(BatchOutcome::Applied {
            cursor: last,
            applied: fresh.len(),
        });
    }
    if !refused {
        if !moved.is_empty() {
            sqlx::query(
                "UPDATE projection_checkpoints c
                    SET tx_id = u.tx::text::xid8, position = u.position,
                        applied = c.applied + u.applied, updated_at = now()
                   FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[])
                        AS u(name, tx, position, applied)
                  WHERE c.name = u.name",
            )
            .bind(&moved)
            .bind(&txs)
            .bind(&positions)
            .bind(&counts)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        } else {
            tx.rollback().await?;
        }
        return Ok(outcomes);
    }
    tx.rollback().await?;
    drop(conn);
    let mut outcomes = Vec::with_capacity(projections.len());
    for p in projections {
        outcomes.push(apply_batch(pool, *p, events).await?);
    }
    Ok(outcomes)
}

/// The events after `since`, each once, in log order: a batch from the bus
/// may hold a redelivered copy behind messages already seen, and must
/// neither apply it twice nor move the checkpoint back.
/// Borrowed when the batch is in order (the usual case).
fn after(events: &[RecordedEvent], since: LogCursor) -> Cow<'_, [RecordedEvent]> {
    if events.windows(2).all(|w| w[0].cursor < w[1].cursor) {
        let first = events.partition_point(|e| e.cursor <= since);
        return Cow::Borrowed(&events[first..]);
    }
    let mut high = since;
    Cow::Owned(
        events
            .iter()
            .filter(|e| {
                let newer = e.cursor > high;
                if newer {
                    high = e.cursor;
                }
                newer
            })
            .cloned()
            .collect(),
    )
}

async fn record_failure(
    conn: &mut PgConnection,
    name: &str,
    e: &RecordedEvent,
    error: &str,
) -> Result<(), StoreError> {
    // The error text comes from the projection's own code and the database;
    // it names the event by id and type only.
    tracing::error!(projection = name, event_id = %e.event_id, event_type = %e.event_type, error, "projection stopped");
    sqlx::query(
        "UPDATE projection_checkpoints SET failed_event = $2, error = $3, updated_at = now()
          WHERE name = $1",
    )
    .bind(name)
    .bind(e.event_id.0)
    .bind(format!("event {} ({}): {error}", e.event_id, e.event_type))
    .execute(conn)
    .await?;
    Ok(())
}

/// Clear a projection's failure so it can be started again (after a fix).
pub async fn clear_failure(pool: &PgPool, name: &str) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE projection_checkpoints SET failed_event = NULL, error = NULL WHERE name = $1",
    )
    .bind(name)
    .execute(pool)
    .await?;
    Ok(())
}

/// Read your writes: wait (at most `timeout`) until projection `name` has
/// applied the event at global `position`. Returns the checkpoint reached
/// and whether it covers the position.
pub async fn wait_for_position(
    pool: &PgPool,
    name: &str,
    position: i64,
    timeout: Duration,
) -> Result<(bool, Checkpoint), StoreError> {
    let deadline = Instant::now() + timeout;
    let mut target = None;
    loop {
        if target.is_none() {
            target = cursor_of_position(pool, position).await?;
        }
        let mut conn = pool.acquire().await?;
        // A projection not set up yet has applied nothing.
        let cp = match load(&mut conn, name, false).await {
            Err(StoreError::Database(sqlx::Error::RowNotFound)) => Checkpoint {
                name: name.to_owned(),
                generation: 1,
                cursor: LogCursor::START,
                applied: 0,
                error: None,
            },
            other => other?,
        };
        drop(conn);
        if let Some(t) = target
            && cp.cursor >= t
        {
            return Ok((true, cp));
        }
        if Instant::now() >= deadline {
            return Ok((false, cp));
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
