//! `transport::LineDecoder`: any bytes, in any chunking, give the same lines,
//! and no line handed on is longer than the cap.
//!
//! The input is fed as it is; two of its bytes pick the parameters: the first
//! the chunk size (1..=64), the second the cap (0, 8, ..., 2040 bytes).
#![no_main]

use agent_rpc::transport::{Inbound, LineDecoder};
use libfuzzer_sys::fuzz_target;

fn decode(max: usize, chunks: impl Iterator<Item = impl AsRef<[u8]>>) -> Vec<Inbound> {
    let mut dec = LineDecoder::new(max);
    let mut out = Vec::new();
    for c in chunks {
        dec.feed(c.as_ref(), &mut |i| out.push(i));
    }
    dec.finish(&mut |i| out.push(i));
    out
}

fuzz_target!(|data: &[u8]| {
    let size = data.first().map_or(1, |b| usize::from(b % 64) + 1);
    let max = data.get(1).map_or(0, |b| usize::from(*b) * 8);
    let whole = decode(max, std::iter::once(data));
    for item in &whole {
        match item {
            Inbound::Line(line) => {
                assert!(
                    line.len() <= max,
                    "a {}-byte line passed the {max}-byte cap",
                    line.len()
                );
                assert!(!line.contains(&b'\n'), "a line holds a newline");
                assert!(
                    !line.iter().all(u8::is_ascii_whitespace),
                    "a blank line was handed on"
                );
            }
            Inbound::TooLarge { bytes } => assert!(*bytes > max, "TooLarge of {bytes} <= {max}"),
        }
    }
    assert_eq!(decode(max, data.chunks(size)), whole, "chunks of {size}");
    assert_eq!(decode(max, data.chunks(1)), whole, "byte by byte");
});
