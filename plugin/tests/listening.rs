//! Playing with the musician, measured on the player with the shipped model: the model hears a
//! call and answers it in its key, a duet hears every note and leaves none hanging, Density
//! moves how many notes the model plays, and a phrase loop repeats to the sample.
//!
//! The calls are the openings of the 18 chorales the shipped model was validated on and never
//! trained on (`tests/fixtures/validation-chorales`, chosen by the trainer's split).

#[path = "support/player.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;

use continuo::built_in::{ModelChoice, ModelSource, DEFAULT};
use continuo::listening::{ListenSettings, Mode, DRUM_CHANNEL};
use continuo::model_switch::open_player;
use continuo::player::{OutputEvent, Player, PlayerSettings};
use continuo::step_budget::step_cap;
use continuo_engine::groove;
use continuo_engine::midi;
use continuo_engine::music::{Scale, ScaleLock};
use support::*;

const BLOCK: usize = 512;

fn player(seed: u64, listen: ListenSettings) -> Player {
    player_with(PlayerSettings { listen, ..settings(seed) })
}

/// Plays `beats` beats at 120 BPM from beat 0 in blocks of [`BLOCK`], with `input` played into
/// the player at its samples. Returns every event the player sent, as (sample, event), and the
/// most model steps one block ran.
fn perform(player: &mut Player, beats: f64, input: &[Played]) -> (Vec<(u64, OutputEvent)>, u64) {
    perform_in_blocks(player, beats, input, BLOCK)
}

fn validation_chorales() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/validation-chorales");
    let mut files: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 18);
    files
}

/// The first two bars of a chorale as a musician plays them: each note a little off the grid
/// (the sample offsets of a human), ended at the second bar line at the latest.
fn call(path: &Path) -> Vec<Played> {
    let song = midi::read_file(path).unwrap();
    let mut played = Vec::new();
    for (i, note) in song.notes.iter().filter(|n| n.start < 8.0).enumerate() {
        let jitter = 17 + (i as u64 * 131) % 300;
        let start = (note.start * SPB) as u64 + jitter;
        let end = (note.end.min(8.0) * SPB) as u64 - 200 + jitter % 100;
        played.push((start, note.pitch, note.velocity.max(1), 0));
        played.push((end, note.pitch, 0, 0));
    }
    played.sort();
    played
}

/// The major or harmonic minor scale that holds most of the notes' durations.
fn key_of(played: &[Played]) -> ScaleLock {
    let mut weight = [0.0f64; 12];
    let mut started = [0u64; 128];
    for &(at, pitch, velocity, _) in played {
        if velocity > 0 {
            started[pitch as usize] = at;
        } else {
            weight[pitch as usize % 12] += (at - started[pitch as usize]) as f64;
        }
    }
    ScaleLock::best_fit(ScaleLock::in_keys(&[Scale::Major, Scale::HarmonicMinor]), &weight).unwrap()
}

/// Share of the note-ons in `events` between two samples that `key` holds.
fn in_key(events: &[(u64, OutputEvent)], key: ScaleLock, from: u64, to: u64) -> (usize, usize) {
    let ons: Vec<_> = events.iter().filter(|(at, e)| e.is_on() && (from..to).contains(at)).collect();
    (ons.iter().filter(|(_, e)| key.allows(e.pitch)).count(), ons.len())
}

/// Answers per call, each with its own seed.
const SEEDS: u64 = 4;

const ANSWER: ListenSettings =
    ListenSettings { mode: Mode::CallAndResponse, answer_after_beats: 1.0, answer_bars: Some(2) };

