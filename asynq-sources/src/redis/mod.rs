//! Redis: a client over the `redis` crate ([`RedisClient`]) and a source over it
//! ([`Redis`]). Feature `redis`.
//!
//! The client holds one multiplexed connection to one Redis server (the crate's
//! `ConnectionManager`, which reconnects after the server restarts): every round's multi-get
//! is one `MGET` on it, stores are one pipeline of `SET ... PX` (with `NX` for an
//! [`add`](StoreMode::Add)), deletes one `DEL`. Concurrent calls share the connection.
//!
//! As the memcached client does, it bounds what a failing server costs: one deadline per
//! exchange (connecting included), a value longer than the client accepts fails its key, and
//! a server that failed is backed off ([`Backoff`]): its calls fail at once with
//! [`RedisError::BackedOff`] for a while, the outage logged once when it starts and once
//! when it ends. (The `redis` crate reads a reply whole before handing it over; a value's
//! length is checked once it has arrived.)
//!
//! The I/O runs on tokio: on the runtime the client was made in, or, when made outside any,
//! on a small runtime of its own. Its futures can be awaited from any executor.
//!
//! A Redis Cluster is read by [`RedisCluster`] (made from some of its nodes' addresses): a
//! round's keys are grouped by node and hash slot ([`slot`]), each node answers one pipeline
//! of one `MGET` per slot, the nodes at once, and a node that fails fails only its keys.

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::cache::{Background, Breaker, Cache, CacheSource, CodecError, Entry, StoreMode, Utf8};
use crate::runner::Runner;

mod cluster;
mod exchange;
mod slots;

pub use crate::cache::{Backoff, ServerHealth};
pub use cluster::RedisCluster;
pub use slots::{SLOTS, slot};

/// The longest key the client sends, in bytes (Redis itself takes up to 512 MB).
pub const MAX_KEY_LEN: usize = 1024;

/// The largest value the client accepts unless told otherwise: 1 MiB.
pub const DEFAULT_MAX_VALUE: usize = 1 << 20;

/// The deadline to connect, unless told otherwise.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// The deadline of an exchange, unless told otherwise.
const IO_TIMEOUT: Duration = Duration::from_secs(2);

/// Why Redis could not answer a key: a [`CacheError`](crate::cache::CacheError) whose store
/// is `Redis` (and whose server, in a cluster, is the node).
pub type RedisError = crate::cache::CacheError;

/// The store's name in [`RedisError`]s.
pub(crate) const STORE: &str = "Redis";

/// What every clone of a client shares.
struct Shared {
    server: String,
    conn: ConnectionManager,
    breaker: Breaker,
    calls: AtomicUsize,
    keys: AtomicUsize,
    runner: Arc<Runner>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("server", &self.server)
            .field("breaker", &self.breaker)
            .field("runner", &self.runner)
            .finish_non_exhaustive()
    }
}

/// A Redis client: see the [module docs](self).
///
/// Build one at start-up and share it (clones share the connection and the counters).
///
/// # Examples
///
/// Nothing listens on port 1 of this machine: the call fails naming the server, and the
/// server is then backed off.
///
/// ```
/// use asynq_sources::redis::{RedisClient, RedisError};
/// use futures::executor::block_on;
///
/// let redis = RedisClient::new("127.0.0.1:1")?;
/// let got = block_on(redis.mget(vec!["a".to_string()]));
/// assert!(matches!(&got[0], Err(RedisError::Server { server, .. }) if server == "127.0.0.1:1"));
/// let got = block_on(redis.mget(vec!["a".to_string()]));
/// assert!(matches!(&got[0], Err(RedisError::BackedOff { .. })));
/// # Ok::<(), RedisError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RedisClient {
    shared: Arc<Shared>,
    io_timeout: Duration,
    max_value: usize,
    latency: Option<Duration>,
}

