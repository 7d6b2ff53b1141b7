//! Sources whose `fetch` does its I/O under tokio: memcached over a tokio TCP connection, and
//! SQLite on tokio's blocking pool.
//!
//! - [`AsyncMemcached`]: a client of memcached's text protocol over one or more servers, keys
//!   sharded by the same stable hash as the blocking [`Memcached`](crate::memcached::Memcached)
//!   (FNV-1a modulo the server count, so both find a key on the same server). One call sends
//!   one `get k1 k2 ...` per server holding some of the keys, all servers at once (joined in
//!   the call's own future: no thread per server). Connecting and each exchange have a
//!   timeout; a dead or stuck server fails only its own keys, with an error naming it. As a
//!   source it answers each key with its own [`Lookup`].
//! - [`AsyncSqliteKv`]: the FEED-1 `kv` table, each query run by
//!   [`tokio::task::spawn_blocking`] with the query logic of [`Db::query`].
//! - [`ReadThrough`]: [`AsyncSqliteKv`] with memcached in front: keys memcached holds come
//!   from it, the others from SQLite, written back to memcached. A failed memcached server
//!   costs its keys a trip to SQLite, never a failed page.
//!
//! All three need a tokio runtime with I/O and time enabled (poll them under
//! [`Runtime::run_async`](asynq_core::Runtime::run_async) inside tokio); outside one, their
//! calls fail with an error saying so.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use asynq_core::DataSource;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::feed::fnv1a64;
use crate::memcached::{
    Lookup, McError, is_stale, protocol, shard, spread, validate_key, value_data, value_header,
};
use crate::sqlite::{Db, Kv};

/// Idle connections kept per server.
const POOL: usize = 32;

/// An open connection to a server, with its read buffer.
type Conn = BufReader<TcpStream>;

/// The error of a call made outside a tokio runtime.
fn no_tokio(what: &str) -> io::Error {
    io::Error::other(format!(
        "{what} needs a tokio runtime: run the task with Runtime::run_async inside tokio"
    ))
}

/// One server: its address and its idle connections.
#[derive(Debug)]
struct Server {
    name: String,
    addr: SocketAddr,
    idle: Mutex<Vec<Conn>>,
}

impl Server {
    fn error(&self, what: &str, e: impl fmt::Display) -> McError {
        McError::Server {
            server: self.name.clone(),
            message: format!("{what}: {e}"),
        }
    }
}

/// What the answer to a request is.
#[derive(Clone, Copy, Debug)]
enum Reply {
    /// `VALUE` blocks, then `END`.
    Values,
    /// This many `STORED` lines.
    Stored(usize),
}

/// A memcached client over tokio TCP connections, and a source answering each key with its
/// own [`Lookup`].
///
/// Build one at start-up and share it: each server keeps a pool of open connections. One call
/// of [`get_multi`](AsyncMemcached::get_multi) sends one `get` per server holding some of the
/// keys, all at once, and counts one round trip per server.
///
/// # Examples
///
/// Nothing listens on port 1 of this machine: the key on that server fails with an error
/// naming it, and an invalid key fails before any I/O.
///
/// ```
/// use asynq_examples::async_kv::AsyncMemcached;
/// use asynq_examples::memcached::McError;
///
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// let mc = AsyncMemcached::new(["127.0.0.1:1"])?;
/// let got = mc.get_multi(&["a".to_string(), "not valid".to_string()]).await;
/// assert!(matches!(&got[0], Err(McError::Server { server, .. }) if server == "127.0.0.1:1"));
/// assert!(matches!(&got[1], Err(McError::InvalidKey { .. })));
/// assert_eq!(mc.calls(), 1);
/// # Ok::<(), McError>(())
/// # }).unwrap();
/// ```
#[derive(Debug)]
pub struct AsyncMemcached {
    servers: Vec<Server>,
    connect_timeout: Duration,
    io_timeout: Duration,
    calls: AtomicUsize,
    keys: AtomicUsize,
}

