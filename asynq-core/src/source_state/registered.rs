//! The sources a runtime holds ([`Registered`], type-erased as [`ErasedSource`]): each makes
//! its state in a new run, and keeps the emptied containers of the last run for the next.

use std::any::{Any, TypeId};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::keys::KeyIndex;
use super::{ErasedState, Slot, SourceState};
use crate::mock::Mock;
use crate::source::{DataSource, EachOutput};

/// A source registered with a runtime, type-erased.
pub(crate) trait ErasedSource: Send + Sync {
    fn source_type(&self) -> TypeId;
    fn name(&self) -> &Arc<str>;
    fn as_any(&self) -> &dyn Any;
    /// The source's state in a new run; `eager`: the run resumes tasks while calls are in
    /// flight (see [`KeyIndex`]).
    fn new_state(&self, index: usize) -> Box<dyn ErasedState>;
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
    pub(crate) fn name(&self) -> &str {
        match self {
            Fetcher::Real(source) => source.name(),
            Fetcher::Mock(mock) => mock.name(),
        }
    }

    pub(crate) fn max_batch_size(&self) -> Option<usize> {
        match self {
            Fetcher::Real(source) => source.max_batch_size(),
            Fetcher::Mock(mock) => mock.max_batch_size(),
        }
    }

    pub(crate) fn fetch_timeout(&self) -> Option<Duration> {
        match self {
            Fetcher::Real(source) => source.fetch_timeout(),
            Fetcher::Mock(_) => None,
        }
    }

    pub(crate) fn caches_answers(&self) -> bool {
        match self {
            Fetcher::Real(source) => source.caches_answers(),
            Fetcher::Mock(_) => true,
        }
    }

    pub(crate) async fn fetch(&self, keys: &[S::Key]) -> EachOutput<S> {
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
pub(crate) struct Spare<S: DataSource> {
    pub(crate) keys: KeyIndex<S::Key>,
    pub(crate) slots: Vec<Slot<S::Value>>,
    pub(crate) batch: Vec<(S::Key, u32)>,
}

/// The most memory a source keeps between runs: its containers' own buffers (the keys' and
/// values' heap data is freed with them). FEED-1 at Q=1000 (34,000 string keys) needs 4 MiB.
pub(crate) const SPARE_MAX_BYTES: usize = 8 << 20;

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
    fn new_state(&self, index: usize) -> Box<dyn ErasedState> {
        // Another run may hold the lock for a moment: then start afresh rather than wait.
        let spare = self.spare.try_lock().ok().and_then(|mut s| s.take());
        Box::new(SourceState::<S>::new(
            self.fetcher.clone(),
            Arc::clone(&self.name),
            index,
            spare.unwrap_or_default(),
            Arc::clone(&self.spare),
        ))
    }
}

impl<S: DataSource> Default for Spare<S> {
    fn default() -> Self {
        Spare {
            keys: KeyIndex::default(),
            slots: Vec::new(),
            batch: Vec::new(),
        }
    }
}
