//! Listening: what the model hears of the musician, and when it answers.
//!
//! Owns the playing modes ([`Mode`]), the musician's notes as the player receives them
//! ([`InputNote`]), and the [`Listener`]: what the model has heard ([`Ear`]: the notes held,
//! when the musician last played, whether a call waits for its answer), where the call and
//! response stands ([`Phase`]), the musician's notes placed on the music's grid and waiting for
//! the model to read them, and the generator's recent past ([`Rollback`]): where it stood before
//! each TIME_SHIFT it drew, so that when a note arrives for a moment the generator has already
//! run past, it goes back to that moment, hears the note there and generates the rest again.
//!
//! A model that follows the harmony (contract version 2) hears what comes in otherwise, in every
//! mode: the notes held at the input ([`HeldNotes`]) are the harmony it plays against, and a
//! change of it takes the generator back to the change's grid step (the same [`Rollback`]), so
//! the first notes under a new chord are drawn knowing it.
//!
//! The player lends the listener its generator, its queue of events ahead and its output for
//! each block; nothing here knows the host, and nothing allocates after it is made.

use std::sync::atomic::Ordering;

use continuo_engine::generator::{Generator, GeneratorSnapshot};
use continuo_engine::harmony::Harmony;
use continuo_engine::midi::Role;
use continuo_engine::vocab::{Token, STEPS_PER_BEAT};
use nice_plug::prelude::Enum;

use crate::event_queue::{EventQueue, LOOKAHEAD_STEPS};
use crate::monitor::NoteSource;
use crate::note_output::{NoteOutput, OutputEvent};
use crate::step_budget::blocks_for_a_chord;
use crate::transport::{beats_per_bar, BlockOnGrid};

/// How Continuo plays with the musician: the Mode parameter's values, as the host lists them.
#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The model plays on its own; what comes in is passed through and drawn, not heard.
    #[default]
    Free,
    /// Silent while the musician plays, the model listening; after a rest, it answers.
    #[name = "Call and response"]
    CallAndResponse,
    /// The model hears the musician and itself as one stream, and plays along all the time.
    Duet,
}

impl Mode {
    /// Its name, as the host and the window show it.
    pub fn name(self) -> &'static str {
        Mode::variants()[self.to_index()]
    }

    pub fn listens(self) -> bool {
        self != Mode::Free
    }
}

/// The longest silence the model hears between a musician's notes, in grid steps (a bar of
/// 4/4): a longer rest reads as this, so the model's memory of the last phrase is not washed
/// out by minutes of TIME_SHIFTs, and hearing after a long rest costs a step or two.
const HEARD_REST_STEPS: u64 = 4 * STEPS_PER_BEAT as u64;
/// Most of the musician's notes (starts and ends) heard in one block: a ten-finger chord
/// struck and released. More is a flood: passed through, not heard. A fixed number rather than
/// the step cap, so that what the model hears does not depend on how fast this machine is.
pub const MAX_HEARD_PER_BLOCK: usize = 20;
/// The musician's notes waiting to be read by the model, at most: a few blocks' worth at a step
/// a block.
const HEARD_QUEUE: usize = 64;
/// A sixteenth note and an eighth-note triplet, in grid steps: the lines the models' music is
/// written on.
const SIXTEENTH_STEPS: u64 = STEPS_PER_BEAT as u64 / 4;
const TRIPLET_STEPS: u64 = STEPS_PER_BEAT as u64 / 3;
/// Half a sixteenth: a note played this long after a grid line is still heard on it (see
/// [`heard_on_the_grid`]).
const SETTLE_STEPS: u64 = SIXTEENTH_STEPS / 2;

/// The musician's settings for listening.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ListenSettings {
    pub mode: Mode,
    /// Call and response: the answer starts after the musician has rested this many beats.
    pub answer_after_beats: f64,
    /// Call and response: how many bars an answer lasts; `None` until the musician plays again.
    pub answer_bars: Option<u32>,
}

impl Default for ListenSettings {
    fn default() -> Self {
        ListenSettings { mode: Mode::Free, answer_after_beats: 1.0, answer_bars: Some(2) }
    }
}

