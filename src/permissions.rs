//! The permission gate: which tool calls run, which are refused, and which
//! wait for the client's answer.
//!
//! Shared by the turn (which asks) and the dispatch loop (which receives
//! `permission_response` and knows when stdin closed) as one `Arc`. Pending
//! questions are oneshot senders keyed by request id, so an answer reaches
//! exactly the call that asked, and dropping a question (abort) makes a
//! late answer `not_found` rather than a stray decision.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Result};
use tokio::sync::oneshot;

use crate::protocol::{Decision, Mode};

/// How much a tool may do, which is what the rules judge a call by; the
/// tool says it (see `tools::Tool::access`), so no rule names a tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Only reads (read, ls, find, grep): runs inside the roots unasked.
    ReadOnly,
    /// Changes only the files its preview names (write, edit), so
    /// accept-edits can let it run inside the roots.
    EditsFiles,
    /// Anything at all (bash): the paths in its preview bound nothing.
    Unrestricted,
    /// Changes only the session's own state (todo_write's plan): nothing
    /// outside the host, so it runs unasked in every mode.
    SessionState,
    /// Hands work to a subagent (`task`), whose own calls pass its own
    /// gate in a mode never wider than this session's: the delegation
    /// itself runs unasked in every mode.
    Delegates,
    /// A tool from an MCP server: what it does is unknown, and its
    /// annotations are hints from an untrusted server. It asks in every mode
    /// but allow-all (unless allowed always); in read-only mode only one
    /// hinted read-only is offered, and it still asks.
    Foreign { read_only_hint: bool },
}

impl Access {
    /// Offered to the model in read-only mode.
    pub(crate) fn offered_read_only(self) -> bool {
        matches!(
            self,
            Access::ReadOnly
                | Access::SessionState
                | Access::Delegates
                | Access::Foreign {
                    read_only_hint: true
                }
        )
    }
}

/// How the kernel sandbox stands to one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cover {
    /// None applies (sandbox off or unsupported, a backend without one such
    /// as an editor's terminal, or a tool it does not cover).
    None,
    /// The sandbox encloses the call: in accept-edits mode it is the guard,
    /// so the call runs unasked.
    Enforced,
    /// The call asks to run outside the sandbox: always asked, whatever was
    /// allowed always, unless the mode is allow-all.
    Leaves,
}

/// What the gate says about one call before anyone is asked.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Run,
    Ask,
    Refuse(String),
}

/// An answer, with the client's message for a denial.
#[derive(Debug)]
pub(crate) struct Answer {
    pub decision: Decision,
    pub message: Option<String>,
}

/// The questions open on one client: a session's, and those of the
/// subagents it runs (their gates share it, so the client's
/// `permission_response` reaches a child's question through the parent).
#[derive(Default)]
struct Questions {
    /// Open questions: request id → (tool, the asking gate's grants,
    /// where the answer goes).
    pending: HashMap<String, Open>,
    /// stdin closed: nobody can answer any more.
    closed: bool,
    next: u64,
}

struct Open {
    tool: String,
    always: Arc<Mutex<HashSet<String>>>,
    answer: oneshot::Sender<Answer>,
}

pub(crate) struct Gate {
    mode: Mutex<Mode>,
    /// The working directory and other roots edits may touch freely.
    roots: Vec<PathBuf>,
    /// Tools the user allowed always, in this session.
    always: Arc<Mutex<HashSet<String>>>,
    questions: Arc<Mutex<Questions>>,
}

