//! `session_info_update`: a session's `title` (the first line of its first
//! prompt, cut at a word boundary) and `updatedAt` (its file's last
//! write), announced after each turn that stored a message, the title only
//! when it first appears. `session/list` shows the same title (cut by
//! [`title`] from the store's) and the same `updatedAt` (the file's time).

use std::path::Path;

use serde_json::{json, Map, Value};

use super::sessions::AcpSession;
use super::Acp;

/// A title's length limit in characters, `…` included.
const TITLE_MAX: usize = 60;

/// The title of a session whose first prompt is `text`: its first
/// non-blank line, trimmed, or when longer than [`TITLE_MAX`] cut at the
/// last word boundary before it (mid-word only for a very long word) and
/// ended with `…`. `None` for a prompt with no text. A title already cut
/// longer (the store's, at 80 characters) is cut the same way.
pub(super) fn title(text: &str) -> Option<String> {
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= TITLE_MAX {
        return Some(line.to_owned());
    }
    let room = TITLE_MAX - 1;
    let cut = if chars[room].is_whitespace() {
        room
    } else {
        chars[..room]
            .iter()
            .rposition(|c| c.is_whitespace())
            .filter(|&at| at >= TITLE_MAX / 2)
            .unwrap_or(room)
    };
    let head: String = chars[..cut].iter().collect();
    Some(format!("{}…", head.trim_end()))
}

/// The time of a session file's last write, as `session/list` gives it.
pub(super) fn updated_at(path: &Path) -> Option<String> {
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok()?;
    Some(humantime::format_rfc3339_millis(modified).to_string())
}

impl Acp {
    /// After a turn of `session` whose prompt's title would be
    /// `candidate`: its `session_info_update`, before the prompt's answer.
    pub(super) async fn announce_info(&self, session: &AcpSession, candidate: Option<String>) {
        let mut update = Map::new();
        update.insert("sessionUpdate".into(), json!("session_info_update"));
        if let Some(title) = session.set_title_once(candidate) {
            update.insert("title".into(), json!(title));
        }
        let path = self.factory.store().path_of(&session.id);
        if let Some(at) = updated_at(&path) {
            update.insert("updatedAt".into(), json!(at));
        }
        if update.len() > 1 {
            session.notify(Value::Object(update)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_title_is_the_first_line_cut_at_a_word_under_the_limit() {
        assert_eq!(
            title("\n  fix the test  \nand more").unwrap(),
            "fix the test"
        );
        assert_eq!(title(" \n "), None);
        let long =
            "please refactor the session store so that forks and loads share one reader today";
        let cut = title(long).unwrap();
        assert_eq!(
            cut,
            "please refactor the session store so that forks and loads…"
        );
        assert!(cut.chars().count() <= TITLE_MAX);
        // One long word is cut where it must be.
        let word = "x".repeat(100);
        assert_eq!(title(&word).unwrap().chars().count(), TITLE_MAX);
        // The store's 80-character title cuts to the same as the line.
        let store: String = long.chars().take(80).chain(['…']).collect();
        assert_eq!(title(&store).unwrap(), cut);
        // Exactly at the limit: whole.
        let exact = "y".repeat(TITLE_MAX);
        assert_eq!(title(&exact).unwrap(), exact);
    }
}
