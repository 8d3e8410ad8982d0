//! `provider::sse::Parser`: never panics, and the events do not depend on
//! where the chunk boundaries fall (whole, in chunks of a size taken from the
//! first byte, and byte by byte).
#![no_main]

use agent_rpc::sse::{Event, Parser, TooLarge};
use libfuzzer_sys::fuzz_target;

fn parse<'a>(chunks: impl Iterator<Item = &'a [u8]>) -> Result<Vec<Event>, TooLarge> {
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

fuzz_target!(|data: &[u8]| {
    let whole = parse(std::iter::once(data));
    if let Ok(events) = &whole {
        for e in events {
            assert!(!e.event.contains(['\r', '\n']), "line end in an event name");
            assert!(!e.data.contains('\r'), "CR in event data");
        }
    }
    let size = data.first().map_or(1, |b| usize::from(b % 64) + 1);
    assert_eq!(parse(data.chunks(size)), whole, "chunks of {size}");
    assert_eq!(parse(data.chunks(1)), whole, "byte by byte");
});
