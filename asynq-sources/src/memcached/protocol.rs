//! memcached's text protocol as the client speaks it: keys, requests, and the reading of
//! replies with every length a server sends bounded before anything is allocated.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{Lookup, McError, STORE};
use crate::cache::StoreMode;

/// The longest key memcached accepts, in bytes.
pub const MAX_KEY_LEN: usize = 250;

/// memcached's default item size limit (`-I`), 1 MiB: the largest value a client accepts
/// unless told otherwise ([`MemcachedClient::with_max_value`](super::MemcachedClient::with_max_value)).
pub const DEFAULT_MAX_VALUE: usize = 1 << 20;

/// The longest reply line read: a `VALUE <key> <flags> <bytes> [<cas>]` line with the longest
/// key and numbers is under 300 bytes.
pub(crate) const MAX_LINE: usize = 512;

/// The longest time to live memcached takes as a duration; a longer one is sent as the Unix
/// time it ends at (memcached reads any larger number as one).
const MAX_RELATIVE_TTL: u64 = 30 * 24 * 3600;

/// Check that memcached's text protocol can carry `key`: 1 to 250 bytes, no space, no
/// control character. A key that fails is never sent.
///
/// # Examples
///
/// ```
/// use asynq_sources::memcached::validate_key;
///
/// assert!(validate_key("u:1:name").is_ok());
/// let err = validate_key("two words").unwrap_err();
/// assert_eq!(
///     err.to_string(),
///     "invalid memcached key \"two words\": contains a space or control character at byte 3"
/// );
/// assert!(validate_key(&"k".repeat(251)).is_err());
/// ```
pub fn validate_key(key: &str) -> Result<(), McError> {
    let reason = if key.is_empty() {
        "is empty".to_string()
    } else if key.len() > MAX_KEY_LEN {
        format!("is {} bytes long, more than {MAX_KEY_LEN}", key.len())
    } else if let Some(i) = key.bytes().position(|b| b <= b' ' || b == 0x7f) {
        format!("contains a space or control character at byte {i}")
    } else {
        return Ok(());
    };
    Err(invalid_key(key, reason))
}

/// An [`McError::InvalidKey`] for `key` (its first 60 characters).
pub(crate) fn invalid_key(key: &str, reason: String) -> McError {
    McError::invalid_key(STORE, key, reason)
}

/// The keys of one multi-get, sorted by server: each key's outcome so far (invalid keys fail
/// before any I/O, the others start as misses), and per server holding some valid key, the
/// indices of its keys.
pub(crate) fn shard(
    keys: &[String],
    server_of: impl Fn(&str) -> usize,
    servers: usize,
) -> (Vec<Lookup>, Vec<(usize, Vec<usize>)>) {
    let mut out: Vec<Lookup> = vec![Ok(None); keys.len()];
    let mut shards: Vec<Vec<usize>> = vec![Vec::new(); servers];
    for (i, key) in keys.iter().enumerate() {
        match validate_key(key) {
            Ok(()) => shards[server_of(key)].push(i),
            Err(e) => out[i] = Err(e),
        }
    }
    let work = shards
        .into_iter()
        .enumerate()
        .filter(|(_, idx)| !idx.is_empty())
        .collect();
    (out, work)
}

/// The entries a server returned: (key, value) of each key it holds.
pub(crate) type Found = Vec<(String, Vec<u8>)>;

/// Each server's answer (or failure) to the keys it was asked: `results[j]` answers
/// `work[j]`. Keys it did not return stay misses.
pub(crate) fn spread(
    out: &mut [Lookup],
    keys: &[String],
    work: &[(usize, Vec<usize>)],
    results: Vec<Result<Found, McError>>,
) {
    for ((_, idx), result) in work.iter().zip(results) {
        match result {
            Ok(found) => {
                let mut found: HashMap<String, Vec<u8>> = found.into_iter().collect();
                for &i in idx {
                    out[i] = Ok(found.remove(&keys[i]));
                }
            }
            Err(e) => {
                for &i in idx {
                    out[i] = Err(e.clone());
                }
            }
        }
    }
}

