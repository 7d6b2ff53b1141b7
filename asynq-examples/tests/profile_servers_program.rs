//! `profile --backend postgres|mysql --url URL` as a user runs it, against PostgreSQL and
//! MariaDB servers the tests start (`asynq_tests::servers`): the same pages, byte for byte, as
//! `profile --backend sqlite`, in the same 3 rounds and 5 queries; the site loaded on the first
//! run and reused after; the flags' errors.
//!
//! Without the servers installed these tests print a line and pass, unless
//! `ASYNQ_REQUIRE_POSTGRES` / `ASYNQ_REQUIRE_MYSQL` is set (as in CI): then they fail.

use std::process::{Command, Output, Stdio};

use asynq_sources::{mysql, postgres};
use asynq_tests::{TempDb, servers};

fn profile(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_profile"))
        .args(["--users", "300", "0", "4", "13", "299"])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("the profile program runs")
}

/// The pages and the last line (`rounds=3 queries=5`) of a successful run, and its stderr.
fn pages(out: &Output) -> (Vec<String>, String) {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut kept: Vec<String> = stdout
        .lines()
        .filter(|l| l.starts_with("<div"))
        .map(String::from)
        .collect();
    kept.push(stdout.lines().last().unwrap_or_default().to_owned());
    (kept, stderr)
}

/// The SQLite run's pages and summary, for the file `name`.
fn on_sqlite(name: &str) -> Vec<String> {
    let file = TempDb::new(name);
    let path = file.path().to_str().unwrap();
    let (got, _) = pages(&profile(&["--db", path]));
    assert_eq!(got.len(), 5, "{got:?}");
    assert_eq!(got[4], "rounds=3 queries=5");
    got
}

/// Two runs over the server's database: the site loaded, then reused; both as on SQLite.
fn two_runs(backend: &str, url: &str, want: &[String]) {
    let args = ["--backend", backend, "--url", url];
    let (first, said) = pages(&profile(&args));
    assert_eq!(first, want);
    assert!(
        said.contains(&format!(
            "profile: created the site's data in the {backend} database"
        )),
        "{said}"
    );
    let (second, said) = pages(&profile(&args));
    assert_eq!(second, want);
    assert!(
        said.contains(&format!(
            "profile: reused the site's data in the {backend} database"
        )),
        "{said}"
    );
}

#[test]
fn profile_on_postgres() {
    let Some(server) = servers::postgres("profile_on_postgres") else {
        return;
    };
    let want = on_sqlite("profile-program-pg");
    let admin = postgres::Db::connect_blocking(&server.postgres_url("postgres")).unwrap();
    futures::executor::block_on(admin.execute_batch("CREATE DATABASE profile_program")).unwrap();
    two_runs("postgres", &server.postgres_url("profile_program"), &want);
}

#[test]
fn profile_on_mysql() {
    let Some(server) = servers::mysql("profile_on_mysql") else {
        return;
    };
    let want = on_sqlite("profile-program-my");
    let admin = mysql::Db::connect_blocking(&server.mysql_url("")).unwrap();
    futures::executor::block_on(admin.execute_batch("CREATE DATABASE profile_program")).unwrap();
    two_runs("mysql", &server.mysql_url("profile_program"), &want);
}

#[test]
fn the_url_goes_with_the_server_backends_only() {
    let out = profile(&["--backend", "postgres"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--url <URL>"), "{stderr}");

    let out = profile(&["--url", "postgres://x@127.0.0.1/db"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("profile: --url is the database of --backend postgres or mysql"),
        "{stderr}"
    );

    let out = profile(&["--backend", "mysql", "--url", "not a url"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("profile: mysql: bad setup: not a MySQL URL"),
        "{stderr}"
    );
}
