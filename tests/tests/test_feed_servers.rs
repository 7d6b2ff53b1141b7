//! FEED-1 in PostgreSQL and MariaDB servers that the tests start (src/servers), as the `feed`
//! program's `postgres` and `mysql` backends read it: the reference pages in 3 calls, data sets
//! loaded once and side by side, reloaded when rows went missing, removed, and tables of the
//! same names that the program did not make refused and left as they were.
//!
//! Without the servers installed these tests print a line and pass, unless
//! `ASYNQ_REQUIRE_POSTGRES` / `ASYNQ_REQUIRE_MYSQL` is set (as in CI): then they fail.

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params};
use asynq_examples::kv::KvStore as _;
use asynq_examples::sql_kv::SqlKv;
use asynq_examples::sql_kv::servers::{self, DataSetError};

#[path = "sql/databases.rs"]
mod databases;

use databases::{Backend, Db};

/// The reference figures of `docs/feed1.md`: (Q, A, keys, out_len, fnv).
const SIZES: [(u64, u64, usize, usize, u64); 3] = [
    (10, 5, 195, 2152, 0xac26a36b50baee7b),
    (100, 10, 3400, 39740, 0x56dc3f446f2c5f61),
    (1000, 10, 34000, 420354, 0xf4d5a1d76cc5dc31),
];

const SMALL: Params = Params {
    questions: 10,
    answers: 5,
};

/// The FEED-1 data sets of a test's database.
trait DataSets {
    /// Data set `p`, loaded when missing; whether it was loaded now.
    fn open(&self, p: Params) -> Result<(SqlKv, bool), DataSetError>;
    /// Delete data set `p`; whether its tables were there.
    fn remove(&self, p: Params) -> Result<bool, DataSetError>;
}

impl DataSets for Backend {
    fn open(&self, p: Params) -> Result<(SqlKv, bool), DataSetError> {
        self.io.block_on(async {
            match &self.db {
                Db::Postgres(db) => servers::open_postgres(db, p).await,
                Db::Mysql(db) => servers::open_mysql(db, p).await,
            }
        })
    }

    fn remove(&self, p: Params) -> Result<bool, DataSetError> {
        self.io.block_on(async {
            match &self.db {
                Db::Postgres(db) => servers::remove_postgres(db, p).await,
                Db::Mysql(db) => servers::remove_mysql(db, p).await,
            }
        })
    }
}

/// The asynq page over `store`: (out_len, fnv, queries, keys sent, rounds).
fn batched(store: SqlKv, p: Params) -> (usize, u64, usize, usize, usize) {
    store.reset_counters();
    let rt = Runtime::new().with_source(store);
    let page = rt.run(feed::feed::<SqlKv>(p)).unwrap();
    let store = rt.source::<SqlKv>().unwrap();
    (
        page.len(),
        feed::fnv1a64(page.as_bytes()),
        store.queries(),
        store.keys(),
        rt.last_stats().rounds,
    )
}

/// Every reference page in 3 calls, each data set loaded once; the data sets live side by
/// side; the naive page makes one query per key.
fn reference_pages_in_three_calls(b: &Backend) {
    for (q, a, keys, len, fnv) in SIZES {
        let p = Params {
            questions: q,
            answers: a,
        };
        let (store, loaded) = b.open(p).unwrap();
        assert!(loaded, "Q={q} A={a} loaded");
        assert_eq!(batched(store, p), (len, fnv, 3, keys, 3), "Q={q} A={a}");
        let (store, loaded) = b.open(p).unwrap();
        assert!(!loaded, "Q={q} A={a} reused");
        assert_eq!(
            batched(store, p),
            (len, fnv, 3, keys, 3),
            "Q={q} A={a} again"
        );
    }
    assert_eq!(
        b.scalar("SELECT COUNT(*) FROM asynq_feed1_datasets"),
        3,
        "three data sets side by side"
    );
    let (store, loaded) = b.open(SMALL).unwrap();
    assert!(!loaded);
    store.reset_counters(); // the counters are the database's, shared by every store over it
    let naive = feed::naive_on(&store, SMALL).unwrap();
    assert_eq!(feed::fnv1a64(naive.as_bytes()), 0xac26a36b50baee7b);
    assert_eq!(store.round_trips(), 10 * (5 + 3 * 5));
}

