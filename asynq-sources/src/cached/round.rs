//! One round of a [`Cached`] source: one multi-get to the cache, one call to the origin for
//! what it did not answer, and the write-back of the origin's answers in the background.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use asynq_core::DataSource;

use super::stats::add;
use super::write_back::WriteBacks;
use super::{ABSENT, Cached, CachedError};
use crate::cache::{Cache, CacheKey, Codec, Entry, StoreMode};

/// Where one key of a round stands.
enum Slot<V> {
    /// Not answered yet: asked of the origin.
    Pending,
    /// Its value.
    Value(V),
    /// An absent row, for a source that leaves absent keys out of its answer.
    LeftOut,
    /// It failed.
    Failed(CachedError),
}

/// How a key asked of the origin is written back.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fill {
    /// Not at all: its cache key is too long, or its cache server failed.
    No,
    /// Only where the cache has no entry (a plain miss).
    Add,
    /// Over the entry there (one the codec could not read, or a stale negative entry).
    Overwrite,
}

/// The entries of a round's write-back, by how they are stored.
#[derive(Default)]
struct WriteBack {
    add: Vec<Entry>,
    overwrite: Vec<Entry>,
}

impl<C, O, K> Cached<C, O, K>
where
    C: Cache,
    O: DataSource,
    O::Key: CacheKey,
    K: Codec<Value = O::Value>,
{
    /// Every key's outcome (absent rows of a source that leaves them out, left out).
    pub(super) async fn round(
        &self,
        keys: &[O::Key],
    ) -> Vec<(O::Key, Result<O::Value, CachedError>)> {
        let mut slots: Vec<Slot<O::Value>> = keys.iter().map(|_| Slot::Pending).collect();
        let mut fills = vec![Fill::No; keys.len()];
        let cache_keys: Vec<Option<String>> = keys.iter().map(|k| self.cache_key(k)).collect();
        self.read_cache(&cache_keys, &mut slots, &mut fills).await;
        self.read_origin(keys, &cache_keys, &mut slots, &fills)
            .await;
        keys.iter()
            .zip(slots)
            .filter_map(|(key, slot)| match slot {
                Slot::Value(v) => Some((key.clone(), Ok(v))),
                Slot::Failed(e) => Some((key.clone(), Err(e))),
                Slot::LeftOut => None,
                Slot::Pending => unreachable!("every key of a round is answered or failed"),
            })
            .collect()
    }

    /// The cache's answers, into `slots`; for each miss, how to fill it.
    async fn read_cache(
        &self,
        cache_keys: &[Option<String>],
        slots: &mut [Slot<O::Value>],
        fills: &mut [Fill],
    ) {
        let c = &*self.counters;
        let asked: Vec<usize> = (0..cache_keys.len())
            .filter(|&i| cache_keys[i].is_some())
            .collect();
        add(&c.uncacheable, cache_keys.len() - asked.len());
        if asked.is_empty() {
            return;
        }
        let names = asked
            .iter()
            .filter_map(|&i| cache_keys[i].clone())
            .collect();
        add(&c.cache_calls, 1);
        let lookups = self.cache.get_many(names).await;
        let mut failure = None;
        for (&i, lookup) in asked.iter().zip(lookups) {
            let (slot, fill) = match lookup {
                Ok(Some(bytes)) if bytes == ABSENT => match self.settings.negative_ttl {
                    Some(_) => {
                        add(&c.negative_hits, 1);
                        let slot = self.codec.absent().map_or(Slot::LeftOut, Slot::Value);
                        (slot, Fill::No)
                    }
                    // Negative caching was turned off since it was stored: read again.
                    None => (Slot::Pending, Fill::Overwrite),
                },
                Ok(Some(bytes)) => match self.codec.decode(bytes) {
                    Ok(value) => (Slot::Value(value), Fill::No),
                    Err(_) => {
                        add(&c.decode_errors, 1);
                        (Slot::Pending, Fill::Overwrite)
                    }
                },
                Ok(None) => (Slot::Pending, Fill::Add),
                Err(e) => {
                    add(&c.cache_errors, 1);
                    failure.get_or_insert(e);
                    (Slot::Pending, Fill::No)
                }
            };
            match slot {
                Slot::Pending => add(&c.cache_misses, 1),
                _ => add(&c.cache_hits, 1),
            }
            slots[i] = slot;
            fills[i] = fill;
        }
        self.note_health(failure);
    }

    /// Log the cache's outage once when it starts and once when it ends.
    fn note_health(&self, failure: Option<C::Error>) {
        match failure {
            Some(e) => {
                if !self.down.swap(true, Ordering::Relaxed) {
                    add(&self.counters.outages, 1);
                    log::warn!(
                        "{}: the cache failed ({e}); its keys are read from the origin until it \
                         answers again",
                        self.name
                    );
                }
            }
            None => {
                if self.down.swap(false, Ordering::Relaxed) {
                    log::warn!("{}: the cache answers again", self.name);
                }
            }
        }
    }

    /// The origin's answers to the keys still pending, in one call (more only past its batch
    /// limit, all at once), and their write-back.
    async fn read_origin(
        &self,
        keys: &[O::Key],
        cache_keys: &[Option<String>],
        slots: &mut [Slot<O::Value>],
        fills: &[Fill],
    ) {
        let pending: Vec<usize> = (0..keys.len())
            .filter(|&i| matches!(slots[i], Slot::Pending))
            .collect();
        if pending.is_empty() {
            return;
        }
        let epoch = self.write_backs.epoch();
        let asked: Vec<O::Key> = pending.iter().map(|&i| keys[i].clone()).collect();
        let chunk = self
            .origin
            .max_batch_size()
            .map_or(asked.len(), |n| n.max(1));
        let calls = asked.chunks(chunk).map(|keys| self.origin.fetch_each(keys));
        let results = futures::future::join_all(calls).await;
        add(&self.counters.origin_calls, results.len());
        add(&self.counters.origin_keys, asked.len());
        let origin = self.origin.name();
        let failed = |e: O::Error| CachedError::Origin {
            origin: origin.to_string(),
            error: Arc::from(e.into()),
        };
        let mut answers: HashMap<O::Key, Result<O::Value, CachedError>> = HashMap::new();
        for (keys, result) in asked.chunks(chunk).zip(results) {
            match result {
                Ok(answered) => answers.extend(
                    answered
                        .into_iter()
                        .map(|(key, value)| (key, value.map_err(failed))),
                ),
                Err(e) => {
                    let e = failed(e);
                    answers.extend(keys.iter().map(|k| (k.clone(), Err(e.clone()))));
                }
            }
        }
        let mut write_back = WriteBack::default();
        for i in pending {
            let (slot, stored) = match answers.remove(&keys[i]) {
                Some(Ok(value)) => {
                    let stored = self.stored_form(&value);
                    (Slot::Value(value), stored)
                }
                Some(Err(e)) => (Slot::Failed(e), None),
                None => (Slot::LeftOut, self.absent_form()),
            };
            slots[i] = slot;
            if let (Some((value, ttl)), Some(key)) = (stored, &cache_keys[i]) {
                let entry = Entry {
                    key: key.clone(),
                    value,
                    ttl,
                };
                match fills[i] {
                    Fill::No => {}
                    Fill::Add => write_back.add.push(entry),
                    Fill::Overwrite => write_back.overwrite.push(entry),
                }
            }
        }
        self.write_back(epoch, write_back);
    }

    /// How `value` is stored (its bytes and time to live), or `None` when it is not: an
    /// absent row without negative caching, a value the codec cannot write, one too large
    /// for the cache, or one whose bytes are those of an absent row.
    fn stored_form(&self, value: &O::Value) -> Option<(Vec<u8>, Option<std::time::Duration>)> {
        if self.codec.is_absent(value) {
            return self.absent_form();
        }
        let fits = |bytes: &Vec<u8>| bytes.len() <= self.cache.max_value_len() && bytes != ABSENT;
        let stored = self.codec.encode(value).ok().filter(fits);
        if stored.is_none() {
            add(&self.counters.not_written_back, 1);
        }
        stored.map(|bytes| (bytes, self.settings.ttl))
    }

    /// How an absent row is stored, when negative caching is on.
    fn absent_form(&self) -> Option<(Vec<u8>, Option<std::time::Duration>)> {
        self.settings
            .negative_ttl
            .map(|ttl| (ABSENT.to_vec(), Some(ttl)))
    }

    /// Store `entries` in the background, unless an invalidation happens since `epoch`.
    fn write_back(&self, epoch: u64, entries: WriteBack) {
        let n = entries.add.len() + entries.overwrite.len();
        if n == 0 {
            return;
        }
        let counters = Arc::clone(&self.counters);
        if !self.write_backs.admit() {
            add(&counters.not_written_back, n);
            return;
        }
        let guard = Pending(Arc::clone(&self.write_backs));
        let cache = Arc::clone(&self.cache);
        self.cache.spawn(Box::pin(async move {
            let write_backs = &guard.0;
            let _turn = write_backs.gate.lock().await;
            if write_backs.moved_since(epoch) {
                add(&counters.not_written_back, n);
                return;
            }
            let mut ok = true;
            for (entries, mode) in [
                (entries.add, StoreMode::Add),
                (entries.overwrite, StoreMode::Set),
            ] {
                if !entries.is_empty() {
                    ok &= cache.store_many(entries, mode).await.is_ok();
                }
            }
            if ok {
                add(&counters.written_back, n);
            } else {
                add(&counters.write_back_failures, 1);
            }
        }));
    }
}

/// One admitted write-back: done when dropped, whether it ran to its end or its task was
/// dropped with the cache's runtime.
struct Pending(Arc<WriteBacks>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.finish();
    }
}
