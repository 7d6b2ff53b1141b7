//! What a [`Cached`](super::Cached) source counts: per tier, per key and per call.

use std::sync::atomic::{AtomicU64, Ordering};

/// Counts of a cache-aside source since it was made (or since
/// [`reset_stats`](super::Cached::reset_stats)): what the cache answered, what went to the
/// origin, what was written back.
///
/// Every key a round asks for is either sent to the cache (`cache_hits + cache_misses` of
/// them) or not cacheable (`uncacheable`); the origin is asked for the cache's misses and the
/// uncacheable keys, in `origin_calls` calls.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct CacheStats {
    /// Multi-gets sent to the cache (one per round with cacheable keys).
    pub cache_calls: u64,
    /// Keys the cache answered (negative entries included).
    pub cache_hits: u64,
    /// Of the hits, keys the cache holds as absent rows (negative caching).
    pub negative_hits: u64,
    /// Keys the cache did not answer: absent, unreadable by the codec, or on a failed server.
    pub cache_misses: u64,
    /// Of the misses, keys whose cache server failed or was backed off.
    pub cache_errors: u64,
    /// Of the misses, keys whose cached bytes the codec could not read (overwritten).
    pub decode_errors: u64,
    /// Keys never sent to the cache: their cache key would be longer than it takes.
    pub uncacheable: u64,
    /// Calls to the origin (one per round with misses, more only past its batch limit).
    pub origin_calls: u64,
    /// Keys sent to the origin.
    pub origin_keys: u64,
    /// Entries written back to the cache (stores sent, in the background).
    pub written_back: u64,
    /// Entries not written back: too large, not encodable, invalidated while being read,
    /// or dropped because too many write-backs were pending.
    pub not_written_back: u64,
    /// Write-backs (one per round) that the cache failed.
    pub write_back_failures: u64,
    /// Times the cache went down (logged once each) and the source fell back on the origin.
    pub outages: u64,
}

/// The live counters behind [`CacheStats`].
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) cache_calls: AtomicU64,
    pub(super) cache_hits: AtomicU64,
    pub(super) negative_hits: AtomicU64,
    pub(super) cache_misses: AtomicU64,
    pub(super) cache_errors: AtomicU64,
    pub(super) decode_errors: AtomicU64,
    pub(super) uncacheable: AtomicU64,
    pub(super) origin_calls: AtomicU64,
    pub(super) origin_keys: AtomicU64,
    pub(super) written_back: AtomicU64,
    pub(super) not_written_back: AtomicU64,
    pub(super) write_back_failures: AtomicU64,
    pub(super) outages: AtomicU64,
}

/// Add `n` to `counter`.
pub(super) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

impl Counters {
    /// Every counter as it is now.
    pub(super) fn snapshot(&self) -> CacheStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CacheStats {
            cache_calls: get(&self.cache_calls),
            cache_hits: get(&self.cache_hits),
            negative_hits: get(&self.negative_hits),
            cache_misses: get(&self.cache_misses),
            cache_errors: get(&self.cache_errors),
            decode_errors: get(&self.decode_errors),
            uncacheable: get(&self.uncacheable),
            origin_calls: get(&self.origin_calls),
            origin_keys: get(&self.origin_keys),
            written_back: get(&self.written_back),
            not_written_back: get(&self.not_written_back),
            write_back_failures: get(&self.write_back_failures),
            outages: get(&self.outages),
        }
    }

    /// Every counter back to zero.
    pub(super) fn reset(&self) {
        for c in [
            &self.cache_calls,
            &self.cache_hits,
            &self.negative_hits,
            &self.cache_misses,
            &self.cache_errors,
            &self.decode_errors,
            &self.uncacheable,
            &self.origin_calls,
            &self.origin_keys,
            &self.written_back,
            &self.not_written_back,
            &self.write_back_failures,
            &self.outages,
        ] {
            c.store(0, Ordering::Relaxed);
        }
    }
}
