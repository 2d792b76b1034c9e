//! The bus: how events look on NATS JetStream.
//!
//! Subjects are `<prefix>.<network>.<stream kind>.<organisation or none>.<event type>`,
//! so a partner's NATS user can be permitted exactly its own organisation's
//! subjects. Subjects and headers carry ids and type names only, never
//! personal data. The message body is the JSON of
//! [`RecordedEvent`](crate::RecordedEvent), personal part still sealed.

use crate::envelope::RecordedEvent;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;

/// Where on NATS the events go. Tests give each run its own stream and
/// prefix so they can run in parallel on one server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BusConfig {
    /// JetStream stream name (`SPORTELLO` in production).
    pub stream_name: String,
    /// First subject token (`sportello` in production).
    pub subject_prefix: String,
}

impl Default for BusConfig {
    fn default() -> Self {
        BusConfig {
            stream_name: "SPORTELLO".into(),
            subject_prefix: "sportello".into(),
        }
    }
}

impl BusConfig {
    /// The subject an event is published on.
    pub fn subject(&self, e: &RecordedEvent) -> String {
        let org = e
            .concerns
            .map(|o| o.to_string())
            .unwrap_or_else(|| "none".into());
        format!(
            "{}.{}.{}.{}.{}",
            self.subject_prefix, e.network_id, e.stream_kind, org, e.event_type
        )
    }

    /// Every subject of this installation.
    pub fn all_subjects(&self) -> String {
        format!("{}.>", self.subject_prefix)
    }

    /// Create the stream if missing. An existing stream is left as it is,
    /// so limits an operator set on it survive restarts.
    pub async fn ensure_stream(
        &self,
        js: &jetstream::Context,
    ) -> Result<stream::Stream, async_nats::Error> {
        let config = stream::Config {
            name: self.stream_name.clone(),
            subjects: vec![self.all_subjects()],
            storage: stream::StorageType::File,
            allow_direct: true,
            duplicate_window: std::time::Duration::from_secs(120),
            ..Default::default()
        };
        Ok(js.get_or_create_stream(config).await?)
    }
}

/// The message body of an event.
pub fn encode(e: &RecordedEvent) -> Bytes {
    Bytes::from(serde_json::to_vec(e).expect("a recorded event always serialises"))
}

/// Read an event from a message body.
pub fn decode(body: &[u8]) -> Result<RecordedEvent, serde_json::Error> {
    serde_json::from_slice(body)
}

/// Serde for bytes as standard base64 (the sealed personal part).
pub mod base64_bytes {
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Serialise as base64.
    pub fn serialize<S: Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(v))
    }

    /// Deserialise from base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let s = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(serde::de::Error::custom)
    }
}

/// The JSON Schema of a message body on the bus.
pub fn envelope_schema() -> serde_json::Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(RecordedEvent)).expect("schema serialises");
    schema["title"] = "Sportello event on the bus (JetStream stream SPORTELLO)".into();
    schema
}
