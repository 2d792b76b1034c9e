//! The measured phases against the running server: the baseline, the
//! commands and the reads, each with where the CPU went and what the
//! database did.

use super::super::write::{self, Throughput};
use super::flow::{self, Actors, Catalog};
use super::reads::{self, Targets};
use super::routes::{Calls, Pace, Recorder, RouteFigures};
use super::server::Server;
use super::{cpu, pgstats};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The steady load of the mixed phase.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Mix {
    /// Client tasks working people through the desk and the providers.
    pub command_tasks: usize,
    /// Each one's time between two commands.
    pub command_interval: Duration,
    /// Client tasks reading cards and inboxes (two cards to an inbox).
    pub read_tasks: usize,
    /// Each one's time between two reads.
    pub read_interval: Duration,
    /// Time between two bottleneck reports (one client).
    pub report_interval: Duration,
}

impl Mix {
    /// 100 commands, 200 card and inbox reads and one bottleneck report a
    /// second: tens of times what a comune's desk and its partners ask at
    /// their busiest (a few requests a second); it keeps about half of the
    /// two cores of the development machine busy.
    pub const STEADY: Mix = Mix {
        command_tasks: 4,
        command_interval: Duration::from_millis(40),
        read_tasks: 4,
        read_interval: Duration::from_millis(20),
        report_interval: Duration::from_secs(1),
    };

    /// Requests a second it asks for: commands, reads, reports.
    pub fn rates(&self) -> [f64; 3] {
        let per_sec = |tasks: usize, every: Duration| tasks as f64 / every.as_secs_f64();
        [
            per_sec(self.command_tasks, self.command_interval),
            per_sec(self.read_tasks, self.read_interval),
            per_sec(1, self.report_interval),
        ]
    }
}

/// Where the phases look from.
pub struct Probe<'a> {
    /// The server.
    pub server: &'a Server,
    /// A small pool on the bench database, for its statistics.
    pub pool: &'a PgPool,
    /// The bench database's name.
    pub db_name: &'a str,
    /// What the idle server does to the database.
    pub idle: pgstats::Idle,
    /// The shared HTTP client.
    pub http: &'a reqwest::Client,
    /// How long each phase runs.
    pub phase: Duration,
}

/// A phase of client tasks: its calls, where the CPU went while they ran,
/// what the database did for them (until the server had caught up), and
/// how long the server took to catch up after the last request.
pub struct Measured {
    /// The calls.
    pub calls: Calls,
    /// CPU while the clients ran.
    pub cpu: cpu::Use,
    /// Database work per successful request.
    pub database: pgstats::Work,
    /// Last request until the relay and read models were idle again.
    pub caught_up_after: Duration,
}

