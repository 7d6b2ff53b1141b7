//! Memoized asynq functions: `#[asynq(memo)]` (Python asynq's `deduplicate`, Haxl's `memo`).
//!
//! Within one run, calls of a memoized function with equal arguments share one execution.
//! The first call to be polled becomes the *owner*: it runs the body in place, as any task.
//! Calls polled while the owner runs wait for it like fetch requests wait for a key, and are
//! woken when it finishes; calls polled after it get a clone of its output at once. A call
//! that waits on itself (`f(x)` awaiting `f(x)`) can never finish: the run ends with
//! [`Error::Stall`](crate::Error::Stall) naming it.
//!
//! Calls share an execution only under the same scoped values (the same
//! [`scope`](crate::ScopedKey::scope) calls around them): a body may read a scoped value, so
//! `(LOCALE.scope("fr", greet(1)), LOCALE.scope("en", greet(1)))` runs `greet(1)` twice, once
//! per locale. Two `scope` calls with equal values count as different (values need not be
//! comparable); hooks ([`with_hooks`](crate::with_hooks)) do not count.
//!
//! A failed execution (an output that [`MemoFailure`] says is a failure: an `Err`) is not
//! kept: the calls that waited on it get its output, and the next call runs the body again,
//! as a failed fetch is fetched again. The expansion finds `MemoFailure` by autoref
//! specialization ([`FailureByTrait`], [`FailureNever`]), so that any output type may still be
//! memoized.

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::with_ctx;

use crate::memos::Found;
pub(crate) use crate::memos::{ErasedKey, Shareable};

/// The arguments of a memoized function, as its memo key.
#[diagnostic::on_unimplemented(
    message = "the argument type `{Self}` of a #[asynq(memo)] function cannot be a memo key",
    label = "memo keys must be `Hash + Eq + Clone + Send + 'static`",
    note = "calls with equal arguments share one execution, so each argument is hashed, compared and cloned; take an owned value that implements these traits, or remove `memo`"
)]
pub trait MemoKey: Hash + Eq + Clone + Send + 'static {}

impl<T: Hash + Eq + Clone + Send + 'static> MemoKey for T {}

/// The output of a memoized function, cloned to every caller.
#[diagnostic::on_unimplemented(
    message = "the output type `{Self}` of a #[asynq(memo)] function cannot be shared",
    label = "memoized outputs must be `Clone + Send + 'static`",
    note = "every caller with equal arguments gets a clone of the one execution's output; derive `Clone`, return an `Arc`, or remove `memo`"
)]
pub trait MemoOutput: Clone + Send + 'static {}

impl<T: Clone + Send + 'static> MemoOutput for T {}

/// An output of a memoized function that can be a failure: a failed execution is not kept.
///
/// Within a run, calls of an `#[asynq(memo)]` function with equal arguments share one
/// execution. When that execution fails, the calls that waited on it get its output (the
/// error), but the failure is not kept for the run: the next call runs the body again, as a
/// failed fetch is fetched again. So [`tools::retry`](crate::tools::retry) over a memoized
/// function retries. Implemented for `Result` (an `Err` is a failure); implement it for an
/// output type of your own that carries failures. Outputs of other types are always kept.
///
/// The expansion of `#[asynq(memo)]` sees this trait where the output type is known: an
/// output written as a type parameter `T` is always kept, even when `T` is a `Result`.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use asynq_core::{asynq, tools, DataSource, Error, Runtime};
///
/// /// Fails its first call, as a store that drops a connection does.
/// struct Flaky(AtomicU32);
/// impl DataSource for Flaky {
///     type Key = u64;
///     type Value = u64;
///     type Error = String;
///     async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
///         match self.0.fetch_add(1, Ordering::Relaxed) {
///             0 => Err("connection reset".into()),
///             _ => Ok(keys.iter().map(|&k| (k, k + 1)).collect()),
///         }
///     }
/// }
///
/// #[asynq(memo)]
/// fn get(k: u64) -> Result<u64, Error> {
///     Flaky::load(k).await
/// }
///
/// let rt = Runtime::new().with_source(Flaky(AtomicU32::new(0)));
/// assert_eq!(rt.run(tools::retry(3, || get(42)))?, 43);
/// assert_eq!(rt.last_stats().calls(), 2); // the failure was not kept
/// # Ok::<(), Error>(())
/// ```
pub trait MemoFailure {
    /// Whether this output is a failure, not to be kept for later calls.
    fn is_failure(&self) -> bool;
}

impl<T, E> MemoFailure for Result<T, E> {
    fn is_failure(&self) -> bool {
        self.is_err()
    }
}

/// What `#[asynq(memo)]` calls on `&&PhantomData<Output>` to find how to tell a failure:
/// this trait's method (on `&PhantomData`) when the output is a [`MemoFailure`], else
/// [`FailureNever`]'s (on `PhantomData`, one reference deeper: found only when this one does
/// not apply).
#[doc(hidden)]
pub trait FailureByTrait<T> {
    fn asynq_memo_failure(&self) -> fn(&T) -> bool;
}

impl<T: MemoFailure> FailureByTrait<T> for &PhantomData<T> {
    fn asynq_memo_failure(&self) -> fn(&T) -> bool {
        T::is_failure
    }
}

/// See [`FailureByTrait`]: outputs that are not a [`MemoFailure`] never fail.
#[doc(hidden)]
pub trait FailureNever<T> {
    fn asynq_memo_failure(&self) -> fn(&T) -> bool;
}