/// MIDI channel 10, counted from 0: drums, which a melodic model does not hear.
pub const DRUM_CHANNEL: u8 = 9;

/// A note the musician played into the plugin, `offset` samples into the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InputNote {
    pub offset: u32,
    pub pitch: u8,
    /// 1..=127 for a note-on, 0 for a note-off.
    pub velocity: u8,
    /// 0..16.
    pub channel: u8,
}

/// What the model heard of the musician.
#[derive(Debug, Clone)]
pub struct Ear {
    /// Grid step at which each note the model heard start was struck, while it is held.
    held: [Option<u64>; 128],
    /// Grid step of the last note heard to start or end.
    last_heard: u64,
    /// Something was heard since the last answer began.
    call: bool,
}

impl Default for Ear {
    fn default() -> Self {
        Ear { held: [None; 128], last_heard: 0, call: false }
    }
}

impl Ear {
    /// Forgets everything heard (the music starts again).
    pub fn clear(&mut self) {
        *self = Ear::default();
    }

    pub fn is_held(&self, pitch: u8) -> bool {
        self.held[pitch as usize & 127].is_some()
    }

    /// The grid step the held note `pitch` was heard to start on.
    pub fn onset(&self, pitch: u8) -> Option<u64> {
        self.held[pitch as usize & 127]
    }

    /// Something was heard since the last answer began: a call is under way.
    pub fn hears_a_call(&self) -> bool {
        self.call
    }

    pub fn held_count(&self) -> usize {
        self.held.iter().filter(|h| h.is_some()).count()
    }

    /// The model heard `pitch` start (`on`) or end at `step`.
    pub fn heard(&mut self, pitch: u8, on: bool, step: u64) {
        self.held[pitch as usize & 127] = on.then_some(step);
        // A stuck key let go is heard where it reached the limit, which may be before notes
        // heard since: the rest counts from the latest.
        self.last_heard = self.last_heard.max(step);
        self.call = true;
    }

    /// A held note that has sounded `limit` steps by `now`, and the step it reached the limit:
    /// the model is told it ended there, so a stuck key neither holds the answer back forever
    /// nor stays in the model's memory as a note that never ends.
    pub fn overlong(&self, now: u64, limit: u64) -> Option<(u8, u64)> {
        (0..128u8).find_map(|p| {
            let end = self.held[p as usize]? + limit;
            (end <= now).then_some((p, end))
        })
    }

    /// When the answer to the call heard so far is due: `rest` steps after the last note heard,
    /// once nothing is held. `None` without a call waiting.
    pub fn answer_due(&self, rest: u64) -> Option<u64> {
        (self.call && self.held_count() == 0).then_some(self.last_heard + rest)
    }

    /// The answer has begun: what comes next is another call.
    pub fn answered(&mut self) {
        self.call = false;
    }
}

/// The notes held at the input, as the harmony a model that follows one hears: each key from
/// the grid line it was heard to start on (a keyboard player's chord a few milliseconds off the
/// beat is the beat's), drums left out.
#[derive(Debug, Clone)]
pub struct HeldNotes {
    onsets: [Option<u64>; 128],
}

impl Default for HeldNotes {
    fn default() -> Self {
        HeldNotes { onsets: [None; 128] }
    }
}

impl HeldNotes {
    /// The harmony of the keys held.
    pub fn harmony(&self) -> Harmony {
        Harmony::of_pitches((0..128u8).filter(|&p| self.onsets[p as usize].is_some()))
    }

    /// The key `pitch` went down (`on`) or up, heard at `exact` (fractional grid steps from the
    /// music's start; None while the music does not play). Returns the grid step where the
    /// harmony changes, if it does.
    fn hear(&mut self, pitch: u8, on: bool, exact: Option<f64>) -> Option<u64> {
        let held = &mut self.onsets[pitch as usize & 127];
        if held.is_some() == on {
            return None; // a key struck again, or let go twice: the harmony is the same
        }
        // A chord let go a little early holds to the grid line after it started, where the
        // next one is heard to begin: one change, not a gap.
        let step = exact.map_or(0, |exact| heard_on_the_grid(exact, if on { None } else { *held }));
        *held = on.then_some(step);
        Some(step)
    }
}

