//! The step budget: how many model steps a block can afford. A model step runs on the audio
//! thread, so a block may spend only a share of its duration on them, planned for the worst
//! case: what one token (a model step and its sampling) costs here is measured when a player is
//! made, and each block's cap follows from its length, the sample rate and how many instances
//! play in this host (a band shares the thread: [`ActiveInstance`]). Also what the window
//! shows of it: the cost over the last second ([`CostWindow`]), and the smallest block the
//! model can afford.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use continuo_engine::generator::Generator;

use crate::monitor::Monitor;

/// The share of a block's duration that its worst case may take. The rest is the host's: other
/// plugins on the track, the instrument we play into.
pub const STEP_BUDGET: f64 = 0.25;
/// The share that the instances playing in one host take between them: drums, bass and comping
/// on three tracks are three instances, and a host may run them one after another on one
/// thread. Each takes this over their number, at most [`STEP_BUDGET`]: a quarter each for one
/// or two, a sixth each for three.
pub const BAND_BUDGET: f64 = 0.5;
/// How much longer the worst block that steps takes than the tokens' cost at load promises, as
/// the process bench measures it on a 2-core machine: a cold cache after idle blocks, the
/// sampler, the other core's work. Steps are planned at the budget divided by this.
pub const WORST_CASE_FACTOR: f64 = 4.0;
/// Most model steps in one block, however long: a beat of dense music is about 50.
pub const MAX_STEPS_PER_BLOCK: usize = 64;
/// Tokens timed when a player is made, for [`StepBudget::measure`].
const COST_TOKENS: usize = 32;
/// How often the window's cost is recomputed.
const COST_WINDOW: Duration = Duration::from_secs(1);

/// The smallest block, in samples, whose planned worst case for one token fits the budget.
pub fn smallest_block(sample_rate: f32, token_cost: Duration) -> usize {
    (WORST_CASE_FACTOR * token_cost.as_secs_f64() * sample_rate as f64 / STEP_BUDGET).ceil() as usize
}

/// Most model steps one block may run when `instances` play in the host: as many as fit in its
/// share of the block's duration ([`STEP_BUDGET`], [`BAND_BUDGET`]) at `token_cost` each, times
/// [`WORST_CASE_FACTOR`]; at least 1 (a model too slow for the block still plays, and the window
/// says so), at most [`MAX_STEPS_PER_BLOCK`].
pub fn step_cap(samples: usize, sample_rate: f32, token_cost: Duration, instances: usize) -> usize {
    let share = STEP_BUDGET.min(BAND_BUDGET / instances.max(1) as f64);
    let period = samples as f64 / sample_rate as f64;
    let affordable = share * period / (WORST_CASE_FACTOR * token_cost.as_secs_f64().max(1e-9));
    (affordable.floor() as usize).clamp(1, MAX_STEPS_PER_BLOCK)
}

/// Instances of the plugin active in this process.
static ACTIVE_INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// One instance's place in the count of those active in this process, which their step caps
/// share ([`BAND_BUDGET`]): counted in when the host activates it, out when it deactivates or
/// drops it.
#[derive(Debug, Default)]
pub struct ActiveInstance {
    counted: bool,
}

