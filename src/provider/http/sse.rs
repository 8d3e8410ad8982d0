//! Server-sent events parser (the WHATWG `text/event-stream` rules).
//!
//! A pure state machine over pushed byte chunks, so chunk boundaries can fall
//! anywhere (inside a field name, between `\r` and `\n`, inside a multi-byte
//! character) and the result is the same. Lines end with `\n`, `\r\n` or a
//! lone `\r`; `data:` lines join with `\n`; `:` lines are comments; an empty
//! line dispatches the event. One event's data is capped so a server that
//! never sends a blank line cannot grow memory without bound.

/// Largest accepted event (all its `data:` lines together).
pub const MAX_EVENT: usize = 16 * 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// The `event:` field, empty when absent (the spec's "message").
    pub event: String,
    pub data: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge;

impl std::fmt::Display for TooLarge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "an SSE event exceeded {} MiB", MAX_EVENT / (1024 * 1024))
    }
}

#[derive(Debug, Default)]
pub struct Parser {
    buf: Vec<u8>,
    pos: usize,
    /// The previous chunk ended in `\r`: a `\n` starting the next one belongs
    /// to the same line end.
    skip_lf: bool,
    event: String,
    data: Vec<u8>,
    has_data: bool,
}

impl Parser {
    pub fn new() -> Self {
        Parser::default()
    }

    pub fn push(&mut self, chunk: &[u8]) {
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, `Ok(None)` when more input is needed.
    pub fn next_event(&mut self) -> Result<Option<Event>, TooLarge> {
        loop {
            if self.skip_lf && self.pos < self.buf.len() {
                if self.buf[self.pos] == b'\n' {
                    self.pos += 1;
                }
                self.skip_lf = false;
            }
            let rest = &self.buf[self.pos..];
            let Some(end) = memchr::memchr2(b'\n', b'\r', rest) else {
                if rest.len() + self.data.len() > MAX_EVENT {
                    return Err(TooLarge);
                }
                return Ok(None);
            };
            // The same cap whether the line arrived whole or in pieces.
            if end > MAX_EVENT {
                return Err(TooLarge);
            }
            let line_end = self.pos + end;
            let mut next = line_end + 1;
            if self.buf[line_end] == b'\r' {
                match self.buf.get(next) {
                    Some(b'\n') => next += 1,
                    Some(_) => {}
                    None => self.skip_lf = true,
                }
            }
            let start = self.pos;
            self.pos = next;
            // Fields are read straight from the buffer: one copy of a data
            // line (into the event), none for the line itself.
            let line = &self.buf[start..line_end];
            if line.is_empty() {
                if let Some(event) = self.dispatch() {
                    return Ok(Some(event));
                }
                continue;
            }
            if line[0] == b':' {
                continue;
            }
            let (field, value) = match memchr::memchr(b':', line) {
                Some(i) => {
                    let v = &line[i + 1..];
                    (&line[..i], v.strip_prefix(b" ").unwrap_or(v))
                }
                None => (line, &[][..]),
            };
            match field {
                b"data" => {
                    if self.data.len() + value.len() > MAX_EVENT {
                        return Err(TooLarge);
                    }
                    self.data.extend_from_slice(value);
                    self.data.push(b'\n');
                    self.has_data = true;
                }
                b"event" => self.event = String::from_utf8_lossy(value).into_owned(),
                // `id` and `retry` matter only to reconnecting browsers.
                _ => {}
            }
        }
    }

    /// An empty line: the event collected so far, if it has data.
    fn dispatch(&mut self) -> Option<Event> {
        if !self.has_data {
            self.event.clear();
            return None;
        }
        let mut data = std::mem::take(&mut self.data);
        if data.last() == Some(&b'\n') {
            data.pop();
        }
        self.has_data = false;
        // Lines were split on ASCII bytes only, so a multi-byte character is
        // never cut; invalid UTF-8 from a broken server is replaced, not fatal.
        let data = String::from_utf8(data)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        Some(Event {
            event: std::mem::take(&mut self.event),
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(chunks: &[&[u8]]) -> Vec<Event> {
        let mut p = Parser::new();
        let mut out = Vec::new();
        for c in chunks {
            p.push(c);
            while let Some(e) = p.next_event().unwrap() {
                out.push(e);
            }
        }
        out
    }

    fn ev(event: &str, data: &str) -> Event {
        Event {
            event: event.into(),
            data: data.into(),
        }
    }

    const STREAM: &[u8] = b": hello\n\nevent: message_start\ndata: {\"a\":1}\n\n\
event: ping\r\ndata: {\"type\":\r\ndata: \"ping\"}\r\n\r\n\
data:no-space\rdata: x\r\r\
id: 7\nretry: 10\ndata: caf\xc3\xa9\n\n\
event: lonely\n\n\
data: [DONE]\n\n";

    fn expected() -> Vec<Event> {
        vec![
            ev("message_start", "{\"a\":1}"),
            ev("ping", "{\"type\":\n\"ping\"}"),
            ev("", "no-space\nx"),
            ev("", "café"),
            ev("", "[DONE]"),
        ]
    }

    #[test]
    fn parses_fields_comments_and_line_endings() {
        assert_eq!(parse(&[STREAM]), expected());
    }

    #[test]
    fn any_single_split_gives_the_same_events() {
        for i in 0..=STREAM.len() {
            let (a, b) = STREAM.split_at(i);
            assert_eq!(parse(&[a, b]), expected(), "split at {i}");
        }
    }

    #[test]
    fn byte_by_byte_gives_the_same_events() {
        let chunks: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(parse(&chunks), expected());
    }

    /// Regression (found by the property tests): an over-long comment line
    /// passed when it arrived whole but was refused when it arrived in pieces.
    #[test]
    fn the_line_cap_does_not_depend_on_chunking() {
        let mut line = b": ".to_vec();
        line.extend(std::iter::repeat_n(b'x', MAX_EVENT + 1));
        line.extend_from_slice(b"\n\ndata: ok\n\n");
        let mut whole = Parser::new();
        whole.push(&line);
        assert_eq!(whole.next_event(), Err(TooLarge));
        let mut pieces = Parser::new();
        let mut result = Ok(None);
        for chunk in line.chunks(1 << 20) {
            pieces.push(chunk);
            result = pieces.next_event();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(TooLarge));
    }

    #[test]
    fn an_endless_event_is_refused() {
        let mut p = Parser::new();
        let line = vec![b'x'; 1024 * 1024];
        let mut result = Ok(None);
        p.push(b"data: ");
        for _ in 0..20 {
            p.push(&line);
            result = p.next_event();
            if result.is_err() {
                break;
            }
        }
        assert_eq!(result, Err(TooLarge));
    }
}