/// Where the call and response stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The musician plays or rests: the model is silent and hears.
    Listening,
    /// The model answers, up to this grid step (`None`: until the musician plays again).
    Answering { until: Option<u64> },
}

/// The generator's recent past: a snapshot taken just before each TIME_SHIFT it drew, that
/// is, where it stood once everything at that grid step had been played. Going back to the
/// newest one at or before a step and hearing a note there is what lets the model hear a note
/// that arrives after it has generated past it. A ring: the oldest is forgotten when full.
pub struct Rollback {
    slots: Vec<GeneratorSnapshot>,
    start: usize,
    len: usize,
    /// Taken before every token while recording; kept when the token is a TIME_SHIFT.
    pending: GeneratorSnapshot,
}

/// Snapshots kept: the lookahead is one beat, at most 24 TIME_SHIFTs, plus the block's own.
/// Their LSTM states live in the model's pool, which has room for
/// [`continuo_engine::model::HELD_STATES`] of them (this ring, its pending one, the opening).
pub const ROLLBACK_SNAPSHOTS: usize = 48;
const _: () = assert!(ROLLBACK_SNAPSHOTS + 2 <= continuo_engine::model::HELD_STATES);

impl Rollback {
    /// Allocates every snapshot now, shaped like `generator`'s.
    pub fn new(generator: &Generator) -> Rollback {
        Rollback {
            slots: vec![generator.snapshot(); ROLLBACK_SNAPSHOTS],
            start: 0,
            len: 0,
            pending: generator.snapshot(),
        }
    }

    pub fn clear(&mut self) {
        self.len = 0;
    }

    /// Before the generator draws a token.
    pub fn before_token(&mut self, generator: &Generator) {
        generator.snapshot_into(&mut self.pending);
    }

    /// After it drew `token`: a TIME_SHIFT leaves a step behind, and where the generator stood
    /// before it is kept.
    pub fn after_token(&mut self, token: Token) {
        if matches!(token, Token::TimeShift(_)) {
            self.keep_pending();
        }
    }

    /// Keeps where `generator` stands now, before time passes without it drawing (the rest
    /// before an answer, heard).
    pub fn keep(&mut self, generator: &Generator) {
        self.before_token(generator);
        self.keep_pending();
    }

    fn keep_pending(&mut self) {
        let slot = (self.start + self.len) % ROLLBACK_SNAPSHOTS;
        std::mem::swap(&mut self.slots[slot], &mut self.pending);
        if self.len == ROLLBACK_SNAPSHOTS {
            self.start = (self.start + 1) % ROLLBACK_SNAPSHOTS;
        } else {
            self.len += 1;
        }
    }

    /// Takes `generator` back to the newest snapshot at or before grid step `step`, forgetting
    /// it and everything newer. Returns the step it went back to; `None` when no snapshot is
    /// that old (the generator is left as it was).
    pub fn go_back(&mut self, generator: &mut Generator, step: u64) -> Option<u64> {
        let newest = (0..self.len).rev().find(|&i| self.slot(i).now() <= step)?;
        let snapshot = &self.slots[(self.start + newest) % ROLLBACK_SNAPSHOTS];
        generator.restore(snapshot);
        self.len = newest;
        Some(generator.now())
    }

    fn slot(&self, i: usize) -> &GeneratorSnapshot {
        &self.slots[(self.start + i) % ROLLBACK_SNAPSHOTS]
    }
}

/// What a block's listening did: the model steps it ran (which the block's generation does
/// without) and the musician's notes the model heard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heard {
    pub steps: usize,
    pub notes: usize,
}

/// The model's ear on the musician, as the mode says: what it heard, the call and response, and
/// the generator's past to go back to.
pub struct Listener {
    settings: ListenSettings,
    ear: Ear,
    phase: Phase,
    rollback: Rollback,
    /// The musician's notes placed on the generator's timeline and not yet read by the model
    /// (step, token), oldest first from `heard_next`; allocated once.
    heard_queue: Vec<(u64, Token)>,
    heard_next: usize,
    /// The model follows the harmony coming in (contract version 2): what comes in is heard as
    /// harmony, in every mode.
    follows_harmony: bool,
    held: HeldNotes,
}

