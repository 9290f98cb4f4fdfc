//! When the learning rate changes and when a run stops: linear warm-up, the plateau schedule
//! (multiply by `lr_decay` after `lr_patience` validations without a BLEU gain, never below
//! `min_lr`), the cosine schedule over the budget, early stopping after `patience` such
//! validations, and the step and time budgets.

use crate::checkpoint::TrainState;
use crate::config::{Schedule, TrainConfig};

/// The learning rate of the next update: `state.lr`, scaled by step / warmup_steps during
/// warm-up; under the cosine schedule, η_min + (η - η_min)·(1 + cos πp)/2 at the budget's
/// fraction p already spent.
pub fn current_lr(train: &TrainConfig, state: &TrainState) -> f64 {
    let warmup = train.warmup_steps;
    if warmup > 0 && (state.step as usize) < warmup {
        return state.lr * state.step as f64 / warmup as f64;
    }
    match train.schedule {
        Schedule::Cosine => {
            let p = budget_spent(train, state);
            let floor = train.min_lr.min(state.lr);
            floor + (state.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * p).cos())
        }
        Schedule::Plateau | Schedule::Constant => state.lr,
    }
}

/// The fraction of the training budget spent, in [0, 1]: the larger of the step and time
/// fractions (0 without either budget).
fn budget_spent(train: &TrainConfig, state: &TrainState) -> f64 {
    let steps = if train.max_steps > 0 {
        state.step as f64 / train.max_steps as f64
    } else {
        0.0
    };
    let time = if train.time_budget_min > 0.0 {
        state.elapsed_s / (train.time_budget_min * 60.0)
    } else {
        0.0
    };
    steps.max(time).clamp(0.0, 1.0)
}

/// What a validation decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// A new best BLEU: save `best`.
    pub improved: bool,
    /// Early stopping ends the run.
    pub stop: bool,
}

/// Records a validation's BLEU in `state`: the best score, the plateau counter (and the decay
/// it triggers) and the early-stopping counter.
pub fn after_validation(train: &TrainConfig, state: &mut TrainState, bleu: f64) -> Verdict {
    let improved = bleu > state.best_bleu;
    if improved {
        state.best_bleu = bleu;
        state.best_step = state.step;
        state.bad_validations = 0;
        state.plateau_count = 0;
    } else {
        state.bad_validations += 1;
        state.plateau_count += 1;
        if train.schedule == Schedule::Plateau && state.plateau_count >= train.lr_patience {
            state.lr = (state.lr * train.lr_decay).max(train.min_lr);
            state.plateau_count = 0;
        }
    }
    let stop = train.patience > 0 && state.bad_validations >= train.patience;
    Verdict { improved, stop }
}

/// True once `max_steps` updates are done or `time_budget_min` has passed (0 means no limit).
pub fn budget_reached(train: &TrainConfig, state: &TrainState) -> bool {
    (train.max_steps > 0 && state.step as usize >= train.max_steps)
        || (train.time_budget_min > 0.0 && state.elapsed_s >= train.time_budget_min * 60.0)
}

