//! An application's own errors next to asynq's: the function's own error type (as the
//! examples do), and `Error::other` for an occasional one.

mod common;

use asynq_core::{DataSource, Error, Runtime, asynq};
use asynq_examples::feed::{self, FeedError, Params};
use asynq_examples::memory::MemoryStore;
use common::chain;

#[test]
fn a_value_that_is_not_an_id_is_the_pages_own_error_not_a_missing_key() {
    let p = Params {
        questions: 2,
        answers: 2,
    };
    let mut data = feed::dataset(p);
    for (key, value) in &mut data {
        if key == "q:1:answers" {
            *value = "2,x3".to_owned();
        }
    }
    let rt = Runtime::new().with_source(MemoryStore::from_pairs(data));
    let err = rt.run(feed::feed::<MemoryStore>(p)).unwrap_err();
    match &err {
        FeedError::NotAnId { key, value, error } => {
            assert_eq!((key.as_str(), value.as_str()), ("q:1:answers", "x3"));
            assert_eq!(*error, "x3".parse::<u64>().unwrap_err());
        }
        other => panic!("expected NotAnId, got {other:?}"),
    }
    assert_eq!(
        chain(&err).join(": "),
        "`q:1:answers` holds \"x3\", which is not an id: invalid digit found in string"
    );
}

#[test]
fn a_failed_fetch_of_the_page_is_its_fetch_error_unchanged() {
    let p = Params {
        questions: 1,
        answers: 1,
    };
    let mut data = feed::dataset(p);
    data.retain(|(key, _)| key != "a:0:text");
    let rt = Runtime::new().with_source(MemoryStore::from_pairs(data));
    let err = rt.run(feed::feed::<MemoryStore>(p)).unwrap_err();
    let FeedError::Fetch(fetch) = &err else {
        panic!("expected a fetch error, got {err:?}")
    };
    assert!(
        matches!(fetch, Error::MissingKey { key, .. } if key == "\"a:0:text\""),
        "{fetch:?}"
    );
    assert_eq!(err.to_string(), fetch.to_string());
}

struct Settings;

impl DataSource for Settings {
    type Key = &'static str;
    type Value = String;
    type Error = std::convert::Infallible;

    async fn fetch(
        &self,
        keys: &[&'static str],
    ) -> Result<Vec<(&'static str, String)>, Self::Error> {
        Ok(keys
            .iter()
            .map(|&k| (k, if k == "page_size" { "ten" } else { "10" }.to_owned()))
            .collect())
    }
}

#[asynq]
fn setting(name: &'static str) -> Result<u32, Error> {
    let text = Settings::load(name).await?;
    let value = text.parse::<u32>().map_err(Error::other)?;
    Ok(value)
}

#[test]
fn an_occasional_failure_of_ones_own_is_an_asynq_error_through_error_other() {
    let rt = Runtime::new().with_source(Settings);
    assert_eq!(rt.run(setting("max_items")).unwrap(), 10);
    let err = rt.run(setting("page_size")).unwrap_err();
    let Error::Other { error } = &err else {
        panic!("expected Other, got {err:?}")
    };
    assert!(error.downcast_ref::<std::num::ParseIntError>().is_some());
    assert_eq!(chain(&err), ["invalid digit found in string"]);
}