impl Listener {
    /// A listener for `generator`'s model, its memory allocated now.
    pub fn new(generator: &Generator) -> Listener {
        Listener {
            settings: ListenSettings::default(),
            ear: Ear::default(),
            phase: Phase::Listening,
            rollback: Rollback::new(generator),
            heard_queue: Vec::with_capacity(HEARD_QUEUE),
            heard_next: 0,
            follows_harmony: generator.follows_harmony(),
            held: HeldNotes::default(),
        }
    }

    /// Whether the model follows the harmony held at the input (then every mode plays along).
    pub fn follows_harmony(&self) -> bool {
        self.follows_harmony
    }

    /// The harmony held at the input.
    pub fn harmony_held(&self) -> Harmony {
        self.held.harmony()
    }

    /// Keys going down and up while the music does not play: a model that follows the harmony
    /// hears it from where the generator stands. Returns whether the harmony changed.
    pub fn hold(&mut self, input: &[InputNote], generator: &mut Generator) -> bool {
        if !self.follows_harmony {
            return false;
        }
        let mut changed = false;
        for note in input.iter().filter(|n| n.channel != DRUM_CHANNEL) {
            changed |= self.held.hear(note.pitch, note.velocity > 0, None).is_some();
        }
        if changed {
            generator.change_harmony_at(generator.now(), self.held.harmony());
        }
        changed
    }

    pub fn settings(&self) -> ListenSettings {
        self.settings
    }

    pub fn mode(&self) -> Mode {
        self.settings.mode
    }

    /// Takes the musician's settings. Returns whether the mode changed (the music starts again).
    pub fn set_settings(&mut self, settings: ListenSettings) -> bool {
        let new_mode = settings.mode != self.settings.mode;
        self.settings = settings;
        new_mode
    }

    /// The music starts again: nothing heard, nothing to answer, no past.
    pub fn reset(&mut self) {
        self.phase = Phase::Listening;
        self.ear.clear();
        self.rollback.clear();
        self.heard_queue.clear();
        self.heard_next = 0;
    }

    /// The generator's past no longer leads to what it plays (the settings changed).
    pub fn forget_past(&mut self) {
        self.rollback.clear();
    }

    /// Call and response, waiting for or hearing a call: the model is silent.
    pub fn listens_for_a_call(&self) -> bool {
        !self.follows_harmony && self.settings.mode == Mode::CallAndResponse && self.phase == Phase::Listening
    }

    /// The model may generate now: always, except while it listens for a call, and while notes
    /// placed for it wait to be read.
    pub fn lets_the_model_play(&self) -> bool {
        !self.listens_for_a_call() && self.heard_queue.is_empty()
    }

    /// The generator's past is kept while a musician's note may have to go back into it.
    pub fn keeps_past(&self) -> bool {
        if self.follows_harmony {
            return true; // the next chord may come in for a step it generated past
        }
        match self.settings.mode {
            Mode::Free => false,
            Mode::CallAndResponse => matches!(self.phase, Phase::Answering { .. }),
            Mode::Duet => true,
        }
    }

    /// The grid step where the answer playing ends, for an answer of a set length.
    pub fn answer_ends_at(&self) -> Option<u64> {
        match self.phase {
            Phase::Answering { until } => until,
            Phase::Listening => None,
        }
    }

    /// Before the generator draws a token, while the past is kept.
    pub fn before_token(&mut self, generator: &Generator) {
        self.rollback.before_token(generator);
    }

    /// After it drew `token`, while the past is kept.
    pub fn after_token(&mut self, token: Token) {
        self.rollback.after_token(token);
    }

