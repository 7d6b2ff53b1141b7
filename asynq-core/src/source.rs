//! Data sources and fetch requests. The per-run cache behind them is in `cache.rs`.

use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::hash::Hash;
use std::marker::PhantomData;
use std::time::Duration;

/// A store that answers many keys in one call: a table, a cache server, a service.
///
/// Implement `fetch` to answer a batch of distinct keys in one round trip. The runtime calls
/// it at the end of each round with every key that the run's tasks asked for and that the
/// run's cache cannot answer, split into chunks of at most
/// [`max_batch_size`](DataSource::max_batch_size) keys. Calls to different sources in the same
/// round run concurrently.
///
/// `fetch` answers with `(key, value)` pairs in any order. A key asked for but missing from the
/// answer fails the tasks that wait on it with [`Error::MissingKey`](crate::Error::MissingKey); a source whose rows may
/// be absent should use `Option<Row>` as its `Value` and answer `None` instead. Keys that were
/// not asked for are ignored; when a key is answered twice, the first answer wins. An `Err`
/// (or a panic) fails exactly the keys of that call with [`Error::Source`](crate::Error::Source). Answers are cached
/// for the rest of the run; failures are not, so a key asked for again after it failed (by
/// [`retry`](crate::tools::retry), say) is fetched again.
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use asynq_core::{asynq, DataSource, Runtime};
///
/// struct Squares;
/// impl DataSource for Squares {
///     type Key = u64;
///     type Value = u64;
///     type Error = std::convert::Infallible;
///     async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
///         Ok(keys.iter().map(|&k| (k, k * k)).collect())
///     }
/// }
///
/// #[asynq]
/// fn sum_of_squares(n: u64) -> Result<u64, asynq_core::Error> {
///     let squares = Squares::load_many(1..=n).await; // one call with n keys
///     squares.into_iter().sum()
/// }
///
/// let rt = Runtime::new().with_source(Squares);
/// assert_eq!(rt.run(sum_of_squares(3)).unwrap(), 14);
/// assert_eq!(rt.last_stats().calls(), 1);
/// ```
pub trait DataSource: Send + Sync + 'static {
    /// What a row is looked up by. Its `Debug` form names it in errors.
    type Key: Clone + Eq + Hash + Debug + Send + Sync + 'static;
    /// What a key maps to. Cloned to every task that asked for the key.
    type Value: Clone + Send + 'static;
    /// The source's own error; `std::io::Error`, any `std::error::Error`, `String` or
    /// `anyhow::Error` all fit.
    type Error: Into<Box<dyn std::error::Error + Send + Sync + 'static>> + Send + 'static;

    /// Answer a batch of distinct keys in one round trip.
    #[allow(
        clippy::type_complexity,
        reason = "the signature implementors write, spelled out"
    )]
    fn fetch(
        &self,
        keys: &[Self::Key],
    ) -> impl Future<Output = Result<Vec<(Self::Key, Self::Value)>, Self::Error>> + Send;

    /// Answer a batch like [`fetch`](DataSource::fetch), where each key may fail on its own.
    ///
    /// The runtime always calls this method; by default it is `fetch` with every answer `Ok`.
    /// Override it for stores whose keys fail independently, such as a sharded cache with one
    /// server down: an `Err` for a key fails only the tasks waiting on that key (with
    /// [`Error::Source`](crate::Error::Source) holding it), while an `Err` for the whole call still fails all its keys.
    /// `fetch` stays required, for callers that want the plain answer.
    ///
    /// # Examples
    ///
    /// ```
    /// use asynq_core::{asynq, DataSource, Error, Runtime};
    ///
    /// /// Two shards; the odd one is down.
    /// struct Shards;
    /// impl DataSource for Shards {
    ///     type Key = u32;
    ///     type Value = u32;
    ///     type Error = String;
    ///     async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, u32)>, String> {
    ///         self.fetch_each(keys).await?.into_iter().map(|(k, v)| Ok((k, v?))).collect()
    ///     }
    ///     async fn fetch_each(&self, keys: &[u32]) -> Result<Vec<(u32, Result<u32, String>)>, String> {
    ///         Ok(keys
    ///             .iter()
    ///             .map(|&k| (k, if k % 2 == 0 { Ok(k * 10) } else { Err("shard 1 is down".into()) }))
    ///             .collect())
    ///     }
    /// }
    ///
    /// #[asynq]
    /// fn two(a: u32, b: u32) -> (Result<u32, Error>, Result<u32, Error>) {
    ///     (Shards::load(a), Shards::load(b)).await // one call with both keys
    /// }
    ///
    /// let (even, odd) = Runtime::new().with_source(Shards).run(two(2, 3)).unwrap();
    /// assert_eq!(even.unwrap(), 20);
    /// assert!(odd.unwrap_err().to_string().ends_with("shard 1 is down"));
    /// ```
    #[allow(
        clippy::type_complexity,
        reason = "the signature implementors write, spelled out"
    )]
    fn fetch_each(
        &self,
        keys: &[Self::Key],
    ) -> impl Future<
        Output = Result<Vec<(Self::Key, Result<Self::Value, Self::Error>)>, Self::Error>,
    > + Send {
        async move {
            // With `Error = Infallible` the answer keeps its allocation (same layout).
            let answers = self.fetch(keys).await?;
            Ok(answers.into_iter().map(|(k, v)| (k, Ok(v))).collect())
        }
    }

    /// The name used in statistics and errors; the type's name by default.
    fn name(&self) -> &str {
        short_type_name::<Self>()
    }

    /// The largest number of keys one call may carry; unlimited by default.
    ///
    /// A round with more keys makes `ceil(keys / max)` calls. `Some(0)` is taken as 1.
    fn max_batch_size(&self) -> Option<usize> {
        None
    }

    /// How long one call of `fetch` may take; unlimited by default.
    ///
    /// A call still unanswered after this long is dropped, the source's future with it, and
    /// every key it carried fails with [`Error::Source`](crate::Error::Source) holding a [`FetchTimeout`]; the rest
    /// of the run goes on. Set it for stores that can hang: it bounds a run under any
    /// executor, since the timer runs on a helper thread of its own, not on a reactor.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use asynq_core::{asynq, DataSource, Error, FetchTimeout, Runtime};
    ///
    /// struct Hangs;
    /// impl DataSource for Hangs {
    ///     type Key = u32;
    ///     type Value = u32;
    ///     type Error = std::convert::Infallible;
    ///     async fn fetch(&self, _keys: &[u32]) -> Result<Vec<(u32, u32)>, Self::Error> {
    ///         std::future::pending().await // a store that never answers
    ///     }
    ///     fn fetch_timeout(&self) -> Option<Duration> {
    ///         Some(Duration::from_millis(10))
    ///     }
    /// }
    ///
    /// #[asynq]
    /// fn get(k: u32) -> Result<u32, Error> {
    ///     Hangs::load(k).await
    /// }
    ///
    /// let err = Runtime::new().with_source(Hangs).run(get(1)).unwrap_err();
    /// let Error::Source { error, .. } = &err else { panic!("{err}") };
    /// assert!(error.downcast_ref::<FetchTimeout>().is_some());
    /// ```
    fn fetch_timeout(&self) -> Option<Duration> {
        None
    }

    /// Whether the run keeps this source's answers for later requests; true by default.
    ///
    /// Return `false` for values that must always be fresh (a counter, a lock, a clock): the
    /// keys of one round are still deduplicated into one call, but a key asked for again in a
    /// later round of the same run is fetched again. Failures are never kept, whatever this
    /// says. Values primed with [`cache::prime`](crate::cache::prime) are kept until cleared.
    fn caches_answers(&self) -> bool {
        true
    }

    /// A request for one key: await it in an asynq function to get
    /// `Result<Self::Value, asynq_core::Error>`.
    fn load(key: Self::Key) -> Load<Self>
    where
        Self: Sized,
    {
        Load {
            state: LoadState::New(key),
            _source: PhantomData,
        }
    }

    /// Requests for many keys, to await together (one call per round for all of them).
    fn load_many(keys: impl IntoIterator<Item = Self::Key>) -> Vec<Load<Self>>
    where
        Self: Sized,
    {
        keys.into_iter().map(Self::load).collect()
    }
}

