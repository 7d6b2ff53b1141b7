//! What a run did: rounds, calls and keys per source, cache hits, tasks.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use smallvec::SmallVec;

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
    /// Per round, in order: what each source was asked, sent and how long it took.
    pub per_round: Vec<RoundStats>,
    /// Per asynq function, the most self time first; empty unless the runtime was built with
    /// [`with_function_stats`](crate::Runtime::with_function_stats).
    pub functions: Vec<FunctionStats>,
    /// Wall time of the run, from first poll to completion.
    pub elapsed: Duration,
}

/// Figures of one round of a run: an element of [`Stats::per_round`].
///
/// A round is one batch of calls, at most one per source and chunk of
/// [`max_batch_size`](crate::DataSource::max_batch_size) keys, sent when every task waits.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, DataSource, RoundSourceStats, RoundStats, Runtime};
/// # struct Double;
/// # impl DataSource for Double {
/// #     type Key = u32; type Value = u32; type Error = std::convert::Infallible;
/// #     async fn fetch(&self, k: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
/// #         Ok(k.iter().map(|&k| (k, 2 * k)).collect())
/// #     }
/// # }
///
/// #[asynq]
/// fn chain(k: u32) -> Result<u32, asynq_core::Error> {
///     let a = Double::load(k).await?;
///     Double::load(a).await // needs `a`: the next round
/// }
///
/// let rt = Runtime::new().with_source(Double);
/// rt.run((chain(1), chain(2), chain(1))).unwrap();
/// let stats = rt.last_stats();
/// let rounds: &[RoundStats] = &stats.per_round;
/// assert_eq!(rounds.len(), 2);
/// let first: &RoundSourceStats = &rounds[0].sources[0];
/// assert_eq!((&*first.name, first.requested, first.keys, first.calls), ("Double", 3, 2, 1));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundStats {
    /// The sources called (or asked and answered from the cache) in the round.
    pub sources: RoundSources,
    /// Wall time from sending the round's calls to the last answer.
    pub wall: Duration,
}

/// The figures of the sources of one round ([`RoundStats::sources`]): a slice of
/// [`RoundSourceStats`] through `Deref`.
///
/// A round that calls one source (every round of a deep recursion, say) keeps its figures
/// inline, without an allocation of its own: a run of 100,000 rounds keeps 100,000 of these.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct RoundSources(SmallVec<[RoundSourceStats; 1]>);

impl RoundSources {
    pub(crate) fn new(sources: SmallVec<[RoundSourceStats; 1]>) -> Self {
        RoundSources(sources)
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [RoundSourceStats] {
        &mut self.0
    }
}

impl std::ops::Deref for RoundSources {
    type Target = [RoundSourceStats];
    fn deref(&self) -> &[RoundSourceStats] {
        &self.0
    }
}

impl<'a> IntoIterator for &'a RoundSources {
    type Item = &'a RoundSourceStats;
    type IntoIter = std::slice::Iter<'a, RoundSourceStats>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Debug for RoundSources {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.0.iter()).finish()
    }
}

/// Figures of one source in one round: an element of [`RoundStats::sources`] (see the
/// example of [`RoundStats`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RoundSourceStats {
    /// The source's [`name`](crate::DataSource::name).
    pub name: Arc<str>,
    /// Requests made by tasks since this source was last called (answered from the cache,
    /// coalesced, or sent).
    pub requested: usize,
    /// Keys sent: the requests left after deduplication and the cache.
    pub keys: usize,
    /// Calls of `fetch`.
    pub calls: usize,
    /// Wall time from sending the round's calls to this source's last answer.
    pub wall: Duration,
}

/// Figures of one asynq function in one run: an element of [`Stats::functions`], collected
/// when the runtime was built with
/// [`with_function_stats`](crate::Runtime::with_function_stats).
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, FunctionStats, Runtime};
///
/// #[asynq]
/// fn leaf(x: u32) -> u32 {
///     x * 2
/// }
///
/// #[asynq]
/// fn page() -> u32 {
///     let xs = (0..4).map(leaf).collect::<Vec<_>>().await;
///     xs.into_iter().sum()
/// }
///
/// let rt = Runtime::new().with_function_stats(true);
/// assert_eq!(rt.run(page()).unwrap(), 12);
/// let stats = rt.last_stats();
/// let leaf: &FunctionStats = stats.functions.iter().find(|f| f.name.ends_with("::leaf")).unwrap();
/// assert_eq!((leaf.tasks, leaf.polls), (4, 4));
/// // The slowest functions first, by their own time (not the time they waited for fetches).
/// assert!(stats.functions.windows(2).all(|w| w[0].self_time >= w[1].self_time));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionStats {
    /// The function's path (`my_crate::pages::profile`).
    pub name: &'static str,
    /// Tasks of the function that started.
    pub tasks: usize,
    /// Polls of those tasks: starts and resumptions.
    pub polls: usize,
    /// Time spent in the function's own code: its polls, minus the polls of the asynq
    /// functions it awaited within them. Never the time it waited for fetches.
    pub self_time: Duration,
}

