//! Following the song's harmony, measured on the player with the built-in models that follow
//! it: a keyboard player's chords (struck a few milliseconds off the beat, let go a little
//! early) come into the Continuo bass, which plays chord tones on the beats, its first note
//! under each chord on the chord's grid line, at the step caps of fast and slow machines; the
//! Groove bass, which also keeps the beat; the Keys comping, which comps in chords on the
//! groove's grid; a chorale's melody comes into the Harmony model,
//! which sings under it in chords.

#[path = "support/keyboard.rs"]
mod keyboard;
#[path = "support/player.rs"]
mod support;

use std::sync::atomic::Ordering;

use continuo::built_in::{ModelChoice, ModelSource};
use continuo::model_switch::open_player;
use continuo::player::{OutputEvent, Player};
use continuo::step_budget::step_cap;
use continuo_engine::harmony::Harmony;
use keyboard::{keyboard_chords, twice_round, CHORD_BEATS};
use support::*;

const BLOCK: usize = 512;
/// Of the bass notes struck on a beat, at least this share are chord tones: two in three. The
/// same model with the harmony withheld struck chord tones with 0.21-0.33 of its notes on beats
/// (`eval`, five progressions), the chorales' own bass 0.63 of its on beats.
const CHORD_TONES_ON_BEATS: f64 = 2.0 / 3.0;

/// I-V-vi-IV in C, a progression the chorales never play, twice round.
fn progression() -> Vec<Harmony> {
    twice_round(&["C", "G", "Am", "F"])
}

/// The chords as the keyboard player plays them into the player, on channel 2.
fn played(chords: &[Harmony]) -> Vec<Played> {
    keyboard_chords(chords)
        .into_iter()
        .map(|(at, pitch, down)| (at, pitch, if down { 90 } else { 0 }, 1))
        .collect()
}

fn continuo_bass(seed: u64, pinned_cap: Option<usize>) -> Player {
    follower(ModelChoice::ContinuoBass, seed, pinned_cap)
}

fn follower(model: ModelChoice, seed: u64, pinned_cap: Option<usize>) -> Player {
    let settings = settings(seed);
    let mut player = open_player(&ModelSource::BuiltIn(model), &settings, &Default::default()).unwrap();
    if let Some(cap) = pinned_cap {
        pin_step_cap(&mut player, cap, BLOCK);
    }
    player
}

/// What the bass did against the chords: the share of its notes struck on a beat that are
/// chord tones, and how many of the changes its first note after the change came on the
/// change's grid line.
struct Following {
    on_beats: usize,
    chord_tones_on_beats: usize,
    changes_on_the_line: usize,
    notes: usize,
}

fn measure(events: &[(u64, OutputEvent)], chords: &[Harmony]) -> Following {
    let ons: Vec<(u64, u8)> =
        events.iter().filter(|(_, e)| e.is_on()).map(|(at, e)| (*at, e.pitch)).collect();
    let chord_at = |sample: u64| chords.get((sample as f64 / SPB / CHORD_BEATS as f64) as usize);
    let on_beats: Vec<&(u64, u8)> = ons.iter().filter(|(at, _)| at % SPB as u64 == 0).collect();
    let chord_tones_on_beats =
        on_beats.iter().filter(|(at, p)| chord_at(*at).is_some_and(|c| c.holds(p % 12))).count();
    let firsts: Vec<Option<i64>> = (1..chords.len() as u64)
        .map(|i| {
            let line = i * CHORD_BEATS * SPB as u64;
            ons.iter().find(|(at, _)| *at + 1 >= line).map(|(at, _)| *at as i64 - line as i64)
        })
        .collect();
    println!("first notes after each change, samples from its line: {firsts:?}");
    let changes_on_the_line = firsts.iter().filter(|f| f.is_some_and(|f| f.abs() <= 1)).count();
    Following { on_beats: on_beats.len(), chord_tones_on_beats, changes_on_the_line, notes: ons.len() }
}

