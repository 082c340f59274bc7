//! The plugin's parameters: what a musician (and host automation) can change, with stable ids,
//! ranges, units and text. The model is one of them (a built-in model, or the musician's file,
//! whose path persists with the project alongside them).

use std::sync::{Arc, Mutex};

use continuo_engine::generator::GeneratorSettings;
use continuo_engine::midi::{Role, DRUM_CHANNEL};
use continuo_engine::music::{parse_key, Scale, ScaleLock, KEY_NAMES};
use continuo_engine::sampler::{SamplerSettings, AS_TRAINED, MAX_VOICES};
use nice_plug::prelude::*;

use crate::built_in::{self, ModelChoice, ModelSource};
use crate::listening::{ListenSettings, Mode};
use crate::player::PlayerSettings;
use crate::takes::LOOP_BAR_CHOICES;

#[derive(Params)]
pub struct ContinuoParams {
    /// The model that plays: one of the built-in models, or the musician's file.
    #[id = "model"]
    pub model: EnumParam<ModelChoice>,
    /// The musician's model file, played when `model` says so (empty until one is loaded).
    /// Saved with the project; a missing file falls back to the default when the project
    /// loads.
    #[persist = "model-path"]
    pub model_path: Mutex<String>,

    /// Scales the model's tuned temperatures (its file's; the model panel shows them): 1 plays
    /// it as tuned. A new id, not "temperature": that one held a temperature itself, and a
    /// project saved with it would otherwise come back at a different one.
    #[id = "temperature-scale"]
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
    /// 1-16, or 0: the model's own ([`ContinuoParams::channel_index`]: 10 for drums).
    #[id = "channel"]
    pub channel: IntParam,
    #[id = "seed"]
    pub seed: IntParam,
    /// Turned on, the music starts again from its beginning with the current seed.
    #[id = "restart"]
    pub restart: BoolParam,
    /// How the model plays with the musician: Free, Call and response, Duet.
    #[id = "mode"]
    pub mode: EnumParam<Mode>,
    /// Call and response: the rest, in beats, after which the model answers.
    #[id = "answer-after"]
    pub answer_after: FloatParam,
    /// Call and response: bars an answer lasts; the top of the range: until the musician plays.
    #[id = "answer-length"]
    pub answer_length: IntParam,
    /// From sparse to busy; the middle plays the model as trained.
    #[id = "density"]
    pub density: FloatParam,
    /// Loops a phrase of this many bars (an index into [`LOOP_BAR_CHOICES`]; 0: off).
    #[id = "loop"]
    pub loop_bars: IntParam,
    /// Turned on, the music takes a new phrase (a new take of the loop).
    #[id = "new-phrase"]
    pub new_phrase: BoolParam,
    /// The host's bypass: notes end as on a pause, MIDI coming in still passes through, and the
    /// music starts anew when it is lifted.
    #[id = "bypass"]
    pub bypass: BoolParam,
}

