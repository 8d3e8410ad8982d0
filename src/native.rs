//! The native front end: protocol v1 (SPEC.md) on stdio, one session per
//! process.
//!
//! Lines from stdin are decoded here into typed commands (or `error`
//! frames under their id) and submitted to the host; the host's typed
//! frames are serialized here, once, at the pipe. Deltas take the borrowed
//! fast path: a burst is encoded straight into one buffer and written with
//! one writer wake-up.
//!
//! `ready` is written as soon as the session is loaded; extensions and MCP
//! servers start afterwards in the background. A start-up failure is one
//! `error` frame on stdout, the same message on stderr, and exit status 2.

use serde_json::Value;
use tokio::sync::mpsc;

use crate::cli::Cli;
use crate::factory;
use crate::host::{self, Host, HostHandle, Parts, Reply, Signals, Submission};
use crate::protocol::{ErrorCode, ErrorFrame, Frame, ReadyFrame, StreamEvent, PROTOCOL_VERSION};
use crate::sink::{BoxFuture, FrameSink, Sink};
use crate::transport::{self, Inbound, Outbox};

/// Serves one session on stdio until it ends; returns the exit code and
/// the writer, which the caller finishes once the runtime is gone.
pub(crate) fn run(cli: &Cli, runtime: &tokio::runtime::Runtime) -> (i32, transport::Writer) {
    let (out, writer, closed) = transport::spawn_writer(std::io::stdout());
    let code = runtime.block_on(async move {
        match factory::prepare(cli) {
            Ok((factory, parts)) => serve(factory, parts, out, closed, cli.max_frame_bytes).await,
            Err(e) => {
                let code = factory::report_startup_failure(&e);
                let frame = ErrorFrame::new(Value::Null, e.code, e.message);
                out.frame(&Frame::Error(frame)).await;
                code
            }
        }
    });
    (code, writer)
}

/// Writes `ready`, starts extensions in the background and runs the host
/// to its end.
async fn serve(
    factory: std::sync::Arc<factory::Factory>,
    parts: Parts,
    out: Outbox,
    stdout_closed: tokio::sync::oneshot::Receiver<std::io::Error>,
    max_frame_bytes: usize,
) -> i32 {
    // Handlers go in before `ready`: from then on a signal must act like
    // `shutdown`, never kill the process with the session half-written.
    let signals = Signals::new();
    out.frame(&ready(&parts)).await;
    parts.providers.warm_up();
    let (handle, submissions) = host::channel();
    let lines = transport::spawn_reader(std::io::stdin(), max_frame_bytes);
    tokio::spawn(decode_lines(lines, handle, max_frame_bytes));
    // The one session's host stops; then its providers do (they are the
    // front end's: an ACP connection shares them between sessions).
    let providers = parts.providers.clone();
    let (host, channels) = Host::new(parts, Sink::new(NativeSink { out }));
    let code = host
        .run(submissions, channels, stdout_closed, signals)
        .await;
    // Subagents' sessions close (and are saved) before the providers
    // their turns use go.
    factory.stop_subagents().await;
    providers.shutdown().await;
    code
}

fn ready(parts: &Parts) -> Frame {
    let session = &parts.session;
    Frame::Ready(ReadyFrame {
        protocol_version: PROTOCOL_VERSION,
        version: env!("CARGO_PKG_VERSION"),
        session_id: session.header.id.clone(),
        model: session.model.clone(),
        cwd: parts.settings.cwd.clone(),
        message_count: session.messages.len(),
        usage: session.usage,
        thinking_level: session.thinking_level,
        context_files: parts.context.files().to_vec(),
        skills: parts.context.skill_entries(),
        sandbox: parts.backends.sandbox_state(),
    })
}

/// Turns stdin's lines into submissions, in order. Ends at end of input
/// (dropping the handle is how the host learns of it) or when the host
/// stops reading.
async fn decode_lines(mut lines: mpsc::Receiver<Inbound>, host: HostHandle, max: usize) {
    while let Some(item) = lines.recv().await {
        let submission = match item {
            Inbound::TooLarge { bytes } => Submission::Invalid(ErrorFrame::new(
                Value::Null,
                ErrorCode::FrameTooLarge,
                format!(
                    "command line of {bytes} bytes exceeds the limit of {max} bytes (--max-frame-bytes); it was discarded"
                ),
            )),
            Inbound::Line(line) => match crate::protocol::decode_command(&line) {
                Ok(envelope) => Submission::Command {
                    command: envelope.command,
                    reply: Reply::Wire(envelope.id),
                },
                Err(err) => Submission::Invalid(err),
            },
        };
        if host.submit(submission).await.is_err() {
            return;
        }
    }
}

/// Frames as protocol v1 lines on stdout.
struct NativeSink {
    out: Outbox,
}

impl FrameSink for NativeSink {
    fn frame<'a>(&'a self, frame: &'a Frame) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            self.out.frame(frame).await;
        })
    }

    fn updates<'a>(&'a self, prompt_id: &'a str, events: &'a [StreamEvent]) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            // Not pre-sized beyond the burst: a burst of one delta must not
            // pin kilobytes while it waits in the writer's queue (the byte
            // budget counts lengths, so spare capacity would escape it).
            let mut lines = Vec::new();
            for event in events {
                Outbox::encode_update(&mut lines, prompt_id, event, None);
            }
            self.out.lines(lines).await;
        })
    }

    fn nested_updates<'a>(
        &'a self,
        prompt_id: &'a str,
        parent: &'a str,
        events: &'a [StreamEvent],
    ) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let mut lines = Vec::new();
            for event in events {
                Outbox::encode_update(&mut lines, prompt_id, event, Some(parent));
            }
            self.out.lines(lines).await;
        })
    }
}
