//! The per-run cache of each source: requests, pending keys, calls, answers.
//!
//! Type erasure happens here, at the source boundary: a runtime holds one [`ErasedSource`] per
//! registered source, and a run one [`ErasedState`] per source it used, each taking and
//! returning its own key and value types behind the trait object.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

use futures::FutureExt as _;
use futures::future::Either;
use hashbrown::HashTable;
use smallvec::smallvec;

use crate::context::{LazyWaiter, Nodes, Waiters};
use crate::error::{Error, SourceError, debug_bounded};
use crate::mock::Mock;
use crate::source::{DataSource, EachOutput, FetchTimeout, panic_message};
use crate::stats::SourceStats;

/// A source registered with a runtime, type-erased.
pub(crate) trait ErasedSource: Send + Sync {
    fn source_type(&self) -> TypeId;
    fn name(&self) -> &Arc<str>;
    fn as_any(&self) -> &dyn Any;
    /// The source's state in a new run; `eager`: the run resumes tasks while calls are in
    /// flight (see [`KeyIndex`]).
    fn new_state(&self, index: usize, eager: bool) -> Box<dyn ErasedState>;
}

/// What answers a registered source's calls: the source itself, or a test double of it.
pub(crate) enum Fetcher<S: DataSource> {
    Real(Arc<S>),
    Mock(Arc<Mock<S>>),
}

impl<S: DataSource> Clone for Fetcher<S> {
    fn clone(&self) -> Self {
        match self {
            Fetcher::Real(source) => Fetcher::Real(Arc::clone(source)),
            Fetcher::Mock(mock) => Fetcher::Mock(Arc::clone(mock)),
        }
    }
}

impl<S: DataSource> Fetcher<S> {
    fn name(&self) -> &str {
        match self {
            Fetcher::Real(source) => source.name(),
            Fetcher::Mock(mock) => mock.name(),
        }
    }

    fn max_batch_size(&self) -> Option<usize> {
        match self {
            Fetcher::Real(source) => source.max_batch_size(),
            Fetcher::Mock(mock) => mock.max_batch_size(),
        }
    }

    fn fetch_timeout(&self) -> Option<Duration> {
        match self {
            Fetcher::Real(source) => source.fetch_timeout(),
            Fetcher::Mock(_) => None,
        }
    }

    fn caches_answers(&self) -> bool {
        match self {
            Fetcher::Real(source) => source.caches_answers(),
            Fetcher::Mock(_) => true,
        }
    }

    async fn fetch(&self, keys: &[S::Key]) -> EachOutput<S> {
        match self {
            Fetcher::Real(source) => source.fetch_each(keys).await,
            Fetcher::Mock(mock) => Ok(mock
                .fetch(keys)?
                .into_iter()
                .map(|(k, v)| (k, Ok(v)))
                .collect()),
        }
    }
}

pub(crate) struct Registered<S: DataSource> {
    fetcher: Fetcher<S>,
    name: Arc<str>,
    /// The emptied containers of a finished run, for the next run to fill.
    spare: Arc<Mutex<Option<Spare<S>>>>,
}

/// A run's key map and slots, emptied but with their capacity, kept between runs.
///
/// Growing the map and the slots from nothing in every run (rehashing every key at each
/// doubling, touching fresh pages) cost more than the lookups themselves in small runs; a
/// runtime serving similar requests reuses them instead. Only containers of at most
/// [`SPARE_MAX_BYTES`] are kept, so that one huge run does not pin its memory for good.
struct Spare<S: DataSource> {
    keys: KeyIndex<S::Key>,
    slots: Vec<Slot<S::Value>>,
    batch: Vec<(S::Key, u32)>,
}

/// The most memory a source keeps between runs: its containers' own buffers (the keys' and
/// values' heap data is freed with them). FEED-1 at Q=1000 (34,000 string keys) needs 4 MiB.
const SPARE_MAX_BYTES: usize = 8 << 20;

