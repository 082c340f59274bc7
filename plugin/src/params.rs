//! The plugin's parameters: what a musician (and host automation) can change, with stable ids,
//! ranges, units and text. The model choice persists with the project alongside them.

use std::sync::{Arc, Mutex};

use continuo_engine::generator::GeneratorSettings;
use continuo_engine::music::{parse_key, Scale, ScaleLock, KEY_NAMES};
use continuo_engine::sampler::SamplerSettings;
use nice_plug::prelude::*;

use crate::player::OutputSettings;

/// Notes held this long are ended by the generator, so nothing hangs if the model forgets one.
const MAX_NOTE_BEATS: f64 = 8.0;

#[derive(Params)]
pub struct ContinuoParams {
    /// The model file chosen by the musician, or empty for the embedded default. Saved with the
    /// project; a missing file falls back to the default when the project loads.
    #[persist = "model-path"]
    pub model_path: Mutex<String>,

    #[id = "temperature"]
    pub temperature: FloatParam,
    #[id = "key"]
    pub key: IntParam,
    #[id = "scale"]
    pub scale: IntParam,
    #[id = "lowest"]
    pub lowest: IntParam,
    #[id = "highest"]
    pub highest: IntParam,
    #[id = "velocity"]
    pub velocity: FloatParam,
    #[id = "polyphony"]
    pub polyphony: IntParam,
    #[id = "channel"]
    pub channel: IntParam,
    #[id = "seed"]
    pub seed: IntParam,
    /// Turned on, the music starts again from its beginning with the current seed.
    #[id = "restart"]
    pub restart: BoolParam,
    /// The host's bypass: notes end as on a pause, MIDI coming in still passes through, and the
    /// music starts anew when it is lifted.
    #[id = "bypass"]
    pub bypass: BoolParam,
}

impl Default for ContinuoParams {
    fn default() -> Self {
        ContinuoParams {
            model_path: Mutex::new(String::new()),
            temperature: FloatParam::new("Temperature", 1.0, FloatRange::Linear { min: 0.0, max: 2.0 })
                .with_step_size(0.01)
                .with_value_to_string(formatters::v2s_f32_rounded(2)),
            key: IntParam::new("Key", 0, IntRange::Linear { min: 0, max: 11 })
                .with_value_to_string(Arc::new(|v| KEY_NAMES[v.clamp(0, 11) as usize].to_string()))
                .with_string_to_value(Arc::new(|s| parse_key(s).map(i32::from))),
            scale: IntParam::new("Scale", 0, IntRange::Linear { min: 0, max: Scale::ALL.len() as i32 - 1 })
                .with_value_to_string(Arc::new(|v| scale_of(v).name().to_string()))
                .with_string_to_value(Arc::new(|s| {
                    Scale::parse(s)
                        .and_then(|scale| Scale::ALL.iter().position(|x| *x == scale))
                        .map(|i| i as i32)
                })),
            lowest: IntParam::new("Lowest note", 36, IntRange::Linear { min: 0, max: 127 })
                .with_value_to_string(formatters::v2s_i32_key_formatter())
                .with_string_to_value(formatters::s2v_i32_key_formatter()),
            highest: IntParam::new("Highest note", 96, IntRange::Linear { min: 0, max: 127 })
                .with_value_to_string(formatters::v2s_i32_key_formatter())
                .with_string_to_value(formatters::s2v_i32_key_formatter()),
            velocity: FloatParam::new("Velocity", 1.0, FloatRange::Linear { min: 0.1, max: 2.0 })
                .with_unit("%")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            polyphony: IntParam::new("Polyphony", 6, IntRange::Linear { min: 1, max: 16 })
                .with_unit(" voices"),
            channel: IntParam::new("MIDI channel", 1, IntRange::Linear { min: 1, max: 16 }),
            seed: IntParam::new("Seed", 1, IntRange::Linear { min: 0, max: 9999 }),
            restart: BoolParam::new("Restart", false),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
        }
    }
}

fn scale_of(index: i32) -> Scale {
    Scale::ALL[index.clamp(0, Scale::ALL.len() as i32 - 1) as usize]
}

impl ContinuoParams {
    /// The generator's settings as the parameters stand. The range is put in order if the
    /// lowest note is set above the highest.
    pub fn generator_settings(&self) -> GeneratorSettings {
        let (a, b) = (self.lowest.value() as u8, self.highest.value() as u8);
        GeneratorSettings {
            sampler: SamplerSettings {
                temperature: self.temperature.value(),
                top_p: 1.0,
                lowest: a.min(b),
                highest: a.max(b),
                scale_lock: ScaleLock { key: self.key.value() as u8, scale: scale_of(self.scale.value()) },
                max_polyphony: self.polyphony.value() as usize,
                seed: self.seed.value() as u64,
            },
            max_note_beats: MAX_NOTE_BEATS,
        }
    }

    pub fn output_settings(&self) -> OutputSettings {
        OutputSettings { velocity_scale: self.velocity.value() }
    }

    /// The MIDI channel events go out on, 0..16.
    pub fn channel_index(&self) -> u8 {
        (self.channel.value() - 1).clamp(0, 15) as u8
    }
}
