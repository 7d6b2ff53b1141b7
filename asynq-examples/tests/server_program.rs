//! The `server` program as an operator runs it: Ctrl-C with a partial request open stops it
//! within its shutdown grace, a second Ctrl-C stops it at once, a memcached server that
//! never answers is reported once on stderr however many pages are served, and
//! `--backend postgres --url URL` serves from a PostgreSQL server the test starts (skipped
//! without PostgreSQL unless `ASYNQ_REQUIRE_POSTGRES` is set).

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A directory of its own, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("asynq-server-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A `server` process; killed if the test ends while it runs.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    /// Start `server` with `args` on a free port, and wait until it listens. Its data is in
    /// `dir`, unless `args` name a database server (`--url`).
    fn start(dir: &TempDir, args: &[&str]) -> Server {
        let db = dir.0.join("profile.sqlite");
        let mut command = Command::new(env!("CARGO_BIN_EXE_server"));
        command.args(["--users", "50"]);
        if !args.contains(&"--url") {
            command.args(["--db", db.to_str().unwrap()]);
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let addr = line
            .trim()
            .strip_prefix("server: listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Server { child, addr }
    }

    fn signal(&self, name: &str) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill").args([name, &pid]).status().unwrap();
        assert!(status.success());
    }

    /// Its exit status, if it exits within `within`.
    fn wait_for_exit(&mut self, within: Duration) -> Option<ExitStatus> {
        let start = Instant::now();
        while start.elapsed() < within {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    fn stderr(&mut self) -> ChildStderr {
        self.child.stderr.take().unwrap()
    }

    /// GET `path`: the status and body (one connection, closed after).
    fn get(&self, path: &str) -> (u16, String) {
        let mut conn = TcpStream::connect(&self.addr).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            conn,
            "GET {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.addr
        )
        .unwrap();
        let mut response = String::new();
        conn.read_to_string(&mut response).unwrap();
        let status = response[9..12].parse().unwrap();
        let body = response.split_once("\r\n\r\n").unwrap().1.to_string();
        (status, body)
    }

    /// A connection holding a partial request.
    fn partial(&self) -> TcpStream {
        let mut conn = TcpStream::connect(&self.addr).unwrap();
        conn.write_all(b"GET /feed HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            .unwrap();
        conn
    }
}

#[test]
fn ctrl_c_with_a_partial_request_open_stops_within_the_grace() {
    let dir = TempDir::new("ctrl-c");
    let mut server = Server::start(&dir, &["--shutdown-grace-ms", "500"]);
    assert_eq!(server.get("/profile/4").0, 200);
    let _partial = server.partial();
    std::thread::sleep(Duration::from_millis(100));
    server.signal("-INT");
    let status = server.wait_for_exit(Duration::from_secs(30));
    assert!(
        status.is_some_and(|s| s.success()),
        "not stopped cleanly: {status:?}"
    );
}

#[test]
fn a_second_ctrl_c_exits_at_once() {
    let dir = TempDir::new("ctrl-c-twice");
    let mut server = Server::start(
        &dir,
        &[
            "--shutdown-grace-ms",
            "600000",
            "--header-read-timeout-ms",
            "600000",
        ],
    );
    let mut stderr = BufReader::new(server.stderr());
    let _partial = server.partial();
    std::thread::sleep(Duration::from_millis(100));
    server.signal("-INT");
    // It says it is stopping, and waits for the partial request (for up to ten minutes).
    let mut line = String::new();
    while !line.contains("stopping") {
        line.clear();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "stderr closed");
    }
    assert!(line.contains("Ctrl-C again to exit at once"), "{line}");
    assert!(
        server.child.try_wait().unwrap().is_none(),
        "it did not wait"
    );
    server.signal("-INT");
    let status = server.wait_for_exit(Duration::from_secs(30));
    assert_eq!(status.and_then(|s| s.code()), Some(130), "{status:?}");
}

#[test]
fn a_silent_memcached_is_reported_once_and_pages_are_served() {
    // The kernel accepts connections to this listener; nothing ever answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let mc = silent.local_addr().unwrap().to_string();
    let dir = TempDir::new("silent-mc");
    let mut server = Server::start(&dir, &["--memcached", &mc, "--memcached-timeout-ms", "300"]);
    for _ in 0..6 {
        let (status, body) = server.get("/feed?questions=10&answers=5");
        assert_eq!(status, 200, "{body}");
    }
    let (_, stats) = server.get("/stats");
    assert!(
        stats.contains(&format!("memcached {mc}: backed off failures=1")),
        "{stats}"
    );
    server.signal("-INT");
    assert!(server.wait_for_exit(Duration::from_secs(30)).is_some());
    let mut stderr = String::new();
    server.stderr().read_to_string(&mut stderr).unwrap();
    let reports: Vec<&str> = stderr.lines().filter(|l| l.contains(&mc)).collect();
    assert_eq!(reports.len(), 1, "{stderr}");
    assert!(
        reports[0].starts_with(&format!(
            "memcached server {mc}: request: no answer within 300ms"
        )),
        "{}",
        reports[0]
    );
}

/// `server --backend postgres --url URL`: the pages from that database, the FEED-1 page with
/// the reference figures; Ctrl-C stops it cleanly.
#[test]
fn serves_from_postgres() {
    let Some(pg) = asynq_tests::servers::postgres("serves_from_postgres") else {
        return;
    };
    let admin =
        asynq_sources::postgres::Db::connect_blocking(&pg.postgres_url("postgres")).unwrap();
    futures::executor::block_on(admin.execute_batch("CREATE DATABASE server_program")).unwrap();
    let dir = TempDir::new("postgres");
    let url = pg.postgres_url("server_program");
    let mut server = Server::start(&dir, &["--backend", "postgres", "--url", &url]);
    let (status, page) = server.get("/feed?questions=10&answers=5");
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        (page.len(), asynq_examples::feed::fnv1a64(page.as_bytes())),
        (2152, 0xac26a36b50baee7b)
    );
    let (status, page) = server.get("/profile/4");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("<h1>User 4</h1>"), "{page}");
    server.signal("-INT");
    assert!(server.wait_for_exit(Duration::from_secs(20)).is_some());
    assert_eq!(
        std::fs::read_dir(&dir.0).unwrap().count(),
        0,
        "no file in the data directory"
    );
}

/// `--url` goes with the server backends, and they need it: refused before anything starts.
#[test]
fn the_url_goes_with_the_server_backends_only() {
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_server"))
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let out = run(&["--backend", "mysql"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--url <URL>"), "{stderr}");

    let out = run(&["--url", "postgres://x@127.0.0.1/db", "--port", "0"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("server: url is the database of the postgres and mysql backends"),
        "{stderr}"
    );

    let out = run(&["--backend", "postgres", "--url", "x", "--db", "x.sqlite"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot be used with"), "{stderr}");
}