impl<S: DataSource> Registered<S> {
    pub(crate) fn new(source: S) -> Self {
        Self::with(Fetcher::Real(Arc::new(source)))
    }

    pub(crate) fn mock(mock: Mock<S>) -> Self {
        Self::with(Fetcher::Mock(Arc::new(mock)))
    }

    fn with(fetcher: Fetcher<S>) -> Self {
        Registered {
            name: Arc::from(fetcher.name()),
            fetcher,
            spare: Arc::default(),
        }
    }
}

impl<S: DataSource> ErasedSource for Registered<S> {
    fn source_type(&self) -> TypeId {
        TypeId::of::<S>()
    }
    fn name(&self) -> &Arc<str> {
        &self.name
    }
    fn as_any(&self) -> &dyn Any {
        match &self.fetcher {
            Fetcher::Real(source) => &**source,
            Fetcher::Mock(mock) => &**mock,
        }
    }
    fn new_state(&self, index: usize, eager: bool) -> Box<dyn ErasedState> {
        // Another run may hold the lock for a moment: then start afresh rather than wait.
        let spare = self.spare.try_lock().ok().and_then(|mut s| s.take());
        let (keys, slots, batch) = match spare {
            Some(Spare { keys, slots, batch }) => (keys, slots, batch),
            None => (KeyIndex::default(), Vec::new(), Vec::new()),
        };
        Box::new(SourceState::<S> {
            fetcher: self.fetcher.clone(),
            name: Arc::clone(&self.name),
            index,
            max_batch: self
                .fetcher
                .max_batch_size()
                .map_or(usize::MAX, |m| m.max(1)),
            caches_answers: self.fetcher.caches_answers(),
            eager,
            primed: HashMap::default(),
            keys,
            slots,
            batch,
            next_call: 1,
            stats: SourceStats::new(Arc::clone(&self.name)),
            spare: Arc::clone(&self.spare),
        })
    }
}

/// A source's state in one run, type-erased for the scheduler.
pub(crate) trait ErasedState: Send {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Whether keys wait to be sent.
    fn has_pending(&self) -> bool;
    /// Turn the pending keys into calls; returns how many.
    fn start_calls(&mut self, calls: &mut Vec<CallFuture>) -> usize;
    /// Apply the answer of one call, waking the waiters of its keys.
    fn complete(&mut self, done: Box<dyn Any + Send>, nodes: &mut Nodes);
    fn stats(&self) -> SourceStats;
    /// Requests, keys sent and calls so far, for per-round figures.
    fn counts(&self) -> (usize, usize, usize);
}

/// One call to a source, in flight.
pub(crate) type CallFuture = Pin<Box<dyn Future<Output = CallDone> + Send>>;

/// What a finished call carries back to its source's state.
pub(crate) struct CallDone {
    pub(crate) source: usize,
    pub(crate) payload: Box<dyn Any + Send>,
}

/// What `fetch` answered or, when it gave no answer (it panicked or timed out), why not.
type FetchResult<S> = Result<EachOutput<S>, SourceError>;

struct Finished<S: DataSource> {
    call: u32,
    keys: Vec<S::Key>,
    slots: Vec<u32>,
    result: FetchResult<S>,
}

enum Slot<V> {
    /// Asked for; `call` is 0 until the key is sent.
    Pending {
        waiters: Waiters,
        call: u32,
    },
    Ready(V),
    Failed(Box<Error>),
}

