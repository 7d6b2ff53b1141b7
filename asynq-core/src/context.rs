//! The state of one run, reached by the futures it polls.
//!
//! A run owns a [`RunState`] on the heap. While the run polls its root task it publishes a
//! pointer to that state in a thread-local ([`enter`]); fetch requests, joins and tasks reach
//! it with [`with_ctx`]. Nothing outlives the run and two runs on two threads never share it.
//!
//! # Wake-ups without wakers
//!
//! Every wake-up inside a run comes from the run itself: a batch returns and the tasks waiting
//! on its keys must resume. Instead of allocating a `Waker` per child of every join, the run
//! keeps an arena of *nodes*. Node 0 is the root task; a join gives each of its children a node
//! whose parent is the node the join is polled in. A fetch request that must wait records the
//! node it is polled in (with the node's generation, so a stale record is ignored). When its
//! key is answered, [`Nodes::wake`] marks that node and its ancestors *queued*, appending each to
//! its parent's FIFO ready list and stopping at the first ancestor already queued. A join then
//! re-polls only the children in its ready list. A round therefore costs time proportional to
//! the tasks that became runnable in it, never to everything alive.

use std::any::TypeId;
use std::cell::{Cell, RefCell};
use std::ptr;
use std::sync::Arc;

use smallvec::SmallVec;

use crate::source::DataSource;
use crate::source_state::{ErasedSource, ErasedState, SourceState};
use crate::stats::RunCounters;

/// No node: the parent of the root, the end of a ready list.
pub(crate) const NONE: u32 = u32::MAX;
/// The node of the root task of every run.
pub(crate) const ROOT: u32 = 0;
/// The parent of a node on the free list.
const FREED: u32 = u32::MAX - 1;
/// The current future is a join's child that has no node yet ([`RunState::lazy`] says whose
/// child): one is made only when something needs it, so a child that finishes in its first
/// poll (a trivial task, a cache hit) never costs one.
pub(crate) const LAZY: u32 = u32::MAX - 2;
/// Not a node: a join's mark for a child that has finished (see [`JoinAll`](crate::JoinAll)).
/// Node numbers stay below it.
pub(crate) const DONE: u32 = u32::MAX - 3;

/// A node to wake once something a future waits on is ready.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Waiter {
    node: u32,
    generation: u32,
}

/// The waiters of one pending key: almost always exactly one.
pub(crate) type Waiters = SmallVec<[Waiter; 1]>;

#[derive(Debug)]
struct Node {
    parent: u32,
    /// Index of this node's child in its join (tuple position, vector index).
    slot: u32,
    /// Bumped whenever the node is freed, so that old [`Waiter`]s are ignored.
    generation: u32,
    /// In its parent's ready list (or, for the root, runnable).
    queued: bool,
    ready_head: u32,
    ready_tail: u32,
    /// Next sibling in the parent's ready list, or the next free node.
    next: u32,
}

/// The arena of nodes of one run.
#[derive(Debug)]
pub(crate) struct Nodes {
    nodes: Vec<Node>,
    free: u32,
    live: usize,
}

impl Nodes {
    fn new() -> Self {
        let mut nodes = Nodes {
            nodes: Vec::with_capacity(64),
            free: NONE,
            live: 0,
        };
        let root = nodes.alloc(NONE, 0);
        debug_assert_eq!(root, ROOT);
        // The root starts runnable.
        nodes.nodes[ROOT as usize].queued = true;
        nodes
    }

    /// Number of nodes in use, the root included.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// A new node, child `slot` of `parent`.
    #[inline]
    pub(crate) fn alloc(&mut self, parent: u32, slot: u32) -> u32 {
        self.live += 1;
        if self.free != NONE {
            let id = self.free;
            let node = &mut self.nodes[id as usize];
            self.free = node.next;
            node.parent = parent;
            node.slot = slot;
            node.next = NONE;
            return id;
        }
        let id = u32::try_from(self.nodes.len())
            .ok()
            .filter(|&id| id < DONE)
            .expect("more than 2^32 - 1 simultaneously waiting asynq tasks in one run");
        self.nodes.push(Node {
            parent,
            slot,
            generation: 0,
            queued: false,
            ready_head: NONE,
            ready_tail: NONE,
            next: NONE,
        });
        id
    }

