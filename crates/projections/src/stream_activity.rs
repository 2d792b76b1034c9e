//! `stream_activity`: one row per stream — its network, kind, version,
//! number of events, first and last event time and last event type. The
//! operations view of what moves in the network, and the simplest read
//! model to prove the runner with (live and rebuilt rows must match).

use sportello_store::RecordedEvent;
use sportello_store::projection::{ApplyError, Projection};
use sqlx::PgConnection;

/// The stream activity projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct StreamActivity;

#[async_trait::async_trait]
impl Projection for StreamActivity {
    fn name(&self) -> &'static str {
        "stream_activity"
    }

    fn create_table(&self, table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                network_id      uuid NOT NULL,
                stream_id       uuid PRIMARY KEY,
                stream_kind     text NOT NULL,
                version         bigint NOT NULL,
                events          bigint NOT NULL,
                first_at        timestamptz NOT NULL,
                last_at         timestamptz NOT NULL,
                last_event_type text NOT NULL,
                last_position   bigint NOT NULL
            );
            CREATE INDEX {table}_network ON {table} (network_id, stream_kind);"
        )
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        table: &str,
        e: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        let sql = format!(
            "INSERT INTO {table} AS t (network_id, stream_id, stream_kind, version, events,
                                       first_at, last_at, last_event_type, last_position)
             VALUES ($1, $2, $3, $4, 1, $5, $5, $6, $7)
             ON CONFLICT (stream_id) DO UPDATE
                SET version = excluded.version, events = t.events + 1,
                    last_at = excluded.last_at, last_event_type = excluded.last_event_type,
                    last_position = excluded.last_position
              WHERE t.network_id = excluded.network_id AND t.version = excluded.version - 1
             RETURNING 1"
        );
        let applied = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(e.network_id.0)
            .bind(e.stream_id.0)
            .bind(&e.stream_kind)
            .bind(e.version)
            .bind(e.metadata.occurred_at)
            .bind(&e.event_type)
            .bind(e.cursor.position)
            .fetch_optional(&mut *conn)
            .await?;
        if applied.is_none() {
            // A gap or a repeat in a stream's versions means the feed is
            // wrong: stop rather than build a wrong read model.
            return Err(ApplyError::Invalid(format!(
                "stream {} version {} does not follow the projected version",
                e.stream_id, e.version
            )));
        }
        Ok(())
    }
}
