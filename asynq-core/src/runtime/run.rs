//! A run in progress ([`RunFuture`]): the scheduler loop of one run.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fmt;
use std::future::Future;
use std::panic::{self, AssertUnwindSafe};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use futures::stream::FuturesUnordered;
use smallvec::SmallVec;

use super::{RunResult, Runtime};
use crate::context::{self, RunLink, RunState};
use crate::detached;
use crate::diagnosis::Diagnosis;
use crate::error::Error;
use crate::nodes::{NONE, ROOT};
use crate::output::RunOutput;
use crate::source::{DataSource, panic_message};
use crate::source_state::{CallDone, CallFuture};
use crate::stats::{RoundSourceStats, RoundSources, RoundStats, Stats};
use crate::waker;

/// A run in progress; see [`Runtime::run_async`].
#[must_use = "a run does nothing unless awaited"]
pub struct RunFuture<'rt, F: Future> {
    runtime: &'rt Runtime,
    /// The root task's future; `None` once dropped (see `Drop`).
    root: Option<Pin<Box<F>>>,
    state: Box<RefCell<RunState>>,
    /// Calls in flight, each tagged with the round that sent it.
    calls: FuturesUnordered<RoundCall>,
    scratch: Vec<CallFuture>,
    started: Option<Instant>,
    /// Values to put in the run's cache before it starts; see [`RunFuture::prime`].
    primes: Vec<Prime>,
    /// Figures of the rounds so far, and of each the bookkeeping while its calls are out.
    per_round: Vec<RoundStats>,
    /// The rounds whose calls are still out: round `first_out + i` is `rounds_out[i]`.
    rounds_out: VecDeque<RoundOut>,
    first_out: usize,
    #[cfg(feature = "tracing")]
    span: tracing::Span,

    /// The last pass polled every unfinished future to describe a suspected stall.
    diagnosing: bool,
    finished: bool,
}

/// A round's bookkeeping while its calls are out.
struct RoundOut {
    /// The source index of each of the round's `RoundStats::sources` (inline: a round calls
    /// few sources, and a deep recursion sends one round per level).
    sources: SmallVec<[usize; 4]>,
    sent: Instant,
    calls_out: usize,
    #[cfg(feature = "tracing")]
    span: Option<tracing::Span>,
}

pin_project_lite::pin_project! {
    /// A call in flight, tagged with the round that sent it.
    struct RoundCall {
        round: usize,
        #[pin]
        call: CallFuture,
    }
}

impl Future for RoundCall {
    type Output = (usize, CallDone);
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let round = *this.round;
        this.call.poll(cx).map(|done| (round, done))
    }
}

/// A value to put in a run's cache: applied to the run's state at its first poll.
type Prime = Box<dyn FnOnce(&mut RunState) -> Result<(), Error> + Send>;

impl<F: Future> fmt::Debug for RunFuture<'_, F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunFuture")
            .field("runtime", self.runtime)
            .field("calls_in_flight", &self.calls.len())
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}

impl<'rt, F: Future> RunFuture<'rt, F> {
    /// The run of `root` on `runtime`, in `state`.
    pub(super) fn new(runtime: &'rt Runtime, root: F, state: RunState) -> Self {
        RunFuture {
            runtime,
            root: Some(Box::pin(root)),
            state: Box::new(RefCell::new(state)),
            per_round: Vec::new(),
            rounds_out: VecDeque::new(),
            first_out: 0,
            #[cfg(feature = "tracing")]
            span: tracing::info_span!("asynq.run"),
            calls: FuturesUnordered::new(),
            scratch: Vec::new(),
            started: None,
            primes: Vec::new(),
            diagnosing: false,
            finished: false,
        }
    }

