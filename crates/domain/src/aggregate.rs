//! The shape every aggregate of the domain shares — a case, a referral, an
//! organisation — so that loading a stream, deciding a command and storing
//! its events is written once, outside the domain (the HTTP layer, the demo
//! and the benchmark all go through it).

use crate::decode::DecodeError;
use crate::error::DomainError;
use crate::event::{DomainEvent, EventParts};
use crate::{activation, case, organization, referral, registry};
use serde_json::Value;

/// An aggregate: pure `decide` and `evolve` over its own stream.
pub trait Aggregate {
    /// The stream kind of its streams.
    const STREAM_KIND: &'static str;
    /// What its events leave.
    type State: Clone;
    /// What may be asked of it.
    type Command;
    /// What happens to it.
    type Event;

    /// Decide what a command does (`None`: the stream does not exist yet).
    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, DomainError>;
    /// Apply an event.
    fn evolve(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State>;
    /// Read a stored event back from its type and public payload.
    fn decode(event_type: &str, payload: &Value) -> Result<Self::Event, DecodeError>;
    /// Split an event for storage; `state` is the state after the command.
    fn parts(state: &Self::State, event: Self::Event) -> EventParts;
}

/// A person's case.
pub struct CaseAggregate;

impl Aggregate for CaseAggregate {
    const STREAM_KIND: &'static str = case::STREAM_KIND;
    type State = case::lifecycle::Case;
    type Command = case::lifecycle::CaseCommand;
    type Event = case::lifecycle::CaseEvent;

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, DomainError> {
        case::lifecycle::decide(state, command)
    }
    fn evolve(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State> {
        case::lifecycle::evolve(state, event)
    }
    fn decode(event_type: &str, payload: &Value) -> Result<Self::Event, DecodeError> {
        case::lifecycle::decode(event_type, payload)
    }
    fn parts(state: &Self::State, event: Self::Event) -> EventParts {
        case::lifecycle::Stored { event, case: state }.into_parts()
    }
}

/// A referral.
pub struct ReferralAggregate;

impl Aggregate for ReferralAggregate {
    const STREAM_KIND: &'static str = referral::STREAM_KIND;
    type State = referral::Referral;
    type Command = referral::ReferralCommand;
    type Event = referral::ReferralEvent;

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, DomainError> {
        referral::decide(state, command)
    }
    fn evolve(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State> {
        referral::evolve(state, event)
    }
    fn decode(event_type: &str, payload: &Value) -> Result<Self::Event, DecodeError> {
        referral::decode(event_type, payload)
    }
    fn parts(state: &Self::State, event: Self::Event) -> EventParts {
        referral::Stored {
            event,
            referral: state,
        }
        .into_parts()
    }
}

/// An organisation of the network.
pub struct OrganizationAggregate;

impl Aggregate for OrganizationAggregate {
    const STREAM_KIND: &'static str = organization::STREAM_KIND;
    type State = organization::Organization;
    type Command = organization::OrganizationCommand;
    type Event = organization::OrganizationEvent;

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, DomainError> {
        organization::decide(state, command)
    }
    fn evolve(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State> {
        organization::evolve(state, event)
    }
    fn decode(event_type: &str, payload: &Value) -> Result<Self::Event, DecodeError> {
        organization::decode(event_type, payload)
    }
    fn parts(state: &Self::State, event: Self::Event) -> EventParts {
        organization::Stored {
            event,
            organization: state.id,
        }
        .into_parts()
    }
}

/// An activation (a request for a professional of the registry).
pub struct ActivationAggregate;

impl Aggregate for ActivationAggregate {
    const STREAM_KIND: &'static str = activation::STREAM_KIND;
    type State = activation::Activation;
    type Command = activation::ActivationCommand;
    type Event = activation::ActivationEvent;

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, DomainError> {
        activation::decide(state, command)
    }
    fn evolve(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State> {
        activation::evolve(state, event)
    }
    fn decode(event_type: &str, payload: &Value) -> Result<Self::Event, DecodeError> {
        activation::stored::decode(event_type, payload)
    }
    fn parts(state: &Self::State, event: Self::Event) -> EventParts {
        activation::stored::Stored {
            event,
            activation: state,
        }
        .into_parts()
    }
}

/// A professional of the registry.
pub struct ProfessionalAggregate;

impl Aggregate for ProfessionalAggregate {
    const STREAM_KIND: &'static str = registry::STREAM_KIND;
    type State = registry::Professional;
    type Command = registry::ProfessionalCommand;
    type Event = registry::ProfessionalEvent;

    fn decide(
        state: Option<&Self::State>,
        command: Self::Command,
    ) -> Result<Vec<Self::Event>, DomainError> {
        registry::decide(state, command)
    }
    fn evolve(state: Option<Self::State>, event: &Self::Event) -> Option<Self::State> {
        registry::evolve(state, event)
    }
    fn decode(event_type: &str, payload: &Value) -> Result<Self::Event, DecodeError> {
        registry::stored::decode(event_type, payload)
    }
    fn parts(state: &Self::State, event: Self::Event) -> EventParts {
        registry::stored::Stored {
            event,
            professional: state,
        }
        .into_parts()
    }
}
