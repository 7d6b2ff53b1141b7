//! The state of one run, reached by the futures it polls.
//!
//! A run owns a [`RunState`] on the heap. While the run polls its tasks it publishes a pointer
//! to that state in a thread-local ([`enter`]); fetch requests, joins and tasks reach it with
//! [`with_ctx`]. Nothing outlives the run and two runs on two threads never share it. How the
//! futures of a run are woken is in [`nodes`](crate::nodes); how boxed tasks are polled by the
//! scheduler on their own is in [`detached`](crate::detached).

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread::ThreadId;

use futures::task::AtomicWaker;

use crate::diagnosis::Diagnosis;
use crate::frames::Frames;
use crate::nodes::NodesSpare;
use crate::nodes::{LazyWaiter, NONE, ROOT, node_of};
pub(crate) use crate::nodes::{Nodes, Waiter};
use crate::roots::{Detached, DetachedSpare};
use crate::source::DataSource;
use crate::source_state::{ErasedSource, ErasedState, SourceState};
use crate::stats::RunCounters;

/// Everything a run knows while it polls its tasks.
pub(crate) struct RunState {
    pub(crate) nodes: Nodes,
    /// The node being polled, or [`LAZY`].
    pub(crate) current: u32,
    /// While `current` is [`LAZY`]: the parent node and slot of the child being polled.
    pub(crate) lazy: (u32, u32),
    /// The asynq function being polled, for errors.
    pub(crate) task: &'static str,
    /// Per registered source: its type, and its per-run state once first used.
    pub(crate) sources: Vec<SourceSlot>,
    pub(crate) counters: RunCounters,
    /// Set while describing a stall: tasks record where they wait.
    pub(crate) diagnose: Option<Diagnosis>,
    /// Executions of `#[asynq(memo)]` functions in this run.
    pub(crate) memos: crate::memos::Memos,
    /// Per-function figures, when the runtime collects them.
    pub(crate) profile: Option<crate::stats::Profiler>,
    /// Tasks resume as soon as their keys are answered, while other calls are in flight.
    pub(crate) eager: bool,
    /// The boxed tasks the scheduler polls on their own.
    pub(crate) detached: Detached,
    /// The entry of the boxed task being polled, or [`NONE`] under the root task.
    pub(crate) current_entry: u32,
    /// The scoped values and hooks in force around the future being polled.
    pub(crate) frames: Frames,
    /// The run's lock and identity, shared with its boxed tasks.
    pub(crate) link: Arc<RunLink>,
    /// The thread this run must be polled on: set once a `!Send` boxed task is registered.
    pub(crate) thread: Option<ThreadId>,
}

/// A registered source as one run sees it.
pub(crate) struct SourceSlot {
    /// The source's type, kept here so that finding a source takes no virtual call.
    pub(crate) source_type: TypeId,
    pub(crate) source: Arc<dyn ErasedSource>,
    /// Created on the run's first request to the source.
    pub(crate) state: Option<Box<dyn ErasedState>>,
    /// The source's request count when the last round was sent (for per-round figures).
    pub(crate) requested_seen: usize,
}

impl SourceSlot {
    pub(crate) fn new(source: &Arc<dyn ErasedSource>) -> Self {
        SourceSlot {
            source_type: source.source_type(),
            source: Arc::clone(source),
            state: None,
            requested_seen: 0,
        }
    }
}

/// The emptied arenas of a finished run (its nodes and its boxed tasks' entries), kept by the
/// runtime for its next run.
///
/// A deep recursion grows both arenas to one element per suspended level; growing them from
/// nothing in every run touched fresh pages each time (page faults were the part of a
/// 100k-level chain's time that grew with depth, see `docs/performance.md`). Only arenas of at
/// most [`RUN_SPARE_MAX_BYTES`] together are kept, so that one huge run does not pin its
/// memory for good.
#[derive(Default)]
pub(crate) struct RunSpare {
    pub(crate) nodes: NodesSpare,
    pub(crate) detached: DetachedSpare,
}

/// The most memory a runtime keeps between runs for its arenas (see [`RunSpare`]): a chain of
/// 100,000 suspended boxed tasks needs about 11 MiB.
pub(crate) const RUN_SPARE_MAX_BYTES: usize = 16 << 20;

impl RunState {
    pub(crate) fn new(sources: Vec<SourceSlot>, spare: RunSpare) -> Self {
        RunState {
            nodes: Nodes::reusing(spare.nodes),
            current: ROOT,
            lazy: (NONE, 0),
            task: "<root>",
            sources,
            counters: RunCounters::default(),
            diagnose: None,
            memos: crate::memos::Memos::default(),
            profile: None,
            eager: false,
            detached: Detached::reusing(spare.detached),
            current_entry: NONE,
            frames: Frames::default(),
            link: Arc::new(RunLink::default()),
            thread: None,
        }
    }

