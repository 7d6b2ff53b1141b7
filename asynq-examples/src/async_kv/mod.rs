//! Sources whose `fetch` does its I/O under tokio: memcached over a tokio TCP connection, and
//! SQLite on tokio's blocking pool.
//!
//! - [`AsyncMemcached`]: a client of memcached's text protocol over one or more servers, keys
//!   sharded by the same stable hash as the blocking [`Memcached`](crate::memcached::Memcached)
//!   (FNV-1a modulo the server count, so both find a key on the same server). One call sends
//!   one `get k1 k2 ...` per server holding some of the keys, all servers at once (joined in
//!   the call's own future: no thread per server). Each exchange has one deadline, every
//!   length a server sends is bounded before it is allocated, and a failed server is backed
//!   off, as the blocking client does (see [`crate::memcached`]); a dead, stuck or raving
//!   server fails only its own keys, with an error naming it. As a source it answers each key
//!   with its own [`Lookup`].
//! - [`ReadThrough`]: a [`SqlKv`](crate::sql_kv::SqlKv) (SQLite queries on tokio's blocking
//!   pool) with memcached in front: keys memcached holds come from it, the others from the
//!   database, written back to memcached. A failed memcached server costs its keys a trip to
//!   the database, never a failed page.
//!
//! Both need a tokio runtime with I/O and time enabled (poll them under
//! [`Runtime::run_async`](asynq_core::Runtime::run_async) inside tokio); outside one, their
//! calls fail with an error saying so.

use std::convert::Infallible;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use asynq_core::DataSource;
use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

use crate::memcached::{
    Backoff, Breaker, DEFAULT_MAX_VALUE, Lookup, MAX_LINE, McError, ServerHealth, Ticket,
    check_line, get_request, is_stale, protocol, push_set, server_index, shard, spread,
    too_many_values, value_data, value_header,
};

mod sqlite;

pub use sqlite::{BoxError, ReadThrough};

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

/// What the answer to a request is.
#[derive(Clone, Copy, Debug)]
enum Reply {
    /// At most this many `VALUE` blocks, then `END`.
    Values(usize),
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
    max_value: usize,
    calls: AtomicUsize,
    keys: AtomicUsize,
}

