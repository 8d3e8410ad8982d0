//! The `rpc` binary: parse flags, log to stderr, run the host, exit with its code.

use clap::Parser;

fn main() {
    let cli = agent_rpc::cli::Cli::parse();
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
