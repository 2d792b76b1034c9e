//! Test support shared by the crates' integration tests and the benchmark:
//! a fresh PostgreSQL database per test on the machine's server, a
//! JetStream stream name and subject prefix of its own, and private
//! `nats-server` processes for tests that stop or kill the bus (the shared
//! services are never touched), and a small OpenID Connect provider
//! ([`oidc`]).
//!
//! Settings come from `DATABASE_URL` (a server URL; the database name is
//! replaced) and `NATS_URL`, with the local defaults.

pub mod oidc;

use sportello_store::bus::BusConfig;
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use uuid::Uuid;

/// The PostgreSQL server tests use.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres:postgres@127.0.0.1:5432/postgres".into())
}

/// The shared NATS server.
pub fn nats_url() -> String {
    std::env::var("NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

/// A database made for one test, migrated. Call [`TestDb::drop_db`] at
/// the end to remove it (a failed test leaves it for inspection).
pub struct TestDb {
    /// Its name.
    pub name: String,
    /// Its URL.
    pub url: String,
    /// A pool on it.
    pub pool: PgPool,
}

impl TestDb {
    /// Create and migrate a fresh database.
    pub async fn new() -> TestDb {
        Self::with_pool_size(20).await
    }

    /// Same, with a pool of `max` connections.
    pub async fn with_pool_size(max: u32) -> TestDb {
        let name = format!("sportello_test_{}", Uuid::new_v4().simple());
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect(&server_url())
            .await
            .expect("PostgreSQL is reachable (DATABASE_URL)");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("can create a test database");
        admin.close().await;
        let url = sportello_store::db::url_with_database(&server_url(), &name);
        let pool = PgPoolOptions::new()
            .max_connections(max)
            .connect_with(sportello_store::db::options(&url).expect("a valid database URL"))
            .await
            .expect("connect to the test database");
        sportello_store::db::migrate(&pool)
            .await
            .expect("migrations apply");
        TestDb { name, url, pool }
    }

    /// Close the pool and drop the database.
    pub async fn drop_db(self) {
        self.pool.close().await;
        if let Ok(admin) = PgPoolOptions::new()
            .max_connections(1)
            .connect(&server_url())
            .await
        {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            )))
            .execute(&admin)
            .await;
        }
    }
}

/// A stream name and subject prefix no other test uses.
pub fn unique_bus() -> BusConfig {
    let tag = Uuid::new_v4().simple().to_string();
    BusConfig {
        stream_name: format!("T_{tag}"),
        subject_prefix: format!("t{tag}"),
    }
}

/// Delete a test's stream from a NATS server (best effort).
pub async fn delete_stream(nats_url: &str, bus: &BusConfig) {
    if let Ok(c) = async_nats::connect(nats_url).await {
        let js = async_nats::jetstream::new(c);
        let _ = js.delete_stream(&bus.stream_name).await;
    }
}

/// A free TCP port on the loopback.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A `nats-server` of the test's own, with JetStream and a private store,
/// that the test may stop and start again (same port, same store).
pub struct PrivateNats {
    /// Its port.
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn nats_server_binary() -> PathBuf {
    for p in [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ] {
        if std::path::Path::new(p).exists() {
            return p.into();
        }
    }
    "nats-server".into()
}

impl PrivateNats {
    /// Start one on a free port.
    pub async fn start() -> PrivateNats {
        let mut n = PrivateNats {
            port: free_port(),
            dir: tempfile::tempdir().expect("temp dir"),
            child: None,
        };
        n.resume().await;
        n
    }

    /// Its URL.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Kill the server (SIGKILL): clients see the connection drop.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port with the same store.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "already running");
        let child = Command::new(nats_server_binary())
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server starts (install the nats-server package)");
        self.child = Some(child);
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private nats-server did not start on port {}", self.port);
    }
}

impl Drop for PrivateNats {
    fn drop(&mut self) {
        self.stop();
    }
}
