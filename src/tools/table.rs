//! The tool table: the tools a turn can call, each found by name with one
//! lookup.
//!
//! The built-in tools form one table, built once ([`Toolset::builtin`]). A
//! session's table joins the tools of all its sources (`source.rs`), and is
//! used in the same way: nothing outside this file lists the built-in tools
//! or matches on their names. Definitions are built with the table, since
//! every provider round sends them.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock};

use anyhow::{bail, Result};
use serde_json::Value;

use super::bash::BashTool;
use super::edit::EditTool;
use super::find::FindTool;
use super::grep::GrepTool;
use super::ls::LsTool;
use super::read::ReadTool;
use super::todo::TodoWriteTool;
use super::tool::Tool;
use super::write::WriteTool;
use super::ToolOutput;

/// A set of tools with distinct names, in the order they are offered to the
/// model. Cloning shares the tools themselves.
#[derive(Clone)]
pub(crate) struct Toolset {
    tools: Vec<Arc<dyn Tool>>,
    /// `definitions[i]` is `tools[i].definition()`.
    definitions: Vec<Value>,
    by_name: HashMap<String, usize>,
}

impl Toolset {
    /// The built-in tools: read, write, edit, bash, ls, find, grep,
    /// todo_write.
    pub(crate) fn builtin() -> &'static Toolset {
        static BUILTIN: LazyLock<Toolset> = LazyLock::new(|| {
            let tools: [Arc<dyn Tool>; 8] = [
                Arc::new(ReadTool),
                Arc::new(WriteTool),
                Arc::new(EditTool),
                Arc::new(BashTool),
                Arc::new(LsTool),
                Arc::new(FindTool),
                Arc::new(GrepTool),
                Arc::new(TodoWriteTool),
            ];
            let mut set = Toolset::empty();
            for tool in tools {
                if let Err(e) = set.add(tool) {
                    // Eight fixed names: a clash is a bug, caught by the
                    // first test that touches the table.
                    panic!("the built-in tool table is wrong: {e}");
                }
            }
            set
        });
        &BUILTIN
    }

    /// A table with no tools yet.
    pub(super) fn empty() -> Toolset {
        Toolset {
            tools: Vec::new(),
            definitions: Vec::new(),
            by_name: HashMap::new(),
        }
    }

    /// Adds `tool` at the end (a session's table is the built-in one and its
    /// sources' tools after it). A name already taken is refused: the model
    /// could not tell the two apart, and providers reject a request that
    /// offers a name twice.
    pub(super) fn add(&mut self, tool: Arc<dyn Tool>) -> Result<()> {
        let name = tool.name().to_owned();
        if self.by_name.contains_key(&name) {
            bail!("two tools are named `{name}`; tool names must be unique");
        }
        self.by_name.insert(name, self.tools.len());
        self.definitions.push(tool.definition());
        self.tools.push(tool);
        Ok(())
    }

    /// The tool the model calls `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.by_name.get(name).and_then(|&i| self.tools.get(i))
    }

    /// Every tool's `{name, description, input_schema}`, in table order.
    pub(crate) fn definitions(&self) -> &[Value] {
        &self.definitions
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.tools.iter()
    }

    /// The result for a call to a tool this table does not have. It lists
    /// the tools that exist, so the model can pick one of them instead.
    pub(crate) fn unknown(&self, name: &str) -> ToolOutput {
        // Said "built-in" while nothing else joined, so the model knows
        // the list is the fixed one.
        let builtin = Toolset::builtin();
        let extended = self.tools.iter().any(|t| builtin.get(t.name()).is_none());
        let which = if extended { "tools" } else { "built-in tools" };
        let names: Vec<&str> = self.tools.iter().map(|t| t.name()).collect();
        ToolOutput::error(format!(
            "unknown tool `{name}`; the {which} are {}",
            in_words(&names)
        ))
    }
}

/// What one provider round offers: the table calls are looked up in, and
/// the definitions the model is sent for the permission mode. Shared behind
/// an `Arc` and rebuilt only when a tool source's version changes
/// (`source.rs`), so a round takes one pointer copy.
pub(crate) struct Offer {
    pub tools: Toolset,
    pub definitions: Vec<Value>,
}

impl Offer {
    /// `tools` as offered in `mode`: in read-only mode only the tools that
    /// may run there (the others would be refused, and the system prompt
    /// says they are off), else all of them.
    pub(crate) fn new(tools: Toolset, mode: crate::protocol::Mode) -> Offer {
        let definitions = match mode {
            crate::protocol::Mode::ReadOnly => tools
                .iter()
                .zip(tools.definitions())
                .filter(|(t, _)| t.access().offered_read_only())
                .map(|(_, d)| d.clone())
                .collect(),
            _ => tools.definitions().to_vec(),
        };
        Offer { tools, definitions }
    }
}

