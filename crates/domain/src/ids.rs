//! Newtype identifiers. Every id is a UUID (v7 when we mint it, so ids sort
//! by creation time) and no id carries personal data: ids are safe in
//! URLs, NATS subjects and logs.

use serde::{Deserialize, Serialize};
use std::fmt;
use uuid::Uuid;

macro_rules! new_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
            schemars::JsonSchema,
        )]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id (UUID v7).
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                Self(u)
            }
        }

        impl std::str::FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map(Self)
            }
        }
    };
}

new_id!(
    /// A network: the tenant. Every stream, event, row and subject belongs to exactly one.
    NetworkId
);
new_id!(
    /// An event stream (one per case, referral, activation, organisation, ...).
    StreamId
);
new_id!(
    /// One event, also its `Nats-Msg-Id` on the bus.
    EventId
);
new_id!(
    /// A person taken in charge; also names the key their personal data is encrypted with.
    PersonId
);
new_id!(
    /// An account: who acted.
    AccountId
);
new_id!(
    /// An organisation of the network (the desk, a provider).
    OrganizationId
);
new_id!(
    /// A command, as sent by a client.
    CommandId
);
new_id!(
    /// A referral of one need to one provider's service (its own stream).
    ReferralId
);
new_id!(
    /// One screened need of a person's case.
    NeedId
);
new_id!(
    /// A service a provider offers.
    ServiceId
);
new_id!(
    /// Ties together the events caused by one original request.
    CorrelationId
);
new_id!(
    /// An agreement (protocollo d'intesa) between the network and a provider.
    AgreementId
);
new_id!(
    /// A consent the person gave, recorded on their case.
    ConsentId
);
new_id!(
    /// A legal basis for sharing without consent, recorded on a case.
    LegalBasisId
);
new_id!(
    /// A professional of the registry: mediator, interpreter or lawyer.
    ProfessionalId
);
new_id!(
    /// A request for a professional (an activation), with its own stream.
    ActivationId
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_time_ordered_and_round_trip() {
        let a = EventId::new();
        let b = EventId::new();
        assert!(a < b, "v7 ids minted later sort later");
        let parsed: EventId = a.to_string().parse().unwrap();
        assert_eq!(parsed, a);
        assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
    }
}
