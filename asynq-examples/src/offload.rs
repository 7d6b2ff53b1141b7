//! Run a blocking store call off the run's thread, as a future.
//!
//! The SQLite and memcached clients here block. Called inside `fetch`, they would block the
//! run's executor: calls to different sources of one round would follow one another, and an
//! async executor's thread would stall. [`offload`] moves the call to another thread and
//! returns a future that completes when it is done, so every call of a round is in flight
//! at once and `fetch` stays an honest future.
//!
//! Inside a tokio runtime (the `server` program) the call goes to tokio's blocking pool,
//! whose threads are reused from call to call. Elsewhere (`Runtime::run`, any other
//! executor) it gets a new thread, which costs some tens of microseconds, little against a
//! round trip.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};

/// What the thread and the future share.
enum State<T> {
    Running(Option<Waker>),
    Done(std::thread::Result<T>),
    Taken,
}

/// The result of [`offload`]: a future of the call's result. A panic of the call is resumed
/// where the future is polled.
#[must_use = "futures do nothing unless awaited"]
pub(crate) struct Offload<T> {
    state: Arc<Mutex<State<T>>>,
}

/// Run `work` on tokio's blocking pool when called inside a tokio runtime, else on a new
/// thread (on this one when no thread can be started).
pub(crate) fn offload<T, F>(work: F) -> Offload<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let state = Arc::new(Mutex::new(State::Running(None)));
    let job = Job {
        state: Arc::clone(&state),
        work: Some(work),
    };
    // A pool that refuses the job (its runtime shutting down) or a thread that cannot be
    // started drops it unrun: `Job`'s drop then runs it here, so the future always completes.
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        drop(runtime.spawn_blocking(move || job.run()));
    } else {
        let thread = std::thread::Builder::new().name("asynq-fetch".into());
        drop(thread.spawn(move || job.run()));
    }
    Offload { state }
}

/// The call handed to another thread, and where its result goes.
struct Job<T, F: FnOnce() -> T> {
    state: Arc<Mutex<State<T>>>,
    /// Taken when the call runs.
    work: Option<F>,
}

impl<T, F: FnOnce() -> T> Job<T, F> {
    fn run(mut self) {
        self.finish();
    }

    /// Make the call (unless made already) and hand its result to the future.
    fn finish(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        let result = std::panic::catch_unwind(AssertUnwindSafe(work));
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let State::Running(Some(waker)) = std::mem::replace(&mut *state, State::Done(result)) {
            waker.wake();
        }
    }
}

impl<T, F: FnOnce() -> T> Drop for Job<T, F> {
    fn drop(&mut self) {
        self.finish(); // does nothing once the call has been made
    }
}

impl<T> Future for Offload<T> {
    type Output = T;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        match std::mem::replace(&mut *state, State::Taken) {
            State::Done(Ok(value)) => Poll::Ready(value),
            State::Done(Err(panic)) => {
                drop(state);
                std::panic::resume_unwind(panic)
            }
            State::Running(_) => {
                *state = State::Running(Some(cx.waker().clone()));
                Poll::Pending
            }
            State::Taken => panic!("an offloaded call polled after it completed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake};
    use std::thread::Thread;

    use super::offload;

    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }

    fn block_on<F: std::future::Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        let waker = Arc::new(Unpark(std::thread::current())).into();
        let mut cx = Context::from_waker(&waker);
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut cx) {
                return value;
            }
            std::thread::park();
        }
    }

    #[test]
    fn answers_and_panics_come_back() {
        assert_eq!(block_on(offload(|| 6 * 7)), 42);
        let panicked = std::panic::catch_unwind(|| block_on(offload(|| panic!("boom"))));
        assert!(panicked.is_err());
    }

    #[test]
    fn calls_run_at_the_same_time() {
        use std::sync::mpsc::channel;
        use std::time::Duration;
        // Each call waits for the other's message: both finish only if they overlap.
        let (to_a, a_inbox) = channel();
        let (to_b, b_inbox) = channel();
        let a = offload(move || {
            to_b.send(()).unwrap();
            a_inbox.recv_timeout(Duration::from_secs(10)).is_ok()
        });
        let b = offload(move || {
            to_a.send(()).unwrap();
            b_inbox.recv_timeout(Duration::from_secs(10)).is_ok()
        });
        assert!(block_on(a) && block_on(b));
    }

    #[test]
    fn a_call_refused_by_a_shut_down_runtime_still_completes() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime");
        let handle = runtime.handle().clone();
        runtime.shutdown_background();
        let _inside = handle.enter();
        // The pool drops the job unrun; the job's drop then makes the call on this thread,
        // before `offload` returns: the future is ready at its first poll.
        let here = std::thread::current().id();
        let mut call = std::pin::pin!(offload(move || std::thread::current().id() == here));
        let mut cx = Context::from_waker(std::task::Waker::noop());
        assert_eq!(call.as_mut().poll(&mut cx), Poll::Ready(true));
    }

    #[test]
    fn inside_tokio_calls_run_on_its_blocking_pool() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .thread_name("tokio-pool")
            .build()
            .expect("a tokio runtime");
        let name = runtime
            .block_on(async { offload(|| std::thread::current().name().map(str::to_owned)).await });
        // The runtime names its blocking threads `tokio-pool`; ours are `asynq-fetch`.
        assert_eq!(name.as_deref(), Some("tokio-pool"));
        assert_eq!(
            block_on(offload(|| std::thread::current().name().map(str::to_owned))).as_deref(),
            Some("asynq-fetch")
        );
    }
}