/// The rule table, as a pure function so that anyone can ask it without a
/// gate (the system prompt says what each tool will do). `outside` is true
/// when a path the call touches resolves (symlinks included) outside every
/// root; `cover` is how the sandbox stands to the call; `always` holds the
/// tools the user allowed always.
pub(crate) fn verdict(
    mode: Mode,
    tool: &str,
    access: Access,
    outside: bool,
    cover: Cover,
    always: &HashSet<String>,
) -> Verdict {
    let read_only = access == Access::ReadOnly;
    if mode == Mode::AllowAll || matches!(access, Access::SessionState | Access::Delegates) {
        return Verdict::Run;
    }
    if let Access::Foreign { read_only_hint } = access {
        if mode == Mode::ReadOnly && !read_only_hint {
            return Verdict::Refuse(format!(
                "refused: the permission mode is read-only and {tool} is not marked read-only"
            ));
        }
        return if always.contains(tool) {
            Verdict::Run
        } else {
            Verdict::Ask
        };
    }
    if !read_only && mode == Mode::ReadOnly {
        return Verdict::Refuse(format!(
            "refused: the permission mode is read-only, so {tool} cannot run"
        ));
    }
    if outside || cover == Cover::Leaves {
        return Verdict::Ask;
    }
    if read_only || always.contains(tool) {
        return Verdict::Run;
    }
    match (mode, access) {
        (Mode::AcceptEdits, Access::EditsFiles) => Verdict::Run,
        (Mode::AcceptEdits, Access::Unrestricted) if cover == Cover::Enforced => Verdict::Run,
        _ => Verdict::Ask,
    }
}

/// Message given to the model when a question cannot be answered.
pub(crate) const NO_CLIENT: &str =
    "denied automatically: the client closed stdin, so nobody can answer permission prompts";

impl Gate {
    pub(crate) fn new(mode: Mode, roots: Vec<PathBuf>) -> Self {
        Gate {
            mode: Mutex::new(mode),
            roots,
            always: Arc::default(),
            questions: Arc::default(),
        }
    }

    /// A subagent's gate: its own mode, roots and grants, but its
    /// questions go to this gate's client (see [`Questions`]).
    pub(crate) fn child(&self, mode: Mode, roots: Vec<PathBuf>) -> Self {
        Gate {
            mode: Mutex::new(mode),
            roots,
            always: Arc::default(),
            questions: self.questions.clone(),
        }
    }

