//! `set_budget`: the session's limits, checked by every turn before each
//! provider round (`engine/budget.rs`).

use crate::error::Coded;
use crate::host::pending::Token;
use crate::host::Host;
use crate::protocol::{BudgetResponse, ErrorCode, Response, SetBudgetParams};

impl Host {
    pub(super) async fn set_budget(&mut self, token: Token, params: SetBudgetParams) {
        let answer = updated(self.settings.budget, params).map(|budget| {
            self.settings.budget = budget;
            Response::SetBudget(budget)
        });
        self.answer(token, answer).await;
    }
}

/// `budget` with the fields `params` names replaced; out-of-range values
/// are refused whole, so a bad command changes nothing.
fn updated(mut budget: BudgetResponse, params: SetBudgetParams) -> Result<BudgetResponse, Coded> {
    if let Some(max_turns) = params.max_turns {
        if max_turns == Some(0) {
            return Err(invalid(
                "max_turns must be at least 1 (or null for no limit)",
            ));
        }
        budget.max_turns = max_turns;
    }
    if let Some(usd) = params.budget_usd {
        if usd.is_some_and(|usd| !usd.is_finite() || usd <= 0.0) {
            return Err(invalid("budget_usd must be above 0 (or null for no limit)"));
        }
        budget.budget_usd = usd;
    }
    Ok(budget)
}

fn invalid(message: &str) -> Coded {
    Coded::new(ErrorCode::InvalidParams, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_keeps_null_lifts_and_bad_values_change_nothing() {
        let start = BudgetResponse {
            max_turns: Some(5),
            budget_usd: Some(1.0),
        };
        let keep = updated(start, SetBudgetParams::default()).unwrap();
        assert_eq!(keep, start);
        let lift = SetBudgetParams {
            max_turns: Some(None),
            budget_usd: Some(Some(0.25)),
        };
        let lifted = updated(start, lift).unwrap();
        assert_eq!(lifted.max_turns, None);
        assert_eq!(lifted.budget_usd, Some(0.25));
        for bad in [
            SetBudgetParams {
                max_turns: Some(Some(0)),
                budget_usd: None,
            },
            SetBudgetParams {
                max_turns: Some(Some(3)),
                budget_usd: Some(Some(-1.0)),
            },
        ] {
            assert_eq!(
                updated(start, bad).unwrap_err().code,
                ErrorCode::InvalidParams
            );
        }
    }
}
