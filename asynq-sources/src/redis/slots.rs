//! A Redis Cluster's hash slots: the slot of a key, and which node serves each slot (read from
//! `CLUSTER SLOTS`).
//!
//! The redis crate computes a key's slot (`cluster_routing::Slot::for_key`) but keeps the
//! number to itself, and the slot map of its cluster client is private too; we need both to
//! group a round's keys by node, so the slot function (CRC16-XMODEM of the key's hash tag, as
//! the cluster specification defines it) is written here, checked against the specification's
//! and the crate's figures in the tests.

use ::redis::Value;

/// The number of hash slots of a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// The hash slot of `key`: CRC16-XMODEM of its hash tag (the part between the first `{` and
/// the next `}`, when not empty) or of the whole key, modulo 16384.
pub fn slot(key: &[u8]) -> u16 {
    let tagged = key
        .iter()
        .position(|&b| b == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&b| b == b'}')?;
            Some(&rest[..close]).filter(|tag| !tag.is_empty())
        })
        .unwrap_or(key);
    crc16_xmodem(tagged) % SLOTS
}

/// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, bits not reflected.
fn crc16_xmodem(bytes: &[u8]) -> u16 {
    bytes.iter().fold(0u16, |mut crc, &b| {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
        crc
    })
}

/// Which node serves each slot (its master), as `CLUSTER SLOTS` said.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct SlotMap {
    /// The nodes, `host:port`, each once.
    nodes: Vec<String>,
    /// For each slot, the index of its node in `nodes`, or `None` when no node serves it.
    owner: Vec<Option<u16>>,
}

impl SlotMap {
    /// The map of a `CLUSTER SLOTS` reply from the node at `asked` (`host:port`; a node that
    /// reports an empty host means the host it was reached at). Every part of the reply is
    /// checked: at most 16384 ranges, within the slots, ports in range, at most 1000 nodes.
    pub(super) fn parse(reply: Value, asked: &str) -> Result<SlotMap, String> {
        let Value::Array(ranges) = reply else {
            return Err(format!("CLUSTER SLOTS answered {reply:?}, not an array"));
        };
        if ranges.len() > usize::from(SLOTS) {
            return Err(format!("CLUSTER SLOTS answered {} ranges", ranges.len()));
        }
        let asked_host = asked.rsplit_once(':').map_or(asked, |(host, _)| host);
        let mut map = SlotMap {
            nodes: Vec::new(),
            owner: vec![None; usize::from(SLOTS)],
        };
        for range in ranges {
            let Value::Array(parts) = range else {
                return Err("a range of CLUSTER SLOTS is not an array".to_string());
            };
            let (Some(first), Some(last), Some(Value::Array(master))) =
                (parts.first(), parts.get(1), parts.get(2))
            else {
                return Err(format!("a range of CLUSTER SLOTS reads {parts:?}"));
            };
            let (first, last) = (slot_number(first)?, slot_number(last)?);
            if first > last {
                return Err(format!("CLUSTER SLOTS gave the range {first}-{last}"));
            }
            let host = match master.first() {
                Some(Value::BulkString(h)) => String::from_utf8_lossy(h).into_owned(),
                Some(Value::SimpleString(h)) => h.clone(),
                _ => return Err(format!("a node of CLUSTER SLOTS reads {master:?}")),
            };
            let port = match master.get(1) {
                Some(Value::Int(p)) => u16::try_from(*p).ok().filter(|&p| p != 0),
                _ => None,
            }
            .ok_or_else(|| format!("a node of CLUSTER SLOTS reads {master:?}"))?;
            let host = if host.is_empty() || host == "?" {
                asked_host.to_string()
            } else {
                host
            };
            let node = format!("{host}:{port}");
            let index = match map.nodes.iter().position(|n| *n == node) {
                Some(i) => i,
                None if map.nodes.len() < 1000 => {
                    map.nodes.push(node);
                    map.nodes.len() - 1
                }
                None => return Err("CLUSTER SLOTS named more than 1000 nodes".to_string()),
            };
            for owner in &mut map.owner[usize::from(first)..=usize::from(last)] {
                *owner = Some(index as u16);
            }
        }
        Ok(map)
    }

    /// The node serving `slot` (`host:port`), if any.
    pub(super) fn node_of(&self, slot: u16) -> Option<&str> {
        let index = (*self.owner.get(usize::from(slot))?)?;
        self.nodes.get(usize::from(index)).map(String::as_str)
    }

    /// The nodes that serve some slot.
    pub(super) fn nodes(&self) -> &[String] {
        &self.nodes
    }
}

/// A slot number of `CLUSTER SLOTS`, checked.
fn slot_number(value: &Value) -> Result<u16, String> {
    match value {
        Value::Int(n) => u16::try_from(*n).ok().filter(|&n| n < SLOTS),
        _ => None,
    }
    .ok_or_else(|| format!("CLUSTER SLOTS gave the slot {value:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_those_of_the_specification() {
        // The CRC16 check value of the cluster specification, and keys whose slots the
        // specification and the redis crate's tests give.
        assert_eq!(crc16_xmodem(b"123456789"), 0x31C3);
        assert_eq!(slot(b"foo"), 12182);
        assert_eq!(slot(b"bar"), 5061);
        assert_eq!(slot(b"baz"), 4813);
        assert_eq!(slot(b"{bar}vaz"), 5061);
        assert_eq!(slot(b"{user1000}.following"), slot(b"user1000"));
        // An empty tag, or none closed, hashes the whole key.
        assert_eq!(slot(b"foo{}{bar}"), crc16_xmodem(b"foo{}{bar}") % SLOTS);
        assert_eq!(slot(b"foo{bar"), crc16_xmodem(b"foo{bar") % SLOTS);
        assert_eq!(slot(b"foo{{bar}}zap"), slot(b"{bar"));
    }

    fn node(host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::BulkString(host.into()),
            Value::Int(port),
            Value::BulkString(b"id".to_vec()),
        ])
    }

    fn range(first: i64, last: i64, master: Value) -> Value {
        Value::Array(vec![Value::Int(first), Value::Int(last), master])
    }

    #[test]
    fn the_map_follows_cluster_slots_and_refuses_nonsense() {
        let reply = Value::Array(vec![
            range(0, 5460, node("127.0.0.1", 7000)),
            range(5461, 10922, node("", 7001)),
            range(10923, 16383, node("127.0.0.1", 7000)),
        ]);
        let map = SlotMap::parse(reply, "10.0.0.1:7001").unwrap();
        assert_eq!(map.nodes(), ["127.0.0.1:7000", "10.0.0.1:7001"]);
        assert_eq!(map.node_of(0), Some("127.0.0.1:7000"));
        assert_eq!(map.node_of(5461), Some("10.0.0.1:7001"));
        assert_eq!(map.node_of(16383), Some("127.0.0.1:7000"));
        assert_eq!(map.node_of(16384), None);
        let partial =
            SlotMap::parse(Value::Array(vec![range(0, 10, node("h", 1))]), "h:1").unwrap();
        assert_eq!(partial.node_of(11), None);
        for bad in [
            Value::Int(1),
            Value::Array(vec![range(10, 5, node("h", 1))]),
            Value::Array(vec![range(0, 16384, node("h", 1))]),
            Value::Array(vec![range(0, 1, node("h", 70000))]),
            Value::Array(vec![range(0, 1, Value::Nil)]),
            Value::Array(vec![Value::Array(vec![Value::Int(0)])]),
        ] {
            assert!(SlotMap::parse(bad.clone(), "h:1").is_err(), "{bad:?}");
        }
    }
}
