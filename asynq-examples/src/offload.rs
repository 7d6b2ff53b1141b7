//! Run a blocking store call on a thread of its own, as a future.
//!
//! The SQLite and memcached clients here block. Called inside `fetch`, they would block the
//! run's executor: calls to different sources of one round would follow one another, and an
//! async executor's thread would stall. [`offload`] moves the call to a new thread and
//! returns a future that completes when it is done, so every call of a round is in flight
//! at once and `fetch` stays an honest future. A thread per call costs some tens of
//! microseconds, little against a round trip.

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

/// Run `work` on a new thread (on this one when no thread can be started).
pub(crate) fn offload<T, F>(work: F) -> Offload<T>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    let state = Arc::new(Mutex::new(State::Running(None)));
    let job = Arc::new(Mutex::new(Some(work)));
    let spawned = {
        let (state, job) = (Arc::clone(&state), Arc::clone(&job));
        std::thread::Builder::new()
            .name("asynq-fetch".into())
            .spawn(move || complete(&state, &job))
    };
    if spawned.is_err() {
        complete(&state, &job);
    }
    Offload { state }
}

/// Do the job (unless done already) and hand its result to the future.
fn complete<T, F: FnOnce() -> T>(state: &Mutex<State<T>>, job: &Mutex<Option<F>>) {
    let Some(work) = job.lock().unwrap_or_else(|e| e.into_inner()).take() else {
        return;
    };
    let result = std::panic::catch_unwind(AssertUnwindSafe(work));
    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
    if let State::Running(Some(waker)) = std::mem::replace(&mut *state, State::Done(result)) {
        waker.wake();
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
}
