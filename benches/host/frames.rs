//! Frame recognition without serde on the hot path: the host writes
//! `{"type":"…"` first, so a prefix names the frame, and a text delta's
//! text is cut out of the line in place (serde only when it has escapes).

use serde_json::Value;

pub fn starts(line: &[u8], prefix: &str) -> bool {
    line.starts_with(prefix.as_bytes())
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    let first = needle[0];
    let last = hay.len() - needle.len();
    let mut i = 0;
    while i <= last {
        match hay[i..=last].iter().position(|&b| b == first) {
            None => return None,
            Some(p) => {
                i += p;
                if &hay[i..i + needle.len()] == needle {
                    return Some(i);
                }
                i += 1;
            }
        }
    }
    None
}

pub const DELTA_MARK: &[u8] = br#""event":{"type":"text_delta","delta":""#;

/// The text of a `message_update` text_delta frame, appended to `out`.
/// Returns false if the line is not a text delta.
pub fn text_delta(line: &[u8], out: &mut Vec<u8>) -> bool {
    if !starts(line, r#"{"type":"message_update""#) {
        return false;
    }
    let Some(i) = find(line, DELTA_MARK) else {
        // Key order differs from what the host writes today: parse it.
        let v: Value = match serde_json::from_slice(line) {
            Ok(v) => v,
            Err(_) => return false,
        };
        if v["event"]["type"] != "text_delta" {
            return false;
        }
        out.extend_from_slice(v["event"]["delta"].as_str().unwrap_or("").as_bytes());
        return true;
    };
    let j = i + DELTA_MARK.len();
    // The string ends at the first quote not preceded by an odd number of
    // backslashes.
    let mut k = j;
    let mut escaped = false;
    while k < line.len() {
        match line[k] {
            b'\\' => escaped = true,
            b'"' => break,
            _ => {}
        }
        k += 1;
    }
    if !escaped {
        out.extend_from_slice(&line[j..k]);
        return true;
    }
    let mut k = j;
    loop {
        if k >= line.len() {
            return false;
        }
        if line[k] == b'"' {
            let mut nb = 0;
            while line[k - 1 - nb] == b'\\' {
                nb += 1;
            }
            if nb % 2 == 0 {
                break;
            }
        }
        k += 1;
    }
    match serde_json::from_slice::<String>(&line[j - 1..=k]) {
        Ok(s) => out.extend_from_slice(s.as_bytes()),
        Err(_) => return false,
    }
    true
}
