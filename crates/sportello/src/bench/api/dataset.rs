//! The dataset the API is measured on: the demo network's organisations
//! and `--people` fictitious people from [`crate::simulate`] over the last
//! six months, written as history from concurrent writers (people indexed
//! as the demo indexes them); then every read model rebuilt from the log
//! and the log relayed to JetStream, so the server starts on a network
//! that has been running, with nothing left to catch up.

use super::super::pipeline::Rate;
use crate::demo::{self, DEMO_NETWORK};
use crate::simulate::{self, Network};
use anyhow::Context;
use async_nats::jetstream;
use serde::Serialize;
use sportello_domain::calendar::WorkingCalendar;
use sportello_domain::referral;
use sportello_domain::{NetworkId, PersonId};
use sportello_store::bus::BusConfig;
use sportello_store::{EventStore, LogCursor};
use sqlx::PgPool;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};
use time::OffsetDateTime;

/// Follow-up contacts per person on average (see `simulate::Network`).
const FOLLOW_UP_VISITS: u32 = 21;

/// The seed of the bench's people (not the demo's).
const SEED: u64 = 0xbe4c_2026;
/// Over how many days before now they came.
const WINDOW_DAYS: i64 = 183;
/// Concurrent writers of the dataset.
pub const WRITERS: usize = 16;
/// How often generation and rebuilds say how far they are.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// What was written.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// People taken in charge (one case stream each).
    pub people: u64,
    /// Organisations (the desk and the providers).
    pub organizations: u64,
    /// Streams: organisations, cases and referrals.
    pub streams: u64,
    /// Referral streams.
    pub referrals: u64,
    /// Events in the log.
    pub events: u64,
    /// Events per person (cases and referrals).
    pub events_per_person: f64,
    /// Concurrent writers.
    pub writers: usize,
    /// Generating and writing, wall time.
    pub write: Rate,
}

/// The dataset as the bench drives it.
pub struct Dataset {
    /// Its figures.
    pub figures: Figures,
    /// The network, as the generator saw it.
    pub network: Network,
    /// Every person's id (their case's stream id).
    pub persons: Vec<PersonId>,
}

