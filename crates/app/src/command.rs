//! The write path: carrying out a command on one stream, the same way for
//! every aggregate and every interface — load the stream's events, rebuild
//! the state, `decide`, and append the events expecting the version the
//! decision was made on. A concurrent writer makes the append fail;
//! without an expected version ([`Expect::Latest`]) the command is decided
//! again on the new state (a few times), with one ([`Expect::Version`])
//! the caller is told ([`AppError::PreconditionFailed`]). The JSON API, the
//! pages, the demo loader, the scheduler and the retention rule all come
//! through here ([`execute`], one [`WriteRequest`]), so there is one write
//! path. A write may bring follow-ups decided on the state it leaves
//! ([`WriteRequest::then`]: an activation left waiting is offered to the
//! next professional), in the same append and the same retries.
//!
//! Every write renders its answer here, with the interface's renderer
//! (`respond`), from what the store answered and the state after it; the
//! answer is opaque to this layer, which only keeps it ([`Keep`]). With an
//! idempotency key, a retry of a request carried out already is given its
//! first answer before anything is decided; otherwise, once decided, the
//! write is one transaction that claims the key ([`begin`]), appends and
//! keeps the answer with the key. A retry racing the first waits on the
//! claim and is given its answer, byte for byte, appending nothing; so is
//! one refused on what the first left. [`answer_once`] does the same
//! around an interface's own checks. No interface renders the answer of a
//! retry again.

use crate::AppError;
use sportello_domain::{Aggregate, Metadata, NetworkId, PersonId, StreamId};
use sportello_store::{
    AppendRequest, AppendResult, Claim, EventStore, ExpectedVersion, FirstAnswer, Idempotency,
    NewEvent, RecordedEvent, StoreError,
};
use sqlx::PgConnection;

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

/// An interface's answer to a write, as the write path keeps it with an
/// idempotency key and gives it back to every retry.
pub trait Keep: Sized {
    /// As kept (a JSON value), and the person whose key seals it when it
    /// holds their data (`None`: kept as it is).
    fn to_kept(&self) -> (serde_json::Value, Option<PersonId>);
    /// The answer kept by [`Keep::to_kept`].
    fn from_kept(kept: serde_json::Value) -> Result<Self, AppError>;
}

/// The answer of a write nobody is answered (a worker's, a loader's): it
/// keeps nothing and is never kept with a key.
impl Keep for () {
    fn to_kept(&self) -> (serde_json::Value, Option<PersonId>) {
        (serde_json::Value::Null, None)
    }

    fn from_kept(_: serde_json::Value) -> Result<Self, AppError> {
        Ok(())
    }
}

/// A command carried out: what the store answered, the state after it and
/// the answer.
#[derive(Debug)]
pub struct Done<S, R> {
    /// The append (on an idempotent retry: the first request's).
    pub result: AppendResult,
    /// The state after the command (`None` on an idempotent retry: nothing
    /// was decided).
    pub state: Option<S>,
    /// The answer to give (on an idempotent retry: the first answer).
    pub answer: R,
}

/// How a write's answer is rendered from what the store answered and the
/// state the write left.
pub type Respond<'a, S, R> = dyn Fn(&AppendResult, &S) -> R + Sync + 'a;

/// One write on one stream of the aggregate `A`, answered `R`.
pub struct WriteRequest<'a, A: Aggregate, R> {
    /// The tenant.
    pub network: NetworkId,
    /// The stream written.
    pub stream: StreamId,
    /// What the caller expects of the stream's version.
    pub expect: Expect,
    /// The commands, decided one after the other into one append.
    pub commands: Vec<A::Command>,
    /// Who, when, why.
    pub metadata: Metadata,
    /// The request's idempotency key, if any.
    pub idempotency: Option<Idempotency>,
    /// The state and version the caller has just loaded (decided on at
    /// the first attempt, saving a read).
    pub loaded: Option<(Option<A::State>, i64)>,
    /// The commands to add on the state `commands` leave — decided again,
    /// with them, at each attempt. Nothing at all to do is a conflict.
    pub then: Option<&'a FollowUps<'a, A>>,
    /// How the answer is rendered.
    pub respond: &'a Respond<'a, A::State, R>,
}

