//! Property tests for the pure decoders at the edges of the host: the stdin
//! line splitter, command decoding, Content-Length framing, the SSE parser and
//! the session file loader. Each one is fed generated input in generated
//! chunkings and checked against a simple model of what it must produce.
//!
//! The same decoders are fuzzed by the targets in `fuzz/` (see
//! `fuzz/README.md`); these tests are the fast, always-run half of that.

use agent_rpc::framing::{self, Decoder, FrameError};
use agent_rpc::message::{Block, Content, Message, Role};
use agent_rpc::protocol::{decode_command, Command, ErrorCode, Usage};
use agent_rpc::session::{self, Entry, Header};
use agent_rpc::sse::{self, Parser};
use agent_rpc::transport::{Inbound, LineDecoder};
use proptest::prelude::*;
use proptest::sample::Index;
use serde_json::{json, Map, Value};

/// 256 cases per property (about 5 s for the file in a debug build);
/// `PROPTEST_CASES=100000 cargo test --release --test properties` digs deeper.
fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256);
    ProptestConfig {
        cases,
        // Failures are reported with their seed and shrunk input; no
        // regression files are written into the tree.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

// ---------------------------------------------------------------------------
// Chunking helpers
// ---------------------------------------------------------------------------

/// Cut points into a buffer, as `Index`es resolved against its length once it
/// is known. Duplicates give empty chunks, which must be harmless too.
fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

/// Splits `data` at the given cut points (in any order, duplicates allowed).
fn chunk<'a>(data: &'a [u8], cuts: &[Index]) -> Vec<&'a [u8]> {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(data.len() + 1)).collect();
    at.sort_unstable();
    let mut out = Vec::with_capacity(at.len() + 1);
    let mut start = 0;
    for p in at {
        out.push(&data[start..p]);
        start = p;
    }
    out.push(&data[start..]);
    out
}

/// Cheap deterministic filler for large bodies: generating 64 KiB value by
/// value through proptest would dominate the run time in debug builds.
fn filler(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

// ---------------------------------------------------------------------------
// transport::LineDecoder
// ---------------------------------------------------------------------------

fn decode_lines(max: usize, chunks: &[&[u8]]) -> Vec<Inbound> {
    let mut dec = LineDecoder::new(max);
    let mut out = Vec::new();
    for c in chunks {
        dec.feed(c, &mut |i| out.push(i));
    }
    dec.finish(&mut |i| out.push(i));
    out
}

/// What one `\n`-free input line must decode to, per transport.rs: one
/// trailing `\r` is dropped, blank (all-whitespace) lines vanish, and a line
/// whose content exceeds the cap is reported with its full raw length.
fn expected_line(max: usize, raw: &[u8]) -> Option<Inbound> {
    let content = raw.strip_suffix(b"\r").unwrap_or(raw);
    if content.len() > max {
        Some(Inbound::TooLarge { bytes: raw.len() })
    } else if content.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        Some(Inbound::Line(content.to_vec()))
    }
}

/// Bytes biased towards what matters to the splitter: newlines, `\r`,
/// whitespace and ordinary text.
fn line_byte() -> impl Strategy<Value = u8> {
    prop_oneof![
        3 => Just(b'\n'),
        2 => Just(b'\r'),
        2 => prop::sample::select(&b" \t\x0b\x0c"[..]),
        8 => b'!'..=b'~',
        1 => any::<u8>(),
    ]
}