    /// Return a node to the arena; waiters recorded for it are ignored from now on.
    pub(crate) fn free(&mut self, id: u32) {
        let node = &mut self.nodes[id as usize];
        node.generation = node.generation.wrapping_add(1);
        node.parent = FREED;
        node.queued = false;
        node.ready_head = NONE;
        node.ready_tail = NONE;
        node.next = self.free;
        self.free = id;
        self.live -= 1;
    }

    /// The waiter that wakes node `id` as it is now.
    pub(crate) fn waiter(&self, id: u32) -> Waiter {
        Waiter {
            node: id,
            generation: self.nodes[id as usize].generation,
        }
    }

    /// Mark the waiter's node runnable, with every ancestor up to the first one already queued.
    pub(crate) fn wake(&mut self, waiter: Waiter) {
        let mut id = waiter.node;
        match self.nodes.get(id as usize) {
            Some(node) if node.generation == waiter.generation => {}
            _ => return,
        }
        loop {
            let node = &mut self.nodes[id as usize];
            if node.queued {
                return;
            }
            node.queued = true;
            node.next = NONE;
            let parent = node.parent;
            if parent == NONE {
                return;
            }
            let p = &mut self.nodes[parent as usize];
            let tail = p.ready_tail;
            p.ready_tail = id;
            if tail == NONE {
                p.ready_head = id;
            } else {
                self.nodes[tail as usize].next = id;
            }
            id = parent;
        }
    }

    /// Take the next runnable child of `parent`: its node and slot.
    pub(crate) fn pop_ready(&mut self, parent: u32) -> Option<(u32, u32)> {
        let p = &mut self.nodes[parent as usize];
        let id = p.ready_head;
        if id == NONE {
            return None;
        }
        let node = &mut self.nodes[id as usize];
        let next = node.next;
        node.queued = false;
        node.next = NONE;
        let slot = node.slot;
        let p = &mut self.nodes[parent as usize];
        p.ready_head = next;
        if next == NONE {
            p.ready_tail = NONE;
        }
        Some((id, slot))
    }

    /// Forget the ready list of `parent` (its join is gone).
    pub(crate) fn clear_ready(&mut self, parent: u32) {
        while self.pop_ready(parent).is_some() {}
    }

    /// Whether the root is runnable; clears the mark.
    pub(crate) fn take_root_queued(&mut self) -> bool {
        std::mem::replace(&mut self.nodes[ROOT as usize].queued, false)
    }

    /// Queue every live node, so that the next poll visits every unfinished future
    /// (used to describe a stalled run).
    pub(crate) fn wake_all(&mut self) {
        for id in 0..self.nodes.len() as u32 {
            if self.nodes[id as usize].parent != FREED {
                self.wake(self.waiter(id));
            }
        }
    }
}

/// The waiter of the node being polled, not made yet: [`LazyWaiter::get`] makes the node if
/// the polled future has none (see [`RunState::current_node`]).
pub(crate) struct LazyWaiter<'a> {
    nodes: &'a mut Nodes,
    current: &'a mut u32,
    lazy: (u32, u32),
}

impl LazyWaiter<'_> {
    /// The waiter, the node made now if needed.
    #[inline]
    pub(crate) fn get(self) -> Waiter {
        let node = node_of(self.nodes, self.current, self.lazy);
        self.nodes.waiter(node)
    }
}

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
    pub(crate) memos: crate::memo::Memos,
    /// Per-function figures, when the runtime collects them.
    pub(crate) profile: Option<crate::stats::Profiler>,
    /// Tasks resume as soon as their keys are answered, while other calls are in flight.
    pub(crate) eager: bool,
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

/// What a stalled run's last pass recorded.
#[derive(Debug, Default)]
pub(crate) struct Diagnosis {
    pub(crate) stack: Vec<&'static str>,
    /// Innermost waiting tasks, each as its path from the root and what it waits on:
    /// `page > profile > stuck: waits on ...`.
    pub(crate) waiting: Vec<String>,
    /// Length of `waiting` when each frame of `stack` was entered.
    pub(crate) marks: Vec<usize>,
    /// What the innermost task polled last waits on, said by the future it awaits.
    pub(crate) note: Option<String>,
}

impl Diagnosis {
    /// A task starts a poll.
    pub(crate) fn enter(&mut self, task: &'static str) {
        self.stack.push(task);
        self.marks.push(self.waiting.len());
        self.note = None;
    }

