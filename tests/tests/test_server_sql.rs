//! The `server` program's service and the profile site over PostgreSQL and MariaDB servers
//! that the tests start (src/servers): the same FEED-1 and profile pages as over SQLite, in
//! the same calls; evicted data sets deleted and loaded again; data sets whose rows went
//! missing checked and reloaded; tables and views of our names that the program did not make
//! refused and left as they were.
//!
//! Without the servers installed these tests print a line and pass, unless
//! `ASYNQ_REQUIRE_POSTGRES` / `ASYNQ_REQUIRE_MYSQL` is set (as in CI): then they fail.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params};
use asynq_examples::profile::{self, SiteDb};
use asynq_examples::serve::{self, Backend as Store, Config, Running};
use asynq_examples::sql_kv::SqlKv;
use asynq_tests::TempDb;

#[path = "sql/databases.rs"]
mod databases;

use databases::{Backend, Db};

/// Users in the profile site.
const USERS: i64 = 200;
/// The profiles asked for: the first and last users, and two between.
const UIDS: [i64; 4] = [0, 4, 13, USERS - 1];
/// Page sizes: with answers, the reference Q=100 A=10, and without answers.
const PAGES: [Params; 3] = [
    Params {
        questions: 10,
        answers: 5,
    },
    Params {
        questions: 100,
        answers: 10,
    },
    Params {
        questions: 7,
        answers: 0,
    },
];

/// What came back for one request.
#[derive(Debug)]
struct Reply {
    status: u16,
    rounds: usize,
    calls: usize,
    body: String,
}

/// `GET path` over a connection of its own (closed by the server after the response).
fn get(server: &Running, path: &str) -> Reply {
    let mut conn = TcpStream::connect(server.addr()).unwrap();
    conn.set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    conn.read_to_string(&mut response).unwrap();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .expect("a complete response");
    let status_line = head.lines().next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let figure = |name: &str| {
        head.lines()
            .find_map(|l| l.strip_prefix(name))
            .map_or(0, |v| v.trim().parse().unwrap())
    };
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "{head}"
    );
    Reply {
        status,
        rounds: figure("x-asynq-rounds:"),
        calls: figure("x-asynq-calls:"),
        body: body.to_owned(),
    }
}

fn feed_path(p: Params) -> String {
    format!("/feed?questions={}&answers={}", p.questions, p.answers)
}

/// The FEED-1 page of size `p` over its SQLite data set file (`tag` keeps the file apart
/// from the other tests').
fn sqlite_feed(tag: &str, p: Params) -> String {
    let file = TempDb::new(&format!("{tag}-feed-q{}-a{}", p.questions, p.answers));
    let (store, _) = asynq_examples::sqlite::open_feed(file.path(), p).unwrap();
    let rt = Runtime::new().with_source(store);
    rt.run(feed::feed::<SqlKv>(p)).unwrap()
}

/// The profile pages of [`UIDS`] over the site's SQLite file: the pages, rounds, queries.
fn sqlite_profiles(tag: &str) -> (Vec<String>, usize, usize) {
    let file = TempDb::new(&format!("{tag}-profile"));
    let (db, _) = profile::open(file.path(), USERS).unwrap();
    rendered(&SiteDb::Sqlite(db))
}

/// The profile pages of [`UIDS`] rendered together over `db`: the pages, rounds, queries.
fn rendered(db: &SiteDb) -> (Vec<String>, usize, usize) {
    let before = db.queries();
    let rt = profile::runtime(db);
    let pages = rt.run(profile::render_profiles(UIDS.to_vec())).unwrap();
    (pages, rt.last_stats().rounds, db.queries() - before)
}

/// The site's database as the profile page reads it.
fn site_db(b: &Backend) -> SiteDb {
    match &b.db {
        Db::Postgres(db) => SiteDb::Postgres(db.clone()),
        Db::Mysql(db) => SiteDb::Mysql(db.clone()),
    }
}

