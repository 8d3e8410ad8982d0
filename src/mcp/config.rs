//! MCP server specifications: what a server is ([`ServerSpec`]), and
//! reading them from the two formats users already have, Claude Code's
//! `.mcp.json` (`--mcp-config`) and Codex's `[mcp_servers.<name>]` tables
//! in config.toml.
//!
//! Start-up turns both into one `Vec<ServerSpec>` and hands it to the host;
//! nothing here is read from the project directory on its own, and a front
//! end that gets its servers elsewhere (ACP's `session/new`) builds the
//! specs in code. Every error names the file, the server and the field.

use crate::error::redact_url;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

/// How long a server may take to start and list its tools by default.
pub(crate) const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one tool call may take by default.
pub(crate) const DEFAULT_TOOL_TIMEOUT: Duration = Duration::from_secs(120);

/// One MCP server the host connects to.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct ServerSpec {
    /// Unique among the host's servers; the middle of `mcp__<server>__<tool>`.
    pub name: String,
    pub transport: Transport,
    /// A disabled server is listed nowhere and never started.
    pub enabled: bool,
    pub startup_timeout: Duration,
    pub tool_timeout: Duration,
    /// A stdio server runs in the session's kernel sandbox (config.toml's
    /// `sandbox = true`).
    pub sandbox: bool,
}

/// How the host reaches a server.
#[derive(Clone, PartialEq, Eq)]
pub(crate) enum Transport {
    /// A child process speaking MCP on its stdin and stdout.
    Stdio {
        command: String,
        args: Vec<String>,
        /// Added to the host's environment (less its secrets).
        env: BTreeMap<String, String>,
        /// The host's working directory when absent.
        cwd: Option<PathBuf>,
    },
    /// A Streamable HTTP endpoint.
    Http {
        url: String,
        /// Sent with every request; the values are never logged.
        headers: BTreeMap<String, String>,
    },
}

impl ServerSpec {
    /// A server with the default timeouts, enabled.
    pub(crate) fn new(name: impl Into<String>, transport: Transport) -> Self {
        ServerSpec {
            name: name.into(),
            transport,
            enabled: true,
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            tool_timeout: DEFAULT_TOOL_TIMEOUT,
            sandbox: false,
        }
    }

    /// Checks what a front end built in code, as the parsers do: a name
    /// usable in a tool name, a command or an http(s) URL.
    pub(crate) fn validate(&self) -> Result<()> {
        check_name(&self.name)?;
        match &self.transport {
            Transport::Stdio { command, .. } if command.trim().is_empty() => {
                bail!("field command: may not be empty")
            }
            Transport::Http { url, headers } => {
                if !(url.starts_with("http://") || url.starts_with("https://")) {
                    bail!(
                        "field url: {:?} must start with http:// or https://",
                        redact_url(url)
                    );
                }
                for (name, value) in headers {
                    reqwest::header::HeaderName::from_bytes(name.as_bytes())
                        .map_err(|_| anyhow!("field headers: {name:?} is not a header name"))?;
                    // The value itself is never put into a message.
                    reqwest::header::HeaderValue::from_str(value).map_err(|_| {
                        anyhow!("field headers.{name}: the value is not a valid header value")
                    })?;
                }
                Ok(())
            }
            Transport::Stdio { .. } => Ok(()),
        }
    }
}

/// Header values are secrets (tokens): Debug shows their names only.
impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Stdio {
                command,
                args,
                env,
                cwd,
            } => f
                .debug_struct("Stdio")
                .field("command", command)
                .field("args", args)
                .field("env", &env.keys().collect::<Vec<_>>())
                .field("cwd", cwd)
                .finish(),
            Transport::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", &redact_url(url))
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

impl std::fmt::Debug for ServerSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerSpec")
            .field("name", &self.name)
            .field("transport", &self.transport)
            .field("enabled", &self.enabled)
            .finish()
    }
}

/// Server names end up in tool names, which providers restrict to
/// `[A-Za-z0-9_-]`; `__` would make `mcp__a__b__c` ambiguous.
fn check_name(name: &str) -> Result<()> {
    if name.is_empty()
        || name.contains("__")
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        bail!("the server name {name:?} must be letters, digits, '-' and '_' (no \"__\")");
    }
    Ok(())
}

/// `[mcp_servers.<name>]` in config.toml (Codex's shape).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TomlServer {
    pub command: Option<String>,
    #[serde(default)]
    pub args: Vec<String>,
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    pub cwd: Option<PathBuf>,
    pub url: Option<String>,
    #[serde(default, alias = "http_headers")]
    pub headers: BTreeMap<String, String>,
    pub enabled: Option<bool>,
    pub startup_timeout_secs: Option<u64>,
    pub tool_timeout_secs: Option<u64>,
    /// Run this stdio server in the session's kernel sandbox.
    #[serde(default)]
    pub sandbox: bool,
}

/// The config file's servers as specs; `file` names it in errors.
pub(crate) fn from_toml(
    servers: &BTreeMap<String, TomlServer>,
    file: &str,
) -> Result<Vec<ServerSpec>> {
    servers
        .iter()
        .map(|(name, s)| {
            toml_server(name, s).with_context(|| format!("{file}: [mcp_servers.{name}]"))
        })
        .collect()
}

