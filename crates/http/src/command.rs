//! Carrying out a command on one stream, the same way for every aggregate:
//! answer a retried idempotent request with its first answer, load the
//! stream's events, rebuild the state, `decide`, and append the events
//! expecting the version the decision was made on. A concurrent writer
//! makes the append fail; without `If-Match` the command is decided again
//! on the new state (a few times), with `If-Match` the caller is told
//! (`412`). The HTTP handlers, the demo loader and the benchmark all come
//! through here, so there is one write path. A command may bring
//! follow-ups decided on the state it leaves ([`execute_then`]: an
//! activation left waiting is offered to the next professional), in the
//! same append and the same retries.

use crate::error::ApiError;
use sportello_domain::{Aggregate, Metadata, NetworkId, StreamId};
use sportello_store::{
    AppendRequest, AppendResult, EventStore, ExpectedVersion, Idempotency, NewEvent, RecordedEvent,
    StoreError,
};

/// What the caller expects of the stream's version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The command creates the stream.
    New,
    /// Whatever the version is now (decided on the latest state).
    Latest,
    /// Exactly this version (`If-Match`), else `412`.
    Version(i64),
}

impl Expect {
    /// `If-Match` when given, else the latest.
    pub fn from_if_match(if_match: Option<i64>) -> Self {
        if_match.map_or(Expect::Latest, Expect::Version)
    }
}

/// A command carried out: what the store answered and the state after it.
#[derive(Debug)]
pub struct Done<S> {
    /// The append (on an idempotent retry: the first answer).
    pub result: AppendResult,
    /// The state after the command.
    pub state: S,
}

/// How many times a command without `If-Match` is decided again after a
/// concurrent writer moved the stream on.
const ATTEMPTS: usize = 5;

/// The events of one stream of an aggregate, rebuilt into its state, and
/// its version (0: no stream). A stream of another kind is not found.
pub async fn load<A: Aggregate>(
    store: &EventStore,
    network: NetworkId,
    stream: StreamId,
) -> Result<(Option<A::State>, i64), ApiError> {
    let events = store.load_stream(network, stream).await?;
    rebuild::<A>(&events)
}

/// Rebuild a state from its stream's events.
pub fn rebuild<A: Aggregate>(
    events: &[RecordedEvent],
) -> Result<(Option<A::State>, i64), ApiError> {
    if events
        .first()
        .is_some_and(|e| e.stream_kind != A::STREAM_KIND)
    {
        return Err(ApiError::NotFound);
    }
    let mut state = None;
    for e in events {
        let event = A::decode(&e.event_type, &e.payload)
            .map_err(|err| ApiError::Internal(anyhow::anyhow!("stored event unreadable: {err}")))?;
        state = A::evolve(state, &event);
    }
    Ok((state, events.last().map_or(0, |e| e.version)))
}

/// Decide `command` on the state `state` (at `version`) and make the
/// append request, returning the state after it too.
pub fn prepare<A: Aggregate>(
    network: NetworkId,
    stream: StreamId,
    state: Option<A::State>,
    version: i64,
    command: A::Command,
    metadata: Metadata,
    idempotency: Option<Idempotency>,
) -> Result<(AppendRequest, A::State), ApiError> {
    prepare_all::<A>(
        network,
        stream,
        state,
        version,
        vec![command],
        metadata,
        idempotency,
    )
}

/// Decide `commands` one after the other, each on the state the previous
/// ones left, and make one append request of all their events: all or
/// nothing (a refusal of any refuses them all).
pub fn prepare_all<A: Aggregate>(
    network: NetworkId,
    stream: StreamId,
    state: Option<A::State>,
    version: i64,
    commands: Vec<A::Command>,
    metadata: Metadata,
    idempotency: Option<Idempotency>,
) -> Result<(AppendRequest, A::State), ApiError> {
    let mut after = state;
    let mut events = Vec::new();
    for command in commands {
        let decided = A::decide(after.as_ref(), command)?;
        for e in &decided {
            after = A::evolve(after, e);
        }
        events.extend(decided);
    }
    let after =
        after.ok_or_else(|| ApiError::Internal(anyhow::anyhow!("a command left no state")))?;
    let events: Vec<NewEvent> = events
        .into_iter()
        .map(|e| NewEvent::from(A::parts(&after, e)))
        .collect();
    let req = AppendRequest {
        network,
        stream_id: stream,
        stream_kind: A::STREAM_KIND,
        expected: if version == 0 {
            ExpectedVersion::NoStream
        } else {
            ExpectedVersion::Exact(version)
        },
        events,
        metadata,
        idempotency,
    };
    Ok((req, after))
}

