//! `prompt`, `follow_up`, `steer` and `abort`: what starts, feeds and stops
//! turns. The turn itself is started and ended in `host/turn.rs`.

use crate::error::Coded;
use crate::host::pending::{Awaits, Token};
use crate::host::{Host, Queued};
use crate::protocol::{
    AbortResponse, CommandName, Dropped, ErrorCode, NotRun, PromptParams, Response, SteerResponse,
};

impl Host {
    pub(super) async fn prompt(&mut self, token: Token, params: PromptParams) {
        // A prompt never waits behind another: the client must abort first
        // (or send a follow_up, which is made to wait).
        if self.turn.is_some()
            || !self.queue.is_empty()
            || self.holds_a_prompt()
            || self.compacting.is_some()
        {
            let busy = Coded::new(ErrorCode::Busy, "another prompt is in flight; abort first");
            return self.reject(token, busy).await;
        }
        self.enqueue(token, params);
        self.start_next().await;
    }

    pub(super) async fn follow_up(&mut self, token: Token, params: PromptParams) {
        self.enqueue(token, params);
        self.start_next().await;
    }

    fn enqueue(&mut self, token: Token, params: PromptParams) {
        self.pending.wait(token, Awaits::Queue);
        // Expanded now, against the commands of the session it was sent in.
        let expansion = self.commands.expand(&params.message);
        self.queue.push_back(Queued {
            token,
            params,
            expansion,
        });
    }

    pub(super) async fn steer(&mut self, token: Token, message: String) {
        let delivered = match &self.turn {
            Some(turn) => turn.steer.send(message).is_ok(),
            None => false,
        };
        if delivered {
            let queued = Response::Steer(SteerResponse { queued: true });
            return self.respond(token, queued).await;
        }
        let why = if self.turn.is_some() {
            "the turn is ending and takes no more steering; send it as a follow_up"
        } else {
            "no prompt is running; send a prompt instead"
        };
        self.reject(token, Coded::new(ErrorCode::NotStreaming, why))
            .await;
    }

    /// Cancels the running turn and drops everything queued so far. With a
    /// turn, the abort is answered after the turn's own `agent_end` and
    /// response; without one (prompts waiting for a `set_model` check), at
    /// once. Either way the dropped prompts are answered `cancelled` before
    /// the abort, and prompts sent after it run normally.
    pub(super) async fn abort(&mut self, token: Token) {
        let mut dropped = Vec::new();
        let mut tokens = Vec::new();
        // A prompt whose model is still being checked has not started: it
        // is dropped first, like the queue behind it, and stores nothing.
        let reaching = self.reaching.take().map(|r| Queued {
            token: r.token,
            params: r.params,
            expansion: r.expansion,
        });
        // A prompt whose hooks run has not started either: its hooks are
        // killed and it is dropped the same way.
        let hooking = self.hooking.take().map(|h| {
            h.cancel.cancel();
            // Listed as the client typed it, like a queued prompt.
            let mut params = h.params;
            if let Some(typed) = h.typed {
                params.message = typed.text;
            }
            Queued {
                token: h.token,
                params,
                expansion: crate::commands::Expansion::Plain,
            }
        });
        for q in reaching
            .into_iter()
            .chain(hooking)
            .chain(self.queue.drain(..))
        {
            if let Some(open) = self.pending.get(q.token) {
                let (id, message) = (open.id(), q.params.message);
                dropped.push(match open.command {
                    CommandName::Prompt => Dropped::Prompt { id, message },
                    _ => Dropped::FollowUp { id, message },
                });
            }
            tokens.push(q.token);
        }
        if self.turn.is_none() && self.compacting.is_some() {
            for t in tokens {
                self.respond(t, Response::NotRun(NotRun::cancelled())).await;
            }
            return self.abort_compaction(token, dropped);
        }
        let Some(turn) = self.turn.as_mut() else {
            for t in tokens {
                self.respond(t, Response::NotRun(NotRun::cancelled())).await;
            }
            let answer = Response::Abort(AbortResponse { dropped });
            return self.respond(token, answer).await;
        };
        turn.cancel.cancel();
        for t in tokens {
            self.pending.wait(t, Awaits::Turn);
            turn.dropped.push(t);
        }
        self.pending.wait(token, Awaits::Turn);
        turn.aborts.push((token, dropped));
    }
}
