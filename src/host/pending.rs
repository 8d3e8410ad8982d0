//! The ledger of answers still owed: "every command gets exactly one
//! answer" is this module's invariant rather than a property of several
//! queues.
//!
//! Every command is registered when it is read and gets a [`Token`]; whoever
//! answers it takes the entry out first, and only the one who took it
//! writes the answer, so a second answer is impossible by construction. What
//! is still registered when the host exits is answered by [`Pending::cancel_all`].
//! (The same shape as rust-analyzer's `lsp-server` request queue.)

use std::collections::BTreeMap;

use serde_json::Value;

use crate::protocol::{CommandName, ErrorCode, ErrorFrame, Frame, NotRun, Response, ResponseFrame};

/// A command's place in the ledger. Tokens grow with arrival, so walking
/// the ledger in token order answers commands in the order they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Token(u64);

/// What an unanswered command is waiting for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Awaits {
    /// Its handler is running on the loop right now.
    Handler,
    /// A spawned task computes its answer (a listing, a model check).
    Task,
    /// A prompt or follow-up waiting in the queue for its turn.
    Queue,
    /// The running turn, or its end (an abort, a dropped follow-up).
    Turn,
}

/// An unanswered command: what its answer must carry.
#[derive(Debug, Clone)]
pub struct Open {
    pub id: Value,
    pub command: CommandName,
    awaits: Awaits,
}

#[derive(Debug, Default)]
pub struct Pending {
    next: u64,
    open: BTreeMap<Token, Open>,
}

impl Pending {
    /// Registers a command that has just been read.
    pub fn register(&mut self, id: Value, command: CommandName) -> Token {
        self.next += 1;
        let token = Token(self.next);
        let open = Open {
            id,
            command,
            awaits: Awaits::Handler,
        };
        self.open.insert(token, open);
        token
    }

    /// Records what the command now waits for. A token already answered is
    /// left alone.
    pub fn wait(&mut self, token: Token, awaits: Awaits) {
        if let Some(open) = self.open.get_mut(&token) {
            open.awaits = awaits;
        }
    }

    /// Takes the command out to answer it. `None` means it was answered
    /// already (at exit): the caller must then write nothing.
    pub fn take(&mut self, token: Token) -> Option<Open> {
        self.open.remove(&token)
    }

    /// The command, if it is still unanswered.
    pub fn get(&self, token: Token) -> Option<&Open> {
        self.open.get(&token)
    }

    pub fn is_empty(&self) -> bool {
        self.open.is_empty()
    }

    /// True while a task still owes an answer: the host waits for those
    /// before it exits, so their answers are real ones.
    pub fn tasks_running(&self) -> bool {
        self.open.values().any(|o| o.awaits == Awaits::Task)
    }

    /// Answers everything still open, in arrival order: prompts and
    /// follow-ups that never ran as `cancelled` responses (they did no
    /// harm), anything else as an `internal` error saying why.
    pub fn cancel_all(&mut self, reason: &str) -> Vec<Frame> {
        std::mem::take(&mut self.open)
            .into_values()
            .map(|open| match open.command {
                CommandName::Prompt | CommandName::FollowUp => Frame::Response(ResponseFrame {
                    id: open.id,
                    command: open.command,
                    ok: true,
                    body: Response::NotRun(NotRun::cancelled()),
                }),
                command => Frame::Error(
                    ErrorFrame::new(
                        open.id,
                        ErrorCode::Internal,
                        format!("not answered: {reason}"),
                    )
                    .for_command(command),
                ),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_command_is_answered_once() {
        let mut p = Pending::default();
        let t = p.register(json!(1), CommandName::GetState);
        assert!(p.take(t).is_some());
        assert!(p.take(t).is_none());
        assert!(p.is_empty());
    }

    #[test]
    fn only_tasks_hold_the_exit() {
        let mut p = Pending::default();
        let queued = p.register(json!("q"), CommandName::FollowUp);
        p.wait(queued, Awaits::Queue);
        assert!(!p.tasks_running());
        let listing = p.register(json!("l"), CommandName::ListSessions);
        p.wait(listing, Awaits::Task);
        assert!(p.tasks_running());
        p.take(listing);
        assert!(!p.tasks_running());
    }

    #[test]
    fn cancel_all_answers_in_arrival_order() {
        let mut p = Pending::default();
        p.register(json!("a"), CommandName::GetAvailableModels);
        p.register(json!("b"), CommandName::FollowUp);
        let frames = p.cancel_all("the host is shutting down");
        let lines: Vec<Value> = frames
            .iter()
            .map(|f| serde_json::to_value(f).unwrap())
            .collect();
        assert_eq!(lines[0]["type"], "error");
        assert_eq!(lines[0]["id"], "a");
        assert_eq!(
            lines[0]["message"],
            "not answered: the host is shutting down"
        );
        assert_eq!(
            lines[1],
            json!({"type":"response","id":"b","command":"follow_up","ok":true,"cancelled":true})
        );
        assert!(p.is_empty());
    }
}
