//! Turns (the engine, `src/engine/`) against the real `rpc` binary and the
//! fake providers, one file per sub-area: `lifecycle` (event order, usage,
//! busy), `reads` (commands answered during a stream), `abort` (also against
//! a provider that ignores it, and the cancel a cooperative one receives),
//! `queue` (`follow_up`, `steer`), `set_model`, `budget` (`--max-turns`,
//! `set_budget`), `streams` (stray events, a
//! large reply, attachments), `compaction` (on overflow, at the threshold,
//! on demand), `subagents` (the `task` tool), `claude_acp` (the real Claude
//! Code as a subagent). The helpers below are shared by all but `compaction`.
//!
//! The only timing assertions are the contract's own bounds, asserted
//! generously (abort "within 200 ms" is checked as < 1 s); latency is
//! measured in `cargo bench`.

#[macro_use]
#[path = "../common/mod.rs"]
mod common;

mod abort;
mod budget;
mod claude_acp;
mod commands;
mod compaction;
mod lifecycle;
mod queue;
mod reads;
mod set_model;
mod streams;
mod subagents;

use std::time::{Duration, Instant};

use common::procfs::{self, descendants, vm_hwm_kib};
use common::*;
use serde_json::{json, Value};

/// Starts a host with the given fixtures and model; returns it and `ready`.
fn host(exts: &[&str], model: &str) -> (Rpc, Value) {
    let mut s = Spawn::new();
    for e in exts {
        s = s.ext(e);
    }
    let mut rpc = s.model(model).start();
    let ready = rpc.ready();
    (rpc, ready)
}

fn is_update(f: &Value) -> bool {
    f["type"] == "message_update"
}

/// Sends a prompt and reads up to its `agent_start`; returns the prompt id.
fn start_prompt(rpc: &mut Rpc, id: &str, message: &str) -> String {
    rpc.send(json!({"type": "prompt", "id": id, "message": message}));
    let (before, start) = rpc.until("agent_start", |f| f["type"] == "agent_start");
    assert!(before.is_empty(), "frames before agent_start: {before:?}");
    assert_eq!(
        start["id"], id,
        "agent_start carries the command id: {start}"
    );
    start["prompt_id"].as_str().expect("prompt_id").to_owned()
}

/// Reads until the first `message_update` (the stream is really running).
fn first_delta(rpc: &mut Rpc) -> Value {
    rpc.until("first delta", is_update).1
}

/// Live descendants of the host whose command line names the given mode.
fn fixture_pids(rpc: &Rpc, mode: &str) -> Vec<u32> {
    descendants(rpc.pid())
        .into_iter()
        .filter(|&p| {
            procfs::cmdline_args(p).is_some_and(|args| {
                args.iter()
                    .any(|a| a == b"fakeprov.py" || a.ends_with(b"/fakeprov.py"))
                    && args.iter().any(|a| a == mode.as_bytes())
            })
        })
        .collect()
}
