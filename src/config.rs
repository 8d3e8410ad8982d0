//! The optional config file: default model, named HTTP endpoints with their
//! models, HTTP retry/timeout settings, and the system prompt's sources.
//!
//! Read from `--config`, else `$XDG_CONFIG_HOME/agent-rpc/config.toml`, else
//! `~/.config/agent-rpc/config.toml`; a missing default file is no config, a
//! missing `--config` file is an error. Unknown keys are errors too (a typo
//! silently ignored is a setting silently lost), and every error names the
//! file, the line and the field.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde::Deserialize;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Config {
    /// The file this was read from (none when there is no config file), so
    /// later checks can name it.
    #[serde(skip)]
    pub path: Option<PathBuf>,
    /// Model used when neither `--model` nor the session names one.
    pub default_model: Option<String>,
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    #[serde(default)]
    pub http: HttpConfig,
    #[serde(default)]
    pub tools: ToolsConfig,
    #[serde(default)]
    pub shell: ShellConfig,
    #[serde(default)]
    pub sandbox: SandboxConfig,
    #[serde(default)]
    pub hooks: HooksConfig,
    #[serde(default)]
    pub compaction: CompactionConfig,
    #[serde(default)]
    pub budget: BudgetConfig,
    #[serde(default)]
    pub subagents: SubagentsConfig,
    /// Replaces the default system prompt: text, or `@file` (relative to
    /// the config file's directory; read by [`load`]).
    pub system_prompt: Option<String>,
    /// Added after the system prompt: text or `@file`, like `system_prompt`.
    pub append_system_prompt: Option<String>,
    /// Whether AGENTS.md / CLAUDE.md files are read (default true).
    pub context_files: Option<bool>,
    /// Whether Agent Skills are looked for (default true).
    pub skills: Option<bool>,
    /// `[mcp_servers.<name>]`: MCP tool servers (Codex's shape).
    #[serde(default)]
    pub mcp_servers: BTreeMap<String, crate::mcp::config::TomlServer>,
    /// `[agents.<name>]`: external ACP agents the `task` tool can run.
    #[serde(default)]
    pub agents: BTreeMap<String, ExternalAgentConfig>,
}

/// How long an external agent may stay silent during a call by default.
pub(crate) const DEFAULT_AGENT_TIMEOUT_SECS: u64 = 600;

/// `[agents.<name>]`: an ACP agent the host starts as a child process and
/// drives as an ACP client when the model delegates a task to it
/// (`claude-code-acp`, `codex-acp`, `gemini --experimental-acp`,
/// `opencode acp`, `rpc --acp`, …). `<name>` is what the model passes as
/// the `task` tool's `agent`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ExternalAgentConfig {
    /// The program (looked up in `PATH` unless it is a path). Required.
    #[serde(default)]
    pub command: String,
    #[serde(default)]
    pub args: Vec<String>,
    /// Added to the environment the agent inherits, which is the host's
    /// less its secrets (provider keys, `*_API_KEY`, as bash gets it); a
    /// secret the agent needs is given here explicitly.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Secret variables of the host's environment the agent inherits all
    /// the same (its own API key), so that the key need not be written
    /// into the config file.
    #[serde(default)]
    pub env_keep: Vec<String>,
    /// What the agent is good at; the model reads it to choose. Required.
    #[serde(default)]
    pub description: String,
    /// Seconds a call may go without any message from the agent before it
    /// fails as hung (the agent is then restarted on next use).
    #[serde(default = "default_agent_timeout")]
    pub timeout: u64,
    /// Offer the agent ACP's `fs/read_text_file`: it may read text files
    /// (unsaved state included, for an editor) through the host, inside the
    /// child's working directory only. Default false: the agent reads the
    /// disk itself.
    #[serde(default)]
    pub fs_read: bool,
    /// Offer the agent ACP's `fs/write_text_file`, inside the child's
    /// working directory only. Default false.
    #[serde(default)]
    pub fs_write: bool,
    /// Offer the agent ACP's `terminal/*` methods. Not supported yet: only
    /// `false` is accepted.
    #[serde(default)]
    pub terminal: bool,
}

fn default_agent_timeout() -> u64 {
    DEFAULT_AGENT_TIMEOUT_SECS
}

