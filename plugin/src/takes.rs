//! Takes: music recorded once as it is generated, then played again exactly. Two things are
//! takes:
//! - the phrase loop ([`PhraseLoop`]): a take of a few bars, replayed again and again until the
//!   musician asks for a new one ("New phrase" counts the takes up, and the seed with them, so a
//!   new take differs and the same take comes back the same);
//! - the opening ([`Opening`]): the music's first beat in free play, remembered with where the
//!   generator stood after it, so that a restart (a locate, play from stop) has it at once
//!   instead of generating it in the very blocks where it is due.
//!
//! A drum model's loop of [`FILL_LOOP_BARS`] bars or more ends on a fill ([`FillAudition`]): its
//! last bar is drawn again, from where the generator stood at its start, until it is heard as a
//! fill ([`groove::is_fill`]) or it is about to sound. The model plays the fills it learned; the
//! loop only chooses where one falls.
//!
//! Events are on the music's grid (steps from its start). The player feeds a take while it is
//! recorded and draws from it afterwards; nothing here allocates after it is made.

use continuo_engine::generator::{Generator, GeneratorSnapshot};
use continuo_engine::groove;
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

    /// Forgets the events recorded after the first `kept`.
    fn truncate(&mut self, kept: usize) {
        self.events.truncate(kept);
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

/// Loops of this many bars or more end on a fill, as a drummer closes a phrase; a shorter loop
/// would be more fill than groove.
pub const FILL_LOOP_BARS: u32 = 4;
/// Hits of one bar judged, at most: a bar of 32nds on eight pieces of the kit is 256.
const BAR_HITS: usize = 512;
/// The groove's bars a fill is heard against: the three before it, a four-bar phrase.
pub const GROOVE_BARS_HEARD: usize = 3;
/// Most drawings of a loop's last bar: the Drums found a fill within 16 in 11 of 12 four-bar
/// takes, 5.3 drawings a take on average (`tests/listening.rs`). Each costs a bar of model
/// steps, within the blocks' cap.
pub const MAX_FILL_DRAWS: u64 = 16;

/// A loop's last bar drawn again until it is a fill: where the generator, the take and the
/// queue stood at the bar's start, and how the drawing goes. Its memory is allocated when it is
/// made; nothing after allocates.
pub struct FillAudition {
    /// The take being recorded ends on a fill: its last bar's first step, and a bar's steps.
    last_bar: Option<(u64, u64)>,
    /// The generator at the last bar's start, once it got there.
    start: GeneratorSnapshot,
    begun: bool,
    /// The take's events before the last bar, and the events queued since its start.
    kept: usize,
    queued: usize,
    /// The drawings of the last bar so far, and whether the take's ending is settled.
    draws: u64,
    settled: bool,
    /// The last bar's hits and the groove's bars before it (up to [`GROOVE_BARS_HEARD`]), as
    /// (step in the bar, key), for judging.
    bar: Vec<(u64, u8)>,
    groove: [Vec<(u64, u8)>; GROOVE_BARS_HEARD],
    /// The last take's ending: (it is a fill, the drawings it took).
    outcome: Option<(bool, u64)>,
}

impl FillAudition {
    pub fn new(generator: &Generator) -> FillAudition {
        FillAudition {
            last_bar: None,
            start: generator.snapshot(),
            begun: false,
            kept: 0,
            queued: 0,
            draws: 0,
            settled: false,
            bar: Vec::with_capacity(BAR_HITS),
            groove: std::array::from_fn(|_| Vec::with_capacity(BAR_HITS)),
            outcome: None,
        }
    }

    /// A new take of `bars` bars and `length` steps: it ends on a fill if `drums` plays it and
    /// it is long enough.
    pub fn plan(&mut self, drums: bool, bars: u32, length: u64) {
        let bar = length / bars.max(1) as u64;
        self.last_bar = (drums && bars >= FILL_LOOP_BARS).then_some((length - bar, bar));
        self.outcome = None;
        self.restart();
    }

    /// The take is recorded again from its start. Returns whether its last bar was being drawn
    /// again (at the settings the player draws fills by, which it then puts back).
    pub fn restart(&mut self) -> bool {
        let drawing_again = self.draws > 1 && !self.settled;
        (self.begun, self.settled, self.draws, self.queued) = (false, false, 0, 0);
        drawing_again
    }

    /// A bar's steps, while the take being recorded looks for its fill: the player generates
    /// further ahead then, to have the time to draw the last bar again before it sounds.
    pub fn bar_steps(&self) -> Option<u64> {
        self.last_bar.filter(|_| !self.settled).map(|(_, bar)| bar)
    }

    /// How the last take ended: whether on a fill, and after how many drawings of its last bar.
    pub fn outcome(&self) -> Option<(bool, u64)> {
        self.outcome
    }

    /// Before each token of a take: at the last bar's start, remembers where the generator
    /// and the take (`recorded` events) stand.
    pub fn before_token(&mut self, generator: &Generator, recorded: usize) {
        match self.last_bar {
            Some((from, _)) if !self.begun && !self.settled && generator.now() >= from => {
                generator.snapshot_into(&mut self.start);
                (self.begun, self.kept, self.queued, self.draws) = (true, recorded, 0, 1);
            }
            _ => {}
        }
    }

    /// An event of the last bar's drawing was queued.
    pub fn queued(&mut self) {
        self.queued += self.begun as usize;
    }

    /// The take is complete (`take`, its events): whether its last bar is drawn again. It is,
    /// from where it began, unless it is a fill, the drawings are spent, or the grid steps up to
    /// `due_until` (this block's end) reach it: a bar that begins to sound stays.
    pub fn draws_again(&mut self, take: &[NoteEvent], due_until: u64) -> bool {
        let Some((from, bar)) = self.last_bar.filter(|_| self.begun && !self.settled) else {
            return false;
        };
        let hits = |events: &[NoteEvent], from: u64, into: &mut Vec<(u64, u8)>| {
            into.clear();
            for event in events {
                if let NoteEventKind::On { pitch, .. } = event.kind {
                    if event.step >= from && event.step < from + bar && into.len() < into.capacity() {
                        into.push((event.step - from, pitch));
                    }
                }
            }
        };
        hits(take, from, &mut self.bar);
        for (k, groove) in self.groove.iter_mut().enumerate() {
            match from.checked_sub((k as u64 + 1) * bar) {
                Some(start) => hits(take, start, groove),
                None => groove.clear(),
            }
        }
        let fill = groove::is_fill(&self.bar, &self.groove);
        if fill || self.draws >= MAX_FILL_DRAWS || due_until >= from {
            self.settled = true;
            self.outcome = Some((fill, self.draws));
            return false;
        }
        true
    }

    /// Takes the generator, the queue and the take back to the last bar's start, to draw it
    /// anew (after [`FillAudition::draws_again`]).
    pub fn go_back(&mut self, generator: &mut Generator, queue: &mut EventQueue, phrase: &mut PhraseLoop) {
        generator.restore(&self.start);
        generator.draw_anew(self.draws);
        queue.drop_newest(self.queued);
        phrase.take.truncate(self.kept);
        self.queued = 0;
        self.draws += 1;
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

    /// The take's events so far.
    pub fn take_events(&self) -> &[NoteEvent] {
        &self.take.events
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
