//! `Content-Length: N\r\n\r\n<body>` framing (LSP style), used to talk
//! JSON-RPC with provider extensions.
//!
//! The decoder is a pure state machine over pushed chunks so it can be unit
//! tested and fuzzed without processes. It never trusts the other side: the
//! header block and the body are both capped before anything is buffered.

/// Largest body accepted from an extension.
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Largest header block (all header lines together) accepted.
const MAX_HEADER: usize = 8 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The header block grew past its cap without a blank line.
    HeaderTooLong,
    /// A header line that is not `Name: value`, or a bad Content-Length.
    BadHeader(String),
    /// No Content-Length header.
    MissingLength,
    /// Content-Length larger than the body cap.
    TooLarge(usize),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::HeaderTooLong => write!(f, "header block longer than {MAX_HEADER} bytes"),
            FrameError::BadHeader(h) => write!(f, "malformed header {h:?}"),
            FrameError::MissingLength => f.write_str("frame without a Content-Length header"),
            FrameError::TooLarge(n) => write!(
                f,
                "frame of {n} bytes exceeds the {} MiB cap",
                MAX_BODY / (1024 * 1024)
            ),
        }
    }
}

/// Encodes one message body as a frame.
pub fn encode(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 32);
    out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
    out.extend_from_slice(body);
    out
}

/// Incremental decoder.
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    /// Read position in `buf`; consumed bytes are compacted away lazily so a
    /// chunk holding many frames is not shifted once per frame.
    pos: usize,
    /// Body length once the header block has been parsed.
    body_len: Option<usize>,
    /// A large body being filled in place: its bytes go straight into an
    /// exactly sized buffer instead of the shared one, so a 16 MiB frame
    /// costs 16 MiB once, not a doubling buffer plus a copy.
    large: Option<Vec<u8>>,
}

/// Bodies above this size are assembled in their own buffer.
const LARGE_BODY: usize = 64 * 1024;

impl Decoder {
    pub fn new() -> Self {
        Decoder::default()
    }

