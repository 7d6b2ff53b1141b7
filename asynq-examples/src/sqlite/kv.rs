//! The FEED-1 key-value table: [`Kv`] and [`SqliteKv`].

use std::path::Path;
use std::time::Duration;

use asynq_core::DataSource;
use rusqlite::Connection;
use rusqlite::types::ToSql;

use super::owned::{Mark, OpenError, open_owned};
use super::{Db, Table};
use crate::kv::KvStore;
use crate::offload::offload;

/// The `kv` table: string keys, string values.
#[derive(Debug)]
pub struct Kv;

impl Table for Kv {
    type Key = String;
    type Row = String;
    const NAME: &'static str = "sqlite";
    const QUERY: &'static str = "SELECT key, value FROM kv WHERE key IN ({keys})";
    fn read(row: &rusqlite::Row<'_>) -> rusqlite::Result<String> {
        row.get(1)
    }
}

/// A key-value table in SQLite with memcached's `get_multi` semantics: a source with
/// `Key = String` and `Value = String`, the store of the FEED-1 page's `sqlite` backend.
///
/// Absent keys are left out of the answer, as memcached leaves them out, so that a task
/// asking for one fails with [`asynq_core::Error::MissingKey`]; use [`Sqlite<Kv>`](super::Sqlite) to get
/// `None` instead. [`open_feed`](SqliteKv::open_feed) creates the FEED-1 data set in a file
/// on first use and reuses it after.
///
/// # Examples
///
/// ```
/// use asynq_core::Runtime;
/// use asynq_examples::feed::{self, Params};
/// use asynq_examples::sqlite::{Db, SqliteKv};
///
/// let p = Params { questions: 10, answers: 5 };
/// let store = SqliteKv::create(Db::open_in_memory()?)?;
/// store.put_all(feed::dataset(p))?;
/// let rt = Runtime::new().with_source(store);
/// let page = rt.run(feed::feed::<SqliteKv>(p))?;
/// assert_eq!(page.len(), 2152);
/// assert_eq!(rt.source::<SqliteKv>().unwrap().db().calls(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct SqliteKv {
    db: Db,
}

/// The `user_version` of the FEED-1 data set files made by [`SqliteKv::open_feed`].
pub const FEED_FILE_VERSION: i32 = 1001;

/// How a FEED-1 data set file made by [`SqliteKv::open_feed`] is known.
pub fn feed_mark(p: crate::feed::Params) -> Mark {
    Mark {
        user_version: FEED_FILE_VERSION,
        tag: format!("FEED-1 Q={} A={}", p.questions, p.answers),
    }
}

impl SqliteKv {
    /// The `kv` table in `db`, created if missing.
    pub fn create(db: Db) -> rusqlite::Result<SqliteKv> {
        db.with_conn(|c| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) \
                 WITHOUT ROWID;",
            )
        })?;
        Ok(SqliteKv { db })
    }

    /// The FEED-1 data set for `p` in the file at `path`, made on first use (or when the file
    /// holds another size) and reused after; see [`open_owned`]: the file is built under a
    /// temporary name and moved in place complete, and a file this crate did not make is
    /// refused and left untouched. Returns the store and whether it built the data now.
    pub fn open_feed(
        path: impl AsRef<Path>,
        p: crate::feed::Params,
    ) -> Result<(SqliteKv, bool), OpenError> {
        let (db, built) = open_owned(path.as_ref(), &feed_mark(p), |db| {
            SqliteKv::create(db.clone())?.put_all(crate::feed::dataset(p))
        })?;
        Ok((SqliteKv { db }, built))
    }

    /// Insert (or replace) `pairs`, in one transaction.
    pub fn put_all<K: ToSql, V: ToSql>(
        &self,
        pairs: impl IntoIterator<Item = (K, V)>,
    ) -> rusqlite::Result<()> {
        self.db.with_conn(|c| {
            let tx = c.transaction()?;
            insert_pairs(&tx, pairs)?;
            tx.commit()
        })
    }

    /// The connection, with its query counters.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// Sleep `latency` in every query, as a remote database would take.
    pub fn with_latency(self, latency: Duration) -> Self {
        self.db.set_latency(latency);
        self
    }
}

fn insert_pairs<K: ToSql, V: ToSql>(
    conn: &Connection,
    pairs: impl IntoIterator<Item = (K, V)>,
) -> rusqlite::Result<()> {
    let mut insert =
        conn.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?;
    for (key, value) in pairs {
        insert.execute((key, value))?;
    }
    Ok(())
}

impl KvStore for SqliteKv {
    type Error = rusqlite::Error;

    fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, rusqlite::Error> {
        self.db.query::<Kv>(keys)
    }

    fn round_trips(&self) -> usize {
        self.db.calls()
    }

    fn keys_sent(&self) -> usize {
        self.db.keys()
    }
}

impl DataSource for SqliteKv {
    type Key = String;
    type Value = String;
    type Error = rusqlite::Error;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, rusqlite::Error> {
        let (db, keys) = (self.db.clone(), keys.to_vec());
        offload(move || db.query::<Kv>(&keys)).await
    }

    fn name(&self) -> &str {
        Kv::NAME
    }

    fn max_batch_size(&self) -> Option<usize> {
        Some(self.db.max_params())
    }
}
