//! Compaction arithmetic, pure and unit-tested: token estimates, where to
//! cut a history into "summarised" and "kept verbatim", the summarisation
//! prompt, and the context the model sees after a compaction.
//!
//! The async part (asking the model for the summary, abort, events) is in
//! `engine/compaction.rs`; the host stores the result as a `compaction`
//! session entry (`session/mod.rs`), from which [`model_view`] rebuilds what
//! the model sees.

use std::sync::Arc;

use crate::message::{Block, Content, Message, Role};

/// Characters per token for text no provider has counted yet.
pub(crate) const CHARS_PER_TOKEN: u64 = 4;
/// The most recent messages kept verbatim are at most this many tokens
/// (and at most a quarter of the context window).
pub(crate) const KEEP_CAP: u64 = 20_000;
/// Tokens left free for the answer when the model's output limit is unknown.
pub(crate) const DEFAULT_RESERVE: u64 = 16_384;
/// The first line of the user message that carries a summary.
pub(crate) const SUMMARY_MARKER: &str = "[Summary of the earlier conversation]";

/// What the summarisation request asks for; the user's instructions follow.
const SUMMARY_REQUEST: &str = "Summarise the conversation above so that the work can continue \
from the summary alone. Use these headings: Goal; Decisions; Progress; Files read and changed \
(paths, and what changed); Next steps. Keep exact names, paths, commands and error messages. \
Answer with the summary only.";

/// Whether a provider's error says the request was too long for the
/// model: Anthropic's `prompt is too long`, OpenAI's
/// `context_length_exceeded` / "maximum context length", an extension's
/// `context_overflow` code.
pub(crate) fn is_overflow(error: &str) -> bool {
    let e = error.to_lowercase();
    [
        "prompt is too long",
        "context_length_exceeded",
        "maximum context length",
        "context_overflow",
        // OpenAI Responses: `context_length_exceeded` is only the code.
        "exceeds the context window",
        // Gemini: "The input token count (…) exceeds the maximum number of
        // tokens allowed (…)".
        "exceeds the maximum number of tokens",
    ]
    .iter()
    .any(|needle| e.contains(needle))
}

/// The estimated tokens of one message: its JSON size at 4 chars a token.
pub(crate) fn message_tokens(message: &Message) -> u64 {
    let chars = serde_json::to_string(&message.to_provider())
        .map(|s| s.len())
        .unwrap_or(0) as u64;
    chars.div_ceil(CHARS_PER_TOKEN)
}

/// The estimated tokens of the built-in tools' definitions (computed once).
/// It does not count a session's MCP tools, nor the fewer tools offered in
/// read-only mode: an estimate used only when no provider has reported the
/// real input size yet (see [`estimate`]), after which the report, which
/// includes every tool sent, replaces it.
pub(crate) fn tool_tokens() -> u64 {
    static TOKENS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TOKENS.get_or_init(|| {
        serde_json::to_string(crate::tools::definitions())
            .map(|s| text_tokens(&s))
            .unwrap_or(0)
    })
}

pub(crate) fn text_tokens(text: &str) -> u64 {
    (text.len() as u64).div_ceil(CHARS_PER_TOKEN)
}

/// What a provider last reported: the input and output tokens of the round
/// that saw the first `messages` messages of the history (and answered).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Known {
    pub messages: usize,
    pub tokens: u64,
}

/// The estimated input of a turn's request: the last reported usage, plus
/// 4 chars a token for what came after it (when nothing was reported: the
/// tool definitions, the system prompt and the history).
pub(crate) fn estimate(
    history: &[Arc<Message>],
    system_prompt: Option<&str>,
    known: Option<Known>,
) -> u64 {
    match known {
        Some(k) if k.messages <= history.len() && k.tokens > 0 => {
            k.tokens
                + history[k.messages..]
                    .iter()
                    .map(|m| message_tokens(m))
                    .sum::<u64>()
        }
        _ => {
            tool_tokens()
                + system_prompt.map(text_tokens).unwrap_or(0)
                + history.iter().map(|m| message_tokens(m)).sum::<u64>()
        }
    }
}

/// The budget of the kept part: a quarter of the window, at most `cap`.
pub(crate) fn keep_budget(context_window: u64, cap: u64) -> u64 {
    (context_window / 4).min(cap)
}

/// Whether a request of `estimated` tokens leaves less than `reserve` free.
pub(crate) fn over_threshold(estimated: u64, context_window: u64, reserve: u64) -> bool {
    estimated > context_window.saturating_sub(reserve)
}

/// A user message holding tool results answers the assistant message
/// before it: the two are never separated.
fn answers_tools(message: &Message) -> bool {
    message.role == Role::User
        && matches!(&message.content, Content::Blocks(b)
            if b.iter().any(|b| matches!(b, Block::ToolResult { .. })))
}

