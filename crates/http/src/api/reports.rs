//! `GET /api/v1/reports/bottlenecks`: where the network gets stuck — per
//! provider, per need category and per stage, how many referrals came in,
//! how long they waited, how many were declined and why, how many missed
//! the agreement's deadlines, and what is still waiting now; plus the
//! needs nobody could take. Read-only over the `bottleneck_cells`,
//! `referrals`, `needs` and `organizations` read models of the caller's
//! network (every query binds the caller's `network_id`); it never reads
//! events or personal data.
//!
//! # The period
//!
//! `from` and `to` are dates, `YYYY-MM-DD`: UTC days, both included — the
//! one rule of every report ([`super::period`]): without them the 90 days
//! up to and including today; a date-time is a `422` (the cells are per
//! UTC day, so a bound inside a day could not be applied); the answer's
//! `from` and `to` are the days applied.
//!
//! What the period selects is what *happened* in it: referrals that
//! entered a stage on one of its days, and needs recorded on one of its
//! days. What became of them is followed up to now (`generated_at`), so
//! asking again later about the same days can find more of them gone
//! further; the fields that are as of now say so (`left`, `declined` and
//! the breaches "by now", `open_now`, `open_now_by_age`), and the
//! directory is the one of now. Nothing made after `to` is counted: a
//! referral sent after the period is in no row of it, and does not make a
//! need of the period unmet.
//!
//! # The rows
//!
//! One row per organisation × need category (`need_code`) × stage with at
//! least one referral that entered the stage within the period. The
//! stages are the statuses a referral waits in, each from when it entered
//! to when it left (the earliest of the listed times):
//!
//! | stage | entered | left |
//! |---|---|---|
//! | `sent` | `sent_at` | acknowledged, accepted, declined, closed (cancelled) |
//! | `acknowledged` | `acknowledged_at` | accepted, declined, closed (cancelled) |
//! | `accepted` | `accepted_at` | started, closed (completed, failed, cancelled) |
//! | `in_progress` | `started_at` | closed |
//!
//! Per row:
//!
//! - `entered`: referrals that entered the stage within the period;
//!   `left`: those of them that have left it by now (within the period or
//!   after); `open_now`: those still in it now, with `open_now_by_age` by
//!   the UTC day they entered it, counted back from today (`under_2d`:
//!   entered today or yesterday; `2d_to_7d`, `7d_to_30d`, `over_30d`).
//! - `waiting_hours_median`, `waiting_hours_p90`: of the hours from
//!   entering to leaving, over those that left (`null` if none), from a
//!   histogram of waits (buckets growing by about half: 0.5 h, 1 h, 2 h,
//!   4 h ... 180 days), interpolated within the bucket.
//! - `declined`: those that left the stage by being declined — only `sent`
//!   and `acknowledged` can have declines — with `declines_by_reason` and
//!   `decline_rate` = `declined / left` (`null` if `left` is 0). A decline
//!   counts in the row of the organisation that declined (the referral's
//!   own organisation; a redirection is a new referral with its own rows).
//! - `deadline`: the agreement deadline that applies to the stage:
//!   `acknowledge_by` for `sent`, `first_contact_by` for `accepted` (leaving
//!   `accepted` — by starting, completing, failing or cancellation — ends
//!   the wait for first contact), `null` for the others. Referrals without
//!   that deadline (no agreement) are not judged.
//! - `breach_base`: referrals with the deadline that either left the stage
//!   or are still in it past the deadline (the ones that can be judged);
//!   `breached`: those that left after the deadline or are still in the
//!   stage past it; `breach_rate` = `breached / breach_base` (`null` if
//!   `breach_base` is 0).
//!
//! Rows are ordered by organisation name, need code, then stage.
//!
//! # Unmet needs
//!
//! Per need category, for the needs recorded within the period (only
//! categories with a count above 0):
//! - `no_provider`: needs the desk has not resolved itself (by now) whose
//!   category no organisation `active` now offers a service for;
//! - `all_declined`: needs with at least one referral sent within the
//!   period, every referral sent within the period declined (by now). A
//!   referral sent after `to` is not the period's: it neither makes a need
//!   unmet nor answers one.
//!
//! # Formats
//!
//! JSON by default; `Accept: text/csv` (preferred over `application/json`)
//! answers the rows (not the unmet needs) as CSV, `\n`-separated: a header
//! line, then a line per row with the same fields flattened (one column per
//! decline reason, one per age bucket; empty cells for `null`). A name a
//! spreadsheet would take for a formula gets a leading `'`.
//!
//! # Cost
//!
//! The figures of referrals that left a stage are kept per UTC day by the
//! `bottleneck_cells` projection (`sportello_projections::bottlenecks`), so
//! a period is whole UTC days and the report adds up a few thousand small
//! rows; what is still open now comes from the `referrals` model's open
//! items. Hours are rounded to 0.01 and rates to 0.0001.

use super::period::{self, Period};
use super::{ApiQuery, MinPosition};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sqlx::PgConnection;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

