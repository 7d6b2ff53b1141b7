//! The tokio runtime that the async drivers' queries run on, whatever executor polls the run.
//!
//! tokio-postgres and mysql_async do their I/O on tokio: their connections are registered with
//! the reactor of the runtime they were opened in, and opening one outside a runtime panics.
//! An asynq run, though, may be polled by anything: `Runtime::run` blocks the calling thread
//! on a plain executor. So a `Db` keeps a handle to the runtime its pool lives in, and each
//! call of a source is spawned there and awaited through its `JoinHandle`, which any executor
//! can poll. A call dropped before it finishes (a fetch timeout, a cancelled run) aborts its
//! task.
//!
//! A `Db` opened outside any runtime (`connect_blocking`) owns a small runtime of its own,
//! shut down in the background when the last handle to the `Db` goes.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::runtime::{Handle, Runtime};
use tokio::task::{JoinError, JoinHandle};

#[cfg(any(feature = "postgres", feature = "mysql"))]
use crate::error::{ErrorKind, SqlError};
#[cfg(any(feature = "postgres", feature = "mysql"))]
use crate::shared::Shared;

/// Worker threads of a runtime a `Db` owns: the queries' I/O needs little.
const OWN_WORKERS: usize = 2;

/// Where a `Db`'s queries run.
pub(crate) struct Runner {
    handle: Handle,
    /// The runtime, when the `Db` owns it.
    owned: Option<Runtime>,
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("flavor", &self.handle.runtime_flavor())
            .field("owned", &self.owned.is_some())
            .finish()
    }
}

impl Runner {
    /// The runtime of the calling thread, if it is inside one.
    pub(crate) fn current() -> Option<Runner> {
        Handle::try_current().ok().map(Runner::on)
    }

    /// The runtime behind `handle`.
    pub(crate) fn on(handle: Handle) -> Runner {
        Runner {
            handle,
            owned: None,
        }
    }

    /// A new runtime of its own, with a few worker threads.
    pub(crate) fn own() -> std::io::Result<Runner> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(OWN_WORKERS)
            .thread_name("asynq-sources-io")
            .enable_all()
            .build()?;
        Ok(Runner {
            handle: runtime.handle().clone(),
            owned: Some(runtime),
        })
    }

    /// Run `future` to its end on the runtime, from a thread outside any runtime (it blocks).
    #[cfg_attr(
        not(any(feature = "postgres", feature = "mysql")),
        allow(dead_code, reason = "only the SQL backends block on it")
    )]
    pub(crate) fn block_on<F: Future>(&self, future: F) -> F::Output {
        self.handle.block_on(future)
    }

    /// Run `future` on the runtime; its output, or why there is none (it panicked, or the
    /// runtime shut down).
    pub(crate) fn run<F>(&self, future: F) -> Spawned<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        Spawned(self.handle.spawn(future))
    }

    /// Make the runtime the current one until the guard is dropped (for constructors that
    /// spawn onto the current runtime).
    #[cfg(feature = "redis")]
    pub(crate) fn enter(&self) -> tokio::runtime::EnterGuard<'_> {
        self.handle.enter()
    }

    /// Run `future` on the runtime in the background, detached: nobody waits for it.
    #[cfg(any(feature = "memcached", feature = "redis"))]
    pub(crate) fn detach<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        drop(self.handle.spawn(future));
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        // Dropping a runtime waits for its blocking threads, which panics inside another
        // runtime (a `Db` dropped in an async server): shut it down without waiting.
        if let Some(runtime) = self.owned.take() {
            runtime.shutdown_background();
        }
    }
}

/// A task on a `Db`'s runtime: its output when awaited, aborted when dropped first.
pub(crate) struct Spawned<T>(JoinHandle<T>);

impl<T> Future for Spawned<T> {
    type Output = Result<T, JoinError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.0).poll(cx)
    }
}

impl<T> Drop for Spawned<T> {
    fn drop(&mut self) {
        self.0.abort(); // no effect once the task has finished
    }
}

