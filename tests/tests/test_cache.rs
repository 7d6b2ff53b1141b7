//! Cache control: priming, clearing, and sources that opt out of caching.

mod common;

use asynq_core::{DataSource, Error, Runtime, asynq, cache};
use common::{Other, Recorder};

#[asynq]
fn get(k: u64) -> Result<u64, Error> {
    Recorder::load(k).await
}

fn rt() -> Runtime {
    Runtime::new().with_source(Recorder::new("rec"))
}

fn calls(rt: &Runtime) -> Vec<Vec<u64>> {
    rt.source::<Recorder>().unwrap().calls()
}

#[test]
fn values_primed_before_the_run_are_never_fetched() {
    let rt = rt();
    let out = rt
        .run_async((get(1), get(2), get(3)))
        .prime::<Recorder>([(1, 100), (3, 300)])
        .wait()
        .unwrap();
    assert_eq!(
        (out.0.unwrap(), out.1.unwrap(), out.2.unwrap()),
        (100, 20, 300)
    );
    assert_eq!(calls(&rt), vec![vec![2]]);
    assert_eq!(rt.last_stats().cache_hits(), 2);
    // The next run starts with an empty cache.
    rt.run(get(1)).unwrap();
    assert_eq!(calls(&rt), vec![vec![2], vec![1]]);
}

#[test]
fn priming_an_unregistered_source_fails_the_run() {
    let rt = rt();
    let err = rt
        .run_async(get(1))
        .prime::<Other>([(1, 1)])
        .wait()
        .unwrap_err();
    assert!(matches!(err, Error::NoSource { .. }), "{err:?}");
    assert!(calls(&rt).is_empty(), "the run never started");
}

// Sequential on purpose: the primed read must not take a round.
#[asynq(allow_sequential)]
fn primes_then_reads(k: u64) -> Result<(u64, u64), Error> {
    cache::prime::<Recorder>(k, 7)?;
    let primed = get(k).await?; // no round
    let fetched = get(k + 1).await?;
    Ok((primed, fetched))
}

#[test]
fn a_task_primes_the_cache_of_its_own_run() {
    let rt = rt();
    assert_eq!(rt.run(primes_then_reads(5)).unwrap(), (7, 60));
    assert_eq!(calls(&rt), vec![vec![6]]);
    assert_eq!(rt.last_stats().rounds, 1);
}

#[asynq]
fn waits(k: u64) -> Result<u64, Error> {
    get(k).await
}

#[asynq]
fn primes(k: u64, v: u64) -> Result<(), Error> {
    cache::prime::<Recorder>(k, v)
}

#[test]
fn priming_a_key_that_tasks_wait_on_resumes_them_with_the_value() {
    let rt = rt();
    // `waits(4)` asks first; its sibling primes 4 in the same round, and a new key 9 that no
    // task asked for yet (kept aside, then answered without a fetch).
    #[asynq]
    fn later() -> Result<u64, Error> {
        get(50).await?;
        get(9).await
    }
    let (a, b, c, d) = rt
        .run((waits(4), primes(4, 44), primes(9, 99), later()))
        .unwrap();
    b.unwrap();
    c.unwrap();
    assert_eq!(
        a.unwrap(),
        44,
        "the waiter got the primed value, not the fetched 40"
    );
    assert_eq!(d.unwrap(), 99);
    // The round keeps its single call: 4 was already waiting to be sent.
    assert_eq!(calls(&rt), vec![vec![4, 50]]);
}

#[asynq]
fn clears(k: u64) -> Result<(u64, u64), Error> {
    let first = get(k).await?;
    cache::clear::<Recorder>(&k)?;
    let second = get(k).await?;
    let third = get(k).await?; // cached again
    Ok((first, second + third))
}

#[test]
fn a_cleared_key_is_fetched_again() {
    let rt = rt();
    assert_eq!(rt.run(clears(3)).unwrap(), (30, 60));
    assert_eq!(calls(&rt), vec![vec![3], vec![3]]);
}

#[asynq]
fn clears_source() -> Result<u64, Error> {
    let (a, b) = (get(1), get(2)).await;
    cache::clear_source::<Recorder>()?;
    let (c, d) = (get(1), get(2)).await;
    Ok(a? + b? + c? + d?)
}

#[test]
fn clearing_a_source_forgets_all_its_answers() {
    let rt = rt();
    assert_eq!(rt.run(clears_source()).unwrap(), 60);
    assert_eq!(calls(&rt), vec![vec![1, 2], vec![1, 2]]);
}

#[test]
fn cache_control_outside_a_run_is_an_error() {
    // Each error names the call that was made, not a fetch.
    let recorder = std::any::type_name::<Recorder>();
    let outside = [
        ("cache::prime", cache::prime::<Recorder>(1, 1)),
        ("cache::clear", cache::clear::<Recorder>(&1)),
        ("cache::clear_source", cache::clear_source::<Recorder>()),
    ];
    for (name, result) in outside {
        let err = result.unwrap_err();
        assert!(
            matches!(err, Error::NotInRun { call, source_type } if call == name && source_type == recorder),
            "{err:?}"
        );
        assert_eq!(
            err.to_string(),
            format!(
                "`{name}` for `{recorder}` was called outside an asynq run; call it inside an \
                 asynq function, or prime a run before it starts with `RunFuture::prime`"
            )
        );
    }
    #[asynq]
    fn unknown() -> Result<(), Error> {
        cache::clear::<Other>(&1)
    }
    assert!(matches!(rt().run(unknown()), Err(Error::NoSource { .. })));
}

/// A clock: every read must be fresh.
struct Clock(std::sync::atomic::AtomicU64);

impl DataSource for Clock {
    type Key = &'static str;
    type Value = u64;
    type Error = std::convert::Infallible;

    async fn fetch(&self, keys: &[&'static str]) -> Result<Vec<(&'static str, u64)>, Self::Error> {
        let now = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Ok(keys.iter().map(|&k| (k, now)).collect())
    }

    fn caches_answers(&self) -> bool {
        false
    }
}

#[asynq]
fn ticks() -> Result<(u64, u64, u64), Error> {
    let (a, b) = (Clock::load("now"), Clock::load("now")).await; // one round: one fetch
    let c = Clock::load("now").await?; // a later round: fetched again
    Ok((a?, b?, c))
}

#[test]
fn a_source_that_opts_out_of_caching_is_fetched_every_round() {
    let rt = Runtime::new().with_source(Clock(Default::default()));
    assert_eq!(rt.run(ticks()).unwrap(), (0, 0, 1));
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (2, 2, 2));
}
