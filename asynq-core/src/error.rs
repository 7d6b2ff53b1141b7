//! The one error type of asynq.

use std::fmt;
use std::sync::Arc;

/// An error of a source's own, shared by every task that waited on the failed keys.
pub type SourceError = Arc<dyn std::error::Error + Send + Sync + 'static>;

/// What went wrong in a run: which source, which key, which task.
///
/// A fetch request (`S::load(key).await`) resolves to `Result<S::Value, Error>`; the run
/// itself ([`Runtime::run`](crate::Runtime::run)) fails with an `Error` only when it cannot
/// finish at all (a stall, a nested run, a panicking task). The error is cheap to clone: every
/// task that waited on a failed key gets its own copy.
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
        /// The source's own error.
        error: SourceError,
    },
    /// Nothing was runnable and nothing was being fetched, yet the root task had not finished.
    Stall {
        /// The innermost waiting asynq functions, each as its path from the root and what it
        /// waits on (`page > profile > stuck: waits on ...`). `Display` shows them as a tree.
        waiting: Vec<String>,
    },
    /// `Runtime::run` was called from inside a task of a run in progress on the same thread.
    NestedRun {
        /// The asynq function that made the call.
        task: &'static str,
    },
    /// A fetch request was polled outside any run (by hand, or by a foreign executor).
    NotInRun {
        /// The source's Rust type name.
        source_type: &'static str,
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
                write!(
                    f,
                    "source `{source}` failed to fetch key {key} (in a call of {batch} keys): {error}"
                )
            }
            Error::Stall { waiting } => {
                write!(
                    f,
                    "the run stalled: nothing is runnable and nothing is being fetched, \
                     yet {} asynq function(s) still wait:",
                    waiting.len()
                )?;
                write_tree(f, waiting.iter().take(STALL_LIST))?;
                if waiting.len() > STALL_LIST {
                    write!(f, "\n  ... and {} more", waiting.len() - STALL_LIST)?;
                }
                Ok(())
            }
            Error::NestedRun { task } => write!(
                f,
                "`Runtime::run` was called inside the asynq function `{task}` while its run is \
                 in progress; await the task instead"
            ),
            Error::NotInRun { source_type } => write!(
                f,
                "a fetch from `{source_type}` was polled outside an asynq run; \
                 run the task with `Runtime::run` or `Runtime::run_async`"
            ),
            Error::TaskPanicked { task, message } => {
                write!(f, "the asynq function `{task}` panicked: {message}")
            }
        }
    }
}

/// Paths `a > b > c: note` as an indented tree, shared prefixes written once.
fn write_tree<'a>(
    f: &mut fmt::Formatter<'_>,
    paths: impl Iterator<Item = &'a String>,
) -> fmt::Result {
    let mut previous: Vec<&str> = Vec::new();
    for path in paths {
        let (path, note) = match path.split_once(": ") {
            Some((path, note)) => (path, Some(note)),
            None => (path.as_str(), None),
        };
        let segments: Vec<&str> = path.split(" > ").collect();
        let shared = previous
            .iter()
            .zip(&segments)
            .take_while(|(a, b)| a == b)
            .count()
            .min(segments.len().saturating_sub(1));
        for (depth, segment) in segments.iter().enumerate().skip(shared) {
            write!(f, "\n  {:indent$}{segment}", "", indent = 2 * depth)?;
        }
        if let Some(note) = note {
            write!(f, " ({note})")?;
        }
        previous = segments;
    }
    Ok(())
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
            Error::NotInRun { .. } => "NotInRun",
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

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Source { error, .. } => Some(&**error),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stall_message_is_cut_to_a_readable_size() {
        let waiting = (0..25).map(|i| format!("root > f{i}: note {i}")).collect();
        let msg = Error::Stall { waiting }.to_string();
        assert!(msg.contains("25 asynq function(s)"));
        assert!(
            msg.contains("\n  root\n    f0 (note 0)\n    f1 (note 1)"),
            "{msg}"
        );
        assert!(msg.contains("\n    f9 (note 9)"));
        assert!(!msg.contains("f10"));
        assert!(msg.ends_with("... and 15 more"));
    }

    #[test]
    fn stall_message_is_a_tree() {
        let waiting = vec![
            "page > left > a: waits on x".to_owned(),
            "page > left > b: waits on y".to_owned(),
            "page > right: waits on z".to_owned(),
        ];
        let msg = Error::Stall { waiting }.to_string();
        let tree = "\n  page\n    left\n      a (waits on x)\n      b (waits on y)\n    right (waits on z)";
        assert!(msg.ends_with(tree), "{msg}");
    }

    #[test]
    fn source_error_keeps_its_cause() {
        let io = std::io::Error::other("connection refused");
        let err = Error::Source {
            source: "Users".into(),
            key: "42".into(),
            batch: 3,
            error: Arc::new(io),
        };
        assert_eq!(
            err.to_string(),
            "source `Users` failed to fetch key 42 (in a call of 3 keys): connection refused"
        );
        assert_eq!(
            std::error::Error::source(&err).unwrap().to_string(),
            "connection refused"
        );
    }
}