impl<'a, A: Aggregate, R> WriteRequest<'a, A, R> {
    /// `commands` on `stream`, nothing loaded, no follow-ups.
    pub fn new(
        network: NetworkId,
        stream: StreamId,
        expect: Expect,
        commands: Vec<A::Command>,
        metadata: Metadata,
        respond: &'a Respond<'a, A::State, R>,
    ) -> Self {
        WriteRequest {
            network,
            stream,
            expect,
            commands,
            metadata,
            idempotency: None,
            loaded: None,
            then: None,
            respond,
        }
    }

    /// With the request's idempotency key.
    pub fn idempotency(mut self, idempotency: Option<Idempotency>) -> Self {
        self.idempotency = idempotency;
        self
    }

    /// Decided at the first attempt on what the caller just loaded.
    pub fn loaded(mut self, state: Option<A::State>, version: i64) -> Self {
        self.loaded = Some((state, version));
        self
    }

    /// With follow-ups asked for on the state the commands leave.
    pub fn then(mut self, then: &'a FollowUps<'a, A>) -> Self {
        self.then = Some(then);
        self
    }
}

/// How many times a command without `If-Match` is decided again after a
/// concurrent writer moved the stream on.
const ATTEMPTS: usize = 5;

/// How many times a keyed write starts again in a new transaction when the
/// database asks (a transaction older than the stream's last append).
pub const RETRIES: u32 = 50;

/// The events of one stream of an aggregate, rebuilt into its state, and
/// its version (0: no stream). A stream of another kind is not found.
pub async fn load<A: Aggregate>(
    store: &EventStore,
    network: NetworkId,
    stream: StreamId,
) -> Result<(Option<A::State>, i64), AppError> {
    let events = store.load_stream(network, stream).await?;
    rebuild::<A>(&events)
}

/// Rebuild a state from its stream's events.
pub fn rebuild<A: Aggregate>(
    events: &[RecordedEvent],
) -> Result<(Option<A::State>, i64), AppError> {
    if events
        .first()
        .is_some_and(|e| e.stream_kind != A::STREAM_KIND)
    {
        return Err(AppError::NotFound);
    }
    let mut state = None;
    for e in events {
        let event = A::decode(&e.event_type, &e.payload)
            .map_err(|err| AppError::Internal(anyhow::anyhow!("stored event unreadable: {err}")))?;
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
) -> Result<(AppendRequest, A::State), AppError> {
    prepare_all::<A>(network, stream, state, version, vec![command], metadata)
}

/// Decide `commands` one after the other, each on the state the previous
/// ones left, and make one append request of all their events: all or
/// nothing (a refusal of any refuses them all). The request carries no
/// idempotency key: a keyed write claims its key in its transaction
/// ([`begin`]).
pub fn prepare_all<A: Aggregate>(
    network: NetworkId,
    stream: StreamId,
    state: Option<A::State>,
    version: i64,
    commands: Vec<A::Command>,
    metadata: Metadata,
) -> Result<(AppendRequest, A::State), AppError> {
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
        after.ok_or_else(|| AppError::Internal(anyhow::anyhow!("a command left no state")))?;
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
        idempotency: None,
    };
    Ok((req, after))
}

/// The commands to add on the state the commands of a write leave.
pub type FollowUps<'a, A> =
    dyn Fn(&<A as Aggregate>::State) -> Vec<<A as Aggregate>::Command> + Sync + 'a;

