//! The protocol as one JSON Schema document (draft 2020-12), generated from
//! the wire types so it cannot drift from what the host reads and writes.
//! `rpc schema` prints it; `schema/agent-rpc.schema.json` is the checked-in
//! copy that a test keeps equal to it.
//!
//! Most of it is derived (`schemars`, honouring the serde attributes). Two
//! parts are assembled here because their Rust shape is not their wire
//! shape: each command is `{type, id?, ...fields}` (its fields are a struct,
//! the envelope is read by the decoder), and each command's response is
//! `{type: "response", id, command, ok, ...body}` (one body type per
//! command, flattened beside `ok`). `message_update` is written from a
//! borrowed struct on the hot path, so its schema is spelled out too.

use schemars::generate::SchemaSettings;
use schemars::{json_schema, JsonSchema, Schema, SchemaGenerator};
use serde_json::{json, Map, Value};

use super::{Command, Frame, StreamEvent, PROTOCOL_VERSION};

/// The schema of a command `id`, echoed on its answer: a string, a number,
/// or null when the client sent none.
pub fn id(_: &mut SchemaGenerator) -> Schema {
    json_schema!({
        "description": "The command's id, echoed verbatim; null when none was sent.",
        "type": ["string", "number", "null"],
    })
}

/// Prompt attachments as the decoder takes them. Spelled out, since
/// decoding goes through a plain struct (so that errors name the field),
/// which would make a derived schema too loose; registered as named
/// definitions so that generated bindings get named types.
pub fn attachments(generator: &mut SchemaGenerator) -> Schema {
    let defs = generator.definitions_mut();
    defs.insert(
        "TextAttachment".into(),
        json!({
            "description": "Text added to the prompt.",
            "type": "object",
            "properties": {
                "type": { "const": "text" },
                "text": { "type": "string" },
            },
            "required": ["type", "text"],
        }),
    );
    defs.insert(
        "ImageAttachment".into(),
        json!({
            "description": "An image as base64 `data`; `mime_type` is accepted for `media_type`.",
            "type": "object",
            "properties": {
                "type": { "const": "image" },
                "media_type": { "type": "string" },
                "mime_type": { "type": "string" },
                "data": { "type": "string" },
            },
            "required": ["type", "data"],
            "anyOf": [{ "required": ["media_type"] }, { "required": ["mime_type"] }],
        }),
    );
    defs.insert(
        "Attachment".into(),
        json!({
            "description": "Extra content sent with a prompt.",
            "oneOf": [
                { "$ref": "#/$defs/TextAttachment" },
                { "$ref": "#/$defs/ImageAttachment" },
            ],
        }),
    );
    json_schema!({ "type": "array", "items": { "$ref": "#/$defs/Attachment" } })
}

/// A field that is only ever written as `true`.
pub fn always_true(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "const": true })
}

/// The command that started a turn.
pub fn turn_command(_: &mut SchemaGenerator) -> Schema {
    json_schema!({ "enum": ["prompt", "follow_up"] })
}

