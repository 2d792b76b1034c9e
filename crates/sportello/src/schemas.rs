//! `sportello schemas --write DIR`: writes the published JSON Schemas (the
//! bus envelope and every event type) generated from the Rust types. The
//! test below checks the committed `schemas/` folder matches the code.

use anyhow::Context;
use std::path::{Path, PathBuf};

/// Every schema file: relative path and contents.
pub fn files() -> Vec<(PathBuf, String)> {
    let pretty = |v: &serde_json::Value| serde_json::to_string_pretty(v).expect("json") + "\n";
    let mut out = vec![(
        PathBuf::from("envelope.v1.json"),
        pretty(&sportello_store::bus::envelope_schema()),
    )];
    for s in sportello_domain::schema::event_schemas() {
        out.push((
            PathBuf::from("events")
                .join(s.stream_kind)
                .join(format!("{}.v{}.json", s.event_type, s.schema_version)),
            pretty(&s.schema),
        ));
    }
    out
}

/// Write them under `dir`.
pub fn write(dir: &Path) -> anyhow::Result<()> {
    for (path, contents) in files() {
        let full = dir.join(&path);
        if let Some(parent) = full.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&full, contents).with_context(|| format!("writing {}", full.display()))?;
        println!("{}", full.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_schemas_match_the_code() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../schemas");
        for (path, contents) in files() {
            let committed = std::fs::read_to_string(dir.join(&path)).unwrap_or_default();
            assert!(
                committed == contents,
                "schemas/{} is out of date: run `cargo run -p sportello -- schemas --write schemas`",
                path.display()
            );
        }
    }
}
