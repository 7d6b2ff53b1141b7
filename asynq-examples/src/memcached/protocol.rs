//! memcached's text protocol as both clients speak it: keys, requests, and the reading of
//! replies with every length a server sends bounded before anything is allocated.

use std::collections::HashMap;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs as _};

use super::{Lookup, McError};
use crate::feed::fnv1a64;

/// The longest key memcached accepts, in bytes.
pub const MAX_KEY_LEN: usize = 250;

/// memcached's default item size limit (`-I`), 1 MiB: the largest value a client accepts
/// unless told otherwise (`with_max_value`).
pub const DEFAULT_MAX_VALUE: usize = 1 << 20;

/// The longest reply line read: a `VALUE <key> <flags> <bytes> [<cas>]` line with the longest
/// key and numbers is under 300 bytes.
pub(crate) const MAX_LINE: usize = 512;

/// Check that memcached's text protocol can carry `key`.
///
/// # Examples
///
/// ```
/// use asynq_examples::memcached::validate_key;
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
    Err(McError::InvalidKey {
        key: key.chars().take(60).collect(),
        reason,
    })
}

/// The keys of one multi-get, sorted by server: each key's outcome so far (invalid keys fail
/// before any I/O, the others start as misses), and per server holding some valid key, the
/// indices of its keys.
pub(crate) fn shard(keys: &[String], servers: usize) -> (Vec<Lookup>, Vec<(usize, Vec<usize>)>) {
    let mut out: Vec<Lookup> = vec![Ok(None); keys.len()];
    let mut shards: Vec<Vec<usize>> = vec![Vec::new(); servers];
    for (i, key) in keys.iter().enumerate() {
        match validate_key(key) {
            Ok(()) => shards[server_index(key, servers)].push(i),
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

/// The server of `key` among `servers`: FNV-1a of the key modulo the server count.
pub(crate) fn server_index(key: &str, servers: usize) -> usize {
    (fnv1a64(key.as_bytes()) % servers as u64) as usize
}

/// Each server's answer (or failure) to the keys it was asked: `results[j]` answers
/// `work[j]`. Keys it did not return stay misses.
pub(crate) fn spread(
    out: &mut [Lookup],
    keys: &[String],
    work: &[(usize, Vec<usize>)],
    results: Vec<Result<Vec<(String, String)>, McError>>,
) {
    for ((_, idx), result) in work.iter().zip(results) {
        match result {
            Ok(found) => {
                let mut found: HashMap<String, String> = found.into_iter().collect();
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
            server: String::new(),
            message: "no server given".to_string(),
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

/// Append `set <key> 0 0 <bytes>\r\n<value>\r\n`; a value longer than `max_value` (which the
/// server would refuse) is an error naming the key.
pub(crate) fn push_set(
    request: &mut Vec<u8>,
    key: &str,
    value: &str,
    max_value: usize,
) -> Result<(), McError> {
    validate_key(key)?;
    if value.len() > max_value {
        return Err(McError::InvalidKey {
            key: key.chars().take(60).collect(),
            reason: format!(
                "its value is {} bytes, more than the item size limit of {max_value}",
                value.len()
            ),
        });
    }
    request.extend_from_slice(format!("set {key} 0 0 {}\r\n", value.len()).as_bytes());
    request.extend_from_slice(value.as_bytes());
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
        let shown: String = text.trim_end().chars().take(80).collect();
        return Err(protocol(format!("unexpected answer {shown:?}")));
    }
    let (Some(key), Some(_flags), Some(bytes)) = (words.next(), words.next(), words.next()) else {
        return Err(protocol(format!("bad VALUE line {:?}", text.trim_end())));
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

/// The data block of a value, read as `<bytes>\r\n`: checked and decoded.
pub(crate) fn value_data(key: String, mut data: Vec<u8>) -> io::Result<(String, String)> {
    if !data.ends_with(b"\r\n") {
        return Err(protocol(format!("value of {key:?} not followed by \\r\\n")));
    }
    data.truncate(data.len() - 2);
    let value =
        String::from_utf8(data).map_err(|_| protocol(format!("value of {key:?} is not UTF-8")))?;
    Ok((key, value))
}

/// An error for a reply holding more values than keys were asked.
pub(crate) fn too_many_values(asked: usize) -> io::Error {
    protocol(format!("more VALUE blocks than the {asked} keys asked"))
}
