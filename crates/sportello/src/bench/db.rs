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

/// `url` with its database name replaced by `db` (query string kept).
fn with_database(url: &str, db: &str) -> String {
    let host_start = url.find("://").map(|i| i + 3).unwrap_or(0);
    let (base, rest) = match url[host_start..].find('/') {
        Some(i) => url.split_at(host_start + i),
        None => (url, ""),
    };
    let query = rest.find('?').map(|q| &rest[q..]).unwrap_or("");
    format!("{base}/{db}{query}")
}

/// An administrative connection to the server: its `postgres` database,
/// else the database the settings name.
async fn admin(server_url: &str) -> anyhow::Result<PgConnection> {
    match PgConnection::connect(&with_database(server_url, "postgres")).await {
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
                .connect(&with_database(server_url, &name))
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

/// The baseline table: the columns, constraints and indexes of `events`
/// (migrations/0001_event_store.sql), without the append-only trigger.
pub const BASELINE_DDL: &str = "
CREATE TABLE bench_rows (
    position        bigserial PRIMARY KEY,
    tx_id           xid8 NOT NULL DEFAULT pg_current_xact_id(),
    event_id        uuid NOT NULL UNIQUE,
    network_id      uuid NOT NULL,
    stream_id       uuid NOT NULL,
    stream_kind     text NOT NULL,
    version         bigint NOT NULL CHECK (version >= 1),
    event_type      text NOT NULL,
    schema_version  integer NOT NULL CHECK (schema_version >= 1),
    payload         jsonb NOT NULL,
    person_id       uuid,
    personal        bytea,
    organization_id uuid,
    metadata        jsonb NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    UNIQUE (stream_id, version),
    CHECK ((person_id IS NULL) = (personal IS NULL))
);
CREATE INDEX bench_rows_log_order ON bench_rows (tx_id, position);
CREATE INDEX bench_rows_network_log_order ON bench_rows (network_id, tx_id, position);
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

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/sportello", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h:1/db?sslmode=disable", "x"),
            "postgres://u@h:1/x?sslmode=disable"
        );
    }
}
