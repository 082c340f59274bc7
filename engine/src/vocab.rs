//! Vocabulary v1: notes <-> tokens on a beat grid.
//!
//! Owns the token layout (what each id means), the grid (24 steps per beat), velocity binning,
//! the [`VocabSpec`] that a model file carries, and the two directions: [`encode`] a set of notes
//! into tokens, and [`Decoder`], the streaming state machine that turns tokens back into timed
//! note events. The generator and [`decode`] both use `Decoder`, so there is one reading of a
//! token stream in the project. It knows nothing about MIDI files or models.
//!
//! Drums use the same tokens as hits: a drum stream has no NOTE_OFF, since a drum hit has no
//! meaningful length (a General MIDI kit plays each piece out however long its key is held); a
//! hit ends [`HIT_STEPS`] after it starts, or when the same piece is struck again
//! ([`encode_hits`], [`Decoder::for_hits`]). Half the tokens of writing each end: twice the
//! music in a model's window, and no step spent on an end that means nothing.
//!
//! Time is measured in beats, not seconds, so the plugin follows any host tempo and a file's own
//! tempo changes cost nothing: MIDI ticks are already beat-relative.

use serde::{Deserialize, Serialize};

/// Grid resolution: 24 steps per beat puts 16ths (6), triplet 8ths (8), triplet 16ths (4) and
/// 32nds (3) exactly on the grid.
pub const STEPS_PER_BEAT: u32 = 24;
/// The longest single TIME_SHIFT, in steps (one 4/4 bar). Longer gaps are several shifts.
pub const MAX_SHIFT_STEPS: u32 = 96;
/// Velocity is coarsened to this many bins; 4 MIDI velocities per bin.
pub const VELOCITY_BINS: u32 = 32;
/// MIDI pitches 0..=127.
pub const PITCHES: u32 = 128;

const NOTE_ON_BASE: u32 = 0;
const NOTE_OFF_BASE: u32 = NOTE_ON_BASE + PITCHES;
const TIME_SHIFT_BASE: u32 = NOTE_OFF_BASE + PITCHES;
const VELOCITY_BASE: u32 = TIME_SHIFT_BASE + MAX_SHIFT_STEPS;
/// Number of tokens in vocabulary v1: 128 + 128 + 96 + 32.
pub const VOCAB_SIZE: u32 = VELOCITY_BASE + VELOCITY_BINS;

/// How long a drum hit sounds, in grid steps: a 32nd note, shorter than the quickest roll the
/// grid can write apart from its own length, so one hit never covers the next.
pub const HIT_STEPS: u64 = 3;

/// Velocity bin assumed by a decoder that meets a NOTE_ON before any VELOCITY token (only
/// possible in generated or hand-written streams; [`encode`] always sets a velocity first).
pub const DEFAULT_VELOCITY_BIN: u8 = 20;

/// One token of vocabulary v1, in the words of the event it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Token {
    NoteOn(u8),
    NoteOff(u8),
    /// Advance time by this many grid steps, 1..=[`MAX_SHIFT_STEPS`].
    TimeShift(u8),
    /// Set the velocity bin, 0..[`VELOCITY_BINS`], for the NOTE_ONs that follow.
    Velocity(u8),
}

/// What kind of event a token is; used to break losses and masks down by type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum TokenKind {
    NoteOn,
    NoteOff,
    TimeShift,
    Velocity,
}

impl TokenKind {
    pub const ALL: [TokenKind; 4] =
        [TokenKind::NoteOn, TokenKind::NoteOff, TokenKind::TimeShift, TokenKind::Velocity];

    /// The token ids of this kind, as a contiguous range.
    pub fn ids(self) -> std::ops::Range<u32> {
        match self {
            TokenKind::NoteOn => NOTE_ON_BASE..NOTE_OFF_BASE,
            TokenKind::NoteOff => NOTE_OFF_BASE..TIME_SHIFT_BASE,
            TokenKind::TimeShift => TIME_SHIFT_BASE..VELOCITY_BASE,
            TokenKind::Velocity => VELOCITY_BASE..VOCAB_SIZE,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            TokenKind::NoteOn => "note-on",
            TokenKind::NoteOff => "note-off",
            TokenKind::TimeShift => "time-shift",
            TokenKind::Velocity => "velocity",
        }
    }
}

