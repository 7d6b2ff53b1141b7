//! [`Memcached`]: memcached as a data source, each key answered on its own.

use asynq_core::DataSource;

use super::{McError, MemcachedClient};
use crate::cache::{Codec, Utf8};

/// memcached as a data source: `Key = String`, `Value = Option<C::Value>` (`None` for a key
/// the servers do not hold), values read by the codec `C` ([`Utf8`] unless chosen).
///
/// One call per round: one `get` per server holding some of the round's keys, all servers at
/// once. Each key fails on its own (through [`DataSource::fetch_each`]): an invalid key, a
/// failed or backed-off server, or a value the codec cannot read fails only its keys, with an
/// [`McError`] naming the key or the server, and the other keys of the round are answered.
///
/// # Examples
///
/// ```
/// use asynq_core::{asynq, DataSource, Error, Runtime};
/// use asynq_sources::memcached::{McError, Memcached, MemcachedClient};
///
/// #[asynq]
/// fn names(keys: Vec<String>) -> Vec<Result<Option<String>, Error>> {
///     <Memcached>::load_many(keys).await
/// }
///
/// // Nothing listens on port 1: the key fails naming the server; the invalid one, naming it.
/// let rt = Runtime::new().with_source(Memcached::new(MemcachedClient::new(["127.0.0.1:1"])?));
/// let got = rt.run(names(vec!["u:1".into(), "not valid".into()]))?;
/// let Err(Error::Source { error, .. }) = &got[0] else { panic!("{:?}", got[0]) };
/// assert!(matches!(error.downcast_ref(), Some(McError::Server { server, .. }) if server == "127.0.0.1:1"));
/// let Err(Error::Source { error, .. }) = &got[1] else { panic!("{:?}", got[1]) };
/// assert!(matches!(error.downcast_ref(), Some(McError::InvalidKey { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Memcached<C: Codec = Utf8> {
    client: MemcachedClient,
    codec: C,
}

impl Memcached<Utf8> {
    /// The source over `client`, its values read as UTF-8 text.
    pub fn new(client: MemcachedClient) -> Self {
        Memcached::with_codec(client, Utf8)
    }
}

impl<C: Codec> Memcached<C> {
    /// The source over `client`, its values read by `codec`.
    pub fn with_codec(client: MemcachedClient, codec: C) -> Self {
        Memcached { client, codec }
    }

    /// The client, with its counters and servers' health.
    pub fn client(&self) -> &MemcachedClient {
        &self.client
    }
}

impl<C: Codec> Clone for Memcached<C> {
    fn clone(&self) -> Self {
        Memcached::with_codec(self.client.clone(), self.codec.clone())
    }
}

impl<C: Codec> DataSource for Memcached<C> {
    type Key = String;
    type Value = Option<C::Value>;
    type Error = McError;

    async fn fetch(&self, keys: &[String]) -> Result<Vec<(String, Option<C::Value>)>, McError> {
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
    ) -> Result<Vec<(String, Result<Option<C::Value>, McError>)>, McError> {
        let lookups = self.client.get_multi(keys).await;
        Ok(keys
            .iter()
            .zip(lookups)
            .map(|(key, lookup)| {
                let value = lookup.and_then(|found| {
                    found
                        .map(|bytes| {
                            self.codec.decode(bytes).map_err(|e| McError::Decode {
                                key: key.chars().take(60).collect(),
                                message: e.to_string(),
                            })
                        })
                        .transpose()
                });
                (key.clone(), value)
            })
            .collect())
    }

    fn name(&self) -> &str {
        "memcached"
    }
}
