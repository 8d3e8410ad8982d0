//! How long frames take from the fake server's write to the host's stdout
//! (printed with `--nocapture`; nothing about speed is asserted).

use super::*;

// ---- latency --------------------------------------------------------------

both!(latency);

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Sends `message`, timestamps (CLOCK_MONOTONIC) the send, the first
/// text_delta and agent_end.
fn timed_prompt(rpc: &mut Rpc, id: &str, message: &str) -> (f64, f64, f64) {
    let sent = monotonic();
    rpc.send(json!({"type": "prompt", "id": id, "message": message}));
    let mut delta = None;
    let mut end = None;
    let deadline = Instant::now() + READ_TIMEOUT;
    loop {
        let f = rpc
            .recv_within(deadline.saturating_duration_since(Instant::now()))
            .expect("frame");
        let now = monotonic();
        if f["type"] == "message_update" && f["event"]["type"] == "text_delta" && delta.is_none() {
            delta = Some(now);
        }
        if f["type"] == "agent_end" {
            end = Some(now);
        }
        if f["type"] == "response" && f["id"] == id {
            assert_eq!(f["ok"], true, "{f}");
            return (sent, delta.expect("a text delta"), end.expect("agent_end"));
        }
    }
}

/// Prints medians (ms) over 20 prompts; asserts nothing about speed.
///
/// The fake server logs times per request, not per event: `time` (request
/// arrival) and `end_time` (after the last byte was written), both
/// CLOCK_MONOTONIC, the clock read here at each frame's arrival. With
/// `[[n=1 head_ms=0]]`:
/// - request at server → first text_delta frame: the fallback metric; it
///   includes the server's own work (parsing, validation, status line and
///   the events before the delta), so it bounds the host's per-event
///   latency from above;
/// - server end_time → agent_end frame: the last event's decoding plus the
///   end of the turn (session append and fsync) and the frame write;
/// - prompt sent → request at server: the host's request set-up.
///
/// (An attempt to date the delta itself via `delay_ms` + `end_time` was
/// dropped: Python's sleep overshoot, ~0.5–1 ms, exceeds what is measured.)
fn latency(api: Api) {
    const N: usize = 20;
    let srv = FakeServer::start();
    let mut rpc = start(api, &srv);
    // Warm up (connection, client set-up).
    timed_prompt(&mut rpc, "w", "warm up");
    let mut runs = Vec::new();
    for i in 0..N {
        runs.push(timed_prompt(
            &mut rpc,
            &format!("a{i}"),
            &format!("[[n=1 head_ms=0 id=la{i}]]"),
        ));
    }
    let reqs = srv.api_requests();
    let ms = |s: f64| s * 1000.0;
    let (mut send_to_arrival, mut arrival_to_delta, mut end_to_agent_end) =
        (vec![], vec![], vec![]);
    for (i, (sent, delta, end)) in runs.iter().enumerate() {
        let tag = format!("id=la{i}");
        let r = reqs
            .iter()
            .find(|r| {
                r["scenario"]
                    .as_str()
                    .is_some_and(|s| s.split_whitespace().any(|w| w == tag))
            })
            .unwrap_or_else(|| panic!("no request {tag}"));
        let arrival = r["time"].as_f64().expect("time");
        let finished = r["end_time"].as_f64().expect("end_time");
        send_to_arrival.push(ms(arrival - sent));
        arrival_to_delta.push(ms(delta - arrival));
        end_to_agent_end.push(ms(end - finished));
    }
    let max = |v: &[f64]| v.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let (m1, m2, m3) = (
        max(&send_to_arrival),
        max(&arrival_to_delta),
        max(&end_to_agent_end),
    );
    println!(
        "LATENCY {api:?} (ms, median/max of {N}): prompt sent→request at server {:.3}/{m1:.3}; \
         request at server→first text_delta frame {:.3}/{m2:.3}; \
         server end_time→agent_end frame {:.3}/{m3:.3}",
        median(&mut send_to_arrival),
        median(&mut arrival_to_delta),
        median(&mut end_to_agent_end),
    );
}
