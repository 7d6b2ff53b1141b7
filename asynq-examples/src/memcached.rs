//! memcached: a client of the text protocol over one or more servers, and data sources.
//!
//! [`Memcached`] shards keys over its servers by a stable hash (FNV-1a of the key, modulo the
//! number of servers) and answers a batch with one `get k1 k2 ...` per server, all servers
//! queried at once (a scoped thread per server beyond the first). Connections are kept per
//! server and reused; connecting and every read and write have a timeout, so a dead or stuck
//! server costs at most its timeouts and fails only its own keys, with an error naming it.
//! Keys that memcached would reject (empty, longer than 250 bytes, holding a space or a
//! control character) fail before any I/O.
//!
//! Used as a source, each call runs off the run's thread (the client blocks): on tokio's
//! blocking pool inside a tokio runtime, else on a thread of its own. Calls to different
//! sources of one round overlap and an async executor is never blocked.
//!
//! Two sources sit on it:
//! - [`Memcached`] itself, with `Value = Result<Option<String>, McError>`: every key gets
//!   its own outcome, `Ok(None)` for a miss and `Err` for an invalid key or a failed server,
//!   so that one dead server fails only its own keys.
//! - [`MemcachedKv`], with `Value = String`, the FEED-1 page's `memcached` backend: a miss is
//!   left out of the answer (the task sees [`asynq_core::Error::MissingKey`]), and a failed
//!   server fails the whole call, since a `Value = String` source has nowhere else to put a
//!   per-key error.
//!
//! The client is written here rather than taken from a crate because the crates at hand
//! query servers one after another and fail a whole multi-get when one server fails.

use std::collections::HashMap;
use std::convert::Infallible;
use std::fmt;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs as _};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asynq_core::DataSource;

use crate::feed::{Params, fnv1a64};
use crate::kv::KvStore;
use crate::offload::offload;

/// The longest key memcached accepts, in bytes.
pub const MAX_KEY_LEN: usize = 250;

/// Sets sent on a connection before their replies are read, when loading.
const SET_CHUNK: usize = 512;

/// What one key of a multi-get gives: its value, `None` when the server does not hold it, or
/// why it could not be asked.
pub type Lookup = Result<Option<String>, McError>;

/// Why memcached could not answer a key.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum McError {
    /// The key cannot be sent to memcached; nothing was sent.
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
        }
    }
}

impl std::error::Error for McError {}

/// Check that memcached's text protocol can carry `key`.
///
/// # Examples
///
/// ```
/// use asynq_examples::memcached::validate_key;
///
/// assert!(validate_key("u:1:name").is_ok());
/// let err = validate_key("two words").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid memcached key \"two words\": contains a space or control character at byte 3"
/// );
/// assert!(validate_key(&"k".repeat(251)).is_err());
/// ```
pub fn validate_key(key: &str) -> Result<(), McError> {
    let reason = if key.is_empty() {
        "is empty".to_string()
    } else if key.len() > MAX_KEY_LEN {
        format!("is {} bytes long, more than {MAX_KEY_LEN}", key.len())
    } else if let Some(i) = key.bytes().position(|b| b <= b' ' || b == 0x7f) {
        format!("contains a space or control character at byte {i}")
    } else {
        return Ok(());
    };
    Err(McError::InvalidKey {
        key: key.chars().take(60).collect(),
        reason,
    })
}

