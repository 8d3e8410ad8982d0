//! Reading `/name arguments` off the start of a message, and filling a
//! template with the arguments.
//!
//! `$ARGUMENTS` is everything after the name (trimmed); `$1`…`$9` are its
//! words, where a `"double-quoted phrase"` counts as one word (quotes
//! removed). A missing word is empty. Replacement is one pass over the
//! template, so an argument holding `$1` is never expanded again; `$10` is
//! `$1` followed by `0`. A template that uses none of them but is given
//! arguments gets them appended after a blank line, so nothing the user
//! typed is lost.

use crate::session::CommandLine;

/// The command at the start of `message`: `/` then a name running to the
/// first whitespace, then the arguments. `None` for anything else
/// (including a lone `/` and a path such as `/usr/bin` — the latter only
/// expands if a command is named `usr/bin`, which none can be).
pub(super) fn parse(message: &str) -> Option<CommandLine> {
    let text = message.trim_start();
    let rest = text.strip_prefix('/')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let name = &rest[..end];
    if name.is_empty() || name.contains('/') {
        return None;
    }
    Some(CommandLine {
        name: name.to_owned(),
        arguments: rest[end..].trim().to_owned(),
        text: message.to_owned(),
    })
}

/// `template` with `$ARGUMENTS` and `$1`…`$9` replaced.
pub(super) fn fill(template: &str, arguments: &str) -> String {
    let words = split_words(arguments);
    let mut out = String::with_capacity(template.len() + arguments.len());
    let mut used = false;
    let mut rest = template;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix("ARGUMENTS") {
            out.push_str(arguments);
            (used, rest) = (true, tail);
        } else if let Some(n) = after.chars().next().and_then(|c| c.to_digit(10)) {
            if n == 0 {
                out.push('$');
                rest = after;
                continue;
            }
            out.push_str(words.get(n as usize - 1).map_or("", String::as_str));
            (used, rest) = (true, &after[1..]);
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    if !used && !arguments.is_empty() {
        out.push_str("\n\n");
        out.push_str(arguments);
    }
    out
}

/// The arguments' words: split at whitespace, a double-quoted run kept
/// whole (an unclosed quote runs to the end).
fn split_words(arguments: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in arguments.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_line_is_a_name_then_arguments() {
        let line = parse("  /review  src/a.rs  fast \n").unwrap();
        assert_eq!(
            (line.name.as_str(), line.arguments.as_str()),
            ("review", "src/a.rs  fast")
        );
        assert_eq!(line.text, "  /review  src/a.rs  fast \n");
        assert_eq!(parse("/fe:build\nmore").unwrap().arguments, "more");
        for not_one in ["hello /review", "/", "/ x", "/usr/bin/env", "", "review"] {
            assert_eq!(parse(not_one), None, "{not_one:?}");
        }
    }

    #[test]
    fn arguments_and_positions_are_filled_once() {
        let t = "Fix issue #$1 ($2) [$3]: $ARGUMENTS. Cost $5, $0, $10, $$";
        assert_eq!(
            fill(t, "42 \"high priority\""),
            "Fix issue #42 (high priority) []: 42 \"high priority\". Cost , $0, 420, $$"
        );
        // An argument holding a placeholder is not expanded again.
        assert_eq!(fill("say $1 and $2", "$2 x"), "say $2 and x");
    }

    #[test]
    fn arguments_a_template_does_not_use_are_appended() {
        assert_eq!(
            fill("Review the diff.", "carefully"),
            "Review the diff.\n\ncarefully"
        );
        assert_eq!(fill("Review the diff.", ""), "Review the diff.");
        assert_eq!(fill("Unclosed \"$1\"", "\"a b"), "Unclosed \"a b\"");
    }
}
