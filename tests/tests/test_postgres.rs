//! The SQL sources of `asynq-sources` against a real PostgreSQL server that the tests start
//! themselves (src/servers): the shared cases (tests/sql), each in a database of its own, and
//! what is PostgreSQL's own: runs awaited inside tokio, a query cut off by the fetch timeout,
//! connections reused.
//!
//! Without PostgreSQL installed these tests print a line and pass, unless
//! `ASYNQ_REQUIRE_POSTGRES` is set (as in CI): then they fail.

mod sql;

use asynq_sources::postgres::{self, tokio_postgres};
use asynq_sources::{ErrorKind, SqlError};
use asynq_tests::servers;
use sql::servers::Server;

const SCHEMA: &str = "
    CREATE TABLE users (id BIGINT PRIMARY KEY, name TEXT NOT NULL, karma BIGINT NOT NULL);
    CREATE TABLE comments (id BIGINT PRIMARY KEY, post_id INTEGER NOT NULL, body TEXT NOT NULL);
    CREATE INDEX comments_post ON comments (post_id);
    CREATE TABLE tags (name TEXT PRIMARY KEY, uses BIGINT NOT NULL);
    CREATE TABLE counters (id BIGINT PRIMARY KEY, n BIGINT NOT NULL);
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

struct Pg(postgres::Db);

impl Pg {
    /// Run `work` on a client of the pool, on a runtime of its own (the test's thread is
    /// outside any).
    fn with_client<R>(
        &self,
        work: impl AsyncFnOnce(&tokio_postgres::Client) -> Result<R, tokio_postgres::Error>,
    ) -> R {
        let pool = self.0.pool().clone();
        sql::servers::on_own_runtime(async move {
            let client = pool.get().await.unwrap();
            work(&client).await.unwrap()
        })
    }
}

impl sql::Backend for Pg {
    type Db = postgres::Db;

    fn db(&self) -> &postgres::Db {
        &self.0
    }

    fn execute(&self, sql: &str) {
        futures::executor::block_on(self.0.execute_batch(sql)).unwrap();
    }

    fn slow_queries_running(&self) -> u64 {
        self.with_client(async |client| {
            let row = client
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%slow_users%' \
                     AND state = 'active' AND pid <> pg_backend_pid()",
                    &[],
                )
                .await?;
            Ok(row.get::<_, i64>(0) as u64)
        })
    }

    fn load_kv(&self, pairs: &[(String, String)]) {
        let (keys, values): (Vec<String>, Vec<String>) = pairs.iter().cloned().unzip();
        self.with_client(async move |client| {
            client
                .execute(
                    "INSERT INTO kv (key, value) SELECT * FROM UNNEST($1::text[], $2::text[])",
                    &[&keys, &values],
                )
                .await
        });
    }
}

impl Server for Pg {
    const SCHEMA: &'static str = SCHEMA;
    const ADMIN_DB: &'static str = "postgres";

    fn server(test: &str) -> Option<&'static servers::Server> {
        servers::postgres(test)
    }

    fn url(server: &servers::Server, database: &str) -> String {
        server.postgres_url(database)
    }

    fn connect(url: &str) -> Result<Pg, SqlError> {
        postgres::Db::connect_blocking(url).map(Pg)
    }
}

/// A new database `name` on the shared server (`None`: PostgreSQL cannot be started).
fn fresh(name: &str) -> Option<Pg> {
    sql::servers::fresh(name)
}

sql::every_case!(fresh);

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
    sql::servers::bad_urls_fail_to_connect::<Pg>(
        "postgres",
        "postgres: bad setup: not a PostgreSQL connection string",
    );
    let _ = tokio_postgres::NoTls; // the driver is re-exported for pools of one's own
}

/// Calls one after another reuse the pool's idle connection rather than each opening one.
#[test]
fn calls_reuse_the_pools_connections() {
    let Some(b) = fresh("calls_reuse_the_pools_connections") else {
        return;
    };
    sql::servers::calls_reuse_the_pools_connections(
        &b,
        "CREATE VIEW served_by AS SELECT id, pg_backend_pid()::bigint AS conn FROM users",
    );
}
