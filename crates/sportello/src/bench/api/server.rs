//! The server under test: this binary's `serve`, run as a child process so
//! that its memory is its own, on the bench database and stream; its
//! resident memory sampled from `/proc`; stopped with SIGTERM at the end
//! (and killed if the bench fails before that, when it is dropped).

use anyhow::Context;
use serde::Serialize;
use serde_json::Value;
use sportello_store::MasterKey;
use sportello_store::bus::BusConfig;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How often the resident memory is sampled.
pub const RSS_EVERY: Duration = Duration::from_millis(100);

/// The server's database pool (`SPORTELLO_DB_MAX_CONNECTIONS`).
pub const DB_MAX_CONNECTIONS: u32 = 40;

/// A running server.
pub struct Server {
    child: Child,
    /// Its base URL, `http://127.0.0.1:<port>`.
    pub base: String,
    /// Where its output goes.
    pub log: PathBuf,
    /// Its resident memory as sampled.
    pub rss: Arc<Rss>,
    sampling: CancellationToken,
    workers: bool,
}

/// Resident memory of the server, KiB, sampled every [`RSS_EVERY`].
#[derive(Debug, Default)]
pub struct Rss {
    /// The largest sample since the start.
    pub max: AtomicU64,
    /// The largest sample since the last [`Rss::phase`].
    phase_max: AtomicU64,
    /// Samples taken.
    pub samples: AtomicU64,
}

impl Rss {
    /// The largest sample since the previous call (or the start), and start
    /// a new phase.
    pub fn phase(&self) -> u64 {
        self.phase_max.swap(0, Ordering::Relaxed)
    }
}

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
pub fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How to start the server.
pub struct Launch<'a> {
    /// The bench database's URL.
    pub database_url: String,
    /// NATS.
    pub nats_url: &'a str,
    /// The bench's stream and subjects.
    pub bus: &'a BusConfig,
    /// The key the dataset was written with.
    pub master_key: &'a MasterKey,
    /// Run the relay and the projection runners (off only to measure the
    /// command path alone).
    pub workers: bool,
}

impl Server {
    /// Start `sportello serve` on a free port and sample its memory.
    pub fn start(l: &Launch<'_>) -> anyhow::Result<Server> {
        let exe = std::env::current_exe().context("finding this binary")?;
        let port = sportello_testkit::free_port();
        let log = std::env::temp_dir().join(format!(
            "sportello-bench-api-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = std::fs::File::create(&log)
            .with_context(|| format!("creating the server log {}", log.display()))?;
        let child = Command::new(exe)
            .arg("serve")
            .env("DATABASE_URL", &l.database_url)
            .env("NATS_URL", l.nats_url)
            .env("SPORTELLO_LISTEN", format!("127.0.0.1:{port}"))
            .env("SPORTELLO_STREAM_NAME", &l.bus.stream_name)
            .env("SPORTELLO_SUBJECT_PREFIX", &l.bus.subject_prefix)
            .env("SPORTELLO_MASTER_KEY", l.master_key.to_base64())
            .env(
                "SPORTELLO_DB_MAX_CONNECTIONS",
                DB_MAX_CONNECTIONS.to_string(),
            )
            .env("SPORTELLO_RUN_WORKERS", l.workers.to_string())
            // The benchmark measures the server, not its per-account limit.
            .env("SPORTELLO_API_REQUESTS_PER_SECOND", "0")
            .env("RUST_LOG", "warn")
            .env_remove("SPORTELLO_LOG_FORMAT")
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .context("starting the server")?;
        let rss = Arc::new(Rss::default());
        let sampling = CancellationToken::new();
        tokio::spawn(sample(child.id(), rss.clone(), sampling.clone()));
        Ok(Server {
            workers: l.workers,
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
            rss,
            sampling,
        })
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until `/readyz` answers 200.
    pub async fn ready(&mut self, http: &reqwest::Client, limit: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::bail!(
                    "the server exited ({status}) before it was ready; see {}",
                    self.log.display()
                );
            }
            let ok = http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ok {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server was not ready after {limit:?}; see {}",
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Wait until the relay and every projection have nothing left to do
    /// and every runner follows the bus, as `/readyz` tells; how long it
    /// took. At once when the server runs no workers.
    pub async fn caught_up(
        &self,
        http: &reqwest::Client,
        limit: Duration,
    ) -> anyhow::Result<Duration> {
        let start = Instant::now();
        if !self.workers {
            return Ok(Duration::ZERO);
        }
        let mut last = Value::Null;
        while start.elapsed() < limit {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await
                && let Ok(v) = r.json::<Value>().await
            {
                if idle(&v) {
                    return Ok(start.elapsed());
                }
                last = v;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        anyhow::bail!("the server's workers had not caught up after {limit:?}: /readyz said {last}")
    }

    /// Stop with SIGTERM (as an operator would), waiting for a clean exit.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        self.sampling.cancel();
        let pid = self.child.id().to_string();
        let sent = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running kill")?;
        anyhow::ensure!(sent.success(), "kill -TERM {pid} failed");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait()? {
                anyhow::ensure!(
                    status.success(),
                    "the server exited with {status} on SIGTERM; see {}",
                    self.log.display()
                );
                let _ = std::fs::remove_file(&self.log);
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "the server did not stop on SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.sampling.cancel();
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
            eprintln!("server killed; its log is {}", self.log.display());
        }
    }
}

/// Relay and projections idle and live, from a `/readyz` body.
fn idle(v: &Value) -> bool {
    let relay = v["relay"]["lag"].as_i64() == Some(0) && v["relay"]["leader_here"] == true;
    let projections = v["projections"].as_array().is_some_and(|ps| {
        !ps.is_empty()
            && ps
                .iter()
                .all(|p| p["lag"].as_i64() == Some(0) && p["live"] == true)
    });
    v["ready"] == true && relay && projections
}

async fn sample(pid: u32, rss: Arc<Rss>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(RSS_EVERY);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(kib) = status_kib(pid, "VmRSS:") else {
            return;
        };
        rss.max.fetch_max(kib, Ordering::Relaxed);
        rss.phase_max.fetch_max(kib, Ordering::Relaxed);
        rss.samples.fetch_add(1, Ordering::Relaxed);
    }
}

/// The server's memory over the run.
#[derive(Clone, Debug, Serialize)]
pub struct Memory {
    /// Peak resident set (`VmHWM` at the end), MiB.
    pub peak_mib: f64,
    /// Largest sample (`VmRSS` every 100 ms), MiB.
    pub max_sampled_mib: f64,
    /// Largest sample from start until caught up and idle, MiB.
    pub startup_mib: f64,
    /// Largest sample during the baselines (server idle), MiB.
    pub idle_mib: f64,
    /// Largest sample during the commands, MiB.
    pub commands_mib: f64,
    /// Largest sample during the reads, MiB.
    pub reads_mib: f64,
    /// Samples taken.
    pub samples: u64,
}

/// KiB to MiB.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}
