//! Fit to the harmony: how much of a part sounds in the harmony held against it.
//!
//! Owns the measure (the share of the part's sounding time, and of its onsets on beats, whose
//! pitch class the harmony holds at that moment, counted only where the harmony holds something)
//! and reading back, from a dataset's token and harmony streams, the harmony a song was played
//! against, so the data's own fit is the ceiling a model that follows the harmony is held to.

use continuo_engine::harmony::{clocks_once_read, harmony_at, Harmony, HarmonyTrack};
use continuo_engine::vocab::{GridNote, STEPS_PER_BEAT};
use serde::Serialize;

/// Counts behind a fit, pooled over pieces: steps sounded (and in the harmony), onsets on beats
/// (and in the harmony), where the harmony held something.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct FitTally {
    pub sounding_steps: u64,
    pub sounding_in_harmony: u64,
    pub beat_onsets: u64,
    pub beat_onsets_in_harmony: u64,
}

impl FitTally {
    /// The notes `notes` against the harmony changes `changes` (step 0 first).
    pub fn of(notes: &[GridNote], changes: &[(u64, Harmony)]) -> FitTally {
        let mut tally = FitTally::default();
        for note in notes {
            let pc = note.pitch % 12;
            for step in note.start..note.end {
                let harmony = harmony_at(changes, step);
                if harmony.is_silent() {
                    continue;
                }
                tally.sounding_steps += 1;
                tally.sounding_in_harmony += harmony.holds(pc) as u64;
                if step == note.start && step.is_multiple_of(STEPS_PER_BEAT as u64) {
                    tally.beat_onsets += 1;
                    tally.beat_onsets_in_harmony += harmony.holds(pc) as u64;
                }
            }
        }
        tally
    }

    pub fn add(mut self, other: FitTally) -> FitTally {
        self.sounding_steps += other.sounding_steps;
        self.sounding_in_harmony += other.sounding_in_harmony;
        self.beat_onsets += other.beat_onsets;
        self.beat_onsets_in_harmony += other.beat_onsets_in_harmony;
        self
    }

    pub fn fit(self) -> Fit {
        let share = |part: u64, whole: u64| (whole > 0).then(|| part as f64 / whole as f64);
        Fit {
            sounding: share(self.sounding_in_harmony, self.sounding_steps),
            onsets_on_beats: share(self.beat_onsets_in_harmony, self.beat_onsets),
            tally: self,
        }
    }
}

/// The shares of a set of pieces: None where nothing was counted.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Fit {
    /// Of the time the part sounds against a harmony, the share in it.
    pub sounding: Option<f64>,
    /// Of the part's onsets on a beat against a harmony, the share in it.
    pub onsets_on_beats: Option<f64>,
    pub tally: FitTally,
}

/// The harmony a dataset song was played against, read back from its tokens and their
/// harmony stream: each token is read where the clock stands once it is read (see
/// `harmony::encode_against`), as a track one round long that ends at its last step rounded up
/// to a bar.
pub fn harmony_of_song(tokens: &[u16], harmony: &[u16]) -> HarmonyTrack {
    let mut changes: Vec<(u64, Harmony)> = Vec::new();
    let mut now = 0u64;
    for (clock, &packed) in clocks_once_read(tokens.iter().map(|&t| t as u32)).zip(harmony) {
        now = clock;
        let heard = Harmony::unpack(packed).unwrap_or(Harmony::SILENT);
        match changes.last_mut() {
            Some(last) if last.0 == now => last.1 = heard,
            Some(last) if last.1 == heard => {}
            _ => changes.push((now, heard)),
        }
    }
    let bar = 4 * STEPS_PER_BEAT as u64;
    HarmonyTrack::new(&changes, (now + 1).div_ceil(bar) * bar)
}

#[cfg(test)]
mod tests {
    use super::*;
    use continuo_engine::harmony::{encode_against, harmony_changes};

    fn note(pitch: u8, start: u64, end: u64) -> GridNote {
        GridNote { start, end, pitch, velocity: 82 }
    }

    #[test]
    fn a_chord_tone_fits_and_a_passing_note_off_the_beat_does_not() {
        let c = Harmony::of_pitches([60, 64, 67]);
        let changes = [(0, c), (96, Harmony::SILENT)];
        // C for a beat, D for half a beat off the beat, E on beat 3; then a note over silence.
        let notes = [note(48, 0, 24), note(50, 36, 48), note(52, 48, 72), note(53, 100, 110)];
        let fit = FitTally::of(&notes, &changes).fit();
        assert_eq!(fit.tally.sounding_steps, 24 + 12 + 24, "time over silence is not counted");
        assert_eq!(fit.sounding, Some(48.0 / 60.0));
        assert_eq!(fit.onsets_on_beats, Some(1.0), "both onsets on beats are chord tones");
    }

    #[test]
    fn the_harmony_read_back_from_a_song_is_the_one_it_was_encoded_against() {
        let beat = STEPS_PER_BEAT as u64;
        let upper: Vec<GridNote> = [[64, 67], [65, 69], [62, 65], [64, 67]]
            .iter()
            .enumerate()
            .flat_map(|(i, ch)| ch.map(|p| note(p, i as u64 * beat, (i as u64 + 1) * beat)))
            .collect();
        let changes = harmony_changes(&upper);
        let bass = [note(48, 0, 2 * beat), note(50, 2 * beat, 3 * beat), note(48, 3 * beat, 4 * beat)];
        let (tokens, heard) = encode_against(&bass, &changes);
        let ids: Vec<u16> = tokens.iter().map(|t| t.id() as u16).collect();
        let packed: Vec<u16> = heard.iter().map(|h| h.pack()).collect();
        let track = harmony_of_song(&ids, &packed);
        for step in 0..4 * beat {
            assert_eq!(track.at(step), harmony_at(&changes, step), "step {step}");
        }
    }
}
