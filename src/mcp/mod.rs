//! MCP (Model Context Protocol) tool servers: their configuration
//! (`config`), one connection through the official SDK (`client`; `http`
//! its HTTP client, which keeps why a request failed), one
//! server with its start, tool list and restarts (`server`), the servers of
//! one host and their tool table (`manager`), and a server tool as an entry
//! of the tool table (`tool`).

mod client;
pub(crate) mod config;
mod http;
pub(crate) mod manager;
mod server;
mod tool;

pub(crate) use config::{ServerSpec, Transport};
pub(crate) use manager::Manager;
pub(crate) use server::Options;
