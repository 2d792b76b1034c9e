//! The write path is the application layer's ([`sportello_app::command`]);
//! here is what the JSON API keeps and answers with it: its [`Answer`]
//! (status, `ETag`/`Location`, JSON body) as the answer kept with an
//! `Idempotency-Key`, and the plain answer of a write ([`written`]).

pub use crate::answer::Answer;
use crate::api::Written;
use crate::error::ApiError;
use axum::http::StatusCode;
pub use sportello_app::command::{
    Begun, Expect, FollowUps, Keep, RETRIES, Tx, WriteRequest, back_off, begin, execute, kept,
    load, prepare, prepare_all, rebuild,
};
use sportello_domain::NetworkId;
use sportello_store::{AppendResult, EventStore, Idempotency};

/// A command carried out, answered as the JSON API answers.
pub type Done<S> = sportello_app::command::Done<S, Answer>;

/// How the JSON API renders a write's answer.
pub type Respond<'a, S> = sportello_app::command::Respond<'a, S, Answer>;

/// The plain answer of a write: `200 OK`, the `ETag` and [`Written`].
pub fn written<S>(result: &AppendResult, _after: &S) -> Answer {
    Written::of(result).answer(StatusCode::OK)
}

/// [`sportello_app::command::answer_once`] for a handler's work: answer a
/// request once per `Idempotency-Key`.
pub async fn answer_once(
    store: &EventStore,
    network: NetworkId,
    idem: Option<&Idempotency>,
    work: impl Future<Output = Result<Answer, ApiError>>,
) -> Result<Answer, ApiError> {
    sportello_app::command::answer_once(store, network, idem, work).await
}
