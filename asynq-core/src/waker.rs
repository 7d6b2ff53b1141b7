//! Wakers for futures that are not asynq's own: a run's wakers, and foreign wakers a run keeps.
//!
//! asynq code needs no wakers: a run wakes its own futures through nodes (see
//! [`nodes`](crate::nodes)). Ordinary async code inside a run (an [`any`](crate::any) root,
//! a GraphQL executor, `join_all`, `FuturesUnordered`, `select`) does: its combinators poll a
//! child only after the child's waker was called, and futures that wait on the outside world
//! (a timer, a channel) wake whoever polled them. Two kinds of wakers connect the two worlds:
//!
//! - **The run's waker.** The scheduler polls every root with a waker of its own
//!   ([`inline`]). It carries nothing: a clone of it (made while the run polls, by a foreign
//!   future that keeps it for later) becomes a [`Remote`] waker for the node being polled at
//!   that moment, which is where the foreign future sits. Waking a remote waker, from any
//!   thread and at any time, records the node in the run's [`RunLink`] and wakes the executor
//!   driving the run; the run wakes the node at its next poll. Waking the run's waker
//!   directly during a poll wakes the current node at once.
//! - **Foreign wakers.** An asynq future polled by a foreign combinator sees that
//!   combinator's waker, not the run's. When it has to wait (a fetch request, a join, a
//!   memoized call, a boxed task), it attaches a clone of that waker to the node it waits in
//!   ([`Nodes::attach`](crate::nodes::Nodes::attach)); when the node is woken, the waker is
//!   woken too, so the combinator polls it again.
//!
//! asynq code polled by asynq code sees the run's waker and attaches nothing: the check is one
//! comparison of the waker's vtable.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{RawWaker, RawWakerVTable, Wake, Waker};

use crate::context::{RunLink, RunState, with_ctx};
use crate::nodes::Waiter;

/// The vtable of the run's waker; its address tells the run's waker from others.
static INLINE: RawWakerVTable =
    RawWakerVTable::new(clone_inline, wake_inline, wake_inline, drop_inline);

/// The waker the scheduler polls its roots with.
pub(crate) fn inline() -> Waker {
    // SAFETY: the vtable's functions ignore the data pointer (null), and each upholds the
    // `RawWaker` contract: `clone` returns a valid waker, the others do nothing unsafe.
    unsafe { Waker::from_raw(RawWaker::new(std::ptr::null(), &INLINE)) }
}

/// Whether `waker` is the run's own (asynq code polled by asynq code).
#[inline]
pub(crate) fn is_inline(waker: &Waker) -> bool {
    std::ptr::eq(waker.vtable(), &INLINE)
}

/// The future being polled waits in `node`: under a foreign combinator, attach the
/// combinator's `waker` to the node, to be woken with it (nothing to do for the run's own).
#[inline]
pub(crate) fn attach(run: &mut RunState, node: u32, waker: &Waker) {
    if !is_inline(waker) {
        run.nodes.attach(node, waker);
    }
}

/// [`attach`] for the future being polled, in the node it is polled in (made now if needed):
/// nothing to do, nor any node to make, for the run's own waker.
#[inline(always)]
pub(crate) fn attach_current(run: &mut RunState, waker: &Waker) {
    if !is_inline(waker) {
        attach_current_foreign(run, waker);
    }
}

#[inline(never)]
fn attach_current_foreign(run: &mut RunState, waker: &Waker) {
    let node = run.current_node();
    run.nodes.attach(node, waker);
}

fn clone_inline(_: *const ()) -> RawWaker {
    let waker = with_ctx(|run| {
        let waiter = run.current_waiter();
        Waker::from(Arc::new(Remote::new(Arc::clone(&run.link), waiter)))
    })
    // Cloned outside any run (never by a run's own polls): a waker that wakes nothing.
    .unwrap_or_else(|| Waker::noop().clone());
    let waker = std::mem::ManuallyDrop::new(waker);
    RawWaker::new(waker.data(), waker.vtable())
}

fn wake_inline(_: *const ()) {
    with_ctx(|run| {
        let waiter = run.current_waiter();
        run.nodes.wake_outside(waiter);
    });
}

fn drop_inline(_: *const ()) {}

/// A clone of the run's waker: wakes one node of the run, from anywhere.
pub(crate) struct Remote {
    link: Arc<RunLink>,
    waiter: Waiter,
}

impl Remote {
    fn new(link: Arc<RunLink>, waiter: Waiter) -> Self {
        link.remote_wakers.fetch_add(1, Ordering::Relaxed);
        Remote { link, waiter }
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.link.remote_wakers.fetch_sub(1, Ordering::Release);
    }
}

impl Wake for Remote {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.link.woken(self.waiter);
    }
}
