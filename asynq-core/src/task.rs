//! Tasks: what an `#[asynq]` function returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::with_ctx;
use crate::detached::{BoxFuture, LocalBoxFuture};
use crate::yieldable::Yieldable;

/// A call of an `#[asynq]` function that has not run yet.
///
/// Calling `#[asynq] fn f(x: u32) -> T` returns a `Task<impl Future<Output = T>>` at once and
/// runs nothing: the task runs when another asynq function awaits it (alone, or inside a tuple,
/// `Vec`, ... of yieldables awaited together) or when a [`Runtime`](crate::Runtime) runs it.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, Runtime};
///
/// #[asynq]
/// fn fib(n: u64) -> u64 {
///     if n < 2 {
///         return n;
///     }
///     // Recursion needs a box: the task's type would contain itself. (`boxed()`, the `Send`
///     // flavour, cannot prove `Send` for a type that contains itself; use `boxed_local()`.)
///     let (a, b) = (fib(n - 1).boxed_local(), fib(n - 2).boxed_local()).await;
///     a + b
/// }
///
/// let task = fib(10); // nothing has run yet
/// assert!(task.name().ends_with("fib"));
/// assert_eq!(Runtime::new().run(task).unwrap(), 55);
/// ```
#[must_use = "tasks do nothing unless awaited or run"]
pub struct Task<F> {
    name: Name,
    future: F,
}

/// An asynq function's path, as a thin pointer with two flags in its low bits: whether the task
/// has started, and whether it is boxed. One word per task, where a `&'static str` and two
/// `bool`s took three: tasks are created by the million, and at that scale their size is what
/// a run costs.
///
/// A [`Task`] and its [`TaskFuture`] hold the same two fields, so a `Vec` of tasks becomes a
/// `Vec` of their futures in place when it is awaited.
#[derive(Clone, Copy)]
struct Name(*const &'static str);

// SAFETY: the pointer is only ever read, and points to an immutable `&'static str`.
unsafe impl Send for Name {}
// SAFETY: as above.
unsafe impl Sync for Name {}

impl Name {
    const STARTED: usize = 1;
    /// The task's future is a [`BoxFuture`] or [`LocalBoxFuture`], which does the run's
    /// bookkeeping itself (see [`detached`](crate::detached)).
    const BOXED: usize = 2;
    const FLAGS: usize = Self::STARTED | Self::BOXED;

    const fn new(name: &'static &'static str) -> Self {
        // A `&str` is pointer-aligned, so the low bits of its address are free for the flags.
        const { assert!(align_of::<&str>() > Self::FLAGS) };
        Name(name)
    }

    fn get(self) -> &'static str {
        // SAFETY: without the flags this is the `&'static &'static str` given to `new`
        // (`map_addr` keeps its provenance).
        unsafe { *self.0.map_addr(|a| a & !Self::FLAGS) }
    }

    fn started(self) -> bool {
        self.0.addr() & Self::STARTED != 0
    }

    fn start(&mut self) {
        self.0 = self.0.map_addr(|a| a | Self::STARTED);
    }

    fn boxed(self) -> Self {
        Name(self.0.map_addr(|a| a | Self::BOXED))
    }

    fn is_boxed(self) -> bool {
        self.0.addr() & Self::BOXED != 0
    }
}

impl<F: Future> Task<F> {
    /// Wrap the body of an asynq function. Only the `#[asynq]` expansion calls this: a task
    /// must not wait on anything but other yieldables.
    #[doc(hidden)]
    pub fn __new(name: &'static &'static str, future: F) -> Self {
        Task {
            name: Name::new(name),
            future,
        }
    }

    /// The asynq function's path (`my_crate::pages::profile`).
    pub fn name(&self) -> &'static str {
        self.name.get()
    }

    /// The same task with its future boxed: for recursive asynq functions, and to store tasks
    /// of different functions in one collection.
    ///
    /// Inside a run, the scheduler polls a boxed task on its own, not from inside the task
    /// that awaits it (see [`BoxFuture`]): recursion through boxed tasks costs the same time
    /// per level and the same stack at any depth. A chain of 100,000 nested boxed tasks runs
    /// on a thread with a 256 KiB stack. The price is a little bookkeeping per boxed task (an
    /// entry in the run, a wake-up of its parent when it finishes), so box where the type
    /// needs it (recursion, mixed collections), not every task.
    pub fn boxed<'a>(self) -> Task<BoxFuture<'a, F::Output>>
    where
        F: Send + 'a,
    {
        Task {
            name: self.name.boxed(),
            future: BoxFuture::new(self.name.get(), self.future),
        }
    }

    /// [`boxed`](Task::boxed) for tasks that are not `Send`.
    pub fn boxed_local<'a>(self) -> Task<LocalBoxFuture<'a, F::Output>>
    where
        F: 'a,
    {
        Task {
            name: self.name.boxed(),
            future: LocalBoxFuture::new(self.name.get(), self.future),
        }
    }
}

