//! The test servers' harness: a server that a test starts is stopped and its directory
//! removed when the test ends, by a panic too.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use asynq_tests::servers::{self, Server};

/// Wait until nothing accepts connections on `port` (the server is stopped).
fn wait_closed(port: u16) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(40) {
        if TcpStream::connect(("127.0.0.1", port)).is_err() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// Start a server with `start` in a thread that panics while holding it; the server must be
/// gone afterwards, its directory too.
fn stopped_after_a_panic(start: fn() -> Result<Server, String>, name: &str, require: &str) {
    let (tx, rx) = std::sync::mpsc::channel();
    let panicked = std::thread::spawn(move || {
        let server = match start() {
            Ok(server) => server,
            Err(e) => {
                tx.send(Err(e)).unwrap();
                return;
            }
        };
        assert!(TcpStream::connect(("127.0.0.1", server.port())).is_ok());
        tx.send(Ok((server.port(), server.dir().to_path_buf())))
            .unwrap();
        panic!("a test fails while its server runs");
    })
    .join();
    let started = rx.recv().unwrap();
    let (port, dir) = match started {
        Ok(found) => found,
        Err(e) if std::env::var_os(require).is_some_and(|v| !v.is_empty()) => {
            panic!("cannot start {name}, and {require} is set: {e}")
        }
        Err(e) => {
            use std::io::Write as _;
            let line = e.lines().next().unwrap_or_default().to_owned();
            let _ = writeln!(
                std::io::stderr(),
                "notice: harness test of {name} skipped: {line}"
            );
            return;
        }
    };
    assert!(panicked.is_err(), "the thread panicked");
    assert!(
        wait_closed(port),
        "{name} still accepts connections on port {port}"
    );
    assert!(!dir.exists(), "{} still exists", dir.display());
}

#[test]
fn a_postgres_server_is_stopped_when_its_test_panics() {
    stopped_after_a_panic(
        servers::start_postgres,
        "PostgreSQL",
        servers::POSTGRES_REQUIRE_ENV,
    );
}

#[test]
fn a_mariadb_server_is_stopped_when_its_test_panics() {
    stopped_after_a_panic(servers::start_mysql, "MariaDB", servers::MYSQL_REQUIRE_ENV);
}
