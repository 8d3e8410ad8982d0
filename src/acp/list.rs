//! `session/list`: the store's sessions (the same ones `list_sessions` and
//! `rpc sessions` show), newest first, optionally only those of one cwd.
//! One page: the store is a directory listing, small enough to send whole.

use std::path::Path;

use serde_json::{json, Value};

use crate::protocol::SessionSummary;

/// The `sessions` of a `session/list` response.
pub(super) fn sessions(all: &[SessionSummary], cwd: Option<&Path>) -> Vec<Value> {
    // The store records canonical directories; compare like with like.
    let wanted = cwd.map(|c| c.canonicalize().unwrap_or_else(|_| c.to_path_buf()));
    all.iter()
        .filter(|s| match &wanted {
            Some(dir) => Path::new(&s.cwd) == dir.as_path(),
            None => true,
        })
        .map(|s| {
            json!({
                "sessionId": s.session_id,
                "cwd": s.cwd,
                "title": s.title.as_deref().and_then(super::info::title),
                "updatedAt": s.updated_at,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(id: &str, cwd: &str) -> SessionSummary {
        SessionSummary {
            session_id: id.into(),
            created_at: "2026-11-30T00:00:00.000Z".into(),
            updated_at: "2026-11-30T00:00:01.000Z".into(),
            message_count: 2,
            model: None,
            title: Some("hello".into()),
            cwd: cwd.into(),
            forked_from: None,
            parent_session_id: None,
        }
    }

    #[test]
    fn filters_by_cwd_and_fits_the_schema() {
        let all = [summary("a", "/nowhere/one"), summary("b", "/nowhere/two")];
        let listed = sessions(&all, Some(Path::new("/nowhere/two")));
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0]["sessionId"], "b");
        assert_eq!(sessions(&all, None).len(), 2);
        assert_eq!(listed[0]["title"], "hello");
        assert_eq!(listed[0]["updatedAt"], "2026-11-30T00:00:01.000Z");
    }
}
