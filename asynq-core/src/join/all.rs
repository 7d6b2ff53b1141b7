//! [`JoinAll`], the join of a `Vec`, its children kept in place; arrays ride on it.

use std::fmt;
use std::future::Future;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Context, Poll};

use super::{JoinState, Progress, free_node, poll_in_node};
use crate::nodes::{DONE, NONE};

/// The future of an awaited `Vec` (and of maps): all children run in the same rounds.
///
/// Its memory is what the collection itself needs, and nothing per child beyond a `u32`:
///
/// - the children stay in the buffer they were collected into. A `Vec` of yieldables whose
///   futures have the same layout (tasks and fetch requests do) is turned into its futures in
///   place, without a second buffer;
/// - each child's state is at most one `u32`: its wake-up node in the run, or a mark. The
///   children that finish in their first poll before any waits (all of them, in a join of
///   trivial tasks) need none;
/// - a child's output goes straight to its place in the output `Vec`, allocated once, and the
///   child's future is dropped as soon as it finishes.
///
/// A join of a million trivial tasks thus needs their 24 MB and the outputs' 8 MB. The copy
/// into a second buffer of larger children that this replaces went past the size from which
/// glibc maps fresh pages for every allocation (32 MiB), and tripled the cost per child.
#[must_use = "futures do nothing unless polled"]
pub struct JoinAll<F: Future> {
    state: JoinState,
    /// The children, in place. Child `i` is initialized until it is done (see
    /// [`JoinAll::mark`]); the buffer is never grown, so a child never moves once polled.
    children: Vec<MaybeUninit<F>>,
    /// Children `0..done_prefix` finished in their first poll, before any child waited.
    done_prefix: usize,
    /// The marks of children `done_prefix..done_prefix + marks.len()`, those polled so far
    /// (the first pass polls in order) after the prefix: a node while unfinished ([`NONE`]
    /// until it needs one), or [`DONE`]. Filled by that pass rather than ahead of it.
    marks: Vec<u32>,
    /// Output `i` is initialized once child `i` is done.
    outputs: Vec<MaybeUninit<F::Output>>,
    /// The outputs have been handed out; polling again is a bug.
    finished: bool,
}

// The children live on the heap and are never moved (see `children`), whether or not the
// join itself moves.
impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> JoinAll<F> {
    /// Join `futures`, keeping them in their buffer.
    pub(crate) fn from_vec(futures: Vec<F>) -> Self {
        let len = futures.len();
        let mut futures = std::mem::ManuallyDrop::new(futures);
        // SAFETY: `MaybeUninit<F>` has the layout of `F`; the buffer, its length and capacity
        // come from a `Vec<F>` that is not used again (`ManuallyDrop`).
        let children = unsafe {
            Vec::from_raw_parts(
                futures.as_mut_ptr().cast::<MaybeUninit<F>>(),
                len,
                futures.capacity(),
            )
        };
        let mut outputs = Vec::with_capacity(len);
        // SAFETY: the capacity is `len`, and uninitialized `MaybeUninit`s are valid.
        unsafe { outputs.set_len(len) };
        JoinAll {
            state: JoinState::new(),
            children,
            done_prefix: 0,
            marks: Vec::new(),
            outputs,
            finished: false,
        }
    }

    /// Poll until every child is done; then hand out the outputs, in order.
    pub(crate) fn poll_outputs(&mut self, cx: &mut Context<'_>) -> Poll<Vec<F::Output>> {
        assert!(
            !self.finished,
            "a joined `Vec` or map polled after it completed"
        );
        let len = self.children.len();
        let JoinAll {
            state,
            children,
            done_prefix,
            marks,
            outputs,
            ..
        } = self;
        let done = state.drive(len, cx, &mut |slot, parent, cx| {
            if slot < *done_prefix {
                return Progress::WasDone;
            }
            // The prefix grows while every child so far has finished in its first poll.
            let extends_prefix = slot == *done_prefix && marks.is_empty();
            let mut first = NONE;
            let node = if extends_prefix {
                &mut first
            } else {
                if slot == *done_prefix + marks.len() {
                    marks.push(NONE); // first poll, after the first child that waited
                }
                &mut marks[slot - *done_prefix]
            };
            if *node == DONE {
                return Progress::WasDone;
            }
            // SAFETY: child `slot` is initialized (it is not done) and pinned: it is never
            // moved out of the buffer, only dropped in place below.
            let future = unsafe { Pin::new_unchecked(children[slot].assume_init_mut()) };
            match poll_in_node(future, node, parent, slot, cx) {
                Poll::Ready(output) => {
                    outputs[slot].write(output);
                    *node = DONE;
                    if extends_prefix {
                        *done_prefix += 1;
                    }
                    // SAFETY: initialized until now; marked done, it no longer is.
                    unsafe { children[slot].assume_init_drop() };
                    Progress::Finished
                }
                Poll::Pending => {
                    if extends_prefix {
                        // The first child to wait: marks start here.
                        marks.reserve_exact(len - slot);
                        marks.push(first);
                    }
                    Progress::Pending
                }
            }
        });
        if !done {
            return Poll::Pending;
        }
        self.finished = true;
        self.done_prefix = 0;
        self.marks = Vec::new();
        // Every child has been dropped: free the buffer only.
        self.children = Vec::new();
        let mut outputs = std::mem::ManuallyDrop::new(std::mem::take(&mut self.outputs));
        // SAFETY: every output is initialized (every status was `DONE`), and `MaybeUninit<T>`
        // has the layout of `T`; the vector is not used again.
        Poll::Ready(unsafe {
            Vec::from_raw_parts(
                outputs.as_mut_ptr().cast::<F::Output>(),
                outputs.len(),
                outputs.capacity(),
            )
        })
    }
}