/// A data set whose rows or tag went missing is loaded again; a removed one too.
fn damaged_and_removed_data_sets_are_loaded_again(b: &Backend) {
    let (_, loaded) = b.open(SMALL).unwrap();
    assert!(loaded);
    let other = Params {
        questions: 1,
        answers: 5,
    };
    let (_, loaded) = b.open(other).unwrap();
    assert!(loaded);
    b.execute("DELETE FROM asynq_feed1_kv WHERE value = 'Question 3'");
    let (store, loaded) = b.open(SMALL).unwrap();
    assert!(loaded, "a missing row: loaded again");
    assert_eq!(batched(store, SMALL).1, 0xac26a36b50baee7b);
    b.execute("DELETE FROM asynq_feed1_datasets WHERE dataset = 'FEED-1 Q=10 A=5'");
    let (_, loaded) = b.open(SMALL).unwrap();
    assert!(loaded, "a missing tag: loaded again");

    assert!(b.remove(SMALL).unwrap());
    // Only the other data set's keys are left: 3 + 2 * 5 + 2 * 10.
    assert_eq!(b.scalar("SELECT COUNT(*) FROM asynq_feed1_kv"), 33);
    assert_eq!(b.scalar("SELECT COUNT(*) FROM asynq_feed1_datasets"), 1);
    let (_, loaded) = b.open(other).unwrap();
    assert!(!loaded, "the other data set is untouched");
    let (store, loaded) = b.open(SMALL).unwrap();
    assert!(loaded);
    assert_eq!(batched(store, SMALL).1, 0xac26a36b50baee7b);
}

/// Tables of the program's names that it did not make are refused, and nothing is written.
fn foreign_tables_are_refused_and_left_as_they_are(b: &Backend, foreign: &str) {
    b.execute(foreign);
    let err = b.open(SMALL).unwrap_err();
    assert!(
        matches!(&err, DataSetError::NotOurs { table, .. } if *table == servers::KV_TABLE),
        "{err:?}"
    );
    let text = err.to_string();
    assert!(
        text.starts_with("table `asynq_feed1_kv` was not made by this program")
            && text.contains("left as it is"),
        "{text}"
    );
    assert!(matches!(b.remove(SMALL), Err(DataSetError::NotOurs { .. })));
    assert_eq!(
        b.scalar("SELECT COUNT(*) FROM asynq_feed1_kv"),
        2,
        "its rows are as they were"
    );
    assert_eq!(
        b.tables_named(servers::SETS_TABLE),
        0,
        "nothing was created"
    );
}

mod on_postgres {
    use super::*;

    #[test]
    fn reference_pages_in_three_calls() {
        if let Some(b) = Backend::postgres("feed_pg_reference") {
            super::reference_pages_in_three_calls(&b);
        }
    }

    #[test]
    fn damaged_and_removed_data_sets_are_loaded_again() {
        if let Some(b) = Backend::postgres("feed_pg_damaged") {
            super::damaged_and_removed_data_sets_are_loaded_again(&b);
        }
    }

    #[test]
    fn foreign_tables_are_refused_and_left_as_they_are() {
        if let Some(b) = Backend::postgres("feed_pg_foreign") {
            super::foreign_tables_are_refused_and_left_as_they_are(
                &b,
                "CREATE TABLE asynq_feed1_kv (key TEXT PRIMARY KEY, value TEXT);
                 COMMENT ON TABLE asynq_feed1_kv IS 'my own';
                 INSERT INTO asynq_feed1_kv VALUES ('q1a5/q:0:title', 'mine'), ('x', 'y');",
            );
        }
    }
}

mod on_mysql {
    use super::*;

    #[test]
    fn reference_pages_in_three_calls() {
        if let Some(b) = Backend::mysql("feed_my_reference") {
            super::reference_pages_in_three_calls(&b);
        }
    }

    #[test]
    fn damaged_and_removed_data_sets_are_loaded_again() {
        if let Some(b) = Backend::mysql("feed_my_damaged") {
            super::damaged_and_removed_data_sets_are_loaded_again(&b);
        }
    }

    #[test]
    fn foreign_tables_are_refused_and_left_as_they_are() {
        if let Some(b) = Backend::mysql("feed_my_foreign") {
            super::foreign_tables_are_refused_and_left_as_they_are(
                &b,
                "CREATE TABLE asynq_feed1_kv (`key` VARCHAR(100) PRIMARY KEY, `value` TEXT);
                 INSERT INTO asynq_feed1_kv VALUES ('q1a5/q:0:title', 'mine'), ('x', 'y');",
            );
        }
    }
}
