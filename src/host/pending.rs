//! The ledger of answers still owed: "every command gets exactly one
//! answer" is this module's invariant rather than a property of several
//! queues.
//!
//! Every command is registered when it is read and gets a [`Token`]; whoever
//! answers it takes the entry out first, and only the one who took it
//! writes the answer, so a second answer is impossible by construction. What
//! is still registered when the host exits is answered by [`Pending::cancel_all`].
//! (The same shape as rust-analyzer's `lsp-server` request queue.) Each
//! entry holds the command's [`Reply`], so the ledger is also the only
//! place that knows where an answer goes: no front end keeps its own map.

use std::collections::BTreeMap;

use serde_json::Value;

use super::link::{Answer, Reply};
use crate::error::Coded;
use crate::protocol::{CommandName, ErrorCode, NotRun, Response};

/// A command's place in the ledger. Tokens grow with arrival, so walking
/// the ledger in token order answers commands in the order they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Token(u64);

/// What an unanswered command is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Awaits {
    /// Its handler is running on the loop right now.
    Handler,
    /// A spawned task computes its answer (a listing, a model check).
    Task,
    /// A prompt or follow-up waiting in the queue for its turn.
    Queue,
    /// The running turn, or its end (an abort, a dropped follow-up).
    Turn,
}

/// An unanswered command: where its answer goes and what it must carry.
#[derive(Debug)]
pub(crate) struct Open {
    pub reply: Reply,
    pub command: CommandName,
    awaits: Awaits,
}

impl Open {
    /// The command's `id` on the wire (`null` for an in-process call).
    pub(crate) fn id(&self) -> Value {
        self.reply.id()
    }
}

#[derive(Debug, Default)]
pub(crate) struct Pending {
    next: u64,
    open: BTreeMap<Token, Open>,
}

impl Pending {
    /// Registers a command that has just been read.
    pub(crate) fn register(&mut self, reply: Reply, command: CommandName) -> Token {
        self.next += 1;
        let token = Token(self.next);
        let open = Open {
            reply,
            command,
            awaits: Awaits::Handler,
        };
        self.open.insert(token, open);
        token
    }

    /// Records what the command now waits for. A token already answered is
    /// left alone.
    pub(crate) fn wait(&mut self, token: Token, awaits: Awaits) {
        if let Some(open) = self.open.get_mut(&token) {
            open.awaits = awaits;
        }
    }

    /// Takes the command out to answer it. `None` means it was answered
    /// already (at exit): the caller must then write nothing.
    pub(crate) fn take(&mut self, token: Token) -> Option<Open> {
        self.open.remove(&token)
    }

    /// The command, if it is still unanswered.
    pub(crate) fn get(&self, token: Token) -> Option<&Open> {
        self.open.get(&token)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// True while a task still owes an answer: the host waits for those
    /// before it exits, so their answers are real ones.
    pub(crate) fn tasks_running(&self) -> bool {
        self.open.values().any(|o| o.awaits == Awaits::Task)
    }

    /// Takes out everything still open, in arrival order, with its
    /// answer: prompts and follow-ups that never ran are `cancelled` (they
    /// did no harm), anything else an `internal` error saying why.
    pub(crate) fn cancel_all(&mut self, reason: &str) -> Vec<(Open, Answer)> {
        std::mem::take(&mut self.open)
            .into_values()
            .map(|open| {
                let answer = match open.command {
                    CommandName::Prompt | CommandName::FollowUp => {
                        Ok(Response::NotRun(NotRun::cancelled()))
                    }
                    _ => Err(Coded::new(
                        ErrorCode::Internal,
                        format!("not answered: {reason}"),
                    )),
                };
                (open, answer)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wire(id: Value) -> Reply {
        Reply::Wire(id)
    }

    #[test]
    fn a_command_is_answered_once() {
        let mut p = Pending::default();
        let t = p.register(wire(json!(1)), CommandName::GetState);
        assert!(p.take(t).is_some());
        assert!(p.take(t).is_none());
        assert!(p.is_empty());
    }

    #[test]
    fn only_tasks_hold_the_exit() {
        let mut p = Pending::default();
        let queued = p.register(wire(json!("q")), CommandName::FollowUp);
        p.wait(queued, Awaits::Queue);
        assert!(!p.tasks_running());
        let listing = p.register(wire(json!("l")), CommandName::ListSessions);
        p.wait(listing, Awaits::Task);
        assert!(p.tasks_running());
        p.take(listing);
        assert!(!p.tasks_running());
    }

    #[test]
    fn cancel_all_answers_in_arrival_order() {
        let mut p = Pending::default();
        p.register(wire(json!("a")), CommandName::GetAvailableModels);
        p.register(wire(json!("b")), CommandName::FollowUp);
        let answered = p.cancel_all("the host is shutting down");
        assert_eq!(answered[0].0.id(), json!("a"));
        let Err(err) = &answered[0].1 else {
            panic!("a listing is not answered with a response");
        };
        assert_eq!(err.code, ErrorCode::Internal);
        assert_eq!(err.message, "not answered: the host is shutting down");
        assert_eq!(answered[1].0.id(), json!("b"));
        assert!(matches!(answered[1].1, Ok(Response::NotRun(_))));
        assert!(p.is_empty());
    }
}
