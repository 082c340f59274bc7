//! The harmony a part is played against: what the other parts sound at a moment, as a model
//! following them hears it.
//!
//! Owns the one definition of that input, for the trainer and the plugin alike: [`Harmony`] (the
//! pitch classes held and the lowest held note's), its packing into a dataset's u16 stream, the
//! [`HarmonyInput`] a model reads (12, 22 or 24 numbers: with the meter, where the clock stands
//! in the bar), and [`encode_against`], a part's tokens with
//! the harmony each one is read in, time passing in steps that stop at every beat and at every
//! change of harmony, so that a model always reads a step where the harmony changes, in training
//! as in play. The beats are there because a stop only at changes tells the model that something
//! changed: trained on chorales, whose harmony moves every beat, a bass that heard a chord held
//! for two bars heard no stop at all, waited for one, and fell silent or repeated its note.

use serde::{Deserialize, Serialize};

use crate::vocab::{note_events, push_time_shifts, velocity_to_bin, GridNote, Token, STEPS_PER_BEAT};

/// What the other parts sound at one moment: the pitch classes held (bit `pc` set, C = 0), and
/// the pitch class of the lowest held note (the chord's bass, which tells an inversion and a
/// slash chord from the root position).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Harmony {
    pitch_classes: u16,
    bass: Option<u8>,
}

impl Harmony {
    /// Nothing held: what a model hears when no harmony comes in, and what it learned when the
    /// other parts rested.
    pub const SILENT: Harmony = Harmony { pitch_classes: 0, bass: None };

    /// The harmony of the notes `pitches` (MIDI note numbers) sounding together.
    pub fn of_pitches(pitches: impl IntoIterator<Item = u8>) -> Harmony {
        let mut harmony = Harmony::SILENT;
        let mut lowest = u8::MAX;
        for pitch in pitches {
            harmony.pitch_classes |= 1 << (pitch % 12);
            lowest = lowest.min(pitch);
        }
        harmony.bass = (lowest != u8::MAX).then_some(lowest % 12);
        harmony
    }

    /// The pitch classes `classes` over the bass `bass` (which joins them): a chord symbol's
    /// harmony.
    pub fn of_classes(classes: impl IntoIterator<Item = u8>, bass: u8) -> Harmony {
        let mut pitch_classes = 1 << (bass % 12);
        for pc in classes {
            pitch_classes |= 1 << (pc % 12);
        }
        Harmony { pitch_classes, bass: Some(bass % 12) }
    }

    pub fn is_silent(self) -> bool {
        self.pitch_classes == 0
    }

    /// Whether pitch class `pc` (0 = C) is held.
    pub fn holds(self, pc: u8) -> bool {
        self.pitch_classes & (1 << (pc % 12)) != 0
    }

    /// The pitch classes held, ascending from C.
    pub fn classes(self) -> impl Iterator<Item = u8> {
        (0..12u8).filter(move |&pc| self.holds(pc))
    }

    /// The pitch classes as a 12-bit mask (bit 0 = C).
    pub fn class_mask(self) -> u16 {
        self.pitch_classes
    }

    /// The lowest held note's pitch class.
    pub fn bass(self) -> Option<u8> {
        self.bass
    }

    /// The same harmony `semitones` higher (lower when negative), as a transposed song's.
    pub fn transposed(self, semitones: i32) -> Harmony {
        let shift = semitones.rem_euclid(12) as u32;
        let mask = self.pitch_classes as u32;
        Harmony {
            pitch_classes: (((mask << shift) | (mask >> (12 - shift))) & 0xFFF) as u16,
            bass: self.bass.map(|b| ((b as u32 + shift) % 12) as u8),
        }
    }

    /// Packed for a dataset's harmony stream: the 12 pitch classes in bits 0..12, the bass + 1
    /// in bits 12..16 (0: nothing held).
    pub fn pack(self) -> u16 {
        self.pitch_classes | (self.bass.map_or(0, |b| b as u16 + 1) << 12)
    }

    /// The inverse of [`Harmony::pack`]; None for a value it never writes.
    pub fn unpack(packed: u16) -> Option<Harmony> {
        let pitch_classes = packed & 0xFFF;
        let bass = match packed >> 12 {
            0 => None,
            b @ 1..=12 => Some(b as u8 - 1),
            _ => return None,
        };
        let consistent = match bass {
            None => pitch_classes == 0,
            Some(b) => pitch_classes & (1 << b) != 0,
        };
        consistent.then_some(Harmony { pitch_classes, bass })
    }
}

