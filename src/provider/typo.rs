//! A model id one slip away from a catalogue model is most likely that
//! model mistyped (`claude-sonet-5-5`). Any name may be sent to an HTTP
//! endpoint, since services add models faster than a catalogue follows, so
//! only near misses are refused, with the name that was probably meant.
//!
//! Model names differ by little on purpose (`gpt-4` and `gpt-4o`,
//! `claude-haiku-3-5` and `claude-haiku-4-5`), so a slip is narrow: a long
//! name, the same version digits, and at most two letters off.

/// Edits (insert, delete, replace a character) that still count as a slip.
const MAX_EDITS: usize = 2;
/// Shorter names are too close to their neighbours to call a slip.
const MIN_CHARS: usize = 10;

/// The known id `wanted` is a near miss of, when it is not known itself.
pub(crate) fn near_miss<'a>(
    wanted: &str,
    known: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(usize, &str)> = None;
    for id in known {
        if id == wanted {
            return None;
        }
        if wanted.chars().count() < MIN_CHARS || digits(wanted) != digits(id) {
            continue;
        }
        let d = distance(wanted, id);
        if d <= MAX_EDITS && best.is_none_or(|(b, _)| d < b) {
            best = Some((d, id));
        }
    }
    best.map(|(_, id)| id)
}

fn digits(name: &str) -> String {
    name.chars().filter(char::is_ascii_digit).collect()
}

/// Levenshtein distance over characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slip_names_the_model_meant_and_a_new_name_passes() {
        let known = ["claude-sonnet-5-5", "claude-haiku-4-5", "gpt-4o", "o3"];
        assert_eq!(
            near_miss("claude-sonet-5-5", known),
            Some("claude-sonnet-5-5")
        );
        assert_eq!(near_miss("claude-sonnet-5-5", known), None);
        assert_eq!(near_miss("claude-sonnet-7", known), None);
        // Real neighbours, not slips: another version, a short name.
        assert_eq!(near_miss("claude-haiku-3-5", known), None);
        assert_eq!(near_miss("gpt-4", known), None);
        assert_eq!(near_miss("o1", known), None);
        assert_eq!(distance("kitten", "sitting"), 3);
    }
}
