//! `provider::framing::Decoder`: never panics; the frames decoded from any
//! input re-encode to a stream that decodes to the same frames; and splitting
//! the input in two (at a point taken from its first byte) changes nothing
//! when neither run hits an error.
#![no_main]

use agent_rpc::framing::{encode, Decoder, FrameError};
use libfuzzer_sys::fuzz_target;

fn decode(chunks: &[&[u8]]) -> (Vec<Vec<u8>>, Option<FrameError>) {
    let mut d = Decoder::new();
    let mut out = Vec::new();
    for c in chunks {
        d.push(c);
        loop {
            match d.next_frame() {
                Ok(Some(f)) => out.push(f),
                Ok(None) => break,
                Err(e) => {
                    // The stream is dead; asking again must still be safe.
                    let _ = d.next_frame();
                    return (out, Some(e));
                }
            }
        }
    }
    (out, None)
}

fuzz_target!(|data: &[u8]| {
    let (frames, err) = decode(&[data]);

    let stream: Vec<u8> = frames.iter().flat_map(|f| encode(f)).collect();
    let (again, again_err) = decode(&[&stream]);
    assert_eq!(again_err, None, "re-encoded frames do not decode");
    assert_eq!(again, frames, "re-encoded frames decode differently");

    let at = data
        .first()
        .map_or(0, |b| usize::from(*b) * data.len() / 256);
    let (a, b) = data.split_at(at);
    let (split, split_err) = decode(&[a, b]);
    if err.is_none() && split_err.is_none() {
        assert_eq!(split, frames, "split at {at}");
    }
});