/// How a model reads the harmony: the numbers of its `harmony` input. Chosen per model when it
/// is trained and named in its file (`continuo.harmony`), so both kinds load.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HarmonyInput {
    /// 12 numbers: 1 for each pitch class held, else 0.
    PitchClasses,
    /// 24: the 12 pitch classes, then the lowest held note's pitch class one-hot.
    PitchClassesAndBass,
    /// 22: the 12 pitch classes, then where the clock stands in the bar ([`METER_PERIODS`]).
    /// A groove's bass or comping learned without it lost the beat: its notes came a sixth of a
    /// beat early, bar after bar, as nothing told it where the beat was between chord changes
    /// (the chorales' harmony moves on every beat and tells it).
    PitchClassesAndMeter,
}

/// The meter a model may hear, in grid steps: the sixteenth, the eighth, the beat, the half bar
/// and the 4/4 bar. Each is two numbers, the sine and cosine of where the clock stands in it, so
/// "on the beat" is one value and the next sixteenth is near it. The clock counts from the
/// music's first bar line (a song's first bar in training, the host's bar line in play).
pub const METER_PERIODS: [u64; 5] = [6, 12, 24, 48, 96];

impl HarmonyInput {
    pub const ALL: [HarmonyInput; 3] =
        [HarmonyInput::PitchClasses, HarmonyInput::PitchClassesAndBass, HarmonyInput::PitchClassesAndMeter];

    /// How many numbers the model reads.
    pub fn width(self) -> usize {
        match self {
            HarmonyInput::PitchClasses => 12,
            HarmonyInput::PitchClassesAndBass => 24,
            HarmonyInput::PitchClassesAndMeter => 12 + 2 * METER_PERIODS.len(),
        }
    }

    /// Its name in a model file and on the command line.
    pub fn id(self) -> &'static str {
        match self {
            HarmonyInput::PitchClasses => "pitch-classes",
            HarmonyInput::PitchClassesAndBass => "pitch-classes-and-bass",
            HarmonyInput::PitchClassesAndMeter => "pitch-classes-and-meter",
        }
    }

    pub fn from_id(id: &str) -> Option<HarmonyInput> {
        HarmonyInput::ALL.into_iter().find(|input| input.id() == id)
    }

    /// Whether the model hears where the clock stands in the bar: its music starts on a bar line.
    pub fn hears_the_meter(self) -> bool {
        self == HarmonyInput::PitchClassesAndMeter
    }

    /// Writes `harmony`, with the clock at grid step `step` (from the music's first bar line),
    /// as this input's numbers into `out` (exactly [`HarmonyInput::width`]).
    pub fn write(self, harmony: Harmony, step: u64, out: &mut [f32]) {
        debug_assert_eq!(out.len(), self.width());
        out.fill(0.0);
        for pc in harmony.classes() {
            out[pc as usize] = 1.0;
        }
        match (self, harmony.bass) {
            (HarmonyInput::PitchClassesAndBass, Some(bass)) => out[12 + bass as usize] = 1.0,
            (HarmonyInput::PitchClassesAndMeter, _) => {
                for (k, period) in METER_PERIODS.into_iter().enumerate() {
                    let phase = std::f32::consts::TAU * (step % period) as f32 / period as f32;
                    (out[12 + 2 * k], out[13 + 2 * k]) = phase.sin_cos();
                }
            }
            _ => {}
        }
    }
}

/// The clock once each token is read, in grid steps from the first token's start: where a
/// model that hears the meter hears it (the generator's clock, in play).
pub fn clocks_once_read(ids: impl IntoIterator<Item = u32>) -> impl Iterator<Item = u64> {
    ids.into_iter().scan(0u64, |clock, id| {
        if let Some(Token::TimeShift(steps)) = Token::from_id(id) {
            *clock += steps as u64;
        }
        Some(*clock)
    })
}

/// What the notes `notes` sound over time: the harmony from each step on where it changes,
/// starting with step 0 (silent when nothing sounds there). Notes sound from their start up to,
/// not including, their end.
pub fn harmony_changes(notes: &[GridNote]) -> Vec<(u64, Harmony)> {
    let mut edges: Vec<(u64, bool, u8)> =
        notes.iter().flat_map(|n| [(n.start, true, n.pitch), (n.end, false, n.pitch)]).collect();
    edges.sort_unstable();
    let mut sounding = [0u16; 128];
    let mut changes = vec![(0, Harmony::SILENT)];
    let mut i = 0;
    while i < edges.len() {
        let step = edges[i].0;
        while i < edges.len() && edges[i].0 == step {
            let (_, on, pitch) = edges[i];
            let count = &mut sounding[pitch as usize];
            *count = if on { *count + 1 } else { count.saturating_sub(1) };
            i += 1;
        }
        let harmony = Harmony::of_pitches((0..128u8).filter(|&p| sounding[p as usize] > 0));
        match changes.last_mut() {
            Some(last) if last.0 == step => last.1 = harmony,
            Some(last) if last.1 == harmony => {}
            _ => changes.push((step, harmony)),
        }
    }
    changes.dedup_by(|later, earlier| later.1 == earlier.1);
    changes
}

