//! Batched data fetching for code written as if sequential.
//!
//! A web page is rendered by many small functions, each needing a few rows from slow stores.
//! Called one by one they make hundreds of round trips; fetching everything up front by hand
//! makes every developer write the logic twice. With asynq, each function is written as if
//! sequential and marks with `.await` where it waits for data. A [`Runtime`] drives all the
//! functions of a request breadth-first: it runs everything that can run, and only when every
//! task waits does it send the collected requests, one call per [`DataSource`] with every key
//! the round needs. Siblings coalesce without anyone planning it, and the number of rounds is
//! the longest chain of data dependencies: the optimum that hand-priming reaches.
//!
//! This is the Rust successor of Quora's Python asynq and a peer of Facebook's Haxl.
//!
//! # The model
//!
//! 1. `#[asynq] fn f(args) -> T` returns a lazy [`Task`] that runs when awaited or run.
//! 2. Inside, `.await` takes a task, a fetch request (`S::load(key)`), or a tuple, array,
//!    `Vec`, `Option` or map of them ([`Yieldable`]); members of one awaited value run in the
//!    same rounds and their fetches are batched together.
//! 3. [`Runtime::run`] runs a task: rounds of "run everything runnable, then fetch every
//!    pending key" until the task finishes. Each run has its own cache: a key is fetched at
//!    most once per run. [`Runtime::last_stats`] tells rounds, calls, keys and cache hits.
//!
//! # Example
//!
//! ```
//! use asynq_core::{asynq, DataSource, Runtime};
//!
//! #[derive(Clone)]
//! struct User {
//!     name: String,
//!     friends: Vec<u64>,
//! }
//!
//! #[derive(Debug)]
//! struct DbError;
//! impl std::fmt::Display for DbError {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("database unavailable")
//!     }
//! }
//! impl std::error::Error for DbError {}
//!
//! struct Users; // a connection, in a real application
//! impl DataSource for Users {
//!     type Key = u64;
//!     type Value = User; // an absent row is the source's choice: Option<User>, say
//!     type Error = DbError;
//!     async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, User)>, DbError> {
//!         // One query for the whole batch: SELECT ... WHERE id IN (keys)
//!         Ok(keys
//!             .iter()
//!             .map(|&id| (id, User { name: format!("user{id}"), friends: vec![id + 1, id + 2] }))
//!             .collect())
//!     }
//! }
//!
//! #[asynq]
//! fn user_name(uid: u64) -> Result<String, asynq_core::Error> {
//!     let user = Users::load(uid).await?; // suspends until the round's batch returns
//!     Ok(user.name)
//! }
//!
//! #[asynq]
//! fn friend_ids(uid: u64) -> Result<Vec<u64>, asynq_core::Error> {
//!     Ok(Users::load(uid).await?.friends)
//! }
//!
//! #[asynq]
//! fn profile(uid: u64) -> Result<String, asynq_core::Error> {
//!     // Siblings awaited together run in the same rounds: one call to Users for both.
//!     let (name, friends) = (user_name(uid), friend_ids(uid)).await;
//!     let names = friends?.into_iter().map(user_name).collect::<Vec<_>>().await;
//!     let names = names.into_iter().collect::<Result<Vec<_>, _>>()?;
//!     Ok(format!("{} knows {}", name?, names.join(", ")))
//! }
//!
//! let rt = Runtime::new().with_source(Users);
//! let html = rt.run(profile(4))?; // blocking; rt.run_async(task).await inside tokio
//! assert_eq!(html, "user4 knows user5, user6");
//! let stats = rt.last_stats();
//! println!("{stats}"); // rounds, calls per source, keys, cache hits
//! assert_eq!((stats.rounds, stats.calls(), stats.keys()), (2, 2, 3));
//! # Ok::<(), asynq_core::Error>(())
//! ```
//!
//! # Errors
//!
//! A fetch request resolves to `Result<S::Value, asynq_core::Error>`; an [`Error`] says which
//! source and key failed, and how. An asynq function with failures of its own (a value that
//! does not parse, a row that must exist) returns an error type of its own that converts from
//! `asynq_core::Error`: `?` then works on its fetches and on its own fallible calls alike, its
//! callers can match on what failed, and [`Runtime::run`] returns that type (see
//! [`RunOutput`]).
//!
//! ```
//! use std::fmt;
//! use std::num::ParseIntError;
//! use asynq_core::{asynq, DataSource, Runtime};
//!
//! /// Post id to author id, stored as text.
//! struct Posts;
//! impl DataSource for Posts {
//!     type Key = u64;
//!     type Value = String;
//!     type Error = std::io::Error;
//!     async fn fetch(&self, posts: &[u64]) -> Result<Vec<(u64, String)>, Self::Error> {
//!         Ok(posts.iter().map(|&p| (p, if p == 1 { "7" } else { "seven" }.to_owned())).collect())
//!     }
//! }
//!
//! struct Names;
//! impl DataSource for Names {
//!     type Key = u64;
//!     type Value = String;
//!     type Error = std::io::Error;
//!     async fn fetch(&self, users: &[u64]) -> Result<Vec<(u64, String)>, Self::Error> {
//!         Ok(users.iter().map(|&u| (u, format!("user {u}"))).collect())
//!     }
//! }
//!
//! /// What can fail on the page. `Clone`, as `#[asynq(memo)]` outputs must be.
//! #[derive(Clone, Debug)]
//! enum PageError {
//!     /// A fetch failed.
//!     Fetch(asynq_core::Error),
//!     /// A post's stored author is not a user id.
//!     BadAuthor(ParseIntError),
//! }
//!
//! impl From<asynq_core::Error> for PageError {
//!     fn from(error: asynq_core::Error) -> Self {
//!         PageError::Fetch(error)
//!     }
//! }
//!
//! impl From<ParseIntError> for PageError {
//!     fn from(error: ParseIntError) -> Self {
//!         PageError::BadAuthor(error)
//!     }
//! }
//!
//! impl fmt::Display for PageError {
//!     fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
//!         match self {
//!             PageError::Fetch(error) => error.fmt(f), // transparent
//!             PageError::BadAuthor(_) => f.write_str("a post's author is not a user id"),
//!         }
//!     }
//! }
//!
//! impl std::error::Error for PageError {
//!     fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
//!         match self {
//!             PageError::Fetch(error) => error.source(),
//!             PageError::BadAuthor(error) => Some(error),
//!         }
//!     }
//! }
//!
//! #[asynq]
//! fn author(post: u64) -> Result<String, PageError> {
//!     let uid = Posts::load(post).await?.parse::<u64>()?; // both `?`s convert
//!     Ok(Names::load(uid).await?)
//! }
//!
//! let rt = Runtime::new().with_source(Posts).with_source(Names);
//! assert_eq!(rt.run(author(1))?, "user 7"); // `run` returns Result<String, PageError>
//! assert!(matches!(rt.run(author(2)), Err(PageError::BadAuthor(_))));
//! # Ok::<(), PageError>(())
//! ```
//!
//! Each error says its own part once: `Fetch` is transparent (the fetch error's message and
//! `source()`), `BadAuthor` says what it is about and leaves the parser's message to
//! `source()`, so that an error chain (`anyhow`'s `{:#}`, a loop over `source()`) shows every
//! message once. The `thiserror` crate writes these impls from attributes
//! (`#[error(transparent)]`, `#[from]`).
//!
//! For an occasional failure in a function that otherwise deals in `asynq_core::Error`,
//! [`Error::other`] wraps any error or message as [`Error::Other`]:
//! `text.parse::<u64>().map_err(Error::other)?`. An application that never matches on its
//! errors may also return `anyhow::Error` or `Box<dyn std::error::Error + Send + Sync>`,
//! which convert from `asynq_core::Error` too (though not from `memo` functions: they are
//! not `Clone`). The examples of the repository (`asynq-examples/src/feed.rs`,
//! `asynq-examples/src/profile.rs`) follow the first way.
//!
//! # Written one await at a time: `#[asynq(batch)]`
//!
//! Without options, each `.await` waits for a round of its own, and the compiler warns where
//! awaits one after the other could have been awaited together. With `#[asynq(batch)]`, the
//! macro awaits together what it can prove independent: consecutive `let`s, awaits within one
//! expression, and `for` loops whose iterations are independent (every iteration's task is
//! built first, then the bodies run in order with their results). Results, the first error in
//! program order and the order of the code's side effects are the sequential version's; the
//! one difference is that await operands are evaluated earlier (at the first await they are
//! merged with). Where independence cannot be proven from the syntax, the code stays
//! sequential. The rules, the cases left sequential and an expansion are in `docs/batch.md`.
//!
//! ```
//! use asynq_core::{asynq, DataSource, Runtime};
//!
//! struct Names;
//! impl DataSource for Names {
//!     type Key = u64;
//!     type Value = String;
//!     type Error = std::convert::Infallible;
//!     async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, String)>, Self::Error> {
//!         Ok(keys.iter().map(|&k| (k, format!("user{k}"))).collect())
//!     }
//! }
//!
//! #[asynq(batch)]
//! fn page(uid: u64, friends: Vec<u64>) -> Result<String, asynq_core::Error> {
//!     let name = Names::load(uid).await?;
//!     let mut out = format!("{name} knows");
//!     for f in friends {
//!         let friend = Names::load(f).await?;
//!         out.push_str(&format!(" {friend}"));
//!     }
//!     Ok(out)
//! }
//!
//! let rt = Runtime::new().with_source(Names);
//! assert_eq!(rt.run(page(1, vec![2, 3]))?, "user1 knows user2 user3");
//! // One round, one call: without `batch`, three rounds (and a warning).
//! assert_eq!((rt.last_stats().rounds, rt.last_stats().calls()), (1, 1));
//! # Ok::<(), asynq_core::Error>(())
//! ```
//!
//! # Beyond batching
//!
//! - [`macro@asynq`] options: `memo` (equal arguments share one execution per run; a failed
//!   one is not kept, see [`MemoFailure`]), `boxed` (recursion), `crate = "path"`, `batch`
//!   (above), `allow_sequential`.
//! - [`ready`], [`try_all`], and the [`tools`] whose predicate or key is an asynq function.
//! - [`cache`]: prime and clear the run's cache; [`DataSource::caches_answers`].
//! - [`answers`]: a source's complete answer from a query's rows (has-many sources: an empty
//!   `Vec` for a key without rows).
//! - [`Mock`] and [`Runtime::with_mock`]: test doubles of sources.
//! - [`scoped_value!`], [`with_hooks`], [`Timer`]: values and hooks scoped to a task.
//! - [`Runtime::eager_resume`]: tasks resume as soon as their keys are answered.
//! - [`Stats`] of each run ([`Runtime::with_function_stats`] for per-function figures) and,
//!   with the `tracing` feature (off by default), spans for runs, rounds, fetches and polls.
//! - Blocking runs ([`Runtime::run`], [`RunFuture::wait`]) that could not end are refused
//!   instead of hanging: inside another run ([`Error::NestedRun`]) and on a thread that drives
//!   an async executor ([`Error::BlockingInAsync`]); tokio is recognised with the `tokio`
//!   feature (on by default; it uses only tokio's runtime core, to ask where it is).
//!
//! # Crates
//!
//! `asynq-core` (this crate) is the runtime and re-exports the [`asynq`] attribute from
//! [`asynq-core-macros`](https://docs.rs/asynq-core-macros) (the `asynq-macros/` directory of
//! the repository); depend on this crate only.

