//! Server settings, typed and validated. Loading them (defaults, file,
//! environment) is the binary's job; secrets never show in `Debug`.

use serde::Deserialize;
use sportello_domain::calendar::{CalendarConfig, WorkingCalendar};
use sportello_store::MasterKey;
use std::net::SocketAddr;

/// Everything a server needs to run.
#[derive(Clone, Deserialize)]
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
    /// The working calendar deadlines are counted in (the comune's patron
    /// saint, closures); Potenza's by default.
    #[serde(default = "potenza_calendar")]
    pub calendar: CalendarConfig,
    /// Served behind TLS (a proxy ends it): answers carry HSTS.
    #[serde(default)]
    pub behind_tls: bool,
    /// API requests a second allowed per account, with a burst of ten
    /// seconds' worth (0: no limit).
    #[serde(default = "default_api_rate")]
    pub api_requests_per_second: u32,
    /// Sign-in attempts a minute allowed per client address.
    #[serde(default = "default_login_rate")]
    pub login_attempts_per_minute: u32,
    /// Sign-in through an OpenID Connect provider (SPID/CIE through the
    /// comune's identity provider, or any other), if configured.
    #[serde(default)]
    pub oidc: Option<OidcSettings>,
    /// Erase automatically the people whose case has been closed for this
    /// many years (0: never).
    #[serde(default = "default_retention_years")]
    pub retention_years: u32,
    /// How long a professional has to answer an activation's offer before
    /// it goes to the next (minutes).
    #[serde(default = "default_offer_timeout")]
    pub offer_timeout_minutes: u32,
    /// How often the scheduler looks for due moments (milliseconds; a
    /// manual clock wakes it at once).
    #[serde(default = "default_scheduler_period")]
    pub scheduler_period_ms: u64,
    /// How long a read with `?min_position=` waits for its read model to
    /// reach that position before answering what it has (milliseconds).
    #[serde(default = "default_read_your_writes_wait")]
    pub read_your_writes_wait_ms: u64,
    /// The application's clock (tests set it or run it ahead).
    #[serde(skip)]
    pub clock: crate::clock::Clock,
}

/// An OpenID Connect provider to sign in with.
#[derive(Clone, Deserialize)]
pub struct OidcSettings {
    /// The issuer URL (its discovery document is under
    /// `/.well-known/openid-configuration`).
    pub issuer_url: String,
    /// This server's client id at the provider.
    pub client_id: String,
    /// Its client secret (redacted in `Debug`).
    pub client_secret: String,
    /// Where the provider sends the browser back: this server's
    /// `/auth/oidc/callback`, as the browser reaches it.
    pub redirect_url: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer_url", &self.issuer_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_url", &self.redirect_url)
            .finish()
    }
}

fn default_api_rate() -> u32 {
    100
}

fn default_login_rate() -> u32 {
    10
}

fn default_retention_years() -> u32 {
    10
}

fn default_offer_timeout() -> u32 {
    120
}

fn default_scheduler_period() -> u64 {
    1000
}

fn default_read_your_writes_wait() -> u64 {
    2000
}