impl ExternalAgentConfig {
    /// The checks serde cannot make; errors name the table and the field.
    fn validate(&self, name: &str) -> anyhow::Result<()> {
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            bail!("[agents.{name}]: an agent name must be letters, digits, '-' and '_'");
        }
        if self.command.trim().is_empty() {
            bail!("[agents.{name}] field command: required (the agent's program, e.g. \"claude-code-acp\")");
        }
        if self.description.trim().is_empty() {
            bail!("[agents.{name}] field description: required (the model reads it to choose an agent)");
        }
        if self.timeout == 0 {
            bail!("[agents.{name}] field timeout: must be at least 1 (seconds)");
        }
        if self.terminal {
            bail!("[agents.{name}] field terminal: offering terminals to an agent is not supported yet");
        }
        Ok(())
    }
}

/// `[compaction]`: when and how much the host compacts long sessions.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct CompactionConfig {
    /// Compact on its own (threshold, overflow); default true. A session's
    /// `set_auto_compaction` and `--no-auto-compaction` win.
    pub auto: Option<bool>,
    /// Tokens left free before a round [default: the model's output limit, else 16384].
    pub reserve_tokens: Option<u64>,
    /// Most tokens of recent messages kept verbatim [default 20000; never
    /// more than a quarter of the context window].
    pub keep_tokens: Option<u64>,
}

/// `[budget]`: every session's limits, unless `--max-turns` /
/// `--max-budget-usd` or a `set_budget` say otherwise.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct BudgetConfig {
    /// Most provider rounds over a session's turns.
    pub max_turns: Option<u64>,
    /// Most a session may cost, in USD.
    pub max_usd: Option<f64>,
}

/// `[subagents]`: how many children the `task` tool runs, and for how
/// long one is kept for the model to continue.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SubagentsConfig {
    /// Most `task` calls of one round running at once [default 4].
    pub max_parallel: Option<usize>,
    /// Most child sessions open in the process [default 8].
    pub max_sessions: Option<usize>,
    /// Seconds an idle child session stays open [default 600].
    pub idle_timeout: Option<f64>,
}

/// `[tools]`: kept for its old key, `keep_env`, an alias of
/// `[shell] env_keep`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ToolsConfig {
    /// Same as `[shell] env_keep` (the two lists are joined).
    pub keep_env: Vec<String>,
}

/// `[shell]`: what bash and MCP stdio servers inherit.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ShellConfig {
    /// Credential variables they may nonetheless inherit (by default every
    /// provider key variable and every `*_API_KEY`, `*_TOKEN` and
    /// `*_SECRET` is removed).
    pub env_keep: Vec<String>,
}

impl Config {
    /// `[shell] env_keep` and its older spelling `[tools] keep_env`.
    pub(crate) fn env_keep(&self) -> Vec<String> {
        let mut keep = self.shell.env_keep.clone();
        keep.extend(self.tools.keep_env.iter().cloned());
        keep
    }
}

/// `[hooks]`: where the policy hooks are read from (`src/hooks/`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HooksConfig {
    /// A hooks file in Claude Code's shape (relative to the config file's
    /// directory; `--hooks` wins).
    pub file: Option<PathBuf>,
}

/// `[sandbox]`: the kernel sandbox of bash and sandboxed MCP servers
/// (`src/sandbox/`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct SandboxConfig {
    /// [default: workspace-write where the kernel has Landlock, else
    /// off; `--sandbox` wins].
    pub mode: Option<crate::protocol::SandboxMode>,
    /// Directories writable besides the working directory and the temp
    /// dir (`~` expands to the home directory).
    pub writable_roots: Vec<PathBuf>,
    /// Paths nothing sandboxed may read; replaces the default list
    /// (`~/.ssh`, `~/.gnupg`, `~/.aws`, `~/.config/gcloud`, and the
    /// host's own config and data directories).
    pub deny_read: Option<Vec<PathBuf>>,
    /// Lets sandboxed commands use the network (default false).
    pub network: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Kind {
    /// Anthropic Messages API.
    Anthropic,
    /// OpenAI-compatible Chat Completions API.
    Openai,
    /// Google's Gemini API (`streamGenerateContent`).
    Gemini,
}

/// Which of OpenAI's two APIs an `openai`-kind endpoint speaks (`api =`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum OpenaiApi {
    /// `POST /chat/completions`, which every compatible server speaks.
    ChatCompletions,
    /// `POST /responses`, OpenAI's API for its reasoning models.
    Responses,
}

