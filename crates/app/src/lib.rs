//! The application layer of Sportello: the one door to the system for
//! every interface — the JSON API, the web pages, the command line, the
//! demo loader and the workers. An interface parses its input, calls a
//! function here with a typed [`Caller`] and typed input, and renders the
//! typed result or [`AppError`]; it decides nothing itself.
//!
//! What lives here: who may do what ([`access`], asked inside the
//! application, so no interface can forget it), the one clock every
//! decision reads ([`clock`]), the one write path ([`command`]), the
//! workers that time and the law drive (the activations' [`activation::scheduler`],
//! the retention rule in [`erasure`]), and the errors of the layer
//! ([`error`]).
//!
//! Never: HTTP, HTML or any other interface's concern; SQL over read
//! models (their queries live beside their tables in
//! `sportello-projections`).

pub mod access;
pub mod activation;
pub mod caller;
pub mod clock;
pub mod command;
pub mod erasure;
pub mod error;

pub use caller::Caller;
pub use clock::Clock;
pub use error::{AppError, FieldError};
