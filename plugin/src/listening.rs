//! Listening: what the model hears of the musician, and when it answers.
//!
//! Owns the playing modes ([`Mode`]), the musician's notes as the player receives them
//! ([`InputNote`]), what the model has heard of them ([`Ear`]: the notes held, when the musician
//! last played, whether a call waits for its answer), and the generator's recent past
//! ([`Rollback`]): where it stood before each TIME_SHIFT it drew, so that when a note arrives
//! for a moment the generator has already run past, it goes back to that moment, hears the note
//! there and generates the rest again. The player ([`crate::player`]) decides when; nothing here
//! knows the host, and nothing allocates after it is made.

use continuo_engine::generator::{Generator, GeneratorSnapshot};
use continuo_engine::vocab::Token;

/// How Continuo plays with the musician.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// The model plays on its own; what comes in is passed through and drawn, not heard.
    #[default]
    Free,
    /// Silent while the musician plays, the model listening; after a rest, it answers.
    CallAndResponse,
    /// The model hears the musician and itself as one stream, and plays along all the time.
    Duet,
}

impl Mode {
    pub const ALL: [Mode; 3] = [Mode::Free, Mode::CallAndResponse, Mode::Duet];

    pub fn name(self) -> &'static str {
        match self {
            Mode::Free => "Free",
            Mode::CallAndResponse => "Call and response",
            Mode::Duet => "Duet",
        }
    }

    pub fn listens(self) -> bool {
        self != Mode::Free
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
