//! A CLAP host, written with clack-host, that loads the bundled `Continuo.clap` exactly as a DAW
//! does and plays it: transport play, pause, stop, loops, tempo changes, block sizes from 1 to
//! 8192, sample rates from 44.1 to 192 kHz, parameters, and state.
//!
//! The bundle is built by `cargo xtask bundle continuo` (run by `cargo xtask test`, the README's
//! test command); set CONTINUO_CLAP to test another one.

#[path = "support/keyboard.rs"]
mod keyboard;
#[path = "support/clap_host.rs"]
mod support;

use clack_host::prelude::{ClapId, PluginEntry};
use continuo_engine::vocab::DRUM_LINES;
use support::*;

#[test]
fn plays_32_bars_at_every_block_size_and_ends_every_note() {
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut random = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        1 + (seed % 2048) as usize
    };
    let sizes: Vec<(&str, BlockSizes)> = vec![
        ("1", Box::new(fixed(1))),
        ("64", Box::new(fixed(64))),
        ("512", Box::new(fixed(512))),
        ("8192", Box::new(fixed(8192))),
        ("random", Box::new(&mut random)),
    ];
    for (name, mut size) in sizes {
        let mut host = Host::new(48_000.0);
        // Only one bar at block size 1: 4 beats are already 96,000 process calls.
        let beats = if name == "1" { 4.0 } else { 128.0 };
        host.stopped(512, 0.0);
        let end = host.play(0.0, beats, 120.0, &mut size);
        let ons = host.heard.iter().filter(|h| h.on).count();
        assert!(ons as f64 >= beats, "block size {name}: only {ons} notes in {beats} beats");
        assert!(host.heard.iter().all(|h| h.channel == 0));
        // Stop: every sounding note ends in that very block, and nothing plays after.
        let stop = host.stopped(256, end);
        assert!(sounding_after(&host.heard).is_empty(), "block size {name}: notes left hanging");
        assert!(stop.iter().all(|h| !h.on && h.offset == 0));
        for _ in 0..20 {
            assert!(host.stopped(512, end).is_empty(), "block size {name}: notes while stopped");
        }
    }
}

#[test]
fn pause_releases_notes_and_resume_continues_the_music() {
    let mut host = Host::new(48_000.0);
    let pos = host.play(0.0, 16.0, 120.0, &mut fixed(512));
    let released = host.stopped(512, pos);
    assert!(sounding_after(&host.heard).is_empty(), "pause must end every note in its block");
    assert!(released.iter().all(|h| !h.on));

    // The same seed and host script give the same notes: a paused-and-resumed run continues
    // exactly as an uninterrupted one would, but for the notes the pause cut.
    let resumed_from = host.heard.len();
    host.play(pos, 16.0, 120.0, &mut fixed(512));
    let mut straight = Host::new(48_000.0);
    let end = straight.play(0.0, 32.0, 120.0, &mut fixed(512));
    // The resumed block came one block (512 samples) later in sample time; both runs are
    // compared up to where the straight one ended.
    let (from, to) = ((pos * 24_000.0).round() as u64, (end * 24_000.0).round() as u64);
    let resumed_ons: Vec<(u8, u64)> = host.heard[resumed_from..]
        .iter()
        .filter(|h| h.on && h.sample < to + 512)
        .map(|h| (h.key, h.sample))
        .collect();
    let straight_ons: Vec<(u8, u64)> =
        straight.heard.iter().filter(|h| h.on && h.sample >= from).map(|h| (h.key, h.sample + 512)).collect();
    assert!(!resumed_ons.is_empty());
    assert_eq!(resumed_ons, straight_ons, "resume did not continue the same music");
}

