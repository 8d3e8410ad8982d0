//! A `SKILL.md`'s front matter, checked against the Agent Skills
//! specification (agentskills.io): the YAML mapping between the file's
//! opening `---` line and the next `---` line.
//!
//! Only what the system prompt needs is kept (name and description); the
//! other fields the specification allows are checked for their type and
//! then ignored. Every rule broken is one sentence naming it, so a skipped
//! skill says why.

use yaml_rust2::{Yaml, YamlLoader};

/// Longest `name`, in characters.
pub(crate) const NAME_MAX: usize = 64;
/// Longest `description`, in characters.
pub(crate) const DESCRIPTION_MAX: usize = 1024;
/// Longest `compatibility`, in characters.
pub(crate) const COMPATIBILITY_MAX: usize = 500;

/// The fields a front matter may have; any other is an error.
const FIELDS: [&str; 6] = [
    "name",
    "description",
    "license",
    "compatibility",
    "metadata",
    "allowed-tools",
];

/// What a valid front matter gives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Meta {
    pub name: String,
    pub description: String,
}

/// The front matter of `text` (a whole `SKILL.md`, or its start), checked;
/// `folder` is the name of the skill's folder, which `name` must equal.
pub(crate) fn parse(text: &str, folder: &str) -> Result<Meta, String> {
    let yaml = block(text)?;
    refuse_aliases(yaml)?;
    let docs = YamlLoader::load_from_str(yaml)
        .map_err(|e| format!("the front matter is not valid YAML: {e}"))?;
    let map = match docs.into_iter().next() {
        Some(Yaml::Hash(map)) => map,
        None | Some(Yaml::Null) => Default::default(),
        Some(_) => return Err("the front matter is not a YAML mapping".into()),
    };
    let mut fields = Vec::with_capacity(map.len());
    for (key, value) in map {
        match key {
            Yaml::String(k) if FIELDS.contains(&k.as_str()) => fields.push((k, value)),
            Yaml::String(k) => return Err(unknown_field(&k)),
            other => return Err(unknown_field(&scalar(&other).unwrap_or_default())),
        }
    }
    let get = |name: &str| fields.iter().find(|(k, _)| k == name).map(|(_, v)| v);
    let name = required_string(get("name"), "name")?;
    check_name(&name, folder)?;
    // A folded or literal block (`>`, `|`) ends in a newline: measured as
    // it will be kept.
    let description = required_string(get("description"), "description")?
        .trim()
        .to_owned();
    check_description(&description)?;
    check_optional(get("license"), "license", None)?;
    check_optional(get("allowed-tools"), "allowed-tools", None)?;
    check_optional(
        get("compatibility"),
        "compatibility",
        Some(COMPATIBILITY_MAX),
    )?;
    check_metadata(get("metadata"))?;
    Ok(Meta { name, description })
}

/// The YAML between the first line (`---`) and the next `---` line.
fn block(text: &str) -> Result<&str, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut lines = text.split_inclusive('\n');
    let first = lines.next().unwrap_or("");
    if first.trim_end() != "---" {
        return Err("SKILL.md does not start with a front matter (a `---` line)".into());
    }
    let start = first.len();
    let mut at = start;
    for line in lines {
        if line.trim_end() == "---" {
            return Ok(&text[start..at]);
        }
        at += line.len();
    }
    Err("the front matter is not closed by a `---` line".into())
}

fn unknown_field(name: &str) -> String {
    format!(
        "unknown front matter field `{name}`: only {} are allowed",
        FIELDS.join(", ")
    )
}

