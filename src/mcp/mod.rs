//! MCP (Model Context Protocol) tool servers: their configuration
//! (`config`), one connection through the official SDK (`client`), the
//! servers of one host with their status and restarts (`manager`), and a
//! server tool as an entry of the tool table (`tool`).

mod client;
pub mod config;
pub mod manager;
mod tool;

pub use config::{ServerSpec, Transport};
pub use manager::{Manager, Options};