impl AsyncMemcached {
    /// A client of `servers` (`host:port` each), with timeouts of 1 s to connect and 2 s per
    /// exchange. Nothing is connected yet.
    pub fn new<I, S>(servers: I) -> Result<AsyncMemcached, McError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let servers = crate::memcached::resolve(servers)?
            .into_iter()
            .map(|(name, addr)| Server {
                name,
                addr,
                idle: Mutex::new(Vec::new()),
            })
            .collect();
        Ok(AsyncMemcached {
            servers,
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(2),
            calls: AtomicUsize::new(0),
            keys: AtomicUsize::new(0),
        })
    }

    /// The same client with other timeouts: to connect, and for each exchange (a request and
    /// its whole answer).
    pub fn with_timeouts(mut self, connect: Duration, io: Duration) -> Self {
        self.connect_timeout = connect.max(Duration::from_millis(1));
        self.io_timeout = io.max(Duration::from_millis(1));
        self
    }

    /// The servers, as configured.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(|s| s.name.as_str())
    }

    /// The index of the server holding `key`: FNV-1a of the key modulo the server count, as
    /// [`Memcached::server_index`](crate::memcached::Memcached::server_index) computes it.
    pub fn server_index(&self, key: &str) -> usize {
        (fnv1a64(key.as_bytes()) % self.servers.len() as u64) as usize
    }

    /// Per-server multi-gets so far (round trips).
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::Relaxed)
    }

    /// Keys sent so far, over all multi-gets.
    pub fn keys(&self) -> usize {
        self.keys.load(Ordering::Relaxed)
    }

    /// Each key's outcome, in the order of `keys`: one `get` per server holding some of the
    /// (valid) keys, all servers at once.
    pub async fn get_multi(&self, keys: &[String]) -> Vec<Lookup> {
        let (mut out, work) = shard(keys, self.servers.len());
        let results =
            futures::future::join_all(work.iter().map(|(server, idx)| {
                self.server_get(*server, idx.iter().map(|&i| keys[i].as_str()))
            }))
            .await;
        spread(&mut out, keys, &work, results);
        out
    }

    /// Store `pairs` (no expiry): one pipelined exchange per server, all servers at once. Not
    /// counted as round trips. Fails with the first failed server's error.
    pub async fn set_multi(&self, pairs: &[(String, String)]) -> Result<(), McError> {
        let mut shards: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0); self.servers.len()];
        for (key, value) in pairs {
            validate_key(key)?;
            let (request, n) = &mut shards[self.server_index(key)];
            request.extend_from_slice(format!("set {key} 0 0 {}\r\n", value.len()).as_bytes());
            request.extend_from_slice(value.as_bytes());
            request.extend_from_slice(b"\r\n");
            *n += 1;
        }
        let results =
            futures::future::join_all(
                shards.iter().enumerate().filter(|(_, (_, n))| *n > 0).map(
                    |(server, (request, n))| self.exchange(server, request, Reply::Stored(*n)),
                ),
            )
            .await;
        results.into_iter().try_for_each(|r| r.map(drop))
    }

    /// One multi-get on one server.
    async fn server_get(
        &self,
        server: usize,
        keys: impl Iterator<Item = &str>,
    ) -> Result<Vec<(String, String)>, McError> {
        let mut request = b"get".to_vec();
        let mut n = 0;
        for key in keys {
            request.push(b' ');
            request.extend_from_slice(key.as_bytes());
            n += 1;
        }
        request.extend_from_slice(b"\r\n");
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.keys.fetch_add(n, Ordering::Relaxed);
        self.exchange(server, &request, Reply::Values).await
    }

    /// Send `request` on a pooled connection to `server` (a new one if none is idle, or if the
    /// idle one turns out closed) and read its answer, within the timeouts. The connection
    /// goes back to the pool only after a complete exchange.
    async fn exchange(
        &self,
        server: usize,
        request: &[u8],
        reply: Reply,
    ) -> Result<Vec<(String, String)>, McError> {
        let server = &self.servers[server];
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(server.error("request", no_tokio("the async memcached client")));
        }
        let pooled = server.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        if let Some(mut conn) = pooled {
            match self.talk(&mut conn, request, reply).await {
                Ok(found) => {
                    self.put_back(server, conn);
                    return Ok(found);
                }
                // The server closed an idle connection: try once more on a new one.
                Err(e) if is_stale(&e) => {}
                Err(e) => return Err(server.error("request", e)),
            }
        }
        let stream =
            match tokio::time::timeout(self.connect_timeout, TcpStream::connect(server.addr)).await
            {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return Err(server.error("connect", e)),
                Err(_) => {
                    let limit = self.connect_timeout;
                    return Err(server.error("connect", format!("no answer within {limit:?}")));
                }
            };
        stream
            .set_nodelay(true)
            .map_err(|e| server.error("connect", e))?;
        let mut conn = BufReader::with_capacity(64 * 1024, stream);
        let found = self
            .talk(&mut conn, request, reply)
            .await
            .map_err(|e| server.error("request", e))?;
        self.put_back(server, conn);
        Ok(found)
    }

    /// Write `request` and read its answer, within the exchange timeout.
    async fn talk(
        &self,
        conn: &mut Conn,
        request: &[u8],
        reply: Reply,
    ) -> io::Result<Vec<(String, String)>> {
        let exchange = async {
            conn.get_mut().write_all(request).await?;
            match reply {
                Reply::Values => read_values(conn).await,
                Reply::Stored(n) => {
                    for _ in 0..n {
                        let line = read_line(conn).await?;
                        if line != b"STORED\r\n" {
                            return Err(protocol(format!(
                                "set answered {:?}",
                                String::from_utf8_lossy(&line).trim_end()
                            )));
                        }
                    }
                    Ok(Vec::new())
                }
            }
        };
        tokio::time::timeout(self.io_timeout, exchange)
            .await
            .unwrap_or_else(|_| {
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {:?}", self.io_timeout),
                ))
            })
    }

    fn put_back(&self, server: &Server, conn: Conn) {
        let mut idle = server.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < POOL {
            idle.push(conn);
        }
    }
}

