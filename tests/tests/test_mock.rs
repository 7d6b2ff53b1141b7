//! Test doubles: a source replaced by a map or a function, with its calls recorded.

mod common;

use std::collections::HashMap;

use asynq_core::{DataSource, Error, Mock, Runtime, asynq};
use common::Recorder;

#[asynq]
fn sum(keys: Vec<u64>) -> Result<u64, Error> {
    let values = Recorder::load_many(keys).await;
    values.into_iter().sum()
}

#[test]
fn a_mock_from_a_map_answers_in_place_of_the_source() {
    let rt = Runtime::new().with_mock::<Recorder>(Mock::from_map([(1, 5), (2, 6)]));
    assert_eq!(rt.run(sum(vec![1, 2, 1])).unwrap(), 16);
    let mock = rt.mock::<Recorder>().unwrap();
    assert_eq!(
        mock.calls(),
        [vec![1, 2]],
        "deduplicated and batched as for the real source"
    );
    assert!(rt.source::<Recorder>().is_none());
    let err = rt.run(sum(vec![3])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "source `mock Recorder` did not answer key 3 (a source answers every key it is asked for: `None` for an absent row with `Value = Option<Row>`, an empty `Vec` for a key without rows; see `asynq_core::answers`)"
    );
    assert_eq!(mock.keys(), [1, 2, 3]);
    mock.reset();
    assert!(mock.calls().is_empty());
}

#[test]
fn a_mock_replaces_a_registered_source_and_keeps_batch_limits() {
    let rt = Runtime::new()
        .with_source(Recorder::new("real"))
        .with_mock::<Recorder>(
            Mock::from_fn(|&k| (k % 2 == 0).then_some(k)).with_max_batch_size(2),
        );
    let out = rt.run(Recorder::load_many(0..5)).unwrap();
    let ok: Vec<u64> = out
        .iter()
        .filter_map(|r| r.as_ref().ok().copied())
        .collect();
    assert_eq!(ok, [0, 2, 4]);
    assert_eq!(
        rt.mock::<Recorder>().unwrap().calls(),
        [vec![0, 1], vec![2, 3], vec![4]]
    );
    assert_eq!(rt.last_stats().calls(), 3);
}

#[test]
fn a_mock_from_a_batch_function_can_fail_whole_calls() {
    let mock = Mock::<Recorder>::from_batch_fn(|keys| {
        if keys.contains(&13) {
            Err("unlucky".to_owned())
        } else {
            Ok(keys.iter().map(|&k| (k, k)).collect())
        }
    });
    let rt = Runtime::new().with_mock(mock);
    assert_eq!(rt.run(sum(vec![1, 2])).unwrap(), 3);
    let err = rt.run(sum(vec![1, 13])).unwrap_err();
    assert!(err.to_string().ends_with("unlucky"), "{err}");
}

/// A source whose real `fetch` must never run in these tests.
struct Database;

impl DataSource for Database {
    type Key = String;
    type Value = HashMap<String, String>;
    type Error = std::io::Error;

    async fn fetch(&self, _: &[String]) -> Result<Vec<(String, Self::Value)>, Self::Error> {
        panic!("the real database was called")
    }
}

#[asynq]
fn title(id: String) -> Result<String, Error> {
    let row = Database::load(id).await?;
    Ok(row.get("title").cloned().unwrap_or_default())
}

#[test]
fn values_need_not_be_sync_or_simple() {
    let row = HashMap::from([("title".to_owned(), "Hello".to_owned())]);
    let rt = Runtime::new().with_mock::<Database>(Mock::from_map([("a".to_owned(), row)]));
    assert_eq!(rt.run(title("a".into())).unwrap(), "Hello");
    assert_eq!(rt.mock::<Database>().unwrap().keys(), ["a"]);
}
