//! The per-run cache of each source: requests, pending keys, calls, answers.
//!
//! Type erasure happens here, at the source boundary: a runtime holds one [`ErasedSource`] per
//! registered source, and a run one [`ErasedState`] per source it used, each taking and
//! returning its own key and value types behind the trait object.

use std::any::Any;
use std::collections::HashMap;
use std::future::Future;
use std::hash::BuildHasher;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::Poll;

use futures::FutureExt as _;
use futures::future::Either;
use hashbrown::hash_table;

use crate::nodes::{LazyWaiter, NONE, Nodes, Waiter};

mod keys;
mod registered;
mod waiting;

use crate::error::{Error, SourceError, debug_bounded};
use crate::source::{DataSource, EachOutput, FetchTimeout, panic_message};
use crate::stats::SourceStats;
use keys::KeyIndex;
pub(crate) use registered::{ErasedSource, Registered};
use registered::{Fetcher, SPARE_MAX_BYTES, Spare};
use waiting::MoreWaiters;

/// A source's state in one run, type-erased for the scheduler.
pub(crate) trait ErasedState: Send {
    fn as_any_mut(&mut self) -> &mut dyn Any;
    /// Whether keys wait to be sent.
    fn has_pending(&self) -> bool;
    /// Turn the pending keys into calls; returns how many. With `eager` (the run resumes tasks
    /// while calls are in flight) the keys of the calls stay findable (see [`KeyIndex`]).
    fn start_calls(&mut self, calls: &mut Vec<CallFuture>, eager: bool) -> usize;
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
    keys: Vec<S::Key>,
    slots: Vec<u32>,
    result: FetchResult<S>,
}

pub(crate) enum Slot<V> {
    /// Asked for, not answered yet: the first request's waiter, and the head of the list of
    /// the others in the state's [`MoreWaiters`] (`NONE`: no other).
    Pending {
        first: Waiter,
        more: u32,
    },
    Ready(V),
    Failed(Box<Error>),
}

pub(crate) enum Request<V> {
    Done(Result<V, Error>),
    Wait(u32),
}

/// One source's cache and pending keys within one run.
pub(crate) struct SourceState<S: DataSource> {
    fetcher: Fetcher<S>,
    name: Arc<str>,
    index: usize,
    max_batch: usize,
    /// [`DataSource::caches_answers`]: when false, answers serve only their round's waiters.
    caches_answers: bool,
    /// Values primed mid-round for keys not asked for yet (see [`SourceState::prime`]).
    primed: HashMap<S::Key, S::Value, foldhash::fast::RandomState>,
    keys: KeyIndex<S::Key>,
    slots: Vec<Slot<S::Value>>,
    /// Keys to send at the end of this round, with their slots.
    batch: Vec<(S::Key, u32)>,
    /// The waiters of pending keys beyond each key's first.
    more_waiters: MoreWaiters,
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
    /// The state of a source in a new run, in the containers `spare` (empty, or kept from the
    /// last run) that go back to `home` when the run ends.
    fn new(
        fetcher: Fetcher<S>,
        name: Arc<str>,
        index: usize,
        spare: Spare<S>,
        home: Arc<Mutex<Option<Spare<S>>>>,
    ) -> Self {
        let Spare { keys, slots, batch } = spare;
        SourceState {
            max_batch: fetcher.max_batch_size().map_or(usize::MAX, |m| m.max(1)),
            caches_answers: fetcher.caches_answers(),
            fetcher,
            stats: SourceStats::new(Arc::clone(&name)),
            name,
            index,
            primed: HashMap::default(),
            keys,
            slots,
            batch,
            more_waiters: MoreWaiters::default(),
            spare: home,
        }
    }

