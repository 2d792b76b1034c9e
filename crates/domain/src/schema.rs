//! The published contract: a JSON Schema for each event type's public
//! payload and personal part, generated from the Rust types. The files in
//! `schemas/` are written from here and a test checks they match, so the
//! contract cannot drift from the code.

use crate::case::{PersonIdentity, PersonTakenInCharge, PersonTakenInChargePayload};
use schemars::{JsonSchema, schema_for};
use serde_json::{Value, json};

/// The schema of one event type at its current version.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSchema {
    /// The event type.
    pub event_type: &'static str,
    /// Its current schema version.
    pub schema_version: i32,
    /// The stream kind it belongs to.
    pub stream_kind: &'static str,
    /// One JSON Schema document: `payload` and (if any) `personal`.
    pub schema: Value,
}

fn event_schema<P: JsonSchema, S: JsonSchema>(
    event_type: &'static str,
    schema_version: i32,
    stream_kind: &'static str,
    with_personal: bool,
) -> EventSchema {
    // Sub-schemas refer to `#/$defs/...`: hoist their definitions to the
    // root of the document so the references resolve.
    let mut defs = serde_json::Map::new();
    let mut take = |mut v: Value| {
        if let Some(Value::Object(d)) = v.as_object_mut().and_then(|o| o.remove("$defs")) {
            defs.extend(d);
        }
        if let Some(o) = v.as_object_mut() {
            o.remove("$schema");
        }
        v
    };
    let payload = take(serde_json::to_value(schema_for!(P)).expect("schema serialises"));
    let personal = with_personal
        .then(|| take(serde_json::to_value(schema_for!(S)).expect("schema serialises")));
    EventSchema {
        event_type,
        schema_version,
        stream_kind,
        schema: json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": format!("{event_type} v{schema_version}"),
            "description": format!(
                "Event {event_type} of a `{stream_kind}` stream, schema version {schema_version}. \
                 `payload` travels in clear; `personal` travels sealed (XChaCha20-Poly1305 \
                 under the person's key) and is shown here as it reads once opened."
            ),
            "type": "object",
            "properties": {
                "payload": payload,
                "personal": personal.unwrap_or(json!({ "type": "null" })),
            },
            "required": ["payload"],
            "$defs": defs,
        }),
    }
}

/// Every event type's schema.
pub fn event_schemas() -> Vec<EventSchema> {
    vec![event_schema::<PersonTakenInChargePayload, PersonIdentity>(
        PersonTakenInCharge::TYPE,
        PersonTakenInCharge::SCHEMA_VERSION,
        crate::case::STREAM_KIND,
        true,
    )]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upcast::current_version;

    #[test]
    fn every_schema_is_at_the_current_version_of_its_type() {
        for s in event_schemas() {
            assert_eq!(
                s.schema_version,
                current_version(s.event_type),
                "{}",
                s.event_type
            );
            assert!(s.schema["properties"]["payload"]["properties"].is_object());
        }
    }
}
