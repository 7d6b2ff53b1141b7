//! memcached: a client of the text protocol over one or more servers, and data sources.
//!
//! [`Memcached`] shards keys over its servers by a stable hash (FNV-1a of the key, modulo the
//! number of servers) and answers a batch with one `get k1 k2 ...` per server, all servers
//! queried at once (a scoped thread per server beyond the first). Connections are kept per
//! server and reused. Keys that memcached would reject (empty, longer than 250 bytes, holding
//! a space or a control character) fail before any I/O.
//!
//! Whatever a server sends, a call ends within its deadline and in bounded memory, and only
//! the keys of that server fail, with an error naming it:
//! - one deadline per exchange (connecting, the request and its whole answer, a retry on a
//!   fresh connection included), not per read;
//! - every length read from the server is bounded before anything is allocated: a value by
//!   the item size limit ([`DEFAULT_MAX_VALUE`], 1 MiB, as memcached's own default;
//!   [`Memcached::with_max_value`]), a line by 512 bytes, the number of values by the keys
//!   asked;
//! - a server that failed is backed off (a circuit breaker, [`Backoff`]): its keys fail at
//!   once with [`McError::BackedOff`] for a second, doubling while retries keep failing, up
//!   to 30 s; the outage is written to stderr once when it starts and once when it ends,
//!   and [`Memcached::health`] reports it.
//!
//! Used as a source, each call runs off the run's thread (the client blocks): on tokio's
//! blocking pool inside a tokio runtime, else on a thread of its own. Calls to different
//! sources of one round overlap and an async executor is never blocked.
//!
//! Two sources sit on it:
//! - [`Memcached`] itself, with `Value = Result<Option<String>, McError>`: every key gets
//!   its own outcome, `Ok(None)` for a miss and `Err` for an invalid key or a failed server,
//!   so that one dead server fails only its own keys.
//! - [`MemcachedKv`], with `Value = String`, the FEED-1 page's `memcached` backend: a cache
//!   in front of an origin store ([`MemcachedKv::with_origin`]) whose misses and failed
//!   servers' keys are read from the origin and written back.
//!
//! The client is written here rather than taken from a crate because the crates at hand
//! query servers one after another and fail a whole multi-get when one server fails.

use std::convert::Infallible;
use std::fmt;
use std::io::{self, BufReader, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use asynq_core::DataSource;

use crate::offload::offload;

mod breaker;
mod conn;
mod kv;
mod protocol;

use conn::{Conn, Timed, describe, read_line, read_values};

pub use breaker::{Backoff, ServerHealth};
pub(crate) use breaker::{Breaker, Ticket};
pub use kv::MemcachedKv;
pub use protocol::{DEFAULT_MAX_VALUE, MAX_KEY_LEN, validate_key};
pub(crate) use protocol::{
    MAX_LINE, check_line, get_request, is_stale, protocol, push_set, resolve, server_index, shard,
    spread, too_many_values, value_data, value_header,
};

/// Sets sent on a connection before their replies are read, when loading.
const SET_CHUNK: usize = 512;

/// What one key of a multi-get gives: its value, `None` when the server does not hold it, or
/// why it could not be asked.
pub type Lookup = Result<Option<String>, McError>;

/// Why memcached could not answer a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum McError {
    /// The key (or its value) cannot be sent to memcached; nothing was sent.
    InvalidKey {
        /// The key (its first 60 characters when longer).
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server holding the key failed: unreachable, timed out, or answered nonsense.
    Server {
        /// The server's address, as configured.
        server: String,
        /// What failed.
        message: String,
    },
    /// The server failed recently and is left alone for a while: it was not asked.
    BackedOff {
        /// The server's address, as configured.
        server: String,
        /// How long until it is tried again.
        retry_in: Duration,
        /// Its latest failure.
        cause: String,
    },
    /// The origin store behind the cache failed (see [`MemcachedKv::with_origin`]).
    Origin {
        /// What failed.
        message: String,
    },
}

impl fmt::Display for McError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            McError::InvalidKey { key, reason } => {
                write!(f, "invalid memcached key {key:?}: {reason}")
            }
            McError::Server { server, message } => {
                write!(f, "memcached server {server}: {message}")
            }
            McError::BackedOff {
                server,
                retry_in,
                cause,
            } => write!(
                f,
                "memcached server {server}: not asked, backed off for {retry_in:.1?} more after \
                 a failure ({cause})"
            ),
            McError::Origin { message } => write!(f, "the origin behind memcached: {message}"),
        }
    }
}

impl std::error::Error for McError {}

/// One server: its address, its idle connections and its breaker.
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
            server: self.name.clone(),
            message: format!("{what}: {e}"),
        }
    }
}