/// One line of the server's answer, `\r\n` included; an error if the connection closed.
async fn read_line(conn: &mut Conn) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    if conn.read_until(b'\n', &mut line).await? == 0 || !line.ends_with(b"\n") {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed by the server",
        ));
    }
    Ok(line)
}

/// The answer to a `get`: `VALUE <key> <flags> <bytes>\r\n<data>\r\n` blocks, then `END\r\n`.
async fn read_values(conn: &mut Conn) -> io::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    loop {
        let Some((key, bytes)) = value_header(&read_line(conn).await?)? else {
            return Ok(found);
        };
        let mut data = vec![0; bytes + 2];
        conn.read_exact(&mut data).await?;
        found.push(value_data(key, data)?);
    }
}

impl DataSource for AsyncMemcached {
    type Key = String;
    type Value = Lookup;
    type Error = Infallible;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, Lookup)>, Infallible> {
        let lookups = self.get_multi(keys).await;
        Ok(keys.iter().cloned().zip(lookups).collect())
    }

    fn name(&self) -> &str {
        "memcached"
    }
}

/// The error of an SQLite call run on tokio's blocking pool.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The FEED-1 `kv` table (see [`SqliteKv`](crate::sqlite::SqliteKv)), each query run on
/// tokio's blocking pool by [`tokio::task::spawn_blocking`].
///
/// Absent keys are left out of the answer, as memcached leaves them out. Its queries are
/// [`Db::query`]'s, so [`Db::calls`] counts them.
///
/// # Examples
///
/// ```
/// use asynq_core::Runtime;
/// use asynq_examples::async_kv::AsyncSqliteKv;
/// use asynq_examples::feed::{self, Params};
/// use asynq_examples::sqlite::{Db, SqliteKv};
///
/// let p = Params { questions: 10, answers: 5 };
/// let db = Db::open_in_memory()?;
/// SqliteKv::create(db.clone())?.put_all(feed::dataset(p))?;
/// let rt = Runtime::new().with_source(AsyncSqliteKv::new(db.clone()));
/// let tokio = tokio::runtime::Builder::new_current_thread().build()?;
/// let page = tokio.block_on(rt.run_async(feed::feed::<AsyncSqliteKv>(p)))?;
/// assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26a36b50baee7b);
/// assert_eq!(db.calls(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct AsyncSqliteKv {
    db: Db,
}