    /// Hears this block's input as the mode says, within `cap` model steps. A note is placed at
    /// once: the generator goes back to its step (no model step), so nothing generated after it
    /// plays; the model reads it (a step, two when time has to pass first) as the cap allows, in
    /// this block or the next ones, and generates nothing new until it has. A note the model
    /// cannot hear (drums into a melodic model, a note-off without its note-on, a flood past
    /// [`MAX_HEARD_PER_BLOCK`]) is drawn grey and counted. `voices` is how many the model plays
    /// at once, `longest_note` the longest note it may hear held, in grid steps.
    #[allow(clippy::too_many_arguments)]
    pub fn hear(
        &mut self,
        input: &[InputNote],
        block: &BlockOnGrid,
        (cap, voices, longest_note): (usize, usize, u64),
        generator: &mut Generator,
        queue: &mut EventQueue,
        output: &mut NoteOutput,
        emit: &mut impl FnMut(OutputEvent),
    ) -> Heard {
        if self.follows_harmony {
            return self.follow_harmony(input, block, (cap, voices), generator, queue, output);
        }
        let mode = self.settings.mode;
        let mut heard = 0;
        let deaf_to_drums = generator.model().info().role == Role::Melodic;
        for note in input {
            let on = note.velocity > 0;
            let audible = mode.listens()
                && !(deaf_to_drums && note.channel == DRUM_CHANNEL)
                && (on || self.ear.is_held(note.pitch))
                && heard < MAX_HEARD_PER_BLOCK
                && self.heard_queue.len() < HEARD_QUEUE;
            if !audible {
                if mode.listens() {
                    output.monitor().meters.unheard_notes.fetch_add(on as u64, Ordering::Relaxed);
                }
                let source = if mode.listens() { NoteSource::Unheard } else { NoteSource::Input };
                output.log(note.offset, note.pitch, note.velocity, source);
                continue;
            }
            let played_at = block.step_at(note.offset);
            if on && matches!(self.phase, Phase::Answering { .. }) && mode == Mode::CallAndResponse {
                // The musician plays again: the answer stops here, every note ended.
                output.all_notes_off(note.offset, emit);
                self.stop_answer(played_at, generator, queue);
            }
            // Listening for a call, the model hears the musician on the grid its music is
            // written on; in a duet it hears each note at its 1/24-beat step (the duet keeps
            // its own music on the grid by replying on a grid line, measured with a human's
            // timing in tests/human_calls.rs), so that it never goes back before what it played.
            let step = match mode {
                Mode::CallAndResponse => {
                    let onset = if on { None } else { self.ear.onset(note.pitch) };
                    heard_on_the_grid(block.exact_step_at(note.offset), onset)
                }
                _ => played_at,
            };
            if on && mode == Mode::CallAndResponse && !self.ear.hears_a_call() {
                // A new call: the model hears it afresh, as the beginning of its music, so that
                // the answer follows this call (its key, its motion) rather than the ones before.
                let _ = generator.forget();
                self.rollback.clear();
                let _ = generator.feed_time_until(step, 0);
            }
            let step = self.go_back_to(step, generator, queue);
            let token = if on { Token::NoteOn(note.pitch) } else { Token::NoteOff(note.pitch) };
            self.place_heard(step, token);
            self.ear.heard(note.pitch, on, step);
            heard += 1;
            output.log(note.offset, note.pitch, note.velocity, NoteSource::Input);
        }
        // A key held past the longest note: the model hears it end (where it stands now: going
        // back that far could undo notes it has heard since).
        let now = block.step_at(block.samples as u32);
        while let Some((pitch, end)) = self.ear.overlong(now, longest_note) {
            self.ear.heard(pitch, false, end);
            if self.heard_queue.len() < HEARD_QUEUE {
                self.place_heard(end, Token::NoteOff(pitch));
            }
        }
        // What the model decides after hearing is due after this block at the soonest (its
        // events are already placed), not before the blocks to come can draw a chord at their
        // cap (the note-offs, a velocity and a note-on per voice, and the time shift), and on
        // the beat's grid. At a full cap that is the grid line after the next block; at a cap
        // of 2 steps, after 7 blocks for 4 voices, else the reply would come late.
        let blocks = blocks_for_a_chord(voices, cap) as f64;
        let next_block = block.beats_from_origin(blocks * block.samples as f64 - 0.5);
        let reply_from = on_the_grid((next_block * STEPS_PER_BEAT as f64).ceil().max(0.0) as u64 + 1);
        // Listening for a call, the model reads a note once every note that may be heard on
        // the same grid line has come in (half a sixteenth after the line), so that it hears
        // them in the order its music is written in; in a duet it reads at once.
        let settled = match mode {
            Mode::CallAndResponse => now.saturating_sub(SETTLE_STEPS),
            _ => u64::MAX,
        };
        let mut spent = self.read_heard(cap, reply_from, settled, generator);
        if self.listens_for_a_call() && self.heard_queue.is_empty() {
            let rest = (self.settings.answer_after_beats * STEPS_PER_BEAT as f64).round() as u64;
            // The answer is generated ahead like any music, from a beat before it is due: if
            // the musician plays before then, it is dropped unheard.
            let due = self.ear.answer_due(rest).filter(|due| *due < now + LOOKAHEAD_STEPS);
            if let Some(due) = due.filter(|_| spent < cap) {
                // On the first sixteenth at or after the rest: the model keeps time by its own
                // TIME_SHIFTs from there, and its music is mostly in eighths and sixteenths (an
                // answer begun on a triplet line that went on in eighths played off the host's
                // grid).
                let at = due.max(block.step_at(0) + 1).next_multiple_of(SIXTEENTH_STEPS);
                spent += self.start_answer(at, block.time_signature, generator);
            }
        }
        Heard { steps: spent, notes: heard }
    }

