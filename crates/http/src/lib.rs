//! The HTTP face of Sportello (axum): the operations endpoints and the
//! `/api/v1` routes, plus [`launch`], which starts a whole server —
//! database, bus, relay, projection runners and HTTP — on a listener the
//! caller bound, until a shutdown future resolves.
//!
//! Handlers parse input at the edge, call the store, and answer RFC 9457
//! problems on failure (see [`error`]). They never log personal data and
//! never show database or panic text to a client.

pub mod answer;
pub mod api;
pub mod audit;
pub mod auth;
pub mod command;
pub mod config;
pub mod error;
pub mod hardening;
pub mod launch;
pub mod openapi;
pub mod ops;
pub mod state;

pub use config::Settings;
pub use launch::{launch, router};
/// The access policy and the clock are the application layer's; these
/// paths keep naming them for the HTTP crate's modules.
pub use sportello_app::{access, activation, clock, erasure};
pub use state::AppState;
