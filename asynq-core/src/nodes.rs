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

use std::collections::VecDeque;

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
    ready_head: u32,
    ready_tail: u32,
    /// Next sibling in the parent's ready list, or the next free node.
    next: u32,
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
}

impl Nodes {
    pub(crate) fn new() -> Self {
        let mut nodes = Nodes {
            nodes: Vec::with_capacity(64),
            free: NONE,
            live: 0,
            runnable: VecDeque::new(),
        };
        let root = nodes.alloc(NONE, NONE);
        debug_assert_eq!(root, ROOT);
        // The root starts runnable.
        nodes.wake(nodes.waiter(ROOT));
        nodes
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

    /// Mark the waiter's node runnable, with every ancestor up to the first one already
    /// queued; a root reached is put in the run's queue.
    pub(crate) fn wake(&mut self, waiter: Waiter) {
        let mut id = waiter.node;
        match self.nodes.get(id as usize) {
            Some(node) if node.generation == waiter.generation && node.parent != FREED => {}
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

#[cfg(test)]
mod tests {
    use super::*;

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