/// Query of the bottleneck report.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// First day of the period: a date, `YYYY-MM-DD` (a UTC day,
    /// included; a date-time is refused). Default: 89 days before `to`.
    pub from: Option<String>,
    /// Last day of the period: a date, `YYYY-MM-DD` (a UTC day, included;
    /// a date-time is refused). Default: today (UTC).
    pub to: Option<String>,
    /// Read your writes: wait until the referrals read model has applied
    /// this global position.
    pub min_position: Option<i64>,
}

/// A stage a referral waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Sent, not yet acknowledged, accepted or declined.
    Sent,
    /// Acknowledged, not yet accepted or declined.
    Acknowledged,
    /// Accepted, not yet started or closed.
    Accepted,
    /// Started, not yet closed.
    InProgress,
}

impl Stage {
    /// The stages in their order (the SQL's `stage_ord` is the index + 1).
    const ALL: [Stage; 4] = [
        Stage::Sent,
        Stage::Acknowledged,
        Stage::Accepted,
        Stage::InProgress,
    ];

    fn as_str(self) -> &'static str {
        match self {
            Stage::Sent => "sent",
            Stage::Acknowledged => "acknowledged",
            Stage::Accepted => "accepted",
            Stage::InProgress => "in_progress",
        }
    }

    fn deadline(self) -> Option<Deadline> {
        match self {
            Stage::Sent => Some(Deadline::AcknowledgeBy),
            Stage::Accepted => Some(Deadline::FirstContactBy),
            Stage::Acknowledged | Stage::InProgress => None,
        }
    }
}

/// The agreement deadline a stage is judged by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Deadline {
    /// The provider must acknowledge (or answer) by then.
    AcknowledgeBy,
    /// The provider must make first contact (start or complete) by then.
    FirstContactBy,
}

impl Deadline {
    fn as_str(self) -> &'static str {
        match self {
            Deadline::AcknowledgeBy => "acknowledge_by",
            Deadline::FirstContactBy => "first_contact_by",
        }
    }
}

/// Declines of a row, by reason code.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeclinesByReason {
    /// No capacity now.
    pub no_capacity: i64,
    /// The person is not eligible for the service.
    pub not_eligible: i64,
    /// Documents are missing.
    pub missing_documents: i64,
    /// The person lives outside the service's area.
    pub outside_area: i64,
    /// Already referred or already served.
    pub duplicate: i64,
    /// Another reason (or one this report does not know).
    pub other: i64,
}

impl DeclinesByReason {
    /// From the counts of the reasons before `other` and the total: the
    /// rest is `other`.
    fn from_known(known: &[i64], total: i64) -> Self {
        let at = |i: usize| known.get(i).copied().unwrap_or(0);
        DeclinesByReason {
            no_capacity: at(0),
            not_eligible: at(1),
            missing_documents: at(2),
            outside_area: at(3),
            duplicate: at(4),
            other: total - known.iter().take(5).sum::<i64>(),
        }
    }

    fn counts(&self) -> [i64; 6] {
        [
            self.no_capacity,
            self.not_eligible,
            self.missing_documents,
            self.outside_area,
            self.duplicate,
            self.other,
        ]
    }
}

/// Referrals still in a stage now, by the UTC day they entered it,
/// counted back from today (UTC).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct OpenByAge {
    /// Entered today or yesterday.
    pub under_2d: i64,
    /// Entered 2 to 6 days before today.
    #[serde(rename = "2d_to_7d")]
    pub d2_to_7d: i64,
    /// Entered 7 to 29 days before today.
    #[serde(rename = "7d_to_30d")]
    pub d7_to_30d: i64,
    /// Entered 30 days or more before today.
    pub over_30d: i64,
}

/// One organisation × need category × stage.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BottleneckRow {
    /// The provider.
    pub organization_id: Uuid,
    /// Its name (`null` if the organisations read model does not have it yet).
    pub organization_name: Option<String>,
    /// The need category.
    pub need_code: String,
    /// The category's area.
    pub need_area: String,
    /// The stage.
    pub stage: Stage,
    /// Referrals that entered the stage within the period.
    pub entered: i64,
    /// Of those, how many have left it by now (within the period or after).
    pub left: i64,
    /// Median hours in the stage of those that left (`null` if none).
    pub waiting_hours_median: Option<f64>,
    /// 90th percentile of the hours in the stage of those that left.
    pub waiting_hours_p90: Option<f64>,
    /// Of those that left, how many were declined from this stage (by now).
    pub declined: i64,
    /// The declines by reason code.
    pub declines_by_reason: DeclinesByReason,
    /// `declined / left` (`null` if `left` is 0).
    pub decline_rate: Option<f64>,
    /// The deadline the stage is judged by (`null`: none).
    pub deadline: Option<Deadline>,
    /// Left after the deadline, or still in the stage now past it.
    pub breached: i64,
    /// With the deadline, and either left or still in the stage now past it.
    pub breach_base: i64,
    /// `breached / breach_base` (`null` if `breach_base` is 0).
    pub breach_rate: Option<f64>,
    /// Of those that entered within the period, how many are still in the
    /// stage now (`generated_at`), not at the end of the period.
    pub open_now: i64,
    /// The ones still open now, by time in the stage until now.
    pub open_now_by_age: OpenByAge,
}