impl<T> FailureNever<T> for PhantomData<T> {
    fn asynq_memo_failure(&self) -> fn(&T) -> bool {
        |_| false
    }
}

/// Checks one argument of a memoized function where it is written (for the error's span) and
/// turns a clone of it into a key.
#[doc(hidden)]
pub fn check_key<K: MemoKey>(key: &K) -> ErasedKey {
    ErasedKey(Box::new(key.clone()))
}

/// Checks the output type of a memoized function where it is written.
#[doc(hidden)]
pub fn check_output<T: MemoOutput>() -> Shareable<T> {
    Shareable {
        store: |output| Box::new(output.clone()),
        load: |stored| {
            stored
                .downcast_ref::<T>()
                .expect("a memo entry holds its function's output")
                .clone()
        },
        failed: |_| false,
    }
}

/// The body of a memoized function, shared by calls with equal `key`s; `Id` names the
/// function (and its generic arguments).
#[doc(hidden)]
pub fn memo<Id: 'static, F: Future>(
    key: Vec<ErasedKey>,
    share: Shareable<F::Output>,
    future: F,
) -> Memo<Id, F> {
    Memo {
        key: Some(key),
        share,
        role: Role::New,
        future,
        _id: PhantomData,
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    New,
    /// Runs the body.
    Owner,
    /// Waits for the owner of this execution.
    Waiter {
        execution: u64,
    },
    Done,
}

pin_project_lite::pin_project! {
    /// The future of a memoized function's body.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Memo<Id, F: Future> {
        key: Option<Vec<ErasedKey>>,
        share: Shareable<F::Output>,
        role: Role,
        #[pin]
        future: F,
        _id: PhantomData<fn() -> Id>,
    }
}

impl<Id, F: Future> fmt::Debug for Memo<Id, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memo")
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl<Id: 'static, F: Future> Future for Memo<Id, F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let id = TypeId::of::<Id>();
        let share = &*this.share;
        match *this.role {
            Role::New => {
                let key = this
                    .key
                    .as_mut()
                    .expect("a memo key is kept until the body finishes");
                match start(id, key, share) {
                    Some(Some(Found::Done(output))) => {
                        *this.role = Role::Done;
                        return Poll::Ready(output);
                    }
                    Some(Some(Found::Running(execution))) => {
                        *this.role = Role::Waiter { execution };
                        wake_current_on(cx.waker());
                        return Poll::Pending;
                    }
                    // First call in this run, or outside any run: run the body.
                    Some(None) | None => *this.role = Role::Owner,
                }
            }
            Role::Waiter { execution } => {
                let key = this
                    .key
                    .as_ref()
                    .expect("a waiting memo call keeps its key");
                return match take_output(id, key, execution, share) {
                    Some(output) => {
                        *this.role = Role::Done;
                        Poll::Ready(output)
                    }
                    None => {
                        wake_node_on(cx.waker());
                        Poll::Pending
                    }
                };
            }
            Role::Owner => {}
            Role::Done => panic!("a memoized task polled after it completed"),
        }
        let output = std::task::ready!(this.future.poll(cx));
        *this.role = Role::Done;
        if let Some(key) = this.key.take() {
            finish(id, key, &output, share);
        }
        Poll::Ready(output)
    }
}

// The run's bookkeeping of a memoized call is generic over the output type only, not over the
// function and its body's future (closures inherit their function's type parameters): compiled
// once per output type rather than once per memoized function of the crates using it.

/// The run's answer to a new call with `key` (the scoped values in force are added to it):
/// see `Memos::start`; `None` outside a run.
fn start<T>(
    id: TypeId,
    key: &mut Vec<ErasedKey>,
    share: &Shareable<T>,
) -> Option<Option<Found<T>>> {
    with_ctx(|run| {
        // Calls under different scoped values do not share an execution: the values in force
        // are part of the key.
        key.push(check_key(&run.frames.values_key()));
        let (memos, waiter) = run.memos_and_waiter();
        memos.start(id, key, share, waiter)
    })
}

/// The output of `execution` for a call that waits on it, once it finished; says what the
/// call waits for to a diagnosis of a stall.
fn take_output<T>(
    id: TypeId,
    key: &[ErasedKey],
    execution: u64,
    share: &Shareable<T>,
) -> Option<T> {
    with_ctx(|run| {
        if let Some(diagnosis) = &mut run.diagnose {
            diagnosis.waits_on(
                "waits for the call with the same arguments that runs first \
                 (#[asynq(memo)]); a call that waits on itself never finishes"
                    .to_owned(),
            );
        }
        run.memos.take_output(id, key, execution, share)
    })
    .flatten()
}

/// The execution of `key` finished with `output`: keep it, and wake the calls that waited.
fn finish<T>(id: TypeId, key: Vec<ErasedKey>, output: &T, share: &Shareable<T>) {
    with_ctx(|run| {
        let waiters = run.memos.finish(id, key, output, share);
        waiters.into_iter().for_each(|w| run.nodes.wake(w));
    });
}

/// Wake `waker` (a foreign combinator's) when the current node wakes.
fn wake_current_on(waker: &std::task::Waker) {
    with_ctx(|run| crate::waker::attach(run, run.current, waker));
}

/// Wake `waker` (a foreign combinator's) when the node of the current poll wakes.
fn wake_node_on(waker: &std::task::Waker) {
    with_ctx(|run| {
        let node = run.current_node();
        crate::waker::attach(run, node, waker);
    });
}