/// `api = "…"`: the wire API of a provider. The two OpenAI ones choose
/// between OpenAI's APIs for kind `openai`; `gemini` is the same as
/// `kind = "gemini"` (the issue and users name it as an API).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ApiName {
    ChatCompletions,
    Responses,
    Gemini,
}

impl ApiName {
    /// The kind the API implies, and OpenAI's API where it is one.
    pub(crate) fn resolve(self) -> (Kind, Option<OpenaiApi>) {
        match self {
            ApiName::ChatCompletions => (Kind::Openai, Some(OpenaiApi::ChatCompletions)),
            ApiName::Responses => (Kind::Openai, Some(OpenaiApi::Responses)),
            ApiName::Gemini => (Kind::Gemini, None),
        }
    }
}

/// `[providers.<name>]`: a named endpoint (or overrides of a built-in one).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderConfig {
    #[serde(default)]
    pub kind: Option<Kind>,
    /// For kind `openai`: the API to use for every model (default: the
    /// Responses API for the `openai` endpoint's reasoning models, Chat
    /// Completions for the rest); `gemini` for Google's API.
    #[serde(default)]
    pub api: Option<ApiName>,
    #[serde(default)]
    pub base_url: Option<String>,
    /// Environment variable holding the key; none for keyless local servers.
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// Anthropic `cache_control` breakpoints (default on for kind anthropic;
    /// ignored for OpenAI-compatible endpoints, which cache on their own).
    #[serde(default)]
    pub prompt_caching: Option<bool>,
    #[serde(default)]
    pub models: Vec<ModelConfig>,
}

/// An extra model entry (or overrides for a catalogue one).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelConfig {
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub context_window: Option<u64>,
    #[serde(default)]
    pub max_tokens: Option<u64>,
    /// USD per million input tokens.
    #[serde(default)]
    pub input_price: Option<f64>,
    /// USD per million output tokens.
    #[serde(default)]
    pub output_price: Option<f64>,
    #[serde(default)]
    pub cache_read_price: Option<f64>,
    #[serde(default)]
    pub cache_write_price: Option<f64>,
    /// The model takes a thinking level (default: known by its family name).
    #[serde(default)]
    pub reasoning: Option<bool>,
}

/// `[http]`: timeouts and retries for the HTTP providers.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct HttpConfig {
    pub connect_timeout_secs: f64,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// Total time retries may wait, over all attempts.
    pub max_retry_secs: f64,
    /// First backoff delay; doubles per attempt (with jitter).
    pub retry_base_delay_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            connect_timeout_secs: 10.0,
            max_retries: 4,
            max_retry_secs: 60.0,
            retry_base_delay_ms: 500,
        }
    }
}

/// An environment variable's value; an empty one counts as unset.
pub(crate) fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A prompt setting's text: the value itself, or with a leading `@` the
/// content of that file, a relative path resolving against `base`.
pub(crate) fn text_or_file(value: &str, base: &Path) -> anyhow::Result<String> {
    let Some(file) = value.strip_prefix('@') else {
        return Ok(value.to_owned());
    };
    let path = base.join(file);
    let shown = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
    std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", shown.display()))
}

/// The default location, if one can be found.
pub(crate) fn default_path() -> Option<PathBuf> {
    Some(default_dir()?.join("config.toml"))
}

/// The global config directory: `$XDG_CONFIG_HOME/agent-rpc`, else
/// `~/.config/agent-rpc` (also where the global AGENTS.md lives).
pub(crate) fn default_dir() -> Option<PathBuf> {
    let base = std::env::var("XDG_CONFIG_HOME")
        .ok()
        .filter(|v| v.starts_with('/'))
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var("HOME")
                .ok()
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".config"))
        })?;
    Some(base.join("agent-rpc"))
}

/// The user's skills directories, farther level first: the shared
/// `~/.agents/skills`, then agent-rpc's own under [`default_dir`].
pub(crate) fn skill_dirs() -> Vec<PathBuf> {
    let home = env_nonempty("HOME").map(|h| PathBuf::from(h).join(".agents/skills"));
    let own = default_dir().map(|d| d.join("skills"));
    home.into_iter().chain(own).collect()
}

