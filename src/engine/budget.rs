//! A session's budget as a turn keeps to it: before each provider round,
//! the rounds and the cost spent so far (the session's earlier turns plus
//! this one's) against its limits. Checked only between rounds, so a limit
//! never stops a tool call halfway.

use crate::message::Usage;
use crate::protocol::BudgetResponse;
use crate::provider::http::catalog::Price;

/// What a turn needs to keep to its session's budget.
#[derive(Debug, Clone)]
pub(crate) struct TurnBudget {
    pub limits: BudgetResponse,
    /// Provider rounds of the session's earlier turns.
    pub rounds_before: u64,
    /// What the session's earlier turns cost (0 where unpriced).
    pub usd_before: f64,
    /// The turn's model's prices; without them a USD limit cannot be kept.
    pub price: Option<Price>,
}

impl TurnBudget {
    /// Why the next round may not run (`rounds` and `usage` so far in this
    /// turn, and what its subagents spent), or `None` when it may.
    pub(crate) fn exceeded(&self, rounds: u64, usage: &Usage, children_usd: f64) -> Option<String> {
        if let Some(max) = self.limits.max_turns {
            let used = self.rounds_before + rounds;
            if used >= max {
                let rounds = if max == 1 { "round" } else { "rounds" };
                return Some(format!(
                    "the session reached its budget of {max} provider {rounds} (max_turns; {used} used); raise it with set_budget or --max-turns"
                ));
            }
        }
        let max = self.limits.budget_usd?;
        let Some(price) = self.price else {
            return Some(format!(
                "the session has a budget of ${max:.2} (budget_usd) but its model has no known prices, so its cost cannot be counted; give the model prices in the config or lift budget_usd"
            ));
        };
        let spent = self.usd_before + price.cost(usage) + children_usd;
        (spent >= max).then(|| {
            format!(
                "the session reached its budget of ${max:.2} (budget_usd; ${spent:.4} spent); raise it with set_budget or --max-budget-usd"
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn budget(max_turns: Option<u64>, usd: Option<f64>, price: Option<Price>) -> TurnBudget {
        TurnBudget {
            limits: BudgetResponse {
                max_turns,
                budget_usd: usd,
            },
            rounds_before: 3,
            usd_before: 0.5,
            price,
        }
    }

    #[test]
    fn rounds_and_cost_count_the_sessions_earlier_turns() {
        let usage = Usage {
            input_tokens: 1_000_000,
            ..Usage::default()
        };
        let price = Price {
            input: 1.0, // USD per million tokens
            output: 0.0,
            cache_read: 0.0,
            cache_write: 0.0,
        };
        assert_eq!(budget(None, None, None).exceeded(100, &usage, 0.0), None);
        assert_eq!(budget(Some(5), None, None).exceeded(1, &usage, 0.0), None);
        let why = budget(Some(5), None, None)
            .exceeded(2, &usage, 0.0)
            .unwrap();
        assert!(
            why.contains("5 provider rounds (max_turns; 5 used)"),
            "{why}"
        );
        assert_eq!(
            budget(None, Some(2.0), Some(price)).exceeded(0, &usage, 0.0),
            None
        );
        let why = budget(None, Some(1.4), Some(price))
            .exceeded(0, &usage, 0.0)
            .unwrap();
        assert!(why.contains("$1.40 (budget_usd; $1.5000 spent)"), "{why}");
        let why = budget(None, Some(1.4), Some(price))
            .exceeded(0, &Usage::default(), 1.0)
            .unwrap();
        assert!(
            why.contains("$1.5000 spent"),
            "subagents' cost counts: {why}"
        );
        let why = budget(None, Some(1.0), None)
            .exceeded(0, &Usage::default(), 0.0)
            .unwrap();
        assert!(why.contains("no known prices"), "{why}");
    }
}
