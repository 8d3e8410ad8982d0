//! The `rpc` binary: parse flags, log to stderr, run the host, exit with its code.

use std::io::Write;

use agent_rpc::cli::Subcommand;
use clap::Parser;

fn main() {
    let cli = agent_rpc::cli::Cli::parse();
    if let Some(Subcommand::Schema) = cli.command {
        std::process::exit(print_schema());
    }
    let filter = cli
        .log_level
        .clone()
        .or_else(|| std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty()))
        .unwrap_or_else(|| "warn".to_owned());
    let filter = tracing_subscriber::EnvFilter::try_new(&filter)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    std::process::exit(agent_rpc::run(cli));
}

/// `rpc schema`: the document, pretty-printed, on stdout. A reader that
/// stops early (`| head`) is not an error.
fn print_schema() -> i32 {
    let document = agent_rpc::protocol::schema::document();
    let mut out = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut out, &document)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(out))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => 0,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => 0,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "rpc schema: {e}");
            1
        }
    }
}
