//! `bottleneck_cells`: the bottleneck report's figures, kept up to date as
//! referrals move, so the report adds up a few thousand small rows instead
//! of scanning every referral.
//!
//! A cell is one organisation × need category × stage × UTC day on which
//! referrals *entered* that stage. Stages are the statuses a referral
//! waits in: `sent` (1), `acknowledged` (2), `accepted` (3), `in_progress`
//! (4). When a referral enters a stage its cell's `entered` grows; when it
//! leaves, the cell of the day it entered gets `left_stage`, its wait in
//! a histogram bucket, a decline by reason (leaving `sent` or
//! `acknowledged` by a decline), and the deadline check — `acknowledge_by`
//! on leaving `sent`, `first_contact_by` on leaving `accepted` (starting,
//! completing, failing or cancellation ends the wait for first contact).
//! What is still waiting now is read from the `referrals` model at report
//! time.
//!
//! To know which stage an event ends and since when, the projection reads
//! the referral's earlier events from the log (the truth, immutable, and
//! always there for an event being applied) and replays them with the
//! domain's own `decode`/`evolve`. Cells are document rows keyed by a
//! hash of their coordinates, written like the other document models.

use crate::rows::{load_docs, store_docs};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sportello_domain::referral::{self, DeclineReason, ReferralEvent, ReferralStatus};
use sportello_store::RecordedEvent;
use sportello_store::projection::{ApplyError, Projection};
use sqlx::PgConnection;
use std::collections::{BTreeMap, HashMap};
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Upper bounds (hours) of the wait histogram's buckets; the last bucket
/// is everything longer.
pub const WAIT_BUCKETS_H: [f64; 21] = [
    0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 36.0, 48.0, 72.0, 96.0, 120.0, 168.0, 240.0, 336.0, 504.0,
    720.0, 1080.0, 1440.0, 2160.0, 4320.0,
];

/// The decline reasons, in the order of a cell's `declined` counts.
pub const DECLINE_REASONS: [DeclineReason; 6] = [
    DeclineReason::NoCapacity,
    DeclineReason::NotEligible,
    DeclineReason::MissingDocuments,
    DeclineReason::OutsideArea,
    DeclineReason::Duplicate,
    DeclineReason::Other,
];

/// The stage a status is (1 to 4), if a referral waits in it.
pub fn stage_of(status: ReferralStatus) -> Option<i16> {
    match status {
        ReferralStatus::Sent => Some(1),
        ReferralStatus::Acknowledged => Some(2),
        ReferralStatus::Accepted => Some(3),
        ReferralStatus::InProgress => Some(4),
        _ => None,
    }
}

/// The bucket of a wait of `hours`.
pub fn bucket(hours: f64) -> usize {
    WAIT_BUCKETS_H
        .iter()
        .position(|&b| hours <= b)
        .unwrap_or(WAIT_BUCKETS_H.len())
}

/// A row of `bottleneck_cells`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cell {
    /// A hash of the coordinates below (the row's key).
    pub cell_id: Uuid,
    /// The tenant.
    pub network_id: Uuid,
    /// The UTC day referrals entered the stage, `YYYY-MM-DD`.
    pub day: String,
    /// The provider.
    pub organization_id: Uuid,
    /// The need category.
    pub need_code: String,
    /// 1 sent, 2 acknowledged, 3 accepted, 4 in progress.
    pub stage: i16,
    /// Referrals that entered the stage that day.
    pub entered: i32,
    /// Of those, the ones that have left it.
    pub left_stage: i32,
    /// Their waits, by [`WAIT_BUCKETS_H`] bucket (one more for longer).
    pub waits: Vec<i32>,
    /// Those that left by a decline, by [`DECLINE_REASONS`].
    pub declined: Vec<i32>,
    /// Those that left with the stage's deadline set.
    pub breach_base: i32,
    /// Of those, the ones that left after the deadline.
    pub breached: i32,
}

type Coordinates = (Uuid, Date, Uuid, String, i16);

