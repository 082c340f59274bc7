//! Chord symbols, read and named: "Am7/G" into a [`Harmony`], and held notes back into "Am7/G".
//!
//! Owns the one table of chord qualities Continuo knows (the suffix a musician writes, its other
//! spellings, its intervals), read by [`parse_chord`] and [`chord_name`] alike so the two never
//! disagree; and the syntax of a progression typed by hand ("Dm7:2 G7:2 | Cmaj7 | % | N.C."),
//! read by [`parse_progression`] into harmonies on the beat grid, for a part to play against.

use std::fmt;

use crate::harmony::Harmony;
use crate::vocab::STEPS_PER_BEAT;

/// A chord quality: the suffix written after the root, its other spellings, and its intervals in
/// semitones above the root.
struct Quality {
    symbol: &'static str,
    aliases: &'static [&'static str],
    intervals: &'static [u8],
}

/// Every quality, simplest first. The order is the tie-break when the same notes read as two
/// chords and the bass is the root of neither: the earlier is named (Am7/E rather than C6/E).
const QUALITIES: &[Quality] = &[
    Quality { symbol: "", aliases: &["maj", "M"], intervals: &[0, 4, 7] },
    Quality { symbol: "m", aliases: &["min", "-"], intervals: &[0, 3, 7] },
    Quality { symbol: "5", aliases: &[], intervals: &[0, 7] },
    Quality { symbol: "dim", aliases: &["°", "o"], intervals: &[0, 3, 6] },
    Quality { symbol: "aug", aliases: &["+"], intervals: &[0, 4, 8] },
    Quality { symbol: "sus4", aliases: &["sus"], intervals: &[0, 5, 7] },
    Quality { symbol: "sus2", aliases: &[], intervals: &[0, 2, 7] },
    Quality { symbol: "7", aliases: &[], intervals: &[0, 4, 7, 10] },
    Quality { symbol: "maj7", aliases: &["M7", "Δ", "Δ7"], intervals: &[0, 4, 7, 11] },
    Quality { symbol: "m7", aliases: &["min7", "-7"], intervals: &[0, 3, 7, 10] },
    Quality { symbol: "m7b5", aliases: &["ø", "ø7", "min7b5", "-7b5"], intervals: &[0, 3, 6, 10] },
    Quality { symbol: "dim7", aliases: &["°7", "o7"], intervals: &[0, 3, 6, 9] },
    Quality { symbol: "mmaj7", aliases: &["mM7", "m(maj7)", "-maj7", "-Δ7"], intervals: &[0, 3, 7, 11] },
    Quality { symbol: "7sus4", aliases: &["7sus"], intervals: &[0, 5, 7, 10] },
    Quality { symbol: "6", aliases: &[], intervals: &[0, 4, 7, 9] },
    Quality { symbol: "m6", aliases: &["min6", "-6"], intervals: &[0, 3, 7, 9] },
    Quality { symbol: "add9", aliases: &["add2"], intervals: &[0, 2, 4, 7] },
    Quality { symbol: "9", aliases: &[], intervals: &[0, 2, 4, 7, 10] },
    Quality { symbol: "maj9", aliases: &["M9", "Δ9"], intervals: &[0, 2, 4, 7, 11] },
    Quality { symbol: "m9", aliases: &["min9", "-9"], intervals: &[0, 2, 3, 7, 10] },
];

impl Quality {
    fn mask_on(&self, root: u8) -> u16 {
        self.intervals.iter().fold(0, |mask, i| mask | 1 << ((root + i) % 12))
    }
}

/// Roots as lead sheets spell them: sharps, except the flats of the flat keys musicians play in.
const ROOT_NAMES: [&str; 12] = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];

/// "No chord": a chart's way of writing that the band stops.
const NO_CHORD: [&str; 3] = ["N.C.", "N.C", "NC"];

/// A chord symbol or progression that cannot be read: which symbol, where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChordError {
    /// The symbol as written ("" when there is none).
    pub symbol: String,
    /// Its place in a progression, 1-based, counting chord symbols (bar lines do not count).
    pub position: Option<usize>,
    pub problem: ChordProblem,
}

impl fmt::Display for ChordError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some(n) => write!(f, "chord {n} ('{}'): {}", self.symbol, self.problem),
            None if self.symbol.is_empty() => write!(f, "{}", self.problem),
            None => write!(f, "'{}' is not a chord symbol: {}", self.symbol, self.problem),
        }
    }
}

