//! `rpc --acp` (SPEC.md, "ACP mode") driven as a subprocess with plain
//! JSON-RPC 2.0 lines, every read bounded by the harness's timeout; and
//! (`real_clients`) by real ACP clients: the official TypeScript SDK,
//! `acpx` and the official Python SDK.
//!
//! Modules: `basics` (initialize, new, prompt, list, stdout), `turns`
//! (tool calls, permissions, modes, cancel), `lifecycle` (resume, close,
//! fork), `sessions` (load, the native protocol both ways, several
//! sessions, config options), `commands` (slash commands), `real_clients`.
//! The [`Acp`] client below checks that every line the agent writes is
//! JSON-RPC 2.0.

#[path = "../common/mod.rs"]
mod common;

mod basics;
mod commands;
mod fd_limit;
mod lifecycle;
mod mcp;
mod real_clients;
mod sessions;
mod turns;

use std::path::Path;

use serde_json::{json, Value};

use common::{Rpc, Spawn, ECHO};

/// How the test client answers `session/request_permission`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Answer {
    /// Pick this option id.
    Pick(&'static str),
    /// Leave the request open (the test acts on it).
    Hold,
}

/// A test client speaking ACP over the agent's stdio.
pub struct Acp {
    pub rpc: Rpc,
    next: u64,
    pub permissions: Answer,
    /// Every `session/request_permission` received.
    pub asked: Vec<Value>,
}

impl Acp {
    /// A client on an already spawned `rpc --acp`.
    pub fn from_rpc(rpc: Rpc) -> Acp {
        Acp {
            rpc,
            next: 1,
            permissions: Answer::Pick("allow_once"),
            asked: Vec::new(),
        }
    }

    /// `rpc --acp` with the echo extension and model, plus `args`.
    pub fn start(data: Option<&Path>, args: &[&str]) -> Acp {
        let mut spawn = Spawn::new().ext("echo").model(ECHO).arg("--acp");
        for a in args {
            spawn = spawn.arg(a);
        }
        if let Some(dir) = data {
            spawn = spawn.data(dir);
        }
        Acp {
            rpc: spawn.start(),
            next: 1,
            permissions: Answer::Pick("allow_once"),
            asked: Vec::new(),
        }
    }

    /// Sends a request; returns its id.
    pub fn request(&mut self, method: &str, params: Value) -> u64 {
        let id = self.next;
        self.next += 1;
        self.rpc
            .send(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}));
        id
    }

    pub fn notify(&mut self, method: &str, params: Value) {
        self.rpc
            .send(json!({"jsonrpc": "2.0", "method": method, "params": params}));
    }

    /// The next message, checked to be JSON-RPC 2.0; permission requests
    /// are answered per `self.permissions` (and still returned).
    pub fn next_message(&mut self) -> Value {
        let m = self.rpc.recv();
        assert_eq!(m["jsonrpc"], "2.0", "not JSON-RPC 2.0: {m}");
        if m["method"] == "session/request_permission" {
            self.asked.push(m.clone());
            if let Answer::Pick(option) = self.permissions {
                let id = m["id"].clone();
                self.rpc.send(json!({"jsonrpc": "2.0", "id": id, "result": {"outcome": {"outcome": "selected", "optionId": option}}}));
            }
        }
        m
    }

    /// Reads until the answer to request `id`; returns the `session/update`
    /// params that came before it and the answer.
    pub fn until_answer(&mut self, id: u64) -> (Vec<Value>, Value) {
        let mut updates = Vec::new();
        loop {
            let m = self.next_message();
            if m["id"] == json!(id) && m.get("method").is_none() {
                return (updates, m);
            }
            if m["method"] == "session/update" {
                updates.push(m["params"].clone());
            }
        }
    }

    /// Reads until a message matches; returns the updates before it and it.
    pub fn until(&mut self, pred: impl Fn(&Value) -> bool) -> (Vec<Value>, Value) {
        let mut updates = Vec::new();
        loop {
            let m = self.next_message();
            if pred(&m) {
                return (updates, m);
            }
            if m["method"] == "session/update" {
                updates.push(m["params"].clone());
            }
        }
    }

    /// A request that must succeed: its `result`.
    pub fn call(&mut self, method: &str, params: Value) -> Value {
        let id = self.request(method, params);
        let (_, answer) = self.until_answer(id);
        assert!(
            answer.get("error").is_none(),
            "{method} failed: {answer}\nstderr:\n{}",
            self.rpc.stderr()
        );
        answer["result"].clone()
    }

    pub fn initialize(&mut self) -> Value {
        self.call(
            "initialize",
            json!({"protocolVersion": 1, "clientCapabilities": {"fs": {"readTextFile": false, "writeTextFile": false}}}),
        )
    }

    /// `session/new` in `cwd`; returns the result.
    pub fn new_session(&mut self, cwd: &Path) -> Value {
        self.call(
            "session/new",
            json!({"cwd": cwd.to_string_lossy(), "mcpServers": []}),
        )
    }

    /// Runs a prompt to its answer: (updates, answer).
    pub fn prompt(&mut self, session: &str, text: &str) -> (Vec<Value>, Value) {
        let id = self.request(
            "session/prompt",
            json!({"sessionId": session, "prompt": [{"type": "text", "text": text}]}),
        );
        self.until_answer(id)
    }

    /// Waits out the start-up announcements of a new session (`new` is
    /// its `session/new` result): the model list's `config_option_update`
    /// when the answer came before the listing, and the `model_changed` one
    /// when the extension comes up; so a test can count its own updates.
    pub fn settle(&mut self, new: &Value) {
        let models = |options: &Value| {
            options
                .as_array()
                .and_then(|o| o.iter().find(|o| o["id"] == "model"))
                .and_then(|m| m["options"].as_array())
                .map_or(0, Vec::len)
        };
        if models(&new["configOptions"]) < 2 {
            self.until(|m| {
                m["params"]["update"]["sessionUpdate"] == "config_option_update"
                    && models(&m["params"]["update"]["configOptions"]) >= 2
            });
        }
        while let Some(late) = self.rpc.recv_within(std::time::Duration::from_millis(300)) {
            assert!(is_announcement(&late), "{late}");
        }
    }

    /// Closes stdin and expects a clean exit.
    pub fn finish(self) {
        common::finish(self.rpc);
    }
}

/// An update a session sends on its own after it is opened: the model
/// list (`config_option_update`) or its slash commands
/// (`available_commands_update`).
pub fn is_announcement(m: &Value) -> bool {
    let kind = &m["params"]["update"]["sessionUpdate"];
    kind == "config_option_update" || kind == "available_commands_update"
}

/// The `update` objects of one kind among `session/update` params.
pub fn of_kind<'a>(updates: &'a [Value], kind: &str) -> Vec<&'a Value> {
    updates
        .iter()
        .map(|p| &p["update"])
        .filter(|u| u["sessionUpdate"] == kind)
        .collect()
}

/// The text of the chunks of one kind, concatenated.
pub fn chunk_text(updates: &[Value], kind: &str) -> String {
    of_kind(updates, kind)
        .iter()
        .map(|u| u["content"]["text"].as_str().unwrap_or(""))
        .collect()
}

/// A session started and one prompt run, ready for more.
pub fn started(dir: &Path, args: &[&str]) -> (Acp, String) {
    let mut acp = Acp::start(None, args);
    acp.initialize();
    let session = acp.new_session(dir)["sessionId"]
        .as_str()
        .expect("sessionId")
        .to_owned();
    (acp, session)
}
