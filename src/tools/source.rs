//! Where a session's tools come from: a list of [`ToolSource`]s (the
//! built-in tools, the session's MCP servers; skills and subagents later)
//! that the turn asks for each round's [`Offer`].
//!
//! A new source is one file implementing [`ToolSource`] and one line where
//! the session's list is built. The offer is rebuilt only when a source's
//! version changes, so a round normally costs a version check per source
//! and one pointer copy.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::table::{Offer, Toolset};
use super::tool::{BoxFuture, Tool};
use crate::protocol::Mode;

/// A place tools come from.
pub(crate) trait ToolSource: Send + Sync {
    /// Named in logs (a tool dropped for a name clash).
    fn name(&self) -> &str;

    /// Waits until the tools are known (MCP servers on their first start,
    /// each bounded by its startup timeout), or until `cancel`. Most
    /// sources know theirs at once.
    fn ready<'a>(&'a self, cancel: &'a CancellationToken) -> BoxFuture<'a, ()> {
        let _ = cancel;
        Box::pin(std::future::ready(()))
    }

    /// Changes whenever [`ToolSource::tools`] would answer differently.
    fn version(&self) -> u64;

    /// The tools offered now, in the order the model sees them.
    fn tools(&self) -> Vec<Arc<dyn Tool>>;
}

/// The built-in tools, which never change.
pub(crate) struct Builtins;

impl ToolSource for Builtins {
    fn name(&self) -> &str {
        "built-in tools"
    }

    fn version(&self) -> u64 {
        0
    }

    fn tools(&self) -> Vec<Arc<dyn Tool>> {
        Toolset::builtin().iter().cloned().collect()
    }
}

/// A session's sources, asked in order; an earlier source wins a name.
pub(crate) struct ToolSources {
    sources: Vec<Arc<dyn ToolSource>>,
    /// Only tools of these names are offered (a subagent's definition
    /// lists them); `None`: every tool.
    only: Option<Vec<String>>,
    offers: Mutex<Option<Offers>>,
}

/// The offers built for one version of every source.
struct Offers {
    versions: Vec<u64>,
    all: Arc<Offer>,
    read_only: Arc<Offer>,
}

impl ToolSources {
    pub(crate) fn new(sources: Vec<Arc<dyn ToolSource>>) -> ToolSources {
        ToolSources {
            sources,
            only: None,
            offers: Mutex::new(None),
        }
    }

    /// Offers only the tools named in `only` (when given).
    pub(crate) fn only(mut self, only: Option<Vec<String>>) -> Self {
        self.only = only;
        self
    }

    /// What a round offers in `mode`. Waits first for sources still
    /// discovering their tools, or until `cancel`.
    pub(crate) async fn offer(&self, mode: Mode, cancel: &CancellationToken) -> Arc<Offer> {
        for source in &self.sources {
            source.ready(cancel).await;
        }
        let mut offers = self.offers.lock().unwrap_or_else(|p| p.into_inner());
        let current = match offers.as_ref() {
            Some(o)
                if o.versions
                    .iter()
                    .copied()
                    .eq(self.sources.iter().map(|s| s.version())) =>
            {
                o
            }
            _ => {
                // Versions are read before the tools, so a change in
                // between makes the next round build again, never miss it.
                let versions = self.sources.iter().map(|s| s.version()).collect();
                let tools = self.table();
                offers.insert(Offers {
                    versions,
                    all: Arc::new(Offer::new(tools.clone(), Mode::Ask)),
                    read_only: Arc::new(Offer::new(tools, Mode::ReadOnly)),
                })
            }
        };
        match mode {
            Mode::ReadOnly => current.read_only.clone(),
            _ => current.all.clone(),
        }
    }

    /// Every source's tools in one table. A name already taken is dropped
    /// with a warning: the model could not tell the two apart, and
    /// providers reject a request that offers a name twice. (MCP tool names
    /// carry their server's name, so a clash is left only between two long
    /// names cut to the same hash.)
    fn table(&self) -> Toolset {
        let mut set = Toolset::empty();
        for source in &self.sources {
            for tool in source.tools() {
                if self
                    .only
                    .as_ref()
                    .is_some_and(|only| !only.iter().any(|n| n == tool.name()))
                {
                    continue;
                }
                if let Err(e) = set.add(tool) {
                    tracing::warn!("{}: {e:#}", source.name());
                }
            }
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};

    use serde_json::{json, Value};

    use super::*;
    use crate::permissions::Access;
    use crate::tools::{FileSystem, Preview, ToolCtx, ToolOutput};

    /// A source whose one tool can be renamed, as a server's list changes.
    struct Renaming {
        name: Mutex<String>,
        version: AtomicU64,
    }

    impl ToolSource for Renaming {
        fn name(&self) -> &str {
            "test"
        }
        fn version(&self) -> u64 {
            self.version.load(Ordering::Acquire)
        }
        fn tools(&self) -> Vec<Arc<dyn Tool>> {
            let name = self.name.lock().unwrap().clone();
            vec![Arc::new(Named(name))]
        }
    }

    struct Named(String);

    impl Tool for Named {
        fn name(&self) -> &str {
            &self.0
        }
        fn definition(&self) -> Value {
            json!({"name": self.0, "description": "x", "input_schema": {"type": "object"}})
        }
        fn access(&self) -> Access {
            Access::Foreign {
                read_only_hint: false,
            }
        }
        fn preview(&self, _: &Value, cwd: &Path, _: &dyn FileSystem) -> anyhow::Result<Preview> {
            Ok(Preview {
                title: self.0.clone(),
                diff: None,
                paths: vec![cwd.to_path_buf()],
            })
        }
        fn run<'a>(&'a self, _: &'a Value, _: &'a ToolCtx) -> BoxFuture<'a, ToolOutput> {
            Box::pin(std::future::ready(ToolOutput::ok("")))
        }
    }

    fn names(offer: &Offer) -> Vec<String> {
        offer
            .definitions
            .iter()
            .map(|d| d["name"].to_string())
            .collect()
    }

    #[tokio::test]
    async fn the_offer_follows_every_source_and_is_built_once_per_version() {
        let extra = Arc::new(Renaming {
            name: Mutex::new("mcp__a".into()),
            version: AtomicU64::new(1),
        });
        let sources = ToolSources::new(vec![Arc::new(Builtins), extra.clone()]);
        let cancel = CancellationToken::new();
        let first = sources.offer(Mode::Ask, &cancel).await;
        assert_eq!(names(&first).len(), 9);
        assert_eq!(names(&first)[8], "\"mcp__a\"");
        let again = sources.offer(Mode::Ask, &cancel).await;
        assert!(Arc::ptr_eq(&first, &again), "rebuilt without a change");
        // Read-only mode offers only the read-only tools and the plan.
        let read_only = sources.offer(Mode::ReadOnly, &cancel).await;
        assert_eq!(names(&read_only).len(), 5);

        *extra.name.lock().unwrap() = "read".into();
        extra.version.store(2, Ordering::Release);
        let clashed = sources.offer(Mode::Ask, &cancel).await;
        assert_eq!(names(&clashed).len(), 8, "the clashing tool is dropped");
        assert!(clashed
            .tools
            .unknown("x")
            .content
            .contains("the built-in tools"));
        assert!(first.tools.unknown("x").content.contains("the tools are"));
    }
}