#[test]
fn the_continuo_bass_plays_under_the_chords_coming_in_on_their_beats() {
    let chords = progression();
    let input = played(&chords);
    let beats = (chords.len() as u64 * CHORD_BEATS) as f64;
    let mut landed_at = Vec::new();
    let mut at_cap_three = Vec::new();
    for pinned in [Some(3), None, Some(1), Some(2), Some(4), Some(8)] {
        let mut player = continuo_bass(11, pinned);
        let cap = step_cap(BLOCK, RATE, player.token_cost(), 1);
        let monitor = player.monitor().clone();
        let (events, worst) = perform_in_blocks(&mut player, beats, &input, BLOCK);
        assert_balanced(&events);
        assert!(worst <= cap as u64, "{worst} steps in one block, above the cap of {cap}");
        let f = measure(&events, &chords);
        if std::env::var_os("CONTINUO_SHOW_EVENTS").is_some() {
            let shown: Vec<String> = events
                .iter()
                .filter(|(at, _)| *at < 20 * SPB as u64)
                .map(|(at, e)| {
                    format!("{:.3}{}{}", *at as f64 / SPB, if e.is_on() { "+" } else { "-" }, e.pitch)
                })
                .collect();
            println!("cap {cap}: {}", shown.join(" "));
        }
        let late = monitor.meters.late_events.load(Ordering::Relaxed);
        println!(
            "cap {cap}: {} notes, {} of {} on beats are chord tones ({:.2}), first note on the change's \
             line at {} of {} changes, {late} late",
            f.notes,
            f.chord_tones_on_beats,
            f.on_beats,
            f.chord_tones_on_beats as f64 / f.on_beats.max(1) as f64,
            f.changes_on_the_line,
            chords.len() - 1
        );
        assert!(f.notes >= 2 * chords.len(), "the bass hardly plays at a cap of {cap}: {} notes", f.notes);
        landed_at.push((cap, f.changes_on_the_line));
        if pinned.is_none() {
            // This machine's cap: the bass hears every chord and plays under it.
            assert!(
                f.chord_tones_on_beats as f64 >= CHORD_TONES_ON_BEATS * f.on_beats as f64,
                "{} of {} notes on beats are chord tones",
                f.chord_tones_on_beats,
                f.on_beats
            );
            assert!(
                f.changes_on_the_line + 1 >= chords.len() - 1,
                "the first note under a new chord came on its line at only {} of {} changes",
                f.changes_on_the_line,
                chords.len() - 1
            );
            assert_eq!(late, 0, "notes came too late to place at this machine's cap");
        }
        // Going back to the change, a time shift to it, a velocity and the note: from three
        // steps a block the change is drawn in the block that hears it, and the music is the
        // same as at any larger cap.
        if cap >= 3 {
            if at_cap_three.is_empty() {
                at_cap_three = events.clone();
            }
            assert_eq!(events, at_cap_three, "at a cap of {cap} the bass plays other music than at 3");
        }
    }
    println!("first notes on the change's line, by cap: {landed_at:?}");
    // Same chords, same seed, same bass.
    let run = || perform_in_blocks(&mut continuo_bass(11, None), beats, &input, BLOCK).0;
    assert_eq!(run(), run());
}

/// The Groove bass hears where the clock stands in the bar (the meter) beside the chords: under
/// the keyboard player's chords it plays chord tones on the beats, moves with each change on its
/// line, and keeps the beat as the grooves' own bass does, whose notes start 96 % on a sixteenth
/// or an eighth-note triplet line and 67 % on a beat (its training data). Trained without the
/// meter, it played under "C Am F G7" on 0.83, 1.83, 2.83 beats, bar after bar.
#[test]
fn the_groove_bass_keeps_the_beat_under_the_chords_coming_in() {
    let chords = progression();
    let input = played(&chords);
    let beats = (chords.len() as u64 * CHORD_BEATS) as f64;
    let (mut on_the_beat, mut on_the_grid, mut notes) = (0, 0, 0);
    for seed in 1..=4 {
        let (events, _) =
            perform_in_blocks(&mut follower(ModelChoice::GrooveBass, seed, None), beats, &input, BLOCK);
        assert_balanced(&events);
        let f = measure(&events, &chords);
        let gridded = comping(&events, &chords).on_the_grid;
        println!(
            "seed {seed}: {} notes, {} of {} on beats are chord tones, {} of {} changes with a note on \
             their line, {gridded} on a sixteenth or a triplet",
            f.notes,
            f.chord_tones_on_beats,
            f.on_beats,
            f.changes_on_the_line,
            chords.len() - 1,
        );
        assert!(f.chord_tones_on_beats as f64 >= CHORD_TONES_ON_BEATS * f.on_beats as f64, "seed {seed}");
        assert!(f.changes_on_the_line + 1 >= chords.len() - 1, "seed {seed}");
        (on_the_beat, on_the_grid, notes) =
            (on_the_beat + f.on_beats, on_the_grid + gridded, notes + f.notes);
    }
    let share = |n: usize| n as f64 / notes as f64;
    println!(
        "{notes} notes: {:.2} on a beat, {:.2} on a sixteenth or a triplet",
        share(on_the_beat),
        share(on_the_grid)
    );
    assert!(share(on_the_beat) >= 0.5, "half its notes or more on the beat");
    assert!(share(on_the_grid) >= 0.8, "four in five or more on a sixteenth or a triplet");
}

