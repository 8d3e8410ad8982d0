//! The MCP servers an ACP client passes in `session/new` / `session/load`,
//! converted to our own shape. The MCP client (issue 13) takes them as
//! `crate::mcp::ServerSpec`; until that lands this is carried to where the
//! session's host is built and converted there at the merge.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::Value;

use super::rpc::RpcError;

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

/// The client's `mcpServers` (required by the schema; absent is taken as
/// none). Stdio entries (no `type`) and `http` ones are kept; `sse` ones
/// (which we do not advertise) are skipped with a warning.
pub fn convert(
    servers: Option<&Value>,
    cwd: &std::path::Path,
) -> Result<Vec<McpServerSpec>, RpcError> {
    let Some(servers) = servers.filter(|s| !s.is_null()) else {
        return Ok(Vec::new());
    };
    let list = servers
        .as_array()
        .ok_or_else(|| RpcError::invalid_params("mcpServers must be a list"))?;
    let mut out = Vec::new();
    for server in list {
        let text = |key: &str| server.get(key).and_then(Value::as_str);
        let bad = |what: &str| RpcError::invalid_params(format!("mcpServers: {what} in {server}"));
        let name = text("name")
            .ok_or_else(|| bad("a server without a name"))?
            .to_owned();
        let transport = match text("type") {
            None | Some("stdio") => McpTransport::Stdio {
                command: PathBuf::from(text("command").ok_or_else(|| bad("no command"))?),
                args: server
                    .get("args")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                env: pairs(server.get("env")),
                cwd: cwd.to_path_buf(),
            },
            Some("http") => McpTransport::Http {
                url: text("url").ok_or_else(|| bad("no url"))?.to_owned(),
                headers: pairs(server.get("headers")),
            },
            Some(other) => {
                tracing::warn!("MCP server {name:?} skipped: transport {other:?} is not supported");
                continue;
            }
        };
        out.push(McpServerSpec { name, transport });
    }
    Ok(out)
}

/// `[{name, value}]` lists (env variables, HTTP headers) as a map.
fn pairs(list: Option<&Value>) -> BTreeMap<String, String> {
    list.and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| {
                    let name = item.get("name")?.as_str()?;
                    let value = item.get("value")?.as_str()?;
                    Some((name.to_owned(), value.to_owned()))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stdio_and_http_entries_convert_and_sse_is_skipped() {
        let servers = json!([
            {"name": "files", "command": "/usr/bin/mcp-files", "args": ["--root", "."], "env": [{"name": "TOKEN", "value": "t"}]},
            {"type": "http", "name": "web", "url": "https://example.test/mcp", "headers": [{"name": "Authorization", "value": "Bearer x"}]},
            {"type": "sse", "name": "old", "url": "https://example.test/sse", "headers": []}
        ]);
        let specs = convert(Some(&servers), std::path::Path::new("/w")).unwrap();
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
        assert!(convert(None, std::path::Path::new("/w"))
            .unwrap()
            .is_empty());
        assert!(convert(Some(&json!([{"command": "x"}])), std::path::Path::new("/w")).is_err());
    }
}