/// Load the profile site into `b`'s database; whether it loaded it now.
fn open_site(b: &Backend) -> Result<bool, asynq_examples::sql_kv::servers::DataSetError> {
    b.io.block_on(async {
        match &b.db {
            Db::Postgres(db) => profile::servers::open_postgres(db, USERS).await,
            Db::Mysql(db) => profile::servers::open_mysql(db, USERS).await,
        }
    })
}

/// The profile site over the server: loaded once, then reused; the same pages as over
/// SQLite in the same 3 rounds and 5 queries; an absent user is the same error.
fn profile_as_on_sqlite(b: &Backend, tag: &str) {
    assert!(open_site(b).unwrap(), "loaded");
    assert!(!open_site(b).unwrap(), "reused");
    let want = sqlite_profiles(tag);
    assert_eq!(want.1, 3);
    assert_eq!(want.2, 5);
    assert_eq!(rendered(&site_db(b)), want);
    let err = profile::runtime(site_db(b))
        .run(profile::render_profile(USERS))
        .unwrap_err();
    assert!(
        matches!(err, profile::ProfileError::NoSuchUser(USERS)),
        "{err}"
    );
    // Rows deleted behind the program's back: the site is loaded again.
    b.execute("DELETE FROM asynq_profile_answers WHERE id < 10");
    assert!(open_site(b).unwrap(), "reloaded");
    assert_eq!(rendered(&site_db(b)), want);
}

/// A table or view of the site's names that the program did not make: refused, nothing made
/// and nothing changed.
fn foreign_site_tables_are_refused(b: &Backend, foreign: &str, says: &str) {
    b.execute(foreign);
    let err = open_site(b).unwrap_err();
    assert!(err.to_string().contains(says), "{err}");
    assert!(
        err.to_string().contains("was not made by this program"),
        "{err}"
    );
    assert_eq!(b.tables_named("asynq_profile_answers"), 0, "nothing made");
    if b.tables_named("asynq_profile_users") == 1 {
        assert_eq!(
            b.scalar("SELECT COUNT(*) FROM asynq_profile_users"),
            1,
            "unchanged"
        );
    }
}

/// The server's configuration over `b`'s database.
fn config(b: &Backend, max_feed_sizes: usize) -> Config {
    let backend = match b.db {
        Db::Postgres(_) => Store::Postgres,
        Db::Mysql(_) => Store::Mysql,
    };
    Config {
        backend,
        url: Some(b.url.clone()),
        users: USERS,
        max_feed_sizes,
        ..Config::new(std::env::temp_dir().join("asynq-never-made.sqlite"))
    }
}

fn start(b: &Backend, config: Config) -> Running {
    b.io.block_on(serve::start(config, 0)).unwrap()
}

/// Every page as over SQLite: the same bytes in the optimal calls; the site and data sets
/// made in the server's database (no SQLite file); a second server reuses them.
fn pages_as_on_sqlite(b: &Backend, tag: &str) {
    let feeds: Vec<String> = PAGES.iter().map(|&p| sqlite_feed(tag, p)).collect();
    let (profiles, _, _) = sqlite_profiles(tag);
    for round in 0..2 {
        let server = start(b, config(b, 4));
        for (&p, want) in PAGES.iter().zip(&feeds) {
            let reply = get(&server, &feed_path(p));
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(
                (reply.body.len(), feed::fnv1a64(reply.body.as_bytes())),
                (want.len(), feed::fnv1a64(want.as_bytes())),
                "{p:?}, server {round}"
            );
            let calls = if p.answers == 0 { 2 } else { 3 };
            assert_eq!((reply.rounds, reply.calls), (calls, calls), "{p:?}");
        }
        for (&uid, want) in UIDS.iter().zip(&profiles) {
            let reply = get(&server, &format!("/profile/{uid}"));
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(&reply.body, want);
            assert_eq!((reply.rounds, reply.calls), (3, 5), "/profile/{uid}");
        }
        let absent = get(&server, &format!("/profile/{USERS}"));
        assert_eq!(absent.status, 404, "{}", absent.body);
        assert_eq!(absent.body, format!("no such user: {USERS}\n"));
        b.io.block_on(server.shutdown()).unwrap();
    }
    assert_eq!(b.scalar("SELECT COUNT(*) FROM asynq_feed1_datasets"), 3);
    assert_eq!(b.scalar("SELECT COUNT(*) FROM asynq_profile_users"), USERS);
    assert!(
        !std::env::temp_dir()
            .join("asynq-never-made.sqlite")
            .exists()
    );
}