impl std::error::Error for ChordError {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChordProblem {
    #[error("there is no chord symbol")]
    Empty,
    #[error("the root must be a letter A-G (a capital), not '{0}'")]
    Root(char),
    #[error("unknown chord quality '{0}' (known: {known})", known = known_qualities())]
    Quality(String),
    #[error("the bass after '/' must be a note, a letter A-G with any sharps or flats, not '{0}'")]
    Bass(String),
    #[error("the length after ':' must be a number of beats such as 2 or 1.5, not '{0}'")]
    Length(String),
    #[error(
        "{0} beats is off the grid of {STEPS_PER_BEAT} steps a beat (a length must be a multiple of 0.125)"
    )]
    OffGrid(String),
    #[error("the length must be more than 0 beats")]
    ZeroLength,
    #[error("a bar of 0 beats leaves a chord without ':beats' no length")]
    NoBar,
    #[error("'%' repeats the chord before it, and there is none")]
    NothingToRepeat,
    #[error("the progression is too long to count in steps")]
    TooLong,
    #[error("the progression holds no chord symbols (write them like 'C Am F G7' or 'Dm7:2 G7:2 Cmaj7:4')")]
    NoChords,
}

fn known_qualities() -> String {
    QUALITIES.iter().map(|q| q.symbol).filter(|s| !s.is_empty()).collect::<Vec<_>>().join(", ")
}

/// Reads a note name from the start of `text`, a capital letter A-G with any number of `#` and
/// `b`: its pitch class and what follows it.
fn read_note(text: &str) -> Option<(u8, &str)> {
    let natural: i32 = match text.chars().next()? {
        'C' => 0,
        'D' => 2,
        'E' => 4,
        'F' => 5,
        'G' => 7,
        'A' => 9,
        'B' => 11,
        _ => return None,
    };
    let after_letter = &text[1..];
    let rest = after_letter.trim_start_matches(['#', 'b']);
    let shift: i32 =
        after_letter[..after_letter.len() - rest.len()].chars().map(|c| if c == '#' { 1 } else { -1 }).sum();
    Some(((natural + shift).rem_euclid(12) as u8, rest))
}

/// Reads one chord symbol: a root (A-G, any sharps or flats), a quality, and an optional `/bass`
/// that joins the chord ("Am7/G"; without it the bass is the root). "N.C." (or "NC") is silence.
pub fn parse_chord(symbol: &str) -> Result<Harmony, ChordError> {
    let fail = |problem| ChordError { symbol: symbol.to_string(), position: None, problem };
    let written = symbol.trim().replace('♯', "#").replace('♭', "b");
    let Some(first) = written.chars().next() else {
        return Err(fail(ChordProblem::Empty));
    };
    if NO_CHORD.contains(&written.as_str()) {
        return Ok(Harmony::SILENT);
    }
    let (chord, bass) = match written.split_once('/') {
        Some((chord, bass)) => (chord, Some(bass)),
        None => (written.as_str(), None),
    };
    let (root, suffix) = read_note(chord).ok_or_else(|| fail(ChordProblem::Root(first)))?;
    let quality = QUALITIES
        .iter()
        .find(|q| q.symbol == suffix || q.aliases.contains(&suffix))
        .ok_or_else(|| fail(ChordProblem::Quality(suffix.to_string())))?;
    let bass = match bass {
        None => root,
        Some(bass) => match read_note(bass) {
            Some((pc, "")) => pc,
            _ => return Err(fail(ChordProblem::Bass(bass.to_string()))),
        },
    };
    Ok(Harmony::of_classes(quality.intervals.iter().map(|i| root + i), bass))
}