fn toml_server(name: &str, s: &TomlServer) -> Result<ServerSpec> {
    let transport = match (&s.command, &s.url) {
        (Some(command), None) => {
            if !s.headers.is_empty() {
                bail!("field headers: only an http server (url) takes headers");
            }
            Transport::Stdio {
                command: command.clone(),
                args: s.args.clone(),
                env: s.env.clone(),
                cwd: s.cwd.clone(),
            }
        }
        (None, Some(url)) => {
            if !s.args.is_empty() || !s.env.is_empty() || s.cwd.is_some() {
                bail!("fields args, env and cwd: only a stdio server (command) takes them");
            }
            if s.sandbox {
                bail!("field sandbox: only a stdio server (command) runs in the sandbox");
            }
            Transport::Http {
                url: url.clone(),
                headers: s.headers.clone(),
            }
        }
        (Some(_), Some(_)) => bail!("fields command and url: give one of them, not both"),
        (None, None) => bail!("field command or url: one of them is required"),
    };
    let mut spec = ServerSpec::new(name, transport);
    spec.enabled = s.enabled.unwrap_or(true);
    spec.sandbox = s.sandbox;
    if let Some(secs) = s.startup_timeout_secs {
        spec.startup_timeout = positive(secs, "startup_timeout_secs")?;
    }
    if let Some(secs) = s.tool_timeout_secs {
        spec.tool_timeout = positive(secs, "tool_timeout_secs")?;
    }
    spec.validate()?;
    Ok(spec)
}

fn positive(secs: u64, field: &str) -> Result<Duration> {
    if secs == 0 {
        bail!("field {field}: must be at least 1");
    }
    Ok(Duration::from_secs(secs))
}

/// One server of a `.mcp.json` file (Claude Code's shape).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonServer {
    #[serde(rename = "type")]
    kind: Option<String>,
    command: Option<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    cwd: Option<PathBuf>,
    url: Option<String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
}

/// Reads a `--mcp-config` file: `{"mcpServers": {"<name>": {...}}}`.
pub(crate) fn read_json_file(path: &Path) -> Result<Vec<ServerSpec>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --mcp-config {file}"))?;
    parse_json(&text, &file)
}

/// Parses `.mcp.json` text; `file` names it in errors.
pub(crate) fn parse_json(text: &str, file: &str) -> Result<Vec<ServerSpec>> {
    let root: Value =
        serde_json::from_str(text).with_context(|| format!("{file}: not valid JSON"))?;
    let Some(servers) = root.get("mcpServers") else {
        bail!("{file}: field mcpServers is missing");
    };
    let Some(servers) = servers.as_object() else {
        bail!("{file}: field mcpServers must be an object of servers by name");
    };
    servers
        .iter()
        .map(|(name, value)| {
            json_server(name, value).with_context(|| format!("{file}: server {name:?}"))
        })
        .collect()
}

fn json_server(name: &str, value: &Value) -> Result<ServerSpec> {
    let server: JsonServer = serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        if field == "." {
            anyhow!("{}", e.inner())
        } else {
            anyhow!("field {field}: {}", e.inner())
        }
    })?;
    let transport = match server.kind.as_deref() {
        Some("http") | Some("streamable-http") | Some("streamableHttp") => {
            let Some(url) = server.url else {
                bail!(
                    "field url: required for type {:?}",
                    server.kind.unwrap_or_default()
                );
            };
            if server.command.is_some() {
                bail!("field command: an http server takes a url, not a command");
            }
            Transport::Http {
                url,
                headers: server.headers,
            }
        }
        Some("stdio") | None => {
            let Some(command) = server.command else {
                if server.url.is_some() {
                    bail!("field type: a server with a url needs \"type\": \"http\"");
                }
                bail!("field command: required for a stdio server");
            };
            Transport::Stdio {
                command,
                args: server.args,
                env: server.env,
                cwd: server.cwd,
            }
        }
        Some(other) => {
            bail!("field type: {other:?} is not supported (use \"stdio\" or \"http\")")
        }
    };
    let spec = ServerSpec::new(name, transport);
    spec.validate()?;
    Ok(spec)
}

