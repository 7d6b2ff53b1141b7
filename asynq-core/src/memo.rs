//! Memoized asynq functions: `#[asynq(memo)]` (Python asynq's `deduplicate`, Haxl's `memo`).
//!
//! Within one run, calls of a memoized function with equal arguments share one execution.
//! The first call to be polled becomes the *owner*: it runs the body in place, as any task.
//! Calls polled while the owner runs wait for it like fetch requests wait for a key, and are
//! woken when it finishes; calls polled after it get a clone of its output at once. A call
//! that waits on itself (`f(x)` awaiting `f(x)`) can never finish: the run ends with
//! [`Error::Stall`](crate::Error::Stall) naming it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::{Waiters, with_ctx};

/// The memo tables of one run, one per memoized function (and instantiation).
#[derive(Default)]
pub(crate) struct Memos {
    tables: HashMap<TypeId, Box<dyn Any + Send>>,
}

impl fmt::Debug for Memos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memos").field("functions", &self.tables.len()).finish()
    }
}

impl Memos {
    fn table<K, T>(&mut self, id: TypeId) -> &mut HashMap<K, Entry<T>>
    where
        K: Send + 'static,
        T: Send + 'static,
    {
        self.tables
            .entry(id)
            .or_insert_with(|| Box::new(HashMap::<K, Entry<T>>::new()))
            .downcast_mut()
            .expect("a memo table is keyed by the types of its entries")
    }
}

enum Entry<T> {
    Running(Waiters),
    Done(T),
}

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

/// Checks one argument of a memoized function where it is written (for the error's span).
#[doc(hidden)]
#[inline(always)]
pub fn check_key<K: MemoKey>(_: &K) {}

/// Checks the output type of a memoized function where it is written.
#[doc(hidden)]
#[inline(always)]
pub fn check_output<T: MemoOutput>(_: PhantomData<fn() -> T>) {}

/// The body of a memoized function, shared by calls with equal `key`s; `Id` names the
/// function (and its generic arguments).
#[doc(hidden)]
pub fn memo<Id: 'static, K: MemoKey, F>(key: K, future: F) -> Memo<Id, K, F>
where
    F: Future,
    F::Output: MemoOutput,
{
    Memo { key: Some(key), role: Role::New, future, _id: PhantomData }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    New,
    /// Runs the body.
    Owner,
    /// Waits for the owner.
    Waiter,
    Done,
}

pin_project_lite::pin_project! {
    /// The future of a memoized function's body.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct Memo<Id, K, F> {
        key: Option<K>,
        role: Role,
        #[pin]
        future: F,
        _id: PhantomData<fn() -> Id>,
    }
}

impl<Id, K, F> fmt::Debug for Memo<Id, K, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memo").field("role", &self.role).finish_non_exhaustive()
    }
}

impl<Id: 'static, K: MemoKey, F> Future for Memo<Id, K, F>
where
    F: Future,
    F::Output: MemoOutput,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let id = TypeId::of::<(Id, K, F::Output)>();
        match *this.role {
            Role::New => {
                let key = this.key.as_ref().expect("a memo key is kept until the body finishes");
                let found = with_ctx(|run| {
                    let waiter = run.current_waiter();
                    let table = run.memos.table::<K, F::Output>(id);
                    match table.get_mut(key) {
                        Some(Entry::Done(output)) => Some(Poll::Ready(output.clone())),
                        Some(Entry::Running(waiters)) => {
                            waiters.push(waiter);
                            Some(Poll::Pending)
                        }
                        None => {
                            table.insert(key.clone(), Entry::Running(Waiters::new()));
                            None
                        }
                    }
                });
                match found {
                    Some(Some(Poll::Ready(output))) => {
                        *this.role = Role::Done;
                        return Poll::Ready(output);
                    }
                    Some(Some(Poll::Pending)) => {
                        *this.role = Role::Waiter;
                        return Poll::Pending;
                    }
                    // First call in this run, or outside any run: run the body.
                    Some(None) | None => *this.role = Role::Owner,
                }
            }
            Role::Waiter => {
                let key = this.key.as_ref().expect("a waiting memo call keeps its key");
                let done = with_ctx(|run| match run.memos.table::<K, F::Output>(id).get(key) {
                    Some(Entry::Done(output)) => Some(output.clone()),
                    _ => None,
                });
                return match done.flatten() {
                    Some(output) => {
                        *this.role = Role::Done;
                        Poll::Ready(output)
                    }
                    None => Poll::Pending,
                };
            }
            Role::Owner => {}
            Role::Done => panic!("a memoized task polled after it completed"),
        }
        let output = std::task::ready!(this.future.poll(cx));
        *this.role = Role::Done;
        if let Some(key) = this.key.take() {
            with_ctx(|run| {
                let table = run.memos.table::<K, F::Output>(id);
                if let Some(Entry::Running(waiters)) = table.insert(key, Entry::Done(output.clone())) {
                    waiters.into_iter().for_each(|w| run.nodes.wake(w));
                }
            });
        }
        Poll::Ready(output)
    }
}
