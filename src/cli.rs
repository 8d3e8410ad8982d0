//! Command-line flags (clap derive). Every flag is documented in README.md.

use std::path::PathBuf;

use clap::Parser;

/// What `rpc --help` ends with: the protocol in one screen. A unit test
/// keeps it naming every command.
pub const AFTER_HELP: &str = "\
The protocol (SPEC.md has all of it; schema/agent-rpc.schema.json, or `rpc schema`, as JSON Schema):
  Write one JSON object per line on stdin, e.g.
    {\"type\":\"prompt\",\"id\":\"1\",\"message\":\"fix the failing test\"}
  Commands: prompt, follow_up, steer, abort, set_model, permission_response,
    set_permission_mode, set_thinking_level, set_budget, set_sandbox, get_state,
    get_session_stats, get_messages, get_available_models, new_session, list_sessions,
    delete_session, fork, switch_session, export_session, import_session, compact,
    set_auto_compaction, shutdown, get_commands
  Read one JSON object per line on stdout: ready first, then a response or an
    error for every command (matched by id), and events while a turn runs:
    agent_start, message_update (text_delta, thinking_delta, toolcall_*),
    tool_execution_start/_update/_end, permission_request (answer it with
    permission_response), permission_cancelled, auto_retry,
    compaction_start/_end, agent_end;
    model_changed when the model the next prompt uses changes,
    model_error when the model in use turns out not to exist, and
    mcp_server_status when an MCP server (--mcp-config) starts, fails or
    changes its tools.
  Try it offline, from a checkout of the repository:
    printf '{\"type\":\"prompt\",\"message\":\"hi\"}\\n' | rpc --extension fixtures/providers/echo";

#[derive(Debug, Clone, Parser)]
#[command(
    name = "rpc",
    version,
    about = "Agent host driven over stdio: line-delimited JSON commands in, frames out (protocol v1).",
    after_help = AFTER_HELP
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Subcommand>,

    /// Speak the Agent Client Protocol (ACP v1, JSON-RPC 2.0) on stdin and
    /// stdout instead of the native protocol: for Zed, JetBrains IDEs,
    /// Neovim, acpx. Sessions are opened by the client (`session/new`,
    /// `session/load`).
    #[arg(long, conflicts_with = "continue_session")]
    pub acp: bool,

    /// Where sessions and installed extensions live [default: $AGENT_RPC_HOME,
    /// else $XDG_DATA_HOME/agent-rpc, else ~/.local/share/agent-rpc].
    #[arg(long, value_name = "DIR", global = true)]
    pub data_dir: Option<PathBuf>,

    /// Resume a session: by id, or without an id the latest one started in
    /// the working directory (`rpc sessions` lists them).
    #[arg(long = "continue", value_name = "ID", num_args = 0..=1, default_missing_value = "")]
    pub continue_session: Option<String>,

    /// With --continue: resume a copy of the session under a new id (its
    /// header names the original in `forked_from`); the original is left
    /// as it was.
    #[arg(long, requires = "continue_session")]
    pub fork: bool,

    /// Model id: `provider/model` (e.g. `anthropic/claude-sonnet-5-5`, `ollama/qwen2.5:7b`),
    /// `<plugin>:<provider>:<model>` for an extension, or a bare `claude-…`/`gpt-…` name;
    /// overrides a resumed session's model.
    #[arg(long, value_name = "ID")]
    pub model: Option<String>,

    /// Config file [default: $XDG_CONFIG_HOME/agent-rpc/config.toml, else ~/.config/agent-rpc/config.toml].
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// MCP servers in Claude Code's `.mcp.json` shape (repeatable); added to
    /// the config file's `[mcp_servers]`. Never read implicitly.
    #[arg(long = "mcp-config", value_name = "FILE")]
    pub mcp_config: Vec<PathBuf>,

    /// A provider extension directory or its plugin.json (repeatable).
    #[arg(long = "extension", value_name = "PATH")]
    pub extensions: Vec<PathBuf>,

    /// Working directory of the session [default: the current directory; a
    /// resumed session's own].
    #[arg(long, value_name = "DIR", global = true)]
    pub cwd: Option<PathBuf>,

    /// Replaces the default system prompt: the text, or `@FILE` for a file's
    /// content [default: the config's `system_prompt`, else the built-in one].
    #[arg(long, value_name = "TEXT|@FILE")]
    pub system_prompt: Option<String>,

    /// Added to the end of the system prompt (before the context files):
    /// the text, or `@FILE` [default: the config's `append_system_prompt`].
    #[arg(long, value_name = "TEXT|@FILE")]
    pub append_system_prompt: Option<String>,

    /// Do not read AGENTS.md / CLAUDE.md files into the system prompt.
    #[arg(long)]
    pub no_context_files: bool,

    /// Do not look for Agent Skills (SKILL.md folders) to list in the
    /// system prompt [default: the config's `skills`, else on].
    #[arg(long)]
    pub no_skills: bool,

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
    pub permission_mode: Option<crate::protocol::Mode>,

    /// The kernel sandbox of bash and sandboxed MCP servers: read-only,
    /// workspace-write, off [default: config `[sandbox] mode`, else
    /// workspace-write where the kernel has Landlock, else off].
    #[arg(long, value_name = "MODE", value_enum)]
    pub sandbox: Option<crate::protocol::SandboxMode>,

    /// Policy hooks in Claude Code's shape, read from FILE [default: config
    /// `[hooks] file`, else $XDG_CONFIG_HOME/agent-rpc/hooks.json].
    #[arg(long, value_name = "FILE")]
    pub hooks: Option<PathBuf>,

    /// Also runs the hooks of the project's own `.claude/settings.json`
    /// (never without this flag: a repository must not choose what runs).
    #[arg(long)]
    pub trust_project_hooks: bool,

    /// Thinking level: off, minimal, low, medium, high, xhigh [default: off; a
    /// resumed session's own]. Overrides a resumed session's level.
    #[arg(long, value_name = "LEVEL", value_enum)]
    pub thinking: Option<crate::protocol::ThinkingLevel>,

    /// Never compact on its own (at the threshold or on a context overflow);
    /// `compact` still works, and `set_auto_compaction` can turn it back on.
    #[arg(long)]
    pub no_auto_compaction: bool,

    /// Most provider rounds in one turn.
    #[arg(long, value_name = "N", default_value_t = 50)]
    pub max_rounds: u32,

    /// Most provider rounds over the whole session (its budget; `set_budget`
    /// changes it) [default: config `[budget] max_turns`, else none].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_turns: Option<u64>,

    /// Most the session may cost, in USD, from the catalogue's prices (its
    /// budget; `set_budget` changes it) [default: config `[budget] max_usd`, else none].
    #[arg(long, value_name = "USD", value_parser = positive_usd)]
    pub max_budget_usd: Option<f64>,

    /// Log filter for stderr (e.g. `debug`, `agent_rpc=trace`) [default: $RUST_LOG, else `warn`].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
}

