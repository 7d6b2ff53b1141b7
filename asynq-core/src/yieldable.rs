//! What can be awaited inside an asynq function.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Something an asynq function can `.await`: a task, a fetch request, or a collection of them.
///
/// Inside `#[asynq]` functions every `.await` goes through this trait. Everything in one
/// awaited value runs in the same rounds, so the fetches of all its members are batched
/// together, and the result has the same shape as the value:
///
/// | awaited | result |
/// | --- | --- |
/// | [`Task`](crate::Task) of an `#[asynq] fn f() -> T` | `T` |
/// | [`Load<S>`](crate::Load) from `S::load(key)` | `Result<S::Value, asynq_core::Error>` |
/// | `(A, B, ...)`, up to 12 | `(A::Output, B::Output, ...)` |
/// | `[Y; N]`, `Vec<Y>` | `[Y::Output; N]`, `Vec<Y::Output>` |
/// | `Option<Y>` | `Option<Y::Output>` |
/// | `HashMap<K, Y>`, `BTreeMap<K, Y>` | the same map of `Y::Output` |
/// | [`Ready<T>`](crate::Ready) from [`ready(v)`](crate::ready) | `T` |
///
/// Every member runs to completion, even when another fails: the caller gets every result.
///
/// # Implementing it
///
/// Implement it for your own types by delegating to the implementations above (a struct of
/// tasks can yield the tuple of its fields). The future must only wait on other yieldables:
/// a future that waits on anything else (a timer, a socket) is never woken by the run, which
/// then ends with [`Error::Stall`](crate::Error::Stall).
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use asynq_core::{asynq, ready, Runtime};
///
/// #[asynq]
/// fn double(x: u32) -> u32 {
///     x * 2
/// }
///
/// #[asynq]
/// fn shapes() -> (u32, [u32; 2], Vec<u32>, Option<u32>, HashMap<&'static str, u32>) {
///     let map = HashMap::from([("a", double(10))]);
///     (double(1), [double(2), double(3)], vec![double(4)], Some(ready(5)), map).await
/// }
///
/// let (a, arr, v, o, m) = Runtime::new().run(shapes()).unwrap();
/// assert_eq!((a, arr, v, o, m["a"]), (2, [4, 6], vec![8], Some(5), 20));
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be awaited in an asynq function",
    label = "not an asynq task, a fetch request, or a collection of them",
    note = "inside #[asynq] functions `.await` takes asynq tasks, `DataSource::load` requests, `asynq_core::ready(..)`, and tuples, arrays, `Vec`s, `Option`s and maps of them",
    note = "I/O belongs in a `DataSource`: its `fetch` runs once per round with every key the round needs"
)]
pub trait Yieldable {
    /// What awaiting it gives.
    type Output;
    /// The future that computes the output inside a run.
    type Future: Future<Output = Self::Output>;
    /// Turn the value into its future (what `.await` does inside `#[asynq]` functions).
    fn into_future(self) -> Self::Future;
}

/// A value that is ready at once, for branches that already have their result.
///
/// Awaiting it does not suspend the task. Python asynq calls it `ConstFuture`.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, ready, DataSource, Runtime};
/// # struct Names;
/// # impl DataSource for Names {
/// #     type Key = u64; type Value = String; type Error = std::convert::Infallible;
/// #     async fn fetch(&self, k: &[u64]) -> Result<Vec<(u64, String)>, Self::Error> {
/// #         Ok(k.iter().map(|&k| (k, format!("user{k}"))).collect())
/// #     }
/// # }
///
/// #[asynq]
/// fn name(uid: Option<u64>) -> Result<String, asynq_core::Error> {
///     match uid {
///         Some(uid) => Names::load(uid).await,
///         None => ready(Ok("anonymous".to_owned())).await,
///     }
/// }
///
/// let rt = Runtime::new().with_source(Names);
/// assert_eq!(rt.run(name(None)).unwrap(), "anonymous");
/// assert_eq!(rt.run(name(Some(3))).unwrap(), "user3");
/// ```
pub fn ready<T>(value: T) -> Ready<T> {
    Ready(Some(value))
}

/// A value that is ready at once; see [`ready`].
#[must_use = "a ready value does nothing unless awaited"]
#[derive(Clone, Debug)]
pub struct Ready<T>(Option<T>);

impl<T> Unpin for Ready<T> {}

impl<T> Future for Ready<T> {
    type Output = T;
    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<T> {
        Poll::Ready(self.0.take().expect("`Ready` polled after completion"))
    }
}

impl<T> Yieldable for Ready<T> {
    type Output = T;
    type Future = Self;
    fn into_future(self) -> Self {
        self
    }
}
