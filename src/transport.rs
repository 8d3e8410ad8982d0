//! Stdio transport: a bounded line reader for commands and the one writer of
//! stdout, shared by both front ends (each encodes its own wire into it).
//!
//! Both ends run on dedicated OS threads rather than tokio tasks: stdin and
//! stdout are blocking file descriptors, and tokio's own `Stdout` hands every
//! write to its blocking pool, which costs more per frame than a thread that
//! owns the descriptor outright. The async side talks to them through bounded
//! channels, so a client that stops reading stdout pushes back on the turn
//! (and through it on the provider) instead of growing memory.

use std::io::{Read, Write};
use std::thread::JoinHandle;

use serde::Serialize;
use std::sync::Arc;

use tokio::sync::{mpsc, oneshot, OwnedSemaphorePermit, Semaphore};

use crate::protocol::{Frame, MessageUpdate, StreamEvent};

/// Inbound lines buffered between the stdin thread and the native front
/// end, which decodes them into the host's command channel (16 more, see
/// `host/link.rs`). Each may be up to the frame cap, so the two bound memory
/// at about `32 × max_frame_bytes` in the worst case while still letting a
/// burst of small commands flow without a context switch per line.
const INBOUND_CAPACITY: usize = 16;

/// Messages buffered for the writer thread (a message is one frame or a
/// batch of them).
const OUTBOUND_CAPACITY: usize = 1024;

/// Bytes buffered for the writer thread. The real bound on what a stalled
/// client can make the host hold: large enough that a fast stream rarely
/// waits on the writer, small next to the memory targets.
const OUTBOUND_BYTES: usize = 1024 * 1024;

/// How much stdin is read at once.
const READ_CHUNK: usize = 64 * 1024;

/// One decoded unit of input.
#[derive(Debug, PartialEq, Eq)]
pub enum Inbound {
    /// A complete line, without its `\n` (and without a trailing `\r`).
    Line(Vec<u8>),
    /// A line longer than the cap; its bytes were discarded as they arrived.
    TooLarge { bytes: usize },
}

/// Splits a byte stream into lines while never holding more than `max + 1`
/// bytes of one line. The remainder of an oversized line is skipped up to its
/// newline without being stored.
#[derive(Debug)]
pub struct LineDecoder {
    max: usize,
    buf: Vec<u8>,
    /// `Some(n)` while skipping an oversized line of which `n` bytes were seen.
    discarding: Option<usize>,
}

impl LineDecoder {
    pub fn new(max: usize) -> Self {
        LineDecoder {
            max,
            buf: Vec::new(),
            discarding: None,
        }
    }

    /// Feeds a chunk, calling `emit` for each complete line or oversize event.
    pub fn feed(&mut self, mut chunk: &[u8], emit: &mut impl FnMut(Inbound)) {
        // One spare byte so a line of exactly `max` bytes may end in "\r\n".
        let hold = self.max.saturating_add(1);
        while !chunk.is_empty() {
            let newline = chunk.iter().position(|&b| b == b'\n');
            if let Some(seen) = self.discarding {
                match newline {
                    Some(p) => {
                        emit(Inbound::TooLarge { bytes: seen + p });
                        self.discarding = None;
                        chunk = &chunk[p + 1..];
                    }
                    None => {
                        self.discarding = Some(seen + chunk.len());
                        return;
                    }
                }
                continue;
            }
            match newline {
                Some(p) => {
                    if self.buf.len() + p > hold {
                        let bytes = self.buf.len() + p;
                        self.buf.clear();
                        emit(Inbound::TooLarge { bytes });
                    } else {
                        self.buf.extend_from_slice(&chunk[..p]);
                        self.finish_line(emit);
                    }
                    chunk = &chunk[p + 1..];
                }
                None => {
                    if self.buf.len() + chunk.len() > hold {
                        self.discarding = Some(self.buf.len() + chunk.len());
                        // Give the memory back: the line will never be used.
                        self.buf = Vec::new();
                    } else {
                        self.buf.extend_from_slice(chunk);
                    }
                    return;
                }
            }
        }
    }

    /// End of input: a last line without a newline still counts.
    pub fn finish(&mut self, emit: &mut impl FnMut(Inbound)) {
        if let Some(bytes) = self.discarding.take() {
            emit(Inbound::TooLarge { bytes });
        } else if !self.buf.is_empty() {
            self.finish_line(emit);
        }
    }

    fn finish_line(&mut self, emit: &mut impl FnMut(Inbound)) {
        if self.buf.last() == Some(&b'\r') {
            self.buf.pop();
        }
        if self.buf.len() > self.max {
            let bytes = self.buf.len();
            self.buf.clear();
            emit(Inbound::TooLarge { bytes });
        } else if self.buf.iter().all(u8::is_ascii_whitespace) {
            self.buf.clear();
        } else {
            emit(Inbound::Line(std::mem::take(&mut self.buf)));
        }
    }
}