/// A scalar as the text it was written as (metadata values may be numbers).
fn scalar(v: &Yaml) -> Option<String> {
    match v {
        Yaml::String(s) | Yaml::Real(s) => Some(s.clone()),
        Yaml::Integer(i) => Some(i.to_string()),
        Yaml::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

fn required_string(v: Option<&Yaml>, field: &str) -> Result<String, String> {
    match v {
        None => Err(format!("`{field}` is missing")),
        Some(Yaml::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Yaml::String(_)) | Some(Yaml::Null) => Err(format!("`{field}` is empty")),
        Some(_) => Err(format!("`{field}` is not a string")),
    }
}

/// 1-64 of `a-z`, `0-9` and `-`, no hyphen first, last or next to
/// another, and the folder's own name.
fn check_name(name: &str, folder: &str) -> Result<(), String> {
    let len = name.chars().count();
    if len > NAME_MAX {
        return Err(format!(
            "`name` is {len} characters long; at most {NAME_MAX} are allowed"
        ));
    }
    let allowed = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-';
    if !name.chars().all(allowed) {
        return Err(format!(
            "`name` `{name}` may hold only lowercase letters a-z, digits and hyphens"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!("`name` `{name}` starts or ends with a hyphen"));
    }
    if name.contains("--") {
        return Err(format!("`name` `{name}` has two hyphens in a row"));
    }
    if name != folder {
        return Err(format!(
            "`name` `{name}` is not the name of its folder `{folder}`"
        ));
    }
    Ok(())
}

fn check_description(description: &str) -> Result<(), String> {
    let len = description.chars().count();
    if len > DESCRIPTION_MAX {
        return Err(format!(
            "`description` is {len} characters long; at most {DESCRIPTION_MAX} are allowed"
        ));
    }
    Ok(())
}

/// An optional string field, at most `max` characters when given.
fn check_optional(v: Option<&Yaml>, field: &str, max: Option<usize>) -> Result<(), String> {
    let text = match v {
        None => return Ok(()),
        Some(Yaml::String(s)) => s,
        Some(_) => return Err(format!("`{field}` is not a string")),
    };
    let len = text.chars().count();
    match max {
        Some(max) if len > max => Err(format!(
            "`{field}` is {len} characters long; at most {max} are allowed"
        )),
        _ => Ok(()),
    }
}

/// `metadata`: a mapping of names to values written as scalars (`version:
/// 1.0` is the text `1.0`), nothing nested.
fn check_metadata(v: Option<&Yaml>) -> Result<(), String> {
    let map = match v {
        None => return Ok(()),
        Some(Yaml::Hash(map)) => map,
        Some(_) => return Err("`metadata` is not a mapping".into()),
    };
    for (key, value) in map {
        let key = scalar(key).ok_or("`metadata` has a key that is not a string")?;
        if scalar(value).is_none() {
            return Err(format!("`metadata.{key}` is not a string"));
        }
    }
    Ok(())
}

/// The YAML loader copies an anchored node for every alias of it, so a
/// few kilobytes of nested aliases in a cloned repository's SKILL.md
/// would grow without bound before `ready`. No field of a skill needs
/// one: refused while scanning, before anything is built.
fn refuse_aliases(yaml: &str) -> Result<(), String> {
    match has_alias(yaml) {
        Ok(true) => Err("the front matter uses a YAML alias (`*name`), which skills do not".into()),
        Ok(false) => Ok(()),
        Err(e) => Err(format!("the front matter is not valid YAML: {e}")),
    }
}

/// Whether `yaml` uses an alias (`*name`), found by scanning its tokens
/// before anything is built (see [`refuse_aliases`]); an error when it is
/// not YAML at all.
pub(crate) fn has_alias(yaml: &str) -> Result<bool, yaml_rust2::ScanError> {
    let mut parser = yaml_rust2::parser::Parser::new_from_str(yaml);
    loop {
        match parser.next_token()? {
            (yaml_rust2::Event::Alias(_), _) => return Ok(true),
            (yaml_rust2::Event::StreamEnd, _) => return Ok(false),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(front: &str, folder: &str) -> Result<Meta, String> {
        parse(&format!("---\n{front}---\n# Body\n"), folder)
    }

    #[test]
    fn a_full_front_matter_is_accepted() {
        let meta = check(
            "name: pdf-tools\ndescription: Fill PDF forms.\nlicense: MIT\n\
             compatibility: needs python3\nallowed-tools: read bash\n\
             metadata:\n  author: me\n  version: 1.0\n",
            "pdf-tools",
        );
        let want = Meta {
            name: "pdf-tools".into(),
            description: "Fill PDF forms.".into(),
        };
        assert_eq!(meta, Ok(want));
    }

    #[test]
    fn aliases_are_refused_before_anything_is_built_and_a_block_description_is_measured_trimmed() {
        let bomb = "name: a\ndescription: d\nmetadata:\n  x: &x [1, 1]\n  y: [*x, *x]\n";
        let err = check(bomb, "a").unwrap_err();
        assert!(err.contains("YAML alias"), "{err}");
        let exactly = "d".repeat(1024);
        let meta = check(&format!("name: a\ndescription: |\n  {exactly}\n"), "a").unwrap();
        assert_eq!(meta.description.len(), 1024);
    }

    #[test]
    fn each_rule_is_named() {
        let bad = [
            ("description: d\n", "`name` is missing"),
            ("name: a\n", "`description` is missing"),
            ("name: a\ndescription: \"  \"\n", "`description` is empty"),
            ("name: A\ndescription: d\n", "lowercase letters"),
            ("name: -a\ndescription: d\n", "starts or ends with a hyphen"),
            ("name: a--b\ndescription: d\n", "two hyphens in a row"),
            (
                "name: b\ndescription: d\n",
                "not the name of its folder `a`",
            ),
            (
                "name: a\ndescription: d\nversion: 2\n",
                "unknown front matter field `version`",
            ),
            (
                "name: a\ndescription: [d]\n",
                "`description` is not a string",
            ),
            (
                "name: a\ndescription: d\nmetadata: x\n",
                "`metadata` is not a mapping",
            ),
            (
                "name: a\ndescription: d\nmetadata:\n  k: [1]\n",
                "`metadata.k` is not a string",
            ),
            ("- a\n", "not a YAML mapping"),
            ("name: [a\n", "not valid YAML"),
        ];
        for (front, rule) in bad {
            let err = check(front, "a").unwrap_err();
            assert!(err.contains(rule), "{front:?}: {err}");
        }
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        let name = "a".repeat(NAME_MAX);
        assert!(check(&format!("name: {name}\ndescription: d\n"), &name).is_ok());
        let long = "a".repeat(NAME_MAX + 1);
        let err = check(&format!("name: {long}\ndescription: d\n"), &long).unwrap_err();
        assert!(err.contains("65 characters"), "{err}");
        let desc = "é".repeat(DESCRIPTION_MAX);
        assert!(check(&format!("name: a\ndescription: {desc}\n"), "a").is_ok());
        let err = check(&format!("name: a\ndescription: {desc}x\n"), "a").unwrap_err();
        assert!(err.contains("1025 characters"), "{err}");
        let compat = "c".repeat(COMPATIBILITY_MAX + 1);
        let err = check(
            &format!("name: a\ndescription: d\ncompatibility: {compat}\n"),
            "a",
        )
        .unwrap_err();
        assert!(err.contains("`compatibility` is 501"), "{err}");
    }

    #[test]
    fn the_block_needs_both_fences() {
        let err = parse("# no front matter\n", "a").unwrap_err();
        assert!(err.contains("does not start"), "{err}");
        let err = parse("---\nname: a\ndescription: d\n", "a").unwrap_err();
        assert!(err.contains("not closed"), "{err}");
        // CRLF line ends and a byte-order mark are fine.
        let ok = parse(
            "\u{feff}---\r\nname: a\r\ndescription: d\r\n---\r\nbody",
            "a",
        );
        assert_eq!(ok.map(|m| m.name), Ok("a".to_owned()));
    }
}
