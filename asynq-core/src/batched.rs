//! What the `#[asynq(batch)]` expansion calls at run time.

use crate::yieldable::{Ready, ready};

/// The tasks of a `for` loop's iterations, built in one pass, with what each iteration's
/// body needs afterwards.
///
/// `#[asynq(batch)]` turns `for pat in iter { .. x.await .. }`, whose iterations each await an
/// `x` that no iteration changes, into
/// `let (results, kept) = batch_loop(iter, |pat| (x, (names,))).await;` followed by a loop
/// over `kept` and `results` that runs the bodies in order. The pair is yieldable: the tasks
/// are awaited together, and what each body needs passes through as a ready value. As a
/// call, not a loop, it is an operand that the expansion may await together with others.
pub fn batch_loop<I, T, K>(
    iter: I,
    mut each: impl FnMut(I::Item) -> (T, K),
) -> (Vec<T>, Ready<Vec<K>>)
where
    I: IntoIterator,
{
    let iter = iter.into_iter();
    let (hint, _) = iter.size_hint();
    let mut tasks = Vec::with_capacity(hint);
    let mut kept = Vec::with_capacity(hint);
    for item in iter {
        let (task, keep) = each(item);
        tasks.push(task);
        kept.push(keep);
    }
    (tasks, ready(kept))
}
