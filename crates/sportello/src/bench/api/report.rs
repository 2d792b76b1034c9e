//! The figures of `bench api`, its goals, and the table it prints.

use super::super::pipeline::Rate;
use super::super::write::Throughput;
use super::super::{Goal, Machine};
use super::dataset::{Figures, Rebuilt};
use super::phases::Mix;
use super::reads::route as read;
use super::routes::{Calls, RouteFigures};
use super::server::Memory;
use super::{cpu, pgstats};
use serde::Serialize;

/// Client connections (and tasks) of the command phase and the baseline.
pub const COMMAND_CONNECTIONS: usize = 32;
/// Client connections (and tasks) of the read phase.
pub const READ_CONNECTIONS: usize = 8;
/// Largest share of failed requests before the run fails.
pub const MAX_ERROR_RATE: f64 = 0.01;

/// The baseline, before and after the commands.
#[derive(Clone, Debug, Serialize)]
pub struct Baseline {
    /// Before the commands, the server idle.
    pub before: Throughput,
    /// Where the CPU went meanwhile.
    pub before_cpu: cpu::Use,
    /// After the commands (once the server caught up), the server idle.
    pub after: Throughput,
    /// Where the CPU went meanwhile.
    pub after_cpu: cpu::Use,
    /// Both together: inserts / seconds.
    pub per_sec: f64,
}

/// The command phase.
#[derive(Clone, Debug, Serialize)]
pub struct Commands {
    /// Client connections.
    pub connections: usize,
    /// People taken in charge.
    pub people: u64,
    /// The calls.
    #[serde(flatten)]
    pub calls: Calls,
    /// Commands/s over the baseline's inserts/s (both runs together).
    pub ratio: f64,
    /// The same over the better and the worse baseline run.
    pub ratio_range: [f64; 2],
    /// Time the server's read models took to apply the commands' events
    /// after the last command, seconds.
    pub caught_up_after_s: f64,
    /// Where the CPU went.
    pub cpu: cpu::Use,
    /// What the database did, per command.
    pub database: pgstats::Work,
}

/// Each route alone from one connection: the cost of a request with
/// nobody else asking.
#[derive(Clone, Debug, Serialize)]
pub struct Solo {
    /// Seconds of the command flow, and of each read route.
    pub seconds_each: u64,
    /// The command flow from one connection.
    pub commands: Calls,
    /// Each read route from one connection.
    pub reads: Vec<RouteFigures>,
}

/// The idle server.
#[derive(Clone, Debug, Serialize)]
pub struct Idle {
    /// Where the CPU went.
    pub cpu: cpu::Use,
    /// What the database did.
    pub database: pgstats::Idle,
}

/// The read phase.
#[derive(Clone, Debug, Serialize)]
pub struct Reads {
    /// Client connections.
    pub connections: usize,
    /// The calls.
    #[serde(flatten)]
    pub calls: Calls,
    /// Where the CPU went.
    pub cpu: cpu::Use,
    /// What the database did, per request.
    pub database: pgstats::Work,
}

/// Everything `bench api` measured.
/// The mixed phase: commands and reads together at a steady load.
#[derive(Clone, Debug, Serialize)]
pub struct Mixed {
    /// The load asked for.
    pub load: Mix,
    /// What was answered, per route.
    #[serde(flatten)]
    pub calls: Calls,
    /// Where the CPU went.
    pub cpu: cpu::Use,
    /// What the database did per request.
    pub database: pgstats::Work,
}

/// The command mix with the relay and the read models off: what the
/// command path alone (HTTP, access, load, decide, append) can do.
#[derive(Clone, Debug, Serialize)]
pub struct Floor {
    /// Client connections.
    pub connections: usize,
    /// What was answered, per route.
    #[serde(flatten)]
    pub calls: Calls,
    /// Commands a second over the baseline's inserts a second.
    pub ratio: f64,
    /// Where the CPU went.
    pub cpu: cpu::Use,
    /// What the database did per command.
    pub database: pgstats::Work,
}

#[derive(Serialize)]
pub struct Report {
    /// When.
    pub date: String,
    /// Seconds per measured phase.
    pub seconds: u64,
    /// The machine.
    pub machine: Machine,
    /// How to read the figures.
    pub notes: Vec<&'static str>,
    /// The dataset.
    pub dataset: Figures,
    /// Waiting for log readers to see the whole dataset, seconds.
    pub visible_after_s: f64,
    /// Each read model rebuilt from the log.
    pub rebuild: Vec<Rebuilt>,
    /// All rebuilds together (events applied, over their time).
    pub rebuild_total: Rate,
    /// `VACUUM (ANALYZE)` of the database after the rebuilds, seconds.
    pub vacuum_analyze_s: f64,
    /// The log relayed to a new JetStream stream before the server starts.
    pub relay: Rate,
    /// Server start until `/readyz` said ready, and then until its relay
    /// and runners were idle, seconds.
    pub server_ready_s: f64,
    /// See `server_ready_s`.
    pub server_caught_up_s: f64,
    /// The server idle for 10 s after it caught up.
    pub idle: Idle,
    /// Raw inserts at 32 connections.
    pub baseline: Baseline,
    /// The command mix.
    pub commands: Commands,
    /// The reads as fast as they go.
    pub reads: Reads,
    /// Commands and reads at a steady load.
    pub mix: Mixed,
    /// Each route alone.
    pub solo: Solo,
    /// The command path alone.
    pub floor: Floor,
    /// The server's memory.
    pub server_memory: Memory,
    /// The goals.
    pub goals: Vec<Goal>,
}

