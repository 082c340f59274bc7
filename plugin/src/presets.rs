//! Factory presets: settings that show what Continuo does, one click away in the window.
//!
//! Owns the list and what each sets. A preset sets the parameters a [`Preset`] holds (each to its
//! default unless the preset says otherwise); the rest (the model, the MIDI channel, the seed)
//! stay as the musician left them. The window applies a preset as one gesture per parameter, so
//! the host records it like any change and can undo it.

use continuo_engine::sampler::{SamplerSettings, AS_TRAINED};

use crate::listening::Mode;
use crate::params::UNTIL_I_PLAY;

/// What a preset sets.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Preset {
    pub name: &'static str,
    /// One line for the window's tooltip.
    pub description: &'static str,
    pub mode: Mode,
    /// Of the model's tuned temperatures (1: as tuned).
    pub temperature: f32,
    pub density: f32,
    pub polyphony: i32,
    pub lowest: i32,
    pub highest: i32,
    /// An index into [`crate::takes::LOOP_BAR_CHOICES`].
    pub loop_choice: i32,
    pub answer_after_beats: f32,
    /// Bars, or [`UNTIL_I_PLAY`].
    pub answer_length: i32,
}

impl Preset {
    /// The parameters' defaults, as Continuo starts (the model as tuned), so that each preset
    /// states only what it changes.
    pub const DEFAULT: Preset = Preset {
        name: "",
        description: "",
        mode: Mode::Free,
        temperature: SamplerSettings::DEFAULT.temperature_scale,
        density: SamplerSettings::DEFAULT.density,
        polyphony: AS_TRAINED as i32,
        lowest: SamplerSettings::DEFAULT.lowest as i32,
        highest: SamplerSettings::DEFAULT.highest as i32,
        loop_choice: 0,
        answer_after_beats: 1.0,
        answer_length: 2,
    };
}

pub const PRESETS: [Preset; 5] = [
    Preset {
        name: "Chorale",
        description: "Four voices in a choir's range, as the chorales were written",
        polyphony: 4,
        lowest: 40,
        highest: 81,
        ..Preset::DEFAULT
    },
    Preset {
        name: "Answer me",
        description: "Play a phrase and rest: Continuo answers it for two bars",
        mode: Mode::CallAndResponse,
        polyphony: 4,
        ..Preset::DEFAULT
    },
    Preset {
        name: "Keep answering",
        description: "After each phrase you play, Continuo plays on until you play again",
        mode: Mode::CallAndResponse,
        temperature: 1.15,
        polyphony: 4,
        answer_after_beats: 2.0,
        answer_length: UNTIL_I_PLAY,
        ..Preset::DEFAULT
    },
    Preset {
        name: "Sparse duet",
        description: "Continuo plays along with you, a few notes at a time",
        mode: Mode::Duet,
        density: -0.6,
        polyphony: 3,
        ..Preset::DEFAULT
    },
    Preset {
        name: "Two-bar loop",
        description: "A two-bar phrase on repeat; New phrase for another take",
        temperature: 1.15,
        density: 0.3,
        polyphony: 4,
        lowest: 48,
        highest: 84,
        loop_choice: 2,
        ..Preset::DEFAULT
    },
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ContinuoParams;
    use crate::takes::LOOP_BAR_CHOICES;
    use nice_plug::prelude::*;

    /// A preset that does not state a setting puts that parameter back to its default.
    #[test]
    fn the_default_preset_is_how_continuo_starts() {
        let p = ContinuoParams::default();
        let d = Preset::DEFAULT;
        assert_eq!(d.mode, p.mode.default_plain_value());
        assert_eq!(d.temperature, p.temperature.default_plain_value());
        assert_eq!(d.density, p.density.default_plain_value());
        assert_eq!(d.polyphony, p.polyphony.default_plain_value());
        assert_eq!(d.lowest, p.lowest.default_plain_value());
        assert_eq!(d.highest, p.highest.default_plain_value());
        assert_eq!(d.loop_choice, p.loop_bars.default_plain_value());
        assert_eq!(d.answer_after_beats, p.answer_after.default_plain_value());
        assert_eq!(d.answer_length, p.answer_length.default_plain_value());
    }

    /// Every value a preset sets is one its parameter takes as it is (not clamped into range).
    #[test]
    fn every_preset_is_in_range_and_each_is_different() {
        let p = ContinuoParams::default();
        let fits_int =
            |param: &IntParam, value: i32| param.preview_plain(param.preview_normalized(value)) == value;
        let fits_float = |param: &FloatParam, value: f32| {
            (param.preview_plain(param.preview_normalized(value)) - value).abs() < 1e-4
        };
        for preset in PRESETS {
            assert!(fits_float(&p.temperature, preset.temperature), "{}", preset.name);
            assert!(fits_float(&p.density, preset.density), "{}", preset.name);
            assert!(fits_float(&p.answer_after, preset.answer_after_beats), "{}", preset.name);
            assert!(fits_int(&p.polyphony, preset.polyphony), "{}", preset.name);
            assert!(fits_int(&p.lowest, preset.lowest) && fits_int(&p.highest, preset.highest));
            assert!(preset.lowest < preset.highest, "{}", preset.name);
            assert!(fits_int(&p.answer_length, preset.answer_length), "{}", preset.name);
            assert!((0..LOOP_BAR_CHOICES.len() as i32).contains(&preset.loop_choice));
        }
        let settings = |p: &Preset| format!("{:?}", Preset { name: "", description: "", ..*p });
        for (i, a) in PRESETS.iter().enumerate() {
            for b in &PRESETS[i + 1..] {
                assert_ne!(settings(a), settings(b), "{} and {} set the same", a.name, b.name);
            }
        }
    }
}