#[test]
fn a_call_is_answered_after_the_rest_in_its_key_more_often_than_free_play() {
    let (mut listened, mut free) = ((0, 0), (0, 0));
    let (mut listened_bar, mut free_bar) = ((0, 0), (0, 0));
    for path in validation_chorales() {
        let call = call(&path);
        let key = key_of(&call);
        let call_end = call.iter().map(|p| p.0).max().unwrap();
        // The answer is due a beat after the call's last note ends, on the grid.
        let due = ((call_end as f64 / SPB + 1.0) * 24.0).round() / 24.0 * SPB;
        let window = (due as u64, due as u64 + 8 * SPB as u64);
        let first_bar = (window.0, window.0 + 4 * SPB as u64);
        for seed in 1..=SEEDS {
            let (answer, _) = perform(&mut player(seed, ANSWER), 20.0, &call);
            assert_balanced(&answer);
            let first = answer.iter().find(|(_, e)| e.is_on()).map(|(at, _)| *at);
            let first = first.unwrap_or_else(|| panic!("{}: no answer", path.display()));
            assert!(
                first as f64 >= due - 0.5,
                "{}: answered at {first} before the rest ended at {due}",
                path.display()
            );
            assert!(
                answer.iter().all(|(at, _)| *at <= window.1),
                "{}: the answer outlasts its two bars",
                path.display()
            );
            let again = perform(&mut player(seed, ANSWER), 20.0, &call).0;
            assert_eq!(again, answer, "same call and seed, same answer");

            let (free_play, _) = perform(&mut player(seed, ListenSettings::default()), 20.0, &call);
            for (total, events, (from, to)) in [
                (&mut listened, &answer, window),
                (&mut free, &free_play, window),
                (&mut listened_bar, &answer, first_bar),
                (&mut free_bar, &free_play, first_bar),
            ] {
                let (hits, count) = in_key(events, key, from, to);
                total.0 += hits;
                total.1 += count;
            }
        }
    }
    let rate = |(hits, count): (usize, usize)| hits as f64 / count.max(1) as f64;
    for (what, listened, free) in [("two bars", listened, free), ("first bar", listened_bar, free_bar)] {
        println!(
            "answers in the call's key, {what}: {:.3} of {} notes after listening, {:.3} of {} in free play",
            rate(listened),
            listened.1,
            rate(free),
            free.1
        );
    }
    assert!(listened.1 > 200 && free.1 > 200);
    assert!(rate(listened) > rate(free) + 0.1, "listening makes no clear difference");
}

#[test]
fn the_answer_stops_in_the_block_where_the_musician_plays_again() {
    let call = call(&validation_chorales()[0]);
    let listen = ListenSettings { answer_bars: None, ..ANSWER };
    let (quiet, _) = perform(&mut player(3, listen), 24.0, &call);
    // Until I play: the answer goes on.
    assert!(quiet.iter().any(|(at, e)| e.is_on() && *at > 20 * SPB as u64));
    let mut interrupted = call.clone();
    let again = 16 * SPB as u64 + 1234;
    interrupted.extend([(again, 62, 90, 0), (again + 6000, 62, 0, 0)]);
    let (events, _) = perform(&mut player(3, listen), 24.0, &interrupted);
    assert_balanced(&events);
    let block_end = (again / BLOCK as u64 + 1) * BLOCK as u64;
    let after: Vec<_> = events.iter().filter(|(at, _)| *at >= block_end).collect();
    let before = events.iter().filter(|(at, e)| e.is_on() && *at < again).count();
    assert!(before > 4, "an answer before the musician played again");
    // What follows the interruption is another answer, after another rest.
    let next_rest = again + 6000 + SPB as u64 - 500;
    assert!(
        after.iter().all(|(at, _)| *at >= next_rest),
        "the answer went on after the musician played: {after:?}"
    );
}

