//! Real-time memory: the audio thread never calls the system allocator, the model step included.
//!
//! This module owns three things and touches nothing else:
//! - [`RealtimeAllocator`], the global allocator a real-time program installs (the plugin does).
//!   Inside a model step it serves allocations from that model's [`StepPool`]; everything else
//!   goes to the system allocator, and a system call made on the audio thread is counted (and,
//!   under [`Violation::Abort`], the default in debug builds, reported with a backtrace and
//!   aborts, so the test that caused it fails);
//! - the marks a thread carries: [`audio_thread`] ("no system allocator in here") and
//!   [`StepPool::run`] ("allocations come from this pool now");
//! - the pools: memory reserved and touched off the audio thread when a model loads, handed out
//!   by a TLSF allocator (`rlsf`): constant-time allocate and free, bounded fragmentation, no
//!   lock, no system call.
//!
//! tract allocates inside every step (about 84 times for a 2 x 256 model) and keeps scratch
//! buffers in thread-locals that outlive the model that made them. So a pool's memory is never
//! given back to the system: a dropped model's pool goes on a free list for the next model, and
//! a scratch buffer tract keeps on the audio thread stays valid memory whatever becomes of its
//! model. Pool memory freed by a thread that is not running that pool (a model dropped on a
//! background thread) goes on the pool's lock-free list of deferred frees, which the pool's next
//! run hands back to the TLSF.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::{Cell, UnsafeCell};
use std::ptr::{self, NonNull};
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::Mutex;

use rlsf::Tlsf;

/// First-level lists up to blocks of 32 << 24 bytes (512 MiB), 32 second-level lists each.
type PoolTlsf = Tlsf<'static, u32, u32, 24, 32>;

/// Pool allocations are at least this long and this aligned, so that a freed block can carry a
/// deferred-free entry ([`Deferred`]).
const MIN_BLOCK: usize = 24;
const MIN_ALIGN: usize = 8;
/// rlsf's block granularity and header on 64-bit targets: what a block really takes, for the
/// pool's accounting.
const BLOCK_GRANULARITY: usize = 32;
const BLOCK_HEADER: usize = 16;
/// Pools live as long as the process; this many at most (a DAW with a hundred instances, each
/// switching models, stays far below).
pub const MAX_POOLS: usize = 256;

/// What to do when the system allocator is called on the audio thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    /// Count it (release builds: the music goes on, the counter shows it).
    Count,
    /// Count it, print what was asked and a backtrace to stderr, and abort (debug builds: the
    /// test that caused it fails, pointing at the culprit).
    Abort,
}

static INSTALLED: AtomicBool = AtomicBool::new(false);
static ABORT_ON_VIOLATION: AtomicBool = AtomicBool::new(cfg!(debug_assertions));
static SYSTEM_CALLS_ON_AUDIO_THREAD: AtomicU64 = AtomicU64::new(0);
static POOL_EXHAUSTED: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// The pool this thread allocates from, while it runs one.
    static CURRENT_POOL: Cell<*const Pool> = const { Cell::new(ptr::null()) };
    /// Nesting depth of [`audio_thread`] on this thread.
    static AUDIO_DEPTH: Cell<u32> = const { Cell::new(0) };
    /// Set while a violation is being reported, so the report itself may allocate.
    static REPORTING: Cell<bool> = const { Cell::new(false) };
    /// While [`measure_peak`] runs: bytes this thread holds from the system allocator, and the
    /// most it held, in pool-block terms.
    static MEASURING: Cell<bool> = const { Cell::new(false) };
    static MEASURED: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

/// The global allocator of a real-time program: `#[global_allocator] static A: RealtimeAllocator
/// = RealtimeAllocator;`. Without it, pools reserve nothing and model steps use the system
/// allocator (the trainer's case: nothing there is real-time).
pub struct RealtimeAllocator;