#[test]
fn bypass_ends_every_note_and_lifting_it_plays_on() {
    let mut host = Host::new(48_000.0);
    let mut pos = host.play(0.0, 8.0, 120.0, &mut fixed(512));
    host.set("Bypass", "On");
    let heard = host.block(512, Transport { playing: true, tempo: 120.0, beats: pos });
    pos += 512.0 / 24_000.0;
    assert!(
        heard.iter().all(|h| !h.on) && sounding_after(&host.heard).is_empty(),
        "bypass must end every note"
    );
    let silent_from = host.heard.len();
    pos = host.play(pos, 4.0, 120.0, &mut fixed(512));
    assert_eq!(host.heard.len(), silent_from, "notes while bypassed");
    host.set("Bypass", "Off");
    host.play(pos, 8.0, 120.0, &mut fixed(512));
    assert!(host.heard[silent_from..].iter().any(|h| h.on), "nothing played after the bypass lifted");
}

#[test]
fn a_rewind_or_loop_starts_the_music_again() {
    let mut host = Host::new(48_000.0);
    host.play(0.0, 8.0, 120.0, &mut fixed(256));
    let first: Vec<(u8, u64)> = host.heard.iter().filter(|h| h.on).map(|h| (h.key, h.sample)).collect();
    let jump_at = host.heard.len();
    // Loop back to the start while playing: notes end at once, then the music restarts.
    let samples_before = host.samples;
    let heard = host.block(256, Transport { playing: true, tempo: 120.0, beats: 0.0 });
    let offs_first = heard.iter().take_while(|h| !h.on).count();
    assert!(
        sounding_after(&host.heard[..jump_at + offs_first]).is_empty(),
        "a jump must end every sounding note first"
    );
    host.play(256.0 / 24_000.0, 8.0 - 256.0 / 24_000.0, 120.0, &mut fixed(256));
    let again: Vec<(u8, u64)> =
        host.heard[jump_at..].iter().filter(|h| h.on).map(|h| (h.key, h.sample - samples_before)).collect();
    assert_eq!(again[..first.len().min(again.len())], first[..first.len().min(again.len())]);
    assert!(again.len() >= first.len() - 1);
}

#[test]
fn follows_tempo_changes_and_sample_rates() {
    for rate in [44_100.0, 48_000.0, 96_000.0, 192_000.0] {
        let mut host = Host::new(rate);
        let mut pos = 0.0;
        for tempo in [90.0, 140.0, 60.0, 180.0] {
            pos = host.play(pos, 8.0, tempo, &mut fixed(512));
        }
        let ons = host.heard.iter().filter(|h| h.on).count();
        assert!(ons >= 16, "{rate} Hz: {ons} notes");
        host.stopped(64, pos);
        assert!(sounding_after(&host.heard).is_empty());
    }
    // Same music at another tempo: the note order is the same, only the samples move.
    let mut slow = Host::new(48_000.0);
    slow.play(0.0, 16.0, 60.0, &mut fixed(480));
    let mut fast = Host::new(48_000.0);
    fast.play(0.0, 16.0, 120.0, &mut fixed(240));
    let keys = |h: &Host| h.heard.iter().map(|e| (e.key, e.on)).collect::<Vec<_>>();
    assert_eq!(keys(&slow), keys(&fast));
    for (s, f) in slow.heard.iter().zip(&fast.heard) {
        assert!((s.sample as i64 - 2 * f.sample as i64).abs() <= 2, "{s:?} vs {f:?}");
    }
}

#[test]
fn scale_lock_range_and_channel_hold_for_every_note() {
    let mut host = Host::new(48_000.0);
    host.set("Key", "D");
    host.set("Scale", "Mixolydian");
    host.set("Lowest note", "G3");
    host.set("Highest note", "G5");
    host.set("MIDI channel", "10");
    host.play(0.0, 64.0, 120.0, &mut fixed(512));
    let d_mixolydian = [2, 4, 6, 7, 9, 11, 0];
    let ons: Vec<&Heard> = host.heard.iter().filter(|h| h.on).collect();
    assert!(ons.len() > 16);
    for h in &ons {
        assert!((55..=79).contains(&h.key), "{h:?} outside the range");
        assert!(d_mixolydian.contains(&(h.key % 12)), "{h:?} outside D mixolydian");
    }
    let channels: std::collections::BTreeSet<u8> = host.heard.iter().map(|h| h.channel).collect();
    assert_eq!(channels.into_iter().collect::<Vec<_>>(), vec![9], "MIDI channel 10 is 9 on the wire");
}