/// The Keys comping plays the grooves' piano under the keyboard player's chords: chords of its
/// own, struck together on the groove's grid, sounding in the chord held. Unlike a bass it may
/// rest or push across a change (the grooves' pianos rest on 15 % of their beats), so its
/// first note under a change is not asked to fall on the change's line; holding the old chord
/// across it would show in the sounding time. With the harmony withheld it sounds in the chords
/// of its data's other parts 0.21 of its time, given them 0.52, and its data's own pianos 0.62
/// (`eval`, models/keys-comping.md).
#[test]
fn the_keys_comp_in_chords_on_the_groove_under_the_chords_coming_in() {
    let chords = progression();
    let input = played(&chords);
    let beats = (chords.len() as u64 * CHORD_BEATS) as f64;
    let mut all = Comping::default();
    let (mut on_beats, mut chord_tones_on_beats) = (0, 0);
    for seed in 1..=4 {
        let (events, _) =
            perform_in_blocks(&mut follower(ModelChoice::KeysComping, seed, None), beats, &input, BLOCK);
        assert_balanced(&events);
        let f = measure(&events, &chords);
        let comp = comping(&events, &chords);
        println!(
            "seed {seed}: {} notes in {} strikes, {:.2} of its sounding time in the chord held, {} of {} on \
             beats chord tones, {} on a sixteenth or a triplet, {} of {} changes with a note on their line",
            comp.notes,
            comp.strikes,
            comp.fitting as f64 / comp.sounding as f64,
            f.chord_tones_on_beats,
            f.on_beats,
            comp.on_the_grid,
            f.changes_on_the_line,
            chords.len() - 1,
        );
        all = all + comp;
        (on_beats, chord_tones_on_beats) =
            (on_beats + f.on_beats, chord_tones_on_beats + f.chord_tones_on_beats);
    }
    let (per_strike, in_the_chord, gridded) = (
        all.notes as f64 / all.strikes as f64,
        all.fitting as f64 / all.sounding as f64,
        all.on_the_grid as f64 / all.notes as f64,
    );
    println!(
        "{} notes: {per_strike:.1} a strike, {in_the_chord:.2} of the sounding time in the chord, {:.2} of \
         the notes on beats chord tones, {gridded:.2} on a sixteenth or a triplet",
        all.notes,
        chord_tones_on_beats as f64 / on_beats as f64
    );
    assert!(per_strike >= 2.0, "it plays single notes, not chords: {per_strike:.1} notes a strike");
    assert!(in_the_chord >= CHORD_TONES_ON_BEATS, "{in_the_chord:.2} of its sounding time in the chord");
    assert!(chord_tones_on_beats as f64 >= CHORD_TONES_ON_BEATS * on_beats as f64);
    assert!(gridded >= 0.8, "four in five or more on a sixteenth or a triplet");
}

/// How a part comps: its notes, the strikes they make (notes starting on one sample strike
/// together), the notes sounding at each sixteenth and how many of them are in the chord held
/// then, and the notes that start on a sixteenth or an eighth-note triplet line.
#[derive(Default)]
struct Comping {
    notes: usize,
    strikes: usize,
    sounding: usize,
    fitting: usize,
    on_the_grid: usize,
}

impl std::ops::Add for Comping {
    type Output = Comping;
    fn add(self, o: Comping) -> Comping {
        Comping {
            notes: self.notes + o.notes,
            strikes: self.strikes + o.strikes,
            sounding: self.sounding + o.sounding,
            fitting: self.fitting + o.fitting,
            on_the_grid: self.on_the_grid + o.on_the_grid,
        }
    }
}

/// On the beat's sixteenths and eighth-note triplets, in samples from the beat.
fn on_a_groove_line(at: u64) -> bool {
    [0, 6, 8, 12, 16, 18].map(|step| step * SPB as u64 / 24).contains(&(at % SPB as u64))
}

