//! The `rpc` binary: parse flags, log to stderr, then serve a session (the
//! library's `run`) or run a subcommand, and exit with its code.

use std::io::Write;

use agent_rpc::cli::Subcommand;
use clap::Parser;

/// Warnings and errors, but none of the MCP SDK's own: every MCP failure is
/// reported by the host (`mcp_server_status`, its warning), in words and
/// with the URL redacted, while the SDK's lines repeat it as Rust debug
/// output with the whole URL, query tokens included.
const DEFAULT_LOG_FILTER: &str = "warn,rmcp=off";

fn main() {
    let cli = agent_rpc::cli::Cli::parse();
    match &cli.command {
        Some(Subcommand::Schema) => {
            let written = agent_rpc::subcommands::schema(&mut std::io::stdout().lock());
            std::process::exit(exit_code("rpc schema", written.map(|()| 0)));
        }
        Some(Subcommand::Sessions(args)) => {
            let mut out = std::io::stdout().lock();
            let mut err = std::io::stderr().lock();
            let done = agent_rpc::subcommands::sessions(&cli, args, &mut out, &mut err);
            std::process::exit(exit_code("rpc sessions", done));
        }
        None => {}
    }
    let filter = cli
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| DEFAULT_LOG_FILTER.to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    // Before anything is opened: a host with many sessions and servers
    // needs more descriptors than a desktop's soft limit allows.
    match agent_rpc::fd_limit::raise() {
        Ok(n) => tracing::debug!("open file limit: {n}"),
        Err(e) => tracing::warn!("cannot raise the open file limit: {e}"),
    }
    std::process::exit(agent_rpc::run(cli));
}

/// A subcommand's exit code. A reader that stops early (`| head`) is not
/// an error.
fn exit_code(what: &str, done: std::io::Result<i32>) -> i32 {
    match done {
        Ok(code) => code,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "{what}: {e}");
            1
        }
    }
}
