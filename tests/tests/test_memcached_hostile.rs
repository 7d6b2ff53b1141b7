//! The memcached client, used from a plain thread (its own runtime) and from inside tokio (the
//! caller's runtime), against a fake server sending hostile replies: a huge length, garbage, an endless line, more values
//! than asked, silence, an answer dribbled a byte at a time. Each fails only the call's keys
//! of that server, with an error naming it, within one deadline per exchange, without
//! allocating what the server claims; the failed server is then backed off (not asked) and
//! reported in the client's health, and asked again once the back-off ends.

use std::time::Duration;

use asynq_examples::memcached::{Backoff, Lookup, McError, MemcachedClient, ServerHealth};
use asynq_tests::fake_memcached::{FakeMemcached, Reply};

/// The two ways of using the client, one interface: a multi-get and the servers' health.
trait Client {
    fn get(&self, keys: &[&str]) -> Vec<Lookup>;
    fn health(&self) -> Vec<ServerHealth>;
}

/// Made outside tokio, awaited by a plain executor.
struct Blocking(MemcachedClient);

impl Client for Blocking {
    fn get(&self, keys: &[&str]) -> Vec<Lookup> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        futures::executor::block_on(self.0.get_multi(&keys))
    }
    fn health(&self) -> Vec<ServerHealth> {
        self.0.health()
    }
}

/// Made inside a current-thread tokio runtime, awaited there.
struct Async(MemcachedClient, tokio::runtime::Runtime);

impl Client for Async {
    fn get(&self, keys: &[&str]) -> Vec<Lookup> {
        let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
        self.1.block_on(self.0.get_multi(&keys))
    }
    fn health(&self) -> Vec<ServerHealth> {
        self.0.health()
    }
}

const BACKOFF: Backoff = Backoff {
    first: Duration::from_millis(300),
    max: Duration::from_secs(5),
};

/// Both clients of `servers`, with a 1 s connect timeout, `io` per exchange, values up to
/// `max_value`, and a short back-off.
fn clients(
    servers: &[&str],
    io: Duration,
    max_value: usize,
) -> Vec<(&'static str, Box<dyn Client>)> {
    let blocking = MemcachedClient::with_backoff(servers, BACKOFF)
        .unwrap()
        .with_timeouts(Duration::from_secs(1), io)
        .with_max_value(max_value);
    let tokio = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let async_client = tokio
        .block_on(async { MemcachedClient::with_backoff(servers, BACKOFF) })
        .unwrap()
        .with_timeouts(Duration::from_secs(1), io)
        .with_max_value(max_value);
    vec![
        ("blocking", Box::new(Blocking(blocking))),
        ("async", Box::new(Async(async_client, tokio))),
    ]
}

/// The server error of one key: its server and message.
fn server_error(lookup: &Lookup) -> (String, String) {
    match lookup {
        Err(McError::Server {
            store: "memcached",
            server,
            message,
        }) => (server.clone(), message.clone()),
        other => panic!("not a server error: {other:?}"),
    }
}