/// Needs of one category that nobody could take.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct UnmetNeed {
    /// The need category.
    pub need_code: String,
    /// The category's area.
    pub need_area: String,
    /// Needs recorded in the period, not resolved by the desk (by now),
    /// that no organisation active now answers.
    pub no_provider: i64,
    /// Needs recorded in the period with referrals sent in the period,
    /// every one of those declined (by now).
    pub all_declined: i64,
}

/// The bottleneck report.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BottleneckReport {
    /// First day of the period applied (a UTC day, included).
    #[serde(with = "period::day")]
    #[schema(value_type = String, format = Date, example = "2025-01-01")]
    pub from: Date,
    /// Last day of the period applied (a UTC day, included).
    #[serde(with = "period::day")]
    #[schema(value_type = String, format = Date, example = "2025-03-31")]
    pub to: Date,
    /// When the report was computed: the "now" of every figure that is
    /// as of now (`left`, declines and breaches by now, `open_now`, ages,
    /// the directory).
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Organisation × need category × stage, by organisation name, need
    /// code and stage.
    pub rows: Vec<BottleneckRow>,
    /// Per need category, the needs nobody could take.
    pub unmet_needs: Vec<UnmetNeed>,
}

/// A stage row, added up (`left`, `other` declines and the last age
/// bucket are what remains of the totals).
struct StageAgg {
    organization_id: Uuid,
    organization_name: Option<String>,
    need_code: String,
    need_area: String,
    stage_ord: i32,
    entered: i64,
    waits: Option<Vec<f64>>,
    declined: i64,
    /// Declines for the reasons before `other`, in [`DeclinesByReason`]'s order.
    known_declines: Vec<i64>,
    breach_base: i64,
    breached: i64,
    open: i64,
    /// Open for under 2 days, 2 to 7, 7 to 30.
    open_by_age: Vec<i64>,
}

/// $1 network, $2 first day, $3 day after the last: the cells of the
/// period (see `sportello_projections::bottlenecks`), one per day,
/// organisation, category and stage, added up in [`aggregate`] — a few
/// thousand rows for a month of a large network, cheaper to add up here
/// than bucket by bucket in SQL.
const CELLS_SQL: &str = "
SELECT organization_id, need_code, stage, day, entered, left_stage, waits, declined,
       breach_base, breached
  FROM bottleneck_cells
 WHERE network_id = $1 AND day >= $2 AND day < $3";

/// $1 network, $2 first day, $3 day after the last (as instants), $4
/// now: the referrals still in a judged stage (`sent`, `accepted`: see
/// [`Stage::deadline`]) now past its deadline, per organisation, category
/// and stage, among those that entered the stage within the period (read
/// from the open queue's index). An acknowledged referral past its
/// first-contact deadline is not judged in its `acknowledged` row, which
/// has no deadline.
const OVERDUE_SQL: &str = "
SELECT organization_id, need_code, status, count(*)
  FROM referrals
 WHERE network_id = $1 AND status IN ('sent', 'accepted')
   AND due_at < $4
   AND CASE status WHEN 'sent' THEN sent_at ELSE accepted_at END >= $2
   AND CASE status WHEN 'sent' THEN sent_at ELSE accepted_at END < $3
 GROUP BY 1, 2, 3";

/// $1 network, $2 start, $3 end of the period (instants, `[$2, $3)`), $4
/// the categories no active organisation answers: needs of the period
/// nobody could take. A need is `all_declined` when a referral of it was
/// sent in the period and declined, and none sent in the period is
/// anything but declined; referrals sent after the period are not its own
/// (they would count a referral made after `to`). A declined referral is
/// `declined`, or `redirected` after its decline (a redirection after a
/// failure has no `declined_at` and keeps its need out). A need's
/// referrals are sent after it was recorded, so only referrals sent in
/// the period are read: the declined ones from the status index, each
/// need found by its key, its other referrals by the need index.
const UNMET_SQL: &str = "
SELECT code AS need_code, sum(unanswered)::bigint AS no_provider,
       sum(all_declined)::bigint AS all_declined
  FROM (SELECT c.code, 1 AS unanswered, 0 AS all_declined
          FROM unnest($4::text[]) AS c(code)
         CROSS JOIN LATERAL (
               SELECT 1 FROM needs n
                WHERE n.network_id = $1 AND n.code = c.code
                  AND n.recorded_at >= $2 AND n.recorded_at < $3
                  AND n.status <> 'resolved') n
        UNION ALL
        SELECT n.code, 0, 1
          FROM (SELECT DISTINCT need_id FROM referrals
                 WHERE network_id = $1 AND status IN ('declined', 'redirected')
                   AND sent_at >= $2 AND sent_at < $3) r
         CROSS JOIN LATERAL (
               SELECT code FROM needs n
                WHERE n.need_id = r.need_id AND n.network_id = $1
                  AND n.recorded_at >= $2 AND n.recorded_at < $3) n
         WHERE NOT EXISTS (SELECT 1 FROM referrals x
                            WHERE x.need_id = r.need_id AND x.network_id = $1
                              AND x.declined_at IS NULL AND x.sent_at < $3)) u
 GROUP BY code
 ORDER BY code";

