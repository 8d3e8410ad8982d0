//! Group 3g (`gemini`): the same 20,000-delta reply from the fake server
//! over Google's Gemini API and over Anthropic Messages (one fake, both
//! endpoints pointed at it): host CPU and prompt → first delta, side by
//! side, run by run.

use crate::fixtures::Fake;
use crate::side_by_side::{compare, Side};
use crate::table::Table;

fn both_at(base: &str) -> String {
    format!(
        "[providers.anthropic]\nbase_url = \"{base}\"\n[providers.google]\nbase_url = \"{base}\"\n"
    )
}

fn dummy_keys(_: &Fake) -> Vec<(&'static str, String)> {
    vec![
        ("ANTHROPIC_API_KEY", "dummy".to_owned()),
        ("GEMINI_API_KEY", "dummy".to_owned()),
    ]
}

pub fn bench_gemini(t: &mut Table, runs: usize) {
    let anthropic = Side {
        label: "Anthropic",
        model: "anthropic/claude-sonnet-5-5",
        config: both_at,
        env: dummy_keys,
    };
    let gemini = Side {
        label: "Gemini",
        model: "google/gemini-2.5-flash",
        ..anthropic
    };
    compare(t, "3g", runs, &anthropic, &gemini);
}