impl Default for ContinuoParams {
    /// The musician's defaults are the engine's ([`GeneratorSettings::DEFAULT`]).
    fn default() -> Self {
        let defaults = GeneratorSettings::DEFAULT.sampler;
        ContinuoParams {
            model: EnumParam::new("Model", built_in::DEFAULT.choice),
            model_path: Mutex::new(String::new()),
            temperature: FloatParam::new(
                "Temperature",
                defaults.temperature_scale,
                FloatRange::Linear { min: 0.0, max: 2.0 },
            )
            .with_step_size(0.01)
            .with_value_to_string(Arc::new(temperature_text))
            .with_string_to_value(Arc::new(temperature_from_text)),
            key: IntParam::new("Key", defaults.scale_lock.key as i32, IntRange::Linear { min: 0, max: 11 })
                .with_value_to_string(Arc::new(|v| KEY_NAMES[v.clamp(0, 11) as usize].to_string()))
                .with_string_to_value(Arc::new(|s| parse_key(s).map(i32::from))),
            scale: IntParam::new(
                "Scale",
                scale_index(defaults.scale_lock.scale),
                IntRange::Linear { min: 0, max: Scale::ALL.len() as i32 - 1 },
            )
            .with_value_to_string(Arc::new(|v| scale_of(v).name().to_string()))
            .with_string_to_value(Arc::new(|s| Scale::parse(s).map(scale_index))),
            lowest: IntParam::new(
                "Lowest note",
                defaults.lowest as i32,
                IntRange::Linear { min: 0, max: 127 },
            )
            .with_value_to_string(formatters::v2s_i32_key_formatter())
            .with_string_to_value(formatters::s2v_i32_key_formatter()),
            highest: IntParam::new(
                "Highest note",
                defaults.highest as i32,
                IntRange::Linear { min: 0, max: 127 },
            )
            .with_value_to_string(formatters::v2s_i32_key_formatter())
            .with_string_to_value(formatters::s2v_i32_key_formatter()),
            velocity: FloatParam::new("Velocity", 1.0, FloatRange::Linear { min: 0.1, max: 2.0 })
                .with_unit("%")
                .with_value_to_string(formatters::v2s_f32_percentage(0))
                .with_string_to_value(formatters::s2v_f32_percentage()),
            // 0: as many voices as the model's training music has (its card says how many).
            polyphony: IntParam::new(
                "Polyphony",
                defaults.max_polyphony as i32,
                IntRange::Linear { min: AS_TRAINED as i32, max: MAX_VOICES as i32 },
            )
            .with_value_to_string(Arc::new(|v| match v {
                v if v == AS_TRAINED as i32 => "as trained".to_string(),
                1 => "1 voice".to_string(),
                v => format!("{v} voices"),
            }))
            .with_string_to_value(Arc::new(|s| {
                let s = s.trim();
                if s.starts_with("as") {
                    return Some(AS_TRAINED as i32);
                }
                s.split_whitespace().next()?.parse().ok()
            })),
            channel: IntParam::new(
                "MIDI channel",
                AUTO_CHANNEL,
                IntRange::Linear { min: AUTO_CHANNEL, max: 16 },
            )
            .with_value_to_string(Arc::new(|v| match v {
                AUTO_CHANNEL => "auto".to_string(),
                v => v.to_string(),
            }))
            .with_string_to_value(Arc::new(|s| match s.trim() {
                s if s.starts_with("auto") => Some(AUTO_CHANNEL),
                s => s.parse().ok(),
            })),
            seed: IntParam::new("Seed", defaults.seed as i32, IntRange::Linear { min: 0, max: 9999 }),
            restart: BoolParam::new("Restart", false),
            mode: EnumParam::new("Mode", Mode::Free),
            answer_after: FloatParam::new("Answer after", 1.0, FloatRange::Linear { min: 0.5, max: 8.0 })
                .with_step_size(0.5)
                .with_unit(" beats")
                .with_value_to_string(formatters::v2s_f32_rounded(1)),
            answer_length: IntParam::new("Answer length", 2, IntRange::Linear { min: 1, max: UNTIL_I_PLAY })
                .with_value_to_string(Arc::new(|v| match v {
                    UNTIL_I_PLAY.. => "until I play".to_string(),
                    1 => "1 bar".to_string(),
                    bars => format!("{bars} bars"),
                }))
                .with_string_to_value(Arc::new(|s| {
                    let s = s.trim();
                    if s.starts_with("until") {
                        return Some(UNTIL_I_PLAY);
                    }
                    s.split_whitespace().next()?.parse().ok()
                })),
            density: FloatParam::new("Density", defaults.density, FloatRange::Linear { min: -1.0, max: 1.0 })
                .with_step_size(0.05)
                .with_value_to_string(Arc::new(|v| match v {
                    v if v.abs() < 0.005 => "as trained".to_string(),
                    v if v < 0.0 => format!("sparser {:.0}%", -v * 100.0),
                    v => format!("busier {:.0}%", v * 100.0),
                }))
                // Reads what the formatter writes, a percentage ("-40%") or a plain value ("-0.4").
                .with_string_to_value(Arc::new(|s| {
                    let s = s.trim();
                    let percent = |amount: &str| {
                        amount.trim().trim_end_matches('%').trim().parse::<f32>().ok().map(|p| p / 100.0)
                    };
                    if s.starts_with("as") {
                        Some(0.0)
                    } else if let Some(amount) = s.strip_prefix("sparser") {
                        percent(amount).map(|v| -v)
                    } else if let Some(amount) = s.strip_prefix("busier") {
                        percent(amount)
                    } else if s.ends_with('%') {
                        percent(s)
                    } else {
                        s.parse().ok()
                    }
                })),
            loop_bars: IntParam::new(
                "Loop",
                0,
                IntRange::Linear { min: 0, max: LOOP_BAR_CHOICES.len() as i32 - 1 },
            )
            .with_value_to_string(Arc::new(|v| match loop_bars_of(v) {
                0 => "off".to_string(),
                1 => "1 bar".to_string(),
                bars => format!("{bars} bars"),
            }))
            .with_string_to_value(Arc::new(|s| {
                let bars: u32 =
                    if s.trim() == "off" { 0 } else { s.split_whitespace().next()?.parse().ok()? };
                LOOP_BAR_CHOICES.iter().position(|b| *b == bars).map(|i| i as i32)
            })),
            new_phrase: BoolParam::new("New phrase", false),
            bypass: BoolParam::new("Bypass", false).make_bypass(),
        }
    }
}

