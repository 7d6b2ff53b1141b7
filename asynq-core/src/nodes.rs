//! Wake-ups without wakers: the arena of nodes of one run.
//!
//! Every wake-up inside a run comes from the run itself: a batch returns and the tasks waiting
//! on its keys must resume, or a task finishes and the task awaiting it must resume. Instead
//! of allocating a `Waker` per child of every join, the run keeps an arena of *nodes*. A node
//! is either a *root*, polled by the scheduler loop itself (the run's root task, node
//! [`ROOT`], and every task the scheduler polls on its own, see
//! [`detached`](crate::detached)), or a child of a join, whose parent is the node the join is
//! polled in.
//!
//! A future that must wait records the node it is polled in (with the node's generation, so a
//! stale record is ignored). When what it waits on is ready, [`Nodes::wake`] marks that node
//! and its ancestors *queued*, appending each to its parent's FIFO ready list and stopping at
//! the first ancestor already queued; a root reached this way goes into the run's queue of
//! runnable roots. A join then re-polls only the children in its ready list. A wake-up
//! therefore costs the depth of the join nesting *inside one root*, which the code's static
//! shape bounds; recursion goes through tasks the scheduler polls as roots of their own, so a
//! round costs time proportional to what became runnable in it, however deep the data.

use std::collections::{HashMap, HashSet, VecDeque};
use std::task::Waker;

use smallvec::SmallVec;

/// No node: the parent of a root, the end of a ready list.
pub(crate) const NONE: u32 = u32::MAX;
/// The node of the root task of every run.
pub(crate) const ROOT: u32 = 0;
/// The parent of a node on the free list.
const FREED: u32 = u32::MAX - 1;
/// The current future is a join's child that has no node yet (the run's `lazy` says whose
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
    /// The parent node, or [`NONE`] for a root.
    parent: u32,
    /// For a child: its index in its join (tuple position, vector index). For a root: what
    /// the scheduler polls (the detached task's entry; unused for [`ROOT`]).
    slot: u32,
    /// Bumped whenever the node is freed, so that old [`Waiter`]s are ignored.
    generation: u32,
    /// In its parent's ready list, or, for a root, in the run's queue.
    queued: bool,
    /// Foreign wakers are attached to it (see [`Nodes::attach`]).
    foreign: bool,
    ready_head: u32,
    ready_tail: u32,
    /// Next sibling in the parent's ready list, or the next free node.
    next: u32,
}

/// The foreign wakers attached to one node, each once.
///
/// Under plain async code (see [`any`](crate::any)) every fetch polled by a
/// `FuturesUnordered` attaches a waker of its own to the one node the combinator is polled
/// in, so a node may gather one waker per fetch of a round: tens of thousands for a GraphQL
/// page. Checking each new waker against the list with `will_wake` made a round quadratic
/// in its fetches (81% of such a page's instructions). Past a few wakers, an index of them by
/// the two pointers `will_wake` compares (data and vtable) makes the check constant-time.
#[derive(Debug, Default)]
struct ForeignWakers {
    list: SmallVec<[Waker; 1]>,
    /// The `(data, vtable)` of every waker of `list`, once it is longer than [`SCAN_MAX`].
    index: HashSet<(usize, usize), foldhash::fast::RandomState>,
}

/// Wakers of a node checked one by one before an index of them is built.
const SCAN_MAX: usize = 8;

impl ForeignWakers {
    /// Add `waker` unless a waker that wakes the same task is there already.
    fn add(&mut self, waker: &Waker) {
        if self.list.len() < SCAN_MAX {
            if self.list.iter().any(|w| w.will_wake(waker)) {
                return;
            }
        } else {
            if self.index.is_empty() {
                self.index.extend(self.list.iter().map(identity));
            }
            if !self.index.insert(identity(waker)) {
                return;
            }
        }
        self.list.push(waker.clone());
    }
}

/// The two pointers [`Waker::will_wake`] compares: equal for two wakers of the same task.
fn identity(waker: &Waker) -> (usize, usize) {
    (
        waker.data() as usize,
        std::ptr::from_ref(waker.vtable()) as usize,
    )
}

/// The arena of nodes of one run, and its queue of runnable roots.
#[derive(Debug)]
pub(crate) struct Nodes {
    nodes: Vec<Node>,
    free: u32,
    live: usize,
    /// Roots to poll, in the order they became runnable; each as the waiter it was queued
    /// with, so that a root freed (and its node reused) after it was queued is skipped.
    runnable: VecDeque<Waiter>,
    /// Wakers of foreign combinators to wake with a node, by node.
    /// (foldhash: the keys are the run's own node numbers, and SipHash showed in profiles of
    /// pages with many foreign futures.)
    foreign: HashMap<u32, ForeignWakers, foldhash::fast::RandomState>,
    /// Foreign wakers of nodes woken, for the scheduler to wake once it holds no borrow of the
    /// run (a waker runs code that is not asynq's).
    wake_later: Vec<Waker>,
}

