//! Building the answer of a [`DataSource::fetch`](crate::DataSource::fetch) from the rows a
//! store returned, so that every asked key is answered.
//!
//! A source must answer every key it is asked for: a key left out fails the tasks that wait
//! on it with [`Error::MissingKey`](crate::Error::MissingKey). A store, though, returns rows,
//! and a key without rows returns none. The two helpers here turn rows into a complete answer:
//!
//! - [`grouped`]: a *has-many* source (the comments of each post, the answers of each
//!   question): `Value = Vec<Row>`, an empty `Vec` for a key without rows.
//! - [`optional`]: a *has-one* source whose row may be absent (a user by id):
//!   `Value = Option<Row>`, `None` for a key without a row.
//!
//! Both answer the keys in the order asked, keep the rows of each key in the order the store
//! returned them, and drop rows of keys that were not asked for. They cost one hash table of
//! the asked keys per call.
//!
//! # Examples
//!
//! A has-many source: comments by post id, where post 2 has no comments.
//!
//! ```
//! use asynq_core::{answers, asynq, DataSource, Error, Runtime};
//!
//! struct CommentsByPost; // a connection pool, in a real application
//! impl DataSource for CommentsByPost {
//!     type Key = u64;
//!     type Value = Vec<String>;
//!     type Error = std::io::Error;
//!     async fn fetch(&self, posts: &[u64]) -> Result<Vec<(u64, Vec<String>)>, Self::Error> {
//!         // SELECT post_id, body FROM comments WHERE post_id IN (posts) ORDER BY id
//!         let rows = vec![(1, "first!".to_owned()), (3, "nice".to_owned()), (1, "+1".to_owned())];
//!         Ok(answers::grouped(posts, rows))
//!     }
//! }
//!
//! #[asynq]
//! fn comment_counts(posts: Vec<u64>) -> Result<Vec<usize>, Error> {
//!     let comments = CommentsByPost::load_many(posts).await;
//!     comments.into_iter().map(|c| Ok(c?.len())).collect()
//! }
//!
//! let rt = Runtime::new().with_source(CommentsByPost);
//! assert_eq!(rt.run(comment_counts(vec![1, 2, 3]))?, [2, 0, 1]);
//! # Ok::<(), Error>(())
//! ```

use std::collections::HashMap;
use std::hash::Hash;

/// The answer of a has-many source: every key of `keys` with its rows, in the order of
/// `keys`; a key without rows gets an empty `Vec`.
///
/// `rows` are `(key, row)` pairs in any order, as a query returns them; the rows of one key
/// keep their order. Rows whose key is not in `keys` are dropped. When `keys` holds a key
/// twice (the runtime never asks so), its rows go to the first.
///
/// # Examples
///
/// ```
/// use asynq_core::answers;
///
/// let rows = [(3, 'c'), (1, 'a'), (9, 'x'), (1, 'b')];
/// assert_eq!(
///     answers::grouped(&[1, 2, 3], rows),
///     [(1, vec!['a', 'b']), (2, vec![]), (3, vec!['c'])]
/// );
/// ```
pub fn grouped<K, V>(keys: &[K], rows: impl IntoIterator<Item = (K, V)>) -> Vec<(K, Vec<V>)>
where
    K: Hash + Eq + Clone,
{
    let index = index_of(keys);
    let mut answer: Vec<(K, Vec<V>)> = keys.iter().map(|k| (k.clone(), Vec::new())).collect();
    for (key, row) in rows {
        if let Some(&i) = index.get(&key) {
            answer[i].1.push(row);
        }
    }
    answer
}

/// The answer of a source whose row may be absent: every key of `keys` with its row, in the
/// order of `keys`; a key without a row gets `None`.
///
/// `rows` are `(key, row)` pairs in any order. When a key has several rows the first wins,
/// as it does in a source's answer; rows whose key is not in `keys` are dropped.
///
/// # Examples
///
/// ```
/// use asynq_core::answers;
///
/// let rows = [(3, "carol"), (1, "ada"), (1, "again")];
/// assert_eq!(
///     answers::optional(&[1, 2, 3], rows),
///     [(1, Some("ada")), (2, None), (3, Some("carol"))]
/// );
/// ```
pub fn optional<K, V>(keys: &[K], rows: impl IntoIterator<Item = (K, V)>) -> Vec<(K, Option<V>)>
where
    K: Hash + Eq + Clone,
{
    let index = index_of(keys);
    let mut answer: Vec<(K, Option<V>)> = keys.iter().map(|k| (k.clone(), None)).collect();
    for (key, row) in rows {
        if let Some(&i) = index.get(&key) {
            answer[i].1.get_or_insert(row);
        }
    }
    answer
}

/// The position of each key in `keys` (the first, for a key given twice).
///
/// Hashed with foldhash (seeded per process), as the run's key index is: see `KeyIndex` in
/// `source_state/keys.rs` for the trade-off against SipHash.
fn index_of<K: Hash + Eq>(keys: &[K]) -> HashMap<&K, usize, foldhash::fast::RandomState> {
    let mut index = HashMap::with_capacity_and_hasher(keys.len(), Default::default());
    for (i, key) in keys.iter().enumerate() {
        index.entry(key).or_insert(i);
    }
    index
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_answered_once_in_order() {
        let keys = ["b", "a", "b", "c"];
        let rows = [("a", 1), ("b", 2), ("z", 3), ("b", 4)];
        assert_eq!(
            grouped(&keys, rows),
            [
                ("b", vec![2, 4]),
                ("a", vec![1]),
                ("b", vec![]),
                ("c", vec![])
            ]
        );
        assert_eq!(
            optional(&keys, rows),
            [("b", Some(2)), ("a", Some(1)), ("b", None), ("c", None)]
        );
    }

    #[test]
    fn no_keys_no_answer() {
        let none: [u8; 0] = [];
        assert!(grouped(&none, [(1u8, ())]).is_empty());
        assert!(optional(&none, [(1u8, ())]).is_empty());
    }
}
