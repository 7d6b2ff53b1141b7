//! [`MemcachedKv`]: memcached as the FEED-1 page's `Value = String` store, a cache in front
//! of an origin.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asynq_core::DataSource;
use futures::executor::block_on;

use super::{McError, MemcachedClient};
use crate::feed::Params;
use crate::kv::KvStore;

/// The error of an origin store, boxed.
type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A store behind the cache: any [`KvStore`], its error boxed.
trait Origin: Send + Sync {
    fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError>;
    fn round_trips(&self) -> usize;
    fn keys_sent(&self) -> usize;
}

impl<S: KvStore + Send + Sync> Origin for S {
    fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        KvStore::get_multi(self, keys).map_err(Into::into)
    }
    fn round_trips(&self) -> usize {
        KvStore::round_trips(self)
    }
    fn keys_sent(&self) -> usize {
        KvStore::keys_sent(self)
    }
}

/// Why [`MemcachedKv`] could not answer a key.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum KvError {
    /// memcached failed it (and there was no origin to ask), or the key cannot be sent.
    Memcached(McError),
    /// The origin store behind the cache failed (see [`MemcachedKv::with_origin`]).
    Origin {
        /// What failed.
        message: String,
    },
    /// The value memcached holds is not UTF-8.
    NotText {
        /// The key.
        key: String,
    },
}

impl fmt::Display for KvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KvError::Memcached(e) => e.fmt(f),
            KvError::Origin { message } => write!(f, "the origin behind memcached: {message}"),
            KvError::NotText { key } => write!(f, "memcached value of {key:?} is not UTF-8"),
        }
    }
}

impl std::error::Error for KvError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            KvError::Memcached(e) => e.source(),
            _ => None,
        }
    }
}

impl From<McError> for KvError {
    fn from(e: McError) -> Self {
        KvError::Memcached(e)
    }
}

/// memcached with `get_multi` semantics, `Value = String`: the FEED-1 page's `memcached`
/// backend, a cache in front of an origin store.
///
/// With an origin ([`with_origin`](MemcachedKv::with_origin)), keys memcached does not
/// answer (misses: evicted, expired, never loaded; and every key of a failed or backed-off
/// server) are read from the origin in one call and written back, so a cache that lost data
/// costs a trip to the origin, never a failed page. Without one, a miss is left out of the
/// answer (the task sees [`asynq_core::Error::MissingKey`]) and a failed server fails its
/// keys, with an error naming it. [`load_feed`](MemcachedKv::load_feed) stores the FEED-1
/// data set on the servers that do not hold it yet (a warm-up: with an origin, the page is
/// right whatever the servers hold).
///
/// For a cache in front of any source, with time to live, negative caching and invalidation,
/// see `asynq_sources::Cached`.
pub struct MemcachedKv {
    client: MemcachedClient,
    origin: Option<Arc<dyn Origin>>,
    /// The client's round trips and keys that were not the page's (`load_feed`'s reads).
    not_counted: (AtomicUsize, AtomicUsize),
}

impl fmt::Debug for MemcachedKv {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemcachedKv")
            .field("client", &self.client)
            .field("origin", &self.origin.is_some())
            .finish()
    }
}

/// The key under which each server records which FEED-1 data set it holds.
const FEED_TAG_KEY: &str = "asynq:feed1:dataset";

impl MemcachedKv {
    /// The source over `client`, without an origin.
    pub fn new(client: MemcachedClient) -> Self {
        MemcachedKv {
            client,
            origin: None,
            not_counted: Default::default(),
        }
    }

