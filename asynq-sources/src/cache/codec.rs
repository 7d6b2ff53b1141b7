//! Codecs: how a cached value is written as bytes and read back.
//!
//! A cache holds bytes; a source answers values. A [`Codec`] does both ways for one value
//! type: [`Raw`] (the bytes themselves), [`Utf8`] (text), [`Json`] (serde JSON, feature
//! `json`) and [`Bincode`] (bincode 2 over serde, feature `bincode`). [`Optional`] wraps a
//! codec for the values of sources that answer `None` for an absent row, so that a cache-aside
//! source can tell those rows apart (and cache them as absent only when told to).
//!
//! Decoding reads bytes that came from a server, so it never trusts them: a value is at most
//! the client's value size limit long when it arrives, and the codecs allocate by what they
//! read, never by a length the bytes claim (serde's collections reserve at most 1 MiB ahead).

use std::fmt;
#[cfg(any(feature = "json", feature = "bincode"))]
use std::marker::PhantomData;

/// Why a value could not be encoded or decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodecError {
    codec: &'static str,
    message: String,
}

impl CodecError {
    /// An error of the codec named `codec` (`"utf-8"`, `"json"`), saying `message`.
    pub fn new(codec: &'static str, message: impl fmt::Display) -> CodecError {
        CodecError {
            codec,
            message: message.to_string(),
        }
    }

    /// The codec's name.
    pub fn codec(&self) -> &'static str {
        self.codec
    }
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} codec: {}", self.codec, self.message)
    }
}

impl std::error::Error for CodecError {}

/// How values of one type are stored in a cache: written as bytes, read back from them.
///
/// Implement it for a format of your own; the crate has [`Raw`], [`Utf8`], [`Json`] and
/// [`Bincode`].
///
/// # Examples
///
/// ```
/// use asynq_sources::cache::{Codec, CodecError};
///
/// /// Numbers as decimal text.
/// #[derive(Clone, Copy, Debug, Default)]
/// struct Decimal;
/// impl Codec for Decimal {
///     type Value = u64;
///     fn name(&self) -> &'static str {
///         "decimal"
///     }
///     fn encode(&self, value: &u64) -> Result<Vec<u8>, CodecError> {
///         Ok(value.to_string().into_bytes())
///     }
///     fn decode(&self, bytes: Vec<u8>) -> Result<u64, CodecError> {
///         let text = std::str::from_utf8(&bytes).map_err(|e| CodecError::new("decimal", e))?;
///         text.parse().map_err(|e| CodecError::new("decimal", e))
///     }
/// }
///
/// assert_eq!(Decimal.decode(Decimal.encode(&42)?)?, 42);
/// assert!(Decimal.decode(b"4x".to_vec()).is_err());
/// # Ok::<(), CodecError>(())
/// ```
pub trait Codec: Clone + fmt::Debug + Send + Sync + 'static {
    /// The values it reads and writes.
    type Value: Clone + Send + 'static;

    /// Its name, for errors.
    fn name(&self) -> &'static str;

    /// The bytes that store `value`.
    fn encode(&self, value: &Self::Value) -> Result<Vec<u8>, CodecError>;

    /// The value stored as `bytes`.
    fn decode(&self, bytes: Vec<u8>) -> Result<Self::Value, CodecError>;

    /// Whether `value` says that the origin has no row (`None` of an [`Optional`] codec). A
    /// cache-aside source caches such values only as absent rows, when negative caching is on.
    fn is_absent(&self, value: &Self::Value) -> bool {
        let _ = value;
        false
    }

    /// The value of an absent row, if this codec's values can say "absent" (`Some(None)` for
    /// [`Optional`]); `None` when they cannot, and then an absent row is left out of the
    /// answer, as a source without such a value does.
    fn absent(&self) -> Option<Self::Value> {
        None
    }
}

/// The bytes themselves: `Value = Vec<u8>`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Raw;

impl Codec for Raw {
    type Value = Vec<u8>;

    fn name(&self) -> &'static str {
        "raw"
    }

    fn encode(&self, value: &Vec<u8>) -> Result<Vec<u8>, CodecError> {
        Ok(value.clone())
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<Vec<u8>, CodecError> {
        Ok(bytes)
    }
}

/// Text: `Value = String`; bytes that are not UTF-8 fail to decode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Utf8;

impl Codec for Utf8 {
    type Value = String;