/// `host:port` of each server, resolved: (the name as given, its address).
pub(crate) fn resolve<I, S>(servers: I) -> Result<Vec<(String, SocketAddr)>, McError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let servers = servers
        .into_iter()
        .map(|s| {
            let name = s.as_ref().trim().to_string();
            let bad = |message: String| McError::Server {
                store: STORE,
                server: name.clone(),
                message,
            };
            let addr = name
                .to_socket_addrs()
                .map_err(|e| bad(format!("not an address: {e}")))?
                .next()
                .ok_or_else(|| bad("not an address".to_string()))?;
            Ok((name, addr))
        })
        .collect::<Result<Vec<_>, McError>>()?;
    if servers.is_empty() {
        return Err(McError::Server {
            store: STORE,
            server: String::new(),
            message: "no server given".to_string(),
        });
    }
    let mut names: Vec<&str> = servers.iter().map(|(n, _)| n.as_str()).collect();
    names.sort_unstable();
    if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(McError::Server {
            store: STORE,
            server: twice[0].to_string(),
            message: "given twice".to_string(),
        });
    }
    Ok(servers)
}

/// `get k1 k2 ...\r\n`.
pub(crate) fn get_request<'a>(keys: impl Iterator<Item = &'a str>) -> Vec<u8> {
    let mut request = b"get".to_vec();
    for key in keys {
        request.push(b' ');
        request.extend_from_slice(key.as_bytes());
    }
    request.extend_from_slice(b"\r\n");
    request
}

