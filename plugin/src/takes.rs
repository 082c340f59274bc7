//! Takes: music recorded once as it is generated, then played again exactly. Two things are
//! takes:
//! - the phrase loop ([`PhraseLoop`]): a take of a few bars, replayed again and again until the
//!   musician asks for a new one ("New phrase" counts the takes up, and the seed with them, so a
//!   new take differs and the same take comes back the same);
//! - the opening ([`Opening`]): the music's first beat in free play, remembered with where the
//!   generator stood after it, so that a restart (a locate, play from stop) has it at once
//!   instead of generating it in the very blocks where it is due.
//!
//! Events are on the music's grid (steps from its start). The player feeds a take while it is
//! recorded and draws from it afterwards; nothing here allocates after it is made.

use continuo_engine::generator::{Generator, GeneratorSnapshot};
use continuo_engine::vocab::{NoteEvent, NoteEventKind};

use crate::event_queue::{EventQueue, QUEUE_CAPACITY};

/// Events a loop's take may hold: eight bars of dense four-part writing are under a thousand.
pub const LOOP_CAPACITY: usize = 4096;

/// The loop lengths a musician can choose, in bars (0: no loop).
pub const LOOP_BAR_CHOICES: [u32; 5] = [0, 1, 2, 4, 8];

/// Events recorded as they were generated, to be played again exactly.
struct Take {
    events: Vec<NoteEvent>,
    /// Most events recorded; room beyond it is kept for the endings a finished take adds.
    limit: usize,
    recording: bool,
}

impl Take {
    fn new(limit: usize, reserve: usize) -> Take {
        Take { events: Vec::with_capacity(limit + reserve), limit, recording: true }
    }

    /// Forgets the take and records anew.
    fn record_anew(&mut self) {
        self.events.clear();
        self.recording = true;
    }

    /// Keeps `event` while recording, if there is room. Returns whether it did.
    fn record(&mut self, event: NoteEvent) -> bool {
        if !self.recording || self.events.len() >= self.limit {
            return false;
        }
        self.events.push(event);
        true
    }
}

/// What a loop does when play starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopStart {
    /// The take begun while the host was stopped plays from its first beat, already generated.
    PlaysTheTakeBegun,
    /// A new take is recorded from here (the caller starts the music over).
    RecordsANewTake,
    /// The take in hand plays again from its start (the caller drops what was queued).
    ReplaysTheTake,
}

/// A phrase of a few bars that loops, its takes, and where its replay stands.
pub struct PhraseLoop {
    take: Take,
    /// The loop's length in bars, as the musician set it (0: no loop).
    bars: u32,
    /// The take's length, in grid steps.
    length: u64,
    /// Which take plays: counts up with each New phrase, and moves the seed.
    number: u64,
    /// A new take is wanted at the next start (New phrase, a new length, or a change of seed,
    /// scale or range).
    new_take_wanted: bool,
    /// The take to record was begun while the host was stopped (its first beat generated), for
    /// the loop's start to play on time: the first chord need not fit one block's step cap.
    begun_while_stopped: bool,
    /// The repetition being replayed, and the next event of it to hand out.
    repetition: u64,
    cursor: usize,
}

impl PhraseLoop {
    pub fn new() -> PhraseLoop {
        PhraseLoop {
            take: Take::new(LOOP_CAPACITY - 128, 128),
            bars: 0,
            length: 0,
            number: 0,
            new_take_wanted: false,
            begun_while_stopped: false,
            repetition: 0,
            cursor: 0,
        }
    }

    /// Bars of the loop, 0 when off.
    pub fn bars(&self) -> u32 {
        self.bars
    }

    /// Loops `bars` bars (0: off). Returns whether that changed: a new length wants a new take.
    pub fn set_bars(&mut self, bars: u32) -> bool {
        if bars == self.bars {
            return false;
        }
        self.bars = bars;
        self.new_take_wanted = true;
        true
    }

    /// New phrase: the next take, from the next start.
    pub fn next_take(&mut self) {
        self.number += 1;
        self.new_take_wanted = true;
    }

    /// The next start records a new take (the seed, scale or range changed).
    pub fn want_new_take(&mut self) {
        self.new_take_wanted = true;
    }