/// Starts the stdin thread. The channel closes at end of input or on a read
/// error (both mean "no more commands").
pub fn spawn_reader(mut input: impl Read + Send + 'static, max: usize) -> mpsc::Receiver<Inbound> {
    let (tx, rx) = mpsc::channel(INBOUND_CAPACITY);
    let spawned = std::thread::Builder::new()
        .name("stdin".into())
        .spawn(move || {
            let mut decoder = LineDecoder::new(max);
            let mut chunk = vec![0u8; READ_CHUNK];
            let mut open = true;
            let mut send = |item: Inbound| {
                if open && tx.blocking_send(item).is_err() {
                    open = false;
                }
            };
            loop {
                match input.read(&mut chunk) {
                    Ok(0) => break,
                    Ok(n) => decoder.feed(&chunk[..n], &mut send),
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                    Err(e) => {
                        tracing::warn!("reading stdin failed, treating it as end of input: {e}");
                        break;
                    }
                }
            }
            decoder.finish(&mut send);
        });
    if let Err(e) = spawned {
        // Without a reader thread there is no input: the channel closes, which
        // the host treats as end of input.
        tracing::error!("cannot start the stdin thread: {e}");
    }
    rx
}

/// The sending side of stdout. Cloned into every task that emits frames.
#[derive(Clone)]
pub struct Outbox {
    tx: mpsc::Sender<Queued>,
    /// One permit per byte in flight to the writer (see `OUTBOUND_BYTES`).
    budget: Arc<Semaphore>,
}

/// Bytes on their way to stdout, holding their share of the byte budget
/// until the writer has taken them.
struct Queued {
    bytes: Vec<u8>,
    _permit: OwnedSemaphorePermit,
}

impl Outbox {
    /// Queues a frame. Returns false when stdout is gone (the frame is lost,
    /// which is all that can happen to it).
    pub async fn frame(&self, frame: &Frame) -> bool {
        self.line(frame).await
    }

    /// Queues any serialisable value as one line (ACP mode's JSON-RPC).
    pub async fn message(&self, value: &impl Serialize) -> bool {
        self.line(value).await
    }

    /// Appends a `message_update` line to `buf`, for a caller that batches
    /// the frames of one burst into a single [`Outbox::lines`]; `parent` is
    /// the `task` call a subagent's event belongs to.
    pub fn encode_update(
        buf: &mut Vec<u8>,
        prompt_id: &str,
        event: &StreamEvent,
        parent: Option<&str>,
    ) {
        let frame = MessageUpdate {
            kind: "message_update",
            prompt_id,
            event,
            parent_tool_call_id: parent,
        };
        let mark = buf.len();
        if serde_json::to_writer(&mut *buf, &frame).is_err() {
            buf.truncate(mark);
            tracing::error!("a frame could not be serialised; dropped");
            return;
        }
        buf.push(b'\n');
    }

    /// Queues several complete lines as one unit: one channel message and
    /// at most one wake-up of the writer for a whole burst of deltas.
    pub async fn lines(&self, lines: Vec<u8>) -> bool {
        self.send(lines).await
    }

    /// Waits for room in the byte budget, then queues. A frame larger than
    /// the whole budget takes all of it, so it still goes out alone.
    async fn send(&self, bytes: Vec<u8>) -> bool {
        let need = bytes.len().clamp(1, OUTBOUND_BYTES) as u32;
        let Ok(permit) = self.budget.clone().acquire_many_owned(need).await else {
            return false;
        };
        self.tx
            .send(Queued {
                bytes,
                _permit: permit,
            })
            .await
            .is_ok()
    }

    async fn line(&self, value: &impl Serialize) -> bool {
        let mut line = Vec::with_capacity(96);
        // Serialising our own types into a Vec cannot fail: no map has
        // non-string keys and the writer is infallible.
        if serde_json::to_writer(&mut line, value).is_err() {
            tracing::error!("a frame could not be serialised; dropped");
            return true;
        }
        line.push(b'\n');
        self.send(line).await
    }
}

/// The receiving end of an in-process [`Outbox`] (see [`Outbox::channel`]):
/// what was written, as complete lines, in order.
#[cfg(test)]
pub(crate) struct Frames {
    rx: mpsc::Receiver<Queued>,
}

#[cfg(test)]
impl Frames {
    /// The next unit queued (one line, or a batch of complete lines);
    /// `None` once every outbox clone is gone.
    pub(crate) async fn next(&mut self) -> Option<Vec<u8>> {
        self.rx.recv().await.map(|queued| queued.bytes)
    }
}

#[cfg(test)]
impl Outbox {
    /// An outbox that feeds a channel in this process instead of stdout,
    /// for unit tests of what a writer of it sends. Same bounds as stdout.
    pub(crate) fn channel() -> (Outbox, Frames) {
        let (tx, rx) = mpsc::channel::<Queued>(OUTBOUND_CAPACITY);
        let budget = Arc::new(Semaphore::new(OUTBOUND_BYTES));
        (Outbox { tx, budget }, Frames { rx })
    }
}