#[test]
fn a_duet_hears_every_beat_within_the_step_cap_and_leaves_nothing_hanging() {
    let duet = ListenSettings { mode: Mode::Duet, ..ListenSettings::default() };
    let mut input = Vec::new();
    for beat in 0..32u64 {
        let at = beat * SPB as u64 + 333;
        input.push((at, [60, 64, 67, 65][beat as usize % 4], 100, 0));
        input.push((at + 9000, [60, 64, 67, 65][beat as usize % 4], 0, 0));
    }
    // At the cap this machine affords, and at the low caps of a slow machine or a loaded one,
    // pinned so that they are tested on every machine.
    let duet_at = |pinned_cap: Option<usize>| {
        let mut player = player(5, duet);
        if let Some(cap) = pinned_cap {
            pin_step_cap(&mut player, cap, BLOCK);
        }
        let cap = step_cap(BLOCK, RATE, player.token_cost(), 1) as u64;
        assert!(pinned_cap.is_none_or(|pinned| pinned as u64 == cap));
        let monitor = player.monitor().clone();
        let (events, worst) = perform(&mut player, 34.0, &input);
        let late = monitor.meters.late_events.load(Ordering::Relaxed);
        let notes = events.iter().filter(|(_, e)| e.is_on()).count();
        println!("cap {cap}: worst block {worst} steps, {notes} notes, {late} late");
        assert_balanced(&events);
        assert!(worst <= cap, "{worst} steps in one block, above the cap of {cap}");
        // At least a note for each the musician plays.
        assert!(notes > 32, "the model hardly plays along at a cap of {cap}: {notes} notes");
        assert_eq!(monitor.meters.unheard_notes.load(Ordering::Relaxed), 0, "at cap {cap}");
        assert_eq!(late, 0, "events came late at a cap of {cap} steps a block");
        events
    };
    for cap in [None, Some(1), Some(2), Some(4)] {
        duet_at(cap);
    }
    // A machine fast enough to reply by the next sixteenth plays the same duet at any speed.
    assert_eq!(duet_at(Some(8)), duet_at(Some(64)));
}

#[test]
fn a_duet_in_64_sample_blocks_reads_each_note_over_blocks_within_the_cap() {
    let duet = ListenSettings { mode: Mode::Duet, ..ListenSettings::default() };
    let input: Vec<Played> = (0..16u64)
        .flat_map(|beat| {
            let at = beat * SPB as u64 + 333;
            // A chord on every beat: more to read than one block's steps allow.
            [60, 64, 67].map(|pitch| vec![(at, pitch, 100, 0), (at + 9000, pitch, 0, 0)]).concat()
        })
        .collect::<Vec<_>>();
    let mut input = input;
    input.sort();
    let mut player = player(5, duet);
    let cap = step_cap(64, RATE, player.token_cost(), 1) as u64;
    let monitor = player.monitor().clone();
    let (events, worst) = perform_in_blocks(&mut player, 18.0, &input, 64);
    println!("64-sample blocks: cap {cap}, most steps in a block {worst}");
    assert_balanced(&events);
    assert!(worst <= cap, "{worst} steps in one block, above the cap of {cap}");
    assert!(events.iter().filter(|(_, e)| e.is_on()).count() > 16, "the model plays along");
    assert_eq!(monitor.meters.unheard_notes.load(Ordering::Relaxed), 0);
    assert_eq!(monitor.meters.late_events.load(Ordering::Relaxed), 0);
}

#[test]
fn input_that_does_not_fit_neither_hangs_nor_stalls() {
    let mut input: Vec<Played> = Vec::new();
    // Drums, a flood (64 notes in one block), a key held forever, note-offs of nothing.
    input.extend((0..8).map(|i| (i * 6000 + 10, 36, 100, DRUM_CHANNEL)));
    input.extend((0..64).map(|i| (2 * SPB as u64 + i, 30 + i as u8, 90, 0)));
    input.extend((0..64).map(|i| (2 * SPB as u64 + 3000 + i, 30 + i as u8, 0, 0)));
    input.push((4 * SPB as u64, 70, 80, 0));
    input.extend((0..20).map(|i| (5 * SPB as u64 + i * 100, 90, 0, 0)));
    input.sort();
    for mode in [Mode::CallAndResponse, Mode::Duet] {
        let mut player = player(7, ListenSettings { mode, answer_after_beats: 0.5, answer_bars: Some(1) });
        let monitor = player.monitor().clone();
        let (events, _) = perform(&mut player, 32.0, &input);
        assert_balanced(&events);
        // The held key is let go after the longest note (8 beats): the model answers or plays on.
        assert!(
            events.iter().any(|(at, e)| e.is_on() && *at > 14 * SPB as u64),
            "{mode:?}: nothing played after the stuck key"
        );
        assert!(monitor.meters.unheard_notes.load(Ordering::Relaxed) >= 8, "the drums are not heard");
    }
}