/// Why a spawned task gave no output, for an error's detail.
#[cfg(any(feature = "postgres", feature = "mysql"))]
fn join_error_text(e: &JoinError) -> &'static str {
    if e.is_panic() {
        "the query's task panicked"
    } else {
        "the database's tokio runtime shut down before the query finished"
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// What the `Db` of an async backend holds: its pool, the runtime its queries run on, and its
/// counters and settings.
#[derive(Debug)]
pub(crate) struct AsyncDb<P> {
    pub(crate) pool: P,
    pub(crate) runner: Runner,
    pub(crate) shared: Shared,
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
impl<P> AsyncDb<P> {
    /// A pool opened by `open` inside the calling tokio runtime; `db` names the database in
    /// errors (`postgres`, `mysql`).
    pub(crate) async fn connect(
        db: &'static str,
        open: impl Future<Output = Result<P, SqlError>>,
        shared: Shared,
    ) -> Result<Self, SqlError> {
        let runner = Runner::current().ok_or_else(|| {
            db_error(db, ErrorKind::Config).with_detail(
                "Db::connect needs a tokio runtime: call it inside one, or use connect_blocking",
            )
        })?;
        Ok(AsyncDb {
            pool: open.await?,
            runner,
            shared,
        })
    }

    /// A pool opened by `open` on a runtime of its own, from outside any runtime.
    pub(crate) fn connect_blocking<F: Future<Output = Result<P, SqlError>>>(
        db: &'static str,
        open: impl FnOnce() -> F,
        shared: Shared,
    ) -> Result<Self, SqlError> {
        if Runner::current().is_some() {
            return Err(db_error(db, ErrorKind::Config).with_detail(
                "Db::connect_blocking was called inside a tokio runtime: use Db::connect there",
            ));
        }
        let runner = Runner::own().map_err(|e| db_error(db, ErrorKind::Runtime).with_cause(e))?;
        let pool = runner.block_on(open())?;
        Ok(AsyncDb {
            pool,
            runner,
            shared,
        })
    }

    /// A pool of the program's own, its queries run on the calling tokio runtime.
    pub(crate) fn from_pool(db: &'static str, pool: P, shared: Shared) -> Result<Self, SqlError> {
        let runner = Runner::current().ok_or_else(|| {
            db_error(db, ErrorKind::Config).with_detail(
                "Db::from_pool needs a tokio runtime: call it inside one, or use from_pool_on",
            )
        })?;
        Ok(AsyncDb {
            pool,
            runner,
            shared,
        })
    }

    /// A pool of the program's own, its queries run on the runtime of `handle`.
    pub(crate) fn from_pool_on(pool: P, handle: Handle, shared: Shared) -> Self {
        AsyncDb {
            pool,
            runner: Runner::on(handle),
            shared,
        }
    }

    /// Run `work` on the runtime; its result, or an error made by `error` (with the reason)
    /// when it gave none.
    pub(crate) async fn call<T, F>(
        &self,
        work: F,
        error: impl FnOnce() -> SqlError,
    ) -> Result<T, SqlError>
    where
        F: Future<Output = Result<T, SqlError>> + Send + 'static,
        T: Send + 'static,
    {
        self.runner
            .run(work)
            .await
            .unwrap_or_else(|e| Err(error().with_detail(join_error_text(&e))))
    }
}

#[cfg(any(feature = "postgres", feature = "mysql"))]
/// An error of the database `db` as a whole (connecting, setting it up), not of one source.
pub(crate) fn db_error(db: &'static str, kind: ErrorKind) -> SqlError {
    SqlError::new(kind, db, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_runtime_of_its_own_serves_a_plain_executor() {
        assert!(Runner::current().is_none());
        let runner = Runner::own().unwrap();
        let out = futures::executor::block_on(runner.run(async { 6 * 7 })).unwrap();
        assert_eq!(out, 42);
        assert_eq!(runner.block_on(async { 1 }), 1);
        // Dropped inside another runtime: no panic.
        let outer = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        outer.block_on(async move { drop(runner) });
    }

    #[test]
    fn a_dropped_call_aborts_its_task() {
        let runner = Runner::own().unwrap();
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let call = runner.run(async move {
            let _tx = tx; // dropped when the task ends or is aborted
            std::future::pending::<()>().await
        });
        drop(call);
        let waited = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(waited, Err(std::sync::mpsc::RecvTimeoutError::Disconnected));
    }
}
