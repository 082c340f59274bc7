//! The features of a whole piece that `eval` compares between sets of pieces, after Yang and
//! Lerch (2018), "On the evaluation of generative models in music": ten for melodic music, and
//! nine that suit drums (a kit has no pitch classes, scale or melody; it has pieces, a grid and
//! a groove).
//!
//! Owns what each feature means, which ones a role is scored on, and how they are read off a
//! piece's grid notes. Nothing here knows
//! about distances, densities or models: a piece is its notes, and a feature is one number or,
//! for the pitch-class histogram, twelve.

use std::collections::BTreeSet;

use continuo_engine::groove::{self, kit_group, KIT_GROUPS};
use continuo_engine::midi::Role;
use continuo_engine::music::{Scale, ScaleLock};
use continuo_engine::vocab::{GridNote, STEPS_PER_BEAT};
use serde::Serialize;

use crate::generate::BEATS_PER_BAR;

/// The features, in the order tables, plots and reports give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Feature {
    /// How long each of the twelve pitch classes sounds, as shares of all sounding time.
    PitchClassHistogram,
    /// How many different MIDI pitches the piece uses.
    DistinctPitches,
    /// Highest pitch minus lowest, in semitones.
    PitchRange,
    /// Mean size of the steps the top voice takes, in semitones.
    TopVoiceInterval,
    /// Notes struck per 4/4 bar.
    NotesPerBar,
    /// Mean time between successive onsets (distinct start times), in beats.
    InterOnset,
    /// Mean number of notes sounding at an onset, the notes starting there included.
    Polyphony,
    /// Share of the notes in the major or harmonic minor scale that fits the piece best.
    InScaleRate,
    /// Entropy of the pitch-class histogram, in bits: 0 for one pitch class, log2 12 = 3.58
    /// for all twelve sounding equally long.
    PitchClassEntropy,
    /// Share of the piece's beats in which nothing sounds.
    EmptyBeats,
    /// Drums: how the hits share out over the kit's groups ([`KIT_GROUPS`]).
    KitHistogram,
    /// Drums: how many different kit pieces the piece strikes.
    KitPieces,
    /// Drums: hits per 4/4 bar.
    HitsPerBar,
    /// Drums: share of the onsets on a sixteenth.
    OnSixteenths,
    /// Drums: share of the onsets on a triplet line (eighth or sixteenth triplets) and not on a
    /// sixteenth: the swing and shuffle of a groove.
    OnTriplets,
    /// Drums: how alike each bar is to the next, as hit patterns (the hits at the same place in
    /// the bar on the same kit group, over the hits of either): 1 for a groove repeated
    /// exactly, lower for fills and variations.
    BarToBar,
}

/// A sixteenth and a sixteenth-note triplet, in grid steps (every eighth-note triplet is on the
/// sixteenth-triplet lines).
const SIXTEENTH: u64 = STEPS_PER_BEAT as u64 / 4;
const TRIPLET_SIXTEENTH: u64 = STEPS_PER_BEAT as u64 / 6;