    fn questions(&self) -> std::sync::MutexGuard<'_, Questions> {
        self.questions.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn always(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.always.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn mode(&self) -> Mode {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        *self.mode.lock().unwrap_or_else(|p| p.into_inner()) = mode;
    }

    pub(crate) fn roots(&self) -> &[PathBuf] {
        &self.roots
    }

    /// Forgets `allow_always` grants (a new session starts clean).
    pub(crate) fn reset(&self) {
        self.always().clear();
    }

    /// What the rule table says about a call now, with this gate's mode
    /// and `allow_always` grants (see [`verdict`]).
    pub(crate) fn verdict(
        &self,
        tool: &str,
        access: Access,
        outside: bool,
        cover: Cover,
    ) -> Verdict {
        let mode = self.mode();
        verdict(mode, tool, access, outside, cover, &self.always())
    }

    /// Registers a question: its request id, and where the answer will
    /// come. An error ([`NO_CLIENT`]) when nobody can answer (stdin closed).
    pub(crate) fn ask(&self, tool: &str) -> Result<(String, oneshot::Receiver<Answer>)> {
        let mut st = self.questions();
        if st.closed {
            bail!(NO_CLIENT);
        }
        st.next += 1;
        let id = format!("perm-{}", st.next);
        let (tx, rx) = oneshot::channel();
        let open = Open {
            tool: tool.to_owned(),
            always: self.always.clone(),
            answer: tx,
        };
        st.pending.insert(id.clone(), open);
        Ok((id, rx))
    }

    /// Drops a question nobody will wait for any more (abort).
    pub(crate) fn cancel(&self, id: &str) {
        self.questions().pending.remove(id);
    }

    /// Delivers the client's answer. False when no such question is open.
    pub(crate) fn answer(&self, id: &str, answer: Answer) -> bool {
        let Some(open) = self.questions().pending.remove(id) else {
            return false;
        };
        if answer.decision == Decision::AllowAlways {
            let mut always = open.always.lock().unwrap_or_else(|p| p.into_inner());
            always.insert(open.tool);
        }
        // The asker may have gone in the meantime; the answer is then moot.
        let _ = open.answer.send(answer);
        true
    }

    /// stdin closed: deny what is pending and everything asked later.
    pub(crate) fn close(&self) {
        let mut st = self.questions();
        st.closed = true;
        for (_, open) in st.pending.drain() {
            let _ = open.answer.send(Answer {
                decision: Decision::Deny,
                message: Some(NO_CLIENT.into()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_needs_no_gate() {
        let none = HashSet::new();
        let bash: HashSet<String> = ["bash".to_owned()].into();
        let v = |mode, access, outside, always| {
            verdict(mode, "bash", access, outside, Cover::None, always)
        };
        assert_eq!(
            v(Mode::Ask, Access::Unrestricted, false, &none),
            Verdict::Ask
        );
        assert_eq!(
            v(Mode::Ask, Access::Unrestricted, false, &bash),
            Verdict::Run
        );
        assert_eq!(
            v(Mode::Ask, Access::Unrestricted, true, &bash),
            Verdict::Ask
        );
        assert_eq!(
            v(Mode::AllowAll, Access::Unrestricted, true, &none),
            Verdict::Run
        );
        assert!(matches!(
            v(Mode::ReadOnly, Access::Unrestricted, false, &bash),
            Verdict::Refuse(_)
        ));
    }

    #[test]
    fn rules_by_mode() {
        use Access::{EditsFiles, ReadOnly, Unrestricted};
        let g = Gate::new(Mode::Ask, vec![]);
        assert_eq!(
            g.verdict("read", ReadOnly, false, Cover::None),
            Verdict::Run
        );
        assert_eq!(g.verdict("read", ReadOnly, true, Cover::None), Verdict::Ask);
        assert_eq!(
            g.verdict("write", EditsFiles, false, Cover::None),
            Verdict::Ask
        );
        g.set_mode(Mode::AcceptEdits);
        assert_eq!(
            g.verdict("edit", EditsFiles, false, Cover::None),
            Verdict::Run
        );
        assert_eq!(
            g.verdict("edit", EditsFiles, true, Cover::None),
            Verdict::Ask
        );
        assert_eq!(
            g.verdict("bash", Unrestricted, false, Cover::None),
            Verdict::Ask
        );
        g.set_mode(Mode::ReadOnly);
        assert_eq!(
            g.verdict("bash", Unrestricted, false, Cover::None),
            Verdict::Refuse("refused: the permission mode is read-only, so bash cannot run".into())
        );
        assert!(matches!(
            g.verdict("write", EditsFiles, false, Cover::None),
            Verdict::Refuse(_)
        ));
        assert_eq!(
            g.verdict("grep", ReadOnly, false, Cover::None),
            Verdict::Run
        );
        g.set_mode(Mode::AllowAll);
        assert_eq!(
            g.verdict("bash", Unrestricted, true, Cover::None),
            Verdict::Run
        );
    }

    #[test]
    fn the_sandbox_guards_bash_in_accept_edits_and_leaving_it_asks() {
        let none = HashSet::new();
        let bash: HashSet<String> = ["bash".to_owned()].into();
        let v =
            |mode, cover, always| verdict(mode, "bash", Access::Unrestricted, false, cover, always);
        assert_eq!(v(Mode::AcceptEdits, Cover::Enforced, &none), Verdict::Run);
        assert_eq!(v(Mode::AcceptEdits, Cover::None, &none), Verdict::Ask);
        assert_eq!(v(Mode::Ask, Cover::Enforced, &none), Verdict::Ask);
        assert_eq!(v(Mode::AcceptEdits, Cover::Leaves, &bash), Verdict::Ask);
        assert_eq!(v(Mode::Ask, Cover::Leaves, &bash), Verdict::Ask);
        assert_eq!(v(Mode::AllowAll, Cover::Leaves, &none), Verdict::Run);
        assert!(matches!(
            v(Mode::ReadOnly, Cover::Leaves, &none),
            Verdict::Refuse(_)
        ));
    }

    #[test]
    fn foreign_tools_ask_in_every_mode_but_allow_all() {
        let plain = Access::Foreign {
            read_only_hint: false,
        };
        let hinted = Access::Foreign {
            read_only_hint: true,
        };
        let g = Gate::new(Mode::Ask, vec![]);
        assert_eq!(
            g.verdict("mcp__a__b", hinted, false, Cover::None),
            Verdict::Ask
        );
        g.set_mode(Mode::AcceptEdits);
        assert_eq!(
            g.verdict("mcp__a__b", plain, false, Cover::None),
            Verdict::Ask
        );
        g.set_mode(Mode::ReadOnly);
        assert_eq!(
            g.verdict("mcp__a__b", hinted, false, Cover::None),
            Verdict::Ask
        );
        assert!(matches!(
            g.verdict("mcp__a__b", plain, false, Cover::None),
            Verdict::Refuse(_)
        ));
        g.set_mode(Mode::AllowAll);
        assert_eq!(
            g.verdict("mcp__a__b", plain, false, Cover::None),
            Verdict::Run
        );
        g.set_mode(Mode::Ask);
        let (id, _rx) = g.ask("mcp__a__b").unwrap();
        let always = Answer {
            decision: Decision::AllowAlways,
            message: None,
        };
        assert!(g.answer(&id, always));
        assert_eq!(
            g.verdict("mcp__a__b", plain, false, Cover::None),
            Verdict::Run
        );
        assert_eq!(
            g.verdict("mcp__a__c", plain, false, Cover::None),
            Verdict::Ask
        );
        assert!(hinted.offered_read_only() && !plain.offered_read_only());
    }

    #[test]
    fn answers_reach_the_asker_and_allow_always_sticks() {
        let g = Gate::new(Mode::Ask, vec![]);
        let (id, mut rx) = g.ask("bash").unwrap();
        let deny = Answer {
            decision: Decision::Deny,
            message: None,
        };
        assert!(!g.answer("perm-99", deny));
        let always = Answer {
            decision: Decision::AllowAlways,
            message: None,
        };
        assert!(g.answer(&id, always));
        assert_eq!(rx.try_recv().unwrap().decision, Decision::AllowAlways);
        assert_eq!(
            g.verdict("bash", Access::Unrestricted, false, Cover::None),
            Verdict::Run
        );
        assert_eq!(
            g.verdict("bash", Access::Unrestricted, true, Cover::None),
            Verdict::Ask,
            "outside still asks"
        );
    }

    #[test]
    fn closing_denies_pending_and_future_questions() {
        let g = Gate::new(Mode::Ask, vec![]);
        let (_, mut rx) = g.ask("write").unwrap();
        g.close();
        assert_eq!(rx.try_recv().unwrap().decision, Decision::Deny);
        let err = g.ask("write").unwrap_err();
        assert_eq!(err.to_string(), NO_CLIENT);
    }

    #[tokio::test]
    async fn a_childs_question_is_answered_through_its_parent_and_closes_with_it() {
        let parent = Gate::new(Mode::Ask, vec![]);
        let child = parent.child(Mode::ReadOnly, vec![]);
        assert_eq!(child.mode(), Mode::ReadOnly);
        let (id, answer) = child.ask("write").unwrap();
        let always = Answer {
            decision: Decision::AllowAlways,
            message: None,
        };
        assert!(
            parent.answer(&id, always),
            "the parent finds the child's question"
        );
        assert_eq!(answer.await.unwrap().decision, Decision::AllowAlways);
        // The grant is the child's: the parent still asks.
        assert_eq!(
            child.verdict("write", Access::EditsFiles, false, Cover::None),
            Verdict::Refuse(
                "refused: the permission mode is read-only, so write cannot run".into()
            )
        );
        child.set_mode(Mode::Ask);
        assert_eq!(
            child.verdict("write", Access::EditsFiles, false, Cover::None),
            Verdict::Run
        );
        assert_eq!(
            parent.verdict("write", Access::EditsFiles, false, Cover::None),
            Verdict::Ask
        );
        let (_, pending) = child.ask("bash").unwrap();
        parent.close();
        assert_eq!(pending.await.unwrap().decision, Decision::Deny);
        assert!(
            child.ask("bash").is_err(),
            "nobody can answer the child either"
        );
    }
}