/// One server: its address and its idle connections.
#[derive(Debug)]
struct Server {
    name: String,
    addr: SocketAddr,
    idle: Mutex<Vec<BufReader<TcpStream>>>,
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
/// naming it, and an invalid key fails before any I/O.
///
/// ```
/// use asynq_examples::memcached::{Memcached, McError};
///
/// let mc = Memcached::new(["127.0.0.1:1"])?;
/// let got = mc.get_multi(&["a".to_string(), "not valid".to_string()]);
/// assert!(matches!(&got[0], Err(McError::Server { server, .. }) if server == "127.0.0.1:1"));
/// assert!(matches!(&got[1], Err(McError::InvalidKey { .. })));
/// assert_eq!(mc.calls(), 1);
/// # Ok::<(), McError>(())
/// ```
#[derive(Debug)]
pub struct Memcached {
    shared: Arc<Shared>,
    connect_timeout: Duration,
    io_timeout: Duration,
    latency: Option<Duration>,
}

/// What the clones that run calls on their own threads share: servers, pools, counters.
#[derive(Debug)]
struct Shared {
    servers: Vec<Server>,
    calls: AtomicUsize,
    keys: AtomicUsize,
}

/// The keys of one multi-get, sorted by server: each key's outcome so far (invalid keys fail
/// before any I/O, the others start as misses), and per server holding some valid key, the
/// indices of its keys. Shared with the async client.
pub(crate) fn shard(keys: &[String], servers: usize) -> (Vec<Lookup>, Vec<(usize, Vec<usize>)>) {
    let mut out: Vec<Lookup> = vec![Ok(None); keys.len()];
    let mut shards: Vec<Vec<usize>> = vec![Vec::new(); servers];
    for (i, key) in keys.iter().enumerate() {
        match validate_key(key) {
            Ok(()) => shards[(fnv1a64(key.as_bytes()) % servers as u64) as usize].push(i),
            Err(e) => out[i] = Err(e),
        }
    }
    let work = shards
        .into_iter()
        .enumerate()
        .filter(|(_, idx)| !idx.is_empty())
        .collect();
    (out, work)
}

/// Each server's answer (or failure) to the keys it was asked: `results[j]` answers
/// `work[j]`. Keys it did not return stay misses. Shared with the async client.
pub(crate) fn spread(
    out: &mut [Lookup],
    keys: &[String],
    work: &[(usize, Vec<usize>)],
    results: Vec<Result<Vec<(String, String)>, McError>>,
) {
    for ((_, idx), result) in work.iter().zip(results) {
        match result {
            Ok(found) => {
                let mut found: HashMap<String, String> = found.into_iter().collect();
                for &i in idx {
                    out[i] = Ok(found.remove(&keys[i]));
                }
            }
            Err(e) => {
                for &i in idx {
                    out[i] = Err(e.clone());
                }
            }
        }
    }
}

/// `host:port` of each server, resolved: (the name as given, its address). Shared with the
/// async client.
pub(crate) fn resolve<I, S>(servers: I) -> Result<Vec<(String, SocketAddr)>, McError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let servers = servers
        .into_iter()
        .map(|s| {
            let name = s.as_ref().trim().to_string();
            let bad = |message: String| McError::Server {
                server: name.clone(),
                message,
            };
            let addr = name
                .to_socket_addrs()
                .map_err(|e| bad(format!("not an address: {e}")))?
                .next()
                .ok_or_else(|| bad("not an address".to_string()))?;
            Ok((name, addr))
        })
        .collect::<Result<Vec<_>, McError>>()?;
    if servers.is_empty() {
        return Err(McError::Server {
            server: String::new(),
            message: "no server given".to_string(),
        });
    }
    Ok(servers)
}