impl Feature {
    /// The features a role's music is scored on.
    pub fn of_role(role: Role) -> &'static [Feature] {
        match role {
            Role::Melodic => &Feature::MELODIC,
            Role::Drums => &Feature::DRUMS,
        }
    }

    pub const DRUMS: [Feature; 9] = [
        Feature::KitHistogram,
        Feature::KitPieces,
        Feature::HitsPerBar,
        Feature::InterOnset,
        Feature::Polyphony,
        Feature::OnSixteenths,
        Feature::OnTriplets,
        Feature::BarToBar,
        Feature::EmptyBeats,
    ];

    pub const MELODIC: [Feature; 10] = [
        Feature::PitchClassHistogram,
        Feature::DistinctPitches,
        Feature::PitchRange,
        Feature::TopVoiceInterval,
        Feature::NotesPerBar,
        Feature::InterOnset,
        Feature::Polyphony,
        Feature::InScaleRate,
        Feature::PitchClassEntropy,
        Feature::EmptyBeats,
    ];

    /// The feature's name in reports and plots.
    pub fn name(self) -> &'static str {
        match self {
            Feature::PitchClassHistogram => "pitch-class histogram",
            Feature::DistinctPitches => "distinct pitches",
            Feature::PitchRange => "pitch range",
            Feature::TopVoiceInterval => "top-voice interval",
            Feature::NotesPerBar => "notes per bar",
            Feature::InterOnset => "inter-onset (beats)",
            Feature::Polyphony => "polyphony",
            Feature::InScaleRate => "in-scale rate",
            Feature::PitchClassEntropy => "pitch-class entropy",
            Feature::EmptyBeats => "empty beats",
            Feature::KitHistogram => "kit histogram",
            Feature::KitPieces => "kit pieces",
            Feature::HitsPerBar => "hits per bar",
            Feature::OnSixteenths => "onsets on sixteenths",
            Feature::OnTriplets => "onsets on triplets",
            Feature::BarToBar => "bar to bar",
        }
    }

    /// The feature's name as a table column: short enough for ten columns on one screen.
    pub fn column(self) -> &'static str {
        match self {
            Feature::PitchClassHistogram => "pc-hist",
            Feature::DistinctPitches => "pitches",
            Feature::PitchRange => "range",
            Feature::TopVoiceInterval => "interval",
            Feature::NotesPerBar => "notes/bar",
            Feature::InterOnset => "ioi",
            Feature::Polyphony => "poly",
            Feature::InScaleRate => "in-scale",
            Feature::PitchClassEntropy => "pc-ent",
            Feature::EmptyBeats => "empty",
            Feature::KitHistogram => "kit-hist",
            Feature::KitPieces => "pieces",
            Feature::HitsPerBar => "hits/bar",
            Feature::OnSixteenths => "on-16th",
            Feature::OnTriplets => "on-trip",
            Feature::BarToBar => "bar-bar",
        }
    }
}

/// A piece's ten features. A piece runs from step 0 to the end of its last note, rounded up to
/// a whole beat: the data's songs start at step 0 and end with their last release, and a
/// generated piece is read the same way, so trailing silence never counts on either side.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PieceFeatures {
    pub pitch_class_histogram: [f64; 12],
    pub distinct_pitches: f64,
    pub pitch_range: f64,
    pub top_voice_interval: f64,
    pub notes_per_bar: f64,
    pub inter_onset: f64,
    pub polyphony: f64,
    pub in_scale_rate: f64,
    pub pitch_class_entropy: f64,
    pub empty_beats: f64,
    pub kit_histogram: [f64; KIT_GROUPS.len()],
    pub on_sixteenths: f64,
    pub on_triplets: f64,
    pub bar_to_bar: f64,
}

/// The scales whose keys the in-scale rate tries: the twelve major scales and the twelve
/// harmonic minor ones. The natural minor holds the notes of its relative major, so it would add
/// nothing; the harmonic minor adds the raised leading tone that minor-key music (the chorales'
/// included) uses.
const CANDIDATE_SCALES: [Scale; 2] = [Scale::Major, Scale::HarmonicMinor];