/// The Temperature's text: "as tuned" at 1, else the factor ("x1.15"; 0 plays the likeliest).
fn temperature_text(scale: f32) -> String {
    if (scale - 1.0).abs() < 0.005 {
        "as tuned".to_string()
    } else {
        format!("x{scale:.2}")
    }
}

fn temperature_from_text(text: &str) -> Option<f32> {
    let text = text.trim();
    if text.starts_with("as") {
        return Some(1.0);
    }
    text.trim_start_matches(['x', 'X', '×']).trim().parse().ok()
}

/// The MIDI channel's "auto": the channel General MIDI gives the model's role.
pub const AUTO_CHANNEL: i32 = 0;

/// The top of the Answer length range: the answer lasts until the musician plays again.
pub const UNTIL_I_PLAY: i32 = 9;

fn loop_bars_of(index: i32) -> u32 {
    LOOP_BAR_CHOICES[index.clamp(0, LOOP_BAR_CHOICES.len() as i32 - 1) as usize]
}

fn scale_index(scale: Scale) -> i32 {
    Scale::ALL.iter().position(|x| *x == scale).unwrap_or(0) as i32
}

fn scale_of(index: i32) -> Scale {
    Scale::ALL[index.clamp(0, Scale::ALL.len() as i32 - 1) as usize]
}

impl ContinuoParams {
    /// The model the parameters ask for (not on the audio thread: it reads the file's path).
    pub fn model_source(&self) -> ModelSource {
        let path = self.model_path.lock().map(|p| p.clone()).unwrap_or_default();
        ModelSource::chosen(self.model.value(), &path)
    }

    /// The generator's settings as the parameters stand. The range is put in order if the
    /// lowest note is set above the highest.
    pub fn generator_settings(&self) -> GeneratorSettings {
        let (a, b) = (self.lowest.value() as u8, self.highest.value() as u8);
        GeneratorSettings {
            sampler: SamplerSettings {
                temperature_scale: self.temperature.value(),
                // The model's own, put in by the generator.
                tuning: None,
                lowest: a.min(b),
                highest: a.max(b),
                scale_lock: ScaleLock { key: self.key.value() as u8, scale: scale_of(self.scale.value()) },
                max_polyphony: self.polyphony.value() as usize,
                seed: self.seed.value() as u64,
                density: self.density.value(),
            },
            max_note_beats: GeneratorSettings::DEFAULT.max_note_beats,
        }
    }

    /// Everything the player plays by, as the parameters stand.
    pub fn player_settings(&self) -> PlayerSettings {
        let length = self.answer_length.value();
        PlayerSettings {
            generator: self.generator_settings(),
            velocity_scale: self.velocity.value(),
            listen: ListenSettings {
                mode: self.mode.value(),
                answer_after_beats: self.answer_after.value() as f64,
                answer_bars: (length < UNTIL_I_PLAY).then_some(length.max(1) as u32),
            },
            loop_bars: loop_bars_of(self.loop_bars.value()),
        }
    }

    /// The MIDI channel events go out on, 0..16, for a model of `role`: the one chosen, or on
    /// "auto" General MIDI's for the role (drums on channel 10, anything else on 1).
    pub fn channel_index(&self, role: Role) -> u8 {
        match self.channel.value() {
            AUTO_CHANNEL => match role {
                Role::Drums => DRUM_CHANNEL,
                Role::Melodic => 0,
            },
            channel => (channel - 1).clamp(0, 15) as u8,
        }
    }
}
