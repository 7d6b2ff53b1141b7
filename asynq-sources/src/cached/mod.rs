//! [`Cached`]: a cache in front of any source (cache-aside), batched in the same round.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use asynq_core::DataSource;

use crate::cache::{Cache, CacheKey, Codec, escape_into};

mod round;
mod stats;
#[cfg(test)]
mod tests;
mod write_back;

pub use stats::CacheStats;
use stats::Counters;
use write_back::WriteBacks;

/// The bytes a negative entry (an absent row) is stored as. A value whose encoding is exactly
/// these bytes is never written back (it is read from the origin every time), so that it
/// cannot be taken for an absent row.
pub(crate) const ABSENT: &[u8] = b"\0asynq:absent\0";

/// The time to live of written-back entries unless set: 10 minutes.
pub const DEFAULT_TTL: Duration = Duration::from_secs(600);

/// Why a [`Cached`] source could not answer a key. The cache failing is never one: its keys
/// are read from the origin.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CachedError {
    /// The origin failed the key, or the call that carried it.
    Origin {
        /// The origin source's name.
        origin: String,
        /// What it said.
        error: Arc<dyn std::error::Error + Send + Sync>,
    },
    /// [`Cached::invalidate`] could not delete the entries: the cache failed.
    Invalidate {
        /// The cache's name.
        cache: String,
        /// What it said.
        error: Arc<dyn std::error::Error + Send + Sync>,
    },
}

impl fmt::Display for CachedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CachedError::Origin { origin, error } => write!(f, "origin `{origin}`: {error}"),
            CachedError::Invalidate { cache, error } => {
                write!(f, "invalidating in the cache ({cache}): {error}")
            }
        }
    }
}

impl std::error::Error for CachedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // The inner error's message is part of this one's: its own source comes next.
        match self {
            CachedError::Origin { error, .. } | CachedError::Invalidate { error, .. } => {
                error.source()
            }
        }
    }
}

/// The settings of a [`Cached`] source.
#[derive(Clone, Debug)]
struct Settings {
    prefix: String,
    ttl: Option<Duration>,
    negative_ttl: Option<Duration>,
}

/// A cache-aside source: `origin` with `cache` in front, values stored by `codec`.
///
/// Each round makes one multi-get to the cache with every key of the round (one round trip
/// per cache server, servers at once) and one call to the origin with every key the cache did
/// not answer, in the same round. The origin's answers are written back in the background
/// (the round does not wait), with a time to live ([`DEFAULT_TTL`] unless
/// [`with_ttl`](Cached::with_ttl) says otherwise), by an *add*: an entry stored meanwhile by
/// someone else is kept. Absent rows are cached only when
/// [`with_negative_ttl`](Cached::with_negative_ttl) turns it on.
///
/// A cache that fails (a server down, backed off, timing out) costs its keys a trip to the
/// origin, never a failed key: the outage is logged once when it starts and once when it
/// ends (a `log` warning) and counted in [`stats`](Cached::stats). A cached value the codec
/// cannot read is a miss, and is overwritten.
///
/// After writing to the origin, call [`invalidate`](Cached::invalidate) with the keys
/// changed: once it is done, no later round serves their old values, even from a write-back
/// of a read that was in flight meanwhile. (An asynq run keeps the answers it has fetched
/// for its own duration; invalidation concerns later runs.)
///
/// Cache keys are `prefix` + the key's text ([`CacheKey`]) with bytes a cache protocol
/// cannot carry escaped; the prefix is the origin's name and `:` unless set. Keys too long
/// for the cache go to the origin every time, counted as `uncacheable`.
///
/// Errors of the origin keep their per-key shape: a key the origin failed fails alone, with
/// [`CachedError::Origin`].
///
/// # Examples
///
/// See the crate's guide `docs/caching.md`, and the tests over real memcached and Redis
/// servers.
pub struct Cached<C, O, K> {
    cache: Arc<C>,
    origin: O,
    codec: K,
    name: String,
    settings: Settings,
    counters: Arc<Counters>,
    write_backs: Arc<WriteBacks>,
    /// The cache failed in its latest round: logged when it starts and when it ends.
    down: AtomicBool,
}

impl<C, O, K> fmt::Debug for Cached<C, O, K>
where
    C: fmt::Debug,
    K: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cached")
            .field("name", &self.name)
            .field("cache", &self.cache)
            .field("codec", &self.codec)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl<C, O, K> Cached<C, O, K>