/// Commands other than serving a session.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum Subcommand {
    /// Print the protocol's JSON Schema (draft 2020-12) and exit; the
    /// checked-in copy is schema/agent-rpc.schema.json.
    Schema,
    /// List the stored sessions of the working directory, newest first
    /// (`rpc sessions rm <ID>...` deletes them; `rpc sessions export <ID> >
    /// s.jsonl` and, on another machine, `rpc sessions import s.jsonl` move one).
    Sessions(SessionsArgs),
}

#[derive(Debug, Clone, clap::Args)]
pub struct SessionsArgs {
    /// Sessions of every directory, not just the working one.
    #[arg(long)]
    pub all: bool,
    /// One JSON array (the `list_sessions` entries) instead of a table.
    #[arg(long)]
    pub json: bool,
    #[command(subcommand)]
    pub action: Option<SessionsAction>,
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum SessionsAction {
    /// Delete stored sessions (refused for one an rpc process is using).
    Rm {
        #[arg(required = true, value_name = "ID")]
        ids: Vec<String>,
    },
    /// Write a session to stdout as one self-contained JSONL stream (works
    /// for one in use: a snapshot of its complete entries).
    Export {
        #[arg(value_name = "ID")]
        id: String,
    },
    /// Store an exported session and print its id (exit 1, nothing stored,
    /// when the stream is torn or foreign or the id exists).
    Import {
        /// Store a copy under a fresh id (`forked_from` names the original).
        #[arg(long)]
        new_id: bool,
        /// Overwrite a stored session of the same id (refused while an rpc
        /// process holds it).
        #[arg(long)]
        replace: bool,
        /// The export to read [default: stdin, also `-`].
        #[arg(value_name = "FILE")]
        file: Option<PathBuf>,
    },
}

/// A budget in USD: a finite amount above zero.
fn positive_usd(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(usd) if usd.is_finite() && usd > 0.0 => Ok(usd),
        _ => Err(format!(
            "`{text}` is not an amount of USD above 0 (e.g. 0.50)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::CommandName;

    #[test]
    fn the_help_names_every_command() {
        for name in CommandName::ALL {
            assert!(
                AFTER_HELP.contains(name.as_str()),
                "{name} missing from --help"
            );
        }
        // And every subcommand of a subcommand, on the first help screen.
        use clap::CommandFactory;
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("rpc sessions rm"), "{help}");
        assert!(help.contains("rpc sessions export"), "{help}");
    }

    #[test]
    fn the_flags_parse() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }

    #[test]
    fn a_budget_in_usd_is_a_finite_amount_above_zero() {
        assert_eq!(positive_usd("0.5"), Ok(0.5));
        for bad in ["0", "-1", "inf", "NaN", "five"] {
            assert!(positive_usd(bad).is_err(), "{bad}");
        }
    }
}
