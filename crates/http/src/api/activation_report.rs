//! `GET /api/v1/reports/activations`: how the registry of professionals
//! keeps its promise to confirm someone within 24 or 48 hours — overall
//! and by role, sector, language and their combinations — how long
//! confirmation takes, how offers fare, and where the registry has gaps.
//! Read-only over the `activations` and `professionals` read models of the
//! caller's network (every query binds the caller's `network_id`); it
//! never reads events, and never answers a person's or a professional's
//! id — only counts.
//!
//! # The period
//!
//! `from` and `to` are dates, `YYYY-MM-DD`: UTC days, both included — the
//! one rule of every report ([`super::period`]): without them the 90 days
//! up to and including today (by the application's clock); a date-time is
//! a `422`; the answer's `from` and `to` are the days applied. They
//! select activations by when they were requested (`requested_at`);
//! those are judged as they stand now (`generated_at`), whatever `to` is,
//! and the gaps are of the registry as it stands now.
//!
//! # Judging an activation
//!
//! Its deadline is its request plus 24 or 48 hours. Confirmed at or before
//! the deadline is in time (exactly at the deadline counts). In order:
//!
//! 1. confirmed: **due** — `confirmed_in_time` if `confirmed_at <=
//!    deadline`, else `late`;
//! 2. not confirmed, and a missed deadline recorded: **due**, `late`;
//! 3. not confirmed, cancelled at or before the deadline:
//!    `cancelled_before_due` — left out of the compliance rate (the need
//!    went away before the registry had failed it);
//! 4. not confirmed, and the deadline passed (cancelled after it, or
//!    still open now past it): **due**, `late`;
//! 5. otherwise (open, deadline not passed yet): `pending`.
//!
//! So `requested = cancelled_before_due + due + pending` and `due =
//! confirmed_in_time + late`; the compliance `rate` is `confirmed_in_time
//! / due` (`null` when nothing is due yet). `deadlines_missed` counts the
//! activations whose missed deadline was recorded (a subset of `late`).
//!
//! # Time to confirm
//!
//! Minutes from request to confirmation, over the confirmed activations
//! (cancelled later or not). The median and the 90th percentile are
//! **nearest-rank** percentiles: with the `n` values sorted, the `p`-th
//! percentile is the value of rank `ceil(p × n / 100)` (1-based) — always
//! one of the values, the lower middle one for an even `n` (1 value: it is
//! both; 2 values: the median is the first, the p90 the second; 10
//! values: the 5th and the 9th). Minutes are rounded to 0.01.
//!
//! # Offers
//!
//! The offers made to professionals, and of those how many were declined
//! and how many lapsed unanswered; `decline_rate` and `expiry_rate` are
//! per offer made (`null` when none was made). Rates are rounded to
//! 0.0001.
//!
//! # Groups
//!
//! `overall`, then `by_role`, `by_sector`, `by_language` and
//! `by_combination` (role × sector × language), each with the same three
//! sections (`compliance`, `time_to_confirm`, `offers`); only groups with at
//! least one request in the period are listed, roles and sectors in their
//! order (mediator, interpreter, lawyer; legal, labour, health), languages
//! by code.
//!
//! # Gaps
//!
//! For each role × sector × language requested in the period, how many
//! professionals of the registry as it stands now cover it (active, with
//! the role, the sector and the language —
//! [`sportello_domain::activation::ranking::coverage`]): `uncovered` lists
//! those nobody covers, `single` those only one professional covers, each
//! with the number of requests in the period, most requested first (then
//! by role, sector and language).
//!
//! Never: a person's or a professional's id in the answer, or a query
//! that does not bind the caller's network.

use super::period::{self, Period};
use super::{ApiQuery, MinPosition};
use crate::access::{Act, allow};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use sportello_domain::activation::ranking::{Registered, coverage};
use sportello_domain::activation::{ProfessionalRole, Sector};
use sportello_projections::ActivationRow;
use std::collections::BTreeMap;
use time::{Date, OffsetDateTime};

/// Query of the activations report.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ActivationReportQuery {
    /// First day of the period: a date, `YYYY-MM-DD` (a UTC day,
    /// included; a date-time is refused), on when activations were
    /// requested. Default: 89 days before `to`.
    pub from: Option<String>,
    /// Last day of the period: a date, `YYYY-MM-DD` (a UTC day, included;
    /// a date-time is refused). Default: today (UTC).
    pub to: Option<String>,
    /// Read your writes: wait until the activations and professionals read
    /// models have applied this global position.
    pub min_position: Option<i64>,
}

