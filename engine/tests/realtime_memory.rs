//! The model step on the real-time allocator, as the plugin runs it: no call to the system
//! allocator on the audio thread, a full pool refuses a step instead of reaching for the system,
//! memory freed on other threads comes back, and pools are reused rather than freed.

use std::sync::Mutex;

use continuo_engine::model::{self, Model, ModelInfo, ModelShape, ModelWeights, StepMemory};
use continuo_engine::realtime_memory::{self, RealtimeAllocator, Violation};

#[global_allocator]
static ALLOCATOR: RealtimeAllocator = RealtimeAllocator;

/// The counters are the process's: these tests take turns.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const SHAPE: ModelShape =
    ModelShape { layers: 2, hidden: 64, embed: 16, dense: 32, vocab: 384, harmony: None };

fn model(memory: StepMemory) -> Model {
    let bytes =
        model::write(&ModelWeights::random(&SHAPE, 3, 0.5), &ModelInfo::new("pooled", SHAPE)).unwrap();
    Model::load_with_memory(&bytes, "pooled.onnx", memory).unwrap()
}

/// Runs `steps` model steps as the audio thread; returns the system allocator calls they made.
fn system_calls_in_steps(model: &mut Model, steps: usize) -> u64 {
    let mut state = model.initial_state();
    let mut logits = vec![0.0; SHAPE.vocab];
    let before = realtime_memory::system_calls_on_audio_thread();
    realtime_memory::audio_thread(|| {
        for i in 0..steps {
            model.step((i * 7 % SHAPE.vocab) as u32, &mut state, &mut logits).unwrap();
        }
    });
    realtime_memory::system_calls_on_audio_thread() - before
}

fn serial() -> std::sync::MutexGuard<'static, ()> {
    realtime_memory::set_violation(Violation::Count);
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn a_pooled_step_never_calls_the_system_allocator() {
    let _turn = serial();
    let mut model = model(StepMemory::Pool);
    let (capacity, _) = model.memory();
    assert!(capacity >= 256 * 1024, "a pool of {capacity} bytes");
    assert_eq!(system_calls_in_steps(&mut model, 1000), 0);
    // On a thread that never ran tract: its first step sets up tract's per-thread scratch, from
    // the pool as well.
    let calls = std::thread::spawn(move || system_calls_in_steps(&mut model, 100)).join().unwrap();
    assert_eq!(calls, 0, "a fresh audio thread's first steps");
}

#[test]
fn a_step_on_the_system_allocator_is_caught() {
    let _turn = serial();
    let mut model = model(StepMemory::System);
    assert_eq!(model.memory().0, 0, "no pool");
    let calls = system_calls_in_steps(&mut model, 100);
    // tract allocates and frees dozens of times a step.
    assert!(calls >= 100 * 20, "{calls} system calls in 100 steps");

    let before = realtime_memory::system_calls_on_audio_thread();
    let boxed = realtime_memory::audio_thread(|| Box::new([0u8; 64]));
    drop(boxed);
    assert_eq!(realtime_memory::system_calls_on_audio_thread() - before, 1, "one allocation, counted");
}

#[test]
fn a_full_pool_refuses_the_step_instead_of_calling_the_system() {
    let _turn = serial();
    let mut model = model(StepMemory::Pool);
    assert!(model.has_room_for_step());
    // Fill the pool until it has to turn an allocation down.
    let hog = model.run_in_step_memory(|| {
        let mut hog: Vec<Box<[u8; 1024]>> = Vec::with_capacity(4096);
        let exhausted = realtime_memory::pool_exhausted_count();
        while realtime_memory::pool_exhausted_count() == exhausted {
            hog.push(Box::new([1; 1024]));
        }
        hog
    });
    assert!(!model.has_room_for_step(), "{:?} with {} KiB taken", model.memory(), hog.len());
    // A real-time caller asks first, and skips the step: nothing reaches the system.
    let before = realtime_memory::system_calls_on_audio_thread();
    let refused = realtime_memory::audio_thread(|| !model.has_room_for_step());
    assert!(refused);
    assert_eq!(realtime_memory::system_calls_on_audio_thread(), before);
    let mut state = model.initial_state();
    let error = model.step(1, &mut state, &mut vec![0.0; SHAPE.vocab]).unwrap_err();
    assert!(error.to_string().contains("no room for a step"), "{error}");
    // Freed outside the pool's run: back at the next run, and the model steps again.
    drop(hog);
    assert_eq!(system_calls_in_steps(&mut model, 10), 0);
    assert!(model.has_room_for_step());
}

#[test]
fn memory_freed_on_another_thread_comes_back_to_the_pool() {
    let _turn = serial();
    let mut model = model(StepMemory::Pool);
    let mut state = model.initial_state();
    let mut logits = vec![0.0; SHAPE.vocab];
    model.step(5, &mut state, &mut logits).unwrap();
    let settled = model.memory().1;
    // States made in the pool, dropped on another thread: their tensors go on the pool's list.
    let mut held = Vec::new();
    for token in 0..50 {
        model.step(token, &mut state, &mut logits).unwrap();
        held.push(state.clone());
    }
    // The loop ran inside the pool: the list of states is system memory (allocated here, not
    // on an audio thread), the tensors are the pool's.
    assert!(model.memory().1 > settled);
    std::thread::spawn(move || drop(held)).join().unwrap();
    model.step(6, &mut state, &mut logits).unwrap();
    let after = model.memory().1;
    assert!(after <= settled + 4096, "{after} bytes in use after the frees came back, {settled} before");
}

#[test]
fn a_dropped_models_pool_serves_the_next_model() {
    let _turn = serial();
    drop(model(StepMemory::Pool));
    let pools = realtime_memory::pool_count();
    for _ in 0..5 {
        let mut model = model(StepMemory::Pool);
        assert_eq!(system_calls_in_steps(&mut model, 20), 0);
    }
    assert_eq!(realtime_memory::pool_count(), pools, "pools are reused, not made anew");
}
