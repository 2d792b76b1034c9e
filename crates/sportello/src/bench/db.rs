//! The bench's own databases, made fresh on the server named by
//! `settings.database_url` (whatever database that URL names is left
//! alone), and the event-like rows both the baseline and the appends write.

use anyhow::Context;
use serde_json::{Value, json};
use sportello_domain::{AccountId, Metadata, OrganizationId};
use sqlx::postgres::PgPoolOptions;
use sqlx::{Connection, PgConnection, PgPool};
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// An administrative connection to the server: its `postgres` database,
/// else the database the settings name.
async fn admin(server_url: &str) -> anyhow::Result<PgConnection> {
    match PgConnection::connect(&sportello_store::db::url_with_database(
        server_url, "postgres",
    ))
    .await
    {
        Ok(c) => Ok(c),
        Err(_) => PgConnection::connect(server_url)
            .await
            .with_context(|| "connecting to PostgreSQL (database_url)".to_string()),
    }
}

/// A fresh, migrated database made for one bench run.
pub struct BenchDb {
    /// Its name.
    pub name: String,
    /// A pool on it.
    pub pool: PgPool,
    server_url: String,
}

impl BenchDb {
    /// Create and migrate one on the server of `server_url`, with a pool of
    /// at most `max` connections.
    pub async fn create(server_url: &str, max: u32) -> anyhow::Result<BenchDb> {
        let name = format!("sportello_bench_{}", Uuid::new_v4().simple());
        let mut conn = admin(server_url).await?;
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&mut conn)
            .await
            .context("creating the bench database")?;
        conn.close().await?;
        let db = BenchDb {
            pool: PgPoolOptions::new()
                .max_connections(max)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(sportello_store::db::options(
                    &sportello_store::db::url_with_database(server_url, &name),
                )?)
                .await
                .context("connecting to the bench database")?,
            name,
            server_url: server_url.to_owned(),
        };
        sportello_store::db::migrate(&db.pool)
            .await
            .context("migrating the bench database")?;
        Ok(db)
    }

    /// Close the pool and drop the database (best effort).
    pub async fn drop_db(self) {
        self.pool.close().await;
        if let Ok(mut conn) = admin(&self.server_url).await {
            let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name);
            if let Err(e) = sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
            {
                eprintln!("could not drop bench database {}: {e}", self.name);
            }
        }
    }
}

/// The baseline table: the columns, defaults, constraints and indexes of
/// `events` as migrated (so it cannot drift from it), without the
/// append-only trigger.
pub const BASELINE_DDL: &str = "
CREATE TABLE bench_rows (LIKE events INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING INDEXES);
";

/// One baseline row, autocommit: the same values an append writes.
pub const BASELINE_INSERT: &str = "
INSERT INTO bench_rows (event_id, network_id, stream_id, stream_kind, version, event_type,
                        schema_version, payload, person_id, personal, organization_id, metadata)
VALUES ($1, $2, $3, $4, 1, $5, 1, $6, NULL, NULL, $7, $8)";

/// The event type every bench event has (no history: schema version 1).
pub const EVENT_TYPE: &str = "BenchReferralNoted";

/// The stream kind of every bench stream.
pub const STREAM_KIND: &str = "bench";

/// A public payload of a realistic size (about 250 bytes of JSON), the
/// same for the baseline rows and the events. No personal part.
pub fn payload(org: OrganizationId) -> Value {
    json!({
        "referral_id": Uuid::now_v7(),
        "to_organization": org,
        "service": "legal-advice",
        "urgency": "within-48h",
        "channel": "desk",
        "reason_code": "residence-permit-renewal",
        "due": "2025-03-14T12:00:00Z",
        "notes_ref": Uuid::now_v7(),
    })
}

/// Metadata of a new command, now.
pub fn metadata(account: AccountId, org: OrganizationId) -> Metadata {
    Metadata::for_command(account, org, OffsetDateTime::now_utc())
}
