//! `sportello bench api`: the whole server over HTTP on a network that has
//! been running for six months (see docs/PERFORMANCE.md).
//!
//! In one run, on a fresh database made on the server of
//! `settings.database_url` and a JetStream stream of its own on
//! `settings.nats_url` (both removed at the end, also on error):
//!
//! 1. the dataset: the demo network's organisations and `--people`
//!    fictitious people from [`crate::simulate`] over the last 183 days,
//!    written by 16 writers; every read model rebuilt from the log; the
//!    database vacuumed and analysed; the log relayed to the stream;
//! 2. the server: this binary's `serve` as a child process on that
//!    database and stream, its resident memory sampled from `/proc`;
//! 3. the baseline: raw single-row inserts at 32 connections, the server
//!    idle, before and after the commands;
//! 4. the commands: 32 client connections working fresh people through
//!    the desk and the providers ([`flow`]), per-route latency;
//! 5. the reads, with no write load: 8 connections reading cards, inboxes
//!    and the bottleneck report ([`reads`]) as fast as they go, per-route
//!    latency;
//! 6. the mixed load: commands and reads together at a steady rate
//!    ([`phases::Mix`]), per-route latency (the read goals are judged here);
//! 7. each route alone from one connection;
//! 8. the command path alone: the server restarted without relay and
//!    projection runners, the command mix at 32 connections;
//!
//! with, for each phase, where the machine's CPU went ([`cpu`]) and what
//! the database did per request ([`pgstats`]); and the goals judged. More
//! than 1% failed requests in a phase fails the run (after the report is
//! printed and written). It never touches a database or stream it did not
//! make; it drops its database at the end unless `--keep-database`.

mod cpu;
mod dataset;
mod flow;
mod pgstats;
mod phases;
mod reads;
mod report;
mod routes;
mod server;

use super::db::{self, BenchDb};
use super::pipeline::Rate;
use crate::demo::{DEMO_COORDINATOR, DEMO_DESK, DEMO_NETWORK, DEMO_OPERATOR};
use anyhow::Context;
use async_nats::jetstream;
use flow::{Actors, Catalog};
use phases::Probe;
use report::{
    Baseline, COMMAND_CONNECTIONS, Commands, MAX_ERROR_RATE, READ_CONNECTIONS, Reads, Report,
};
use server::{Launch, Memory, Server, mib};
use sportello_domain::{AccountId, NetworkId, OrganizationId};
use sportello_http::Settings;
use sportello_http::access::role;
use sportello_http::auth::{create_account, issue_token};
use sportello_store::bus::BusConfig;
use sportello_store::{EventStore, Keyring, MasterKey};
use sqlx::postgres::PgPoolOptions;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// What to run.
pub struct Options {
    /// Write the figures as JSON here.
    pub out: Option<PathBuf>,
    /// Seconds per measured phase.
    pub seconds: u64,
    /// People in the dataset.
    pub people: u64,
    /// Keep the bench database at the end.
    pub keep_database: bool,
}

/// Pool of the bench's own work on its database (the writers and the
/// rebuilds); the baseline has a pool of its own, open only while it runs.
const POOL: u32 = dataset::WRITERS as u32 + 4;

/// How long the idle server is watched after it caught up (and its
/// statistics settled).
const IDLE: Duration = Duration::from_secs(10);

/// Run it.
pub async fn run(settings: &Settings, o: Options) -> anyhow::Result<()> {
    anyhow::ensure!(o.seconds >= 1, "--seconds must be at least 1");
    anyhow::ensure!(o.people >= 1, "--people must be at least 1");
    let nats = async_nats::connect(&settings.nats_url)
        .await
        .with_context(|| format!("connecting to NATS at {}", settings.nats_url))?;
    let bus = sportello_testkit::unique_bus();
    let mut bench_db = BenchDb::create(&settings.database_url, POOL).await?;
    eprintln!(
        "bench database {}, stream {}",
        bench_db.name, bus.stream_name
    );
    let report = measure(settings, &mut bench_db, &nats, &bus, &o).await;
    if o.keep_database {
        eprintln!("kept the bench database {}", bench_db.name);
    } else {
        bench_db.drop_db().await;
    }
    sportello_testkit::delete_stream(&settings.nats_url, &bus).await;
    let report = report?;
    report::print(&report);
    if let Some(path) = &o.out {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
        println!("\nfigures written to {}", path.display());
    }
    for (phase, calls) in [
        ("commands", &report.commands.calls),
        ("reads", &report.reads.calls),
        ("mixed load", &report.mix.calls),
        ("command path alone", &report.floor.calls),
    ] {
        anyhow::ensure!(
            calls.error_rate <= MAX_ERROR_RATE,
            "{phase}: {} of {} requests failed ({:.2}%, more than {:.0}%)",
            calls.errors,
            calls.ok + calls.errors,
            calls.error_rate * 100.0,
            MAX_ERROR_RATE * 100.0
        );
    }
    Ok(())
}