    /// A task asks for `key`: answer from the cache, or join (or start) its pending entry.
    pub(crate) fn request(&mut self, key: S::Key, waiter: LazyWaiter<'_>) -> Request<S::Value> {
        self.stats.requested += 1;
        let hash = self.keys.hasher.hash_one(&key);
        let new = self.slots.len();
        let vacant = match self.keys.entry(hash, &key, &self.batch) {
            hash_table::Entry::Occupied(entry) => {
                let slot = *entry.get();
                return match &mut self.slots[slot as usize] {
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
                    Slot::Pending { more, .. } => {
                        self.stats.coalesced += 1;
                        *more = self.more_waiters.push(*more, waiter.get());
                        Request::Wait(slot)
                    }
                };
            }
            hash_table::Entry::Vacant(vacant) => vacant,
        };
        if !self.primed.is_empty()
            && let Some(value) = self.primed.get(&key)
        {
            self.stats.cache_hits += 1;
            return Request::Done(Ok(value.clone()));
        }
        let slot = u32::try_from(new).expect("more than 2^32 keys in one run");
        vacant.insert(slot);
        self.batch.push((key, slot));
        let first = waiter.get();
        // Grown before the slot is made: a slot made before `push`'s possible call to grow the
        // vector was built on the stack and copied, and that copy's loads stalled on the
        // stores just made (store forwarding; a sixth of a waiting task's time when a slot
        // was five words). `resize_with`, which avoided that, was not inlined: 36
        // instructions a key.
        self.slots.reserve(1);
        self.slots.push(Slot::Pending { first, more: NONE });
        Request::Wait(slot)
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

    /// Fail every key of a call (its `slots`, its `keys`) still pending, with `make(key)`.
    fn fail_pending(
        &mut self,
        slots: &[u32],
        keys: &[S::Key],
        nodes: &mut Nodes,
        make: impl Fn(String) -> Error,
    ) {
        for (&slot, key) in slots.iter().zip(keys) {
            let entry = &mut self.slots[slot as usize];
            if let Slot::Pending { first, more } = *entry {
                *entry = Slot::Failed(Box::new(make(format!("{key:?}"))));
                self.stats.failed += 1;
                self.more_waiters.wake(first, more, nodes);
                // Failures are not cached: the waiters read the error from the slot, and a
                // later request for the key (a retry) fetches it again.
                self.keys.remove(key, slot);
            }
        }
    }
}

impl<S: DataSource> SourceState<S> {
    /// One call of `fetch` with the keys of `batch`, consecutive slots.
    ///
    /// A slot is sent in exactly one call (slots are made for keys not indexed yet, and a
    /// round's batch is split among its calls), so a pending slot of a call's answer is that
    /// call's to settle: slots need no mark of their call.
    fn launch(&mut self, batch: Vec<(S::Key, u32)>, calls: &mut Vec<CallFuture>, eager: bool) {
        let (keys, slots): (Vec<S::Key>, Vec<u32>) = batch.into_iter().unzip();
        if eager {
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
                let pending = match *entry {
                    Slot::Pending { first, more } => Some((first, more)),
                    _ => None,
                };
                *entry = Slot::Ready(value);
                if let Some((first, more)) = pending {
                    self.more_waiters.wake(first, more, nodes);
                }
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
    fn fail_call(&mut self, slots: &[u32], keys: &[S::Key], nodes: &mut Nodes, error: SourceError) {
        let name = Arc::clone(&self.name);
        let batch = keys.len();
        self.fail_pending(slots, keys, nodes, |key| Error::Source {
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

    fn start_calls(&mut self, calls: &mut Vec<CallFuture>, eager: bool) -> usize {
        let mut started = 0;
        let mut batch = std::mem::take(&mut self.batch);
        while !batch.is_empty() {
            let rest = if batch.len() > self.max_batch {
                batch.split_off(self.max_batch)
            } else {
                Vec::new()
            };
            self.launch(batch, calls, eager);
            started += 1;
            batch = rest;
        }
        started
    }

    fn complete(&mut self, done: Box<dyn Any + Send>, nodes: &mut Nodes) {
        let Finished {
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
                    // Only keys still waiting: a second answer for a key loses.
                    if let Slot::Pending { first, more } = *entry {
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
                        self.more_waiters.wake(first, more, nodes);
                    }
                }
                let name = Arc::clone(&self.name);
                self.fail_pending(&slots, &keys, nodes, |key| Error::MissingKey {
                    source: Arc::clone(&name),
                    key,
                });
            }
            Ok(Err(error)) => self.fail_call(&slots, &keys, nodes, Arc::from(error.into())),
            Err(error) => self.fail_call(&slots, &keys, nodes, error),
        }
        if !self.caches_answers {
            // The waiters read their values from the slots; later requests fetch again.
            for (key, &slot) in keys.iter().zip(&slots) {
                self.keys.remove(key, slot);
            }
        }
        if !self.keys.in_flight.is_empty() {
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
mod tests;