/// memcached's `exptime` for a time to live: 0 for none, whole seconds (at least 1) up to 30
/// days, and past that the Unix time it ends at.
pub(crate) fn exptime(ttl: Option<Duration>) -> u64 {
    let Some(ttl) = ttl else { return 0 };
    let secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let secs = secs.max(1);
    if secs <= MAX_RELATIVE_TTL {
        return secs;
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    now.saturating_add(secs)
}

/// Append `set|add <key> 0 <exptime> <bytes>\r\n<value>\r\n`; a value longer than
/// `max_value` (which the server would refuse) is an error naming the key.
pub(crate) fn push_store(
    request: &mut Vec<u8>,
    mode: StoreMode,
    key: &str,
    value: &[u8],
    exptime: u64,
    max_value: usize,
) -> Result<(), McError> {
    validate_key(key)?;
    if value.len() > max_value {
        return Err(invalid_key(
            key,
            format!(
                "its value is {} bytes, more than the item size limit of {max_value}",
                value.len()
            ),
        ));
    }
    let verb = match mode {
        StoreMode::Set => "set",
        StoreMode::Add => "add",
    };
    request.extend_from_slice(format!("{verb} {key} 0 {exptime} {}\r\n", value.len()).as_bytes());
    request.extend_from_slice(value);
    request.extend_from_slice(b"\r\n");
    Ok(())
}

/// Append `delete <key>\r\n`.
pub(crate) fn push_delete(request: &mut Vec<u8>, key: &str) -> Result<(), McError> {
    validate_key(key)?;
    request.extend_from_slice(b"delete ");
    request.extend_from_slice(key.as_bytes());
    request.extend_from_slice(b"\r\n");
    Ok(())
}

/// Whether an error on a pooled connection means the server had closed it.
pub(crate) fn is_stale(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// A malformed answer from a server.
pub(crate) fn protocol(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

/// The error of a connection closed mid-answer.
pub(crate) fn closed() -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "connection closed by the server",
    )
}

/// Check a line read with at most [`MAX_LINE`] bytes: complete (ends in `\n`), or an error.
pub(crate) fn check_line(line: &[u8]) -> io::Result<()> {
    match line {
        [] => Err(closed()),
        [.., b'\n'] => Ok(()),
        _ if line.len() >= MAX_LINE => Err(protocol(format!(
            "a reply line longer than {MAX_LINE} bytes: {:?}...",
            String::from_utf8_lossy(&line[..40])
        ))),
        _ => Err(closed()),
    }
}

/// A reply line, trimmed and cut to 80 characters, for an error.
fn shown(line: &[u8]) -> String {
    String::from_utf8_lossy(line)
        .trim_end()
        .chars()
        .take(80)
        .collect()
}

/// One header line of a `get` answer: `VALUE <key> <flags> <bytes>\r\n` gives the key and the
/// data's length, checked against `max_value` before anything is allocated for it;
/// `END\r\n` gives `None`.
pub(crate) fn value_header(line: &[u8], max_value: usize) -> io::Result<Option<(String, usize)>> {
    if line == b"END\r\n" {
        return Ok(None);
    }
    let text = String::from_utf8_lossy(line);
    let mut words = text.split_ascii_whitespace();
    if words.next() != Some("VALUE") {
        return Err(protocol(format!("unexpected answer {:?}", shown(line))));
    }
    let (Some(key), Some(_flags), Some(bytes)) = (words.next(), words.next(), words.next()) else {
        return Err(protocol(format!("bad VALUE line {:?}", shown(line))));
    };
    let bytes: u64 = bytes
        .parse()
        .map_err(|_| protocol(format!("bad VALUE length {bytes:?}")))?;
    match usize::try_from(bytes) {
        Ok(n) if n <= max_value => Ok(Some((key.to_string(), n))),
        _ => Err(protocol(format!(
            "a VALUE of {bytes} bytes for {key:?}, more than the item size limit of {max_value}"
        ))),
    }
}

/// The data block of a value, read as `<bytes>\r\n`: checked, the `\r\n` removed.
pub(crate) fn value_data(key: String, mut data: Vec<u8>) -> io::Result<(String, Vec<u8>)> {
    if !data.ends_with(b"\r\n") {
        return Err(protocol(format!("value of {key:?} not followed by \\r\\n")));
    }
    data.truncate(data.len() - 2);
    Ok((key, data))
}

/// An error for a reply holding more values than keys were asked.
pub(crate) fn too_many_values(asked: usize) -> io::Error {
    protocol(format!("more VALUE blocks than the {asked} keys asked"))
}

/// Check the reply line to one `set`/`add`: `STORED`, or for `add` also `NOT_STORED` (the key
/// had an entry, which `add` leaves alone).
pub(crate) fn check_stored(line: &[u8], mode: StoreMode) -> io::Result<()> {
    match (line, mode) {
        (b"STORED\r\n", _) | (b"NOT_STORED\r\n", StoreMode::Add) => Ok(()),
        _ => Err(protocol(format!("a store answered {:?}", shown(line)))),
    }
}

/// Check the reply line to one `delete`: `DELETED` or `NOT_FOUND`.
pub(crate) fn check_deleted(line: &[u8]) -> io::Result<()> {
    match line {
        b"DELETED\r\n" | b"NOT_FOUND\r\n" => Ok(()),
        _ => Err(protocol(format!("delete answered {:?}", shown(line)))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttls_are_whole_seconds_and_long_ones_absolute() {
        assert_eq!(exptime(None), 0);
        assert_eq!(exptime(Some(Duration::from_millis(1))), 1);
        assert_eq!(exptime(Some(Duration::from_millis(1500))), 2);
        assert_eq!(
            exptime(Some(Duration::from_secs(MAX_RELATIVE_TTL))),
            MAX_RELATIVE_TTL
        );
        let long = exptime(Some(Duration::from_secs(MAX_RELATIVE_TTL + 1)));
        assert!(long > 1_700_000_000, "{long}");
    }

    #[test]
    fn headers_are_bounded_before_anything_is_allocated() {
        assert_eq!(
            value_header(b"VALUE k 0 5\r\n", 10).unwrap(),
            Some(("k".to_string(), 5))
        );
        assert_eq!(value_header(b"END\r\n", 10).unwrap(), None);
        let err = value_header(b"VALUE k 0 11\r\n", 10).unwrap_err();
        assert!(
            err.to_string()
                .contains("more than the item size limit of 10")
        );
        assert!(value_header(b"VALUE k 0 -1\r\n", 10).is_err());
        assert!(value_header(b"VALUE k\r\n", 10).is_err());
    }

    #[test]
    fn store_replies() {
        assert!(check_stored(b"STORED\r\n", StoreMode::Set).is_ok());
        assert!(check_stored(b"NOT_STORED\r\n", StoreMode::Add).is_ok());
        assert!(check_stored(b"NOT_STORED\r\n", StoreMode::Set).is_err());
        assert!(check_stored(b"SERVER_ERROR out of memory\r\n", StoreMode::Add).is_err());
        assert!(check_deleted(b"NOT_FOUND\r\n").is_ok());
        assert!(check_deleted(b"ERROR\r\n").is_err());
    }

    #[test]
    fn a_server_given_twice_is_refused() {
        let err = resolve(["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:1"]).unwrap_err();
        assert_eq!(err.to_string(), "memcached server 127.0.0.1:1: given twice");
    }
}