/// Owns the writer thread; `finish` flushes everything queued and joins it.
pub struct Writer {
    join: Option<JoinHandle<()>>,
}

impl Writer {
    /// Waits until every frame queued before all `Outbox` clones were dropped
    /// has been written (or stdout failed).
    pub fn finish(mut self) {
        if let Some(join) = self.join.take() {
            let _ = join.join();
        }
    }
}

/// Starts the stdout thread. `closed` fires once if a write fails (the client
/// closed the pipe); later frames are discarded.
pub fn spawn_writer(
    mut out: impl Write + Send + 'static,
) -> (Outbox, Writer, oneshot::Receiver<std::io::Error>) {
    let (tx, mut rx) = mpsc::channel::<Queued>(OUTBOUND_CAPACITY);
    let budget = Arc::new(Semaphore::new(OUTBOUND_BYTES));
    let (closed_tx, closed_rx) = oneshot::channel();
    let join = std::thread::Builder::new()
        .name("stdout".into())
        .spawn(move || {
            let mut batch: Vec<u8> = Vec::with_capacity(64 * 1024);
            while let Some(first) = rx.blocking_recv() {
                // Copying into the batch releases the message's budget: what
                // the writer holds is bounded by the batch size below.
                batch.extend_from_slice(&first.bytes);
                // Everything already queued goes out in one write: one syscall
                // per burst instead of one per frame, and nothing waits for
                // more output before it is written.
                while batch.len() < 256 * 1024 {
                    match rx.try_recv() {
                        Ok(next) => batch.extend_from_slice(&next.bytes),
                        Err(_) => break,
                    }
                }
                let result = out.write_all(&batch).and_then(|()| out.flush());
                batch.clear();
                if let Err(e) = result {
                    let _ = closed_tx.send(e);
                    // Keep draining so that senders never block on a dead pipe.
                    while rx.blocking_recv().is_some() {}
                    return;
                }
            }
        });
    let join = match join {
        Ok(join) => Some(join),
        Err(e) => {
            tracing::error!("cannot start the stdout thread: {e}");
            None
        }
    };
    (Outbox { tx, budget }, Writer { join }, closed_rx)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(max: usize, chunks: &[&[u8]]) -> Vec<Inbound> {
        let mut dec = LineDecoder::new(max);
        let mut out = Vec::new();
        for c in chunks {
            dec.feed(c, &mut |i| out.push(i));
        }
        dec.finish(&mut |i| out.push(i));
        out
    }

    fn line(s: &str) -> Inbound {
        Inbound::Line(s.as_bytes().to_vec())
    }

    #[test]
    fn splits_lines_across_chunks() {
        let out = run(100, &[b"ab", b"c\nde", b"f\r\n\n  \ng"]);
        assert_eq!(out, vec![line("abc"), line("def"), line("g")]);
    }

    #[test]
    fn oversized_line_is_skipped_to_its_newline() {
        let out = run(4, &[b"12345", b"6789", b"\nok\n"]);
        assert_eq!(out, vec![Inbound::TooLarge { bytes: 9 }, line("ok")]);
        let out = run(4, &[b"123456\nok\n"]);
        assert_eq!(out, vec![Inbound::TooLarge { bytes: 6 }, line("ok")]);
    }

    #[test]
    fn exact_limit_is_allowed_with_crlf() {
        assert_eq!(run(4, &[b"1234\r\n"]), vec![line("1234")]);
        assert_eq!(run(4, &[b"1234\n"]), vec![line("1234")]);
        assert_eq!(
            run(4, &[b"12345\r\n"]),
            vec![Inbound::TooLarge { bytes: 6 }]
        );
    }

    #[test]
    fn memory_stays_bounded_for_an_endless_line() {
        let mut dec = LineDecoder::new(1024);
        let chunk = vec![b'x'; 64 * 1024];
        for _ in 0..1024 {
            dec.feed(&chunk, &mut |_| panic!("no line yet"));
        }
        assert!(dec.buf.capacity() <= 1025 + 64 * 1024);
        let mut out = Vec::new();
        dec.feed(b"\n", &mut |i| out.push(i));
        assert_eq!(
            out,
            vec![Inbound::TooLarge {
                bytes: 64 * 1024 * 1024
            }]
        );
    }

    #[test]
    fn any_split_gives_the_same_lines() {
        let input = b"{\"a\":1}\r\nxx\n\nlong-line-here\nlast";
        let whole = run(8, &[input]);
        for i in 0..input.len() {
            let (a, b) = input.split_at(i);
            assert_eq!(run(8, &[a, b]), whole, "split at {i}");
        }
    }
}