pub(crate) enum Request<V> {
    Done(Result<V, Error>),
    Wait(u32),
}

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
struct KeyIndex<K> {
    table: HashTable<u32>,
    hasher: foldhash::fast::RandomState,
    /// The keys of slots `0..home.len()`: every slot sent and answered (or failed).
    home: Vec<K>,
    /// Keys of finished calls that wait for an earlier call of their round to come home first:
    /// (first slot, keys).
    returning: Vec<(u32, Vec<K>)>,
    /// With eager resume only: clones of the keys of calls in flight, (first slot, keys).
    in_flight: Vec<(u32, Vec<K>)>,
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
    fn key<'a>(
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
    fn find(&self, hash: u64, key: &K, batch: &[(K, u32)]) -> Option<u32> {
        let (home, away) = (&self.home, [&self.returning[..], &self.in_flight[..]]);
        let found = self
            .table
            .find(hash, |&s| Self::key(home, away, batch, s) == Some(key));
        found.copied()
    }

    /// Index `slot` under `hash`; its key is home or in `batch`.
    fn insert(&mut self, hash: u64, slot: u32, batch: &[(K, u32)]) {
        let (home, hasher) = (&self.home, &self.hasher);
        let away = [&self.returning[..], &self.in_flight[..]];
        self.table.insert_unique(hash, slot, |&s| {
            let key = Self::key(home, away, batch, s)
                .expect("every indexed key is home, in the batch, or kept while away");
            hasher.hash_one(key)
        });
    }

    /// Forget `slot`, whose key is `key`: the next request for the key starts afresh.
    fn remove(&mut self, key: &K, slot: u32) {
        let hash = self.hasher.hash_one(key);
        if let Ok(entry) = self.table.find_entry(hash, |&s| s == slot) {
            entry.remove();
        }
    }

    /// The keys of a finished call, slots `first..`, come home (after the earlier calls).
    fn bring_home(&mut self, first: u32, keys: Vec<K>) {
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

    fn clear(&mut self) {
        self.table.clear();
        self.home.clear();
        self.returning.clear();
        self.in_flight.clear();
    }
}

/// One source's cache and pending keys within one run.
pub(crate) struct SourceState<S: DataSource> {
    fetcher: Fetcher<S>,
    name: Arc<str>,
    index: usize,
    max_batch: usize,
    /// [`DataSource::caches_answers`]: when false, answers serve only their round's waiters.
    caches_answers: bool,
    /// Tasks run while calls are in flight: keep their keys findable (see [`KeyIndex`]).
    eager: bool,
    /// Values primed mid-round for keys not asked for yet (see [`SourceState::prime`]).
    primed: HashMap<S::Key, S::Value, foldhash::fast::RandomState>,
    keys: KeyIndex<S::Key>,
    slots: Vec<Slot<S::Value>>,
    /// Keys to send at the end of this round, with their slots.
    batch: Vec<(S::Key, u32)>,
    next_call: u32,
    stats: SourceStats,
    /// Where the containers go when the run ends: the registered source's spare.
    spare: Arc<Mutex<Option<Spare<S>>>>,
}

impl<S: DataSource> Drop for SourceState<S> {
    fn drop(&mut self) {
        let bytes = self.keys.table.capacity() * (size_of::<u32>() + 1)
            + self.keys.home.capacity() * size_of::<S::Key>()
            + self.slots.capacity() * size_of::<Slot<S::Value>>()
            + self.batch.capacity() * size_of::<(S::Key, u32)>();
        if bytes > SPARE_MAX_BYTES {
            return;
        }
        let Ok(mut spare) = self.spare.try_lock() else {
            return;
        };
        if spare.is_some() {
            return;
        }
        let mut keys = std::mem::take(&mut self.keys);
        let mut slots = std::mem::take(&mut self.slots);
        let mut batch = std::mem::take(&mut self.batch);
        keys.clear();
        slots.clear();
        batch.clear();
        *spare = Some(Spare { keys, slots, batch });
    }
}

impl<S: DataSource> SourceState<S> {
    /// A task asks for `key`: answer from the cache, or join (or start) its pending entry.
    pub(crate) fn request(&mut self, key: S::Key, waiter: LazyWaiter<'_>) -> Request<S::Value> {
        self.stats.requested += 1;
        let hash = self.keys.hasher.hash_one(&key);
        match self.keys.find(hash, &key, &self.batch) {
            Some(slot) => match &mut self.slots[slot as usize] {
                Slot::Ready(v) => {
                    self.stats.cache_hits += 1;
                    #[cfg(feature = "tracing")]
                    tracing::trace!(source = %self.name, "asynq.cache_hit");
                    Request::Done(Ok(v.clone()))
                }
                Slot::Failed(err) => {
                    self.stats.cache_hits += 1;
                    Request::Done(Err((**err).clone()))
                }
                Slot::Pending { waiters, .. } => {
                    self.stats.coalesced += 1;
                    waiters.push(waiter.get());
                    Request::Wait(slot)
                }
            },
            None if !self.primed.is_empty() && self.primed.contains_key(&key) => {
                self.stats.cache_hits += 1;
                Request::Done(Ok(self.primed[&key].clone()))
            }
            None => {
                let slot = u32::try_from(self.slots.len()).expect("more than 2^32 keys in one run");
                self.batch.push((key, slot));
                self.keys.insert(hash, slot, &self.batch);
                // Not `push`: a value made before `push`'s possible call to grow the vector is
                // built on the stack and copied, and that copy's loads stalled on the stores
                // just made (store forwarding): a sixth of a waiting task's time in the profile.
                // `resize_with` grows first and then builds the slot in place.
                let waiter = waiter.get();
                self.slots
                    .resize_with(self.slots.len() + 1, || Slot::Pending {
                        waiters: smallvec![waiter],
                        call: 0,
                    });
                Request::Wait(slot)
            }
        }
    }

