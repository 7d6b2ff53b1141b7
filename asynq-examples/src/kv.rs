//! The shape of FEED-1's store: string keys, string values, `get_multi`, counted round trips.
//!
//! Every backend of the `feed` program implements [`KvStore`]: the in-memory
//! [`MemoryStore`](crate::memory::MemoryStore), the SQL [`SqlKv`](crate::sql_kv::SqlKv) (SQLite, PostgreSQL, MySQL)
//! and the memcached [`MemcachedKv`](crate::memcached::MemcachedKv). Each is also a
//! [`DataSource`](asynq_core::DataSource) with `Key = String` and `Value = String`, so the asynq
//! page renders over any of them; [`KvStore`] is what code without asynq (the naive page, the
//! hand-primed baseline, loaders) calls directly.

/// A key-value store answering many string keys in one round trip, like memcached's
/// `get_multi`, and counting its round trips.
///
/// Use it from code that is not asynq (one call per key in the naive page, say). Absent keys
/// are left out of the answer.
///
/// # Examples
///
/// ```
/// use asynq_examples::kv::KvStore;
/// use asynq_examples::memory::MemoryStore;
///
/// fn first_value(store: &impl KvStore, key: &str) -> Option<String> {
///     let got = store.get_multi(&[key.to_string()]).ok()?;
///     got.into_iter().next().map(|(_, v)| v)
/// }
///
/// let store = MemoryStore::from_pairs([("a", "1")]);
/// assert_eq!(first_value(&store, "a").as_deref(), Some("1"));
/// assert_eq!(first_value(&store, "b"), None);
/// assert_eq!(KvStore::round_trips(&store), 2);
/// ```
pub trait KvStore {
    /// Why a round trip failed.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The values of the keys present, in any order: one call, however many round trips the
    /// store needs for it (one per SQL chunk, one per memcached server).
    fn get_multi(&self, keys: &[String]) -> Result<Vec<(String, String)>, Self::Error>;

    /// Round trips made so far: queries, per-server multi-gets, in-memory calls.
    fn round_trips(&self) -> usize;

    /// Keys sent to the store so far, over all round trips.
    fn keys_sent(&self) -> usize;
}
