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
pub(crate) fn convert(
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
    for (index, server) in list.iter().enumerate() {
        let text = |key: &str| server.get(key).and_then(Value::as_str);
        // Names the entry by its place and name only: its env and header
        // values are secrets that must not reach the client's logs.
        let bad = |what: &str| {
            let name = text("name")
                .map(|n| format!(" ({n:?})"))
                .unwrap_or_default();
            RpcError::invalid_params(format!("mcpServers[{index}]{name}: {what}"))
        };
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
                env: pairs(server.get("env"), "env").map_err(|e| bad(&e))?,
                cwd: Some(cwd.to_path_buf()),
            },
            Some("http") => Transport::Http {
                url: text("url").ok_or_else(|| bad("no url"))?.to_owned(),
                headers: pairs(server.get("headers"), "headers").map_err(|e| bad(&e))?,
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

/// `[{name, value}]` lists (env variables, HTTP headers) as a map. A
/// malformed entry is refused rather than skipped: a server started
/// without its auth header would only fail later, and less clearly. The
/// error names the entry, never its value.
fn pairs(list: Option<&Value>, field: &str) -> Result<BTreeMap<String, String>, String> {
    let Some(list) = list.filter(|l| !l.is_null()) else {
        return Ok(BTreeMap::new());
    };
    let items = list
        .as_array()
        .ok_or_else(|| format!("{field} must be a list of {{name, value}}"))?;
    let mut out = BTreeMap::new();
    for (i, item) in items.iter().enumerate() {
        let name = item.get("name").and_then(Value::as_str);
        let value = item.get("value").and_then(Value::as_str);
        match (name, value) {
            (Some(name), Some(value)) => {
                out.insert(name.to_owned(), value.to_owned());
            }
            (Some(name), None) => return Err(format!("{field} {name:?} has no string value")),
            (None, _) => return Err(format!("{field}[{i}] has no name")),
        }
    }
    Ok(out)
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
        // A header without a value is refused, and no value is ever echoed.
        let headers = json!([{"type": "http", "name": "web", "url": "https://x.test/mcp",
            "headers": [{"name": "Authorization"}, {"name": "X", "value": "secret-1"}]}]);
        let e = convert(Some(&headers), w).unwrap_err();
        assert!(e.message.contains("Authorization"), "{e:?}");
        let env = json!([{"name": "fs", "command": "x", "env": [{"name": "TOKEN", "value": "secret-2"}, {"value": 3}]}]);
        let e = convert(Some(&env), w).unwrap_err();
        assert!(e.message.contains("env[1]"), "{e:?}");
        assert!(!e.message.contains("secret-2"), "{e:?}");
    }
}
