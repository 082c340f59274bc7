//! The lines of text the window shows about what plays: the transport, the mode, what a model
//! step costs against small blocks, and the model's card.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::listening::Mode;
use crate::model_switch::ModelCard;
use crate::monitor::{Meters, Monitor};
use crate::params::ContinuoParams;
use crate::step_budget::smallest_block;
use crate::transport::{self, TransportState};
use continuo_engine::chords;
use continuo_engine::harmony::Harmony;

/// "playing  120.0 BPM  4/4  bar 5.2", as the plugin sees the host's transport.
pub fn transport_line(monitor: &Monitor) -> String {
    let m = &monitor.meters;
    let state = match m.transport() {
        TransportState::Playing => "playing",
        TransportState::Paused => "paused",
        TransportState::Stopped => "stopped",
    };
    let tempo = m.tempo_millibpm.load(Ordering::Relaxed) as f64 / 1000.0;
    let (numerator, denominator) = m.time_signature();
    let pos = m.position_millibeats.load(Ordering::Relaxed) as f64 / 1000.0;
    let (bar, beat) = transport::bar_and_beat(pos, (numerator, denominator));
    format!("{state}   {tempo:.1} BPM   {numerator}/{denominator}   bar {bar}.{beat}")
}

/// How the model plays with the musician now: "Free", "Call and response: listening",
/// "Duet", with the loop when one plays ("Free, looping 16 beats, ending on a fill").
pub fn listening_line(params: &ContinuoParams, meters: &Meters) -> String {
    if let Some(harmony) = meters.harmony_followed() {
        return following_line(harmony);
    }
    let mode = params.mode.value();
    let mut line = mode.name().to_string();
    if mode == Mode::CallAndResponse {
        let listening = meters.listening.load(Ordering::Relaxed) == 1;
        line.push_str(if listening { ": listening" } else { ": answering" });
    }
    if let Some((_, beats)) = meters.loop_region() {
        line.push_str(&format!(", looping {:.0} beats", beats));
        if meters.loop_fill.load(Ordering::Relaxed) == 1 {
            line.push_str(", ending on a fill");
        }
    }
    line
}

/// What a model that follows the harmony hears, in every mode: "Following the harmony: Am7/G"
/// (the chord's name when the keys held make one), the pitch classes held otherwise.
pub fn following_line(harmony: Harmony) -> String {
    const NAMES: [&str; 12] = ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"];
    let heard = match chords::chord_name(harmony) {
        _ if harmony.is_silent() => "nothing held, it plays on its own".to_string(),
        Some(name) => name,
        None => harmony.classes().map(|pc| NAMES[pc as usize]).collect::<Vec<_>>().join(" "),
    };
    format!("Following the harmony: {heard}")
}

/// What a model step costs against small blocks, and what the audio thread had to give up.
/// A model too slow for 64-sample blocks still plays (one step a block, late notes skipped); the
/// window says so, with the buffer size it needs, rather than letting the host crackle.
pub fn real_time_lines(meters: &Meters) -> Vec<String> {
    let token = Duration::from_nanos(meters.token_cost_nanos.load(Ordering::Relaxed));
    let rate = match meters.sample_rate_hz.load(Ordering::Relaxed) {
        0 => 48_000.0,
        hz => hz as f32,
    };
    let share = token.as_secs_f64() / (64.0 / rate as f64) * 100.0;
    let micros = token.as_secs_f64() * 1e6;
    let needs = smallest_block(rate, token);
    let fit = if needs <= 64 {
        format!("a token: {micros:.0} µs, {share:.0}% of a 64-sample block at {:.0} kHz: fits", rate / 1e3)
    } else {
        format!(
            "a token: {micros:.0} µs, {share:.0}% of a 64-sample block at {:.0} kHz; for its worst case \
             it needs a host buffer of {needs} samples or more",
            rate / 1e3
        )
    };
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    vec![
        fit,
        format!(
            "audio thread: {} system allocations, {} late notes skipped, {} steps refused",
            continuo_engine::realtime_memory::system_calls_on_audio_thread(),
            load(&meters.late_events),
            load(&meters.refused_steps)
        ),
    ]
}

/// The model panel's text: name first.
pub fn model_lines(card: &ModelCard) -> Vec<String> {
    let info = &card.info;
    let t = &info.training;
    let s = info.shape;
    let mut lines = vec![info.name.clone()];
    if !t.dataset.is_empty() {
        lines.push(format!("trained on {}", t.dataset));
    }
    lines.push(format!(
        "LSTM {} x {}, embedding {}, dense {}: {} parameters",
        s.layers,
        s.hidden,
        s.embed,
        s.dense,
        s.parameter_count()
    ));
    lines.push(format!("vocabulary {} v{}, {} tokens", info.vocab.name, info.vocab.version, s.vocab));
    lines.push(match s.harmony {
        Some(input) => format!(
            "follows the harmony held at its MIDI input ({}: {} numbers; contract v{})",
            input.id(),
            input.width(),
            s.format_version()
        ),
        None => format!("plays on its own: hears no harmony (contract v{})", s.format_version()),
    });
    lines.push(match info.tuning {
        Some(tuning) => format!("tuned: {}", tuning.describe()),
        None => format!("untuned, plays by {}", info.played_tuning().describe()),
    });
    lines.push(match t.validation_loss {
        Some(loss) => format!("validation loss {loss:.3} nats/token after {} steps", t.steps),
        None => "validation loss unknown".to_string(),
    });
    lines.push(card.source.path().map_or("built into the plugin".to_string(), str::to_string));
    lines
}
