//! The output of a running command: the tail that is kept for the result,
//! and the lines passed on to `ctx.env.updates` as they complete.
//!
//! Only the tail is kept because the end of a build or test log (the error,
//! the summary) is what the model needs; what was dropped is counted and
//! said at the top.

use tokio::sync::mpsc;

use crate::tools::ToolUpdate;

/// How much output is kept (the tail); the rest is counted and dropped.
pub(crate) const MAX_OUTPUT_BYTES: usize = 50 * 1024;
/// A line that never ends is passed on to the updates in pieces this big.
const MAX_LINE_BYTES: usize = 8 * 1024;

/// Keeps the tail of the output and passes each line on to `ctx.env.updates`
/// as it completes.
pub(super) struct Collector<'a> {
    tail: Tail,
    line: Vec<u8>,
    updates: &'a mpsc::Sender<ToolUpdate>,
}

impl<'a> Collector<'a> {
    pub(super) fn new(updates: &'a mpsc::Sender<ToolUpdate>) -> Self {
        Self {
            tail: Tail::new(MAX_OUTPUT_BYTES),
            line: Vec::new(),
            updates,
        }
    }

    pub(super) fn push(&mut self, bytes: &[u8]) {
        self.tail.push(bytes);
        let mut rest = bytes;
        while let Some(i) = rest.iter().position(|&b| b == b'\n') {
            self.line.extend_from_slice(&rest[..i]);
            self.send_line();
            rest = &rest[i + 1..];
        }
        self.line.extend_from_slice(rest);
        // A line that never ends is passed on in pieces.
        if self.line.len() >= MAX_LINE_BYTES {
            self.send_line();
        }
    }

    fn send_line(&mut self) {
        let line = std::mem::take(&mut self.line);
        let line = line.strip_suffix(b"\r").unwrap_or(&line);
        // Updates are a courtesy to the client: with nobody listening, or a
        // client that is not reading, the line is skipped (the result keeps
        // the output) instead of piling up in memory.
        let _ = self.updates.try_send(ToolUpdate::Output(
            String::from_utf8_lossy(line).into_owned(),
        ));
    }

    pub(super) fn finish(mut self) -> String {
        if !self.line.is_empty() {
            self.send_line();
        }
        self.tail.finish()
    }
}

/// The last `cap` bytes of the output, and how many came before them.
struct Tail {
    buf: Vec<u8>,
    dropped: usize,
    cap: usize,
}

impl Tail {
    fn new(cap: usize) -> Self {
        Self {
            buf: Vec::new(),
            dropped: 0,
            cap,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        // Trimming only past twice the cap keeps the copying amortised.
        if self.buf.len() > 2 * self.cap {
            self.trim_to(self.cap);
        }
    }

    fn trim_to(&mut self, keep: usize) {
        let cut = self.buf.len().saturating_sub(keep);
        self.buf.drain(..cut);
        self.dropped += cut;
    }

    fn finish(mut self) -> String {
        self.trim_to(self.cap);
        if self.dropped == 0 {
            return String::from_utf8_lossy(&self.buf).into_owned();
        }
        // Start on a whole line rather than halfway through one.
        if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
            if i + 1 < self.buf.len() {
                self.buf.drain(..=i);
                self.dropped += i + 1;
            }
        }
        format!(
            "[{} bytes of earlier output dropped; showing the last {} bytes]\n{}",
            self.dropped,
            self.buf.len(),
            String::from_utf8_lossy(&self.buf)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_keeps_the_end() {
        let mut t = Tail::new(10);
        for i in 0..10 {
            t.push(format!("line{i}\n").as_bytes());
        }
        assert_eq!(
            t.finish(),
            "[54 bytes of earlier output dropped; showing the last 6 bytes]\nline9\n"
        );
    }

    #[test]
    fn collector_sends_whole_lines() {
        let (tx, mut rx) = mpsc::channel(crate::tools::UPDATE_CAPACITY);
        let mut c = Collector::new(&tx);
        c.push(b"one\ntw");
        c.push(b"o\r\nthree");
        assert_eq!(c.finish(), "one\ntwo\r\nthree");
        let lines = crate::tools::test_util::lines(&mut rx);
        assert_eq!(lines, ["one", "two", "three"]);
    }
}
