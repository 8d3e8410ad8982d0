//! The MCP servers an ACP client passes in `session/new` / `session/load`,
//! turned into the MCP client's [`ServerSpec`]s: the session's host
//! connects them in the background next to the configured ones.

use std::collections::BTreeMap;

use serde_json::Value;

use super::rpc::RpcError;
use crate::mcp::{ServerSpec, Transport};

/// The client's `mcpServers` (required by the schema; absent is taken as
/// none). Stdio entries (no `type`) and `http` ones are kept; `sse` ones
/// (which we do not advertise) are skipped with a warning.
pub fn convert(
    servers: Option<&Value>,
    cwd: &std::path::Path,
) -> Result<Vec<ServerSpec>, RpcError> {
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
            None | Some("stdio") => Transport::Stdio {
                command: text("command").ok_or_else(|| bad("no command"))?.to_owned(),
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
                cwd: Some(cwd.to_path_buf()),
            },
            Some("http") => Transport::Http {
                url: text("url").ok_or_else(|| bad("no url"))?.to_owned(),
                headers: pairs(server.get("headers")),
            },
            Some(other) => {
                tracing::warn!("MCP server {name:?} skipped: transport {other:?} is not supported");
                continue;
            }
        };
        let spec = ServerSpec::new(name, transport);
        // The client's entries get the same checks as the config's: a name
        // usable in tool names, a command, an http(s) URL, valid headers.
        spec.validate()
            .map_err(|e| RpcError::invalid_params(format!("mcpServers: {:?}: {e:#}", spec.name)))?;
        if out.iter().any(|s: &ServerSpec| s.name == spec.name) {
            return Err(RpcError::invalid_params(format!(
                "mcpServers: the name {:?} is used twice",
                spec.name
            )));
        }
        out.push(spec);
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
            ServerSpec::new(
                "files",
                Transport::Stdio {
                    command: "/usr/bin/mcp-files".into(),
                    args: vec!["--root".into(), ".".into()],
                    env: BTreeMap::from([("TOKEN".into(), "t".into())]),
                    cwd: Some("/w".into()),
                },
            )
        );
        assert_eq!(
            specs[1],
            ServerSpec::new(
                "web",
                Transport::Http {
                    url: "https://example.test/mcp".into(),
                    headers: BTreeMap::from([("Authorization".into(), "Bearer x".into())]),
                },
            )
        );
        assert!(convert(None, std::path::Path::new("/w"))
            .unwrap()
            .is_empty());
        let w = std::path::Path::new("/w");
        assert!(convert(Some(&json!([{"command": "x"}])), w).is_err());
        // Names end up in tool names; a bad URL or a name used twice is refused.
        assert!(convert(Some(&json!([{"name": "a__b", "command": "x"}])), w).is_err());
        assert!(convert(
            Some(&json!([{"type": "http", "name": "w", "url": "ftp://x"}])),
            w
        )
        .is_err());
        let twice = json!([{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]);
        assert!(convert(Some(&twice), w).is_err());
    }
}
