//! What each thinking level (pi's names; the type is in
//! `protocol/settings.rs`) means per API: an Anthropic token budget, an
//! OpenAI `reasoning_effort`. Extensions get the level itself and map it
//! their own way.

use crate::protocol::ThinkingLevel;

impl ThinkingLevel {
    /// Anthropic `budget_tokens` (the API's minimum is 1024); `None` for off.
    pub fn anthropic_budget(self) -> Option<u64> {
        match self {
            ThinkingLevel::Off => None,
            ThinkingLevel::Minimal => Some(1024),
            ThinkingLevel::Low => Some(4096),
            ThinkingLevel::Medium => Some(10_000),
            ThinkingLevel::High => Some(24_000),
            ThinkingLevel::Xhigh => Some(32_000),
        }
    }

    /// OpenAI `reasoning_effort`; `xhigh` is sent as `high`, the highest
    /// every reasoning model takes. `None` for off.
    pub fn openai_effort(self) -> Option<&'static str> {
        match self {
            ThinkingLevel::Off => None,
            ThinkingLevel::Minimal => Some("minimal"),
            ThinkingLevel::Low => Some("low"),
            ThinkingLevel::Medium => Some("medium"),
            ThinkingLevel::High | ThinkingLevel::Xhigh => Some("high"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_meet_the_api_minimum_and_grow() {
        let levels = [
            ThinkingLevel::Minimal,
            ThinkingLevel::Low,
            ThinkingLevel::Medium,
            ThinkingLevel::High,
            ThinkingLevel::Xhigh,
        ];
        let budgets: Vec<u64> = levels.iter().filter_map(|l| l.anthropic_budget()).collect();
        assert_eq!(budgets.len(), 5);
        assert!(budgets[0] >= 1024 && budgets.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ThinkingLevel::Off.anthropic_budget(), None);
        assert_eq!(ThinkingLevel::Xhigh.openai_effort(), Some("high"));
        assert_eq!(
            serde_json::to_value(ThinkingLevel::Xhigh).unwrap(),
            serde_json::json!("xhigh")
        );
    }
}
