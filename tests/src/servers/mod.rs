//! Database servers that tests start themselves: PostgreSQL and MariaDB, each in a temporary
//! directory, on a free port of 127.0.0.1, as an unprivileged user when the tests run as root.
//!
//! [`postgres`] and [`mysql`] start one server per test binary, on first use, shared by its
//! tests (a server takes seconds to set up; the tests use tables of their own). Where the
//! server's programs are missing, each test prints one line straight to the terminal (past
//! the harness's capture) and passes, unless `ASYNQ_REQUIRE_POSTGRES` or
//! `ASYNQ_REQUIRE_MYSQL` is set, as CI sets them: then it fails with the reason.
//! `scripts/test.sh` installs both servers from Debian's packages when they are missing.
//!
//! # Stopping
//!
//! Each server runs under a keeper, a small `bash` script reading its standard input from a
//! pipe held by the test process. When the pipe closes (the [`Server`] is dropped, or the test
//! process ends in any way, a panic, an abort or a kill), the keeper stops the server (a
//! signal, then a kill after 30 s) and removes the directory. So a shared server, held in a
//! `static` that Rust never drops, is still stopped when its test binary exits, and a
//! [`Server`] started by one test is stopped when the test ends, even by a panic.

use std::io::{self, BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

mod mysql;
mod postgres;

/// How long a server may take to accept connections after it was started.
const READY_WITHIN: Duration = Duration::from_secs(60);
/// How long a keeper may take to stop its server and clean up, when dropped.
const STOP_WITHIN: Duration = Duration::from_secs(40);
/// Log lines shown when a server fails.
const LOG_TAIL: usize = 25;
/// The user servers run as when the tests run as root, unless `ASYNQ_TEST_USER` names another.
pub const DEFAULT_USER: &str = "asynq-test";

/// The keeper: runs the server, waits until it ends or standard input closes, then stops it
/// and removes the directory. Arguments: the directory, the stop signal, the server command.
const KEEPER: &str = r#"
dir="$1"; sig="$2"; shift 2
"$@" &
srv=$!
# A background job's stdin is /dev/null unless redirected: read the owner's pipe.
cat <&0 >/dev/null &
eof=$!
wait -n
if kill -0 "$srv" 2>/dev/null; then
  kill -"$sig" "$srv" 2>/dev/null
  for _ in $(seq 300); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$srv" 2>/dev/null
  wait "$srv" 2>/dev/null
else
  echo exited
  # Keep the directory (and the server's log) until the owner is done with it.
  wait "$eof"
fi
rm -rf "$dir"
"#;

/// A database server of this process, stopped (and its directory removed) when dropped.
#[derive(Debug)]
pub struct Server {
    name: &'static str,
    port: u16,
    dir: PathBuf,
    log: PathBuf,
    keeper: Child,
    /// The write end of the keeper's pipe: dropping it stops the server.
    stdin: Option<ChildStdin>,
    /// Set when the keeper reports that the server ended by itself.
    exited: Arc<AtomicBool>,
}

impl Server {
    /// The server's kind, for messages: `PostgreSQL`, `MariaDB`.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory (data, log, socket).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    /// Whether the server has ended by itself.
    fn exited(&self) -> bool {
        self.exited.load(Ordering::Relaxed)
    }

    /// Wait until the log holds `ready` and the port accepts connections; on failure, why,
    /// with the log's tail.
    fn wait_ready(&self, ready: &str) -> Result<(), String> {
        let start = Instant::now();
        loop {
            if self.exited() {
                return Err(format!(
                    "{} exited at start; its log ends with:\n{}",
                    self.name,
                    self.log_tail()
                ));
            }
            let logged = std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(ready));
            if logged && TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return Ok(());
            }
            if start.elapsed() > READY_WITHIN {
                return Err(format!(
                    "{} did not accept connections on 127.0.0.1:{} within {READY_WITHIN:?}; \
                     its log ends with:\n{}",
                    self.name,
                    self.port,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.stdin.take()); // the keeper stops the server and removes the directory
        let start = Instant::now();
        while start.elapsed() < STOP_WITHIN {
            if let Ok(Some(_)) = self.keeper.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.keeper.kill();
        let _ = self.keeper.wait();
    }
}

/// The last [`LOG_TAIL`] lines of the file at `path` (or why it cannot be read).
fn log_tail(path: &Path) -> String {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
        }
        Err(e) => format!("(no log at {}: {e})", path.display()),
    }
}

/// Who the servers run as: `None` when the tests do not run as root (they run as the tests'
/// user), else the unprivileged user's uid and gid.
#[derive(Clone, Copy, Debug)]
struct RunAs(Option<(u32, u32)>);

impl RunAs {
    /// The user to run servers as, or why there is none.
    fn find() -> Result<RunAs, String> {
        if id(&["-u"])? != 0 {
            return Ok(RunAs(None));
        }
        let user = std::env::var("ASYNQ_TEST_USER").unwrap_or_else(|_| DEFAULT_USER.to_owned());
        let uid = id(&["-u", &user]);
        let gid = id(&["-g", &user]);
        match (uid, gid) {
            (Ok(uid), Ok(gid)) if uid != 0 => Ok(RunAs(Some((uid, gid)))),
            _ => Err(format!(
                "the tests run as root, and the servers run as the user {user:?}, which does \
                 not exist (scripts/test.sh creates it: `useradd --system --no-create-home \
                 {user}`; or name another in ASYNQ_TEST_USER)"
            )),
        }
    }

    /// `command`, to run as this user.
    fn apply(self, command: &mut Command) -> &mut Command {
        if let Some((uid, gid)) = self.0 {
            command.uid(uid).gid(gid);
        }
        command
    }

    /// Make `path` this user's.
    fn own(self, path: &Path) -> io::Result<()> {
        match self.0 {
            Some((uid, gid)) => std::os::unix::fs::chown(path, Some(uid), Some(gid)),
            None => Ok(()),
        }
    }
}

/// The number `id ARGS` prints.
fn id(args: &[&str]) -> Result<u32, String> {
    let out = Command::new("id")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `id`: {e}"))?;
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .map_err(|_| format!("`id {}` failed", args.join(" ")))
}

/// A new empty directory for a server, owned by the user it runs as.
fn server_dir(kind: &str, run_as: RunAs) -> Result<PathBuf, String> {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("asynq-{kind}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    run_as
        .own(&dir)
        .map_err(|e| format!("cannot hand {} to the server's user: {e}", dir.display()))?;
    Ok(dir)
}

/// A free TCP port of 127.0.0.1 (free now: another process may take it before the server).
fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

/// Run a setup program (initdb, mariadb-install-db) as `run_as`, its output into `log`.
fn setup(run_as: RunAs, program: &Path, args: &[String], log: &Path) -> Result<(), String> {
    let out =
        std::fs::File::create(log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let status = run_as
        .apply(Command::new(program).args(args))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "{} failed ({status}); its output ends with:\n{}",
            program.display(),
            log_tail(log)
        ))
    }
}

