//! Ordinary async code inside a run: [`any`].

use std::future::Future;

use crate::yieldable::Yieldable;

/// Run an ordinary future inside asynq: as the root of a run, or awaited by an asynq function.
///
/// Inside an [`any`] future, plain async code takes part in the run's batching as asynq
/// functions do: a fetch request (`Users::load(id).await`), a `Vec` of them under
/// `futures::future::join_all`, asynq tasks (awaited through
/// [`Yieldable::into_future`]), and the futures of any combinator (`join_all`,
/// `FuturesUnordered`, `select`, `async` blocks) all wait together, and the run sends a round
/// exactly when every one of them waits and nothing was woken: no timer, no `yield_now`. This
/// is what a GraphQL executor's resolvers need: run the request inside a run and every level
/// of the query is one call per source.
///
/// Futures that wait on the outside world (a tokio timer, a channel) work too: they keep the
/// run's waker and wake the run when they can go on, and a run with nothing else to do waits
/// for them instead of reporting a stall. (A run cannot tell such a future from one that will
/// never be woken, so a stall among foreign futures that hold the run's waker is not reported:
/// the run waits.)
///
/// # Examples
///
/// ```
/// use asynq_core::{any, asynq, DataSource, Error, Runtime, Yieldable};
/// use futures::future::{join, join_all};
///
/// struct Names;
/// impl DataSource for Names {
///     type Key = u32;
///     type Value = String;
///     type Error = std::convert::Infallible;
///     async fn fetch(&self, keys: &[u32]) -> Result<Vec<(u32, String)>, Self::Error> {
///         Ok(keys.iter().map(|&k| (k, format!("user{k}"))).collect())
///     }
/// }
///
/// #[asynq]
/// fn shout(k: u32) -> Result<String, Error> {
///     Ok(Names::load(k).await?.to_uppercase())
/// }
///
/// // Plain async code, as a GraphQL resolver would be written.
/// async fn names(keys: Vec<u32>) -> Result<Vec<String>, Error> {
///     join_all(Names::load_many(keys)).await.into_iter().collect()
/// }
///
/// let rt = Runtime::new().with_source(Names);
/// let (plain, task) = rt.run(any(async {
///     join(names(vec![1, 2]), shout(3).into_future()).await
/// }))?;
/// assert_eq!((plain?, task?), (vec!["user1".to_owned(), "user2".to_owned()], "USER3".to_owned()));
/// assert_eq!(rt.last_stats().calls(), 1); // keys 1, 2 and 3 in one call
/// # Ok::<(), Error>(())
/// ```
pub fn any<F: Future>(future: F) -> Any<F> {
    Any(future)
}

/// An ordinary future, to run inside asynq; see [`any`].
#[must_use = "a future does nothing unless awaited or run"]
#[derive(Debug)]
pub struct Any<F>(F);

impl<F: Future> Yieldable for Any<F> {
    type Output = F::Output;
    type Future = F;
    fn into_future(self) -> F {
        self.0
    }
}