impl ActiveInstance {
    pub fn count_in(&mut self) {
        if !std::mem::replace(&mut self.counted, true) {
            ACTIVE_INSTANCES.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub fn count_out(&mut self) {
        if std::mem::take(&mut self.counted) {
            ACTIVE_INSTANCES.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// How many instances are active in this process (at least 1).
    pub fn all() -> usize {
        ACTIVE_INSTANCES.load(Ordering::Relaxed).max(1)
    }
}

impl Drop for ActiveInstance {
    fn drop(&mut self) {
        self.count_out();
    }
}

/// Blocks that a chord takes to draw at `cap` model steps a block: its note-offs, a velocity
/// and a note-on per voice, and the time shift after it, `3 x voices + 2` tokens at most (the
/// sampler draws no second VELOCITY in a row). What the player plans a reply and a start by.
pub fn blocks_for_a_chord(voices: usize, cap: usize) -> usize {
    (3 * voices + 2).div_ceil(cap.max(1))
}

/// What one token costs with a player's model and sampler, and so each block's cap.
#[derive(Debug, Clone, Copy)]
pub struct StepBudget {
    token_cost: Duration,
}

impl StepBudget {
    /// Times [`COST_TOKENS`] tokens drawn by `generator` and keeps their 90th percentile; the
    /// generator goes back to its start afterwards.
    pub fn measure(generator: &mut Generator) -> Result<StepBudget, String> {
        let mut times = Vec::with_capacity(COST_TOKENS);
        for _ in 0..COST_TOKENS {
            let started = Instant::now();
            generator.next(|_| {}).map_err(|e| e.to_string())?;
            times.push(started.elapsed());
        }
        generator.release_all(|_| {});
        generator.reset().map_err(|e| e.to_string())?;
        times.sort();
        Ok(StepBudget { token_cost: times[COST_TOKENS * 9 / 10] })
    }

    /// A budget for `token_cost` per token, whatever this machine measures: for a test or a
    /// bench that must run at a given cap on any machine.
    pub fn assuming(token_cost: Duration) -> StepBudget {
        StepBudget { token_cost }
    }

    pub fn token_cost(&self) -> Duration {
        self.token_cost
    }

    /// Most model steps a block of `samples` at `sample_rate` may run, `instances` playing.
    pub fn cap(&self, samples: usize, sample_rate: f32, instances: usize) -> usize {
        step_cap(samples, sample_rate, self.token_cost, instances)
    }
}

/// The model's cost over the last second, from the audio thread's counters.
#[derive(Debug, Default, Clone, Copy)]
pub struct Cost {
    pub mean_step_micros: f64,
    pub worst_block_micros: f64,
    pub steps_per_second: f64,
    pub worst_block_share: f64,
}

/// Turns the audio thread's running totals into the cost of the last [`COST_WINDOW`], for the
/// window.
pub struct CostWindow {
    since: Instant,
    steps: u64,
    nanos: u64,
    shown: Option<Cost>,
}

impl CostWindow {
    pub fn new(monitor: &Monitor) -> CostWindow {
        let m = &monitor.meters;
        CostWindow {
            since: Instant::now(),
            steps: m.model_steps.load(Ordering::Relaxed),
            nanos: m.step_nanos.load(Ordering::Relaxed),
            shown: None,
        }
    }

    /// The cost to show: that of the last window, once one has passed with the model stepping.
    pub fn shown(&self) -> Option<Cost> {
        self.shown
    }

    pub fn update(&mut self, monitor: &Monitor) {
        let elapsed = self.since.elapsed();
        if elapsed < COST_WINDOW {
            return;
        }
        let m = &monitor.meters;
        let (steps, nanos) = (m.model_steps.load(Ordering::Relaxed), m.step_nanos.load(Ordering::Relaxed));
        let worst = m.worst_block_nanos.swap(0, Ordering::Relaxed) as f64;
        let budget = m.block_budget_nanos.load(Ordering::Relaxed).max(1) as f64;
        let (d_steps, d_nanos) = (steps - self.steps, nanos - self.nanos);
        self.shown = (d_steps > 0).then(|| Cost {
            mean_step_micros: d_nanos as f64 / d_steps as f64 / 1e3,
            worst_block_micros: worst / 1e3,
            steps_per_second: d_steps as f64 / elapsed.as_secs_f64(),
            worst_block_share: worst / budget,
        });
        (self.since, self.steps, self.nanos) = (Instant::now(), steps, nanos);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_step_cap_plans_for_the_worst_case_within_a_quarter_of_the_block_or_a_bands_share() {
        let token = Duration::from_micros(20);
        // 64 samples at 48 kHz last 1333 us: 333 us for the worst case, 4 times the tokens.
        assert_eq!(step_cap(64, 48_000.0, token, 1), 4);
        assert_eq!(step_cap(512, 48_000.0, token, 1), 33);
        assert_eq!(step_cap(8192, 48_000.0, token, 1), MAX_STEPS_PER_BLOCK);
        // Two instances keep their quarter; three in a band share half: a sixth each.
        assert_eq!(step_cap(512, 48_000.0, token, 2), 33);
        assert_eq!(step_cap(512, 48_000.0, token, 3), 22);
        // A model too slow for the block still steps, once.
        assert_eq!(step_cap(32, 48_000.0, Duration::from_millis(1), 1), 1);
        assert_eq!(smallest_block(48_000.0, token), 16);
        // Four voices: 14 tokens, 7 blocks at 2 steps a block, 1 at a full cap.
        assert_eq!((blocks_for_a_chord(4, 2), blocks_for_a_chord(4, 64)), (7, 1));
    }
}