#[test]
fn density_moves_the_notes_per_bar_monotonically() {
    let per_bar = notes_per_bar(&ModelSource::BuiltIn(DEFAULT.choice), 12);
    println!("notes per bar at densities {DENSITIES:?}: {per_bar:.2?}");
    // Every step busier, and the range a clear one: with four voices full, the busy half of the
    // range adds less than the sparse half (notes wait for a voice).
    assert!(per_bar.windows(2).all(|w| w[1] > w[0]), "not monotone: {per_bar:?}");
    assert!(per_bar[4] > per_bar[0] * 1.25, "density spans too little: {per_bar:?}");
    assert!(per_bar[2] > per_bar[0] * 1.15, "the sparse half moves too little: {per_bar:?}");
}

#[test]
fn density_moves_the_drums_hits_per_bar_monotonically() {
    let per_bar = notes_per_bar(&ModelSource::BuiltIn(ModelChoice::Drums), 24);
    println!("drum hits per bar at densities {DENSITIES:?}: {per_bar:.2?}");
    assert!(per_bar.windows(2).all(|w| w[1] > w[0]), "not monotone: {per_bar:?}");
    assert!(per_bar[4] > per_bar[0] * 1.25, "density spans too little: {per_bar:?}");
}

const DENSITIES: [f32; 5] = [-1.0, -0.5, 0.0, 0.5, 1.0];

/// Notes a bar at each of [`DENSITIES`], over eight bars at each of `seeds` seeds of `source`.
fn notes_per_bar(source: &ModelSource, seeds: u64) -> Vec<f64> {
    let mut per_bar = Vec::new();
    for density in DENSITIES {
        let mut notes = 0;
        for seed in 1..=seeds {
            let mut settings = settings(seed);
            settings.generator.sampler.density = density;
            let mut player = open_player(source, &settings, &std::sync::Arc::default()).unwrap();
            let (events, _) = perform(&mut player, 32.0, &[]);
            notes += events.iter().filter(|(_, e)| e.is_on()).count();
        }
        per_bar.push(notes as f64 / (seeds as f64 * 8.0));
    }
    per_bar
}

#[test]
fn a_two_bar_loop_repeats_to_the_sample_and_changes_on_new_phrase() {
    a_two_bar_loop(&ModelSource::BuiltIn(DEFAULT.choice));
}

#[test]
fn the_drums_loop_and_take_a_new_phrase_as_the_other_models_do() {
    a_two_bar_loop(&ModelSource::BuiltIn(ModelChoice::Drums));
}

/// A two-bar loop of `source` repeats to the sample, four times over, and New phrase records
/// another take that loops too.
fn a_two_bar_loop(source: &ModelSource) {
    let settings = PlayerSettings { loop_bars: 2, ..settings(11) };
    let mut player = open_player(source, &settings, &std::sync::Arc::default()).unwrap();
    let (events, _) = perform(&mut player, 40.0, &[]);
    assert_balanced(&events);
    let bar = 4 * SPB as u64;
    let take = |from: u64, events: &[(u64, OutputEvent)]| -> Vec<(u64, OutputEvent)> {
        events
            .iter()
            .filter(|(at, _)| (from..from + 2 * bar).contains(at))
            .map(|(at, e)| (at - from, *e))
            .collect()
    };
    let first = take(0, &events);
    assert!(first.iter().filter(|(_, e)| e.is_on()).count() > 4);
    // The take's last notes end on the loop's end, so the repetition's note-offs at its start
    // come from the one before; compare note-ons and note-offs inside each repetition.
    let inside =
        |t: Vec<(u64, OutputEvent)>| t.into_iter().filter(|(at, e)| *at > 0 || e.is_on()).collect::<Vec<_>>();
    for repetition in 1..5 {
        assert_eq!(
            inside(take(repetition * 2 * bar, &events)),
            inside(first.clone()),
            "repetition {repetition}"
        );
    }
    // New phrase: another take from the next bar line.
    player.new_phrase(&mut |_| {});
    let (after, _) = perform(&mut player, 40.0, &[]);
    assert_balanced(&after);
    let new_take = inside(take(0, &after));
    assert_ne!(new_take, inside(first));
    assert_eq!(inside(take(2 * bar, &after)), new_take, "the new take loops too");
}

