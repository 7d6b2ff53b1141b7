//! The runtime: registered sources, and the scheduler loop of a run.

use std::fmt;
use std::sync::{Arc, Mutex};

use crate::context::{RunSpare, RunState, SourceSlot};

use crate::mock::Mock;
use crate::output::RunOutput;
use crate::source::DataSource;
use crate::source_state::{ErasedSource, Registered};
use crate::stats::Stats;
use crate::yieldable::Yieldable;

mod run;

pub use run::{RunFuture, WithStats};

/// What [`Runtime::run`] returns for a root task with output `T`: see [`RunOutput`].
pub type RunResult<T> = Result<<T as RunOutput>::Value, <T as RunOutput>::Error>;

/// The data sources of an application, and the scheduler that runs asynq tasks over them.
///
/// Build one at start-up with every source, then run one task per request with [`run`]
/// (blocking) or [`run_async`] (a future for any executor). A runtime is `Send + Sync` and
/// serves any number of runs at once, on any threads; each run has its own cache and
/// statistics.
///
/// [`run`]: Runtime::run
/// [`run_async`]: Runtime::run_async
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, DataSource, Error, Runtime};
///
/// struct Users;
/// impl DataSource for Users {
///     type Key = u64;
///     type Value = String;
///     type Error = std::io::Error;
///     async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, String)>, std::io::Error> {
///         Ok(keys.iter().map(|&k| (k, format!("user {k}"))).collect())
///     }
/// }
///
/// #[asynq]
/// fn names(uids: Vec<u64>) -> Result<Vec<String>, Error> {
///     Users::load_many(uids).await.into_iter().collect()
/// }
///
/// let rt = Runtime::new().with_source(Users);
/// assert_eq!(rt.run(names(vec![1, 2]))?, ["user 1", "user 2"]);
/// assert_eq!(rt.last_stats().calls(), 1);
/// # Ok::<(), Error>(())
/// ```
pub struct Runtime {
    sources: Vec<Arc<dyn ErasedSource>>,
    /// Shared, so that a run stores its figures without copying them.
    last_stats: Mutex<Arc<Stats>>,
    function_stats: bool,
    eager_resume: bool,
    /// The arenas of the last run, emptied, for the next (see [`RunSpare`]).
    spare: Mutex<Option<RunSpare>>,
}

impl Default for Runtime {
    fn default() -> Self {
        Self::new()
    }
}

impl Clone for Runtime {
    /// The same sources (shared, not copied), with statistics of its own.
    fn clone(&self) -> Self {
        Runtime {
            sources: self.sources.clone(),
            last_stats: Mutex::default(),
            function_stats: self.function_stats,
            eager_resume: self.eager_resume,
            spare: Mutex::default(),
        }
    }
}

impl fmt::Debug for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.sources.iter().map(|s| &**s.name()).collect();
        f.debug_struct("Runtime")
            .field("sources", &names)
            .finish_non_exhaustive()
    }
}

impl Runtime {
    /// A runtime with no sources.
    pub fn new() -> Self {
        Runtime {
            sources: Vec::new(),
            last_stats: Mutex::default(),
            function_stats: false,
            eager_resume: false,
            spare: Mutex::default(),
        }
    }