    /// What comes in is the harmony the model plays against: the keys held change it, on the
    /// grid line where they are heard (see [`HeldNotes`]). A change takes the generator back to
    /// the newest moment before the change's step (no model step: the music drawn from there
    /// is dropped, none of it has sounded) and the generator stops its time at the change, so
    /// the model hears it there and draws what it plays on it anew, within the block's cap. A
    /// change on a step whose events this block no longer places is heard on the first it does;
    /// one the blocks to come cannot draw in time at their cap (`voices` notes need a time shift
    /// and a velocity and a note-on each) on the first grid line they can, so that its first
    /// notes come late but on the grid rather than too late to place.
    fn follow_harmony(
        &mut self,
        input: &[InputNote],
        block: &BlockOnGrid,
        (cap, voices): (usize, usize),
        generator: &mut Generator,
        queue: &mut EventQueue,
        output: &mut NoteOutput,
    ) -> Heard {
        let mut earliest: Option<u64> = None;
        let mut notes = 0;
        for note in input {
            output.log(note.offset, note.pitch, note.velocity, NoteSource::Input);
            if note.channel == DRUM_CHANNEL {
                continue; // a kit has no pitch classes
            }
            let on = note.velocity > 0;
            if let Some(step) = self.held.hear(note.pitch, on, Some(block.exact_step_at(note.offset))) {
                earliest = Some(earliest.map_or(step, |e| e.min(step)));
                notes += 1;
            }
        }
        let harmony = self.held.harmony();
        let Some(step) =
            earliest.filter(|_| harmony != generator.harmony() || generator.next_harmony_change().is_some())
        else {
            return Heard { steps: 0, notes };
        };
        let mut steps = 0;
        let mut step = step.max(first_unplaced_step(block));
        // The first grid line by which the blocks to come, this one first, draw `tokens` at
        // their cap; None when this block draws them.
        let drawn_by = |tokens: usize| {
            let blocks = tokens.div_ceil(cap.max(1));
            (blocks > 1).then(|| {
                let ahead = ((blocks - 1) * block.samples) as f64;
                on_the_grid((block.beats_from_origin(ahead) * STEPS_PER_BEAT as f64).ceil().max(0.0) as u64)
            })
        };
        // A change takes a time shift to it, and a velocity and a note-on a voice. (Not at the
        // music's start: there it begins again in this harmony.)
        if let Some(line) = drawn_by(2 * voices + 1).filter(|_| step > 0) {
            step = step.max(line);
        }
        if generator.now() >= step {
            let back = step.checked_sub(1).and_then(|before| self.rollback.go_back(generator, before));
            match back {
                Some(_) => queue.drop_after(step - 1),
                None if step == 0 => {
                    // Nothing has sounded: the music begins again, in this harmony. A chord
                    // track's first chord comes in the block play starts with; when the blocks
                    // to come cannot draw a velocity and a note-on a voice by the downbeat, a
                    // model that hears the meter hears silence up to the first line they can
                    // and starts there (drawn from the downbeat at a small cap, the Keys
                    // comping's first notes were too late to place). Not a chorale model: it
                    // hears no bar, and a beginning a sixteenth late is foreign to it (the
                    // Continuo bass, at a cap of 1, then rested for 13 beats).
                    generator.change_harmony_at(0, harmony);
                    steps += generator.reset().is_ok() as usize; // it reads the start token
                    let hears_the_meter = generator.model().info().hears_the_meter();
                    if let Some(line) = drawn_by(2 * voices).filter(|_| hears_the_meter) {
                        steps += generator.feed_time_until(line, HEARD_REST_STEPS).unwrap_or(0);
                    }
                    queue.clear();
                    self.rollback.clear();
                }
                // The past does not reach back: the model hears it from where it stands.
                None => {}
            }
        }
        generator.change_harmony_at(step, harmony);
        Heard { steps, notes }
    }

