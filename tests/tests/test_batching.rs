//! The execution model: rounds, coalescing, deduplication, the run's cache, batch sizes.

mod common;

use std::collections::{BTreeMap, HashMap};

use asynq_core::{DataSource, Error, Runtime, asynq, ready};
use common::{Other, Recorder};

#[asynq]
fn get(k: u64) -> Result<u64, Error> {
    Recorder::load(k).await
}

/// A chain of `depth` dependent fetches: each key is the previous value + 1.
#[asynq]
fn chain(start: u64, depth: u32) -> Result<u64, Error> {
    let mut k = start;
    for _ in 0..depth {
        k = Recorder::load(k).await? + 1;
    }
    Ok(k)
}

fn rt() -> Runtime {
    Runtime::new().with_source(Recorder::new("rec"))
}

fn calls(rt: &Runtime) -> Vec<Vec<u64>> {
    rt.source::<Recorder>().unwrap().calls()
}

#[test]
fn siblings_coalesce_into_one_call() {
    let rt = rt();
    let (a, b, c) = rt.run((get(1), get(2), get(3))).unwrap();
    assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (10, 20, 30));
    assert_eq!(calls(&rt), vec![vec![1, 2, 3]]);
    let stats = rt.last_stats();
    assert_eq!(
        (stats.rounds, stats.calls(), stats.keys(), stats.tasks),
        (1, 1, 3, 3)
    );
}

#[test]
fn a_thousand_sibling_tasks_make_one_call() {
    let rt = rt();
    let out = rt.run((0..1000).map(get).collect::<Vec<_>>()).unwrap();
    assert_eq!(out.len(), 1000);
    assert!(
        out.iter()
            .enumerate()
            .all(|(i, v)| *v.as_ref().unwrap() == 10 * i as u64)
    );
    let calls = calls(&rt);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0], (0..1000).collect::<Vec<_>>());
}

#[test]
fn a_chain_of_depth_d_takes_d_rounds() {
    for depth in [1, 2, 5, 12] {
        let rt = rt();
        // 0 -> 1 -> 11 -> 111 ...
        let end = rt.run(chain(0, depth)).unwrap();
        let mut k = 0;
        for _ in 0..depth {
            k = k * 10 + 1;
        }
        assert_eq!(end, k);
        let stats = rt.last_stats();
        assert_eq!(
            (stats.rounds, stats.calls()),
            (depth as usize, depth as usize),
            "depth {depth}"
        );
    }
}

#[test]
fn rounds_are_the_longest_chain_not_the_sum() {
    let rt = rt();
    // Chains of depth 3, 1 and 2 side by side: 3 rounds, and each round one call.
    let (a, b, c) = rt
        .run((chain(100, 3), chain(200, 1), chain(300, 2)))
        .unwrap();
    assert_eq!((a.unwrap(), b.unwrap(), c.unwrap()), (100111, 2001, 30011));
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls()), (3, 3));
    assert_eq!(
        calls(&rt),
        vec![vec![100, 200, 300], vec![1001, 3001], vec![10011]]
    );
}

#[asynq]
fn left(k: u64) -> Result<u64, Error> {
    Ok(get(k).await? + 1)
}

#[asynq]
fn right(k: u64) -> Result<u64, Error> {
    Ok(get(k).await? + 2)
}

#[asynq]
fn diamond(k: u64) -> Result<u64, Error> {
    let (l, r) = (left(k), right(k)).await;
    Ok(l? * r?)
}

#[test]
fn a_diamond_fetches_its_shared_key_once() {
    let rt = rt();
    assert_eq!(rt.run(diamond(4)).unwrap(), 41 * 42);
    assert_eq!(calls(&rt), vec![vec![4]]);
    let s = rt.last_stats();
    let rec = s.source("rec").unwrap();
    assert_eq!((rec.requested, rec.keys, rec.coalesced), (2, 1, 1));
}

#[test]
fn duplicate_keys_in_a_round_are_sent_once() {
    let rt = rt();
    let out = rt.run(Recorder::load_many([1, 1, 2, 1, 2])).unwrap();
    let out: Vec<u64> = out.into_iter().map(Result::unwrap).collect();
    assert_eq!(out, [10, 10, 20, 10, 20]);
    assert_eq!(calls(&rt), vec![vec![1, 2]]);
    assert_eq!(rt.last_stats().source("rec").unwrap().coalesced, 3);
}

#[asynq]
fn again(k: u64) -> Result<(u64, u64), Error> {
    let first = get(k).await?;
    // Round 2 asks k again (cached) and k + 1 (new): only k + 1 is sent.
    let (a, b) = (get(k), get(k + 1)).await;
    Ok((first + a?, b?))
}

#[test]
fn keys_fetched_earlier_in_the_run_are_not_sent_again() {
    let rt = rt();
    assert_eq!(rt.run(again(7)).unwrap(), (140, 80));
    assert_eq!(calls(&rt), vec![vec![7], vec![8]]);
    let stats = rt.last_stats();
    assert_eq!(stats.cache_hits(), 1);
    assert_eq!(stats.rounds, 2);
}

