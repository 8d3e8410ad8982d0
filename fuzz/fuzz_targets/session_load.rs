//! `session::parse`: never panics; when it accepts a file, the valid prefix it
//! reports ends a line, and loading just that prefix gives the same session
//! (what `Store::open` relies on when it cuts a torn tail away).
#![no_main]

use agent_rpc::session::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((session, valid)) = parse(data) else {
        return;
    };
    assert!(
        valid > 0 && valid <= data.len(),
        "valid prefix {valid} of {}",
        data.len()
    );
    assert_eq!(
        data[valid - 1],
        b'\n',
        "the valid prefix does not end a line"
    );
    let (again, valid_again) = parse(&data[..valid]).expect("the valid prefix does not load");
    assert_eq!(valid_again, valid);
    assert_eq!(again.messages, session.messages);
    assert_eq!(again.turns, session.turns);
    assert_eq!(again.model, session.model);
    assert_eq!(again.usage, session.usage);
    assert_eq!(again.permission_mode, session.permission_mode);
});