impl Memcached {
    /// A client of `servers` (`host:port` each), with timeouts of 1 s to connect and 2 s per
    /// read or write. Nothing is connected yet.
    pub fn new<I, S>(servers: I) -> Result<Memcached, McError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let servers = resolve(servers)?
            .into_iter()
            .map(|(name, addr)| Server {
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

    /// The same client with other timeouts: to connect, and for each read or write.
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> Self {
        self.connect_timeout = connect.max(Duration::from_millis(1));
        self.io_timeout = io.max(Duration::from_millis(1));
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
        (fnv1a64(key.as_bytes()) % self.shared.servers.len() as u64) as usize
    }

    /// The server holding `key`, as configured.
    pub fn server_of(&self, key: &str) -> &str {
        &self.shared.servers[self.server_index(key)].name
    }

    /// Per-server multi-gets so far (round trips).
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
        self.shared.calls.fetch_add(1, Ordering::Relaxed);
        self.shared.keys.fetch_add(idx.len(), Ordering::Relaxed);
        if let Some(latency) = self.latency {
            std::thread::sleep(latency);
        }
        let mut request =
            Vec::with_capacity(6 + idx.iter().map(|&i| keys[i].len() + 1).sum::<usize>());
        request.extend_from_slice(b"get");
        for &i in idx {
            request.push(b' ');
            request.extend_from_slice(keys[i].as_bytes());
        }
        request.extend_from_slice(b"\r\n");
        self.exchange(server, |conn| {
            conn.get_mut().write_all(&request)?;
            read_values(conn)
        })
    }

    /// Store `pairs` on one server: pipelined `set`s, their replies read every
    /// [`SET_CHUNK`] so that the server never waits on a full socket while we still write.
    fn set_on(&self, server: usize, pairs: &[(&str, &str)]) -> Result<(), McError> {
        if pairs.is_empty() {
            return Ok(());
        }
        self.exchange(server, |conn| {
            for chunk in pairs.chunks(SET_CHUNK) {
                let mut requests = Vec::new();
                for (key, value) in chunk {
                    requests
                        .extend_from_slice(format!("set {key} 0 0 {}\r\n", value.len()).as_bytes());
                    requests.extend_from_slice(value.as_bytes());
                    requests.extend_from_slice(b"\r\n");
                }
                conn.get_mut().write_all(&requests)?;
                for _ in chunk {
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
    /// idle one turns out closed), keeping the connection only if `talk` succeeded.
    fn exchange<T>(
        &self,
        server: usize,
        mut talk: impl FnMut(&mut BufReader<TcpStream>) -> io::Result<T>,
    ) -> Result<T, McError> {
        let server = &self.shared.servers[server];
        let pooled = server.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(mut conn) = pooled {
            match talk(&mut conn) {
                Ok(v) => {
                    self.put_back(server, conn);
                    return Ok(v);
                }
                // The server closed an idle connection (a restart): retry on a new one.
                Err(e) if is_stale(&e) => {}
                Err(e) => return Err(server.error("request", describe(&e, self.io_timeout))),
            }
        }
        let stream = TcpStream::connect_timeout(&server.addr, self.connect_timeout)
            .map_err(|e| server.error("connect", describe(&e, self.connect_timeout)))?;
        let setup = stream
            .set_nodelay(true)
            .and_then(|()| stream.set_read_timeout(Some(self.io_timeout)))
            .and_then(|()| stream.set_write_timeout(Some(self.io_timeout)));
        setup.map_err(|e| server.error("connect", e))?;
        let mut conn = BufReader::with_capacity(64 * 1024, stream);
        let v =
            talk(&mut conn).map_err(|e| server.error("request", describe(&e, self.io_timeout)))?;
        self.put_back(server, conn);
        Ok(v)
    }

    fn put_back(&self, server: &Server, conn: BufReader<TcpStream>) {
        let mut idle = server.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < 8 {
            idle.push(conn);
        }
    }
}

/// Whether an error on a pooled connection means the server had closed it. Shared with the
/// async client.
pub(crate) fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// An I/O error in words, a timeout with its length.
fn describe(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {timeout:?}")
        }
        _ => e.to_string(),
    }
}

/// A malformed answer from a server. Shared with the async client.
pub(crate) fn protocol(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// One line of the server's answer, `\r\n` included; an error if the connection closed.
fn read_line(conn: &mut BufReader<TcpStream>) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    if conn.read_until(b'\n', &mut line)? == 0 || !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        ));
    }
    Ok(line)
}

/// The answer to a `get`: `VALUE <key> <flags> <bytes>` + data lines, then `END`.
fn read_values(conn: &mut BufReader<TcpStream>) -> io::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    loop {
        let Some((key, bytes)) = value_header(&read_line(conn)?)? else {
            return Ok(found);
        };
        let mut data = vec![0; bytes + 2];
        conn.read_exact(&mut data)?;
        found.push(value_data(key, data)?);
    }
}

