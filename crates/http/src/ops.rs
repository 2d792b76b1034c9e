//! Operations endpoints: `/healthz` (the process answers), `/readyz`
//! (database, bus, relay lag, each projection's lag and state) and
//! `/metrics` (Prometheus text).

use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Serialize;
use sportello_store::projection::checkpoint;
use sportello_store::read::count_after;
use sportello_store::relay::relay_lag;
use std::sync::atomic::Ordering;

/// Liveness: the process is up.
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, description = "The process answers", body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize)]
struct ProjectionReport {
    name: String,
    lag: Option<i64>,
    live: Option<bool>,
    /// Stopped on an event it could not apply. The details (which event,
    /// why) are in the logs and the checkpoint table, not on this
    /// unauthenticated endpoint.
    stopped: bool,
}

#[derive(Serialize)]
struct Readiness {
    ready: bool,
    database: &'static str,
    bus: &'static str,
    relay: Option<RelayReport>,
    projections: Vec<ProjectionReport>,
}

#[derive(Serialize)]
struct RelayReport {
    leader_here: bool,
    failing: bool,
    lag: Option<i64>,
}

/// Readiness: 200 when the database answers and no projection is stopped;
/// 503 otherwise. The bus being down does not make the server unready —
/// commands still succeed and the relay catches up — but it is reported.
#[utoipa::path(get, path = "/readyz", tag = "operations", responses(
    (status = 200, description = "Ready: database up, no projection stopped", body = Object),
    (status = 503, description = "Not ready", body = Object),
))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let pool = state.pool();
    let database_ok = sqlx::query("SELECT 1").execute(pool).await.is_ok();
    let bus = match &state.nats {
        None => "not configured",
        Some(c) => match c.connection_state() {
            async_nats::connection::State::Connected => "connected",
            _ => "disconnected",
        },
    };
    let relay_lag_now = if database_ok {
        relay_lag(pool, &state.settings.stream_name).await.ok()
    } else {
        None
    };
    if let Some(lag) = relay_lag_now {
        metrics::gauge!("sportello_relay_lag_events").set(lag as f64);
    }
    let relay = state.relay.as_ref().map(|r| RelayReport {
        leader_here: r.leader.load(Ordering::Relaxed),
        failing: r.failing.load(Ordering::Relaxed),
        lag: relay_lag_now,
    });
    let mut projections = Vec::new();
    if database_ok && let Ok(cps) = checkpoint::all(pool).await {
        for cp in cps {
            let lag = count_after(pool, cp.cursor).await.ok();
            if let Some(lag) = lag {
                metrics::gauge!("sportello_projection_lag_events", "projection" => cp.name.clone())
                    .set(lag as f64);
            }
            let local = state.projections.iter().find(|(n, _)| *n == cp.name);
            let failed_here = local.is_some_and(|(_, s)| s.failed.load(Ordering::Relaxed));
            projections.push(ProjectionReport {
                live: local.map(|(_, s)| s.live.load(Ordering::Relaxed)),
                lag,
                stopped: cp.error.is_some() || failed_here,
                name: cp.name,
            });
        }
    }
    let stopped = projections.iter().any(|p| p.stopped);
    let ready = database_ok && !stopped;
    let body = Readiness {
        ready,
        database: if database_ok { "ok" } else { "unreachable" },
        bus,
        relay,
        projections,
    };
    let status = if ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

/// Prometheus metrics.
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, description = "Prometheus text format", body = String)))]
pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4",
        )],
        state.metrics.render(),
    )
}
