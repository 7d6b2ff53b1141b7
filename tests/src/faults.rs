//! A data source wrapper that injects the faults a real store can produce.
//!
//! [`Faulty<S>`] answers like `S` until it is told otherwise with [`Faulty::inject`]: fail
//! chosen keys or a whole call, panic inside `fetch` (before or after returning its future),
//! answer extra, duplicate or missing keys, be slow, or never complete. It records every call
//! it was asked for ([`Faulty::calls`]) with what it did, and counts its `fetch` futures that
//! are still alive ([`Faulty::live_fetches`]), so that a test can prove that a cancelled run
//! dropped them.
//!
//! Tasks reach the wrapper by its own type, `Faulty::<S>::load(key)`, since a runtime finds
//! sources by type.
//!
//! # Examples
//!
//! ```
//! use asynq_core::{asynq, DataSource, Error, Runtime};
//! use asynq_tests::faults::{Fault, Faulty};
//!
//! struct Double;
//! impl DataSource for Double {
//!     type Key = u32;
//!     type Value = u32;
//!     type Error = std::convert::Infallible;
//!     async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
//!         Ok(keys.iter().map(|&k| (k, 2 * k)).collect())
//!     }
//! }
//!
//! #[asynq]
//! fn get(k: u32) -> Result<u32, Error> {
//!     Faulty::<Double>::load(k).await
//! }
//!
//! let rt = Runtime::new().with_source(Faulty::new(Double));
//! rt.source::<Faulty<Double>>().unwrap().inject(Fault::Missing(vec![2]));
//! let (one, two) = rt.run((get(1), get(2))).unwrap();
//! assert_eq!(one.unwrap(), 2);
//! assert!(matches!(two, Err(Error::MissingKey { .. })));
//! ```

use std::collections::HashSet;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::time::Duration;

use asynq_core::DataSource;

/// One fault to inject. Key lists name keys of the wrapped source.
#[derive(Clone, Debug)]
pub enum Fault<K, V> {
    /// A call holding any of these keys fails with [`Injected`]: every key of that call fails.
    FailKeys(Vec<K>),
    /// The call numbered `n` (from 0, counted since the last [`Faulty::clear`]) fails.
    FailCall(usize),
    /// A call holding any of these keys panics while it is polled.
    Panic(Vec<K>),
    /// A call holding any of these keys panics in `fetch` itself, before returning a future.
    PanicEarly(Vec<K>),
    /// The answer leaves these keys out.
    Missing(Vec<K>),
    /// The answer adds these pairs, asked for or not.
    Extra(Vec<(K, V)>),
    /// These keys are answered a second time with the given value, after the true answer when
    /// `first` is false, before it when `first` is true.
    Duplicate {
        /// The key and its bogus value.
        pairs: Vec<(K, V)>,
        /// Whether the bogus answer comes first (it then wins).
        first: bool,
    },
    /// Every call returns `Pending` this many times (waking itself each time) before it runs.
    Slow(usize),
    /// Every call sleeps this long on a helper thread before it runs (under any executor).
    Sleep(Duration),
    /// A call holding any of these keys never completes and never wakes its task.
    Hang(Vec<K>),
}

/// What the wrapper did with one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// It asked the wrapped source and answered (perhaps with keys left out or added).
    Answered,
    /// It failed with [`Injected`].
    Failed,
    /// It panicked.
    Panicked,
    /// It never completes.
    Hung,
}

/// One call of `fetch`, as the wrapper saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Call<K> {
    /// The keys asked for, in the order given.
    pub keys: Vec<K>,
    /// What the wrapper did.
    pub outcome: Outcome,
    /// When `fetch` was called: a number that grows over the calls of every `Faulty` source
    /// of the process, so that the calls of several sources can be put in the order made.
    pub seq: u64,
}

/// The next [`Call::seq`].
static SEQ: AtomicU64 = AtomicU64::new(0);

/// The error of a call failed on purpose.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Injected;

impl fmt::Display for Injected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("injected failure")
    }
}

impl std::error::Error for Injected {}

/// The message of every injected panic starts with this.
pub const PANIC_MESSAGE: &str = "injected panic";

