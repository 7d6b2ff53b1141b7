//! Start Redis servers on free local ports, for tests and demos; stopped on drop.
//!
//! Tests that need Redis call [`start_or_skip`]. Where `redis-server` is missing they print a
//! notice straight to the terminal and skip, unless the environment variable [`REQUIRE_ENV`]
//! is set, as CI sets it: then they fail. `scripts/test.sh` installs the server from Debian's
//! `redis-server` package when it is missing.
//!
//! Servers listen on 127.0.0.1 only, keep nothing on disk (no snapshots, no append-only
//! file) and work in a temporary directory of their own.

use std::io::{self, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Set (to anything) to make tests fail instead of skipping when Redis cannot be started.
pub const REQUIRE_ENV: &str = "ASYNQ_REQUIRE_REDIS";

/// The `redis-server` binary: `/usr/bin/redis-server`, or the first one on `PATH`.
pub fn binary() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH")
        .map(|path| {
            std::env::split_paths(&path)
                .map(|dir| dir.join("redis-server"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    std::iter::once(PathBuf::from("/usr/bin/redis-server"))
        .chain(on_path)
        .find(|p| p.is_file())
}

/// A Redis server started by this process on 127.0.0.1; killed when dropped.
#[derive(Debug)]
pub struct LocalRedis {
    child: Option<Child>,
    addr: String,
    dir: PathBuf,
}

impl LocalRedis {
    /// Start a server on a free port of 127.0.0.1 and wait until it answers.
    pub fn start() -> io::Result<LocalRedis> {
        let mut last = None;
        // Another process may take the free port before Redis binds it: try a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let dir =
                std::env::temp_dir().join(format!("asynq-redis-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            let mut server = LocalRedis {
                child: None,
                addr: format!("127.0.0.1:{port}"),
                dir,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other("redis-server did not start")))
    }

    /// Stop the server and start a fresh, empty one on the same port (a crash and restart).
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    fn spawn(&mut self) -> io::Result<()> {
        let binary = binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                "redis-server is not installed; `apt-get install redis-server` provides it",
            )
        })?;
        let port = self.addr.rsplit(':').next().unwrap_or_default().to_string();
        let child = Command::new(binary)
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args([
                "--maxmemory",
                "64mb",
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ])
            .arg("--dir")
            .arg(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(10))
    }

    /// Wait until our server answers on its port, reporting our child's pid (another process
    /// may have taken the port, and then ours exits).
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
                    "redis-server on {} exited at start: {status}",
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
                    "redis-server on {} did not accept connections within {within:?}",
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
}

impl Drop for LocalRedis {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The pid that the Redis server at `addr` reports in `INFO server`.
fn server_pid(addr: &str) -> io::Result<u32> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(2)))?;
    stream.write_all(b"INFO server\r\n")?;
    // One bulk reply of a few kilobytes: read until its pid line shows, at most 64 KiB.
    let mut reply = Vec::new();
    let mut buf = [0; 4096];
    while reply.len() < 64 * 1024 {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&reply);
        // The pid line is whole once the line after it has come.
        let whole = text.contains("\r\nrun_id:") || text.contains("\r\ntcp_port:");
        if let Some(line) = text.lines().find_map(|l| l.strip_prefix("process_id:"))
            && whole
        {
            return line
                .trim()
                .parse()
                .map_err(|_| io::Error::other(format!("bad pid line {line:?}")));
        }
    }
    Err(io::Error::other(format!("{addr} did not report a pid")))
}

/// A fresh server for the test `test`, or `None` after a notice when Redis cannot be
/// started and [`REQUIRE_ENV`] is unset.
///
/// # Panics
///
/// When the server cannot be started and [`REQUIRE_ENV`] is set.
#[track_caller]
pub fn start_or_skip(test: &str) -> Option<LocalRedis> {
    match LocalRedis::start() {
        Ok(server) => Some(server),
        Err(e) if std::env::var_os(REQUIRE_ENV).is_some() => {
            panic!("{test}: cannot start Redis, and {REQUIRE_ENV} is set: {e}")
        }
        Err(e) => {
            let _ = writeln!(
                io::stderr().lock(),
                "notice: {test} skipped: cannot start redis-server: {e} \
                 (set {REQUIRE_ENV}=1 to make this a failure)"
            );
            None
        }
    }
}
