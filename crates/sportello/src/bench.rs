//! `sportello bench core`: measures the event-sourced core against the
//! same PostgreSQL and NATS (see docs/PERFORMANCE.md).
//!
//! In one run, on fresh databases made on the server of
//! `settings.database_url` (and dropped at the end) and a JetStream stream
//! of its own on `settings.nats_url` (deleted at the end):
//!
//! 1. baseline: autocommit single-row inserts of an event-like row into a
//!    table shaped like `events`, at 1, 8 and 32 connections;
//! 2. appends of one event per command through `EventStore::append`, on a
//!    new stream per command and on one existing stream per writer, at the
//!    same concurrencies, and their ratio to the baseline (1 and 2 are
//!    interleaved in 1 s slices so the noise of a shared machine falls on
//!    all alike);
//! 3. the relay publishing a filled log to JetStream;
//! 4. projection catch-up from the log (`stream_activity`): a plain read of
//!    the log for reference, a runner with no bus, and a blue/green rebuild;
//! 5. commit-to-projection lag with a relay and a live runner in process,
//!    at a paced 1,000 appends/s.
//!
//! `sportello bench api` measures the whole server over HTTP on a large
//! generated network: see [`api`].

mod api;
mod db;
mod lag;
mod pipeline;
mod write;

use anyhow::Context;
use async_nats::jetstream;
use db::BenchDb;
use lag::Lag;
use pipeline::Rate;
use serde::Serialize;
use sportello_http::Settings;
use sportello_store::{EventStore, Keyring, MasterKey};
use std::time::Duration;
use write::Throughput;

