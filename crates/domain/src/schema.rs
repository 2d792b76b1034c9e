//! The published contract: a JSON Schema for each event type's public
//! payload and personal part, generated from the Rust types. The files in
//! `schemas/` are written from here and a test checks they match, so the
//! contract cannot drift from the code.

use crate::case::consent::{ConsentTerms, LegalBasis, ReasonPersonal, Withdrawal};
use crate::case::lifecycle::{
    NeedPayload, NoPayload as CaseNoPayload, NotePersonal as CaseNote, ResolvedPayload,
    VisitPayload,
};
use crate::case::{PersonIdentity, PersonTakenInCharge, PersonTakenInChargePayload};
use crate::referral::{
    CompletedPayload, DeclinedPayload, FailedPayload, NoPayload, NotePersonal, RedirectedPayload,
    SentPayload, TextPersonal,
};
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
    let referral = crate::referral::STREAM_KIND;
    let case = crate::case::STREAM_KIND;
    let activation = crate::activation::STREAM_KIND;
    use crate::activation::stored as act;
    use crate::registry::stored as reg;
    let professional = crate::registry::STREAM_KIND;
    vec![
        event_schema::<reg::ProfilePayload, reg::ContactPersonal>(
            "ProfessionalRegistered",
            1,
            professional,
            true,
        ),
        event_schema::<reg::ProfilePayload, reg::ContactPersonal>(
            "ProfessionalProfileUpdated",
            1,
            professional,
            true,
        ),
        event_schema::<reg::AvailabilityPayload, act::NoPayload>(
            "ProfessionalAvailabilitySet",
            1,
            professional,
            false,
        ),
        event_schema::<reg::AbsencePayload, act::NoPayload>(
            "ProfessionalAbsenceAdded",
            1,
            professional,
            false,
        ),
        event_schema::<reg::StatusPayload, act::NoPayload>(
            "ProfessionalStatusChanged",
            1,
            professional,
            false,
        ),
        event_schema::<act::RequestedPayload, act::NoPayload>(
            "ActivationRequested",
            1,
            activation,
            false,
        ),
        event_schema::<act::ProfessionalPayload, act::NoPayload>(
            "ActivationOffered",
            1,
            activation,
            false,
        ),
        event_schema::<act::ProfessionalPayload, act::NoPayload>(
            "ActivationAccepted",
            1,
            activation,
            false,
        ),
        event_schema::<act::ProfessionalPayload, act::NoPayload>(
            "ActivationDeclined",
            1,
            activation,
            false,
        ),
        event_schema::<act::ProfessionalPayload, act::NoPayload>(
            "ActivationOfferExpired",
            1,
            activation,
            false,
        ),
        event_schema::<act::ScheduledPayload, act::TextPersonal>(
            "ActivationScheduled",
            1,
            activation,
            true,
        ),
        event_schema::<act::DeliveredPayload, act::TextPersonal>(
            "ActivationDelivered",
            1,
            activation,
            true,
        ),
        event_schema::<act::CancelledPayload, act::TextPersonal>(
            "ActivationCancelled",
            1,
            activation,
            true,
        ),
        event_schema::<act::NoPayload, act::NoPayload>(
            "ActivationDeadlineMissed",
            1,
            activation,
            false,
        ),
        event_schema::<PersonTakenInChargePayload, PersonIdentity>(
            PersonTakenInCharge::TYPE,
            PersonTakenInCharge::SCHEMA_VERSION,
            case,
            true,
        ),
        event_schema::<VisitPayload, CaseNote>("VisitRecorded", 1, case, true),
        event_schema::<NeedPayload, CaseNote>("NeedRecorded", 1, case, true),
        event_schema::<ResolvedPayload, CaseNote>("NeedResolved", 1, case, true),
        event_schema::<CaseNoPayload, CaseNoPayload>("CaseClosed", 1, case, false),
        event_schema::<CaseNoPayload, CaseNoPayload>("CaseReopened", 1, case, false),
        event_schema::<ConsentTerms, CaseNoPayload>("ConsentRecorded", 1, case, false),
        event_schema::<Withdrawal, CaseNoPayload>("ConsentWithdrawn", 1, case, false),
        event_schema::<LegalBasis, ReasonPersonal>("LegalBasisRecorded", 1, case, true),
        event_schema::<crate::case::erasure::ErasedPayload, CaseNoPayload>(
            "PersonErased",
            1,
            case,
            false,
        ),
        event_schema::<SentPayload, NotePersonal>("ReferralSent", 1, referral, true),
        event_schema::<NoPayload, NoPayload>("ReferralAcknowledged", 1, referral, false),
        event_schema::<NoPayload, NoPayload>("ReferralAccepted", 1, referral, false),
        event_schema::<DeclinedPayload, TextPersonal>("ReferralDeclined", 1, referral, true),
        event_schema::<NoPayload, NoPayload>("ReferralStarted", 1, referral, false),
        event_schema::<CompletedPayload, NotePersonal>("ReferralCompleted", 1, referral, true),
        event_schema::<FailedPayload, TextPersonal>("ReferralFailed", 1, referral, true),
        event_schema::<NoPayload, NoPayload>("ReferralCancelled", 1, referral, false),
        event_schema::<RedirectedPayload, NoPayload>("ReferralRedirected", 1, referral, false),
        event_schema::<crate::organization::DetailsPayload, crate::organization::NoPersonal>(
            "OrganizationRegistered",
            1,
            crate::organization::STREAM_KIND,
            false,
        ),
        event_schema::<crate::organization::DetailsPayload, crate::organization::NoPersonal>(
            "OrganizationDetailsUpdated",
            1,
            crate::organization::STREAM_KIND,
            false,
        ),
        event_schema::<
            crate::organization::OnboardingChangedPayload,
            crate::organization::NoPersonal,
        >(
            "OrganizationOnboardingChanged",
            1,
            crate::organization::STREAM_KIND,
            false,
        ),
        event_schema::<crate::organization::ServicePayload, crate::organization::NoPersonal>(
            "OrganizationServiceAdded",
            1,
            crate::organization::STREAM_KIND,
            false,
        ),
        event_schema::<crate::organization::ServicePayload, crate::organization::NoPersonal>(
            "OrganizationServiceUpdated",
            1,
            crate::organization::STREAM_KIND,
            false,
        ),
        event_schema::<crate::organization::ServiceRemovedPayload, crate::organization::NoPersonal>(
            "OrganizationServiceRemoved",
            1,
            crate::organization::STREAM_KIND,
            false,
        ),
        event_schema::<crate::organization::AgreementSignedPayload, crate::organization::NoPersonal>(
            "OrganizationAgreementSigned",
            1,
            crate::organization::STREAM_KIND,
            false,
        ),
        event_schema::<crate::organization::AgreementEndedPayload, crate::organization::NoPersonal>(
            "OrganizationAgreementEnded",
            1,
            crate::organization::STREAM_KIND,
            false,
        ),
    ]
}