/// The bench's accounts on its database, and tokens for them.
async fn accounts(
    db: &BenchDb,
    catalog: &Catalog,
    net: &crate::simulate::Network,
) -> anyhow::Result<Actors> {
    let network = NetworkId(DEMO_NETWORK);
    let desk = OrganizationId(DEMO_DESK);
    let pool = &db.pool;
    let valid = time::Duration::days(1);
    let token = async |id, org, role, label: &str| {
        create_account(pool, AccountId(id), network, org, role, label).await?;
        Ok::<_, anyhow::Error>(issue_token(pool, AccountId(id), valid).await?)
    };
    let operator = token(
        DEMO_OPERATOR,
        desk,
        role::DESK_OPERATOR,
        "Bench desk operator",
    )
    .await?;
    let coordinator = token(
        DEMO_COORDINATOR,
        desk,
        role::COORDINATOR,
        "Bench coordinator",
    )
    .await?;
    let mut partners = HashMap::new();
    let active = catalog.providers();
    for p in &net.providers {
        let org = p.organization.id;
        if !active.contains(&org.0) {
            continue;
        }
        let t = token(p.partner.0, org, role::PARTNER, "Bench partner").await?;
        partners.insert(org.0, t);
    }
    Ok(Actors {
        desk: operator,
        coordinator,
        partners,
    })
}

