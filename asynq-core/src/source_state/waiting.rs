//! The tasks waiting on a source's pending keys beyond the first ([`MoreWaiters`]).

use crate::nodes::{NONE, Nodes, Waiter};

/// The second and later waiters of the pending keys of one source in one run.
///
/// A pending key's slot holds its first waiter itself, and the head of a list of the others
/// here (`NONE` when there are none). Almost every key has exactly one waiter: for a `u64`
/// value a slot is two words (the value, or a waiter and a list head) where it was four with
/// a small vector of waiters and the number of its call, and a wide round touches half the
/// memory per key (a fifth fewer D1 misses per waiting task). The lists are linked through
/// this one buffer, newest first. Woken entries are not reused one by one: the buffer is
/// emptied, keeping its capacity, whenever no waiter is left in it, which is at the end of
/// every round whose calls all answered. It therefore holds the extra waiters coalesced since
/// that last happened: one entry per coalesced request, the same bound as the requests.
#[derive(Default)]
pub(crate) struct MoreWaiters {
    /// `(waiter, next)`: the next entry of the same list, or `NONE`.
    entries: Vec<(Waiter, u32)>,
    /// Entries whose key has not been answered yet.
    live: usize,
}

impl MoreWaiters {
    /// Add `waiter` to the list headed by `head`; returns the list's new head.
    pub(crate) fn push(&mut self, head: u32, waiter: Waiter) -> u32 {
        let id = u32::try_from(self.entries.len())
            .ok()
            .filter(|&id| id < NONE)
            .expect("more than 2^32 - 1 requests waiting on keys of one source");
        self.entries.push((waiter, head));
        self.live += 1;
        id
    }

    /// Wake `first`, then the waiters of the list headed by `head`, in the order they came.
    #[inline]
    pub(crate) fn wake(&mut self, first: Waiter, head: u32, nodes: &mut Nodes) {
        nodes.wake(first);
        if head != NONE {
            self.wake_list(head, nodes);
        }
    }

    /// Wake the waiters of the list headed by `head`, in the order they came.
    #[inline(never)]
    fn wake_list(&mut self, head: u32, nodes: &mut Nodes) {
        let mut later = smallvec::SmallVec::<[Waiter; 8]>::new();
        let mut at = head;
        while at != NONE {
            let (waiter, next) = self.entries[at as usize];
            later.push(waiter);
            at = next;
        }
        self.live -= later.len();
        later.into_iter().rev().for_each(|w| nodes.wake(w));
        if self.live == 0 {
            self.entries.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nodes::ROOT;

    #[test]
    fn waiters_wake_in_the_order_they_came_and_the_buffer_empties() {
        let mut nodes = Nodes::new();
        assert_eq!(nodes.pop_runnable(), Some((ROOT, NONE)));
        let children: Vec<u32> = (0..5).map(|slot| nodes.alloc(ROOT, slot)).collect();
        let waiter = |node: u32| nodes.waiter(node);
        let (w0, w1, w2, w3, w4) = (
            waiter(children[0]),
            waiter(children[1]),
            waiter(children[2]),
            waiter(children[3]),
            waiter(children[4]),
        );
        let mut more = MoreWaiters::default();
        // Two keys pending at once: (w3; w1, w4) and (w2; w0).
        let a = more.push(NONE, w1);
        let b = more.push(NONE, w0);
        let a = more.push(a, w4);
        more.wake(w2, b, &mut nodes);
        assert_eq!(more.entries.len(), 3, "one key's waiters are still listed");
        more.wake(w3, a, &mut nodes);
        assert!(more.entries.is_empty() && more.live == 0);
        let order: Vec<u32> = std::iter::from_fn(|| nodes.pop_ready(ROOT))
            .map(|(_, slot)| slot)
            .collect();
        assert_eq!(order, [2, 0, 3, 1, 4]);
    }
}
