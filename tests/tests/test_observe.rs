//! Seeing a run: per-round and per-function statistics, their table, and tracing spans.

mod common;

use std::sync::{Arc, Mutex};

use asynq_core::{DataSource, Error, Runtime, asynq};
use common::{Other, Recorder};
use tracing_subscriber::layer::{Context, SubscriberExt as _};
use tracing_subscriber::registry::LookupSpan;

#[asynq]
fn leaf(k: u64) -> Result<u64, Error> {
    Recorder::load(k).await
}

#[asynq]
fn branch(k: u64) -> Result<u64, Error> {
    // Round 1: k from Recorder and k from Other; round 2: the leaf's key, from Recorder.
    let (a, b) = (Recorder::load(k), Other::load(k)).await;
    let c = leaf(a? + b?).await?;
    Ok(c)
}

#[asynq]
fn page() -> Result<u64, Error> {
    // Three branches: keys 1, 2, 1 (1 coalesced) in round 1; 20, 40 in round 2.
    let all = vec![branch(1), branch(2), branch(1)].await;
    all.into_iter().sum()
}

fn rt() -> Runtime {
    Runtime::new()
        .with_source(Recorder::new("rec"))
        .with_source(Other(Recorder::new("other")))
}

#[test]
fn stats_of_a_known_program() {
    let rt = rt().with_function_stats(true);
    assert_eq!(rt.run(page()).unwrap(), 200 + 400 + 200);
    let stats = rt.last_stats();
    assert_eq!(
        (stats.rounds, stats.calls(), stats.keys(), stats.tasks),
        (2, 3, 6, 1 + 3 + 3)
    );
    assert_eq!(stats.per_round.len(), 2);
    let figures = |r: usize| -> Vec<(String, usize, usize, usize)> {
        stats.per_round[r]
            .sources
            .iter()
            .map(|s| (s.name.to_string(), s.requested, s.keys, s.calls))
            .collect()
    };
    assert_eq!(
        figures(0),
        [("rec".into(), 3, 2, 1), ("other".into(), 3, 2, 1)]
    );
    assert_eq!(figures(1), [("rec".into(), 3, 2, 1)]);
    let round = &stats.per_round[0];
    assert!(round.sources.iter().all(|s| s.wall <= round.wall));
    // Per function: tasks and polls (one start, one resumption per wait).
    let function = |suffix: &str| {
        stats
            .functions
            .iter()
            .find(|f| f.name.ends_with(suffix))
            .unwrap()
    };
    assert_eq!((function("::page").tasks, function("::page").polls), (1, 3));
    assert_eq!(
        (function("::branch").tasks, function("::branch").polls),
        (3, 9)
    );
    assert_eq!((function("::leaf").tasks, function("::leaf").polls), (3, 6));
    assert_eq!(stats.functions.len(), 3);
    let self_time: std::time::Duration = stats.functions.iter().map(|f| f.self_time).sum();
    assert!(self_time <= stats.elapsed);
}

/// A name and a count.
type Figure = (String, usize);

/// The figures of each round and function as named types, in a helper of the caller's own (as
/// a test harness or a metrics exporter writes them).
fn summary(
    rounds: &[asynq_core::RoundStats],
    functions: &[asynq_core::FunctionStats],
) -> (Vec<Vec<Figure>>, Vec<Figure>) {
    let source = |s: &asynq_core::RoundSourceStats| (s.name.to_string(), s.keys);
    let rounds = rounds
        .iter()
        .map(|r| r.sources.iter().map(source).collect())
        .collect();
    let mut functions: Vec<Figure> = functions
        .iter()
        .map(|f| (f.name.rsplit("::").next().unwrap().to_owned(), f.tasks))
        .collect();
    functions.sort();
    (rounds, functions)
}

#[test]
fn stats_types_can_be_named() {
    let rt = rt().with_function_stats(true);
    rt.run(page()).unwrap();
    let stats: asynq_core::Stats = rt.last_stats();
    let (rounds, functions) = summary(&stats.per_round, &stats.functions);
    assert_eq!(
        rounds,
        [
            vec![("rec".to_owned(), 2), ("other".to_owned(), 2)],
            vec![("rec".to_owned(), 2)]
        ]
    );
    assert_eq!(
        functions,
        [
            ("branch".to_owned(), 3),
            ("leaf".to_owned(), 3),
            ("page".to_owned(), 1)
        ]
    );
    let sources: &[asynq_core::SourceStats] = &stats.sources;
    assert_eq!(sources.len(), 2);
}

#[test]
fn function_stats_are_off_by_default() {
    let rt = rt();
    rt.run(page()).unwrap();
    assert!(rt.last_stats().functions.is_empty());
}