fn cell_id(c: &Coordinates) -> Uuid {
    let mut h = Sha256::new();
    h.update(c.0.as_bytes());
    h.update(c.1.to_julian_day().to_be_bytes());
    h.update(c.2.as_bytes());
    h.update(c.3.as_bytes());
    h.update(c.4.to_be_bytes());
    let bytes: [u8; 16] = h.finalize()[..16].try_into().expect("16 bytes");
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

fn utc_day(t: OffsetDateTime) -> Date {
    t.to_offset(time::UtcOffset::UTC).date()
}

/// A referral as far as the cells care: its provider, category,
/// deadlines, status and since when.
struct Replayed {
    state: referral::Referral,
    since: OffsetDateTime,
}

fn invalid(e: &RecordedEvent, why: impl std::fmt::Display) -> ApplyError {
    ApplyError::Invalid(format!(
        "referral {} version {} at position {}: {why}",
        e.stream_id, e.version, e.cursor.position
    ))
}

/// Replay a referral's events up to (not including) version `before`.
fn replay(
    history: &[(i64, String, serde_json::Value, OffsetDateTime)],
    before: i64,
    e: &RecordedEvent,
) -> Result<Replayed, ApplyError> {
    let mut state: Option<referral::Referral> = None;
    let mut since = None;
    let mut expected = 1;
    for (version, event_type, payload, at) in history.iter().filter(|h| h.0 < before) {
        if *version != expected {
            return Err(invalid(e, "the referral's log has a gap"));
        }
        expected += 1;
        let event = referral::decode(event_type, payload).map_err(|err| invalid(e, err))?;
        let status = state.as_ref().map(|s| s.status);
        state = referral::evolve(state, &event);
        if state.as_ref().map(|s| s.status) != status {
            since = Some(*at);
        }
    }
    if expected != before {
        return Err(invalid(e, "the referral's earlier events are missing"));
    }
    match (state, since) {
        (Some(state), Some(since)) => Ok(Replayed { state, since }),
        _ => Err(invalid(e, "a referral event before the referral was sent")),
    }
}

/// What one batch adds to its cells.
#[derive(Default)]
struct Deltas(BTreeMap<Coordinates, Cell>);

impl Deltas {
    fn cell(&mut self, network: Uuid, day: Date, org: Uuid, code: &str, stage: i16) -> &mut Cell {
        let key = (network, day, org, code.to_owned(), stage);
        self.0.entry(key.clone()).or_insert_with(|| Cell {
            cell_id: cell_id(&key),
            network_id: network,
            day: format!(
                "{:04}-{:02}-{:02}",
                day.year(),
                u8::from(day.month()),
                day.day()
            ),
            organization_id: org,
            need_code: code.to_owned(),
            stage,
            entered: 0,
            left_stage: 0,
            waits: vec![0; WAIT_BUCKETS_H.len() + 1],
            declined: vec![0; DECLINE_REASONS.len()],
            breach_base: 0,
            breached: 0,
        })
    }
}

/// The bottleneck cells projection.
#[derive(Clone, Copy, Debug, Default)]
pub struct BottleneckCells;

#[async_trait::async_trait]
impl Projection for BottleneckCells {
    fn name(&self) -> &'static str {
        "bottleneck_cells"
    }

    fn create_table(&self, table: &str) -> String {
        format!(
            "CREATE TABLE {table} (
                cell_id         uuid PRIMARY KEY,
                network_id      uuid NOT NULL,
                day             date NOT NULL,
                organization_id uuid NOT NULL,
                need_code       text NOT NULL,
                stage           smallint NOT NULL,
                entered         integer NOT NULL,
                left_stage      integer NOT NULL,
                waits           integer[] NOT NULL,
                declined        integer[] NOT NULL,
                breach_base     integer NOT NULL,
                breached        integer NOT NULL
            );
            CREATE INDEX {table}_day ON {table} (network_id, day);"
        )
    }

    async fn apply(
        &self,
        conn: &mut PgConnection,
        table: &str,
        event: &RecordedEvent,
    ) -> Result<(), ApplyError> {
        self.apply_batch(conn, table, std::slice::from_ref(event))
            .await
    }

    async fn apply_batch(
        &self,
        conn: &mut PgConnection,
        table: &str,
        events: &[RecordedEvent],
    ) -> Result<(), ApplyError> {
        let events: Vec<&RecordedEvent> = events
            .iter()
            .filter(|e| e.stream_kind == referral::STREAM_KIND)
            .collect();
        if events.is_empty() {
            return Ok(());
        }
        // The earlier events of the referrals this batch moves.
        let mut streams: Vec<Uuid> = events
            .iter()
            .filter(|e| e.version > 1)
            .map(|e| e.stream_id.0)
            .collect();
        streams.sort_unstable();
        streams.dedup();
        let mut histories: HashMap<Uuid, Vec<(i64, String, serde_json::Value, OffsetDateTime)>> =
            HashMap::new();
        if !streams.is_empty() {
            let rows: Vec<(Uuid, i64, String, serde_json::Value, serde_json::Value)> =
                sqlx::query_as(
                    // Stream by stream through its own index, whatever the
                    // statistics say (the inner ORDER BY keeps the planner
                    // from folding the look-ups into one scan).
                    "SELECT e.stream_id, e.version, e.event_type, e.payload, e.metadata -> 'occurred_at'
                       FROM unnest($1::uuid[]) AS s(id)
                      CROSS JOIN LATERAL (SELECT * FROM events WHERE stream_id = s.id ORDER BY version) e
                      ORDER BY e.stream_id, e.version",
                )
                .bind(&streams)
                .fetch_all(&mut *conn)
                .await?;
            for (stream, version, event_type, payload, at) in rows {
                let at = at
                    .as_str()
                    .and_then(|s| {
                        OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
                            .ok()
                    })
                    .ok_or_else(|| {
                        ApplyError::Invalid(format!("referral {stream}: unreadable event time"))
                    })?;
                histories
                    .entry(stream)
                    .or_default()
                    .push((version, event_type, payload, at));
            }
        }
        let mut deltas = Deltas::default();
        for e in events {
            let at = e.metadata.occurred_at;
            let network = e.network_id.0;
            let event =
                referral::decode(&e.event_type, &e.payload).map_err(|err| invalid(e, err))?;
            if let ReferralEvent::Sent(n) = &event {
                if e.version != 1 {
                    return Err(invalid(e, "sent twice"));
                }
                deltas
                    .cell(
                        network,
                        utc_day(at),
                        n.organization.0,
                        n.need_code.as_str(),
                        1,
                    )
                    .entered += 1;
                continue;
            }
            let history = histories.get(&e.stream_id.0).map_or(&[][..], Vec::as_slice);
            let Replayed { state, since } = replay(history, e.version, e)?;
            let action = event.action().ok_or_else(|| invalid(e, "not an action"))?;
            let to = referral::transition(state.status, action)
                .ok_or_else(|| invalid(e, "a transition the lifecycle does not allow"))?;
            let (org, code) = (state.organization.0, state.need_code.as_str());
            if let Some(stage) = stage_of(state.status) {
                let cell = deltas.cell(network, utc_day(since), org, code, stage);
                cell.left_stage += 1;
                let hours = (at - since).as_seconds_f64().max(0.0) / 3600.0;
                cell.waits[bucket(hours)] += 1;
                if let ReferralEvent::Declined { reason, .. } = &event {
                    let i = DECLINE_REASONS
                        .iter()
                        .position(|r| r == reason)
                        .expect("every reason is listed");
                    cell.declined[i] += 1;
                }
                let deadline = match state.status {
                    ReferralStatus::Sent => state.acknowledge_by,
                    ReferralStatus::Accepted => state.first_contact_by,
                    _ => None,
                };
                if let Some(d) = deadline {
                    cell.breach_base += 1;
                    cell.breached += i32::from(at > d);
                }
            }
            if let Some(stage) = stage_of(to) {
                deltas.cell(network, utc_day(at), org, code, stage).entered += 1;
            }
        }
        let keys: Vec<Uuid> = deltas.0.values().map(|c| c.cell_id).collect();
        let mut cells: HashMap<Uuid, Cell> =
            load_docs::<Cell>(conn, table, "cell_id", &keys).await?;
        for d in deltas.0.into_values() {
            match cells.get_mut(&d.cell_id) {
                None => {
                    cells.insert(d.cell_id, d);
                }
                Some(c) => {
                    c.entered += d.entered;
                    c.left_stage += d.left_stage;
                    c.breach_base += d.breach_base;
                    c.breached += d.breached;
                    for (a, b) in c.waits.iter_mut().zip(&d.waits) {
                        *a += b;
                    }
                    for (a, b) in c.declined.iter_mut().zip(&d.declined) {
                        *a += b;
                    }
                }
            }
        }
        let rows: Vec<&Cell> = keys.iter().filter_map(|k| cells.get(k)).collect();
        store_docs(conn, table, "cell_id", &keys, &rows).await
    }
}