#[test]
fn the_drum_model_plays_the_kit_on_channel_10_unless_another_channel_is_chosen() {
    let mut host = Host::with_model(48_000.0, "drums");
    let channel = host.param_id("MIDI channel");
    assert_eq!(host.value_to_text(channel, 0.0), "auto");
    host.stopped(512, 0.0);
    let start = host.samples;
    let end = host.play(0.0, 32.0, 120.0, &mut fixed(512));
    let ons: Vec<Heard> = host.heard.iter().filter(|h| h.on).copied().collect();
    assert!(ons.len() > 32, "a groove plays: only {} hits in 8 bars", ons.len());
    assert_eq!(ons[0].sample, start, "the groove starts on the host's first bar line");
    assert!(host.heard.iter().all(|h| h.channel == 9), "on auto, a drum model plays on channel 10");
    assert!(ons.iter().all(|h| continuo_engine::midi::GM_KIT.contains(&h.key)));
    // Chosen, another channel: the hits sounding end on 10, the next ones come on 3.
    host.set("MIDI channel", "3");
    let before = host.heard.len();
    let end = host.play(end, 8.0, 120.0, &mut fixed(512));
    let channels: std::collections::BTreeSet<u8> =
        host.heard[before..].iter().filter(|h| h.on).map(|h| h.channel).collect();
    assert_eq!(channels.into_iter().collect::<Vec<_>>(), vec![2]);
    host.stopped(512, end);
    assert!(sounding_after(&host.heard).is_empty(), "hits left sounding");
}

#[test]
fn same_seed_same_notes_and_state_round_trips() {
    let run = |seed: &str| {
        let mut host = Host::new(48_000.0);
        host.set("Seed", seed);
        host.play(0.0, 32.0, 120.0, &mut fixed(1024));
        host.heard.iter().map(|h| (h.key, h.sample, h.on)).collect::<Vec<_>>()
    };
    assert_eq!(run("42"), run("42"));
    assert_ne!(run("42"), run("43"));

    let mut host = Host::new(48_000.0);
    host.set("Seed", "77");
    host.set("Temperature", "0.8");
    host.block(64, Transport { playing: false, tempo: 120.0, beats: 0.0 });
    let saved = host.save_state();
    assert_eq!(host.save_state(), saved, "saving twice must give the same bytes");
    let mut other = Host::new(48_000.0);
    other.deactivate();
    other.load_state(&saved);
    other.activate();
    assert_eq!(other.save_state(), saved, "state did not round-trip");
}

#[test]
fn a_project_names_its_model_and_a_missing_one_falls_back_to_the_default() {
    use continuo_engine::model::{self, ModelInfo, ModelShape, ModelWeights};

    // Another model, written by the engine from random weights.
    let dir = tempfile::tempdir().unwrap();
    let other_model = dir.path().join("other.onnx");
    let shape = ModelShape { layers: 1, hidden: 32, embed: 16, dense: 32, vocab: 384, harmony: None };
    let weights = ModelWeights::random(&shape, 9, 0.8);
    std::fs::write(&other_model, model::write(&weights, &ModelInfo::new("other", shape)).unwrap()).unwrap();

    let saved = Host::new(48_000.0).save_state();
    // The state as a project would hold it, naming a model file.
    // nice-plug's CLAP state: a little-endian u64 length, then the JSON.
    let naming = |path: &str| {
        let mut state: serde_json::Value = serde_json::from_slice(&saved[8..]).expect("the state is JSON");
        // As a project saved before the Model parameter holds it: the file alone.
        state["params"].as_object_mut().unwrap().remove("model");
        state["fields"]["model-path"] = serde_json::Value::String(serde_json::to_string(path).unwrap());
        let json = serde_json::to_vec(&state).unwrap();
        [(json.len() as u64).to_le_bytes().as_slice(), &json].concat()
    };
    let play = |state: Option<Vec<u8>>| {
        let mut host = Host::new(48_000.0);
        if let Some(state) = state {
            host.deactivate();
            host.load_state(&state);
            host.activate();
        }
        host.play(0.0, 16.0, 120.0, &mut fixed(512));
        host.heard.iter().map(|h| (h.key, h.sample, h.on)).collect::<Vec<_>>()
    };
    let default = play(None);
    assert_ne!(
        play(Some(naming(other_model.to_str().unwrap()))),
        default,
        "the project's model did not play"
    );
    assert_eq!(
        play(Some(naming("/moved/away/model.onnx"))),
        default,
        "a missing model must fall back to the default"
    );
}