/// The emptied arena of a finished run, with its capacity: what a runtime keeps for its next
/// run (see [`RunSpare`](crate::context::RunSpare)).
#[derive(Default)]
pub(crate) struct NodesSpare(Vec<Node>);

impl NodesSpare {
    /// Bytes of the buffer kept.
    pub(crate) fn bytes(&self) -> usize {
        self.0.capacity() * size_of::<Node>()
    }
}

impl Nodes {
    #[cfg(test)]
    pub(crate) fn new() -> Self {
        Self::reusing(NodesSpare::default())
    }

    /// A new arena in the buffer of `spare` (emptied by [`take_spare`](Nodes::take_spare)).
    pub(crate) fn reusing(spare: NodesSpare) -> Self {
        let mut buffer = spare.0;
        debug_assert!(buffer.is_empty(), "a spare arena is emptied when kept");
        buffer.reserve(64);
        let mut nodes = Nodes {
            nodes: buffer,
            free: NONE,
            live: 0,
            runnable: VecDeque::new(),
            foreign: HashMap::default(),
            wake_later: Vec::new(),
        };
        let root = nodes.alloc(NONE, NONE);
        debug_assert_eq!(root, ROOT);
        // The root starts runnable.
        nodes.wake(nodes.waiter(ROOT));
        nodes
    }

    /// The arena's buffer, emptied, for the next run (the run is over: no node is in use).
    pub(crate) fn take_spare(&mut self) -> NodesSpare {
        let mut buffer = std::mem::take(&mut self.nodes);
        buffer.clear();
        NodesSpare(buffer)
    }

    /// Number of nodes in use, the root included.
    pub(crate) fn live(&self) -> usize {
        self.live
    }

