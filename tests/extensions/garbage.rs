//! Corrupt frames from an extension fail the turn naming the frame; the
//! extension is respawned.

use super::*;

#[test]
fn garbage_frames_fail_the_turn_naming_the_frame_and_the_extension_is_respawned() {
    let mut rpc = Host::start(
        Spawn::new()
            .ext("garbage")
            .ext("echo")
            .model("garbage:garbage:garbage-1"),
    );
    rpc.ready();
    let cases = [
        ("body", "bad body", "not json"),
        ("header", "bad header [[garbage=header]]", "banana"),
        ("huge", "huge [[garbage=huge]]", "104857600"),
    ];
    for (n, (kind, message, detail)) in cases.iter().enumerate() {
        let id = format!("g{n}");
        let start = Instant::now();
        let (text, error) = run_failing(&mut rpc, &id, message);
        // Each time a fresh process streams its one good delta first.
        assert_eq!(text, "partial ", "{kind}");
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{kind}: {:?}",
            start.elapsed()
        );
        assert!(
            error.contains("garbage"),
            "{kind}: names the extension: {error}"
        );
        assert!(
            error.contains("frame"),
            "{kind}: says a frame was broken: {error}"
        );
        assert!(
            error.to_lowercase().contains(detail),
            "{kind}: says what was wrong ({detail}): {error}"
        );
    }
    set_model(&mut rpc, ECHO);
    assert_eq!(
        run_ok(&mut rpc, "ok", "works after garbage"),
        "works after garbage"
    );
    finish(rpc);
}
