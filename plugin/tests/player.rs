//! The player with the shipped model and a host as quirky as real ones: pre-roll, rounded
//! positions, seconds only, random block sizes, loops, deactivation mid-note, the remembered
//! opening, a switched-in player, and the meters.

#[path = "support/player.rs"]
mod support;

use std::sync::atomic::Ordering;

use continuo::player::{HostTransport, OutputEvent, TransportState};
use continuo::step_budget::step_cap;
use continuo_engine::vocab::STEPS_PER_BEAT;
use support::*;

/// Note events as (sample from the host's beat 0, pitch, velocity).
type Heard = Vec<(i64, u8, u8)>;

/// Plays 12 beats at 120 BPM from the host's sample `start` (negative: pre-roll) in blocks
/// whose sizes come from `sizes`, the host describing each block's position as `describe`
/// says from its exact beats and seconds. Returns every event as (sample from the host's
/// beat 0, pitch, velocity).
fn heard(
    start: i64,
    mut sizes: impl FnMut() -> usize,
    describe: impl Fn(f64, f64) -> (Option<f64>, Option<f64>),
) -> Heard {
    let mut player = player();
    let mut events = Vec::new();
    let mut sample = start;
    while sample < 12 * SPB as i64 {
        let samples = sizes();
        let (pos_beats, pos_seconds) = describe(sample as f64 / SPB, sample as f64 / RATE as f64);
        let host = HostTransport { pos_beats, pos_seconds, samples, ..block(true, Some(120.0), None) };
        player.process(host, &[], &mut |e| {
            assert!((e.offset as usize) < samples);
            events.push((sample + e.offset as i64, e.pitch, e.velocity));
        });
        sample += samples as i64;
    }
    events
}

#[test]
fn pre_roll_rounding_and_seconds_only_give_the_samples_of_exact_beats_from_zero() {
    let exact = heard(0, || 512, |beats, seconds| (Some(beats), Some(seconds)));
    assert!(exact.len() > 20, "{} events", exact.len());
    // Every note on the grid: whole 1000-sample steps at 120 BPM and 48 kHz (1/24 beat).
    assert!(exact.iter().all(|(sample, ..)| sample % 1000 == 0), "{exact:?}");
    let tick = |beats: f64| (beats * 1920.0).round() / 1920.0;
    let mut random = 0x9E37_79B9_7F4A_7C15u64;
    let mut random_size = move || {
        random ^= random << 13;
        random ^= random >> 7;
        random ^= random << 17;
        1 + (random % 3000) as usize
    };
    let quirks: Vec<(&str, Heard)> = vec![
        ("pre-roll", heard(-3 * 1024 - 77, || 1024, |b, s| (Some(b), Some(s)))),
        ("rounded beats", heard(0, || 1024, |b, s| (Some(tick(b)), Some(s)))),
        ("pre-roll, rounded beats", heard(-2 * 1024, || 1024, |b, s| (Some(tick(b)), Some(s)))),
        ("rounded beats and no seconds", heard(0, || 1024, |b, _| (Some(tick(b)), None))),
        ("seconds only", heard(-1500, || 333, |_, s| (None, Some(s)))),
        ("random blocks", heard(-5000, &mut random_size, |b, s| (Some(tick(b)), Some(s)))),
    ];
    for (quirk, events) in quirks {
        assert_eq!(events, exact, "{quirk}");
    }
}

#[test]
fn a_loop_restarts_the_music_on_its_start() {
    let mut player = player();
    let mut events = Vec::new();
    for round in 0..3 {
        // Bars 2-3 looped: 4.0..12.0, the host splitting its block at the loop's end.
        let mut sample = 4 * SPB as i64;
        while sample < 12 * SPB as i64 {
            let samples = 700.min((12 * SPB as i64 - sample) as usize);
            let host = HostTransport { samples, ..block(true, Some(120.0), Some(sample as f64 / SPB)) };
            player.process(host, &[], &mut |e| {
                events.push((round, sample + e.offset as i64, e.pitch, e.velocity))
            });
            sample += samples as i64;
        }
    }
    let round =
        |r: i32| events.iter().filter(|e| e.0 == r && e.3 > 0).map(|e| (e.1, e.2)).collect::<Vec<_>>();
    assert!(round(0).len() > 8);
    assert_eq!(round(1), round(0), "each time round the loop plays the same music from its start");
    assert_eq!(round(2), round(0));
    assert!(round(0).iter().all(|(sample, _)| sample % 1000 == 0));
}

