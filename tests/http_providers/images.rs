//! `read` of an image file reaching each API in its own shape (the fake's
//! request log): Anthropic image blocks in the tool result, Responses
//! `input_image` in the function call output, Gemini `inlineData` after the
//! function response, Chat Completions a user message after the tool
//! messages.

use super::*;

/// A 2×1 PNG (the smallest real one: signature, IHDR, IDAT, IEND).
const PNG_BASE64: &str =
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAABCAYAAAD0eNT6AAAAEUlEQVR42mP8z8Dwn4GBgQEAEBwCAC4TkL8AAAAASUVORK5CYII=";

/// A workspace holding `shot.png`.
fn workspace() -> TempDir {
    use base64::Engine as _;
    let dir = tempfile::tempdir().expect("tempdir");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(PNG_BASE64)
        .expect("the PNG decodes");
    std::fs::write(dir.path().join("shot.png"), bytes).expect("write");
    dir
}

const PROMPT: &str = r#"look [[tool=read input={"path":"shot.png"} id=img]]"#;

/// Runs the prompt on `spawn` in a workspace with the image; the request
/// that carried the tool result back, and the `tool_execution_end` result.
fn round_trip(srv: &FakeServer, spawn: Spawn) -> (Value, String) {
    let work = workspace();
    let mut rpc = spawn
        .arg("--cwd")
        .arg(&work.path().to_string_lossy())
        .start();
    rpc.ready();
    let (frames, resp) = run(&mut rpc, "1", PROMPT);
    assert_ok(&resp, &rpc);
    let end = frames
        .iter()
        .find(|f| f["type"] == "tool_execution_end")
        .expect("tool_execution_end");
    // All of them: to the fake, the user message carrying Chat
    // Completions' images is the prompt, so the scenario changes.
    let reqs = srv.api_requests();
    assert_eq!(reqs.len(), 2, "the call and the answer");
    assert_eq!(reqs[1]["status"], 200, "{}", reqs[1]);
    (
        reqs[1]["body"].clone(),
        end["result"].as_str().unwrap_or_default().to_owned(),
    )
}

fn check_line(result: &str) {
    assert!(
        result.starts_with("Image shot.png (PNG, 2×1, "),
        "the result names the image: {result}"
    );
}

#[test]
fn anthropic_gets_an_image_block_in_the_tool_result() {
    let srv = FakeServer::start();
    let (body, result) = round_trip(&srv, spawn(Api::Anthropic, &srv));
    check_line(&result);
    let turn = body["messages"].as_array().unwrap().last().unwrap().clone();
    let block = turn["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "tool_result")
        .expect("the tool result")
        .clone();
    assert_eq!(block["content"][0]["text"], result.as_str());
    assert_eq!(
        block["content"][1],
        json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_BASE64}})
    );
}

#[test]
fn chat_completions_gets_the_image_after_the_tool_message() {
    let srv = FakeServer::start();
    let (body, result) = round_trip(&srv, spawn(Api::OpenAi, &srv));
    check_line(&result);
    let messages = body["messages"].as_array().unwrap();
    let tool = messages.iter().position(|m| m["role"] == "tool").unwrap();
    assert_eq!(messages[tool]["content"], result.as_str());
    let user = &messages[tool + 1];
    assert_eq!(user["role"], "user");
    let url = format!("data:image/png;base64,{PNG_BASE64}");
    assert!(
        user["content"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["type"] == "image_url" && p["image_url"]["url"] == url.as_str()),
        "{user}"
    );
}

#[test]
fn responses_gets_an_input_image_in_the_function_call_output() {
    let srv = FakeServer::start();
    let spawn = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env("OPENAI_BASE_URL", &Api::OpenAi.base_url(srv.port))
        .env("OPENAI_API_KEY", OPENAI_KEY)
        .model("openai/o3");
    let (body, result) = round_trip(&srv, spawn);
    check_line(&result);
    let output = body["input"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["type"] == "function_call_output")
        .expect("the output")["output"]
        .clone();
    assert_eq!(
        output,
        json!([
            {"type": "input_text", "text": result},
            {"type": "input_image", "image_url": format!("data:image/png;base64,{PNG_BASE64}"), "detail": "auto"}
        ])
    );
}

#[test]
fn gemini_gets_inline_data_after_the_function_response() {
    let srv = FakeServer::start();
    let spawn = Spawn::new()
        .env("XDG_CONFIG_HOME", NO_CONFIG_HOME)
        .env(
            "GOOGLE_GEMINI_BASE_URL",
            &format!("http://127.0.0.1:{}", srv.port),
        )
        .env("GEMINI_API_KEY", "AIza-test")
        .model("google/gemini-2.5-flash");
    let (body, result) = round_trip(&srv, spawn);
    check_line(&result);
    let turn = body["contents"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(turn["role"], "user");
    assert_eq!(
        turn["parts"][0]["functionResponse"],
        json!({"name": "read", "response": {"output": result}})
    );
    assert_eq!(
        turn["parts"][1],
        json!({"inlineData": {"mimeType": "image/png", "data": PNG_BASE64}})
    );
}
