//! What the plugin costs the audio thread:
//! `cargo bench -p continuo --bench process --no-default-features` (without the allocation
//! assertions, whose global allocator would replace the counting one here).
//!
//! Drives the plugin's `Player` (everything `process()` does but the nice-plug glue) with the
//! embedded default model, as a host playing 64 bars at 120 BPM and 48 kHz would, and prints per
//! block size: median and worst block time, the share of the block's duration, model steps per
//! second of music, and heap allocations per block (all of them tract's, inside the model step).
//! The densest passage is the block with the most model steps.

#[cfg(not(feature = "assert-process-allocs"))]
use std::alloc::{GlobalAlloc, Layout, System};
#[cfg(not(feature = "assert-process-allocs"))]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
use std::time::Instant;

use continuo::params::ContinuoParams;
use continuo::player::{BlockTransport, Player};
use continuo_engine::model::Model;

/// Counts heap allocations, when nice-plug's own checking allocator is not installed.
#[cfg(not(feature = "assert-process-allocs"))]
mod counting {
    use super::*;

    pub static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

    struct CountingAllocator;

    unsafe impl GlobalAlloc for CountingAllocator {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            unsafe { System.dealloc(ptr, layout) }
        }
    }

    #[global_allocator]
    static ALLOCATOR: CountingAllocator = CountingAllocator;
}

fn allocations() -> usize {
    #[cfg(not(feature = "assert-process-allocs"))]
    return counting::allocations();
    #[cfg(feature = "assert-process-allocs")]
    return 0;
}

const SAMPLE_RATE: f32 = 48_000.0;
const TEMPO: f64 = 120.0;
const BARS: f64 = 64.0;

fn main() {
    if cfg!(feature = "assert-process-allocs") {
        println!("(allocations are not counted: run with --no-default-features)");
    }
    let params = ContinuoParams::default();
    println!(
        "{:>6} {:>8} {:>11} {:>10} {:>10} {:>12} {:>12} {:>13} {:>13}",
        "block",
        "blocks",
        "median us",
        "worst us",
        "budget",
        "worst share",
        "steps/s",
        "allocs/block",
        "max steps/blk"
    );
    for samples in [64usize, 512] {
        let model = Model::load(continuo::DEFAULT_MODEL, "default").expect("the embedded model loads");
        let mut player =
            Player::new(model, params.generator_settings(), params.output_settings()).expect("player");
        let beats_per_block = samples as f64 / (SAMPLE_RATE as f64 * 60.0 / TEMPO);
        let blocks = (BARS * 4.0 / beats_per_block) as usize;
        let mut times = Vec::with_capacity(blocks);
        let mut steps_per_block = Vec::with_capacity(blocks);
        let meters = player.meters();
        let allocations_before = allocations();
        for i in 0..blocks {
            let steps_before = meters.model_steps.load(Ordering::Relaxed);
            let transport = BlockTransport {
                playing: true,
                tempo: Some(TEMPO),
                pos_beats: Some(i as f64 * beats_per_block),
                sample_rate: SAMPLE_RATE,
                samples,
            };
            let start = Instant::now();
            player.process(transport, &mut |_| {});
            times.push(start.elapsed().as_secs_f64() * 1e6);
            steps_per_block.push(meters.model_steps.load(Ordering::Relaxed) - steps_before);
        }
        let allocations = (allocations() - allocations_before) as f64 / blocks as f64;
        let seconds_of_music = BARS * 4.0 * 60.0 / TEMPO;
        let steps: u64 = steps_per_block.iter().sum();
        let budget_us = samples as f64 / SAMPLE_RATE as f64 * 1e6;
        times.sort_by(f64::total_cmp);
        let (median, worst) = (times[blocks / 2], times[blocks - 1]);
        println!(
            "{:>6} {:>8} {:>11.2} {:>10.1} {:>8.0}us {:>11.1}% {:>12.0} {:>13.2} {:>13}",
            samples,
            blocks,
            median,
            worst,
            budget_us,
            100.0 * worst / budget_us,
            steps as f64 / seconds_of_music,
            allocations,
            steps_per_block.iter().max().unwrap()
        );
    }
    println!("steps/s: model steps per second of music; budget: the block's duration at 48 kHz");
}
