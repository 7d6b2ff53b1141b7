//! The SQL sources of `asynq-sources` against a real MariaDB server that the tests start
//! themselves (src/servers): the shared cases (tests/sql), each in a database of its own, and
//! what is MySQL's own: case-insensitive collations, unsigned keys above `i64::MAX`, runs
//! awaited inside tokio, a query cut off by the fetch timeout, connections reused.
//!
//! Without MariaDB installed these tests print a line and pass, unless `ASYNQ_REQUIRE_MYSQL`
//! is set (as in CI): then they fail.

mod sql;

use asynq_core::{DataSource as _, Error, Runtime, asynq};
use asynq_sources::mysql::{self, mysql_async};
use asynq_sources::{ErrorKind, KeyMatch, SqlError, Table};
use asynq_tests::servers;
use mysql_async::prelude::Queryable as _;
use sql::servers::Server;

/// The default collation of text columns is utf8mb4_general_ci (case- and
/// accent-insensitive); the key-value table compares keys exactly, as a store of keys must.
const SCHEMA: &str = "
    CREATE TABLE users (id BIGINT PRIMARY KEY, name VARCHAR(100) NOT NULL, karma BIGINT NOT NULL);
    CREATE TABLE comments (id BIGINT PRIMARY KEY, post_id INT NOT NULL, body VARCHAR(255) NOT NULL,
        INDEX (post_id));
    CREATE TABLE tags (name VARCHAR(100) PRIMARY KEY, uses BIGINT NOT NULL);
    CREATE TABLE counters (id BIGINT UNSIGNED PRIMARY KEY, n BIGINT NOT NULL);
    CREATE TABLE kv (`key` VARCHAR(255) COLLATE utf8mb4_bin PRIMARY KEY, value TEXT NOT NULL);
";

struct My(mysql::Db);

impl My {
    /// Run `work` on a connection of the pool, on a runtime of its own (the test's thread is
    /// outside any).
    fn with_conn<R>(
        &self,
        work: impl AsyncFnOnce(&mut mysql_async::Conn) -> mysql_async::Result<R>,
    ) -> R {
        let pool = self.0.pool().clone();
        sql::servers::on_own_runtime(async move {
            let mut conn = pool.get_conn().await.unwrap();
            work(&mut conn).await.unwrap()
        })
    }
}

impl sql::Backend for My {
    type Db = mysql::Db;

    fn db(&self) -> &mysql::Db {
        &self.0
    }

    fn execute(&self, sql: &str) {
        futures::executor::block_on(self.0.execute_batch(sql)).unwrap();
    }

    fn slow_queries_running(&self) -> u64 {
        self.with_conn(async |conn| {
            conn.query_first::<u64, _>(
                "SELECT COUNT(*) FROM information_schema.processlist \
                 WHERE info LIKE '%slow_users%' AND info NOT LIKE '%processlist%'",
            )
            .await
        })
        .unwrap_or(0)
    }

    fn load_kv(&self, pairs: &[(String, String)]) {
        let pairs = pairs.to_vec();
        self.with_conn(async move |conn| {
            conn.exec_batch("INSERT INTO kv (`key`, value) VALUES (?, ?)", pairs)
                .await
        });
    }
}

impl Server for My {
    const SCHEMA: &'static str = SCHEMA;
    const ADMIN_DB: &'static str = "mysql";

    fn server(test: &str) -> Option<&'static servers::Server> {
        servers::mysql(test)
    }

    fn url(server: &servers::Server, database: &str) -> String {
        server.mysql_url(database)
    }

    fn connect(url: &str) -> Result<My, SqlError> {
        mysql::Db::connect_blocking(url).map(My)
    }
}

/// A new database `name` on the shared server (`None`: MariaDB cannot be started).
fn fresh(name: &str) -> Option<My> {
    sql::servers::fresh(name)
}

/// Tags by name, declared as the column compares: without case (utf8mb4_general_ci).
struct TagsIgnoringCase;
impl Table for TagsIgnoringCase {
    type Key = String;
    type Row = i64;
    const NAME: &'static str = "tags";
    const TABLE: &'static str = "tags";
    const KEY: &'static str = "name";
    const COLUMNS: &'static [&'static str] = &["uses"];
    const KEY_MATCH: KeyMatch = KeyMatch::IgnoreCase;
}

sql::every_case!(fresh);

#[asynq]
fn tag_uses(names: Vec<String>) -> Vec<Result<Option<i64>, Error>> {
    mysql::Rows::<TagsIgnoringCase>::load_many(names).await
}

#[asynq]
fn tag_uses_exact(names: Vec<String>) -> Vec<Result<Option<i64>, Error>> {
    mysql::Rows::<sql::Tags>::load_many(names).await
}

/// The kind of a failed answer's `SqlError`.
fn sql_error(answer: &Result<Option<i64>, Error>) -> &SqlError {
    let err = answer.as_ref().unwrap_err();
    let Error::Source { error, .. } = err else {
        panic!("{err}")
    };
    error.downcast_ref::<SqlError>().unwrap()
}

