//! Where the machine's CPU went during a phase, from `/proc`: the server,
//! the bench client itself, every PostgreSQL and NATS process (of anyone:
//! the machine is shared), and the rest. It explains a throughput, it is
//! not one.

use serde::Serialize;
use std::time::Instant;

/// CPU ticks so far.
pub struct Snapshot {
    at: Instant,
    machine_busy: u64,
    machine_all: u64,
    server: u64,
    bench: u64,
    postgres: Ticks,
    nats: Ticks,
}

/// CPU ticks of each process of a kind, by pid: a phase counts what each
/// process used during it, so a process that exits (a pool's connections
/// closed) takes only its own ticks with it, not everyone's.
type Ticks = std::collections::HashMap<u32, u64>;

/// Ticks used from `before` to `after` by the processes of `after`
/// (a process started since counts from zero).
fn used(before: &Ticks, after: &Ticks) -> u64 {
    after
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum()
}

/// CPU used between two snapshots, in cores (1.0 = one core all the time).
#[derive(Clone, Debug, Serialize)]
pub struct Use {
    /// Cores of the machine.
    pub cores: usize,
    /// Busy share of the whole machine, percent.
    pub machine_busy_pct: f64,
    /// The server process.
    pub server_cores: f64,
    /// The bench client (this process).
    pub bench_cores: f64,
    /// Every `postgres` process.
    pub postgres_cores: f64,
    /// Every `nats-server` process.
    pub nats_cores: f64,
    /// Everything else that ran.
    pub other_cores: f64,
}

/// utime + stime of a process, ticks.
fn process_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn ticks_of(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| process_ticks(&s))
        .unwrap_or(0)
}

/// The ticks of every process with one of these names, by pid, one map
/// per name.
fn ticks_named(names: &[&str]) -> Vec<Ticks> {
    let mut out = vec![Ticks::new(); names.len()];
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let pid = entry.file_name();
        let Some(pid) = pid.to_str().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(comm) = std::fs::read_to_string(format!("/proc/{pid}/comm")) else {
            continue;
        };
        if let Some(i) = names.iter().position(|n| *n == comm.trim()) {
            out[i].insert(pid, ticks_of(&pid.to_string()));
        }
    }
    out
}

fn machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().next() else {
        return (0, 0);
    };
    let v: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|x| x.parse().ok())
        .collect();
    let get = |i: usize| v.get(i).copied().unwrap_or(0);
    // user nice system idle iowait irq softirq steal
    let busy = get(0) + get(1) + get(2) + get(5) + get(6) + get(7);
    (busy, busy + get(3) + get(4))
}

/// Now, with `server` the server's pid.
pub fn snapshot(server: u32) -> Snapshot {
    let (machine_busy, machine_all) = machine();
    let mut named = ticks_named(&["postgres", "nats-server"]).into_iter();
    Snapshot {
        at: Instant::now(),
        machine_busy,
        machine_all,
        server: ticks_of(&server.to_string()),
        bench: ticks_of("self"),
        postgres: named.next().unwrap_or_default(),
        nats: named.next().unwrap_or_default(),
    }
}

/// Ticks per second of the kernel's accounting.
fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

impl Snapshot {
    /// The CPU used from `self` to `later`.
    pub fn until(&self, later: &Snapshot) -> Use {
        let seconds = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let hz = clock_ticks();
        let cores = |a: u64, b: u64| b.saturating_sub(a) as f64 / hz / seconds;
        let all = later.machine_all.saturating_sub(self.machine_all).max(1) as f64;
        let busy = later.machine_busy.saturating_sub(self.machine_busy) as f64;
        let n = std::thread::available_parallelism().map_or(1, |n| n.get());
        let machine_cores = busy / hz / seconds;
        let server = cores(self.server, later.server);
        let bench = cores(self.bench, later.bench);
        let postgres = cores(0, used(&self.postgres, &later.postgres));
        let nats = cores(0, used(&self.nats, &later.nats));
        Use {
            cores: n,
            machine_busy_pct: busy / all * 100.0,
            server_cores: server,
            bench_cores: bench,
            postgres_cores: postgres,
            nats_cores: nats,
            other_cores: (machine_cores - server - bench - postgres - nats).max(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_that_exits_takes_only_its_own_ticks() {
        let before = Ticks::from([(1, 100), (2, 5_000), (3, 40)]);
        // 2 exited during the phase, 4 started, 1 and 3 worked.
        let after = Ticks::from([(1, 130), (3, 45), (4, 20)]);
        assert_eq!(used(&before, &after), 30 + 5 + 20);
    }
}