    /// The sampler's seed for the present take: the musician's, moved on by the take's number,
    /// so that "New phrase" plays something new and a seed keeps its first take.
    pub fn seed_for(&self, seed: u64) -> u64 {
        seed.wrapping_add(self.number.wrapping_mul(0x9E37_79B9))
    }

    /// The loop's length in grid steps, with bars of `beats_per_bar`.
    pub fn length_in(&self, beats_per_bar: f64) -> u64 {
        (self.bars as f64 * beats_per_bar * continuo_engine::vocab::STEPS_PER_BEAT as f64).round() as u64
    }

    /// Whether a start with a loop of `length` steps records a take rather than replaying the
    /// one in hand.
    pub fn wants_new_take(&self, length: u64) -> bool {
        self.new_take_wanted || self.take.recording || self.length != length
    }

    /// Starts recording a new take of `length` grid steps.
    pub fn record_new(&mut self, length: u64) {
        self.new_take_wanted = false;
        self.take.record_anew();
        self.length = length.max(1);
        self.rewind();
    }

    /// Play starts (the music's first beat on the loop's start) with a loop of `length` steps:
    /// what the loop does.
    pub fn start(&mut self, length: u64) -> LoopStart {
        let begun = std::mem::take(&mut self.begun_while_stopped);
        if begun && !self.new_take_wanted && self.length == length {
            LoopStart::PlaysTheTakeBegun
        } else if self.wants_new_take(length) {
            LoopStart::RecordsANewTake
        } else {
            self.rewind();
            LoopStart::ReplaysTheTake
        }
    }

    /// Stopped before play: whether a new take of `length` steps is begun now (its first beat
    /// generated, for the loop's start to play on time: the first chord need not fit one
    /// block's step cap).
    pub fn begins_a_take_while_stopped(&self, length: u64) -> bool {
        (!self.begun_while_stopped || self.new_take_wanted) && self.wants_new_take(length)
    }

    /// The music starts again from its beginning: the first repetition, and a take being
    /// recorded is recorded from its start.
    pub fn restart(&mut self) {
        self.begun_while_stopped = false;
        self.rewind();
    }

    /// Marks the take just begun as begun while the host was stopped.
    pub fn begin_while_stopped(&mut self) {
        self.begun_while_stopped = true;
    }

    pub fn is_begun_while_stopped(&self) -> bool {
        self.begun_while_stopped
    }

    /// Back to the first repetition; a take being recorded starts over too (the generator
    /// starts over with it).
    pub fn rewind(&mut self) {
        self.repetition = 0;
        self.cursor = 0;
        if self.take.recording {
            self.take.events.clear();
        }
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn is_recording(&self) -> bool {
        self.take.recording
    }

    /// The repetition playing at grid step `step` (from the first repetition's start), and
    /// where it starts.
    pub fn repetition_at(&self, step: u64) -> (u64, u64) {
        let repetition = step / self.length;
        (repetition, repetition * self.length)
    }

    /// Recording: keeps a generated event if it falls inside the take. Returns whether it did
    /// (an event past the end is not played).
    pub fn record(&mut self, event: NoteEvent) -> bool {
        event.step < self.length && self.take.record(event)
    }

    /// Ends the recording: notes still sounding end on the loop's last step. Returns those
    /// endings through `emit`, to be played in the first repetition as in every other.
    pub fn finish(&mut self, mut emit: impl FnMut(NoteEvent)) {
        let mut sounding = [false; 128];
        for event in &self.take.events {
            match event.kind {
                NoteEventKind::On { pitch, .. } => sounding[pitch as usize] = true,
                NoteEventKind::Off { pitch } => sounding[pitch as usize] = false,
            }
        }
        for pitch in 0..128u8 {
            if sounding[pitch as usize] {
                let end = NoteEvent { step: self.length, kind: NoteEventKind::Off { pitch } };
                self.take.events.push(end);
                emit(end);
            }
        }
        self.take.recording = false;
        // The recording was the first repetition.
        self.repetition = 1;
        self.cursor = 0;
    }

    /// Replay: the next event, on the grid counted from the first repetition's start, if it
    /// falls before `until`.
    pub fn next_before(&mut self, until: u64) -> Option<NoteEvent> {
        let events = &self.take.events;
        if self.take.recording || events.is_empty() {
            return None;
        }
        let event = events[self.cursor];
        let step = event.step + self.repetition * self.length;
        if step >= until {
            return None;
        }
        self.cursor += 1;
        if self.cursor == events.len() {
            self.cursor = 0;
            self.repetition += 1;
        }
        Some(NoteEvent { step, ..event })
    }
}

impl Default for PhraseLoop {
    fn default() -> Self {
        PhraseLoop::new()
    }
}

/// Where the remembered opening stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpeningState {
    /// Generated from the start with the present settings, being remembered.
    Remembering,
    Ready,
    /// The music since its start is not what a restart with the present settings plays
    /// (settings changed, or the model heard the musician): nothing to remember until the next
    /// restart.
    Stale,
}