/// Which benchmark.
#[derive(clap::Subcommand)]
pub enum Which {
    /// The core: baseline inserts, appends, relay, catch-up, lag.
    Core {
        /// Write the figures as JSON here.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Seconds per measured phase.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// The server over HTTP: commands and reads on a generated network,
    /// beside the raw-insert baseline; the server's memory.
    Api {
        /// Write the figures as JSON here.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
        /// Seconds per measured phase.
        #[arg(long, default_value_t = 20)]
        seconds: u64,
        /// People in the generated dataset.
        #[arg(long, default_value_t = 100_000)]
        people: u64,
        /// Keep the bench database at the end (for looking into plans);
        /// its name is printed. The JetStream stream is removed all the
        /// same.
        #[arg(long)]
        keep_database: bool,
    },
}

/// The concurrencies of the write phases.
const CONCURRENCY: [usize; 3] = [1, 8, 32];

/// The steady append rate of the lag phase, events/s.
const LAG_RATE: u32 = 1000;

/// Events per stream when filling the log for the relay and catch-up.
const FILL_PER_STREAM: usize = 10;

/// The machine a run measured on.
#[derive(Serialize)]
struct Machine {
    nproc: usize,
    mem_total_kib: Option<u64>,
    postgres_version: String,
    nats_version: String,
}

/// A goal and how the run did.
#[derive(Serialize)]
struct Goal {
    goal: &'static str,
    measured: String,
    pass: bool,
}

#[derive(Serialize)]
struct Report {
    date: String,
    seconds: u64,
    concurrency: Vec<usize>,
    machine: Machine,
    notes: Vec<&'static str>,
    baseline: Vec<Throughput>,
    appends_new_stream: Vec<Throughput>,
    appends_existing_stream: Vec<Throughput>,
    ratio_new_stream: Vec<f64>,
    ratio_existing_stream: Vec<f64>,
    fill: Rate,
    relay: Rate,
    log_read: Rate,
    catch_up_runner: Rate,
    catch_up_rebuild: Rate,
    lag: Lag,
    goals: Vec<Goal>,
}

fn mem_total_kib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// The machine, with the versions of the servers behind `pool` and `nats`.
async fn machine(pool: &sqlx::PgPool, nats: &async_nats::Client) -> anyhow::Result<Machine> {
    let (postgres_version,): (String,) = sqlx::query_as("SHOW server_version")
        .fetch_one(pool)
        .await?;
    Ok(Machine {
        nproc: std::thread::available_parallelism().map_or(0, |n| n.get()),
        mem_total_kib: mem_total_kib(),
        postgres_version,
        nats_version: nats.server_info().version,
    })
}

/// Run a benchmark.
pub async fn run(settings: &Settings, which: Which) -> anyhow::Result<()> {
    match which {
        Which::Core { out, seconds } => core(settings, out, seconds).await,
        Which::Api {
            out,
            seconds,
            people,
            keep_database,
        } => {
            api::run(
                settings,
                api::Options {
                    out,
                    seconds,
                    people,
                    keep_database,
                },
            )
            .await
        }
    }
}

async fn core(
    settings: &Settings,
    out: Option<std::path::PathBuf>,
    seconds: u64,
) -> anyhow::Result<()> {
    anyhow::ensure!(seconds >= 1, "--seconds must be at least 1");
    let nats = async_nats::connect(&settings.nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {}", settings.nats_url))?;
    let js = jetstream::new(nats.clone());
    let bus = sportello_testkit::unique_bus();
    let writes = BenchDb::create(&settings.database_url, 40).await?;
    let log = match BenchDb::create(&settings.database_url, 32).await {
        Ok(db) => db,
        Err(e) => {
            writes.drop_db().await;
            return Err(e);
        }
    };
    let report = measure(&writes, &log, &nats, &js, &bus, seconds).await;
    writes.drop_db().await;
    log.drop_db().await;
    sportello_testkit::delete_stream(&settings.nats_url, &bus).await;
    let report = report?;
    print_report(&report);
    if let Some(path) = out {
        std::fs::write(&path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nfigures written to {}", path.display());
    }
    Ok(())
}

async fn measure(
    writes: &BenchDb,
    log: &BenchDb,
    nats: &async_nats::Client,
    js: &jetstream::Context,
    bus: &sportello_store::bus::BusConfig,
    seconds: u64,
) -> anyhow::Result<Report> {
    let phase = Duration::from_secs(seconds);
    let machine = machine(&writes.pool, nats).await?;
    let date =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;

    sqlx::raw_sql(db::BASELINE_DDL)
        .execute(&writes.pool)
        .await?;
    let store = EventStore::new(writes.pool.clone(), Keyring::new(MasterKey::generate()));
    let mut baseline = Vec::new();
    let mut appends_new_stream = Vec::new();
    let mut appends_existing_stream = Vec::new();
    for c in CONCURRENCY {
        eprintln!(
            "baseline inserts and appends (new, existing streams), {c} connections, \
             3 x {seconds} s interleaved"
        );
        let w = write::writes(&writes.pool, &store, c, seconds).await?;
        baseline.push(w.baseline);
        appends_new_stream.push(w.new_stream);
        appends_existing_stream.push(w.existing_stream);
    }
    let ratio = |a: &[Throughput]| -> Vec<f64> {
        a.iter()
            .zip(&baseline)
            .map(|(a, b)| a.per_sec / b.per_sec)
            .collect()
    };
    let ratio_new_stream = ratio(&appends_new_stream);
    let ratio_existing_stream = ratio(&appends_existing_stream);

    let store = EventStore::new(log.pool.clone(), Keyring::new(MasterKey::generate()));
    let n = 10_000 * seconds;
    eprintln!("filling the log with {n} events");
    let fill = pipeline::fill(&store, n, FILL_PER_STREAM).await?;
    let head = sportello_store::read::head(&log.pool).await?;
    eprintln!(
        "relaying {n} events to JetStream stream {}",
        bus.stream_name
    );
    let relay = pipeline::relay(&log.pool, js, bus, n, Duration::from_secs(300), None).await?;
    eprintln!("reading the log (no projection)");
    let log_read = pipeline::read_all(&log.pool).await?;
    eprintln!("projection runner catching up from the log");
    let catch_up_runner = pipeline::runner_catch_up(&log.pool, bus, n, head).await?;
    eprintln!("rebuilding the projection from the log");
    let catch_up_rebuild = pipeline::rebuild_all(&log.pool).await?;
    eprintln!("lag at {LAG_RATE} appends/s, {seconds} s");
    let lag = lag::lag(&store, js, bus, LAG_RATE, phase).await?;

    let last = CONCURRENCY.len() - 1;
    let best_append = appends_new_stream[last]
        .per_sec
        .max(appends_existing_stream[last].per_sec);
    let goals = vec![
        Goal {
            goal: "appends on new streams >= 80% of baseline at 32 connections",
            measured: format!("{:.0}%", ratio_new_stream[last] * 100.0),
            pass: ratio_new_stream[last] >= 0.8,
        },
        Goal {
            goal: "appends on existing streams >= 80% of baseline at 32 connections",
            measured: format!("{:.0}%", ratio_existing_stream[last] * 100.0),
            pass: ratio_existing_stream[last] >= 0.8,
        },
        Goal {
            goal: "relay >= append rate at 32 connections (the better of the two)",
            measured: format!("{:.0} vs {:.0} events/s", relay.per_sec, best_append),
            pass: relay.per_sec >= best_append,
        },
        Goal {
            goal: "catch-up (runner, no bus) >= 30,000 events/s",
            measured: format!("{:.0} events/s", catch_up_runner.per_sec),
            pass: catch_up_runner.per_sec >= 30_000.0,
        },
        Goal {
            goal: "catch-up (rebuild) >= 30,000 events/s",
            measured: format!("{:.0} events/s", catch_up_rebuild.per_sec),
            pass: catch_up_rebuild.per_sec >= 30_000.0,
        },
        Goal {
            goal: "commit-to-projection lag p99 <= 50 ms at 1,000 events/s",
            measured: format!("{:.1} ms", lag.projection_p99_ms),
            pass: lag.projection_p99_ms <= 50.0,
        },
    ];
    Ok(Report {
        date,
        seconds,
        concurrency: CONCURRENCY.to_vec(),
        machine,
        notes: vec![
            "one event per append command, public payload only (no personal part, no idempotency key)",
            "baseline rows carry the same values as the events, into a table with the columns, constraints and indexes of events (no trigger)",
            "every writer uses the same sqlx pool (40 connections); latencies include pool acquire",
            "bench client, PostgreSQL and NATS share the machine",
            "write phases: for each concurrency, baseline and the two append workloads alternate in 1 s slices, --seconds slices each",
            "lag: from the instant append() returned (after commit) to the instant the relay status / runner status showed the event's cursor covered",
        ],
        baseline,
        appends_new_stream,
        appends_existing_stream,
        ratio_new_stream,
        ratio_existing_stream,
        fill,
        relay,
        log_read,
        catch_up_runner,
        catch_up_rebuild,
        lag,
        goals,
    })
}

fn print_report(r: &Report) {
    let m = &r.machine;
    println!(
        "\nsportello bench core — {} — {} s per phase\nmachine: {} cpus, {} MiB, PostgreSQL {}, NATS {}\n",
        r.date,
        r.seconds,
        m.nproc,
        m.mem_total_kib.unwrap_or(0) / 1024,
        m.postgres_version,
        m.nats_version
    );
    println!(
        "{:>5} | {:>22} | {:>22} | {:>6} | {:>22} | {:>6}",
        "conns", "baseline/s (p50/p99)", "new stream/s", "ratio", "existing stream/s", "ratio"
    );
    let cell = |t: &Throughput| format!("{:.0} ({:.1}/{:.1} ms)", t.per_sec, t.p50_ms, t.p99_ms);
    for (i, c) in r.concurrency.iter().enumerate() {
        println!(
            "{:>5} | {:>22} | {:>22} | {:>5.0}% | {:>22} | {:>5.0}%",
            c,
            cell(&r.baseline[i]),
            cell(&r.appends_new_stream[i]),
            r.ratio_new_stream[i] * 100.0,
            cell(&r.appends_existing_stream[i]),
            r.ratio_existing_stream[i] * 100.0
        );
    }
    let rate = |name: &str, x: &Rate| {
        println!(
            "{name:<34} {:>8.0} events/s  ({} events in {:.2} s)",
            x.per_sec, x.events, x.seconds
        );
    };
    println!();
    rate("fill (8 writers, 10 events/append)", &r.fill);
    rate("relay to JetStream", &r.relay);
    rate("log read only (batch 5000)", &r.log_read);
    rate("catch-up: runner, no bus", &r.catch_up_runner);
    rate("catch-up: rebuild, batch 5000", &r.catch_up_rebuild);
    let l = &r.lag;
    println!(
        "\nlag at {:.0} appends/s ({} events, achieved {:.0}/s; append p50 {:.1} ms, p99 {:.1} ms)",
        l.target_per_sec, l.events, l.achieved_per_sec, l.append_p50_ms, l.append_p99_ms
    );
    println!(
        "  commit -> published:  p50 {:>6.1} ms  p99 {:>6.1} ms",
        l.relay_p50_ms, l.relay_p99_ms
    );
    println!(
        "  commit -> projected:  p50 {:>6.1} ms  p99 {:>6.1} ms  max {:.1} ms (sampled every {} ms)",
        l.projection_p50_ms, l.projection_p99_ms, l.projection_max_ms, l.sampling_ms
    );
    println!(
        "  published -> projected: p50 {:>6.1} ms  p99 {:>6.1} ms",
        l.published_to_projected_p50_ms, l.published_to_projected_p99_ms
    );
    let f = &l.foreign_writers;
    println!(
        "  write transactions of other databases open > 10 ms: {} of {} samples (oldest {:.0} ms)",
        f.over_10ms, f.samples, f.max_ms
    );
    println!("\ngoals:");
    for g in &r.goals {
        println!(
            "  [{}] {} — {}",
            if g.pass { "pass" } else { "FAIL" },
            g.goal,
            g.measured
        );
    }
}