/// One input line without its `\n`: text, blank, or ending in `\r`, with
/// lengths on both sides of small caps.
fn raw_line() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(b' '..=b'~', 0..40),
        1 => prop::collection::vec(prop::sample::select(&b" \t\x0c\r"[..]), 0..6),
        2 => (prop::collection::vec(b' '..=b'~', 0..40), 1usize..3).prop_map(|(mut l, crs)| {
            l.extend(std::iter::repeat_n(b'\r', crs));
            l
        }),
        1 => prop::collection::vec(any::<u8>().prop_filter("no newline", |b| *b != b'\n'), 0..40),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn line_decoder_is_chunking_invariant_and_capped(
        max in 0usize..48,
        data in prop::collection::vec(line_byte(), 0..300),
        cuts in cuts(),
    ) {
        let whole = decode_lines(max, &[&data]);
        let chunked = decode_lines(max, &chunk(&data, &cuts));
        prop_assert_eq!(&chunked, &whole);
        let bytewise: Vec<&[u8]> = data.chunks(1).collect();
        prop_assert_eq!(&decode_lines(max, &bytewise), &whole);
        for item in &whole {
            match item {
                Inbound::Line(l) => {
                    prop_assert!(l.len() <= max, "line of {} bytes over cap {}", l.len(), max);
                    prop_assert!(!l.contains(&b'\n'));
                    prop_assert!(!l.iter().all(u8::is_ascii_whitespace));
                }
                Inbound::TooLarge { bytes } => prop_assert!(*bytes > max),
            }
        }
    }

    #[test]
    fn line_decoder_returns_the_lines_it_was_given(
        max in 0usize..48,
        lines in prop::collection::vec(raw_line(), 0..12),
        trailing_newline in any::<bool>(),
        cuts in cuts(),
    ) {
        let mut data = lines.join(&b'\n');
        if trailing_newline {
            data.push(b'\n');
        }
        let want: Vec<Inbound> = lines.iter().filter_map(|l| expected_line(max, l)).collect();
        prop_assert_eq!(decode_lines(max, &[&data]), &want[..]);
        prop_assert_eq!(decode_lines(max, &chunk(&data, &cuts)), want);
    }
}

// ---------------------------------------------------------------------------
// protocol::decode_command
// ---------------------------------------------------------------------------

const COMMANDS: &[&str] = &[
    "prompt",
    "abort",
    "steer",
    "follow_up",
    "set_model",
    "permission_response",
    "set_permission_mode",
    "get_state",
    "get_session_stats",
    "get_messages",
    "get_available_models",
    "new_session",
    "list_sessions",
    "shutdown",
];

/// An id the protocol accepts: a string or a number.
fn valid_id() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<String>().prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        // Short decimals only: see `float_ids_are_echoed_exactly`.
        any::<i32>().prop_map(|n| json!(f64::from(n) / 4.0)),
    ]
}

/// Arbitrary JSON values, a few levels deep.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        any::<u64>().prop_map(|n| json!(n)),
        any::<i32>().prop_map(|n| json!(f64::from(n) / 4.0)),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(".{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Extra fields beside `id` and `type`.
fn extra_fields() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::btree_map(
        "[a-z_]{1,10}".prop_filter("not id/type", |k| k != "id" && k != "type"),
        json_value(),
        0..4,
    )
    .prop_map(|m| m.into_iter().collect())
}

