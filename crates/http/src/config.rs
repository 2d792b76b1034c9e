//! Server settings, typed and validated. Loading them (defaults, file,
//! environment) is the binary's job; secrets never show in `Debug`.

use serde::Deserialize;
use sportello_store::MasterKey;
use std::net::SocketAddr;

/// Everything a server needs to run.
#[derive(Clone, Debug, Deserialize)]
pub struct Settings {
    /// PostgreSQL URL.
    pub database_url: String,
    /// NATS URL.
    pub nats_url: String,
    /// Address to listen on.
    pub listen: SocketAddr,
    /// JetStream stream name.
    pub stream_name: String,
    /// First token of every subject.
    pub subject_prefix: String,
    /// Pool size.
    pub db_max_connections: u32,
    /// The master key wrapping every person's key.
    #[serde(skip)]
    pub master_key: Option<MasterKey>,
    /// Run the relay and projection runners in this process.
    pub run_workers: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "postgres://postgres@127.0.0.1:5432/sportello".into(),
            nats_url: "nats://127.0.0.1:4222".into(),
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            stream_name: "SPORTELLO".into(),
            subject_prefix: "sportello".into(),
            db_max_connections: 16,
            master_key: None,
            run_workers: true,
        }
    }
}

impl Settings {
    /// The bus settings.
    pub fn bus(&self) -> sportello_store::bus::BusConfig {
        sportello_store::bus::BusConfig {
            stream_name: self.stream_name.clone(),
            subject_prefix: self.subject_prefix.clone(),
        }
    }

    /// Check what types cannot.
    pub fn validate(&self) -> Result<(), String> {
        let token_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !token_ok(&self.stream_name) {
            return Err(format!("stream_name {:?} must be letters, digits, _ or -", self.stream_name));
        }
        if !token_ok(&self.subject_prefix) {
            return Err(format!("subject_prefix {:?} must be one subject token", self.subject_prefix));
        }
        if self.db_max_connections == 0 {
            return Err("db_max_connections must be at least 1".into());
        }
        if self.master_key.is_none() {
            return Err("a master key is required".into());
        }
        Ok(())
    }
}