impl<F> fmt::Debug for Task<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name.get())
            .finish_non_exhaustive()
    }
}

impl<F: Future> Yieldable for Task<F> {
    type Output = F::Output;
    type Future = TaskFuture<F>;
    fn into_future(self) -> TaskFuture<F> {
        TaskFuture {
            name: self.name,
            future: self.future,
        }
    }
}

pin_project_lite::pin_project! {
    /// A task being awaited: its body's future, and the bookkeeping of the run around each poll.
    #[must_use = "futures do nothing unless polled"]
    pub struct TaskFuture<F> {
        name: Name,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.name.is_boxed() {
            // The scheduler polls the body on its own, and does the bookkeeping there.
            return this.future.poll(cx);
        }
        let first = !this.name.started();
        let name = this.name.get();
        let outer = enter_task(name, first);
        let poll = {
            #[cfg(feature = "tracing")]
            let _span = tracing::trace_span!("asynq.task", task = %name).entered();
            this.future.poll(cx)
        };
        if first && poll.is_pending() {
            // Marked only if it will be polled again: a task that finishes in its first poll
            // (most do) only reads its memory, so a million of them leave no dirty cache lines.
            this.name.start();
        }
        if let Some(outer) = outer {
            exit_task(outer, name, poll.is_pending());
        }
        poll
    }
}

// The run's bookkeeping around a task's poll is not generic, so that it is compiled once, in
// this crate. Written in `poll`, it would be compiled again for every asynq function of the
// crates that use it (closures inherit their function's type parameters): a quarter of their
// code before optimization, and of the time to compile them (docs/compile-time.md).

/// Count the poll and make `name` the run's current task; returns the task it replaces, `None`
/// outside a run.
#[inline]
fn enter_task(name: &'static str, first: bool) -> Option<&'static str> {
    with_ctx(|run| {
        if first {
            run.counters.tasks += 1;
        }
        run.counters.polls += 1;
        if let Some(diagnosis) = &mut run.diagnose {
            diagnosis.enter(name);
        }
        if let Some(profile) = &mut run.profile {
            profile.enter(name, first);
        }
        std::mem::replace(&mut run.task, name)
    })
}

/// Make `outer` the run's current task again after a poll of `name`.
#[inline]
fn exit_task(outer: &'static str, name: &'static str, pending: bool) {
    with_ctx(|run| {
        run.task = outer;
        if let Some(diagnosis) = &mut run.diagnose {
            diagnosis.exit(pending);
        }
        if let Some(profile) = &mut run.profile {
            profile.exit(name);
        }
    });
}

impl<F> fmt::Debug for TaskFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFuture")
            .field("name", &self.name.get())
            .field("started", &self.name.started())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::future::Ready;
    use std::mem::{align_of, size_of};

    use super::*;

    /// A task costs one word beyond its body's future, and its future has the task's layout,
    /// so that an awaited `Vec` of tasks becomes its futures in place (see `JoinAll`).
    #[test]
    fn a_task_is_one_word_and_its_future_has_its_layout() {
        fn check<F: Future>() {
            let word = size_of::<usize>();
            assert_eq!(
                size_of::<Task<F>>(),
                size_of::<F>().next_multiple_of(word) + word
            );
            assert_eq!(size_of::<Task<F>>(), size_of::<TaskFuture<F>>());
            assert_eq!(align_of::<Task<F>>(), align_of::<TaskFuture<F>>());
        }
        check::<Ready<u64>>();
        check::<Ready<u8>>();
        check::<Ready<[u64; 5]>>();
        check::<BoxFuture<'static, String>>();
        check::<LocalBoxFuture<'static, String>>();
    }

    #[test]
    fn the_started_flag_does_not_disturb_the_name() {
        static NAME: &str = "crate::module::function";
        let mut name = Name::new(&NAME);
        assert!(!name.started());
        name.start();
        assert!(name.started());
        assert_eq!(name.get(), "crate::module::function");
        let boxed = name.boxed();
        assert!(boxed.is_boxed() && boxed.started() && !name.is_boxed());
        assert_eq!(boxed.get(), "crate::module::function");
    }
}