/// JSON-ish text, so that random strings get past the first parse often.
fn json_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        json_value().prop_map(|v| v.to_string()),
        (prop::sample::select(COMMANDS), extra_fields(), json_value()).prop_map(
            |(t, mut m, id)| {
                m.insert("type".into(), json!(t));
                m.insert("id".into(), id);
                Value::Object(m).to_string()
            }
        ),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn decode_command_never_panics_on_bytes(line in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_command(&line);
    }

    #[test]
    fn decode_command_keeps_any_valid_id(text in json_text()) {
        // Whatever happens, an object with a valid id is answered under it.
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let result = decode_command(text.as_bytes());
        let got_id = match &result {
            Ok(env) => env.id.clone(),
            Err(e) => e.id.clone(),
        };
        match parsed.as_ref().and_then(|v| v.as_object()).and_then(|o| o.get("id")) {
            Some(id @ (Value::String(_) | Value::Number(_))) => prop_assert_eq!(&got_id, id),
            _ => prop_assert_eq!(got_id, Value::Null),
        }
        if parsed.is_none() {
            prop_assert_eq!(result.unwrap_err().code, ErrorCode::ParseError);
        }
    }

    #[test]
    fn unknown_type_is_an_error_under_its_id(
        id in valid_id(),
        kind in any::<String>().prop_filter("unknown", |k| !COMMANDS.contains(&k.as_str())),
        mut extra in extra_fields(),
    ) {
        extra.insert("type".into(), json!(kind));
        extra.insert("id".into(), id.clone());
        let line = serde_json::to_vec(&Value::Object(extra)).unwrap();
        let err = decode_command(&line).unwrap_err();
        prop_assert_eq!(err.code, ErrorCode::UnknownCommand);
        prop_assert_eq!(err.id, id);
    }

    /// SPEC §2: the id "is echoed verbatim". Regression: with serde_json's
    /// default (fast, not exact) float parsing a float id needing 17
    /// significant digits came back one ULP off (`-1.3913415033424327e-192`
    /// answered as `-1.3913415033424328e-192`); `float_roundtrip` fixed it.
    #[test]
    fn float_ids_are_echoed_exactly(
        f in any::<f64>().prop_filter("JSON has no NaN or infinities", |f| f.is_finite()),
    ) {
        let line = serde_json::to_vec(&json!({"type": "get_state", "id": f})).unwrap();
        prop_assert_eq!(decode_command(&line).unwrap().id, json!(f));
    }

    #[test]
    fn message_commands_round_trip(
        id in valid_id(),
        kind in prop::sample::select(&["prompt", "follow_up", "steer", "set_model"][..]),
        text in any::<String>(),
    ) {
        let field = if kind == "set_model" { "model" } else { "message" };
        let line = serde_json::to_vec(&json!({"type": kind, "id": id, field: text})).unwrap();
        let env = decode_command(&line).unwrap();
        prop_assert_eq!(&env.id, &id);
        prop_assert_eq!(env.command.name().as_str(), kind);
        let got = match env.command {
            Command::Prompt(p) | Command::FollowUp(p) => {
                prop_assert!(p.attachments.is_empty());
                p.message
            }
            Command::Steer(m) => m.message,
            Command::SetModel(m) => m.model,
            other => return Err(TestCaseError::fail(format!("decoded as {other:?}"))),
        };
        prop_assert_eq!(got, text);
    }
}

// ---------------------------------------------------------------------------
// provider::framing
// ---------------------------------------------------------------------------

/// Decodes everything in `chunks`; stops at the first error.
fn decode_frames(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(e) => {
                    // A broken stream stays broken, and asking again is harmless.
                    let _ = d.next_frame();
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

/// Frame bodies: small arbitrary ones, bodies that look like framing
/// themselves, and large ones up to 64 KiB.
fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..64),
        2 => prop::collection::vec(prop::sample::select(&b"\r\n:Content-Length 0123456789"[..]), 0..64),
        1 => prop::collection::vec(any::<u8>(), 0..64).prop_map(|b| framing::encode(&b)),
        1 => (0usize..=64 * 1024, any::<u64>()).prop_map(|(n, seed)| filler(n, seed)),
    ]
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn framing_round_trips_at_any_split(
        bodies in prop::collection::vec(body(), 0..6),
        cuts in cuts(),
    ) {
        let stream: Vec<u8> = bodies.iter().flat_map(|b| framing::encode(b)).collect();
        let (whole, err) = decode_frames(&[&stream]);
        prop_assert_eq!(err, None);
        prop_assert_eq!(&whole, &bodies);
        let (chunked, err) = decode_frames(&chunk(&stream, &cuts));
        prop_assert_eq!(err, None);
        prop_assert_eq!(&chunked, &bodies);
    }

    #[test]
    fn framing_never_panics_on_bytes(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..400),
            prop::collection::vec(
                prop::sample::select(&b"\r\n: Content-Length content-length 0123456789+-x"[..]),
                0..400,
            ),
        ],
        cuts in cuts(),
    ) {
        let (whole, whole_err) = decode_frames(&[&data]);
        let (chunked, chunked_err) = decode_frames(&chunk(&data, &cuts));
        // Far below the header cap, chunking cannot change the outcome.
        prop_assert_eq!(chunked, whole);
        prop_assert_eq!(chunked_err, whole_err);
    }
}