#[test]
fn deactivation_mid_note_ends_the_note_when_the_host_comes_back() {
    let mut player = player();
    let mut sounding = [false; 128];
    let mut track = |e: OutputEvent| {
        if e.is_on() {
            sounding[e.pitch as usize] = true;
        } else {
            assert!(std::mem::take(&mut sounding[e.pitch as usize]), "{e:?} ends a silent note");
        }
    };
    let mut i = 0;
    while player.sounding_count() == 0 {
        player.process(block(true, Some(120.0), Some(i as f64 * 512.0 / SPB)), &[], &mut track);
        i += 1;
    }
    player.reset();
    // The first block after activation, stopped, ends what sounded.
    player.process(block(false, Some(120.0), Some(0.0)), &[], &mut track);
    assert_eq!(player.sounding_count(), 0);
    assert!(sounding.iter().all(|s| !s), "notes left hanging across the deactivation");
}

#[test]
fn meters_count_what_the_audio_thread_did() {
    let mut player = player();
    let monitor = player.monitor().clone();
    let meters = &monitor.meters;
    let mut events = Vec::new();
    let beats_per_block = 512.0 / SPB;
    let cap = step_cap(512, RATE, player.token_cost(), 1) as u64;
    for i in 0..2000 {
        let steps_before = meters.model_steps.load(Ordering::Relaxed);
        player.process(block(true, Some(120.0), Some(i as f64 * beats_per_block)), &[], &mut |e| {
            events.push(e)
        });
        let steps = meters.model_steps.load(Ordering::Relaxed) - steps_before;
        assert!(steps <= cap, "{steps} model steps in one block, above the cap of {cap}");
    }
    assert_eq!(meters.transport(), TransportState::Playing);
    assert_eq!(meters.tempo_millibpm.load(Ordering::Relaxed), 120_000);
    player.process(block(false, Some(120.0), Some(2000.0 * beats_per_block)), &[], &mut |e| events.push(e));

    let ons = events.iter().filter(|e| e.is_on()).count() as u64;
    assert!(ons > 40, "{ons} notes in 42 beats");
    assert_eq!(meters.notes_on.load(Ordering::Relaxed), ons);
    assert_eq!(meters.notes_off.load(Ordering::Relaxed), events.len() as u64 - ons);
    assert_eq!(ons * 2, events.len() as u64, "every note-on has its note-off after the pause");
    assert_eq!(meters.blocks.load(Ordering::Relaxed), 2001);
    assert_eq!(meters.restarts.load(Ordering::Relaxed), 1);
    assert_eq!(meters.late_events.load(Ordering::Relaxed), 0);
    assert_eq!(meters.transport(), TransportState::Paused);
    assert!(meters.model_steps.load(Ordering::Relaxed) > ons);
    assert!(meters.worst_block_nanos.load(Ordering::Relaxed) > 0);
    assert!(meters.token_cost_nanos.load(Ordering::Relaxed) > 0);
    assert_eq!(player.sounding_count(), 0);
}

#[test]
fn a_restart_plays_the_remembered_opening_without_stepping() {
    let mut player = player();
    let monitor = player.monitor().clone();
    let beat_of = |events: &[(i64, OutputEvent)]| -> Vec<(i64, u8)> {
        events.iter().filter(|(at, e)| e.is_on() && *at < SPB as i64).map(|(at, e)| (*at, e.pitch)).collect()
    };
    let mut first = Vec::new();
    for i in 0..100 {
        let at = i * 512;
        player.process(block(true, Some(120.0), Some(at as f64 / SPB)), &[], &mut |e| {
            first.push((at + e.offset as i64, e))
        });
    }
    // A loop back to 0: the first beat is at hand; the block that jumps only tops it up.
    let steps = monitor.meters.model_steps.load(Ordering::Relaxed);
    let mut again = Vec::new();
    player.process(HostTransport { samples: 1, ..block(true, Some(120.0), Some(0.0)) }, &[], &mut |e| {
        again.push((0, e))
    });
    assert!(monitor.meters.model_steps.load(Ordering::Relaxed) - steps <= 2);
    for i in 0..60 {
        let at = 1 + i * 512;
        player.process(block(true, Some(120.0), Some(at as f64 / SPB)), &[], &mut |e| {
            again.push((at + e.offset as i64, e))
        });
    }
    assert!(!beat_of(&first).is_empty());
    assert_eq!(beat_of(&again), beat_of(&first));
    assert_eq!(monitor.meters.late_events.load(Ordering::Relaxed), 0);
}

