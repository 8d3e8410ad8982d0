//! A misbehaving extension never blocks `ready` or `get_available_models`,
//! and a stderr flood neither stalls the turn nor grows the host.

use super::*;

#[test]
fn ready_does_not_wait_for_a_hanging_extension() {
    let start = Instant::now();
    let mut rpc = Host::start(Spawn::new().ext("hang-init"));
    rpc.ready();
    let took = start.elapsed();
    assert!(took < Duration::from_secs(2), "ready took {took:?}");
    let state = call_ok(&mut rpc, json!({"type": "get_state"}), "st");
    assert_eq!(state["streaming"], false);
    // The extension is being started in the background meanwhile.
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(2);
    while seen.is_empty() && Instant::now() < deadline {
        seen.extend(fakeprovs(rpc.pid(), "hang"));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        !seen.is_empty(),
        "hang-init is started in the background after ready"
    );
    // stdin EOF with an extension stuck in initialize: still a prompt exit,
    // and the stuck process does not outlive the host.
    let closing = Instant::now();
    finish(rpc);
    assert!(
        closing.elapsed() < Duration::from_secs(3),
        "exit took {:?}",
        closing.elapsed()
    );
    assert_all_gone(&seen, Duration::from_secs(1), "hang-init after host exit");
}

#[test]
fn get_available_models_answers_quickly_while_an_extension_hangs_in_initialize() {
    // protocol.md: get_available_models is answered "within milliseconds at
    // any time". An extension stuck in initialize (default --init-timeout
    // 10 s) must not hold the answer back; it may be listed as unavailable.
    let mut rpc = Host::start(Spawn::new().ext("hang-init").ext("echo"));
    rpc.ready();
    // Each listing waits at most 750 ms for extensions still starting, by
    // design; the bound below only has to stay far under the 10 s that
    // hang-init's initialize could take, so a loaded machine cannot fail it.
    // Echo may itself need more than 750 ms to start there: ask until it is
    // listed, timing every answer.
    let deadline = Instant::now() + READ_TIMEOUT;
    let mut asked = 0;
    let answer = loop {
        asked += 1;
        let id = format!("m{asked}");
        rpc.send(json!({"type": "get_available_models", "id": id}));
        let start = Instant::now();
        let answer = loop {
            match rpc.recv_within(Duration::from_secs(5).saturating_sub(start.elapsed())) {
                Some(v) if v["id"] == id.as_str() => break Some(v),
                Some(_) => continue,
                None => break None,
            }
        };
        let took = start.elapsed();
        let answer = answer.unwrap_or_else(|| panic!("no get_available_models answer within 5 s while hang-init sits in initialize; stderr:\n{}", rpc.stderr()));
        assert_eq!(answer["ok"], true, "{answer}");
        assert!(took < Duration::from_millis(2500), "took {took:?}");
        let echo_listed = answer["models"]
            .as_array()
            .is_some_and(|m| m.iter().any(|m| m["id"] == ECHO));
        if echo_listed || Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let ids: Vec<&str> = answer["models"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&ECHO), "{answer}");
    // SPEC §2: the stuck one is listed, unavailable, saying why.
    let stuck = answer["models"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "hang-init:*")
        .unwrap_or_else(|| panic!("the stuck extension is listed: {answer}"));
    assert_eq!(stuck["available"], false, "{stuck}");
    assert!(
        stuck["error"]
            .as_str()
            .unwrap_or("")
            .contains("still starting"),
        "{stuck}"
    );
    finish(rpc);
}

#[test]
fn stderr_flood_neither_stalls_the_turn_nor_grows_the_host() {
    let mut rpc = Host::start(Spawn::new().ext("echo").model(ECHO));
    rpc.ready();
    // ~7 MB of stderr before the answer.
    assert_eq!(
        run_ok(&mut rpc, "1", "still here [[stderr=100000]]"),
        "still here"
    );
    // Only a bounded tail is kept: it shows in an error, but not all of it.
    let (_, error) = run_failing(&mut rpc, "2", "[[stderr=20000 error=boom]]");
    assert!(error.contains("boom"), "{error}");
    assert!(
        error.contains("junk stderr line 20000 of 20000"),
        "the tail: {error}"
    );
    assert!(
        !error.contains("junk stderr line 1 of"),
        "only the tail: {} bytes",
        error.len()
    );
    assert!(error.len() < 16 * 1024, "bounded: {} bytes", error.len());
    let peak_kib = vm_hwm_kib(rpc.pid()).expect("VmHWM");
    eprintln!("host peak RSS after the stderr flood: {peak_kib} KiB");
    assert!(peak_kib < 64 * 1024, "host peak RSS {peak_kib} KiB");
    finish(rpc);
}