#[test]
fn automating_the_model_switches_built_in_models_while_playing_and_the_project_keeps_the_choice() {
    // A project that chose this built-in model, as its state holds it.
    let choosing = |id: &str| {
        let saved = Host::new(48_000.0).save_state();
        let mut state: serde_json::Value = serde_json::from_slice(&saved[8..]).expect("the state is JSON");
        state["params"]["model"] = serde_json::json!({ "string": id });
        let json = serde_json::to_vec(&state).unwrap();
        [(json.len() as u64).to_le_bytes().as_slice(), &json].concat()
    };
    // What each model plays from the start, alone: the pitches of its notes.
    let alone = |id: &str| {
        let mut host = Host::new(48_000.0);
        host.deactivate();
        host.load_state(&choosing(id));
        host.activate();
        host.play(0.0, 16.0, 120.0, &mut fixed(512));
        host.heard.iter().filter(|h| h.on).map(|h| h.key).collect::<Vec<_>>()
    };
    let models = [
        ("Folk melody", alone("folk-melody")),
        ("Bass line", alone("bass-line")),
        ("Bach chorales", alone("bach-chorales")),
    ];
    assert!(models
        .iter()
        .all(|(name, keys)| keys.len() > 16 && models.iter().all(|(other, k)| other == name || k != keys)));

    // Automation while the host plays: the old model's notes end, and the new one plays its own
    // opening from the next beat.
    let mut host = Host::new(48_000.0);
    let mut pos = host.play(0.0, 8.0, 120.0, &mut fixed(256));
    for (name, opening) in &models {
        let before = host.heard.len();
        host.set("Model", name);
        let started = std::time::Instant::now();
        let plays_its_opening = |host: &Host| {
            let keys: Vec<u8> = host.heard[before..].iter().filter(|h| h.on).map(|h| h.key).collect();
            keys.windows(12).any(|w| w == &opening[..12])
        };
        while !plays_its_opening(&host) {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "{name} never played");
            pos = host.play(pos, 0.5, 120.0, &mut fixed(256));
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        pos = host.play(pos, 4.0, 120.0, &mut fixed(256));
    }
    host.stopped(256, pos);
    let mut sounding = std::collections::BTreeSet::new();
    for h in &host.heard {
        if h.on {
            assert!(sounding.insert(h.key), "{h:?} struck while sounding");
        } else {
            assert!(sounding.remove(&h.key), "{h:?} ends a note that does not sound");
        }
    }
    assert!(sounding.is_empty(), "hanging after the switches: {sounding:?}");

    // The project remembers the choice, and a restored project plays it.
    let mut host = Host::new(48_000.0);
    host.set("Model", "Bass line");
    host.block(64, Transport { playing: false, tempo: 120.0, beats: 0.0 });
    let saved = host.save_state();
    let state: serde_json::Value = serde_json::from_slice(&saved[8..]).unwrap();
    assert_eq!(state["params"]["model"]["string"], "bass-line", "{state}");
    let mut restored = Host::new(48_000.0);
    restored.deactivate();
    restored.load_state(&saved);
    restored.activate();
    restored.play(0.0, 16.0, 120.0, &mut fixed(512));
    assert_eq!(restored.heard.iter().filter(|h| h.on).map(|h| h.key).collect::<Vec<_>>(), models[1].1);
}

