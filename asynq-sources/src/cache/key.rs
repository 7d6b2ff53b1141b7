//! Cache keys: how a source's key becomes the key of its entry in a cache.
//!
//! A cache-aside source stores each key under `prefix` + the key's text with every byte that
//! a cache protocol cannot carry escaped ([`escape_into`]): memcached's text protocol ends a key
//! at a space and refuses control characters, so those bytes (and `%`, the escape itself) are
//! written as `%XX`. The escaping is one-to-one, so two keys never share an entry. A key whose
//! escaped form is longer than the cache allows (250 bytes on memcached) is not cached at all:
//! it is read from the origin every time, and counted.

use crate::key::{KeyValue, SqlKey};

/// A key that can name an entry in a cache: its text form, written by
/// [`write_cache_key`](CacheKey::write_cache_key).
///
/// Every [`SqlKey`] is one (integers as decimal, strings as themselves), so the keys of the
/// SQL sources and `String` keys need nothing more. Implement it for a key type of your own
/// that is not a `SqlKey`; two different keys must write different text.
///
/// # Examples
///
/// ```
/// use asynq_sources::cache::CacheKey;
///
/// #[derive(Clone, Debug, PartialEq, Eq, Hash)]
/// struct Pair(u32, u32);
/// impl CacheKey for Pair {
///     fn write_cache_key(&self, out: &mut String) {
///         use std::fmt::Write as _;
///         let _ = write!(out, "{}/{}", self.0, self.1);
///     }
/// }
///
/// let mut key = String::new();
/// Pair(1, 2).write_cache_key(&mut key);
/// assert_eq!(key, "1/2");
/// let mut key = String::new();
/// 42_i64.write_cache_key(&mut key);
/// assert_eq!(key, "42");
/// ```
pub trait CacheKey {
    /// Append this key's text form to `out`.
    fn write_cache_key(&self, out: &mut String);
}

impl<K: SqlKey> CacheKey for K {
    fn write_cache_key(&self, out: &mut String) {
        use std::fmt::Write as _;
        match self.to_value() {
            KeyValue::Int(v) => {
                let _ = write!(out, "{v}");
            }
            KeyValue::UInt(v) => {
                let _ = write!(out, "{v}");
            }
            KeyValue::Text(s) => out.push_str(&s),
        }
    }
}

/// Whether a cache protocol cannot carry `byte` in a key as it is: ASCII control characters,
/// space, DEL, and `%` (the escape).
fn needs_escape(byte: u8) -> bool {
    byte <= b' ' || byte == 0x7f || byte == b'%'
}

/// Append `text` to `out` with every byte a cache protocol cannot carry in a key (control
/// characters, space, DEL) and `%` itself written as `%XX` (upper-case hex): a one-to-one mapping onto strings without spaces or control characters.
///
/// # Examples
///
/// ```
/// use asynq_sources::cache::escape_into;
///
/// let mut key = "users:".to_string();
/// escape_into("ann smith%\n", &mut key);
/// assert_eq!(key, "users:ann%20smith%25%0A");
/// ```
pub fn escape_into(text: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for c in text.chars() {
        match u8::try_from(c) {
            Ok(byte) if needs_escape(byte) => {
                out.push('%');
                out.push(char::from(HEX[usize::from(byte >> 4)]));
                out.push(char::from(HEX[usize::from(byte & 0xf)]));
            }
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_is_one_to_one_and_leaves_no_space_or_control_byte() {
        let texts = ["a b", "a%20b", "a\u{0}b", "é ü", "%", "%25", "", "\u{7f}"];
        let escaped: Vec<String> = texts
            .iter()
            .map(|t| {
                let mut out = String::new();
                escape_into(t, &mut out);
                out
            })
            .collect();
        assert_eq!(
            escaped,
            [
                "a%20b", "a%2520b", "a%00b", "é%20ü", "%25", "%2525", "", "%7F"
            ]
        );
        for e in &escaped {
            assert!(e.bytes().all(|b| b > b' ' && b != 0x7f), "{e}");
        }
        let mut unique = escaped.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), escaped.len());
    }

    #[test]
    fn sql_keys_write_their_value() {
        let mut out = String::new();
        (-7_i32).write_cache_key(&mut out);
        u64::MAX.write_cache_key(&mut out);
        "x".to_string().write_cache_key(&mut out);
        assert_eq!(out, "-718446744073709551615x");
    }
}