// ---------------------------------------------------------------------------
// provider::sse
// ---------------------------------------------------------------------------

/// Parses everything in `chunks`, draining events after every push.
fn parse_sse(chunks: &[&[u8]]) -> Result<Vec<sse::Event>, sse::TooLarge> {
    let mut p = Parser::new();
    let mut out = Vec::new();
    for c in chunks {
        p.push(c);
        while let Some(e) = p.next_event()? {
            out.push(e);
        }
    }
    Ok(out)
}

/// Text without line terminators (the SSE line ends are `\n`, `\r`, `\r\n`).
fn sse_text() -> impl Strategy<Value = String> {
    prop_oneof!["[^\r\n]{0,16}", "[ :a-z{}\"é]{0,16}",]
}

#[derive(Debug, Clone)]
struct SseEvent {
    name: String,
    data: String,
}

fn sse_event() -> impl Strategy<Value = SseEvent> {
    (
        prop_oneof![Just(String::new()), sse_text()],
        prop::collection::vec(sse_text(), 1..4),
    )
        .prop_map(|(name, pieces)| SseEvent {
            name,
            data: pieces.join("\n"),
        })
}

/// How each generated line is written: its terminator, whether an optional
/// space follows the colon, and whether a comment or ignored field goes before.
#[derive(Debug, Clone)]
struct LineStyle {
    end: u8,
    space: bool,
    noise: u8,
    noise_text: String,
}

fn line_style() -> impl Strategy<Value = LineStyle> {
    (0u8..3, any::<bool>(), 0u8..8, "[^\r\n]{0,10}").prop_map(|(end, space, noise, noise_text)| {
        LineStyle {
            end,
            space,
            noise,
            noise_text,
        }
    })
}

/// Adds one line, after the comment or ignored field its style asks for.
fn push<'a>(lines: &mut Vec<(String, &'a LineStyle)>, text: String, s: &'a LineStyle) {
    match s.noise {
        0 => lines.push((format!(":{}", s.noise_text), s)),
        1 => lines.push((format!("id: {}", s.noise_text), s)),
        2 => lines.push(("retry: 1000".to_owned(), s)),
        _ => {}
    }
    lines.push((text, s));
}