/// Where to cut: the index of the first message kept verbatim. The kept
/// part starts at a user turn (a user message that is not tool results),
/// is the longest such tail within `budget`, and something is left to
/// summarise. When even the last user turn is over budget, the cut moves
/// into it (before an assistant message, never between a tool call and its
/// result); with nothing to summarise, `None`.
pub(crate) fn cut_point(history: &[Arc<Message>], budget: u64) -> Option<usize> {
    if history.len() < 2 {
        return None;
    }
    let mut tail = 0u64;
    let mut best: Option<usize> = None;
    let mut fallback: Option<usize> = None;
    for i in (1..history.len()).rev() {
        tail += message_tokens(&history[i]);
        if tail > budget {
            break;
        }
        let m = &history[i];
        if m.role == Role::User && !answers_tools(m) {
            best = Some(i);
        } else if m.role == Role::Assistant {
            fallback = Some(i);
        }
    }
    // Over budget even for the last turn: keep its latest exchanges that
    // fit (from an assistant message on); failing that the last user
    // message when it is a prompt, else summarise everything.
    let last = history.len() - 1;
    let last_is_prompt = history[last].role == Role::User && !answers_tools(&history[last]);
    Some(
        best.or(fallback)
            .unwrap_or(if last_is_prompt { last } else { history.len() }),
    )
}

/// One line per block: the conversation as text, which any provider takes
/// with no tools offered.
fn render(message: &Message) -> String {
    let who = match message.role {
        Role::User => "User",
        Role::Assistant => "Assistant",
    };
    let mut out = String::new();
    let blocks = match &message.content {
        Content::Text(t) => return format!("{who}: {t}\n"),
        Content::Blocks(b) => b,
    };
    for b in blocks {
        let line = match b {
            Block::Text { text } => format!("{who}: {text}"),
            Block::Thinking { .. } | Block::Image { .. } => continue,
            Block::ToolUse { name, input, .. } => format!("{who} called tool {name} with {input}"),
            Block::ToolResult {
                content, is_error, ..
            } => {
                let content = match content {
                    serde_json::Value::String(s) => s.clone(),
                    // Text blocks and image results: the text only (an
                    // image's base64 would only cost the summary tokens).
                    serde_json::Value::Array(items) => items
                        .iter()
                        .filter_map(|i| i["text"].as_str())
                        .collect::<Vec<_>>()
                        .join("\n"),
                    other => other.to_string(),
                };
                let kind = if *is_error {
                    "Tool error"
                } else {
                    "Tool result"
                };
                format!("{kind}: {content}")
            }
        };
        out.push_str(&line);
        out.push('\n');
    }
    out
}

/// The summarisation request: one user message with the transcript of
/// `older` (oldest messages dropped, with a note, to fit `budget` tokens)
/// and the request for the structured summary, then the user's instructions.
pub(crate) fn summary_request(
    older: &[Arc<Message>],
    instructions: Option<&str>,
    budget: u64,
) -> Message {
    let mut lines: Vec<String> = older.iter().map(|m| render(m)).collect();
    let mut used: u64 = lines.iter().map(|l| text_tokens(l)).sum();
    let mut dropped = 0usize;
    while used > budget && lines.len() > 1 {
        used -= text_tokens(&lines[dropped]);
        lines[dropped].clear();
        dropped += 1;
        if dropped == lines.len() - 1 {
            break;
        }
    }
    let mut text = String::from("<conversation>\n");
    if dropped > 0 {
        text.push_str(&format!(
            "[{dropped} earlier messages were dropped: too long to summarise]\n"
        ));
    }
    for l in &lines[dropped..] {
        // A single message over budget is shortened from its start.
        let cap = (budget * CHARS_PER_TOKEN) as usize;
        if l.len() > cap {
            let mut start = l.len() - cap;
            while !l.is_char_boundary(start) {
                start += 1;
            }
            text.push_str("[…shortened] ");
            text.push_str(&l[start..]);
        } else {
            text.push_str(l);
        }
    }
    text.push_str("</conversation>\n\n");
    text.push_str(SUMMARY_REQUEST);
    if let Some(i) = instructions.filter(|i| !i.trim().is_empty()) {
        text.push_str("\n\nAdditional instructions: ");
        text.push_str(i);
    }
    Message::user_text(text)
}

/// The user message the model sees in place of the summarised messages.
pub(crate) fn summary_message(summary: &str) -> Message {
    Message::user_text(format!("{SUMMARY_MARKER}\n{summary}"))
}