    /// An answer of a set length ends in this block: its notes end on its last step.
    pub fn end_answer_if_due(
        &mut self,
        block: &BlockOnGrid,
        generator: &mut Generator,
        queue: &mut EventQueue,
        output: &mut NoteOutput,
        emit: &mut impl FnMut(OutputEvent),
    ) {
        let Phase::Answering { until: Some(until) } = self.phase else { return };
        let at = block.samples_until_step(until);
        if at < block.samples as f64 - 0.5 {
            output.all_notes_off(at.round().max(0.0) as u32, emit);
            self.stop_answer(until, generator, queue);
        }
    }

    /// Places a note the model is to hear at grid step `step`, among those not read yet, in the
    /// order of the music's grid and, on one line, note-offs before note-ons, as the vocabulary
    /// writes them: a keyboard player's next note often starts a few milliseconds before the
    /// last one ends, which a melody model would otherwise hear as two voices.
    fn place_heard(&mut self, step: u64, token: Token) {
        let mut at = self.heard_queue.len();
        let is_off = matches!(token, Token::NoteOff(_));
        while at > self.heard_next {
            let (before, earlier) = self.heard_queue[at - 1];
            let after_it =
                before < step || (before == step && (!is_off || matches!(earlier, Token::NoteOff(_))));
            if after_it {
                break;
            }
            at -= 1;
        }
        // Within the capacity allocated when the listener was made.
        self.heard_queue.insert(at, (step, token));
    }

    /// The model reads the notes placed for it up to grid step `settled`, in order, at most
    /// `cap` model steps. After each it plays nothing new before `reply_from` (in a duet;
    /// listening, it does not play anyway). Returns the steps run.
    fn read_heard(&mut self, cap: usize, reply_from: u64, settled: u64, generator: &mut Generator) -> usize {
        let mut spent = 0;
        while self.heard_next < self.heard_queue.len() && spent < cap {
            let (step, token) = self.heard_queue[self.heard_next];
            if step > settled {
                break;
            }
            if generator.now() < step {
                spent += generator.feed_time_until(step, HEARD_REST_STEPS).unwrap_or(0);
                if spent >= cap {
                    break;
                }
            }
            spent += generator.feed(token).is_ok() as usize;
            self.heard_next += 1;
            generator.rest_until(reply_from);
        }
        if self.heard_next == self.heard_queue.len() {
            self.heard_queue.clear();
            self.heard_next = 0;
        }
        spent
    }

    /// Takes the generator back to grid step `step` if it has generated past it, dropping the
    /// queued events after it. Returns the step the generator now stands at: `step`, or later
    /// when its past does not reach back that far.
    fn go_back_to(&mut self, step: u64, generator: &mut Generator, queue: &mut EventQueue) -> u64 {
        if generator.now() > step && self.rollback.go_back(generator, step).is_some() {
            queue.drop_after(step);
        }
        step.max(generator.now())
    }

    /// The musician rested long enough: the answer starts at grid step `at`. Returns the model
    /// steps run (the rest, heard).
    fn start_answer(&mut self, at: u64, time_signature: (u32, u32), generator: &mut Generator) -> usize {
        // Where the call ended, to go back to if the musician plays on before the answer.
        self.rollback.clear();
        self.rollback.keep(generator);
        let spent = generator.feed_time_until(at, HEARD_REST_STEPS).unwrap_or(0);
        let bar_steps = beats_per_bar(time_signature) * STEPS_PER_BEAT as f64;
        let until = self.settings.answer_bars.map(|bars| at + (bars as f64 * bar_steps).round() as u64);
        self.phase = Phase::Answering { until };
        generator.start_with_a_note();
        self.ear.answered();
        spent
    }

