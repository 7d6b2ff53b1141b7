//! Unit tests of the per-run source state.

use super::*;
use crate::yieldable::Yieldable;

struct Doubles;
impl DataSource for Doubles {
    type Key = u64;
    type Value = u64;
    type Error = std::convert::Infallible;
    async fn fetch(&self, keys: &[u64]) -> Result<Vec<(u64, u64)>, Self::Error> {
        Ok(keys.iter().map(|&k| (k, 2 * k)).collect())
    }
}

/// Answers in reverse order, in chunks of 3, with an extra key and a duplicate.
struct Shuffled;
impl DataSource for Shuffled {
    type Key = String;
    type Value = usize;
    type Error = std::convert::Infallible;
    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, usize)>, Self::Error> {
        let mut answer: Vec<_> = keys.iter().map(|k| (k.clone(), k.len())).collect();
        answer.reverse();
        answer.push(("not asked".to_owned(), 0));
        answer.push((keys[0].clone(), 0)); // a second answer: the first wins
        Ok(answer)
    }
    fn max_batch_size(&self) -> Option<usize> {
        Some(3)
    }
}

#[test]
fn keys_answered_out_of_order_in_chunks_are_found_in_later_rounds() {
    fn keys(n: usize) -> Vec<String> {
        (1..=n).map(|i| "x".repeat(i)).collect()
    }
    fn values(v: Vec<Result<usize, Error>>) -> Vec<usize> {
        v.into_iter().map(Result::unwrap).collect()
    }
    // Round 1 asks for 7 keys (3 calls); round 2 for 9, of which 7 are cached.
    let task = || {
        crate::Task::__new(&"twice", async {
            let first = Shuffled::load_many(keys(7)).into_future().await;
            let second = Shuffled::load_many(keys(9)).into_future().await;
            (values(first), values(second))
        })
    };
    let rt = crate::Runtime::new().with_source(Shuffled);
    for _ in 0..2 {
        let (first, second) = rt.run(task()).unwrap();
        assert_eq!(first, (1..=7).collect::<Vec<_>>());
        assert_eq!(second, (1..=9).collect::<Vec<_>>());
        let stats = rt.last_stats();
        assert_eq!((stats.calls(), stats.keys(), stats.cache_hits()), (4, 9, 7));
    }
}

#[test]
fn cache_hits_in_a_join_make_no_nodes() {
    use crate::context::with_ctx;
    let live = || with_ctx(|run| run.nodes.live()).expect("inside the run");
    let page = crate::Task::__new(&"page", async move {
        let fetched = Doubles::load_many(0..100).into_future().await;
        assert!(fetched.iter().all(Result::is_ok));
        let before = live();
        // Each child hits the cache and finishes in its first poll: no node for any.
        let hits: Vec<_> = (0..100)
            .map(|k| {
                crate::Task::__new(&"hit", async move {
                    let value = Doubles::load(k).await.expect("cached");
                    (value, live())
                })
            })
            .collect();
        let hits = hits.into_future().await;
        (before, hits)
    });
    let rt = crate::Runtime::new().with_source(Doubles);
    let (before, hits) = rt.run(page).unwrap();
    for (k, (value, live)) in hits.into_iter().enumerate() {
        assert_eq!(value, 2 * k as u64);
        assert_eq!(live, before, "child {k} made a node for a cache hit");
    }
    assert_eq!(rt.last_stats().cache_hits(), 100);
}

#[test]
fn a_run_reuses_the_containers_of_the_last_but_none_of_its_answers() {
    let rt = crate::Runtime::new().with_source(Doubles);
    for n in [100, 10, 100] {
        let got = rt.run(Doubles::load_many(0..n)).unwrap();
        let got: Vec<u64> = got.into_iter().map(Result::unwrap).collect();
        assert_eq!(got, (0..n).map(|k| 2 * k).collect::<Vec<_>>());
        let stats = rt.last_stats();
        let figures = (stats.calls(), stats.keys(), stats.cache_hits());
        assert_eq!(figures, (1, n as usize, 0));
    }
}

#[test]
fn a_pending_slot_is_as_small_as_a_slot_of_a_word_sized_value() {
    // Slots are touched once per key by the request, the answer and the waiter's read: a
    // wide round reads and writes every one of them.
    assert!(size_of::<Slot<u64>>() <= 2 * size_of::<u64>());
}

#[test]
fn a_fetch_request_for_a_word_sized_key_is_two_words() {
    // A wide round streams every waiting task's future, this request inside it, twice.
    assert!(size_of::<crate::source::Load<Doubles>>() <= 2 * size_of::<u64>());
}
