//! The bodies of boxed tasks registered in one run: the run's arena of entries, each a root
//! the scheduler polls, linked to the entry it was registered from so that a cancelled
//! body's descendants can be dropped innermost first (see [`detached`](crate::detached),
//! which registers them).

use std::ptr::NonNull;
use std::task::Context;

use crate::frames::Frames;
use crate::nodes::{NONE, Nodes, Waiter};

/// A registered body as the run sees it: output type and lifetime erased.
pub(crate) trait ErasedBody {
    /// Poll the body once; when it finishes, keep its output and drop the body. True once done.
    fn poll_body(&mut self, cx: &mut Context<'_>) -> bool;
    /// Drop the body in place, unfinished (its task is cancelled).
    fn drop_body(&mut self);
    /// The run no longer holds the body: its handle has nothing to unregister.
    fn unregister(&mut self);
    /// The asynq function of the body, for statistics and errors.
    fn name(&self) -> &'static str;
}

/// One registered body in a run's arena.
pub(crate) struct Entry {
    /// The cell; `None` on the free list.
    pub(crate) body: Option<NonNull<dyn ErasedBody>>,
    /// Its root node.
    pub(crate) node: u32,
    /// The node of the future awaiting it, woken when it finishes.
    pub(crate) awaiter: Waiter,
    /// The scoped values and hooks in force where it was first awaited.
    pub(crate) frames: Frames,
    /// Counted as a started task yet.
    pub(crate) started: bool,
    /// The entry it was registered from ([`NONE`]: the run's root task), and its place among
    /// that entry's children (the next free entry, on the free list).
    pub(crate) parent: u32,
    pub(crate) first_child: u32,
    pub(crate) next_sibling: u32,
    pub(crate) prev_sibling: u32,
}

/// What [`Detached::remove`] gives back.
pub(crate) struct Removed {
    pub(crate) body: NonNull<dyn ErasedBody>,
    pub(crate) parent: u32,
    pub(crate) frames: Frames,
}

/// The bodies registered in one run.
#[derive(Default)]
pub(crate) struct Detached {
    entries: Vec<Entry>,
    free: u32,
    live: usize,
}

impl std::fmt::Debug for Detached {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detached")
            .field("live", &self.live)
            .finish()
    }
}

// SAFETY: the bodies are owned by the handles of boxed tasks inside the run's root future and are only touched
// while the run is polled, or dropped, on the thread doing it, or under the run's lock (see
// the module docs). A run holding `!Send` bodies (`LocalBoxFuture`) is `!Send` through its
// root future; one whose `!Send` body came from elsewhere is pinned to its thread
// (`RunState::pin_to_thread`).
unsafe impl Send for Detached {}

/// The emptied arena of a finished run, with its capacity: what a runtime keeps for its next
/// run (see [`RunSpare`](crate::context::RunSpare)).
#[derive(Default)]
pub(crate) struct DetachedSpare(Vec<Entry>);

// SAFETY: a spare arena holds no entry (it is emptied when made, see `Detached::take_spare`),
// so no pointer to a body: only the capacity of its buffer.
unsafe impl Send for DetachedSpare {}

impl DetachedSpare {
    /// An empty buffer for `entries` entries.
    #[cfg(test)]
    pub(crate) fn with_capacity(entries: usize) -> Self {
        DetachedSpare(Vec::with_capacity(entries))
    }

    /// Bytes of the buffer kept.
    pub(crate) fn bytes(&self) -> usize {
        self.0.capacity() * size_of::<Entry>()
    }
}

impl Detached {
    /// A new arena in the buffer of `spare` (emptied by [`take_spare`](Detached::take_spare)).
    pub(crate) fn reusing(spare: DetachedSpare) -> Self {
        debug_assert!(spare.0.is_empty(), "a spare arena is emptied when kept");
        Detached {
            entries: spare.0,
            free: NONE,
            live: 0,
        }
    }

    /// The arena's buffer, emptied, for the next run; `None` while bodies are still
    /// registered (a run dropped before its boxed tasks were: nothing is reused then).
    pub(crate) fn take_spare(&mut self) -> Option<DetachedSpare> {
        if self.live != 0 {
            return None;
        }
        let mut buffer = std::mem::take(&mut self.entries);
        buffer.clear();
        self.free = NONE;
        Some(DetachedSpare(buffer))
    }