/// Goal: server peak RSS, bytes (200 MB).
const RSS_GOAL_BYTES: f64 = 200e6;

/// The goals, judged.
pub fn goals(commands: &Commands, mix: &Mixed, memory: &Memory) -> Vec<Goal> {
    let p99 = |route: &str| mix.calls.route(route).map(|r| r.p99_ms);
    let read_goal = |goal, route, limit: f64| match p99(route) {
        Some(ms) => Goal {
            goal,
            measured: format!("{ms:.1} ms"),
            pass: ms <= limit,
        },
        None => Goal {
            goal,
            measured: "no successful request".into(),
            pass: false,
        },
    };
    let peak_bytes = memory.peak_mib * 1024.0 * 1024.0;
    vec![
        Goal {
            goal: "commands >= 50% of the baseline at 32 connections",
            measured: format!(
                "{:.0}% ({:.0} commands/s)",
                commands.ratio * 100.0,
                commands.calls.per_sec
            ),
            pass: commands.ratio >= 0.5,
        },
        read_goal("card read p99 <= 10 ms (mixed load)", read::CARD, 10.0),
        read_goal("inbox p99 <= 20 ms (mixed load)", read::INBOX, 20.0),
        read_goal(
            "bottleneck report p99 <= 100 ms (mixed load)",
            read::BOTTLENECKS,
            100.0,
        ),
        Goal {
            goal: "server RSS <= 200 MB (peak, VmHWM)",
            measured: format!("{:.0} MB ({:.1} MiB)", peak_bytes / 1e6, memory.peak_mib),
            pass: peak_bytes <= RSS_GOAL_BYTES,
        },
    ]
}

fn print_calls(calls: &Calls) {
    println!(
        "  {:<40} {:>8} {:>6} {:>9} {:>8} {:>8} {:>8} {:>8}",
        "route", "ok", "errors", "per s", "p50 ms", "p90 ms", "p99 ms", "max ms"
    );
    for r in calls.routes.iter().chain([&calls.total]) {
        println!(
            "  {:<40} {:>8} {:>6} {:>9.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1}",
            r.route, r.ok, r.errors, r.per_sec, r.p50_ms, r.p90_ms, r.p99_ms, r.max_ms
        );
    }
    for s in &calls.error_samples {
        println!("  error: {s}");
    }
}

fn print_cpu(c: &cpu::Use) {
    println!(
        "  cpu: machine {:.0}% busy ({} cores); server {:.2}, postgres {:.2}, nats {:.2}, bench client {:.2}, other {:.2} cores",
        c.machine_busy_pct,
        c.cores,
        c.server_cores,
        c.postgres_cores,
        c.nats_cores,
        c.bench_cores,
        c.other_cores
    );
}

/// CPU milliseconds per request of the server and of PostgreSQL, and
/// the database's work per request.
fn print_per_request(calls: &Calls, c: &cpu::Use, w: &pgstats::Work) {
    let per = |cores: f64| cores * calls.seconds * 1000.0 / calls.ok.max(1) as f64;
    println!(
        "  per request: server {:.2} ms CPU, postgres {:.2} ms CPU (all its processes); {:.1} commits, {:.1} rows written, {:.0} rows scanned, {:.0} rows fetched, {:.0} buffer hits, {:.1} buffer reads",
        per(c.server_cores),
        per(c.postgres_cores),
        w.commits_per_request,
        w.rows_written_per_request,
        w.rows_scanned_per_request,
        w.rows_fetched_per_request,
        w.blocks_hit_per_request,
        w.blocks_read_per_request
    );
    let tables: Vec<String> = w
        .tables
        .iter()
        .take(6)
        .map(|t| {
            format!(
                "{} ({} seq scans/{} rows, {} idx scans/{} rows, {} writes)",
                t.table, t.seq_scans, t.seq_rows, t.idx_scans, t.idx_rows, t.rows_written
            )
        })
        .collect();
    println!("  busiest tables: {}", tables.join("; "));
}