    /// The answer ends at grid step `at`: the model's memory goes back to what was heard until
    /// then, and it listens again. The caller ends the notes.
    fn stop_answer(&mut self, at: u64, generator: &mut Generator, queue: &mut EventQueue) {
        self.go_back_to(at, generator, queue);
        queue.clear();
        generator.release_all(|_| {});
        self.rollback.clear();
        self.phase = Phase::Listening;
    }
}

/// The first grid step whose events this block still places (an event belongs to the block
/// holding its nearest sample).
fn first_unplaced_step(block: &BlockOnGrid) -> u64 {
    let mut step = block.exact_step_at(0).floor().max(0.0) as u64;
    while block.samples_until_step(step) < -0.5 {
        step += 1;
    }
    step
}

/// Where the model hears a musician's note start or end: on the nearest sixteenth or
/// eighth-note triplet to `exact` (grid steps from the music's start, as played), the grid its
/// training music is written on. A keyboard player's few milliseconds either side of the beat
/// are the beat, as a musician hears them; the raw timing still passes through untouched. A
/// note-off (`onset`: where its note was heard to start) is heard on the first such line after
/// its start at the soonest, so that a note released early still holds its sixteenth.
pub fn heard_on_the_grid(exact: f64, onset: Option<u64>) -> u64 {
    let exact = exact.max(0.0);
    let nearest_line = |line: u64| (exact / line as f64).round() * line as f64;
    let (sixteenth, triplet) = (nearest_line(SIXTEENTH_STEPS), nearest_line(TRIPLET_STEPS));
    let nearest = if (triplet - exact).abs() < (sixteenth - exact).abs() { triplet } else { sixteenth };
    let step = nearest as u64;
    match onset {
        Some(onset) => step.max(on_the_grid(onset + 1)),
        None => step,
    }
}

/// The first sixteenth note or eighth-note triplet at or after grid step `step`: where a reply
/// may begin. The model keeps time by its own TIME_SHIFTs, so a reply begun off the beat's grid
/// would play on off it.
fn on_the_grid(step: u64) -> u64 {
    step.next_multiple_of(SIXTEENTH_STEPS).min(step.next_multiple_of(TRIPLET_STEPS))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_human_note_is_heard_on_its_sixteenth_or_triplet_and_an_early_release_holds_it() {
        // 12 ms late and 12 ms early at 120 BPM: about half a step.
        assert_eq!(heard_on_the_grid(24.58, None), 24);
        assert_eq!(heard_on_the_grid(23.42, None), 24);
        assert_eq!(heard_on_the_grid(7.6, None), 8, "a triplet eighth");
        assert_eq!(heard_on_the_grid(6.4, None), 6, "a sixteenth");
        // A sixteenth released 8 ms early (0.4 step) still ends on its line; a staccato touch
        // holds at least to the next line.
        assert_eq!(heard_on_the_grid(29.6, Some(24)), 30);
        assert_eq!(heard_on_the_grid(25.0, Some(24)), 30);
        assert_eq!(heard_on_the_grid(-0.3, None), 0);
    }

    #[test]
    fn the_ear_waits_for_the_rest_and_lets_go_of_stuck_keys() {
        let mut ear = Ear::default();
        assert_eq!(ear.answer_due(12), None, "no call yet");
        ear.heard(60, true, 0);
        ear.heard(64, true, 6);
        ear.heard(60, false, 24);
        assert_eq!(ear.answer_due(12), None, "a note is still held");
        assert_eq!(ear.overlong(100, 192), None);
        assert_eq!(ear.overlong(200, 192), Some((64, 198)));
        ear.heard(64, false, 198);
        assert_eq!(ear.answer_due(12), Some(210));
        ear.answered();
        assert_eq!(ear.answer_due(12), None, "answered: waits for the next call");
    }
}