unsafe impl GlobalAlloc for RealtimeAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match pool_allocation(layout) {
            Some(block) => block,
            None => unsafe { System.alloc(layout) },
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        match pool_allocation(layout) {
            Some(block) => {
                unsafe { ptr::write_bytes(block, 0, layout.size()) };
                block
            }
            None => unsafe { System.alloc_zeroed(layout) },
        }
    }

    unsafe fn dealloc(&self, block: *mut u8, layout: Layout) {
        if let Some(pool) = pool_of(block) {
            unsafe { pool.free(block, layout) };
            return;
        }
        system_call("free", layout.size());
        measure(-(charge(layout) as isize));
        unsafe { System.dealloc(block, layout) }
    }

    unsafe fn realloc(&self, block: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        let current = current_pool();
        let owner = pool_of(block);
        match (current, owner) {
            (Some(current), Some(owner)) if ptr::eq(current, owner) => {
                if let Some(moved) = unsafe { current.reallocate(block, layout, new_layout) } {
                    return moved;
                }
            }
            (None, None) => {
                system_call("reallocation", new_size);
                measure(charge(new_layout) as isize - charge(layout) as isize);
                return unsafe { System.realloc(block, layout, new_size) };
            }
            _ => {}
        }
        // Across kinds of memory (a system block grown inside a step, a pool block grown
        // outside it): a new block where the current rules say, the bytes, and the old one freed
        // where it came from.
        let moved = unsafe { self.alloc(new_layout) };
        if !moved.is_null() {
            unsafe {
                ptr::copy_nonoverlapping(block, moved, layout.size().min(new_size));
                self.dealloc(block, layout);
            }
        }
        moved
    }
}

/// An allocation from the pool this thread runs, if any and if it has room. Otherwise the
/// caller asks the system, which is checked and measured here first.
fn pool_allocation(layout: Layout) -> Option<*mut u8> {
    if !INSTALLED.load(Ordering::Relaxed) {
        INSTALLED.store(true, Ordering::Relaxed);
    }
    if let Some(pool) = current_pool() {
        if let Some(block) = pool.allocate(layout) {
            return Some(block);
        }
        POOL_EXHAUSTED.fetch_add(1, Ordering::Relaxed);
    }
    system_call("allocation", layout.size());
    measure(charge(layout) as isize);
    None
}

/// Whether this program runs on [`RealtimeAllocator`] (it has allocated through it).
pub fn allocator_installed() -> bool {
    INSTALLED.load(Ordering::Relaxed)
}

/// Runs `f` as the audio thread: from here on, until `f` returns, a call to the system allocator
/// on this thread is a violation. Pool allocations inside a model step are not.
pub fn audio_thread<R>(f: impl FnOnce() -> R) -> R {
    struct Leave;
    impl Drop for Leave {
        fn drop(&mut self) {
            AUDIO_DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
        }
    }
    AUDIO_DEPTH.with(|d| d.set(d.get() + 1));
    let _leave = Leave;
    f()
}

/// Calls to the system allocator made on the audio thread since the process started, by any
/// thread (0 is the only right answer).
pub fn system_calls_on_audio_thread() -> u64 {
    SYSTEM_CALLS_ON_AUDIO_THREAD.load(Ordering::Relaxed)
}

/// Allocations a pool could not serve and the system allocator did, since the process started.
pub fn pool_exhausted_count() -> u64 {
    POOL_EXHAUSTED.load(Ordering::Relaxed)
}

/// Pools made in this process (they are never freed, only reused).
pub fn pool_count() -> usize {
    POOL_COUNT.load(Ordering::Acquire)
}

pub fn set_violation(violation: Violation) {
    ABORT_ON_VIOLATION.store(violation == Violation::Abort, Ordering::Relaxed);
}

fn system_call(what: &str, bytes: usize) {
    if AUDIO_DEPTH.with(Cell::get) == 0 || REPORTING.with(Cell::get) {
        return;
    }
    SYSTEM_CALLS_ON_AUDIO_THREAD.fetch_add(1, Ordering::Relaxed);
    if ABORT_ON_VIOLATION.load(Ordering::Relaxed) {
        REPORTING.with(|r| r.set(true));
        eprintln!(
            "continuo: {what} of {bytes} bytes from the system allocator on the audio thread, at\n{}",
            std::backtrace::Backtrace::force_capture()
        );
        std::process::abort();
    }
}

