//! Who did it, when and why: the metadata every event carries.

use crate::ids::{AccountId, CommandId, CorrelationId, EventId, OrganizationId};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// The metadata of an event. It never holds personal data of the person
/// whose case it is: only ids of accounts and organisations.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Metadata {
    /// The account that acted.
    pub account_id: AccountId,
    /// The organisation the account acted for.
    pub organization_id: OrganizationId,
    /// The command that produced the event.
    pub command_id: CommandId,
    /// The request this event ultimately descends from.
    pub correlation_id: CorrelationId,
    /// The event that caused this one, if any.
    pub causation_id: Option<EventId>,
    /// When the command was decided, by the application's clock.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String", extend("format" = "date-time"))]
    pub occurred_at: OffsetDateTime,
}

impl Metadata {
    /// Metadata for a new command: its correlation starts with itself.
    pub fn for_command(
        account_id: AccountId,
        organization_id: OrganizationId,
        occurred_at: OffsetDateTime,
    ) -> Self {
        let command_id = CommandId::new();
        Self {
            account_id,
            organization_id,
            command_id,
            correlation_id: CorrelationId(command_id.0),
            causation_id: None,
            occurred_at,
        }
    }
}
