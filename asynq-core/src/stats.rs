//! What a run did: rounds, calls and keys per source, cache hits, tasks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Figures of one run, from [`Runtime::last_stats`](crate::Runtime::last_stats) or
/// [`RunFuture::with_stats`](crate::RunFuture::with_stats).
///
/// Use it to check that a page takes the rounds and calls you expect (in tests, say), and to
/// see where a slow page spends its round trips. `Display` prints a compact table.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, DataSource, Runtime};
///
/// struct Double;
/// impl DataSource for Double {
///     type Key = u32;
///     type Value = u32;
///     type Error = std::convert::Infallible;
///     async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
///         Ok(keys.iter().map(|&k| (k, 2 * k)).collect())
///     }
/// }
///
/// #[asynq]
/// fn twice(k: u32) -> Result<u32, asynq_core::Error> {
///     let a = Double::load(k).await?;
///     let b = Double::load(a).await?; // depends on `a`: a second round
///     Ok(b)
/// }
///
/// let rt = Runtime::new().with_source(Double);
/// let out = rt.run((twice(1), twice(2), twice(1))).unwrap();
/// assert_eq!(out.0.unwrap(), 4);
/// let stats = rt.last_stats();
/// assert_eq!(stats.rounds, 2);
/// assert_eq!(stats.calls(), 2);
/// assert_eq!(stats.keys(), 3); // {1, 2}, then {4}: 2 was fetched already
/// assert_eq!(stats.tasks, 3);
/// println!("{stats}");
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Rounds: how many times the run sent a batch of requests and waited for it.
    pub rounds: usize,
    /// Asynq tasks that started in the run.
    pub tasks: usize,
    /// Polls of asynq tasks: each start and each resumption after a wake-up. A run re-polls
    /// only woken tasks, so this grows with the work done, not with rounds times tasks alive.
    pub polls: usize,
    /// Per source the run used, in registration order.
    pub sources: Vec<SourceStats>,
    /// Wall time of the run, from first poll to completion.
    pub elapsed: Duration,
}

/// Figures of one source in one run.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SourceStats {
    /// The source's [`name`](crate::DataSource::name).
    pub name: Arc<str>,
    /// Calls of `fetch`: round trips.
    pub calls: usize,
    /// Keys sent to the source, over all calls.
    pub keys: usize,
    /// Fetch requests made by tasks (awaits of `load`).
    pub requested: usize,
    /// Requests answered from the run's cache without a call.
    pub cache_hits: usize,
    /// Requests that joined a key already pending in the same round.
    pub coalesced: usize,
    /// Keys that failed (source error, missing from the answer, panic).
    pub failed: usize,
}

impl SourceStats {
    pub(crate) fn new(name: Arc<str>) -> Self {
        SourceStats {
            name,
            calls: 0,
            keys: 0,
            requested: 0,
            cache_hits: 0,
            coalesced: 0,
            failed: 0,
        }
    }
}

impl Stats {
    /// Calls over all sources.
    pub fn calls(&self) -> usize {
        self.sources.iter().map(|s| s.calls).sum()
    }

    /// Keys sent over all sources.
    pub fn keys(&self) -> usize {
        self.sources.iter().map(|s| s.keys).sum()
    }

    /// Requests answered from the run's cache, over all sources.
    pub fn cache_hits(&self) -> usize {
        self.sources.iter().map(|s| s.cache_hits).sum()
    }

    /// The figures of the source named `name`, if the run used it.
    pub fn source(&self, name: &str) -> Option<&SourceStats> {
        self.sources.iter().find(|s| &*s.name == name)
    }
}

impl fmt::Display for Stats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "asynq run: {} rounds, {} calls, {} keys, {} cache hits, {} tasks, {:.3} ms",
            self.rounds,
            self.calls(),
            self.keys(),
            self.cache_hits(),
            self.tasks,
            self.elapsed.as_secs_f64() * 1e3
        )?;
        if self.sources.is_empty() {
            return Ok(());
        }
        let width = self
            .sources
            .iter()
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max("source".len());
        write!(
            f,
            "\n  {:<width$}  {:>6}  {:>8}  {:>9}  {:>10}  {:>9}  {:>6}",
            "source", "calls", "keys", "requested", "cache hits", "coalesced", "failed"
        )?;
        for s in &self.sources {
            write!(
                f,
                "\n  {:<width$}  {:>6}  {:>8}  {:>9}  {:>10}  {:>9}  {:>6}",
                s.name, s.calls, s.keys, s.requested, s.cache_hits, s.coalesced, s.failed
            )?;
        }
        Ok(())
    }
}

/// Counters a run keeps outside its sources.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunCounters {
    pub(crate) rounds: usize,
    pub(crate) tasks: usize,
    pub(crate) polls: usize,
}