/// The bottleneck report: per provider, need category and stage, volumes,
/// waiting times, decline and breach rates and open items by age; plus the
/// needs nobody could take. The report's definition is in the module docs.
#[utoipa::path(
    get,
    path = "/api/v1/reports/bottlenecks",
    tag = "reports",
    params(
        ReportQuery,
        ("Accept" = Option<String>, Header, description = "`text/csv` for the rows as CSV; JSON otherwise"),
    ),
    responses(
        (status = 200, description = "The report over the UTC days `from` to `to` (both included, echoed as applied); figures of what happened since are as of now (`generated_at`); as CSV (the rows only, one column per decline reason and per age bucket) when `Accept: text/csv`; a `Sportello-Caught-Up-To` header when `min_position` was not reached in time", content(
            (BottleneckReport = "application/json"),
            (String = "text/csv")
        )),
        (status = 401, description = "No valid bearer token", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a desk, coordination or admin account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query: `from` or `to` not a date (`YYYY-MM-DD`; date-times are refused), `from` after `to`, a period over 400 days, or a malformed `min_position`", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(network = %caller.network_id))]
pub async fn bottlenecks(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ReadReports)?;
    let now = state.clock().now();
    let period = Period::parse(
        q.from.as_deref(),
        q.to.as_deref(),
        now.to_offset(time::UtcOffset::UTC).date(),
    )?;
    let mut response_headers = HeaderMap::new();
    let wait = MinPosition {
        min_position: q.min_position,
    };
    wait.wait(&state, "referrals", &mut response_headers)
        .await?;
    wait.wait(&state, "bottleneck_cells", &mut response_headers)
        .await?;
    let network = caller.network_id.0;
    // One connection, one query after the other: the report never takes
    // more than one core from the desk's and the partners' screens.
    let mut conn = state.pool().acquire().await?;
    let aggs = fetch_rows(&mut conn, network, period, now).await?;
    let unmet_needs = fetch_unmet(&mut conn, network, period).await?;
    let report = BottleneckReport {
        from: period.from,
        to: period.to,
        generated_at: now,
        rows: into_rows(aggs),
        unmet_needs,
    };
    response_headers.insert(header::VARY, header::ACCEPT.into());
    if wants_csv(&headers) {
        let disposition = format!(
            "attachment; filename=\"bottlenecks_{}_{}.csv\"",
            period.from, period.to
        );
        Ok((
            response_headers,
            [
                (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                (header::CONTENT_DISPOSITION, disposition),
            ],
            render_csv(&report.rows),
        )
            .into_response())
    } else {
        Ok((response_headers, Json(report)).into_response())
    }
}

/// A cell as stored.
type StoredCell = (
    Uuid,
    String,
    i16,
    Date,
    i32,
    i32,
    Vec<i32>,
    Vec<i32>,
    i32,
    i32,
);
/// A cell's figures for the report: organisation, category, stage,
/// entered, waits, declines, breach base, breached, still open, and the
/// open ones by age (under 2 days, 2 to 7, 7 to 30).
type CellRow = (
    Uuid,
    String,
    i16,
    i64,
    Vec<i64>,
    Vec<i64>,
    i64,
    i64,
    i64,
    Vec<i64>,
);
type OverdueRow = (Uuid, String, String, i64);

async fn fetch_rows(
    conn: &mut PgConnection,
    network: Uuid,
    period: Period,
    now: OffsetDateTime,
) -> Result<Vec<StageAgg>, sqlx::Error> {
    let today = now.to_offset(time::UtcOffset::UTC).date();
    let cells = sqlx::query_as::<_, StoredCell>(CELLS_SQL)
        .bind(network)
        .bind(period.from)
        .bind(period.end_day())
        .fetch_all(&mut *conn)
        .await?;
    let open = sqlx::query_as::<_, OverdueRow>(OVERDUE_SQL)
        .bind(network)
        .bind(period.start())
        .bind(period.end())
        .bind(now)
        .fetch_all(&mut *conn)
        .await?;
    let names = sqlx::query_as::<_, (Uuid, String)>(
        "SELECT organization_id, name FROM organizations WHERE network_id = $1",
    )
    .bind(network)
    .fetch_all(&mut *conn)
    .await?;
    let cells = cells.into_iter().map(|c| cell_row(c, today)).collect();
    Ok(aggregate(cells, open, &names.into_iter().collect()))
}

/// A stored cell's figures: what is still in the stage is what entered
/// and has not left, aged by the day it entered.
fn cell_row(c: StoredCell, today: Date) -> CellRow {
    let (org, code, stage, day, entered, left, waits, declined, base, breached) = c;
    let open = i64::from(entered - left);
    let age = (today - day).whole_days();
    let ages = [age < 2, (2..7).contains(&age), (7..30).contains(&age)]
        .map(|here| if here { open } else { 0 });
    let widen = |v: Vec<i32>| v.into_iter().map(i64::from).collect();
    (
        org,
        code,
        stage,
        i64::from(entered),
        widen(waits),
        widen(declined),
        i64::from(base),
        i64::from(breached),
        open,
        ages.to_vec(),
    )
}

/// Add up the cells and what is open now into one row per organisation,
/// category and stage.
fn aggregate(
    cells: Vec<CellRow>,
    overdue: Vec<OverdueRow>,
    names: &std::collections::HashMap<Uuid, String>,
) -> Vec<StageAgg> {
    use sportello_projections::bottlenecks::{WAIT_BUCKETS_H, percentile};
    struct Acc {
        entered: i64,
        waits: Vec<i64>,
        declined: [i64; 6],
        breach_base: i64,
        breached: i64,
        open: i64,
        ages: [i64; 3],
    }
    let mut acc: std::collections::BTreeMap<(Uuid, String, i16), Acc> = Default::default();
    let blank = || Acc {
        entered: 0,
        waits: vec![0; WAIT_BUCKETS_H.len() + 1],
        declined: [0; 6],
        breach_base: 0,
        breached: 0,
        open: 0,
        ages: [0; 3],
    };
    for (org, code, stage, entered, waits, declined, base, breached, open, ages) in cells {
        let a = acc.entry((org, code, stage)).or_insert_with(blank);
        a.entered += entered;
        a.open += open;
        for (x, n) in a.ages.iter_mut().zip(ages) {
            *x += n;
        }
        for (x, w) in a.waits.iter_mut().zip(waits) {
            *x += w;
        }
        for (x, d) in a.declined.iter_mut().zip(declined) {
            *x += d;
        }
        a.breach_base += base;
        a.breached += breached;
    }
    for (org, code, status, n) in overdue {
        let stage = match status.as_str() {
            "sent" => 1,
            _ => 3,
        };
        // Still in the stage past its deadline: judged, and breached.
        let a = acc.entry((org, code, stage)).or_insert_with(blank);
        a.breach_base += n;
        a.breached += n;
    }
    acc.into_iter()
        .filter(|(_, a)| a.entered > 0)
        .map(|((org, code, stage), a)| {
            let waits =
                percentile(&a.waits, 0.5).map(|m| vec![m, percentile(&a.waits, 0.9).unwrap_or(m)]);
            let need_area = sportello_domain::taxonomy::lookup(&code)
                .map_or("", |c| c.area.code())
                .to_owned();
            StageAgg {
                organization_id: org,
                organization_name: names.get(&org).cloned(),
                need_code: code,
                need_area,
                stage_ord: i32::from(stage),
                entered: a.entered,
                waits,
                declined: a.declined.iter().sum(),
                known_declines: a.declined[..5].to_vec(),
                breach_base: a.breach_base,
                breached: a.breached,
                open: a.open,
                open_by_age: a.ages.to_vec(),
            }
        })
        .collect()
}

async fn fetch_unmet(
    conn: &mut PgConnection,
    network: Uuid,
    period: Period,
) -> Result<Vec<UnmetNeed>, sqlx::Error> {
    let services: Vec<serde_json::Value> = sqlx::query_scalar(
        "SELECT services FROM organizations WHERE network_id = $1 AND status = 'active'",
    )
    .bind(network)
    .fetch_all(&mut *conn)
    .await?;
    let mut answered: Vec<String> = services
        .iter()
        .filter_map(|s| s.as_array())
        .flatten()
        .filter_map(|s| s.get("needs").and_then(|n| n.as_array()))
        .flatten()
        .filter_map(|c| c.as_str().map(str::to_owned))
        .collect();
    answered.sort();
    answered.dedup();
    let unanswered: Vec<&str> = sportello_domain::taxonomy::all()
        .iter()
        .map(|c| c.code)
        .filter(|c| answered.binary_search_by(|a| a.as_str().cmp(c)).is_err())
        .collect();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(UNMET_SQL)
        .bind(network)
        .bind(period.start())
        .bind(period.end())
        .bind(&unanswered)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(need_code, no_provider, all_declined)| UnmetNeed {
            need_area: sportello_domain::taxonomy::lookup(&need_code)
                .map_or("", |c| c.area.code())
                .to_owned(),
            need_code,
            no_provider,
            all_declined,
        })
        .collect())
}