    /// What a request waiting on `slot` waits on, for a stall's message: the source and the
    /// key (its `Debug` form, cut to a readable length).
    pub(crate) fn waiting_on(&self, slot: u32) -> String {
        let away = [&self.keys.returning[..], &self.keys.in_flight[..]];
        match KeyIndex::key(&self.keys.home, away, &self.batch, slot) {
            Some(key) => format!("waits on `{}` key {}", self.name, debug_bounded(key)),
            None => format!("waits on a key of `{}`", self.name),
        }
    }

    /// The answer for a slot, once there is one.
    pub(crate) fn poll_slot(&self, slot: u32) -> Poll<Result<S::Value, Error>> {
        match &self.slots[slot as usize] {
            Slot::Ready(v) => Poll::Ready(Ok(v.clone())),
            Slot::Failed(err) => Poll::Ready(Err((**err).clone())),
            Slot::Pending { .. } => Poll::Pending,
        }
    }

    fn fail_pending(
        &mut self,
        call: u32,
        slots: &[u32],
        keys: &[S::Key],
        nodes: &mut Nodes,
        make: impl Fn(String) -> Error,
    ) {
        for (&slot, key) in slots.iter().zip(keys) {
            let entry = &mut self.slots[slot as usize];
            if let Slot::Pending { call: c, waiters } = entry
                && *c == call
            {
                let waiters = std::mem::take(waiters);
                *entry = Slot::Failed(Box::new(make(format!("{key:?}"))));
                self.stats.failed += 1;
                waiters.into_iter().for_each(|w| nodes.wake(w));
                // Failures are not cached: the waiters read the error from the slot, and a
                // later request for the key (a retry) fetches it again.
                self.keys.remove(key, slot);
            }
        }
    }
}

impl<S: DataSource> SourceState<S> {
    /// One call of `fetch` with the keys of `batch`, consecutive slots.
    fn launch(&mut self, batch: Vec<(S::Key, u32)>, calls: &mut Vec<CallFuture>) {
        let call = self.next_call;
        self.next_call += 1;
        let (keys, slots): (Vec<S::Key>, Vec<u32>) = batch.into_iter().unzip();
        for &slot in &slots {
            if let Slot::Pending { call: c, .. } = &mut self.slots[slot as usize] {
                *c = call;
            }
        }
        if self.eager {
            self.keys.in_flight.push((slots[0], keys.clone()));
        }
        self.stats.calls += 1;
        self.stats.keys += keys.len();
        let fetcher = self.fetcher.clone();
        let index = self.index;
        let timeout = fetcher.fetch_timeout();
        #[cfg(feature = "tracing")]
        let span = tracing::debug_span!("asynq.fetch", source = %self.name, keys = keys.len());
        let call = async move {
            // `fetch` is called inside `catch_unwind` too: one that panics before it
            // returns its future fails its keys like one that panics while polled.
            let fetch = AssertUnwindSafe(async { fetcher.fetch(&keys).await })
                .catch_unwind()
                .map(|r| r.map_err(|panic| Arc::new(Panicked(panic_message(&*panic))) as _));
            let result = match timeout {
                None => fetch.await,
                Some(limit) => {
                    let timer = futures_timer::Delay::new(limit);
                    match futures::future::select(std::pin::pin!(fetch), timer).await {
                        Either::Left((result, _)) => result,
                        Either::Right(_) => Err(Arc::new(FetchTimeout::new(limit)) as _),
                    }
                }
            };
            let finished = Finished::<S> {
                call,
                keys,
                slots,
                result,
            };
            CallDone {
                source: index,
                payload: Box::new(finished),
            }
        };
        #[cfg(feature = "tracing")]
        let call = tracing::Instrument::instrument(call, span);
        calls.push(Box::pin(call));
    }