    /// The same source with `origin` behind the cache: what memcached does not answer is
    /// read from it and written back.
    pub fn with_origin<S: KvStore + Send + Sync + 'static>(mut self, origin: S) -> Self {
        self.origin = Some(Arc::new(origin));
        self
    }

    /// The client, with its round-trip counters.
    pub fn client(&self) -> &MemcachedClient {
        &self.client
    }

    /// Store the FEED-1 data set for `p` on every server that does not hold its share of it
    /// yet. Each server records the share it holds (the size, and the set of servers, which
    /// decides its keys whatever their order) under its own tag key. Returns how many servers
    /// were loaded. These reads and writes are not counted as round trips.
    pub fn load_feed(&self, p: Params) -> Result<usize, McError> {
        let mc = &self.client;
        let mut names: Vec<&str> = mc.servers().collect();
        names.sort_unstable();
        let tag = format!(
            "FEED-1 Q={} A={} on {}",
            p.questions,
            p.answers,
            names.join(",")
        );
        let before = (mc.calls(), mc.keys());
        let servers: Vec<MemcachedClient> = (0..names.len())
            .map(|i| mc.on_server(i).expect("a server of the list"))
            .collect();
        let mut missing = Vec::new();
        for (i, server) in servers.iter().enumerate() {
            let held = block_on(server.get_multi(&[FEED_TAG_KEY.to_string()]))
                .remove(0)?
                .filter(|held| held == tag.as_bytes());
            if held.is_none() {
                missing.push(i);
            }
        }
        let mut shards: Vec<Vec<(String, Vec<u8>)>> = servers.iter().map(|_| Vec::new()).collect();
        if !missing.is_empty() {
            for (key, value) in crate::feed::dataset(p) {
                let server = mc.server_index(&key);
                if missing.contains(&server) {
                    shards[server].push((key, value.into_bytes()));
                }
            }
        }
        for &i in &missing {
            let mut pairs = std::mem::take(&mut shards[i]);
            pairs.push((FEED_TAG_KEY.to_string(), tag.clone().into_bytes())); // last: only a complete load counts
            block_on(servers[i].set_multi(pairs, None))?;
        }
        // The tag reads are not round trips of a page.
        let (calls, keys) = &self.not_counted;
        calls.fetch_add(mc.calls() - before.0, Ordering::Relaxed);
        keys.fetch_add(mc.keys() - before.1, Ordering::Relaxed);
        Ok(missing.len())
    }

    /// Round trips to the origin so far (calls of its `get_multi`).
    pub fn origin_round_trips(&self) -> usize {
        self.origin.as_ref().map_or(0, |o| o.round_trips())
    }

    /// The same source, waiting `latency` in every per-server multi-get.
    pub fn with_latency(self, latency: Duration) -> Self {
        MemcachedKv {
            client: self.client.with_latency(latency),
            ..self
        }
    }

    /// Each key's outcome: memcached's answer, or the origin's for the keys memcached did not
    /// answer; a key neither has is left out.
    async fn get_each(&self, keys: &[String]) -> Vec<(String, Result<String, KvError>)> {
        let mut out = Vec::with_capacity(keys.len());
        let mut refill = Vec::new();
        for (key, lookup) in keys.iter().zip(self.client.get_multi(keys).await) {
            match lookup {
                Ok(Some(value)) => match String::from_utf8(value) {
                    Ok(value) => out.push((key.clone(), Ok(value))),
                    Err(_) if self.origin.is_some() => refill.push(key.clone()),
                    Err(_) => out.push((key.clone(), Err(KvError::NotText { key: key.clone() }))),
                },
                Ok(None) | Err(McError::Server { .. } | McError::BackedOff { .. })
                    if self.origin.is_some() =>
                {
                    refill.push(key.clone());
                }
                Ok(None) => {}
                Err(error) => out.push((key.clone(), Err(error.into()))),
            }
        }
        let Some(origin) = &self.origin else {
            return out;
        };
        if refill.is_empty() {
            return out;
        }
        match origin.get_multi(&refill) {
            Ok(found) => {
                // Best effort: a server that cannot take them is asked again next time.
                let back = found
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
                    .collect();
                let _ = self.client.set_multi(back, None).await;
                out.extend(found.into_iter().map(|(k, v)| (k, Ok(v))));
            }
            Err(error) => {
                let error = KvError::Origin {
                    message: error.to_string(),
                };
                out.extend(refill.into_iter().map(|k| (k, Err(error.clone()))));
            }
        }
        out
    }

    async fn get_strict(&self, keys: &[String]) -> Result<Vec<(String, String)>, KvError> {
        self.get_each(keys)
            .await
            .into_iter()
            .map(|(key, value)| Ok((key, value?)))
            .collect()
    }
}

impl KvStore for MemcachedKv {
    type Error = KvError;

    fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, KvError> {
        block_on(self.get_strict(keys))
    }

    /// memcached's per-server multi-gets, plus the origin's round trips.
    fn round_trips(&self) -> usize {
        let own = (self.client.calls()).saturating_sub(self.not_counted.0.load(Ordering::Relaxed));
        own + self.origin.as_ref().map_or(0, |o| o.round_trips())
    }

    fn keys_sent(&self) -> usize {
        let own = (self.client.keys()).saturating_sub(self.not_counted.1.load(Ordering::Relaxed));
        own + self.origin.as_ref().map_or(0, |o| o.keys_sent())
    }
}

impl DataSource for MemcachedKv {
    type Key = String;
    type Value = String;
    type Error = KvError;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, KvError> {
        self.get_strict(keys).await
    }

    /// A failed server fails only its own keys (with an error naming it) when there is no
    /// origin to answer them; misses the origin does not hold either are left out.
    async fn fetch_each(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, Result<String, KvError>)>, KvError> {
        Ok(self.get_each(keys).await)
    }

    fn name(&self) -> &str {
        "memcached"
    }
}
