//! Blocking a thread on a run ([`Runtime::run`](crate::Runtime::run),
//! [`RunFuture::wait`](crate::RunFuture::wait)): the checks that come first, and the executor.
//!
//! Two kinds of thread must not block on a run. A thread polling a task of another run would
//! deadlock on itself ([`Error::NestedRun`]). A thread that drives an async executor would
//! hang: the run's sources may need that very thread to make progress (a tokio socket or timer
//! on a current-thread runtime is driven only by the thread inside `block_on`), so the run
//! would wait forever and say nothing ([`Error::BlockingInAsync`]). Both are refused before
//! anything blocks.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;

use crate::context;
use crate::error::Error;

/// Refuse to block this thread on a run when that could not end: `call` names the blocking
/// call made, for the error.
pub(crate) fn check(call: &'static str) -> Result<(), Error> {
    if let Some(task) = context::current_task() {
        return Err(Error::NestedRun { task, call });
    }
    if let Some(executor) = driven_executor() {
        return Err(Error::BlockingInAsync { call, executor });
    }
    Ok(())
}

/// The async executor this thread is driving, if any.
fn driven_executor() -> Option<&'static str> {
    #[cfg(feature = "tokio")]
    if tokio_probe::drives_tokio() {
        return Some("a tokio runtime");
    }
    // `futures`' executors (`block_on`, `LocalPool`, `ThreadPool`) mark the threads they run
    // on; asking to enter tells whether one does (the guard unmarks it again at once).
    if futures::executor::enter().is_err() {
        return Some("a `futures` executor");
    }
    None
}

#[cfg(feature = "tokio")]
mod tokio_probe {
    use std::task::{Context, Poll, Waker};

    use tokio::task::coop;

    /// More operations than tokio's budget for one poll of a task (128 in tokio 1.x).
    const BUDGET_PROBE: usize = 256;

    /// Whether this thread is driving a tokio runtime: polling one of its async tasks or the
    /// future of its `block_on`.
    ///
    /// tokio itself refuses to block there ("Cannot start a runtime from within a runtime"),
    /// but says so only by panicking. What it does say without panicking is the cooperative
    /// budget: every poll of an async task (and of `block_on`'s future) runs with a budget of
    /// operations, while code that may block (the blocking pool of `spawn_blocking`, a plain
    /// thread that entered the runtime's context with `Handle::enter`) runs unconstrained.
    /// So spend operations until the budget runs out (it is a task) or the probe ends (it is
    /// not), then put the budget back as it was. Inside `coop::unconstrained` a task looks
    /// like blocking code: a run blocked there is not refused (and may hang, as before).
    pub(super) fn drives_tokio() -> bool {
        if tokio::runtime::Handle::try_current().is_err() {
            return false;
        }
        if !coop::has_budget_remaining() {
            return true; // only a budget can run out
        }
        let mut cx = Context::from_waker(Waker::noop());
        // Dropped without `made_progress`, it restores the budget it found.
        let Poll::Ready(restore) = coop::poll_proceed(&mut cx) else {
            return true;
        };
        let mut constrained = false;
        for _ in 0..BUDGET_PROBE {
            if !coop::has_budget_remaining() {
                constrained = true;
                break;
            }
            if let Poll::Ready(spent) = coop::poll_proceed(&mut cx) {
                spent.made_progress();
            }
        }
        drop(restore);
        constrained
    }
}

/// Run `future` to completion on this thread, parking it while the future waits.
///
/// Not `futures::executor::block_on`, which marks the thread as inside an executor: a task
/// that blocked on another run (`block_on(rt.run_async(..))` in a helper) then panicked with
/// `futures`' `EnterError` before the run could say [`Error::NestedRun`], and the run ended
/// as a panic. Nor a crate for these few lines of `std`.
pub(crate) fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let waker = THREAD_WAKER.with(Waker::clone);
    let mut cx = Context::from_waker(&waker);
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        // A wake before this park makes it return at once; a spurious return polls again.
        std::thread::park();
    }
}

/// Wakes a thread parked in [`block_on`].
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

thread_local! {
    /// This thread's waker, made once per thread rather than once per run.
    static THREAD_WAKER: Waker = Waker::from(Arc::new(Unpark(std::thread::current())));
}