#[test]
fn changing_channel_or_range_mid_song_leaves_no_note_hanging() {
    let mut host = Host::new(48_000.0);
    let mut pos = host.play(0.0, 8.0, 120.0, &mut fixed(512));
    host.set("MIDI channel", "5");
    pos = host.play(pos, 8.0, 120.0, &mut fixed(512));
    let narrowed_at = host.heard.len();
    host.set("Highest note", "C4");
    pos = host.play(pos, 8.0, 120.0, &mut fixed(512));
    host.stopped(512, pos);

    // Every note-on is ended on its own channel: the old channel's notes end there.
    let mut sounding = std::collections::BTreeSet::new();
    for h in &host.heard {
        if h.on {
            assert!(sounding.insert((h.channel, h.key)), "{h:?} struck while sounding");
        } else {
            assert!(sounding.remove(&(h.channel, h.key)), "{h:?} ends a note that does not sound");
        }
    }
    assert!(sounding.is_empty(), "hanging: {sounding:?}");
    let channels: std::collections::BTreeSet<u8> = host.heard.iter().map(|h| h.channel).collect();
    assert_eq!(channels.into_iter().collect::<Vec<_>>(), vec![0, 4]);
    // After narrowing, no note above middle C starts.
    assert!(host.heard[narrowed_at..].iter().filter(|h| h.on).all(|h| h.key <= 60));
    assert!(host.heard[narrowed_at..].iter().any(|h| h.on), "nothing played in the narrowed range");
}

/// The musician's call, as the host sends it: (sample, key, on), a little off the grid.
fn chorale_call(file: &str, bars: f64) -> Vec<(u64, u16, bool)> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validation-chorales")
        .join(file);
    let song = continuo_engine::midi::read_file(&path).unwrap();
    let mut call = Vec::new();
    for (i, note) in song.notes.iter().filter(|n| n.start < bars * 4.0).enumerate() {
        let jitter = 23 + (i as u64 * 97) % 350;
        call.push(((note.start * 24_000.0) as u64 + jitter, note.pitch as u16, true));
        call.push((
            (note.end.min(bars * 4.0) * 24_000.0) as u64 - 150 + jitter % 90,
            note.pitch as u16,
            false,
        ));
    }
    call.sort();
    call
}

/// Plays `beats` beats at 120 BPM in blocks of 512 with `input` sent on channel 2 (passed
/// through; Continuo plays on channel 1). Returns Continuo's own notes.
fn call_and_response(seed: &str, input: &[(u64, u16, bool)], beats: f64) -> Vec<Heard> {
    let mut host = Host::new(48_000.0);
    host.set("Mode", "Call and response");
    host.set("Answer after", "1");
    host.set("Answer length", "until I play");
    host.set("Seed", seed);
    play_along(&mut host, input, beats)
}

/// Plays `beats` beats at 120 BPM from a stopped block, in blocks of 512, with `input` sent on
/// channel 2 (passed through; Continuo plays on channel 1), samples counted from where play
/// begins. Returns Continuo's own notes.
fn play_along(host: &mut Host, input: &[(u64, u16, bool)], beats: f64) -> Vec<Heard> {
    host.stopped(512, 0.0);
    let mut next = 0;
    let mut sample = 0u64;
    while (sample as f64) < beats * 24_000.0 {
        while next < input.len() && input[next].0 < sample + 512 {
            let (at, key, on) = input[next];
            host.note_in((at - sample) as u32, 1, key, on);
            next += 1;
        }
        host.block(512, Transport { playing: true, tempo: 120.0, beats: sample as f64 / 24_000.0 });
        sample += 512;
    }
    host.stopped(512, sample as f64 / 24_000.0);
    // Samples from where play began, as `input` counts them: after the first, stopped block.
    for h in &mut host.heard {
        h.sample -= 512;
    }
    let passed_through = host.heard.iter().filter(|h| h.channel == 1).count();
    assert_eq!(passed_through, input.len(), "the musician's notes pass through");
    std::mem::take(&mut host.heard).into_iter().filter(|h| h.channel == 0).collect()
}

