//! The FEED-1 data set file: its `kv` table, filled by [`fill_kv`], opened by [`open_feed`].

use std::path::Path;

use super::rusqlite::types::ToSql;
use super::rusqlite::{self, Connection};

use super::owned::{Mark, OpenError, open_owned};
use crate::sql_kv::SqlKv;

/// The `user_version` of the FEED-1 data set files made by [`open_feed`].
pub const FEED_FILE_VERSION: i32 = 1001;

/// How a FEED-1 data set file made by [`open_feed`] is known.
pub fn feed_mark(p: crate::feed::Params) -> Mark {
    Mark {
        user_version: FEED_FILE_VERSION,
        tag: format!("FEED-1 Q={} A={}", p.questions, p.answers),
    }
}

/// Create the `kv` table (`key TEXT PRIMARY KEY, value TEXT NOT NULL`) when missing and insert
/// (or replace) `pairs` in it, in one transaction: the table [`SqlKv::sqlite`] reads.
///
/// # Examples
///
/// ```
/// use asynq_examples::feed::{self, Params};
/// use asynq_examples::sql_kv::SqlKv;
/// use asynq_examples::sqlite::{Db, fill_kv};
///
/// let db = Db::open_in_memory()?;
/// db.with_conn(|c| fill_kv(c, feed::dataset(Params { questions: 10, answers: 5 })))?;
/// let store = SqlKv::sqlite(db)?;
/// assert_eq!(store.backend(), "sqlite");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn fill_kv<K: ToSql, V: ToSql>(
    conn: &mut Connection,
    pairs: impl IntoIterator<Item = (K, V)>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    )?;
    {
        let mut insert =
            tx.prepare_cached("INSERT OR REPLACE INTO kv (key, value) VALUES (?1, ?2)")?;
        for (key, value) in pairs {
            insert.execute((key, value))?;
        }
    }
    tx.commit()
}

/// The FEED-1 data set for `p` in the file at `path`, made on first use (or when the file
/// holds another size) and reused after; see [`open_owned`]: the file is built under a
/// temporary name and moved in place complete, and a file this crate did not make is refused
/// and left untouched. Returns the store and whether it built the data now.
///
/// # Examples
///
/// ```
/// use asynq_core::Runtime;
/// use asynq_examples::feed::{self, Params};
/// use asynq_examples::sql_kv::SqlKv;
/// use asynq_examples::sqlite::open_feed;
///
/// let dir = std::env::temp_dir().join(format!("open-feed-doc-{}", std::process::id()));
/// let p = Params { questions: 10, answers: 5 };
/// let (store, built) = open_feed(dir.join("feed.sqlite"), p)?;
/// assert!(built);
/// let rt = Runtime::new().with_source(store);
/// let page = rt.run(feed::feed::<SqlKv>(p))?;
/// assert_eq!(page.len(), 2152);
/// assert_eq!(rt.source::<SqlKv>().unwrap().queries(), 3);
/// let (_, built) = open_feed(dir.join("feed.sqlite"), p)?;
/// assert!(!built); // reused
/// std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn open_feed(
    path: impl AsRef<Path>,
    p: crate::feed::Params,
) -> Result<(SqlKv, bool), OpenError> {
    let path = path.as_ref();
    let (db, built) = open_owned(path, &feed_mark(p), |c| fill_kv(c, crate::feed::dataset(p)))?;
    let store = SqlKv::sqlite(db).map_err(|e| OpenError::Sqlite {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    Ok((store, built))
}