/// Loads the config: `explicit` must exist; the default path may not.
pub(crate) fn load(explicit: Option<&Path>) -> anyhow::Result<Config> {
    let (path, required) = match explicit {
        Some(p) => (p.to_path_buf(), true),
        None => match default_path() {
            Some(p) => (p, false),
            None => return Ok(Config::default()),
        },
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Config::default())
        }
        Err(e) => bail!("cannot read config file {}: {e}", path.display()),
    };
    let mut config = parse(&text).with_context(|| format!("config file {}", path.display()))?;
    let dir = path.parent().unwrap_or(Path::new("."));
    for (key, value) in [
        ("system_prompt", &mut config.system_prompt),
        ("append_system_prompt", &mut config.append_system_prompt),
    ] {
        if let Some(v) = value.as_mut() {
            *v = text_or_file(v, dir)
                .with_context(|| format!("config file {} field {key}", path.display()))?;
        }
    }
    config.path = Some(path);
    Ok(config)
}

/// Parses config text; errors carry the line, column and field.
pub(crate) fn parse(text: &str) -> anyhow::Result<Config> {
    let config: Config = toml::from_str(text).map_err(|e| {
        let Some(span) = e.span() else {
            return anyhow!("{}", e.message());
        };
        let start = span.start.min(text.len());
        let line_no = text[..start].matches('\n').count() + 1;
        anyhow!("line {line_no}{}: {}", field_at(text, start), e.message())
    })?;
    for (name, p) in &config.providers {
        if name.is_empty() || name.contains(['/', ':']) || name.contains(char::is_whitespace) {
            bail!(
                "[providers.{name}]: a provider name may not be empty or contain '/', ':' or spaces"
            );
        }
        if let Some(url) = &p.base_url {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!(
                    "[providers.{name}] field base_url: {url:?} must start with http:// or https://"
                );
            }
        }
    }
    for (name, agent) in &config.agents {
        agent.validate(name)?;
    }
    if config.budget.max_turns == Some(0) {
        bail!("[budget] field max_turns: must be at least 1 (leave it out for no limit)");
    }
    if let Some(usd) = config
        .budget
        .max_usd
        .filter(|u| !u.is_finite() || *u <= 0.0)
    {
        bail!("[budget] field max_usd: {usd} must be above 0 (leave it out for no limit)");
    }
    Ok(config)
}