#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(
    missing_docs,
    missing_debug_implementations,
    rust_2018_idioms,
    unreachable_pub,
    clippy::undocumented_unsafe_blocks
)]

pub mod answers;
mod any;
mod batched;
mod blocking;
pub mod cache;
mod context;
mod detached;
mod diagnosis;
mod diagnostics;
mod error;
mod fetch;
mod frames;
mod join;
mod memo;
mod memos;
mod mock;
mod nodes;
mod output;
mod roots;
mod runtime;
mod scoped;
mod source;
mod source_state;
mod stats;
mod task;
pub mod tools;
mod waker;
mod yieldable;

pub use asynq_macros::asynq;

pub use crate::any::{Any, any};
pub use crate::detached::{BoxFuture, LocalBoxFuture};
pub use crate::error::{Error, SourceError};
pub use crate::join::{
    Join1, Join2, Join3, Join4, Join5, Join6, Join7, Join8, Join9, Join10, Join11, Join12, JoinAll,
    JoinArray, JoinMap, OptionFuture,
};
pub use crate::memo::{MemoFailure, MemoKey, MemoOutput};
pub use crate::mock::Mock;
pub use crate::output::RunOutput;
pub use crate::runtime::{RunFuture, RunResult, Runtime, WithStats};
pub use crate::scoped::{
    Hooked, HookedFuture, Scoped, ScopedFuture, ScopedKey, TaskHooks, Timer, TimerHooks, with_hooks,
};
pub use crate::source::{DataSource, FetchTimeout, Load};
pub use crate::stats::{
    FunctionStats, RoundSourceStats, RoundSources, RoundStats, SourceStats, Stats,
};
pub use crate::task::{Task, TaskFuture};
pub use crate::tools::try_all;
pub use crate::yieldable::{Ready, Yieldable, ready};

