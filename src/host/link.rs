//! How commands reach a host and how each is answered: the input half of
//! the host boundary ([`crate::sink`] is the output half).
//!
//! A front end submits a typed [`Command`] with a [`Reply`] saying where
//! its answer goes. The native front end answers on the wire under the
//! command's `id` (a `response` or `error` frame through the sink, in order
//! with every other frame); an in-process caller (the ACP front end, tests)
//! gets the typed [`Answer`] through a oneshot. Either way the host's one
//! ledger (`pending.rs`) holds the reply until it answers, exactly once.

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::error::Coded;
use crate::protocol::{Command, ErrorFrame, Response};

/// Commands buffered towards one host: enough for a burst of small ones
/// without a context switch each, few enough that a host that stopped
/// reading pushes back on its front end at once. (Natively, stdin's line
/// buffer sits in front of it: the two together hold at most 32 lines.)
const COMMAND_CAPACITY: usize = 16;

/// A command's typed answer.
pub(crate) type Answer = Result<Response, Coded>;

/// Where a command's answer goes.
#[derive(Debug)]
pub(crate) enum Reply {
    /// A `response` / `error` frame on the sink under this `id`.
    Wire(Value),
    /// Handed to an in-process caller. The host sends it after every frame
    /// it wrote before, so a caller that forwards both keeps their order.
    Call(oneshot::Sender<Answer>),
}

impl Reply {
    /// The `id` frames name the command by (`agent_start`, `dropped`);
    /// `null` for in-process calls, which have none.
    pub(crate) fn id(&self) -> Value {
        match self {
            Reply::Wire(id) => id.clone(),
            Reply::Call(_) => Value::Null,
        }
    }
}

/// One unit of a host's input.
#[derive(Debug)]
pub(crate) enum Submission {
    Command {
        command: Command,
        reply: Reply,
    },
    /// A line that could not be decoded: the host writes this error in its
    /// place, so errors keep their order among the answers.
    Invalid(ErrorFrame),
}

/// The host stopped before it answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct HostGone;

/// A front end's handle on a host: cheap to clone, one per task that
/// submits.
#[derive(Clone)]
pub(crate) struct HostHandle {
    tx: mpsc::Sender<Submission>,
}

/// A handle and the receiver its host reads.
pub(crate) fn channel() -> (HostHandle, mpsc::Receiver<Submission>) {
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    (HostHandle { tx }, rx)
}

impl HostHandle {
    /// Hands the host one unit of input; fails once it stopped reading.
    pub(crate) async fn submit(&self, submission: Submission) -> Result<(), HostGone> {
        self.tx.send(submission).await.map_err(|_| HostGone)
    }

    /// Sends a command and waits for its answer.
    pub(crate) async fn call(&self, command: Command) -> Result<Answer, HostGone> {
        let (tx, rx) = oneshot::channel();
        let reply = Reply::Call(tx);
        self.submit(Submission::Command { command, reply }).await?;
        rx.await.map_err(|_| HostGone)
    }
}
