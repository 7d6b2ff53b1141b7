//! A fresh database for one test on the PostgreSQL or MariaDB server the tests start
//! (src/servers), with the tokio runtime its drivers run on and a few queries of the test's
//! own. Used by the tests of the data sets and programs over database servers.
#![allow(dead_code, reason = "each test file uses the helpers it needs")]

use asynq_sources::{mysql, postgres};
use asynq_tests::servers as test_servers;

/// A database of one server, fresh for one test, and the tokio runtime its drivers run on.
pub(crate) struct Backend {
    pub(crate) io: tokio::runtime::Runtime,
    pub(crate) db: Db,
    /// The database's URL.
    pub(crate) url: String,
}

pub(crate) enum Db {
    Postgres(postgres::Db),
    Mysql(mysql::Db),
}

impl Backend {
    pub(crate) fn postgres(test: &str) -> Option<Backend> {
        let server = test_servers::postgres(test)?;
        let io = io();
        let db = io.block_on(async {
            let admin = postgres::Db::connect(&server.postgres_url("postgres"))
                .await
                .unwrap();
            admin
                .execute_batch(&format!("CREATE DATABASE {test}"))
                .await
                .unwrap();
            postgres::Db::connect(&server.postgres_url(test))
                .await
                .unwrap()
        });
        Some(Backend {
            io,
            db: Db::Postgres(db),
            url: server.postgres_url(test),
        })
    }

    pub(crate) fn mysql(test: &str) -> Option<Backend> {
        let server = test_servers::mysql(test)?;
        let io = io();
        let db = io.block_on(async {
            let admin = mysql::Db::connect(&server.mysql_url("")).await.unwrap();
            admin
                .execute_batch(&format!("CREATE DATABASE {test}"))
                .await
                .unwrap();
            mysql::Db::connect(&server.mysql_url(test)).await.unwrap()
        });
        Some(Backend {
            io,
            db: Db::Mysql(db),
            url: server.mysql_url(test),
        })
    }

    /// Run SQL statements (no parameters) in the test's database.
    pub(crate) fn execute(&self, sql: &str) {
        self.io
            .block_on(async {
                match &self.db {
                    Db::Postgres(db) => db.execute_batch(sql).await,
                    Db::Mysql(db) => db.execute_batch(sql).await,
                }
            })
            .unwrap();
    }

    /// The number of tables named `name` in the test's database.
    pub(crate) fn tables_named(&self, name: &str) -> usize {
        let sql = match &self.db {
            Db::Postgres(_) => format!(
                "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema() AND tablename = '{name}'"
            ),
            Db::Mysql(_) => format!(
                "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '{name}'"
            ),
        };
        self.scalar(&sql) as usize
    }

    /// The one integer a query of the test's own returns.
    pub(crate) fn scalar(&self, sql: &str) -> i64 {
        self.io.block_on(async {
            match &self.db {
                Db::Postgres(db) => {
                    let client = db.pool().get().await.unwrap();
                    client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0)
                }
                Db::Mysql(db) => {
                    use asynq_sources::mysql::mysql_async::prelude::Queryable as _;
                    let mut conn = db.pool().get_conn().await.unwrap();
                    conn.query_first::<i64, _>(sql).await.unwrap().unwrap()
                }
            }
        })
    }
}

/// A tokio runtime of 2 workers for a test's drivers.
pub(crate) fn io() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}