/// The 24/48 h compliance of a group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Compliance {
    /// Activations requested in the period.
    pub requested: i64,
    /// Cancelled at or before their deadline with nobody confirmed: not
    /// judged.
    pub cancelled_before_due: i64,
    /// Judged: confirmed, or their deadline passed (or recorded missed).
    pub due: i64,
    /// Due and confirmed at or before the deadline.
    pub confirmed_in_time: i64,
    /// Due and not confirmed in time (missed deadlines included).
    pub late: i64,
    /// Not confirmed, deadline not passed yet.
    pub pending: i64,
    /// `confirmed_in_time / due` (`null` when `due` is 0).
    pub rate: Option<f64>,
    /// Activations whose missed deadline was recorded.
    pub deadlines_missed: i64,
}

/// How long confirmation took in a group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TimeToConfirm {
    /// Confirmed activations (the values measured).
    pub confirmed: i64,
    /// Nearest-rank median of the minutes from request to confirmation
    /// (`null` if none was confirmed).
    pub median_minutes: Option<f64>,
    /// Nearest-rank 90th percentile of the same minutes.
    pub p90_minutes: Option<f64>,
}

/// How the offers to professionals fared in a group.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Offers {
    /// Offers made.
    pub made: i64,
    /// Of those, declined.
    pub declined: i64,
    /// Of those, lapsed unanswered.
    pub expired: i64,
    /// `declined / made` (`null` when `made` is 0).
    pub decline_rate: Option<f64>,
    /// `expired / made` (`null` when `made` is 0).
    pub expiry_rate: Option<f64>,
}

/// The figures of a group of activations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Figures {
    /// Compliance with the 24/48 h deadline.
    pub compliance: Compliance,
    /// Time from request to confirmation.
    pub time_to_confirm: TimeToConfirm,
    /// Offers, declines and expiries.
    pub offers: Offers,
}

/// The figures of one role.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RoleFigures {
    /// `mediator`, `interpreter` or `lawyer`.
    #[schema(value_type = String, example = "interpreter")]
    pub role: ProfessionalRole,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// The figures of one sector.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct SectorFigures {
    /// `legal`, `labour` or `health`.
    #[schema(value_type = String, example = "health")]
    pub sector: Sector,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// The figures of one language.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LanguageFigures {
    /// ISO 639-1 code.
    #[schema(example = "ar")]
    pub language: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// The figures of one role × sector × language.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CombinationFigures {
    /// `mediator`, `interpreter` or `lawyer`.
    #[schema(value_type = String, example = "interpreter")]
    pub role: ProfessionalRole,
    /// `legal`, `labour` or `health`.
    #[schema(value_type = String, example = "health")]
    pub sector: Sector,
    /// ISO 639-1 code.
    #[schema(example = "ar")]
    pub language: String,
    /// Its figures.
    #[serde(flatten)]
    pub figures: Figures,
}

/// A role × sector × language asked for that the registry covers thinly.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Gap {
    /// `mediator`, `interpreter` or `lawyer`.
    #[schema(value_type = String, example = "interpreter")]
    pub role: ProfessionalRole,
    /// `legal`, `labour` or `health`.
    #[schema(value_type = String, example = "health")]
    pub sector: Sector,
    /// ISO 639-1 code.
    #[schema(example = "ps")]
    pub language: String,
    /// Activations requested for it in the period.
    pub requests: i64,
}

/// The registry's gaps for what was asked in the period.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Gaps {
    /// Asked for, and no active professional covers it.
    pub uncovered: Vec<Gap>,
    /// Asked for, and exactly one active professional covers it.
    pub single: Vec<Gap>,
}

/// The activations report (its definition is in the module docs).
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ActivationReport {
    /// First day of the period applied (a UTC day, included).
    #[serde(with = "period::day")]
    #[schema(value_type = String, format = Date, example = "2025-01-01")]
    pub from: Date,
    /// Last day of the period applied (a UTC day, included).
    #[serde(with = "period::day")]
    #[schema(value_type = String, format = Date, example = "2025-06-30")]
    pub to: Date,
    /// When the report was computed: the "now" activations are judged at
    /// and the registry's gaps are of.
    #[serde(with = "time::serde::rfc3339")]
    pub generated_at: OffsetDateTime,
    /// Every activation requested in the period.
    pub overall: Figures,
    /// By role.
    pub by_role: Vec<RoleFigures>,
    /// By sector.
    pub by_sector: Vec<SectorFigures>,
    /// By language.
    pub by_language: Vec<LanguageFigures>,
    /// By role × sector × language.
    pub by_combination: Vec<CombinationFigures>,
    /// What the registry does not cover, or covers with one professional.
    pub gaps: Gaps,
}

