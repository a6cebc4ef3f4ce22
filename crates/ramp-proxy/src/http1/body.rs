//! Moving a message body from one connection to another, framing-aware.

use std::io;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::chunked::{ChunkError, ChunkedParser};
use super::headers::Framing;

/// Read size for body copies.
const READ_CHUNK: usize = 16 * 1024;

/// Tracks how much of a body is left and what of it must be forwarded.
#[derive(Debug, Clone)]
pub(crate) struct BodyReader {
    framing: Framing,
    left: u64,
    chunked: ChunkedParser,
    /// Forward only chunk payloads (for peers that do not speak the chunked coding).
    decode: bool,
    done: bool,
}

impl BodyReader {
    pub(crate) fn new(framing: Framing, decode: bool) -> Self {
        BodyReader {
            framing,
            left: match framing {
                Framing::Length(n) => n,
                _ => 0,
            },
            chunked: ChunkedParser::default(),
            decode: decode && framing == Framing::Chunked,
            done: framing == Framing::Empty,
        }
    }

    /// The whole body has passed through.
    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// Takes the part of `src` that belongs to the body and appends what must be forwarded to
    /// `out`. Returns the number of bytes of `src` consumed.
    pub(crate) fn take(&mut self, src: &[u8], out: &mut Vec<u8>) -> Result<usize, ChunkError> {
        if self.done {
            return Ok(0);
        }
        match self.framing {
            Framing::Empty => Ok(0),
            Framing::Length(_) => {
                let n = self.left.min(src.len() as u64) as usize;
                out.extend_from_slice(&src[..n]);
                self.left -= n as u64;
                self.done = self.left == 0;
                Ok(n)
            }
            Framing::Chunked => {
                let n = if self.decode {
                    self.chunked
                        .feed(src, |range| out.extend_from_slice(&src[range]))?
                } else {
                    let n = self.chunked.feed(src, |_| {})?;
                    out.extend_from_slice(&src[..n]);
                    n
                };
                self.done = self.chunked.is_done();
                Ok(n)
            }
            Framing::UntilClose => {
                out.extend_from_slice(src);
                Ok(src.len())
            }
        }
    }

    /// The source reached end of stream: true (and done) if that ends the body, which only
    /// a close-delimited body may do.
    pub(crate) fn end_at_eof(&mut self) -> bool {
        self.done |= self.framing == Framing::UntilClose;
        self.done
    }

    /// Body bytes still to come, when the length is known.
    pub(crate) fn remaining(&self) -> Option<u64> {
        match self.framing {
            Framing::Length(_) => Some(self.left),
            Framing::Empty => Some(0),
            _ => None,
        }
    }

    /// Bytes of `buf` that complete the body, if the whole body is already there.
    pub(crate) fn complete_in(&self, buf: &[u8]) -> Option<usize> {
        match self.framing {
            Framing::Empty => Some(0),
            Framing::Length(n) => (buf.len() as u64 >= n).then_some(n as usize),
            Framing::Chunked => {
                let mut probe = self.chunked.clone();
                let n = probe.feed(buf, |_| {}).ok()?;
                probe.is_done().then_some(n)
            }
            Framing::UntilClose => None,
        }
    }
}

/// Why a body copy stopped early.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CopyError {
    #[error("sender closed before the body ended")]
    SourceClosed,
    #[error("reading the body: {0}")]
    SourceRead(io::Error),
    #[error("sender stalled for longer than the timeout")]
    SourceTimeout,
    #[error("writing the body: {0}")]
    SinkWrite(io::Error),
    #[error(transparent)]
    Framing(#[from] ChunkError),
}

/// Copies the rest of a body from `src` to `dst`. `pending` holds bytes to send first (a head);
/// `src_buf` holds bytes already read from `src`, and keeps whatever follows the body.
pub(crate) async fn forward_body(
    reader: &mut BodyReader,
    src: &mut TcpStream,
    src_buf: &mut BytesMut,
    dst: &mut TcpStream,
    pending: &mut Vec<u8>,
    read_timeout: Duration,
) -> Result<(), CopyError> {
    loop {
        let used = reader.take(src_buf, pending)?;
        src_buf.advance(used);
        if reader.is_done() || !pending.is_empty() {
            dst.write_all(pending).await.map_err(CopyError::SinkWrite)?;
            pending.clear();
        }
        if reader.is_done() {
            return Ok(());
        }
        src_buf.reserve(READ_CHUNK);
        match tokio::time::timeout(read_timeout, src.read_buf(src_buf)).await {
            Err(_) => return Err(CopyError::SourceTimeout),
            Ok(Err(e)) => return Err(CopyError::SourceRead(e)),
            Ok(Ok(0)) if reader.end_at_eof() => return Ok(()),
            Ok(Ok(0)) => return Err(CopyError::SourceClosed),
            Ok(Ok(_)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bodies_stop_at_their_length() {
        let mut r = BodyReader::new(Framing::Length(5), false);
        let mut out = Vec::new();
        assert_eq!(r.take(b"hel", &mut out).unwrap(), 3);
        assert!(!r.is_done());
        assert_eq!(r.take(b"loGET", &mut out).unwrap(), 2);
        assert!(r.is_done());
        assert_eq!(out, b"hello");
    }

    #[test]
    fn chunked_passthrough_and_decode() {
        let body = b"3\r\nabc\r\n0\r\n\r\nrest";
        let mut out = Vec::new();
        let mut pass = BodyReader::new(Framing::Chunked, false);
        assert_eq!(pass.take(body, &mut out).unwrap(), body.len() - 4);
        assert_eq!(out, &body[..body.len() - 4]);
        out.clear();
        let mut decode = BodyReader::new(Framing::Chunked, true);
        decode.take(body, &mut out).unwrap();
        assert!(decode.is_done());
        assert_eq!(out, b"abc");
    }

    #[test]
    fn complete_in_reports_buffered_bodies_without_consuming() {
        let r = BodyReader::new(Framing::Chunked, false);
        assert_eq!(r.complete_in(b"1\r\na\r\n0\r\n\r\nX"), Some(11));
        assert_eq!(r.complete_in(b"1\r\na\r\n"), None);
        assert_eq!(
            BodyReader::new(Framing::Length(2), false).complete_in(b"a"),
            None
        );
        assert_eq!(
            BodyReader::new(Framing::Length(2), false).complete_in(b"abc"),
            Some(2)
        );
        assert_eq!(
            BodyReader::new(Framing::Empty, false).complete_in(b""),
            Some(0)
        );
    }

    #[test]
    fn only_close_delimited_bodies_may_end_at_eof() {
        let mut until_close = BodyReader::new(Framing::UntilClose, false);
        assert!(until_close.end_at_eof() && until_close.is_done());
        let mut length = BodyReader::new(Framing::Length(3), false);
        assert!(!length.end_at_eof() && !length.is_done());
        assert_eq!(length.remaining(), Some(3));
    }
}