/// Reads a progression: chord symbols separated by spaces, each a bar of `beats_per_bar` beats
/// or as many beats as written after a colon ("Dm7:2 G7:2 Cmaj7:4", "C:1.5"). `|` bar lines are
/// for the eye; `%` repeats the chord before it, `N.C.` (or `NC`) is silence, both with a length
/// as any chord ("%:2"). Returns each chord's start step (from 0, [`STEPS_PER_BEAT`] a beat)
/// and harmony, one entry a symbol (a repeat too), then `(end, Harmony::SILENT)` where it ends.
pub fn parse_progression(text: &str, beats_per_bar: u32) -> Result<Vec<(u64, Harmony)>, ChordError> {
    let bar = beats_per_bar as u64 * STEPS_PER_BEAT as u64;
    let symbols = text.split_whitespace().filter(|token| !token.chars().all(|c| c == '|'));
    let mut chords: Vec<(u64, Harmony)> = Vec::new();
    let mut now = 0u64;
    for (i, token) in symbols.enumerate() {
        let fail = |problem| ChordError { symbol: token.to_string(), position: Some(i + 1), problem };
        let (symbol, beats) = match token.rsplit_once(':') {
            Some((symbol, beats)) => (symbol, Some(beats)),
            None => (token, None),
        };
        let harmony = match symbol {
            "%" => chords.last().map(|&(_, h)| h).ok_or_else(|| fail(ChordProblem::NothingToRepeat))?,
            _ => parse_chord(symbol).map_err(|e| fail(e.problem))?,
        };
        let steps = match beats {
            Some(beats) => steps_in(beats).map_err(fail)?,
            None if bar == 0 => return Err(fail(ChordProblem::NoBar)),
            None => bar,
        };
        chords.push((now, harmony));
        now = now.checked_add(steps).ok_or_else(|| fail(ChordProblem::TooLong))?;
    }
    if chords.is_empty() {
        return Err(ChordError { symbol: String::new(), position: None, problem: ChordProblem::NoChords });
    }
    chords.push((now, Harmony::SILENT));
    Ok(chords)
}

/// The steps in `beats` written as a decimal ("2", "1.5", ".25"), exactly: a length off the grid
/// is refused, not rounded, since rounding one chord would move every chord after it.
fn steps_in(beats: &str) -> Result<u64, ChordProblem> {
    let not_a_length = || ChordProblem::Length(beats.to_string());
    let (whole, fraction) = beats.split_once('.').unwrap_or((beats, ""));
    let digits_only = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + fraction.len() == 0 || !digits_only(whole) || !digits_only(fraction) {
        return Err(not_a_length());
    }
    let whole: u64 =
        if whole.is_empty() { 0 } else { whole.parse::<u32>().map_err(|_| not_a_length())?.into() };
    // A decimal lands on the grid only as a multiple of 1/8 beat, so at most 3 decimals matter.
    let fraction = fraction.trim_end_matches('0');
    let thousandths: u64 = match fraction.len() {
        0..=3 => format!("{fraction:0<3}").parse().map_err(|_| not_a_length())?,
        _ => return Err(ChordProblem::OffGrid(beats.to_string())),
    };
    if !(thousandths * STEPS_PER_BEAT as u64).is_multiple_of(1000) {
        return Err(ChordProblem::OffGrid(beats.to_string()));
    }
    match whole * STEPS_PER_BEAT as u64 + thousandths * STEPS_PER_BEAT as u64 / 1000 {
        0 => Err(ChordProblem::ZeroLength),
        steps => Ok(steps),
    }
}

