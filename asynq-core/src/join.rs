//! Joins: the futures of awaited collections, re-polling only the children that were woken.
//!
//! A join polled inside a run gives each unfinished child a node of the run (see
//! [`context`](crate::context)) and, after the first pass, polls only the children its node's
//! ready list names. Outside a run (a yieldable polled by hand) it falls back to polling every
//! unfinished child, as `futures::future::join_all` does.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::{LAZY, NONE, with_ctx};

/// A child future of a join and, once done, its output.
enum MaybeDone<F: Future> {
    Running(F),
    Done(F::Output),
    Taken,
}

/// What polling a child did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Progress {
    Pending,
    /// Finished during this poll.
    Finished,
    /// Finished earlier; not polled.
    WasDone,
}

/// One child of a join with the run node it waits in.
pub(crate) struct Child<F: Future> {
    future: MaybeDone<F>,
    node: u32,
}

impl<F: Future> Child<F> {
    pub(crate) fn new(future: F) -> Self {
        Child {
            future: MaybeDone::Running(future),
            node: NONE,
        }
    }

    /// Poll the child as `slot` of a join polled in node `parent`.
    fn poll(self: Pin<&mut Self>, parent: u32, slot: usize, cx: &mut Context<'_>) -> Progress {
        // SAFETY: `future` is pinned structurally: it is never moved out of while `Running`
        // (it is dropped in place by the assignment below), and `node` is plain data.
        let this = unsafe { self.get_unchecked_mut() };
        let MaybeDone::Running(future) = &mut this.future else {
            return Progress::WasDone;
        };
        // SAFETY: see above; `this` is pinned, so its `Running` future is.
        let future = unsafe { Pin::new_unchecked(future) };
        let node = this.node;
        let entered = if parent == NONE {
            None
        } else {
            with_ctx(|run| {
                if node == NONE {
                    // No node until something inside asks for one (a wait, a nested join).
                    run.lazy = (parent, slot as u32);
                    run.current = LAZY;
                } else {
                    run.current = node;
                }
            })
        };
        let poll = future.poll(cx);
        if entered.is_some() {
            let done = poll.is_ready();
            let node = with_ctx(|run| {
                let node = match run.current {
                    // Finished without ever needing a node.
                    LAZY if done => NONE,
                    // Waits on something that took no node (a foreign future): give it one
                    // anyway, so that a stall's last pass polls it again to say who waits.
                    LAZY => run.current_node(),
                    node => node,
                };
                run.current = parent;
                if done && node != NONE {
                    run.nodes.free(node);
                    return NONE;
                }
                node
            });
            this.node = node.unwrap_or(NONE);
        }
        match poll {
            Poll::Ready(output) => {
                this.future = MaybeDone::Done(output);
                Progress::Finished
            }
            Poll::Pending => Progress::Pending,
        }
    }

    /// The child's output; the child must be done.
    fn take(self: Pin<&mut Self>) -> F::Output {
        // SAFETY: only a `Done` value is moved out, never the pinned `Running` future.
        let this = unsafe { self.get_unchecked_mut() };
        match &this.future {
            MaybeDone::Done(_) => match std::mem::replace(&mut this.future, MaybeDone::Taken) {
                MaybeDone::Done(output) => output,
                _ => unreachable!(),
            },
            _ => panic!("a join's child output taken before it finished or twice"),
        }
    }
}

impl<F: Future> Drop for Child<F> {
    fn drop(&mut self) {
        if self.node != NONE {
            let node = self.node;
            with_ctx(|run| run.nodes.free(node));
        }
    }
}

/// The scheduling state shared by all joins.
#[derive(Debug)]
pub(crate) struct JoinState {
    parent: u32,
    started: bool,
    remaining: usize,
}

impl JoinState {
    pub(crate) const fn new() -> Self {
        JoinState {
            parent: NONE,
            started: false,
            remaining: 0,
        }
    }

    /// Poll the children that need it; true once all `len` are done.
    ///
    /// `poll_child(slot, parent, cx)` polls child `slot`.
    fn drive(
        &mut self,
        len: usize,
        cx: &mut Context<'_>,
        mut poll_child: impl FnMut(usize, u32, &mut Context<'_>) -> Progress,
    ) -> bool {
        if !self.started {
            self.started = true;
            self.parent = with_ctx(|run| run.current_node()).unwrap_or(NONE);
            self.remaining = len;
            for slot in 0..len {
                if poll_child(slot, self.parent, cx) == Progress::Finished {
                    self.remaining -= 1;
                }
            }
        } else if self.parent == NONE {
            // Outside a run nothing says which child was woken: poll all unfinished ones.
            for slot in 0..len {
                if poll_child(slot, NONE, cx) == Progress::Finished {
                    self.remaining -= 1;
                }
            }
        } else {
            let parent = self.parent;
            while let Some(Some((_, slot))) = with_ctx(|run| run.nodes.pop_ready(parent)) {
                if poll_child(slot as usize, parent, cx) == Progress::Finished {
                    self.remaining -= 1;
                }
            }
        }
        self.remaining == 0
    }
}

impl Drop for JoinState {
    fn drop(&mut self) {
        if self.started && self.remaining > 0 && self.parent != NONE {
            // Dropped unfinished inside a run: forget which children were woken.
            let parent = self.parent;
            with_ctx(|run| run.nodes.clear_ready(parent));
        }
    }
}

/// The future of an awaited `Vec` (and of maps): all children run in the same rounds.
#[must_use = "futures do nothing unless polled"]
pub struct JoinAll<F: Future> {
    state: JoinState,
    children: Pin<Box<[Child<F>]>>,
}

impl<F: Future> JoinAll<F> {
    pub(crate) fn new(futures: impl IntoIterator<Item = F>) -> Self {
        let children: Box<[Child<F>]> = futures.into_iter().map(Child::new).collect();
        JoinAll {
            state: JoinState::new(),
            children: Box::into_pin(children),
        }
    }