impl Token {
    /// The token's id in the model's vocabulary.
    pub fn id(self) -> u32 {
        match self {
            Token::NoteOn(p) => NOTE_ON_BASE + p as u32,
            Token::NoteOff(p) => NOTE_OFF_BASE + p as u32,
            Token::TimeShift(k) => TIME_SHIFT_BASE + k as u32 - 1,
            Token::Velocity(b) => VELOCITY_BASE + b as u32,
        }
    }

    /// The token with this id, or `None` for an id outside the vocabulary.
    pub fn from_id(id: u32) -> Option<Token> {
        Some(match id {
            _ if id < NOTE_OFF_BASE => Token::NoteOn((id - NOTE_ON_BASE) as u8),
            _ if id < TIME_SHIFT_BASE => Token::NoteOff((id - NOTE_OFF_BASE) as u8),
            _ if id < VELOCITY_BASE => Token::TimeShift((id - TIME_SHIFT_BASE + 1) as u8),
            _ if id < VOCAB_SIZE => Token::Velocity((id - VELOCITY_BASE) as u8),
            _ => return None,
        })
    }

    pub fn kind(self) -> TokenKind {
        match self {
            Token::NoteOn(_) => TokenKind::NoteOn,
            Token::NoteOff(_) => TokenKind::NoteOff,
            Token::TimeShift(_) => TokenKind::TimeShift,
            Token::Velocity(_) => TokenKind::Velocity,
        }
    }
}

/// The bin a MIDI velocity (1..=127) falls in.
pub fn velocity_to_bin(velocity: u8) -> u8 {
    (velocity.min(127) as u32 * VELOCITY_BINS / 128) as u8
}

/// The MIDI velocity a bin decodes to: the middle of the bin, never 0 (which would be a note-off).
pub fn bin_to_velocity(bin: u8) -> u8 {
    let width = 128 / VELOCITY_BINS;
    (bin as u32 * width + width / 2).clamp(1, 127) as u8
}

/// A position in beats, rounded to the nearest grid step.
pub fn beats_to_steps(beats: f64) -> u64 {
    (beats.max(0.0) * STEPS_PER_BEAT as f64).round() as u64
}

pub fn steps_to_beats(steps: u64) -> f64 {
    steps as f64 / STEPS_PER_BEAT as f64
}

/// Describes a vocabulary. Every model file carries one as JSON, and a decoder refuses a spec it
/// does not know rather than guess what the ids mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VocabSpec {
    pub name: String,
    pub version: u32,
    pub steps_per_beat: u32,
    pub max_shift_steps: u32,
    pub velocity_bins: u32,
    pub pitches: u32,
    pub size: u32,
    /// Token id layout, first id of each kind, so that a reader can check it and a person can read it.
    pub layout: Vec<(TokenKind, u32)>,
}

const SPEC_NAME: &str = "continuo-events";

