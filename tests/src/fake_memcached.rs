//! A fake memcached server on a free port of 127.0.0.1 that answers what a test tells it to:
//! hostile replies (huge lengths, garbage, silence, an answer dribbled a byte at a time), or
//! honest ones (every `get` a miss, every `set` stored). It counts the connections it accepted
//! and the requests it read, and stops when dropped.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// How the fake answers each request line.
#[derive(Clone, Debug)]
pub enum Reply {
    /// Honestly: `END` for a `get` (every key a miss), `STORED` for a `set` (its data read).
    Honest,
    /// These bytes, whatever was asked.
    Bytes(Vec<u8>),
    /// Nothing, ever (the connection stays open).
    Silence,
    /// These bytes, one at a time, one every `every`.
    Dribble(Vec<u8>, Duration),
}

/// A fake memcached server; see the module docs.
#[derive(Debug)]
pub struct FakeMemcached {
    addr: String,
    reply: Arc<Mutex<Reply>>,
    connections: Arc<AtomicUsize>,
    requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl FakeMemcached {
    /// A fake answering with `reply`.
    pub fn start(reply: Reply) -> FakeMemcached {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free local port");
        let addr = listener.local_addr().unwrap().to_string();
        let reply = Arc::new(Mutex::new(reply));
        let connections = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let accept = {
            let (reply, connections, requests, stop) = (
                Arc::clone(&reply),
                Arc::clone(&connections),
                Arc::clone(&requests),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                let mut served = Vec::new();
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let (reply, requests, stop) =
                        (Arc::clone(&reply), Arc::clone(&requests), Arc::clone(&stop));
                    served.push(std::thread::spawn(move || {
                        serve(conn, &reply, &requests, &stop);
                    }));
                }
                for s in served {
                    let _ = s.join();
                }
            })
        };
        FakeMemcached {
            addr,
            reply,
            connections,
            requests,
            stop,
            accept: Some(accept),
        }
    }

    /// Its address, `127.0.0.1:<port>`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Answer with `reply` from now on.
    pub fn set_reply(&self, reply: Reply) {
        *self.reply.lock().unwrap() = reply;
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }

    /// Request lines read so far.
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for FakeMemcached {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr); // wakes the accept loop
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Answer one connection until the client hangs up or the fake stops.
fn serve(conn: TcpStream, reply: &Mutex<Reply>, requests: &AtomicUsize, stop: &AtomicBool) {
    let _ = conn.set_read_timeout(Some(Duration::from_millis(50)));
    let mut writer = conn.try_clone().expect("a second handle on the socket");
    let mut reader = BufReader::new(conn);
    let mut line = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        match reader.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with(b"\n") => {}
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue;
            }
            Err(_) => return,
        }
        requests.fetch_add(1, Ordering::SeqCst);
        let request = String::from_utf8_lossy(&line).into_owned();
        line.clear();
        let reply = reply.lock().unwrap().clone();
        let sent = match reply {
            Reply::Honest => honest(&request, &mut reader, &mut writer),
            Reply::Bytes(bytes) => writer.write_all(&bytes),
            Reply::Silence => Ok(()),
            Reply::Dribble(bytes, every) => bytes.iter().try_for_each(|b| {
                if stop.load(Ordering::SeqCst) {
                    return Err(std::io::ErrorKind::Interrupted.into());
                }
                std::thread::sleep(every);
                writer.write_all(&[*b])
            }),
        };
        if sent.is_err() {
            return;
        }
    }
}

/// `END` for a `get`; for a `set`, read its data and answer `STORED`.
fn honest(
    request: &str,
    reader: &mut BufReader<TcpStream>,
    writer: &mut TcpStream,
) -> std::io::Result<()> {
    let words: Vec<&str> = request.split_ascii_whitespace().collect();
    match words.as_slice() {
        ["set", _, _, _, bytes, ..] => {
            let n: usize = bytes.parse().unwrap_or(0);
            let mut data = vec![0; n + 2];
            let _ = reader.read_exact(&mut data);
            writer.write_all(b"STORED\r\n")
        }
        ["get", ..] => writer.write_all(b"END\r\n"),
        _ => writer.write_all(b"ERROR\r\n"),
    }
}
