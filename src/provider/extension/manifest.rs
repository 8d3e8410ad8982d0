//! Provider-extension manifests (`plugin.json`) and their discovery.
//!
//! Extensions come from two places: every `<data dir>/extensions/<id>/`
//! holding a `plugin.json`, and each `--extension <dir or plugin.json>`. A
//! broken manifest the user named explicitly stops start-up (they asked for
//! it); a broken one found by scanning is logged and skipped so that one bad
//! install cannot take the host down.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use serde::Deserialize;
use serde_json::Value;

#[derive(Deserialize)]
struct PluginJson {
    name: Option<String>,
    extension: Option<ExtensionSection>,
}

#[derive(Deserialize)]
struct ExtensionSection {
    protocol_version: u32,
    runtime: String,
    command: String,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    permissions: Vec<String>,
    #[serde(default)]
    config: Value,
    /// Extra environment for the child: fixed values.
    #[serde(default)]
    env: BTreeMap<String, String>,
    /// Names of host variables passed through (e.g. an API key it needs).
    #[serde(default)]
    pass_env: Vec<String>,
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub(crate) struct Manifest {
    /// The plugin id: the name of the directory holding `plugin.json`.
    pub id: String,
    pub root: PathBuf,
    pub name: String,
    pub command: PathBuf,
    pub args: Vec<String>,
    pub config: Value,
    pub env: BTreeMap<String, String>,
    pub pass_env: Vec<String>,
}

/// Reads `plugin.json` from a directory, or the file itself.
pub(crate) fn load(path: &Path) -> Result<Manifest> {
    if !path.exists() {
        bail!(
            "extension path {} does not exist (give a plugin directory or its plugin.json)",
            path.display()
        );
    }
    let file = if path.is_dir() {
        path.join("plugin.json")
    } else {
        path.to_path_buf()
    };
    let file =
        std::path::absolute(&file).with_context(|| format!("cannot resolve {}", file.display()))?;
    let root = file
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent directory", file.display()))?
        .to_path_buf();
    let id = root
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| anyhow!("cannot take a plugin id from {}", root.display()))?
        .to_owned();
    if id.contains(':') {
        bail!("plugin directory name {id:?} may not contain ':' (it is part of model ids)");
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read extension manifest {}", file.display()))?;
    let json: PluginJson = serde_json::from_str(&text)
        .with_context(|| format!("invalid extension manifest {}", file.display()))?;
    let ext = json.extension.ok_or_else(|| {
        anyhow!(
            "{} has no \"extension\" section: it is not a provider extension",
            file.display()
        )
    })?;
    supported(&ext, &file)?;
    // A command with a path component is relative to the plugin; a bare name
    // is looked up on PATH like a shell would.
    let command = PathBuf::from(&ext.command);
    let command = if command.components().count() > 1 && command.is_relative() {
        root.join(command)
    } else {
        command
    };
    Ok(Manifest {
        name: json.name.unwrap_or_else(|| id.clone()),
        id,
        root,
        command,
        args: ext.args,
        // SynapsCLI sends an object; an absent config is an empty one.
        config: if ext.config.is_null() {
            Value::Object(Default::default())
        } else {
            ext.config
        },
        env: ext.env,
        pass_env: ext.pass_env,
    })
}

/// Whether this host can run the extension `file` describes: protocol 1,
/// the `process` runtime, and the permission to register providers.
fn supported(ext: &ExtensionSection, file: &Path) -> Result<()> {
    if ext.protocol_version != 1 {
        bail!(
            "{}: extension protocol_version {} is not supported (this rpc speaks 1)",
            file.display(),
            ext.protocol_version
        );
    }
    if ext.runtime != "process" {
        bail!(
            "{}: runtime {:?} is not supported (only \"process\")",
            file.display(),
            ext.runtime
        );
    }
    if !ext.permissions.iter().any(|p| p == "providers.register") {
        bail!(
            "{}: the extension lacks the \"providers.register\" permission, so it provides no models",
            file.display()
        );
    }
    Ok(())
}

/// All extensions: installed ones first, then explicit ones, which replace an
/// installed extension with the same id.
pub(crate) fn discover(installed_dir: &Path, explicit: &[PathBuf]) -> Result<Vec<Manifest>> {
    let mut found: BTreeMap<String, Manifest> = BTreeMap::new();
    if let Ok(entries) = std::fs::read_dir(installed_dir) {
        for entry in entries.flatten() {
            let dir = entry.path();
            if !dir.join("plugin.json").is_file() {
                continue;
            }
            match load(&dir) {
                Ok(m) => {
                    found.insert(m.id.clone(), m);
                }
                Err(e) => tracing::warn!("skipping extension in {}: {e:#}", dir.display()),
            }
        }
    }
    let mut named = std::collections::HashSet::new();
    for path in explicit {
        let m = load(path)?;
        if !named.insert(m.id.clone()) {
            bail!(
                "two --extension arguments have the plugin id {:?} (the directory name)",
                m.id
            );
        }
        found.insert(m.id.clone(), m);
    }
    Ok(found.into_values().collect())
}
