//! Incremental parser for the chunked transfer coding (RFC 9112 §7.1).
//!
//! The router forwards chunked bodies byte for byte, but it must know where a message ends to
//! reuse the connection and to find the next pipelined request. Fed arbitrary slices, the
//! parser reports how many bytes belong to the message and, for callers that need the decoded
//! payload (HTTP/2 clients, HTTP/1.0 clients), which ranges are chunk data.

use std::ops::Range;

/// Longest chunk-size line extension we accept, and the longest trailer section.
const MAX_EXTENSION: usize = 4096;
const MAX_TRAILERS: usize = 16 * 1024;

/// The body is not valid chunked coding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("invalid chunked body: {0}")]
pub(crate) struct ChunkError(&'static str);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading hex digits of a chunk size; `digits` counts them.
    Size {
        size: u64,
        digits: u8,
    },
    /// Skipping a chunk extension up to CR.
    Extension {
        size: u64,
        seen: usize,
    },
    /// Expecting LF after the size line's CR.
    SizeLf {
        size: u64,
    },
    /// Inside chunk data.
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart {
        seen: usize,
    },
    TrailerLine {
        seen: usize,
    },
    TrailerLf {
        seen: usize,
    },
    /// Expecting the LF of the final empty line.
    EndLf,
    Done,
}

/// Where a chunked message stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkedParser {
    state: State,
}

impl Default for ChunkedParser {
    fn default() -> Self {
        ChunkedParser {
            state: State::Size { size: 0, digits: 0 },
        }
    }
}

impl ChunkedParser {
    /// True once the final chunk and trailers have been seen.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes bytes of `input` up to the end of the message. Returns how many bytes belong to
    /// the message; `on_data` receives the ranges (within `input`) that are chunk payload.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        mut on_data: impl FnMut(Range<usize>),
    ) -> Result<usize, ChunkError> {
        let mut i = 0;
        while i < input.len() && self.state != State::Done {
            let b = input[i];
            self.state = match self.state {
                State::Size { size, digits } => match hex_value(b) {
                    Some(v) if digits < 16 => State::Size {
                        size: size << 4 | u64::from(v),
                        digits: digits + 1,
                    },
                    Some(_) => return Err(ChunkError("chunk size too large")),
                    None if digits == 0 => return Err(ChunkError("missing chunk size")),
                    None => match b {
                        b'\r' => State::SizeLf { size },
                        b';' | b' ' | b'\t' => State::Extension { size, seen: 0 },
                        _ => return Err(ChunkError("bad character in chunk size")),
                    },
                },
                State::Extension { size, seen } => match b {
                    b'\r' => State::SizeLf { size },
                    b'\n' => return Err(ChunkError("bare LF in chunk extension")),
                    _ if seen >= MAX_EXTENSION => {
                        return Err(ChunkError("chunk extension too long"));
                    }
                    _ => State::Extension {
                        size,
                        seen: seen + 1,
                    },
                },
                State::SizeLf { size } => match b {
                    b'\n' if size == 0 => State::TrailerStart { seen: 0 },
                    b'\n' => State::Data { left: size },
                    _ => return Err(ChunkError("expected LF after chunk size")),
                },
                State::Data { left } => {
                    let available = (input.len() - i) as u64;
                    let take = left.min(available) as usize;
                    on_data(i..i + take);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    continue;
                }
                State::DataCr if b == b'\r' => State::DataLf,
                State::DataLf if b == b'\n' => State::Size { size: 0, digits: 0 },
                State::DataCr | State::DataLf => {
                    return Err(ChunkError("chunk data not followed by CRLF"));
                }
                State::TrailerStart { .. } if b == b'\r' => State::EndLf,
                State::TrailerStart { seen } | State::TrailerLine { seen } => match b {
                    b'\r' => State::TrailerLf { seen },
                    b'\n' => return Err(ChunkError("bare LF in trailer")),
                    _ if seen >= MAX_TRAILERS => return Err(ChunkError("trailers too long")),
                    _ => State::TrailerLine { seen: seen + 1 },
                },
                State::TrailerLf { seen } if b == b'\n' => State::TrailerStart { seen },
                State::TrailerLf { .. } => return Err(ChunkError("expected LF in trailer")),
                State::EndLf if b == b'\n' => State::Done,
                State::EndLf => return Err(ChunkError("expected LF after last chunk")),
                State::Done => unreachable!("loop stops at Done"),
            };
            i += 1;
        }
        Ok(i)
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn decode_all(input: &[u8], split_every: usize) -> Result<(usize, Vec<u8>, bool), ChunkError> {
        let mut parser = ChunkedParser::default();
        let mut consumed = 0;
        let mut data = Vec::new();
        for piece in input.chunks(split_every.max(1)) {
            if parser.is_done() {
                break;
            }
            let n = parser.feed(piece, |r| data.extend_from_slice(&piece[r]))?;
            consumed += n;
        }
        Ok((consumed, data, parser.is_done()))
    }

    #[test]
    fn decodes_a_message_and_stops_at_its_end() {
        let msg = b"4\r\nWiki\r\n5;ext=1\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\nGET / HTTP/1.1";
        for split in [1, 2, 3, 7, 100] {
            let (consumed, data, done) = decode_all(msg, split).unwrap();
            assert!(done);
            assert_eq!(data, b"Wikipedia in\r\n\r\nchunks.");
            assert_eq!(&msg[consumed..], b"GET / HTTP/1.1", "split {split}");
        }
    }

    #[test]
    fn incomplete_message_is_not_done() {
        let (consumed, _, done) = decode_all(b"5\r\nhel", 100).unwrap();
        assert_eq!((consumed, done), (6, false));
        let (_, _, done) = decode_all(b"0\r\n", 100).unwrap();
        assert!(!done);
    }

    #[test]
    fn malformed_bodies_are_errors() {
        for bad in [
            &b"\r\n"[..],
            b"x\r\n",
            b"5\nhello\r\n0\r\n\r\n",
            b"5\r\nhelloXX0\r\n\r\n",
            b"11111111111111111\r\n",
            b"0\r\nfoo\n",
            b"0\r\n\rX",
        ] {
            assert!(
                decode_all(bad, 100).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    proptest! {
        #[test]
        fn any_chunking_of_any_payload_round_trips(
            payload in proptest::collection::vec(any::<u8>(), 0..2000),
            sizes in proptest::collection::vec(1usize..300, 1..20),
            split in 1usize..64,
        ) {
            let mut encoded = Vec::new();
            let mut rest = &payload[..];
            let mut k = 0;
            while !rest.is_empty() {
                let n = sizes[k % sizes.len()].min(rest.len());
                encoded.extend_from_slice(format!("{n:x}\r\n").as_bytes());
                encoded.extend_from_slice(&rest[..n]);
                encoded.extend_from_slice(b"\r\n");
                rest = &rest[n..];
                k += 1;
            }
            encoded.extend_from_slice(b"0\r\n\r\n");
            let total = encoded.len();
            encoded.extend_from_slice(b"NEXT");
            let (consumed, data, done) = decode_all(&encoded, split).unwrap();
            prop_assert!(done);
            prop_assert_eq!(consumed, total);
            prop_assert_eq!(data, payload);
        }

        #[test]
        fn never_panics_on_garbage(input in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = decode_all(&input, 3);
        }
    }
}
