//! What every handler can reach.

use crate::config::Settings;
use metrics_exporter_prometheus::PrometheusHandle;
use sportello_store::EventStore;
use sportello_store::projection::ProjectionStatus;
use sportello_store::relay::RelayStatus;
use sqlx::PgPool;
use std::sync::Arc;

/// Shared application state.
#[derive(Clone)]
pub struct AppState {
    /// Settings the server started with.
    pub settings: Arc<Settings>,
    /// The event store (and its pool).
    pub store: EventStore,
    /// The NATS client, connected or reconnecting.
    pub nats: Option<async_nats::Client>,
    /// The relay of this process, if it runs one.
    pub relay: Option<Arc<RelayStatus>>,
    /// The projection runners of this process.
    pub projections: Vec<(&'static str, Arc<ProjectionStatus>)>,
    /// Prometheus rendering.
    pub metrics: PrometheusHandle,
    /// Bearer tokens looked up recently.
    pub tokens: crate::auth::TokenCache,
    /// Rate limits (sign-in attempts, API requests).
    pub limits: crate::hardening::Limits,
    /// The OpenID Connect provider's discovery document and keys, once
    /// fetched.
    pub oidc: crate::auth::oidc::Discovery,
}

impl AppState {
    /// The database pool.
    pub fn pool(&self) -> &PgPool {
        self.store.pool()
    }

    /// The application's clock: the one source of the time the server
    /// decides with.
    pub fn clock(&self) -> &crate::clock::Clock {
        &self.settings.clock
    }
}
