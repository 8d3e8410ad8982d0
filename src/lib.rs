//! agent-rpc: an agent host driven over stdio with line-delimited JSON
//! (protocol v1, see SPEC.md).
//!
//! Layout:
//! - [`cli`]: command-line flags.
//! - [`config`]: the optional config file (default model, HTTP endpoints).
//! - [`protocol`]: wire types (commands in, frames out, error codes).
//! - [`transport`]: the bounded stdin line reader and the single stdout writer.
//! - [`host`]: the dispatch loop that owns all state and answers commands.
//! - [`engine`]: one turn: provider rounds, tool calls, steering, abort.
//! - [`permissions`]: the gate deciding which tool calls run, ask or are refused.
//! - [`tools`]: the built-in tools (read, write, edit, bash, ls, find, grep).
//! - [`process`]: how child processes are spawned (bash, extensions).
//! - [`provider`]: model providers (subprocess extensions) and their registry.
//! - [`message`]: conversation history shapes.
//! - [`session`]: the JSONL session store.
//! - [`startup`]: from flags to a running host, and start-up errors.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod cli;
pub mod config;
pub mod engine;
pub mod error;
pub mod host;
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