/// A drum loop of four bars ends on a fill: its last bar is drawn again until it keeps fewer
/// than half the hits of each bar of the groove before it (`groove::is_fill`), as the fills of
/// the grooves the model learned do, and the take repeats to the sample.
#[test]
fn a_four_bar_drum_loop_ends_on_a_fill_and_repeats() {
    let bar = 4 * SPB as u64;
    let (mut fills, mut own_fills, mut groove_likeness, mut draws) = (0, 0, Vec::new(), 0);
    // The last bar against the bars before it, the most alike of them: a fill is below
    // FILL_LIKENESS.
    let mut last_bar_likeness = Vec::new();
    let seeds = 1..=12u64;
    for seed in seeds.clone() {
        let settings = PlayerSettings { loop_bars: 4, ..settings(seed) };
        let source = ModelSource::BuiltIn(ModelChoice::Drums);
        let mut player = open_player(&source, &settings, &std::sync::Arc::default()).unwrap();
        let (events, _) = perform(&mut player, 32.0, &[]);
        assert_balanced(&events);
        // Each bar's hits of the first repetition, as (sample in the bar, key).
        let hits = |from: u64| -> Vec<(u64, u8)> {
            let hits = events.iter().filter(|(at, e)| e.is_on() && (from..from + bar).contains(at));
            // On the grid: a sample is a 500th of a beat's 24 steps here.
            hits.map(|(at, e)| ((at - from) * 24 / SPB as u64, e.pitch)).collect()
        };
        let bars: Vec<_> = (0..4).map(|b| hits(b * bar)).collect();
        let fill = groove::is_fill(&bars[3], &bars[..3]);
        let (said_fill, drawn) = player.loop_fill().expect("a drum loop of four bars looks for a fill");
        assert_eq!(said_fill, fill, "seed {seed}: the player's verdict is the bar's");
        // The window's mode line says so ("Free, looping 16 beats, ending on a fill").
        assert_eq!(player.monitor().meters.loop_fill.load(Ordering::Relaxed) == 1, fill);
        fills += fill as u32;
        own_fills += (fill && drawn == 1) as u32;
        draws += drawn;
        groove_likeness.extend([1, 2].map(|b| groove::bar_likeness(&bars[b], &bars[b - 1])));
        last_bar_likeness.push((0..3).map(|b| groove::bar_likeness(&bars[3], &bars[b])).fold(0.0, f64::max));
        // The second repetition is the first, fill and all.
        let repetition = |from: u64| -> Vec<(u64, OutputEvent)> {
            let inside = events
                .iter()
                .filter(|(at, e)| (from..from + 4 * bar).contains(at) && (*at > from || e.is_on()));
            inside.map(|(at, e)| (at - from, *e)).collect()
        };
        assert_eq!(repetition(4 * bar), repetition(0), "seed {seed}: the loop repeats");
    }
    let takes = seeds.count() as u32;
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "drum loops of 4 bars, {takes} seeds: {fills} end on a fill ({own_fills} at the model's first \
         drawing), {draws} drawings of the last bar in all; likeness of bars 2 and 3 to the bar \
         before: {:.2}, of the last bar to the most alike bar before it: {:.2}",
        mean(&groove_likeness),
        mean(&last_bar_likeness)
    );
    assert!(fills >= takes * 3 / 4, "{fills} of {takes} takes end on a fill");
    assert!(fills > own_fills, "drawing again finds fills the first drawing does not");
}
