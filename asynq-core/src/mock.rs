//! Test doubles of data sources (Python asynq's `asynq.mock.patch`).
//!
//! Application code loads from its real source types (`Users::load(uid)`); a test registers a
//! [`Mock`] *in place of* such a type with [`Runtime::with_mock`](crate::Runtime::with_mock),
//! so the functions under test run unchanged, without the database, and the test can read
//! every call the runtime made.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;

use crate::source::{DataSource, FetchOutput};

type Answer<S> = dyn Fn(
        &[<S as DataSource>::Key],
    )
        -> Result<Vec<(<S as DataSource>::Key, <S as DataSource>::Value)>, <S as DataSource>::Error>
    + Send
    + Sync;

/// A stand-in for source `S`: answers from a map or a function, and records each call's keys.
///
/// Register it with [`Runtime::with_mock::<S>`](crate::Runtime::with_mock); read the calls
/// back with [`Runtime::mock::<S>`](crate::Runtime::mock). The runtime batches, deduplicates
/// and caches around it exactly as around `S`.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, DataSource, Error, Mock, Runtime};
///
/// struct Users; // in the application, a database connection
/// impl DataSource for Users {
///     type Key = u64;
///     type Value = String;
///     type Error = std::io::Error;
///     async fn fetch(&self, _keys: &[u64]) -> Result<Vec<(u64, String)>, Self::Error> {
///         unimplemented!("a query against the production database")
///     }
/// }
///
/// #[asynq]
/// fn greeting(uid: u64) -> Result<String, Error> {
///     Ok(format!("hello, {}", Users::load(uid).await?))
/// }
///
/// // One line of setup: the function under test runs unchanged.
/// let rt = Runtime::new().with_mock::<Users>(Mock::from_map([(1, "ada".to_owned())]));
/// assert_eq!(rt.run(greeting(1))?, "hello, ada");
/// assert!(rt.run(greeting(2)).is_err()); // not in the map: a missing key
/// assert_eq!(rt.mock::<Users>().unwrap().calls(), [vec![1], vec![2]]);
/// # Ok::<(), Error>(())
/// ```
pub struct Mock<S: DataSource> {
    answer: Box<Answer<S>>,
    calls: Mutex<Vec<Vec<S::Key>>>,
    name: String,
    max_batch_size: Option<usize>,
}

impl<S: DataSource> fmt::Debug for Mock<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mock")
            .field("name", &self.name)
            .field("calls", &self.calls.lock().map(|c| c.len()).unwrap_or(0))
            .finish_non_exhaustive()
    }
}

impl<S: DataSource> Mock<S> {
    /// A mock answering the keys of `entries`; other keys are left out of its answers (the
    /// tasks asking for them get [`Error::MissingKey`](crate::Error::MissingKey)).
    pub fn from_map(entries: impl IntoIterator<Item = (S::Key, S::Value)>) -> Self {
        // Values need not be `Sync`: the map is read under a lock.
        let map: Mutex<HashMap<S::Key, S::Value>> = Mutex::new(entries.into_iter().collect());
        Self::from_fn(move |key| {
            let map = map.lock().unwrap_or_else(|e| e.into_inner());
            map.get(key).cloned()
        })
    }

    /// A mock answering each key with `answer(key)`, leaving out the keys it gives `None` for.
    pub fn from_fn(answer: impl Fn(&S::Key) -> Option<S::Value> + Send + Sync + 'static) -> Self {
        Self::from_batch_fn(move |keys| {
            Ok(keys
                .iter()
                .filter_map(|key| Some((key.clone(), answer(key)?)))
                .collect())
        })
    }

    /// A mock whose every call is answered by `answer(keys)`, like `fetch`: it can fail whole
    /// calls with the source's own error type.
    pub fn from_batch_fn(
        answer: impl Fn(&[S::Key]) -> Result<Vec<(S::Key, S::Value)>, S::Error> + Send + Sync + 'static,
    ) -> Self {
        Mock {
            answer: Box::new(answer),
            calls: Mutex::new(Vec::new()),
            name: format!("mock {}", crate::source::short_type_name::<S>()),
            max_batch_size: None,
        }
    }

    /// The same mock with a maximum batch size, as [`DataSource::max_batch_size`].
    pub fn with_max_batch_size(mut self, max: usize) -> Self {
        self.max_batch_size = Some(max);
        self
    }

    /// The keys of every call so far, in call order and in the order sent.
    pub fn calls(&self) -> Vec<Vec<S::Key>> {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Every key sent so far, over all calls.
    pub fn keys(&self) -> Vec<S::Key> {
        self.calls().into_iter().flatten().collect()
    }

    /// Forget the calls recorded so far.
    pub fn reset(&self) {
        self.calls.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }

    /// The name in statistics and errors: `mock <Type>`.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn max_batch_size(&self) -> Option<usize> {
        self.max_batch_size
    }

    /// One call: record the keys, answer them.
    pub(crate) fn fetch(&self, keys: &[S::Key]) -> FetchOutput<S> {
        self.calls
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(keys.to_vec());
        (self.answer)(keys)
    }
}