/// The whole document: `$defs.Command` (every command), `$defs.Frame`
/// (every frame the host writes), and a named definition for each.
pub fn document() -> Value {
    // What the host reads is described as serde deserializes it (a field
    // with a default is optional); what it writes as serde serializes it (a
    // field it may skip is optional, every other one is always there).
    let mut reads = SchemaSettings::draft2020_12()
        .for_deserialize()
        .into_generator();
    let mut generator = SchemaSettings::draft2020_12()
        .for_serialize()
        .into_generator();
    let mut named: Vec<(String, Value)> = Vec::new();
    let mut commands = Vec::new();
    let mut responses = Vec::new();
    for c in Command::schemas(&mut reads, &mut generator) {
        let doc = c.doc.trim();
        let command_def = format!("{}Command", c.variant);
        named.push((command_def.clone(), command(c.name.as_str(), doc, c.params)));
        commands.push(reference(&command_def));
        let response_def = format!("{}Response", c.variant);
        named.push((response_def.clone(), response(c.name.as_str(), c.response)));
        responses.push(reference(&response_def));
    }
    named.push(("MessageUpdateFrame".into(), message_update(&mut generator)));

    // The derived union of the other frames, with the responses and
    // `message_update` added to it.
    let mut frames = <Frame as JsonSchema>::json_schema(&mut generator).to_value();
    let variants = frames
        .get_mut("oneOf")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    let mut all = variants;
    all.extend(responses);
    all.push(reference("MessageUpdateFrame"));
    let frame = json!({
        "description": "Every frame the host writes on stdout, one per line.",
        "oneOf": all,
    });

    let mut defs = reads.take_definitions(true);
    for (name, schema) in generator.take_definitions(true) {
        // A type on both sides (`Mode`) has one definition: both contracts
        // must agree on it.
        let clash = defs.insert(name.clone(), schema.clone());
        debug_assert!(
            clash.is_none_or(|c| c == schema),
            "{name} differs between what the host reads and writes"
        );
    }
    for (name, schema) in named {
        let clash = defs.insert(name.clone(), schema);
        debug_assert!(clash.is_none(), "two schema definitions named {name}");
    }
    defs.insert(
        "Command".into(),
        json!({
            "description": "Every command a client writes on stdin, one per line.",
            "oneOf": commands,
        }),
    );
    defs.insert("Frame".into(), frame);
    // Sorted, so the checked-in file changes only where the protocol does.
    let defs: std::collections::BTreeMap<String, Value> = defs.into_iter().collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": format!("agent-rpc protocol v{PROTOCOL_VERSION}"),
        "description": "Line-delimited JSON over stdio (SPEC.md). A line the client writes is a `Command`; a line the host writes is a `Frame`.",
        "anyOf": [reference("Command"), reference("Frame")],
        "$defs": defs,
    })
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/$defs/{name}") })
}

/// `{type: <name>, id?, ...fields}`. Unknown fields are ignored by the
/// host, so the object stays open.
fn command(name: &str, doc: &str, params: Schema) -> Value {
    let mut params = params.to_value();
    let mut properties = take_object(&mut params, "properties");
    let mut required = take_array(&mut params, "required");
    properties.insert("type".into(), json!({ "const": name }));
    properties.insert(
        "id".into(),
        json!({
            "description": "Optional; echoed verbatim on the answer.",
            "type": ["string", "number", "null"],
        }),
    );
    required.insert(0, json!("type"));
    json!({
        "description": doc,
        "type": "object",
        "properties": properties,
        "required": required,
    })
}

/// `{type: "response", id, command: <name>, ok, ...body}`. Only a turn can
/// end `ok: false`, and then it says why.
fn response(name: &str, body: Schema) -> Value {
    let turn = matches!(name, "prompt" | "follow_up");
    let ok = if turn {
        json!({
            "description": "False when the turn failed; `code` and `error` then say why.",
            "type": "boolean",
        })
    } else {
        json!({ "const": true })
    };
    let mut envelope = json!({
        "type": "object",
        "properties": {
            "type": { "const": "response" },
            "id": {
                "description": "The command's id, echoed verbatim; null when none was sent.",
                "type": ["string", "number", "null"],
            },
            "command": { "const": name },
            "ok": ok,
        },
        "required": ["type", "id", "command", "ok"],
    });
    if turn {
        envelope["if"] = json!({ "properties": { "ok": { "const": false } } });
        envelope["then"] = json!({ "required": ["code", "error"] });
    }
    json!({
        "description": format!("The response to `{name}`."),
        "allOf": [envelope, body.to_value()],
    })
}

fn message_update(generator: &mut SchemaGenerator) -> Value {
    let event = generator.subschema_for::<StreamEvent>().to_value();
    json!({
        "description": "A piece of the model's answer as it streams.",
        "type": "object",
        "properties": {
            "type": { "const": "message_update" },
            "prompt_id": { "type": "string" },
            "event": event,
            "parent_tool_call_id": {
                "description": "Set when a subagent streamed this: the parent's `task` call that runs it.",
                "type": "string",
            },
        },
        "required": ["type", "prompt_id", "event"],
    })
}

fn take_object(schema: &mut Value, key: &str) -> Map<String, Value> {
    match schema.get_mut(key).map(Value::take) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    }
}

fn take_array(schema: &mut Value, key: &str) -> Vec<Value> {
    match schema.get_mut(key).map(Value::take) {
        Some(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}
