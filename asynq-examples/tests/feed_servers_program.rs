//! `feed --backend postgres|mysql --url URL` as a user runs it, against PostgreSQL and MariaDB
//! servers the tests start (`asynq_tests::servers`): the reference page in 3 calls, the data
//! set loaded on the first run and reused after, `--naive`, and the flags' errors.
//!
//! Without the servers installed these tests print a line and pass, unless
//! `ASYNQ_REQUIRE_POSTGRES` / `ASYNQ_REQUIRE_MYSQL` is set (as in CI): then they fail.

use std::process::{Command, Output, Stdio};

use asynq_sources::{mysql, postgres};
use asynq_tests::servers;

fn feed(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_feed"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the feed program runs")
}

/// The summary line of a successful run, without its time.
fn summary(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_default();
    last.split(" ms=").next().unwrap().to_owned()
}

/// Two runs of the reference page, then a naive one: (stderr of the first two, summaries).
fn three_runs(backend: &str, url: &str) {
    let args = ["--backend", backend, "--url", url, "-q", "10", "-a", "5"];
    let first = feed(&args);
    let want = "calls=3 keys=195 rounds=3 out_len=2152 fnv=ac26a36b50baee7b";
    assert_eq!(summary(&first), want);
    let said = String::from_utf8_lossy(&first.stderr);
    assert!(
        said.contains(&format!(
            "feed: loaded the FEED-1 data set Q=10 A=5 in the {backend} database"
        )),
        "{said}"
    );
    let second = feed(&args);
    assert_eq!(summary(&second), want);
    let said = String::from_utf8_lossy(&second.stderr);
    assert!(
        said.contains("feed: reused the FEED-1 data set Q=10 A=5"),
        "{said}"
    );
    let naive = feed(&[&args[..], &["--naive"]].concat());
    assert_eq!(
        summary(&naive),
        "calls=200 keys=200 rounds=200 out_len=2152 fnv=ac26a36b50baee7b"
    );
}

#[test]
fn feed_on_postgres() {
    let Some(server) = servers::postgres("feed_on_postgres") else {
        return;
    };
    let admin = postgres::Db::connect_blocking(&server.postgres_url("postgres")).unwrap();
    futures::executor::block_on(admin.execute_batch("CREATE DATABASE feed_program")).unwrap();
    three_runs("postgres", &server.postgres_url("feed_program"));
}

#[test]
fn feed_on_mysql() {
    let Some(server) = servers::mysql("feed_on_mysql") else {
        return;
    };
    let admin = mysql::Db::connect_blocking(&server.mysql_url("")).unwrap();
    futures::executor::block_on(admin.execute_batch("CREATE DATABASE feed_program")).unwrap();
    three_runs("mysql", &server.mysql_url("feed_program"));
}

#[test]
fn the_url_goes_with_the_server_backends_only() {
    let out = feed(&["--backend", "postgres", "-q", "1"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--url <URL>"), "{stderr}");

    let out = feed(&["--backend", "memory", "--url", "postgres://x@127.0.0.1/db"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--url is the database of --backend postgres or mysql"),
        "{stderr}"
    );

    let out = feed(&["--backend", "mysql", "--url", "not a url"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("feed: mysql: bad setup: not a MySQL URL"),
        "{stderr}"
    );
}
