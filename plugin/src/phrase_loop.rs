//! The phrase loop: a take of a few bars, recorded as it is generated, then played again and
//! again, exactly, until the musician asks for a new one.
//!
//! Owns the take's events (grid steps from the loop's start), its length, and where the replay
//! stands (which repetition, which event). Notes still sounding when the take ends are ended on
//! the loop's last step, so every repetition starts from silence and sounds the same. The player
//! ([`crate::player`]) feeds it while recording and draws from it afterwards; nothing here
//! allocates after [`PhraseLoop::new`].

use continuo_engine::vocab::{NoteEvent, NoteEventKind};

/// Events a take may hold: eight bars of dense four-part writing are under a thousand.
pub const LOOP_CAPACITY: usize = 4096;

/// The loop lengths a musician can choose, in bars (0: no loop).
pub const LOOP_BAR_CHOICES: [u32; 5] = [0, 1, 2, 4, 8];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Take {
    Recording,
    Ready,
}

pub struct PhraseLoop {
    events: Vec<NoteEvent>,
    /// The take's length, in grid steps.
    length: u64,
    take: Take,
    /// The repetition being replayed, and the next event of it to hand out.
    repetition: u64,
    cursor: usize,
}

impl PhraseLoop {
    pub fn new() -> PhraseLoop {
        PhraseLoop {
            events: Vec::with_capacity(LOOP_CAPACITY),
            length: 0,
            take: Take::Recording,
            repetition: 0,
            cursor: 0,
        }
    }

    /// Starts recording a new take of `length` grid steps.
    pub fn record_new(&mut self, length: u64) {
        self.events.clear();
        self.length = length.max(1);
        self.take = Take::Recording;
        self.rewind();
    }

    /// Back to the first repetition; a take being recorded starts over too (the generator
    /// starts over with it).
    pub fn rewind(&mut self) {
        self.repetition = 0;
        self.cursor = 0;
        if self.take == Take::Recording {
            self.events.clear();
        }
    }

    pub fn length(&self) -> u64 {
        self.length
    }

    pub fn is_recording(&self) -> bool {
        self.take == Take::Recording
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
        if self.take != Take::Recording
            || event.step >= self.length
            || self.events.len() >= LOOP_CAPACITY - 128
        {
            return false;
        }
        self.events.push(event);
        true
    }

    /// Ends the recording: notes still sounding end on the loop's last step. Returns those
    /// endings through `emit`, to be played in the first repetition as in every other.
    pub fn finish(&mut self, mut emit: impl FnMut(NoteEvent)) {
        let mut sounding = [false; 128];
        for event in &self.events {
            match event.kind {
                NoteEventKind::On { pitch, .. } => sounding[pitch as usize] = true,
                NoteEventKind::Off { pitch } => sounding[pitch as usize] = false,
            }
        }
        for pitch in 0..128u8 {
            if sounding[pitch as usize] {
                let end = NoteEvent { step: self.length, kind: NoteEventKind::Off { pitch } };
                self.events.push(end);
                emit(end);
            }
        }
        self.take = Take::Ready;
        // The recording was the first repetition.
        self.repetition = 1;
        self.cursor = 0;
    }

    /// Replay: the next event, on the grid counted from the first repetition's start, if it
    /// falls before `until`.
    pub fn next_before(&mut self, until: u64) -> Option<NoteEvent> {
        if self.take != Take::Ready || self.events.is_empty() {
            return None;
        }
        let event = self.events[self.cursor];
        let step = event.step + self.repetition * self.length;
        if step >= until {
            return None;
        }
        self.cursor += 1;
        if self.cursor == self.events.len() {
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
}