    pub(crate) fn insert(
        &mut self,
        body: NonNull<dyn ErasedBody>,
        awaiter: Waiter,
        frames: Frames,
        parent: u32,
    ) -> u32 {
        let entry = Entry {
            body: Some(body),
            node: NONE,
            awaiter,
            frames,
            started: false,
            parent,
            first_child: NONE,
            next_sibling: NONE,
            prev_sibling: NONE,
        };
        let id = if self.free != NONE {
            let id = self.free;
            self.free = self.entries[id as usize].parent;
            self.entries[id as usize] = entry;
            id
        } else {
            let id = u32::try_from(self.entries.len())
                .ok()
                .filter(|&id| id < NONE - 4)
                .expect("more than 2^32 - 5 boxed tasks waiting at once in one run");
            self.entries.push(entry);
            id
        };
        self.live += 1;
        if parent != NONE {
            let first = std::mem::replace(&mut self.entries[parent as usize].first_child, id);
            self.entries[id as usize].next_sibling = first;
            if first != NONE {
                self.entries[first as usize].prev_sibling = id;
            }
        }
        id
    }

    /// Entry `id`, registered or not.
    pub(crate) fn entry(&mut self, id: u32) -> Option<&mut Entry> {
        self.entries.get_mut(id as usize)
    }

    pub(crate) fn first_child(&self, id: u32) -> Option<u32> {
        let child = self.entries.get(id as usize)?.first_child;
        (child != NONE).then_some(child)
    }

    /// Take entry `id` out (its node freed, its cell marked unregistered); `None` if it is not
    /// registered.
    pub(crate) fn remove(&mut self, id: u32, nodes: &mut Nodes) -> Option<Removed> {
        let entry = self.entries.get_mut(id as usize)?;
        let mut body = entry.body.take()?;
        let (parent, prev, next) = (entry.parent, entry.prev_sibling, entry.next_sibling);
        let frames = std::mem::take(&mut entry.frames);
        nodes.free(entry.node);
        entry.parent = self.free;
        self.free = id;
        self.live -= 1;
        if prev != NONE {
            self.entries[prev as usize].next_sibling = next;
        } else if parent != NONE {
            self.entries[parent as usize].first_child = next;
        }
        if next != NONE {
            self.entries[next as usize].prev_sibling = prev;
        }
        // The children of a finished body are all finished; those of a cancelled one are
        // removed first. Any left (a body registered from inside another one but owned
        // elsewhere) become children of the run's root task.
        let mut child = std::mem::replace(&mut self.entries[id as usize].first_child, NONE);
        while child != NONE {
            let c = &mut self.entries[child as usize];
            c.parent = NONE;
            c.prev_sibling = NONE;
            child = std::mem::replace(&mut c.next_sibling, NONE);
        }
        // SAFETY: the body is registered until now, so its cell is alive, and no reference to
        // it is held (its handle is not being polled while the run updates the arena).
        unsafe { body.as_mut() }.unregister();
        Some(Removed {
            body,
            parent,
            frames,
        })
    }

    /// Every entry registered from the run's root task (for dropping a run innermost first).
    pub(crate) fn top_level(&self) -> Vec<u32> {
        (0..self.entries.len() as u32)
            .filter(|&id| {
                let e = &self.entries[id as usize];
                e.body.is_some() && e.parent == NONE
            })
            .collect()
    }

    /// The names of the entries above `id`, outermost first, at most `limit` of each end.
    pub(crate) fn path(&self, id: u32, limit: usize) -> (Vec<&'static str>, usize) {
        let mut names = Vec::new();
        let mut current = id;
        while let Some(entry) = self.entries.get(current as usize)
            && let Some(body) = entry.body
        {
            // SAFETY: a registered body is alive (its handle unregisters it before freeing
            // it), and nothing else touches it while the run reads its name.
            names.push(unsafe { body.as_ref() }.name());
            current = entry.parent;
        }
        names.reverse();
        let hidden = names.len().saturating_sub(2 * limit);
        if hidden > 0 {
            names.drain(limit..names.len() - limit);
        }
        (names, hidden)
    }
}
