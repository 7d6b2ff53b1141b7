//! Start servers (memcached, Redis, Redis Cluster nodes) on free local ports, for tests and
//! demos; each is stopped, and its temporary directory removed, when dropped.
//!
//! A [`ServerKind`] says what differs between servers: the binary, its arguments, the Debian
//! package that provides it, the environment variable that makes its tests required, and how
//! to ask a running server for its pid (the readiness probe). [`LocalServer`] does the rest
//! for every kind: a free port, a temporary directory, start, wait until *our* child answers,
//! restart on the same port, stop. The kinds are in [`local_memcached`](crate::local_memcached)
//! and [`local_redis`](crate::local_redis).
//!
//! Tests call [`start_or_skip`]: where the binary is missing they print a notice straight to
//! the terminal (past the test harness's capture) and skip, unless the kind's
//! [`require_env`](ServerKind::require_env) variable is set, as CI sets it: then they fail.
//! `scripts/test.sh` installs the servers from Debian's packages when they are missing.
//!
//! Servers listen on 127.0.0.1 only.

use std::ffi::OsString;
use std::io::{self, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What differs between the kinds of server [`LocalServer`] starts.
#[derive(Debug)]
pub struct ServerKind {
    /// Its name in messages: `memcached`, `redis-server`.
    pub name: &'static str,
    /// The binary's file name, looked for in `/usr/bin` and then on `PATH`.
    pub binary: &'static str,
    /// The Debian package that provides it.
    pub package: &'static str,
    /// Set (to anything) to make tests fail instead of skipping when it cannot be started.
    pub require_env: &'static str,
    /// Its arguments to listen on 127.0.0.1:`port`, working in the directory `dir`.
    pub args: fn(port: u16, dir: &Path) -> Vec<OsString>,
    /// The pid of the server answering at `addr` (`127.0.0.1:<port>`): an error while none
    /// answers yet.
    pub pid: fn(addr: &str) -> io::Result<u32>,
}

impl ServerKind {
    /// Its binary: `/usr/bin/<binary>`, or the first one on `PATH`.
    pub fn find_binary(&self) -> Option<PathBuf> {
        let on_path = std::env::var_os("PATH")
            .map(|path| {
                std::env::split_paths(&path)
                    .map(|dir| dir.join(self.binary))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        std::iter::once(Path::new("/usr/bin").join(self.binary))
            .chain(on_path)
            .find(|p| p.is_file())
    }

    /// Whether tests must fail, rather than skip, when it cannot be started.
    pub fn required(&self) -> bool {
        std::env::var_os(self.require_env).is_some()
    }
}

/// A server started by this process on 127.0.0.1, in a temporary directory of its own;
/// killed (and the directory removed) when dropped.
#[derive(Debug)]
pub struct LocalServer {
    kind: &'static ServerKind,
    extra: Vec<OsString>,
    child: Option<Child>,
    addr: String,
    port: u16,
    dir: PathBuf,
}

impl LocalServer {
    /// Start a server of `kind` on a free port of 127.0.0.1 and wait until it answers.
    pub fn start(kind: &'static ServerKind) -> io::Result<LocalServer> {
        LocalServer::start_with(kind, Vec::new())
    }

    /// Start a server of `kind` with `extra` arguments after its own.
    pub fn start_with(kind: &'static ServerKind, extra: Vec<OsString>) -> io::Result<LocalServer> {
        let mut last = None;
        // Another process may take the free port before the server binds it: try a few.
        for _ in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let dir = std::env::temp_dir().join(format!(
                "asynq-{}-{}-{port}",
                kind.binary,
                std::process::id()
            ));
            std::fs::create_dir_all(&dir)?;
            let mut server = LocalServer {
                kind,
                extra: extra.clone(),
                child: None,
                addr: format!("127.0.0.1:{port}"),
                port,
                dir,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(e),
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| io::Error::other(format!("{} did not start", kind.name))))
    }

    /// Stop the server and start a fresh one on the same port (as a crash and restart
    /// would); what it held in memory is gone.
    pub fn restart(&mut self) -> io::Result<()> {
        self.stop();
        self.spawn()
    }

    /// Start the binary on our port and wait until it answers.
    fn spawn(&mut self) -> io::Result<()> {
        let kind = self.kind;
        let binary = kind.find_binary().ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{} is not installed; `apt-get install {}` provides it",
                    kind.binary, kind.package
                ),
            )
        })?;
        let child = Command::new(binary)
            .args((kind.args)(self.port, &self.dir))
            .args(&self.extra)
            .current_dir(&self.dir)
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
        let name = self.kind.name;
        let pid = self.child.as_ref().map(Child::id);
        loop {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok())
                .flatten()
            {
                self.child = None;
                return Err(io::Error::other(format!(
                    "{name} on {} exited at start: {status}",
                    self.addr
                )));
            }
            if let Ok(answering) = (self.kind.pid)(&self.addr) {
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
                self.stop();
                return Err(io::Error::other(format!(
                    "{name} on {} did not accept connections within {within:?}",
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

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
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

impl Drop for LocalServer {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// What [`start_or_skip`] does when the servers cannot be started: `None` after a notice, or,
/// when `kind`'s [`require_env`](ServerKind::require_env) is set, a panic.
///
/// # Panics
///
/// When `kind`'s `require_env` is set.
#[track_caller]
pub fn skip<T>(kind: &ServerKind, test: &str, error: &dyn std::fmt::Display) -> Option<T> {
    let env = kind.require_env;
    if kind.required() {
        panic!(
            "{test}: cannot start {}, and {env} is set: {error}",
            kind.name
        )
    }
    // Straight to stderr: the test harness captures only `eprintln!`.
    let _ = writeln!(
        io::stderr().lock(),
        "notice: {test} skipped: cannot start {}: {error} (set {env}=1 to make this a failure)",
        kind.name
    );
    None
}

/// `n` fresh servers of `kind` for the test `test`, or `None` after a notice when they cannot
/// be started and `kind`'s [`require_env`](ServerKind::require_env) is unset.
///
/// # Panics
///
/// When the servers cannot be started and `kind`'s `require_env` is set.
#[track_caller]
pub fn start_or_skip(kind: &'static ServerKind, n: usize, test: &str) -> Option<Vec<LocalServer>> {
    match (0..n).map(|_| LocalServer::start(kind)).collect() {
        Ok(servers) => Some(servers),
        Err(e) => skip(kind, test, &e),
    }
}