/// A percentile of the waits in a histogram (hours), interpolated within
/// its bucket; `None` with no wait. Within the bucket's width of the true
/// value (the buckets grow by about half each).
pub fn percentile(waits: &[i64], p: f64) -> Option<f64> {
    let total: i64 = waits.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = p * total as f64;
    let mut seen = 0i64;
    for (i, &n) in waits.iter().enumerate() {
        if n > 0 && (seen + n) as f64 >= rank {
            let low = if i == 0 { 0.0 } else { WAIT_BUCKETS_H[i - 1] };
            let Some(&high) = WAIT_BUCKETS_H.get(i) else {
                return Some(low);
            };
            let within = ((rank - seen as f64) / n as f64).clamp(0.0, 1.0);
            return Some(low + (high - low) * within);
        }
        seen += n;
    }
    WAIT_BUCKETS_H.last().copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_and_percentiles() {
        assert_eq!(bucket(0.0), 0);
        assert_eq!(bucket(0.5), 0);
        assert_eq!(bucket(0.6), 1);
        assert_eq!(bucket(10_000.0), WAIT_BUCKETS_H.len());
        let mut waits = vec![0i64; WAIT_BUCKETS_H.len() + 1];
        assert_eq!(percentile(&waits, 0.5), None);
        // Ten waits between 24 and 36 hours: the median is inside that bucket.
        waits[bucket(30.0)] = 10;
        let m = percentile(&waits, 0.5).unwrap();
        assert!((24.0..=36.0).contains(&m), "{m}");
        // One very long wait moves the p90, not the median.
        waits[bucket(5000.0)] = 1;
        assert!(percentile(&waits, 0.5).unwrap() <= 36.0);
        assert!(percentile(&waits, 0.99).unwrap() >= 4320.0);
    }
}