/// The registry's 24/48 h compliance by role, sector and language, time
/// to confirm, offers, and the registry's gaps. The report's definition
/// is in the module docs.
#[utoipa::path(
    get,
    path = "/api/v1/reports/activations",
    tag = "reports",
    params(ActivationReportQuery),
    responses(
        (status = 200, description = "The report over the UTC days `from` to `to` (both included, echoed as applied), judged as of now (`generated_at`); a `Sportello-Caught-Up-To` header when `min_position` was not reached in time", body = ActivationReport),
        (status = 401, description = "No valid bearer token", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 403, description = "Not a desk, coordination or admin account", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
        (status = 422, description = "Invalid query: `from` or `to` not a date (`YYYY-MM-DD`; date-times are refused), `from` after `to`, a period over 400 days, or a malformed `min_position`", body = crate::error::ProblemDoc, content_type = "application/problem+json"),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(network = %caller.network_id))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ActivationReportQuery>,
) -> Result<Response, ApiError> {
    allow(&caller, Act::ReadReports)?;
    let now = state.settings.clock.now();
    let period = Period::parse(
        q.from.as_deref(),
        q.to.as_deref(),
        now.to_offset(time::UtcOffset::UTC).date(),
    )?;
    let mut headers = HeaderMap::new();
    let wait = MinPosition {
        min_position: q.min_position,
    };
    wait.wait(&state, "activations", &mut headers).await?;
    wait.wait(&state, "professionals", &mut headers).await?;
    let network = caller.network_id.0;
    let mut conn = state.pool().acquire().await?;
    let rows: Vec<ActivationRow> = documents(
        sqlx::query_scalar(
            "SELECT to_jsonb(a) FROM activations a
              WHERE network_id = $1 AND requested_at >= $2 AND requested_at < $3",
        )
        .bind(network)
        .bind(period.start())
        .bind(period.end())
        .fetch_all(&mut *conn)
        .await?,
    )?;
    drop(conn);
    // Only active professionals cover anything; the others need not be read.
    let registry = crate::activation::registry(state.pool(), caller.network_id).await?;
    Ok((
        headers,
        Json(report(period.from, period.to, now, &rows, &registry)),
    )
        .into_response())
}

/// Read-model rows from their JSON documents.
fn documents<T: serde::de::DeserializeOwned>(
    docs: Vec<serde_json::Value>,
) -> Result<Vec<T>, ApiError> {
    docs.into_iter()
        .map(|d| serde_json::from_value(d).map_err(|e| ApiError::Internal(e.into())))
        .collect()
}

/// Where an activation stands against its deadline (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Judgement {
    /// Confirmed at or before the deadline.
    InTime,
    /// Due and not confirmed in time.
    Late,
    /// Cancelled at or before the deadline with nobody confirmed.
    CancelledBeforeDue,
    /// Open, the deadline not passed yet.
    Pending,
}

fn judge(a: &ActivationRow, now: OffsetDateTime) -> Judgement {
    match (a.confirmed_at, a.deadline_missed_at, a.cancelled_at) {
        (Some(c), _, _) if c <= a.deadline => Judgement::InTime,
        (Some(_), _, _) | (None, Some(_), _) => Judgement::Late,
        (None, None, Some(c)) if c <= a.deadline => Judgement::CancelledBeforeDue,
        _ if now > a.deadline => Judgement::Late,
        _ => Judgement::Pending,
    }
}

/// The `percent`-th nearest-rank percentile of `sorted` (ascending): the
/// value of rank `ceil(percent × n / 100)`, at least the first (`None` if
/// empty).
fn nearest_rank(sorted: &[i64], percent: usize) -> Option<i64> {
    let rank = (percent * sorted.len()).div_ceil(100).max(1);
    sorted.get(rank - 1).copied()
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let k = 10f64.powi(decimals);
    (x * k).round() / k
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| round_to(part as f64 / whole as f64, 4))
}

/// What a group's figures are added up from.
#[derive(Clone, Debug, Default)]
struct Tally {
    requested: i64,
    cancelled_before_due: i64,
    in_time: i64,
    late: i64,
    pending: i64,
    deadlines_missed: i64,
    /// Seconds from request to confirmation, of the confirmed ones.
    to_confirm: Vec<i64>,
    offers: i64,
    declines: i64,
    expiries: i64,
}