/// Keep the messages of injected panics (a message starting with [`PANIC_MESSAGE`], or an
/// [`Injected`] payload) out of the test output, from now on in this process;
/// every other panic is reported by the hook that was installed before.
pub fn quiet_injected_panics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let injected = payload.is::<Injected>()
                || payload
                    .downcast_ref::<String>()
                    .is_some_and(|m| m.starts_with(PANIC_MESSAGE));
            if !injected {
                previous(info);
            }
        }));
    });
}

/// The error type of a [`Faulty`] source: [`Injected`] or the wrapped source's own.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A source answering like `S`, with injected faults; see the [module](self) docs.
pub struct Faulty<S: DataSource> {
    inner: S,
    faults: Mutex<Vec<Fault<S::Key, S::Value>>>,
    calls: Mutex<Vec<Call<S::Key>>>,
    live: Arc<AtomicUsize>,
    timeout: Option<Duration>,
}

impl<S: DataSource> fmt::Debug for Faulty<S>
where
    S::Value: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Faulty")
            .field("source", &self.inner.name())
            .field("faults", &*lock(&self.faults))
            .field("calls", &lock(&self.calls).len())
            .field("live_fetches", &self.live_fetches())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panicking test thread must not turn every later check into a poison error.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<S: DataSource> Faulty<S> {
    /// `inner`, with no fault yet.
    pub fn new(inner: S) -> Self {
        Faulty {
            inner,
            faults: Mutex::new(Vec::new()),
            calls: Mutex::new(Vec::new()),
            live: Arc::new(AtomicUsize::new(0)),
            timeout: None,
        }
    }

    /// The same wrapper with a [`fetch_timeout`](DataSource::fetch_timeout) of `limit`.
    pub fn with_timeout(mut self, limit: Duration) -> Self {
        self.timeout = Some(limit);
        self
    }

    /// The wrapped source.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// Add a fault, for every call from now on.
    pub fn inject(&self, fault: Fault<S::Key, S::Value>) -> &Self {
        lock(&self.faults).push(fault);
        self
    }

    /// Remove every fault and forget the calls seen so far: the source is healthy again.
    pub fn clear(&self) {
        lock(&self.faults).clear();
        lock(&self.calls).clear();
    }

    /// The calls seen since the last [`clear`](Faulty::clear), in the order `fetch` was called.
    pub fn calls(&self) -> Vec<Call<S::Key>> {
        lock(&self.calls).clone()
    }

    /// `fetch` futures created and not dropped yet.
    pub fn live_fetches(&self) -> usize {
        self.live.load(Ordering::SeqCst)
    }

    /// What to do with a call of `keys`, numbered `n`.
    fn decide(&self, faults: &[Fault<S::Key, S::Value>], keys: &[S::Key], n: usize) -> Decision {
        let hits = |list: &[S::Key]| keys.iter().any(|k| list.contains(k));
        let mut decision = Decision {
            outcome: Outcome::Answered,
            early_panic: false,
            slow: 0,
            sleep: None,
        };
        for fault in faults {
            match fault {
                Fault::PanicEarly(list) if hits(list) => {
                    decision.outcome = Outcome::Panicked;
                    decision.early_panic = true;
                }
                Fault::Panic(list) if hits(list) && decision.outcome != Outcome::Panicked => {
                    decision.outcome = Outcome::Panicked;
                }
                Fault::Hang(list) if hits(list) && decision.outcome == Outcome::Answered => {
                    decision.outcome = Outcome::Hung;
                }
                Fault::FailKeys(list) if hits(list) && decision.outcome == Outcome::Answered => {
                    decision.outcome = Outcome::Failed;
                }
                Fault::FailCall(m) if *m == n && decision.outcome == Outcome::Answered => {
                    decision.outcome = Outcome::Failed;
                }
                Fault::Slow(polls) => decision.slow += polls,
                Fault::Sleep(d) => decision.sleep = Some(decision.sleep.unwrap_or_default() + *d),
                _ => {}
            }
        }
        decision
    }
}

struct Decision {
    outcome: Outcome,
    early_panic: bool,
    slow: usize,
    sleep: Option<Duration>,
}

/// Counts one live `fetch` future of a [`Faulty`] source.
struct LiveGuard(Arc<AtomicUsize>);

