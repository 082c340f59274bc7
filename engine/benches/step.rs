//! Cost of one model step, the unit of work the plugin spends on the audio thread.
//!
//! `cargo bench -p continuo-engine --bench step` prints, for the contract's graph at several
//! sizes (the default L=2, H=256, E=128, V=384 among them), the median, p99 and worst time per
//! step, the heap allocations and bytes tract makes per step, and the median step's share of
//! the tightest block budget the plugin meets (64 samples at 48 kHz = 1333 us).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use continuo_engine::model::{self, Model, ModelInfo, ModelShape, ModelWeights};

struct CountingAllocator;
static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);
static BYTES: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        BYTES.fetch_add(layout.size(), Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const BLOCK_BUDGET_US: f64 = 64.0 / 48_000.0 * 1e6;
const WARMUP: usize = 200;
const STEPS: usize = 5_000;

fn main() {
    let shapes = [
        ("small", ModelShape { layers: 1, hidden: 128, embed: 64, dense: 128, vocab: 384, harmony: None }),
        ("default", ModelShape { layers: 2, hidden: 256, embed: 128, dense: 256, vocab: 384, harmony: None }),
        ("large", ModelShape { layers: 3, hidden: 512, embed: 128, dense: 256, vocab: 384, harmony: None }),
    ];
    println!(
        "{:<8} {:>6} {:>9} {:>11} {:>9} {:>9} {:>9} {:>12} {:>12} {:>9}",
        "model",
        "L x H",
        "params",
        "median us",
        "p99 us",
        "worst us",
        "steps/s",
        "allocs/step",
        "bytes/step",
        "budget"
    );
    for (name, shape) in shapes {
        let weights = ModelWeights::random(&shape, 1, 0.1);
        let bytes = model::write(&weights, &ModelInfo::new(name, shape)).expect("the graph writes");
        let mut model = Model::load(&bytes, name).expect("the graph loads");
        let mut state = model.initial_state();
        let mut logits = vec![0.0; shape.vocab];
        for i in 0..WARMUP {
            model.step((i % shape.vocab) as u32, &mut state, &mut logits).unwrap();
        }
        let mut times = Vec::with_capacity(STEPS);
        let (a0, b0) = (ALLOCATIONS.load(Ordering::Relaxed), BYTES.load(Ordering::Relaxed));
        for i in 0..STEPS {
            let token = ((i * 131) % shape.vocab) as u32;
            let start = Instant::now();
            model.step(token, &mut state, &mut logits).unwrap();
            times.push(start.elapsed().as_secs_f64() * 1e6);
        }
        // `times` was allocated before counting, so what was counted is tract's.
        let allocations = (ALLOCATIONS.load(Ordering::Relaxed) - a0) as f64 / STEPS as f64;
        let bytes = (BYTES.load(Ordering::Relaxed) - b0) as f64 / STEPS as f64;
        times.sort_by(f64::total_cmp);
        let median = times[STEPS / 2];
        let p99 = times[STEPS * 99 / 100];
        let worst = times[STEPS - 1];
        println!(
            "{:<8} {:>6} {:>9} {:>11.1} {:>9.1} {:>9.1} {:>9.0} {:>12.1} {:>12.0} {:>8.1}%",
            name,
            format!("{}x{}", shape.layers, shape.hidden),
            shape.parameter_count(),
            median,
            p99,
            worst,
            1e6 / median,
            allocations,
            bytes,
            100.0 * median / BLOCK_BUDGET_US
        );
    }
    println!("budget: the median step as a share of one 64-sample block at 48 kHz ({BLOCK_BUDGET_US:.0} us)");
}
