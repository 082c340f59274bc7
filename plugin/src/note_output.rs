//! What the host hears from the player: the note events it sends (`offset` samples into the
//! block), the notes sounding at the output as the host heard them, so that every one gets its
//! note-off (across a pause, a settings change, a model switch, a deactivation), and the count
//! and log of every event, stamped on the performance clock for the window.
//!
//! Which notes to play and when is the player's; this room only sends them and remembers what
//! sounds. Nothing here allocates.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use crate::monitor::{LoggedEvent, Monitor, NoteSource};

/// A note event for the host, `offset` samples into the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputEvent {
    pub offset: u32,
    pub pitch: u8,
    /// 1..=127 for a note-on, 0 for a note-off.
    pub velocity: u8,
}

impl OutputEvent {
    pub fn is_on(&self) -> bool {
        self.velocity > 0
    }
}

pub struct NoteOutput {
    /// Notes sounding at the output, as the host heard them.
    sounding: [bool; 128],
    /// Notes still sounded when the host deactivated the plugin: they end at the start of the
    /// next block it processes.
    release_pending: bool,
    /// Multiplies every velocity (then clamped to 1..=127).
    velocity_scale: f32,
    monitor: Arc<Monitor>,
    /// The performance clock at this block's first sample, and the block's samples per beat:
    /// what stamps the notes logged during the block.
    block_clock: f64,
    samples_per_beat: f64,
}

impl NoteOutput {
    pub fn new(monitor: Arc<Monitor>, samples_per_beat: f64) -> NoteOutput {
        NoteOutput {
            sounding: [false; 128],
            release_pending: false,
            velocity_scale: 1.0,
            monitor,
            block_clock: 0.0,
            samples_per_beat,
        }
    }

    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    pub fn set_velocity_scale(&mut self, scale: f32) {
        self.velocity_scale = scale;
    }

    /// A block begins: notes left from before a deactivation end now, and what is logged from
    /// here is stamped from the performance clock as it stands.
    pub fn begin_block(&mut self, samples_per_beat: f64, emit: &mut impl FnMut(OutputEvent)) {
        if std::mem::take(&mut self.release_pending) {
            self.all_notes_off(0, emit);
        }
        self.block_clock = self.monitor.meters.clock();
        self.samples_per_beat = samples_per_beat;
    }

    /// The performance clock at this block's start.
    pub fn block_clock(&self) -> f64 {
        self.block_clock
    }

    /// Sounds `pitch` at `offset` (ending it first if it sounds already), at the velocity the
    /// model chose times the musician's scale.
    pub fn note_on(&mut self, offset: u32, pitch: u8, velocity: u8, emit: &mut impl FnMut(OutputEvent)) {
        if std::mem::replace(&mut self.sounding[pitch as usize], true) {
            self.emit_logged(OutputEvent { offset, pitch, velocity: 0 }, emit);
        }
        let scaled = (velocity as f32 * self.velocity_scale).round().clamp(1.0, 127.0) as u8;
        self.emit_logged(OutputEvent { offset, pitch, velocity: scaled }, emit);
    }

    /// Ends `pitch` at `offset`, if the host heard it start: one ended by a pause or a settings
    /// change is gone.
    pub fn note_off(&mut self, offset: u32, pitch: u8, emit: &mut impl FnMut(OutputEvent)) {
        if std::mem::take(&mut self.sounding[pitch as usize]) {
            self.emit_logged(OutputEvent { offset, pitch, velocity: 0 }, emit);
        }
    }

    /// Ends every sounding note at `offset`, lowest first.
    pub fn all_notes_off(&mut self, offset: u32, emit: &mut impl FnMut(OutputEvent)) {
        for pitch in 0..128u8 {
            self.note_off(offset, pitch, emit);
        }
    }

    /// The host deactivates the plugin: what sounds ends at the start of the next block.
    pub fn release_at_next_block(&mut self) {
        self.release_pending |= self.sounding_count() > 0;
    }

    /// This output replaces `old` outside a block (a model switched in): the notes the host
    /// heard from `old` end at the start of the next block.
    pub fn take_over(&mut self, old: &NoteOutput) {
        for (ours, theirs) in self.sounding.iter_mut().zip(old.sounding) {
            *ours |= theirs;
        }
        self.release_at_next_block();
    }

    /// Notes sounding at the output now.
    pub fn sounding_count(&self) -> usize {
        self.sounding.iter().filter(|s| **s).count()
    }

    /// Logs a note event `offset` samples into the block, for the window.
    pub fn log(&self, offset: u32, pitch: u8, velocity: u8, source: NoteSource) {
        let time = self.block_clock + offset as f64 / self.samples_per_beat;
        self.monitor.notes.record(LoggedEvent { time, pitch, velocity, source });
    }

    /// Emits one of our events, counts it and logs it.
    fn emit_logged(&self, event: OutputEvent, emit: &mut impl FnMut(OutputEvent)) {
        emit(event);
        let meters = &self.monitor.meters;
        let counter = if event.is_on() { &meters.notes_on } else { &meters.notes_off };
        counter.fetch_add(1, Ordering::Relaxed);
        self.log(event.offset, event.pitch, event.velocity, NoteSource::Generated);
    }
}
