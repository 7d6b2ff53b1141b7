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

use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::cache::{
    BackedOff, Background, Breaker, Cache, CacheSource, CodecError, Entry, StoreMode, Utf8,
};
use crate::runner::Runner;

pub use crate::cache::{Backoff, ServerHealth};

/// The longest key the client sends, in bytes (Redis itself takes up to 512 MB).
pub const MAX_KEY_LEN: usize = 1024;

/// The largest value the client accepts unless told otherwise: 1 MiB.
pub const DEFAULT_MAX_VALUE: usize = 1 << 20;

/// Why Redis could not answer a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RedisError {
    /// The key (or its value) cannot be sent; nothing was sent.
    InvalidKey {
        /// The key (its first 60 characters when longer).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server failed: unreachable, timed out, or answered an error.
    Server {
        /// The server, as configured.
        server: String,
        /// What failed.
        message: String,
    },
    /// The server failed recently and is left alone for a while: it was not asked.
    BackedOff {
        /// The server, as configured.
        server: String,
        /// How long until it is tried again.
        retry_in: Duration,
        /// Its latest failure.
        cause: String,
    },
    /// The key's value is there, but the source's codec cannot read it (or it is longer than
    /// the client accepts).
    Decode {
        /// The key (its first 60 characters when longer).
        key: String,
        /// What is wrong with it.
        message: String,
    },
    /// The tokio runtime that runs the client's I/O is gone, or its task panicked.
    Runtime {
        /// What happened.
        message: String,
    },
}

impl fmt::Display for RedisError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedisError::InvalidKey { key, reason } => {
                write!(f, "invalid Redis key {key:?}: {reason}")
            }
            RedisError::Server { server, message } => {
                write!(f, "Redis server {server}: {message}")
            }
            RedisError::BackedOff {
                server,
                retry_in,
                cause,
            } => write!(
                f,
                "Redis server {server}: not asked, backed off for {retry_in:.1?} more after a \
                 failure ({cause})"
            ),
            RedisError::Decode { key, message } => write!(f, "Redis value of {key:?}: {message}"),
            RedisError::Runtime { message } => write!(f, "Redis client: {message}"),
        }
    }
}

impl std::error::Error for RedisError {}

/// The first 60 characters of `key`, for errors.
fn short(key: &str) -> String {
    key.chars().take(60).collect()
}

/// What every clone of a client shares.
struct Shared {
    server: String,
    conn: ConnectionManager,
    breaker: Breaker,
    calls: AtomicUsize,
    keys: AtomicUsize,
    runner: Runner,
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
        RedisClient::build(
            server,
            backoff,
            Duration::from_secs(1),
            Duration::from_secs(2),
        )
    }

    fn build(
        server: &str,
        backoff: Backoff,
        connect: Duration,
        io: Duration,
    ) -> Result<RedisClient, RedisError> {
        let name = server.trim().to_string();
        let failed = |message: String| RedisError::Server {
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
        let runner = match Runner::current() {
            Some(runner) => runner,
            None => Runner::own().map_err(|e| RedisError::Runtime {
                message: format!("cannot start a tokio runtime for its I/O: {e}"),
            })?,
        };
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
                        Some(v) if v.len() > self.max_value => Err(RedisError::Decode {
                            key: short(&keys[i]),
                            message: format!(
                                "{} bytes long, more than {}",
                                v.len(),
                                self.max_value
                            ),
                        }),
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

    /// Store `entries` as `mode` says: one pipeline of `SET`s (`NX` for an add, `PX` for a
    /// time to live). A key or value that cannot be stored fails before anything is sent.
    pub fn store(
        &self,
        entries: Vec<Entry>,
        mode: StoreMode,
    ) -> impl Future<Output = Result<(), RedisError>> + Send + use<> {
        let mut pipe = ::redis::pipe();
        let built = entries.iter().try_for_each(|e| {
            validate_key(&e.key)?;
            if e.value.len() > self.max_value {
                return Err(RedisError::InvalidKey {
                    key: short(&e.key),
                    reason: format!(
                        "its value is {} bytes, more than {}",
                        e.value.len(),
                        self.max_value
                    ),
                });
            }
            let set = pipe.cmd("SET").arg(&e.key).arg(&e.value[..]);
            if let Some(ttl) = e.ttl {
                set.arg("PX").arg(ttl.as_millis().max(1) as u64);
            }
            if mode == StoreMode::Add {
                set.arg("NX");
            }
            set.ignore();
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

    fn error(&self, message: String) -> RedisError {
        RedisError::Server {
            server: self.shared.server.clone(),
            message,
        }
    }

    /// Send `request` (a command or a pipeline) unless the server is backed off, within one
    /// deadline; `count` runs once it is admitted. The outcome goes to the breaker.
    async fn exchange<T: ::redis::FromRedisValue>(
        &self,
        count: impl FnOnce() -> usize,
        request: &(impl Request + ?Sized),
    ) -> Result<T, RedisError> {
        let shared = &self.shared;
        let ticket = shared
            .breaker
            .admit()
            .map_err(|why: BackedOff| RedisError::BackedOff {
                server: shared.server.clone(),
                retry_in: why.retry_in,
                cause: why.cause,
            })?;
        count();
        if let Some(latency) = self.latency {
            tokio::time::sleep(latency).await;
        }
        let mut conn = shared.conn.clone();
        let limit = self.io_timeout;
        let result = match tokio::time::timeout(limit, request.send::<T>(&mut conn)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(self.error(e.to_string())),
            Err(_) => Err(self.error(format!("no answer within {limit:?}"))),
        };
        ticket.done(result.as_ref().map(drop).map_err(ToString::to_string));
        result
    }
}

/// What [`RedisClient::exchange`] sends: a command or a pipeline.
trait Request: Sync {
    fn send<T: ::redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = ::redis::RedisResult<T>> + Send;
}

impl Request for ::redis::Cmd {
    fn send<T: ::redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = ::redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

impl Request for ::redis::Pipeline {
    fn send<T: ::redis::FromRedisValue>(
        &self,
        conn: &mut ConnectionManager,
    ) -> impl Future<Output = ::redis::RedisResult<T>> + Send {
        self.query_async(conn)
    }
}

/// Check that the client sends `key`: 1 to [`MAX_KEY_LEN`] bytes.
fn validate_key(key: &str) -> Result<(), RedisError> {
    let reason = if key.is_empty() {
        "is empty".to_string()
    } else if key.len() > MAX_KEY_LEN {
        format!("is {} bytes long, more than {MAX_KEY_LEN}", key.len())
    } else {
        return Ok(());
    };
    Err(RedisError::InvalidKey {
        key: short(key),
        reason,
    })
}

/// The error of a call whose task on the client's runtime gave no answer.
fn runtime_gone(e: &tokio::task::JoinError) -> RedisError {
    RedisError::Runtime {
        message: if e.is_panic() {
            "its I/O task panicked".to_string()
        } else {
            "the tokio runtime running its I/O shut down".to_string()
        },
    }
}

/// Redis as a data source, each key answered on its own: see [`CacheSource`].
pub type Redis<K = Utf8> = CacheSource<RedisClient, K>;

impl Cache for RedisClient {
    type Error = RedisError;

    fn name(&self) -> &str {
        "redis"
    }

    fn max_key_len(&self) -> usize {
        MAX_KEY_LEN
    }

    fn max_value_len(&self) -> usize {
        self.max_value
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
        RedisError::Decode {
            key: short(key),
            message: error.to_string(),
        }
    }

    fn spawn(&self, task: Background) {
        self.shared.runner.detach(task);
    }
}
