//! `run_async` under foreign executors, and concurrent calls to different sources.

mod common;

use std::sync::Mutex;
use std::sync::mpsc;
use std::time::Duration;

use asynq_core::{DataSource, Error, Runtime, asynq};
use asynq_examples::feed::{self, Params};
use asynq_examples::memory::MemoryStore;
use common::Recorder;
use futures::channel::oneshot;

#[asynq]
fn get(k: u64) -> Result<u64, Error> {
    Recorder::load(k).await
}

#[test]
fn run_async_works_under_futures_block_on() {
    let rt = Runtime::new().with_source(Recorder::new("rec"));
    let (a, b) = futures::executor::block_on(rt.run_async((get(1), get(2)))).unwrap();
    assert_eq!((a.unwrap(), b.unwrap()), (10, 20));
    assert_eq!(rt.last_stats().calls(), 1);
}

#[test]
fn run_async_works_under_a_tokio_current_thread_runtime() {
    let params = Params {
        questions: 10,
        answers: 5,
    };
    let rt = Runtime::new().with_source(feed::memory_store(params));
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (page, stats) =
        tokio.block_on(rt.run_async(feed::feed::<MemoryStore>(params)).with_stats());
    assert_eq!(page.unwrap().len(), 2152);
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (3, 3, 195));
    assert_eq!(rt.last_stats(), stats);
}

/// A tokio source: each call sleeps on tokio's timer, so it needs tokio's reactor.
struct Sleepy;

impl DataSource for Sleepy {
    type Key = u64;
    type Value = u64;
    type Error = std::io::Error;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, std::io::Error> {
        tokio::time::sleep(Duration::from_millis(1)).await;
        Ok(keys.iter().map(|&k| (k, k + 1)).collect())
    }
}

#[asynq]
fn sleepy_chain(k: u64) -> Result<u64, Error> {
    let a = Sleepy::load(k).await?;
    Sleepy::load(a).await
}

#[tokio::test]
async fn a_source_that_awaits_tokio_io_works_inside_tokio() {
    let rt = Runtime::new().with_source(Sleepy);
    let out = rt
        .run_async(vec![sleepy_chain(1), sleepy_chain(10)])
        .await
        .unwrap();
    assert_eq!(
        out.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [3, 12]
    );
    assert_eq!((rt.last_stats().rounds, rt.last_stats().calls()), (2, 2));
}

/// Two sources that each wait, inside `fetch`, for the other's call to have started: if the
/// runtime called them one after the other, the first would wait forever.
struct Rendezvous<const ID: u8> {
    started: Mutex<Option<oneshot::Sender<()>>>,
    other_started: Mutex<Option<oneshot::Receiver<()>>>,
}

impl<const ID: u8> DataSource for Rendezvous<ID> {
    type Key = u64;
    type Value = u64;
    type Error = String;

    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, String> {
        if let Some(tx) = self.started.lock().unwrap().take() {
            let _ = tx.send(());
        }
        let rx = self.other_started.lock().unwrap().take();
        if let Some(rx) = rx {
            rx.await
                .map_err(|_| "the other source's call was dropped".to_owned())?;
        }
        Ok(keys.iter().map(|&k| (k, k + u64::from(ID))).collect())
    }
}

fn rendezvous_pair() -> (Rendezvous<1>, Rendezvous<2>) {
    let (tx1, rx1) = oneshot::channel();
    let (tx2, rx2) = oneshot::channel();
    (
        Rendezvous {
            started: Mutex::new(Some(tx1)),
            other_started: Mutex::new(Some(rx2)),
        },
        Rendezvous {
            started: Mutex::new(Some(tx2)),
            other_started: Mutex::new(Some(rx1)),
        },
    )
}

#[asynq]
fn from_both(k: u64) -> Result<u64, Error> {
    let (a, b) = (Rendezvous::<1>::load(k), Rendezvous::<2>::load(k)).await;
    Ok(a? * b?)
}

/// Run `f` on a thread; a hang becomes a test failure after a generous bound.
fn within_bound<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the run hung: the two sources were not called concurrently")
}

#[test]
fn two_sources_in_one_round_are_fetched_concurrently_by_run() {
    let out = within_bound(|| {
        let (a, b) = rendezvous_pair();
        let rt = Runtime::new().with_source(a).with_source(b);
        rt.run(from_both(10))
    });
    assert_eq!(out.unwrap(), 11 * 12);
}

#[test]
fn two_sources_in_one_round_are_fetched_concurrently_by_run_async_in_tokio() {
    let out = within_bound(|| {
        let (a, b) = rendezvous_pair();
        let rt = Runtime::new().with_source(a).with_source(b);
        let tokio = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        tokio.block_on(rt.run_async(from_both(10)))
    });
    assert_eq!(out.unwrap(), 11 * 12);
}

#[test]
fn runtimes_and_runs_are_send() {
    fn assert_send_sync<T: Send + Sync>(_: &T) {}
    fn assert_send<T: Send>(_: &T) {}
    let rt = Runtime::new().with_source(Recorder::new("rec"));
    assert_send_sync(&rt);
    let run = rt.run_async(feed::feed::<MemoryStore>(Params {
        questions: 1,
        answers: 1,
    }));
    assert_send(&run);
}