#[test]
fn hostile_replies_fail_only_their_call_naming_the_server() {
    let one_mib = 1 << 20;
    let cases: Vec<(&str, Reply, usize, &str)> = vec![
        (
            "a terabyte value",
            Reply::Bytes(b"VALUE k 0 1000000000000\r\n".to_vec()),
            one_mib,
            "a VALUE of 1000000000000 bytes for \"k\", more than the item size limit of 1048576",
        ),
        (
            "a length past u64",
            Reply::Bytes(b"VALUE k 0 99999999999999999999999\r\n".to_vec()),
            one_mib,
            "bad VALUE length",
        ),
        (
            "a value over a configured limit",
            Reply::Bytes(b"VALUE k 0 20\r\n01234567890123456789\r\nEND\r\n".to_vec()),
            10,
            "more than the item size limit of 10",
        ),
        (
            "garbage",
            Reply::Bytes(b"HELLO THERE\r\n".to_vec()),
            one_mib,
            "unexpected answer \"HELLO THERE\"",
        ),
        (
            "an endless line",
            Reply::Bytes(vec![b'x'; 100_000]),
            one_mib,
            "a reply line longer than 512 bytes",
        ),
        (
            "more values than keys",
            Reply::Bytes(b"VALUE k 0 1\r\na\r\nVALUE k 0 1\r\nb\r\nEND\r\n".to_vec()),
            one_mib,
            "more VALUE blocks than the 1 keys asked",
        ),
        (
            "silence",
            Reply::Silence,
            one_mib,
            "request: no answer within 400ms",
        ),
        (
            // Every byte comes within any per-read timeout; the whole answer takes 2.5 s.
            "an answer dribbled a byte every 100 ms",
            Reply::Dribble(
                b"VALUE k 0 5\r\nhello\r\nEND\r\n".to_vec(),
                Duration::from_millis(100),
            ),
            one_mib,
            "request: no answer within 400ms",
        ),
    ];
    for (case, reply, max_value, says) in cases {
        let fake = FakeMemcached::start(reply);
        let healthy = FakeMemcached::start(Reply::Honest);
        let servers = [fake.addr(), healthy.addr()];
        for (client_name, client) in clients(&servers, Duration::from_millis(400), max_value) {
            let what = format!("{client_name} client, {case}");
            // Keys on both servers: find one of each.
            let probe = MemcachedClient::new(servers).unwrap();
            let on_fake = (0..)
                .map(|i| format!("k{i}"))
                .find(|k| probe.server_index(k) == 0)
                .unwrap();
            let on_healthy = (0..)
                .map(|i| format!("k{i}"))
                .find(|k| probe.server_index(k) == 1)
                .unwrap();
            let got = client.get(&[&on_fake, &on_healthy]);
            let (server, message) = server_error(&got[0]);
            assert_eq!(server, fake.addr(), "{what}");
            assert!(message.contains(says), "{what}: {message}");
            assert_eq!(got[1], Ok(None), "{what}: the healthy server's key");

            // Backed off: the next call does not reach the fake, and says why.
            let requests = fake.requests();
            let got = client.get(&[&on_fake]);
            assert!(
                matches!(&got[0], Err(McError::BackedOff { server, cause, .. })
                    if server == fake.addr() && cause.contains(says)),
                "{what}: {:?}",
                got[0]
            );
            assert!(
                got[0]
                    .as_ref()
                    .unwrap_err()
                    .to_string()
                    .starts_with(&format!(
                        "memcached server {}: not asked, backed off",
                        fake.addr()
                    ))
            );
            assert_eq!(fake.requests(), requests, "{what}: asked while backed off");
            let health = &client.health()[0];
            assert!(health.backed_off, "{what}: {health:?}");
            assert_eq!((health.failures, health.skipped), (1, 1), "{what}");
            assert!(!client.health()[1].backed_off, "{what}");
        }
    }
}

#[test]
fn a_backed_off_server_is_asked_again_later_and_recovers() {
    let fake = FakeMemcached::start(Reply::Bytes(b"SERVER_ERROR out of memory\r\n".to_vec()));
    for (client_name, client) in clients(&[fake.addr()], Duration::from_millis(500), 1 << 20) {
        fake.set_reply(Reply::Bytes(b"SERVER_ERROR out of memory\r\n".to_vec()));
        assert!(client.get(&["a"])[0].is_err(), "{client_name}");
        assert!(matches!(
            client.get(&["a"])[0],
            Err(McError::BackedOff { .. })
        ));
        // Still failing when retried: backed off again, for longer.
        std::thread::sleep(BACKOFF.first + Duration::from_millis(50));
        assert!(matches!(client.get(&["a"])[0], Err(McError::Server { .. })));
        assert!(client.health()[0].backed_off);
        // Healthy again: the retry after the (doubled) back-off succeeds.
        fake.set_reply(Reply::Honest);
        std::thread::sleep(2 * BACKOFF.first + Duration::from_millis(50));
        assert_eq!(client.get(&["a"]), [Ok(None)], "{client_name}");
        let health = &client.health()[0];
        assert!(!health.backed_off, "{client_name}: {health:?}");
        assert_eq!(health.failures, 2, "{client_name}");
        assert!(
            health
                .last_error
                .as_deref()
                .unwrap()
                .contains("SERVER_ERROR")
        );
    }
}
