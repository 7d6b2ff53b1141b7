//! Tests of the error type: messages, the stall tree, the error chain.

use std::fmt;
use std::sync::Arc;

use super::*;
use crate::error::tree::{KEY_SHOWN, debug_cut};

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
    let tree =
        "\n  page\n    left\n      a (waits on x)\n      b (waits on y)\n    right (waits on z)";
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
    use crate::context::with_ctx;
    use crate::diagnosis::Diagnosis;

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
fn an_application_error_is_transparent() {
    let err = Error::other(QueryFailed(std::io::Error::other("disk full")));
    assert_eq!(chain(&err), "query failed: disk full");
    let Error::Other { error } = &err else {
        unreachable!()
    };
    assert!(error.downcast_ref::<QueryFailed>().is_some());
    assert_eq!(
        format!("{:?}", Error::other("no such user")),
        "Other(no such user)"
    );
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
        Error::other(QueryFailed(std::io::Error::other("disk full"))),
        Error::other("no such user"),
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
