//! Start memcached servers on free local ports, for tests and demos: the memcached
//! [`ServerKind`] of [`local_server`].
//!
//! Tests that need memcached call [`start_or_skip`]; where the `memcached` binary is missing
//! they skip with a notice, unless [`REQUIRE_ENV`] is set (CI sets it): then they fail.

use std::ffi::OsString;
use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::local_server::{self, LocalServer, ServerKind};

/// Set (to anything) to make tests fail instead of skipping when memcached cannot be started.
pub const REQUIRE_ENV: &str = "ASYNQ_REQUIRE_MEMCACHED";

/// memcached: one worker thread, 64 MB, no UDP, its pid read from `stats`.
pub static KIND: ServerKind = ServerKind {
    name: "memcached",
    binary: "memcached",
    package: "memcached",
    require_env: REQUIRE_ENV,
    args,
    pid: server_pid,
};

/// A memcached server started by this process on 127.0.0.1; killed when dropped.
///
/// # Examples
///
/// ```no_run
/// use asynq_examples::local_memcached::LocalMemcached;
/// use asynq_examples::memcached::MemcachedClient;
/// use futures::executor::block_on;
///
/// let server: LocalMemcached = asynq_examples::local_memcached::start()?;
/// let mc = MemcachedClient::new([server.addr()]).unwrap();
/// block_on(mc.set_multi(vec![("k".into(), b"v".to_vec())], None)).unwrap();
/// assert_eq!(block_on(mc.get_multi(&["k".to_string()]))[0], Ok(Some(b"v".to_vec())));
/// # Ok::<(), std::io::Error>(())
/// ```
pub type LocalMemcached = LocalServer;

/// Start a server on a free port of 127.0.0.1 and wait until it answers.
pub fn start() -> io::Result<LocalMemcached> {
    LocalServer::start(&KIND)
}

/// The `memcached` binary: `/usr/bin/memcached`, or the first one on `PATH`.
pub fn binary() -> Option<PathBuf> {
    KIND.find_binary()
}

fn args(port: u16, _dir: &Path) -> Vec<OsString> {
    let port = port.to_string();
    // No UDP, one worker thread, 64 MB; `-u` lets it start as root.
    [
        "-l",
        "127.0.0.1",
        "-p",
        &port,
        "-U",
        "0",
        "-t",
        "1",
        "-m",
        "64",
        "-u",
        "root",
    ]
    .map(OsString::from)
    .into()
}

/// The pid that the memcached server at `addr` reports in its `stats`.
fn server_pid(addr: &str) -> io::Result<u32> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    (&stream).write_all(b"stats\r\n")?;
    // At most 200 lines of at most 4 KiB: a stats reply is about 90 short lines.
    let mut reader = BufReader::new(&stream).take(200 * 4096);
    let mut line = String::new();
    for _ in 0..200 {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        if let Some(pid) = line.strip_prefix("STAT pid ") {
            return pid
                .trim()
                .parse()
                .map_err(|_| io::Error::other(format!("bad pid line {line:?}")));
        }
        if line.starts_with("END") || line.contains("ERROR") {
            break;
        }
    }
    Err(io::Error::other(format!("{addr} did not report a pid")))
}

/// `n` fresh servers for the test `test`, or `None` after a notice when memcached cannot be
/// started and [`REQUIRE_ENV`] is unset.
///
/// # Panics
///
/// When the servers cannot be started and [`REQUIRE_ENV`] is set.
#[track_caller]
pub fn start_or_skip(n: usize, test: &str) -> Option<Vec<LocalMemcached>> {
    local_server::start_or_skip(&KIND, n, test)
}