impl<F: Future> JoinAll<F> {
    /// Child `slot`'s mark: [`DONE`], its node, or [`NONE`] (also for children not polled yet).
    fn mark(&self, slot: usize) -> u32 {
        match slot.checked_sub(self.done_prefix) {
            None => DONE,
            Some(i) => self.marks.get(i).copied().unwrap_or(NONE),
        }
    }
}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_outputs(cx)
    }
}

impl<F: Future> Drop for JoinAll<F> {
    fn drop(&mut self) {
        // Taken first, so that a panicking drop below leaks the rest instead of dropping twice.
        let mut children = std::mem::take(&mut self.children);
        for (slot, child) in children.iter_mut().enumerate() {
            let node = self.mark(slot);
            if node == DONE {
                // SAFETY: a `DONE` child's output is initialized and dropped only here.
                unsafe { self.outputs[slot].assume_init_drop() };
                continue;
            }
            if node != NONE {
                free_node(node);
            }
            // SAFETY: an unfinished child is initialized and dropped only here.
            unsafe { child.assume_init_drop() };
        }
    }
}

impl<F: Future> fmt::Debug for JoinAll<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinAll")
            .field("len", &self.children.len())
            .field("state", &self.state)
            .finish()
    }
}

/// The future of an awaited array: a [`JoinAll`] of its members, the outputs put back in an
/// array (one allocation: arrays are awaited rarely, and this keeps the join code in one
/// place).
#[must_use = "futures do nothing unless polled"]
pub struct JoinArray<F: Future, const N: usize> {
    join: JoinAll<F>,
}

impl<F: Future, const N: usize> JoinArray<F, N> {
    pub(crate) fn new(futures: [F; N]) -> Self {
        JoinArray {
            join: JoinAll::from_vec(Vec::from(futures)),
        }
    }
}

impl<F: Future, const N: usize> Future for JoinArray<F, N> {
    type Output = [F::Output; N];
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.join
            .poll_outputs(cx)
            .map(|outputs| match outputs.try_into() {
                Ok(array) => array,
                Err(_) => unreachable!("a join of N children has N outputs"),
            })
    }
}