/// Whether the caller asked for CSV: `text/csv` is acceptable and
/// preferred over `application/json` (JSON wins a tie and is the default,
/// `*/*` included).
fn wants_csv(headers: &HeaderMap) -> bool {
    let mut csv: Option<f32> = None;
    let mut json: Option<f32> = None;
    for value in headers.get_all(header::ACCEPT) {
        let Ok(value) = value.to_str() else { continue };
        for range in value.split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let q = parts
                .filter_map(|p| p.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("q"))
                .map_or(1.0, |(_, v)| v.trim().parse::<f32>().unwrap_or(0.0));
            let slot = match media.as_str() {
                "text/csv" => &mut csv,
                "application/json" => &mut json,
                _ => continue,
            };
            *slot = Some(slot.map_or(q, |old| old.max(q)));
        }
    }
    match csv {
        Some(c) if c > 0.0 => json.is_none_or(|j| c > j),
        _ => false,
    }
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (x * k).round() / k
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| round_to(part as f64 / whole as f64, 4))
}

/// The SQL aggregates as report rows, in the report's order.
fn into_rows(aggs: Vec<StageAgg>) -> Vec<BottleneckRow> {
    let mut rows: Vec<BottleneckRow> = aggs
        .into_iter()
        .filter_map(|a| {
            let stage = *Stage::ALL.get(usize::try_from(a.stage_ord - 1).ok()?)?;
            let wait = |i: usize| {
                a.waits
                    .as_ref()
                    .and_then(|w| w.get(i).copied())
                    .map(|h| round_to(h, 2))
            };
            let age = |i: usize| a.open_by_age.get(i).copied().unwrap_or(0);
            let left = a.entered - a.open;
            Some(BottleneckRow {
                organization_id: a.organization_id,
                organization_name: a.organization_name,
                need_code: a.need_code,
                need_area: a.need_area,
                stage,
                entered: a.entered,
                left,
                waiting_hours_median: wait(0),
                waiting_hours_p90: wait(1),
                declined: a.declined,
                declines_by_reason: DeclinesByReason::from_known(&a.known_declines, a.declined),
                decline_rate: ratio(a.declined, left),
                deadline: stage.deadline(),
                breached: a.breached,
                breach_base: a.breach_base,
                breach_rate: ratio(a.breached, a.breach_base),
                open_now: a.open,
                open_now_by_age: OpenByAge {
                    under_2d: age(0),
                    d2_to_7d: age(1),
                    d7_to_30d: age(2),
                    over_30d: a.open - age(0) - age(1) - age(2),
                },
            })
        })
        .collect();
    // Names by letters first (case aside), unnamed last; ties by id so the
    // order never depends on the database.
    rows.sort_by_cached_key(|r| {
        (
            r.organization_name.is_none(),
            r.organization_name.as_deref().map(str::to_lowercase),
            r.organization_name.clone(),
            r.organization_id,
            r.need_code.clone(),
            Stage::ALL.iter().position(|s| *s == r.stage),
        )
    });
    rows
}

