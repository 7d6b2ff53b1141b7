//! Joins: the futures of awaited collections, re-polling only the children that were woken.
//!
//! A join polled inside a run gives each unfinished child a node of the run (see
//! [`nodes`](crate::nodes)) and, after the first pass, polls only the children its node's
//! ready list names. Outside a run (a yieldable polled by hand) it falls back to polling every
//! unfinished child, as `futures::future::join_all` does.
//!
//! - [`JoinAll`] (`all.rs`): a `Vec` (and maps, and arrays), its children kept in place.
//! - The tuple joins (`tuple.rs`), one pinned field per child.
//! - `collections.rs`: what each collection yields when awaited ([`Yieldable`](crate::Yieldable)).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::with_ctx;
use crate::nodes::{LAZY, NONE};

mod all;
mod collections;
mod tuple;

pub use all::{JoinAll, JoinArray};
pub use collections::{JoinMap, OptionFuture};
pub use tuple::{
    Join1, Join2, Join3, Join4, Join5, Join6, Join7, Join8, Join9, Join10, Join11, Join12,
};

/// What polling a child did.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Progress {
    Pending,
    /// Finished during this poll.
    Finished,
    /// Finished earlier; not polled.
    WasDone,
}

pin_project_lite::pin_project! {
    /// A child future of a join and, once done, its output.
    #[project = MaybeDoneProj]
    #[project_replace = MaybeDoneReplace]
    enum MaybeDone<F: Future> {
        Running { #[pin] future: F },
        Done { output: F::Output },
        Taken,
    }
}

pin_project_lite::pin_project! {
    /// One child of a join with the run node it waits in.
    struct Child<F: Future> {
        #[pin]
        future: MaybeDone<F>,
        node: u32,
    }

    impl<F: Future> PinnedDrop for Child<F> {
        fn drop(this: Pin<&mut Self>) {
            let node = *this.project().node;
            if node != NONE {
                free_node(node);
            }
        }
    }
}

impl<F: Future> Child<F> {
    fn new(future: F) -> Self {
        Child {
            future: MaybeDone::Running { future },
            node: NONE,
        }
    }

    /// Poll the child as `slot` of a join polled in node `parent`.
    fn poll(self: Pin<&mut Self>, parent: u32, slot: usize, cx: &mut Context<'_>) -> Progress {
        let mut this = self.project();
        let MaybeDoneProj::Running { future } = this.future.as_mut().project() else {
            return Progress::WasDone;
        };
        match poll_in_node(future, this.node, parent, slot, cx) {
            Poll::Ready(output) => {
                this.future.set(MaybeDone::Done { output });
                Progress::Finished
            }
            Poll::Pending => Progress::Pending,
        }
    }

    /// The child's output; the child must be done.
    fn take(self: Pin<&mut Self>) -> F::Output {
        match self.project().future.project_replace(MaybeDone::Taken) {
            MaybeDoneReplace::Done { output } => output,
            _ => panic!("a join's child output taken before it finished or twice"),
        }
    }
}

/// Poll `future`, child `slot` of a join polled in node `parent`, inside the child's node
/// `*node` ([`NONE`] until something inside needs one; freed again once the child is done).
#[inline]
fn poll_in_node<F: Future>(
    future: Pin<&mut F>,
    node: &mut u32,
    parent: u32,
    slot: usize,
    cx: &mut Context<'_>,
) -> Poll<F::Output> {
    let entered = parent != NONE && enter_child(*node, parent, slot);
    let poll = future.poll(cx);
    if entered {
        *node = exit_child(parent, poll.is_ready());
    }
    poll
}

// The run's bookkeeping of joins is not generic, so that it is compiled once, in this crate,
// rather than for every child type (and every join closure) of the crates that await joins:
// closures inherit their function's type parameters (see `TaskFuture::poll`).

/// Make child `slot`'s node current, or a lazy one when it has none (`own` is [`NONE`]);
/// false outside a run.
#[inline]
fn enter_child(own: u32, parent: u32, slot: usize) -> bool {
    with_ctx(|run| {
        if own == NONE {
            // No node until something inside asks for one (a wait, a nested join).
            run.lazy = (parent, slot as u32);
            run.current = LAZY;
        } else {
            run.current = own;
        }
    })
    .is_some()
}

/// Make `parent` current again after a poll of one of its children (`done`: the child
/// finished); returns the child's node from now on.
#[inline]
fn exit_child(parent: u32, done: bool) -> u32 {
    with_ctx(|run| {
        let after = match run.current {
            // Finished without ever needing a node.
            LAZY if done => NONE,
            // Waits on something that took no node (a foreign future): give it one
            // anyway, so that a stall's last pass polls it again to say who waits.
            LAZY => node_for_foreign_wait(run),
            node => node,
        };
        run.current = parent;
        if done && after != NONE {
            run.nodes.free(after);
            return NONE;
        }
        after
    })
    .unwrap_or(NONE)
}

/// A node for a child that waits without one (see [`exit_child`]); out of line, so that the
/// common paths of `exit_child` stay small enough to inline.
#[cold]
#[inline(never)]
fn node_for_foreign_wait(run: &mut crate::context::RunState) -> u32 {
    run.current_node()
}

/// Free a node of the run.
#[inline]
fn free_node(node: u32) {
    with_ctx(|run| run.nodes.free(node));
}

/// The scheduling state shared by all joins.
#[derive(Debug)]
struct JoinState {
    parent: u32,
    started: bool,
    remaining: usize,
}

impl JoinState {
    const fn new() -> Self {
        JoinState {
            parent: NONE,
            started: false,
            remaining: 0,
        }
    }

    /// Poll the children that need it; true once all `len` are done.
    ///
    /// `poll_child(slot, parent, cx)` polls child `slot`. Taken as `dyn`, so that the loops
    /// around it are compiled once, here, rather than for every join type of the crates that
    /// await joins; a child's poll costs an indirect call more.
    fn drive(
        &mut self,
        len: usize,
        cx: &mut Context<'_>,
        poll_child: &mut dyn FnMut(usize, u32, &mut Context<'_>) -> Progress,
    ) -> bool {
        if !self.started {
            self.started = true;
            self.parent = current_node();
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
            while let Some(slot) = pop_ready(parent) {
                if poll_child(slot as usize, parent, cx) == Progress::Finished {
                    self.remaining -= 1;
                }
            }
        }
        if self.remaining > 0 && self.parent != NONE && !crate::waker::is_inline(cx.waker()) {
            // Polled by a foreign combinator: it must poll the join again when a child wakes.
            let parent = self.parent;
            attach_foreign(parent, cx.waker());
        }
        self.remaining == 0
    }
}

/// The node of the current poll; [`NONE`] outside a run.
#[inline]
fn current_node() -> u32 {
    with_ctx(|run| run.current_node()).unwrap_or(NONE)
}

/// The slot of the next woken child of `parent`.
#[inline]
fn pop_ready(parent: u32) -> Option<u32> {
    with_ctx(|run| run.nodes.pop_ready(parent))
        .flatten()
        .map(|(_, slot)| slot)
}

/// Wake `waker` (a foreign combinator's) when a child of `parent` wakes.
#[inline]
fn attach_foreign(parent: u32, waker: &std::task::Waker) {
    with_ctx(|run| crate::waker::attach(run, parent, waker));
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