/// Carry out a write (see the module documentation).
pub async fn execute<A: Aggregate, R: Keep>(
    store: &EventStore,
    req: WriteRequest<'_, A, R>,
) -> Result<Done<A::State, R>, AppError>
where
    A::Command: Clone,
{
    let WriteRequest {
        network,
        stream,
        expect,
        commands,
        metadata,
        idempotency,
        mut loaded,
        then,
        respond,
    } = req;
    // A retry of a request carried out already: its first answer.
    if let Some(idem) = &idempotency
        && let Some(first) = store.idempotent_answer(network, idem).await?
    {
        return replayed::<A, R>(store, network, first, respond).await;
    }
    let mut attempt = 0;
    let mut retries = 0;
    loop {
        attempt += 1;
        // Decided before the key is claimed, so that a write holds one
        // connection at a time and its transaction stays short.
        let decided = decide_next::<A>(
            store,
            network,
            stream,
            expect,
            &commands,
            then,
            loaded.take(),
            &metadata,
        )
        .await;
        let (req, after, version) = match decided {
            Ok(d) => d,
            Err(e) => {
                // A retry that raced the first request past the look-up
                // above may be refused on what the first left: it is
                // given the first answer instead.
                if let Some(idem) = &idempotency {
                    match store.idempotent_answer(network, idem).await {
                        Ok(Some(first)) => {
                            return replayed::<A, R>(store, network, first, respond).await;
                        }
                        // The same key with another request: that is the
                        // answer, not this request's own refusal.
                        Err(mismatch @ StoreError::IdempotencyMismatch) => {
                            return Err(mismatch.into());
                        }
                        _ => {}
                    }
                }
                return Err(e);
            }
        };
        // With a key: one transaction that claims it first (a retry racing
        // the first request waits here, then is given its answer).
        let mut write = match &idempotency {
            None => None,
            Some(idem) => match begin(store, network, Some(idem), stream).await? {
                Begun::Answered(first) => {
                    return replayed::<A, R>(store, network, first, respond).await;
                }
                Begun::Write(w) => Some(w),
            },
        };
        let appended = match &mut write {
            Some(w) => store.append_in(w.conn(), &req).await,
            None => store.append(&req).await,
        };
        match appended {
            Ok(result) => {
                let answer = respond(&result, &after);
                if let Some(w) = write {
                    w.commit(store, &result, &answer).await?;
                }
                return Ok(Done {
                    result,
                    state: Some(after),
                    answer,
                });
            }
            // Only a transaction of our own (a keyed write) is told to
            // start again; the pool-level append retries by itself.
            Err(StoreError::Retry) if idempotency.is_some() && retries < RETRIES => {
                retries += 1;
                attempt -= 1;
                back_off(retries).await;
                continue;
            }
            Err(StoreError::Conflict { .. }) if expect == Expect::Latest && attempt < ATTEMPTS => {
                continue;
            }
            Err(StoreError::Conflict { .. }) if matches!(expect, Expect::Version(_)) => {
                return Err(AppError::PreconditionFailed(version.to_string()));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Load the stream (unless `loaded`), check what the caller expects of
/// it, and decide `commands` and the follow-ups `then` asks for: the
/// append request, the state after it and the version decided on.
#[expect(
    clippy::too_many_arguments,
    reason = "each is a separate input of one write"
)]
async fn decide_next<A: Aggregate>(
    store: &EventStore,
    network: NetworkId,
    stream: StreamId,
    expect: Expect,
    commands: &[A::Command],
    then: Option<&FollowUps<'_, A>>,
    loaded: Option<(Option<A::State>, i64)>,
    metadata: &Metadata,
) -> Result<(AppendRequest, A::State, i64), AppError>
where
    A::Command: Clone,
{
    let (state, version) = if expect == Expect::New {
        (None, 0)
    } else if let Some(l) = loaded {
        l
    } else {
        load::<A>(store, network, stream).await?
    };
    match expect {
        Expect::Version(v) if v != version => {
            if state.is_none() {
                return Err(AppError::NotFound);
            }
            return Err(AppError::PreconditionFailed(v.to_string()));
        }
        Expect::Latest | Expect::Version(_) if state.is_none() => {
            return Err(AppError::NotFound);
        }
        _ => {}
    }
    let mut all = commands.to_vec();
    if let Some(then) = then {
        // The follow-ups, on the state the commands leave (pure, decided
        // again below with them).
        let mut left = state.clone();
        for c in commands {
            for e in A::decide(left.as_ref(), c.clone())? {
                left = A::evolve(left, &e);
            }
        }
        all.extend(left.as_ref().map(then).unwrap_or_default());
    }
    if all.is_empty() {
        return Err(AppError::Conflict(format!(
            "nothing to do on this {} now",
            A::STREAM_KIND
        )));
    }
    let (req, after) = prepare_all::<A>(network, stream, state, version, all, metadata.clone())?;
    Ok((req, after, version))
}

/// The answer of a retry of a write carried out already: the first
/// answer as kept; for a record kept before answers were, rendered from
/// its result and the stream as it is now.
async fn replayed<A: Aggregate, R: Keep>(
    store: &EventStore,
    network: NetworkId,
    first: FirstAnswer,
    respond: &Respond<'_, A::State, R>,
) -> Result<Done<A::State, R>, AppError> {
    let answer = match first.answer {
        Some(kept) => R::from_kept(kept)?,
        None => {
            let (state, _) = load::<A>(store, network, first.result.stream_id).await?;
            respond(&first.result, &state.ok_or(AppError::NotFound)?)
        }
    };
    Ok(Done {
        result: first.result,
        state: None,
        answer,
    })
}

/// Wait a little, with jitter, before a transaction starts again, so
/// writers of one hot stream do not collide again in step.
pub async fn back_off(retries: u32) {
    let jitter = rand::random_range(0..=retries.min(20) * 200);
    tokio::time::sleep(std::time::Duration::from_micros(u64::from(jitter))).await;
}

/// The transaction of a write, with the idempotency key it claimed, if
/// any. Dropped without [`Tx::commit`], it rolls back (and releases the
/// claim).
pub struct Tx {
    tx: sqlx::Transaction<'static, sqlx::Postgres>,
    key: Option<(NetworkId, Idempotency)>,
}

/// What beginning a write found.
pub enum Begun {
    /// The write is ours to carry out.
    Write(Tx),
    /// A request with this key was carried out already: its first answer.
    Answered(FirstAnswer),
}

/// Begin a write on `stream` (the stream it creates or changes), claiming
/// `idem` if given: a retry of a request carried out already — or being
/// carried out: the claim waits for it to commit — is
/// [`Begun::Answered`].
pub async fn begin(
    store: &EventStore,
    network: NetworkId,
    idem: Option<&Idempotency>,
    stream: StreamId,
) -> Result<Begun, AppError> {
    let mut tx = store.pool().begin().await?;
    if let Some(idem) = idem
        && let Claim::Answered(first) = store.claim_in(&mut tx, network, idem, stream).await?
    {
        tx.rollback().await?;
        return Ok(Begun::Answered(first));
    }
    Ok(Begun::Write(Tx {
        tx,
        key: idem.map(|i| (network, *i)),
    }))
}

impl Tx {
    /// The connection to append on (appends carry no key of their own).
    pub fn conn(&mut self) -> &mut PgConnection {
        &mut self.tx
    }

    /// Keep `answer` with the claimed key, if any, and commit: the events,
    /// the key's record and its answer become visible together.
    pub async fn commit(
        mut self,
        store: &EventStore,
        result: &AppendResult,
        answer: &impl Keep,
    ) -> Result<(), AppError> {
        if let Some((network, idem)) = &self.key {
            let (kept, about) = answer.to_kept();
            store
                .keep_answer_in(&mut self.tx, *network, idem, result, &kept, about)
                .await?;
        }
        self.tx.commit().await?;
        store.appended().notify_waiters();
        Ok(())
    }
}

/// The first answer kept for `first`, if it was kept (a record kept before
/// answers were has none).
pub fn kept<R: Keep>(first: FirstAnswer) -> Result<Option<R>, AppError> {
    first.answer.map(R::from_kept).transpose()
}

/// Answer a request once per `Idempotency-Key`: a retry of a request
/// carried out already is given its first answer before `work` looks at
/// anything (a handler's checks and plans may read what the first request
/// changed), and so is a retry whose `work` failed because it raced the
/// first request past that look-up. Without a key, `work`'s answer.
/// `work` writes through this module, which keeps its answer with the key.
pub async fn answer_once<R: Keep, E: From<AppError>>(
    store: &EventStore,
    network: NetworkId,
    idem: Option<&Idempotency>,
    work: impl Future<Output = Result<R, E>>,
) -> Result<R, E> {
    let Some(idem) = idem else {
        return work.await;
    };
    let first = store
        .idempotent_answer(network, idem)
        .await
        .map_err(AppError::from)?;
    if let Some(first) = first
        && let Some(answer) = kept(first)?
    {
        return Ok(answer);
    }
    match work.await {
        Ok(answer) => Ok(answer),
        Err(e) => match store.idempotent_answer(network, idem).await {
            Ok(Some(first)) => match kept(first)? {
                Some(answer) => Ok(answer),
                None => Err(e),
            },
            // The same key with another request: that is the answer, not
            // this request's own refusal.
            Err(mismatch @ StoreError::IdempotencyMismatch) => Err(AppError::from(mismatch).into()),
            _ => Err(e),
        },
    }
}