/// Test support: assert that an event's parts have the shape its schema
/// says — its stream kind, the payload's keys are the schema's properties, and the
/// personal part is there exactly when the schema has one.
#[cfg(test)]
pub(crate) fn assert_parts_match_schema(parts: &crate::event::EventParts, stream_kind: &str) {
    let schemas = event_schemas();
    let schema = schemas
        .iter()
        .find(|s| s.event_type == parts.event_type)
        .unwrap_or_else(|| panic!("no schema for {}", parts.event_type));
    assert_eq!(schema.stream_kind, stream_kind, "{}", parts.event_type);
    let props = schema.schema["properties"]["payload"]["properties"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    let mut want: Vec<&String> = props.keys().collect();
    let mut got: Vec<&String> = parts.payload.as_object().unwrap().keys().collect();
    want.sort();
    got.sort();
    assert_eq!(got, want, "{}", parts.event_type);
    let has_personal = schema.schema["properties"]["personal"]["type"] != "null";
    assert_eq!(
        parts.personal.is_some(),
        has_personal,
        "{}",
        parts.event_type
    );
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
            assert_eq!(
                s.schema["properties"]["payload"]["type"], "object",
                "{}",
                s.event_type
            );
        }
    }

    /// Every referral event's parts have the shape its schema says: the
    /// payload's keys are the schema's properties, the personal part is
    /// there exactly when the schema has one.
    #[test]
    fn referral_events_match_their_schemas() {
        use crate::event::DomainEvent;
        use crate::ids::*;
        use crate::referral::*;
        let new = crate::referral::tests::new_referral(Some("n".into()));
        let r = decide(None, ReferralCommand::Send(new.clone()))
            .unwrap()
            .iter()
            .fold(None, evolve)
            .unwrap();
        let events = vec![
            ReferralEvent::Sent(new),
            ReferralEvent::Acknowledged,
            ReferralEvent::Accepted,
            ReferralEvent::Declined {
                reason: DeclineReason::Other,
                text: Some("t".into()),
            },
            ReferralEvent::Started,
            ReferralEvent::Completed {
                outcome: Outcome::NeedMet,
                note: Some("n".into()),
            },
            ReferralEvent::Failed {
                reason: FailReason::Other,
                text: Some("t".into()),
            },
            ReferralEvent::Cancelled,
            ReferralEvent::Redirected {
                to: ReferralId::new(),
                organization: OrganizationId::new(),
                service: ServiceId::new(),
            },
        ];
        for event in events {
            assert_parts_match_schema(
                &Stored {
                    event,
                    referral: &r,
                }
                .into_parts(),
                STREAM_KIND,
            );
        }
    }
}