impl LiveGuard {
    fn new(live: &Arc<AtomicUsize>) -> Self {
        live.fetch_add(1, Ordering::SeqCst);
        LiveGuard(Arc::clone(live))
    }
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl<S: DataSource> DataSource for Faulty<S> {
    type Key = S::Key;
    type Value = S::Value;
    type Error = BoxError;

    #[allow(
        clippy::manual_async_fn,
        reason = "`PanicEarly` must panic before the future exists, which `async fn` cannot"
    )]
    fn fetch(
        &self,
        keys: &[S::Key],
    ) -> impl Future<Output = Result<Vec<(S::Key, S::Value)>, BoxError>> + Send {
        let faults = lock(&self.faults).clone();
        let decision = {
            let mut calls = lock(&self.calls);
            let decision = self.decide(&faults, keys, calls.len());
            calls.push(Call {
                keys: keys.to_vec(),
                outcome: decision.outcome,
                seq: SEQ.fetch_add(1, Ordering::SeqCst),
            });
            decision
        };
        if decision.early_panic {
            panic!("{PANIC_MESSAGE} in fetch of {keys:?}");
        }
        let guard = LiveGuard::new(&self.live);
        async move {
            let _guard = guard;
            if decision.slow > 0 {
                YieldTimes(decision.slow).await;
            }
            if let Some(duration) = decision.sleep {
                sleep(duration).await;
            }
            match decision.outcome {
                Outcome::Hung => std::future::pending().await,
                Outcome::Panicked => panic!("{PANIC_MESSAGE} while fetching {keys:?}"),
                Outcome::Failed => Err(Box::new(Injected) as BoxError),
                Outcome::Answered => {
                    let answer = self.inner.fetch(keys).await.map_err(Into::into)?;
                    Ok(doctor(answer, &faults))
                }
            }
        }
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn max_batch_size(&self) -> Option<usize> {
        self.inner.max_batch_size()
    }

    fn fetch_timeout(&self) -> Option<Duration> {
        self.timeout.or_else(|| self.inner.fetch_timeout())
    }
}

/// Apply the answer-shaping faults (missing, extra, duplicate keys) to a true answer.
fn doctor<K: Clone + Eq + std::hash::Hash, V: Clone>(
    answer: Vec<(K, V)>,
    faults: &[Fault<K, V>],
) -> Vec<(K, V)> {
    let missing: HashSet<&K> = faults
        .iter()
        .filter_map(|f| match f {
            Fault::Missing(keys) => Some(keys.iter()),
            _ => None,
        })
        .flatten()
        .collect();
    let asked: HashSet<K> = answer.iter().map(|(k, _)| k.clone()).collect();
    let mut before = Vec::new();
    let mut after = Vec::new();
    for fault in faults {
        match fault {
            Fault::Extra(pairs) => after.extend(pairs.iter().cloned()),
            Fault::Duplicate { pairs, first } => {
                let dups = pairs.iter().filter(|(k, _)| asked.contains(k)).cloned();
                if *first {
                    before.extend(dups);
                } else {
                    after.extend(dups);
                }
            }
            _ => {}
        }
    }
    let kept = answer.into_iter().filter(|(k, _)| !missing.contains(k));
    let mut out: Vec<(K, V)> = before
        .into_iter()
        .filter(|(k, _)| !missing.contains(k))
        .collect();
    out.extend(kept);
    out.extend(after.into_iter().filter(|(k, _)| !missing.contains(k)));
    out
}

/// Returns `Pending` `n` times, waking itself each time: slow in polls, not in time.
struct YieldTimes(usize);

impl Future for YieldTimes {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 == 0 {
            return Poll::Ready(());
        }
        self.0 -= 1;
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Sleep `duration` without a reactor: a helper thread wakes the task.
async fn sleep(duration: Duration) {
    let (tx, rx) = futures::channel::oneshot::channel::<()>();
    std::thread::spawn(move || {
        std::thread::sleep(duration);
        let _ = tx.send(());
    });
    let _ = rx.await;
}

/// Counts live values (task bodies, futures): each [`Live`] from [`LiveCounter::guard`] adds
/// one until it is dropped.
#[derive(Clone, Debug, Default)]
pub struct LiveCounter(Arc<AtomicUsize>);

/// One live value of a [`LiveCounter`].
#[derive(Debug)]
pub struct Live(Arc<AtomicUsize>);

impl LiveCounter {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Count one more live value until the guard drops.
    pub fn guard(&self) -> Live {
        self.0.fetch_add(1, Ordering::SeqCst);
        Live(Arc::clone(&self.0))
    }

    /// Values alive now.
    pub fn live(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}
