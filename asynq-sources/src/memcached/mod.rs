//! memcached: a sharded multi-get client ([`MemcachedClient`]) and a source over it
//! ([`Memcached`]). Feature `memcached`.
//!
//! The client places each key on one of its servers by rendezvous hashing (adding a server to
//! N moves about 1/(N+1) of the keys; see [`MemcachedClient::server_of`]) and answers a batch
//! with one `get k1 k2 ...` per server holding some of the keys, all servers at once. Each
//! server keeps a pool of open connections. Keys that memcached would refuse (empty, longer
//! than 250 bytes, holding a space or a control character) are rejected before any I/O, with
//! an [`McError::InvalidKey`] naming them; they are never sent.
//!
//! Whatever a server sends, a call ends within its deadline and in bounded memory, and only
//! the keys of that server fail, with an error naming it:
//! - one deadline per exchange (connecting, the request and its whole answer, a retry on a
//!   fresh connection included), not per read;
//! - every length read from the server is bounded before anything is allocated: a value by
//!   the item size limit ([`DEFAULT_MAX_VALUE`], 1 MiB, as memcached's own default;
//!   [`MemcachedClient::with_max_value`]), a line by 512 bytes, the number of values by the
//!   keys asked;
//! - a server that failed is backed off (a circuit breaker, [`Backoff`]): its keys fail at
//!   once with [`McError::BackedOff`] for a second, doubling while retries keep failing, up
//!   to 30 s; the outage is logged (a `log` warning) once when it starts and once when it
//!   ends, and [`MemcachedClient::health`] reports it.
//!
//! The I/O runs on tokio: on the runtime the client was made in, or, when made outside any,
//! on a small runtime of its own. Its futures can be awaited from any executor (the runtime
//! of an asynq run, `futures::executor::block_on`, tokio).
//!
//! # Why our own protocol code
//!
//! The crates of the field cannot do what a batching runtime needs. `memcache` (0.21) asks
//! the servers of a multi-get one after another, fails the whole multi-get when one server
//! fails, places keys by `hash % N`, and allocates a value by the length the server claims.
//! `async-memcached` (0.9) is one connection to one server (no sharding, pool or per-server
//! failure), and buffers a value of whatever length the server claims until it arrives.
//! The text protocol of `get`, `set`, `add` and `delete` is small; it is written here.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::cache::{
    BackedOff, Background, Breaker, Cache, CacheSource, CodecError, Entry, StoreMode, Utf8,
};
use crate::runner::Runner;

mod conn;
mod exchange;
mod protocol;
mod ring;

use conn::{Conn, Reply};
use protocol::{exptime, push_delete, push_store, resolve};
use ring::Ring;

pub use crate::cache::{Backoff, ServerHealth};
pub use protocol::{DEFAULT_MAX_VALUE, MAX_KEY_LEN, validate_key};

/// memcached as a data source, each key answered on its own: see [`CacheSource`].
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, DataSource, Error, Runtime};
/// use asynq_sources::memcached::{McError, Memcached, MemcachedClient};
///
/// #[asynq]
/// fn names(keys: Vec<String>) -> Vec<Result<Option<String>, Error>> {
///     <Memcached>::load_many(keys).await
/// }
///
/// // Nothing listens on port 1: the key fails naming the server; the invalid one, naming it.
/// let rt = Runtime::new().with_source(Memcached::new(MemcachedClient::new(["127.0.0.1:1"])?));
/// let got = rt.run(names(vec!["u:1".into(), "not valid".into()]))?;
/// let Err(Error::Source { error, .. }) = &got[0] else { panic!("{:?}", got[0]) };
/// assert!(matches!(error.downcast_ref(), Some(McError::Server { server, .. }) if server == "127.0.0.1:1"));
/// let Err(Error::Source { error, .. }) = &got[1] else { panic!("{:?}", got[1]) };
/// assert!(matches!(error.downcast_ref(), Some(McError::InvalidKey { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub type Memcached<K = Utf8> = CacheSource<MemcachedClient, K>;

