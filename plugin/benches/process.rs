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
    return counting::ALLOCATIONS.load(Ordering::Relaxed);
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
        "{:>6} {:>8} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8} {:>13} {:>13} {:>11} {:>12}",
        "block",
        "blocks",
        "median us",
        "p99.9 us",
        "worst us",
        "budget",
        "worst %",
        "steps/s",
        "dense steps/s",
        "max steps/blk",
        "allocs/blk",
        "allocs/step"
    );
    for samples in [64usize, 512] {
        let model = Model::load(continuo::DEFAULT_MODEL, "default").expect("the embedded model loads");
        let mut player =
            Player::new(model, params.generator_settings(), params.output_settings(), Default::default())
                .expect("player");
        let beats_per_block = samples as f64 / (SAMPLE_RATE as f64 * 60.0 / TEMPO);
        let blocks = (BARS * 4.0 / beats_per_block) as usize;
        let mut times = Vec::with_capacity(blocks);
        let mut steps_per_block = Vec::with_capacity(blocks);
        let monitor = player.monitor().clone();
        let meters = &monitor.meters;
        let allocations_before = allocations();
        for i in 0..blocks {
            let steps_before = meters.model_steps.load(Ordering::Relaxed);
            let transport = BlockTransport {
                playing: true,
                tempo: Some(TEMPO),
                pos_beats: Some(i as f64 * beats_per_block),
                sample_rate: SAMPLE_RATE,
                samples,
                time_signature: Some((4, 4)),
                bar_start: None,
            };
            let start = Instant::now();
            player.process(transport, &mut |_| {});
            times.push(start.elapsed().as_secs_f64() * 1e6);
            steps_per_block.push(meters.model_steps.load(Ordering::Relaxed) - steps_before);
        }
        let allocations = (allocations() - allocations_before) as f64 / blocks as f64;
        let seconds_of_music = BARS * 4.0 * 60.0 / TEMPO;
        let steps: u64 = steps_per_block.iter().sum();
        // The densest beat: the most model steps any one beat of music took.
        let blocks_per_beat = (1.0 / beats_per_block).round().max(1.0) as usize;
        let densest_beat =
            steps_per_block.chunks(blocks_per_beat).map(|b| b.iter().sum::<u64>()).max().unwrap_or(0);
        let budget_us = samples as f64 / SAMPLE_RATE as f64 * 1e6;
        times.sort_by(f64::total_cmp);
        let (median, tail, worst) = (times[blocks / 2], times[blocks * 999 / 1000], times[blocks - 1]);
        println!(
            "{:>6} {:>8} {:>10.2} {:>9.1} {:>9.1} {:>7.0}us {:>7.1}% {:>8.1} {:>13.1} {:>13} {:>11.2} {:>12.1}",
            samples,
            blocks,
            median,
            tail,
            worst,
            budget_us,
            100.0 * worst / budget_us,
            steps as f64 / seconds_of_music,
            densest_beat as f64 * TEMPO / 60.0,
            steps_per_block.iter().max().unwrap(),
            allocations,
            allocations * blocks as f64 / steps.max(1) as f64
        );
    }
    println!("steps/s: model steps per second of music, on average and in the densest beat;");
    println!("budget: the block's duration at 48 kHz; allocations are all tract's, inside the model step");
}
