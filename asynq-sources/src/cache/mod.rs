//! What the cache sources share: the [`Cache`] trait (a cache that answers many keys in one
//! round trip per server), value [`Codec`]s, [`CacheKey`]s, the [`Backoff`] of a failing
//! server, and [`CacheError`], the crate's caches' error.
//!
//! The crate's caches are `memcached::MemcachedClient` (feature `memcached`) and
//! `redis::RedisClient` (feature `redis`); a cache of your own becomes one by implementing
//! [`Cache`]. [`Cached`](crate::Cached) puts a cache in front of any source; a
//! [`CacheSource`] reads a cache alone.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

mod breaker;
mod codec;
mod error;
mod key;
mod source;

#[cfg(any(feature = "memcached", feature = "redis"))]
pub(crate) use breaker::{BackedOff, Breaker, Ticket};
pub use breaker::{Backoff, ServerHealth};
#[cfg(feature = "bincode")]
pub use codec::Bincode;
#[cfg(feature = "json")]
pub use codec::Json;
pub use codec::{Codec, CodecError, Optional, Raw, Utf8};
pub use error::CacheError;
pub use key::{CacheKey, escape_into};
pub use source::CacheSource;

/// A task run in the background on a cache's runtime.
pub type Background = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// One entry to store: its key, its value, and how long the cache keeps it (`None`: until
/// it is evicted).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key, as the cache names it.
    pub key: String,
    /// The stored bytes.
    pub value: Vec<u8>,
    /// Its time to live.
    pub ttl: Option<Duration>,
}

/// How [`Cache::store_many`] stores: over whatever is there, or only where nothing is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreMode {
    /// Store, replacing any entry (memcached `set`, Redis `SET`).
    Set,
    /// Store only where the key has no entry (memcached `add`, Redis `SET NX`); an entry
    /// that is there already is left alone, and that is not an error.
    Add,
}

/// A cache that answers many keys in one round trip per server: what a cache-aside source
/// reads first and writes back to.
///
/// Every future it returns owns what it needs (`'static`) and may be polled by any executor:
/// the crate's caches run their I/O on a tokio runtime of their own and hand the result back.
pub trait Cache: fmt::Debug + Send + Sync + 'static {
    /// Why a server could not answer; cloned to each key it failed.
    type Error: std::error::Error + Clone + Send + Sync + 'static;

    /// The cache's name, for statistics and logs: `memcached`, `redis`.
    fn name(&self) -> &str;

    /// The longest key it takes, in bytes (250 on memcached).
    fn max_key_len(&self) -> usize;

    /// The largest value it stores, in bytes (the item size limit).
    fn max_value_len(&self) -> usize;

    /// Each key's entry, in the order of `keys`: `Ok(None)` when it has none, `Err` when its
    /// server failed. One round trip per server holding some of the keys, servers at once.
    fn get_many(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Vec<Result<Option<Vec<u8>>, Self::Error>>> + Send + use<Self>;

    /// Store `entries` as `mode` says: one pipelined exchange per server, servers at once.
    /// Fails with the first server that failed.
    fn store_many(
        &self,
        entries: Vec<Entry>,
        mode: StoreMode,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + use<Self>;

    /// Remove the entries of `keys` (a key without one is not an error).
    fn delete_many(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + use<Self>;

    /// The error of a value of `key` that the codec could not read (`error` says why).
    fn decode_error(&self, key: &str, error: CodecError) -> Self::Error;

    /// Run `task` in the background, on the cache's runtime (write-backs that must not hold
    /// up a round).
    fn spawn(&self, task: Background);
}