/// Writes events as an SSE stream, varying everything the format allows
/// without changing the meaning.
fn encode_sse(events: &[SseEvent], styles: &[LineStyle]) -> Vec<u8> {
    let mut styles = styles.iter().cycle();
    let mut lines: Vec<(String, &LineStyle)> = Vec::new();
    for (i, ev) in events.iter().enumerate() {
        if i == 0 || ev.name.len() % 2 == 0 {
            // A blank line with no data before it dispatches nothing.
            push(&mut lines, String::new(), styles.next().unwrap());
        }
        if !ev.name.is_empty() {
            push(
                &mut lines,
                format!("event: {}", ev.name),
                styles.next().unwrap(),
            );
        }
        for piece in ev.data.split('\n') {
            let s = styles.next().unwrap();
            let text = if piece.is_empty() && s.space {
                "data".to_owned()
            } else if !s.space && !piece.starts_with(' ') {
                format!("data:{piece}")
            } else {
                format!("data: {piece}")
            };
            push(&mut lines, text, s);
        }
        push(&mut lines, String::new(), styles.next().unwrap()); // dispatch
    }
    let mut out = Vec::new();
    let mut prev_cr = false;
    for (text, s) in lines {
        out.extend_from_slice(text.as_bytes());
        let end: &[u8] = match s.end {
            0 => b"\n",
            1 => b"\r\n",
            // A lone `\r` is a line end too, unless an empty line ending in
            // `\n` follows it: that would read as one `\r\n`.
            _ => b"\r",
        };
        let end: &[u8] = if prev_cr && text.is_empty() && end == b"\n" {
            b"\r\n"
        } else {
            end
        };
        prev_cr = end == b"\r";
        out.extend_from_slice(end);
    }
    out
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn sse_never_panics_and_ignores_chunking(
        data in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(
                prop::sample::select(&b"\r\n\n: dataevent\xc3\xa9x"[..]),
                0..300,
            ),
        ],
        cuts in cuts(),
    ) {
        let whole = parse_sse(&[&data]);
        prop_assert_eq!(parse_sse(&chunk(&data, &cuts)), whole.clone());
        let bytewise: Vec<&[u8]> = data.chunks(1).collect();
        prop_assert_eq!(parse_sse(&bytewise), whole.clone());
        for e in whole.unwrap() {
            prop_assert!(!e.event.contains(['\r', '\n']));
            prop_assert!(!e.data.contains('\r'));
        }
    }

    #[test]
    fn sse_events_round_trip_whatever_the_chunking(
        events in prop::collection::vec(sse_event(), 0..6),
        styles in prop::collection::vec(line_style(), 1..16),
        cuts in cuts(),
    ) {
        let stream = encode_sse(&events, &styles);
        let want: Vec<sse::Event> = events
            .iter()
            .map(|e| sse::Event { event: e.name.clone(), data: e.data.clone() })
            .collect();
        prop_assert_eq!(parse_sse(&[&stream]).unwrap(), &want[..]);
        prop_assert_eq!(parse_sse(&chunk(&stream, &cuts)).unwrap(), &want[..]);
        let bytewise: Vec<&[u8]> = stream.chunks(1).collect();
        prop_assert_eq!(parse_sse(&bytewise).unwrap(), want);
    }
}

// ---------------------------------------------------------------------------
// session::parse
// ---------------------------------------------------------------------------

fn short_text() -> impl Strategy<Value = String> {
    prop_oneof![".{0,12}", "[a-z \n\"\\\\]{0,12}"]
}

fn small_json() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        short_text().prop_map(Value::String),
        (short_text(), any::<i32>()).prop_map(|(k, n)| json!({ k: [n, null] })),
    ]
}

