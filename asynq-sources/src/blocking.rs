//! Running a blocking driver's call off the run's thread, as a future.
//!
//! SQLite's driver blocks. Called inside `fetch`, it would block the executor polling the
//! run: the calls of one round to different sources would follow one another, and an async
//! server's worker would stall. [`offload`] runs the call on tokio's blocking pool when there
//! is a tokio runtime (its threads are reused), and on a thread of its own otherwise (some
//! tens of microseconds, little next to a query).

use std::panic::AssertUnwindSafe;

use futures::channel::oneshot;

/// Why an offloaded call gave no result.
#[derive(Debug)]
pub(crate) enum Offloaded {
    /// The call panicked, with this message.
    Panicked(String),
    /// No thread could run it (the runtime is shutting down, or threads ran out).
    NotRun(String),
}

impl std::fmt::Display for Offloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Offloaded::Panicked(message) => write!(f, "the query panicked: {message}"),
            Offloaded::NotRun(why) => write!(f, "no thread could run the query: {why}"),
        }
    }
}

impl std::error::Error for Offloaded {}

/// Run `work` on another thread; its result, or why there is none.
pub(crate) async fn offload<T, F>(work: F) -> Result<T, Offloaded>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    if let Ok(runtime) = tokio::runtime::Handle::try_current() {
        return runtime.spawn_blocking(work).await.map_err(|e| {
            if e.is_panic() {
                Offloaded::Panicked(panic_message(&*e.into_panic()))
            } else {
                Offloaded::NotRun("the tokio runtime is shutting down".into())
            }
        });
    }
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name("asynq-sources".into())
        .spawn(move || {
            let result = std::panic::catch_unwind(AssertUnwindSafe(work));
            // The receiver is gone when the fetch was dropped (a timeout): nothing to tell.
            let _ = tx.send(result.map_err(|p| Offloaded::Panicked(panic_message(&*p))));
        })
        .map_err(|e| Offloaded::NotRun(e.to_string()))?;
    rx.await.unwrap_or_else(|_| {
        Err(Offloaded::NotRun(
            "the thread ended without a result".into(),
        ))
    })
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_and_panics_come_back() {
        assert_eq!(futures::executor::block_on(offload(|| 7)).unwrap(), 7);
        let err = futures::executor::block_on(offload(|| -> u8 { panic!("boom") })).unwrap_err();
        assert_eq!(err.to_string(), "the query panicked: boom");
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert_eq!(rt.block_on(offload(|| 8)).unwrap(), 8);
    }
}