/// A memcached client over one or more servers, and a data source answering each key with
/// its own [`Lookup`].
///
/// Build one at start-up and share it (it is `Send + Sync`): each server keeps a small pool of
/// open connections. One call of [`get_multi`](Memcached::get_multi) (one round of a run)
/// sends one `get` per server holding some of the keys, concurrently, and counts one round
/// trip per server.
///
/// # Examples
///
/// Nothing listens on port 1 of this machine: the key on that server fails, with an error
/// naming it, and an invalid key fails before any I/O. The failed server is then backed off.
///
/// ```
/// use asynq_examples::memcached::{Memcached, McError};
///
/// let mc = Memcached::new(["127.0.0.1:1"])?;
/// let got = mc.get_multi(&["a".to_string(), "not valid".to_string()]);
/// assert!(matches!(&got[0], Err(McError::Server { server, .. }) if server == "127.0.0.1:1"));
/// assert!(matches!(&got[1], Err(McError::InvalidKey { .. })));
/// assert_eq!(mc.calls(), 1);
/// let got = mc.get_multi(&["a".to_string()]);
/// assert!(matches!(&got[0], Err(McError::BackedOff { .. })));
/// assert!(mc.health()[0].backed_off);
/// # Ok::<(), McError>(())
/// ```
#[derive(Debug)]
pub struct Memcached {
    shared: Arc<Shared>,
    connect_timeout: Duration,
    io_timeout: Duration,
    max_value: usize,
    latency: Option<Duration>,
}

/// What the clones that run calls on their own threads share: servers, pools, counters.
#[derive(Debug)]
struct Shared {
    servers: Vec<Server>,
    calls: AtomicUsize,
    keys: AtomicUsize,
}