    fn name(&self) -> &'static str {
        "utf-8"
    }

    fn encode(&self, value: &String) -> Result<Vec<u8>, CodecError> {
        Ok(value.as_bytes().to_vec())
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<String, CodecError> {
        String::from_utf8(bytes).map_err(|e| {
            CodecError::new(
                "utf-8",
                format_args!("not UTF-8 at byte {}", e.utf8_error().valid_up_to()),
            )
        })
    }
}

/// The values of a source that answers `Option<V>` (`None`: the origin has no row), as
/// `codec` stores `V`; `None` is what [`Codec::absent`] gives and is never encoded.
///
/// With it, a cache-aside source knows which answers are absent rows: it caches them as such
/// (with their own, usually shorter, time to live) only when negative caching is on. Without
/// it (a plain `Json<Option<V>>`, say), `None` is a value like any other.
///
/// # Examples
///
/// ```
/// use asynq_sources::cache::{Codec, Optional, Utf8};
///
/// let codec = Optional(Utf8);
/// assert!(codec.is_absent(&None));
/// assert_eq!(codec.decode(codec.encode(&Some("x".to_string()))?)?, Some("x".to_string()));
/// assert!(codec.encode(&None).is_err());
/// # Ok::<(), asynq_sources::cache::CodecError>(())
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Optional<C>(pub C);

impl<C: Codec> Codec for Optional<C> {
    type Value = Option<C::Value>;

    fn name(&self) -> &'static str {
        self.0.name()
    }

    fn encode(&self, value: &Option<C::Value>) -> Result<Vec<u8>, CodecError> {
        match value {
            Some(value) => self.0.encode(value),
            None => Err(CodecError::new(
                self.0.name(),
                "an absent row is stored as absent, not as a value",
            )),
        }
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<Option<C::Value>, CodecError> {
        self.0.decode(bytes).map(Some)
    }

    fn is_absent(&self, value: &Option<C::Value>) -> bool {
        value.is_none()
    }

    fn absent(&self) -> Option<Option<C::Value>> {
        Some(None)
    }
}

/// serde JSON: `Value = T` (feature `json`).
///
/// # Examples
///
/// ```
/// use asynq_sources::cache::{Codec, Json};
///
/// let codec = Json::<(String, i64)>::new();
/// let bytes = codec.encode(&("ann".to_string(), 10))?;
/// assert_eq!(bytes, br#"["ann",10]"#);
/// assert_eq!(codec.decode(bytes)?, ("ann".to_string(), 10));
/// # Ok::<(), asynq_sources::cache::CodecError>(())
/// ```
#[cfg(feature = "json")]
#[cfg_attr(docsrs, doc(cfg(feature = "json")))]
pub struct Json<T>(PhantomData<fn() -> T>);

/// bincode 2 over serde, in its standard configuration: `Value = T` (feature `bincode`).
///
/// bincode is compact and fast, but not self-describing: change `T` and the values cached
/// before fail to decode (a cache-aside source then reads them from the origin again). The
/// bincode crate had its last release in 2.0.1 and is no longer developed.
///
/// Decoding claims at most `LIMIT` bytes (16 MiB unless set): bincode allocates a string or a
/// vector by the length its bytes claim, and the limit refuses a length past it before
/// anything is allocated. Raise it (`Bincode::<T, { 64 << 20 }>`) for larger values.
///
/// # Examples
///
/// ```
/// use asynq_sources::cache::{Bincode, Codec};
///
/// let codec = Bincode::<Vec<u32>>::new();
/// let bytes = codec.encode(&vec![1, 2, 3])?;
/// assert_eq!(codec.decode(bytes)?, [1, 2, 3]);
/// // A string that claims 2^60 bytes fails; nothing that large is allocated.
/// let text = Bincode::<String>::new();
/// assert!(text.decode(vec![0xfd, 0, 0, 0, 0, 0, 0, 0, 0x10]).is_err());
/// # Ok::<(), asynq_sources::cache::CodecError>(())
/// ```
#[cfg(feature = "bincode")]
#[cfg_attr(docsrs, doc(cfg(feature = "bincode")))]
pub struct Bincode<T, const LIMIT: usize = { 16 << 20 }>(PhantomData<fn() -> T>);

