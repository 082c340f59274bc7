//! A keyboard player's chords, as the tests that feed a model the song's harmony play them:
//! shared by the player's tests and the CLAP host's, so both hear the same human.
#![allow(dead_code)]

use continuo_engine::chords::parse_chord;
use continuo_engine::harmony::Harmony;

/// Beats each chord is held: two bars of 4/4.
pub const CHORD_BEATS: u64 = 8;
/// Samples a beat and a millisecond at 120 BPM and 48 kHz.
const SAMPLES_PER_BEAT: i64 = 24_000;
const SAMPLES_PER_MS: i64 = 48;

/// These chord symbols, twice round.
pub fn twice_round(symbols: &[&str]) -> Vec<Harmony> {
    symbols.iter().map(|c| parse_chord(c).unwrap()).cycle().take(2 * symbols.len()).collect()
}

/// The chords as a keyboard player plays them, [`CHORD_BEATS`] each from sample 0: root in the
/// third octave, the chord above middle C, each struck 2-9 ms early or 1-4 ms late and let go
/// 10-40 ms before the next. (sample, key, down), in time order.
pub fn keyboard_chords(chords: &[Harmony]) -> Vec<(u64, u8, bool)> {
    let ms = SAMPLES_PER_MS;
    let chord_samples = CHORD_BEATS as i64 * SAMPLES_PER_BEAT;
    let mut played = Vec::new();
    for (i, chord) in chords.iter().enumerate() {
        let line = i as i64 * chord_samples;
        let off = if i % 3 == 2 { (1 + i as i64 % 4) * ms } else { -(2 + (i as i64 * 5) % 8) * ms };
        let start = (line + off).max(0) as u64;
        let end = (line + chord_samples - (10 + (i as i64 * 7) % 30) * ms) as u64;
        let bass = 48 + chord.bass().unwrap();
        for key in std::iter::once(bass).chain(chord.classes().map(|pc| 60 + pc)) {
            played.extend([(start, key, true), (end, key, false)]);
        }
    }
    played.sort();
    played
}