/// Idle connections kept per server.
const POOL: usize = 32;

/// What one key of a multi-get gives: its value, `None` when the server does not hold it, or
/// why it could not be asked.
pub type Lookup = Result<Option<Vec<u8>>, McError>;

/// Why memcached could not answer a key: a [`CacheError`](crate::cache::CacheError) whose
/// store is `memcached`.
pub type McError = crate::cache::CacheError;

/// The store's name in [`McError`]s.
pub(crate) const STORE: &str = "memcached";

/// One server: its name, address, idle connections and breaker.
#[derive(Debug)]
struct Server {
    name: String,
    addr: SocketAddr,
    idle: Mutex<Vec<Conn>>,
    breaker: Breaker,
}

impl Server {
    fn error(&self, what: &str, e: impl fmt::Display) -> McError {
        McError::Server {
            store: STORE,
            server: self.name.clone(),
            message: format!("{what}: {e}"),
        }
    }

    fn backed_off(&self, why: BackedOff) -> McError {
        McError::BackedOff {
            store: STORE,
            server: self.name.clone(),
            retry_in: why.retry_in,
            cause: why.cause,
        }
    }
}

/// What every clone of a client shares: servers, pools, counters, the runtime.
#[derive(Debug)]
struct Shared {
    servers: Vec<Server>,
    ring: Ring,
    calls: AtomicUsize,
    keys: AtomicUsize,
    runner: Runner,
}

/// The settings of a client (each clone has its own copy).
#[derive(Clone, Copy, Debug)]
struct Settings {
    connect_timeout: Duration,
    io_timeout: Duration,
    max_value: usize,
    latency: Option<Duration>,
    /// Every key goes to this server ([`MemcachedClient::on_server`]).
    pinned: Option<usize>,
}

/// A memcached client over one or more servers: see the [module docs](self).
///
/// Build one at start-up and share it (clones share servers, connections and counters). One
/// call of [`get_multi`](MemcachedClient::get_multi) sends one `get` per server holding some
/// of the keys, all at once, and counts one round trip per server.
///
/// # Examples
///
/// Nothing listens on port 1 of this machine: the key on that server fails, with an error
/// naming it, and an invalid key fails before any I/O. The failed server is then backed off.
///
/// ```
/// use asynq_sources::memcached::{McError, MemcachedClient};
/// use futures::executor::block_on;
///
/// let mc = MemcachedClient::new(["127.0.0.1:1"])?;
/// let got = block_on(mc.get_multi(&["a".to_string(), "not valid".to_string()]));
/// assert!(matches!(&got[0], Err(McError::Server { server, .. }) if server == "127.0.0.1:1"));
/// assert!(matches!(&got[1], Err(McError::InvalidKey { .. })));
/// assert_eq!(mc.calls(), 1);
/// let got = block_on(mc.get_multi(&["a".to_string()]));
/// assert!(matches!(&got[0], Err(McError::BackedOff { .. })));
/// assert!(mc.health()[0].backed_off);
/// # Ok::<(), McError>(())
/// ```
#[derive(Clone, Debug)]
pub struct MemcachedClient {
    shared: Arc<Shared>,
    settings: Settings,
}

