//! The run's index of a source's keys ([`KeyIndex`]).

use std::hash::{BuildHasher, Hash};

use hashbrown::{HashTable, hash_table};

/// The run's index of a source's keys: key to slot, each key stored once.
///
/// A hash table of slot numbers, whose keys live in slot order: the keys of the current round
/// in the source state's `batch`, sent keys in the call that carries them, and answered keys
/// back `home` here. A key is therefore moved, never cloned, from the task that asked for it to
/// the source's `fetch` and back; cloning every key into the batch was one allocation per key,
/// the only one that hand-primed code does not make. While tasks run, no call is in flight
/// (the scheduler polls tasks only between rounds), so every key is home or in the batch;
/// except with [eager resume](crate::Runtime::eager_resume), where tasks run while calls are
/// in flight: the keys of those calls are then also kept here, cloned, in `in_flight`, so
/// that requests for them still join their pending slots.
///
/// Hashed with foldhash rather than std's SipHash-1-3: hashing the keys of every fetch request
/// was the largest single cost of a request in the profile of FEED-1 (string keys), and foldhash
/// hashes them several times faster. The trade-off is DoS resistance: foldhash is seeded
/// randomly per process and per table, so an attacker cannot precompute colliding keys, but it
/// is not a keyed cryptographic hash like SipHash. A table holds only the keys of one run,
/// those its own code asked for; its emptied buffers and its seed may serve the next run of
/// the same source (see [`Spare`]). Where keys come straight from untrusted input and a run
/// can be made to ask for very many of them, bound that number in the application.
pub(crate) struct KeyIndex<K> {
    pub(crate) table: HashTable<u32>,
    pub(crate) hasher: foldhash::fast::RandomState,
    /// The keys of slots `0..home.len()`: every slot sent and answered (or failed).
    pub(crate) home: Vec<K>,
    /// Keys of finished calls that wait for an earlier call of their round to come home first:
    /// (first slot, keys).
    pub(crate) returning: Vec<(u32, Vec<K>)>,
    /// With eager resume only: clones of the keys of calls in flight, (first slot, keys).
    pub(crate) in_flight: Vec<(u32, Vec<K>)>,
}

impl<K> Default for KeyIndex<K> {
    fn default() -> Self {
        KeyIndex {
            table: HashTable::new(),
            hasher: Default::default(),
            home: Vec::new(),
            returning: Vec::new(),
            in_flight: Vec::new(),
        }
    }
}

impl<K: Hash + Eq> KeyIndex<K> {
    /// The key of `slot`: home, in `batch` (the newest, unsent slots), or away in a call.
    pub(crate) fn key<'a>(
        home: &'a [K],
        away: [&'a [(u32, Vec<K>)]; 2],
        batch: &'a [(K, u32)],
        slot: u32,
    ) -> Option<&'a K> {
        if let Some(key) = home.get(slot as usize) {
            return Some(key);
        }
        if let Some(&(_, first)) = batch.first()
            && slot >= first
        {
            return batch.get((slot - first) as usize).map(|(key, _)| key);
        }
        away.into_iter()
            .flatten()
            .find_map(|(first, keys)| keys.get(slot.checked_sub(*first)? as usize))
    }

    /// The slot of `key` (hashed to `hash`), among the keys home, away and in `batch`.
    pub(crate) fn find(&self, hash: u64, key: &K, batch: &[(K, u32)]) -> Option<u32> {
        let (home, away) = (&self.home, [&self.returning[..], &self.in_flight[..]]);
        let found = self
            .table
            .find(hash, |&s| Self::key(home, away, batch, s) == Some(key));
        found.copied()
    }

    /// The entry of `key` (hashed to `hash`): its slot if it is indexed, or the place to index
    /// a new slot for it, found in the same probe of the table. Indexing a key looked up first
    /// and inserted next took two probes per new key: a tenth of a waiting task's instructions.
    pub(crate) fn entry<'a>(
        &'a mut self,
        hash: u64,
        key: &K,
        batch: &[(K, u32)],
    ) -> hash_table::Entry<'a, u32> {
        let (home, hasher) = (&self.home, &self.hasher);
        let away = [&self.returning[..], &self.in_flight[..]];
        self.table.entry(
            hash,
            |&s| Self::key(home, away, batch, s) == Some(key),
            |&s| {
                let key = Self::key(home, away, batch, s)
                    .expect("every indexed key is home, in the batch, or kept while away");
                hasher.hash_one(key)
            },
        )
    }

    /// Index `slot` under `hash`; its key is home or in `batch`.
    pub(crate) fn insert(&mut self, hash: u64, slot: u32, batch: &[(K, u32)]) {
        let (home, hasher) = (&self.home, &self.hasher);
        let away = [&self.returning[..], &self.in_flight[..]];
        self.table.insert_unique(hash, slot, |&s| {
            let key = Self::key(home, away, batch, s)
                .expect("every indexed key is home, in the batch, or kept while away");
            hasher.hash_one(key)
        });
    }

    /// Forget `slot`, whose key is `key`: the next request for the key starts afresh.
    pub(crate) fn remove(&mut self, key: &K, slot: u32) {
        let hash = self.hasher.hash_one(key);
        if let Ok(entry) = self.table.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
    }

    /// The keys of a finished call, slots `first..`, come home (after the earlier calls).
    pub(crate) fn bring_home(&mut self, first: u32, keys: Vec<K>) {
        self.returning.push((first, keys));
        while let Some(i) = self
            .returning
            .iter()
            .position(|&(first, _)| first as usize == self.home.len())
        {
            let (_, keys) = self.returning.swap_remove(i);
            if self.home.is_empty() {
                self.home = keys;
            } else {
                self.home.extend(keys);
            }
        }
    }

    pub(crate) fn clear(&mut self) {
        self.table.clear();
        self.home.clear();
        self.returning.clear();
        self.in_flight.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_calls_finished_out_of_order_come_home_in_slot_order() {
        let mut index = KeyIndex::<String>::default();
        let batch: Vec<(String, u32)> = (0..6).map(|i| (format!("k{i}"), i)).collect();
        for (key, slot) in &batch {
            let hash = index.hasher.hash_one(key);
            index.insert(hash, *slot, &batch[..=*slot as usize]);
        }
        let keys = |r: std::ops::Range<usize>| batch[r].iter().map(|(k, _)| k.clone()).collect();
        index.bring_home(4, keys(4..6));
        index.bring_home(2, keys(2..4));
        assert!(index.home.is_empty(), "slots 0..2 are still away");
        index.bring_home(0, keys(0..2));
        assert!(index.returning.is_empty());
        for (key, slot) in &batch {
            let hash = index.hasher.hash_one(key);
            assert_eq!(index.find(hash, key, &[]), Some(*slot));
        }
        index.remove(&batch[3].0, 3);
        let hash = index.hasher.hash_one(&batch[3].0);
        assert_eq!(index.find(hash, &batch[3].0, &[]), None);
    }
}