/// ", field <table>.<key>" for the `key = value` line holding `offset`, so
/// a type error names what to fix even when the parser's message does not.
fn field_at(text: &str, offset: usize) -> String {
    let line_start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
    let line = text[line_start..].lines().next().unwrap_or("");
    let Some((key, _)) = line.split_once('=') else {
        return String::new();
    };
    let table = text[..line_start]
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| l.starts_with('['))
        .map(|l| l.trim_matches(['[', ']']).to_owned());
    match table {
        Some(t) => format!(", field {t}.{}", key.trim()),
        None => format!(", field {}", key.trim()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_an_ollama_endpoint() {
        let c = parse(
            r#"
default_model = "ollama/qwen2.5:7b"
[providers.ollama]
kind = "openai"
base_url = "http://localhost:11434/v1"
[[providers.ollama.models]]
id = "qwen2.5:7b"
context_window = 32768
"#,
        )
        .unwrap();
        let p = &c.providers["ollama"];
        assert_eq!(p.kind, Some(Kind::Openai));
        assert_eq!(p.models[0].context_window, Some(32768));
        assert_eq!(c.http.max_retries, 4);
    }

    #[test]
    fn system_prompt_keys_are_top_level_and_at_files_are_read_beside_the_config() {
        let c =
            parse("system_prompt = \"be brief\"\ncontext_files = false\nskills = false\n").unwrap();
        assert_eq!(c.skills, Some(false));
        assert_eq!(c.system_prompt.as_deref(), Some("be brief"));
        assert_eq!(c.context_files, Some(false));
        assert_eq!(c.append_system_prompt, None);

        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("extra.md"), "from a file\n").unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "append_system_prompt = \"@extra.md\"\n").unwrap();
        let c = load(Some(&path)).unwrap();
        assert_eq!(c.append_system_prompt.as_deref(), Some("from a file\n"));
        std::fs::write(&path, "append_system_prompt = \"@gone.md\"\n").unwrap();
        let e = format!("{:#}", load(Some(&path)).unwrap_err());
        assert!(
            e.contains("append_system_prompt") && e.contains("gone.md"),
            "{e}"
        );
    }

    #[test]
    fn errors_name_line_and_field() {
        let err = |text: &str| format!("{:#}", parse(text).unwrap_err());
        let e = err("default_model = \"x\"\n[providers.a]\nkindd = \"openai\"\n");
        assert!(e.contains("line 3") && e.contains("kindd"), "{e}");
        let e = err("[providers.a]\nkind = \"grpc\"\n");
        assert!(e.contains("line 2") && e.contains("grpc"), "{e}");
        let e = err("[providers.a]\nbase_url = \"localhost\"\n");
        assert!(e.contains("base_url"), "{e}");
        let e = err("[http]\nmax_retries = \"many\"\n");
        assert!(e.contains("line 2") && e.contains("max_retries"), "{e}");
        let e = err("[budget]\nmax_usd = 0.0\n");
        assert!(e.contains("[budget] field max_usd"), "{e}");
        let e = err("[budget]\nmax_turns = 0\n");
        assert!(e.contains("[budget] field max_turns"), "{e}");
        let ok = parse("[budget]\nmax_turns = 3\nmax_usd = 0.5\n").unwrap();
        assert_eq!(
            (ok.budget.max_turns, ok.budget.max_usd),
            (Some(3), Some(0.5))
        );
    }

    #[test]
    fn agents_tables_parse_with_defaults_and_bad_ones_are_named() {
        let c = parse(
            "[agents.claude]\ncommand = \"claude-code-acp\"\ndescription = \"codes\"\n\
             [agents.self]\ncommand = \"rpc\"\nargs = [\"--acp\"]\ndescription = \"us\"\n\
             env = { A = \"1\" }\ntimeout = 30\nfs_read = true\n",
        )
        .unwrap();
        let a = &c.agents["claude"];
        assert_eq!(a.timeout, DEFAULT_AGENT_TIMEOUT_SECS);
        assert!(a.args.is_empty() && !a.fs_read && !a.fs_write && !a.terminal);
        let s = &c.agents["self"];
        assert_eq!((s.args.len(), s.timeout, s.fs_read), (1, 30, true));
        assert_eq!(s.env["A"], "1");
        let err = |text: &str| format!("{:#}", parse(text).unwrap_err());
        let e = err("[agents.x]\ndescription = \"d\"\n");
        assert!(e.contains("[agents.x] field command"), "{e}");
        let e = err("[agents.x]\ncommand = \"c\"\n");
        assert!(e.contains("[agents.x] field description"), "{e}");
        let e = err("[agents.x]\ncommand = \"c\"\ndescription = \"d\"\ntimeout = 0\n");
        assert!(e.contains("[agents.x] field timeout"), "{e}");
        let e = err("[agents.x]\ncommand = \"c\"\ndescription = \"d\"\nterminal = true\n");
        assert!(e.contains("[agents.x] field terminal"), "{e}");
        let e = err("[agents.x]\ncommand = \"c\"\ndescription = \"d\"\ncmd = 1\n");
        assert!(e.contains("line 4") && e.contains("cmd"), "{e}");
        let e = err("[agents.x]\ncommand = \"c\"\ndescription = \"d\"\nargs = \"-v\"\n");
        assert!(e.contains("agents.x.args"), "{e}");
        let e = err("[agents.\"a b\"]\ncommand = \"c\"\ndescription = \"d\"\n");
        assert!(e.contains("agent name"), "{e}");
        // The file is named by `load`.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[agents.x]\ncommand = \"c\"\n").unwrap();
        let e = format!("{:#}", load(Some(&path)).unwrap_err());
        assert!(
            e.contains(&path.display().to_string()) && e.contains("[agents.x] field description"),
            "{e}"
        );
    }

    #[test]
    fn prompt_text_comes_from_the_value_or_an_at_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.md"), "from a file\n").unwrap();
        assert_eq!(text_or_file("plain", dir.path()).unwrap(), "plain");
        assert_eq!(text_or_file("@p.md", dir.path()).unwrap(), "from a file\n");
        let err = format!("{:#}", text_or_file("@gone.md", dir.path()).unwrap_err());
        assert!(err.contains("gone.md"), "{err}");
    }
}
