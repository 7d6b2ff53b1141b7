//! Tasks: what an `#[asynq]` function returns.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::with_ctx;
use crate::yieldable::Yieldable;

/// A boxed, `Send` task future, for recursion and for naming task types.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A boxed task future that need not be `Send`.
pub type LocalBoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + 'a>>;

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
    name: &'static str,
    future: F,
}

impl<F: Future> Task<F> {
    /// Wrap the body of an asynq function. Only the `#[asynq]` expansion calls this: a task
    /// must not wait on anything but other yieldables.
    #[doc(hidden)]
    pub fn __new(name: &'static str, future: F) -> Self {
        Task { name, future }
    }

    /// The asynq function's path (`my_crate::pages::profile`).
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The same task with its future boxed: for recursive asynq functions, and to store tasks
    /// of different functions in one collection.
    pub fn boxed<'a>(self) -> Task<BoxFuture<'a, F::Output>>
    where
        F: Send + 'a,
    {
        Task {
            name: self.name,
            future: Box::pin(self.future),
        }
    }

    /// [`boxed`](Task::boxed) for tasks that are not `Send`.
    pub fn boxed_local<'a>(self) -> Task<LocalBoxFuture<'a, F::Output>>
    where
        F: 'a,
    {
        Task {
            name: self.name,
            future: Box::pin(self.future),
        }
    }
}

impl<F> fmt::Debug for Task<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<F: Future> Yieldable for Task<F> {
    type Output = F::Output;
    type Future = TaskFuture<F>;
    fn into_future(self) -> TaskFuture<F> {
        TaskFuture {
            name: self.name,
            started: false,
            future: self.future,
        }
    }
}

pin_project_lite::pin_project! {
    /// A task being awaited: its body's future, and the bookkeeping of the run around each poll.
    #[must_use = "futures do nothing unless polled"]
    pub struct TaskFuture<F> {
        name: &'static str,
        started: bool,
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for TaskFuture<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let name = *this.name;
        let first = !*this.started;
        *this.started = true;
        let outer = with_ctx(|run| {
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
        });
        let poll = {
            #[cfg(feature = "tracing")]
            let _span = tracing::trace_span!("asynq.task", task = %name).entered();
            this.future.poll(cx)
        };
        if let Some(outer) = outer {
            with_ctx(|run| {
                run.task = outer;
                if let Some(diagnosis) = &mut run.diagnose {
                    diagnosis.exit(poll.is_pending());
                }
                if let Some(profile) = &mut run.profile {
                    profile.exit(name);
                }
            });
        }
        poll
    }
}

impl<F> fmt::Debug for TaskFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TaskFuture")
            .field("name", &self.name)
            .field("started", &self.started)
            .finish_non_exhaustive()
    }
}