impl MemcachedClient {
    /// A client of `servers` (`host:port` each, distinct), with timeouts of 1 s to connect
    /// and 2 s per exchange, values up to [`DEFAULT_MAX_VALUE`], and the default [`Backoff`].
    /// Nothing is connected yet. Its I/O runs on the calling tokio runtime, or on a runtime
    /// of its own when called outside one.
    pub fn new<I, S>(servers: I) -> Result<MemcachedClient, McError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        MemcachedClient::with_backoff(servers, Backoff::default())
    }

    /// A client of `servers` that leaves a failed server alone as `backoff` says.
    pub fn with_backoff<I, S>(servers: I, backoff: Backoff) -> Result<MemcachedClient, McError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let servers: Vec<Server> = resolve(servers)?
            .into_iter()
            .map(|(name, addr)| Server {
                breaker: Breaker::new(format!("memcached server {name}"), &name, backoff),
                name,
                addr,
                idle: Mutex::new(Vec::new()),
            })
            .collect();
        let runner = McError::runner(STORE)?;
        Ok(MemcachedClient {
            shared: Arc::new(Shared {
                ring: Ring::new(servers.iter().map(|s| s.name.as_str())),
                servers,
                calls: AtomicUsize::new(0),
                keys: AtomicUsize::new(0),
                runner,
            }),
            settings: Settings {
                connect_timeout: Duration::from_secs(1),
                io_timeout: Duration::from_secs(2),
                max_value: DEFAULT_MAX_VALUE,
                latency: None,
                pinned: None,
            },
        })
    }

    /// The same client with other timeouts: to connect, and for a whole exchange (connecting,
    /// the request and its whole answer: one deadline, however the server dribbles it).
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> Self {
        self.settings.connect_timeout = connect.max(Duration::from_millis(1));
        self.settings.io_timeout = io.max(Duration::from_millis(1));
        self
    }

    /// The same client accepting values of at most `bytes` (the servers' item size limit,
    /// memcached's `-I`); a larger one in a reply fails that server's keys of the call, and a
    /// larger one to store is refused before it is sent.
    pub fn with_max_value(mut self, bytes: usize) -> Self {
        self.settings.max_value = bytes;
        self
    }

    /// The same client, waiting `latency` before every per-server exchange (servers still
    /// concurrently), as servers across a network would take: for benchmarks.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.settings.latency = Some(latency).filter(|l| !l.is_zero());
        self
    }

    /// The timeout of one exchange.
    pub fn io_timeout(&self) -> Duration {
        self.settings.io_timeout
    }

    /// The servers, as configured.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.shared.servers.iter().map(|s| s.name.as_str())
    }

    /// The index (in [`servers`](MemcachedClient::servers)) of the server holding `key`, by
    /// rendezvous hashing of the key and the servers' names: the same for any order of the
    /// servers, and adding a server moves only the keys it takes over.
    pub fn server_index(&self, key: &str) -> usize {
        self.settings
            .pinned
            .unwrap_or_else(|| self.shared.ring.server_of(key))
    }

    /// The same client (connections, counters, settings) sending every key to the server
    /// at `index` in [`servers`](MemcachedClient::servers), whatever the hash says: to read
    /// or load one server's share, or a key each server holds (a marker of what it was
    /// loaded with). `None` when there is no such server.
    pub fn on_server(&self, index: usize) -> Option<MemcachedClient> {
        (index < self.shared.servers.len()).then(|| MemcachedClient {
            shared: Arc::clone(&self.shared),
            settings: Settings {
                pinned: Some(index),
                ..self.settings
            },
        })
    }

    /// The server holding `key`, as configured.
    pub fn server_of(&self, key: &str) -> &str {
        &self.shared.servers[self.server_index(key)].name
    }

    /// Each server's health: backed off or not, failures, calls skipped.
    pub fn health(&self) -> Vec<ServerHealth> {
        self.shared
            .servers
            .iter()
            .map(|s| s.breaker.health())
            .collect()
    }

    /// Per-server multi-gets so far (round trips; calls to a backed-off server not counted).
    pub fn calls(&self) -> usize {
        self.shared.calls.load(Ordering::Relaxed)
    }

    /// Keys sent so far, over all multi-gets.
    pub fn keys(&self) -> usize {
        self.shared.keys.load(Ordering::Relaxed)
    }

    /// Start counting from zero again.
    pub fn reset_counters(&self) {
        self.shared.calls.store(0, Ordering::Relaxed);
        self.shared.keys.store(0, Ordering::Relaxed);
    }

    /// Each key's outcome, in the order of `keys`: one `get` per server holding some of the
    /// (valid) keys, all servers at once.
    pub fn get_multi(&self, keys: &[String]) -> impl Future<Output = Vec<Lookup>> + Send + use<> {
        self.get_owned(keys.to_vec())
    }

    /// [`get_multi`](MemcachedClient::get_multi) of keys it may keep.
    fn get_owned(&self, keys: Vec<String>) -> impl Future<Output = Vec<Lookup>> + Send + use<> {
        let client = self.clone();
        let n = keys.len();
        let task = self
            .shared
            .runner
            .run(async move { client.get_here(&keys).await });
        async move {
            task.await
                .unwrap_or_else(|e| vec![Err(runtime_gone(&e)); n])
        }
    }

    /// Store `pairs` with the time to live `ttl` (`None`: until evicted; more than 30 days is
    /// sent as the time it ends at, as memcached wants): one pipelined exchange per server,
    /// servers at once. Fails with the first server that failed (or was backed off); a key or
    /// value that cannot be stored fails before anything is sent.
    pub fn set_multi(
        &self,
        pairs: Vec<(String, Vec<u8>)>,
        ttl: Option<Duration>,
    ) -> impl Future<Output = Result<(), McError>> + Send + use<> {
        let entries = pairs
            .into_iter()
            .map(|(key, value)| Entry { key, value, ttl })
            .collect();
        self.store_multi(entries, StoreMode::Set)
    }

    /// Store `entries` as `mode` says (over what is there, or only where nothing is), as
    /// [`set_multi`](MemcachedClient::set_multi) does.
    pub fn store_multi(
        &self,
        entries: Vec<Entry>,
        mode: StoreMode,
    ) -> impl Future<Output = Result<(), McError>> + Send + use<> {
        let mut requests: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0); self.shared.servers.len()];
        let built = entries.iter().try_for_each(|entry| {
            let (request, n) = &mut requests[self.server_index(&entry.key)];
            *n += 1;
            push_store(
                request,
                mode,
                &entry.key,
                &entry.value,
                exptime(entry.ttl),
                self.settings.max_value,
            )
        });
        let client = self.clone();
        let task = built.map(|()| {
            self.shared.runner.run(async move {
                let reply = |n| Reply::Stored { n, mode };
                client.on_each_server(requests, reply).await
            })
        });
        async move { task?.await.unwrap_or_else(|e| Err(runtime_gone(&e))) }
    }

    /// Remove the entries of `keys` (a key without one is not an error): one pipelined
    /// exchange per server, servers at once.
    pub fn delete_multi(
        &self,
        keys: &[String],
    ) -> impl Future<Output = Result<(), McError>> + Send + use<> {
        let mut requests: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0); self.shared.servers.len()];
        let built = keys.iter().try_for_each(|key| {
            let (request, n) = &mut requests[self.server_index(key)];
            *n += 1;
            push_delete(request, key)
        });
        let client = self.clone();
        let task = built.map(|()| {
            self.shared.runner.run(async move {
                client
                    .on_each_server(requests, |n| Reply::Deleted { n })
                    .await
            })
        });
        async move { task?.await.unwrap_or_else(|e| Err(runtime_gone(&e))) }
    }
}

fn runtime_gone(e: &tokio::task::JoinError) -> McError {
    McError::runtime_gone(STORE, e)
}

impl Cache for MemcachedClient {
    type Error = McError;

    fn name(&self) -> &str {
        "memcached"
    }

    fn max_key_len(&self) -> usize {
        MAX_KEY_LEN
    }

    fn max_value_len(&self) -> usize {
        self.settings.max_value
    }

    fn get_many(&self, keys: Vec<String>) -> impl Future<Output = Vec<Lookup>> + Send + use<> {
        self.get_owned(keys)
    }

    fn store_many(
        &self,
        entries: Vec<Entry>,
        mode: StoreMode,
    ) -> impl Future<Output = Result<(), McError>> + Send + use<> {
        self.store_multi(entries, mode)
    }

    fn delete_many(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Result<(), McError>> + Send + use<> {
        self.delete_multi(&keys)
    }

    fn decode_error(&self, key: &str, error: CodecError) -> McError {
        McError::decode(STORE, key, error.to_string())
    }

    fn spawn(&self, task: Background) {
        self.shared.runner.detach(task);
    }
}
