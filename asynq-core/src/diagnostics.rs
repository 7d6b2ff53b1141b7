//! Items that exist only for the compiler's messages about misused tasks.
//!
//! A task misused where rustc cannot know what a task is gets rustc's generic message: "no
//! method named `unwrap` found for struct `Task`", "`Task<..>` is not a future", "the `?`
//! operator cannot be applied to type `Task<..>`". None of them says that a task runs only
//! when an asynq function awaits it or a `Runtime` runs it. The items here turn those mistakes
//! into messages that do.
//!
//! Each item can never be used: its where-clause names a marker trait that no type can
//! satisfy, and the marker's `#[diagnostic::on_unimplemented]` is what rustc reports when the
//! item is reached. The markers are implemented for one uninhabited private type only, with
//! `#[diagnostic::do_not_recommend]`, so that rustc neither lists that implementation nor
//! adds "this trait has no implementations, consider adding one". A marker's `Self` is the
//! task's future type, not the task, wherever the item is a trait implementation for `Task`:
//! rustc reports the deepest unmet bound only when its type differs from the type the
//! implementation is for; otherwise it reports the trait itself with its own message.
//!
//! Nothing here costs anything at run time: the bodies are unreachable.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::task::Task;

/// The only type implementing the markers below: it has no values, so no task satisfies them.
#[allow(dead_code, reason = "only implements the markers")]
enum Unreachable {}

/// The marker of methods that a porting user calls on a task as if it were its output.
#[diagnostic::on_unimplemented(
    message = "a task runs only when an asynq function awaits it or a `Runtime` runs it",
    label = "this is a task, not its output",
    note = "inside an #[asynq] function, await it first: `f(x).await.unwrap()`; in plain code, run it: `runtime.run(f(x))`"
)]
pub trait Awaited {}

#[diagnostic::do_not_recommend]
impl Awaited for Unreachable {}

/// The marker of the `Future` implementation: awaiting a task in a plain `async fn`, or
/// handing it to another executor.
#[diagnostic::on_unimplemented(
    message = "a task is not a future: it runs only when an asynq function awaits it or a `Runtime` runs it",
    label = "an asynq task, awaited outside asynq functions",
    note = "write the caller as an asynq function, `#[asynq] fn` (not `async fn`), to await tasks in it; or run the task: `runtime.run_async(task).await`"
)]
pub trait AwaitedInAsynq {}

#[diagnostic::do_not_recommend]
impl AwaitedInAsynq for Unreachable {}

/// Never usable: a task is not a future, and no type meets the bound on `F`. The
/// implementation exists for the compiler's message: awaiting a task in a plain `async fn`,
/// or handing it to another executor (`tokio::spawn(task)`, `block_on(task)`), reports that a
/// task runs only when an asynq function awaits it or a `Runtime` runs it, where rustc alone
/// says "`Task<..>` is not a future". (The blanket implementations for futures that this page
/// lists never apply to a task either.)
impl<F: Future + AwaitedInAsynq> Future for Task<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<F::Output> {
        unreachable!("no type satisfies `AwaitedInAsynq`")
    }
}

/// Methods of `Result`, `Option` and collections, called on a task as if it were its output
/// (`user_name(1).unwrap()`): each reports [`Awaited`] instead of "no method named `unwrap`".
/// Their generic return types fit any context, so that the report is the only error. (No
/// `to_string`: rustc would then suggest `.to_string()` to turn a task into a `String`.)
#[doc(hidden)]
#[allow(missing_docs, clippy::len_without_is_empty)]
impl<F: Future> Task<F> {
    pub fn unwrap<T>(self) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn expect<M, T>(self, _message: M) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn unwrap_or<D, T>(self, _default: D) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn unwrap_or_else<G, T>(self, _default: G) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn unwrap_or_default<T>(self) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn map<G, T>(self, _f: G) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn map_err<G, T>(self, _f: G) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn and_then<G, T>(self, _f: G) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn ok<T>(self) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn err<T>(self) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn ok_or<E, T>(self, _error: E) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn is_ok(&self) -> bool
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn is_err(&self) -> bool
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn is_some(&self) -> bool
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn is_none(&self) -> bool
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn len(&self) -> usize
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn is_empty(&self) -> bool
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn iter<T>(&self) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }

    pub fn get<I, T>(&self, _index: I) -> T
    where
        Self: Awaited,
    {
        unreachable!("no type satisfies `Awaited`")
    }
}

/// The async block of an asynq function without `#[asynq(boxed)]`. Built by a macro only so
/// that rustc's error for a recursion it finds (`a` calls `b`, `b` calls `a`: "recursion in an
/// async block requires boxing", suggesting `Box::pin`) ends with "this error originates in the
/// macro `..::unboxed_task_use_asynq_boxed_to_recurse`": the fix is `#[asynq(boxed)]` on one of
/// the functions. (`#[asynq]` reports a function calling itself on its own.)
#[doc(hidden)]
#[macro_export]
macro_rules! __unboxed_task_use_asynq_boxed_to_recurse {
    ($body:tt) => {
        async move $body
    };
}

pub use crate::__unboxed_task_use_asynq_boxed_to_recurse as unboxed_task_use_asynq_boxed_to_recurse;