impl PieceFeatures {
    /// The features of a piece, or None for a piece of fewer than two notes, which has no
    /// intervals, range or rhythm to speak of.
    pub fn of(notes: &[GridNote]) -> Option<PieceFeatures> {
        if notes.len() < 2 {
            return None;
        }
        let mut notes = notes.to_vec();
        notes.sort_by_key(|n| (n.start, n.pitch));
        let steps_per_beat = STEPS_PER_BEAT as u64;
        let beats = notes.iter().map(|n| n.end).max().unwrap_or(0).div_ceil(steps_per_beat).max(1);

        let mut sounding_steps = [0.0; 12];
        for n in &notes {
            sounding_steps[n.pitch as usize % 12] += (n.end - n.start) as f64;
        }
        let total: f64 = sounding_steps.iter().sum();
        let pitch_class_histogram = sounding_steps.map(|steps| steps / total);
        let pitch_class_entropy =
            -pitch_class_histogram.iter().filter(|&&p| p > 0.0).map(|p| p * p.log2()).sum::<f64>();

        let pitches: BTreeSet<u8> = notes.iter().map(|n| n.pitch).collect();
        let pitch_range = (pitches.last().unwrap() - pitches.first().unwrap()) as f64;

        let onsets = Onsets::of(&notes);
        let inter_onset = match (onsets.times.first(), onsets.times.last()) {
            (Some(&first), Some(&last)) if onsets.times.len() >= 2 => {
                (last - first) as f64 / (onsets.times.len() - 1) as f64 / steps_per_beat as f64
            }
            // One chord and nothing after it: the gap it leaves is the rest of the piece.
            (Some(&only), _) => (beats * steps_per_beat - only) as f64 / steps_per_beat as f64,
            _ => unreachable!("a piece of two notes has an onset"),
        };
        let steps = onsets.top_voice.windows(2).map(|w| w[0].abs_diff(w[1]) as f64);
        let top_voice_interval = mean(steps).unwrap_or(0.0);

        let mut pitch_class_counts = [0.0; 12];
        for n in &notes {
            pitch_class_counts[n.pitch as usize % 12] += 1.0;
        }
        let best_in_scale = ScaleLock::best_fit(ScaleLock::in_keys(&CANDIDATE_SCALES), &pitch_class_counts)
            .map_or(0.0, |lock| lock.fit(&pitch_class_counts));

        let mut heard = vec![false; beats as usize];
        for n in &notes {
            let (first, last) = (n.start / steps_per_beat, (n.end - 1) / steps_per_beat);
            heard[first as usize..=last as usize].iter_mut().for_each(|b| *b = true);
        }

        let mut kit_histogram = [0.0; KIT_GROUPS.len()];
        for n in &notes {
            kit_histogram[kit_group(n.pitch)] += 1.0 / notes.len() as f64;
        }
        let share_of_onsets = |on: fn(u64) -> bool| {
            onsets.times.iter().filter(|&&t| on(t)).count() as f64 / onsets.times.len() as f64
        };
        let on_sixteenths = share_of_onsets(|t| t % SIXTEENTH == 0);
        let on_triplets = share_of_onsets(|t| t % TRIPLET_SIXTEENTH == 0 && t % SIXTEENTH != 0);

        Some(PieceFeatures {
            kit_histogram,
            on_sixteenths,
            on_triplets,
            bar_to_bar: bar_to_bar(&notes, beats),
            pitch_class_histogram,
            distinct_pitches: pitches.len() as f64,
            pitch_range,
            top_voice_interval,
            notes_per_bar: notes.len() as f64 * BEATS_PER_BAR as f64 / beats as f64,
            inter_onset,
            polyphony: onsets.polyphony,
            in_scale_rate: best_in_scale / notes.len() as f64,
            pitch_class_entropy,
            empty_beats: heard.iter().filter(|&&h| !h).count() as f64 / beats as f64,
        })
    }

    /// One feature's value: twelve numbers for the histogram, one for the others.
    pub fn get(&self, feature: Feature) -> &[f64] {
        match feature {
            Feature::PitchClassHistogram => &self.pitch_class_histogram,
            Feature::DistinctPitches => std::slice::from_ref(&self.distinct_pitches),
            Feature::PitchRange => std::slice::from_ref(&self.pitch_range),
            Feature::TopVoiceInterval => std::slice::from_ref(&self.top_voice_interval),
            Feature::NotesPerBar => std::slice::from_ref(&self.notes_per_bar),
            Feature::InterOnset => std::slice::from_ref(&self.inter_onset),
            Feature::Polyphony => std::slice::from_ref(&self.polyphony),
            Feature::InScaleRate => std::slice::from_ref(&self.in_scale_rate),
            Feature::PitchClassEntropy => std::slice::from_ref(&self.pitch_class_entropy),
            Feature::EmptyBeats => std::slice::from_ref(&self.empty_beats),
            Feature::KitHistogram => &self.kit_histogram,
            Feature::KitPieces => std::slice::from_ref(&self.distinct_pitches),
            Feature::HitsPerBar => std::slice::from_ref(&self.notes_per_bar),
            Feature::OnSixteenths => std::slice::from_ref(&self.on_sixteenths),
            Feature::OnTriplets => std::slice::from_ref(&self.on_triplets),
            Feature::BarToBar => std::slice::from_ref(&self.bar_to_bar),
        }
    }
}

