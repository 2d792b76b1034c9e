//! Settings: defaults that work on a developer machine, then a TOML file,
//! then the environment (`SPORTELLO_*`, plus `DATABASE_URL` and `NATS_URL`).
//! A nested setting's environment name joins its keys with a double
//! underscore: `[oidc] issuer_url` is `SPORTELLO_OIDC__ISSUER_URL`.
//! The master key comes from `SPORTELLO_MASTER_KEY` (base64 of 32 bytes)
//! or from `master_key_file`, generated on first use for development.

use anyhow::Context;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::Deserialize;
use sportello_http::Settings;
use sportello_store::MasterKey;
use std::path::{Path, PathBuf};

#[derive(Deserialize)]
struct KeySource {
    master_key: Option<String>,
    #[serde(default = "default_key_file")]
    master_key_file: PathBuf,
}

fn default_key_file() -> PathBuf {
    PathBuf::from(".sportello/master.key")
}

/// Load and validate.
pub fn load(file: Option<&Path>) -> anyhow::Result<Settings> {
    let file = file
        .map(Path::to_path_buf)
        .unwrap_or_else(|| "sportello.toml".into());
    let figment = layers(&file);
    let mut settings: Settings = figment.extract().context("reading settings")?;
    let keys: KeySource = figment.extract().context("reading master key settings")?;
    settings.master_key = Some(match keys.master_key {
        Some(k) => MasterKey::from_base64(&k).context("SPORTELLO_MASTER_KEY")?,
        None => key_from_file(&keys.master_key_file)?,
    });
    settings.validate().map_err(anyhow::Error::msg)?;
    Ok(settings)
}

/// Defaults, then the file, then the environment. `__` nests (no setting
/// name has a double underscore, so the flat ones read as before).
fn layers(file: &Path) -> Figment {
    Figment::from(Serialized::defaults(DefaultsShim::default()))
        .merge(Toml::file(file))
        .merge(Env::prefixed("SPORTELLO_").split("__"))
        .merge(Env::raw().only(&["DATABASE_URL", "NATS_URL"]))
}

fn key_from_file(path: &Path) -> anyhow::Result<MasterKey> {
    if let Ok(s) = std::fs::read_to_string(path) {
        return MasterKey::from_base64(&s)
            .with_context(|| format!("master key in {}", path.display()));
    }
    let key = MasterKey::generate();
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    write_private(path, &key.to_base64())?;
    tracing::warn!(path = %path.display(), "generated a new master key for development; keep it safe, losing it loses all personal data");
    Ok(key)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

/// The defaults, in the field names the environment and file use.
#[derive(serde::Serialize)]
struct DefaultsShim {
    database_url: String,
    nats_url: String,
    listen: String,
    stream_name: String,
    subject_prefix: String,
    db_max_connections: u32,
    run_workers: bool,
}

impl Default for DefaultsShim {
    fn default() -> Self {
        let d = Settings::default();
        DefaultsShim {
            database_url: d.database_url,
            nats_url: d.nats_url,
            listen: d.listen.to_string(),
            stream_name: d.stream_name,
            subject_prefix: d.subject_prefix,
            db_max_connections: d.db_max_connections,
            run_workers: d.run_workers,
        }
    }
}

#[cfg(test)]
#[expect(
    clippy::result_large_err,
    reason = "figment::Jail's closures return figment::Error, as its API asks"
)]
mod tests {
    use super::*;

    #[test]
    fn oidc_settings_come_from_the_file_or_the_environment() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "sportello.toml",
                r#"
                [oidc]
                issuer_url = "https://idp.comune.example"
                client_id = "sportello"
                client_secret = "from-the-file"
                redirect_url = "https://sportello.comune.example/auth/oidc/callback"
                "#,
            )?;
            jail.set_env("SPORTELLO_OIDC__CLIENT_SECRET", "from-the-env");
            jail.set_env("SPORTELLO_STREAM_NAME", "FLAT");
            let s: Settings = layers(Path::new("sportello.toml")).extract()?;
            let oidc = s.oidc.expect("configured");
            assert_eq!(oidc.issuer_url, "https://idp.comune.example");
            assert_eq!(oidc.client_secret, "from-the-env");
            assert_eq!(s.stream_name, "FLAT");
            Ok(())
        });
    }

    #[test]
    fn oidc_settings_from_the_environment_alone() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("SPORTELLO_OIDC__ISSUER_URL", "https://idp.example");
            jail.set_env("SPORTELLO_OIDC__CLIENT_ID", "sportello");
            jail.set_env("SPORTELLO_OIDC__CLIENT_SECRET", "s");
            jail.set_env(
                "SPORTELLO_OIDC__REDIRECT_URL",
                "https://sportello.example/auth/oidc/callback",
            );
            let s: Settings = layers(Path::new("none.toml")).extract()?;
            assert_eq!(s.oidc.expect("configured").client_id, "sportello");
            let s: Settings = {
                jail.clear_env();
                layers(Path::new("none.toml")).extract()?
            };
            assert!(s.oidc.is_none());
            Ok(())
        });
    }
}
