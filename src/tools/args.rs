//! Reading tool inputs field by field.
//!
//! serde's messages for a wrong type ("invalid type: integer `5`, expected a
//! string") do not say which field was wrong, and the model needs exactly
//! that to correct its call. So inputs are read by hand, and every message
//! names the tool and the field.

use anyhow::{anyhow, bail, Result};
use serde_json::{Map, Value};

pub(crate) struct Args<'a> {
    tool: &'static str,
    obj: &'a Map<String, Value>,
}

impl<'a> Args<'a> {
    pub(crate) fn new(tool: &'static str, input: &'a Value) -> Result<Self> {
        match input {
            Value::Object(obj) => Ok(Self { tool, obj }),
            other => bail!(
                "{tool}: the input must be a JSON object, got {}",
                kind(other)
            ),
        }
    }

    /// Absent and `null` both mean "not given".
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.obj.get(field).filter(|v| !v.is_null())
    }

    pub(crate) fn string(&self, field: &str) -> Result<&'a str> {
        match self.get(field) {
            Some(v) => self.as_str(field, v),
            None => bail!("{}: missing required field `{field}` (a string)", self.tool),
        }
    }

    pub(crate) fn opt_string(&self, field: &str) -> Result<Option<&'a str>> {
        self.get(field).map(|v| self.as_str(field, v)).transpose()
    }

    fn as_str(&self, field: &str, v: &'a Value) -> Result<&'a str> {
        v.as_str()
            .ok_or_else(|| anyhow!("{}: `{field}` must be a string, got {}", self.tool, kind(v)))
    }

    /// A non-negative integer. Models sometimes quote numbers, so a string
    /// of digits is accepted too.
    pub(crate) fn opt_u64(&self, field: &str) -> Result<Option<u64>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse::<u64>().ok(),
            _ => None,
        };
        n.map(Some).ok_or_else(|| {
            anyhow!(
                "{}: `{field}` must be a non-negative integer, got {v}",
                self.tool
            )
        })
    }

    pub(crate) fn opt_bool(&self, field: &str) -> Result<Option<bool>> {
        let Some(v) = self.get(field) else {
            return Ok(None);
        };
        match v {
            Value::Bool(b) => Ok(Some(*b)),
            Value::String(s) if s == "true" => Ok(Some(true)),
            Value::String(s) if s == "false" => Ok(Some(false)),
            other => bail!(
                "{}: `{field}` must be true or false, got {other}",
                self.tool
            ),
        }
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn messages_name_tool_and_field() {
        let input = json!({"path": 3, "offset": "x", "limit": "7", "flag": null});
        let a = Args::new("read", &input).unwrap();
        assert_eq!(
            a.string("path").unwrap_err().to_string(),
            "read: `path` must be a string, got a number"
        );
        assert_eq!(
            a.string("missing").unwrap_err().to_string(),
            "read: missing required field `missing` (a string)"
        );
        assert!(a
            .opt_u64("offset")
            .unwrap_err()
            .to_string()
            .contains("`offset`"));
        assert_eq!(a.opt_u64("limit").unwrap(), Some(7));
        assert_eq!(a.opt_bool("flag").unwrap(), None);
        assert!(Args::new("read", &json!([1])).is_err());
    }
}