/// The common impls of a codec that is only a type marker.
#[cfg(feature = "json")]
macro_rules! marker_codec {
    ($codec:ident) => {
        impl<T> $codec<T> {
            /// The codec of `T`.
            pub const fn new() -> Self {
                $codec(PhantomData)
            }
        }

        impl<T> Default for $codec<T> {
            fn default() -> Self {
                Self::new()
            }
        }

        impl<T> Clone for $codec<T> {
            fn clone(&self) -> Self {
                *self
            }
        }

        impl<T> Copy for $codec<T> {}

        impl<T> fmt::Debug for $codec<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}<{}>", stringify!($codec), std::any::type_name::<T>())
            }
        }
    };
}

#[cfg(feature = "json")]
marker_codec!(Json);

#[cfg(feature = "json")]
impl<T> Codec for Json<T>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + 'static,
{
    type Value = T;

    fn name(&self) -> &'static str {
        "json"
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        serde_json::to_vec(value).map_err(|e| CodecError::new("json", e))
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<T, CodecError> {
        serde_json::from_slice(&bytes).map_err(|e| CodecError::new("json", e))
    }
}

#[cfg(feature = "bincode")]
impl<T, const LIMIT: usize> Bincode<T, LIMIT> {
    /// The codec of `T`.
    pub const fn new() -> Self {
        Bincode(PhantomData)
    }
}

#[cfg(feature = "bincode")]
impl<T, const LIMIT: usize> Default for Bincode<T, LIMIT> {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "bincode")]
impl<T, const LIMIT: usize> Clone for Bincode<T, LIMIT> {
    fn clone(&self) -> Self {
        *self
    }
}

#[cfg(feature = "bincode")]
impl<T, const LIMIT: usize> Copy for Bincode<T, LIMIT> {}

#[cfg(feature = "bincode")]
impl<T, const LIMIT: usize> fmt::Debug for Bincode<T, LIMIT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bincode<{}, {LIMIT}>", std::any::type_name::<T>())
    }
}

#[cfg(feature = "bincode")]
impl<T, const LIMIT: usize> Codec for Bincode<T, LIMIT>
where
    T: serde::Serialize + serde::de::DeserializeOwned + Clone + Send + 'static,
{
    type Value = T;

    fn name(&self) -> &'static str {
        "bincode"
    }

    fn encode(&self, value: &T) -> Result<Vec<u8>, CodecError> {
        bincode::serde::encode_to_vec(value, bincode::config::standard())
            .map_err(|e| CodecError::new("bincode", e))
    }

    fn decode(&self, bytes: Vec<u8>) -> Result<T, CodecError> {
        let config = bincode::config::standard().with_limit::<LIMIT>();
        let (value, read) = bincode::serde::decode_from_slice(&bytes, config)
            .map_err(|e| CodecError::new("bincode", e))?;
        if read != bytes.len() {
            return Err(CodecError::new(
                "bincode",
                format_args!("{} bytes left over after the value", bytes.len() - read),
            ));
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_refuses_what_is_not_text() {
        assert_eq!(Utf8.decode(b"ok".to_vec()).unwrap(), "ok");
        let err = Utf8.decode(vec![b'a', 0xff]).unwrap_err();
        assert_eq!(err.to_string(), "utf-8 codec: not UTF-8 at byte 1");
        assert_eq!(Raw.decode(vec![0xff]).unwrap(), [0xff]);
    }

    #[cfg(feature = "bincode")]
    #[test]
    fn bincode_refuses_hostile_lengths_without_allocating_them() {
        let codec = Bincode::<Vec<String>>::new();
        // u64::MAX elements claimed (varint 0xfd + 8 bytes), then nothing.
        let mut hostile = vec![0xfd];
        hostile.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(codec.decode(hostile).is_err());
        let text = Bincode::<String>::new();
        let mut hostile = vec![0xfc];
        hostile.extend_from_slice(&u32::MAX.to_le_bytes());
        assert!(text.decode(hostile).is_err());
        let bytes = codec.encode(&vec!["a".to_string()]).unwrap();
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(codec.decode(longer).is_err(), "trailing bytes");
        assert_eq!(codec.decode(bytes).unwrap(), ["a"]);
    }

    #[cfg(feature = "json")]
    #[test]
    fn json_round_trips_and_names_itself_in_errors() {
        let codec = Json::<Option<(String, i64)>>::new();
        assert_eq!(codec.decode(codec.encode(&None).unwrap()).unwrap(), None);
        let err = codec.decode(b"{".to_vec()).unwrap_err();
        assert!(err.to_string().starts_with("json codec: "), "{err}");
    }
}