/// Figures of one source in one run: an element of [`Stats::sources`], found by name with
/// [`Stats::source`].
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, DataSource, Runtime, SourceStats};
/// # struct Double;
/// # impl DataSource for Double {
/// #     type Key = u32; type Value = u32; type Error = std::convert::Infallible;
/// #     async fn fetch(&self, k: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
/// #         Ok(k.iter().map(|&k| (k, 2 * k)).collect())
/// #     }
/// # }
///
/// #[asynq]
/// fn twice(k: u32) -> Result<u32, asynq_core::Error> {
///     let (a, b) = (Double::load(k), Double::load(k)).await; // one key, asked twice
///     Ok(a? + Double::load(k).await? + b?) // and once more, from the cache
/// }
///
/// let rt = Runtime::new().with_source(Double);
/// assert_eq!(rt.run(twice(5)).unwrap(), 30);
/// let stats = rt.last_stats();
/// let double: &SourceStats = stats.source("Double").unwrap();
/// assert_eq!((double.calls, double.keys, double.requested), (1, 1, 3));
/// assert_eq!((double.coalesced, double.cache_hits, double.failed), (1, 1, 0));
/// ```
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
            return self.fmt_functions(f);
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
        if !self.per_round.is_empty() {
            write!(
                f,
                "\n  {:>5}  {:<width$}  {:>9}  {:>8}  {:>6}  {:>9}",
                "round", "source", "requested", "sent", "calls", "wall ms"
            )?;
            // A long run shows its first and last rounds.
            let n = self.per_round.len();
            for (i, round) in self.per_round.iter().enumerate() {
                if n > ROUNDS_SHOWN && i == ROUNDS_SHOWN / 2 {
                    write!(
                        f,
                        "\n  {:>5}  ({} rounds not shown)",
                        "...",
                        n - ROUNDS_SHOWN
                    )?;
                }
                if n > ROUNDS_SHOWN && i >= ROUNDS_SHOWN / 2 && i < n - ROUNDS_SHOWN / 2 {
                    continue;
                }
                for s in &round.sources {
                    write!(
                        f,
                        "\n  {:>5}  {:<width$}  {:>9}  {:>8}  {:>6}  {:>9.3}",
                        i + 1,
                        s.name,
                        s.requested,
                        s.keys,
                        s.calls,
                        s.wall.as_secs_f64() * 1e3
                    )?;
                }
            }
        }
        self.fmt_functions(f)
    }
}

/// Rounds listed by `Stats`' `Display`; the middle of a longer run is elided.
const ROUNDS_SHOWN: usize = 10;
/// Functions listed by `Stats`' `Display`, the most self time first.
const FUNCTIONS_SHOWN: usize = 10;

impl Stats {
    fn fmt_functions(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.functions.is_empty() {
            return Ok(());
        }
        let width = self
            .functions
            .iter()
            .take(FUNCTIONS_SHOWN)
            .map(|s| s.name.len())
            .max()
            .unwrap_or(0)
            .max("function".len());
        write!(
            f,
            "\n  {:<width$}  {:>8}  {:>8}  {:>9}",
            "function", "tasks", "polls", "self ms"
        )?;
        for s in self.functions.iter().take(FUNCTIONS_SHOWN) {
            write!(
                f,
                "\n  {:<width$}  {:>8}  {:>8}  {:>9.3}",
                s.name,
                s.tasks,
                s.polls,
                s.self_time.as_secs_f64() * 1e3
            )?;
        }
        if self.functions.len() > FUNCTIONS_SHOWN {
            write!(
                f,
                "\n  ... and {} more functions",
                self.functions.len() - FUNCTIONS_SHOWN
            )?;
        }
        Ok(())
    }
}

/// Per-function figures of a run, when the runtime collects them.
#[derive(Debug, Default)]
pub(crate) struct Profiler {
    functions: std::collections::HashMap<&'static str, FunctionStats>,
    /// Per poll in progress: when it started, and the time of the polls nested in it.
    stack: Vec<(std::time::Instant, Duration)>,
}

impl Profiler {
    /// A task of `name` starts a poll.
    pub(crate) fn enter(&mut self, name: &'static str, first: bool) {
        let stats = self.functions.entry(name).or_insert(FunctionStats {
            name,
            tasks: 0,
            polls: 0,
            self_time: Duration::ZERO,
        });
        stats.tasks += usize::from(first);
        stats.polls += 1;
        self.stack.push((std::time::Instant::now(), Duration::ZERO));
    }

    /// The poll of `name` that started last ends.
    pub(crate) fn exit(&mut self, name: &'static str) {
        let Some((start, nested)) = self.stack.pop() else {
            return;
        };
        let total = start.elapsed();
        if let Some(stats) = self.functions.get_mut(name) {
            stats.self_time += total.saturating_sub(nested);
        }
        if let Some((_, parent_nested)) = self.stack.last_mut() {
            *parent_nested += total;
        }
    }

    /// The figures, the most self time first.
    pub(crate) fn finish(&mut self) -> Vec<FunctionStats> {
        let mut functions: Vec<FunctionStats> = self.functions.drain().map(|(_, s)| s).collect();
        functions.sort_by(|a, b| b.self_time.cmp(&a.self_time).then(a.name.cmp(b.name)));
        functions
    }
}

/// Counters a run keeps outside its sources.
#[derive(Clone, Debug, Default)]
pub(crate) struct RunCounters {
    pub(crate) rounds: usize,
    pub(crate) tasks: usize,
    pub(crate) polls: usize,
}
