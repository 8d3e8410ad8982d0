//! Group 3f (`responses`): the same 20,000-delta reply from the fake server
//! over OpenAI's Responses API and over Chat Completions (one model, only
//! the config's `api` differs): host CPU and prompt → first delta, side by
//! side, run by run.

use crate::fixtures::Fake;
use crate::side_by_side::{compare, Side};
use crate::table::Table;

pub fn bench_responses(t: &mut Table, runs: usize) {
    let chat = Side {
        label: "Chat Completions",
        model: "openai/gpt-4o-mini",
        config: |_| "[providers.openai]\napi = \"chat_completions\"\n".into(),
        env: Fake::env,
    };
    let responses = Side {
        label: "Responses",
        config: |_| "[providers.openai]\napi = \"responses\"\n".into(),
        ..chat
    };
    compare(t, "3f", runs, &chat, &responses);
}