#[test]
fn the_table_reads_in_five_seconds() {
    let rt = rt().with_function_stats(true);
    rt.run(page()).unwrap();
    let table = rt.last_stats().to_string();
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("asynq run: 2 rounds, 3 calls, 6 keys, 0 cache hits, 7 tasks, "),
        "{table}"
    );
    assert!(
        lines[1].split_whitespace().eq([
            "source",
            "calls",
            "keys",
            "requested",
            "cache",
            "hits",
            "coalesced",
            "failed"
        ]),
        "{table}"
    );
    assert!(
        lines[2]
            .split_whitespace()
            .eq(["rec", "2", "4", "6", "0", "2", "0"]),
        "{table}"
    );
    assert!(
        lines[4].split_whitespace().eq([
            "round",
            "source",
            "requested",
            "sent",
            "calls",
            "wall",
            "ms"
        ]),
        "{table}"
    );
    assert!(
        lines[5]
            .split_whitespace()
            .take(5)
            .eq(["1", "rec", "3", "2", "1"]),
        "{table}"
    );
    assert!(
        lines[7]
            .split_whitespace()
            .take(5)
            .eq(["2", "rec", "3", "2", "1"]),
        "{table}"
    );
    assert!(
        lines[8]
            .split_whitespace()
            .eq(["function", "tasks", "polls", "self", "ms"]),
        "{table}"
    );
    assert_eq!(lines.len(), 12, "{table}");
}

/// Records the names (and fields) of spans and events, with the thread they happened on.
///
/// It is the global subscriber of this test binary, installed once: tracing caches per
/// call site whether anyone listens, and a subscriber scoped to one test thread can miss call
/// sites that a test on another thread reached first.
#[derive(Clone, Default)]
struct Recorded(Arc<Mutex<Vec<(std::thread::ThreadId, String)>>>);

impl Recorded {
    fn global() -> &'static Recorded {
        static RECORDED: std::sync::OnceLock<Recorded> = std::sync::OnceLock::new();
        RECORDED.get_or_init(|| {
            let recorded = Recorded::default();
            let subscriber = tracing_subscriber::registry().with(recorded.clone());
            tracing::subscriber::set_global_default(subscriber)
                .expect("the only global subscriber");
            recorded
        })
    }

    /// What happened on this thread so far.
    fn here(&self) -> Vec<String> {
        let me = std::thread::current().id();
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, _)| *t == me)
            .map(|(_, s)| s.clone())
            .collect()
    }

    fn push(&self, line: String) {
        self.0
            .lock()
            .unwrap()
            .push((std::thread::current().id(), line));
    }
}

struct Fields(Vec<String>);

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        self.0.push(format!("{}={value:?}", field.name()));
    }
}

impl<S: tracing::Subscriber + for<'a> LookupSpan<'a>> tracing_subscriber::Layer<S> for Recorded {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: Context<'_, S>,
    ) {
        let mut fields = Fields(Vec::new());
        attrs.record(&mut fields);
        self.push(format!(
            "{} {}",
            attrs.metadata().name(),
            fields.0.join(" ")
        ));
    }

    fn on_event(&self, event: &tracing::Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        self.push(format!("event {}", fields.0.join(" ")));
    }
}

#[test]
fn spans_for_the_run_rounds_fetches_and_task_polls() {
    let recorded = Recorded::global();
    let rt = rt();
    #[asynq]
    fn twice() -> Result<u64, Error> {
        let a = leaf(1).await?;
        let b = leaf(1).await?; // a cache hit
        Ok(a + b)
    }
    assert_eq!(rt.run(twice()).unwrap(), 20);
    let spans = recorded.here();
    let count = |prefix: &str| spans.iter().filter(|s| s.starts_with(prefix)).count();
    assert_eq!(count("asynq.run"), 1, "{spans:#?}");
    assert_eq!(count("asynq.round round=1"), 1, "{spans:#?}");
    assert_eq!(count("asynq.fetch source=rec keys=1"), 1, "{spans:#?}");
    // One span per poll: twice (2 polls: the second leaf is a cache hit), the first leaf(1)
    // (2 polls), the second (1 poll).
    assert_eq!(count("asynq.task task=test_observe::"), 5, "{spans:#?}");
    assert!(
        spans
            .iter()
            .any(|s| s.starts_with("asynq.task task=test_observe::leaf"))
    );
    assert_eq!(
        count("event message=asynq.cache_hit source=rec"),
        1,
        "{spans:#?}"
    );
}

struct Nothing;

impl DataSource for Nothing {
    type Key = u64;
    type Value = u64;
    type Error = std::convert::Infallible;
    async fn fetch(&self, _: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
        Ok(Vec::new())
    }
}

#[test]
fn a_round_that_only_hits_the_cache_is_not_a_round() {
    let rt = Runtime::new().with_source(Nothing);
    let out = rt.run(Nothing::load_many([1, 1])).unwrap();
    assert!(out.iter().all(Result::is_err));
    let stats = rt.last_stats();
    assert_eq!(stats.rounds, 1);
    assert_eq!(stats.per_round[0].sources[0].requested, 2);
    assert_eq!(stats.per_round[0].sources[0].keys, 1);
}