fn potenza_calendar() -> CalendarConfig {
    WorkingCalendar::for_potenza().config()
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            database_url: "postgres://postgres:postgres@127.0.0.1:5432/sportello".into(),
            nats_url: "nats://127.0.0.1:4222".into(),
            listen: "127.0.0.1:8080".parse().expect("valid address"),
            stream_name: "SPORTELLO".into(),
            subject_prefix: "sportello".into(),
            db_max_connections: 16,
            master_key: None,
            run_workers: true,
            calendar: potenza_calendar(),
            behind_tls: false,
            api_requests_per_second: default_api_rate(),
            login_attempts_per_minute: default_login_rate(),
            oidc: None,
            retention_years: default_retention_years(),
            offer_timeout_minutes: default_offer_timeout(),
            scheduler_period_ms: default_scheduler_period(),
            read_your_writes_wait_ms: default_read_your_writes_wait(),
            clock: crate::clock::Clock::System,
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

    /// The working calendar (validated at start).
    pub fn working_calendar(&self) -> WorkingCalendar {
        WorkingCalendar::new(&self.calendar).unwrap_or_default()
    }

    /// Check what types cannot.
    pub fn validate(&self) -> Result<(), String> {
        let token_ok = |s: &str| {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !token_ok(&self.stream_name) {
            return Err(format!(
                "stream_name {:?} must be letters, digits, _ or -",
                self.stream_name
            ));
        }
        if !token_ok(&self.subject_prefix) {
            return Err(format!(
                "subject_prefix {:?} must be one subject token",
                self.subject_prefix
            ));
        }
        if self.db_max_connections == 0 {
            return Err("db_max_connections must be at least 1".into());
        }
        WorkingCalendar::new(&self.calendar).map_err(|e| format!("calendar: {e}"))?;
        if self.login_attempts_per_minute == 0 {
            return Err("login_attempts_per_minute must be at least 1".into());
        }
        if !(1..=10_080).contains(&self.offer_timeout_minutes) {
            return Err("offer_timeout_minutes must be 1 to 10080 (a week)".into());
        }
        if self.scheduler_period_ms == 0 {
            return Err("scheduler_period_ms must be at least 1".into());
        }
        if !(1..=60_000).contains(&self.read_your_writes_wait_ms) {
            return Err("read_your_writes_wait_ms must be 1 to 60000 (a minute)".into());
        }
        if self.master_key.is_none() {
            return Err("a master key is required".into());
        }
        Ok(())
    }
}

/// A URL with its password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://").map(|i| i + 3) else {
        return url.to_owned();
    };
    let rest = &url[scheme_end..];
    let host_end = rest.find('/').unwrap_or(rest.len());
    match rest[..host_end].rfind('@') {
        Some(at) => match rest[..at].find(':') {
            Some(colon) => format!(
                "{}{}:***{}",
                &url[..scheme_end],
                &rest[..colon],
                &rest[at..]
            ),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("nats_url", &redact_url(&self.nats_url))
            .field("listen", &self.listen)
            .field("stream_name", &self.stream_name)
            .field("subject_prefix", &self.subject_prefix)
            .field("db_max_connections", &self.db_max_connections)
            .field("master_key", &self.master_key)
            .field("run_workers", &self.run_workers)
            .field("calendar", &self.calendar)
            .field("behind_tls", &self.behind_tls)
            .field("api_requests_per_second", &self.api_requests_per_second)
            .field("login_attempts_per_minute", &self.login_attempts_per_minute)
            .field("oidc", &self.oidc)
            .field("retention_years", &self.retention_years)
            .field("offer_timeout_minutes", &self.offer_timeout_minutes)
            .field("scheduler_period_ms", &self.scheduler_period_ms)
            .field("read_your_writes_wait_ms", &self.read_your_writes_wait_ms)
            .field("clock", &self.clock)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let s = Settings {
            database_url: "postgres://app:s3cret@db:5432/sportello".into(),
            master_key: Some(MasterKey::generate()),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("postgres://app:***@db:5432/sportello"),
            "{shown}"
        );
        assert!(shown.contains("<redacted>"));
        assert_eq!(redact_url("nats://127.0.0.1:4222"), "nats://127.0.0.1:4222");
    }

    #[test]
    fn invalid_settings_are_refused_at_start() {
        let ok = Settings {
            master_key: Some(MasterKey::generate()),
            ..Settings::default()
        };
        assert!(ok.validate().is_ok());
        assert!(
            Settings {
                master_key: None,
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            Settings {
                subject_prefix: "a.b".into(),
                ..ok.clone()
            }
            .validate()
            .is_err()
        );
        assert!(
            Settings {
                db_max_connections: 0,
                ..ok
            }
            .validate()
            .is_err()
        );
    }
}