/// One header line of a `get` answer: `VALUE <key> <flags> <bytes>\r\n` gives the key and the
/// data's length; `END\r\n` gives `None`. Shared with the async client.
pub(crate) fn value_header(line: &[u8]) -> io::Result<Option<(String, usize)>> {
    if line == b"END\r\n" {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_ascii_whitespace();
    if words.next() != Some("VALUE") {
        return Err(protocol(format!("unexpected answer {:?}", text.trim_end())));
    }
    let (Some(key), Some(_flags), Some(bytes)) = (words.next(), words.next(), words.next()) else {
        return Err(protocol(format!("bad VALUE line {:?}", text.trim_end())));
    };
    let bytes: usize = bytes
        .parse()
        .map_err(|_| protocol(format!("bad VALUE length {bytes:?}")))?;
    Ok(Some((key.to_string(), bytes)))
}

/// The data block of a value, read as `<bytes>\r\n`: checked and decoded. Shared with the async
/// client.
pub(crate) fn value_data(key: String, mut data: Vec<u8>) -> io::Result<(String, String)> {
    if !data.ends_with(b"\r\n") {
        return Err(protocol(format!("value of {key:?} not followed by \\r\\n")));
    }
    data.truncate(data.len() - 2);
    let value =
        String::from_utf8(data).map_err(|_| protocol(format!("value of {key:?} is not UTF-8")))?;
    Ok((key, value))
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

/// memcached with `get_multi` semantics, `Value = String`: the FEED-1 page's `memcached`
/// backend.
///
/// A miss is left out of the answer, so the task asking for it sees
/// [`asynq_core::Error::MissingKey`]. An invalid key or a failed server fails the whole call
/// with an [`McError`] naming the key or the server: use [`Memcached`] as the source to fail
/// only the keys concerned. [`load_feed`](MemcachedKv::load_feed) stores the FEED-1 data set
/// on the servers that do not hold it yet.
#[derive(Debug)]
pub struct MemcachedKv {
    client: Memcached,
}

/// The key under which each server records which FEED-1 data set it holds.
const FEED_TAG_KEY: &str = "asynq:feed1:dataset";

impl MemcachedKv {
    /// The source over `client`.
    pub fn new(client: Memcached) -> Self {
        MemcachedKv { client }
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
        let tags: Vec<String> = (0..n)
            .map(|i| {
                format!(
                    "FEED-1 Q={} A={} shard {} of {}",
                    p.questions,
                    p.answers,
                    i + 1,
                    mc.servers().collect::<Vec<_>>().join(",")
                )
            })
            .collect();
        let mut missing = Vec::new();
        for (server, tag) in tags.iter().enumerate() {
            let held = mc.exchange(server, |conn| {
                conn.get_mut()
                    .write_all(format!("get {FEED_TAG_KEY}\r\n").as_bytes())?;
                read_values(conn)
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
        }
    }

    fn get_strict(&self, keys: &[String]) -> Result<Vec<(String, String)>, McError> {
        let mut found = Vec::with_capacity(keys.len());
        for (key, lookup) in keys.iter().zip(self.client.get_multi(keys)) {
            if let Some(value) = lookup? {
                found.push((key.clone(), value));
            }
        }
        Ok(found)
    }
}

impl KvStore for MemcachedKv {
    type Error = McError;

    fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, McError> {
        self.get_strict(keys)
    }

    fn round_trips(&self) -> usize {
        self.client.calls()
    }

    fn keys_sent(&self) -> usize {
        self.client.keys()
    }
}

impl DataSource for MemcachedKv {
    type Key = String;
    type Value = String;
    type Error = McError;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, McError> {
        let kv = MemcachedKv {
            client: self.client.share(),
        };
        let keys = keys.to_vec();
        offload(move || kv.get_strict(&keys)).await
    }

    /// A dead server fails only its own keys (with an error naming it); misses are left out.
    async fn fetch_each(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, Result<String, McError>)>, McError> {
        let client = self.client.share();
        let keys = keys.to_vec();
        let lookups = offload(move || {
            let lookups = client.get_multi(&keys);
            keys.into_iter().zip(lookups).collect::<Vec<_>>()
        })
        .await;
        Ok(lookups
            .into_iter()
            .filter_map(|(key, lookup)| match lookup {
                Ok(Some(value)) => Some((key, Ok(value))),
                Ok(None) => None,
                Err(error) => Some((key, Err(error))),
            })
            .collect())
    }

    fn name(&self) -> &str {
        "memcached"
    }
}
