//! The one error type of asynq.

use std::fmt;
use std::sync::Arc;

mod tree;

pub(crate) use tree::debug_bounded;
use tree::{group, write_tree};

/// An error of a source's own (or an application's, in [`Error::Other`]), shared by every
/// task that waited on the failed keys.
pub type SourceError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a run: which source, which key, which task.
///
/// A fetch request (`S::load(key).await`) resolves to `Result<S::Value, Error>`; the run
/// itself ([`Runtime::run`](crate::Runtime::run)) fails with an `Error` only when it cannot
/// finish at all (a stall, a nested run, a panicking task). The error is cheap to clone: every
/// task that waited on a failed key gets its own copy.
///
/// An asynq function with failures of its own returns an error type of its own that converts
/// from this one, or wraps an occasional failure with [`Error::other`]: see the crate docs,
/// [Errors](crate#errors).
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, DataSource, Error, Runtime};
///
/// struct Nothing;
/// impl DataSource for Nothing {
///     type Key = u32;
///     type Value = u32;
///     type Error = std::io::Error;
///     async fn fetch(&self, _keys: &[u32]) -> Result<Vec<(u32, u32)>, std::io::Error> {
///         Ok(Vec::new()) // answers nothing
///     }
/// }
///
/// #[asynq]
/// fn get(k: u32) -> Result<u32, Error> {
///     Nothing::load(k).await
/// }
///
/// let rt = Runtime::new().with_source(Nothing);
/// let err = rt.run(get(7)).unwrap_err();
/// assert!(matches!(err, Error::MissingKey { .. }));
/// assert!(err.to_string().starts_with("source `Nothing` did not answer key 7 (a source answers every key"));
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub enum Error {
    /// A task loaded from a source type that the runtime has no instance of.
    NoSource {
        /// The Rust type name of the source.
        source_type: &'static str,
    },
    /// The source answered its batch without this key.
    ///
    /// A source answers every key it is asked for; where a row may be absent its `Value` is an
    /// `Option` (answer `None`) or, for a has-many source, a `Vec` (answer an empty one). The
    /// helpers of [`answers`](crate::answers) build such answers from a query's rows.
    MissingKey {
        /// The source's [`name`](crate::DataSource::name).
        source: Arc<str>,
        /// The key, as its `Debug` form.
        key: String,
    },
    /// The source's `fetch` failed for a batch holding this key.
    Source {
        /// The source's [`name`](crate::DataSource::name).
        source: Arc<str>,
        /// The key, as its `Debug` form.
        key: String,
        /// How many keys the failed call held.
        batch: usize,
        /// The source's own error. Its message ends this error's message, and its own
        /// `source()` is this error's `source()`, so that a chain shows each message once.
        error: SourceError,
    },
    /// Nothing was runnable and nothing was being fetched, yet the root task had not finished.
    Stall {
        /// The innermost waiting asynq functions, each as its path from the root and what it
        /// waits on (`page > profile > stuck: waits on ...`). `Display` shows them as a tree.
        waiting: Vec<String>,
    },
    /// A run was started from inside a task of a run in progress on the same thread: it
    /// would wait for the very thread that has to run it.
    NestedRun {
        /// The asynq function that made the call.
        task: &'static str,
        /// The call made: `"Runtime::run"`, `"RunFuture::wait"`, or `"Runtime::run_async"`
        /// (its future polled, by a `block_on` say).
        call: &'static str,
    },
    /// A blocking run (`Runtime::run`, `RunFuture::wait`) was asked for on a thread that is
    /// driving an async executor: the run's sources may need that very thread to make
    /// progress (a tokio socket or timer on a current-thread runtime does), so the run would
    /// hang. Await [`Runtime::run_async`](crate::Runtime::run_async) instead.
    ///
    /// Threads driving tokio are told apart with the `tokio` feature (on by default); the
    /// `futures` crate's executors always.
    BlockingInAsync {
        /// The blocking call made: `"Runtime::run"` or `"RunFuture::wait"`.
        call: &'static str,
        /// The executor the thread is driving: `"a tokio runtime"` or
        /// ``"a `futures` executor"``.
        executor: &'static str,
    },
    /// A fetch request was polled, or the run's cache used, outside any run (by hand, or by a
    /// foreign executor).
    NotInRun {
        /// The source's Rust type name.
        source_type: &'static str,
        /// What was used: `"DataSource::load"` (a fetch request polled), `"cache::prime"`,
        /// `"cache::clear"` or `"cache::clear_source"`.
        call: &'static str,
    },
    /// An application's own failure, made with [`Error::other`]: for an asynq function that
    /// returns `Result<T, asynq_core::Error>` and meets a failure of its own (a value that does
    /// not parse, say). The runtime never makes it. Functions whose callers match on their
    /// failures return an error type of their own instead (see the crate docs,
    /// [Errors](crate#errors)).
    Other {
        /// The application's error, shared (an `Arc`) so that `Error` stays cheap to clone.
        /// Its message is this error's message, and its `source()` this error's `source()`.
        error: SourceError,
    },
    /// An asynq function panicked; the run was dropped, every task and call of it with it.
    TaskPanicked {
        /// The innermost asynq function being polled when the panic started.
        task: &'static str,
        /// The panic's message.
        message: String,
    },
}