    /// A new node, child `slot` of `parent` (or, with `parent` [`NONE`], a root whose `slot`
    /// says what to poll).
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
            .expect("more than 2^32 - 4 simultaneously waiting asynq tasks in one run");
        self.nodes.push(Node {
            parent,
            slot,
            generation: 0,
            queued: false,
            foreign: false,
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
        if std::mem::take(&mut node.foreign) {
            self.foreign.remove(&id);
        }
        self.free = id;
        self.live -= 1;
    }

    /// Wake `waker` when node `id` is next woken: a foreign combinator polls the future that
    /// waits in the node only once its own waker is called (see [`waker`](crate::waker)).
    pub(crate) fn attach(&mut self, id: u32, waker: &Waker) {
        self.foreign.entry(id).or_default().add(waker);
        self.nodes[id as usize].foreign = true;
    }

    /// The foreign wakers of the nodes woken since the last call, to wake now.
    pub(crate) fn take_wake_later(&mut self) -> Vec<Waker> {
        std::mem::take(&mut self.wake_later)
    }

    /// The waiter that wakes node `id` as it is now.
    pub(crate) fn waiter(&self, id: u32) -> Waiter {
        Waiter {
            node: id,
            generation: self.nodes[id as usize].generation,
        }
    }

    /// Mark the waiter's node runnable, with every ancestor up to the first one already
    /// queued; a root reached is put in the run's queue. What the node waited on happened (a
    /// key answered, a task finished): the foreign wakers attached to it and to the nodes
    /// above it are woken too (see [`attach`](Nodes::attach)).
    pub(crate) fn wake(&mut self, waiter: Waiter) {
        self.wake_from(waiter, true);
    }

    /// [`wake`](Nodes::wake) for a wake-up that came from a foreign future through the run's
    /// waker: the node must be polled, but nothing its own attached wakers wait on happened,
    /// so only the wakers of the nodes above it are woken. (Waking them too would wake the
    /// foreign combinator that just woke the node, which would wake it again, forever.)
    pub(crate) fn wake_outside(&mut self, waiter: Waiter) {
        self.wake_from(waiter, false);
    }

    fn wake_from(&mut self, waiter: Waiter, mut attached: bool) {
        let mut id = waiter.node;
        match self.nodes.get(id as usize) {
            Some(node) if node.generation == waiter.generation && node.parent != FREED => {}
            _ => return,
        }
        loop {
            let mut node = &mut self.nodes[id as usize];
            if attached && node.foreign {
                node.foreign = false;
                self.wake_foreign(id);
                node = &mut self.nodes[id as usize];
            }
            attached = true;
            if node.queued {
                return;
            }
            node.queued = true;
            node.next = NONE;
            let parent = node.parent;
            if parent == NONE {
                let generation = node.generation;
                self.runnable.push_back(Waiter {
                    node: id,
                    generation,
                });
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

    /// The foreign wakers attached to node `id` (whose mark is cleared) are to be woken.
    #[cold]
    fn wake_foreign(&mut self, id: u32) {
        if let Some(wakers) = self.foreign.remove(&id) {
            self.wake_later.extend(wakers.list);
        }
    }

    /// Take the next runnable root: its node and its slot (what to poll). Clears its mark.
    pub(crate) fn pop_runnable(&mut self) -> Option<(u32, u32)> {
        while let Some(waiter) = self.runnable.pop_front() {
            let node = &mut self.nodes[waiter.node as usize];
            if node.generation == waiter.generation && node.queued && node.parent == NONE {
                node.queued = false;
                return Some((waiter.node, node.slot));
            }
        }
        None
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

    /// Queue every live node, so that the next polls visit every unfinished future
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
    pub(crate) nodes: &'a mut Nodes,
    pub(crate) current: &'a mut u32,
    pub(crate) lazy: (u32, u32),
}

impl LazyWaiter<'_> {
    /// The waiter, the node made now if needed.
    #[inline]
    pub(crate) fn get(self) -> Waiter {
        let node = node_of(self.nodes, self.current, self.lazy);
        self.nodes.waiter(node)
    }
}

/// The node `current` names, made now (child `lazy` of its join) if it is [`LAZY`].
#[inline]
pub(crate) fn node_of(nodes: &mut Nodes, current: &mut u32, lazy: (u32, u32)) -> u32 {
    if *current == LAZY {
        let (parent, slot) = lazy;
        *current = nodes.alloc(parent, slot);
    }
    *current
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    /// A waker that counts its wake-ups.
    struct Counter(AtomicUsize);
    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn a_node_keeps_each_foreign_waker_once_however_many_it_has() {
        let mut n = Nodes::new();
        let node = n.alloc(ROOT, 0);
        let counters: Vec<Arc<Counter>> = (0..100)
            .map(|_| Arc::new(Counter(AtomicUsize::new(0))))
            .collect();
        let wakers: Vec<Waker> = counters
            .iter()
            .map(|c| Waker::from(Arc::clone(c)))
            .collect();
        // Each attached three times, past the length where an index is built.
        for _ in 0..3 {
            for waker in &wakers {
                n.attach(node, waker);
            }
        }
        // A clone wakes the same task: still the same waker.
        n.attach(node, &wakers[50].clone());
        n.wake(n.waiter(node));
        let later = n.take_wake_later();
        assert_eq!(later.len(), 100);
        later.into_iter().for_each(Waker::wake);
        assert!(counters.iter().all(|c| c.0.load(Ordering::Relaxed) == 1));
        // Woken and detached: attaching again starts afresh.
        n.attach(node, &wakers[0]);
        n.wake(n.waiter(node));
        assert_eq!(n.take_wake_later().len(), 1);
    }

    #[test]
    fn wake_queues_ancestors_once_in_fifo_order() {
        let mut n = Nodes::new();
        assert_eq!(n.pop_runnable(), Some((ROOT, NONE)));
        let a = n.alloc(ROOT, 0);
        let b = n.alloc(ROOT, 1);
        let a0 = n.alloc(a, 0);
        let a1 = n.alloc(a, 1);
        let (wa0, wa1, wb) = (n.waiter(a0), n.waiter(a1), n.waiter(b));
        n.wake(wa1);
        n.wake(wb);
        n.wake(wa0);
        assert_eq!(n.pop_runnable(), Some((ROOT, NONE)));
        assert_eq!(n.pop_runnable(), None);
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
        n.pop_runnable();
        let a = n.alloc(ROOT, 0);
        let w = n.waiter(a);
        n.free(a);
        let again = n.alloc(ROOT, 3);
        assert_eq!(again, a, "freed nodes are reused");
        n.wake(w);
        assert_eq!(n.pop_runnable(), None);
        assert_eq!(n.pop_ready(ROOT), None);
        assert_eq!(n.live(), 2);
    }

    #[test]
    fn roots_are_queued_in_the_order_they_woke_and_freed_ones_are_skipped() {
        let mut n = Nodes::new();
        n.pop_runnable();
        let r1 = n.alloc(NONE, 7);
        let r2 = n.alloc(NONE, 8);
        let child = n.alloc(r2, 0);
        n.wake(n.waiter(child));
        n.wake(n.waiter(r1));
        n.wake(n.waiter(r1)); // queued once
        assert_eq!(n.pop_runnable(), Some((r2, 8)));
        assert_eq!(n.pop_ready(r2), Some((child, 0)));
        n.wake(n.waiter(r2));
        n.free(r2);
        let reused = n.alloc(NONE, 9);
        assert_eq!(reused, r2);
        assert_eq!(n.pop_runnable(), Some((r1, 7)));
        assert_eq!(n.pop_runnable(), None, "the freed root's entry is stale");
    }
}