    /// What the task being polled waits on (a fetch, a memoized call).
    pub(crate) fn waits_on(&mut self, what: String) {
        self.note = Some(what);
    }

    /// The task polled last ends its poll; record it if it waits and nothing inside it did.
    pub(crate) fn exit(&mut self, pending: bool) {
        let mark = self.marks.pop().unwrap_or(0);
        if pending && self.waiting.len() == mark {
            let path: Vec<&str> = self
                .stack
                .iter()
                .map(|t| t.rsplit("::").next().unwrap_or(t))
                .collect();
            let note = self.note.take().unwrap_or_else(|| {
                "waits on a future that is neither an asynq task nor a fetch, so nothing \
                 will wake it"
                    .to_owned()
            });
            self.waiting.push(format!("{}: {note}", path.join(" > ")));
        }
        self.note = None;
        self.stack.pop();
    }
}

impl RunState {
    pub(crate) fn new(sources: Vec<SourceSlot>) -> Self {
        RunState {
            nodes: Nodes::new(),
            current: ROOT,
            lazy: (NONE, 0),
            task: "<root>",
            sources,
            counters: RunCounters::default(),
            diagnose: None,
            memos: crate::memo::Memos::default(),
            profile: None,
            eager: false,
        }
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
        let RunState {
            sources,
            nodes,
            eager,
            ..
        } = self;
        (source_state_in(sources, index, *eager), nodes)
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
            eager,
            current,
            lazy,
            ..
        } = self;
        let waiter = LazyWaiter {
            nodes,
            current,
            lazy: *lazy,
        };
        (source_state_in(sources, index, *eager), waiter)
    }

    /// The run's memoized executions, with the waiter of the node being polled, to be made
    /// only if the call has to wait.
    pub(crate) fn memos_and_waiter(&mut self) -> (&mut crate::memo::Memos, LazyWaiter<'_>) {
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
fn source_state_in<S: DataSource>(
    sources: &mut [SourceSlot],
    index: usize,
    eager: bool,
) -> &mut SourceState<S> {
    let slot = &mut sources[index];
    slot.state
        .get_or_insert_with(|| slot.source.new_state(index, eager))
        .as_any_mut()
        .downcast_mut()
        .expect("a source's run state has the source's type")
}

/// The node `current` names, made now (child `lazy` of its join) if it is [`LAZY`].
#[inline]
fn node_of(nodes: &mut Nodes, current: &mut u32, lazy: (u32, u32)) -> u32 {
    if *current == LAZY {
        let (parent, slot) = lazy;
        *current = nodes.alloc(parent, slot);
    }
    *current
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
#[inline]
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wake_queues_ancestors_once_in_fifo_order() {
        let mut n = Nodes::new();
        assert!(n.take_root_queued());
        let a = n.alloc(ROOT, 0);
        let b = n.alloc(ROOT, 1);
        let a0 = n.alloc(a, 0);
        let a1 = n.alloc(a, 1);
        let (wa0, wa1, wb) = (n.waiter(a0), n.waiter(a1), n.waiter(b));
        n.wake(wa1);
        n.wake(wb);
        n.wake(wa0);
        assert!(n.take_root_queued());
        assert_eq!(n.pop_ready(ROOT), Some((a, 0)));
        assert_eq!(n.pop_ready(ROOT), Some((b, 1)));
        assert_eq!(n.pop_ready(ROOT), None);
        assert_eq!(n.pop_ready(a), Some((a1, 1)));
        assert_eq!(n.pop_ready(a), Some((a0, 0)));
        assert_eq!(n.pop_ready(a), None);
    }

    #[test]
    fn stale_waiters_are_ignored() {
        let mut n = Nodes::new();
        n.take_root_queued();
        let a = n.alloc(ROOT, 0);
        let w = n.waiter(a);
        n.free(a);
        let again = n.alloc(ROOT, 3);
        assert_eq!(again, a, "freed nodes are reused");
        n.wake(w);
        assert!(!n.take_root_queued());
        assert_eq!(n.pop_ready(ROOT), None);
        assert_eq!(n.live(), 2);
    }

    #[test]
    fn with_ctx_is_none_outside_a_run() {
        assert!(with_ctx(|_| ()).is_none());
        assert!(current_task().is_none());
    }
}
