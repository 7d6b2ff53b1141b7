//! What can be awaited inside an asynq function.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::join::{
    Join1, Join2, Join3, Join4, Join5, Join6, Join7, Join8, Join9, Join10, Join11, Join12, JoinAll,
    JoinArray,
};

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

impl<Y: Yieldable> Yieldable for Vec<Y> {
    type Output = Vec<Y::Output>;
    type Future = JoinAll<Y::Future>;
    fn into_future(self) -> Self::Future {
        // Collected in place when `Y` and its future have the same layout (see `JoinAll`).
        JoinAll::from_vec(self.into_iter().map(Y::into_future).collect())
    }
}

impl<Y: Yieldable, const N: usize> Yieldable for [Y; N] {
    type Output = [Y::Output; N];
    type Future = JoinArray<Y::Future, N>;
    fn into_future(self) -> Self::Future {
        JoinArray::new(self.map(Y::into_future))
    }
}

impl<Y: Yieldable> Yieldable for Option<Y> {
    type Output = Option<Y::Output>;
    type Future = OptionFuture<Y::Future>;
    fn into_future(self) -> Self::Future {
        OptionFuture {
            inner: self.map(Y::into_future),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of an awaited `Option`.
    #[must_use = "futures do nothing unless polled"]
    #[derive(Debug)]
    pub struct OptionFuture<F> {
        #[pin]
        inner: Option<F>,
    }
}

impl<F: Future> Future for OptionFuture<F> {
    type Output = Option<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.as_pin_mut() {
            Some(f) => f.poll(cx).map(Some),
            None => Poll::Ready(None),
        }
    }
}

impl<K, Y: Yieldable, S: BuildHasher + Default> Yieldable for HashMap<K, Y, S>
where
    K: Eq + Hash,
{
    type Output = HashMap<K, Y::Output, S>;
    type Future = JoinMap<K, Y::Future, HashMap<K, Y::Output, S>>;
    fn into_future(self) -> Self::Future {
        JoinMap::new(self)
    }
}

impl<K: Ord, Y: Yieldable> Yieldable for BTreeMap<K, Y> {
    type Output = BTreeMap<K, Y::Output>;
    type Future = JoinMap<K, Y::Future, BTreeMap<K, Y::Output>>;
    fn into_future(self) -> Self::Future {
        JoinMap::new(self)
    }
}

/// The future of an awaited map: the values run together, the keys are kept.
#[must_use = "futures do nothing unless polled"]
pub struct JoinMap<K, F: Future, M> {
    keys: Vec<K>,
    join: JoinAll<F>,
    _map: std::marker::PhantomData<fn() -> M>,
}

impl<K, F: Future, M> JoinMap<K, F, M> {
    fn new<Y: Yieldable<Future = F>>(map: impl IntoIterator<Item = (K, Y)>) -> Self {
        let (keys, futures): (Vec<K>, Vec<F>) =
            map.into_iter().map(|(k, y)| (k, y.into_future())).unzip();
        JoinMap {
            keys,
            join: JoinAll::from_vec(futures),
            _map: std::marker::PhantomData,
        }
    }
}

// The keys are never pinned; `JoinAll` keeps its children on the heap, never moved.
impl<K, F: Future, M> Unpin for JoinMap<K, F, M> {}

impl<K, F: Future, M: FromIterator<(K, F::Output)>> Future for JoinMap<K, F, M> {
    type Output = M;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<M> {
        let this = &mut *self;
        match this.join.poll_outputs(cx) {
            Poll::Ready(outputs) => Poll::Ready(
                std::mem::take(&mut this.keys)
                    .into_iter()
                    .zip(outputs)
                    .collect(),
            ),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<K, F: Future, M> fmt::Debug for JoinMap<K, F, M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JoinMap")
            .field("len", &self.keys.len())
            .finish()
    }
}

macro_rules! tuple_yieldable {
    ($Join:ident; $($Y:ident $idx:tt),+) => {
        impl<$($Y: Yieldable),+> Yieldable for ($($Y,)+) {
            type Output = ($($Y::Output,)+);
            type Future = $Join<$($Y::Future),+>;
            fn into_future(self) -> Self::Future {
                $Join::new(($(self.$idx.into_future(),)+))
            }
        }
    };
}

tuple_yieldable!(Join1; A 0);
tuple_yieldable!(Join2; A 0, B 1);
tuple_yieldable!(Join3; A 0, B 1, C 2);
tuple_yieldable!(Join4; A 0, B 1, C 2, D 3);
tuple_yieldable!(Join5; A 0, B 1, C 2, D 3, E 4);
tuple_yieldable!(Join6; A 0, B 1, C 2, D 3, E 4, F 5);
tuple_yieldable!(Join7; A 0, B 1, C 2, D 3, E 4, F 5, G 6);
tuple_yieldable!(Join8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7);
tuple_yieldable!(Join9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8);
tuple_yieldable!(Join10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9);
tuple_yieldable!(Join11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10);
tuple_yieldable!(Join12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11);
