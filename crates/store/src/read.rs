//! Reading: one stream, or the whole log in its total order.
//!
//! The log is read in `(tx_id, position)` order and only below
//! `pg_snapshot_xmin(pg_current_snapshot())`, the oldest transaction still
//! running anywhere in the cluster. Every transaction below it has finished,
//! so nothing can ever be inserted before a cursor a reader has passed: a
//! reader never skips an event whose transaction committed late.

use crate::append::EventStore;
use crate::crypto::Keyring;
use crate::envelope::{LogCursor, Personal, ReadEvent, RecordedEvent, SealedPersonal};
use crate::error::StoreError;
use sportello_domain::{
    EventId, Metadata, NetworkId, OrganizationId, Part, PersonId, StreamId, upcast,
};
use sqlx::postgres::PgRow;
use sqlx::{PgExecutor, Row};
use time::OffsetDateTime;
use uuid::Uuid;

const COLUMNS: &str = "tx_id::text::bigint AS tx, position, event_id, network_id, stream_id,
    stream_kind, version, event_type, schema_version, payload, person_id, personal,
    organization_id, metadata, recorded_at";

fn decode(row: &PgRow) -> Result<RecordedEvent, StoreError> {
    let event_type: String = row.try_get("event_type")?;
    let stored_schema_version: i32 = row.try_get("schema_version")?;
    let mut payload: serde_json::Value = row.try_get("payload")?;
    let schema_version = match upcast(
        &event_type,
        stored_schema_version,
        Part::Public,
        &mut payload,
    ) {
        Ok(v) => v,
        // Written by a newer version of the code (a rolling deploy): pass it
        // on as stored rather than wedge every log reader on it; whoever
        // interprets it must know its version.
        Err(sportello_domain::UpcastError::FromTheFuture { .. }) => stored_schema_version,
        Err(e) => return Err(e.into()),
    };
    let person: Option<Uuid> = row.try_get("person_id")?;
    let sealed: Option<Vec<u8>> = row.try_get("personal")?;
    let metadata: sqlx::types::Json<Metadata> = row.try_get("metadata")?;
    Ok(RecordedEvent {
        cursor: LogCursor {
            tx: row.try_get("tx")?,
            position: row.try_get("position")?,
        },
        event_id: EventId(row.try_get("event_id")?),
        network_id: NetworkId(row.try_get("network_id")?),
        stream_id: StreamId(row.try_get("stream_id")?),
        stream_kind: row.try_get("stream_kind")?,
        version: row.try_get("version")?,
        event_type,
        schema_version,
        stored_schema_version,
        payload,
        personal: match (person, sealed) {
            (Some(p), Some(c)) => Some(SealedPersonal {
                person_id: PersonId(p),
                ciphertext: c,
            }),
            _ => None,
        },
        concerns: row
            .try_get::<Option<Uuid>, _>("organization_id")?
            .map(OrganizationId),
        metadata: metadata.0,
        recorded_at: row.try_get::<OffsetDateTime, _>("recorded_at")?,
    })
}

/// Read the log after `after`, in log order, at most `limit` events, only
/// events whose transactions have finished (see the module doc). `network`
/// limits the read to one tenant; `None` reads every network (the relay and
/// installation-wide projections do).
pub async fn read_log<'e>(
    executor: impl PgExecutor<'e>,
    after: LogCursor,
    limit: i64,
    network: Option<NetworkId>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM events
          WHERE (tx_id, position) > ($1::text::xid8, $2)
            AND tx_id < pg_snapshot_xmin(pg_current_snapshot())
            AND ($4::uuid IS NULL OR network_id = $4)
          ORDER BY tx_id, position
          LIMIT $3"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(after.tx.to_string())
        .bind(after.position)
        .bind(limit)
        .bind(network.map(|n| n.0))
        .fetch_all(executor)
        .await?;
    rows.iter().map(decode).collect()
}

/// The cursor of one event, if it exists (used to turn a `position` a
/// client holds into a place in log order).
pub async fn cursor_of_position<'e>(
    executor: impl PgExecutor<'e>,
    position: i64,
) -> Result<Option<LogCursor>, StoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT tx_id::text::bigint, position FROM events WHERE position = $1")
            .bind(position)
            .fetch_optional(executor)
            .await?;
    Ok(row.map(|(tx, position)| LogCursor { tx, position }))
}