/// Print the table.
pub fn print(r: &Report) {
    let m = &r.machine;
    println!(
        "\nsportello bench api — {} — {} s per phase\nmachine: {} cpus, {} MiB, PostgreSQL {}, NATS {}\n",
        r.date,
        r.seconds,
        m.nproc,
        m.mem_total_kib.unwrap_or(0) / 1024,
        m.postgres_version,
        m.nats_version
    );
    let d = &r.dataset;
    println!(
        "dataset: {} people, {} organisations, {} streams ({} referrals), {} events ({:.1} per person)",
        d.people, d.organizations, d.streams, d.referrals, d.events, d.events_per_person
    );
    println!(
        "  generated and written by {} writers in {:.1} s ({:.0} events/s); visible to log readers {:.1} s later",
        d.writers, d.write.seconds, d.write.per_sec, r.visible_after_s
    );
    for b in &r.rebuild {
        println!(
            "  rebuild {:<16} {:>9} events {:>7.1} s {:>8.0} events/s",
            b.projection, b.rate.events, b.rate.seconds, b.rate.per_sec
        );
    }
    println!(
        "  rebuild, all          {:>9} events {:>7.1} s {:>8.0} events/s",
        r.rebuild_total.events, r.rebuild_total.seconds, r.rebuild_total.per_sec
    );
    println!("  VACUUM (ANALYZE)      {:.1} s", r.vacuum_analyze_s);
    println!(
        "  relay to JetStream    {:>9} events {:>7.1} s {:>8.0} events/s",
        r.relay.events, r.relay.seconds, r.relay.per_sec
    );
    println!(
        "server: ready in {:.1} s, relay and runners idle {:.1} s later; idle: {:.0} database commits/s",
        r.server_ready_s, r.server_caught_up_s, r.idle.database.commits_per_sec
    );
    print_cpu(&r.idle.cpu);
    let b = &r.baseline;
    println!(
        "\nbaseline, raw inserts at {COMMAND_CONNECTIONS} connections: {:.0}/s (before {:.0}/s p50 {:.1} ms p99 {:.1} ms; after {:.0}/s p50 {:.1} ms p99 {:.1} ms)",
        b.per_sec,
        b.before.per_sec,
        b.before.p50_ms,
        b.before.p99_ms,
        b.after.per_sec,
        b.after.p50_ms,
        b.after.p99_ms
    );
    print_cpu(&b.before_cpu);
    print_cpu(&b.after_cpu);
    let c = &r.commands;
    println!(
        "\ncommands at {} connections: {:.0} commands/s = {:.0}% of the baseline ({:.0}%–{:.0}%), {} people, {} errors; read models caught up {:.2} s after the last",
        c.connections,
        c.calls.per_sec,
        c.ratio * 100.0,
        c.ratio_range[0] * 100.0,
        c.ratio_range[1] * 100.0,
        c.people,
        c.calls.errors,
        c.caught_up_after_s
    );
    print_calls(&c.calls);
    print_cpu(&c.cpu);
    print_per_request(&c.calls, &c.cpu, &c.database);
    let rd = &r.reads;
    println!(
        "\nreads at {} connections, as fast as they go (no write load): {:.0} requests/s, {} errors",
        rd.connections, rd.calls.per_sec, rd.calls.errors
    );
    print_calls(&rd.calls);
    print_cpu(&rd.cpu);
    print_per_request(&rd.calls, &rd.cpu, &rd.database);
    let mx = &r.mix;
    let asked = mx.load.rates();
    println!(
        "\nmixed load at a steady rate (asked: {:.0} commands, {:.0} card and inbox reads, {:.0} reports a second): {:.0} requests/s, {} errors",
        asked[0], asked[1], asked[2], mx.calls.per_sec, mx.calls.errors
    );
    print_calls(&mx.calls);
    print_cpu(&mx.cpu);
    print_per_request(&mx.calls, &mx.cpu, &mx.database);
    println!(
        "\neach route alone from one connection ({} s each; the commands as one flow):",
        r.solo.seconds_each
    );
    let mut solo = r.solo.commands.clone();
    solo.routes.extend(r.solo.reads.iter().cloned());
    solo.total = r.solo.commands.total.clone();
    solo.total.route = "all commands".into();
    print_calls(&solo);
    let fl = &r.floor;
    println!(
        "\nthe command path alone (relay and read models off) at {} connections: {:.0} commands/s = {:.0}% of the baseline, {} errors",
        fl.connections,
        fl.calls.per_sec,
        fl.ratio * 100.0,
        fl.calls.errors
    );
    print_calls(&fl.calls);
    print_cpu(&fl.cpu);
    print_per_request(&fl.calls, &fl.cpu, &fl.database);
    let mem = &r.server_memory;
    println!(
        "\nserver RSS: peak {:.1} MiB (VmHWM); sampled max {:.1} MiB — start-up {:.1}, idle {:.1}, commands {:.1}, reads {:.1} ({} samples)",
        mem.peak_mib,
        mem.max_sampled_mib,
        mem.startup_mib,
        mem.idle_mib,
        mem.commands_mib,
        mem.reads_mib,
        mem.samples
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
