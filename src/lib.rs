//! agent-rpc: an agent host driven over stdio with line-delimited JSON
//! (protocol v1, see SPEC.md; its JSON Schema is `rpc schema`).
//!
//! # Layout
//!
//! Layers, each importing only from those below it (the exceptions are
//! named after the table):
//!
//! | layer | where | what lives there |
//! |---|---|---|
//! | 8 | `lib.rs` [`run`], [`native`], [`acp`], [`subcommands`] | the front ends: `native.rs` is protocol v1 on stdio (decode lines into commands, serialize frames, the delta fast path); `acp/` is `rpc --acp` (JSON-RPC from `jsonrpc.rs`, one host per session started in `start.rs` and kept in `sessions.rs`, typed frames → `session/update` in `sink.rs`, the editor's files and terminal as a session's tool backends in `client_fs.rs` and `terminal.rs`); `rpc schema`, `rpc sessions` |
//! | 7 | [`factory`] | the one session factory both front ends use: flags + config → a host's [`host::Parts`]; start-up errors; it opens subagents' sessions for `agents` (the `agents::Children` trait) and hands each session its `task` source as a `host::Delegate` |
//! | 6 | [`agents`] | subagents: the `task` tool (`task.rs`), agent files (`definitions.rs`), the process's open children (`hub.rs`), a child session run by a host of its own (`inprocess.rs`, its sink `nested.rs`), an ACP agent run as a child process (`external.rs`) |
//! | 5 | [`host`] | one session's dispatch loop: `link.rs` (the typed boundary in: `Submission`, `Reply`, `HostHandle`), `pending.rs` (the ledger of answers owed), `settings.rs` (the one owner of mode, model, thinking, cwd, auto-compaction), `handlers/` (one function per command), `turn.rs`, `memory.rs` (a host in memory for tests) |
//! | 4 | [`engine`] | one turn: provider rounds (`round.rs`), tool calls behind the permission gate (`tool_calls.rs`), compaction (`compaction.rs`: the one run behind the threshold, an overflow and the `compact` command), steering, abort |
//! | 3 | [`provider`], [`tools`], [`mcp`], [`session`], [`context`], [`commands`], [`compaction`], [`sandbox`], [`hooks`] | policy hooks in Claude Code's shape (`hooks/`: the config, running a command with the event on stdin; the host and the engine fire them); the kernel sandbox of bash and sandboxed MCP servers (`sandbox/`: a session's mode and policy, the `process::Sandbox` it implements; Landlock, seccomp and mount rules built in the host and applied in the forked child); model backends (`registry.rs` resolves a model id once; `extension/`; `http/`: one file per API behind the `Api` trait, the `config::Kind` → `Api` registry in `http/mod.rs`); tools: the `Tool` trait (`tool.rs`), the table calls are looked up in (`table.rs`), the list of tool sources the engine asks for each round's offer (`source.rs`: built-ins, MCP; built in `host/mod.rs`), the `ToolEnv` a call is handed (`env.rs`: file-system and process backends and the typed `ToolUpdate` channel; the local ones in `local.rs`), one file per built-in tool; MCP servers (`config.rs`, `client.rs` one connection through `rmcp`, `server.rs` one server's life, `manager.rs` a host's servers, one `ToolSource`, `tool.rs` a server tool reaching its server through the `Remote` trait); the JSONL session store; the system prompt, AGENTS.md files and Agent Skills (`context/skills.rs`, their front matter in `front_matter.rs`); slash commands (`discovery.rs` finds the Markdown templates, `expand.rs` fills in `/name arguments`); compaction arithmetic |
//! | 2 | [`sink`], [`transport`], [`jsonrpc`], [`protocol`], [`config`], [`cli`] | `sink.rs`: the typed boundary out (`FrameSink`, one impl per front end; `Nested`, a subagent's frames); the stdin line reader and the one stdout writer; JSON-RPC 2.0 over them (`jsonrpc.rs`: ACP mode's wire, and the one to external ACP agents); the wire vocabulary of protocol v1, importing only `message` below it (`command.rs` the one list of commands, `response.rs`, `event.rs`, `settings.rs`: permission mode and answer, thinking level, model entry; `error.rs`, `schema.rs`); the config file; the flags |
//! | 1 | [`message`], [`error`], [`permissions`], [`process`] | the history's shapes; the one error style (`anyhow` inside, [`error::Coded`] where a client sees a code); the permission rule table (`permissions::verdict`, a pure function) and the gate that asks the client; `process.rs`: `ChildBuilder`, the one way a child process starts (bash, MCP stdio servers, extensions: parent-death signal, signal reset, environment scrub, process group, the sandbox hook) |
//!
//! # The host boundary
//!
//! A front end submits a typed [`protocol::Command`] with a
//! [`host::Reply`] (an `id` to answer on the wire, or a oneshot for an
//! in-process caller) and receives the host's typed [`protocol::Frame`]s
//! through its [`sink::FrameSink`]. Nothing in this process encodes JSON
//! only for another part of it to parse.
//!
//! # A prompt, from stdin to the model and back
//!
//! 1. `transport` reads a line; `native.rs` decodes it into a
//!    [`protocol::Command`] (or an `error` frame under its id) and submits
//!    it to the host with `Reply::Wire(id)`.
//! 2. `host` registers it in the ledger (`host::pending`) and dispatches it
//!    to its handler (`host/handlers/turns.rs`), which queues it; `host/turn.rs`
//!    checks that its model can be reached (`Providers::reach_now`, or in a
//!    task while an extension starts; if not, the prompt is refused and
//!    nothing is stored), writes the user message to the session file and
//!    spawns the turn with the session's system prompt (`context`, built
//!    when the session started).
//! 3. `engine` runs rounds: `provider::Providers` opens a stream on the
//!    model's backend; each delta arrives already as a wire
//!    [`protocol::StreamEvent`]; a burst of them goes to the sink in one
//!    call, which `native.rs` encodes into one stdout write.
//!    Tool calls go through `engine/tool_calls.rs`: one lookup in the tool
//!    table, the permission gate, the run.
//! 4. The turn reports each finished message to the host, which appends it
//!    to the session; at the end the host writes `agent_end` and takes the
//!    prompt out of the ledger to send its one answer where its `Reply`
//!    says (for `rpc --acp`, a `session/prompt` result).
#![deny(clippy::print_stdout, clippy::print_stderr)]
#![warn(unreachable_pub)]