#[test]
fn the_continuo_bass_follows_four_chords_played_into_it() {
    // I-V-vi-IV in C, two bars a chord, twice, as a keyboard player plays it.
    let chords = keyboard::twice_round(&["C", "G", "Am", "F"]);
    let input: Vec<(u64, u16, bool)> = keyboard::keyboard_chords(&chords)
        .into_iter()
        .map(|(at, key, down)| (at, key as u16, down))
        .collect();
    let play = || {
        let mut host = Host::with_model(48_000.0, "continuo-bass");
        host.set("Seed", "11");
        play_along(&mut host, &input, 64.0)
    };
    let bass = play();
    assert!(sounding_after(&bass).is_empty(), "notes left hanging");
    let ons: Vec<&Heard> = bass.iter().filter(|h| h.on).collect();
    assert!(ons.len() >= 16, "the bass hardly plays: {} notes", ons.len());
    let chord_samples = keyboard::CHORD_BEATS * 24_000;
    let chord_at = |sample: u64| chords[(sample / chord_samples) as usize];
    let on_beats: Vec<&&Heard> = ons.iter().filter(|h| h.sample % 24_000 == 0).collect();
    let tones = on_beats.iter().filter(|h| chord_at(h.sample).holds(h.key % 12)).count();
    let on_the_line = (1..chords.len() as u64)
        .filter(|i| {
            ons.iter().find(|h| h.sample >= i * chord_samples).is_some_and(|h| h.sample == i * chord_samples)
        })
        .count();
    println!(
        "{tones} of {} bass notes on beats are chord tones; the first note after a change is on its \
         line at {on_the_line} of {} changes",
        on_beats.len(),
        chords.len() - 1
    );
    assert!(
        tones as f64 >= 0.75 * on_beats.len() as f64,
        "{tones} of {} on beats are chord tones",
        on_beats.len()
    );
    assert!(on_the_line + 1 >= chords.len() - 1, "first notes on the change's line at {on_the_line} changes");
    // Same chords, same seed, same bass.
    assert_eq!(play(), bass);
}

