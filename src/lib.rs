//! agent-rpc: an agent host driven over stdio with line-delimited JSON
//! (protocol v1, see SPEC.md; its JSON Schema is `rpc schema`).
//!
//! # Layout
//!
//! | where | what lives there |
//! |---|---|
//! | [`startup`] | from flags to a running host: data dir, config, providers, the session; start-up errors |
//! | [`acp`] | `rpc --acp`: the Agent Client Protocol on stdio; each ACP session runs one [`host::Host`] in-process, fed through a channel, its frames mapped to `session/update`s |
//! | [`cli`], [`subcommands`] | the flags; `rpc schema` and `rpc sessions` |
//! | [`transport`] | the bounded stdin line reader and the one stdout writer |
//! | [`protocol`] | the wire and nothing else: `command.rs` (the one list of commands), `response.rs` (each command's answer), `event.rs`, `error.rs` (error codes), `schema.rs` |
//! | [`host`] | the dispatch loop owning all state: `pending.rs` (the ledger of answers still owed), `handlers/` (one function per command), `turn.rs` (starting and ending turns) |
//! | [`engine`] | one turn: provider rounds (`round.rs`), tool calls behind the permission gate (`tool_calls.rs`), compaction at the threshold and on overflow (`compaction.rs`), steering, abort |
//! | [`provider`] | model backends behind one interface: `registry.rs` resolves a model id once; `thinking.rs` (thinking levels and what each API is sent); `extension/` (subprocesses), `http/` (one file per HTTP API behind the `Api` trait in `api.rs`, SSE, retries) |
//! | [`tools`] | the `Tool` trait (`tool.rs`), the table the engine looks tools up in (`table.rs`), the list of tool sources the engine asks for each round's offer (`source.rs`; built in `host/mod.rs`), one file per built-in tool |
//! | `tools/env.rs`, `tools/local.rs` | the `ToolEnv` a tool call is handed: the session's file system and process backends (traits; the local disk and local spawn in `local.rs`) and the typed `ToolUpdate` channel the engine forwards |
//! | [`mcp`] | MCP tool servers: `config.rs` (`.mcp.json` and `[mcp_servers]` into `ServerSpec`s), `client.rs` (one connection through `rmcp`), `manager.rs` (a host's servers: background start, status, restarts; one `ToolSource` for all of them), `tool.rs` (a server tool in the tool table) |
//! | [`permissions`] | the rule table (`permissions::verdict`, a pure function of mode, access, outside-cwd and the always-allowed tools) and the gate that asks the client |
//! | [`message`], [`session`] | the history's shapes; the JSONL session store: the format and loading (`mod.rs`), the directory (`store.rs`: list, open locked, fork, delete), the writer (`file.rs`) |
//! | [`compaction`] | compaction arithmetic: token estimates, where to cut, the summarisation request, what the model sees after one |
//! | [`error`] | the one error style: `anyhow` inside, [`error::Coded`] where a client sees a code |
//! | [`context`] | the system prompt: the default one (`system_prompt.md`) or the user's, plus the AGENTS.md / CLAUDE.md context files (`files.rs`) |
//! | [`config`] | the config file |
//! | [`process`] | `ChildBuilder`, the one way a child process starts (bash, MCP stdio servers, extensions): parent-death signal, signal reset, environment scrub, process group, the sandbox hook |
//!
//! # A prompt, from stdin to the model and back
//!
//! 1. `transport` reads a line; `protocol::decode_command` makes it a
//!    [`protocol::Command`] (or an `error` frame under its id).
//! 2. `host` registers it in the ledger (`host::pending`) and dispatches it
//!    to its handler (`host/handlers/turns.rs`), which queues it; `host/turn.rs`
//!    checks that its model can be reached (`Providers::reach_now`, or in a
//!    task while an extension starts; if not, the prompt is refused and
//!    nothing is stored), writes the user message to the session file and
//!    spawns the turn with the session's system prompt (`context`, built
//!    when the session started).
//! 3. `engine` runs rounds: `provider::Providers` opens a stream on the
//!    model's backend; each delta arrives already as a wire
//!    [`protocol::StreamEvent`] and goes straight to the stdout writer.
//!    Tool calls go through `engine/tool_calls.rs`: one lookup in the tool
//!    table, the permission gate, the run.
//! 4. The turn reports each finished message to the host, which appends it
//!    to the session; at the end the host writes `agent_end` and takes the
//!    prompt out of the ledger to write its one `response`.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod acp;
pub mod cli;
pub mod compaction;
pub mod config;
pub mod context;
pub mod engine;
pub mod error;
pub mod host;
pub mod mcp;
pub mod message;
pub mod permissions;
pub mod process;
pub mod protocol;
pub mod provider;
pub mod session;
pub mod startup;
pub mod subcommands;
pub mod tools;
pub mod transport;

pub use startup::run;