fn comping(events: &[(u64, OutputEvent)], chords: &[Harmony]) -> Comping {
    let onsets: Vec<u64> = events.iter().filter(|(_, e)| e.is_on()).map(|(at, _)| *at).collect();
    let mut strikes = onsets.clone();
    strikes.dedup();
    let chord_samples = CHORD_BEATS * SPB as u64;
    let (mut sounding, mut next) = ([false; 128], 0);
    let mut comp = Comping {
        notes: onsets.len(),
        strikes: strikes.len(),
        on_the_grid: onsets.iter().filter(|&&at| on_a_groove_line(at)).count(),
        ..Default::default()
    };
    for at in (0..chords.len() as u64 * chord_samples).step_by(SPB as usize / 4) {
        // Just after the line: what starts on it sounds, what ends on it does not.
        while next < events.len() && events[next].0 <= at {
            sounding[events[next].1.pitch as usize] = events[next].1.is_on();
            next += 1;
        }
        let chord = chords[(at / chord_samples) as usize];
        for pitch in (0..128u8).filter(|&p| sounding[p as usize]) {
            comp.sounding += 1;
            comp.fitting += chord.holds(pitch % 12) as usize;
        }
    }
    comp
}

#[test]
fn in_a_key_far_from_c_and_in_minor_it_follows_as_well() {
    // F# major (six sharps) and E flat minor, far from the C of the first test.
    for model in [ModelChoice::ContinuoBass, ModelChoice::GrooveBass, ModelChoice::KeysComping] {
        for symbols in [["F#", "C#", "D#m", "B"], ["Ebm", "Cb", "Gb", "Db"]] {
            let chords = twice_round(&symbols);
            let input = played(&chords);
            let beats = (chords.len() as u64 * CHORD_BEATS) as f64;
            let (events, _) = perform_in_blocks(&mut follower(model, 11, None), beats, &input, BLOCK);
            assert_balanced(&events);
            let f = measure(&events, &chords);
            println!(
                "{model:?} in {symbols:?}: {} of {} notes on beats are chord tones, {} of {} changes with a \
                 note on their line",
                f.chord_tones_on_beats,
                f.on_beats,
                f.changes_on_the_line,
                chords.len() - 1
            );
            let fits = f.chord_tones_on_beats as f64 >= CHORD_TONES_ON_BEATS * f.on_beats as f64;
            assert!(fits, "{model:?} in {symbols:?}");
            // A bass moves with each change on its line; the comping may rest or push across it.
            if model != ModelChoice::KeysComping {
                assert!(f.changes_on_the_line + 1 >= chords.len() - 1, "{model:?} in {symbols:?}");
            }
        }
    }
}

#[test]
fn without_chords_coming_in_it_plays_as_an_unconditioned_bass_would_and_a_held_chord_before_play_counts() {
    // Nothing held: it plays by itself.
    let (events, _) = perform_in_blocks(&mut continuo_bass(3, None), 16.0, &[], BLOCK);
    assert_balanced(&events);
    assert!(events.iter().filter(|(_, e)| e.is_on()).count() >= 8, "the bass plays without harmony");
    // A chord held from before play: the first bass note is one of its tones.
    let held: Vec<Played> = [43u8, 59, 62, 67].iter().map(|&p| (0, p, 90, 1)).collect();
    let mut player = continuo_bass(3, None);
    let mut sent = Vec::new();
    let input: Vec<_> = held
        .iter()
        .map(|&(_, pitch, velocity, channel)| continuo::listening::InputNote {
            offset: 0,
            pitch,
            velocity,
            channel,
        })
        .collect();
    player.process(host(false, 0, BLOCK), &input, &mut |e| sent.push(e));
    let (events, _) = perform_in_blocks(&mut player, 8.0, &[], BLOCK);
    let first = events.iter().find(|(_, e)| e.is_on()).expect("a note").1.pitch;
    assert!([7, 11, 2].contains(&(first % 12)), "the first note {first} is no tone of G, held before play");
}

