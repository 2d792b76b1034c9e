//! Upcasting: old schema versions of an event are turned into the current
//! version when read. Stored events are never rewritten; this is the only
//! place that knows the history of each event type's shape.

use serde_json::{Value, json};

/// An event that cannot be brought to the current version.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum UpcastError {
    /// The stored version is newer than this code knows.
    #[error("{event_type} schema version {found} is newer than {current}")]
    FromTheFuture {
        /// The event type.
        event_type: String,
        /// The stored version.
        found: i32,
        /// The newest version this code knows.
        current: i32,
    },
    /// The stored payload does not have the shape of its version.
    #[error("{event_type} v{version} is malformed: {reason}")]
    Malformed {
        /// The event type.
        event_type: String,
        /// The stored version.
        version: i32,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The current schema version of an event type; 1 for types with no history.
pub fn current_version(event_type: &str) -> i32 {
    match event_type {
        "PersonTakenInCharge" => 2,
        _ => 1,
    }
}

/// Which part of an event a step upcasts: the public payload or the
/// (decrypted) personal part. The two are upcast separately because the
/// personal part is opened later, and only where the reader may see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The public payload.
    Public,
    /// The decrypted personal part.
    Personal,
}

/// Bring one part of a stored event to the current schema version of its
/// type, in place. Returns the version now held.
pub fn upcast(
    event_type: &str,
    stored_version: i32,
    part: Part,
    value: &mut Value,
) -> Result<i32, UpcastError> {
    let current = current_version(event_type);
    if stored_version > current {
        return Err(UpcastError::FromTheFuture {
            event_type: event_type.to_owned(),
            found: stored_version,
            current,
        });
    }
    let mut version = stored_version;
    while version < current {
        step(event_type, version, part, value)?;
        version += 1;
    }
    Ok(version)
}

/// One step: `version` to `version + 1`.
fn step(event_type: &str, version: i32, part: Part, value: &mut Value) -> Result<(), UpcastError> {
    let malformed = |reason| UpcastError::Malformed {
        event_type: event_type.to_owned(),
        version,
        reason,
    };
    match (event_type, version, part) {
        // v1 had no channel (everyone came to the desk) and a single
        // `full_name`; v2 records how the person came and a list of names,
        // each with its kind.
        ("PersonTakenInCharge", 1, Part::Public) => {
            let obj = value
                .as_object_mut()
                .ok_or(malformed("payload is not an object"))?;
            obj.entry("channel").or_insert(json!("desk"));
        }
        ("PersonTakenInCharge", 1, Part::Personal) => {
            let full_name = value
                .get("full_name")
                .and_then(Value::as_str)
                .ok_or(malformed("personal part has no full_name"))?
                .to_owned();
            let birth_date = value.get("birth_date").cloned().unwrap_or(Value::Null);
            *value = json!({
                "names": [{ "kind": "as_in_document", "text": full_name }],
                "birth_date": birth_date,
            });
        }
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_taken_in_charge_v1_reads_as_v2() {
        let mut payload = json!({ "person_id": "p", "desk": "d" });
        let mut personal = json!({ "full_name": "Ana Esempio", "birth_date": "1990" });
        let v = upcast("PersonTakenInCharge", 1, Part::Public, &mut payload).unwrap();
        assert_eq!(v, 2);
        let v = upcast("PersonTakenInCharge", 1, Part::Personal, &mut personal).unwrap();
        assert_eq!(v, 2);
        assert_eq!(payload["channel"], "desk");
        assert_eq!(personal["names"][0]["text"], "Ana Esempio");
        assert_eq!(personal["birth_date"], "1990");
    }

    #[test]
    fn current_versions_are_left_alone() {
        let mut payload = json!({ "person_id": "p", "desk": "d", "channel": "phone" });
        let before = payload.clone();
        let v = upcast("PersonTakenInCharge", 2, Part::Public, &mut payload).unwrap();
        assert_eq!(v, 2);
        assert_eq!(payload, before);
    }

    #[test]
    fn a_version_from_the_future_is_an_error_not_a_panic() {
        let mut payload = json!({});
        let err = upcast("PersonTakenInCharge", 9, Part::Public, &mut payload).unwrap_err();
        assert!(matches!(err, UpcastError::FromTheFuture { found: 9, .. }));
    }

    #[test]
    fn malformed_old_payload_is_an_error() {
        let mut payload = json!([]);
        assert!(upcast("PersonTakenInCharge", 1, Part::Public, &mut payload).is_err());
    }
}
