//! [`Delayed`]: any source with a fixed delay added to each of its calls, as a store farther
//! away would take (the programs' `--latency-ms`).

use std::time::Duration;

use asynq_core::DataSource;

use crate::offload::offload;

/// A source whose every call first waits `latency` (a sleep on another thread, so the calls of
/// one round wait together), then asks the inner source. With no latency it is the inner
/// source as it is.
///
/// # Examples
///
/// ```
/// use std::time::{Duration, Instant};
///
/// use asynq_core::{DataSource, Runtime, asynq};
/// use asynq_examples::delayed::Delayed;
///
/// struct Double;
/// impl DataSource for Double {
///     type Key = u32;
///     type Value = u32;
///     type Error = String;
///     async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, u32)>, String> {
///         Ok(keys.iter().map(|&k| (k, 2 * k)).collect())
///     }
/// }
///
/// #[asynq]
/// fn sum(keys: Vec<u32>) -> Result<u32, asynq_core::Error> {
///     Delayed::<Double>::load_many(keys).await.into_iter().sum()
/// }
///
/// let rt = Runtime::new().with_source(Delayed::new(Double, Duration::from_millis(20)));
/// let start = Instant::now();
/// assert_eq!(rt.run(sum(vec![1, 2, 3]))?, 12);
/// assert!(start.elapsed() >= Duration::from_millis(20)); // one call, one delay
/// # Ok::<(), asynq_core::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Delayed<S> {
    inner: S,
    latency: Duration,
}

impl<S> Delayed<S> {
    /// `inner`, each call delayed by `latency`.
    pub fn new(inner: S, latency: Duration) -> Self {
        Delayed { inner, latency }
    }

    /// The source it delays.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The delay added to each call.
    pub fn latency(&self) -> Duration {
        self.latency
    }

    async fn wait(&self) {
        if !self.latency.is_zero() {
            let latency = self.latency;
            offload(move || std::thread::sleep(latency)).await;
        }
    }
}

impl<S: DataSource> DataSource for Delayed<S> {
    type Key = S::Key;
    type Value = S::Value;
    type Error = S::Error;

    async fn fetch(&self, keys: &[S::Key]) -> Result<Vec<(S::Key, S::Value)>, S::Error> {
        self.wait().await;
        self.inner.fetch(keys).await
    }

    #[allow(
        clippy::type_complexity,
        reason = "the signature of DataSource::fetch_each, spelled out"
    )]
    async fn fetch_each(
        &self,
        keys: &[S::Key],
    ) -> Result<Vec<(S::Key, Result<S::Value, S::Error>)>, S::Error> {
        self.wait().await;
        self.inner.fetch_each(keys).await
    }

    fn name(&self) -> &str {
        self.inner.name()
    }

    fn max_batch_size(&self) -> Option<usize> {
        self.inner.max_batch_size()
    }

    fn fetch_timeout(&self) -> Option<Duration> {
        self.inner.fetch_timeout()
    }

    fn caches_answers(&self) -> bool {
        self.inner.caches_answers()
    }
}
