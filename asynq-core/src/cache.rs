//! Cache control: prime the run's cache with values you already have, clear what it holds.
//!
//! Each run has its own cache: a key is fetched at most once per run, and its answer serves
//! every later request of the run. These functions act on the cache of the run that is
//! polling the calling task, so call them from inside asynq functions; before a run starts,
//! prime it with [`RunFuture::prime`](crate::RunFuture::prime).
//!
//! - [`prime`]: the key's value is known (it came with another answer, or from a write the
//!   request just made). Tasks waiting on the key resume with it, and later requests get it
//!   without a fetch. (A key already waiting to be sent in the current round is still sent
//!   with the others, so that the round keeps its one call; its answer is ignored.)
//! - [`clear`], [`clear_source`]: the cached value is stale (the request wrote it). The next
//!   request fetches it again; tasks that already hold the old value keep it, and a key
//!   being fetched is not affected.
//! - A source whose values must always be fresh opts out of caching altogether with
//!   [`DataSource::caches_answers`].
//!
//! Outside a run these functions return [`Error::NotInRun`]; for a source the runtime does
//! not have, [`Error::NoSource`].
//!
//! # Examples
//!
//! ```
//! use asynq_core::{asynq, cache, DataSource, Error, Runtime};
//!
//! struct Counters;
//! impl DataSource for Counters {
//!     type Key = &'static str;
//!     type Value = u64;
//!     type Error = std::convert::Infallible;
//!     async fn fetch(&self, keys: &[&'static str]) -> Result<Vec<(&'static str, u64)>, Self::Error> {
//!         Ok(keys.iter().map(|&k| (k, k.len() as u64)).collect())
//!     }
//! }
//!
//! #[asynq]
//! fn page() -> Result<(u64, u64, u64), Error> {
//!     cache::prime::<Counters>("views", 41)?; // known already: never fetched
//!     let views = Counters::load("views").await?;
//!     let likes = Counters::load("likes").await?; // fetched: 5
//!     cache::clear::<Counters>(&"likes")?; // stale now
//!     let again = Counters::load("likes").await?; // fetched again
//!     Ok((views, likes, again))
//! }
//!
//! let rt = Runtime::new().with_source(Counters);
//! assert_eq!(rt.run(page())?, (41, 5, 5));
//! assert_eq!(rt.last_stats().keys(), 2); // "likes", twice
//! # Ok::<(), Error>(())
//! ```

use std::any::TypeId;

use crate::context::{RunState, with_ctx};
use crate::error::Error;
use crate::source::DataSource;

/// Run `f` on the state of source `S` in the run polling on this thread; `call` names the
/// function of this module that asks, for the error outside a run.
fn on_source<S: DataSource>(
    call: &'static str,
    f: impl FnOnce(&mut crate::source_state::SourceState<S>, &mut crate::context::Nodes),
) -> Result<(), Error> {
    with_ctx(|run| apply::<S>(run, f)).unwrap_or(Err(Error::NotInRun {
        source_type: std::any::type_name::<S>(),
        call,
    }))
}

pub(crate) fn apply<S: DataSource>(
    run: &mut RunState,
    f: impl FnOnce(&mut crate::source_state::SourceState<S>, &mut crate::context::Nodes),
) -> Result<(), Error> {
    let index = run.source_index(TypeId::of::<S>()).ok_or(Error::NoSource {
        source_type: std::any::type_name::<S>(),
    })?;
    let (state, nodes) = run.source_state_and_nodes::<S>(index);
    f(state, nodes);
    Ok(())
}

/// Put `value` in the run's cache as the answer for `key` of source `S`.
///
/// Tasks waiting on the key resume with `value`, and later requests get it without a fetch.
/// A value already cached for the key is replaced. A key already waiting to be sent in the
/// current round is still sent with the others (the round keeps its one call), and its answer
/// is ignored.
pub fn prime<S: DataSource>(key: S::Key, value: S::Value) -> Result<(), Error> {
    on_source::<S>("cache::prime", |state, nodes| {
        state.prime(key, value, nodes)
    })
}

/// Forget the run's cached answer (or failure) for `key` of source `S`: the next request
/// fetches it again.
pub fn clear<S: DataSource>(key: &S::Key) -> Result<(), Error> {
    on_source::<S>("cache::clear", |state, _| state.clear(key))
}

/// Forget every answer of source `S` cached in the run.
pub fn clear_source<S: DataSource>() -> Result<(), Error> {
    on_source::<S>("cache::clear_source", |state, _| state.clear_all())
}
