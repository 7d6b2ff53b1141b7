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
            Error::TaskPanicked { task, message } => {
                write!(f, "the asynq function `{task}` panicked: {message}")
            }
        }
    }
}

/// Equal lines once each, in the order they first appear, with how many times they appear.
fn group(lines: &[String]) -> Vec<(&str, usize)> {
    let mut index: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    let mut groups: Vec<(&str, usize)> = Vec::new();
    for line in lines {
        match index.get(line.as_str()) {
            Some(&i) => groups[i].1 += 1,
            None => {
                index.insert(line, groups.len());
                groups.push((line, 1));
            }
        }
    }
    groups
}

/// Paths `a > b > c: note` as an indented tree, shared prefixes written once; a path that
/// `n > 1` tasks share is written once, as `n × c`.
fn write_tree<'a>(
    f: &mut fmt::Formatter<'_>,
    paths: impl Iterator<Item = &'a (&'a str, usize)>,
) -> fmt::Result {
    let mut previous: Vec<&str> = Vec::new();
    for &(path, count) in paths {
        let (path, note) = match path.split_once(": ") {
            Some((path, note)) => (path, Some(note)),
            None => (path, None),
        };
        let segments: Vec<&str> = path.split(" > ").collect();
        let shared = previous
            .iter()
            .zip(&segments)
            .take_while(|(a, b)| a == b)
            .count()
            .min(segments.len().saturating_sub(1));
        let last = segments.len() - 1;
        for (depth, segment) in segments.iter().enumerate().skip(shared) {
            write!(f, "\n  {:indent$}", "", indent = 2 * depth)?;
            if depth == last && count > 1 {
                write!(f, "{count} × ")?;
            }
            f.write_str(segment)?;
        }
        if let Some(note) = note {
            write!(f, " ({note})")?;
        }
        previous = segments;
    }
    Ok(())
}

/// How many bytes of a key's `Debug` form a message shows.
const KEY_SHOWN: usize = 100;

/// The `Debug` form of a key, cut to [`KEY_SHOWN`] bytes: for keys shown in messages, which
/// may be as long as their owner made them.
pub(crate) fn debug_bounded(value: &dyn fmt::Debug) -> String {
    debug_cut(value, KEY_SHOWN)
}