where
    C: Cache,
    O: DataSource,
    O::Key: CacheKey,
    K: Codec<Value = O::Value>,
{
    /// `origin` with `cache` in front, its values stored as `codec` writes them; named
    /// `<cache>+<origin>` (`memcached+users`) in statistics and errors.
    pub fn new(cache: C, origin: O, codec: K) -> Self {
        let name = format!("{}+{}", cache.name(), origin.name());
        let mut prefix = String::new();
        escape_into(origin.name(), &mut prefix);
        prefix.push(':');
        Cached {
            cache: Arc::new(cache),
            origin,
            codec,
            name,
            settings: Settings {
                prefix,
                ttl: Some(DEFAULT_TTL),
                negative_ttl: None,
            },
            counters: Arc::default(),
            write_backs: Arc::default(),
            down: AtomicBool::new(false),
        }
    }

    /// The same source with its cache keys starting with `prefix` (escaped as keys are):
    /// different sources, data sets or versions of a format must use different prefixes.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.settings.prefix.clear();
        escape_into(prefix, &mut self.settings.prefix);
        self
    }

    /// The same source writing back entries that live `ttl` (`None`: until evicted).
    pub fn with_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.settings.ttl = ttl.filter(|t| !t.is_zero());
        self
    }

    /// The same source caching absent rows too, for `ttl` (usually shorter than values'):
    /// a key the origin left out of its answer, or answered with the codec's absent value
    /// (`None` with [`Optional`](crate::cache::Optional)), is stored as absent, and a later
    /// round answers it from the cache as the origin would.
    pub fn with_negative_ttl(mut self, ttl: Duration) -> Self {
        self.settings.negative_ttl = Some(ttl.max(Duration::from_secs(1)));
        self
    }

    /// The cache.
    pub fn cache(&self) -> &C {
        &self.cache
    }

    /// The origin.
    pub fn origin(&self) -> &O {
        &self.origin
    }

    /// The counts since the source was made or reset.
    pub fn stats(&self) -> CacheStats {
        self.counters.snapshot()
    }

    /// Start counting from zero again.
    pub fn reset_stats(&self) {
        self.counters.reset();
    }

    /// The cache key of `key`, or `None` when it would be too long for the cache (such a
    /// key is always read from the origin).
    pub fn cache_key(&self, key: &O::Key) -> Option<String> {
        let mut text = String::new();
        key.write_cache_key(&mut text);
        let mut out = self.settings.prefix.clone();
        escape_into(&text, &mut out);
        (out.len() <= self.cache.max_key_len()).then_some(out)
    }

    /// Delete the cache entries of `keys`, after a write to the origin: done when the cache
    /// has deleted them and no write-back of an older read can store them again.
    ///
    /// Fails with [`CachedError::Invalidate`] when the cache could not delete them (then a
    /// stale value may be served until its time to live ends).
    pub fn invalidate(
        &self,
        keys: &[O::Key],
    ) -> impl Future<Output = Result<(), CachedError>> + Send + 'static {
        self.write_backs.advance();
        let keys: Vec<String> = keys.iter().filter_map(|k| self.cache_key(k)).collect();
        let (cache, write_backs) = (Arc::clone(&self.cache), Arc::clone(&self.write_backs));
        async move {
            if keys.is_empty() {
                return Ok(());
            }
            // After the write-back in flight, if any: its store cannot land after the delete.
            let _turn = write_backs.gate.lock().await;
            cache
                .delete_many(keys)
                .await
                .map_err(|e| CachedError::Invalidate {
                    cache: cache.name().to_string(),
                    error: Arc::new(e),
                })
        }
    }

    /// Done when every write-back started so far has been stored (or has failed): before a
    /// program exits, so that the next one finds the cache warm.
    pub fn write_backs_done(&self) -> impl Future<Output = ()> + Send + 'static {
        self.write_backs.settled()
    }
}

impl<C, O, K> DataSource for Cached<C, O, K>
where
    C: Cache,
    O: DataSource,
    O::Key: CacheKey,
    K: Codec<Value = O::Value>,
{
    type Key = O::Key;
    type Value = O::Value;
    type Error = CachedError;

    async fn fetch(&self, keys: &[O::Key]) -> Result<Vec<(O::Key, O::Value)>, CachedError> {
        self.round(keys)
            .await
            .into_iter()
            .map(|(key, value)| Ok((key, value?)))
            .collect()
    }

    #[allow(
        clippy::type_complexity,
        reason = "the signature of DataSource::fetch_each, spelled out"
    )]
    async fn fetch_each(
        &self,
        keys: &[O::Key],
    ) -> Result<Vec<(O::Key, Result<O::Value, CachedError>)>, CachedError> {
        Ok(self.round(keys).await)
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn fetch_timeout(&self) -> Option<Duration> {
        self.origin.fetch_timeout()
    }

    fn caches_answers(&self) -> bool {
        self.origin.caches_answers()
    }
}
