//! What the player's tests share: a host at 120 BPM and 48 kHz as the player reads it, and
//! players built the one way the plugin builds them ([`open_player`]), with the default model.
#![allow(dead_code)]

use std::sync::Arc;

use continuo::built_in::{ModelSource, DEFAULT};
use continuo::model_switch::open_player;
use continuo::params::ContinuoParams;
use continuo::player::{HostTransport, Player, PlayerSettings};

pub const RATE: f32 = 48_000.0;
/// Samples per beat at 120 BPM.
pub const SPB: f64 = 24_000.0;

/// The plugin's default settings, with this seed.
pub fn settings(seed: u64) -> PlayerSettings {
    let mut settings = ContinuoParams::default().player_settings();
    settings.generator.sampler.seed = seed;
    settings
}

/// A player of the default model with these settings, as the plugin opens it (its first beat
/// generated when its music starts by itself).
pub fn player_with(settings: PlayerSettings) -> Player {
    open_player(&ModelSource::BuiltIn(DEFAULT.choice), &settings, &Arc::default()).unwrap()
}

/// A player with the plugin's defaults.
pub fn player() -> Player {
    player_with(ContinuoParams::default().player_settings())
}

/// A block of 512 samples as a host that gives beats (and no seconds, signature or bar) says it.
pub fn block(playing: bool, tempo: Option<f64>, pos_beats: Option<f64>) -> HostTransport {
    HostTransport {
        playing,
        tempo,
        pos_beats,
        pos_seconds: None,
        sample_rate: RATE,
        samples: 512,
        time_signature: None,
        bar_start: None,
    }
}

/// What a host at 120 BPM in 4/4 says about a block of `samples` starting at `sample`: its
/// beats and its seconds.
pub fn host(playing: bool, sample: u64, samples: usize) -> HostTransport {
    HostTransport {
        playing,
        tempo: Some(120.0),
        pos_beats: Some(sample as f64 / SPB),
        pos_seconds: Some(sample as f64 / RATE as f64),
        sample_rate: RATE,
        samples,
        time_signature: Some((4, 4)),
        bar_start: None,
    }
}