    /// The arenas, emptied, for the runtime's next run: `None` if a boxed task is still
    /// registered or they are larger than [`RUN_SPARE_MAX_BYTES`]. Called once the run's
    /// tasks are dropped.
    pub(crate) fn take_spare(&mut self) -> Option<RunSpare> {
        let detached = self.detached.take_spare()?;
        let nodes = self.nodes.take_spare();
        (nodes.bytes() + detached.bytes() <= RUN_SPARE_MAX_BYTES)
            .then_some(RunSpare { nodes, detached })
    }

    /// The waiter of the node being polled, made now if it has none yet.
    pub(crate) fn current_waiter(&mut self) -> Waiter {
        let node = self.current_node();
        self.nodes.waiter(node)
    }

    /// From now on this run may only be polled on this thread (it holds a `!Send` boxed
    /// task that may not have come from its root future).
    pub(crate) fn pin_to_thread(&mut self) {
        self.thread
            .get_or_insert_with(|| std::thread::current().id());
    }

    /// The index of the registered source of type `type_id`.
    #[inline]
    pub(crate) fn source_index(&self, type_id: TypeId) -> Option<usize> {
        self.sources.iter().position(|s| s.source_type == type_id)
    }

    /// The run's state of source `S` together with the nodes, to wake waiters.
    pub(crate) fn source_state_and_nodes<S: DataSource>(
        &mut self,
        index: usize,
    ) -> (&mut SourceState<S>, &mut Nodes) {
        let RunState { sources, nodes, .. } = self;
        (source_state_in(sources, index), nodes)
    }

    /// The run's state of source `S`, registered at `index`, with the waiter of the node being
    /// polled, to be made only if the request has to wait: a cache hit then costs no node.
    pub(crate) fn source_state_and_waiter<S: DataSource>(
        &mut self,
        index: usize,
    ) -> (&mut SourceState<S>, LazyWaiter<'_>) {
        let RunState {
            sources,
            nodes,
            current,
            lazy,
            ..
        } = self;
        let waiter = LazyWaiter {
            nodes,
            current,
            lazy: *lazy,
        };
        (source_state_in(sources, index), waiter)
    }

    /// The run's memoized executions, with the waiter of the node being polled, to be made
    /// only if the call has to wait.
    pub(crate) fn memos_and_waiter(&mut self) -> (&mut crate::memos::Memos, LazyWaiter<'_>) {
        let RunState {
            memos,
            nodes,
            current,
            lazy,
            ..
        } = self;
        let waiter = LazyWaiter {
            nodes,
            current,
            lazy: *lazy,
        };
        (memos, waiter)
    }

    /// The run's state of source `S`, registered at `index`.
    pub(crate) fn source_state<S: DataSource>(&mut self, index: usize) -> &mut SourceState<S> {
        self.source_state_and_nodes(index).0
    }

    /// The node being polled, made now if it has none yet.
    #[inline]
    pub(crate) fn current_node(&mut self) -> u32 {
        node_of(&mut self.nodes, &mut self.current, self.lazy)
    }
}

/// The state of the source registered at `index`, made on the run's first request to it.
///
/// Reached twice per fetch request (its first poll and the poll that reads its answer). A
/// checked downcast (`Any::downcast_mut`) made two virtual calls each time (`as_any_mut`, then
/// `type_id`), 44 instructions per waiting task in a wide round; the slot's own `TypeId`
/// answers the same question without a call.
#[inline]
fn source_state_in<S: DataSource>(sources: &mut [SourceSlot], index: usize) -> &mut SourceState<S> {
    let slot = &mut sources[index];
    assert!(
        slot.source_type == TypeId::of::<S>(),
        "a source's run state asked for as another source's"
    );
    let state = slot
        .state
        .get_or_insert_with(|| slot.source.new_state(index));
    debug_assert!(state.as_any_mut().is::<SourceState<S>>());
    let state: *mut dyn ErasedState = &mut **state;
    // SAFETY: the slot's source is registered as type `S` (`source_type`, checked above, is
    // the `ErasedSource::source_type` of the slot's source, and `Registered<S>` is the only
    // `ErasedSource`, whose `source_type` is `TypeId::of::<S>()`), and the state of a
    // `Registered<S>` is made by its `new_state`, which makes a `SourceState<S>`: the
    // pointer's data part points to a `SourceState<S>`, borrowed mutably through `sources`
    // for the returned lifetime.
    unsafe { &mut *state.cast::<SourceState<S>>() }
}

impl std::fmt::Debug for RunState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunState")
            .field("live_nodes", &self.nodes.live())
            .field("current", &self.current)
            .field("task", &self.task)
            .finish_non_exhaustive()
    }
}

/// A run's lock and identity, shared by the run and the boxed tasks registered in it.
///
/// The run holds the lock while it polls (and while it is dropped). A boxed task's handle that
/// is dropped outside its run's polls (it escaped the run's root future) takes the lock to
/// unregister its body, so the run and the handle never touch the body at once; see
/// [`detached`](crate::detached). The lock is otherwise uncontended: one lock per poll of a run.
#[derive(Debug, Default)]
pub(crate) struct RunLink {
    state: Mutex<RunPtr>,
    /// Nodes woken from outside the run's polls (by foreign futures, through their clones of
    /// the run's waker; see [`waker`](crate::waker)), for the run to wake at its next poll.
    woken: Mutex<Vec<Waiter>>,
    /// Whether `woken` has entries: the run's polls check this, not the lock.
    any_woken: AtomicBool,
    /// The waker of the executor that polled the run last.
    executor: AtomicWaker,
    /// Clones of the run's waker alive: while any is, a run with nothing to do waits for them
    /// instead of reporting a stall.
    pub(crate) remote_wakers: AtomicUsize,
}

