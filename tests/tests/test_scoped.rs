//! Task-scoped values and enter/exit hooks across suspensions and sibling interleaving.

use std::cell::RefCell;

use asynq_core::{DataSource, Runtime, TaskHooks, Timer, asynq, scoped_value, with_hooks};

scoped_value! {
    static USER: u32;
    static DEPTH: u32;
}

thread_local! {
    // Per test thread: a blocking run polls its tasks and sources on the caller's thread.
    static EVENTS: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn log(event: String) {
    EVENTS.with(|e| e.borrow_mut().push(event));
}

/// Logs each call, so that hooks can be placed relative to fetches.
struct Logged;

impl DataSource for Logged {
    type Key = u32;
    type Value = u32;
    type Error = std::convert::Infallible;

    async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
        log(format!("fetch {keys:?}"));
        Ok(keys.iter().map(|&k| (k, k + 1)).collect())
    }
}

/// Reads the scoped user before and after each of `rounds` fetches.
#[asynq]
fn who(rounds: u32) -> Vec<Option<u32>> {
    let mut seen = vec![USER.get()];
    let mut k = 100 * USER.get().unwrap_or(0);
    for _ in 0..rounds {
        k = Logged::load(k).await.unwrap();
        seen.push(USER.get());
    }
    seen
}

#[asynq]
fn nested() -> (Vec<Option<u32>>, Vec<Option<u32>>) {
    // An inner scope of the same key hides the outer one, then the outer one is back.
    let inner = USER.scope(7, who(1)).await;
    let outer = who(1).await;
    (inner, outer)
}

#[test]
fn a_scoped_value_follows_its_task_across_suspensions_and_siblings() {
    let rt = Runtime::new().with_source(Logged);
    let (a, b, c, d) = rt
        .run((
            USER.scope(1, who(3)),
            USER.scope(2, who(2)),
            who(2),
            USER.scope(3, nested()),
        ))
        .unwrap();
    assert_eq!(a, [Some(1); 4]);
    assert_eq!(b, [Some(2); 3]);
    assert_eq!(
        c, [None; 3],
        "a sibling without a scope never sees the others'"
    );
    assert_eq!(d, (vec![Some(7); 2], vec![Some(3); 2]));
    assert_eq!(
        rt.last_stats().rounds,
        3,
        "the siblings interleaved in the same rounds"
    );
    assert_eq!(USER.get(), None, "nothing leaks out of the run");
}

#[asynq]
fn depth_reader() -> Option<u32> {
    DEPTH.get()
}

#[test]
fn keys_are_independent() {
    let rt = Runtime::new();
    let out = rt
        .run(USER.scope(1, DEPTH.scope(5, depth_reader())))
        .unwrap();
    assert_eq!(out, Some(5));
}

struct LogHooks(&'static str);

impl TaskHooks for LogHooks {
    fn resume(&mut self) {
        log(format!("resume {}", self.0));
    }
    fn pause(&mut self) {
        log(format!("pause {}", self.0));
    }
}

#[test]
fn hooks_run_around_every_poll_and_never_around_a_fetch() {
    let rt = Runtime::new().with_source(Logged);
    let out = rt
        .run(with_hooks(LogHooks("t"), USER.scope(1, who(2))))
        .unwrap();
    assert_eq!(out, [Some(1); 3]);
    let events = EVENTS.with(RefCell::take);
    assert_eq!(
        events,
        [
            "resume t",
            "pause t",
            "fetch [100]",
            "resume t",
            "pause t",
            "fetch [101]",
            "resume t",
            "pause t"
        ]
    );
}

#[test]
fn a_timer_counts_resumptions_of_the_tasks_it_times() {
    let rt = Runtime::new().with_source(Logged);
    let timer = Timer::new();
    let (a, b) = rt.run((timer.time(who(2)), timer.time(who(0)))).unwrap();
    assert_eq!((a.len(), b.len()), (3, 1));
    assert_eq!(timer.resumptions(), 3 + 1);
    assert!(
        timer.elapsed() <= rt.last_stats().elapsed,
        "time running is part of the run's time"
    );
}
