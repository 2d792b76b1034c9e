//! Blue/green rebuild of a projection from the PostgreSQL log: build the
//! next generation's table beside the live one until the log has nothing
//! more, then, under the checkpoint's row lock, apply what came in since,
//! point the view and the checkpoint at the new table and drop the old one.
//! Readers never see a half-built table. One rebuild per projection at a
//! time (an advisory lock).

use super::checkpoint::{self, load};
use super::{Projection, table_name};
use crate::envelope::LogCursor;
use crate::error::StoreError;
use crate::read::{count_after, read_log};
use sqlx::{Acquire, PgConnection, PgPool};

/// Progress of a rebuild: events done out of about this many.
pub trait Progress {
    /// Called after each batch.
    fn update(&self, done: u64, total: u64);
}

impl<F: Fn(u64, u64)> Progress for F {
    fn update(&self, done: u64, total: u64) {
        self(done, total)
    }
}

async fn apply_all(
    conn: &mut PgConnection,
    p: &dyn Projection,
    table: &str,
    events: &[crate::RecordedEvent],
) -> Result<(), StoreError> {
    p.apply_batch(conn, table, events).await.map_err(|err| {
        StoreError::Corrupt(format!(
            "rebuild of {} stopped in the batch ending at {}: {err}",
            p.name(),
            events.last().map(|e| e.cursor).unwrap_or_default()
        ))
    })
}

/// Rebuild `p` from the log; returns the number of events applied.
pub async fn rebuild(
    pool: &PgPool,
    p: &dyn Projection,
    batch: i64,
    progress: &dyn Progress,
) -> Result<u64, StoreError> {
    // One rebuild of a projection at a time, across processes. The lock
    // lives on a connection that is closed (not pooled) when we are done.
    let mut guard = pool.acquire().await?;
    guard.close_on_drop();
    let (got,): (bool,) = sqlx::query_as(
        "SELECT pg_try_advisory_lock(hashtextextended('sportello-rebuild:' || $1, 0))",
    )
    .bind(p.name())
    .fetch_one(&mut *guard)
    .await?;
    if !got {
        return Err(StoreError::Corrupt(format!(
            "a rebuild of {} is already running",
            p.name()
        )));
    }
    let current = checkpoint::setup(pool, p).await?;
    let generation = current.generation + 1;
    let table = table_name(p.name(), generation);
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP TABLE IF EXISTS {table}")))
        .execute(pool)
        .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(p.create_table(&table)))
        .execute(pool)
        .await?;

    let total = count_after(pool, LogCursor::START).await? as u64;
    let mut cursor = LogCursor::START;
    let mut done = 0u64;
    progress.update(0, total);
    loop {
        let events = read_log(pool, cursor, batch, None).await?;
        if events.is_empty() {
            break;
        }
        let mut tx = pool.begin().await?;
        apply_all(&mut tx, p, &table, &events).await?;
        tx.commit().await?;
        cursor = events.last().expect("non-empty").cursor;
        done += events.len() as u64;
        progress.update(done, total.max(done));
    }

    // Swap: lock the checkpoint (the live runner waits), apply what came
    // in meanwhile, then point everything at the new generation.
    let mut conn = pool.acquire().await?;
    let mut tx = conn.begin().await?;
    let old = load(&mut tx, p.name(), true).await?;
    if old.generation != current.generation {
        return Err(StoreError::Corrupt(format!(
            "{} changed generation during the rebuild ({} to {})",
            p.name(),
            current.generation,
            old.generation
        )));
    }
    loop {
        let events = read_log(&mut *tx, cursor, batch, None).await?;
        if events.is_empty() {
            break;
        }
        apply_all(&mut tx, p, &table, &events).await?;
        cursor = events.last().expect("non-empty").cursor;
        done += events.len() as u64;
    }
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP VIEW IF EXISTS {0}; CREATE VIEW {0} AS SELECT * FROM {table}",
        p.name()
    )))
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE projection_checkpoints
            SET generation = $2, tx_id = $3::text::xid8, position = $4, applied = $5,
                failed_event = NULL, error = NULL, updated_at = now()
          WHERE name = $1",
    )
    .bind(p.name())
    .bind(generation)
    .bind(cursor.tx.to_string())
    .bind(cursor.position)
    .bind(done as i64)
    .execute(&mut *tx)
    .await?;
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "DROP TABLE IF EXISTS {}",
        table_name(p.name(), old.generation)
    )))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let _ = sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *guard)
        .await;
    progress.update(done, done);
    Ok(done)
}
