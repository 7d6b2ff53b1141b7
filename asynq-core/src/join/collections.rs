//! What each collection yields when awaited: [`Yieldable`] for `Vec`, arrays, `Option`, maps
//! and tuples, and the futures of `Option` and maps.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::hash::{BuildHasher, Hash};
use std::pin::Pin;
use std::task::{Context, Poll};

use super::tuple::{
    Join1, Join2, Join3, Join4, Join5, Join6, Join7, Join8, Join9, Join10, Join11, Join12,
};
use super::{JoinAll, JoinArray};
use crate::yieldable::Yieldable;

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