/// The harmony in force at `step` in `changes` (as [`harmony_changes`] returns them).
pub fn harmony_at(changes: &[(u64, Harmony)], step: u64) -> Harmony {
    let i = changes.partition_point(|&(from, _)| from <= step);
    if i == 0 {
        Harmony::SILENT
    } else {
        changes[i - 1].1
    }
}

/// A harmony over time that repeats: a progression, or the harmony of a piece, played again
/// from its start after its length (a chord clip looping on a DAW's track).
#[derive(Debug, Clone, PartialEq)]
pub struct HarmonyTrack {
    /// Where the harmony changes within one round, starting at step 0.
    changes: Vec<(u64, Harmony)>,
    /// Steps in one round (at least 1).
    length: u64,
}

impl HarmonyTrack {
    /// `changes` (as [`harmony_changes`] returns them) repeating every `length` steps.
    pub fn new(changes: &[(u64, Harmony)], length: u64) -> HarmonyTrack {
        let length = length.max(1);
        let mut kept: Vec<(u64, Harmony)> = vec![(0, harmony_at(changes, 0))];
        for &(from, harmony) in changes.iter().filter(|&&(from, _)| from > 0 && from < length) {
            if kept.last().is_some_and(|last| last.1 != harmony) {
                kept.push((from, harmony));
            }
        }
        HarmonyTrack { changes: kept, length }
    }

    /// A progression's changes ending with the step where it ends (a last entry, silent, as
    /// [`crate::chords::parse_progression`] writes them), repeating.
    pub fn of_progression(changes_and_end: &[(u64, Harmony)]) -> HarmonyTrack {
        let end = changes_and_end.last().map_or(1, |&(end, _)| end);
        HarmonyTrack::new(changes_and_end, end)
    }

    /// Steps in one round.
    pub fn length(&self) -> u64 {
        self.length
    }

    /// The harmony at `step`.
    pub fn at(&self, step: u64) -> Harmony {
        harmony_at(&self.changes, step % self.length)
    }

    /// The first step after `step` where the harmony changes (it may change back to itself
    /// where a round ends and begins again, if so the next round's start).
    pub fn next_change_after(&self, step: u64) -> u64 {
        let (round, within) = (step / self.length, step % self.length);
        let next = self.changes.iter().map(|&(from, _)| from).find(|&from| from > within);
        round * self.length + next.unwrap_or(self.length)
    }

    /// Every change (step, harmony) from step 0 up to `end`, rounds repeated.
    pub fn changes_until(&self, end: u64) -> Vec<(u64, Harmony)> {
        let mut changes = Vec::new();
        let mut step = 0;
        while step < end {
            let harmony = self.at(step);
            if changes.last().is_none_or(|&(_, last)| last != harmony) {
                changes.push((step, harmony));
            }
            step = self.next_change_after(step);
        }
        changes
    }
}

/// The first beat after grid step `step`: where a model that follows the harmony reads time
/// passing at the latest (see [`encode_against`]).
pub fn next_beat(step: u64) -> u64 {
    (step / STEPS_PER_BEAT as u64 + 1) * STEPS_PER_BEAT as u64
}

