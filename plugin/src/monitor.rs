//! What the audio thread reports to the rest of the plugin: counters and transport
//! ([`Meters`]) and every note played or received ([`NoteLog`]). The audio thread only writes
//! here, with atomics and a lock-free queue, never waiting on a reader; the editor reads.

use continuo_engine::harmony::Harmony;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam::queue::ArrayQueue;

use crate::transport::{OwnTransport, TransportState};

/// Counters the editor and the tests read, written by the audio thread with relaxed atomics.
#[derive(Debug, Default)]
pub struct Meters {
    pub model_steps: AtomicU64,
    pub blocks: AtomicU64,
    pub notes_on: AtomicU64,
    pub notes_off: AtomicU64,
    /// Note-ons that fell due before generation reached them: skipped, since playing them late
    /// would put them off the grid (their note-offs are skipped with them).
    pub late_events: AtomicU64,
    /// Model steps not run because the model's real-time memory had no room (its notes ended).
    pub refused_steps: AtomicU64,
    /// Times the music started again from its beginning: play from stop, a jump, a loop.
    pub restarts: AtomicU64,
    /// Times the clock followed the host's drift without restarting the music.
    pub resyncs: AtomicU64,
    /// What one token of the playing model costs (a model step and its sampling), in
    /// nanoseconds (the 90th percentile of those timed when its player was made), and the sample
    /// rate the host runs at: whether small blocks can afford the model.
    pub token_cost_nanos: AtomicU64,
    pub sample_rate_hz: AtomicU64,
    /// Events the host's buffer had no room for.
    pub dropped_events: AtomicU64,
    /// Musician's notes a listening model did not hear: drums into a melodic model, or more
    /// notes in a block than its model steps allow.
    pub unheard_notes: AtomicU64,
    /// The phrase loop's repetition being played, on the performance clock (f64 bits), and its
    /// length in beats (0 when no phrase loops).
    pub loop_start_bits: AtomicU64,
    pub loop_beats_bits: AtomicU64,
    /// 1 while the loop playing ends on a fill (a drum loop of four bars or more).
    pub loop_fill: AtomicU64,
    /// 1 while the model listens for a call (Call and response, not answering).
    pub listening: AtomicU64,
    /// For a model that follows the harmony: `FOLLOWS_HARMONY` with the harmony held at the
    /// input packed in the low 16 bits ([`Harmony::pack`]); 0 for a model that follows none.
    pub harmony: AtomicU64,
    /// Nanoseconds spent in blocks that ran the model, in total, and the worst single block. A
    /// reader that wants the worst of a recent window swaps the latter with 0.
    pub step_nanos: AtomicU64,
    pub worst_block_nanos: AtomicU64,
    /// The duration of the last block, at the host's sample rate: the budget a block has.
    pub block_budget_nanos: AtomicU64,
    /// The player's [`TransportState`], as [`TransportState::code`].
    pub transport: AtomicU64,
    pub tempo_millibpm: AtomicU64,
    /// Host position in thousandths of a beat (quarter note).
    pub position_millibeats: AtomicU64,
    /// The host's time signature, 4/4 when it gives none.
    pub time_signature: AtomicU64,
    /// The performance clock, as f64 bits: beats played since the plugin started, which runs
    /// only while the transport plays. Every logged note is stamped with it, so the log stays
    /// in time order across loops, locates and model switches.
    pub clock_bits: AtomicU64,
    /// The performance clock at the start of the bar being played, as f64 bits: where the
    /// editor draws bar lines and where a saved file's bars begin.
    pub bar_clock_bits: AtomicU64,
}

impl Meters {
    pub fn transport(&self) -> TransportState {
        TransportState::from_code(self.transport.load(Ordering::Relaxed))
    }

    pub fn clock(&self) -> f64 {
        f64::from_bits(self.clock_bits.load(Ordering::Relaxed))
    }

    /// The phrase loop's repetition being played: start on the performance clock and length
    /// in beats, when a phrase loops.
    pub fn loop_region(&self) -> Option<(f64, f64)> {
        let beats = f64::from_bits(self.loop_beats_bits.load(Ordering::Relaxed));
        (beats > 0.0).then(|| (f64::from_bits(self.loop_start_bits.load(Ordering::Relaxed)), beats))
    }

    pub fn bar_clock(&self) -> f64 {
        f64::from_bits(self.bar_clock_bits.load(Ordering::Relaxed))
    }

    /// (numerator, denominator).
    pub fn time_signature(&self) -> (u32, u32) {
        let packed = self.time_signature.load(Ordering::Relaxed);
        match ((packed >> 32) as u32, packed as u32) {
            (0, _) | (_, 0) => (4, 4),
            signature => signature,
        }
    }

    pub fn set_time_signature(&self, numerator: u32, denominator: u32) {
        self.time_signature.store((numerator as u64) << 32 | denominator as u64, Ordering::Relaxed);
    }

