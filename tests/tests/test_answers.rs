//! Has-many and has-one sources: every asked key answered from a query's rows
//! (`asynq_core::answers`), and what a source that leaves keys out is told.

use std::sync::Mutex;

use asynq_core::{DataSource, Error, Runtime, answers, asynq};

/// Comments by post id: posts 1 and 3 have comments, post 2 has none.
const COMMENTS: [(u64, &str); 3] = [(3, "nice"), (1, "first!"), (1, "+1")];

/// Answers with the helper: every asked post, an empty `Vec` for post 2.
struct CommentsByPost {
    calls: Mutex<Vec<Vec<u64>>>,
}

impl DataSource for CommentsByPost {
    type Key = u64;
    type Value = Vec<&'static str>;
    type Error = std::convert::Infallible;

    async fn fetch(&self, posts: &[u64]) -> Result<Vec<(u64, Vec<&'static str>)>, Self::Error> {
        self.calls.lock().unwrap().push(posts.to_vec());
        // As `SELECT post_id, body FROM comments WHERE post_id IN (..) ORDER BY id` returns.
        let rows = COMMENTS
            .into_iter()
            .filter(|(post, _)| posts.contains(post));
        Ok(answers::grouped(posts, rows))
    }
}

/// Answers the rows as they come, one pair per row: what the helper is for.
struct RowsAsTheyCome;

impl DataSource for RowsAsTheyCome {
    type Key = u64;
    type Value = &'static str;
    type Error = std::convert::Infallible;

    async fn fetch(&self, posts: &[u64]) -> Result<Vec<(u64, &'static str)>, Self::Error> {
        Ok(COMMENTS
            .into_iter()
            .filter(|(post, _)| posts.contains(post))
            .collect())
    }
}

/// Authors by id, where author 8 has left: `None`.
struct Authors;

impl DataSource for Authors {
    type Key = u64;
    type Value = Option<String>;
    type Error = std::convert::Infallible;

    async fn fetch(&self, ids: &[u64]) -> Result<Vec<(u64, Option<String>)>, Self::Error> {
        let rows = ids
            .iter()
            .filter(|&&id| id != 8)
            .map(|&id| (id, format!("author {id}")));
        Ok(answers::optional(ids, rows))
    }
}

#[asynq]
fn post(id: u64) -> Result<String, Error> {
    let (comments, author) = (CommentsByPost::load(id), Authors::load(id + 6)).await;
    let author = author?.unwrap_or_else(|| "a former member".to_owned());
    Ok(format!("post {id} by {author}: {:?}", comments?))
}

#[asynq]
fn page(ids: Vec<u64>) -> Result<Vec<String>, Error> {
    ids.into_iter()
        .map(post)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

#[test]
fn a_post_without_comments_gets_an_empty_list_not_a_failed_page() {
    let rt = Runtime::new()
        .with_source(CommentsByPost {
            calls: Mutex::new(Vec::new()),
        })
        .with_source(Authors);
    let posts = rt.run(page(vec![1, 2, 3])).unwrap();
    assert_eq!(
        posts,
        [
            r#"post 1 by author 7: ["first!", "+1"]"#,
            "post 2 by a former member: []",
            r#"post 3 by author 9: ["nice"]"#,
        ]
    );
    let calls = rt
        .source::<CommentsByPost>()
        .unwrap()
        .calls
        .lock()
        .unwrap()
        .clone();
    assert_eq!(calls.len(), 1, "one call for the three posts: {calls:?}");
    assert_eq!(rt.last_stats().source("CommentsByPost").unwrap().failed, 0);
}

#[asynq]
fn first_comment(id: u64) -> Result<&'static str, Error> {
    RowsAsTheyCome::load(id).await
}

#[test]
fn a_key_left_out_fails_with_a_message_that_says_what_to_answer() {
    let rt = Runtime::new().with_source(RowsAsTheyCome);
    let (one, two) = rt.run((first_comment(1), first_comment(2))).unwrap();
    assert_eq!(one.unwrap(), "first!");
    let err = two.unwrap_err();
    assert!(
        matches!(&err, Error::MissingKey { key, .. } if key == "2"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "source `RowsAsTheyCome` did not answer key 2 (a source answers every key it is asked \
         for: `None` for an absent row with `Value = Option<Row>`, an empty `Vec` for a key \
         without rows; see `asynq_core::answers`)"
    );
}