/// How to start one kind of server in a prepared directory.
struct Launch<'a> {
    name: &'static str,
    run_as: RunAs,
    dir: &'a Path,
    /// Where the server writes its log (also its standard output and error).
    log: PathBuf,
    /// The signal that stops it cleanly.
    stop_signal: &'static str,
    /// The server command, for a port.
    command: &'a dyn Fn(u16) -> Vec<String>,
    /// What its log says when it accepts connections.
    ready: &'static str,
}

impl Launch<'_> {
    /// Start the server under its keeper and wait until it is ready; a few ports are tried,
    /// since another process may take a free port first.
    fn start(&self) -> Result<Server, String> {
        let mut last = String::new();
        for _ in 0..3 {
            let port = free_port()?;
            let server = self.spawn(port)?;
            match server.wait_ready(self.ready) {
                Ok(()) => return Ok(server),
                Err(e) => {
                    let in_use = e.contains("already in use");
                    last = e;
                    drop(server);
                    if !in_use {
                        break;
                    }
                }
            }
        }
        Err(last)
    }

    fn spawn(&self, port: u16) -> Result<Server, String> {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|e| format!("cannot write {}: {e}", self.log.display()))?;
        self.run_as.own(&self.log).map_err(|e| {
            format!(
                "cannot hand {} to the server's user: {e}",
                self.log.display()
            )
        })?;
        let err = log_file.try_clone().map_err(|e| e.to_string())?;
        let mut keeper = self
            .run_as
            .apply(
                Command::new("bash")
                    .arg("-c")
                    .arg(KEEPER)
                    .arg("keeper")
                    .arg(self.dir)
                    .arg(self.stop_signal)
                    .args((self.command)(port)),
            )
            .current_dir(self.dir)
            // Out of the terminal's process group: a ^C stops the tests, and the keeper then
            // sees its pipe close and stops the server itself.
            .process_group(0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(err)
            .spawn()
            .map_err(|e| format!("cannot start bash (the servers' keeper): {e}"))?;
        drop(log_file);
        let stdin = keeper.stdin.take();
        let stdout = keeper.stdout.take().expect("the keeper's stdout is piped");
        let exited = Arc::new(AtomicBool::new(false));
        let report = Arc::clone(&exited);
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line == "exited" {
                    report.store(true, Ordering::Relaxed);
                }
            }
        });
        Ok(Server {
            name: self.name,
            port,
            dir: self.dir.to_path_buf(),
            log: self.log.clone(),
            keeper,
            stdin,
            exited,
        })
    }
}

/// The first of `names` found on `PATH` or in `dirs` (searched first, in order).
fn find_program(names: &[&str], dirs: &[PathBuf]) -> Option<PathBuf> {
    let path: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    dirs.iter()
        .chain(path.iter())
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|p| p.is_file())
}

/// A server shared by the tests of one binary: started on first use, or why it could not be.
type Shared = OnceLock<Result<Server, String>>;

/// The shared server of `cell`, or `None` after a line on the terminal when it cannot be
/// started and `require_env` is unset.
///
/// # Panics
///
/// When the server cannot be started and `require_env` is set.
#[track_caller]
fn shared_or_skip<'a>(
    cell: &'a Shared,
    start: impl FnOnce() -> Result<Server, String>,
    kind: &str,
    require_env: &str,
    test: &str,
) -> Option<&'a Server> {
    match cell.get_or_init(start) {
        Ok(server) => Some(server),
        Err(e) if std::env::var_os(require_env).is_some_and(|v| !v.is_empty()) => {
            panic!("{test}: cannot start {kind}, and {require_env} is set: {e}")
        }
        Err(e) => {
            let first_line = e.lines().next().unwrap_or_default();
            // Straight to the terminal: the test harness captures only the print macros.
            let _ = writeln!(
                io::stderr().lock(),
                "notice: {test} skipped: cannot start {kind}: {first_line} \
                 (set {require_env}=1 to make this a failure)"
            );
            None
        }
    }
}

pub use mysql::{MYSQL_REQUIRE_ENV, mysql, start_mysql};
pub use postgres::{POSTGRES_REQUIRE_ENV, postgres, start_postgres};