/// Runs `f` and returns, beside its result, the most memory it held at once from the system
/// allocator on this thread, counted as pool blocks: what a pool must hold to run `f` in it.
/// Needs [`RealtimeAllocator`]; without it the answer is 0.
pub fn measure_peak<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let was = MEASURING.with(|m| m.replace(true));
    let before = MEASURED.with(|m| m.replace((0, 0)));
    let result = f();
    let (_, peak) = MEASURED.with(|m| m.replace(before));
    MEASURING.with(|m| m.set(was));
    (result, peak.max(0) as usize)
}

fn measure(bytes: isize) {
    if MEASURING.with(Cell::get) {
        MEASURED.with(|m| {
            let (held, peak) = m.get();
            let held = held + bytes;
            m.set((held, peak.max(held)));
        });
    }
}

/// What a request takes from a pool: its layout as the pool rounds it, plus rlsf's header,
/// rounded to rlsf's granularity.
fn charge(layout: Layout) -> usize {
    (layout.size().max(MIN_BLOCK) + BLOCK_HEADER).next_multiple_of(BLOCK_GRANULARITY)
}

fn pool_layout(layout: Layout) -> Layout {
    // Safety: the size only grows to a small constant and the alignment to 8, a power of two.
    unsafe { Layout::from_size_align_unchecked(layout.size().max(MIN_BLOCK), layout.align().max(MIN_ALIGN)) }
}

fn current_pool() -> Option<&'static Pool> {
    let pool = CURRENT_POOL.with(Cell::get);
    // Safety: pools are never freed.
    (!pool.is_null()).then(|| unsafe { &*pool })
}

/// Every pool ever made, in order; a slot once filled never changes.
static POOLS: [AtomicPtr<Pool>; MAX_POOLS] = [const { AtomicPtr::new(ptr::null_mut()) }; MAX_POOLS];
static POOL_COUNT: AtomicUsize = AtomicUsize::new(0);
/// Pools no model uses now, for the next one.
static IDLE_POOLS: Mutex<Vec<&'static Pool>> = Mutex::new(Vec::new());

/// The pool that owns this address, if any.
fn pool_of(block: *mut u8) -> Option<&'static Pool> {
    let address = block as usize;
    if let Some(pool) = current_pool() {
        if pool.contains(address) {
            return Some(pool);
        }
    }
    let count = POOL_COUNT.load(Ordering::Acquire);
    POOLS[..count].iter().find_map(|slot| {
        let pool = slot.load(Ordering::Acquire);
        // Safety: pools are never freed; a filled slot holds a whole pool.
        (!pool.is_null()).then(|| unsafe { &*pool }).filter(|p| p.contains(address))
    })
}

/// A freed block waiting on a pool's deferred list: written into the block itself.
struct Deferred {
    next: *mut Deferred,
    size: usize,
    align: usize,
}

/// What only the thread running the pool touches.
struct PoolState {
    tlsf: PoolTlsf,
    /// Bytes taken, as [`charge`] counts them, and the most since the run began.
    in_use: usize,
    peak: usize,
}

struct Pool {
    start: usize,
    end: usize,
    state: UnsafeCell<PoolState>,
    /// Frees from threads not running the pool, for the next run to hand back, and the bytes
    /// they will give back.
    deferred: AtomicPtr<Deferred>,
    deferred_bytes: AtomicUsize,
    /// A thread runs the pool: only that one touches `state`.
    running: AtomicBool,
}

// Safety: `state` is touched only by the thread running the pool (`running`, and a `StepPool`
// is its one owner, borrowed mutably to run); other threads only push on `deferred`, atomically.
unsafe impl Sync for Pool {}

impl Pool {
    fn contains(&self, address: usize) -> bool {
        (self.start..self.end).contains(&address)
    }

    #[allow(clippy::mut_from_ref)]
    fn state(&self) -> &mut PoolState {
        // Safety: called only by the thread running the pool (see `Sync`), one borrow at a time.
        unsafe { &mut *self.state.get() }
    }