/// A band: three instances of the bundle in one host, one per track, the Drums, the Groove bass
/// and the Keys comping, the last two on the song's chord track (C G Am F, two bars a chord, as a
/// keyboard player plays it), each processed in turn in every block. Play starts half way
/// through a bar: nothing plays before the next bar line, the three start on it (a part whose
/// first chord the blocks to come cannot draw by it at the step cap, on the first grid line they
/// can: the tests of this file run side by side, and every instance active shares the cap), each
/// note of theirs on a step of the host's grid and mostly on the groove's lines (its 32nds and
/// triplets), the drums on channel 10, and the two that follow play in the chords.
#[test]
fn three_instances_play_as_a_band_from_the_host_bar_line() {
    const START: f64 = 2.0;
    const BAR_LINE: f64 = 4.0;
    const BEATS: f64 = 64.0;
    let block = 512;
    let chords = keyboard::twice_round(&["C", "G", "Am", "F"]);
    // The chord track from the first bar line, in samples from where play starts.
    let lead_in = ((BAR_LINE - START) * 24_000.0) as u64;
    let chord_track: Vec<(u64, u16, bool)> = keyboard::keyboard_chords(&chords)
        .into_iter()
        .map(|(at, key, down)| (at + lead_in, key as u16, down))
        .collect();
    let mut band = ["drums", "groove-bass", "keys-comping"].map(|id| {
        let mut host = Host::with_model(48_000.0, id);
        host.set("Seed", "3");
        host.stopped(block, START);
        host
    });
    let (mut sample, mut next) = (0u64, 0);
    while (sample as f64) < (BAR_LINE - START + BEATS) * 24_000.0 {
        let from = next;
        while next < chord_track.len() && chord_track[next].0 < sample + block as u64 {
            next += 1;
        }
        for (k, host) in band.iter_mut().enumerate() {
            // The drums hear no chords; the bass and the keys do.
            for &(at, key, on) in chord_track[from..next].iter().filter(|_| k > 0) {
                host.note_in((at - sample) as u32, 1, key, on);
            }
            host.block(
                block,
                Transport { playing: true, tempo: 120.0, beats: START + sample as f64 / 24_000.0 },
            );
        }
        sample += block as u64;
    }
    let chord_samples = keyboard::CHORD_BEATS * 24_000;
    for (k, host) in band.iter_mut().enumerate() {
        host.stopped(block, START + sample as f64 / 24_000.0);
        // Its own notes (the chords pass through on channel 2), from where play started.
        let own: Vec<Heard> = host
            .heard
            .iter()
            .filter(|h| h.channel != 1)
            .map(|h| Heard { sample: h.sample - block as u64, ..*h })
            .collect();
        let ons: Vec<&Heard> = own.iter().filter(|h| h.on).collect();
        let name = ["the drums", "the bass", "the keys"][k];
        assert!(sounding_after(&own).is_empty(), "{name} left notes hanging");
        assert!(ons.len() >= 32, "{name} hardly play: {} notes", ons.len());
        let first = ons[0].sample as f64 / 24_000.0 + START;
        // Where in the host's beat a note starts, in grid steps (24 a beat): a whole step always,
        // and for grooves learned on their grid, mostly one of its lines.
        let steps = |h: &&Heard| h.sample as f64 / 1_000.0 + START * 24.0;
        let between_steps = ons.iter().filter(|h| steps(h).fract() != 0.0).count();
        let on_a_line = ons.iter().filter(|h| DRUM_LINES.contains(&(steps(h) as u64 % 24))).count();
        let on_a_line = on_a_line as f64 / ons.len() as f64;
        let channels: std::collections::BTreeSet<u8> = ons.iter().map(|h| h.channel).collect();
        let chord_at = |sample: u64| chords.get(((sample.checked_sub(lead_in)?) / chord_samples) as usize);
        let on_beats: Vec<&&Heard> = ons.iter().filter(|h| h.sample % 24_000 == 0).collect();
        let tones =
            on_beats.iter().filter(|h| chord_at(h.sample).is_some_and(|c| c.holds(h.key % 12))).count();
        println!(
            "{name}: {} notes on channels {channels:?}, the first at beat {first}, {between_steps} between \
             the grid's steps, {on_a_line:.2} on its 32nds and triplets, {tones} of {} on beats chord tones",
            ons.len(),
            on_beats.len()
        );
        assert!((BAR_LINE..=BAR_LINE + 0.25).contains(&first), "{name} start on the host's bar line");
        assert_eq!(between_steps, 0, "{name} play off the host's grid");
        assert!(on_a_line >= 0.8, "{name} play off the groove's lines");
        assert_eq!(
            channels.into_iter().collect::<Vec<_>>(),
            [if k == 0 { 9 } else { 0 }],
            "the channel of {name}"
        );
        if k > 0 {
            assert!(
                tones * 3 >= on_beats.len() * 2,
                "{name}: {tones} of {} on beats chord tones",
                on_beats.len()
            );
        }
    }
}

#[test]
fn a_call_is_answered_after_the_rest_and_the_answer_stops_where_the_next_call_begins() {
    let mut input = chorale_call("bwv283.mid", 2.0);
    let call_end = input.iter().map(|e| e.0).max().unwrap();
    // The next call, three bars after the first ended, off the grid.
    let next_call = call_end + 12 * 24_000 + 3_333;
    input.extend([(next_call, 64, true), (next_call + 20_000, 64, false)]);
    let answer = call_and_response("7", &input, 24.0);

    assert!(sounding_after(&answer).is_empty(), "notes left hanging");
    let first = answer.iter().find(|h| h.on).expect("an answer").sample;
    // A beat's rest after the call's last note, then the next grid step.
    assert!(
        first as f64 >= call_end as f64 + 24_000.0 - 1000.0,
        "answered at {first}, the call ended at {call_end}"
    );
    assert!(first < call_end + 2 * 24_000, "no answer in the beat after the rest: {first}");
    assert!(answer.iter().filter(|h| h.on && h.sample < next_call).count() > 8, "a real answer");
    // The musician plays again: every note of the answer ends in that block, and Continuo is
    // silent until the musician rests again.
    let block_end = (next_call / 512 + 1) * 512;
    assert!(sounding_after(&answer.iter().filter(|h| h.sample < block_end).copied().collect::<Vec<_>>())
        .is_empty());
    let rest_ends = next_call + 20_000 + 24_000 - 1000;
    assert!(answer.iter().all(|h| h.sample < block_end || h.sample >= rest_ends), "played over the musician");
    // Same call and seed, same answer.
    assert_eq!(call_and_response("7", &input, 24.0), answer);
}