// The crate's own modules: nothing outside it names them.
pub(crate) mod acp;
#[allow(
    dead_code,
    reason = "the task tool wiring it up is being written (issue 22)"
)]
pub(crate) mod agents;
pub(crate) mod commands;
pub(crate) mod compaction;
pub(crate) mod config;
pub(crate) mod context;
pub(crate) mod engine;
pub(crate) mod error;
pub(crate) mod factory;
pub(crate) mod hooks;
pub(crate) mod host;
pub(crate) mod jsonrpc;
pub(crate) mod mcp;
pub(crate) mod native;
pub(crate) mod permissions;
pub(crate) mod process;
pub(crate) mod provider;
pub(crate) mod sandbox;
pub(crate) mod sink;
pub(crate) mod tls;
pub(crate) mod tools;

// What the `rpc` binary, the property tests and the fuzz targets use: the
// flags and subcommands, and the wire types and parsers they exercise.
pub mod cli;
pub mod fd_limit;
pub mod message;
pub mod protocol;
pub mod session;
pub mod subcommands;
pub mod transport;
/// The provider parsers the property tests and fuzz targets drive: the
/// extension protocol's Content-Length framing and the HTTP APIs' SSE.
pub use provider::{framing, sse};

use std::io::Write;
use std::time::Duration;

/// Serves the front end the flags choose (`--acp` or the native
/// protocol) to its end; returns the process exit code.
pub fn run(cli: cli::Cli) -> i32 {
    // A file-size limit (RLIMIT_FSIZE) must make a write fail with EFBIG,
    // which the session store handles, not kill the host with SIGXFSZ.
    // SAFETY: setting a signal's disposition to SIG_IGN before any thread
    // that could rely on it exists.
    unsafe {
        libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
    }
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(
                std::io::stderr(),
                "rpc: cannot start the async runtime: {e}"
            );
            return factory::EXIT_STARTUP;
        }
    };
    let (code, writer) = if cli.acp {
        acp::run(&cli, &runtime)
    } else {
        native::run(&cli, &runtime)
    };
    // Dropping the runtime drops every task still holding an outbox (and
    // kills extension processes); then the writer has flushed everything.
    runtime.shutdown_timeout(Duration::from_millis(200));
    writer.finish();
    code
}
