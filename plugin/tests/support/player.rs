//! What the player's tests share: a host at 120 BPM and 48 kHz as the player reads it, and
//! players built the one way the plugin builds them ([`open_player`]), with the default model.
#![allow(dead_code)]

use std::sync::Arc;

use continuo::built_in::{ModelSource, DEFAULT};
use continuo::listening::InputNote;
use continuo::model_switch::open_player;
use continuo::params::ContinuoParams;
use continuo::player::{HostTransport, OutputEvent, Player, PlayerSettings};
use continuo::step_budget::{STEP_BUDGET, WORST_CASE_FACTOR};
use std::sync::atomic::Ordering;
use std::time::Duration;

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

/// Makes `player` plan `cap` model steps a block of `block` samples, as a slower or faster
/// machine would, so a test runs at that cap on any machine.
pub fn pin_step_cap(player: &mut Player, cap: usize, block: usize) {
    let block_seconds = block as f64 / RATE as f64;
    let cost = STEP_BUDGET * block_seconds / (WORST_CASE_FACTOR * (cap as f64 + 0.5));
    player.assume_token_cost(Duration::from_secs_f64(cost));
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

/// A note the musician plays: (sample, pitch, velocity; 0 ends it, channel).
pub type Played = (u64, u8, u8, u8);

/// Plays `beats` beats at 120 BPM from beat 0 in blocks of `block` samples, with `input` played
/// into the player at its samples, after 32 stopped blocks. Returns every event the player
/// sent, as (sample, event), and the most model steps one block ran.
pub fn perform_in_blocks(
    player: &mut Player,
    beats: f64,
    input: &[Played],
    block: usize,
) -> (Vec<(u64, OutputEvent)>, u64) {
    let mut heard = Vec::new();
    let mut worst = 0;
    let monitor = player.monitor().clone();
    let mut next = 0;
    let mut block_input = Vec::new();
    let mut sample = 0u64;
    // A host processes stopped blocks before play starts: the player fills its lookahead.
    for _ in 0..32 {
        player.process(host(false, 0, block), &[], &mut |e| heard.push((0, e)));
    }
    while (sample as f64) < beats * SPB {
        block_input.clear();
        while next < input.len() && input[next].0 < sample + block as u64 {
            let (at, pitch, velocity, channel) = input[next];
            block_input.push(InputNote { offset: (at - sample) as u32, pitch, velocity, channel });
            next += 1;
        }
        let before = monitor.meters.model_steps.load(Ordering::Relaxed);
        player.process(host(true, sample, block), &block_input, &mut |e| {
            heard.push((sample + e.offset as u64, e))
        });
        worst = worst.max(monitor.meters.model_steps.load(Ordering::Relaxed) - before);
        sample += block as u64;
    }
    // The host pauses: every note ends.
    player.process(host(false, sample, block), &[], &mut |e| heard.push((sample + e.offset as u64, e)));
    (heard, worst)
}

/// Every note-on has its note-off, in order, and nothing sounds at the end.
pub fn assert_balanced(events: &[(u64, OutputEvent)]) {
    let mut sounding = [false; 128];
    for (at, e) in events {
        if e.is_on() {
            assert!(
                !std::mem::replace(&mut sounding[e.pitch as usize], true),
                "{} struck twice at {at}",
                e.pitch
            );
        } else {
            assert!(std::mem::take(&mut sounding[e.pitch as usize]), "{} ended unsounded at {at}", e.pitch);
        }
    }
    let hanging: Vec<_> = (0..128).filter(|p| sounding[*p]).collect();
    assert!(hanging.is_empty(), "notes left hanging: {hanging:?}");
}