    fn allocate(&self, layout: Layout) -> Option<*mut u8> {
        let state = self.state();
        let block = state.tlsf.allocate(pool_layout(layout))?;
        state.in_use += charge(layout);
        state.peak = state.peak.max(state.in_use);
        Some(block.as_ptr())
    }

    /// Frees a block of this pool: now when this thread runs the pool, else later.
    unsafe fn free(&self, block: *mut u8, layout: Layout) {
        if current_pool().is_some_and(|p| ptr::eq(p, self)) {
            unsafe { self.release(block, layout.size(), layout.align()) };
        } else {
            let entry = block as *mut Deferred;
            let mut head = self.deferred.load(Ordering::Relaxed);
            loop {
                // Safety: the block is ours again and at least MIN_BLOCK long and MIN_ALIGN aligned.
                unsafe { entry.write(Deferred { next: head, size: layout.size(), align: layout.align() }) };
                match self.deferred.compare_exchange_weak(head, entry, Ordering::Release, Ordering::Relaxed) {
                    Ok(_) => break,
                    Err(now) => head = now,
                }
            }
            self.deferred_bytes.fetch_add(charge(layout), Ordering::Relaxed);
        }
    }

    unsafe fn release(&self, block: *mut u8, size: usize, align: usize) {
        let state = self.state();
        let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
        state.in_use = state.in_use.saturating_sub(charge(layout));
        // Safety: the block came from this TLSF with this alignment, rounded the same way.
        unsafe { state.tlsf.deallocate(NonNull::new_unchecked(block), align.max(MIN_ALIGN)) };
    }

    unsafe fn reallocate(&self, block: *mut u8, layout: Layout, new_layout: Layout) -> Option<*mut u8> {
        let state = self.state();
        // Safety: the block came from this TLSF with this alignment.
        let moved = unsafe { state.tlsf.reallocate(NonNull::new_unchecked(block), pool_layout(new_layout)) }?;
        state.in_use = state.in_use.saturating_sub(charge(layout)) + charge(new_layout);
        state.peak = state.peak.max(state.in_use);
        Some(moved.as_ptr())
    }

    /// Hands the deferred frees back to the TLSF. Only the thread running the pool, or the
    /// holder of the idle list's lock for an idle pool, calls this.
    fn take_deferred(&self) {
        let mut entry = self.deferred.swap(ptr::null_mut(), Ordering::Acquire);
        while !entry.is_null() {
            // Safety: every entry was written by `free` into a block of this pool.
            let Deferred { next, size, align } = unsafe { entry.read() };
            unsafe { self.release(entry as *mut u8, size, align) };
            let layout = unsafe { Layout::from_size_align_unchecked(size, align) };
            self.deferred_bytes.fetch_sub(charge(layout), Ordering::Relaxed);
            entry = next;
        }
    }

    fn capacity(&self) -> usize {
        self.end - self.start
    }
}

/// Memory a model steps in, reserved when it loads: see the module's comment.
pub struct StepPool {
    pool: Option<&'static Pool>,
}

impl std::fmt::Debug for StepPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepPool")
            .field("capacity", &self.capacity())
            .field("in_use", &self.in_use())
            .finish()
    }
}

