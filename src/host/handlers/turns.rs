//! `prompt`, `follow_up`, `steer` and `abort`: what starts, feeds and stops
//! turns. The turn itself is started and ended in `host/turn.rs`.

use crate::error::Coded;
use crate::host::pending::{Awaits, Token};
use crate::host::{Host, Queued};
use crate::protocol::{
    AbortResponse, Dropped, ErrorCode, NotRun, PromptParams, Response, SteerResponse,
};

impl Host {
    pub(super) async fn prompt(&mut self, token: Token, params: PromptParams) {
        // A prompt never waits behind another: the client must abort first
        // (or send a follow_up, which is made to wait).
        if self.turn.is_some() || !self.queue.is_empty() || self.reaching.is_some() {
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
        self.queue.push_back(Queued { token, params });
    }

    pub(super) async fn steer(&mut self, token: Token, message: String) {
        let delivered = match &self.turn {
            Some(turn) => turn.steer.send(message).is_ok(),
            None => false,
        };
        if delivered {
            let queued = Response::Steer(SteerResponse { queued: true });
            return self.respond(token, true, queued).await;
        }
        let why = if self.turn.is_some() {
            "the turn is ending and takes no more steering; send it as a follow_up"
        } else {
            "no prompt is running; send a prompt instead"
        };
        self.reject(token, Coded::new(ErrorCode::NotStreaming, why))
            .await;
    }

    /// Cancels the running turn. The abort is answered after the turn's own
    /// `agent_end` and response, with the follow-ups it dropped; follow-ups
    /// sent after it run normally.
    pub(super) async fn abort(&mut self, token: Token) {
        let Some(turn) = self.turn.as_mut() else {
            return self.abort_before_start(token).await;
        };
        turn.cancel.cancel();
        let mut dropped = Vec::new();
        for q in self.queue.drain(..) {
            if let Some(open) = self.pending.get(q.token) {
                dropped.push(Dropped::FollowUp {
                    id: open.id.clone(),
                    message: q.params.message,
                });
            }
            self.pending.wait(q.token, Awaits::Turn);
            turn.dropped.push(q.token);
        }
        self.pending.wait(token, Awaits::Turn);
        turn.aborts.push((token, dropped));
    }

    /// Abort with no turn running. A prompt whose model is still being
    /// checked has not started: it is answered as cancelled, with the
    /// follow-ups behind it, and stores nothing.
    async fn abort_before_start(&mut self, token: Token) {
        let mut dropped = Vec::new();
        if let Some(reaching) = self.reaching.take() {
            self.respond(reaching.token, true, Response::NotRun(NotRun::cancelled()))
                .await;
            for q in std::mem::take(&mut self.queue) {
                if let Some(open) = self.pending.get(q.token) {
                    dropped.push(Dropped::FollowUp {
                        id: open.id.clone(),
                        message: q.params.message,
                    });
                }
                self.respond(q.token, true, Response::NotRun(NotRun::cancelled()))
                    .await;
            }
        }
        self.respond(token, true, Response::Abort(AbortResponse { dropped }))
            .await;
    }
}
