//! [`AsyncSqliteKv`], the FEED-1 table queried on tokio's blocking pool, and [`ReadThrough`],
//! memcached in front of it.

use std::sync::Arc;

use asynq_core::DataSource;

use super::{AsyncMemcached, no_tokio};
use crate::sqlite::{Db, Kv};

/// The error of an SQLite call run on tokio's blocking pool.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The FEED-1 `kv` table (see [`SqliteKv`](crate::sqlite::SqliteKv)), each query run on
/// tokio's blocking pool by [`tokio::task::spawn_blocking`].
///
/// Absent keys are left out of the answer, as memcached leaves them out. Its queries are
/// [`Db::query`]'s, so [`Db::calls`] counts them.
///
/// # Examples
///
/// ```
/// use asynq_core::Runtime;
/// use asynq_examples::async_kv::AsyncSqliteKv;
/// use asynq_examples::feed::{self, Params};
/// use asynq_examples::sqlite::{Db, SqliteKv};
///
/// let p = Params { questions: 10, answers: 5 };
/// let db = Db::open_in_memory()?;
/// SqliteKv::create(db.clone())?.put_all(feed::dataset(p))?;
/// let rt = Runtime::new().with_source(AsyncSqliteKv::new(db.clone()));
/// let tokio = tokio::runtime::Builder::new_current_thread().build()?;
/// let page = tokio.block_on(rt.run_async(feed::feed::<AsyncSqliteKv>(p)))?;
/// assert_eq!(feed::fnv1a64(page.as_bytes()), 0xac26a36b50baee7b);
/// assert_eq!(db.calls(), 3);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct AsyncSqliteKv {
    db: Db,
}

impl AsyncSqliteKv {
    /// The `kv` table of `db` (made by [`SqliteKv::create`](crate::sqlite::SqliteKv::create)).
    pub fn new(db: Db) -> Self {
        AsyncSqliteKv { db }
    }

    /// The connection, with its query counters.
    pub fn db(&self) -> &Db {
        &self.db
    }

    /// The values of the keys present: one query per chunk of keys, on the blocking pool.
    pub async fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(no_tokio("the async SQLite source").into());
        }
        let (db, keys) = (self.db.clone(), keys.to_vec());
        match tokio::task::spawn_blocking(move || db.query::<Kv>(&keys)).await {
            Ok(rows) => Ok(rows?),
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(e) => Err(e.into()),
        }
    }
}

impl DataSource for AsyncSqliteKv {
    type Key = String;
    type Value = String;
    type Error = BoxError;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        self.get_multi(keys).await
    }

    fn name(&self) -> &str {
        "sqlite"
    }

    fn max_batch_size(&self) -> Option<usize> {
        Some(self.db.max_params())
    }
}

/// A key-value source over [`AsyncSqliteKv`], with memcached in front when given one.
///
/// Each call asks memcached first (keys under `prefix`, so that several data sets can share
/// servers), then SQLite for the keys memcached did not give (misses, and every key of a
/// failed server), and writes what SQLite answered back to memcached before answering. One
/// call of the source is at most two round trips per store, however many keys it carries.
/// A memcached failure never fails a key: SQLite answers it. An SQLite failure fails the
/// call's keys that memcached did not hold.
///
/// # Examples
///
/// ```
/// use asynq_examples::async_kv::{AsyncSqliteKv, ReadThrough};
/// use asynq_examples::sqlite::Db;
///
/// let store = ReadThrough::new(AsyncSqliteKv::new(Db::open_in_memory()?));
/// assert!(store.cache().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReadThrough {
    store: AsyncSqliteKv,
    cache: Option<(Arc<AsyncMemcached>, String)>,
}

impl ReadThrough {
    /// SQLite alone.
    pub fn new(store: AsyncSqliteKv) -> Self {
        ReadThrough { store, cache: None }
    }

    /// The same source with `cache` in front, its keys stored as `prefix` + key.
    pub fn with_cache(mut self, cache: Arc<AsyncMemcached>, prefix: impl Into<String>) -> Self {
        self.cache = Some((cache, prefix.into()));
        self
    }

    /// The SQLite store.
    pub fn store(&self) -> &AsyncSqliteKv {
        &self.store
    }

    /// The memcached client in front, if any.
    pub fn cache(&self) -> Option<&AsyncMemcached> {
        self.cache.as_ref().map(|(mc, _)| &**mc)
    }

    /// The values of the keys present, from memcached where it holds them, else SQLite.
    pub async fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        let Some((mc, prefix)) = &self.cache else {
            return self.store.get_multi(keys).await;
        };
        let cached: Vec<String> = keys.iter().map(|k| format!("{prefix}{k}")).collect();
        let mut found = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (key, lookup) in keys.iter().zip(mc.get_multi(&cached).await) {
            match lookup {
                Ok(Some(value)) => found.push((key.clone(), value)),
                Ok(None) | Err(_) => missing.push(key.clone()),
            }
        }
        if !missing.is_empty() {
            let rows = self.store.get_multi(&missing).await?;
            let back: Vec<(String, String)> = rows
                .iter()
                .map(|(k, v)| (format!("{prefix}{k}"), v.clone()))
                .collect();
            // Best effort: a server that cannot take them is asked again next time.
            let _ = mc.set_multi(&back).await;
            found.extend(rows);
        }
        Ok(found)
    }
}

impl DataSource for ReadThrough {
    type Key = String;
    type Value = String;
    type Error = BoxError;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        self.get_multi(keys).await
    }

    fn name(&self) -> &str {
        if self.cache.is_some() {
            "memcached+sqlite"
        } else {
            "sqlite"
        }
    }

    fn max_batch_size(&self) -> Option<usize> {
        self.store.max_batch_size()
    }
}