/// The `Debug` form of `value`, cut to `max` bytes (on a character boundary, then `…`).
fn debug_cut(value: &dyn fmt::Debug, max: usize) -> String {
    /// Keeps the first `max` bytes written, and whether more came.
    struct Bounded {
        out: String,
        max: usize,
        cut: bool,
    }
    impl fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = self.max - self.out.len();
            if s.len() <= room {
                self.out.push_str(s);
                return Ok(());
            }
            let mut end = room;
            while !s.is_char_boundary(end) {
                end -= 1;
            }
            self.out.push_str(&s[..end]);
            self.cut = true;
            // Stop the formatting: nothing more is kept.
            Err(fmt::Error)
        }
    }
    let mut bounded = Bounded {
        out: String::new(),
        max,
        cut: false,
    };
    let _ = fmt::write(&mut bounded, format_args!("{value:?}"));
    if bounded.cut {
        bounded.out.push('…');
    }
    bounded.out
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
            Error::Source { error, .. } => error.source(),
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
        assert!(msg.contains("yet 25 asynq tasks still wait:"), "{msg}");
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
    fn stall_message_counts_equal_lines_instead_of_repeating_them() {
        let mut waiting = vec!["page > stuck: waits on x".to_owned(); 15];
        waiting.insert(3, "page > other: waits on y".to_owned());
        waiting.push("page > stuck: waits on z".to_owned());
        let msg = Error::Stall { waiting }.to_string();
        assert!(msg.contains("yet 17 asynq tasks still wait:"), "{msg}");
        let tree =
            "\n  page\n    15 × stuck (waits on x)\n    other (waits on y)\n    stuck (waits on z)";
        assert!(msg.ends_with(tree), "{msg}");
        // The "more" counts tasks, not lines.
        let waiting = (0..12).flat_map(|i| vec![format!("f{i}: n"); 3]).collect();
        let msg = Error::Stall { waiting }.to_string();
        assert!(msg.contains("\n  3 × f9 (n)"), "{msg}");
        assert!(msg.ends_with("\n  3 × f9 (n)\n  ... and 6 more"), "{msg}");
        let one = Error::Stall {
            waiting: vec!["f: n".to_owned()],
        };
        assert!(one.to_string().contains("yet 1 asynq task still waits:"));
    }

    #[test]
    fn a_call_of_one_key_is_not_a_call_of_one_keys() {
        let err = |batch| Error::Source {
            source: "Users".into(),
            key: "42".into(),
            batch,
            error: Arc::new(std::io::Error::other("refused")),
        };
        assert!(err(1).to_string().contains("(in a call of 1 key): refused"));
        assert!(
            err(2)
                .to_string()
                .contains("(in a call of 2 keys): refused")
        );
    }

    #[test]
    fn cache_use_outside_a_run_names_the_cache_call() {
        let err = Error::NotInRun {
            source_type: "app::Users",
            call: "cache::prime",
        };
        assert_eq!(
            err.to_string(),
            "`cache::prime` for `app::Users` was called outside an asynq run; call it inside an \
             asynq function, or prime a run before it starts with `RunFuture::prime`"
        );
        let err = Error::NotInRun {
            source_type: "app::Users",
            call: "DataSource::load",
        };
        assert!(
            err.to_string()
                .starts_with("a fetch from `app::Users` was polled outside")
        );
    }

    #[test]
    fn debug_forms_are_cut_on_a_character_boundary() {
        assert_eq!(debug_cut(&42, 10), "42");
        assert_eq!(debug_cut(&"abcdef", 8), "\"abcdef\"");
        assert_eq!(debug_cut(&"abcdefg", 8), "\"abcdefg…");
        assert_eq!(debug_cut(&"ééé", 4), "\"é…");
        let long = vec![7u8; 1_000_000];
        assert_eq!(debug_cut(&long, 12).len(), 12 + '…'.len_utf8());
    }

    #[test]
    fn a_waiting_fetch_says_which_key_it_waits_on() {
        use std::future::Future as _;
        use std::task::{Context, Waker};

        use crate::DataSource;
        use crate::context::{Diagnosis, with_ctx};

        struct Users;
        impl DataSource for Users {
            type Key = String;
            type Value = usize;
            type Error = std::convert::Infallible;
            async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, usize)>, Self::Error> {
                Ok(keys.iter().map(|k| (k.clone(), k.len())).collect())
            }
        }

        // A stall's diagnosis polls every waiting future once more; a fetch request still
        // waiting then says which key of which source it waits on, its key cut short.
        let probe = crate::Task::__new(&"probe", async {
            let mut load = Users::load("x".repeat(500));
            let mut cx = Context::from_waker(Waker::noop());
            assert!(std::pin::Pin::new(&mut load).poll(&mut cx).is_pending());
            with_ctx(|run| run.diagnose = Some(Diagnosis::default()));
            assert!(std::pin::Pin::new(&mut load).poll(&mut cx).is_pending());
            let note = with_ctx(|run| run.diagnose.take().and_then(|d| d.note)).flatten();
            (note, load.await)
        });
        let (note, value) = crate::Runtime::new().with_source(Users).run(probe).unwrap();
        assert_eq!(value.unwrap(), 500);
        let key = format!("\"{}…", "x".repeat(KEY_SHOWN - 1));
        assert_eq!(note.unwrap(), format!("waits on `Users` key {key}"));
    }

    /// A store's error that has a cause of its own.
    #[derive(Debug)]
    struct QueryFailed(std::io::Error);

    impl fmt::Display for QueryFailed {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("query failed")
        }
    }

    impl std::error::Error for QueryFailed {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// The messages of `error`'s chain, as `anyhow`'s `{:#}` joins them.
    fn chain(error: &(dyn std::error::Error + 'static)) -> String {
        let mut messages = vec![error.to_string()];
        let mut next = error.source();
        while let Some(cause) = next {
            messages.push(cause.to_string());
            next = cause.source();
        }
        messages.join(": ")
    }

    #[test]
    fn every_message_of_a_chain_is_shown_once() {
        let io = std::io::Error::other("connection refused");
        let source = Error::Source {
            source: "Users".into(),
            key: "42".into(),
            batch: 3,
            error: Arc::new(QueryFailed(io)),
        };
        assert_eq!(
            chain(&source),
            "source `Users` failed to fetch key 42 (in a call of 3 keys): query failed: \
             connection refused"
        );
        let Error::Source { error, .. } = &source else {
            unreachable!()
        };
        assert!(error.downcast_ref::<QueryFailed>().is_some());
        let every = [
            Error::NoSource { source_type: "S" },
            Error::MissingKey {
                source: "S".into(),
                key: "1".into(),
            },
            source,
            Error::Stall {
                waiting: vec!["f: n".to_owned()],
            },
            Error::NestedRun {
                task: "f",
                call: "Runtime::run",
            },
            Error::BlockingInAsync {
                call: "Runtime::run",
                executor: "a tokio runtime",
            },
            Error::NotInRun {
                source_type: "S",
                call: "cache::clear",
            },
            Error::TaskPanicked {
                task: "f",
                message: "boom".to_owned(),
            },
        ];
        for err in &every {
            let chain = chain(err);
            let mut seen = std::collections::HashSet::new();
            for message in chain.split(": ") {
                assert!(seen.insert(message), "{message:?} twice in {chain:?}");
            }
        }
    }
}
