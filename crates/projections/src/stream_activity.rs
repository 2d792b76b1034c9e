//! `stream_activity`: one row per stream — its network, kind, version,
//! number of events, first and last event time and last event type. The
//! operations view of what moves in the network, and the simplest read
//! model to prove the runner with (live and rebuilt rows must match).

use sportello_store::RecordedEvent;
use sportello_store::projection::{ApplyError, Projection};
use sqlx::PgConnection;
use std::collections::HashMap;
use time::OffsetDateTime;
use uuid::Uuid;

/// What one batch does to one stream's row.
struct Delta {
    network_id: Uuid,
    stream_kind: String,
    version: i64,
    events: i64,
    first_at: OffsetDateTime,
    last_at: OffsetDateTime,
    last_event_type: String,
    last_position: i64,
}

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
             RETURNING t.version = t.events"
        );
        let applied: Option<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(e.network_id.0)
            .bind(e.stream_id.0)
            .bind(&e.stream_kind)
            .bind(e.version)
            .bind(e.metadata.occurred_at)
            .bind(&e.event_type)
            .bind(e.cursor.position)
            .fetch_optional(&mut *conn)
            .await?;
        // A stream's versions run 1, 2, 3...: a gap, a repeat or a missing
        // first event means the feed is wrong — stop rather than build a
        // wrong read model.
        if applied != Some(true) {
            return Err(ApplyError::Invalid(format!(
                "stream {} version {} does not follow the projected version",
                e.stream_id, e.version
            )));
        }
        Ok(())
    }

    /// Set-wise: fold the batch per stream, then one statement for all the
    /// streams. Same rows as one event at a time.
    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        table: &str,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let mut order: Vec<Uuid> = Vec::new();
        let mut deltas: HashMap<Uuid, Delta> = HashMap::new();
        for e in events {
            let at = e.metadata.occurred_at;
            match deltas.get_mut(&e.stream_id.0) {
                Some(d) => {
                    if e.version != d.version + 1 || e.network_id.0 != d.network_id {
                        return Err(ApplyError::Invalid(format!(
                            "stream {} version {} does not follow the projected version",
                            e.stream_id, e.version
                        )));
                    }
                    d.version = e.version;
                    d.events += 1;
                    d.last_at = at;
                    d.last_event_type.clone_from(&e.event_type);
                    d.last_position = e.cursor.position;
                }
                None => {
                    order.push(e.stream_id.0);
                    deltas.insert(
                        e.stream_id.0,
                        Delta {
                            network_id: e.network_id.0,
                            stream_kind: e.stream_kind.clone(),
                            version: e.version,
                            events: 1,
                            first_at: at,
                            last_at: at,
                            last_event_type: e.event_type.clone(),
                            last_position: e.cursor.position,
                        },
                    );
                }
            }
        }
        let rows: Vec<&Delta> = order.iter().map(|id| &deltas[id]).collect();
        let sql = format!(
            "INSERT INTO {table} AS t (network_id, stream_id, stream_kind, version, events,
                                       first_at, last_at, last_event_type, last_position)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::bigint[],
                                  $5::bigint[], $6::timestamptz[], $7::timestamptz[],
                                  $8::text[], $9::bigint[])
             ON CONFLICT (stream_id) DO UPDATE
                SET version = excluded.version, events = t.events + excluded.events,
                    last_at = excluded.last_at, last_event_type = excluded.last_event_type,
                    last_position = excluded.last_position
              WHERE t.network_id = excluded.network_id
                AND t.version = excluded.version - excluded.events
             RETURNING t.version = t.events"
        );
        let done: Vec<bool> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
            .bind(rows.iter().map(|d| d.network_id).collect::<Vec<_>>())
            .bind(&order)
            .bind(
                rows.iter()
                    .map(|d| d.stream_kind.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|d| d.version).collect::<Vec<_>>())
            .bind(rows.iter().map(|d| d.events).collect::<Vec<_>>())
            .bind(rows.iter().map(|d| d.first_at).collect::<Vec<_>>())
            .bind(rows.iter().map(|d| d.last_at).collect::<Vec<_>>())
            .bind(
                rows.iter()
                    .map(|d| d.last_event_type.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(rows.iter().map(|d| d.last_position).collect::<Vec<_>>())
            .fetch_all(&mut *conn)
            .await?;
        if done.len() != rows.len() || done.contains(&false) {
            // Some stream's versions do not follow its row: the runner
            // replays one event at a time to name the event.
            return Err(ApplyError::Invalid(
                "a stream's versions do not follow the projected version".into(),
            ));
        }
        Ok(())
    }
}