    /// Poll until every child is done; then yield the outputs in order.
    pub(crate) fn poll_outputs(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<impl Iterator<Item = F::Output> + '_> {
        let len = self.children.len();
        let children = &mut self.children;
        let done = self.state.drive(len, cx, |slot, parent, cx| {
            // SAFETY: elements of a pinned slice are pinned; none is moved.
            let child = unsafe { children.as_mut().map_unchecked_mut(|c| &mut c[slot]) };
            child.poll(parent, slot, cx)
        });
        if !done {
            return Poll::Pending;
        }
        let children = &mut self.children;
        Poll::Ready((0..len).map(move |slot| {
            // SAFETY: as above.
            unsafe { children.as_mut().map_unchecked_mut(|c| &mut c[slot]) }.take()
        }))
    }
}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.poll_outputs(cx).map(Iterator::collect)
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

/// The future of an awaited array.
#[must_use = "futures do nothing unless polled"]
pub struct JoinArray<F: Future, const N: usize> {
    state: JoinState,
    children: [Child<F>; N],
}

impl<F: Future, const N: usize> JoinArray<F, N> {
    pub(crate) fn new(futures: [F; N]) -> Self {
        JoinArray {
            state: JoinState::new(),
            children: futures.map(Child::new),
        }
    }
}

impl<F: Future, const N: usize> Future for JoinArray<F, N> {
    type Output = [F::Output; N];
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `children` is pinned structurally and never moved; `state` is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        let children = &mut this.children;
        let done = this.state.drive(N, cx, |slot, parent, cx| {
            // SAFETY: as above.
            unsafe { Pin::new_unchecked(&mut children[slot]) }.poll(parent, slot, cx)
        });
        if !done {
            return Poll::Pending;
        }
        Poll::Ready(std::array::from_fn(|slot| {
            // SAFETY: as above.
            unsafe { Pin::new_unchecked(&mut children[slot]) }.take()
        }))
    }
}

impl<F: Future, const N: usize> fmt::Debug for JoinArray<F, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinArray")
            .field("len", &N)
            .field("state", &self.state)
            .finish()
    }
}

macro_rules! tuple_join {
    ($(#[$doc:meta])* $Join:ident, $len:literal; $($F:ident $idx:tt),+) => {
        $(#[$doc])*
        #[must_use = "futures do nothing unless polled"]
        pub struct $Join<$($F: Future),+> {
            state: JoinState,
            children: ($(Child<$F>,)+),
        }

        impl<$($F: Future),+> $Join<$($F),+> {
            pub(crate) fn new(futures: ($($F,)+)) -> Self {
                $Join { state: JoinState::new(), children: ($(Child::new(futures.$idx),)+) }
            }
        }

        impl<$($F: Future),+> Future for $Join<$($F),+> {
            type Output = ($($F::Output,)+);
            fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
                // SAFETY: `children` is pinned structurally and never moved.
                let this = unsafe { self.get_unchecked_mut() };
                let children = &mut this.children;
                let done = this.state.drive($len, cx, |slot, parent, cx| match slot {
                    // SAFETY: as above.
                    $($idx => unsafe { Pin::new_unchecked(&mut children.$idx) }.poll(parent, slot, cx),)+
                    _ => unreachable!("tuple join slot out of range"),
                });
                if !done {
                    return Poll::Pending;
                }
                // SAFETY: as above.
                Poll::Ready(($(unsafe { Pin::new_unchecked(&mut children.$idx) }.take(),)+))
            }
        }

        impl<$($F: Future),+> fmt::Debug for $Join<$($F),+> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($Join)).field("state", &self.state).finish()
            }
        }
    };
}

tuple_join!(/// The future of an awaited 1-tuple.
    Join1, 1; A 0);
tuple_join!(/// The future of an awaited 2-tuple.
    Join2, 2; A 0, B 1);
tuple_join!(/// The future of an awaited 3-tuple.
    Join3, 3; A 0, B 1, C 2);
tuple_join!(/// The future of an awaited 4-tuple.
    Join4, 4; A 0, B 1, C 2, D 3);
tuple_join!(/// The future of an awaited 5-tuple.
    Join5, 5; A 0, B 1, C 2, D 3, E 4);
tuple_join!(/// The future of an awaited 6-tuple.
    Join6, 6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_join!(/// The future of an awaited 7-tuple.
    Join7, 7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_join!(/// The future of an awaited 8-tuple.
    Join8, 8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_join!(/// The future of an awaited 9-tuple.
    Join9, 9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_join!(/// The future of an awaited 10-tuple.
    Join10, 10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_join!(/// The future of an awaited 11-tuple.
    Join11, 11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_join!(/// The future of an awaited 12-tuple.
    Join12, 12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
