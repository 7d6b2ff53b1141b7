//! From a query's rows to a source's answer: every row given to the key it belongs to, then
//! every asked key answered ([`asynq_core::answers`]).

use std::collections::{HashMap, HashSet};

use crate::error::{ErrorKind, SqlError};
use crate::key::{KeyKind, KeyMatch, KeyValue, SqlKey};
use crate::table::{KeyedRows, RowsOfKeys, Table};

/// The rows of a query as `(key, row)` pairs of the asked keys, by `T`'s
/// [`KEY_MATCH`](Table::KEY_MATCH).
///
/// A row that belongs to no asked key is an error ([`ErrorKind::UnexpectedKey`]) rather than a
/// row silently dropped: the key column compares in a way the table does not say (a
/// case-insensitive collation declared `Exact`, or one that ignores accents).
pub(crate) fn assign<T: Table>(
    asked: &[T::Key],
    rows: KeyedRows<T>,
) -> Result<RowsOfKeys<T>, SqlError> {
    if T::KEY_MATCH == KeyMatch::IgnoreCase && <T::Key as SqlKey>::KIND == KeyKind::Text {
        return assign_folded::<T>(asked, rows);
    }
    let exact: HashSet<&T::Key> = asked.iter().collect();
    let mut out = Vec::with_capacity(rows.len());
    for (value, row) in rows {
        match T::Key::from_value(value) {
            Some(key) if exact.contains(&key) => out.push((key, row)),
            Some(key) => return Err(unexpected::<T>(&key)),
            None => {
                return Err(SqlError::new(ErrorKind::UnexpectedKey, T::NAME, T::TABLE)
                    .with_detail("its key column holds a value out of the key type's range"));
            }
        }
    }
    Ok(out)
}

/// [`assign`] for text keys compared without case and trailing spaces: a row goes to every
/// asked key equal to its key so.
fn assign_folded<T: Table>(
    asked: &[T::Key],
    rows: KeyedRows<T>,
) -> Result<RowsOfKeys<T>, SqlError> {
    let mut by_fold: HashMap<String, Vec<&T::Key>> = HashMap::with_capacity(asked.len());
    for key in asked {
        if let KeyValue::Text(text) = key.to_value() {
            by_fold.entry(fold(&text)).or_default().push(key);
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for (value, row) in rows {
        let owners = match &value {
            KeyValue::Text(text) => by_fold.get(&fold(text)).map(Vec::as_slice),
            _ => None,
        };
        let Some((last, others)) = owners.and_then(<[_]>::split_last) else {
            return Err(with_key(
                SqlError::new(ErrorKind::UnexpectedKey, T::NAME, T::TABLE).with_detail(
                    "its key equals no key asked for, even without case and trailing \
                     spaces: the key column's collation ignores more (accents?); compare keys \
                     exactly",
                ),
                &value,
            ));
        };
        for key in others {
            out.push(((*key).clone(), row.clone()));
        }
        out.push(((*last).clone(), row));
    }
    Ok(out)
}

/// The error of a row whose key is none of the asked keys (compared exactly).
fn unexpected<T: Table>(key: &T::Key) -> SqlError {
    SqlError::new(ErrorKind::UnexpectedKey, T::NAME, T::TABLE)
        .with_keys(std::slice::from_ref(key))
        .with_detail(
            "its key equals no key asked for: if the key column's collation ignores case, \
             set the table's KEY_MATCH to KeyMatch::IgnoreCase",
        )
}

/// The error of a row of key `key` that its row type cannot read.
pub(crate) fn decode_error<T: Table>(key: &KeyValue) -> SqlError {
    with_key(SqlError::new(ErrorKind::Decode, T::NAME, T::TABLE), key)
}

/// `err` naming `key` as the key type would show it (`7`, `"a"`).
fn with_key(err: SqlError, key: &KeyValue) -> SqlError {
    match key {
        KeyValue::Int(v) => err.with_keys(&[v]),
        KeyValue::UInt(v) => err.with_keys(&[v]),
        KeyValue::Text(v) => err.with_keys(&[v]),
    }
}

/// Text without trailing spaces, in lower case.
fn fold(text: &str) -> String {
    text.trim_end_matches(' ').to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Names;
    impl Table for Names {
        type Key = String;
        type Row = u8;
        const NAME: &'static str = "names";
        const TABLE: &'static str = "names";
        const KEY: &'static str = "name";
        const COLUMNS: &'static [&'static str] = &["n"];
    }

    struct NamesIgnoringCase;
    impl Table for NamesIgnoringCase {
        type Key = String;
        type Row = u8;
        const NAME: &'static str = "names";
        const TABLE: &'static str = "names";
        const KEY: &'static str = "name";
        const COLUMNS: &'static [&'static str] = &["n"];
        const KEY_MATCH: KeyMatch = KeyMatch::IgnoreCase;
    }

    struct Ids;
    impl Table for Ids {
        type Key = i16;
        type Row = u8;
        const NAME: &'static str = "ids";
        const TABLE: &'static str = "ids";
        const KEY: &'static str = "id";
        const COLUMNS: &'static [&'static str] = &["n"];
        const KEY_MATCH: KeyMatch = KeyMatch::IgnoreCase; // no effect on integer keys
    }

    fn text(s: &str) -> KeyValue {
        KeyValue::Text(s.into())
    }

    fn strings(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn exact_keys() {
        let asked = strings(&["Bob", "ann"]);
        let got = assign::<Names>(&asked, vec![(text("ann"), 1), (text("Bob"), 2)]).unwrap();
        assert_eq!(got, [("ann".to_string(), 1), ("Bob".to_string(), 2)]);
        let err = assign::<Names>(&asked, vec![(text("BOB"), 3)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedKey);
        assert!(
            err.to_string().starts_with(
                "source `names` (table `names`): unexpected row for key \"BOB\": its key equals \
                 no key asked for: if the key column's collation ignores case, set the table's \
                 KEY_MATCH to KeyMatch::IgnoreCase"
            ),
            "{err}"
        );
    }

    #[test]
    fn keys_ignoring_case_get_every_row_the_server_matched() {
        let asked = strings(&["Bob", "ann", "bob ", "cy"]);
        let rows = vec![(text("ANN"), 1), (text("bob"), 2)];
        let got = assign::<NamesIgnoringCase>(&asked, rows).unwrap();
        assert_eq!(
            got,
            [
                ("ann".to_string(), 1),
                ("Bob".to_string(), 2),
                ("bob ".to_string(), 2)
            ]
        );
        let err = assign::<NamesIgnoringCase>(&strings(&["resume"]), vec![(text("résumé"), 1)])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedKey);
        assert!(
            err.to_string().starts_with(
                "source `names` (table `names`): unexpected row for key \"résumé\": its key"
            ),
            "{err}"
        );
    }

    #[test]
    fn integer_keys_compare_exactly() {
        let err = assign::<Ids>(&[1], vec![(KeyValue::Int(70_000), 1)]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::UnexpectedKey);
        let err = assign::<Ids>(&[1], vec![(KeyValue::Int(2), 1)]).unwrap_err();
        assert_eq!(err.keys(), ["2"]);
        assert_eq!(
            assign::<Ids>(&[1, 2], vec![(KeyValue::Int(2), 9)]).unwrap(),
            [(2, 9)]
        );
    }
}