impl Tally {
    fn add(&mut self, a: &ActivationRow, judged: Judgement) {
        self.requested += 1;
        match judged {
            Judgement::InTime => self.in_time += 1,
            Judgement::Late => self.late += 1,
            Judgement::CancelledBeforeDue => self.cancelled_before_due += 1,
            Judgement::Pending => self.pending += 1,
        }
        self.deadlines_missed += i64::from(a.deadline_missed_at.is_some());
        if let Some(c) = a.confirmed_at {
            self.to_confirm.push((c - a.requested_at).whole_seconds());
        }
        self.offers += i64::from(a.offers);
        self.declines += i64::from(a.declines);
        self.expiries += i64::from(a.expiries);
    }

    fn figures(mut self) -> Figures {
        self.to_confirm.sort_unstable();
        let minutes =
            |percent| nearest_rank(&self.to_confirm, percent).map(|s| round_to(s as f64 / 60.0, 2));
        let due = self.in_time + self.late;
        Figures {
            compliance: Compliance {
                requested: self.requested,
                cancelled_before_due: self.cancelled_before_due,
                due,
                confirmed_in_time: self.in_time,
                late: self.late,
                pending: self.pending,
                rate: ratio(self.in_time, due),
                deadlines_missed: self.deadlines_missed,
            },
            time_to_confirm: TimeToConfirm {
                confirmed: self.to_confirm.len() as i64,
                median_minutes: minutes(50),
                p90_minutes: minutes(90),
            },
            offers: Offers {
                made: self.offers,
                declined: self.declines,
                expired: self.expiries,
                decline_rate: ratio(self.declines, self.offers),
                expiry_rate: ratio(self.expiries, self.offers),
            },
        }
    }
}

/// The report over `rows` (the activations requested in the period) at
/// `now`, with the gaps of `registry` (the registry as it stands now).
/// Pure: the handler only loads the rows.
pub fn report(
    from: Date,
    to: Date,
    now: OffsetDateTime,
    rows: &[ActivationRow],
    registry: &[Registered],
) -> ActivationReport {
    let mut overall = Tally::default();
    let mut roles: BTreeMap<ProfessionalRole, Tally> = BTreeMap::new();
    let mut sectors: BTreeMap<Sector, Tally> = BTreeMap::new();
    let mut languages: BTreeMap<&str, Tally> = BTreeMap::new();
    let mut combinations: BTreeMap<(ProfessionalRole, Sector, &str), Tally> = BTreeMap::new();
    for a in rows {
        let judged = judge(a, now);
        overall.add(a, judged);
        roles.entry(a.role).or_default().add(a, judged);
        sectors.entry(a.sector).or_default().add(a, judged);
        languages
            .entry(a.language.as_str())
            .or_default()
            .add(a, judged);
        combinations
            .entry((a.role, a.sector, a.language.as_str()))
            .or_default()
            .add(a, judged);
    }
    let mut gaps = Gaps::default();
    for (&(role, sector, language), t) in &combinations {
        let list = match coverage(registry, role, sector, language) {
            0 => &mut gaps.uncovered,
            1 => &mut gaps.single,
            _ => continue,
        };
        list.push(Gap {
            role,
            sector,
            language: language.to_owned(),
            requests: t.requested,
        });
    }
    // Most requested first; the map's order (role, sector, language)
    // breaks ties, and the sort is stable.
    gaps.uncovered
        .sort_by_key(|g| std::cmp::Reverse(g.requests));
    gaps.single.sort_by_key(|g| std::cmp::Reverse(g.requests));
    ActivationReport {
        from,
        to,
        generated_at: now,
        overall: overall.figures(),
        by_role: roles
            .into_iter()
            .map(|(role, t)| RoleFigures {
                role,
                figures: t.figures(),
            })
            .collect(),
        by_sector: sectors
            .into_iter()
            .map(|(sector, t)| SectorFigures {
                sector,
                figures: t.figures(),
            })
            .collect(),
        by_language: languages
            .into_iter()
            .map(|(language, t)| LanguageFigures {
                language: language.to_owned(),
                figures: t.figures(),
            })
            .collect(),
        by_combination: combinations
            .into_iter()
            .map(|((role, sector, language), t)| CombinationFigures {
                role,
                sector,
                language: language.to_owned(),
                figures: t.figures(),
            })
            .collect(),
        gaps,
    }
}

#[cfg(test)]
mod tests;