#[test]
fn without_a_host_tempo_or_position_it_plays_at_120_bpm_on_its_own_clock() {
    let mut player = player();
    let mut with_host = support::player();
    let (mut own, mut host) = (Vec::new(), Vec::new());
    for i in 0..1000i64 {
        player.process(block(true, None, None), &[], &mut |e| own.push((i, e)));
        with_host
            .process(block(true, Some(120.0), Some(i as f64 * 512.0 / SPB)), &[], &mut |e| host.push((i, e)));
    }
    assert!(own.len() > 40);
    assert_eq!(own, host);
}

#[test]
fn a_switched_in_player_starts_its_music_on_the_next_beat() {
    let mut player = player();
    player.prime();
    let beats_per_block = 512.0 / SPB;
    let start = 10.3;
    let mut first = None;
    for i in 0..200 {
        let pos = start + i as f64 * beats_per_block;
        player.process(block(true, Some(120.0), Some(pos)), &[], &mut |e| {
            if e.is_on() && first.is_none() {
                first = Some(pos + e.offset as f64 / SPB);
            }
        });
    }
    let first = first.expect("the primed player plays");
    // On the grid that starts at beat 11: a whole number of 24ths of a beat from it.
    let steps = (first - 11.0) * STEPS_PER_BEAT as f64;
    assert!(first >= 11.0 - 1e-9 && (steps - steps.round()).abs() < 0.05, "first note at beat {first}");
}

#[test]
fn the_drum_model_strikes_the_kit_from_the_hosts_bar_line_and_every_hit_ends_by_itself() {
    use continuo::built_in::{ModelChoice, ModelSource};
    use continuo::model_switch::open_player;
    use continuo_engine::midi::GM_KIT;
    use continuo_engine::vocab::HIT_STEPS;

    // Key, scale and range as a musician left them for a melody: a kit ignores them.
    let mut settings = settings(3);
    settings.generator.sampler.lowest = 60;
    settings.generator.sampler.highest = 72;
    let source = ModelSource::BuiltIn(ModelChoice::Drums);
    let mut player = open_player(&source, &settings, &std::sync::Arc::default()).unwrap();
    // The host starts playing in the middle of its first bar (4/4): the groove's downbeat is
    // the host's next bar line, beat 4, not the next beat.
    let start = 1.5;
    let mut hits: Vec<(f64, u8)> = Vec::new();
    let mut sounding: std::collections::BTreeMap<u8, f64> = Default::default();
    let mut longest_hit = 0.0f64;
    for i in 0..(32.0 * SPB / 256.0) as usize {
        let pos = start + i as f64 * 256.0 / SPB;
        let host = HostTransport {
            time_signature: Some((4, 4)),
            samples: 256,
            ..block(true, Some(120.0), Some(pos))
        };
        player.process(host, &[], &mut |e| {
            let at = pos + e.offset as f64 / SPB;
            if e.is_on() {
                assert!(sounding.insert(e.pitch, at).is_none(), "{} struck again while sounding", e.pitch);
                hits.push((at, e.pitch));
            } else if let Some(on) = sounding.remove(&e.pitch) {
                longest_hit = longest_hit.max(at - on);
            }
        });
    }
    assert!(hits.len() > 32, "a groove plays: only {} hits in 8 bars", hits.len());
    let first = hits[0].0;
    assert!((first - 4.0).abs() < 1e-9, "the first hit at beat {first}, not on the bar line");
    assert!(hits.iter().all(|(_, pitch)| GM_KIT.contains(pitch)), "every hit is a piece of the GM kit");
    assert!(hits.iter().any(|&(_, pitch)| !(60..=72).contains(&pitch)), "the melodic range does not apply");
    // A hit sounds its 32nd (a little less when the same piece comes again sooner).
    let hit = HIT_STEPS as f64 / STEPS_PER_BEAT as f64;
    assert!(longest_hit <= hit + 1e-9, "a hit held {longest_hit} beats");
    assert!(sounding.values().all(|&on| on > start + 31.0), "hits left sounding: {sounding:?}");
}
