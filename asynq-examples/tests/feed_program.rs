//! The `feed` program as a user runs it: sizes checked before anything is allocated, another
//! program's database refused and left as it was, and a kill during the data set's creation
//! leaving either no file or a complete one.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use asynq_core::DataSource as _;
use asynq_examples::feed::{self, Params};
use asynq_examples::sqlite::{open_feed, rusqlite};

fn feed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feed"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the feed program runs")
}

/// A directory of its own, removed afterwards.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("asynq-feed-{name}-{}", std::process::id()));
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

#[test]
fn sizes_too_large_are_usage_errors_naming_the_largest_accepted() {
    for (args, says) in [
        (&["-q", "100000000"][..], "100000000 is not in 0..=100000"),
        (&["-q", "18446744073709551615"], "is not in 0..=100000"),
        (&["-q", "-1"], "'-1'"),
        (&["-a", "5000"], "5000 is not in 0..=1000"),
        (
            &["-q", "100000", "-a", "100"],
            "more than the 5000000 this program builds: the largest accepted is --questions \
             22421 with --answers 100",
        ),
    ] {
        let out = feed(&[args, &["--backend", "memory"]].concat());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    // The largest answers with no question is within every bound: accepted and rendered.
    let out = feed(&["-q", "0", "-a", "1000", "--backend", "memory"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn another_programs_database_is_refused_and_left_byte_identical() {
    let dir = TempDir::new("foreign");
    let path = dir.0.join("app.db");
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
         INSERT INTO kv VALUES ('invoice:1', 'paid'), ('invoice:2', 'due');
         CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT);
         INSERT INTO users VALUES (1, 'Ada');",
    )
    .unwrap();
    drop(conn);
    let before = std::fs::read(&path).unwrap();

    let out = feed(&["-q", "10", "-a", "5", "--db", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("app.db was not made by this program") && stderr.contains("left as it is"),
        "{stderr}"
    );
    assert!(
        std::fs::read(&path).unwrap() == before,
        "the user's database changed"
    );
}

/// Whether `path` holds nothing, or the complete FEED-1 data set of `p`.
fn absent_or_complete(path: &Path, p: Params) -> Result<bool, String> {
    if !path.exists() {
        return Ok(false);
    }
    let (store, built) = open_feed(path, p).map_err(|e| format!("{e:?}"))?;
    if built {
        return Err("the file at the path was not a complete data set: rebuilt".into());
    }
    let rows: i64 = store
        .sqlite_db()
        .unwrap()
        .with_conn(|c| c.query_row("SELECT COUNT(*) FROM kv", [], |r| r.get(0)))
        .map_err(|e| e.to_string())?;
    let expected = feed::dataset(p).len() as i64;
    if rows != expected {
        return Err(format!("{rows} rows, not {expected}"));
    }
    let got = futures::executor::block_on(store.fetch(&["q:7:title".to_string()])).unwrap();
    assert_eq!(got[0].1, "Question 7");
    Ok(true)
}

/// Start `feed` with `args`, its stderr piped.
fn spawn_feed(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_feed"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait (at most a minute) until `dir` holds a temporary data set file.
fn wait_for_temp_file(dir: &Path) {
    for _ in 0..6000 {
        let building = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .any(|f| f.ends_with(".tmp"));
        if building {
            return;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("feed never started building its data set");
}

#[test]
fn a_kill_during_creation_leaves_no_file_or_a_complete_one() {
    use std::io::BufRead as _;

    let dir = TempDir::new("kill");
    let path = dir.0.join("feed.sqlite");
    let p = Params {
        questions: 2000,
        answers: 10,
    };
    let (q, a) = (p.questions.to_string(), p.answers.to_string());
    let args = ["-q", &q, "-a", &a, "--db", path.to_str().unwrap()];
    // Killed (SIGKILL: no clean-up code runs) at moments of the build: as soon as its
    // temporary file exists, and later.
    for delay_ms in [0, 20, 100, 300, 800] {
        let _ = std::fs::remove_file(&path);
        let mut child = spawn_feed(&args);
        wait_for_temp_file(&dir.0);
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        if let Err(e) = absent_or_complete(&path, p) {
            panic!("killed {delay_ms} ms into the build ({status}): {e}");
        }
    }
    // Killed right after it says it created the file (while it renders): the file is whole.
    let _ = std::fs::remove_file(&path);
    let mut child = spawn_feed(&args);
    let mut said = String::new();
    std::io::BufReader::new(child.stderr.take().unwrap())
        .read_line(&mut said)
        .unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(said.starts_with("feed: created the FEED-1 data"), "{said}");
    assert_eq!(absent_or_complete(&path, p), Ok(true));

    // A later build removes the temporary files the killed runs left.
    std::fs::remove_file(&path).unwrap();
    let out = feed(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(absent_or_complete(&path, p), Ok(true));
    let leftovers: Vec<_> = std::fs::read_dir(&dir.0)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn the_memcached_backend_refills_keys_the_server_evicted() {
    use std::io::{BufRead as _, Write as _};

    let Some(servers) = asynq_examples::local_memcached::start_or_skip(1, "feed refill") else {
        return;
    };
    let addr = servers[0].addr();
    let args = [
        "-q",
        "10",
        "-a",
        "5",
        "--backend",
        "memcached",
        "--servers",
        addr,
    ];
    let expected = "calls=3 keys=195 rounds=3 out_len=2152 fnv=ac26a36b50baee7b";
    let out = feed(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(expected), "{stdout}");

    // The server evicts a title and a name; the data set's tag stays.
    let conn = std::net::TcpStream::connect(addr).unwrap();
    let mut reader = std::io::BufReader::new(conn.try_clone().unwrap());
    for key in ["q:3:title", "u:3:name"] {
        (&conn)
            .write_all(format!("delete {key}\r\n").as_bytes())
            .unwrap();
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(line, "DELETED\r\n");
    }
    let out = feed(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The same page; the calls now include the origin's refills.
    assert!(
        stdout.contains("out_len=2152 fnv=ac26a36b50baee7b"),
        "{stdout}"
    );
}

#[test]
fn a_profile_site_too_large_is_a_usage_error() {
    for program in [env!("CARGO_BIN_EXE_profile"), env!("CARGO_BIN_EXE_server")] {
        for users in ["100000000000", "0", "-5"] {
            let out = Command::new(program)
                .args([
                    &format!("--users={users}"),
                    "--db",
                    "/nonexistent/never-made.sqlite",
                ])
                .stdin(Stdio::null())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{program} {users}: {stderr}");
            assert!(stderr.contains("is not in 1..=10000000"), "{stderr}");
        }
    }
}

#[test]
fn via_graphql_renders_the_same_page_in_three_calls() {
    for (size, expected) in [
        (
            ["-q", "10", "-a", "5"],
            "calls=3 keys=195 rounds=3 out_len=2152 fnv=ac26a36b50baee7b ms=",
        ),
        (
            ["-q", "100", "-a", "10"],
            "calls=3 keys=3400 rounds=3 out_len=39740 fnv=56dc3f446f2c5f61 ms=",
        ),
    ] {
        let out = feed(&[&size[..], &["--backend", "memory", "--via", "graphql"]].concat());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout.lines().last().unwrap_or_default();
        assert!(last.starts_with(expected), "{stdout}");
        // The page's head is the one the nested asynq functions print.
        let direct = feed(&[&size[..], &["--backend", "memory"]].concat());
        let direct = String::from_utf8_lossy(&direct.stdout);
        assert_eq!(stdout.lines().next(), direct.lines().next());
    }
    // `--via graphql` renders with asynq: it conflicts with `--naive`.
    let out = feed(&["--backend", "memory", "--via", "graphql", "--naive"]);
    assert_eq!(out.status.code(), Some(2));
}
