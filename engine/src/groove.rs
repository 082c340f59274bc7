//! Grooves in a drummer's words: the kit's groups, how alike two bars of hits are, and what
//! makes a bar a fill.
//!
//! Owns the one definition of bar likeness that `eval` scores a drum model's grooves by and that
//! the plugin's phrase loop uses to end on a fill. Nothing here allocates: the plugin judges a
//! bar on the audio thread.

/// The kit's groups, by General MIDI key: kick (35-36), snare and claps (37-40), toms (41, 43,
/// 45, 47, 48, 50), closed and pedal hi-hat (42, 44), open hi-hat (46), crash, china and splash
/// (49, 52, 55, 57), ride (51, 53, 59), and the Latin and hand percussion above (54, 56, 58,
/// 60-81).
pub const KIT_GROUPS: [&str; 8] =
    ["kick", "snare", "toms", "closed hat", "open hat", "crash", "ride", "percussion"];

/// The group of a General MIDI drum key (anything outside the kit counts as percussion).
pub fn kit_group(pitch: u8) -> usize {
    match pitch {
        35 | 36 => 0,
        37..=40 => 1,
        41 | 43 | 45 | 47 | 48 | 50 => 2,
        42 | 44 => 3,
        46 => 4,
        49 | 52 | 55 | 57 => 5,
        51 | 53 | 59 => 6,
        _ => 7,
    }
}

/// A bar that keeps fewer than this share of the hits of each of the groove's bars before it
/// is heard as a fill. Measured on the groove collection (`scripts/build-groove-collection.sh`;
/// its 363 songs in 4/4 whose groove has a fill, the bars MMA played as the groove or as its
/// fill), against the up to three groove bars before each: 37 % of the 853 fill bars are below
/// it with every one of them, and 2.2 % of the 7,447 groove bars (against the one bar before
/// alone: 48 % and 8 %).
pub const FILL_LIKENESS: f64 = 0.5;

/// How alike two bars of hits are: the places (a hit's step within its bar and its kit group)
/// both bars hit, over the places either does. 1 for a groove repeated exactly, 0 for bars
/// with nothing in common; two empty bars are alike. Each bar is its hits as (step within the
/// bar, General MIDI key), in any order; a place hit twice counts once.
pub fn bar_likeness(a: &[(u64, u8)], b: &[(u64, u8)]) -> f64 {
    let place = |&(step, pitch): &(u64, u8)| (step, kit_group(pitch));
    // Each bar's distinct places: a place counts where it is first hit.
    let first = |bar: &[(u64, u8)], i: usize| bar[..i].iter().all(|h| place(h) != place(&bar[i]));
    let distinct = |bar: &[(u64, u8)]| (0..bar.len()).filter(|&i| first(bar, i)).count();
    let shared = (0..a.len()).filter(|&i| first(a, i) && b.iter().any(|h| place(h) == place(&a[i]))).count();
    let either = distinct(a) + distinct(b) - shared;
    if either == 0 {
        1.0
    } else {
        shared as f64 / either as f64
    }
}

/// Whether `bar` is heard as a fill after the groove's bars before it, `groove` (see
/// [`FILL_LIKENESS`]): it is alike none of them. A silent bar after a groove is a break, which
/// MMA's fills include; a bar after silence is no fill.
pub fn is_fill<Bar: AsRef<[(u64, u8)]>>(bar: &[(u64, u8)], groove: &[Bar]) -> bool {
    let groove = groove.iter().map(AsRef::as_ref).filter(|g| !g.is_empty());
    let mut likeness = groove.map(|g| bar_likeness(bar, g)).peekable();
    likeness.peek().is_some() && likeness.all(|l| l < FILL_LIKENESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Kick on 1 and 3, snare on 2 and 4, closed hats on the eighths (24 steps a beat).
    fn rock_bar() -> Vec<(u64, u8)> {
        let mut bar = vec![(0, 36), (24, 38), (48, 36), (72, 38)];
        bar.extend((0..8).map(|i| (i * 12, 42)));
        bar
    }

    #[test]
    fn a_groove_repeated_is_alike_and_a_tom_fill_is_not() {
        let groove = rock_bar();
        assert_eq!(bar_likeness(&groove, &groove), 1.0);
        // The same groove with the pedal hat (the closed hat's group) and a hit doubled.
        let mut same = groove.clone();
        same[4].1 = 44;
        same.push((0, 35));
        assert_eq!(bar_likeness(&same, &groove), 1.0);
        // The last two beats a run down the toms in sixteenths, a crash on the next downbeat.
        let mut fill: Vec<(u64, u8)> = groove.iter().copied().filter(|&(s, _)| s < 48).collect();
        fill.extend([(48, 50), (54, 48), (60, 47), (66, 45), (72, 43), (78, 41), (84, 38), (90, 38)]);
        // The fill keeps 6 of the groove's 12 places (kick, snare and four hats) and adds 8:
        // 6 shared of the 20 either hits.
        assert!((bar_likeness(&fill, &groove) - 6.0 / 20.0).abs() < 1e-12);
        assert!(is_fill(&fill, &[&groove]));
        assert!(!is_fill(&groove, &[&groove]));
        // Alike one of the bars before it (the same fill played before), it is no fill.
        assert!(!is_fill(&fill, &[&groove, &fill]));
    }

    #[test]
    fn a_break_after_a_groove_is_a_fill_and_nothing_after_silence_is() {
        assert!(is_fill(&[], &[rock_bar()]));
        assert!(!is_fill(&rock_bar(), &[Vec::new()]));
        assert!(!is_fill(&rock_bar(), &[] as &[Vec<(u64, u8)>]));
        assert_eq!(bar_likeness(&[], &[]), 1.0);
    }
}
