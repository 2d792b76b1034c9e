//! `sportello`: the one binary. It only wires: settings in, then the
//! library's launch function, migrations, demo data, rebuilds or the
//! benchmark.

mod bench;
mod demo;
mod schemas;
mod settings;
mod simulate;

use anyhow::Context;
use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::path::PathBuf;
use tracing_subscriber::EnvFilter;

#[derive(Parser)]
#[command(
    version,
    about = "Sportello: the immigration services desk and its network"
)]
struct Cli {
    /// A TOML settings file (defaults to `sportello.toml` if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP with the relay and projection runners.
    Serve,
    /// Apply database migrations.
    Migrate,
    /// Load the demo network (fictitious people only).
    Demo {
        /// Write the demo accounts and fresh API tokens as JSON here.
        #[arg(long)]
        write_credentials: Option<PathBuf>,
    },
    /// Rebuild a projection from the log, blue/green.
    Rebuild {
        /// The projection (e.g. `stream_activity`).
        projection: String,
    },
    /// Write the published JSON Schemas (bus envelope, event types).
    Schemas {
        /// The folder to write into (the repository's is `schemas`).
        #[arg(long, default_value = "schemas")]
        write: PathBuf,
    },
    /// Erase now everyone whose case has been closed longer than the
    /// retention period (the server also does it hourly), and say whom.
    Retention {
        /// Only list who is due; erase nobody.
        #[arg(long)]
        dry_run: bool,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

fn init_tracing() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("SPORTELLO_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutdown signal received");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    init_tracing();
    let cli = Cli::parse();
    if let Command::Schemas { write } = &cli.command {
        return schemas::write(write);
    }
    let settings = settings::load(cli.config.as_deref())?;
    match cli.command {
        Command::Serve => {
            sportello_store::db::create_database_if_missing(&settings.database_url).await?;
            let listener = tokio::net::TcpListener::bind(settings.listen)
                .await
                .with_context(|| format!("binding {}", settings.listen))?;
            sportello_http::launch(settings, listener, shutdown_signal()).await
        }
        Command::Migrate => {
            sportello_store::db::create_database_if_missing(&settings.database_url).await?;
            let pool = sportello_store::db::connect(&settings.database_url, 2).await?;
            sportello_store::db::migrate(&pool).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Demo { write_credentials } => {
            demo::run(&settings, write_credentials.as_deref()).await
        }
        Command::Rebuild { projection } => {
            let p = sportello_projections::by_name(&projection).with_context(|| {
                let names: Vec<_> = sportello_projections::all()
                    .iter()
                    .map(|p| p.name())
                    .collect();
                format!("no projection {projection:?}; known: {}", names.join(", "))
            })?;
            let pool = sportello_store::db::connect(&settings.database_url, 4).await?;
            sportello_store::db::migrate(&pool).await?;
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{msg} [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
                )
                .expect("valid template"),
            );
            bar.set_message(format!("rebuilding {projection}"));
            let progress = |done: u64, total: u64| {
                bar.set_length(total);
                bar.set_position(done);
            };
            let n =
                sportello_store::projection::rebuild(&pool, p.as_ref(), 5000, &progress).await?;
            bar.finish();
            println!("rebuilt {projection} from {n} events");
            Ok(())
        }
        Command::Retention { dry_run } => retention(&settings, dry_run).await,
        Command::Bench { which } => bench::run(&settings, which).await,
        Command::Schemas { .. } => unreachable!("handled before loading settings"),
    }
}

/// `sportello retention`: the retention rule, run once; prints the ids of
/// the people erased (or due), never anything personal.
async fn retention(settings: &sportello_http::Settings, dry_run: bool) -> anyhow::Result<()> {
    let years = settings.retention_years;
    anyhow::ensure!(years > 0, "retention_years is 0: the retention rule is off");
    let pool = sportello_store::db::connect(&settings.database_url, 2).await?;
    sportello_store::db::migrate(&pool).await?;
    let now = settings.clock.now();
    if dry_run {
        let due = sportello_http::erasure::due(&pool, sportello_http::erasure::cutoff(now, years))
            .await?;
        for (network, person) in &due {
            println!("due: network {network} person {person}");
        }
        println!(
            "{} people due for erasure (cases closed over {years} years)",
            due.len()
        );
        return Ok(());
    }
    let keyring = sportello_store::Keyring::new(settings.master_key.clone().context("master key")?);
    keyring.verify_master_key(&pool).await?;
    let store = sportello_store::EventStore::new(pool, keyring);
    let report = sportello_http::erasure::retain(&store, years, now)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    for (network, person) in &report.erased {
        println!("erased: network {network} person {person}");
    }
    println!(
        "{} people erased, {} failed (cases closed over {years} years)",
        report.erased.len(),
        report.failed
    );
    anyhow::ensure!(report.failed == 0, "some erasures failed; see the log");
    Ok(())
}