fn block() -> impl Strategy<Value = Block> {
    prop_oneof![
        short_text().prop_map(|text| Block::Text { text }),
        (short_text(), prop::option::of(short_text())).prop_map(|(thinking, signature)| {
            Block::Thinking {
                thinking,
                signature,
                reasoning: None,
            }
        }),
        (short_text(), short_text(), small_json()).prop_map(|(id, name, input)| Block::ToolUse {
            id,
            name,
            input
        }),
        (short_text(), small_json(), any::<bool>()).prop_map(|(tool_use_id, content, is_error)| {
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            }
        }),
        small_json().prop_map(|source| Block::Image { source }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    (
        prop_oneof![Just(Role::User), Just(Role::Assistant)],
        prop_oneof![
            short_text().prop_map(Content::Text),
            prop::collection::vec(block(), 0..3).prop_map(Content::Blocks),
        ],
        prop::option::of(short_text()),
        any::<bool>(),
        prop::option::of(short_text()),
    )
        .prop_map(|(role, content, stop_reason, aborted, error)| Message {
            role,
            content,
            stop_reason,
            aborted,
            error,
        })
}

/// The slash command a stored message may have been typed as.
fn command_line() -> impl Strategy<Value = session::CommandLine> {
    (short_text(), short_text(), short_text()).prop_map(|(name, arguments, text)| {
        session::CommandLine {
            name,
            arguments,
            text,
        }
    })
}

/// Entries after the header: mostly messages, some of the other kinds.
fn entry() -> impl Strategy<Value = Entry> {
    prop_oneof![
        6 => (short_text(), message(), prop::option::of(command_line()))
            .prop_map(|(ts, message, command)| Entry::Message { ts, message: message.into(), command }),
        1 => (short_text(), short_text()).prop_map(|(ts, model)| Entry::ModelChange { ts, model }),
        1 => (short_text(), any::<u32>()).prop_map(|(ts, n)| Entry::TurnEnd {
            ts,
            prompt_id: "p1".into(),
            stop_reason: "end_turn".into(),
            usage: Usage { input_tokens: n.into(), ..Usage::default() },
            cost_usd: None,
            rounds: Some(u64::from(n % 7)),
        }),
    ]
}

fn header() -> impl Strategy<Value = Header> {
    (
        0u32..=session::FORMAT_VERSION,
        short_text(),
        short_text(),
        prop::option::of(short_text()),
        prop::option::of(short_text()),
        prop::option::of(short_text()),
    )
        .prop_map(|(version, id, cwd, model, forked_from, parent)| Header {
            version,
            id,
            created_at: "2025-01-01T00:00:00.000Z".into(),
            cwd,
            model,
            permission_mode: None,
            thinking_level: None,
            forked_from,
            parent_tool_call_id: parent.as_ref().map(|p| format!("{p}-call")),
            agent: parent.as_ref().map(|_| "general".to_owned()),
            parent_session_id: parent,
        })
}

fn line_of(entry: &Entry) -> Vec<u8> {
    let mut line = serde_json::to_vec(entry).unwrap();
    line.push(b'\n');
    line
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn session_truncated_anywhere_keeps_exactly_the_complete_lines(
        header in header(),
        entries in prop::collection::vec(entry(), 0..8),
    ) {
        let mut bytes = line_of(&Entry::Session(header.clone()));
        let header_len = bytes.len();
        // (end offset of each line, messages so far, turns so far)
        let mut ends = vec![(header_len, 0usize, 0u64)];
        let mut messages = Vec::new();
        let mut turns = 0;
        for e in &entries {
            match e {
                Entry::Message { message, .. } => messages.push(message.clone()),
                Entry::TurnEnd { .. } => turns += 1,
                _ => {}
            }
            bytes.extend(line_of(e));
            ends.push((bytes.len(), messages.len(), turns));
        }
        for cut in header_len..=bytes.len() {
            let (s, valid) = session::parse(&bytes[..cut])
                .map_err(|e| TestCaseError::fail(format!("cut at {cut}: {e:#}")))?;
            let &(end, count, turns) = ends.iter().rev().find(|(end, ..)| *end <= cut).unwrap();
            prop_assert_eq!(valid, end, "valid prefix for a cut at {}", cut);
            prop_assert_eq!(&s.messages[..], &messages[..count], "cut at {}", cut);
            prop_assert_eq!(s.turns, turns, "cut at {}", cut);
            prop_assert_eq!(&s.header.id, &header.id);
        }
        for cut in 0..header_len {
            prop_assert!(session::parse(&bytes[..cut]).is_err(), "cut at {} inside the header", cut);
        }
    }

    #[test]
    fn session_parse_never_panics_and_its_prefix_is_stable(
        header in header(),
        tail in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            prop::collection::vec(
                prop::sample::select(&b"\n{}\":,[]typemessagerolecontentuser"[..]),
                0..300,
            ),
        ],
        with_header in any::<bool>(),
    ) {
        let mut bytes = if with_header {
            line_of(&Entry::Session(header))
        } else {
            Vec::new()
        };
        bytes.extend(&tail);
        if let Ok((s, valid)) = session::parse(&bytes) {
            // The valid prefix ends a line and reloads to the same state.
            prop_assert!(valid <= bytes.len());
            prop_assert_eq!(bytes[valid - 1], b'\n');
            let (again, valid_again) = session::parse(&bytes[..valid]).unwrap();
            prop_assert_eq!(valid_again, valid);
            prop_assert_eq!(again.messages, s.messages);
            prop_assert_eq!(again.turns, s.turns);
        }
    }
}
