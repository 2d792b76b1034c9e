//! `sportello bench core`: measures the event-sourced core against the
//! same PostgreSQL and NATS (see docs/PERFORMANCE.md).

use sportello_http::Settings;

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
}

/// Run a benchmark.
pub async fn run(_settings: &Settings, _which: Which) -> anyhow::Result<()> {
    anyhow::bail!("the core benchmark is not written yet")
}