/// "a, b and c".
fn in_words(names: &[&str]) -> String {
    match names {
        [] => "none".to_owned(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::json;

    use super::*;
    use crate::permissions::Access;
    use crate::tools::tool::BoxFuture;
    use crate::tools::{test_util, FileSystem, Preview, ToolCtx};

    #[test]
    fn one_lookup_finds_every_builtin_tool() {
        let set = Toolset::builtin();
        let names: Vec<&str> = set.iter().map(|t| t.name()).collect();
        assert_eq!(
            names,
            [
                "read",
                "write",
                "edit",
                "bash",
                "ls",
                "find",
                "grep",
                "todo_write"
            ]
        );
        for name in names {
            let tool = set.get(name).map(|t| t.name());
            assert_eq!(tool, Some(name));
        }
        assert!(set.get("rm").is_none());
        assert!(set.get("Read").is_none(), "names are exact");
    }

    #[test]
    fn definitions_cover_every_tool_in_order() {
        let set = Toolset::builtin();
        let defs = set.definitions();
        assert_eq!(defs.len(), set.iter().count());
        for (tool, d) in set.iter().zip(defs) {
            assert_eq!(d["name"], tool.name());
            assert_eq!(d, &tool.definition());
            assert!(d["description"].as_str().is_some_and(|s| !s.is_empty()));
            assert_eq!(d["input_schema"]["type"], "object");
        }
        // Compaction's size estimate reads the built-in definitions through this.
        assert!(std::ptr::eq(crate::tools::definitions(), defs));
    }

    #[test]
    fn access_is_what_the_gate_expects() {
        let set = Toolset::builtin();
        let access = |name| set.get(name).map(|t| t.access());
        for name in ["read", "ls", "find", "grep"] {
            assert_eq!(access(name), Some(Access::ReadOnly), "{name}");
        }
        for name in ["write", "edit"] {
            assert_eq!(access(name), Some(Access::EditsFiles), "{name}");
        }
        assert_eq!(access("bash"), Some(Access::Unrestricted));
        assert_eq!(access("todo_write"), Some(Access::SessionState));
    }

    #[test]
    fn unknown_tools_are_named_with_the_ones_that_exist() {
        let out = Toolset::builtin().unknown("rm");
        assert_eq!(
            out,
            ToolOutput::error(
                "unknown tool `rm`; the built-in tools are read, write, edit, bash, ls, find, \
                 grep and todo_write"
            )
        );
        assert_eq!(in_words(&["a"]), "a");
        assert_eq!(in_words(&["a", "b"]), "a and b");
    }

    /// A tool from elsewhere, as an MCP server's would be.
    struct Echo(&'static str);

    impl Tool for Echo {
        fn name(&self) -> &str {
            self.0
        }
        fn definition(&self) -> Value {
            json!({"name": self.0, "description": "echo", "input_schema": {"type": "object"}})
        }
        fn access(&self) -> Access {
            Access::Unrestricted
        }
        fn preview(&self, _input: &Value, cwd: &Path, _fs: &dyn FileSystem) -> Result<Preview> {
            Ok(Preview {
                title: format!("Echo via {}", self.0),
                diff: None,
                paths: vec![cwd.to_path_buf()],
            })
        }
        fn run<'a>(&'a self, input: &'a Value, _ctx: &'a ToolCtx) -> BoxFuture<'a, ToolOutput> {
            Box::pin(async move { ToolOutput::ok(input.to_string()) })
        }
    }

    #[tokio::test]
    async fn other_tools_join_without_touching_the_builtin_table() {
        let mut set = Toolset::builtin().clone();
        set.add(Arc::new(Echo("mcp__echo"))).unwrap();
        assert_eq!(set.definitions().len(), 9);
        assert_eq!(set.definitions()[8]["name"], "mcp__echo");
        assert_eq!(Toolset::builtin().definitions().len(), 8);
        assert!(Toolset::builtin().get("mcp__echo").is_none());

        let dir = tempfile::tempdir().unwrap();
        let (ctx, _rx) = test_util::ctx(dir.path());
        let tool = set.get("mcp__echo").unwrap();
        assert_eq!(
            tool.run(&json!({"a": 1}), &ctx).await,
            ToolOutput::ok(r#"{"a":1}"#)
        );
        assert!(set.unknown("x").content.contains("the tools are read, "));
        assert!(set
            .unknown("x")
            .content
            .ends_with("todo_write and mcp__echo"));

        let clash = set.add(Arc::new(Echo("bash")));
        let err = clash.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("two tools are named `bash`"), "{err}");
    }

    #[tokio::test]
    async fn a_bad_input_is_an_error_result_in_preview_and_run() {
        let dir = tempfile::tempdir().unwrap();
        let (ctx, _rx) = test_util::ctx(dir.path());
        let read = Toolset::builtin().get("read").unwrap();
        let out = read.run(&json!({"path": 5}), &ctx).await;
        assert!(
            out.is_error && out.content.contains("`path`"),
            "{}",
            out.content
        );
        let out = read.run(&json!("a.txt"), &ctx).await;
        assert!(
            out.is_error && out.content.contains("object"),
            "{}",
            out.content
        );
        let previewed = read.preview(&json!("a.txt"), &ctx.cwd, ctx.env.fs.as_ref());
        assert_eq!(previewed.map_err(|e| format!("{e:#}")), Err(out.content));
    }
}
