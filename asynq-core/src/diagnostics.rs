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
use std::marker::PhantomData;
use std::ops::ControlFlow;
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
    note = "write the caller as an asynq function, `#[asynq] fn` (not `async fn`), to await tasks in it; or run the task: `runtime.run_async(task).await`; plain async code that a run drives (`asynq_core::any`) awaits it as `Yieldable::into_future(task).await`"
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

/// The operand of `?` inside an asynq function, checked before `?` applies to it:
/// `#[asynq]` turns `x?` into `TryOperand::check(x)?` unless `x` is an `.await`, so that `?`
/// on a task not awaited reports [`QuestionMarkOnTask`]. It is implemented for the types that
/// implement `std::ops::Try` on stable Rust (`Result`, `Option`, `ControlFlow`, and `Poll`
/// of a `Result` or of an `Option<Result>`), as the identity; for any other type it reports
/// what rustc reports.
#[diagnostic::on_unimplemented(
    message = "the `?` operator can only be applied to values that implement `Try`",
    label = "the `?` operator cannot be applied to type `{Self}`"
)]
pub trait TryOperand {
    /// What `?` then applies to: the operand itself, or a task's output.
    type Out;
    /// The operand, unchanged.
    fn check(self) -> Self::Out;
}

/// Implements [`TryOperand`] as the identity for types that `?` applies to.
macro_rules! try_operands {
    ($(impl<$($param:ident),*> for $ty:ty;)*) => {$(
        #[diagnostic::do_not_recommend]
        impl<$($param),*> TryOperand for $ty {
            type Out = Self;

            #[inline(always)]
            fn check(self) -> Self {
                self
            }
        }
    )*};
}

try_operands! {
    impl<T, E> for Result<T, E>;
    impl<T> for Option<T>;
    impl<B, C> for ControlFlow<B, C>;
    impl<T, E> for Poll<Result<T, E>>;
    impl<T, E> for Poll<Option<Result<T, E>>>;
}

/// The marker of `?` applied to a task.
#[diagnostic::on_unimplemented(
    message = "`?` needs the output of this task, and a task runs only when it is awaited",
    label = "a task, not its output: write `.await?`",
    note = "tasks bound together, as in `let (a, b) = (f(x), g(y));`, are awaited together: `let (a, b) = (f(x), g(y)).await;`"
)]
pub trait QuestionMarkOnTask {}

#[diagnostic::do_not_recommend]
impl QuestionMarkOnTask for Unreachable {}

/// A task given to `?`: never satisfied, reports [`QuestionMarkOnTask`]. A trait of its own
/// (rather than an implementation of [`TryOperand`] for `Task`) so that rustc does not list
/// `Task` among the types `?` applies to when the operand is of another type; implemented for
/// every type with [`TaskParts`] rather than for `Task` so that rustc does not list that
/// implementation when it reports a task.
pub trait TaskTried {
    /// The task's output.
    type Output;
}

impl<T: TaskParts> TaskTried for T
where
    T::Future: QuestionMarkOnTask,
{
    type Output = T::Output;
}

/// A task's future and output, for [`TaskTried`]. What rustc reports for an operand of `?`
/// that is neither a task nor of a type `?` applies to: its message is rustc's own for `?`.
#[diagnostic::on_unimplemented(
    message = "the `?` operator can only be applied to values that implement `Try`",
    label = "the `?` operator cannot be applied to type `{Self}`"
)]
pub trait TaskParts {
    /// The task's future.
    type Future;
    /// The task's output.
    type Output;
}

#[diagnostic::do_not_recommend]
impl<F: Future> TaskParts for Task<F> {
    type Future = F;
    type Output = F::Output;
}

#[diagnostic::do_not_recommend]
impl<T: TaskTried> TryOperand for T {
    type Out = T::Output;

    fn check(self) -> T::Output {
        unreachable!("no type satisfies `QuestionMarkOnTask`")
    }
}

/// The elements of an awaited `vec![..]` or array, and the arms of an awaited `if` or
/// `match`, that `#[asynq]` checks for one type: tasks of different asynq functions have types
/// of their own, and rustc's "expected future, found a different future" does not say what to
/// write instead.
#[diagnostic::on_unimplemented(
    message = "tasks of different asynq functions have different types, so they cannot share one `Vec`, array, `if` or `match`",
    label = "not the type of the first one",
    note = "await different tasks as a tuple: `(f(x), g(y)).await`; or await each arm: `if c {{ f(x).await }} else {{ g(y).await }}`; or give them one type with `.boxed()` on each (`Task<BoxFuture<'_, T>>`) or an enum of your own that implements `Yieldable`"
)]
pub trait SameTask<First> {
    /// The value, as the first one's type.
    fn same(self, first: PhantomData<First>) -> First;
}

impl<T> SameTask<T> for T {
    #[inline(always)]
    fn same(self, _: PhantomData<T>) -> T {
        self
    }
}

/// Never used. A second implementation, so that rustc cannot pick the first one as soon as it
/// knows a value's type and infer `First` from it: then an arm whose type differs from the
/// first arm's would be reported as a mismatch of the `PhantomData` argument, not as
/// [`SameTask`] unmet.
#[diagnostic::do_not_recommend]
impl<T> SameTask<NotFirst<T>> for T {
    fn same(self, _: PhantomData<NotFirst<T>>) -> NotFirst<T> {
        unreachable!("no value of `NotFirst` exists")
    }
}

/// A type no value is the first of: no `T` is `NotFirst<T>`.
#[allow(
    dead_code,
    reason = "only names the second implementation of `SameTask`"
)]
struct NotFirst<T>(Unreachable, PhantomData<T>);

/// The type of the first element or arm, for [`SameTask`]. `#[asynq]` passes it on to the
/// others as a `PhantomData`, which is `Copy`.
#[inline(always)]
pub fn first_of<T>(_: &T) -> PhantomData<T> {
    PhantomData
}

/// The first arm of an awaited `if` or `match`: fixes the type that the other arms are checked
/// against with [`SameTask`].
#[inline(always)]
pub fn first_arm<T>(value: T, _: &PhantomData<T>) -> T {
    value
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
