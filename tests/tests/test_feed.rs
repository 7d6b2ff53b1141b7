//! FEED-1 (`docs/feed1.md`) at all four reference sizes: calls, keys, rounds, bytes.

use asynq_core::Runtime;
use asynq_examples::feed::{self, Params, fnv1a64};
use asynq_examples::memory::MemoryStore;

fn check(questions: u64, answers: u64, keys: usize, out_len: usize, fnv: u64) {
    let params = Params { questions, answers };
    let rt = Runtime::new().with_source(feed::memory_store(params));
    let page = rt
        .run(feed::feed::<MemoryStore>(params))
        .expect("the page renders");
    let store = rt.source::<MemoryStore>().unwrap();
    let stats = rt.last_stats();
    assert_eq!(store.calls(), 3, "store calls at Q={questions} A={answers}");
    assert_eq!(store.keys(), keys, "keys sent at Q={questions} A={answers}");
    assert_eq!(stats.rounds, 3);
    assert_eq!(
        (stats.calls(), stats.keys()),
        (3, keys),
        "the run's own stats agree with the store"
    );
    assert_eq!(page.len(), out_len);
    assert_eq!(
        fnv1a64(page.as_bytes()),
        fnv,
        "fnv at Q={questions} A={answers}"
    );
    // The hand-primed baseline renders the same bytes in the same calls.
    let store = feed::memory_store(params);
    let primed = feed::hand_primed(&store, params);
    assert_eq!(primed, page);
    assert_eq!((store.calls(), store.keys()), (3, keys));
}

#[test]
fn feed_q10_a5() {
    check(10, 5, 195, 2152, 0xac26a36b50baee7b);
}

#[test]
fn feed_q100_a10() {
    check(100, 10, 3400, 39740, 0x56dc3f446f2c5f61);
}

#[test]
fn feed_q1000_a10() {
    check(1000, 10, 34000, 420354, 0xf4d5a1d76cc5dc31);
}

#[test]
fn feed_q10000_a10() {
    check(10000, 10, 340000, 4433496, 0x943445ddfa0e7305);
}

#[test]
fn feed_without_answers_takes_two_rounds() {
    let params = Params {
        questions: 3,
        answers: 0,
    };
    let rt = Runtime::new().with_source(feed::memory_store(params));
    let page = rt.run(feed::feed::<MemoryStore>(params)).unwrap();
    assert!(
        page.starts_with("<q><h>Question 0</h><by>User 3<img /img/3.png></by></q>"),
        "{page}"
    );
    assert_eq!(rt.last_stats().rounds, 2);
}

#[test]
fn naive_renders_the_same_page_with_one_call_per_key() {
    let params = Params {
        questions: 10,
        answers: 5,
    };
    let store = feed::memory_store(params);
    let page = feed::naive(&store, params);
    assert_eq!(
        (page.len(), fnv1a64(page.as_bytes())),
        (2152, 0xac26a36b50baee7b)
    );
    assert_eq!(store.calls(), store.keys(), "one key per call");
    assert!(store.calls() > 195, "the naive page asks shared keys again");
}
