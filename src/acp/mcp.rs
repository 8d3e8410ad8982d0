//! The MCP servers an ACP client passes in `session/new` / `session/load`,
//! converted to our own shape. The MCP client (issue 13) takes them as
//! `crate::mcp::ServerSpec`; until that lands this is carried to where the
//! session's host is built and converted there at the merge.

use std::collections::BTreeMap;
use std::path::PathBuf;

use agent_client_protocol::v1::schema::McpServer;

/// One MCP server a session is to connect to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpServerSpec {
    pub name: String,
    pub transport: McpTransport,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum McpTransport {
    /// A child process speaking MCP on its stdio.
    Stdio {
        command: PathBuf,
        args: Vec<String>,
        env: BTreeMap<String, String>,
        /// The session's working directory.
        cwd: PathBuf,
    },
    /// Streamable HTTP.
    Http {
        url: String,
        headers: BTreeMap<String, String>,
    },
}

/// The client's servers we can connect to; SSE servers (which we do not
/// advertise) are skipped with a warning.
pub fn convert(servers: Vec<McpServer>, cwd: &std::path::Path) -> Vec<McpServerSpec> {
    servers
        .into_iter()
        .filter_map(|server| match server {
            McpServer::Stdio(s) => Some(McpServerSpec {
                name: s.name,
                transport: McpTransport::Stdio {
                    command: s.command,
                    args: s.args,
                    env: s.env.into_iter().map(|v| (v.name, v.value)).collect(),
                    cwd: cwd.to_path_buf(),
                },
            }),
            McpServer::Http(s) => Some(McpServerSpec {
                name: s.name,
                transport: McpTransport::Http {
                    url: s.url,
                    headers: s.headers.into_iter().map(|h| (h.name, h.value)).collect(),
                },
            }),
            other => {
                tracing::warn!("MCP server {other:?} skipped: only stdio and http are supported");
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stdio_and_http_entries_convert_and_sse_is_skipped() {
        let servers: Vec<McpServer> = serde_json::from_value(json!([
            {"name": "files", "command": "/usr/bin/mcp-files", "args": ["--root", "."], "env": [{"name": "TOKEN", "value": "t"}]},
            {"type": "http", "name": "web", "url": "https://example.test/mcp", "headers": [{"name": "Authorization", "value": "Bearer x"}]},
            {"type": "sse", "name": "old", "url": "https://example.test/sse", "headers": []}
        ]))
        .unwrap();
        let specs = convert(servers, std::path::Path::new("/w"));
        assert_eq!(specs.len(), 2);
        assert_eq!(
            specs[0],
            McpServerSpec {
                name: "files".into(),
                transport: McpTransport::Stdio {
                    command: "/usr/bin/mcp-files".into(),
                    args: vec!["--root".into(), ".".into()],
                    env: BTreeMap::from([("TOKEN".into(), "t".into())]),
                    cwd: "/w".into(),
                },
            }
        );
        assert_eq!(
            specs[1],
            McpServerSpec {
                name: "web".into(),
                transport: McpTransport::Http {
                    url: "https://example.test/mcp".into(),
                    headers: BTreeMap::from([("Authorization".into(), "Bearer x".into())]),
                },
            }
        );
    }
}
