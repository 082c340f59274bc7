//! Keys and scales, in a musician's words: what "scale lock" lets through.
//!
//! Owns the list of scales the plugin and the trainer offer and their pitch-class sets. The
//! sampler turns a [`ScaleLock`] into a mask; nothing here knows about tokens.

use serde::{Deserialize, Serialize};

/// Pitch-class names, C = 0.
pub const KEY_NAMES: [&str; 12] = ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Scale {
    /// Every note: scale lock off.
    #[default]
    Chromatic,
    Major,
    NaturalMinor,
    HarmonicMinor,
    Dorian,
    Mixolydian,
    PentatonicMajor,
    PentatonicMinor,
    Blues,
}

impl Scale {
    pub const ALL: [Scale; 9] = [
        Scale::Chromatic,
        Scale::Major,
        Scale::NaturalMinor,
        Scale::HarmonicMinor,
        Scale::Dorian,
        Scale::Mixolydian,
        Scale::PentatonicMajor,
        Scale::PentatonicMinor,
        Scale::Blues,
    ];

    /// Semitones above the tonic that belong to the scale.
    pub fn intervals(self) -> &'static [u8] {
        match self {
            Scale::Chromatic => &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
            Scale::Major => &[0, 2, 4, 5, 7, 9, 11],
            Scale::NaturalMinor => &[0, 2, 3, 5, 7, 8, 10],
            Scale::HarmonicMinor => &[0, 2, 3, 5, 7, 8, 11],
            Scale::Dorian => &[0, 2, 3, 5, 7, 9, 10],
            Scale::Mixolydian => &[0, 2, 4, 5, 7, 9, 10],
            Scale::PentatonicMajor => &[0, 2, 4, 7, 9],
            Scale::PentatonicMinor => &[0, 3, 5, 7, 10],
            Scale::Blues => &[0, 3, 5, 6, 7, 10],
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Scale::Chromatic => "Chromatic",
            Scale::Major => "Major",
            Scale::NaturalMinor => "Natural minor",
            Scale::HarmonicMinor => "Harmonic minor",
            Scale::Dorian => "Dorian",
            Scale::Mixolydian => "Mixolydian",
            Scale::PentatonicMajor => "Pentatonic major",
            Scale::PentatonicMinor => "Pentatonic minor",
            Scale::Blues => "Blues",
        }
    }

    /// Reads a scale from its name as a person types it: "major", "natural-minor", "Dorian".
    pub fn parse(text: &str) -> Option<Scale> {
        let wanted: String = text.chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase();
        let wanted = if wanted == "minor" { "naturalminor".to_string() } else { wanted };
        Scale::ALL.into_iter().find(|s| {
            s.name().chars().filter(|c| c.is_alphanumeric()).collect::<String>().to_lowercase() == wanted
        })
    }
}

/// Reads a key (tonic) from its name: "C", "F#", "Bb", "eb".
pub fn parse_key(text: &str) -> Option<u8> {
    let mut chars = text.trim().chars();
    let letter = chars.next()?.to_ascii_uppercase();
    let natural = KEY_NAMES.iter().position(|n| n.len() == 1 && n.starts_with(letter))? as i32;
    let accidental = match chars.as_str() {
        "" => 0,
        "#" | "♯" => 1,
        "b" | "♭" => -1,
        _ => return None,
    };
    Some((natural + accidental).rem_euclid(12) as u8)
}

/// A key and a scale: the pitch classes that notes may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ScaleLock {
    /// Tonic pitch class, C = 0.
    pub key: u8,
    pub scale: Scale,
}

impl ScaleLock {
    /// No lock: every note.
    pub const CHROMATIC: ScaleLock = ScaleLock { key: 0, scale: Scale::Chromatic };

    pub fn allows(&self, pitch: u8) -> bool {
        let degree = (pitch as i32 - self.key as i32).rem_euclid(12) as u8;
        self.scale.intervals().contains(&degree)
    }

    pub fn describe(&self) -> String {
        format!("{} {}", KEY_NAMES[self.key as usize % 12], self.scale.name().to_lowercase())
    }

    /// Every key of these scales: `in_keys(&[Scale::Major])` is the twelve major keys.
    pub fn in_keys(scales: &[Scale]) -> impl Iterator<Item = ScaleLock> + '_ {
        scales.iter().flat_map(|&scale| (0..12u8).map(move |key| ScaleLock { key, scale }))
    }

    /// How much of `weights` (one per pitch class, C = 0: durations, or note counts) the lock
    /// lets through.
    pub fn fit(&self, weights: &[f64; 12]) -> f64 {
        (0..12u8).filter(|&pc| self.allows(pc)).map(|pc| weights[pc as usize]).sum()
    }

    /// The lock among `candidates` that lets most of `weights` through: the key of a piece, given
    /// its pitch classes. The first candidate wins a tie.
    pub fn best_fit(
        candidates: impl IntoIterator<Item = ScaleLock>,
        weights: &[f64; 12],
    ) -> Option<ScaleLock> {
        candidates.into_iter().fold(None, |best: Option<ScaleLock>, lock| match best {
            Some(b) if b.fit(weights) >= lock.fit(weights) => Some(b),
            _ => Some(lock),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_as_musicians_write_them() {
        assert_eq!(parse_key("C"), Some(0));
        assert_eq!(parse_key("f#"), Some(6));
        assert_eq!(parse_key("Bb"), Some(10));
        assert_eq!(parse_key("Cb"), Some(11));
        assert_eq!(parse_key("H"), None);
        assert_eq!(Scale::parse("natural-minor"), Some(Scale::NaturalMinor));
        assert_eq!(Scale::parse("minor"), Some(Scale::NaturalMinor));
        assert_eq!(Scale::parse("Pentatonic Major"), Some(Scale::PentatonicMajor));
        assert_eq!(Scale::parse("lydian"), None);
    }

    #[test]
    fn the_best_fit_of_a_g_major_melody_is_g_major() {
        // G A B C D E F# G, the tonic held longest.
        let mut weights = [0.0; 12];
        for (pc, w) in [(7, 4.0), (9, 1.0), (11, 1.0), (0, 1.0), (2, 1.0), (4, 1.0), (6, 1.0)] {
            weights[pc] = w;
        }
        let best = ScaleLock::best_fit(ScaleLock::in_keys(&[Scale::Major]), &weights).unwrap();
        assert_eq!(best, ScaleLock { key: 7, scale: Scale::Major });
        assert_eq!(best.fit(&weights), 10.0);
        assert_eq!(ScaleLock::in_keys(&[Scale::Major, Scale::Dorian]).count(), 24);
        assert_eq!(ScaleLock::best_fit(std::iter::empty(), &weights), None);
    }

    #[test]
    fn d_dorian_is_the_white_keys() {
        let lock = ScaleLock { key: 2, scale: Scale::Dorian };
        let allowed: Vec<u8> = (60..72).filter(|&p| lock.allows(p)).collect();
        assert_eq!(allowed, vec![60, 62, 64, 65, 67, 69, 71]);
    }
}