/// A part's tokens against the harmony `changes` of the other parts: the tokens [`encode_grid`]
/// writes, except that time passes in TIME_SHIFTs that stop at every beat and at every change
/// of harmony within the part, and beside each token the harmony at the clock once it is read (a token after
/// which time has reached a change is read in the new harmony: the model hears a chord change
/// at the step it happens, before it chooses what to play there).
///
/// [`encode_grid`]: crate::vocab::encode_grid
pub fn encode_against(part: &[GridNote], changes: &[(u64, Harmony)]) -> (Vec<Token>, Vec<Harmony>) {
    let events = note_events(part);

    let mut tokens = Vec::with_capacity(events.len() * 2);
    let mut heard = Vec::with_capacity(events.len() * 2);
    let mut now = 0u64;
    let mut velocity_bin: Option<u8> = None;
    let mut next_change = changes.partition_point(|&(from, _)| from <= now);
    let push = |tokens: &mut Vec<Token>, heard: &mut Vec<Harmony>, token: Token, now: u64| {
        tokens.push(token);
        heard.push(harmony_at(changes, now));
    };
    for (step, on, pitch, velocity) in events {
        while now < step {
            let stop = changes.get(next_change).map_or(step, |&(from, _)| from.min(step)).min(next_beat(now));
            let before = tokens.len();
            push_time_shifts(&mut tokens, stop - now);
            // Each shift is read where it lands.
            let mut clock = now;
            for token in &tokens[before..] {
                if let Token::TimeShift(k) = token {
                    clock += *k as u64;
                }
                heard.push(harmony_at(changes, clock));
            }
            now = stop;
            while changes.get(next_change).is_some_and(|&(from, _)| from <= now) {
                next_change += 1;
            }
        }
        if on {
            let bin = velocity_to_bin(velocity);
            if velocity_bin != Some(bin) {
                push(&mut tokens, &mut heard, Token::Velocity(bin), now);
                velocity_bin = Some(bin);
            }
            push(&mut tokens, &mut heard, Token::NoteOn(pitch), now);
        } else {
            push(&mut tokens, &mut heard, Token::NoteOff(pitch), now);
        }
    }
    debug_assert_eq!(tokens.len(), heard.len());
    (tokens, heard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vocab::{decode, encode_grid};

    fn note(pitch: u8, start: u64, end: u64) -> GridNote {
        GridNote { start, end, pitch, velocity: 82 }
    }

    #[test]
    fn packing_round_trips_and_transposes_in_a_circle() {
        let c_major_first_inversion = Harmony::of_pitches([52, 60, 67]);
        assert_eq!(c_major_first_inversion.classes().collect::<Vec<_>>(), vec![0, 4, 7]);
        assert_eq!(c_major_first_inversion.bass(), Some(4));
        for h in [Harmony::SILENT, c_major_first_inversion, Harmony::of_pitches([71])] {
            assert_eq!(Harmony::unpack(h.pack()), Some(h));
            for shift in -13..=13 {
                let moved = h.transposed(shift);
                assert_eq!(Harmony::unpack(moved.pack()), Some(moved));
                assert_eq!(moved.transposed(-shift), h);
            }
        }
        // B major from C major, up 11 or down 1.
        let b = c_major_first_inversion.transposed(-1);
        assert_eq!(b.classes().collect::<Vec<_>>(), vec![3, 6, 11]);
        assert_eq!(b.bass(), Some(3));
        assert_eq!(b, c_major_first_inversion.transposed(11));
        assert_eq!(Harmony::unpack(0x1000 | 0b10), None, "a bass outside the classes");
    }

    #[test]
    fn inputs_write_the_classes_and_the_bass() {
        let h = Harmony::of_pitches([43, 59, 62]); // G B D over G
        let mut twelve = [9.0; 12];
        HarmonyInput::PitchClasses.write(h, 7, &mut twelve);
        assert_eq!(
            twelve.iter().enumerate().filter(|(_, &x)| x == 1.0).map(|(i, _)| i).collect::<Vec<_>>(),
            [2, 7, 11]
        );
        let mut both = [9.0; 24];
        HarmonyInput::PitchClassesAndBass.write(h, 7, &mut both);
        assert_eq!(
            both.iter().enumerate().filter(|(_, &x)| x == 1.0).map(|(i, _)| i).collect::<Vec<_>>(),
            [2, 7, 11, 19]
        );
        HarmonyInput::PitchClassesAndBass.write(Harmony::SILENT, 7, &mut both);
        assert!(both.iter().all(|&x| x == 0.0));
    }

    #[test]
    fn the_meter_says_where_the_clock_stands_in_the_bar() {
        let input = HarmonyInput::PitchClassesAndMeter;
        let mut numbers = [9.0; 22];
        let meter = |step: u64, numbers: &mut [f32; 22]| {
            input.write(Harmony::of_pitches([60, 64, 67]), step, numbers);
            numbers[12..].to_vec()
        };
        // On the downbeat every period starts: sines 0, cosines 1; the chord is there too.
        assert_eq!(meter(0, &mut numbers), [0.0, 1.0].repeat(5));
        assert_eq!(&numbers[..12], &[1., 0., 0., 0., 1., 0., 0., 1., 0., 0., 0., 0.]);
        // Every bar line alike, every beat alike in its beat, eighth and sixteenth.
        assert_eq!(meter(96 * 7, &mut numbers), meter(0, &mut numbers));
        let second_beat = meter(24, &mut numbers);
        assert_eq!(second_beat[..6], [0.0, 1.0].repeat(3)[..]);
        // A quarter of the bar: the half bar's phase is at a half (cosine -1), the bar's at a
        // quarter (sine 1).
        assert!((second_beat[7] + 1.0).abs() < 1e-6 && (second_beat[8] - 1.0).abs() < 1e-6);
        // The sixteenth after the beat: a sixteenth's turn is whole, the eighth's half, the
        // beat's a quarter.
        let after = meter(24 + 6, &mut numbers);
        assert_eq!(after[..2], [0.0, 1.0]);
        assert!((after[3] + 1.0).abs() < 1e-6 && (after[4] - 1.0).abs() < 1e-6, "{after:?}");
    }

    #[test]
    fn changes_follow_the_notes_sounding() {
        let beat = STEPS_PER_BEAT as u64;
        let chords = [
            note(60, 0, 2 * beat),
            note(64, 0, 2 * beat),
            note(65, 2 * beat, 4 * beat),
            note(57, 2 * beat, 3 * beat),
        ];
        let changes = harmony_changes(&chords);
        assert_eq!(
            changes,
            vec![
                (0, Harmony::of_pitches([60, 64])),
                (2 * beat, Harmony::of_pitches([57, 65])),
                (3 * beat, Harmony::of_pitches([65])),
                (4 * beat, Harmony::SILENT),
            ]
        );
        assert_eq!(harmony_at(&changes, 2 * beat - 1), Harmony::of_pitches([60, 64]));
        assert_eq!(harmony_at(&changes, 10 * beat), Harmony::SILENT);
    }

    #[test]
    fn a_track_repeats_its_round() {
        let (c, g) = (Harmony::of_pitches([48, 52, 55]), Harmony::of_pitches([43, 47, 50]));
        let track = HarmonyTrack::new(&[(0, c), (96, g)], 192);
        assert_eq!((track.at(0), track.at(100), track.at(192), track.at(300)), (c, g, c, g));
        assert_eq!(track.next_change_after(0), 96);
        assert_eq!(track.next_change_after(96), 192);
        assert_eq!(track.next_change_after(200), 288);
        assert_eq!(track.changes_until(400), vec![(0, c), (96, g), (192, c), (288, g), (384, c)]);
        let one_chord = HarmonyTrack::new(&[(0, c)], 96);
        assert_eq!(one_chord.changes_until(300), vec![(0, c)]);
    }

    #[test]
    fn a_part_against_the_harmony_stops_at_each_change_and_decodes_as_it_was() {
        let beat = STEPS_PER_BEAT as u64;
        // A bass holding C for four beats under chords changing every beat.
        let bass = [note(36, 0, 4 * beat), note(43, 4 * beat, 5 * beat)];
        let upper: Vec<GridNote> = [[64, 67], [65, 69], [67, 71], [64, 67]]
            .iter()
            .enumerate()
            .flat_map(|(i, ch)| ch.map(|p| note(p, i as u64 * beat, (i as u64 + 1) * beat)))
            .collect();
        let changes = harmony_changes(&upper);
        let (tokens, heard) = encode_against(&bass, &changes);
        assert_eq!(tokens.len(), heard.len());
        assert_eq!(decode(&tokens), decode(&encode_grid(&bass)), "the same music");
        let shifts: Vec<u8> =
            tokens.iter().filter_map(|t| if let Token::TimeShift(k) = t { Some(*k) } else { None }).collect();
        assert_eq!(shifts, vec![24, 24, 24, 24, 24], "time stops at every chord change");
        // A chord held for two bars: time still stops on every beat.
        let held = [note(60, 0, 8 * beat), note(64, 0, 8 * beat)];
        let (tokens, _) = encode_against(&[note(36, 0, 8 * beat)], &harmony_changes(&held));
        assert_eq!(tokens.iter().filter(|t| matches!(t, Token::TimeShift(24))).count(), 8);
        // Each token is read in the harmony where the clock stands after it.
        let mut clock = 0;
        for (token, h) in tokens.iter().zip(&heard) {
            if let Token::TimeShift(k) = token {
                clock += *k as u64;
            }
            assert_eq!(*h, harmony_at(&changes, clock));
        }
        assert_eq!(heard[0], Harmony::of_pitches([64, 67]), "the first note is read in the first chord");
    }
}