/// What one value of a parameter shows, and what that text reads back as (with its own text),
/// or `None` when the parameter does not accept its own text.
fn text_and_back(host: &mut Host, id: ClapId, value: f64) -> (String, Option<(f64, String)>) {
    let text = host.value_to_text(id, value);
    let back = host.text_to_value(id, &text).map(|back| (back, host.value_to_text(id, back)));
    (text, back)
}

/// A host shows a parameter's value as the plugin's text and lets a person type one in: every
/// parameter must read back what it shows. For each one the real bundle lists, at every step of
/// a stepped parameter and at 201 values across a continuous one, the text reads back as a value
/// that shows the same text. A stepped parameter gets its very step back. A continuous one gets
/// the nearest of the values its texts say (for a parameter with a step size, its step grid),
/// which read back exactly: a value moves no further than its text's precision, and never drifts.
///
/// nice-plug's CLAP wrapper hands a step over as the step's share of the range in `f32` times the
/// step count, so step 1234 of the seed comes back as 1233.9997; nice-plug rounds what it
/// receives, so that is the same step, and it is the step that is checked.
#[test]
fn every_parameter_value_survives_its_text_and_back() {
    let mut host = Host::new(48_000.0);
    let params = host.params();
    for name in ["Model", "Density", "Seed", "Temperature"] {
        assert!(params.iter().any(|p| p.name == name), "no parameter {name} in {params:?}");
    }
    let mut failures = Vec::new();
    for p in &params {
        let mut fail = |what: String| failures.push(format!("{}: {what}", p.name));
        if p.stepped {
            for step in p.min as i64..=p.max as i64 {
                let value = step as f64;
                match text_and_back(&mut host, p.id, value) {
                    (text, None) => fail(format!("step {step} shows {text:?}, which it does not accept")),
                    (text, Some((back, back_text))) if back.round() != value || back_text != text => {
                        fail(format!(
                            "step {step} shows {text:?}, which reads back as {back}, shown {back_text:?}"
                        ))
                    }
                    _ => {}
                }
            }
            continue;
        }
        let mut trips = Vec::new();
        for i in 0..=200 {
            let value = p.min + (p.max - p.min) * i as f64 / 200.0;
            match text_and_back(&mut host, p.id, value) {
                (text, None) => fail(format!("{value} shows {text:?}, which it does not accept")),
                (text, Some((back, back_text))) if back_text != text => {
                    fail(format!("{value} shows {text:?}, which reads back as {back}, shown {back_text:?}"))
                }
                (_, Some((back, _))) => trips.push((value, back)),
            }
        }
        let mut said: Vec<f64> = trips.iter().map(|(_, back)| *back).collect();
        said.sort_by(f64::total_cmp);
        said.dedup();
        for &value in &said {
            if let (text, Some((back, _))) = text_and_back(&mut host, p.id, value) {
                if back != value {
                    fail(format!("{value} shows {text:?}, which reads back as {back}"));
                }
            }
        }
        for (value, back) in trips {
            let nearest = said.iter().map(|s| (s - value).abs()).fold(f64::INFINITY, f64::min);
            if (back - value).abs() > nearest + 1e-6 {
                fail(format!("{value} reads back as {back}, though its texts say values {nearest} from it"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} values do not survive their text; the first:\n{}",
        failures.len(),
        failures[..failures.len().min(20)].join("\n")
    );
}

/// Hosts show the plugin's web address and e-mail to the musician; a made-up one is worse than
/// none.
#[test]
fn the_plugin_gives_hosts_no_made_up_address() {
    let entry = unsafe { PluginEntry::load(bundle_path()) }.expect("the bundle loads as a CLAP entry");
    let factory = entry.get_plugin_factory().expect("a plugin factory");
    let descriptor = factory.plugin_descriptors().next().expect("one plugin in the bundle");
    let url = descriptor.url().map(|u| u.to_string_lossy().into_owned()).unwrap_or_default();
    assert!(!url.contains("example"), "the plugin's URL is a placeholder: {url:?}");
}