/// The last segment of a type's path, generic arguments kept (`Users`, `Kv<String>`).
/// What one call of [`DataSource::fetch`] returns.
pub(crate) type FetchOutput<S> =
    Result<Vec<(<S as DataSource>::Key, <S as DataSource>::Value)>, <S as DataSource>::Error>;

/// What one call of [`DataSource::fetch_each`] returns.
pub(crate) type EachOutput<S> = Result<
    Vec<(
        <S as DataSource>::Key,
        Result<<S as DataSource>::Value, <S as DataSource>::Error>,
    )>,
    <S as DataSource>::Error,
>;

pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let end = full.find('<').unwrap_or(full.len());
    match full[..end].rfind("::") {
        Some(i) => &full[i + 2..],
        None => full,
    }
}

/// A fetch request for one key of source `S`, made by [`DataSource::load`].
///
/// Awaiting it inside an asynq function suspends the task until the end of the round, when the
/// key is fetched together with every other key requested in the round. A key already fetched
/// in this run is answered at once from the run's cache.
#[must_use = "fetch requests do nothing unless awaited"]
pub struct Load<S: DataSource> {
    pub(crate) state: LoadState<S::Key>,
    pub(crate) _source: PhantomData<fn() -> S>,
}

/// Where a fetch request is; its future is in `fetch.rs`.
///
/// The key is held until the first poll sends it, in the place of the slot the request waits
/// on after: a request for a word-sized key is two words, where a key beside the state took
/// four, and a wide round streams every waiting task's future through the cache twice.
pub(crate) enum LoadState<K> {
    New(K),
    Waiting { source: u32, slot: u32 },
    Done,
}