/// The chord symbol a musician would write for `harmony` ("Am7", "G7/B"), or None when its notes
/// are no chord of the table (silence, one note, a cluster). When they read as several chords,
/// the one whose root is in the bass wins, then the simplest; a power chord ("C5") is named only
/// over its root, since a bare fourth is no chord.
pub fn chord_name(harmony: Harmony) -> Option<String> {
    let bass = harmony.bass()?;
    let (root, quality) = harmony
        .classes()
        .flat_map(|root| QUALITIES.iter().enumerate().map(move |(rank, quality)| (root, rank, quality)))
        .filter(|&(root, _, q)| {
            q.mask_on(root) == harmony.class_mask() && (q.intervals.len() > 2 || root == bass)
        })
        .min_by_key(|&(root, rank, _)| (root != bass, rank))
        .map(|(root, _, quality)| (root, quality))?;
    let name = format!("{}{}", ROOT_NAMES[root as usize], quality.symbol);
    Some(if root == bass { name } else { format!("{name}/{}", ROOT_NAMES[bass as usize]) })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn classes(h: Harmony) -> Vec<u8> {
        h.classes().collect()
    }

    fn chord(symbol: &str) -> Harmony {
        parse_chord(symbol).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Every quality over C, spelled out independently of the table.
    const OVER_C: &[(&str, &[u8])] = &[
        ("C", &[0, 4, 7]),
        ("Cm", &[0, 3, 7]),
        ("C5", &[0, 7]),
        ("Cdim", &[0, 3, 6]),
        ("Caug", &[0, 4, 8]),
        ("Csus4", &[0, 5, 7]),
        ("Csus2", &[0, 2, 7]),
        ("C7", &[0, 4, 7, 10]),
        ("Cmaj7", &[0, 4, 7, 11]),
        ("Cm7", &[0, 3, 7, 10]),
        ("Cm7b5", &[0, 3, 6, 10]),
        ("Cdim7", &[0, 3, 6, 9]),
        ("Cmmaj7", &[0, 3, 7, 11]),
        ("C7sus4", &[0, 5, 7, 10]),
        ("C6", &[0, 4, 7, 9]),
        ("Cm6", &[0, 3, 7, 9]),
        ("Cadd9", &[0, 2, 4, 7]),
        ("C9", &[0, 2, 4, 7, 10]),
        ("Cmaj9", &[0, 2, 4, 7, 11]),
        ("Cm9", &[0, 2, 3, 7, 10]),
    ];

    #[test]
    fn every_quality_reads_as_its_notes_over_its_root() {
        for q in QUALITIES {
            assert!(OVER_C.iter().any(|(s, _)| s[1..] == *q.symbol), "C{} is tested", q.symbol);
        }
        for &(symbol, notes) in OVER_C {
            let h = chord(symbol);
            assert_eq!(classes(h), notes, "{symbol}");
            assert_eq!(h.bass(), Some(0), "{symbol}");
        }
        let aliases = [
            ("Cmaj", "C"),
            ("CM", "C"),
            ("Cmin", "Cm"),
            ("C-", "Cm"),
            ("CM7", "Cmaj7"),
            ("CΔ", "Cmaj7"),
            ("CΔ7", "Cmaj7"),
            ("Cmin7", "Cm7"),
            ("C-7", "Cm7"),
            ("C°", "Cdim"),
            ("Co", "Cdim"),
            ("C°7", "Cdim7"),
            ("Co7", "Cdim7"),
            ("C+", "Caug"),
            ("Csus", "Csus4"),
            ("Cø", "Cm7b5"),
            ("Cø7", "Cm7b5"),
            ("Cm7♭5", "Cm7b5"),
            ("CmM7", "Cmmaj7"),
            ("C7sus", "C7sus4"),
            ("Cmin6", "Cm6"),
            ("C-9", "Cm9"),
        ];
        for (alias, symbol) in aliases {
            assert_eq!(chord(alias), chord(symbol), "{alias}");
        }
        assert_eq!(parse_chord(" Dm "), parse_chord("Dm"));
        assert_eq!(chord("N.C."), Harmony::SILENT);
        assert_eq!(chord("NC"), Harmony::SILENT);
    }

    #[test]
    fn sharps_and_flats_move_the_root() {
        assert_eq!(classes(chord("F#m7")), [1, 4, 6, 9]);
        assert_eq!(chord("F#m7").bass(), Some(6));
        assert_eq!(classes(chord("Bb7")), [2, 5, 8, 10]);
        assert_eq!(classes(chord("Ebmaj7")), [2, 3, 7, 10]);
        assert_eq!(chord("Cb"), chord("B"));
        assert_eq!(chord("F♯m7"), chord("F#m7"));
        assert_eq!(chord("B♭7"), chord("Bb7"));
        assert_eq!(chord("C##"), chord("D"));
        assert_eq!(chord("Dbb"), chord("C"));
        assert_eq!(chord("B#"), chord("C"));
    }

    #[test]
    fn a_slash_puts_its_note_in_the_bass() {
        let c_over_e = chord("C/E");
        assert_eq!(classes(c_over_e), [0, 4, 7]);
        assert_eq!(c_over_e.bass(), Some(4));
        let am7_over_g = chord("Am7/G");
        assert_eq!(classes(am7_over_g), [0, 4, 7, 9]);
        assert_eq!(am7_over_g.bass(), Some(7));
        let d_over_c = chord("D/C");
        assert_eq!(classes(d_over_c), [0, 2, 6, 9], "the bass joins the chord");
        assert_eq!(d_over_c.bass(), Some(0));
        assert_eq!(chord("Bb/Ab").bass(), Some(8));
    }

    #[test]
    fn bad_symbols_are_refused_by_name() {
        let refused = |symbol: &str| parse_chord(symbol).err().map(|e| (e.problem.clone(), e.to_string()));
        let (problem, text) = refused("H7").expect("H7");
        assert_eq!(problem, ChordProblem::Root('H'));
        assert!(text.starts_with("'H7' is not a chord symbol: the root must be a letter A-G"), "{text}");
        let (problem, text) = refused("Cxyz").expect("Cxyz");
        assert_eq!(problem, ChordProblem::Quality("xyz".into()));
        assert!(
            text.contains("'Cxyz'") && text.contains("unknown chord quality 'xyz' (known: m, 5, dim,"),
            "{text}"
        );
        assert_eq!(refused("cm").map(|r| r.0), Some(ChordProblem::Root('c')), "the root is a capital");
        assert_eq!(refused("CM7").map(|r| r.0), None, "M7 is major seventh");
        assert_eq!(refused("Cmaj7/H").map(|r| r.0), Some(ChordProblem::Bass("H".into())));
        assert_eq!(refused("C/E7").map(|r| r.0), Some(ChordProblem::Bass("E7".into())));
        assert_eq!(refused("C/").map(|r| r.0), Some(ChordProblem::Bass("".into())));
        assert_eq!(refused("/E").map(|r| r.0), Some(ChordProblem::Root('/')));
        assert_eq!(refused("").map(|r| r.0), Some(ChordProblem::Empty));
        assert_eq!(refused("%").map(|r| r.0), Some(ChordProblem::Root('%')));
        assert_eq!(refused("Cmaj7 ").map(|r| r.0), None);
    }

    #[test]
    fn a_progression_is_a_bar_a_chord_unless_timed() {
        let beat = STEPS_PER_BEAT as u64;
        let bars = parse_progression("C Am F G7", 4).expect("reads");
        assert_eq!(
            bars,
            vec![
                (0, chord("C")),
                (96, chord("Am")),
                (192, chord("F")),
                (288, chord("G7")),
                (384, Harmony::SILENT)
            ]
        );
        let timed = parse_progression("Dm7:2 G7:2 Cmaj7:4", 4).expect("reads");
        assert_eq!(
            timed,
            vec![(0, chord("Dm7")), (48, chord("G7")), (96, chord("Cmaj7")), (192, Harmony::SILENT)]
        );
        let mixed = parse_progression("| C:1.5 E7/B:.5 | Am | N.C.:2 %:0.25 F:0.125 |", 3).expect("reads");
        let starts: Vec<u64> = mixed.iter().map(|&(step, _)| step).collect();
        assert_eq!(starts, [0, 36, 48, 120, 168, 174, 177]);
        assert_eq!(mixed[3].1, Harmony::SILENT);
        assert_eq!(mixed[4].1, Harmony::SILENT, "% repeats the silence");
        assert_eq!(parse_progression("C:2.50", 4).expect("reads")[1].0, 5 * beat / 2);
    }

    #[test]
    fn a_twelve_bar_blues_in_f_with_repeats() {
        let blues = "F7 | Bb7 | F7 | % |\n Bb7 | % | F7 | % |\n C7 | Bb7 | F7 | C7 ||";
        let chords = parse_progression(blues, 4).expect("reads");
        let expected = ["F7", "Bb7", "F7", "F7", "Bb7", "Bb7", "F7", "F7", "C7", "Bb7", "F7", "C7"];
        assert_eq!(chords.len(), 13);
        for (bar, (&(step, h), symbol)) in chords.iter().zip(expected).enumerate() {
            assert_eq!(step, bar as u64 * 96);
            assert_eq!(h, chord(symbol), "bar {}", bar + 1);
        }
        assert_eq!(chords[12], (12 * 96, Harmony::SILENT));
    }

    #[test]
    fn bad_progressions_say_which_chord() {
        let problem = |text: &str, beats_per_bar| {
            parse_progression(text, beats_per_bar)
                .err()
                .map(|e| (e.position, e.problem.clone(), e.to_string()))
        };
        let (position, kind, text) = problem("C | Am | Hm G", 4).expect("refused");
        assert_eq!((position, kind), (Some(3), ChordProblem::Root('H')));
        assert!(text.starts_with("chord 3 ('Hm'): the root must be"), "{text}");
        let refused = |text: &str| problem(text, 4).map(|(position, kind, _)| (position, kind));
        assert_eq!(refused("% C"), Some((Some(1), ChordProblem::NothingToRepeat)));
        assert_eq!(refused("C Dm7:0"), Some((Some(2), ChordProblem::ZeroLength)));
        assert_eq!(refused("C Dm7:0.0"), Some((Some(2), ChordProblem::ZeroLength)));
        assert_eq!(refused("C:1.3"), Some((Some(1), ChordProblem::OffGrid("1.3".into()))));
        assert_eq!(refused("C:0.0625"), Some((Some(1), ChordProblem::OffGrid("0.0625".into()))));
        assert_eq!(refused("C:-1"), Some((Some(1), ChordProblem::Length("-1".into()))));
        assert_eq!(refused("C:two"), Some((Some(1), ChordProblem::Length("two".into()))));
        assert_eq!(refused("C:"), Some((Some(1), ChordProblem::Length("".into()))));
        assert_eq!(refused("C:1e3"), Some((Some(1), ChordProblem::Length("1e3".into()))));
        assert_eq!(refused("C:99999999999"), Some((Some(1), ChordProblem::Length("99999999999".into()))));
        assert_eq!(refused(":2"), Some((Some(1), ChordProblem::Empty)));
        assert_eq!(refused(""), Some((None, ChordProblem::NoChords)));
        assert_eq!(refused(" | || "), Some((None, ChordProblem::NoChords)));
        assert_eq!(problem("C:4 G", 0).map(|(p, k, _)| (p, k)), Some((Some(2), ChordProblem::NoBar)));
        assert!(problem("", 4).is_some_and(|(_, _, text)| text.starts_with("the progression holds no chord")));
    }

    #[test]
    fn every_chord_in_every_key_names_as_it_is_written() {
        for root in 0..12u8 {
            for q in QUALITIES {
                let symbol = format!("{}{}", ROOT_NAMES[root as usize], q.symbol);
                assert_eq!(chord_name(chord(&symbol)).as_deref(), Some(symbol.as_str()));
                for alias in q.aliases {
                    let other = format!("{}{alias}", ROOT_NAMES[root as usize]);
                    assert_eq!(chord_name(chord(&other)).as_deref(), Some(symbol.as_str()), "{other}");
                }
            }
        }
        for (written, named) in
            [("Db7", "C#7"), ("Gbmaj7", "F#maj7"), ("A#m", "Bbm"), ("D#dim", "Ebdim"), ("Cb", "B")]
        {
            assert_eq!(chord_name(chord(written)).as_deref(), Some(named), "{written}");
        }
    }

    #[test]
    fn inversions_name_as_slash_chords() {
        for (written, named) in [
            ("C/E", "C/E"),
            ("C/G", "C/G"),
            ("G7/B", "G7/B"),
            ("G7/F", "G7/F"),
            ("Am7/G", "Am7/G"),
            ("Bbmaj7/D", "Bbmaj7/D"),
            ("Am7/C", "C6"),
            ("C6/A", "Am7"),
            ("Eb6", "Eb6"),
            ("Cm7/Eb", "Eb6"),
            ("Am7b5/C", "Cm6"),
            ("Csus2/G", "Gsus4"),
            ("Cdim7/Eb", "Ebdim7"),
            ("Caug/E", "Eaug"),
        ] {
            assert_eq!(chord_name(chord(written)).as_deref(), Some(named), "{written}");
        }
        // Every inversion of every chord names as the same notes over the same bass.
        for root in 0..12u8 {
            for q in QUALITIES {
                let h = Harmony::of_classes(q.intervals.iter().map(|i| root + i), root);
                for bass in h.classes() {
                    let inverted = Harmony::of_classes(h.classes(), bass);
                    match chord_name(inverted) {
                        Some(name) => assert_eq!(chord(&name), inverted, "{name}"),
                        None => assert_eq!(q.intervals.len(), 2, "only a power chord's fourth goes unnamed"),
                    }
                }
            }
        }
    }

    #[test]
    fn notes_that_are_no_chord_have_no_name() {
        assert_eq!(chord_name(Harmony::SILENT), None);
        assert_eq!(chord_name(Harmony::of_pitches([60])), None, "one note");
        assert_eq!(chord_name(Harmony::of_pitches([60, 61, 62])), None, "a cluster");
        assert_eq!(chord_name(Harmony::of_pitches([60, 64])), None, "a third");
        assert_eq!(chord_name(Harmony::of_pitches([55, 60])), None, "a fourth");
        assert_eq!(chord_name(Harmony::of_pitches([48, 55, 60])).as_deref(), Some("C5"));
        assert_eq!(chord_name(Harmony::of_pitches([40, 60, 67, 71, 74])).as_deref(), Some("Cmaj9/E"));
        assert_eq!(chord_name(Harmony::of_pitches([52, 60, 67])).as_deref(), Some("C/E"));
        assert_eq!(chord_name(Harmony::of_pitches([43, 59, 62, 65])).as_deref(), Some("G7"));
    }
}