/// What the model sees of a history with a compaction: the summary, then
/// the messages from `first_kept` on.
pub(crate) fn model_view(
    messages: &[Arc<Message>],
    summary: &str,
    first_kept: usize,
) -> Vec<Arc<Message>> {
    let first_kept = first_kept.min(messages.len());
    let mut view = Vec::with_capacity(messages.len() - first_kept + 1);
    view.push(Arc::new(summary_message(summary)));
    view.extend(messages[first_kept..].iter().cloned());
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(t: &str) -> Arc<Message> {
        Arc::new(Message::user_text(t))
    }
    fn assistant(t: &str) -> Arc<Message> {
        Arc::new(Message::new(Role::Assistant, Content::Text(t.into())))
    }
    fn call() -> Arc<Message> {
        Arc::new(Message::new(
            Role::Assistant,
            Content::Blocks(vec![Block::ToolUse {
                id: "t1".into(),
                name: "bash".into(),
                input: json!({"command": "ls"}),
            }]),
        ))
    }
    fn result() -> Arc<Message> {
        Arc::new(Message::new(
            Role::User,
            Content::Blocks(vec![Block::ToolResult {
                tool_use_id: "t1".into(),
                content: json!("a.txt"),
                is_error: false,
            }]),
        ))
    }

    #[test]
    fn estimate_uses_reported_usage_then_chars() {
        let h = vec![
            user(&"x".repeat(400)),
            assistant("ok"),
            user(&"y".repeat(40)),
        ];
        let all = estimate(&h, None, None);
        let own = all - tool_tokens();
        assert!(own > 100 && own < 140, "{own}");
        let k = Known {
            messages: 2,
            tokens: 1000,
        };
        let est = estimate(&h, None, Some(k));
        assert_eq!(est, 1000 + message_tokens(&h[2]));
        assert_eq!(estimate(&h, Some(&"s".repeat(80)), None), all + 20);
        assert!(all > tool_tokens());
    }

    #[test]
    fn overflow_errors_are_recognised() {
        assert!(is_overflow("anthropic: HTTP 400 invalid_request_error: prompt is too long: 210000 tokens > 200000 maximum"));
        assert!(is_overflow("openai: HTTP 400 context_length_exceeded: This model's maximum context length is 128000 tokens."));
        assert!(is_overflow("vllm: HTTP 400 invalid_request_error: This model's maximum context length is 4096 tokens"));
        assert!(is_overflow("too long (code -32000) [context_overflow]"));
        assert!(!is_overflow(
            "anthropic: HTTP 400 invalid_request_error: max_tokens: must be positive"
        ));
    }

    #[test]
    fn budget_and_threshold() {
        assert_eq!(keep_budget(200_000, KEEP_CAP), 20_000);
        assert_eq!(keep_budget(8_000, KEEP_CAP), 2_000);
        assert!(over_threshold(1_001, 2_000, 1_000));
        assert!(!over_threshold(1_000, 2_000, 1_000));
        assert!(over_threshold(1, 500, 1_000));
    }

    #[test]
    fn cut_keeps_whole_user_turns_within_budget() {
        let h = vec![
            user(&"a".repeat(400)),
            assistant(&"b".repeat(400)),
            user("second"),
            call(),
            result(),
            assistant("done"),
            user("third"),
            assistant("fine"),
        ];
        // Room for everything from "second" on.
        let tail: u64 = h[2..].iter().map(|m| message_tokens(m)).sum();
        assert_eq!(cut_point(&h, tail), Some(2));
        // Room for the last turn only.
        let last: u64 = h[6..].iter().map(|m| message_tokens(m)).sum();
        assert_eq!(cut_point(&h, last + 5), Some(6));
    }

    #[test]
    fn cut_never_separates_a_call_from_its_result() {
        let h = vec![user("go"), call(), result(), assistant("done")];
        for budget in 0..200 {
            if let Some(c) = cut_point(&h, budget) {
                assert!(c > 0 && c <= h.len());
                assert!(
                    !answers_tools(
                        h.get(c)
                            .map(|m| m.as_ref())
                            .unwrap_or(&Message::user_text(""))
                    ),
                    "budget {budget} cut at {c}"
                );
            }
        }
    }

    #[test]
    fn nothing_to_summarise_is_none() {
        assert_eq!(cut_point(&[user("only")], 10_000), None);
        assert_eq!(cut_point(&[], 10_000), None);
    }

    #[test]
    fn summary_request_fits_its_budget_with_a_note() {
        let h: Vec<_> = (0..100)
            .map(|i| user(&format!("{i} {}", "z".repeat(400))))
            .collect();
        let m = summary_request(&h, Some("focus on tests"), 1_000);
        let text = m.text();
        assert!(text.contains("earlier messages were dropped"));
        assert!(text.contains("99 "));
        assert!(text.ends_with("Additional instructions: focus on tests"));
        assert!(text_tokens(&text) < 1_300, "{}", text_tokens(&text));
        let small = summary_request(&h[..2], None, 10_000).text();
        assert!(!small.contains("dropped") && small.contains("User: 0 "));
    }

    #[test]
    fn a_single_huge_message_is_shortened() {
        let h = vec![user(&"q".repeat(100_000))];
        let text = summary_request(&h, None, 500).text();
        assert!(text.contains("[…shortened]"));
        assert!(text_tokens(&text) < 700);
    }

    #[test]
    fn view_is_summary_then_kept() {
        let h = vec![user("a"), assistant("b"), user("c")];
        let v = model_view(&h, "S", 2);
        assert_eq!(v.len(), 2);
        assert!(v[0].text().starts_with(SUMMARY_MARKER));
        assert_eq!(v[1].text(), "c");
    }
}