/// Generate and write the dataset.
pub async fn write(
    store: &EventStore,
    people: u64,
    calendar: WorkingCalendar,
) -> anyhow::Result<Dataset> {
    let network = NetworkId(DEMO_NETWORK);
    let now = OffsetDateTime::now_utc();
    let start = Instant::now();
    let mut states = Vec::new();
    let mut org_events = 0u64;
    for (state, (req, metadata)) in demo::organizations(now)? {
        store
            .append_history(&req, &metadata)
            .await
            .with_context(|| format!("registering {}", state.name))?;
        org_events += req.events.len() as u64;
        states.push(state);
    }
    let organizations = states.len() as u64;
    let mut net = demo::fixture(states, calendar);
    // People followed for months: the desk hears from them again and
    // again (phone calls, visits), which takes the log to about twenty
    // events a person.
    net.follow_up_visits = FOLLOW_UP_VISITS;
    let net = Arc::new(net);

    let claimed = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicU64::new(0));
    let events = Arc::new(AtomicU64::new(org_events));
    let referrals = Arc::new(AtomicU64::new(0));
    let finished = Arc::new(AtomicBool::new(false));
    let progress = tokio::spawn({
        let (done, events, finished) = (done.clone(), events.clone(), finished.clone());
        async move {
            let mut tick = tokio::time::interval(PROGRESS_EVERY);
            tick.tick().await;
            while !finished.load(Ordering::Relaxed) {
                tick.tick().await;
                let e = events.load(Ordering::Relaxed);
                eprintln!(
                    "  {} / {people} people, {e} events ({:.0} events/s)",
                    done.load(Ordering::Relaxed),
                    e as f64 / start.elapsed().as_secs_f64()
                );
            }
        }
    });
    let mut tasks = Vec::with_capacity(WRITERS);
    for _ in 0..WRITERS {
        let (store, net) = (store.clone(), net.clone());
        let (claimed, done, events, referrals) = (
            claimed.clone(),
            done.clone(),
            events.clone(),
            referrals.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let window = time::Duration::days(WINDOW_DAYS);
            let mut persons = Vec::new();
            loop {
                let i = claimed.fetch_add(1, Ordering::Relaxed);
                if i >= people {
                    return Ok::<_, anyhow::Error>(persons);
                }
                let mut rng = simulate::person_rng(network, SEED, i);
                let appends = simulate::person(&net, &mut rng, i, now, window)?;
                // The case first, then its referrals (in the order sent).
                for (req, metadata) in &appends {
                    store.append_history(req, metadata).await?;
                    demo::index_person(&store, req).await?;
                    events.fetch_add(req.events.len() as u64, Ordering::Relaxed);
                    if req.stream_kind == referral::STREAM_KIND {
                        referrals.fetch_add(1, Ordering::Relaxed);
                    }
                }
                let case = appends.first().context("a person without a case")?;
                persons.push(PersonId(case.0.stream_id.0));
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    let mut persons = Vec::with_capacity(people as usize);
    let mut failed = None;
    for t in tasks {
        match t.await? {
            Ok(p) => persons.extend(p),
            Err(e) => failed = failed.or(Some(e)),
        }
    }
    finished.store(true, Ordering::Relaxed);
    progress.abort();
    if let Some(e) = failed {
        return Err(e.context("writing the dataset"));
    }
    let elapsed = start.elapsed();
    let events = events.load(Ordering::Relaxed);
    let referrals = referrals.load(Ordering::Relaxed);
    let people = persons.len() as u64;
    let figures = Figures {
        people,
        organizations,
        streams: organizations + people + referrals,
        referrals,
        events,
        events_per_person: (events - org_events) as f64 / people.max(1) as f64,
        writers: WRITERS,
        write: Rate::new(events, elapsed),
    };
    Ok(Dataset {
        figures,
        network: Arc::into_inner(net).context("writers still hold the network")?,
        persons,
    })
}

/// Wait until log readers see all `events` (they read below the
/// cluster-wide xmin, which another database's open transaction holds
/// back); how long that took.
pub async fn visible(pool: &PgPool, events: u64) -> anyhow::Result<Duration> {
    let start = Instant::now();
    let limit = Duration::from_secs(600);
    let mut said = Instant::now();
    loop {
        let seen = sportello_store::read::count_after(pool, LogCursor::START).await? as u64;
        if seen >= events {
            anyhow::ensure!(seen == events, "{seen} events in the log, {events} written");
            return Ok(start.elapsed());
        }
        anyhow::ensure!(
            start.elapsed() < limit,
            "log readers see {seen} of {events} events after {limit:?}"
        );
        if said.elapsed() >= PROGRESS_EVERY {
            eprintln!(
                "  log readers see {seen} of {events} events (an open transaction elsewhere holds the xmin)"
            );
            said = Instant::now();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `VACUUM (ANALYZE)` the whole database, as autovacuum would have done
/// long before on a network running for months (it may well be off on a
/// development server: the planner would then plan on tables it knows
/// nothing of); how long it took.
pub async fn vacuum_analyze(pool: &PgPool) -> anyhow::Result<Duration> {
    let start = Instant::now();
    sqlx::raw_sql("VACUUM (ANALYZE)")
        .execute(pool)
        .await
        .context("VACUUM (ANALYZE) of the bench database")?;
    Ok(start.elapsed())
}

/// One projection's rebuild.
#[derive(Clone, Debug, Serialize)]
pub struct Rebuilt {
    /// The projection.
    pub projection: &'static str,
    /// Its rate.
    #[serde(flatten)]
    pub rate: Rate,
}

/// Bring every read model up to date with a blue/green rebuild from the
/// log, one after the other, batches of 5,000.
pub async fn rebuild_all(pool: &PgPool) -> anyhow::Result<Vec<Rebuilt>> {
    let mut out = Vec::new();
    for p in sportello_projections::all() {
        sportello_store::projection::checkpoint::setup(pool, p.as_ref()).await?;
        let start = Instant::now();
        let said = std::sync::Mutex::new(Instant::now());
        let progress = |done: u64, total: u64| {
            let mut said = said.lock().expect("not poisoned");
            if said.elapsed() >= PROGRESS_EVERY {
                eprintln!("  {}: {done} / {total} events", p.name());
                *said = Instant::now();
            }
        };
        let n = sportello_store::projection::rebuild(pool, p.as_ref(), 5000, &progress)
            .await
            .with_context(|| format!("rebuilding {}", p.name()))?;
        let r = Rebuilt {
            projection: p.name(),
            rate: Rate::new(n, start.elapsed()),
        };
        eprintln!(
            "  {}: {} events in {:.1} s ({:.0} events/s)",
            r.projection, n, r.rate.seconds, r.rate.per_sec
        );
        out.push(r);
    }
    Ok(out)
}

/// Relay the whole log (`events`) to the bench's new stream, so the
/// server's relay and runners start where a running installation would
/// be: time until the stream holds every event.
pub async fn relay(
    pool: &PgPool,
    js: &jetstream::Context,
    bus: &BusConfig,
    events: u64,
) -> anyhow::Result<Rate> {
    super::super::pipeline::relay(
        pool,
        js,
        bus,
        events,
        Duration::from_secs(1800),
        Some(PROGRESS_EVERY),
    )
    .await
}