impl<F: Future, const N: usize> fmt::Debug for JoinArray<F, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinArray")
            .field("len", &N)
            .field("join", &self.join)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::cell::Cell;
    use std::rc::Rc;
    use std::task::Waker;

    use super::*;
    use crate::task::Task;
    use crate::yieldable::Yieldable;

    /// Counts the drops of the values it hands out.
    #[derive(Clone, Default)]
    struct Drops(Rc<Cell<usize>>);

    struct Counted(Drops);

    impl Drop for Counted {
        fn drop(&mut self) {
            (self.0).0.set((self.0).0.get() + 1);
        }
    }

    /// Finishes at once with a `Counted` output when `ready`; never, otherwise. Counts its own
    /// drop too.
    struct Child {
        ready: bool,
        output: Drops,
        _own: Counted,
    }

    impl Future for Child {
        type Output = Counted;
        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Counted> {
            if self.ready {
                Poll::Ready(Counted(self.output.clone()))
            } else {
                Poll::Pending
            }
        }
    }

    fn children(pattern: &[bool], futures: &Drops, outputs: &Drops) -> Vec<Child> {
        let child = |&ready| Child {
            ready,
            output: outputs.clone(),
            _own: Counted(futures.clone()),
        };
        pattern.iter().map(child).collect()
    }

    fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
        Pin::new(future).poll(&mut Context::from_waker(Waker::noop()))
    }

    #[test]
    fn a_vec_of_tasks_is_joined_in_its_own_buffer() {
        let tasks: Vec<_> = (0..1000_u64)
            .map(|i| Task::__new(&"t", async move { i }))
            .collect();
        let buffer = tasks.as_ptr().addr();
        let mut join = tasks.into_future();
        assert_eq!(join.children.as_ptr().addr(), buffer, "tasks were copied");
        let Poll::Ready(out) = poll_once(&mut join) else {
            panic!("trivial tasks finish in one poll");
        };
        assert_eq!(out, (0..1000).collect::<Vec<_>>());
    }

    #[test]
    fn a_dropped_join_drops_each_output_and_each_unfinished_child_once() {
        let (futures, outputs) = (Drops::default(), Drops::default());
        let mut join = JoinAll::from_vec(children(
            &[true, false, true, true, false],
            &futures,
            &outputs,
        ));
        assert!(poll_once(&mut join).is_pending());
        // Finished children are dropped as they finish; their outputs wait in the join.
        assert_eq!((futures.0.get(), outputs.0.get()), (3, 0));
        drop(join);
        assert_eq!((futures.0.get(), outputs.0.get()), (5, 3));
    }

    #[test]
    fn a_join_dropped_before_its_first_poll_drops_every_child() {
        let (futures, outputs) = (Drops::default(), Drops::default());
        drop(JoinAll::from_vec(children(&[true; 4], &futures, &outputs)));
        assert_eq!((futures.0.get(), outputs.0.get()), (4, 0));
    }

    #[test]
    fn outputs_come_in_order_and_are_not_dropped_by_the_join() {
        let (futures, outputs) = (Drops::default(), Drops::default());
        let mut join = JoinAll::from_vec(children(&[true; 3], &futures, &outputs));
        let Poll::Ready(out) = poll_once(&mut join) else {
            panic!("every child is ready");
        };
        drop(join);
        assert_eq!((futures.0.get(), outputs.0.get()), (3, 0));
        drop(out);
        assert_eq!(outputs.0.get(), 3);
    }

    #[test]
    fn empty_and_zero_sized_joins() {
        let mut empty = JoinAll::from_vec(Vec::<std::future::Ready<u8>>::new());
        assert_eq!(poll_once(&mut empty), Poll::Ready(vec![]));
        let units = (0..5).map(|_| std::future::ready(())).collect();
        assert_eq!(
            poll_once(&mut JoinAll::from_vec(units)),
            Poll::Ready(vec![(); 5])
        );
    }

    #[test]
    #[should_panic(expected = "polled after it completed")]
    fn polling_a_finished_join_again_is_a_clear_panic() {
        let mut join = JoinAll::from_vec(vec![std::future::ready(1)]);
        assert_eq!(poll_once(&mut join), Poll::Ready(vec![1]));
        let _ = poll_once(&mut join);
    }
}