impl StepPool {
    /// A pool with at least `bytes` free: an idle one when one is large enough, else a new one,
    /// whose pages are written now so that the audio thread never waits on the kernel to map
    /// them. Without [`RealtimeAllocator`] it reserves nothing.
    pub fn reserve(bytes: usize) -> Result<StepPool, String> {
        if !allocator_installed() {
            return Ok(StepPool::none());
        }
        let mut idle = IDLE_POOLS.lock().unwrap_or_else(|e| e.into_inner());
        // What an idle pool still holds: scratch that tract keeps in some thread's locals.
        let free = |pool: &Pool| {
            pool.take_deferred();
            pool.capacity().saturating_sub(pool.state().in_use)
        };
        let fitting = idle
            .iter()
            .enumerate()
            .filter(|(_, p)| free(p) >= bytes)
            .min_by_key(|(_, p)| p.capacity())
            .map(|(i, _)| i);
        if let Some(index) = fitting {
            return Ok(StepPool { pool: Some(idle.swap_remove(index)) });
        }
        let index = POOL_COUNT.load(Ordering::Acquire);
        if index == MAX_POOLS {
            return Err(format!(
                "{MAX_POOLS} models hold real-time memory in this process already; close some instances"
            ));
        }
        // A quarter more than asked: a pool outlives its model and keeps what tract's thread-local
        // scratch holds of it, and the next model asks as much.
        let size = (bytes + bytes / 4).next_multiple_of(4096);
        let layout = Layout::from_size_align(size, 4096).map_err(|e| e.to_string())?;
        // Safety: a non-zero size.
        let memory = unsafe { System.alloc(layout) };
        if memory.is_null() {
            return Err(format!("cannot reserve {} KiB of real-time memory", size / 1024));
        }
        // Touch every page now, off the audio thread.
        unsafe { ptr::write_bytes(memory, 0, size) };
        let mut tlsf = PoolTlsf::new();
        // Safety: the block is ours for the life of the process and outlives the TLSF.
        unsafe {
            tlsf.insert_free_block_ptr(NonNull::slice_from_raw_parts(NonNull::new_unchecked(memory), size))
        };
        let pool: &'static Pool = Box::leak(Box::new(Pool {
            start: memory as usize,
            end: memory as usize + size,
            state: UnsafeCell::new(PoolState { tlsf, in_use: 0, peak: 0 }),
            deferred: AtomicPtr::new(ptr::null_mut()),
            deferred_bytes: AtomicUsize::new(0),
            running: AtomicBool::new(false),
        }));
        POOLS[index].store(pool as *const Pool as *mut Pool, Ordering::Release);
        POOL_COUNT.store(index + 1, Ordering::Release);
        Ok(StepPool { pool: Some(pool) })
    }

    /// No pool: steps allocate from the system (see [`StepPool::is_reserved`]).
    pub fn none() -> StepPool {
        StepPool { pool: None }
    }

    /// Runs `f` with every allocation of this thread served from this pool.
    pub fn run<R>(&mut self, f: impl FnOnce() -> R) -> R {
        let Some(pool) = self.pool else { return f() };
        struct Leave(*const Pool, &'static Pool);
        impl Drop for Leave {
            fn drop(&mut self) {
                CURRENT_POOL.with(|c| c.set(self.0));
                self.1.running.store(false, Ordering::Release);
            }
        }
        let was_running = pool.running.swap(true, Ordering::Acquire);
        debug_assert!(!was_running, "a pool runs on one thread at a time");
        let previous = CURRENT_POOL.with(|c| c.replace(pool));
        let _leave = Leave(previous, pool);
        pool.take_deferred();
        let state = pool.state();
        state.peak = state.in_use;
        f()
    }

    /// Bytes the pool holds in all.
    pub fn capacity(&self) -> usize {
        self.pool.map_or(0, Pool::capacity)
    }

    /// Bytes taken now (memory freed on other threads is not, though the next run hands it
    /// back to the allocator only then).
    pub fn in_use(&self) -> usize {
        self.pool.map_or(0, |p| p.state().in_use.saturating_sub(p.deferred_bytes.load(Ordering::Relaxed)))
    }

    /// The most taken at once during the last [`StepPool::run`].
    pub fn peak_of_last_run(&self) -> usize {
        self.pool.map_or(0, |p| p.state().peak)
    }

    /// Bytes still free (0 without a pool).
    pub fn free(&self) -> usize {
        self.capacity().saturating_sub(self.in_use())
    }

    /// Whether allocations inside [`StepPool::run`] come from this pool.
    pub fn is_reserved(&self) -> bool {
        self.pool.is_some()
    }
}

impl Drop for StepPool {
    fn drop(&mut self) {
        if let Some(pool) = self.pool.take() {
            IDLE_POOLS.lock().unwrap_or_else(|e| e.into_inner()).push(pool);
        }
    }
}