impl AsyncSqliteKv {
    /// The `kv` table of `db` (made by [`SqliteKv::create`](crate::sqlite::SqliteKv::create)).
    pub fn new(db: Db) -> Self {
        AsyncSqliteKv { db }
    }

    /// The connection, with its query counters.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The values of the keys present: one query per chunk of keys, on the blocking pool.
    pub async fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(no_tokio("the async SQLite source").into());
        }
        let (db, keys) = (self.db.clone(), keys.to_vec());
        match tokio::task::spawn_blocking(move || db.query::<Kv>(&keys)).await {
            Ok(rows) => Ok(rows?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(e.into()),
        }
    }
}

impl DataSource for AsyncSqliteKv {
    type Key = String;
    type Value = String;
    type Error = BoxError;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        self.get_multi(keys).await
    }

    fn name(&self) -> &str {
        "sqlite"
    }

    fn max_batch_size(&self) -> Option<usize> {
        Some(self.db.max_params())
    }
}

/// A key-value source over [`AsyncSqliteKv`], with memcached in front when given one.
///
/// Each call asks memcached first (keys under `prefix`, so that several data sets can share
/// servers), then SQLite for the keys memcached did not give (misses, and every key of a
/// failed server), and writes what SQLite answered back to memcached before answering. One
/// call of the source is at most two round trips per store, however many keys it carries.
/// A memcached failure never fails a key: SQLite answers it. An SQLite failure fails the
/// call's keys that memcached did not hold.
///
/// # Examples
///
/// ```
/// use asynq_examples::async_kv::{AsyncSqliteKv, ReadThrough};
/// use asynq_examples::sqlite::Db;
///
/// let store = ReadThrough::new(AsyncSqliteKv::new(Db::open_in_memory()?));
/// assert!(store.cache().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReadThrough {
    store: AsyncSqliteKv,
    cache: Option<(Arc<AsyncMemcached>, String)>,
}

impl ReadThrough {
    /// SQLite alone.
    pub fn new(store: AsyncSqliteKv) -> Self {
        ReadThrough { store, cache: None }
    }

    /// The same source with `cache` in front, its keys stored as `prefix` + key.
    pub fn with_cache(mut self, cache: Arc<AsyncMemcached>, prefix: impl Into<String>) -> Self {
        self.cache = Some((cache, prefix.into()));
        self
    }

    /// The SQLite store.
    pub fn store(&self) -> &AsyncSqliteKv {
        &self.store
    }

    /// The memcached client in front, if any.
    pub fn cache(&self) -> Option<&AsyncMemcached> {
        self.cache.as_ref().map(|(mc, _)| &**mc)
    }

    /// The values of the keys present, from memcached where it holds them, else SQLite.
    pub async fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        let Some((mc, prefix)) = &self.cache else {
            return self.store.get_multi(keys).await;
        };
        let cached: Vec<String> = keys.iter().map(|k| format!("{prefix}{k}")).collect();
        let mut found = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (key, lookup) in keys.iter().zip(mc.get_multi(&cached).await) {
            match lookup {
                Ok(Some(value)) => found.push((key.clone(), value)),
                Ok(None) | Err(_) => missing.push(key.clone()),
            }
        }
        if !missing.is_empty() {
            let rows = self.store.get_multi(&missing).await?;
            let back: Vec<(String, String)> = rows
                .iter()
                .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
                .collect();
            // Best effort: a server that cannot take them is asked again next time.
            let _ = mc.set_multi(&back).await;
            found.extend(rows);
        }
        Ok(found)
    }
}

impl DataSource for ReadThrough {
    type Key = String;
    type Value = String;
    type Error = BoxError;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        self.get_multi(keys).await
    }

    fn name(&self) -> &str {
        if self.cache.is_some() {
            "memcached+sqlite"
        } else {
            "sqlite"
        }
    }

    fn max_batch_size(&self) -> Option<usize> {
        self.store.max_batch_size()
    }
}
