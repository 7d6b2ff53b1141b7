//! The blocking client's connections: a socket bounded by one deadline per exchange, and the
//! reading of replies.

use std::io::{self, BufRead as _, BufReader, Read as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::{MAX_LINE, check_line, too_many_values, value_data, value_header};

/// A socket whose every read and write ends by one deadline, set per exchange.
#[derive(Debug)]
pub(super) struct Timed {
    pub(super) stream: TcpStream,
    pub(super) deadline: Instant,
}

impl Timed {
    /// The time left, as a socket timeout; an error once it has passed.
    fn left(&self) -> io::Result<Duration> {
        match self.deadline.checked_duration_since(Instant::now()) {
            Some(left) if !left.is_zero() => Ok(left),
            _ => Err(io::Error::new(io::ErrorKind::TimedOut, "deadline passed")),
        }
    }
}

impl io::Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.set_read_timeout(Some(self.left()?))?;
        self.stream.read(buf)
    }
}

impl io::Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stream.set_write_timeout(Some(self.left()?))?;
        self.stream.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.stream.flush()
    }
}

/// An open connection to a server, with its read buffer.
pub(super) type Conn = BufReader<Timed>;

/// An I/O error in words, a timeout with its length.
pub(super) fn describe(e: &io::Error, timeout: Duration) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            format!("no answer within {timeout:?}")
        }
        _ => e.to_string(),
    }
}

/// One line of the server's answer (at most [`MAX_LINE`] bytes), `\r\n` included.
pub(super) fn read_line(conn: &mut Conn) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    conn.by_ref()
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)?;
    check_line(&line)?;
    Ok(line)
}

/// The answer to a `get` of `asked` keys: `VALUE <key> <flags> <bytes>` + data lines, then
/// `END`; each value at most `max_value` bytes.
pub(super) fn read_values(
    conn: &mut Conn,
    asked: usize,
    max_value: usize,
) -> io::Result<Vec<(String, String)>> {
    let mut found = Vec::new();
    loop {
        let Some((key, bytes)) = value_header(&read_line(conn)?, max_value)? else {
            return Ok(found);
        };
        if found.len() == asked {
            return Err(too_many_values(asked));
        }
        let mut data = vec![0; bytes + 2];
        conn.read_exact(&mut data)?;
        found.push(value_data(key, data)?);
    }
}
