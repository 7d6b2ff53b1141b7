//! [`CacheSource`]: a cache read as a data source, each key answered on its own.

use asynq_core::DataSource;

use super::{Cache, Codec, Utf8};

/// A cache read as a data source: `Key = String` (the cache's own keys), `Value =
/// Option<K::Value>` (`None` for a key the cache does not hold), values read by the codec `K`
/// ([`Utf8`] unless chosen). [`memcached::Memcached`](crate::memcached::Memcached) is the one
/// over memcached.
///
/// One call per round: one multi-get with every key of the round (one round trip per cache
/// server, servers at once). Each key fails on its own (through [`DataSource::fetch_each`]):
/// an invalid key, a failed or backed-off server, or a value the codec cannot read fails only
/// its keys, with the cache's error naming the key or the server, and the other keys of the
/// round are answered.
///
/// To read a cache in front of another source (and fill it from there), use
/// [`Cached`](crate::Cached).
#[derive(Clone, Debug)]
pub struct CacheSource<C, K = Utf8> {
    client: C,
    codec: K,
}

impl<C: Cache> CacheSource<C, Utf8> {
    /// The source over `client`, its values read as UTF-8 text.
    pub fn new(client: C) -> Self {
        CacheSource::with_codec(client, Utf8)
    }
}

impl<C: Cache, K: Codec> CacheSource<C, K> {
    /// The source over `client`, its values read by `codec`.
    pub fn with_codec(client: C, codec: K) -> Self {
        CacheSource { client, codec }
    }

    /// The client, with its counters and servers' health.
    pub fn client(&self) -> &C {
        &self.client
    }
}

impl<C: Cache, K: Codec> DataSource for CacheSource<C, K> {
    type Key = String;
    type Value = Option<K::Value>;
    type Error = C::Error;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, Option<K::Value>)>, C::Error> {
        self.fetch_each(keys)
            .await?
            .into_iter()
            .map(|(key, value)| Ok((key, value?)))
            .collect()
    }

    /// Every key with its own outcome: a failed server, an invalid key or an unreadable value
    /// fails only its keys.
    #[allow(
        clippy::type_complexity,
        reason = "the signature of DataSource::fetch_each, spelled out"
    )]
    async fn fetch_each(
        &self,
        keys: &[String],
    ) -> Result<Vec<(String, Result<Option<K::Value>, C::Error>)>, C::Error> {
        let lookups = self.client.get_many(keys.to_vec()).await;
        Ok(keys
            .iter()
            .zip(lookups)
            .map(|(key, lookup)| {
                let value = lookup.and_then(|found| {
                    found
                        .map(|bytes| {
                            self.codec
                                .decode(bytes)
                                .map_err(|e| self.client.decode_error(key, e))
                        })
                        .transpose()
                });
                (key.clone(), value)
            })
            .collect())
    }

    fn name(&self) -> &str {
        self.client.name()
    }
}
