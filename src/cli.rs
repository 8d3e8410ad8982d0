//! Command-line flags (clap derive). Every flag is documented in README.md.

use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Parser)]
#[command(
    name = "rpc",
    version,
    about = "Agent host driven over stdio: line-delimited JSON commands in, frames out (protocol v1)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Subcommand>,

    /// Where sessions and installed extensions live [default: $AGENT_RPC_HOME,
    /// else $XDG_DATA_HOME/agent-rpc, else ~/.local/share/agent-rpc].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,

    /// Resume a session: by id, or the most recently updated one without an id.
    #[arg(long = "continue", value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    pub continue_session: Option<String>,

    /// Model id: `provider/model` (e.g. `anthropic/claude-sonnet-5-5`, `ollama/qwen2.5:7b`),
    /// `<plugin>:<provider>:<model>` for an extension, or a bare `claude-…`/`gpt-…` name;
    /// overrides a resumed session's model.
    #[arg(long, value_name = "ID")]
    pub model: Option<String>,

    /// Config file [default: $XDG_CONFIG_HOME/agent-rpc/config.toml, else ~/.config/agent-rpc/config.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// A provider extension directory or its plugin.json (repeatable).
    #[arg(long = "extension", value_name = "PATH")]
    pub extensions: Vec<PathBuf>,

    /// Working directory of the session [default: the current directory].
    #[arg(long, value_name = "DIR")]
    pub cwd: Option<PathBuf>,

    /// System prompt sent with every provider request.
    #[arg(long, value_name = "TEXT")]
    pub system_prompt: Option<String>,

    /// Largest accepted command line in bytes (newline excluded).
    #[arg(long, value_name = "BYTES", default_value_t = 1024 * 1024)]
    pub max_frame_bytes: usize,

    /// Seconds a provider may stay silent mid-stream before the turn fails.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub provider_idle_timeout: u64,

    /// Seconds an extension has to answer `initialize`.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub init_timeout: u64,

    /// What tools may do without asking: ask (default), accept-edits, allow-all, read-only.
    /// Overrides a resumed session's mode.
    #[arg(long, value_name = "MODE", value_enum)]
    pub permission_mode: Option<crate::permissions::Mode>,

    /// Most provider rounds in one turn.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub max_rounds: u32,

    /// Log filter for stderr (e.g. `debug`, `agent_rpc=trace`) [default: $RUST_LOG, else `warn`].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// Commands other than serving a session.
#[derive(Debug, clap::Subcommand)]
pub enum Subcommand {
    /// Print the protocol's JSON Schema (draft 2020-12) and exit; the
    /// checked-in copy is schema/agent-rpc.schema.json.
    Schema,
}