    /// Resolve to the run's result together with its statistics.
    pub fn with_stats(self) -> WithStats<'rt, F> {
        WithStats { run: self }
    }

    /// The same run with `entries` of source `S` in its cache from the start: tasks that ask
    /// for those keys get the values at once, and they are never sent.
    ///
    /// For values the caller has already (from a write it just made, or from a page rendered
    /// before); see also [`cache::prime`](crate::cache::prime), which does the same from
    /// inside a task. The run fails with [`Error::NoSource`] if `S` is not registered.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynq_core::{asynq, DataSource, Error, Runtime};
    /// # struct Names;
    /// # impl DataSource for Names {
    /// #     type Key = u64; type Value = String; type Error = std::convert::Infallible;
    /// #     async fn fetch(&self, k: &[u64]) -> Result<Vec<(u64, String)>, Self::Error> {
    /// #         Ok(k.iter().map(|&k| (k, format!("user{k}"))).collect())
    /// #     }
    /// # }
    ///
    /// #[asynq]
    /// fn names() -> Result<(String, String), Error> {
    ///     let (a, b) = (Names::load(1), Names::load(2)).await;
    ///     Ok((a?, b?))
    /// }
    ///
    /// let rt = Runtime::new().with_source(Names);
    /// let run = rt.run_async(names()).prime::<Names>([(1, "ada".to_owned())]);
    /// assert_eq!(run.wait()?, ("ada".to_owned(), "user2".to_owned()));
    /// assert_eq!(rt.last_stats().keys(), 1); // only key 2 was fetched
    /// # Ok::<(), Error>(())
    /// ```
    pub fn prime<S: DataSource>(
        mut self,
        entries: impl IntoIterator<Item = (S::Key, S::Value)>,
    ) -> Self {
        let entries: Vec<(S::Key, S::Value)> = entries.into_iter().collect();
        self.primes.push(Box::new(move |run: &mut RunState| {
            crate::cache::apply::<S>(run, |state, nodes| {
                for (key, value) in entries {
                    state.prime(key, value, nodes);
                }
            })
        }));
        self
    }

    /// Run to completion on this thread, blocking it: what [`Runtime::run`] does with a run
    /// prepared by [`Runtime::run_async`] (and [`prime`](RunFuture::prime)d, say). It refuses
    /// to block where `run` does ([`Error::NestedRun`], [`Error::BlockingInAsync`]); `.await`
    /// the run there instead.
    pub fn wait(self) -> RunResult<F::Output>
    where
        F::Output: RunOutput,
    {
        crate::blocking::check("RunFuture::wait")?;
        crate::blocking::block_on(self)
    }

    /// The scheduler loop (`docs/architecture.md`, "The execution model").
    fn poll_run(&mut self, cx: &mut Context<'_>) -> Poll<Result<F::Output, Error>> {
        assert!(!self.finished, "a run polled after it finished");
        if let Some(task) = context::current_task() {
            let call = "Runtime::run_async";
            return Poll::Ready(Err(Error::NestedRun { task, call }));
        }
        if let Some(thread) = self.state.get_mut().thread {
            assert_eq!(
                thread,
                std::thread::current().id(),
                "an asynq run holding a `!Send` boxed task polled on another thread"
            );
        }
        self.started.get_or_insert_with(Instant::now);
        #[cfg(feature = "tracing")]
        let _run = self.span.clone().entered();
        let link = Arc::clone(&self.state.get_mut().link);
        let _locked = link.lock(&self.state);
        link.register_executor(cx.waker());
        for prime in std::mem::take(&mut self.primes) {
            if let Err(error) = prime(self.state.get_mut()) {
                return Poll::Ready(Err(error));
            }
        }
        loop {
            // With eager resume, tasks run whenever an answer woke them; otherwise only
            // between rounds, when every call of the last round has answered.
            if self.calls.is_empty() || self.state.get_mut().eager {
                // 1. Run every runnable task until each is finished or waiting.
                match self.run_runnable() {
                    Ok(Some(output)) => return Poll::Ready(Ok(output)),
                    Ok(None) => {}
                    Err(error) => return Poll::Ready(Err(error)),
                }
                // 2. Nothing runnable: send every pending key, one call per source and chunk.
                let started = self.send_round();
                if started == 0 && self.calls.is_empty() {
                    if link.has_woken() {
                        continue; // a foreign future woke a task meanwhile
                    }
                    if !self.diagnosing && link.remote_wakers.load(Ordering::Acquire) > 0 {
                        // Foreign futures hold the run's waker: they wake it when they can go
                        // on (a timer, a channel). Wait for them.
                        return Poll::Pending;
                    }
                    // 3. Nothing pending either: a stall. Poll everything once more to say
                    // who waits (a future woken by something else may also finish now).
                    let state = self.state.get_mut();
                    if self.diagnosing {
                        let waiting = state.diagnose.take().unwrap_or_default().waiting;
                        return Poll::Ready(Err(Error::Stall { waiting }));
                    }
                    self.diagnosing = true;
                    state.diagnose = Some(Diagnosis::default());
                    state.nodes.wake_all();
                    continue;
                }
                if started > 0 && self.diagnosing {
                    self.diagnosing = false;
                    self.state.get_mut().diagnose = None;
                }
            }
            // 4. Apply answers as calls finish. Without eager resume the round ends when all
            // have; with it, the tasks they woke run at once (step 1) and may send more.
            match self.calls.poll_next_unpin(cx) {
                Poll::Ready(Some((round, done))) => {
                    self.complete(round, done);
                    let later = self.state.get_mut().nodes.take_wake_later();
                    later.into_iter().for_each(Waker::wake);
                }
                Poll::Ready(None) => {}
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Poll every runnable root (the run's root task, boxed tasks) until none is left; the
    /// root task's output once it finishes.
    ///
    /// A panic in a task ends the run: its state is never looked at again, and dropping the
    /// run drops the rest. Unwinding left the innermost asynq function being polled in
    /// `task`, which the error names.
    fn run_runnable(&mut self) -> Result<Option<F::Output>, Error> {
        let _entered = context::enter(&self.state);
        let state = &*self.state;
        let root = self
            .root
            .as_mut()
            .expect("the root future lives until the run is dropped");
        // Roots are polled with the run's own waker: asynq code ignores it, and foreign futures
        // that keep a clone of it wake the node they sit in (see `waker`).
        let waker = waker::inline();
        let mut cx = Context::from_waker(&waker);
        let polled = panic::catch_unwind(AssertUnwindSafe(|| {
            loop {
                let (next, later) = {
                    let mut run = state.borrow_mut();
                    // The root task is polled in its own node (a boxed task's poll left
                    // `current` on the boxed task's).
                    run.current = ROOT;
                    run.current_entry = NONE;
                    let mut next = run.nodes.pop_runnable();
                    if next.is_none() {
                        // Woken from outside the run's polls meanwhile.
                        for waiter in run.link.take_woken() {
                            run.nodes.wake_outside(waiter);
                        }
                        next = run.nodes.pop_runnable();
                    }
                    (next, run.nodes.take_wake_later())
                };
                // Foreign combinators to tell that their futures can go on.
                later.into_iter().for_each(Waker::wake);
                let (node, slot) = next?;
                if node == ROOT {
                    if let Poll::Ready(output) = root.as_mut().poll(&mut cx) {
                        return Some(output);
                    }
                    continue;
                }
                let Some(polling) = detached::begin(&mut state.borrow_mut(), node, slot) else {
                    continue;
                };
                let finished = detached::poll(&polling, &mut cx);
                let frames = detached::end(&mut state.borrow_mut(), slot, polling, finished);
                drop(frames);
            }
        }));
        polled.map_err(|panic| {
            let state = self.state.get_mut();
            Error::TaskPanicked {
                task: state.task,
                message: panic_message(&*panic),
            }
        })
    }

    /// Send every pending key, one call per source and chunk; returns how many calls.
    fn send_round(&mut self) -> usize {
        let number = self.per_round.len();
        #[cfg(feature = "tracing")]
        let span = tracing::debug_span!(
            "asynq.round",
            round = number + 1,
            calls = tracing::field::Empty
        );
        #[cfg(feature = "tracing")]
        let entered = span.enter();
        let state = self.state.get_mut();
        let eager = state.eager;
        let mut started = 0;
        // Built inline and kept inline when the round calls one source: the run keeps every
        // round's figures, so a run of 100k rounds (a deep recursion) keeps 100k of these.
        let mut figures = SmallVec::<[RoundSourceStats; 1]>::new();
        let mut sources = SmallVec::new();
        for (index, slot) in state.sources.iter_mut().enumerate() {
            let Some(source) = slot.state.as_mut() else {
                continue;
            };
            let (requested, keys, calls) = source.counts();
            let before = self.scratch.len();
            if source.has_pending() {
                started += source.start_calls(&mut self.scratch, eager);
            }
            let (_, keys_after, calls_after) = source.counts();
            let asked = requested - slot.requested_seen;
            if calls_after > calls {
                slot.requested_seen = requested;
                figures.push(RoundSourceStats {
                    name: Arc::clone(slot.source.name()),
                    requested: asked,
                    keys: keys_after - keys,
                    calls: calls_after - calls,
                    wall: Duration::ZERO,
                });
                sources.push(index);
            }
            debug_assert_eq!(self.scratch.len() - before, calls_after - calls);
        }
        #[cfg(feature = "tracing")]
        drop(entered);
        if started == 0 {
            return 0;
        }
        state.counters.rounds += 1;
        #[cfg(feature = "tracing")]
        span.record("calls", started);
        let round = RoundStats {
            sources: RoundSources::new(figures),
            wall: Duration::ZERO,
        };
        self.per_round.push(round);
        self.rounds_out.push_back(RoundOut {
            sources,
            sent: Instant::now(),
            calls_out: started,
            #[cfg(feature = "tracing")]
            span: Some(span),
        });
        self.calls
            .extend(self.scratch.drain(..).map(|call| RoundCall {
                round: number,
                call,
            }));
        started
    }

    /// Apply the answer of one call of round `round`.
    fn complete(&mut self, round: usize, done: CallDone) {
        let state = self.state.get_mut();
        let index = done.source;
        let source = state.sources[index]
            .state
            .as_mut()
            .expect("a call's source has run state");
        source.complete(done.payload, &mut state.nodes);
        let stats = &mut self.per_round[round];
        let out = &mut self.rounds_out[round - self.first_out];
        if let Some(i) = out.sources.iter().position(|&s| s == index) {
            stats.sources.as_mut_slice()[i].wall = out.sent.elapsed();
        }
        out.calls_out -= 1;
        if out.calls_out == 0 {
            stats.wall = out.sent.elapsed();
            #[cfg(feature = "tracing")]
            out.span.take();
        }
        // Keep only the rounds still out: a run of many rounds holds no bookkeeping for the
        // ones done.
        while self.rounds_out.front().is_some_and(|o| o.calls_out == 0) {
            self.rounds_out.pop_front();
            self.first_out += 1;
        }
    }

    /// The run's figures, also kept as the runtime's last (shared, not copied).
    fn finish(&mut self) -> Arc<Stats> {
        self.finished = true;
        let state = self.state.get_mut();
        let stats = Stats {
            rounds: state.counters.rounds,
            tasks: state.counters.tasks,
            polls: state.counters.polls,
            sources: state
                .sources
                .iter()
                .filter_map(|s| s.state.as_ref().map(|s| s.stats()))
                .collect(),
            per_round: std::mem::take(&mut self.per_round),
            functions: state
                .profile
                .as_mut()
                .map(|p| p.finish())
                .unwrap_or_default(),
            elapsed: self.started.map(|t| t.elapsed()).unwrap_or_default(),
        };
        let stats = Arc::new(stats);
        *self
            .runtime
            .last_stats
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Arc::clone(&stats);
        stats
    }
}

// The root future is boxed and the run state is boxed: nothing in a `RunFuture` is pinned.
impl<F: Future> Unpin for RunFuture<'_, F> {}

impl<F: Future> Drop for RunFuture<'_, F> {
    /// Drop the run's tasks inside the run, so that boxed tasks leave it in order: every
    /// registered body innermost first (a deep recursion is dropped level after level, not
    /// recursively), then the root task's future.
    fn drop(&mut self) {
        let link = Arc::clone(&self.state.get_mut().link);
        let mut locked = link.lock(&self.state);
        {
            let _entered = context::enter(&self.state);
            detached::cancel_all();
            self.root = None;
        }
        RunLink::close(&mut locked);
        drop(locked);
        // Keep the emptied arenas for the runtime's next run, unless another run's are kept.
        if let Some(spare) = self.state.get_mut().take_spare()
            && let Ok(mut kept) = self.runtime.spare.try_lock()
            && kept.is_none()
        {
            *kept = Some(spare);
        }
    }
}

impl<F: Future> Future for RunFuture<'_, F>
where
    F::Output: RunOutput,
{
    type Output = RunResult<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let result = std::task::ready!(self.poll_run(cx));
        self.finish();
        Poll::Ready(match result {
            Ok(output) => output.into_run_result(),
            Err(e) => Err(e.into()),
        })
    }
}

/// A run that resolves to its result and its [`Stats`]; see [`RunFuture::with_stats`].
#[must_use = "a run does nothing unless awaited"]
#[derive(Debug)]
pub struct WithStats<'rt, F: Future> {
    run: RunFuture<'rt, F>,
}

impl<F: Future> Future for WithStats<'_, F>
where
    F::Output: RunOutput,
{
    type Output = (RunResult<F::Output>, Stats);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let run = &mut self.run;
        let result = std::task::ready!(run.poll_run(cx));
        let stats = Arc::unwrap_or_clone(run.finish());
        Poll::Ready((
            match result {
                Ok(output) => output.into_run_result(),
                Err(e) => Err(e.into()),
            },
            stats,
        ))
    }
}