impl VocabSpec {
    /// Vocabulary v1, the one this engine speaks.
    pub fn v1() -> VocabSpec {
        VocabSpec {
            name: SPEC_NAME.to_string(),
            version: 1,
            steps_per_beat: STEPS_PER_BEAT,
            max_shift_steps: MAX_SHIFT_STEPS,
            velocity_bins: VELOCITY_BINS,
            pitches: PITCHES,
            size: VOCAB_SIZE,
            layout: TokenKind::ALL.iter().map(|k| (*k, k.ids().start)).collect(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a VocabSpec always serialises")
    }

    /// Parses a spec and checks that this engine can decode it.
    pub fn from_json(json: &str) -> Result<VocabSpec, VocabError> {
        let spec: VocabSpec =
            serde_json::from_str(json).map_err(|e| VocabError::Unreadable(e.to_string()))?;
        spec.check()?;
        Ok(spec)
    }

    /// Refuses any spec other than v1, saying what differs.
    pub fn check(&self) -> Result<(), VocabError> {
        let known = VocabSpec::v1();
        if self.name != known.name {
            return Err(VocabError::Unknown(format!(
                "vocabulary '{}' is not Continuo's '{}'",
                self.name, known.name
            )));
        }
        if self.version != known.version {
            return Err(VocabError::Unknown(format!(
                "vocabulary version {} is not supported (this build reads version {}; a newer \
                 Continuo may read it)",
                self.version, known.version
            )));
        }
        if self != &known {
            return Err(VocabError::Unknown(format!(
                "vocabulary claims version {} but its grid or layout differs: {} steps per beat, \
                 shifts up to {}, {} velocity bins, {} tokens (expected {}, {}, {}, {})",
                self.version,
                self.steps_per_beat,
                self.max_shift_steps,
                self.velocity_bins,
                self.size,
                known.steps_per_beat,
                known.max_shift_steps,
                known.velocity_bins,
                known.size
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VocabError {
    #[error("the vocabulary description is not valid JSON: {0}")]
    Unreadable(String),
    #[error("{0}")]
    Unknown(String),
}

/// A note on the beat grid: what the vocabulary can express exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct GridNote {
    /// Onset, in grid steps from the start.
    pub start: u64,
    /// Release, in grid steps; always after `start`.
    pub end: u64,
    pub pitch: u8,
    pub velocity: u8,
}

impl GridNote {
    pub fn start_beats(&self) -> f64 {
        steps_to_beats(self.start)
    }
}

/// Puts notes (pitch, velocity, start and end in beats) on the grid, the way [`encode`] sees
/// them: times rounded to the nearest step, at least one step long, velocity at its bin's
/// centre, and a note of a pitch that is already sounding ends the earlier one (a retrigger: the
/// vocabulary cannot tell two overlapping notes of one pitch apart). Two notes of one pitch that
/// start on the same step are one note, the longer. Sorted by start, then pitch.
pub fn quantise<I>(notes: I) -> Vec<GridNote>
where
    I: IntoIterator<Item = (u8, u8, f64, f64)>,
{
    let mut grid: Vec<GridNote> = notes
        .into_iter()
        .filter(|&(pitch, velocity, _, _)| pitch < 128 && velocity > 0)
        .map(|(pitch, velocity, start, end)| {
            let start_step = beats_to_steps(start);
            let end_step = beats_to_steps(end).max(start_step + 1);
            GridNote {
                start: start_step,
                end: end_step,
                pitch,
                velocity: bin_to_velocity(velocity_to_bin(velocity)),
            }
        })
        .collect();
    // Per pitch, by start, longest first, so a duplicate onset keeps the longer note.
    grid.sort_by(|a, b| {
        (a.pitch, a.start, std::cmp::Reverse(a.end)).cmp(&(b.pitch, b.start, std::cmp::Reverse(b.end)))
    });
    grid.dedup_by(|later, earlier| later.pitch == earlier.pitch && later.start == earlier.start);
    for i in 1..grid.len() {
        let (before, after) = grid.split_at_mut(i);
        let (prev, next) = (&mut before[i - 1], &after[0]);
        if prev.pitch == next.pitch && prev.end > next.start {
            prev.end = next.start;
        }
    }
    grid.sort_by_key(|n| (n.start, n.pitch));
    grid
}

/// Encodes notes into vocabulary v1 tokens, from step 0.
///
/// Events at one instant come in one defined order, so encoding is deterministic: every NOTE_OFF
/// (by pitch), then every NOTE_ON (by pitch), each NOTE_ON preceded by a VELOCITY token when its
/// bin differs from the last one set. The stream ends at the last release.
pub fn encode<I>(notes: I) -> Vec<Token>
where
    I: IntoIterator<Item = (u8, u8, f64, f64)>,
{
    encode_grid(&quantise(notes))
}

/// Encodes notes that are already on the grid (as [`quantise`] returns them).
pub fn encode_grid(notes: &[GridNote]) -> Vec<Token> {
    let events = note_events(notes);

    let mut tokens = Vec::with_capacity(events.len() * 2);
    let mut now = 0u64;
    let mut velocity_bin: Option<u8> = None;
    for (step, on, pitch, velocity) in events {
        push_time_shifts(&mut tokens, step - now);
        now = step;
        if on {
            let bin = velocity_to_bin(velocity);
            if velocity_bin != Some(bin) {
                tokens.push(Token::Velocity(bin));
                velocity_bin = Some(bin);
            }
            tokens.push(Token::NoteOn(pitch));
        } else {
            tokens.push(Token::NoteOff(pitch));
        }
    }
    tokens
}

/// Every start and end of `notes` as (step, is_on, pitch, velocity), in the order the
/// vocabulary writes them: by step, offs (false) before ons, then by pitch.
pub(crate) fn note_events(notes: &[GridNote]) -> Vec<(u64, bool, u8, u8)> {
    let mut events: Vec<(u64, bool, u8, u8)> = Vec::with_capacity(notes.len() * 2);
    for n in notes {
        events.push((n.start, true, n.pitch, n.velocity));
        events.push((n.end, false, n.pitch, n.velocity));
    }
    events.sort_unstable_by_key(|&(step, on, pitch, _)| (step, on, pitch));
    events
}

/// The lines of a beat a drum hit may fall on, in grid steps: the sixteenths and 32nds
/// (multiples of 3) and the eighth- and sixteenth-note triplets (multiples of 4). The grooves'
/// melodic parts learned `--on-the-grid` are on them too.
pub const DRUM_LINES: [u64; 12] = [0, 3, 4, 6, 8, 9, 12, 15, 16, 18, 20, 21];

/// `beats` moved to the nearest line of the drum grid ([`DRUM_LINES`]), in beats. What drum
/// parts are written on; a part a step or so off it is either humanised at random or written
/// in decimals of a beat that only approximate a triplet (a drum library's "1.2" for a triplet
/// sixteenth), and a model would learn that as noise.
pub fn on_the_drum_grid(beats: f64) -> f64 {
    let steps = beats.max(0.0) * STEPS_PER_BEAT as f64;
    let beat = (steps / STEPS_PER_BEAT as f64).floor();
    let within = steps - beat * STEPS_PER_BEAT as f64;
    let nearest = DRUM_LINES
        .iter()
        .map(|&line| line as f64)
        .chain([STEPS_PER_BEAT as f64])
        .min_by(|a, b| (a - within).abs().total_cmp(&(b - within).abs()))
        .expect("there are lines");
    beat + nearest / STEPS_PER_BEAT as f64
}

/// Encodes drum hits (notes on the grid; their ends are ignored) as tokens without NOTE_OFFs:
/// at each instant, the hits by piece (pitch), each preceded by a VELOCITY token when its bin
/// differs from the last one set. The stream ends at the last hit.
pub fn encode_hits(notes: &[GridNote]) -> Vec<Token> {
    let mut hits: Vec<&GridNote> = notes.iter().collect();
    hits.sort_unstable_by_key(|n| (n.start, n.pitch));
    hits.dedup_by_key(|n| (n.start, n.pitch));
    let mut tokens = Vec::with_capacity(hits.len() * 2);
    let (mut now, mut velocity_bin) = (0u64, None);
    for hit in hits {
        push_time_shifts(&mut tokens, hit.start - now);
        now = hit.start;
        let bin = velocity_to_bin(hit.velocity);
        if velocity_bin != Some(bin) {
            tokens.push(Token::Velocity(bin));
            velocity_bin = Some(bin);
        }
        tokens.push(Token::NoteOn(hit.pitch));
    }
    tokens
}

/// Appends the TIME_SHIFT tokens that advance time by `steps`: full shifts first, then the rest.
pub fn push_time_shifts(tokens: &mut Vec<Token>, mut steps: u64) {
    while steps > 0 {
        let k = steps.min(MAX_SHIFT_STEPS as u64);
        tokens.push(Token::TimeShift(k as u8));
        steps -= k;
    }
}

/// A timed note event, as the decoder and the generator produce them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NoteEvent {
    /// Grid step at which the event happens.
    pub step: u64,
    pub kind: NoteEventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoteEventKind {
    On { pitch: u8, velocity: u8 },
    Off { pitch: u8 },
}

/// Streaming token reader: keeps the clock, the velocity in force and the sounding notes, and
/// turns each token into at most two note events. Tolerant of streams a model may produce: a
/// NOTE_OFF for a silent pitch is ignored, a NOTE_ON for a sounding pitch retriggers it (off,
/// then on). Allocates nothing after construction.
#[derive(Debug, Clone)]
pub struct Decoder {
    now: u64,
    velocity_bin: u8,
    /// Onset step and velocity of each sounding pitch.
    sounding: [Option<(u64, u8)>; 128],
    /// The last token read was a VELOCITY.
    after_velocity: bool,
    /// A drum stream: notes are hits, each ending [`HIT_STEPS`] after it starts.
    hits: bool,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder {
            now: 0,
            velocity_bin: DEFAULT_VELOCITY_BIN,
            sounding: [None; 128],
            after_velocity: false,
            hits: false,
        }
    }
}

impl Decoder {
    /// A decoder of melodic streams, where every note's end is written.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// A decoder of drum streams ([`encode_hits`]): each hit ends by itself.
    pub fn for_hits() -> Decoder {
        Decoder { hits: true, ..Decoder::default() }
    }

    /// Whether notes here are drum hits, whose ends are never written (a NOTE_OFF is ignored).
    pub fn plays_hits(&self) -> bool {
        self.hits
    }

    /// The clock, in grid steps.
    pub fn now(&self) -> u64 {
        self.now
    }

    /// The last token read set the velocity: another VELOCITY now would only replace it.
    pub fn follows_a_velocity(&self) -> bool {
        self.after_velocity
    }

    pub fn velocity_bin(&self) -> u8 {
        self.velocity_bin
    }

    pub fn is_sounding(&self, pitch: u8) -> bool {
        self.sounding[pitch as usize & 127].is_some()
    }

    /// Onset step of a sounding pitch.
    pub fn onset(&self, pitch: u8) -> Option<u64> {
        self.sounding[pitch as usize & 127].map(|(start, _)| start)
    }

    pub fn sounding_count(&self) -> usize {
        self.sounding.iter().filter(|s| s.is_some()).count()
    }

    /// Pitches that sound now, lowest first.
    pub fn sounding_pitches(&self) -> impl Iterator<Item = u8> + '_ {
        (0..128u8).filter(|&p| self.sounding[p as usize].is_some())
    }

    /// Reads one token and calls `emit` for each note event it causes, in order.
    pub fn push(&mut self, token: Token, mut emit: impl FnMut(NoteEvent)) {
        self.after_velocity = matches!(token, Token::Velocity(_));
        match token {
            Token::TimeShift(k) => {
                let until = self.now + k as u64;
                if self.hits {
                    self.end_hits_until(until, &mut emit);
                }
                self.now = until;
            }
            Token::Velocity(bin) => self.velocity_bin = bin.min(VELOCITY_BINS as u8 - 1),
            Token::NoteOff(_) if self.hits => {}
            Token::NoteOff(pitch) => {
                if self.sounding[pitch as usize & 127].take().is_some() {
                    emit(NoteEvent { step: self.now, kind: NoteEventKind::Off { pitch } });
                }
            }
            Token::NoteOn(pitch) => {
                let velocity = bin_to_velocity(self.velocity_bin);
                let slot = &mut self.sounding[pitch as usize & 127];
                if slot.is_some() {
                    emit(NoteEvent { step: self.now, kind: NoteEventKind::Off { pitch } });
                }
                *slot = Some((self.now, velocity));
                emit(NoteEvent { step: self.now, kind: NoteEventKind::On { pitch, velocity } });
            }
        }
    }

    /// Ends the hits whose time is up by `until`, in time order, then by pitch.
    fn end_hits_until(&mut self, until: u64, emit: &mut impl FnMut(NoteEvent)) {
        loop {
            let due = self
                .sounding
                .iter()
                .flatten()
                .map(|&(onset, _)| onset + HIT_STEPS)
                .filter(|&end| end <= until)
                .min();
            let Some(end) = due else { break };
            for pitch in 0..128u8 {
                if self.sounding[pitch as usize].is_some_and(|(onset, _)| onset + HIT_STEPS == end) {
                    self.sounding[pitch as usize] = None;
                    emit(NoteEvent { step: end, kind: NoteEventKind::Off { pitch } });
                }
            }
        }
    }

    /// Ends every sounding note now, lowest pitch first, calling `emit` for each NOTE_OFF.
    pub fn release_all(&mut self, mut emit: impl FnMut(NoteEvent)) {
        for pitch in 0..128u8 {
            if self.sounding[pitch as usize].take().is_some() {
                emit(NoteEvent { step: self.now, kind: NoteEventKind::Off { pitch } });
            }
        }
    }

    /// Back to the start: clock at 0, nothing sounding, default velocity. Emits nothing: call
    /// [`Decoder::release_all`] first if notes may be sounding.
    pub fn reset(&mut self) {
        *self = Decoder { hits: self.hits, ..Decoder::default() };
    }
}

/// Pairs note events into notes: what a piano roll or a .mid file needs from a stream of
/// events. Events must come in time order, as the decoder and the generator emit them.
#[derive(Debug, Clone)]
pub struct NoteCollector {
    open: [Option<(u64, u8)>; 128],
    notes: Vec<GridNote>,
}

impl Default for NoteCollector {
    fn default() -> Self {
        NoteCollector { open: [None; 128], notes: Vec::new() }
    }
}

impl NoteCollector {
    pub fn new() -> NoteCollector {
        NoteCollector::default()
    }

    pub fn push(&mut self, event: NoteEvent) {
        match event.kind {
            NoteEventKind::On { pitch, velocity } => {
                // A strike of a sounding pitch ends the earlier note there.
                self.close(pitch, event.step);
                self.open[pitch as usize & 127] = Some((event.step, velocity));
            }
            NoteEventKind::Off { pitch } => self.close(pitch, event.step),
        }
    }

    fn close(&mut self, pitch: u8, step: u64) {
        if let Some((start, velocity)) = self.open[pitch as usize & 127].take() {
            self.notes.push(GridNote { start, end: step.max(start + 1), pitch, velocity });
        }
    }

    /// The notes, sorted by start then pitch; notes still open end at `end` (at least one step
    /// after they started).
    pub fn finish(mut self, end: u64) -> Vec<GridNote> {
        for pitch in 0..128u8 {
            self.close(pitch, end);
        }
        self.notes.sort_by_key(|n| (n.start, n.pitch));
        self.notes
    }
}

/// Decodes a whole token stream into grid notes, sorted by start then pitch. Notes still
/// sounding at the end of the stream end there (at least one step after they started).
pub fn decode(tokens: &[Token]) -> Vec<GridNote> {
    decode_with(Decoder::new(), tokens)
}

/// Decodes a drum stream ([`encode_hits`]): every hit lasts [`HIT_STEPS`], or until the same
/// piece is struck again.
pub fn decode_hits(tokens: &[Token]) -> Vec<GridNote> {
    let mut notes =
        decode_with(Decoder::for_hits(), &[tokens, &[Token::TimeShift(HIT_STEPS as u8)]].concat());
    notes.retain(|n| n.start < n.end);
    notes
}

fn decode_with(mut decoder: Decoder, tokens: &[Token]) -> Vec<GridNote> {
    let mut notes = NoteCollector::new();
    for &token in tokens {
        decoder.push(token, |e| notes.push(e));
    }
    notes.finish(decoder.now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drum_hits_go_to_the_nearest_line_of_the_drum_grid() {
        let step = |beats: f64| (on_the_drum_grid(beats) * STEPS_PER_BEAT as f64).round() as u64;
        // A drum library's decimals: 1.2 is a triplet sixteenth (4 steps, not 5), 1.7 and 1.8
        // the triplet lines at 16 and 20 steps, 1.9 the 32nd before the beat.
        assert_eq!([step(0.2), step(0.7), step(0.8), step(0.9)], [4, 16, 20, 21]);
        // A hit humanised a step either side of the beat is on it.
        assert_eq!([step(2.0 + 1.0 / 24.0), step(3.0 - 1.0 / 24.0)], [48, 72]);
        // Sixteenths, 32nds and triplets stay where they are.
        for line in DRUM_LINES {
            assert_eq!(step(5.0 + line as f64 / 24.0), 120 + line);
        }
    }

    #[test]
    fn drum_hits_round_trip_without_their_ends() {
        let hit = |start, pitch, velocity| GridNote { start, end: start + 40, pitch, velocity };
        // A kick and a hat together, the hat again a 32nd later, a snare at its own velocity.
        let grid = vec![hit(0, 36, 102), hit(0, 42, 102), hit(3, 42, 102), hit(2, 38, 62)];
        let tokens = encode_hits(&grid);
        assert!(tokens.iter().all(|t| !matches!(t, Token::NoteOff(_))));
        assert_eq!(tokens.iter().filter(|t| matches!(t, Token::NoteOn(_))).count(), 4);
        let decoded = decode_hits(&tokens);
        let expected = vec![
            GridNote { start: 0, end: 3, pitch: 36, velocity: 102 },
            GridNote { start: 0, end: 3, pitch: 42, velocity: 102 },
            GridNote { start: 2, end: 5, pitch: 38, velocity: 62 },
            GridNote { start: 3, end: 6, pitch: 42, velocity: 102 },
        ];
        assert_eq!(decoded, expected);
        // Struck again before its time is up, a hit ends where the next begins.
        let roll = decode_hits(&encode_hits(&[hit(0, 38, 102), hit(2, 38, 102)]));
        assert_eq!((roll[0].end, roll[1].start, roll[1].end), (2, 2, 5));
        // Hits end in time order however far time jumps, and a written NOTE_OFF means nothing.
        let mut decoder = Decoder::for_hits();
        let mut events = Vec::new();
        for t in [
            Token::NoteOn(36),
            Token::TimeShift(1),
            Token::NoteOn(42),
            Token::NoteOff(42),
            Token::TimeShift(50),
        ] {
            decoder.push(t, |e| events.push((e.step, e.kind)));
        }
        let offs: Vec<(u64, NoteEventKind)> =
            events.into_iter().filter(|e| matches!(e.1, NoteEventKind::Off { .. })).collect();
        assert_eq!(offs, vec![(3, NoteEventKind::Off { pitch: 36 }), (4, NoteEventKind::Off { pitch: 42 })]);
        assert_eq!(decoder.sounding_count(), 0);
        decoder.reset();
        assert!(decoder.plays_hits(), "a reset drum decoder still reads hits");
    }

    #[test]
    fn ids_cover_the_vocabulary_once() {
        for id in 0..VOCAB_SIZE {
            assert_eq!(Token::from_id(id).unwrap().id(), id);
        }
        assert_eq!(Token::from_id(VOCAB_SIZE), None);
        assert_eq!(VOCAB_SIZE, 384);
    }

    #[test]
    fn simultaneous_events_are_offs_then_ons_by_pitch() {
        // C and E end at beat 1 where G and B start: both offs come first, then the ons.
        let tokens = encode([(64, 80, 0.0, 1.0), (60, 80, 0.0, 1.0), (71, 80, 1.0, 2.0), (67, 80, 1.0, 2.0)]);
        let v = Token::Velocity(velocity_to_bin(80));
        assert_eq!(
            tokens,
            vec![
                v,
                Token::NoteOn(60),
                Token::NoteOn(64),
                Token::TimeShift(24),
                Token::NoteOff(60),
                Token::NoteOff(64),
                Token::NoteOn(67),
                Token::NoteOn(71),
                Token::TimeShift(24),
                Token::NoteOff(67),
                Token::NoteOff(71),
            ]
        );
    }

    #[test]
    fn long_gaps_are_several_shifts() {
        let tokens = encode([(60, 64, 10.0, 10.5)]);
        let shift: u64 = tokens
            .iter()
            .take_while(|t| matches!(t, Token::TimeShift(_)))
            .map(|t| match t {
                Token::TimeShift(k) => *k as u64,
                _ => 0,
            })
            .sum();
        assert_eq!(shift, 240);
        assert_eq!(tokens[..3], [Token::TimeShift(96), Token::TimeShift(96), Token::TimeShift(48)]);
    }

    #[test]
    fn velocity_is_sent_only_when_its_bin_changes() {
        let tokens = encode([(60, 100, 0.0, 1.0), (62, 101, 1.0, 2.0), (64, 40, 2.0, 3.0)]);
        let velocities = tokens.iter().filter(|t| t.kind() == TokenKind::Velocity).count();
        assert_eq!(velocities, 2, "100 and 101 share a bin, 40 does not: {tokens:?}");
    }

    #[test]
    fn overlapping_notes_of_one_pitch_retrigger() {
        let grid = quantise([(60, 90, 0.0, 2.0), (60, 90, 1.0, 3.0), (60, 50, 1.0, 1.5)]);
        assert_eq!(grid.len(), 2);
        assert_eq!((grid[0].start, grid[0].end), (0, 24));
        assert_eq!((grid[1].start, grid[1].end), (24, 72));
        assert_eq!(decode(&encode_grid(&grid)), grid);
    }

    #[test]
    fn zero_length_notes_last_one_step() {
        let grid = quantise([(60, 90, 1.0, 1.0)]);
        assert_eq!((grid[0].start, grid[0].end), (24, 25));
    }

    #[test]
    fn decoder_tolerates_what_a_model_may_write() {
        let tokens = [Token::NoteOff(60), Token::NoteOn(60), Token::NoteOn(60), Token::TimeShift(3)];
        let mut events = Vec::new();
        let mut decoder = Decoder::new();
        for t in tokens {
            decoder.push(t, |e| events.push(e));
        }
        decoder.release_all(|e| events.push(e));
        let v = bin_to_velocity(DEFAULT_VELOCITY_BIN);
        assert_eq!(
            events,
            vec![
                NoteEvent { step: 0, kind: NoteEventKind::On { pitch: 60, velocity: v } },
                NoteEvent { step: 0, kind: NoteEventKind::Off { pitch: 60 } },
                NoteEvent { step: 0, kind: NoteEventKind::On { pitch: 60, velocity: v } },
                NoteEvent { step: 3, kind: NoteEventKind::Off { pitch: 60 } },
            ]
        );
    }

    #[test]
    fn spec_round_trips_and_foreign_specs_are_refused() {
        let spec = VocabSpec::v1();
        assert_eq!(VocabSpec::from_json(&spec.to_json()).unwrap(), spec);

        let mut newer = spec.clone();
        newer.version = 2;
        let err = VocabSpec::from_json(&newer.to_json()).unwrap_err().to_string();
        assert!(err.contains("version 2 is not supported"), "{err}");

        let mut finer = spec.clone();
        finer.steps_per_beat = 48;
        let err = VocabSpec::from_json(&finer.to_json()).unwrap_err().to_string();
        assert!(err.contains("48 steps per beat"), "{err}");

        assert!(VocabSpec::from_json("{\"name\": 3}").is_err());
    }

    #[test]
    fn velocity_bins_decode_inside_themselves() {
        for v in 1..=127u8 {
            let bin = velocity_to_bin(v);
            assert!(bin < VELOCITY_BINS as u8);
            assert_eq!(velocity_to_bin(bin_to_velocity(bin)), bin);
            assert!(bin_to_velocity(bin) > 0);
        }
    }
}