impl<S: DataSource> Load<S> {
    /// The key this request asks for (until it has been sent).
    pub fn key(&self) -> Option<&S::Key> {
        match &self.state {
            LoadState::New(key) => Some(key),
            _ => None,
        }
    }
}

impl<S: DataSource> Debug for Load<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut debug = f.debug_struct("Load");
        debug
            .field("source", &short_type_name::<S>())
            .field("key", &self.key());
        match self.state {
            LoadState::New(_) => debug.field("state", &"New"),
            LoadState::Waiting { source, slot } => debug
                .field("state", &"Waiting")
                .field("source", &source)
                .field("slot", &slot),
            LoadState::Done => debug.field("state", &"Done"),
        };
        debug.finish()
    }
}

// A `Load` is never pinned structurally: it holds its key by value only until the first poll.
impl<S: DataSource> Unpin for Load<S> {}

/// The error of keys whose call outlived its source's [`fetch_timeout`].
///
/// It is the `error` of their [`Error::Source`](crate::Error::Source); find it with `downcast_ref` to tell a timeout
/// from the source's own failures (see [`DataSource::fetch_timeout`]).
///
/// [`fetch_timeout`]: DataSource::fetch_timeout
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FetchTimeout {
    limit: Duration,
}

impl FetchTimeout {
    pub(crate) fn new(limit: Duration) -> Self {
        FetchTimeout { limit }
    }

    /// The source's timeout that the call exceeded.
    pub fn limit(&self) -> Duration {
        self.limit
    }
}

impl std::fmt::Display for FetchTimeout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fetch timed out after {:?}", self.limit)
    }
}

impl std::error::Error for FetchTimeout {}

pub(crate) fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "(a non-string panic payload)".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_names() {
        assert_eq!(short_type_name::<String>(), "String");
        assert_eq!(short_type_name::<Vec<u8>>(), "Vec<u8>");
        assert_eq!(short_type_name::<u32>(), "u32");
    }
}
