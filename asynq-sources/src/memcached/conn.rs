//! One connection to a memcached server, and one exchange on it: the request written while
//! the reply is read (a long request is answered before the server has all of it), each line
//! and value bounded before anything is allocated.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use super::protocol::{
    Found, MAX_LINE, check_deleted, check_line, check_stored, too_many_values, value_data,
    value_header,
};
use crate::cache::StoreMode;

/// The read buffer of a connection.
const READ_BUFFER: usize = 64 * 1024;

/// An open connection to a server.
#[derive(Debug)]
pub(super) struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

/// What the reply to a request is made of.
#[derive(Clone, Copy, Debug)]
pub(super) enum Reply {
    /// At most `asked` `VALUE` blocks of at most `max_value` bytes each, then `END`.
    Values { asked: usize, max_value: usize },
    /// One `STORED` line per store (or `NOT_STORED`, for `add`).
    Stored { n: usize, mode: StoreMode },
    /// One `DELETED` or `NOT_FOUND` line per delete.
    Deleted { n: usize },
}

impl Conn {
    /// A new connection to `addr`, within `timeout`.
    pub(super) async fn open(addr: SocketAddr, timeout: Duration) -> io::Result<Conn> {
        let stream = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(stream) => stream?,
            Err(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("no answer within {timeout:?}"),
                ));
            }
        };
        stream.set_nodelay(true)?;
        let (read, writer) = stream.into_split();
        Ok(Conn {
            reader: BufReader::with_capacity(READ_BUFFER, read),
            writer,
        })
    }

    /// Send `request` and read its reply: the values found, for a `get`.
    pub(super) async fn talk(&mut self, request: &[u8], reply: Reply) -> io::Result<Found> {
        let Conn { reader, writer } = self;
        let write = async {
            writer.write_all(request).await?;
            writer.flush().await
        };
        let read = read_reply(reader, reply);
        let ((), found) = futures::future::try_join(write, read).await?;
        Ok(found)
    }
}

/// One line of the server's answer (at most [`MAX_LINE`] bytes), `\r\n` included.
async fn read_line(reader: &mut BufReader<OwnedReadHalf>) -> io::Result<Vec<u8>> {
    let mut line = Vec::new();
    (&mut *reader)
        .take(MAX_LINE as u64)
        .read_until(b'\n', &mut line)
        .await?;
    check_line(&line)?;
    Ok(line)
}

/// The reply to a request, as `reply` describes it.
async fn read_reply(reader: &mut BufReader<OwnedReadHalf>, reply: Reply) -> io::Result<Found> {
    match reply {
        Reply::Values { asked, max_value } => {
            let mut found = Vec::new();
            loop {
                let Some((key, bytes)) = value_header(&read_line(reader).await?, max_value)? else {
                    return Ok(found);
                };
                if found.len() == asked {
                    return Err(too_many_values(asked));
                }
                // `bytes` is at most `max_value`: checked by value_header.
                let mut data = vec![0; bytes + 2];
                reader.read_exact(&mut data).await?;
                found.push(value_data(key, data)?);
            }
        }
        Reply::Stored { n, mode } => {
            for _ in 0..n {
                check_stored(&read_line(reader).await?, mode)?;
            }
            Ok(Vec::new())
        }
        Reply::Deleted { n } => {
            for _ in 0..n {
                check_deleted(&read_line(reader).await?)?;
            }
            Ok(Vec::new())
        }
    }
}