    /// Put `value` in the run's cache for `key`, resolving the tasks waiting on it.
    ///
    /// A key waiting to be sent in this round is still sent with the others (the round keeps
    /// its one call; the answer loses to the primed value, as a second answer does), and so
    /// is its answer when it is in flight.
    pub(crate) fn prime(&mut self, key: S::Key, value: S::Value, nodes: &mut Nodes) {
        let hash = self.keys.hasher.hash_one(&key);
        match self.keys.find(hash, &key, &self.batch) {
            Some(slot) => {
                let entry = &mut self.slots[slot as usize];
                if let Slot::Pending { waiters, .. } = entry {
                    std::mem::take(waiters)
                        .into_iter()
                        .for_each(|w| nodes.wake(w));
                }
                *entry = Slot::Ready(value);
            }
            // Before the round's first request: a slot of its own, home at once.
            None if self.batch.is_empty()
                && self.keys.returning.is_empty()
                && self.keys.in_flight.is_empty() =>
            {
                let slot = u32::try_from(self.slots.len()).expect("more than 2^32 keys in one run");
                self.slots.push(Slot::Ready(value));
                self.keys.home.push(key);
                self.keys.insert(hash, slot, &self.batch);
            }
            // Mid-round, slots must stay in request order: keep it aside.
            None => {
                self.primed.insert(key, value);
            }
        }
    }

    /// Forget the cached answer (or failure) for `key`; the next request fetches it again. A
    /// key being fetched is not affected.
    pub(crate) fn clear(&mut self, key: &S::Key) {
        self.primed.remove(key);
        let hash = self.keys.hasher.hash_one(key);
        if let Some(slot) = self.keys.find(hash, key, &self.batch)
            && !matches!(self.slots[slot as usize], Slot::Pending { .. })
        {
            self.keys.remove(key, slot);
        }
    }

    /// Forget every cached answer of this source in the run.
    pub(crate) fn clear_all(&mut self) {
        self.primed.clear();
        let slots = &self.slots;
        self.keys
            .table
            .retain(|&mut slot| matches!(slots[slot as usize], Slot::Pending { .. }));
    }

    /// The whole call failed: every key of it still waiting gets the source's error.
    fn fail_call(
        &mut self,
        call: u32,
        slots: &[u32],
        keys: &[S::Key],
        nodes: &mut Nodes,
        error: SourceError,
    ) {
        let name = Arc::clone(&self.name);
        let batch = keys.len();
        self.fail_pending(call, slots, keys, nodes, |key| Error::Source {
            source: Arc::clone(&name),
            key,
            batch,
            error: Arc::clone(&error),
        });
    }
}

impl<S: DataSource> ErasedState for SourceState<S> {
    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn has_pending(&self) -> bool {
        !self.batch.is_empty()
    }