/// The music's first beat (the lookahead), remembered the first time it is generated from its
/// start with the settings in force: its events, and where the generator stood after them.
pub struct Opening {
    take: Take,
    generator_after: GeneratorSnapshot,
    state: OpeningState,
}

impl Opening {
    /// An opening for `generator`'s music, its memory allocated now.
    pub fn new(generator: &Generator) -> Opening {
        Opening {
            take: Take::new(QUEUE_CAPACITY, 0),
            generator_after: generator.snapshot(),
            state: OpeningState::Remembering,
        }
    }

    /// The music no longer starts as remembered.
    pub fn forget(&mut self) {
        self.state = OpeningState::Stale;
    }

    pub fn is_remembering(&self) -> bool {
        self.state == OpeningState::Remembering
    }

    /// Remembering: keeps a generated event. An opening too long to keep is not remembered: a
    /// restart generates it again.
    pub fn record(&mut self, event: NoteEvent) {
        if !self.take.record(event) {
            self.forget();
        }
    }

    /// Remembering: once the generator has reached `length` steps, the opening is complete and
    /// `generator` stands where a restart takes it.
    pub fn complete_at(&mut self, generator: &Generator, length: u64) {
        if self.state == OpeningState::Remembering && generator.now() >= length {
            generator.snapshot_into(&mut self.generator_after);
            self.state = OpeningState::Ready;
        }
    }

    /// The music starts again with the remembered opening, if there is one: its events in
    /// `queue`, and `generator` where it stood after them. Returns whether there was one.
    pub fn replay(&self, generator: &mut Generator, queue: &mut EventQueue) -> bool {
        if self.state != OpeningState::Ready {
            return false;
        }
        generator.restore(&self.generator_after);
        queue.replace_with(&self.take.events);
        true
    }

    /// The music starts from its beginning without it: remember it anew.
    pub fn remember_anew(&mut self) {
        self.take.record_anew();
        self.state = OpeningState::Remembering;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(step: u64, pitch: u8) -> NoteEvent {
        NoteEvent { step, kind: NoteEventKind::On { pitch, velocity: 80 } }
    }
    fn off(step: u64, pitch: u8) -> NoteEvent {
        NoteEvent { step, kind: NoteEventKind::Off { pitch } }
    }

    #[test]
    fn a_take_repeats_exactly_with_its_last_notes_ended_on_the_loop_end() {
        let mut phrase = PhraseLoop::new();
        phrase.record_new(96);
        assert!(phrase.record(on(0, 60)));
        assert!(phrase.record(off(24, 60)));
        assert!(phrase.record(on(90, 67)));
        assert!(!phrase.record(off(100, 67)), "past the loop's end");
        let mut ended = Vec::new();
        phrase.finish(|e| ended.push(e));
        assert_eq!(ended, vec![off(96, 67)]);
        let replay: Vec<_> = std::iter::from_fn(|| phrase.next_before(300)).collect();
        assert_eq!(
            replay,
            vec![
                on(96, 60),
                off(120, 60),
                on(186, 67),
                off(192, 67),
                on(192, 60),
                off(216, 60),
                on(282, 67),
                off(288, 67),
                on(288, 60)
            ]
        );
    }

    #[test]
    fn new_phrase_moves_the_seed_and_the_first_take_keeps_it() {
        let mut phrase = PhraseLoop::new();
        assert_eq!(phrase.seed_for(7), 7);
        phrase.next_take();
        assert_ne!(phrase.seed_for(7), 7);
        assert!(phrase.wants_new_take(phrase.length()));
    }
}