impl RedisClient {
    /// A client of the Redis server at `server` (`host:port`, or a `redis://` URL), with
    /// timeouts of 1 s to connect and 2 s per exchange, values up to [`DEFAULT_MAX_VALUE`] and
    /// the default [`Backoff`]. Nothing is connected yet.
    pub fn new(server: &str) -> Result<RedisClient, RedisError> {
        RedisClient::with_backoff(server, Backoff::default())
    }

    /// A client of `server` that leaves it alone after a failure as `backoff` says.
    pub fn with_backoff(server: &str, backoff: Backoff) -> Result<RedisClient, RedisError> {
        let runner = RedisError::runner(STORE)?;
        RedisClient::build(
            server,
            backoff,
            CONNECT_TIMEOUT,
            IO_TIMEOUT,
            Arc::new(runner),
        )
    }

    /// A client of `server` whose I/O runs on `runner` (a cluster's nodes share one).
    pub(crate) fn build(
        server: &str,
        backoff: Backoff,
        connect: Duration,
        io: Duration,
        runner: Arc<Runner>,
    ) -> Result<RedisClient, RedisError> {
        let name = server.trim().to_string();
        let failed = |message: String| RedisError::Server {
            store: STORE,
            server: name.clone(),
            message,
        };
        let url = if name.contains("://") {
            name.clone()
        } else {
            format!("redis://{name}/")
        };
        let client = ::redis::Client::open(url.as_str())
            .map_err(|e| failed(format!("not a Redis address: {e}")))?;
        // Reconnecting is left to the breaker's pace: the manager tries once per call.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(connect))
            .set_response_timeout(Some(io))
            .set_number_of_retries(0);
        let conn = {
            let _inside = runner.enter();
            ConnectionManager::new_lazy_with_config(client, config)
                .map_err(|e| failed(format!("cannot set up the connection: {e}")))?
        };
        Ok(RedisClient {
            shared: Arc::new(Shared {
                breaker: Breaker::new(format!("Redis server {name}"), &name, backoff),
                server: name,
                conn,
                calls: AtomicUsize::new(0),
                keys: AtomicUsize::new(0),
                runner,
            }),
            io_timeout: io,
            max_value: DEFAULT_MAX_VALUE,
            latency: None,
        })
    }

    /// The same client with a deadline of `io` for a whole exchange (connecting included).
    pub fn with_timeout(mut self, io: Duration) -> Self {
        self.io_timeout = io.max(Duration::from_millis(1));
        self
    }

    /// The same client accepting values of at most `bytes`; a longer one fails its key, and
    /// a longer one to store is refused before it is sent.
    pub fn with_max_value(mut self, bytes: usize) -> Self {
        self.max_value = bytes;
        self
    }