impl Memcached {
    /// A client of `servers` (`host:port` each), with timeouts of 1 s to connect and 2 s per
    /// exchange, values up to [`DEFAULT_MAX_VALUE`], and the default [`Backoff`]. Nothing is
    /// connected yet.
    pub fn new<I, S>(servers: I) -> Result<Memcached, McError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Memcached::with_backoff(servers, Backoff::default())
    }

    /// A client of `servers` that leaves a failed server alone as `backoff` says.
    pub fn with_backoff<I, S>(servers: I, backoff: Backoff) -> Result<Memcached, McError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let servers = resolve(servers)?
            .into_iter()
            .map(|(name, addr)| Server {
                breaker: Breaker::new(&name, backoff),
                name,
                addr,
                idle: Mutex::new(Vec::new()),
            })
            .collect();
        Ok(Memcached {
            shared: Arc::new(Shared {
                servers,
                calls: AtomicUsize::new(0),
                keys: AtomicUsize::new(0),
            }),
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(2),
            max_value: DEFAULT_MAX_VALUE,
            latency: None,
        })
    }

    /// The same client (servers, connections, counters), to move to a thread of a call.
    fn share(&self) -> Memcached {
        Memcached {
            shared: Arc::clone(&self.shared),
            ..*self
        }
    }

    /// The same client with other timeouts: to connect, and for a whole exchange (connecting
    /// included: one deadline, however the server dribbles its answer).
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> Self {
        self.connect_timeout = connect.max(Duration::from_millis(1));
        self.io_timeout = io.max(Duration::from_millis(1));
        self
    }

    /// The same client accepting values of at most `bytes` (the servers' item size limit,
    /// memcached's `-I`); a larger one in a reply fails that server's keys of the call.
    pub fn with_max_value(mut self, bytes: usize) -> Self {
        self.max_value = bytes;
        self
    }

    /// The same client, sleeping `latency` in every per-server multi-get (servers still
    /// concurrently), as servers across a network would take.
    pub fn with_latency(mut self, latency: Duration) -> Self {
        self.latency = Some(latency).filter(|l| !l.is_zero());
        self
    }

    /// The servers, as configured.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.shared.servers.iter().map(|s| s.name.as_str())
    }

    /// The index of the server holding `key`: FNV-1a of the key modulo the server count.
    pub fn server_index(&self, key: &str) -> usize {
        server_index(key, self.shared.servers.len())
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
    pub fn get_multi(&self, keys: &[String]) -> Vec<Lookup> {
        let (mut out, work) = shard(keys, self.shared.servers.len());
        let results: Vec<Result<Vec<(String, String)>, McError>> = match work.as_slice() {
            [] => Vec::new(),
            [(server, idx)] => vec![self.server_get(*server, keys, idx)],
            [(server, idx), rest @ ..] => std::thread::scope(|s| {
                let others: Vec<_> = rest
                    .iter()
                    .map(|(server, idx)| s.spawn(move || self.server_get(*server, keys, idx)))
                    .collect();
                let mut results = vec![self.server_get(*server, keys, idx)];
                results.extend(
                    others
                        .into_iter()
                        .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p))),
                );
                results
            }),
        };
        spread(&mut out, keys, &work, results);
        out
    }

    /// Store `pairs` (no expiry), pipelined, server by server. Not counted as round trips.
    /// Fails with the first server that failed (or was backed off).
    pub fn set_multi<K, V>(&self, pairs: impl IntoIterator<Item = (K, V)>) -> Result<(), McError>
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut shards: Vec<Vec<(K, V)>> = self.shared.servers.iter().map(|_| Vec::new()).collect();
        for (key, value) in pairs {
            validate_key(key.as_ref())?;
            shards[self.server_index(key.as_ref())].push((key, value));
        }
        for (server, pairs) in shards.iter().enumerate() {
            let pairs: Vec<(&str, &str)> = pairs
                .iter()
                .map(|(k, v)| (k.as_ref(), v.as_ref()))
                .collect();
            self.set_on(server, &pairs)?;
        }
        Ok(())
    }

    /// One multi-get on one server: the values it holds of `keys[i]` for `i` in `idx`.
    fn server_get(
        &self,
        server: usize,
        keys: &[String],
        idx: &[usize],
    ) -> Result<Vec<(String, String)>, McError> {
        let ticket = self.shared.servers[server].breaker.admit()?;
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        self.shared.keys.fetch_add(idx.len(), Ordering::Relaxed);
        if let Some(latency) = self.latency {
            std::thread::sleep(latency);
        }
        let request = get_request(idx.iter().map(|&i| keys[i].as_str()));
        let max_value = self.max_value;
        self.exchange(server, ticket, |conn| {
            conn.get_mut().write_all(&request)?;
            read_values(conn, idx.len(), max_value)
        })
    }

    /// Store `pairs` on one server: pipelined `set`s, their replies read every
    /// [`SET_CHUNK`] so that the server never waits on a full socket while we still write.
    fn set_on(&self, server: usize, pairs: &[(&str, &str)]) -> Result<(), McError> {
        if pairs.is_empty() {
            return Ok(());
        }
        let mut requests = Vec::new();
        for chunk in pairs.chunks(SET_CHUNK) {
            let mut request = Vec::new();
            for (key, value) in chunk {
                push_set(&mut request, key, value, self.max_value)?;
            }
            requests.push((request, chunk.len()));
        }
        let ticket = self.shared.servers[server].breaker.admit()?;
        self.exchange(server, ticket, |conn| {
            for (request, n) in &requests {
                conn.get_mut().write_all(request)?;
                for _ in 0..*n {
                    let line = read_line(conn)?;
                    if line != b"STORED\r\n" {
                        return Err(protocol(format!(
                            "set answered {:?}",
                            String::from_utf8_lossy(&line).trim_end()
                        )));
                    }
                }
            }
            Ok(())
        })
    }

    /// Run `talk` on a pooled connection to `server` (a new one if none is idle, or if the
    /// idle one turns out closed), all within one deadline, keeping the connection only if
    /// `talk` succeeded; the outcome goes to the server's breaker.
    fn exchange<T>(
        &self,
        server: usize,
        ticket: Ticket<'_>,
        mut talk: impl FnMut(&mut Conn) -> io::Result<T>,
    ) -> Result<T, McError> {
        let server = &self.shared.servers[server];
        let deadline = Instant::now() + self.io_timeout;
        let result = self.exchange_by(server, deadline, &mut talk);
        ticket.done(result.as_ref().map(drop));
        result
    }

    fn exchange_by<T>(
        &self,
        server: &Server,
        deadline: Instant,
        talk: &mut impl FnMut(&mut Conn) -> io::Result<T>,
    ) -> Result<T, McError> {
        let failed = |e: io::Error| server.error("request", describe(&e, self.io_timeout));
        let pooled = server.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(mut conn) = pooled {
            conn.get_mut().deadline = deadline;
            match talk(&mut conn) {
                Ok(v) => {
                    self.put_back(server, conn);
                    return Ok(v);
                }
                // The server closed an idle connection (a restart): retry on a new one.
                Err(e) if is_stale(&e) => {}
                Err(e) => return Err(failed(e)),
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let limit = self.connect_timeout.min(left).max(Duration::from_millis(1));
        let stream = TcpStream::connect_timeout(&server.addr, limit)
            .map_err(|e| server.error("connect", describe(&e, limit)))?;
        stream
            .set_nodelay(true)
            .map_err(|e| server.error("connect", e))?;
        let mut conn = BufReader::with_capacity(64 * 1024, Timed { stream, deadline });
        let v = talk(&mut conn).map_err(failed)?;
        self.put_back(server, conn);
        Ok(v)
    }

    fn put_back(&self, server: &Server, conn: Conn) {
        let mut idle = server.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < 8 {
            idle.push(conn);
        }
    }
}

impl DataSource for Memcached {
    type Key = String;
    type Value = Lookup;
    type Error = Infallible;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, Lookup)>, Infallible> {
        let (mc, keys) = (self.share(), keys.to_vec());
        Ok(offload(move || {
            let lookups = mc.get_multi(&keys);
            keys.into_iter().zip(lookups).collect()
        })
        .await)
    }

    fn name(&self) -> &str {
        "memcached"
    }
}