async fn measure(
    settings: &Settings,
    db: &mut BenchDb,
    nats: &async_nats::Client,
    bus: &BusConfig,
    o: &Options,
) -> anyhow::Result<Report> {
    let machine = super::machine(&db.pool, nats).await?;
    let date =
        time::OffsetDateTime::now_utc().format(&time::format_description::well_known::Rfc3339)?;
    let js = jetstream::new(nats.clone());
    let master = MasterKey::generate();
    let keyring = Keyring::new(master.clone());
    keyring.verify_master_key(&db.pool).await?;
    let store = EventStore::new(db.pool.clone(), keyring);

    eprintln!(
        "writing the dataset: {} people over 183 days, {} writers",
        o.people,
        dataset::WRITERS
    );
    let data = dataset::write(&store, o.people, settings.working_calendar()).await?;
    let events = data.figures.events;
    eprintln!(
        "  {} people, {} streams, {} events in {:.1} s",
        data.figures.people, data.figures.streams, events, data.figures.write.seconds
    );
    let visible = dataset::visible(&db.pool, events).await?;
    eprintln!("rebuilding every read model from the log");
    let rebuild = dataset::rebuild_all(&db.pool).await?;
    let rebuild_total = {
        let events: u64 = rebuild.iter().map(|r| r.rate.events).sum();
        let seconds: f64 = rebuild.iter().map(|r| r.rate.seconds).sum();
        Rate {
            events,
            seconds,
            per_sec: events as f64 / seconds,
        }
    };
    eprintln!("VACUUM (ANALYZE) of the bench database");
    let vacuum = dataset::vacuum_analyze(&db.pool).await?;
    eprintln!("relaying the log to JetStream stream {}", bus.stream_name);
    let relay = dataset::relay(&db.pool, &js, bus, events).await?;

    let catalog = Arc::new(Catalog::of(&data.network));
    anyhow::ensure!(
        catalog.len() >= 2,
        "the network answers fewer than two needs"
    );
    let actors = Arc::new(accounts(db, &catalog, &data.network).await?);
    sqlx::raw_sql(db::BASELINE_DDL).execute(&db.pool).await?;
    // From here on the bench needs its database only for statistics: a
    // small pool, so that the measured phases hold no more connections
    // than the server's and the baseline's.
    let db_url = sportello_store::db::url_with_database(&settings.database_url, &db.name);
    let small = PgPoolOptions::new()
        .max_connections(2)
        .connect(&db_url)
        .await?;
    std::mem::replace(&mut db.pool, small).close().await;

    eprintln!("starting the server");
    let started = Instant::now();
    let launch = |workers| Launch {
        database_url: db_url.clone(),
        nats_url: &settings.nats_url,
        bus,
        master_key: &master,
        workers,
    };
    let mut server = Server::start(&launch(true))?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(2 * COMMAND_CONNECTIONS)
        .timeout(Duration::from_secs(60))
        .tcp_nodelay(true)
        .build()?;
    server.ready(&http, Duration::from_secs(120)).await?;
    let server_ready = started.elapsed();
    let caught_up = server.caught_up(&http, Duration::from_secs(300)).await?;
    let startup_kib = server.rss.phase();

    eprintln!("the server idle, {} s", (pgstats::SETTLE + IDLE).as_secs());
    tokio::time::sleep(pgstats::SETTLE).await;
    let (db0, cpu0) = (
        pgstats::snapshot(&db.pool, &db.name).await?,
        cpu::snapshot(server.pid()),
    );
    tokio::time::sleep(IDLE).await;
    let idle = report::Idle {
        cpu: cpu0.until(&cpu::snapshot(server.pid())),
        database: db0.idle_rate(&pgstats::snapshot(&db.pool, &db.name).await?),
    };
    let probe = Probe {
        server: &server,
        pool: &db.pool,
        db_name: &db.name,
        idle: idle.database,
        http: &http,
        phase: Duration::from_secs(o.seconds),
    };

    eprintln!(
        "baseline: raw inserts at {COMMAND_CONNECTIONS} connections, {} s",
        o.seconds
    );
    let (before, before_cpu) = probe.baseline(&db_url, COMMAND_CONNECTIONS).await?;
    let mut idle_kib = server.rss.phase();
    eprintln!(
        "commands at {COMMAND_CONNECTIONS} connections, {} s",
        o.seconds
    );
    let c = probe
        .commands(COMMAND_CONNECTIONS, &actors, &catalog)
        .await?;
    let commands_kib = server.rss.phase();
    eprintln!("baseline again, {} s", o.seconds);
    let (after, after_cpu) = probe.baseline(&db_url, COMMAND_CONNECTIONS).await?;
    idle_kib = idle_kib.max(server.rss.phase());
    let baseline = Baseline {
        per_sec: (before.commits + after.commits) as f64 / (before.seconds + after.seconds),
        before,
        before_cpu,
        after,
        after_cpu,
    };
    let ratio = |b: f64| c.calls.per_sec / b;
    let commands = Commands {
        connections: COMMAND_CONNECTIONS,
        people: c
            .calls
            .route(flow::route::TAKE_IN_CHARGE)
            .map_or(0, |r| r.ok),
        ratio: ratio(baseline.per_sec),
        ratio_range: [
            ratio(baseline.before.per_sec.max(baseline.after.per_sec)),
            ratio(baseline.before.per_sec.min(baseline.after.per_sec)),
        ],
        caught_up_after_s: c.caught_up_after.as_secs_f64(),
        cpu: c.cpu,
        database: c.database,
        calls: c.calls,
    };

    eprintln!("reads at {READ_CONNECTIONS} connections, {} s", o.seconds);
    let targets = Arc::new(reads::Targets {
        persons: data.persons.clone(),
        providers: actors.partners.keys().copied().collect(),
        report_from: (time::OffsetDateTime::now_utc() - time::Duration::days(30))
            .date()
            .to_string(),
    });
    let r = probe.reads(READ_CONNECTIONS, &actors, &targets).await?;
    let reads = Reads {
        connections: READ_CONNECTIONS,
        cpu: r.cpu,
        database: r.database,
        calls: r.calls,
    };
    let mix_load = phases::Mix::STEADY;
    let [c_rate, r_rate, b_rate] = mix_load.rates();
    eprintln!(
        "mixed load: {c_rate:.0} commands, {r_rate:.0} card and inbox reads, {b_rate:.0} report a second, {} s",
        o.seconds
    );
    let m = probe.mix(&mix_load, &actors, &catalog, &targets).await?;
    let mix = report::Mixed {
        load: mix_load,
        calls: m.calls,
        cpu: m.cpu,
        database: m.database,
    };
    let reads_kib = server.rss.phase();
    let each = (o.seconds / 4).max(2);
    eprintln!("each route alone from one connection, {each} s each");
    let (solo_commands, solo_reads) = probe
        .solo(&actors, &catalog, &targets, Duration::from_secs(each))
        .await?;
    let solo = report::Solo {
        seconds_each: each,
        commands: solo_commands,
        reads: solo_reads,
    };

    let peak_kib = server::status_kib(server.pid(), "VmHWM:").unwrap_or(0);
    let server_memory = Memory {
        peak_mib: mib(peak_kib),
        max_sampled_mib: mib(server.rss.max.load(Ordering::Relaxed)),
        startup_mib: mib(startup_kib),
        idle_mib: mib(idle_kib),
        commands_mib: mib(commands_kib),
        reads_mib: mib(reads_kib),
        samples: server.rss.samples.load(Ordering::Relaxed),
    };
    server.stop().await?;

    eprintln!(
        "the command path alone: the server again with no relay and no projection runner, commands at {COMMAND_CONNECTIONS} connections, {} s",
        o.seconds
    );
    let mut bare = Server::start(&launch(false))?;
    bare.ready(&http, Duration::from_secs(120)).await?;
    let f = Probe {
        server: &bare,
        pool: &db.pool,
        db_name: &db.name,
        idle: idle.database,
        http: &http,
        phase: Duration::from_secs(o.seconds),
    }
    .commands(COMMAND_CONNECTIONS, &actors, &catalog)
    .await?;
    bare.stop().await?;
    let floor = report::Floor {
        connections: COMMAND_CONNECTIONS,
        ratio: f.calls.per_sec / baseline.per_sec,
        calls: f.calls,
        cpu: f.cpu,
        database: f.database,
    };

    let goals = report::goals(&commands, &mix, &server_memory);
    Ok(Report {
        date,
        seconds: o.seconds,
        machine,
        notes: vec![
            "the server is this binary's `serve`, a child process with a pool of 40 connections, relay and projection runners on; its RSS is its own",
            "bench client, server, PostgreSQL and NATS share the machine's cores, and so do other users of the machine ('other' in the CPU lines)",
            "latency: from sending a request to having read the whole answer, on kept-alive connections of one client; a phase's rate is its successful requests over its wall time",
            "commands: each client task works one fresh person at a time, one request after the other (no think time)",
            "reads: no write load, 8 connections as fast as they go (saturation: latency there is mostly queueing); the read models had caught up with the commands before",
            "mixed load: commands, card and inbox reads and bottleneck reports together, each client on a fixed schedule (100, 200 and 1 a second: tens of times a busy comune network's load), about half of two cores; the read goals are judged here",
            "command path alone: the same command mix at 32 connections against the server restarted with no relay and no projection runner (events appended, nothing projected): what HTTP, access, load, decide and append cost without the read models; its ratio is over the same baseline",
            "baseline: autocommit single-row inserts of an event-like row into a copy of the events table (bench core's), on the same database, server idle; once before and once after the commands",
            "solo: each route from one connection after the phases, the server otherwise idle (the commands as one flow, so their routes in the flow's proportions)",
            "after loading and rebuilding, the bench database is vacuumed and analysed once (VACUUM (ANALYZE)), as autovacuum would have done on a running network; nothing is analysed again during the run",
            "database work per request: pg_stat_database of the bench database from the phase's start until the server caught up, less the idle server's rate (the relay's polls) over as long",
        ],
        dataset: data.figures,
        visible_after_s: visible.as_secs_f64(),
        rebuild,
        rebuild_total,
        vacuum_analyze_s: vacuum.as_secs_f64(),
        relay,
        server_ready_s: server_ready.as_secs_f64(),
        server_caught_up_s: caught_up.as_secs_f64(),
        idle,
        baseline,
        commands,
        reads,
        mix,
        solo,
        floor,
        server_memory,
        goals,
    })
}