/// Carry out `command` on `stream` (see the module documentation).
pub async fn execute<A: Aggregate>(
    store: &EventStore,
    network: NetworkId,
    stream: StreamId,
    expect: Expect,
    command: A::Command,
    metadata: Metadata,
    idempotency: Option<Idempotency>,
) -> Result<Done<A::State>, ApiError>
where
    A::Command: Clone,
{
    execute_all::<A>(
        store,
        network,
        stream,
        expect,
        vec![command],
        metadata,
        idempotency,
        None,
    )
    .await
}

/// Carry out several commands on `stream` as one write (see
/// [`prepare_all`]). `loaded`: the state and version the caller has just
/// loaded (to decide on at the first attempt, saving a read).
#[expect(
    clippy::too_many_arguments,
    reason = "each is a separate input of one write"
)]
pub async fn execute_all<A: Aggregate>(
    store: &EventStore,
    network: NetworkId,
    stream: StreamId,
    expect: Expect,
    commands: Vec<A::Command>,
    metadata: Metadata,
    idempotency: Option<Idempotency>,
    loaded: Option<(Option<A::State>, i64)>,
) -> Result<Done<A::State>, ApiError>
where
    A::Command: Clone,
{
    execute_then::<A>(
        store,
        network,
        stream,
        expect,
        commands,
        metadata,
        idempotency,
        loaded,
        None,
    )
    .await
}

/// The commands to add on the state the commands of a write leave.
pub type FollowUps<'a, A> =
    dyn Fn(&<A as Aggregate>::State) -> Vec<<A as Aggregate>::Command> + Sync + 'a;

/// As [`execute_all`], with the commands `then` asks for on the state
/// `commands` leave appended to them — decided again, with them, at each
/// attempt (`None`: none, and no extra decision). Nothing at all to do is
/// a `409`.
#[expect(
    clippy::too_many_arguments,
    reason = "each is a separate input of one write"
)]
pub async fn execute_then<A: Aggregate>(
    store: &EventStore,
    network: NetworkId,
    stream: StreamId,
    expect: Expect,
    commands: Vec<A::Command>,
    metadata: Metadata,
    idempotency: Option<Idempotency>,
    mut loaded: Option<(Option<A::State>, i64)>,
    then: Option<&FollowUps<'_, A>>,
) -> Result<Done<A::State>, ApiError>
where
    A::Command: Clone,
{
    if let Some(idem) = &idempotency
        && let Some(result) = store.idempotent_answer(network, idem).await?
    {
        let (state, _) = load::<A>(store, network, result.stream_id).await?;
        let state = state.ok_or(ApiError::NotFound)?;
        return Ok(Done { result, state });
    }
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (state, version) = if expect == Expect::New {
            (None, 0)
        } else if let Some(l) = loaded.take() {
            l
        } else {
            load::<A>(store, network, stream).await?
        };
        match expect {
            Expect::Version(v) if v != version => {
                if state.is_none() {
                    return Err(ApiError::NotFound);
                }
                return Err(ApiError::PreconditionFailed(v.to_string()));
            }
            Expect::Latest | Expect::Version(_) if state.is_none() => {
                return Err(ApiError::NotFound);
            }
            _ => {}
        }
        let mut all = commands.clone();
        if let Some(then) = then {
            // The follow-ups, on the state the commands leave (pure,
            // decided again below with them).
            let mut left = state.clone();
            for c in &commands {
                for e in A::decide(left.as_ref(), c.clone())? {
                    left = A::evolve(left, &e);
                }
            }
            all.extend(left.as_ref().map(then).unwrap_or_default());
        }
        if all.is_empty() {
            return Err(ApiError::Conflict(format!(
                "nothing to do on this {} now",
                A::STREAM_KIND
            )));
        }
        let (req, after) = prepare_all::<A>(
            network,
            stream,
            state,
            version,
            all,
            metadata.clone(),
            idempotency,
        )?;
        match store.append(&req).await {
            Ok(result) => {
                return Ok(Done {
                    result,
                    state: after,
                });
            }
            Err(StoreError::Conflict { .. }) if expect == Expect::Latest && attempt < ATTEMPTS => {
                continue;
            }
            Err(StoreError::Conflict { .. }) if matches!(expect, Expect::Version(_)) => {
                return Err(ApiError::PreconditionFailed(version.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
}