impl AsyncMemcached {
    /// A client of `servers` (`host:port` each), with timeouts of 1 s to connect and 2 s per
    /// exchange, values up to [`DEFAULT_MAX_VALUE`], and the default [`Backoff`]. Nothing is
    /// connected yet.
    pub fn new<I, S>(servers: I) -> Result<AsyncMemcached, McError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        AsyncMemcached::with_backoff(servers, Backoff::default())
    }

    /// A client of `servers` that leaves a failed server alone as `backoff` says.
    pub fn with_backoff<I, S>(servers: I, backoff: Backoff) -> Result<AsyncMemcached, McError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let servers = crate::memcached::resolve(servers)?
            .into_iter()
            .map(|(name, addr)| Server {
                breaker: Breaker::new(&name, backoff),
                name,
                addr,
                idle: Mutex::new(Vec::new()),
            })
            .collect();
        Ok(AsyncMemcached {
            servers,
            connect_timeout: Duration::from_secs(1),
            io_timeout: Duration::from_secs(2),
            max_value: DEFAULT_MAX_VALUE,
            calls: AtomicUsize::new(0),
            keys: AtomicUsize::new(0),
        })
    }

    /// The same client with other timeouts: to connect, and for a whole exchange (connecting,
    /// the request and its whole answer: one deadline).
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

    /// Each server's health: backed off or not, failures, calls skipped.
    pub fn health(&self) -> Vec<ServerHealth> {
        self.servers.iter().map(|s| s.breaker.health()).collect()
    }

    /// The servers, as configured.
    pub fn servers(&self) -> impl Iterator<Item = &str> {
        self.servers.iter().map(|s| s.name.as_str())
    }

    /// The index of the server holding `key`: FNV-1a of the key modulo the server count, as
    /// [`Memcached::server_index`](crate::memcached::Memcached::server_index) computes it.
    pub fn server_index(&self, key: &str) -> usize {
        server_index(key, self.servers.len())
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
    /// counted as round trips. Fails with the first failed (or backed-off) server's error.
    pub async fn set_multi(&self, pairs: &[(String, String)]) -> Result<(), McError> {
        let mut shards: Vec<(Vec<u8>, usize)> = vec![(Vec::new(), 0); self.servers.len()];
        for (key, value) in pairs {
            let (request, n) = &mut shards[self.server_index(key)];
            push_set(request, key, value, self.max_value)?;
            *n += 1;
        }
        let results =
            futures::future::join_all(shards.iter().enumerate().filter(|(_, (_, n))| *n > 0).map(
                |(server, (request, n))| async move {
                    let ticket = self.servers[server].breaker.admit()?;
                    self.exchange(server, ticket, request, Reply::Stored(*n))
                        .await
                },
            ))
            .await;
        results.into_iter().try_for_each(|r| r.map(drop))
    }

    /// One multi-get on one server.
    async fn server_get(
        &self,
        server: usize,
        keys: impl Iterator<Item = &str>,
    ) -> Result<Vec<(String, String)>, McError> {
        let keys: Vec<&str> = keys.collect();
        let request = get_request(keys.iter().copied());
        // A backed-off server is not asked, and its skipped call is not counted.
        let ticket = self.servers[server].breaker.admit()?;
        self.calls.fetch_add(1, Ordering::Relaxed);
        self.keys.fetch_add(keys.len(), Ordering::Relaxed);
        self.exchange(server, ticket, &request, Reply::Values(keys.len()))
            .await
    }

    /// Send `request` on a pooled connection to `server` (a new one if none is idle, or if the
    /// idle one turns out closed) and read its answer, all within one deadline. The
    /// connection goes back to the pool only after a complete exchange; the outcome goes to
    /// the server's breaker.
    async fn exchange(
        &self,
        server: usize,
        ticket: Ticket<'_>,
        request: &[u8],
        reply: Reply,
    ) -> Result<Vec<(String, String)>, McError> {
        let server = &self.servers[server];
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(server.error("request", no_tokio("the async memcached client")));
        }
        let limit = self.io_timeout;
        let result = tokio::time::timeout(limit, self.exchange_on(server, request, reply))
            .await
            .unwrap_or_else(
                |_| Err(server.error("request", format!("no answer within {limit:?}"))),
            );
        ticket.done(result.as_ref().map(drop));
        result
    }

    async fn exchange_on(
        &self,
        server: &Server,
        request: &[u8],
        reply: Reply,
    ) -> Result<Vec<(String, String)>, McError> {
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

    /// Write `request` and read its answer.
    async fn talk(
        &self,
        conn: &mut Conn,
        request: &[u8],
        reply: Reply,
    ) -> io::Result<Vec<(String, String)>> {
        let exchange = async {
            conn.get_mut().write_all(request).await?;
            match reply {
                Reply::Values(asked) => read_values(conn, asked, self.max_value).await,
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
        exchange.await
    }

    fn put_back(&self, server: &Server, conn: Conn) {
        let mut idle = server.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < POOL {
            idle.push(conn);
        }
    }
}

/// One line of the server's answer (at most [`MAX_LINE`] bytes), `\r\n` included.
async fn read_line(conn: &mut Conn) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    (&mut *conn)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    check_line(&line)?;
    Ok(line)
}

/// The answer to a `get` of `asked` keys: `VALUE <key> <flags> <bytes>\r\n<data>\r\n`
/// blocks, each value at most `max_value` bytes, then `END\r\n`.
async fn read_values(
    conn: &mut Conn,
    asked: usize,
    max_value: usize,
) -> io::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    loop {
        let Some((key, bytes)) = value_header(&read_line(conn).await?, max_value)? else {
            return Ok(found);
        };
        if found.len() == asked {
            return Err(too_many_values(asked));
        }
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
