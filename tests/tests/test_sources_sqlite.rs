//! The SQL cases of `asynq-sources` (tests/sql) over SQLite, in memory.

mod sql;

use asynq_sources::sqlite;

const SCHEMA: &str = "
    CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, karma INTEGER NOT NULL);
    CREATE TABLE comments (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL, body TEXT NOT NULL);
    CREATE TABLE tags (name TEXT PRIMARY KEY, uses INTEGER NOT NULL);
    CREATE TABLE counters (id INTEGER PRIMARY KEY, n INTEGER NOT NULL);
    CREATE TABLE kv (key TEXT PRIMARY KEY, value TEXT NOT NULL);
";

struct Sqlite(sqlite::Db);

impl sql::Backend for Sqlite {
    type Db = sqlite::Db;

    fn db(&self) -> &sqlite::Db {
        &self.0
    }

    fn execute(&self, sql: &str) {
        self.0.execute_batch(sql).unwrap();
    }

    fn slow_queries_running(&self) -> u64 {
        0 // SQLite has no server: a query ends with its call's thread
    }

    fn load_kv(&self, pairs: &[(String, String)]) {
        self.0
            .with_conn(|c| {
                let tx = c.transaction()?;
                {
                    let mut insert = tx.prepare("INSERT INTO kv (key, value) VALUES (?1, ?2)")?;
                    for (k, v) in pairs {
                        insert.execute([k, v])?;
                    }
                }
                tx.commit()
            })
            .unwrap();
    }
}

/// A new database in memory, with the schema and the fixture (`Option` as for the servers'
/// backends, which may be skipped).
fn fresh(_test: &str) -> Option<Sqlite> {
    let db = sqlite::Db::open_in_memory().unwrap();
    db.execute_batch(SCHEMA).unwrap();
    db.execute_batch(sql::FIXTURE).unwrap();
    Some(Sqlite(db))
}

sql::every_case!(fresh);

/// A database file shared by a pool of connections; the server's limit of bound parameters
/// is what a round is split at when no lower limit is set.
#[test]
fn a_file_database_splits_at_the_bound_parameter_limit() {
    let file = asynq_tests::TempDb::new("sources-limit");
    let db = sqlite::Db::open(file.path()).unwrap();
    db.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT NOT NULL, karma INTEGER NOT NULL)",
    )
    .unwrap();
    db.with_conn(|c| {
        let tx = c.transaction()?;
        {
            let mut insert = tx.prepare("INSERT INTO users VALUES (?1, 'u' || ?1, ?1)")?;
            for id in 1..=40_000i64 {
                insert.execute([id])?;
            }
        }
        tx.commit()
    })
    .unwrap();
    let limit = db.max_keys().unwrap();
    assert_eq!(limit, 32766);
    let rt = asynq_core::Runtime::new()
        .with_source(sqlite::Rows::<sql::Users>::new(db.clone()).unwrap());
    let ids: Vec<i64> = (1..=40_000).collect();
    let got = rt.run(users_sum(ids)).unwrap();
    assert_eq!(got, (1..=40_000i64).sum::<i64>());
    assert_eq!(rt.last_stats().source("users").unwrap().calls, 2);
    assert_eq!((db.queries(), db.keys()), (2, 40_000));
}

#[asynq_core::asynq]
fn users_sum(ids: Vec<i64>) -> Result<i64, asynq_core::Error> {
    use asynq_core::DataSource as _;
    let rows = sqlite::Rows::<sql::Users>::load_many(ids).await;
    let mut sum = 0;
    for row in rows {
        sum += row?.map_or(0, |(_, karma)| karma);
    }
    Ok(sum)
}