/// The mean likeness of each bar to the next (see [`Feature::BarToBar`],
/// [`groove::bar_likeness`]); 1 for a piece of one bar or of silent bars.
fn bar_to_bar(notes: &[GridNote], beats: u64) -> f64 {
    let bar_steps = BEATS_PER_BAR * STEPS_PER_BEAT as u64;
    let bars = beats.div_ceil(BEATS_PER_BAR).max(1) as usize;
    let mut hits: Vec<Vec<(u64, u8)>> = vec![Vec::new(); bars];
    for n in notes {
        hits[(n.start / bar_steps) as usize].push((n.start % bar_steps, n.pitch));
    }
    let likeness = hits
        .windows(2)
        .filter(|w| !(w[0].is_empty() && w[1].is_empty()))
        .map(|w| groove::bar_likeness(&w[0], &w[1]));
    mean(likeness).unwrap_or(1.0)
}

/// What a sweep over a piece's onsets finds.
struct Onsets {
    /// The distinct start times, in order.
    times: Vec<u64>,
    /// The pitch of the top voice: at each onset the highest sounding note, counted once while
    /// it is held, so a soprano held over a moving alto is one note of the top voice, not a
    /// leap down to the alto and back.
    top_voice: Vec<u8>,
    /// Notes sounding at an onset, those starting there included, averaged over the onsets.
    polyphony: f64,
}

impl Onsets {
    /// `notes` sorted by start.
    fn of(notes: &[GridNote]) -> Onsets {
        let mut times = Vec::new();
        let mut top_voice = Vec::new();
        let mut last_top: Option<&GridNote> = None;
        let mut sounding_sum = 0usize;
        let mut sounding: Vec<&GridNote> = Vec::new();
        let mut next = 0;
        while next < notes.len() {
            let now = notes[next].start;
            sounding.retain(|n| n.end > now);
            while next < notes.len() && notes[next].start == now {
                sounding.push(&notes[next]);
                next += 1;
            }
            times.push(now);
            sounding_sum += sounding.len();
            let top = *sounding.iter().max_by_key(|n| (n.pitch, n.start)).expect("a note starts now");
            if last_top != Some(top) {
                top_voice.push(top.pitch);
                last_top = Some(top);
            }
        }
        let polyphony = sounding_sum as f64 / times.len() as f64;
        Onsets { times, top_voice, polyphony }
    }
}

