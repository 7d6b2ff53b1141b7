//! Eager resume: tasks waiting only on a fast source go on while a slow call is in flight.
//!
//! No timings: the slow source answers only once the fast chain has reached its end, so a
//! runtime that waits for every call of a round before resuming anyone would wait forever
//! (turned into a failure by a generous bound).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asynq_core::{DataSource, Error, Runtime, asynq};
use futures::channel::oneshot;

/// Answers at once, `k -> k + 1`; after `until` calls it releases the slow source.
struct Fast {
    calls: AtomicUsize,
    until: usize,
    release: Mutex<Option<oneshot::Sender<()>>>,
    keys: Mutex<Vec<Vec<u64>>>,
}

impl DataSource for Fast {
    type Key = u64;
    type Value = u64;
    type Error = std::convert::Infallible;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
        self.keys.lock().unwrap().push(keys.to_vec());
        if self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.until
            && let Some(tx) = self.release.lock().unwrap().take()
        {
            let _ = tx.send(());
        }
        Ok(keys.iter().map(|&k| (k, k + 1)).collect())
    }
}

/// Answers only when released, `k -> 1000 k`.
struct Slow {
    released: Mutex<Option<oneshot::Receiver<()>>>,
    keys: Mutex<Vec<Vec<u64>>>,
}

impl DataSource for Slow {
    type Key = u64;
    type Value = u64;
    type Error = String;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
        self.keys.lock().unwrap().push(keys.to_vec());
        let released = self.released.lock().unwrap().take();
        if let Some(rx) = released {
            rx.await.map_err(|_| "never released".to_owned())?;
        }
        Ok(keys.iter().map(|&k| (k, 1000 * k)).collect())
    }
}

fn sources(chain: usize) -> (Fast, Slow) {
    let (tx, rx) = oneshot::channel();
    let fast = Fast {
        calls: AtomicUsize::new(0),
        until: chain,
        release: Mutex::new(Some(tx)),
        keys: Mutex::default(),
    };
    let slow = Slow {
        released: Mutex::new(Some(rx)),
        keys: Mutex::default(),
    };
    (fast, slow)
}

/// `depth` dependent fetches from the fast source.
#[asynq]
fn fast_chain(depth: usize) -> Result<u64, Error> {
    let mut k = 0;
    for _ in 0..depth {
        k = Fast::load(k).await?;
    }
    Ok(k)
}

#[asynq]
fn slow_one(k: u64) -> Result<u64, Error> {
    Slow::load(k).await
}

#[asynq]
fn page(depth: usize) -> Result<(u64, u64, u64), Error> {
    // The slow key 7 is asked in round 1 and again (joined, not re-sent) by a task that the
    // fast chain's second answer resumes.
    #[asynq]
    fn late_slow() -> Result<u64, Error> {
        Fast::load(100).await?;
        Slow::load(7).await
    }
    let (chain, slow, late) = (fast_chain(depth), slow_one(7), late_slow()).await;
    Ok((chain?, slow?, late?))
}

fn within_bound<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run waited for the slow call before resuming the fast chain")
}

#[test]
fn a_fast_chain_runs_while_a_slow_call_is_in_flight() {
    let (out, rt) = within_bound(|| {
        let (fast, slow) = sources(5);
        let rt = Arc::new(
            Runtime::new()
                .with_source(fast)
                .with_source(slow)
                .eager_resume(true),
        );
        (rt.run(page(5)), rt)
    });
    assert_eq!(out.unwrap(), (5, 7000, 7000));
    let fast = rt.source::<Fast>().unwrap();
    let slow = rt.source::<Slow>().unwrap();
    assert_eq!(
        *fast.keys.lock().unwrap(),
        [vec![0, 100], vec![1], vec![2], vec![3], vec![4]]
    );
    assert_eq!(
        *slow.keys.lock().unwrap(),
        [vec![7]],
        "the second request for 7 joined the call in flight"
    );
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (5, 6, 7));
    // The slow source's round ended last: its wall time covers the fast rounds after it.
    let first = &stats.per_round[0];
    assert_eq!(first.sources.len(), 2);
    assert!(stats.per_round[1..].iter().all(|r| r.wall <= first.wall));
}

#[test]
fn without_eager_resume_the_fast_chain_waits_for_the_slow_call() {
    // The slow call answers only after the chain's 5th fetch, which a round-at-a-time runtime
    // sends only after the slow call answered: it can never finish.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (fast, slow) = sources(5);
        let rt = Runtime::new().with_source(fast).with_source(slow);
        let _ = tx.send(rt.run(page(5)));
    });
    assert!(
        rx.recv_timeout(Duration::from_secs(1)).is_err(),
        "the run finished without eager resume"
    );
}

#[test]
fn without_eager_resume_a_round_waits_for_all_its_calls() {
    // The same program, with a slow source that answers at once: 5 rounds, each held until
    // every call answered; the answers are the same.
    let (fast, slow) = sources(usize::MAX);
    *slow.released.lock().unwrap() = None;
    let rt = Runtime::new().with_source(fast).with_source(slow);
    assert_eq!(rt.run(page(5)).unwrap(), (5, 7000, 7000));
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (5, 6, 7));
}

#[test]
fn eager_resume_works_under_a_foreign_executor() {
    let out = within_bound(|| {
        let (fast, slow) = sources(3);
        let rt = Runtime::new()
            .with_source(fast)
            .with_source(slow)
            .eager_resume(true);
        let tokio = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tokio.block_on(rt.run_async(page(3)))
    });
    assert_eq!(out.unwrap(), (3, 7000, 7000));
}