    pub fn push(&mut self, mut chunk: &[u8]) {
        if let (Some(body), Some(len)) = (&mut self.large, self.body_len) {
            let take = (len - body.len()).min(chunk.len());
            body.extend_from_slice(&chunk[..take]);
            chunk = &chunk[take..];
        }
        if self.pos > 0 && self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
            if self.buf.capacity() > 1024 * 1024 {
                // A burst grew it; do not keep the memory for good.
                self.buf.shrink_to(LARGE_BODY);
            }
        } else if self.pos > 64 * 1024 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete body, `Ok(None)` when more input is needed. After an
    /// error the stream is unusable (framing is lost).
    pub fn next_frame(&mut self) -> Result<Option<Vec<u8>>, FrameError> {
        loop {
            if let (Some(body), Some(len)) = (&self.large, self.body_len) {
                if body.len() < len {
                    return Ok(None);
                }
                self.body_len = None;
                return Ok(self.large.take());
            }
            let pending = &self.buf[self.pos..];
            if let Some(len) = self.body_len {
                if pending.len() < len {
                    return Ok(None);
                }
                let body = pending[..len].to_vec();
                self.pos += len;
                self.body_len = None;
                return Ok(Some(body));
            }
            let Some(end) = find(pending, b"\r\n\r\n") else {
                // The terminator may be split across chunks: up to three of
                // its bytes can be pending beyond a header of full size.
                if pending.len() > MAX_HEADER + 3 {
                    return Err(FrameError::HeaderTooLong);
                }
                return Ok(None);
            };
            if end > MAX_HEADER {
                return Err(FrameError::HeaderTooLong);
            }
            let block = &pending[..end];
            let mut length = None;
            for line in block.split(|&b| b == b'\n') {
                let line = line.strip_suffix(b"\r").unwrap_or(line);
                if line.is_empty() {
                    continue;
                }
                let text = std::str::from_utf8(line)
                    .map_err(|_| FrameError::BadHeader(String::from_utf8_lossy(line).into()))?;
                let (name, value) = text
                    .split_once(':')
                    .ok_or_else(|| FrameError::BadHeader(text.chars().take(80).collect()))?;
                if name.trim().eq_ignore_ascii_case("content-length") {
                    let n: usize = value
                        .trim()
                        .parse()
                        .map_err(|_| FrameError::BadHeader(text.chars().take(80).collect()))?;
                    if n > MAX_BODY {
                        return Err(FrameError::TooLarge(n));
                    }
                    length = Some(n);
                }
            }
            let len = length.ok_or(FrameError::MissingLength)?;
            self.body_len = Some(len);
            self.pos += end + 4;
            if len > LARGE_BODY {
                let mut body = Vec::with_capacity(len);
                let available = (self.buf.len() - self.pos).min(len);
                body.extend_from_slice(&self.buf[self.pos..self.pos + available]);
                self.pos += available;
                self.large = Some(body);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(chunks: &[&[u8]]) -> Result<Vec<Vec<u8>>, FrameError> {
        let mut d = Decoder::new();
        let mut out = Vec::new();
        for c in chunks {
            d.push(c);
            while let Some(f) = d.next_frame()? {
                out.push(f);
            }
        }
        Ok(out)
    }

    #[test]
    fn round_trips_at_every_split_point() {
        let mut stream = encode(br#"{"a":1}"#);
        stream.extend(encode(b""));
        stream.extend(b"Content-Type: x\r\ncontent-length: 3\r\n\r\nabc");
        let want = vec![br#"{"a":1}"#.to_vec(), b"".to_vec(), b"abc".to_vec()];
        assert_eq!(decode_all(&[&stream]).unwrap(), want);
        for i in 0..stream.len() {
            let (a, b) = stream.split_at(i);
            assert_eq!(decode_all(&[a, b]).unwrap(), want, "split at {i}");
        }
    }

    #[test]
    fn large_bodies_assemble_in_place_across_splits() {
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let mut stream = encode(b"small");
        stream.extend(encode(&big));
        stream.extend(encode(b"after"));
        let want = vec![b"small".to_vec(), big.clone(), b"after".to_vec()];
        for split in [1, 10, 30, 4096, 65_536, 100_000, stream.len() - 3] {
            let chunks: Vec<&[u8]> = stream.chunks(split).collect();
            assert_eq!(decode_all(&chunks).unwrap(), want, "chunks of {split}");
        }
    }

    /// Regression (found by the property tests): a header block of nearly
    /// the full cap was refused when its terminator arrived split.
    #[test]
    fn the_header_cap_does_not_depend_on_chunking() {
        let pad = "x".repeat(MAX_HEADER - "Content-Length: 2\r\nX-Pad: ".len());
        let stream = format!("Content-Length: 2\r\nX-Pad: {pad}\r\n\r\nok");
        let bytes = stream.as_bytes();
        let whole = decode_all(&[bytes]);
        assert_eq!(whole, Ok(vec![b"ok".to_vec()]));
        for i in 0..bytes.len() {
            let (a, b) = bytes.split_at(i);
            assert_eq!(decode_all(&[a, b]), whole, "split at {i}");
        }
    }

    #[test]
    fn rejects_what_it_cannot_trust() {
        assert_eq!(
            decode_all(&[b"Content-Length: banana\r\n\r\n"]),
            Err(FrameError::BadHeader("Content-Length: banana".into()))
        );
        assert_eq!(
            decode_all(&[b"Content-Length: 104857600\r\n\r\n"]),
            Err(FrameError::TooLarge(104_857_600))
        );
        assert_eq!(
            decode_all(&[b"X: y\r\n\r\n"]),
            Err(FrameError::MissingLength)
        );
        assert_eq!(
            decode_all(&[&vec![b'x'; MAX_HEADER + 10]]),
            Err(FrameError::HeaderTooLong)
        );
    }
}
