//! `protocol::decode_command`: never panics, and a line that is a JSON object
//! with a string or number `id` is always answered under that id (SPEC §2).
#![no_main]

use agent_rpc::protocol::{decode_command, ErrorCode};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let result = decode_command(data);
    let (id, code) = match &result {
        Ok(env) => (&env.id, None),
        Err(e) => (&e.id, Some(e.code)),
    };
    // Parsed the same way as the decoder does, so both agree on every number.
    let parsed: Option<Value> = std::str::from_utf8(data)
        .ok()
        .and_then(|t| serde_json::from_str(t).ok());
    match parsed
        .as_ref()
        .and_then(Value::as_object)
        .and_then(|o| o.get("id"))
    {
        Some(want @ (Value::String(_) | Value::Number(_))) => assert_eq!(id, want),
        _ => assert_eq!(id, &Value::Null),
    }
    if parsed.is_none() {
        assert_eq!(code, Some(ErrorCode::ParseError));
    }
    if let Ok(env) = &result {
        // Every accepted command has a name the protocol knows.
        assert!(!env.command.name().as_str().is_empty());
    }
});
