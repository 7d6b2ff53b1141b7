//! Keys: what a source looks rows up by, bound as query parameters and read back from rows.
//!
//! Drivers disagree on which Rust types they bind (PostgreSQL has no unsigned integers, MySQL
//! has them; SQLite stores every integer as `i64`), so a key says which of three column kinds
//! it is ([`KeyKind`]) and converts itself to and from it. The integer types of the standard
//! library, `String`, `Box<str>` and `Arc<str>` are keys; a newtype (`struct UserId(i64)`)
//! becomes one with a few lines (see [`SqlKey`]).

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

/// How a key column is bound and read: a signed or unsigned 64-bit integer, or text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyKind {
    /// A signed integer column (`BIGINT`, `INTEGER`, `SMALLINT`), bound and read as `i64`.
    Int,
    /// An unsigned integer column (MySQL's `BIGINT UNSIGNED`), bound and read as `u64`. On
    /// PostgreSQL and SQLite, which have no unsigned columns, it is bound as `i64`: a key above
    /// `i64::MAX` cannot be stored there, so its row is absent.
    UInt,
    /// A text column (`TEXT`, `VARCHAR`), bound and read as a string.
    Text,
}

/// How the key column compares text keys, so that each row the server returns is given to
/// the keys it matched: set it as [`Table::KEY_MATCH`](crate::Table::KEY_MATCH).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyMatch {
    /// Byte for byte (PostgreSQL's `text`, SQLite's default, MySQL's `_bin` collations): a
    /// row belongs to the asked key equal to its key column.
    #[default]
    Exact,
    /// Without case and trailing spaces (MySQL's default `_ci` collations, PostgreSQL's
    /// `citext`): a row belongs to every asked key equal to its key column so (`"Bob "` and
    /// `"bob"` both get the row of `"BOB"`).
    IgnoreCase,
}

/// A key's value as bound to a query or read from a row.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyValue {
    /// A signed integer.
    Int(i64),
    /// An unsigned integer.
    UInt(u64),
    /// Text.
    Text(String),
}

impl KeyValue {
    /// The value as an `i64`, when it is an integer that fits.
    pub fn as_i64(&self) -> Option<i64> {
        match *self {
            KeyValue::Int(v) => Some(v),
            KeyValue::UInt(v) => i64::try_from(v).ok(),
            KeyValue::Text(_) => None,
        }
    }

    /// The value as a `u64`, when it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            KeyValue::Int(v) => u64::try_from(v).ok(),
            KeyValue::UInt(v) => Some(v),
            KeyValue::Text(_) => None,
        }
    }

    /// The value as text, when it is text.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            KeyValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

/// A type that keys a SQL source: bound as a query parameter, and read back from the key
/// column of each result row to tell which key the row belongs to.
///
/// # Examples
///
/// A newtype over an integer id:
///
/// ```
/// use asynq_sources::{KeyKind, KeyValue, SqlKey};
///
/// #[derive(Clone, Debug, PartialEq, Eq, Hash)]
/// struct UserId(i64);
///
/// impl SqlKey for UserId {
///     const KIND: KeyKind = KeyKind::Int;
///     fn to_value(&self) -> KeyValue {
///         KeyValue::Int(self.0)
///     }
///     fn from_value(value: KeyValue) -> Option<Self> {
///         value.as_i64().map(UserId)
///     }
/// }
///
/// assert_eq!(UserId::from_value(UserId(7).to_value()), Some(UserId(7)));
/// ```
pub trait SqlKey: Clone + Eq + Hash + Debug + Send + Sync + 'static {
    /// The kind of the key column.
    const KIND: KeyKind;

    /// The value bound for this key.
    fn to_value(&self) -> KeyValue;

    /// The key of a row whose key column holds `value` (read as [`KIND`](SqlKey::KIND));
    /// `None` when no key of this type has that value (an integer out of range).
    fn from_value(value: KeyValue) -> Option<Self>;
}

macro_rules! int_keys {
    ($kind:ident, $variant:ident, $wide:ty, $as:ident: $($t:ty),*) => {$(
        impl SqlKey for $t {
            const KIND: KeyKind = KeyKind::$kind;
            fn to_value(&self) -> KeyValue {
                // Lossless: every one of these types fits its 64-bit kind.
                KeyValue::$variant(<$wide>::try_from(*self).expect("a 64-bit integer holds it"))
            }
            fn from_value(value: KeyValue) -> Option<Self> {
                value.$as().and_then(|v| <$t>::try_from(v).ok())
            }
        }
    )*};
}

int_keys!(Int, Int, i64, as_i64: i8, i16, i32, i64, isize);
int_keys!(UInt, UInt, u64, as_u64: u8, u16, u32, u64, usize);

impl SqlKey for String {
    const KIND: KeyKind = KeyKind::Text;
    fn to_value(&self) -> KeyValue {
        KeyValue::Text(self.clone())
    }
    fn from_value(value: KeyValue) -> Option<Self> {
        match value {
            KeyValue::Text(s) => Some(s),
            _ => None,
        }
    }
}

impl SqlKey for Box<str> {
    const KIND: KeyKind = KeyKind::Text;
    fn to_value(&self) -> KeyValue {
        KeyValue::Text(self.to_string())
    }
    fn from_value(value: KeyValue) -> Option<Self> {
        String::from_value(value).map(String::into_boxed_str)
    }
}

impl SqlKey for Arc<str> {
    const KIND: KeyKind = KeyKind::Text;
    fn to_value(&self) -> KeyValue {
        KeyValue::Text(self.to_string())
    }
    fn from_value(value: KeyValue) -> Option<Self> {
        String::from_value(value).map(Arc::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_round_trip_and_refuse_what_they_cannot_hold() {
        assert_eq!(i8::from_value(KeyValue::Int(-5)), Some(-5));
        assert_eq!(i8::from_value(KeyValue::Int(300)), None);
        assert_eq!(u8::from_value(KeyValue::Int(-1)), None);
        assert_eq!(u64::from_value(KeyValue::UInt(u64::MAX)), Some(u64::MAX));
        assert_eq!(u64::from_value(KeyValue::Int(7)), Some(7));
        assert_eq!(i64::from_value(KeyValue::UInt(u64::MAX)), None);
        assert_eq!(i32::from_value(KeyValue::Text("1".into())), None);
        assert_eq!(u16::MAX.to_value(), KeyValue::UInt(65535));
        assert_eq!((-3i16).to_value(), KeyValue::Int(-3));
        assert_eq!(<u32 as SqlKey>::KIND, KeyKind::UInt);
    }

    #[test]
    fn strings_round_trip() {
        let k: Arc<str> = Arc::from("a:1");
        assert_eq!(Arc::<str>::from_value(k.to_value()), Some(k));
        assert_eq!(String::from_value(KeyValue::Int(1)), None);
        assert_eq!(
            Box::<str>::from_value(KeyValue::Text("x".into())).as_deref(),
            Some("x")
        );
    }
}
