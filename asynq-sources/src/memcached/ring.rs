//! Which server holds a key: rendezvous hashing (highest random weight).
//!
//! Each key scores every server by a hash of the key and the server's name, and goes to the
//! server with the highest score. Adding a server to N moves only the keys it now wins, about
//! 1/(N+1) of them, all onto the new server; removing one moves only its own keys; and the
//! order in which servers are listed does not matter. (Modulo hashing, `hash % N`, moves
//! about N/(N+1) of the keys when a server is added.)
//!
//! A server is known by its name as configured (`host:port`), not by the address it resolves
//! to: `localhost:11211` and `127.0.0.1:11211` are different servers to the hash. This is not
//! libmemcached's ketama: other clients of the same servers place keys differently.

/// 64-bit FNV-1a of `bytes`.
pub(crate) fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// MurmurHash3's 64-bit finalizer: every bit of the input flips each bit of the output with
/// probability about 1/2, so the scores of one key on two servers are independent.
fn mix(mut h: u64) -> u64 {
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^= h >> 33;
    h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    h ^ (h >> 33)
}

/// The servers, as seeds of their scores.
#[derive(Clone, Debug)]
pub(crate) struct Ring {
    seeds: Vec<u64>,
}

impl Ring {
    /// The ring of servers named `names` (distinct).
    pub(crate) fn new<'a>(names: impl IntoIterator<Item = &'a str>) -> Ring {
        Ring {
            seeds: names
                .into_iter()
                .map(|name| mix(fnv1a64(name.as_bytes())))
                .collect(),
        }
    }

    /// The index of the server holding `key`.
    pub(crate) fn server_of(&self, key: &str) -> usize {
        let h = fnv1a64(key.as_bytes());
        let mut best = (0, 0);
        for (i, &seed) in self.seeds.iter().enumerate() {
            let score = mix(h ^ seed);
            // Ties (one in 2^64) go to the larger seed, whatever the order of the list.
            if i == 0 || (score, seed) > (best.0, self.seeds[best.1]) {
                best = (score, i);
            }
        }
        best.1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("10.0.0.{i}:11211")).collect()
    }

    fn ring(names: &[String]) -> Ring {
        Ring::new(names.iter().map(String::as_str))
    }

    #[test]
    fn adding_a_server_to_n_moves_about_one_in_n_plus_one_keys_all_to_it() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("user:{i}:name")).collect();
        for n in [1, 2, 3, 5, 9] {
            let before = names(n);
            let mut after = before.clone();
            after.push("10.0.1.99:11211".into());
            let (old, new) = (ring(&before), ring(&after));
            let moved: Vec<&String> = keys
                .iter()
                .filter(|k| before[old.server_of(k)] != after[new.server_of(k)])
                .collect();
            assert!(
                moved.iter().all(|k| new.server_of(k) == n),
                "only onto the new server"
            );
            let share = moved.len() as f64 / keys.len() as f64;
            let expected = 1.0 / (n + 1) as f64;
            assert!(
                (share - expected).abs() < 0.1 * expected + 0.01,
                "n={n}: {share} moved, expected about {expected}"
            );
        }
    }

    #[test]
    fn keys_spread_evenly_and_the_order_of_servers_does_not_matter() {
        let servers = names(4);
        let mut reversed = servers.clone();
        reversed.reverse();
        let (a, b) = (ring(&servers), ring(&reversed));
        let mut per_server = [0usize; 4];
        for i in 0..40_000 {
            let key = format!("k{i}");
            per_server[a.server_of(&key)] += 1;
            assert_eq!(servers[a.server_of(&key)], reversed[b.server_of(&key)]);
        }
        for count in per_server {
            assert!((9_000..11_000).contains(&count), "{per_server:?}");
        }
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let servers = names(5);
        let fewer: Vec<String> = servers
            .iter()
            .filter(|s| !s.contains(".2:"))
            .cloned()
            .collect();
        let (a, b) = (ring(&servers), ring(&fewer));
        for i in 0..10_000 {
            let key = format!("post:{i}");
            let was = &servers[a.server_of(&key)];
            if !was.contains(".2:") {
                assert_eq!(was, &fewer[b.server_of(&key)], "{key}");
            }
        }
    }
}
