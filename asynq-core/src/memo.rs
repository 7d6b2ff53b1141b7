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
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::{Waiters, with_ctx};

/// The memo tables of one run, one per memoized function (and instantiation).
///
/// Keys and outputs are type-erased where the expansion checks them ([`check_key`],
/// [`check_output`]): the shared-execution future itself then carries no trait bounds, so a
/// type that cannot be a key is reported once, on the argument, and nowhere else.
#[derive(Default)]
pub(crate) struct Memos {
    tables: HashMap<TypeId, HashMap<Vec<ErasedKey>, Entry>>,
}

impl fmt::Debug for Memos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Memos")
            .field("functions", &self.tables.len())
            .finish()
    }
}

enum Entry {
    Running(Waiters),
    Done(Box<dyn Any + Send>),
}

/// One argument of a memoized call, type-erased: hashed, compared and cloned through its own
/// implementations.
#[doc(hidden)]
pub struct ErasedKey(Box<dyn DynKey>);

trait DynKey: Send + 'static {
    fn as_any(&self) -> &dyn Any;
    fn hash_into(&self, state: &mut dyn Hasher);
    fn eq_key(&self, other: &dyn DynKey) -> bool;
    fn clone_key(&self) -> Box<dyn DynKey>;
}

impl<K: MemoKey> DynKey for K {
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn hash_into(&self, mut state: &mut dyn Hasher) {
        TypeId::of::<K>().hash(&mut state);
        self.hash(&mut state);
    }
    fn eq_key(&self, other: &dyn DynKey) -> bool {
        other.as_any().downcast_ref::<K>() == Some(self)
    }
    fn clone_key(&self) -> Box<dyn DynKey> {
        Box::new(self.clone())
    }
}

impl Hash for ErasedKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash_into(state);
    }
}

impl PartialEq for ErasedKey {
    fn eq(&self, other: &Self) -> bool {
        self.0.eq_key(&*other.0)
    }
}

impl Eq for ErasedKey {}

impl Clone for ErasedKey {
    fn clone(&self) -> Self {
        ErasedKey(self.0.clone_key())
    }
}

impl fmt::Debug for ErasedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ErasedKey")
    }
}

/// How to share a memoized function's output: store a clone, clone it back out.
#[doc(hidden)]
pub struct Shareable<T> {
    store: fn(&T) -> Box<dyn Any + Send>,
    load: fn(&(dyn Any + Send)) -> T,
}

impl<T> fmt::Debug for Shareable<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Shareable")
    }
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
    /// Waits for the owner.
    Waiter,
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
                    .as_ref()
                    .expect("a memo key is kept until the body finishes");
                let found = with_ctx(|run| {
                    // The waiter (and the node it needs) only for a call that has to wait.
                    let (memos, waiter) = run.memos_and_waiter();
                    let table = memos.tables.entry(id).or_default();
                    match table.get_mut(key) {
                        Some(Entry::Done(output)) => Some(Poll::Ready((share.load)(&**output))),
                        Some(Entry::Running(waiters)) => {
                            waiters.push(waiter.get());
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
                let key = this
                    .key
                    .as_ref()
                    .expect("a waiting memo call keeps its key");
                with_ctx(|run| {
                    if let Some(diagnosis) = &mut run.diagnose {
                        diagnosis.waits_on(
                            "waits for the call with the same arguments that runs first \
                             (#[asynq(memo)]); a call that waits on itself never finishes"
                                .to_owned(),
                        );
                    }
                });
                let done =
                    with_ctx(
                        |run| match run.memos.tables.get(&id).and_then(|t| t.get(key)) {
                            Some(Entry::Done(output)) => Some((share.load)(&**output)),
                            _ => None,
                        },
                    );
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
                let table = run.memos.tables.entry(id).or_default();
                if let Some(Entry::Running(waiters)) =
                    table.insert(key, Entry::Done((share.store)(&output)))
                {
                    waiters.into_iter().for_each(|w| run.nodes.wake(w));
                }
            });
        }
        Poll::Ready(output)
    }
}