#[test]
fn each_run_has_its_own_cache() {
    let rt = rt();
    rt.run(get(1)).unwrap();
    rt.run(get(1)).unwrap();
    assert_eq!(calls(&rt), vec![vec![1], vec![1]]);
}

#[test]
fn max_batch_size_splits_a_round_into_chunks() {
    let rt = Runtime::new().with_source(Recorder::new("rec").max_batch(3));
    let out = rt.run(Recorder::load_many(0..10)).unwrap();
    assert_eq!(out.len(), 10);
    let mut calls = calls(&rt);
    calls.sort();
    assert_eq!(
        calls,
        vec![vec![0, 1, 2], vec![3, 4, 5], vec![6, 7, 8], vec![9]]
    );
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls(), stats.keys()), (1, 4, 10));
}

#[test]
fn a_zero_max_batch_size_is_taken_as_one() {
    let rt = Runtime::new().with_source(Recorder::new("rec").max_batch(0));
    rt.run(Recorder::load_many(0..3)).unwrap();
    assert_eq!(rt.last_stats().calls(), 3);
}

#[asynq]
fn two_sources(k: u64) -> Result<u64, Error> {
    let (a, b) = (Recorder::load(k), Other::load(k)).await;
    Ok(a? + b?)
}

#[test]
fn two_sources_are_called_once_each_per_round() {
    let rt = Runtime::new()
        .with_source(Recorder::new("rec"))
        .with_source(Other(Recorder::new("other")));
    let out = rt.run(vec![two_sources(1), two_sources(2)]).unwrap();
    assert_eq!(
        out.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
        [20, 40]
    );
    assert_eq!(rt.source::<Recorder>().unwrap().calls(), vec![vec![1, 2]]);
    assert_eq!(rt.source::<Other>().unwrap().0.calls(), vec![vec![1, 2]]);
    let stats = rt.last_stats();
    assert_eq!((stats.rounds, stats.calls()), (1, 2));
    let names: Vec<&str> = stats.sources.iter().map(|s| &*s.name).collect();
    assert_eq!(names, ["rec", "other"]);
}

#[asynq]
fn shapes() -> Result<u64, Error> {
    let map: HashMap<&str, _> = HashMap::from([("a", get(1)), ("b", get(2))]);
    let tree: BTreeMap<u8, _> = BTreeMap::from([(1, get(3)), (2, get(4))]);
    let (map, tree, arr, some, none, r) = (
        map,
        tree,
        [get(5), get(6)],
        Some(get(7)),
        None::<asynq_core::Load<Recorder>>,
        ready(8),
    )
        .await;
    assert!(none.is_none());
    let total = map["a"].clone()? + map["b"].clone()? + tree[&1].clone()? + tree[&2].clone()?;
    Ok(total + arr[0].clone()? + arr[1].clone()? + some.unwrap()? + r)
}

#[test]
fn every_collection_shape_batches_into_one_round() {
    let rt = rt();
    assert_eq!(
        rt.run(shapes()).unwrap(),
        10 * (1 + 2 + 3 + 4 + 5 + 6 + 7) + 8
    );
    assert_eq!(calls(&rt), vec![(1..=7).collect::<Vec<_>>()]);
}

/// A chain over `Other`, whose values are their keys: 0, 1, 2, ...
#[asynq]
fn other_chain(depth: u32) -> Result<u64, Error> {
    let mut k = 0;
    for _ in 0..depth {
        k = Other::load(k).await? + 1;
    }
    Ok(k)
}

#[asynq]
fn slow_chain(depth: u32) -> Result<u64, Error> {
    other_chain(depth).await
}

#[asynq]
fn waits_once(k: u64) -> Result<u64, Error> {
    get(k).await
}

#[test]
fn a_round_polls_only_the_tasks_it_woke() {
    // 10,000 tasks wait once in round 1; one chain goes on for 50 more rounds. Re-polling
    // every task each round would make about 500,000 polls; the run makes one per task start
    // and one per wake-up.
    let identity: common::Answer = |keys| Ok(keys.iter().map(|&k| (k, k)).collect());
    let rt = rt().with_source(Other(Recorder::new("other").answering(identity)));
    let waiting: Vec<_> = (0..10_000).map(|k| waits_once(1_000_000 + k)).collect();
    let (waited, end) = rt.run((waiting, slow_chain(50))).unwrap();
    assert_eq!(waited.len(), 10_000);
    assert_eq!(end.unwrap(), 50);
    let stats = rt.last_stats();
    assert_eq!(stats.rounds, 50);
    assert_eq!(stats.tasks, 10_000 * 2 + 2);
    // Each waiting task: 2 polls of itself and 2 of `get`. The chain: 51 polls of each of its
    // two nested tasks.
    assert_eq!(stats.polls, 10_000 * 4 + 2 * 51);
}

#[test]
fn awaiting_a_ready_value_does_not_suspend() {
    let rt = Runtime::new();
    #[asynq]
    fn f() -> u32 {
        ready(2).await + ready(3).await
    }
    assert_eq!(rt.run(f()).unwrap(), 5);
    assert_eq!(rt.last_stats().rounds, 0);
}