/// The key column of the data sets' table, quoted.
fn key_column(b: &Backend) -> &'static str {
    match b.db {
        Db::Postgres(_) => "key",
        Db::Mysql(_) => "`key`",
    }
}

/// The rows of data set `p` in the server's tables: (tag rows, key rows).
fn held(b: &Backend, p: Params) -> (i64, i64) {
    let tag = format!("FEED-1 Q={} A={}", p.questions, p.answers);
    let prefix = format!("q{}a{}/", p.questions, p.answers);
    let tags = format!("SELECT COUNT(*) FROM asynq_feed1_datasets WHERE dataset = '{tag}'");
    let keys = format!(
        "SELECT COUNT(*) FROM asynq_feed1_kv WHERE {} LIKE '{prefix}%'",
        key_column(b)
    );
    (b.scalar(&tags), b.scalar(&keys))
}

/// One data set held: the least recently used one's rows are deleted when it makes room, and
/// it is loaded again when asked for.
fn evicted_data_sets_are_deleted_and_loaded_again(b: &Backend, tag: &str) {
    let [small, _, plain] = PAGES;
    let want = sqlite_feed(tag, small);
    let rows = i64::try_from(feed::dataset(small).len()).unwrap();
    let server = start(b, config(b, 1));
    assert_eq!(get(&server, &feed_path(small)).body, want);
    assert_eq!(held(b, small), (1, rows));
    assert_eq!(get(&server, &feed_path(plain)).status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while held(b, small) != (0, 0) {
        assert!(
            Instant::now() < deadline,
            "still held: {:?}",
            held(b, small)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(held(b, plain).0, 1);
    let again = get(&server, &feed_path(small));
    assert_eq!((again.status, again.calls), (200, 3));
    assert_eq!(again.body, want);
    assert_eq!(held(b, small), (1, rows));
    b.io.block_on(server.shutdown()).unwrap();
}

/// A data set whose rows went missing fails the request that finds it so, and is checked
/// and reloaded for the next.
fn data_sets_missing_rows_are_reloaded(b: &Backend, tag: &str) {
    let small = PAGES[0];
    let want = sqlite_feed(tag, small);
    let server = start(b, config(b, 4));
    assert_eq!(get(&server, &feed_path(small)).body, want);
    let key = key_column(b);
    b.execute(&format!(
        "DELETE FROM asynq_feed1_kv WHERE {key} = 'q10a5/q:4:title'"
    ));
    let failed = get(&server, &feed_path(small));
    assert_eq!(failed.status, 500, "{}", failed.body);
    assert!(
        failed.body.contains(
            "(the data set is checked, and reloaded if incomplete, for the next request)"
        ),
        "{}",
        failed.body
    );
    let again = get(&server, &feed_path(small));
    assert_eq!((again.status, again.calls), (200, 3), "{}", again.body);
    assert_eq!(again.body, want);
    b.io.block_on(server.shutdown()).unwrap();
}

/// A foreign table of the data sets' names: the profile is served, `/feed` fails with the
/// reason, and the table is left as it was.
fn foreign_feed_tables_are_refused(b: &Backend, foreign: &str) {
    b.execute(foreign);
    let server = start(b, config(b, 4));
    assert_eq!(get(&server, "/profile/4").status, 200);
    let refused = get(&server, &feed_path(PAGES[0]));
    assert_eq!(refused.status, 500);
    assert!(
        refused
            .body
            .contains("table `asynq_feed1_kv` was not made by this program"),
        "{}",
        refused.body
    );
    assert_eq!(b.scalar("SELECT COUNT(*) FROM asynq_feed1_kv"), 2);
    b.io.block_on(server.shutdown()).unwrap();
}

#[test]
fn server_backends_need_a_url_and_sqlite_takes_none() {
    let mut config = Config::new("x.sqlite");
    config.backend = Store::Postgres;
    let err = config.check().unwrap_err();
    assert_eq!(err, "the postgres backend needs the database's url");
    config.url = Some(" ".into());
    assert_eq!(config.check().unwrap_err(), "url is empty");
    config.backend = Store::Sqlite;
    config.url = Some("postgres://u@127.0.0.1/db".into());
    let err = config.check().unwrap_err();
    assert!(
        err.starts_with("url is the database of the postgres and mysql backends"),
        "{err}"
    );
}

/// The `#[test]`s of one backend, each in a database of its own.
macro_rules! on_backend {
    ($module:ident, $open:path, $tag:literal, $foreign_site:literal, $site_says:literal, $foreign_feed:literal) => {
        mod $module {
            use super::*;

            #[test]
            fn profile_as_on_sqlite() {
                if let Some(b) = $open(concat!($tag, "_profile")) {
                    super::profile_as_on_sqlite(&b, $tag);
                }
            }

            #[test]
            fn foreign_site_tables_are_refused() {
                if let Some(b) = $open(concat!($tag, "_foreign_site")) {
                    super::foreign_site_tables_are_refused(&b, $foreign_site, $site_says);
                }
            }

            #[test]
            fn pages_as_on_sqlite() {
                if let Some(b) = $open(concat!($tag, "_pages")) {
                    super::pages_as_on_sqlite(&b, concat!($tag, "_pages"));
                }
            }

            #[test]
            fn evicted_data_sets_are_deleted_and_loaded_again() {
                if let Some(b) = $open(concat!($tag, "_evicted")) {
                    super::evicted_data_sets_are_deleted_and_loaded_again(
                        &b,
                        concat!($tag, "_evicted"),
                    );
                }
            }

            #[test]
            fn data_sets_missing_rows_are_reloaded() {
                if let Some(b) = $open(concat!($tag, "_missing")) {
                    super::data_sets_missing_rows_are_reloaded(&b, concat!($tag, "_missing"));
                }
            }

            #[test]
            fn foreign_feed_tables_are_refused() {
                if let Some(b) = $open(concat!($tag, "_foreign_feed")) {
                    super::foreign_feed_tables_are_refused(&b, $foreign_feed);
                }
            }
        }
    };
}

on_backend!(
    on_postgres,
    Backend::postgres,
    "srv_pg",
    "CREATE TABLE asynq_profile_users (id BIGINT PRIMARY KEY, name TEXT);
     INSERT INTO asynq_profile_users VALUES (1, 'mine');
     CREATE VIEW asynq_profile_recent_answers AS SELECT 1 AS author;",
    "table `asynq_profile_users` was not made by this program (a table without a comment)",
    "CREATE TABLE asynq_feed1_kv (key TEXT PRIMARY KEY, value TEXT);
     INSERT INTO asynq_feed1_kv VALUES ('q10a5/q:0:title', 'mine'), ('x', 'y');"
);

on_backend!(
    on_mysql,
    Backend::mysql,
    "srv_my",
    "CREATE VIEW asynq_profile_recent_answers AS SELECT 1 AS author;",
    "table `asynq_profile_recent_answers` was not made by this program (a view in a database \
     without all of this program's tables)",
    "CREATE TABLE asynq_feed1_kv (`key` VARCHAR(100) PRIMARY KEY, `value` TEXT);
     INSERT INTO asynq_feed1_kv VALUES ('q10a5/q:0:title', 'mine'), ('x', 'y');"
);