/// The CSV columns, in order.
const CSV_COLUMNS: [&str; 26] = [
    "organization_id",
    "organization_name",
    "need_code",
    "need_area",
    "stage",
    "entered",
    "left",
    "waiting_hours_median",
    "waiting_hours_p90",
    "declined",
    "declined_no_capacity",
    "declined_not_eligible",
    "declined_missing_documents",
    "declined_outside_area",
    "declined_duplicate",
    "declined_other",
    "decline_rate",
    "deadline",
    "breached",
    "breach_base",
    "breach_rate",
    "open_now",
    "open_now_under_2d",
    "open_now_2d_to_7d",
    "open_now_7d_to_30d",
    "open_now_over_30d",
];

/// A text field for CSV: quoted when it must be, and defused when a
/// spreadsheet would read it as a formula (names are typed by people).
fn csv_text(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_owned()
    };
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s
    }
}

fn csv_number(x: Option<f64>) -> String {
    x.map(|v| v.to_string()).unwrap_or_default()
}

/// The rows as CSV: a header line, then one line per row (`\n`-ended).
fn render_csv(rows: &[BottleneckRow]) -> String {
    let mut out = CSV_COLUMNS.join(",");
    out.push('\n');
    for r in rows {
        let mut cells: Vec<String> = vec![
            r.organization_id.to_string(),
            csv_text(r.organization_name.as_deref().unwrap_or_default()),
            csv_text(&r.need_code),
            csv_text(&r.need_area),
            r.stage.as_str().to_owned(),
            r.entered.to_string(),
            r.left.to_string(),
            csv_number(r.waiting_hours_median),
            csv_number(r.waiting_hours_p90),
            r.declined.to_string(),
        ];
        cells.extend(r.declines_by_reason.counts().iter().map(i64::to_string));
        cells.extend([
            csv_number(r.decline_rate),
            r.deadline
                .map(Deadline::as_str)
                .unwrap_or_default()
                .to_owned(),
            r.breached.to_string(),
            r.breach_base.to_string(),
            csv_number(r.breach_rate),
            r.open_now.to_string(),
            r.open_now_by_age.under_2d.to_string(),
            r.open_now_by_age.d2_to_7d.to_string(),
            r.open_now_by_age.d7_to_30d.to_string(),
            r.open_now_by_age.over_30d.to_string(),
        ]);
        out.push_str(&cells.join(","));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use time::Duration;

    /// The reason codes, in the order of `DeclinesByReason`'s fields, the
    /// SQL's `reasons` array and the CSV columns.
    const DECLINE_REASONS: [&str; 6] = [
        "no_capacity",
        "not_eligible",
        "missing_documents",
        "outside_area",
        "duplicate",
        "other",
    ];

    #[test]
    fn what_is_still_in_a_stage_is_aged_by_the_day_it_entered() {
        let today = time::macros::date!(2026 - 11 - 29);
        let cell = |days_ago: i64| {
            (
                Uuid::nil(),
                "job_search".to_owned(),
                1i16,
                today - Duration::days(days_ago),
                5,
                2,
                vec![1, 0, 1],
                vec![0, 1, 0, 0, 0, 0],
                4,
                1,
            )
        };
        let ages = |days_ago| cell_row(cell(days_ago), today).9;
        assert_eq!(ages(0), [3, 0, 0]);
        assert_eq!(ages(1), [3, 0, 0]);
        assert_eq!(ages(2), [0, 3, 0]);
        assert_eq!(ages(6), [0, 3, 0]);
        assert_eq!(ages(7), [0, 0, 3]);
        assert_eq!(ages(29), [0, 0, 3]);
        assert_eq!(ages(30), [0, 0, 0], "older than the buckets");
        let row = cell_row(cell(3), today);
        assert_eq!((row.3, row.8), (5, 3), "entered, still open");
        assert_eq!(row.4, [1, 0, 1]);
        assert_eq!((row.6, row.7), (4, 1));
    }

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn csv_only_when_asked_for() {
        assert!(!wants_csv(&HeaderMap::new()));
        assert!(!wants_csv(&accept("*/*")));
        assert!(!wants_csv(&accept("application/json")));
        assert!(wants_csv(&accept("text/csv")));
        assert!(wants_csv(&accept("Text/CSV; charset=utf-8")));
        assert!(wants_csv(&accept("text/csv, */*;q=0.1")));
        assert!(wants_csv(&accept("application/json;q=0.5, text/csv")));
        assert!(!wants_csv(&accept("text/csv;q=0.5, application/json")));
        assert!(!wants_csv(&accept("text/csv, application/json")));
        assert!(!wants_csv(&accept("text/csv;q=0")));
    }

    #[test]
    fn reason_codes_are_the_domain_wire_names() {
        use sportello_domain::referral::DeclineReason as D;
        let wire = [
            D::NoCapacity,
            D::NotEligible,
            D::MissingDocuments,
            D::OutsideArea,
            D::Duplicate,
            D::Other,
        ]
        .map(|r| serde_json::to_value(r).unwrap());
        assert_eq!(
            wire.map(|v| v.as_str().unwrap().to_owned()),
            DECLINE_REASONS
        );
        let by_reason =
            serde_json::to_value(DeclinesByReason::from_known(&[1, 2, 3, 4, 5], 21)).unwrap();
        for (i, code) in DECLINE_REASONS.iter().enumerate() {
            assert_eq!(by_reason[code], i as i64 + 1);
        }
        // The cells count the same codes in the same order.
        let cells = sportello_projections::bottlenecks::DECLINE_REASONS.map(|r| {
            serde_json::to_value(r)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        });
        assert_eq!(cells, DECLINE_REASONS);
    }

    fn row() -> BottleneckRow {
        BottleneckRow {
            organization_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001),
            organization_name: Some("Centro per l'impiego, Roma \"Est\"".into()),
            need_code: "job_search".into(),
            need_area: "work".into(),
            stage: Stage::Sent,
            entered: 10,
            left: 8,
            waiting_hours_median: Some(20.5),
            waiting_hours_p90: Some(70.25),
            declined: 3,
            declines_by_reason: DeclinesByReason {
                no_capacity: 2,
                other: 1,
                ..DeclinesByReason::default()
            },
            decline_rate: ratio(3, 8),
            deadline: Stage::Sent.deadline(),
            breached: 2,
            breach_base: 9,
            breach_rate: ratio(2, 9),
            open_now: 2,
            open_now_by_age: OpenByAge {
                under_2d: 1,
                over_30d: 1,
                ..OpenByAge::default()
            },
        }
    }

    #[test]
    fn csv_has_a_header_and_a_flat_line_per_row() {
        let mut second = row();
        second.organization_name = None;
        second.stage = Stage::InProgress;
        second.deadline = None;
        second.waiting_hours_median = None;
        second.waiting_hours_p90 = None;
        second.decline_rate = None;
        second.breach_rate = None;
        let csv = render_csv(&[row(), second]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(
            lines[0],
            "organization_id,organization_name,need_code,need_area,stage,entered,left,\
             waiting_hours_median,waiting_hours_p90,declined,declined_no_capacity,\
             declined_not_eligible,declined_missing_documents,declined_outside_area,\
             declined_duplicate,declined_other,decline_rate,deadline,breached,breach_base,\
             breach_rate,open_now,open_now_under_2d,open_now_2d_to_7d,open_now_7d_to_30d,\
             open_now_over_30d"
        );
        assert_eq!(
            lines[1],
            "01900000-0000-7000-8000-000000000001,\"Centro per l'impiego, Roma \"\"Est\"\"\",\
             job_search,work,sent,10,8,20.5,70.25,3,2,0,0,0,0,1,0.375,acknowledge_by,2,9,0.2222,\
             2,1,0,0,1"
        );
        assert_eq!(
            lines[2],
            "01900000-0000-7000-8000-000000000001,,job_search,work,in_progress,10,8,,,3,2,0,0,0,\
             0,1,,,2,9,,2,1,0,0,1"
        );
        assert!(csv.ends_with('\n'));
        for line in &lines[1..] {
            // Quoted commas aside, every line has the header's columns.
            let unquoted: String = line.split('"').step_by(2).collect();
            assert_eq!(unquoted.matches(',').count(), CSV_COLUMNS.len() - 1);
        }
    }

    #[test]
    fn csv_defuses_formulas() {
        assert_eq!(csv_text("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_text("@home"), "'@home");
        assert_eq!(csv_text("Caritas"), "Caritas");
    }

    #[test]
    fn json_names_the_fields_as_documented() {
        let v = serde_json::to_value(row()).unwrap();
        assert_eq!(v["stage"], "sent");
        assert_eq!(v["deadline"], "acknowledge_by");
        assert_eq!(v["open_now"], 2);
        assert_eq!(v["open_now_by_age"]["2d_to_7d"], 0);
        assert_eq!(v["open_now_by_age"]["over_30d"], 1);
        assert_eq!(v["declines_by_reason"]["no_capacity"], 2);
        assert_eq!(v["decline_rate"], 0.375);
        let mut none = row();
        none.stage = Stage::Acknowledged;
        none.deadline = none.stage.deadline();
        assert!(serde_json::to_value(none).unwrap()["deadline"].is_null());
    }

    fn agg(name: Option<&str>, id: u128, code: &str, ord: i32) -> StageAgg {
        StageAgg {
            organization_id: Uuid::from_u128(id),
            organization_name: name.map(str::to_owned),
            need_code: code.into(),
            need_area: "work".into(),
            stage_ord: ord,
            entered: 4,
            waits: None,
            declined: 0,
            known_declines: vec![0; 5],
            breach_base: 0,
            breached: 0,
            open: 4,
            open_by_age: vec![4, 0, 0],
        }
    }

    #[test]
    fn rows_are_ordered_by_name_code_and_stage() {
        let rows = into_rows(vec![
            agg(None, 9, "a", 1),
            agg(Some("beta"), 2, "b", 3),
            agg(Some("beta"), 2, "b", 1),
            agg(Some("Beta"), 3, "a", 4),
            agg(Some("alpha"), 4, "z", 2),
            agg(Some("beta"), 2, "a", 4),
        ]);
        let got: Vec<(Option<&str>, &str, &str)> = rows
            .iter()
            .map(|r| {
                (
                    r.organization_name.as_deref(),
                    r.need_code.as_str(),
                    r.stage.as_str(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (Some("alpha"), "z", "acknowledged"),
                (Some("Beta"), "a", "in_progress"),
                (Some("beta"), "a", "in_progress"),
                (Some("beta"), "b", "sent"),
                (Some("beta"), "b", "accepted"),
                (None, "a", "sent"),
            ]
        );
        // No leavers: no waits and no rates.
        assert_eq!(rows[0].waiting_hours_median, None);
        assert_eq!(rows[0].decline_rate, None);
        assert_eq!(rows[0].breach_rate, None);
        assert_eq!(rows[3].deadline, Some(Deadline::AcknowledgeBy));
        assert_eq!(rows[4].deadline, Some(Deadline::FirstContactBy));
    }

    #[test]
    fn the_rest_of_the_totals_is_derived_and_waits_rounded() {
        let mut a = agg(Some("x"), 1, "a", 1);
        a.entered = 10;
        a.open = 3;
        a.open_by_age = vec![1, 1, 0];
        a.declined = 4;
        a.known_declines = vec![1, 0, 2, 0, 0];
        a.waits = Some(vec![1.234_567, 99.999]);
        let r = &into_rows(vec![a])[0];
        assert_eq!(r.left, 7);
        assert_eq!(r.open_now_by_age.over_30d, 1);
        assert_eq!(r.declines_by_reason.other, 1);
        assert_eq!(r.declines_by_reason.missing_documents, 2);
        assert_eq!(r.decline_rate, Some(0.5714));
        assert_eq!(r.waiting_hours_median, Some(1.23));
        assert_eq!(r.waiting_hours_p90, Some(100.0));
    }

    #[test]
    fn the_operation_documents_json_and_csv() {
        #[derive(utoipa::OpenApi)]
        #[openapi(paths(bottlenecks))]
        struct Doc;
        let doc = serde_json::to_value(<Doc as utoipa::OpenApi>::openapi()).unwrap();
        let op = &doc["paths"]["/api/v1/reports/bottlenecks"]["get"];
        let ok = &op["responses"]["200"]["content"];
        assert!(ok["application/json"]["schema"]["$ref"].is_string());
        assert!(ok["text/csv"].is_object());
        let params: Vec<&str> = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|p| p["name"].as_str())
            .collect();
        for name in ["from", "to", "min_position", "Accept"] {
            assert!(params.contains(&name), "{name} in {params:?}");
        }
        let schemas = &doc["components"]["schemas"];
        assert!(schemas["BottleneckRow"]["properties"]["open_now_by_age"].is_object());
        let report = &schemas["BottleneckReport"]["properties"];
        assert_eq!(report["from"]["format"], "date");
        assert_eq!(report["to"]["format"], "date");
        let from = op["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "from")
            .unwrap();
        assert!(
            from["description"].as_str().unwrap().contains("YYYY-MM-DD"),
            "{from}"
        );
        assert!(schemas["OpenByAge"]["properties"]["2d_to_7d"].is_object());
    }
}