/// The run's state while the run exists.
#[derive(Debug, Default)]
pub(crate) struct RunPtr(Option<NonNull<RefCell<RunState>>>);

// SAFETY: the pointer is only dereferenced by whoever holds the lock around it: the run itself,
// which owns the state, or a handle unregistering its body while the run is not polling.
unsafe impl Send for RunPtr {}

impl RunLink {
    /// Lock the run for one of its polls (or its drop); `state` is where its state lives.
    pub(crate) fn lock(&self, state: &RefCell<RunState>) -> MutexGuard<'_, RunPtr> {
        let mut guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        guard.0 = Some(NonNull::from(state));
        guard
    }

    /// The run is gone: handles dropped from now on have nothing to unregister from.
    pub(crate) fn close(guard: &mut MutexGuard<'_, RunPtr>) {
        guard.0 = None;
    }

    /// Node `waiter` was woken from outside the run's polls: record it and wake the executor.
    pub(crate) fn woken(&self, waiter: Waiter) {
        self.woken
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(waiter);
        self.any_woken.store(true, Ordering::Release);
        self.executor.wake();
    }

    /// Whether nodes were woken from outside since the last [`take_woken`](Self::take_woken).
    pub(crate) fn has_woken(&self) -> bool {
        self.any_woken.load(Ordering::Acquire)
    }

    /// The nodes woken from outside since the last call.
    pub(crate) fn take_woken(&self) -> Vec<Waiter> {
        if !self.any_woken.swap(false, Ordering::Acquire) {
            return Vec::new();
        }
        std::mem::take(&mut *self.woken.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// The executor polling the run now, to wake when a foreign future wakes the run.
    pub(crate) fn register_executor(&self, waker: &std::task::Waker) {
        self.executor.register(waker);
    }

    /// Run `f` on the run's state while the run is not polling, if the run still exists.
    pub(crate) fn with_run(&self, f: impl FnOnce(&RefCell<RunState>)) {
        let guard = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(state) = guard.0 {
            // SAFETY: set by the run from its boxed state, and cleared under this lock before
            // the state is freed; while the lock is held the run does not touch it.
            f(unsafe { state.as_ref() });
        }
    }
}

thread_local! {
    static CURRENT: Cell<*const RefCell<RunState>> = const { Cell::new(ptr::null()) };
}

/// Publishes a run's state to the futures it polls; restores the previous value on drop.
pub(crate) struct Entered {
    previous: *const RefCell<RunState>,
}

/// Publish `state` until the guard drops.
///
/// The caller keeps `state` alive and in place while the guard lives: it is a `Box` owned by
/// the run future, and the guard is a local of that future's `poll`.
pub(crate) fn enter(state: &RefCell<RunState>) -> Entered {
    let previous = CURRENT.with(|c| c.replace(state as *const _));
    Entered { previous }
}

impl Drop for Entered {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.previous));
    }
}

/// Whether a run is polling on this thread, and the asynq function it is in.
pub(crate) fn current_task() -> Option<&'static str> {
    with_ctx(|s| s.task)
}

/// Run `f` on the state of the run polling on this thread, if any.
///
/// `f` must not poll futures or run user code that could reach `with_ctx` again.
#[inline(always)]
pub(crate) fn with_ctx<R>(f: impl FnOnce(&mut RunState) -> R) -> Option<R> {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return None;
    }
    // SAFETY: `CURRENT` is non-null only between `enter` and the drop of its guard, and
    // `enter`'s caller keeps the pointee alive and unmoved for that whole time (see
    // `enter`). The pointer is only ever turned into a shared reference; exclusive access
    // goes through the `RefCell`, which panics rather than alias if `f` re-enters.
    let cell = unsafe { &*p };
    let mut state = cell.borrow_mut();
    Some(f(&mut state))
}

/// [`with_ctx`], with `outside` giving the result when no run is polling on this thread; `arg`
/// goes to whichever of the two runs.
///
/// For results built where the caller returns them: one of two closures makes the value, so
/// that it need not pass through an `Option` first (see `Load::poll`).
#[inline(always)]
pub(crate) fn with_ctx_or<A, R>(
    arg: A,
    f: impl FnOnce(&mut RunState, A) -> R,
    outside: impl FnOnce(A) -> R,
) -> R {
    let p = CURRENT.with(Cell::get);
    if p.is_null() {
        return outside(arg);
    }
    // SAFETY: as in `with_ctx`.
    let cell = unsafe { &*p };
    let mut state = cell.borrow_mut();
    f(&mut state, arg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn with_ctx_is_none_outside_a_run() {
        assert!(with_ctx(|_| ()).is_none());
        assert!(current_task().is_none());
    }
}