fn mean(values: impl Iterator<Item = f64>) -> Option<f64> {
    let (sum, count) = values.fold((0.0, 0usize), |(s, c), v| (s + v, c + 1));
    (count > 0).then(|| sum / count as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEAT: u64 = STEPS_PER_BEAT as u64;

    fn note(pitch: u8, start_beats: f64, beats: f64) -> GridNote {
        let start = (start_beats * BEAT as f64) as u64;
        GridNote { start, end: start + (beats * BEAT as f64) as u64, pitch, velocity: 80 }
    }

    #[test]
    fn a_c_major_scale_in_quarter_notes() {
        let scale: Vec<GridNote> =
            [60, 62, 64, 65, 67, 69, 71].iter().enumerate().map(|(i, &p)| note(p, i as f64, 1.0)).collect();
        let f = PieceFeatures::of(&scale).unwrap();
        assert_eq!(f.distinct_pitches, 7.0);
        assert_eq!(f.pitch_range, 11.0);
        assert_eq!(f.in_scale_rate, 1.0);
        assert_eq!(f.polyphony, 1.0);
        assert_eq!(f.inter_onset, 1.0);
        assert_eq!(f.empty_beats, 0.0);
        // Seven notes in seven beats: four to the bar.
        assert_eq!(f.notes_per_bar, 4.0);
        // Steps of 2, 2, 1, 2, 2, 2 semitones.
        assert!((f.top_voice_interval - 11.0 / 6.0).abs() < 1e-12);
        assert!((f.pitch_class_entropy - 7f64.log2()).abs() < 1e-12);
        let in_c: Vec<usize> = (0..12).filter(|&pc| f.pitch_class_histogram[pc] > 0.0).collect();
        assert_eq!(in_c, vec![0, 2, 4, 5, 7, 9, 11]);
        assert!((f.pitch_class_histogram.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn the_histogram_weighs_pitch_classes_by_how_long_they_sound() {
        // A whole note C and a quarter-note G: C sounds four fifths of the time.
        let f = PieceFeatures::of(&[note(48, 0.0, 4.0), note(67, 4.0, 1.0)]).unwrap();
        assert!((f.pitch_class_histogram[0] - 0.8).abs() < 1e-12);
        assert!((f.pitch_class_histogram[7] - 0.2).abs() < 1e-12);
        let entropy = -(0.8f64 * 0.8f64.log2() + 0.2 * 0.2f64.log2());
        assert!((f.pitch_class_entropy - entropy).abs() < 1e-12);
        assert_eq!(f.pitch_range, 19.0);
    }

    #[test]
    fn held_chords_count_in_polyphony_and_the_top_voice_follows_the_soprano() {
        // A soprano E held two bars over a C-major triad struck twice, then a soprano D over a
        // G that starts with it.
        let piece = [
            note(76, 0.0, 8.0),
            note(48, 0.0, 2.0),
            note(55, 0.0, 2.0),
            note(60, 2.0, 2.0),
            note(64, 2.0, 2.0),
            note(74, 8.0, 4.0),
            note(55, 8.0, 4.0),
        ];
        let f = PieceFeatures::of(&piece).unwrap();
        // Onsets at beats 0, 2 and 8, with 3, 3 and 2 notes sounding.
        assert!((f.polyphony - 8.0 / 3.0).abs() < 1e-12);
        assert!((f.inter_onset - 4.0).abs() < 1e-12);
        // The top voice is E then D: one step of 2, the held E not counted twice.
        assert_eq!(f.top_voice_interval, 2.0);
        assert_eq!(f.empty_beats, 0.0);
        assert_eq!(f.notes_per_bar, 7.0 / 3.0);
    }

    #[test]
    fn rests_make_empty_beats_and_stray_notes_lower_the_in_scale_rate() {
        // Beat 0 and beat 3 sound; beats 1 and 2 are silent. C, F# and G fit G major, but no
        // major or harmonic minor scale also holds the C#.
        let piece = [note(60, 0.0, 1.0), note(66, 3.0, 0.5), note(67, 3.5, 0.5), note(61, 3.5, 0.5)];
        let f = PieceFeatures::of(&piece).unwrap();
        assert_eq!(f.empty_beats, 0.5);
        assert_eq!(f.in_scale_rate, 0.75);
    }

    #[test]
    fn a_rock_beat_with_a_shuffled_fill() {
        // Three bars of kick on 1 and 3, snare on 2 and 4, closed hats on the eighths; then a
        // fourth bar whose last beat is a tom fill in eighth-note triplets.
        let hit = |pitch: u8, step: u64| GridNote { start: step, end: step + 3, pitch, velocity: 80 };
        let mut piece = Vec::new();
        for bar in 0..4u64 {
            let b = bar * 4 * BEAT;
            piece.extend([hit(36, b), hit(38, b + BEAT), hit(36, b + 2 * BEAT)]);
            let hats = if bar == 3 { 6 } else { 8 };
            piece.extend((0..hats).map(|i| hit(42, b + i * BEAT / 2)));
            if bar == 3 {
                let fill = b + 3 * BEAT;
                piece.extend([hit(45, fill), hit(43, fill + BEAT / 3), hit(41, fill + 2 * BEAT / 3)]);
            } else {
                piece.push(hit(38, b + 3 * BEAT));
            }
        }
        let f = PieceFeatures::of(&piece).unwrap();
        assert_eq!(f.get(Feature::KitPieces), &[6.0]);
        // Twelve hits in every bar.
        assert_eq!(f.get(Feature::HitsPerBar), &[12.0]);
        // 8 onsets in each groove bar, 9 in the last: all on sixteenths but the fill's two
        // triplet strokes.
        let onsets = 33.0;
        assert!((f.on_triplets - 2.0 / onsets).abs() < 1e-12, "{}", f.on_triplets);
        assert!((f.on_sixteenths - 31.0 / onsets).abs() < 1e-12, "{}", f.on_sixteenths);
        // Bars one to three are one groove (12 places each); the fourth shares 9 places with the
        // third, of the 15 that either has.
        assert!((f.bar_to_bar - (1.0 + 1.0 + 9.0 / 15.0) / 3.0).abs() < 1e-12, "{}", f.bar_to_bar);
        assert!((f.kit_histogram[0] - 8.0 / 48.0).abs() < 1e-12);
        assert!((f.kit_histogram.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert_eq!(Feature::of_role(Role::Drums).len(), 9);
    }

    #[test]
    fn a_single_note_is_not_a_piece() {
        assert!(PieceFeatures::of(&[note(60, 0.0, 1.0)]).is_none());
        assert!(PieceFeatures::of(&[]).is_none());
    }
}