/// The cursor of one event by id.
pub async fn cursor_of_event<'e>(
    executor: impl PgExecutor<'e>,
    event_id: EventId,
) -> Result<Option<LogCursor>, StoreError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT tx_id::text::bigint, position FROM events WHERE event_id = $1")
            .bind(event_id.0)
            .fetch_optional(executor)
            .await?;
    Ok(row.map(|(tx, position)| LogCursor { tx, position }))
}

/// The cursor of the last event a log reader can see now (the head).
pub async fn head<'e>(executor: impl PgExecutor<'e>) -> Result<LogCursor, StoreError> {
    let row: Option<(i64, i64)> = sqlx::query_as(
        "SELECT tx_id::text::bigint, position FROM events
          WHERE tx_id < pg_snapshot_xmin(pg_current_snapshot())
          ORDER BY tx_id DESC, position DESC LIMIT 1",
    )
    .fetch_optional(executor)
    .await?;
    Ok(row
        .map(|(tx, position)| LogCursor { tx, position })
        .unwrap_or(LogCursor::START))
}

/// How many events a reader at `after` has still to read.
pub async fn count_after<'e>(
    executor: impl PgExecutor<'e>,
    after: LogCursor,
) -> Result<i64, StoreError> {
    let (n,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM events
          WHERE (tx_id, position) > ($1::text::xid8, $2)
            AND tx_id < pg_snapshot_xmin(pg_current_snapshot())",
    )
    .bind(after.tx.to_string())
    .bind(after.position)
    .fetch_one(executor)
    .await?;
    Ok(n)
}

/// Only the events of `network`: a stream id of another network reads as
/// no stream at all.
fn of_network(
    network: NetworkId,
    mut events: Vec<RecordedEvent>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    events.retain(|e| e.network_id == network);
    Ok(events)
}

impl EventStore {
    /// Every event of one stream of this network, in version order, with
    /// personal parts opened (for callers allowed to see them).
    pub async fn read_stream(
        &self,
        network: NetworkId,
        stream: StreamId,
    ) -> Result<Vec<ReadEvent>, StoreError> {
        let events = self.load_stream(network, stream).await?;
        self.open(events).await
    }

    /// Every event of one stream of this network, in version order, with
    /// personal parts left sealed: what deciding a command needs.
    pub async fn load_stream(
        &self,
        network: NetworkId,
        stream: StreamId,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // By the stream's own unique index alone, whatever the planner's
        // statistics say; the tenant is checked on the rows.
        let sql = format!("SELECT {COLUMNS} FROM events WHERE stream_id = $1 ORDER BY version");
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(stream.0)
            .fetch_all(self.pool())
            .await?;
        of_network(network, rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Every event of several streams of this network, stream by stream
    /// in version order, personal parts left sealed.
    pub async fn load_streams(
        &self,
        network: NetworkId,
        streams: &[StreamId],
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        // Stream by stream through the stream's own index, whatever the
        // statistics say (`stream_id = ANY(...)` may be planned as a scan of
        // the whole log when they are missing); the inner ORDER BY keeps
        // the planner from folding the look-ups into one join.
        let sql = format!(
            "SELECT e.* FROM unnest($1::uuid[]) AS s(id)
              CROSS JOIN LATERAL (SELECT {COLUMNS} FROM events WHERE stream_id = s.id ORDER BY version) e
              ORDER BY e.stream_id, e.version"
        );
        let ids: Vec<uuid::Uuid> = streams.iter().map(|s| s.0).collect();
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(ids)
            .fetch_all(self.pool())
            .await?;
        of_network(network, rows.iter().map(decode).collect::<Result<_, _>>()?)
    }

    /// Open the personal parts of these events with their persons' keys,
    /// and upcast them to the current schema version.
    pub async fn open(&self, events: Vec<RecordedEvent>) -> Result<Vec<ReadEvent>, StoreError> {
        let mut persons: Vec<PersonId> = events
            .iter()
            .filter_map(|e| e.personal.as_ref().map(|p| p.person_id))
            .collect();
        persons.sort();
        persons.dedup();
        let keys = self
            .keyring()
            .keys_for_reading(self.pool(), &persons)
            .await?;
        events
            .into_iter()
            .map(|event| {
                let personal = match &event.personal {
                    None => Personal::None,
                    Some(sealed) => match Keyring::open_with(&keys, event.event_id, sealed)? {
                        Personal::Open(mut v) => {
                            upcast(
                                &event.event_type,
                                event.stored_schema_version,
                                Part::Personal,
                                &mut v,
                            )?;
                            Personal::Open(v)
                        }
                        other => other,
                    },
                };
                Ok(ReadEvent { event, personal })
            })
            .collect()
    }
}
