//! What the bench database did during a phase, from PostgreSQL's
//! cumulative statistics (`pg_stat_database`, `pg_stat_user_tables`): the
//! work behind each request, counted the same way whoever did it (the
//! handlers, the relay, the projection runners; system catalogs included).
//! PostgreSQL publishes them
//! when a backend goes idle, up to 10 s later, so a phase is read once its
//! work is done and [`SETTLE`] has passed; and the server's relay polls the
//! log when idle, which is measured on its own ([`Snapshot::idle_rate`])
//! and taken off the phases' database figures.

use serde::Serialize;
use sqlx::PgPool;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// How long PostgreSQL may take to publish an idle backend's counters.
pub const SETTLE: Duration = Duration::from_secs(11);

/// The counters at one moment.
pub struct Snapshot {
    at: Instant,
    db: [i64; 9],
    tables: HashMap<String, [i64; 6]>,
}

const DB_COLUMNS: &str = "xact_commit, xact_rollback, tup_returned, tup_fetched, tup_inserted,
    tup_updated, tup_deleted, blks_hit, blks_read";

/// Take one of the database `name`.
pub async fn snapshot(pool: &PgPool, name: &str) -> anyhow::Result<Snapshot> {
    let row: (i64, i64, i64, i64, i64, i64, i64, i64, i64) = sqlx::query_as(sqlx::AssertSqlSafe(
        format!("SELECT {DB_COLUMNS} FROM pg_stat_database WHERE datname = $1"),
    ))
    .bind(name)
    .fetch_one(pool)
    .await?;
    let db = [
        row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8,
    ];
    let rows: Vec<(String, i64, i64, i64, i64, i64, i64)> = sqlx::query_as(
        "SELECT t.relname::text, coalesce(t.seq_scan, 0), coalesce(t.seq_tup_read, 0),
                coalesce(t.idx_scan, 0),
                coalesce((SELECT sum(i.idx_tup_read) FROM pg_stat_all_indexes i
                           WHERE i.relid = t.relid), 0)::bigint,
                t.n_tup_ins + t.n_tup_upd + t.n_tup_del, t.n_tup_hot_upd
           FROM pg_stat_all_tables t
          WHERE t.schemaname NOT IN ('information_schema', 'pg_toast')",
    )
    .fetch_all(pool)
    .await?;
    let tables = rows
        .into_iter()
        .map(|(t, a, b, c, d, e, f)| (t, [a, b, c, d, e, f]))
        .collect();
    Ok(Snapshot {
        at: Instant::now(),
        db,
        tables,
    })
}

/// The database's counters per second of an idle server.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Idle {
    /// Transactions committed per second (the relay's polls of the log).
    pub commits_per_sec: f64,
    /// Shared buffer hits per second.
    pub blocks_hit_per_sec: f64,
    #[serde(skip)]
    rates: [f64; 9],
}

/// The database's work in a phase, per request of the phase, less what
/// the idle server does in as much time.
#[derive(Clone, Debug, Serialize)]
pub struct Work {
    /// Requests (successful) of the phase.
    pub requests: u64,
    /// From the phase's start until its counters were read, seconds.
    pub seconds: f64,
    /// Transactions committed, per request.
    pub commits_per_request: f64,
    /// Transactions rolled back, per request.
    pub rollbacks_per_request: f64,
    /// Rows returned by scans, per request.
    pub rows_scanned_per_request: f64,
    /// Rows fetched by index, per request.
    pub rows_fetched_per_request: f64,
    /// Rows inserted, updated, deleted, per request.
    pub rows_written_per_request: f64,
    /// Shared buffer hits, per request.
    pub blocks_hit_per_request: f64,
    /// Blocks read from outside shared buffers (the OS cache or disk), per
    /// request.
    pub blocks_read_per_request: f64,
    /// The tables with the most work, busiest first.
    pub tables: Vec<TableWork>,
}

/// One table's work in a phase (totals, not per request).
#[derive(Clone, Debug, Serialize)]
pub struct TableWork {
    /// The table.
    pub table: String,
    /// Sequential scans.
    pub seq_scans: i64,
    /// Rows those scans read.
    pub seq_rows: i64,
    /// Index scans.
    pub idx_scans: i64,
    /// Index entries those scans read.
    pub idx_rows: i64,
    /// Rows inserted, updated or deleted.
    pub rows_written: i64,
    /// Of the updates, heap-only (no index touched).
    pub hot_updates: i64,
}

/// How many tables the report names.
const TABLES: usize = 10;

impl Snapshot {
    /// The rates of an idle server, from `self` to `later`.
    pub fn idle_rate(&self, later: &Snapshot) -> Idle {
        let seconds = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let rates = std::array::from_fn(|i| (later.db[i] - self.db[i]) as f64 / seconds);
        Idle {
            commits_per_sec: rates[0],
            blocks_hit_per_sec: rates[7],
            rates,
        }
    }

    /// The work from `self` to `later`, over `requests`, less `idle`.
    pub fn until(&self, later: &Snapshot, requests: u64, idle: &Idle) -> Work {
        let seconds = later.at.duration_since(self.at).as_secs_f64();
        let d = |i: usize| {
            let n = (later.db[i] - self.db[i]) as f64 - idle.rates[i] * seconds;
            n.max(0.0) / requests.max(1) as f64
        };
        let mut tables: Vec<TableWork> = later
            .tables
            .iter()
            .map(|(name, v)| {
                let before = self.tables.get(name).copied().unwrap_or_default();
                let x = |i: usize| v[i] - before[i];
                TableWork {
                    table: name.clone(),
                    seq_scans: x(0),
                    seq_rows: x(1),
                    idx_scans: x(2),
                    idx_rows: x(3),
                    rows_written: x(4),
                    hot_updates: x(5),
                }
            })
            .filter(|t| t.seq_scans + t.idx_scans + t.rows_written > 0)
            .collect();
        tables.sort_by_key(|t| {
            std::cmp::Reverse(t.seq_rows + t.idx_scans + t.idx_rows + t.rows_written)
        });
        tables.truncate(TABLES);
        Work {
            requests,
            seconds,
            commits_per_request: d(0),
            rollbacks_per_request: d(1),
            rows_scanned_per_request: d(2),
            rows_fetched_per_request: d(3),
            rows_written_per_request: d(4) + d(5) + d(6),
            blocks_hit_per_request: d(7),
            blocks_read_per_request: d(8),
            tables,
        }
    }
}
