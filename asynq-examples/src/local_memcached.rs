//! Start memcached servers on free local ports, for tests and demos; stopped on drop.
//!
//! Tests that need memcached call [`start_or_skip`]. Where the `memcached` binary is missing
//! they print a notice straight to the terminal (past the test harness's capture) and skip,
//! unless the environment variable [`REQUIRE_ENV`] is set, as CI sets it: then they fail.
//! `scripts/test.sh` installs the server from Debian's packages when it is missing.
//!
//! Servers listen on 127.0.0.1 only.

use std::io::{self, BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to anything) to make tests fail instead of skipping when memcached cannot be started.
pub const REQUIRE_ENV: &str = "ASYNQ_REQUIRE_MEMCACHED";

/// The `memcached` binary: `/usr/bin/memcached`, or the first one on `PATH`.
pub fn binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("memcached"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin/memcached"))
        .chain(on_path)
        .find(|p| p.is_file())
}

/// A memcached server started by this process on 127.0.0.1; killed when dropped.
///
/// # Examples
///
/// ```no_run
/// use asynq_examples::local_memcached::LocalMemcached;
/// use asynq_examples::memcached::MemcachedClient;
/// use futures::executor::block_on;
///
/// let server = LocalMemcached::start()?;
/// let mc = MemcachedClient::new([server.addr()]).unwrap();
/// block_on(mc.set_multi(vec![("k".into(), b"v".to_vec())], None)).unwrap();
/// assert_eq!(block_on(mc.get_multi(&["k".to_string()]))[0], Ok(Some(b"v".to_vec())));
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Debug)]
pub struct LocalMemcached {
    child: Option<Child>,
    addr: String,
}

impl LocalMemcached {
    /// Start a server on a free port of 127.0.0.1 and wait until it accepts connections.
    pub fn start() -> io::Result<LocalMemcached> {
        let mut last = None;
        // Another process may take the free port before memcached binds it: try a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let mut server = LocalMemcached {
                child: None,
                addr: format!("127.0.0.1:{port}"),
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("memcached did not start")))
    }

    /// Stop the server and start a fresh, empty one on the same port (as a crash and restart
    /// would).
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    /// Start memcached on our address and wait until it answers.
    fn spawn(&mut self) -> io::Result<()> {
        let binary = binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "the memcached binary is not installed; `apt-get install memcached` provides it",
            )
        })?;
        let port = self.addr.rsplit(':').next().unwrap_or_default().to_string();
        let child = Command::new(binary)
            .args(["-l", "127.0.0.1", "-p", &port])
            // No UDP, one worker thread, 64 MB; `-u` lets it start as root.
            .args(["-U", "0", "-t", "1", "-m", "64", "-u", "root"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(10))
    }

    /// Wait until our server answers on its port. The server that answers must report our
    /// child's pid: another process may have taken the port, and then ours exits.
    fn wait_ready(&mut self, within: Duration) -> io::Result<()> {
        let start = Instant::now();
        let pid = self.child.as_ref().map(Child::id);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok())
                .flatten()
            {
                return Err(io::Error::other(format!(
                    "memcached on {} exited at start: {status}",
                    self.addr
                )));
            }
            if let Ok(answering) = server_pid(&self.addr) {
                if Some(answering) == pid {
                    return Ok(());
                }
                self.stop();
                return Err(io::Error::other(format!(
                    "another process (pid {answering}) took {} first",
                    self.addr
                )));
            }
            if start.elapsed() > within {
                return Err(io::Error::other(format!(
                    "memcached on {} did not accept connections within {within:?}",
                    self.addr
                )));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Its address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Kill the server and wait for it to exit (nothing if it is stopped already).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Whether it has not been stopped.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }
}

impl Drop for LocalMemcached {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The pid that the memcached server at `addr` reports in its `stats`.
fn server_pid(addr: &str) -> io::Result<u32> {
    let stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    (&stream).write_all(b"stats\r\n")?;
    for line in BufReader::new(&stream).lines() {
        let line = line?;
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
    match (0..n).map(|_| LocalMemcached::start()).collect() {
        Ok(servers) => Some(servers),
        Err(e) if std::env::var_os(REQUIRE_ENV).is_some() => {
            panic!("{test}: cannot start memcached, and {REQUIRE_ENV} is set: {e}")
        }
        Err(e) => {
            // Straight to stderr: the test harness captures only `eprintln!`.
            let _ = writeln!(
                io::stderr().lock(),
                "notice: {test} skipped: cannot start memcached: {e} \
                 (set {REQUIRE_ENV}=1 to make this a failure)"
            );
            None
        }
    }
}
