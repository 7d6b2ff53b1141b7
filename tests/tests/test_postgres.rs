//! The SQL sources of `asynq-sources` against a real PostgreSQL server that the tests start
//! themselves (src/servers): the shared cases (tests/sql), each in a database of its own, and
//! what is PostgreSQL's own: runs awaited inside tokio, a query cut off by the fetch timeout,
//! connections reused.
//!
//! Without PostgreSQL installed these tests print a line and pass, unless
//! `ASYNQ_REQUIRE_POSTGRES` is set (as in CI): then they fail.

mod sql;

use asynq_sources::ErrorKind;
use asynq_sources::postgres::{self, tokio_postgres};
use asynq_tests::servers;

const SCHEMA: &str = "
    CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, karma BIGINT NOT NULL);
    CREATE TABLE comments (id BIGINT PRIMARY KEY, post_id INTEGER NOT NULL, body TEXT NOT NULL);
    CREATE INDEX comments_post ON comments (post_id);
    CREATE TABLE tags (name TEXT PRIMARY KEY, uses BIGINT NOT NULL);
    CREATE TABLE counters (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

struct Pg(postgres::Db);

impl sql::Backend for Pg {
    type Db = postgres::Db;

    fn db(&self) -> &postgres::Db {
        &self.0
    }

    fn execute(&self, sql: &str) {
        futures::executor::block_on(self.0.execute_batch(sql)).unwrap();
    }

    fn slow_queries_running(&self) -> u64 {
        let pool = self.0.pool().clone();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = pool.get().await.unwrap();
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%slow_users%' \
                     AND state = 'active' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await
                .unwrap();
            row.get::<_, i64>(0) as u64
        })
    }

    fn load_kv(&self, pairs: &[(String, String)]) {
        let (keys, values): (Vec<&str>, Vec<&str>) =
            pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())).unzip();
        let pool = self.0.pool().clone();
        let (keys, values): (Vec<String>, Vec<String>) = (
            keys.into_iter().map(String::from).collect(),
            values.into_iter().map(String::from).collect(),
        );
        // On a runtime of its own: the test's thread is outside any.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = pool.get().await.unwrap();
            client
                .execute(
                    "INSERT INTO kv (key, value) SELECT * FROM UNNEST($1::text[], $2::text[])",
                    &[&keys, &values],
                )
                .await
                .unwrap();
        });
    }
}

/// A new database `name` on the shared server, with the schema and the fixture, opened
/// without tokio; `None` when PostgreSQL cannot be started (the test is skipped).
fn fresh(name: &str) -> Option<Pg> {
    let server = servers::postgres(name)?;
    let admin = postgres::Db::connect_blocking(&server.postgres_url("postgres")).unwrap();
    futures::executor::block_on(admin.execute_batch(&format!("CREATE DATABASE {name}"))).unwrap();
    let db = postgres::Db::connect_blocking(&server.postgres_url(name)).unwrap();
    futures::executor::block_on(db.execute_batch(SCHEMA)).unwrap();
    futures::executor::block_on(db.execute_batch(sql::FIXTURE)).unwrap();
    Some(Pg(db))
}

sql::cases!(fresh:
    rows_by_primary_key,
    groups_by_foreign_key,
    string_keys,
    unsigned_keys,
    chunked_at_the_limit,
    errors_name_the_table_and_keys,
    required_rows,
    feed1_over_the_kv_table,
    concurrent_runs_share_one_pool,
);

/// Inside an async server: the `Db` opened with `connect` in tokio, many runs awaited at
/// once with `run_async`; a blocking connect there is refused with the reason.
#[test]
fn runs_awaited_inside_tokio() {
    let Some(server) = servers::postgres("runs_awaited_inside_tokio") else {
        return;
    };
    drop(fresh("runs_awaited_inside_tokio"));
    let url = server.postgres_url("runs_awaited_inside_tokio");
    sql::runs_awaited_inside_tokio(
        || async { postgres::Db::connect(&url).await.unwrap() },
        |db| {
            assert_eq!(
                db.max_keys(),
                None,
                "one array parameter: no limit of its own"
            );
            let err = postgres::Db::connect_blocking(&url).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config);
            assert!(err.to_string().contains("use Db::connect there"), "{err}");
        },
    );
}

/// A call past the fetch timeout fails its keys; the server cancels the query.
#[test]
fn a_query_past_the_fetch_timeout_fails_its_keys() {
    let Some(b) = fresh("a_query_past_the_fetch_timeout") else {
        return;
    };
    sql::a_query_past_the_fetch_timeout_fails_its_keys(
        &b,
        "CREATE VIEW slow_users AS SELECT u.id, u.name FROM users u, pg_sleep(5) s",
    );
}

/// A connection string that is not one, and a server that is not there, fail to connect
/// with the reason.
#[test]
fn bad_urls_fail_to_connect() {
    let err = postgres::Db::connect_blocking("postgres://u@127.0.0.1:notaport/db").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(
        err.to_string()
            .starts_with("postgres: bad setup: not a PostgreSQL connection string"),
        "{err}"
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err =
        postgres::Db::connect_blocking(&format!("postgres://u@127.0.0.1:{port}/db")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Connect);
    let cause = std::error::Error::source(&err).unwrap().to_string();
    assert!(!cause.is_empty());
    let _ = tokio_postgres::NoTls; // the driver is re-exported for pools of one's own
}

/// The server process that served a query, by user id: `pg_backend_pid()` in a view.
struct ServedBy;
impl asynq_sources::Table for ServedBy {
    type Key = i64;
    type Row = i32;
    const NAME: &'static str = "served_by";
    const TABLE: &'static str = "served_by";
    const KEY: &'static str = "id";
    const COLUMNS: &'static [&'static str] = &["conn"];
}

#[asynq_core::asynq]
fn served_by(id: i64) -> Result<Option<i32>, asynq_core::Error> {
    use asynq_core::DataSource as _;
    postgres::Rows::<ServedBy>::load(id).await
}

/// Calls one after another reuse the pool's idle connection rather than each opening one.
#[test]
fn calls_reuse_the_pools_connections() {
    let Some(b) = fresh("calls_reuse_the_pools_connections") else {
        return;
    };
    futures::executor::block_on(
        b.0.execute_batch(
            "CREATE VIEW served_by AS SELECT id, pg_backend_pid() AS conn FROM users",
        ),
    )
    .unwrap();
    let rt = asynq_core::Runtime::new()
        .with_source(postgres::Rows::<ServedBy>::new(b.0.clone()).unwrap());
    let mut connections = std::collections::BTreeSet::new();
    for _ in 0..20 {
        connections.insert(rt.run(served_by(1)).unwrap().unwrap());
    }
    assert!(
        connections.len() <= 2,
        "20 calls in turn used {} connections",
        connections.len()
    );
}