    /// Writes what one block did: the one place the audio thread updates the block meters.
    pub fn record_block(&self, block: &BlockReport) {
        let relaxed = Ordering::Relaxed;
        self.blocks.fetch_add(1, relaxed);
        self.model_steps.fetch_add(block.steps, relaxed);
        if block.steps > 0 {
            self.step_nanos.fetch_add(block.nanos, relaxed);
        }
        self.worst_block_nanos.fetch_max(block.nanos, relaxed);
        self.transport.store(block.state.code(), relaxed);
        self.tempo_millibpm.store((block.tempo * 1000.0) as u64, relaxed);
        self.position_millibeats.store((block.position.max(0.0) * 1000.0) as u64, relaxed);
        self.set_time_signature(block.time_signature.0, block.time_signature.1);
        let budget = block.samples as f64 / block.sample_rate as f64 * 1e9;
        self.block_budget_nanos.store(budget as u64, relaxed);
        self.sample_rate_hz.store(block.sample_rate as u64, relaxed);
        self.clock_bits.store(block.clock.to_bits(), relaxed);
        let (loop_start, loop_beats) = block.loop_region.unwrap_or((0.0, 0.0));
        self.loop_start_bits.store(loop_start.to_bits(), relaxed);
        self.loop_beats_bits.store(loop_beats.to_bits(), relaxed);
        self.loop_fill.store(block.loop_fill as u64, relaxed);
        self.listening.store(block.listening as u64, relaxed);
        let harmony = block.harmony.map_or(0, |h| FOLLOWS_HARMONY | h.pack() as u64);
        self.harmony.store(harmony, relaxed);
        if let Some(bar_clock) = block.bar_clock {
            self.bar_clock_bits.store(bar_clock.to_bits(), relaxed);
        }
    }
}

/// What one block did, for [`Meters::record_block`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockReport {
    pub state: TransportState,
    pub tempo: f64,
    /// The block's start, in host beats.
    pub position: f64,
    pub time_signature: (u32, u32),
    pub samples: usize,
    pub sample_rate: f32,
    pub steps: u64,
    pub nanos: u64,
    /// The performance clock at the block's end.
    pub clock: f64,
    /// The performance clock at the start of the bar being played, when the block says.
    pub bar_clock: Option<f64>,
    /// The phrase loop's repetition being played: its start on the performance clock and its
    /// length in beats.
    pub loop_region: Option<(f64, f64)>,
    /// The loop playing ends on a fill.
    pub loop_fill: bool,
    /// The model listens for a call.
    pub listening: bool,
    /// The harmony held at the input, for a model that follows one.
    pub harmony: Option<Harmony>,
}

/// [`Meters::harmony`]'s flag: the model follows the harmony.
pub const FOLLOWS_HARMONY: u64 = 1 << 32;

impl Meters {
    /// The harmony held at the input, for a model that follows one; None for one that follows
    /// none.
    pub fn harmony_followed(&self) -> Option<Harmony> {
        let bits = self.harmony.load(Ordering::Relaxed);
        (bits & FOLLOWS_HARMONY != 0).then(|| Harmony::unpack(bits as u16).unwrap_or(Harmony::SILENT))
    }
}

/// Where a logged note came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteSource {
    /// Played by the model.
    Generated,
    /// Received on the plugin's MIDI input (and passed through); heard, when the model listens.
    Input,
    /// Received and passed through, but not heard by a listening model (drums into a melodic
    /// model, a flood of notes).
    Unheard,
}

/// One note-on or note-off, at a time on the performance clock (see [`Meters::clock_bits`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedEvent {
    pub time: f64,
    pub pitch: u8,
    /// 1..=127 for a note-on, 0 for a note-off.
    pub velocity: u8,
    pub source: NoteSource,
}

/// How many note events the log keeps when nobody reads it: 32 bars of dense four-part
/// writing are about 1,000 notes, 2,000 events.
pub const NOTE_LOG_CAPACITY: usize = 16_384;

/// The notes played, from the audio thread to whoever reads them (the editor's recording). A
/// bounded lock-free queue allocated once: a full log forgets its oldest event rather than
/// waiting or allocating, so a closed editor costs nothing and, opened, finds the latest music.
pub struct NoteLog {
    queue: ArrayQueue<LoggedEvent>,
}

impl Default for NoteLog {
    fn default() -> Self {
        NoteLog { queue: ArrayQueue::new(NOTE_LOG_CAPACITY) }
    }
}

impl NoteLog {
    /// Audio thread: records an event, forgetting the oldest if the log is full.
    pub fn record(&self, event: LoggedEvent) {
        let _ = self.queue.force_push(event);
    }

    /// Reader: takes every event logged since the last call, oldest first.
    pub fn drain(&self, mut into: impl FnMut(LoggedEvent)) {
        while let Some(event) = self.queue.pop() {
            into(event);
        }
    }
}

/// Everything the audio thread reports, shared by the players it runs one after another.
#[derive(Default)]
pub struct Monitor {
    pub meters: Meters,
    pub notes: NoteLog,
    pub own_transport: OwnTransport,
}