    /// The same client, waiting `latency` before every exchange, as a server across a network
    /// would take: for benchmarks.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency).filter(|l| !l.is_zero());
        self
    }

    /// The server, as configured.
    pub fn server(&self) -> &str {
        &self.shared.server
    }

    /// The server's health: backed off or not, failures, calls skipped.
    pub fn health(&self) -> ServerHealth {
        self.shared.breaker.health()
    }

    /// `MGET`s so far (round trips; calls to a backed-off server not counted).
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// Keys asked so far, over all `MGET`s.
    pub fn keys(&self) -> usize {
        self.shared.keys.load(Ordering::Relaxed)
    }

    /// Start counting from zero again.
    pub fn reset_counters(&self) {
        self.shared.calls.store(0, Ordering::Relaxed);
        self.shared.keys.store(0, Ordering::Relaxed);
    }

    /// Each key's value, in the order of `keys` (`None` when the server holds none): one
    /// `MGET`. A key that cannot be sent fails alone, before any I/O.
    pub fn mget(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Vec<Result<Option<Vec<u8>>, RedisError>>> + Send + use<> {
        let client = self.clone();
        let n = keys.len();
        let task = self
            .shared
            .runner
            .run(async move { client.mget_here(keys).await });
        async move {
            task.await
                .unwrap_or_else(|e| vec![Err(runtime_gone(&e)); n])
        }
    }

    async fn mget_here(&self, keys: Vec<String>) -> Vec<Result<Option<Vec<u8>>, RedisError>> {
        let mut out: Vec<Result<Option<Vec<u8>>, RedisError>> = keys
            .iter()
            .map(|k| validate_key(k).map(|()| None))
            .collect();
        let valid: Vec<usize> = (0..keys.len()).filter(|&i| out[i].is_ok()).collect();
        if valid.is_empty() {
            return out;
        }
        let mut cmd = ::redis::cmd("MGET");
        for &i in &valid {
            cmd.arg(&keys[i]);
        }
        self.shared.keys.fetch_add(valid.len(), Ordering::Relaxed);
        let counted = &self.shared.calls;
        let got: Result<Vec<Option<Vec<u8>>>, RedisError> = self
            .exchange(|| counted.fetch_add(1, Ordering::Relaxed), &cmd)
            .await;
        match got {
            Ok(values) if values.len() == valid.len() => {
                for (&i, value) in valid.iter().zip(values) {
                    out[i] = match value {
                        Some(v) if v.len() > self.max_value => Err(RedisError::decode(
                            STORE,
                            &keys[i],
                            format!("{} bytes long, more than {}", v.len(), self.max_value),
                        )),
                        value => Ok(value),
                    };
                }
            }
            Ok(values) => {
                let e = self.error(format!(
                    "MGET of {} keys answered {}",
                    valid.len(),
                    values.len()
                ));
                valid.iter().for_each(|&i| out[i] = Err(e.clone()));
            }
            Err(e) => valid.iter().for_each(|&i| out[i] = Err(e.clone())),
        }
        out
    }

    /// `value` of `key`, unless it is longer than the client accepts.
    pub(crate) fn checked(
        &self,
        key: &str,
        value: Option<Vec<u8>>,
    ) -> Result<Option<Vec<u8>>, RedisError> {
        match value {
            Some(v) if v.len() > self.max_value => Err(RedisError::decode(
                STORE,
                key,
                format!("{} bytes long, more than {}", v.len(), self.max_value),
            )),
            value => Ok(value),
        }
    }

    /// The `SET` of `e` as `mode` says (`NX` for an add, `PX` for a time to live), unless its
    /// key or value cannot be stored.
    pub(crate) fn set_command(
        &self,
        e: &Entry,
        mode: StoreMode,
    ) -> Result<::redis::Cmd, RedisError> {
        validate_key(&e.key)?;
        if e.value.len() > self.max_value {
            return Err(RedisError::invalid_key(
                STORE,
                &e.key,
                format!(
                    "its value is {} bytes, more than {}",
                    e.value.len(),
                    self.max_value
                ),
            ));
        }
        let mut set = ::redis::cmd("SET");
        set.arg(&e.key).arg(&e.value[..]);
        if let Some(ttl) = e.ttl {
            set.arg("PX").arg(ttl.as_millis().max(1) as u64);
        }
        if mode == StoreMode::Add {
            set.arg("NX");
        }
        Ok(set)
    }

    /// Send `pipe` (its errors per command) in one exchange, unless the node is backed off;
    /// `mget_keys`, when some, counts the exchange as a multi-get of that many keys.
    pub(crate) async fn send_pipeline(
        &self,
        pipe: &::redis::Pipeline,
        mget_keys: Option<usize>,
    ) -> Result<Vec<::redis::RedisResult<::redis::Value>>, RedisError> {
        let shared = &self.shared;
        let count = || {
            if let Some(keys) = mget_keys {
                shared.keys.fetch_add(keys, Ordering::Relaxed);
                shared.calls.fetch_add(1, Ordering::Relaxed);
            }
            0
        };
        self.exchange(count, pipe).await
    }

    /// Store `entries` as `mode` says: one pipeline of `SET`s (`NX` for an add, `PX` for a
    /// time to live). A key or value that cannot be stored fails before anything is sent.
    pub fn store(
        &self,
        entries: Vec<Entry>,
        mode: StoreMode,
    ) -> impl Future<Output = Result<(), RedisError>> + Send + use<> {
        let mut pipe = ::redis::pipe();
        let built = entries.iter().try_for_each(|e| {
            pipe.add_command(self.set_command(e, mode)?).ignore();
            Ok(())
        });
        let client = self.clone();
        let task = built.map(|()| {
            self.shared.runner.run(async move {
                if entries.is_empty() {
                    return Ok(());
                }
                client.exchange::<()>(|| 0, &pipe).await
            })
        });
        async move { task?.await.unwrap_or_else(|e| Err(runtime_gone(&e))) }
    }

    /// Remove the entries of `keys` (a key without one is not an error): one `DEL`.
    pub fn delete(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Result<(), RedisError>> + Send + use<> {
        let built = keys.iter().try_for_each(|k| validate_key(k));
        let client = self.clone();
        let task = built.map(|()| {
            self.shared.runner.run(async move {
                if keys.is_empty() {
                    return Ok(());
                }
                let mut cmd = ::redis::cmd("DEL");
                cmd.arg(&keys);
                client.exchange::<()>(|| 0, &cmd).await
            })
        });
        async move { task?.await.unwrap_or_else(|e| Err(runtime_gone(&e))) }
    }
}

/// Check that the client sends `key`: 1 to [`MAX_KEY_LEN`] bytes.
pub(crate) fn validate_key(key: &str) -> Result<(), RedisError> {
    let reason = if key.is_empty() {
        "is empty".to_string()
    } else if key.len() > MAX_KEY_LEN {
        format!("is {} bytes long, more than {MAX_KEY_LEN}", key.len())
    } else {
        return Ok(());
    };
    Err(RedisError::invalid_key(STORE, key, reason))
}

fn runtime_gone(e: &tokio::task::JoinError) -> RedisError {
    RedisError::runtime_gone(STORE, e)
}

/// Redis as a data source, each key answered on its own: see [`CacheSource`].
pub type Redis<K = Utf8> = CacheSource<RedisClient, K>;

/// A Redis Cluster as a data source, each key answered on its own: see [`CacheSource`].
pub type RedisClusterSource<K = Utf8> = CacheSource<RedisCluster, K>;

/// The [`Cache`] impl of a Redis client type whose inherent `mget`, `store` and `delete` do
/// the work: `$name` is its name, `$max_value` (a closure of `&self`) its value limit.
macro_rules! redis_cache {
    ($client:ty, $name:literal, $max_value:expr) => {
        impl Cache for $client {
            type Error = RedisError;

            fn name(&self) -> &str {
                $name
            }

            fn max_key_len(&self) -> usize {
                MAX_KEY_LEN
            }

            fn max_value_len(&self) -> usize {
                let max_value: fn(&$client) -> usize = $max_value;
                max_value(self)
            }

            fn get_many(
                &self,
                keys: Vec<String>,
            ) -> impl Future<Output = Vec<Result<Option<Vec<u8>>, RedisError>>> + Send + use<> {
                self.mget(keys)
            }

            fn store_many(
                &self,
                entries: Vec<Entry>,
                mode: StoreMode,
            ) -> impl Future<Output = Result<(), RedisError>> + Send + use<> {
                self.store(entries, mode)
            }

            fn delete_many(
                &self,
                keys: Vec<String>,
            ) -> impl Future<Output = Result<(), RedisError>> + Send + use<> {
                self.delete(keys)
            }

            fn decode_error(&self, key: &str, error: CodecError) -> RedisError {
                RedisError::decode(STORE, key, error.to_string())
            }

            fn spawn(&self, task: Background) {
                self.runner().detach(task);
            }
        }
    };
}

redis_cache!(RedisClient, "redis", |c| c.max_value);
redis_cache!(RedisCluster, "redis-cluster", RedisCluster::max_value);

impl RedisClient {
    /// The runtime its I/O runs on.
    fn runner(&self) -> &Runner {
        &self.shared.runner
    }
}
