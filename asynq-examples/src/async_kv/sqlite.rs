//! [`ReadThrough`]: memcached in front of a SQL store ([`SqlKv`]).

use asynq_core::DataSource;
use asynq_sources::memcached::MemcachedClient;

use crate::sql_kv::SqlKv;

/// The error of a read through memcached and the SQL store.
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A key-value source over a [`SqlKv`], with memcached in front when given one.
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
/// use asynq_examples::async_kv::ReadThrough;
/// use asynq_examples::sql_kv::SqlKv;
/// use asynq_examples::sqlite::{Db, fill_kv};
///
/// let db = Db::open_in_memory()?;
/// db.with_conn(|c| fill_kv(c, [("k", "v")]))?;
/// let store = ReadThrough::new(SqlKv::sqlite(db)?);
/// assert!(store.cache().is_none());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ReadThrough {
    store: SqlKv,
    cache: Option<(MemcachedClient, String)>,
}

impl ReadThrough {
    /// The SQL store alone.
    pub fn new(store: SqlKv) -> Self {
        ReadThrough { store, cache: None }
    }

    /// The same source with `cache` in front, its keys stored as `prefix` + key.
    pub fn with_cache(mut self, cache: MemcachedClient, prefix: impl Into<String>) -> Self {
        self.cache = Some((cache, prefix.into()));
        self
    }

    /// The SQL store.
    pub fn store(&self) -> &SqlKv {
        &self.store
    }

    /// The memcached client in front, if any.
    pub fn cache(&self) -> Option<&MemcachedClient> {
        self.cache.as_ref().map(|(mc, _)| mc)
    }

    /// The values of the keys present, from memcached where it holds them, else SQLite.
    pub async fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, BoxError> {
        let Some((mc, prefix)) = &self.cache else {
            return Ok(self.store.fetch(keys).await?);
        };
        let cached: Vec<String> = keys.iter().map(|k| format!("{prefix}{k}")).collect();
        let mut found = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (key, lookup) in keys.iter().zip(mc.get_multi(&cached).await) {
            match lookup.map(|v| v.map(String::from_utf8)) {
                Ok(Some(Ok(value))) => found.push((key.clone(), value)),
                // A miss, a failed server, or a value that is not text: SQLite answers it.
                Ok(None | Some(Err(_))) | Err(_) => missing.push(key.clone()),
            }
        }
        if !missing.is_empty() {
            let rows = self.store.fetch(&missing).await?;
            let back: Vec<(String, Vec<u8>)> = rows
                .iter()
                .map(|(k, v)| (format!("{prefix}{k}"), v.clone().into_bytes()))
                .collect();
            // Best effort: a server that cannot take them is asked again next time.
            let _ = mc.set_multi(back, None).await;
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