impl Probe<'_> {
    /// Run `tasks` (started now), then wait for the server to catch up and
    /// its statistics to settle.
    async fn measure(
        &self,
        start: (Instant, cpu::Snapshot, pgstats::Snapshot),
        tasks: Vec<tokio::task::JoinHandle<Recorder>>,
    ) -> anyhow::Result<Measured> {
        let (t0, cpu0, db0) = start;
        let mut all = Recorder::new();
        for t in tasks {
            all.merge(t.await?);
        }
        let calls = all.summary(t0.elapsed().as_secs_f64());
        let cpu = cpu0.until(&cpu::snapshot(self.server.pid()));
        let caught_up_after = self
            .server
            .caught_up(self.http, Duration::from_secs(300))
            .await?;
        tokio::time::sleep(pgstats::SETTLE).await;
        let db1 = pgstats::snapshot(self.pool, self.db_name).await?;
        Ok(Measured {
            database: db0.until(&db1, calls.ok, &self.idle),
            calls,
            cpu,
            caught_up_after,
        })
    }

    async fn start(&self) -> anyhow::Result<(Instant, cpu::Snapshot, pgstats::Snapshot)> {
        let db = pgstats::snapshot(self.pool, self.db_name).await?;
        Ok((Instant::now(), cpu::snapshot(self.server.pid()), db))
    }

    /// A command client of this server, `task` of its phase, for
    /// `duration`.
    fn commander(
        &self,
        actors: &Arc<Actors>,
        catalog: &Arc<Catalog>,
        task: u64,
        duration: Duration,
    ) -> flow::Client {
        flow::Client::new(
            self.http.clone(),
            self.server.base.clone(),
            actors.clone(),
            catalog.clone(),
            task,
            duration,
        )
    }

    /// A reader of this server with this plan (task, weights, pace), for
    /// `duration`.
    fn reader(
        &self,
        actors: &Arc<Actors>,
        targets: &Arc<Targets>,
        plan: (u64, reads::Weights, Option<Pace>),
        duration: Duration,
    ) -> impl std::future::Future<Output = Recorder> + Send + 'static {
        reads::reader(
            self.http.clone(),
            self.server.base.clone(),
            actors.clone(),
            targets.clone(),
            plan,
            duration,
        )
    }

    /// The command mix from `connections` client tasks.
    pub async fn commands(
        &self,
        connections: usize,
        actors: &Arc<Actors>,
        catalog: &Arc<Catalog>,
    ) -> anyhow::Result<Measured> {
        let start = self.start().await?;
        let tasks = (0..connections as u64)
            .map(|t| {
                let client = self.commander(actors, catalog, t, self.phase);
                tokio::spawn(client.run())
            })
            .collect();
        self.measure(start, tasks).await
    }

    /// The read mix from `connections` client tasks.
    pub async fn reads(
        &self,
        connections: usize,
        actors: &Arc<Actors>,
        targets: &Arc<Targets>,
    ) -> anyhow::Result<Measured> {
        let start = self.start().await?;
        let tasks = (0..connections as u64)
            .map(|t| {
                tokio::spawn(self.reader(
                    actors,
                    targets,
                    (t, reads::Weights::READS, None),
                    self.phase,
                ))
            })
            .collect();
        self.measure(start, tasks).await
    }

    /// The desk, the partners and the coordination team at a steady,
    /// stated load ([`Mix`]), well below what the machine can take: commands
    /// and reads together, each client sending on a fixed schedule.
    pub async fn mix(
        &self,
        mix: &Mix,
        actors: &Arc<Actors>,
        catalog: &Arc<Catalog>,
        targets: &Arc<Targets>,
    ) -> anyhow::Result<Measured> {
        let start = self.start().await?;
        let stagger = |interval: Duration, t: usize, of: usize| interval * t as u32 / of as u32;
        let mut tasks = Vec::new();
        for t in 0..mix.command_tasks {
            let client = self
                .commander(actors, catalog, 2000 + t as u64, self.phase)
                .paced(Pace::every(
                    mix.command_interval,
                    stagger(mix.command_interval, t, mix.command_tasks),
                ));
            tasks.push(tokio::spawn(client.run()));
        }
        let readers = (0..mix.read_tasks)
            .map(|t| {
                let pace = Pace::every(
                    mix.read_interval,
                    stagger(mix.read_interval, t, mix.read_tasks),
                );
                (t as u64, reads::Weights::SCREENS, Some(pace))
            })
            .chain([(
                mix.read_tasks as u64,
                reads::Weights::only(reads::route::BOTTLENECKS),
                Some(Pace::every(mix.report_interval, Duration::ZERO)),
            )]);
        for plan in readers {
            tasks.push(tokio::spawn(self.reader(actors, targets, plan, self.phase)));
        }
        self.measure(start, tasks).await
    }

    /// Each route alone from one connection, one request at a time, for
    /// `each`: what a request costs with nobody else asking (the commands
    /// as one flow, the reads route by route).
    pub async fn solo(
        &self,
        actors: &Arc<Actors>,
        catalog: &Arc<Catalog>,
        targets: &Arc<Targets>,
        each: Duration,
    ) -> anyhow::Result<(Calls, Vec<RouteFigures>)> {
        let t0 = Instant::now();
        let client = self.commander(actors, catalog, 1000, each);
        let commands = client.run().await.summary(t0.elapsed().as_secs_f64());
        self.server
            .caught_up(self.http, Duration::from_secs(300))
            .await?;
        let mut routes = Vec::new();
        for only in [
            reads::route::CARD,
            reads::route::INBOX,
            reads::route::BOTTLENECKS,
        ] {
            let t0 = Instant::now();
            let rec = self
                .reader(
                    actors,
                    targets,
                    (1000, reads::Weights::only(only), None),
                    each,
                )
                .await;
            routes.extend(rec.summary(t0.elapsed().as_secs_f64()).routes);
        }
        Ok((commands, routes))
    }

    /// Raw inserts at `connections` on a pool of their own, opened (every
    /// connection made) before the clock starts and closed after.
    pub async fn baseline(
        &self,
        url: &str,
        connections: usize,
    ) -> anyhow::Result<(Throughput, cpu::Use)> {
        let pool = PgPoolOptions::new()
            .max_connections(connections as u32)
            .acquire_timeout(Duration::from_secs(60))
            .connect(url)
            .await?;
        // Make every connection now: PostgreSQL may be short of slots for a
        // while on a shared machine, and that wait is not an insert's.
        let mut held = Vec::with_capacity(connections);
        for _ in 0..connections {
            held.push(pool.acquire().await?);
        }
        drop(held);
        let cpu0 = cpu::snapshot(self.server.pid());
        let t = write::baseline_only(&pool, connections, self.phase.as_secs()).await;
        let cpu = cpu0.until(&cpu::snapshot(self.server.pid()));
        pool.close().await;
        Ok((t?, cpu))
    }
}