/// What a [`Error::MissingKey`] message suggests.
const MISSING_KEY_HINT: &str = "a source answers every key it is asked for: `None` for an \
    absent row with `Value = Option<Row>`, an empty `Vec` for a key without rows; see \
    `asynq_core::answers`";

/// How many waiting tasks a stall message lists before it says "and N more".
const STALL_LIST: usize = 10;

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoSource { source_type } => write!(
                f,
                "no data source of type `{source_type}` is registered with this runtime; \
                 add it with `Runtime::with_source`"
            ),
            Error::MissingKey { source, key } => write!(
                f,
                "source `{source}` did not answer key {key} ({MISSING_KEY_HINT})"
            ),
            Error::Source {
                source,
                key,
                batch,
                error,
            } => {
                let keys = if *batch == 1 { "key" } else { "keys" };
                write!(
                    f,
                    "source `{source}` failed to fetch key {key} (in a call of {batch} {keys}): \
                     {error}"
                )
            }
            Error::Stall { waiting } => {
                let (tasks, waits) = match waiting.len() {
                    1 => ("task", "waits"),
                    _ => ("tasks", "wait"),
                };
                write!(
                    f,
                    "the run stalled: nothing is runnable and nothing is being fetched, \
                     yet {} asynq {tasks} still {waits}:",
                    waiting.len()
                )?;
                let groups = group(waiting);
                write_tree(f, groups.iter().take(STALL_LIST))?;
                if groups.len() > STALL_LIST {
                    let rest: usize = groups[STALL_LIST..].iter().map(|(_, n)| n).sum();
                    write!(f, "\n  ... and {rest} more")?;
                }
                Ok(())
            }
            Error::NestedRun { task, call } => write!(
                f,
                "`{call}` was used inside the asynq function `{task}` while its run is in \
                 progress on this thread; await the task instead"
            ),
            Error::BlockingInAsync { call, executor } => write!(
                f,
                "`{call}` would block a thread that is driving {executor}, and the run's \
                 sources may need this very thread to make progress: the run would hang; \
                 await the run instead (`rt.run_async(task).await`), or block on a thread \
                 that may block (`tokio::task::spawn_blocking`)"
            ),
            Error::NotInRun { source_type, call } if call.starts_with("cache::") => write!(
                f,
                "`{call}` for `{source_type}` was called outside an asynq run; call it inside \
                 an asynq function, or prime a run before it starts with `RunFuture::prime`"
            ),
            Error::NotInRun { source_type, .. } => write!(
                f,
                "a fetch from `{source_type}` was polled outside an asynq run; \
                 run the task with `Runtime::run` or `Runtime::run_async`"
            ),
            Error::Other { error } => fmt::Display::fmt(error, f),
            Error::TaskPanicked { task, message } => {
                write!(f, "the asynq function `{task}` panicked: {message}")
            }
        }
    }
}

impl Error {
    /// An application's own failure as an asynq error, [`Error::Other`] (as
    /// `std::io::Error::other` makes an I/O error): from any error type, a `String` or a
    /// `&str`.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynq_core::{asynq, DataSource, Error, Runtime};
    /// # struct Settings;
    /// # impl DataSource for Settings {
    /// #     type Key = &'static str; type Value = String; type Error = std::convert::Infallible;
    /// #     async fn fetch(&self, k: &[&'static str]) -> Result<Vec<(&'static str, String)>, Self::Error> {
    /// #         Ok(k.iter().map(|&k| (k, "ten".to_owned())).collect())
    /// #     }
    /// # }
    ///
    /// #[asynq]
    /// fn page_size() -> Result<u32, Error> {
    ///     let text = Settings::load("page_size").await?;
    ///     text.parse().map_err(Error::other)
    /// }
    ///
    /// let err = Runtime::new().with_source(Settings).run(page_size()).unwrap_err();
    /// assert!(matches!(err, Error::Other { .. }));
    /// assert_eq!(err.to_string(), "invalid digit found in string");
    /// ```
    pub fn other(error: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Error {
        Error::Other {
            error: Arc::from(error.into()),
        }
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The Display form says everything; Debug adds the variant for `unwrap` users.
        let variant = match self {
            Error::NoSource { .. } => "NoSource",
            Error::MissingKey { .. } => "MissingKey",
            Error::Source { .. } => "Source",
            Error::Stall { .. } => "Stall",
            Error::NestedRun { .. } => "NestedRun",
            Error::BlockingInAsync { .. } => "BlockingInAsync",
            Error::NotInRun { .. } => "NotInRun",
            Error::Other { .. } => "Other",
            Error::TaskPanicked { .. } => "TaskPanicked",
        };
        write!(f, "{variant}({self})")
    }
}

/// Functions (and root tasks) whose error type is `String` can use `?` on asynq errors.
impl From<Error> for String {
    fn from(error: Error) -> String {
        error.to_string()
    }
}

/// Sources and tasks built on `std::io` can use `?` on asynq errors.
impl From<Error> for std::io::Error {
    fn from(error: Error) -> std::io::Error {
        std::io::Error::other(error)
    }
}

/// The source's error is part of [`Error::Source`]'s message, so `source()` goes on below it:
/// it returns the source error's own `source()`, as `std::io::Error` does for the error it
/// wraps. A chain printer (`anyhow`, `eyre`, a loop over `source()`) then shows every message
/// of the chain once. To inspect the source's error itself, match the variant and downcast its
/// `error` field.
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Source { error, .. } | Error::Other { error } => error.source(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
