//! [`MemcachedKv`]: memcached as the FEED-1 page's `Value = String` store, a cache in front
//! of an origin.

use std::io::Write as _;
use std::time::Duration;

use asynq_core::DataSource;

use super::{McError, Memcached, read_values};
use crate::feed::Params;
use crate::kv::KvStore;
use crate::offload::offload;

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

/// memcached with `get_multi` semantics, `Value = String`: the FEED-1 page's `memcached`
/// backend, a cache in front of an origin store.
///
/// With an origin ([`with_origin`](MemcachedKv::with_origin)), keys memcached does not
/// answer (misses: evicted, expired, never loaded; and every key of a failed or backed-off
/// server) are read from the origin in one call and written back, so a cache that lost data
/// costs a trip to the origin, never a failed page. Without one, a miss is left out of the
/// answer (the task sees [`asynq_core::Error::MissingKey`]) and a failed server fails its
/// keys, with an [`McError`] naming it. [`load_feed`](MemcachedKv::load_feed) stores the
/// FEED-1 data set on the servers that do not hold it yet (a warm-up: with an origin, the
/// page is right whatever the servers hold).
pub struct MemcachedKv {
    client: Memcached,
    origin: Option<std::sync::Arc<dyn Origin>>,
}

impl std::fmt::Debug for MemcachedKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
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
    pub fn new(client: Memcached) -> Self {
        MemcachedKv {
            client,
            origin: None,
        }
    }

    /// The same source with `origin` behind the cache: what memcached does not answer is
    /// read from it and written back.
    pub fn with_origin<S: KvStore + Send + Sync + 'static>(mut self, origin: S) -> Self {
        self.origin = Some(std::sync::Arc::new(origin));
        self
    }

    /// The client, with its round-trip counters.
    pub fn client(&self) -> &Memcached {
        &self.client
    }

    /// Store the FEED-1 data set for `p` on every server that does not hold its share of it
    /// yet. Each server records the share it holds (the size, and its place in this list of
    /// servers, which decides its keys) under its own tag key. Returns how many servers were
    /// loaded. These reads and writes are not counted as round trips.
    pub fn load_feed(&self, p: Params) -> Result<usize, McError> {
        let mc = &self.client;
        let n = mc.shared.servers.len();
        let servers = mc.servers().collect::<Vec<_>>().join(",");
        let tags: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "FEED-1 Q={} A={} shard {} of {servers}",
                    p.questions,
                    p.answers,
                    i + 1
                )
            })
            .collect();
        let mut missing = Vec::new();
        for (server, tag) in tags.iter().enumerate() {
            let ticket = mc.shared.servers[server].breaker.admit()?;
            let held = mc.exchange(server, ticket, |conn| {
                conn.get_mut()
                    .write_all(format!("get {FEED_TAG_KEY}\r\n").as_bytes())?;
                read_values(conn, 1, mc.max_value)
            })?;
            if held.first().map(|(_, v)| v) != Some(tag) {
                missing.push(server);
            }
        }
        if missing.is_empty() {
            return Ok(0);
        }
        let mut shards: Vec<Vec<(String, String)>> =
            mc.shared.servers.iter().map(|_| Vec::new()).collect();
        for (key, value) in crate::feed::dataset(p) {
            let server = mc.server_index(&key);
            if missing.contains(&server) {
                shards[server].push((key, value));
            }
        }
        for &server in &missing {
            let mut pairs: Vec<(&str, &str)> = shards[server]
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            pairs.push((FEED_TAG_KEY, &tags[server])); // last: only a complete load counts
            mc.set_on(server, &pairs)?;
        }
        Ok(missing.len())
    }

    /// The same source, sleeping `latency` in every per-server multi-get.
    pub fn with_latency(self, latency: Duration) -> Self {
        MemcachedKv {
            client: self.client.with_latency(latency),
            origin: self.origin,
        }
    }

    fn share(&self) -> MemcachedKv {
        MemcachedKv {
            client: self.client.share(),
            origin: self.origin.clone(),
        }
    }

    /// Each key's outcome: memcached's answer, or the origin's for the keys memcached did not
    /// answer; a key neither has is left out.
    fn get_each(&self, keys: &[String]) -> Vec<(String, Result<String, McError>)> {
        let mut out = Vec::with_capacity(keys.len());
        let mut refill = Vec::new();
        for (key, lookup) in keys.iter().zip(self.client.get_multi(keys)) {
            match lookup {
                Ok(Some(value)) => out.push((key.clone(), Ok(value))),
                Ok(None) | Err(McError::Server { .. } | McError::BackedOff { .. })
                    if self.origin.is_some() =>
                {
                    refill.push(key.clone());
                }
                Ok(None) => {}
                Err(error) => out.push((key.clone(), Err(error))),
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
                let _ = self.client.set_multi(found.iter().map(|(k, v)| (k, v)));
                out.extend(found.into_iter().map(|(k, v)| (k, Ok(v))));
            }
            Err(error) => {
                let error = McError::Origin {
                    message: error.to_string(),
                };
                out.extend(refill.into_iter().map(|k| (k, Err(error.clone()))));
            }
        }
        out
    }

    fn get_strict(&self, keys: &[String]) -> Result<Vec<(String, String)>, McError> {
        self.get_each(keys)
            .into_iter()
            .map(|(key, value)| Ok((key, value?)))
            .collect()
    }
}

impl KvStore for MemcachedKv {
    type Error = McError;

    fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, McError> {
        self.get_strict(keys)
    }

    /// memcached's per-server multi-gets, plus the origin's round trips.
    fn round_trips(&self) -> usize {
        self.client.calls() + self.origin.as_ref().map_or(0, |o| o.round_trips())
    }

    fn keys_sent(&self) -> usize {
        self.client.keys() + self.origin.as_ref().map_or(0, |o| o.keys_sent())
    }
}

impl DataSource for MemcachedKv {
    type Key = String;
    type Value = String;
    type Error = McError;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, McError> {
        let (kv, keys) = (self.share(), keys.to_vec());
        offload(move || kv.get_strict(&keys)).await
    }

    /// A failed server fails only its own keys (with an error naming it) when there is no
    /// origin to answer them; misses the origin does not hold either are left out.
    async fn fetch_each(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, Result<String, McError>)>, McError> {
        let (kv, keys) = (self.share(), keys.to_vec());
        Ok(offload(move || kv.get_each(&keys)).await)
    }

    fn name(&self) -> &str {
        "memcached"
    }
}