/// A case-insensitive collation matches keys that differ in case and trailing spaces: with
/// `KeyMatch::IgnoreCase` the row goes to every key the server matched it with; declared
/// `Exact`, such a row fails the call, as does a key the server matches in a way the source
/// cannot tell (accents): a row is never silently lost.
#[test]
fn case_insensitive_collations() {
    let Some(b) = fresh("case_insensitive_collations") else {
        return;
    };
    futures::executor::block_on(b.0.execute_batch("INSERT INTO tags VALUES ('résumé', 3)"))
        .unwrap();
    let rt = Runtime::new()
        .with_source(mysql::Rows::<TagsIgnoringCase>::new(b.0.clone()).unwrap())
        .with_source(mysql::Rows::<sql::Tags>::new(b.0.clone()).unwrap());
    let asked = ["RUST", "rust", "Rust  ", "nope"]
        .map(String::from)
        .to_vec();
    let got: Vec<Option<i64>> = rt
        .run(tag_uses(asked))
        .unwrap()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    assert_eq!(got, [Some(7), Some(7), Some(7), None]);

    let got = rt
        .run(tag_uses(vec!["resume".into(), "rust".into()]))
        .unwrap();
    for answer in &got {
        let sql = sql_error(answer);
        assert_eq!(sql.kind(), ErrorKind::UnexpectedKey);
        assert!(
            sql.to_string()
                .starts_with(r#"source `tags` (table `tags`): unexpected row for key "résumé""#),
            "{sql}"
        );
    }

    let got = rt.run(tag_uses_exact(vec!["RUST".into()])).unwrap();
    let sql = sql_error(&got[0]);
    assert_eq!(sql.kind(), ErrorKind::UnexpectedKey);
    assert!(
        sql.to_string()
            .contains("set the table's KEY_MATCH to KeyMatch::IgnoreCase"),
        "{sql}"
    );
}

#[asynq]
fn counters(ids: Vec<u64>) -> Result<Vec<Option<i64>>, Error> {
    mysql::Rows::<sql::Counters>::load_many(ids)
        .await
        .into_iter()
        .collect()
}

/// Unsigned keys above `i64::MAX`, which a `BIGINT UNSIGNED` column holds.
#[test]
fn unsigned_keys_above_i64_max() {
    let Some(b) = fresh("unsigned_keys_above_i64_max") else {
        return;
    };
    futures::executor::block_on(b.0.execute_batch(
        "INSERT INTO counters VALUES (18446744073709551615, -5), (9223372036854775808, 8)",
    ))
    .unwrap();
    let rt = Runtime::new().with_source(mysql::Rows::<sql::Counters>::new(b.0.clone()).unwrap());
    let got = rt
        .run(counters(vec![u64::MAX, 1 << 63, 7, (1 << 63) + 1]))
        .unwrap();
    assert_eq!(got, [Some(-5), Some(8), Some(700), None]);
}

/// Inside an async server: the `Db` opened with `connect` in tokio, many runs awaited at
/// once with `run_async`.
#[test]
fn runs_awaited_inside_tokio() {
    let Some(server) = servers::mysql("runs_awaited_inside_tokio") else {
        return;
    };
    drop(fresh("runs_awaited_inside_tokio"));
    let url = server.mysql_url("runs_awaited_inside_tokio");
    sql::runs_awaited_inside_tokio(
        || async { mysql::Db::connect(&url).await.unwrap() },
        |db| {
            assert_eq!(db.max_keys(), Some(mysql::MAX_PARAMS));
            db.set_max_keys(Some(70_000));
            assert_eq!(db.max_keys(), Some(65535), "never past the server's limit");
        },
    );
}

/// Calls one after another reuse the pool's idle connection rather than each opening one
/// (mysql_async closes a returned connection unless the pool keeps idle ones).
#[test]
fn calls_reuse_the_pools_connections() {
    let Some(b) = fresh("calls_reuse_the_pools_connections") else {
        return;
    };
    sql::servers::calls_reuse_the_pools_connections(
        &b,
        "CREATE VIEW served_by AS SELECT id, CAST(CONNECTION_ID() AS SIGNED) AS conn FROM users",
    );
}

/// A call past the fetch timeout fails its keys; the query is killed on the server.
#[test]
fn a_query_past_the_fetch_timeout_fails_its_keys() {
    let Some(b) = fresh("a_query_past_the_fetch_timeout") else {
        return;
    };
    sql::a_query_past_the_fetch_timeout_fails_its_keys(
        &b,
        "CREATE VIEW slow_users AS SELECT id, name FROM users WHERE SLEEP(5) = 0",
    );
}

/// A URL that is not one, and a server that is not there, fail to connect with the reason.
#[test]
fn bad_urls_fail_to_connect() {
    sql::servers::bad_urls_fail_to_connect::<My>("mysql", "mysql: bad setup: not a MySQL URL");
}
