//! What a tool is: the [`Tool`] trait every entry of a [`super::Toolset`]
//! implements, and [`Builtin`], the shorter form the built-in tools are
//! written in.
//!
//! `Tool` is object-safe (its `run` returns a boxed future) so that tools
//! of different kinds, the built-in ones and later those an MCP server
//! offers, sit in one table behind `Arc<dyn Tool>` and are found with one
//! lookup by name, instead of a `match` on the name wherever a tool is used.

use std::future::Future;
use std::path::Path;
use std::pin::Pin;

use anyhow::Result;
use serde_json::Value;

use super::{FileSystem, Preview, ToolCtx, ToolOutput};
use crate::permissions::Access;

/// A future a tool call runs as; boxed so that [`Tool`] can be a trait object.
pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One tool the model can call.
///
/// Callers look at a call before they run it: [`Tool::preview`] says what it
/// would touch (for confinement and the permission prompt) and
/// [`Tool::access`] how much it may do; only then is [`Tool::run`] called.
/// Tools never ask for permission themselves.
pub(crate) trait Tool: Send + Sync {
    /// The name the model calls it by; unique within a table.
    fn name(&self) -> &str;

    /// `{name, description, input_schema}`, the shape providers expect.
    fn definition(&self) -> Value;

    /// What the permission gate judges the call by.
    fn access(&self) -> Access;

    /// Whether calls to it in one round may run side by side (`task`:
    /// subagents work in parallel). Others run one after another.
    fn concurrent(&self) -> bool {
        false
    }

    /// The call asks to run outside the session's sandbox (bash's
    /// `sandbox: false`): the gate then asks in every mode but allow-all.
    fn leaves_sandbox(&self, _input: &Value) -> bool {
        false
    }

    /// One line for the system prompt saying when to use the tool. By
    /// default the first sentence of the definition's description (what a
    /// tool from elsewhere, such as an MCP server's, has to offer).
    fn summary(&self) -> String {
        let definition = self.definition();
        let description = definition["description"].as_str().unwrap_or_default();
        first_sentence(description).to_owned()
    }

    /// What the call would do, without doing it; `fs` is the session's
    /// file system, for a diff against what is there. An input that would
    /// make the run fail anyway is an error here, so the caller fails the
    /// call without asking the user about it.
    fn preview(&self, input: &Value, cwd: &Path, fs: &dyn FileSystem) -> Result<Preview>;

    /// Runs the call. Every failure is an `is_error` result the model can
    /// act on, never a Rust error: the model fixes its input and tries again.
    fn run<'a>(&'a self, input: &'a Value, ctx: &'a ToolCtx) -> BoxFuture<'a, ToolOutput>;
}

/// How a built-in tool is written: it says how to parse its input, and
/// preview and run get the parsed input. Parsing is therefore written once
/// per tool, a bad input fails the same way in the preview and in the run,
/// and turning that failure into a result is done here for every tool.
pub(crate) trait Builtin: Send + Sync + 'static {
    /// The input once checked (paths resolved, patterns compiled).
    type Input: Send + 'static;

    const NAME: &'static str;
    const ACCESS: Access;
    /// When the model should use it, in one line (the system prompt's
    /// tool list).
    const SUMMARY: &'static str;

    fn definition() -> Value;

    fn parse(input: &Value, cwd: &Path) -> Result<Self::Input>;

    /// The call asks to run outside the session's sandbox (see
    /// [`Tool::leaves_sandbox`]).
    fn leaves_sandbox(_input: &Value) -> bool {
        false
    }

    fn preview(input: Self::Input, cwd: &Path, fs: &dyn FileSystem) -> Result<Preview>;

    fn run(input: Self::Input, ctx: &ToolCtx) -> impl Future<Output = ToolOutput> + Send + '_;
}

impl<T: Builtin> Tool for T {
    fn name(&self) -> &str {
        T::NAME
    }

    fn definition(&self) -> Value {
        <T as Builtin>::definition()
    }

    fn access(&self) -> Access {
        T::ACCESS
    }

    fn summary(&self) -> String {
        T::SUMMARY.to_owned()
    }

    fn leaves_sandbox(&self, input: &Value) -> bool {
        T::leaves_sandbox(input)
    }

    fn preview(&self, input: &Value, cwd: &Path, fs: &dyn FileSystem) -> Result<Preview> {
        <T as Builtin>::preview(T::parse(input, cwd)?, cwd, fs)
    }

    fn run<'a>(&'a self, input: &'a Value, ctx: &'a ToolCtx) -> BoxFuture<'a, ToolOutput> {
        match T::parse(input, &ctx.cwd) {
            Ok(input) => Box::pin(<T as Builtin>::run(input, ctx)),
            Err(e) => Box::pin(std::future::ready(ToolOutput::failed(&e))),
        }
    }
}

/// The text up to and including the first ". " (or all of it), trimmed.
fn first_sentence(text: &str) -> &str {
    let text = text.trim();
    match text.find(". ") {
        Some(end) => &text[..=end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::first_sentence;

    #[test]
    fn a_summary_is_the_first_sentence() {
        assert_eq!(first_sentence(" Echo it. Then more. "), "Echo it.");
        assert_eq!(first_sentence("No full stop"), "No full stop");
        assert_eq!(first_sentence("Use e.g.x here"), "Use e.g.x here");
        assert_eq!(first_sentence(""), "");
    }
}