    /// Resume tasks as soon as the keys they wait on are answered, without waiting for the
    /// round's other calls (as Haxl 2 does). Off by default.
    ///
    /// Without it a round ends when every call of the round has answered, so one slow source
    /// holds back every task, even those waiting only on a fast one. With it, when a call
    /// answers, the tasks it woke run at once and the requests they make are sent together as
    /// the next round while the slow call is still out: a chain of dependent fetches on a fast
    /// source no longer waits for a slow one at each step. Batching is kept: everything asked
    /// while tasks run is still sent as one call per source, and a key already in flight is
    /// joined, not sent again. The price is more, smaller rounds when sources answer at
    /// different times; use it when latencies of sources differ widely.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynq_core::{asynq, DataSource, Error, Runtime};
    /// # struct Fast;
    /// # impl DataSource for Fast {
    /// #     type Key = u64; type Value = u64; type Error = std::convert::Infallible;
    /// #     async fn fetch(&self, k: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
    /// #         Ok(k.iter().map(|&k| (k, k + 1)).collect())
    /// #     }
    /// # }
    ///
    /// #[asynq]
    /// fn chain(k: u64) -> Result<u64, Error> {
    ///     let a = Fast::load(k).await?;
    ///     Fast::load(a).await
    /// }
    ///
    /// let rt = Runtime::new().with_source(Fast).eager_resume(true);
    /// assert_eq!(rt.run(chain(1))?, 3);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn eager_resume(mut self, on: bool) -> Self {
        self.eager_resume = on;
        self
    }

    /// Collect per-function figures in every run: tasks, polls and self time of each asynq
    /// function, in [`Stats::functions`]. Off by default: it reads the clock twice per poll.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynq_core::{asynq, Runtime};
    ///
    /// #[asynq]
    /// fn leaf(x: u32) -> u32 {
    ///     x + 1
    /// }
    ///
    /// #[asynq]
    /// fn root() -> u32 {
    ///     let xs = (0..3).map(leaf).collect::<Vec<_>>().await;
    ///     xs.into_iter().sum()
    /// }
    ///
    /// let rt = Runtime::new().with_function_stats(true);
    /// assert_eq!(rt.run(root()).unwrap(), 6);
    /// let stats = rt.last_stats();
    /// let leaf = stats.functions.iter().find(|f| f.name.ends_with("::leaf")).unwrap();
    /// assert_eq!((leaf.tasks, leaf.polls), (3, 3));
    /// println!("{stats}"); // the functions table comes last
    /// ```
    pub fn with_function_stats(mut self, on: bool) -> Self {
        self.function_stats = on;
        self
    }

    /// Register `source`; tasks reach it by its type with `S::load(key)`.
    ///
    /// A second source of the same type replaces the first.
    pub fn with_source<S: DataSource>(self, source: S) -> Self {
        self.register(Arc::new(Registered::new(source)))
    }

    /// Register a test double in place of source `S`: tasks that load from `S` get the
    /// mock's answers, batched, deduplicated and cached as `S`'s would be. It replaces a
    /// source (or mock) of type `S` registered before; see [`Mock`].
    pub fn with_mock<S: DataSource>(self, mock: Mock<S>) -> Self {
        self.register(Arc::new(Registered::mock(mock)))
    }

    fn register(mut self, registered: Arc<dyn ErasedSource>) -> Self {
        match self
            .sources
            .iter_mut()
            .find(|s| s.source_type() == registered.source_type())
        {
            Some(slot) => *slot = registered,
            None => self.sources.push(registered),
        }
        self
    }

    /// The registered source of type `S`, if any (to read its own counters, say); `None`
    /// when a [`Mock`] stands in for it.
    pub fn source<S: DataSource>(&self) -> Option<&S> {
        self.sources
            .iter()
            .find_map(|s| s.as_any().downcast_ref::<S>())
    }

    /// The [`Mock`] registered in place of source `S`, if any, to read the calls it got.
    pub fn mock<S: DataSource>(&self) -> Option<&Mock<S>> {
        self.sources
            .iter()
            .find_map(|s| s.as_any().downcast_ref::<Mock<S>>())
    }

    /// Run `task` to completion on this thread, blocking it while sources fetch.
    ///
    /// `task` is anything an asynq function could await: a task, a tuple of tasks, ... The
    /// run's own failures ([`Error::Stall`](crate::Error::Stall), [`Error::NestedRun`](crate::Error::NestedRun), [`Error::TaskPanicked`](crate::Error::TaskPanicked)) come
    /// back as the `Err` of the result (see [`RunOutput`] for its shape).
    ///
    /// Sources' futures are driven by a minimal executor; sources that need a reactor (tokio
    /// sockets, timers) must be run with [`run_async`](Runtime::run_async) inside it, or
    /// with `run` on a thread that may block while the reactor runs elsewhere (tokio's
    /// `spawn_blocking`, a thread in a multi-thread runtime's context).
    ///
    /// # Where it refuses to block
    ///
    /// - Inside a task of another run on this thread, it returns [`Error::NestedRun`](crate::Error::NestedRun) at once
    ///   instead of deadlocking: await the task instead.
    /// - On a thread that drives an async executor, it returns [`Error::BlockingInAsync`](crate::Error::BlockingInAsync) at
    ///   once instead of hanging (the run's sources may need that thread): await
    ///   [`run_async`](Runtime::run_async) there. Threads that drive tokio (in a task, or in
    ///   `block_on`) are recognised with the `tokio` feature, on by default; threads that
    ///   drive a `futures` executor always. A thread that merely entered a current-thread
    ///   runtime's context (`Handle::enter`) is not driving it and is let block: if nothing
    ///   else drives that runtime, its timers and sockets never fire.
    ///
    /// ```
    /// use asynq_core::{ready, Error, Runtime};
    ///
    /// let tokio = tokio::runtime::Builder::new_current_thread().build().unwrap();
    /// let rt = Runtime::new();
    /// tokio.block_on(async {
    ///     let err = rt.run(ready(1u32)).unwrap_err(); // would block tokio's only thread
    ///     assert!(matches!(err, Error::BlockingInAsync { .. }));
    ///     assert_eq!(rt.run_async(ready(1u32)).await?, 1); // what the error says to do
    ///     Ok::<(), Error>(())
    /// })?;
    /// # Ok::<(), Error>(())
    /// ```
    ///
    /// # Failures
    ///
    /// A failed fetch fails only the keys of its call: their tasks see the `Err` of their
    /// `load` and everything else goes on (see [`DataSource`]; a source that can hang should
    /// set [`DataSource::fetch_timeout`]). A panic in an asynq function ends the run with
    /// [`Error::TaskPanicked`](crate::Error::TaskPanicked), naming the function, instead of unwinding into the caller:
    /// one bad page fails one request. The run's tasks and in-flight calls are dropped with
    /// it, as when a [`run_async`](Runtime::run_async) future is dropped mid-run, and the
    /// runtime serves the next run as if nothing happened.
    ///
    /// ```
    /// use asynq_core::{asynq, Error, Runtime};
    ///
    /// #[asynq]
    /// fn broken(x: u32) -> Result<u32, Error> {
    ///     assert!(x < 10, "x too large");
    ///     Ok(x)
    /// }
    ///
    /// let rt = Runtime::new();
    /// let err = rt.run(broken(11)).unwrap_err();
    /// assert!(matches!(err, Error::TaskPanicked { task, .. } if task.ends_with("::broken")));
    /// assert!(err.to_string().ends_with("panicked: x too large"));
    /// assert_eq!(rt.run(broken(1))?, 1);
    /// # Ok::<(), Error>(())
    /// ```
    pub fn run<Y>(&self, task: Y) -> RunResult<Y::Output>
    where
        Y: Yieldable,
        Y::Output: RunOutput,
    {
        crate::blocking::check("Runtime::run")?;
        crate::blocking::block_on(self.run_async(task))
    }

    /// A future that runs `task`, for use inside any executor (tokio, async-std, a plain
    /// `block_on`). It is `Send` when the task is.
    ///
    /// Calls to different sources in one round are polled concurrently by this future.
    pub fn run_async<Y>(&self, task: Y) -> RunFuture<'_, Y::Future>
    where
        Y: Yieldable,
    {
        let sources = self.sources.iter().map(SourceSlot::new).collect();
        // Another run may hold the lock for a moment: then start afresh rather than wait.
        let spare = self.spare.try_lock().ok().and_then(|mut s| s.take());
        let mut state = RunState::new(sources, spare.unwrap_or_default());
        if self.function_stats {
            state.profile = Some(Default::default());
        }
        state.eager = self.eager_resume;
        RunFuture::new(self, task.into_future(), state)
    }

    /// Statistics of the last run that finished on this runtime (on any thread).
    ///
    /// With concurrent runs, prefer [`RunFuture::with_stats`] for the figures of one run.
    pub fn last_stats(&self) -> Stats {
        let stats = self.last_stats.lock().unwrap_or_else(|e| e.into_inner());
        Stats::clone(&stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::RUN_SPARE_MAX_BYTES;
    use crate::roots::DetachedSpare;

    struct Echo;
    impl DataSource for Echo {
        type Key = u32;
        type Value = u32;
        type Error = std::convert::Infallible;
        async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
            Ok(keys.iter().map(|&k| (k, k)).collect())
        }
    }

    fn spare_bytes(rt: &Runtime) -> Option<usize> {
        let spare = rt.spare.lock().unwrap();
        spare.as_ref().map(|s| s.nodes.bytes() + s.detached.bytes())
    }

    #[test]
    fn a_run_leaves_its_emptied_arenas_to_the_next() {
        let rt = Runtime::new().with_source(Echo);
        assert_eq!(spare_bytes(&rt), None);
        assert_eq!(rt.run(Echo::load(7)).unwrap(), 7);
        let kept = spare_bytes(&rt).expect("the arenas are kept");
        assert!(kept > 0);
        // The next run takes them (and leaves them again).
        let run = rt.run_async(Echo::load(8));
        assert_eq!(spare_bytes(&rt), None);
        assert_eq!(run.wait().unwrap(), 8);
        assert_eq!(spare_bytes(&rt), Some(kept));
    }

    #[test]
    fn arenas_over_the_limit_are_not_kept() {
        let entries = RUN_SPARE_MAX_BYTES / size_of::<crate::roots::Entry>() + 1;
        let spare = RunSpare {
            detached: DetachedSpare::with_capacity(entries),
            ..RunSpare::default()
        };
        assert!(RunState::new(Vec::new(), spare).take_spare().is_none());
        let small = RunSpare {
            detached: DetachedSpare::with_capacity(entries / 2),
            ..RunSpare::default()
        };
        assert!(RunState::new(Vec::new(), small).take_spare().is_some());
    }
}