    fn start_calls(&mut self, calls: &mut Vec<CallFuture>) -> usize {
        let mut started = 0;
        let mut batch = std::mem::take(&mut self.batch);
        while !batch.is_empty() {
            let rest = if batch.len() > self.max_batch {
                batch.split_off(self.max_batch)
            } else {
                Vec::new()
            };
            self.launch(batch, calls);
            started += 1;
            batch = rest;
        }
        started
    }

    fn complete(&mut self, done: Box<dyn Any + Send>, nodes: &mut Nodes) {
        let Finished {
            call,
            keys,
            slots,
            result,
        } = *done
            .downcast::<Finished<S>>()
            .expect("a call's answer delivered to another source");
        match result {
            Ok(Ok(answers)) => {
                for (i, (key, value)) in answers.into_iter().enumerate() {
                    // Sources usually answer in the order asked: skip the hash lookup then.
                    let slot = match (slots.get(i), keys.get(i)) {
                        (Some(&slot), Some(k)) if *k == key => slot,
                        // Out of order: look it up among this call's keys (the call's slots
                        // are consecutive); keys of other calls lose like second answers.
                        _ => {
                            let hash = self.keys.hasher.hash_one(&key);
                            let first = slots[0];
                            let found = self.keys.table.find(hash, |&s| {
                                keys.get(s.wrapping_sub(first) as usize) == Some(&key)
                            });
                            match found {
                                Some(&slot) => slot,
                                None => continue, // not asked for: ignored
                            }
                        }
                    };
                    let entry = &mut self.slots[slot as usize];
                    // Only keys of this call still waiting: a second answer for a key loses.
                    if let Slot::Pending { call: c, waiters } = entry
                        && *c == call
                    {
                        let waiters = std::mem::take(waiters);
                        match value {
                            Ok(value) => *entry = Slot::Ready(value),
                            Err(error) => {
                                // This key alone failed: not cached, as any failure.
                                *entry = Slot::Failed(Box::new(Error::Source {
                                    source: Arc::clone(&self.name),
                                    key: format!("{key:?}"),
                                    batch: keys.len(),
                                    error: Arc::from(error.into()),
                                }));
                                self.stats.failed += 1;
                                self.keys.remove(&key, slot);
                            }
                        }
                        waiters.into_iter().for_each(|w| nodes.wake(w));
                    }
                }
                let name = Arc::clone(&self.name);
                self.fail_pending(call, &slots, &keys, nodes, |key| Error::MissingKey {
                    source: Arc::clone(&name),
                    key,
                });
            }
            Ok(Err(error)) => self.fail_call(call, &slots, &keys, nodes, Arc::from(error.into())),
            Err(error) => self.fail_call(call, &slots, &keys, nodes, error),
        }
        if !self.caches_answers {
            // The waiters read their values from the slots; later requests fetch again.
            for (key, &slot) in keys.iter().zip(&slots) {
                self.keys.remove(key, slot);
            }
        }
        if self.eager {
            let first = slots[0];
            self.keys.in_flight.retain(|&(f, _)| f != first);
        }
        self.keys.bring_home(slots[0], keys);
    }

    fn stats(&self) -> SourceStats {
        self.stats.clone()
    }

    fn counts(&self) -> (usize, usize, usize) {
        (self.stats.requested, self.stats.keys, self.stats.calls)
    }
}

/// A source's `fetch` panicked; the panic's message.
#[derive(Debug)]
struct Panicked(String);

impl std::fmt::Display for Panicked {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "fetch panicked: {}", self.0)
    }
}