/// True when `valid_every` updates have passed since the last validation point.
pub fn validation_due(train: &TrainConfig, state: &TrainState) -> bool {
    (state.step as usize).is_multiple_of(train.valid_every)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> TrainConfig {
        TrainConfig {
            lr: 1e-3,
            warmup_steps: 0,
            schedule: Schedule::Plateau,
            lr_decay: 0.5,
            lr_patience: 2,
            min_lr: 3e-4,
            patience: 3,
            ..TrainConfig::default()
        }
    }

    #[test]
    fn warm_up_rises_linearly_to_the_rate() {
        let train = TrainConfig {
            warmup_steps: 4,
            ..config()
        };
        let mut state = TrainState::new(1e-3);
        let rates: Vec<f64> = (0..6)
            .map(|step| {
                state.step = step;
                current_lr(&train, &state)
            })
            .collect();
        assert_eq!(rates, [0.0, 2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3]);
        assert_eq!(current_lr(&config(), &state), 1e-3);
    }

    #[test]
    fn plateau_decays_after_lr_patience_and_stops_at_min_lr() {
        let train = config();
        let mut state = TrainState::new(1e-3);
        let mut rates = Vec::new();
        for bleu in [10.0, 9.0, 9.5, 8.0, 7.0, 6.0, 5.0] {
            after_validation(&train, &mut state, bleu);
            rates.push(state.lr);
        }
        // gain, then decays at the 2nd and 4th non-gain; the floor holds at the 6th.
        assert_eq!(rates, [1e-3, 1e-3, 5e-4, 5e-4, 3e-4, 3e-4, 3e-4]);
    }

    #[test]
    fn a_gain_resets_the_counters() {
        let train = config();
        let mut state = TrainState::new(1e-3);
        after_validation(&train, &mut state, 10.0);
        after_validation(&train, &mut state, 9.0);
        state.step = 7;
        let verdict = after_validation(&train, &mut state, 11.0);
        assert_eq!(
            verdict,
            Verdict {
                improved: true,
                stop: false
            }
        );
        assert_eq!((state.best_bleu, state.best_step), (11.0, 7));
        assert_eq!((state.bad_validations, state.plateau_count), (0, 0));
    }

    #[test]
    fn early_stopping_after_patience_validations_without_gain() {
        let train = config();
        let mut state = TrainState::new(1e-3);
        let stops: Vec<bool> = [5.0, 5.0, 4.0, 5.0, 6.0]
            .iter()
            .map(|&bleu| after_validation(&train, &mut state, bleu).stop)
            .collect();
        // an equal score is no gain
        assert_eq!(stops, [false, false, false, true, false]);
        let never = TrainConfig {
            patience: 0,
            ..config()
        };
        let mut state = TrainState::new(1e-3);
        assert!((0..20).all(|_| !after_validation(&never, &mut state, 1.0).stop));
    }

    #[test]
    fn a_constant_schedule_never_decays() {
        let train = TrainConfig {
            schedule: Schedule::Constant,
            ..config()
        };
        let mut state = TrainState::new(1e-3);
        for _ in 0..5 {
            after_validation(&train, &mut state, 0.0);
        }
        assert_eq!(state.lr, 1e-3);
    }

    /// From `lr` at the start, through the midpoint at half the budget, to `min_lr` at its end,
    /// by whichever budget is further along; validations never change it.
    #[test]
    fn cosine_decays_over_the_budget() {
        let train = TrainConfig {
            schedule: Schedule::Cosine,
            max_steps: 100,
            time_budget_min: 10.0,
            ..config()
        };
        let mut state = TrainState::new(1e-3);
        let at = |state: &mut TrainState, step: u64, elapsed_s: f64| {
            state.step = step;
            state.elapsed_s = elapsed_s;
            current_lr(&train, state)
        };
        assert!((at(&mut state, 0, 0.0) - 1e-3).abs() < 1e-12);
        assert!((at(&mut state, 50, 0.0) - 6.5e-4).abs() < 1e-12);
        assert!((at(&mut state, 10, 300.0) - 6.5e-4).abs() < 1e-12);
        let late = at(&mut state, 90, 0.0);
        assert!(late > 3e-4 && late < 3.5e-4, "{late}");
        assert!((at(&mut state, 100, 0.0) - 3e-4).abs() < 1e-12);
        assert!((at(&mut state, 10, 900.0) - 3e-4).abs() < 1e-12);
        for _ in 0..5 {
            after_validation(&train, &mut state, 0.0);
        }
        assert_eq!(state.lr, 1e-3);
        let warm = TrainConfig {
            warmup_steps: 10,
            ..train.clone()
        };
        assert_eq!(at_warm(&warm, 5), 5e-4);
    }

    fn at_warm(train: &TrainConfig, step: u64) -> f64 {
        let mut state = TrainState::new(1e-3);
        state.step = step;
        current_lr(train, &state)
    }

    #[test]
    fn budgets() {
        let mut state = TrainState::new(1e-3);
        state.step = 10;
        state.elapsed_s = 59.0;
        let steps = TrainConfig {
            max_steps: 10,
            ..config()
        };
        let minutes = TrainConfig {
            time_budget_min: 1.0,
            ..config()
        };
        assert!(budget_reached(&steps, &state));
        assert!(!budget_reached(&minutes, &state));
        state.elapsed_s = 60.0;
        assert!(budget_reached(&minutes, &state));
        assert!(!budget_reached(&config(), &state));
    }
}
