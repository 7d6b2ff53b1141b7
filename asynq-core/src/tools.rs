//! Collection tools whose predicate or key is an asynq function (Python asynq's `asynq.tools`).
//!
//! Each tool awaits the predicates (or keys) of all items together, so a collection of `n`
//! items costs the rounds of one predicate, not `n` times that. Each returns a [`Task`], to be
//! awaited inside an asynq function or run by a [`Runtime`](crate::Runtime).
//!
//! | Python asynq | here |
//! | --- | --- |
//! | `afilter`, `asift` | [`filter`], [`try_filter`], [`partition`] |
//! | `asorted(key=...)` | [`sort_by_key`], [`try_sort_by_key`] |
//! | `amax`, `amin` | [`max_by_key`], [`min_by_key`] |
//! | `aretry` | [`retry`] |
//! | a yielded tuple that raises on the first error | [`try_all`] |

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::task::Task;
use crate::yieldable::Yieldable;

/// The items whose predicate is true, in order; all predicates run in the same rounds.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, tools, DataSource, Error, Runtime};
/// # struct Ages;
/// # impl DataSource for Ages {
/// #     type Key = u64; type Value = u64; type Error = std::convert::Infallible;
/// #     async fn fetch(&self, k: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
/// #         Ok(k.iter().map(|&k| (k, 10 * k)).collect())
/// #     }
/// # }
///
/// #[asynq]
/// fn is_adult(uid: u64) -> bool {
///     matches!(Ages::load(uid).await, Ok(age) if age >= 18)
/// }
///
/// let rt = Runtime::new().with_source(Ages);
/// let adults = rt.run(tools::filter(vec![1, 2, 3], |&uid| is_adult(uid))).unwrap();
/// assert_eq!(adults, [2, 3]);
/// assert_eq!(rt.last_stats().calls(), 1); // three predicates, one call
/// ```
pub fn filter<T, F, Y>(items: Vec<T>, predicate: F) -> Task<impl Future<Output = Vec<T>>>
where
    F: FnMut(&T) -> Y,
    Y: Yieldable<Output = bool>,
{
    let predicates: Vec<Y> = items.iter().map(predicate).collect();
    Task::__new(&"asynq_core::tools::filter", async move {
        let keep = predicates.into_future().await;
        items
            .into_iter()
            .zip(keep)
            .filter_map(|(item, keep)| keep.then_some(item))
            .collect()
    })
}

/// [`filter`] with a fallible predicate: the first error (in item order) fails the whole.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, tools, Runtime};
///
/// #[asynq]
/// fn small(x: u32) -> Result<bool, String> {
///     if x > 100 { Err(format!("{x} is out of range")) } else { Ok(x < 10) }
/// }
///
/// let rt = Runtime::new();
/// assert_eq!(rt.run(tools::try_filter(vec![1, 20, 3], |&x| small(x))).unwrap(), [1, 3]);
/// assert_eq!(rt.run(tools::try_filter(vec![1, 200], |&x| small(x))).unwrap_err(), "200 is out of range");
/// ```
pub fn try_filter<T, E, F, Y>(
    items: Vec<T>,
    predicate: F,
) -> Task<impl Future<Output = Result<Vec<T>, E>>>
where
    F: FnMut(&T) -> Y,
    Y: Yieldable<Output = Result<bool, E>>,
{
    let predicates: Vec<Y> = items.iter().map(predicate).collect();
    Task::__new(&"asynq_core::tools::try_filter", async move {
        let keep = predicates
            .into_future()
            .await
            .into_iter()
            .collect::<Result<Vec<bool>, E>>()?;
        Ok(items
            .into_iter()
            .zip(keep)
            .filter_map(|(item, keep)| keep.then_some(item))
            .collect())
    })
}

/// The items split by their predicate: `(true ones, false ones)`, each in order.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, tools, Runtime};
///
/// #[asynq]
/// fn even(x: u32) -> bool {
///     x % 2 == 0
/// }
///
/// let (evens, odds) = Runtime::new().run(tools::partition(vec![1, 2, 3, 4], |&x| even(x))).unwrap();
/// assert_eq!((evens, odds), (vec![2, 4], vec![1, 3]));
/// ```
pub fn partition<T, F, Y>(
    items: Vec<T>,
    predicate: F,
) -> Task<impl Future<Output = (Vec<T>, Vec<T>)>>
where
    F: FnMut(&T) -> Y,
    Y: Yieldable<Output = bool>,
{
    let predicates: Vec<Y> = items.iter().map(predicate).collect();
    Task::__new(&"asynq_core::tools::partition", async move {
        let keep = predicates.into_future().await;
        let (yes, no): (Vec<_>, Vec<_>) = items.into_iter().zip(keep).partition(|(_, keep)| *keep);
        (
            yes.into_iter().map(|(item, _)| item).collect(),
            no.into_iter().map(|(item, _)| item).collect(),
        )
    })
}