impl std::error::Error for Panicked {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yieldable::Yieldable;

    struct Doubles;
    impl DataSource for Doubles {
        type Key = u64;
        type Value = u64;
        type Error = std::convert::Infallible;
        async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
            Ok(keys.iter().map(|&k| (k, 2 * k)).collect())
        }
    }

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

    /// Answers in reverse order, in chunks of 3, with an extra key and a duplicate.
    struct Shuffled;
    impl DataSource for Shuffled {
        type Key = String;
        type Value = usize;
        type Error = std::convert::Infallible;
        async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, usize)>, Self::Error> {
            let mut answer: Vec<_> = keys.iter().map(|k| (k.clone(), k.len())).collect();
            answer.reverse();
            answer.push(("not asked".to_owned(), 0));
            answer.push((keys[0].clone(), 0)); // a second answer: the first wins
            Ok(answer)
        }
        fn max_batch_size(&self) -> Option<usize> {
            Some(3)
        }
    }

    #[test]
    fn keys_answered_out_of_order_in_chunks_are_found_in_later_rounds() {
        fn keys(n: usize) -> Vec<String> {
            (1..=n).map(|i| "x".repeat(i)).collect()
        }
        fn values(v: Vec<Result<usize, Error>>) -> Vec<usize> {
            v.into_iter().map(Result::unwrap).collect()
        }
        // Round 1 asks for 7 keys (3 calls); round 2 for 9, of which 7 are cached.
        let task = || {
            crate::Task::__new(&"twice", async {
                let first = Shuffled::load_many(keys(7)).into_future().await;
                let second = Shuffled::load_many(keys(9)).into_future().await;
                (values(first), values(second))
            })
        };
        let rt = crate::Runtime::new().with_source(Shuffled);
        for _ in 0..2 {
            let (first, second) = rt.run(task()).unwrap();
            assert_eq!(first, (1..=7).collect::<Vec<_>>());
            assert_eq!(second, (1..=9).collect::<Vec<_>>());
            let stats = rt.last_stats();
            assert_eq!((stats.calls(), stats.keys(), stats.cache_hits()), (4, 9, 7));
        }
    }

    #[test]
    fn cache_hits_in_a_join_make_no_nodes() {
        use crate::context::with_ctx;
        let live = || with_ctx(|run| run.nodes.live()).expect("inside the run");
        let page = crate::Task::__new(&"page", async move {
            let fetched = Doubles::load_many(0..100).into_future().await;
            assert!(fetched.iter().all(Result::is_ok));
            let before = live();
            // Each child hits the cache and finishes in its first poll: no node for any.
            let hits: Vec<_> = (0..100)
                .map(|k| {
                    crate::Task::__new(&"hit", async move {
                        let value = Doubles::load(k).await.expect("cached");
                        (value, live())
                    })
                })
                .collect();
            let hits = hits.into_future().await;
            (before, hits)
        });
        let rt = crate::Runtime::new().with_source(Doubles);
        let (before, hits) = rt.run(page).unwrap();
        for (k, (value, live)) in hits.into_iter().enumerate() {
            assert_eq!(value, 2 * k as u64);
            assert_eq!(live, before, "child {k} made a node for a cache hit");
        }
        assert_eq!(rt.last_stats().cache_hits(), 100);
    }

    #[test]
    fn a_run_reuses_the_containers_of_the_last_but_none_of_its_answers() {
        let rt = crate::Runtime::new().with_source(Doubles);
        for n in [100, 10, 100] {
            let got = rt.run(Doubles::load_many(0..n)).unwrap();
            let got: Vec<u64> = got.into_iter().map(Result::unwrap).collect();
            assert_eq!(got, (0..n).map(|k| 2 * k).collect::<Vec<_>>());
            let stats = rt.last_stats();
            let figures = (stats.calls(), stats.keys(), stats.cache_hits());
            assert_eq!(figures, (1, n as usize, 0));
        }
    }
}
