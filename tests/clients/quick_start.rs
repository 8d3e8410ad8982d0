//! The quick-start path: one prompt piped in, the whole answer out, exit 0.

use std::time::Duration;

use crate::common::{text_of, Spawn};
use serde_json::json;

#[test]
fn piped_prompt_streams_the_whole_answer_and_exits_zero() {
    let mut rpc = Spawn::new().ext("echo").start();
    let ready = rpc.ready();
    assert_eq!(ready["protocol_version"], 1);
    rpc.send(json!({"type": "prompt", "id": "1", "message": "hello there friend"}));
    rpc.close_stdin();
    let frames = rpc.drain(Duration::from_secs(15));
    let status = rpc.wait(Duration::from_secs(5)).expect("exits");
    assert!(status.success(), "exit status {status:?}");
    // `model_changed` may come first: ready said `null` while the echo
    // extension was starting (SPEC §5.8).
    let kinds: Vec<&str> = frames
        .iter()
        .map(|f| f["type"].as_str().unwrap())
        .filter(|k| *k != "model_changed")
        .collect();
    assert_eq!(kinds.first(), Some(&"agent_start"));
    assert_eq!(&kinds[kinds.len() - 2..], &["agent_end", "response"]);
    assert_eq!(text_of(&frames), "hello there friend");
    let resp = frames.last().unwrap();
    assert_eq!(resp["id"], "1");
    assert_eq!(resp["ok"], true);
}