// Not public API: what `#[asynq]` expansions name.
#[doc(hidden)]
pub mod __private {
    pub use core::future::Future;

    pub use crate::batched::batch_loop;
    pub use crate::diagnostics::{
        Awaited, AwaitedInAsynq, QuestionMarkOnTask, SameTask, TaskParts, TaskTried, TryOperand,
        first_arm, first_of, unboxed_task_use_asynq_boxed_to_recurse,
    };
    pub use crate::task::Task;
    pub use crate::yieldable::Yieldable;

    /// The task of an asynq function's body.
    #[inline(always)]
    pub fn new_task<F: Future>(name: &'static &'static str, future: F) -> Task<F> {
        Task::__new(name, future)
    }

    pub use crate::detached::BoxFuture;

    pub use crate::memo::{FailureByTrait, FailureNever, Memo, check_key, check_output, memo};

    /// The task of an `#[asynq(boxed)]` function's body: a concrete type, so that the
    /// function may call itself, and `Send`.
    #[inline(always)]
    pub fn new_boxed_task<'a, F>(
        name: &'static &'static str,
        future: F,
    ) -> Task<BoxFuture<'a, F::Output>>
    where
        F: Future + Send + 'a,
    {
        Task::__new(name, future).boxed()
    }

    /// Stands for an `.await` that `#[asynq]` has reported as an error (inside a closure):
    /// it has the awaited type, so that the reported error is the only one. Never called.
    pub fn await_in_closure<Y: Yieldable>(_: Y) -> Y::Output {
        unreachable!("#[asynq] reports an `.await` inside a closure as a compile error")
    }
}