/// The items sorted by a key computed by an asynq function (stable: equal keys keep order).
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, tools, Runtime};
///
/// #[asynq]
/// fn score(name: &'static str) -> usize {
///     name.len()
/// }
///
/// let sorted = Runtime::new().run(tools::sort_by_key(vec!["ccc", "a", "bb"], |&n| score(n))).unwrap();
/// assert_eq!(sorted, ["a", "bb", "ccc"]);
/// ```
pub fn sort_by_key<T, K, F, Y>(items: Vec<T>, key: F) -> Task<impl Future<Output = Vec<T>>>
where
    F: FnMut(&T) -> Y,
    Y: Yieldable<Output = K>,
    K: Ord,
{
    let keys: Vec<Y> = items.iter().map(key).collect();
    Task::__new(&"asynq_core::tools::sort_by_key", async move {
        let keys = keys.into_future().await;
        let mut pairs: Vec<(K, T)> = keys.into_iter().zip(items).collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        pairs.into_iter().map(|(_, item)| item).collect()
    })
}

/// [`sort_by_key`] with a fallible key: the first error (in item order) fails the whole.
pub fn try_sort_by_key<T, K, E, F, Y>(
    items: Vec<T>,
    key: F,
) -> Task<impl Future<Output = Result<Vec<T>, E>>>
where
    F: FnMut(&T) -> Y,
    Y: Yieldable<Output = Result<K, E>>,
    K: Ord,
{
    let keys: Vec<Y> = items.iter().map(key).collect();
    Task::__new(&"asynq_core::tools::try_sort_by_key", async move {
        let keys = keys
            .into_future()
            .await
            .into_iter()
            .collect::<Result<Vec<K>, E>>()?;
        let mut pairs: Vec<(K, T)> = keys.into_iter().zip(items).collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(pairs.into_iter().map(|(_, item)| item).collect())
    })
}

/// The item with the largest key (the last of equals, as `Iterator::max_by_key`); `None` when
/// empty.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, tools, Runtime};
///
/// #[asynq]
/// fn len(s: &'static str) -> usize {
///     s.len()
/// }
///
/// let rt = Runtime::new();
/// assert_eq!(rt.run(tools::max_by_key(vec!["a", "ccc", "bb"], |&s| len(s))).unwrap(), Some("ccc"));
/// assert_eq!(rt.run(tools::min_by_key(vec!["a", "ccc", "bb"], |&s| len(s))).unwrap(), Some("a"));
/// ```
pub fn max_by_key<T, K, F, Y>(items: Vec<T>, key: F) -> Task<impl Future<Output = Option<T>>>
where
    F: FnMut(&T) -> Y,
    Y: Yieldable<Output = K>,
    K: Ord,
{
    let keys: Vec<Y> = items.iter().map(key).collect();
    Task::__new(&"asynq_core::tools::max_by_key", async move {
        let keys = keys.into_future().await;
        keys.into_iter()
            .zip(items)
            .max_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, item)| item)
    })
}

/// The item with the smallest key (the first of equals, as `Iterator::min_by_key`); `None`
/// when empty.
pub fn min_by_key<T, K, F, Y>(items: Vec<T>, key: F) -> Task<impl Future<Output = Option<T>>>
where
    F: FnMut(&T) -> Y,
    Y: Yieldable<Output = K>,
    K: Ord,
{
    let keys: Vec<Y> = items.iter().map(key).collect();
    Task::__new(&"asynq_core::tools::min_by_key", async move {
        let keys = keys.into_future().await;
        keys.into_iter()
            .zip(items)
            .min_by(|a, b| a.0.cmp(&b.0))
            .map(|(_, item)| item)
    })
}

/// Run the task that `make` builds, again while it fails, `attempts` times in all (at least
/// once); the last error is returned. Only this task is re-run, and keys whose fetch failed
/// are fetched again (failures are not cached). A failed execution of an `#[asynq(memo)]`
/// function is not kept either (see [`MemoFailure`](crate::MemoFailure)), so `retry` over a
/// memoized function runs its body again.
///
/// # Examples
///
/// ```
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use asynq_core::{asynq, tools, Runtime};
///
/// static TRIES: AtomicU32 = AtomicU32::new(0);
///
/// #[asynq]
/// fn flaky() -> Result<u32, String> {
///     match TRIES.fetch_add(1, Ordering::Relaxed) {
///         0 | 1 => Err("try again".to_owned()),
///         n => Ok(n),
///     }
/// }
///
/// assert_eq!(Runtime::new().run(tools::retry(3, flaky)).unwrap(), 2);
/// ```
pub fn retry<T, E, F, Y>(attempts: usize, mut make: F) -> Task<impl Future<Output = Result<T, E>>>
where
    F: FnMut() -> Y,
    Y: Yieldable<Output = Result<T, E>>,
{
    Task::__new(&"asynq_core::tools::retry", async move {
        let mut left = attempts.max(1);
        loop {
            left -= 1;
            match make().into_future().await {
                Err(_) if left > 0 => continue,
                result => return result,
            }
        }
    })
}

