//! What the audio thread reports to the rest of the plugin: counters and transport
//! ([`Meters`]) and every note played or received ([`NoteLog`]). The audio thread only writes
//! here, with atomics and a lock-free queue, never waiting on a reader; the editor reads.

use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam::queue::ArrayQueue;

/// Counters the editor and the tests read, written by the audio thread with relaxed atomics.
#[derive(Debug, Default)]
pub struct Meters {
    pub model_steps: AtomicU64,
    pub blocks: AtomicU64,
    pub notes_on: AtomicU64,
    pub notes_off: AtomicU64,
    /// Events that fell due before generation reached them and were played at the block start.
    pub late_events: AtomicU64,
    /// Events the host's buffer had no room for.
    pub dropped_events: AtomicU64,
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
}

/// Where the transport stands, as the player sees it (and, standalone, as the window asks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportState {
    Stopped,
    Playing,
    Paused,
}

impl TransportState {
    /// How it is kept in an atomic.
    pub fn code(self) -> u64 {
        match self {
            TransportState::Stopped => 0,
            TransportState::Playing => 1,
            TransportState::Paused => 2,
        }
    }

    pub fn from_code(code: u64) -> TransportState {
        match code {
            1 => TransportState::Playing,
            2 => TransportState::Paused,
            _ => TransportState::Stopped,
        }
    }
}

/// Where a logged note came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteSource {
    /// Played by the model.
    Generated,
    /// Received on the plugin's MIDI input (and passed through).
    Input,
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

/// The plugin's own play / pause / stop, for the standalone program when nothing else drives
/// the music (no JACK transport with a beat position). The window sets it; the audio thread
/// reads it and keeps the position.
#[derive(Debug, Default)]
pub struct OwnTransport {
    /// A [`TransportState::code`].
    requested: AtomicU64,
}

impl OwnTransport {
    pub fn request(&self, state: TransportState) {
        self.requested.store(state.code(), Ordering::Relaxed);
    }

    pub fn requested(&self) -> TransportState {
        TransportState::from_code(self.requested.load(Ordering::Relaxed))
    }
}

/// Everything the audio thread reports, shared by the players it runs one after another.
#[derive(Default)]
pub struct Monitor {
    pub meters: Meters,
    pub notes: NoteLog,
    pub own_transport: OwnTransport,
}