/// The servers of the config file and the `--mcp-config` files, in that
/// order; a name given twice is an error naming both places.
pub(crate) fn collect(
    config: &BTreeMap<String, TomlServer>,
    config_file: &str,
    json_files: &[PathBuf],
) -> Result<Vec<ServerSpec>> {
    let mut specs: Vec<(ServerSpec, String)> = from_toml(config, config_file)?
        .into_iter()
        .map(|s| (s, config_file.to_owned()))
        .collect();
    for path in json_files {
        for spec in read_json_file(path)? {
            let here = path.display().to_string();
            if let Some((_, first)) = specs.iter().find(|(s, _)| s.name == spec.name) {
                bail!(
                    "{here}: server {:?} is also defined in {first}; server names must be unique",
                    spec.name
                );
            }
            specs.push((spec, here));
        }
    }
    Ok(specs
        .into_iter()
        .map(|(s, _)| s)
        .filter(|s| s.enabled)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        format!("{:#}", parse_json(text, "x.json").unwrap_err())
    }

    #[test]
    fn claude_code_shape_parses_both_transports() {
        let specs = parse_json(
            r#"{"mcpServers": {
                "fs": {"command": "npx", "args": ["-y", "srv"], "env": {"A": "1"}, "cwd": "/tmp"},
                "web": {"type": "http", "url": "https://example.test/mcp",
                        "headers": {"Authorization": "Bearer s3cret"}}
            }}"#,
            "x.json",
        )
        .unwrap();
        assert_eq!(specs.len(), 2);
        assert_eq!(specs[0].name, "fs");
        let Transport::Stdio {
            command, args, env, ..
        } = &specs[0].transport
        else {
            panic!("stdio expected");
        };
        assert_eq!((command.as_str(), args.len()), ("npx", 2));
        assert_eq!(env["A"], "1");
        assert_eq!(specs[0].startup_timeout, DEFAULT_STARTUP_TIMEOUT);
        assert!(
            matches!(&specs[1].transport, Transport::Http { url, .. } if url.ends_with("/mcp"))
        );
        let shown = format!("{:?}", specs[1]);
        assert!(
            shown.contains("Authorization") && !shown.contains("s3cret"),
            "{shown}"
        );
    }

    #[test]
    fn json_errors_name_file_server_and_field() {
        let e = err(r#"{"mcpServers": {"a": {"command": 5}}}"#);
        assert!(
            e.contains("x.json") && e.contains("\"a\"") && e.contains("command"),
            "{e}"
        );
        let e = err(r#"{"mcpServers": {"a": {"comand": "x"}}}"#);
        assert!(e.contains("comand"), "{e}");
        let e = err(r#"{"mcpServers": {"a": {"type": "sse", "url": "http://x"}}}"#);
        assert!(e.contains("field type") && e.contains("sse"), "{e}");
        let e = err(r#"{"mcpServers": {"a": {"type": "http", "url": "ftp://x"}}}"#);
        assert!(e.contains("field url"), "{e}");
        let e = err(r#"{"mcpServers": {"a b": {"command": "x"}}}"#);
        assert!(e.contains("server name"), "{e}");
        let e = err(r#"{"servers": {}}"#);
        assert!(e.contains("mcpServers"), "{e}");
        let e = err("{");
        assert!(e.contains("x.json") && e.contains("JSON"), "{e}");
    }

    #[test]
    fn codex_tables_parse_with_timeouts_and_enabled() {
        let config = crate::config::parse(
            r#"
[mcp_servers.docs]
command = "docs-server"
args = ["--stdio"]
env = { TOKEN_FILE = "/x" }
tool_timeout_secs = 5
[mcp_servers.remote]
url = "http://127.0.0.1:1/mcp"
http_headers = { "X-Key" = "k" }
startup_timeout_secs = 3
[mcp_servers.off]
command = "nope"
enabled = false
"#,
        )
        .unwrap();
        let specs = collect(&config.mcp_servers, "c.toml", &[]).unwrap();
        let names: Vec<&str> = specs.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["docs", "remote"], "disabled servers are dropped");
        assert_eq!(specs[0].tool_timeout, Duration::from_secs(5));
        assert_eq!(specs[1].startup_timeout, Duration::from_secs(3));
        assert!(
            matches!(&specs[1].transport, Transport::Http { headers, .. } if headers["X-Key"] == "k")
        );
    }

    #[test]
    fn toml_errors_name_the_table_and_field() {
        let bad = |text: &str| {
            let config = crate::config::parse(text).unwrap();
            format!(
                "{:#}",
                collect(&config.mcp_servers, "c.toml", &[]).unwrap_err()
            )
        };
        let e = bad("[mcp_servers.a]\nargs = [\"x\"]\n");
        assert!(
            e.contains("c.toml") && e.contains("[mcp_servers.a]") && e.contains("command or url"),
            "{e}"
        );
        let e = bad("[mcp_servers.a]\ncommand = \"x\"\nurl = \"http://y\"\n");
        assert!(e.contains("not both"), "{e}");
        let e = bad("[mcp_servers.a]\ncommand = \"x\"\ntool_timeout_secs = 0\n");
        assert!(e.contains("tool_timeout_secs"), "{e}");
        let e = format!(
            "{:#}",
            crate::config::parse("[mcp_servers.a]\ncommandd = \"x\"\n").unwrap_err()
        );
        assert!(e.contains("line 2") && e.contains("commandd"), "{e}");
    }

    #[test]
    fn a_name_in_two_places_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.json");
        std::fs::write(&path, r#"{"mcpServers": {"a": {"command": "x"}}}"#).unwrap();
        let config = crate::config::parse("[mcp_servers.a]\ncommand = \"y\"\n").unwrap();
        let e = format!(
            "{:#}",
            collect(&config.mcp_servers, "c.toml", &[path]).unwrap_err()
        );
        assert!(e.contains("also defined in c.toml"), "{e}");
    }
}