/// Await every member of a collection of fallible yieldables, then give all their values or
/// the first error in order.
///
/// Like every awaited collection, all members run to completion (and their fetches are
/// batched together) before the result is known; only the *result* short-circuits. Implemented
/// for tuples of up to 12 and for `Vec`s whose members output `Result<_, E>` with one `E`.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, try_all, Runtime};
///
/// #[asynq]
/// fn half(x: u32) -> Result<u32, String> {
///     if x % 2 == 0 { Ok(x / 2) } else { Err(format!("{x} is odd")) }
/// }
///
/// #[asynq]
/// fn page() -> Result<u32, String> {
///     let (a, b) = try_all((half(4), half(8))).await?;
///     Ok(a + b)
/// }
///
/// let rt = Runtime::new();
/// assert_eq!(rt.run(page()).unwrap(), 6);
/// assert_eq!(rt.run(try_all((half(1), half(2), half(3)))).unwrap_err(), "1 is odd");
/// ```
pub fn try_all<Y: TryJoin>(members: Y) -> TryAll<Y> {
    TryAll(members)
}

/// A collection whose members output `Result`s with one error type; see [`try_all`].
pub trait TryJoin: Yieldable {
    /// The values of all members, in the collection's shape.
    type Ok;
    /// The members' error type.
    type Error;
    /// The values, or the first error in order.
    fn transpose(output: Self::Output) -> Result<Self::Ok, Self::Error>;
}

impl<Y, T, E> TryJoin for Vec<Y>
where
    Y: Yieldable<Output = Result<T, E>>,
{
    type Ok = Vec<T>;
    type Error = E;
    fn transpose(output: Vec<Result<T, E>>) -> Result<Vec<T>, E> {
        output.into_iter().collect()
    }
}

macro_rules! tuple_try_join {
    ($(($($Y:ident $T:ident $idx:tt),+)),+ $(,)?) => {$(
        impl<E, $($Y, $T),+> TryJoin for ($($Y,)+)
        where
            $($Y: Yieldable<Output = Result<$T, E>>,)+
        {
            type Ok = ($($T,)+);
            type Error = E;
            fn transpose(output: Self::Output) -> Result<Self::Ok, E> {
                Ok(($(output.$idx?,)+))
            }
        }
    )+};
}

tuple_try_join!(
    (A TA 0),
    (A TA 0, B TB 1),
    (A TA 0, B TB 1, C TC 2),
    (A TA 0, B TB 1, C TC 2, D TD 3),
    (A TA 0, B TB 1, C TC 2, D TD 3, F TF 4),
    (A TA 0, B TB 1, C TC 2, D TD 3, F TF 4, G TG 5),
    (A TA 0, B TB 1, C TC 2, D TD 3, F TF 4, G TG 5, H TH 6),
    (A TA 0, B TB 1, C TC 2, D TD 3, F TF 4, G TG 5, H TH 6, I TI 7),
    (A TA 0, B TB 1, C TC 2, D TD 3, F TF 4, G TG 5, H TH 6, I TI 7, J TJ 8),
    (A TA 0, B TB 1, C TC 2, D TD 3, F TF 4, G TG 5, H TH 6, I TI 7, J TJ 8, K TK 9),
    (A TA 0, B TB 1, C TC 2, D TD 3, F TF 4, G TG 5, H TH 6, I TI 7, J TJ 8, K TK 9, L TL 10),
    (A TA 0, B TB 1, C TC 2, D TD 3, F TF 4, G TG 5, H TH 6, I TI 7, J TJ 8, K TK 9, L TL 10, M TM 11),
);

/// Awaitable result of [`try_all`].
#[must_use = "try_all does nothing unless awaited"]
pub struct TryAll<Y>(Y);

impl<Y> fmt::Debug for TryAll<Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TryAll")
    }
}

impl<Y: TryJoin> Yieldable for TryAll<Y> {
    type Output = Result<Y::Ok, Y::Error>;
    type Future = TryAllFuture<Y>;
    fn into_future(self) -> Self::Future {
        TryAllFuture {
            inner: self.0.into_future(),
        }
    }
}

pin_project_lite::pin_project! {
    /// The future of [`try_all`].
    #[must_use = "futures do nothing unless polled"]
    pub struct TryAllFuture<Y: Yieldable> {
        #[pin]
        inner: Y::Future,
    }
}

impl<Y: Yieldable> fmt::Debug for TryAllFuture<Y> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TryAllFuture")
    }
}

impl<Y: TryJoin> Future for TryAllFuture<Y> {
    type Output = Result<Y::Ok, Y::Error>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().inner.poll(cx).map(Y::transpose)
    }
}
