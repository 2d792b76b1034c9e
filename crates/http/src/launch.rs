//! Starting a server: [`launch`] takes settings, a bound listener and a
//! shutdown future (the test seam: tests bind port 0), and runs the HTTP
//! server with the relay and projection runners beside it until shutdown.

use crate::config::Settings;
use crate::state::AppState;
use crate::{api, auth, error, hardening, openapi};
use anyhow::Context;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use sportello_store::projection::{ProjectionStatus, supervise};
use sportello_store::relay::{Relay, RelayConfig};
use sportello_store::{EventStore, Keyring, db};
use std::future::Future;
use std::sync::{Arc, OnceLock};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_http::trace::TraceLayer;

/// Largest request body accepted (bytes).
pub const MAX_BODY: usize = 256 * 1024;

/// The process-wide Prometheus recorder (installed once).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .install_recorder()
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder().handle())
        })
        .clone()
}

/// The whole router.
pub fn router(state: AppState) -> Router {
    let (api, doc) = api::routes().split_for_parts();
    Router::new()
        .merge(api)
        .merge(openapi::router(doc))
        .route("/", get(auth::login::home))
        .route("/login", get(auth::login::form).post(auth::login::submit))
        .route("/logout", post(auth::login::logout))
        .route("/auth/oidc/login", get(auth::oidc::login))
        .route("/auth/oidc/callback", get(auth::oidc::callback))
        .fallback(error::no_route)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        // Every error under /api/ a problem, the router's own included.
        .layer(axum::middleware::from_fn(error::problems))
        .layer(axum::middleware::from_fn(hardening::no_head_on_people))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            hardening::headers,
        ))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span of a request: its method and route template, never its URL
/// (a query string or a path could carry what must not be logged).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("(unrouted)", |m| m.as_str());
    tracing::info_span!("request", method = %req.method(), route)
}

/// Connect to NATS without waiting for it: the client keeps trying in the
/// background, so a server starts (and takes commands) while NATS is down.
pub async fn connect_nats(url: &str) -> anyhow::Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connection_timeout(std::time::Duration::from_secs(2))
        .connect(url)
        .await
        .context("connecting to NATS")
}

/// Run a server on `listener` until `shutdown` resolves, then stop the
/// workers and return.
pub async fn launch(
    settings: Settings,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    settings.validate().map_err(anyhow::Error::msg)?;
    let pool = db::connect(&settings.database_url, settings.db_max_connections)
        .await
        .context("connecting to PostgreSQL")?;
    db::migrate(&pool).await.context("migrating the database")?;
    let keyring = Keyring::new(settings.master_key.clone().expect("validated"));
    keyring
        .verify_master_key(&pool)
        .await
        .context("checking the master key")?;
    let store = EventStore::new(pool.clone(), keyring);
    let nats = connect_nats(&settings.nats_url).await?;
    let js = async_nats::jetstream::new(nats.clone());

    // Tables and views of every read model exist before the first request.
    for p in sportello_projections::all() {
        sportello_store::projection::checkpoint::setup(&pool, p.as_ref())
            .await
            .with_context(|| format!("setting up projection {}", p.name()))?;
    }

    let cancel = CancellationToken::new();
    let mut tasks = Vec::new();
    let mut relay_status = None;
    let mut projections = Vec::new();
    if settings.run_workers {
        let relay = Relay::new(
            pool.clone(),
            js.clone(),
            RelayConfig {
                bus: settings.bus(),
                ..RelayConfig::default()
            },
            store.appended(),
        );
        relay_status = Some(relay.status());
        tasks.push(tokio::spawn(relay.run(cancel.clone())));
        // Every read model in one runner: each event read and decoded
        // once, each batch applied to all in one transaction.
        let group: Vec<_> = sportello_projections::all()
            .into_iter()
            .map(|p| (p, Arc::new(ProjectionStatus::default())))
            .collect();
        projections = group.iter().map(|(p, s)| (p.name(), s.clone())).collect();
        tasks.push(tokio::spawn(supervise(
            pool.clone(),
            Some(js.clone()),
            settings.bus(),
            group,
            cancel.clone(),
        )));
    }

    if settings.run_workers && settings.retention_years > 0 {
        tasks.push(tokio::spawn(crate::erasure::run_retention(
            store.clone(),
            settings.retention_years,
            settings.clock.clone(),
            cancel.clone(),
        )));
    }
    if settings.run_workers {
        tasks.push(tokio::spawn(crate::activation::scheduler::run(
            store.clone(),
            settings.clock.clone(),
            std::time::Duration::from_millis(settings.scheduler_period_ms),
            time::Duration::minutes(i64::from(settings.offer_timeout_minutes)),
            cancel.clone(),
        )));
    }
    let limits = hardening::Limits::new(
        settings.login_attempts_per_minute,
        settings.api_requests_per_second,
    );
    tasks.push(tokio::spawn({
        let limits = limits.clone();
        let cancel = cancel.clone();
        async move {
            let mut every = tokio::time::interval(std::time::Duration::from_secs(60));
            while cancel.run_until_cancelled(every.tick()).await.is_some() {
                limits.prune();
            }
        }
    }));
    let state = AppState {
        limits,
        settings: Arc::new(settings),
        store,
        nats: Some(nats),
        relay: relay_status,
        projections,
        metrics: metrics_handle(),
        tokens: Default::default(),
        oidc: Default::default(),
    };
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "serving");
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<std::net::SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .context("serving HTTP")?;
    tracing::info!("shutting down workers");
    cancel.cancel();
    for t in tasks {
        let _ = t.await;
    }
    Ok(())
}