#[test]
fn the_harmony_model_sings_under_a_melody_played_into_it() {
    // The soprano of a chorale the models never trained on, played a little off the grid.
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/validation-chorales/bwv283.mid");
    let song = continuo_engine::midi::read_file(&path).unwrap();
    let top = song.notes.iter().map(|n| n.track).max().unwrap();
    let soprano_track = (0..=top)
        .filter(|t| song.notes.iter().any(|n| n.track == *t))
        .max_by_key(|t| {
            let notes: Vec<_> = song.notes.iter().filter(|n| n.track == *t).collect();
            notes.iter().map(|n| n.pitch as u64).sum::<u64>() / notes.len() as u64
        })
        .unwrap();
    let melody: Vec<_> = song.notes.iter().filter(|n| n.track == soprano_track && n.start < 32.0).collect();
    let mut input: Vec<Played> = Vec::new();
    for (i, n) in melody.iter().enumerate() {
        let jitter = (i as u64 * 37) % 200;
        input.push(((n.start * SPB) as u64 + jitter, n.pitch, 90, 1));
        input.push(((n.end * SPB) as u64 - 300 + jitter / 2, n.pitch, 0, 1));
    }
    input.sort();
    let settings = settings(5);
    let mut player =
        open_player(&ModelSource::BuiltIn(ModelChoice::ChoraleHarmony), &settings, &Default::default())
            .unwrap();
    let (events, _) = perform_in_blocks(&mut player, 32.0, &input, BLOCK);
    assert_balanced(&events);
    // Under the melody: the voices it adds sound below the melody note sounding.
    let melody_at = |sample: u64| {
        let beats = sample as f64 / SPB;
        melody.iter().find(|n| n.start <= beats && beats < n.end).map(|n| n.pitch)
    };
    let ons: Vec<(u64, u8)> =
        events.iter().filter(|(_, e)| e.is_on()).map(|(at, e)| (*at, e.pitch)).collect();
    let against: Vec<&(u64, u8)> = ons.iter().filter(|(at, _)| melody_at(*at).is_some()).collect();
    let below = against.iter().filter(|(at, p)| *p < melody_at(*at).unwrap()).count();
    // On the beats, the melody and the voices sounding make a chord with a name.
    let mut sounding = [false; 128];
    let (mut beats, mut chords) = (0, 0);
    let mut next = 0;
    for beat in 0..32u64 {
        let at = beat * SPB as u64;
        while next < events.len() && events[next].0 <= at {
            let e = events[next].1;
            sounding[e.pitch as usize] = e.is_on();
            next += 1;
        }
        let (Some(top), voices) = (melody_at(at), (0..128u8).filter(|&p| sounding[p as usize]).count())
        else {
            continue;
        };
        if voices >= 2 {
            beats += 1;
            let harmony = Harmony::of_pitches((0..128u8).filter(|&p| sounding[p as usize]).chain([top]));
            chords += continuo_engine::chords::chord_name(harmony).is_some() as usize;
        }
    }
    println!(
        "{} notes, {below} of {} below the melody; on {chords} of {beats} beats the four parts make a named chord",
        ons.len(),
        against.len()
    );
    assert!(ons.len() >= 24, "the harmony hardly sings: {} notes", ons.len());
    assert!(below * 10 >= against.len() * 9, "{below} of {} notes below the melody", against.len());
    assert!(chords * 2 >= beats, "a chord on only {chords} of {beats} beats");
}

/// A chord track's first chord comes in the block play starts with, struck on the downbeat: the
/// music begins again in it. At 64 samples a block and a small step cap, a comping chord takes
/// more blocks to draw than that: a groove model (it hears the meter) starts on the first grid
/// line the blocks to come can draw its notes by, none too late to place. Drawn from the
/// downbeat, the Keys comping skipped 6, 5, 4, 3 and 1 of its first notes at caps 1, 2, 3, 4
/// and 8, the Groove bass 1 at a cap of 1.
#[test]
fn the_first_chord_struck_as_play_starts_is_played_not_skipped_at_small_caps() {
    let block = 64;
    let c_major: Vec<Played> = [48, 64, 67, 72].map(|pitch| (0, pitch, 90, 1)).to_vec();
    for model in [ModelChoice::KeysComping, ModelChoice::GrooveBass] {
        for cap in [1, 2, 3, 4, 8] {
            let mut player = follower(model, 1, None);
            pin_step_cap(&mut player, cap, block);
            let monitor = player.monitor().clone();
            let (events, _) = perform_in_blocks(&mut player, 4.0, &c_major, block);
            assert_balanced(&events);
            let late = monitor.meters.late_events.load(Ordering::Relaxed);
            let first = events.iter().find(|(_, e)| e.is_on()).map(|(at, _)| *at as f64 / SPB);
            println!("{model:?} at a cap of {cap}: first note at beat {first:?}, {late} too late to place");
            assert_eq!(late, 0, "{model:?} at a cap of {cap}");
            // On the downbeat when it can, else a sixteenth after it.
            assert!(
                first.is_some_and(|beat| beat <= 0.25),
                "{model:?} at a cap of {cap} starts late: {first:?}"
            );
        }
    }
}
