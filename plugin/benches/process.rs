//! What the plugin costs the audio thread: `cargo bench -p continuo --bench process`.
//!
//! Drives the plugin's `Player` (everything `process()` does but the nice-plug glue) as a host
//! playing 64 bars at 120 BPM and 48 kHz would, as the audio thread (the plugin's real-time
//! allocator counts every call to the system allocator there), for the embedded default model
//! and for 2 x 256 and 3 x 512 models written by the engine, at 32, 64 and 512 samples a block,
//! with the model step's memory from the system allocator (before) and from the model's pool
//! (after), side by side in one run; then each model in Duet, a musician playing a note on
//! every beat (struck a little after it, held two thirds of a beat), so that every beat the
//! model goes back, hears the note and generates its lookahead again. Per row: block time median, p99.9 and worst, the worst as a
//! share of the block's duration, the step cap and the most steps a block ran, model steps per
//! second of music, system allocator calls per block, and note-ons skipped for being late.
//! `CONTINUO_BENCH_WORST=1` also prints each row's five worst blocks, the mean time per step, and
//! the blocks where a note was late.
//!
//! Then the Continuo bass (a model that follows the harmony) in free play while a keyboard
//! player changes chord on every beat (C, G, Am, F; struck a little after the beat, let go just
//! before the next), so that every beat it goes back to the change and draws its lookahead
//! again: rows "chords", at 64 and 512 samples, beside the same model with nothing coming in.
//!
//! Then a band: three instances, as three tracks of a host would run them, the Drums, the
//! Groove bass and the Keys comping, the last two following the song's chord track (a chord a bar),
//! each processed in turn in every block of 64 and of 512 samples, each told (as the plugin
//! tells every instance active in a host) that three play, so that their caps share half the
//! block (`step_budget::BAND_BUDGET`).
//! Per row: the three together, the block time median, p99.9 and worst, the worst as a share of
//! the block's duration, the sum of the three instances' own worst blocks (which need not fall
//! in the same block) as a share too, and system allocator calls and late note-ons, all three;
//! under it, each instance's worst block and the model steps it ran, and the longest stall of
//! the machine itself in a loop that only reads the clock as long as the row ran (a floor
//! under any worst block on a shared VM). Each block size twice:
//! the instances capped as if each played alone (a quarter of the block each, "alone"), then as
//! the plugin caps three in one host ("shared"). `--band` runs the band only.

use std::sync::atomic::Ordering;
use std::time::Instant;

use continuo::built_in::ModelChoice;
use continuo::listening::{InputNote, Mode};
use continuo::params::ContinuoParams;
use continuo::player::{HostTransport, Player};
use continuo::step_budget::{smallest_block, step_cap, STEP_BUDGET, WORST_CASE_FACTOR};
use continuo_engine::model::{self, Model, ModelInfo, ModelShape, ModelWeights, StepMemory};
use continuo_engine::realtime_memory::{self, Violation};

const SAMPLE_RATE: f32 = 48_000.0;
const TEMPO: f64 = 120.0;
const BARS: f64 = 64.0;
const BLOCK_SIZES: [usize; 3] = [32, 64, 512];

fn main() {
    if std::env::args().any(|a| a == "--help" || a == "-h") {
        // The manual is this file's opening comment.
        let manual = include_str!("process.rs").lines().take_while(|l| l.starts_with("//!"));
        println!(
            "{}",
            manual.map(|l| l.trim_start_matches("//!").trim_start()).collect::<Vec<_>>().join("\n")
        );
        return;
    }
    realtime_memory::set_violation(Violation::Count);
    let params = ContinuoParams::default();
    if std::env::args().any(|a| a == "--band") {
        band(&params);
        return;
    }
    let mut models: Vec<(String, Vec<u8>)> =
        vec![("default".into(), continuo::built_in::DEFAULT.bytes.to_vec())];
    for (layers, hidden) in [(2, 256), (3, 512)] {
        let shape = ModelShape { layers, hidden, embed: 64, dense: hidden, vocab: 384, harmony: None };
        let name = format!("{layers}x{hidden}");
        let bytes =
            model::write(&ModelWeights::random(&shape, 7, 0.5), &ModelInfo::new(&name, shape)).unwrap();
        models.push((name, bytes));
    }

    println!(
        "{:>9} {:>6} {:>7} {:>6} {:>7} {:>10} {:>9} {:>9} {:>8} {:>4} {:>9} {:>8} {:>11} {:>5}",
        "model",
        "play",
        "memory",
        "block",
        "blocks",
        "median us",
        "p99.9 us",
        "worst us",
        "worst %",
        "cap",
        "max steps",
        "steps/s",
        "sys allocs",
        "late"
    );
    for (name, bytes) in &models {
        for memory in [StepMemory::System, StepMemory::Pool] {
            let model = Model::load_with_memory(bytes, name, memory).expect("the model loads");
            let (pool, _) = model.memory();
            // Built from the model in the memory under test, rather than opened from its source.
            let mut player =
                Player::new(model, params.player_settings(), Default::default()).expect("player");
            if memory == StepMemory::Pool {
                let token = player.token_cost();
                println!(
                    "{name}: a token (model step and sampling) costs {:.0} us (p90) when the player is made; pool \
                     {} KiB; the cap plans one token within {:.0}% from {} samples",
                    token.as_secs_f64() * 1e6,
                    pool / 1024,
                    STEP_BUDGET * 100.0,
                    smallest_block(SAMPLE_RATE, token)
                );
            }
            for samples in BLOCK_SIZES {
                run(name, memory, &mut player, samples, false);
            }
            if memory == StepMemory::Pool {
                let mut duet = params.player_settings();
                duet.listen.mode = Mode::Duet;
                player.apply(&duet, &mut |_| {});
                for samples in BLOCK_SIZES {
                    run(name, memory, &mut player, samples, false);
                }
            }
        }
    }
    let bass = ModelChoice::ContinuoBass.built_in().expect("the Continuo bass is built in");
    let model = Model::load(bass.bytes, bass.name).expect("the model loads");
    let mut player = Player::new(model, params.player_settings(), Default::default()).expect("player");
    for (samples, chords) in [(64, false), (64, true), (512, false), (512, true)] {
        run("cont.bass", StepMemory::Pool, &mut player, samples, chords);
    }
    band(&params);
    println!(
        "memory: where the model step allocates (system: the system allocator, as before; pool: the model's"
    );
    println!("real-time pool); worst %: of the block's duration at 48 kHz; cap: model steps a block may run");
    println!(
        "(planned: {WORST_CASE_FACTOR} x the token cost measured at load, within {:.0}% of the block); sys allocs:",
        STEP_BUDGET * 100.0
    );
    println!("calls to the system allocator per block on the audio thread; late: note-ons skipped because");
    println!("generation had not reached them; play: free, duet with a note on every beat, or chords");
    println!("changing every beat under a model that follows the harmony");
}

/// The host's transport for block `i` of `samples` at 120 BPM in 4/4, playing or not.
fn transport(i: usize, samples: usize, playing: bool) -> HostTransport {
    let beats = (i * samples) as f64 / (SAMPLE_RATE as f64 * 60.0 / TEMPO);
    HostTransport {
        playing,
        tempo: Some(TEMPO),
        pos_beats: Some(beats),
        pos_seconds: Some(beats / 2.0),
        sample_rate: SAMPLE_RATE,
        samples,
        time_signature: Some((4, 4)),
        bar_start: None,
    }
}

/// Three instances in one host: see the manual.
fn band(params: &ContinuoParams) {
    use continuo::built_in::ModelChoice;
    let parts = [ModelChoice::Drums, ModelChoice::GrooveBass, ModelChoice::KeysComping]
        .map(|choice| choice.built_in().expect("a built-in model"));
    println!(
        "\nband: {} in turn in every block, the bass and the keys following a chord a bar (C G Am F)",
        parts.map(|part| part.name).join(", ")
    );
    // The song's chord track, into the instances that follow it: struck on each bar line.
    let samples_per_bar = 4.0 * SAMPLE_RATE as f64 * 60.0 / TEMPO;
    let voicings: [&[u8]; 4] = [&[48, 64, 67, 72], &[43, 62, 67, 71], &[45, 64, 69, 72], &[41, 65, 69, 72]];
    let chords_in = |from: usize, samples: usize, input: &mut Vec<InputNote>| {
        input.clear();
        let bar = ((from as f64 / samples_per_bar).ceil() * samples_per_bar) as usize;
        if bar < from + samples {
            let k = (bar as f64 / samples_per_bar) as usize;
            let offset = (bar - from) as u32;
            for &pitch in voicings[(k + 3) % 4] {
                input.push(InputNote { offset, pitch, velocity: 0, channel: 0 });
            }
            for &pitch in voicings[k % 4] {
                input.push(InputNote { offset, pitch, velocity: 90, channel: 0 });
            }
        }
    };
    println!(
        "{:>9} {:>6} {:>7} {:>10} {:>9} {:>9} {:>8} {:>14} {:>11} {:>5}",
        "caps",
        "block",
        "blocks",
        "median us",
        "p99.9 us",
        "worst us",
        "worst %",
        "sum of worst %",
        "sys allocs",
        "late"
    );
    // Each instance capped as if it played alone (a quarter of the block each, as before the
    // plugin counted the instances in its host), then as the plugin caps three: half between them.
    let runs = [(1, "alone"), (3, "shared")].into_iter().flat_map(|caps| [(caps, 64), (caps, 512)]);
    for ((instances, caps), samples) in runs {
        let mut players: Vec<Player> = parts
            .iter()
            .map(|part| {
                let model = Model::load(part.bytes, part.name).expect("the model loads");
                let mut player =
                    Player::new(model, params.player_settings(), Default::default()).expect("player");
                // As the plugin tells each instance how many are active in its host.
                player.play_among(instances);
                player
            })
            .collect();
        let blocks = (BARS * 4.0 * SAMPLE_RATE as f64 * 60.0 / TEMPO / samples as f64) as usize;
        let (mut together, mut alone) = (Vec::with_capacity(blocks), vec![(0.0f64, 0u64); players.len()]);
        let late_before: u64 =
            players.iter().map(|p| p.monitor().meters.late_events.load(Ordering::Relaxed)).sum();
        let system_before = realtime_memory::system_calls_on_audio_thread();
        for player in &mut players {
            player.process(transport(0, samples, false), &[], &mut |_| {});
        }
        let mut input = Vec::with_capacity(16);
        let run_started = Instant::now();
        for i in 0..blocks {
            chords_in(i * samples, samples, &mut input);
            let started = Instant::now();
            for (k, player) in players.iter_mut().enumerate() {
                let steps_before = player.monitor().meters.model_steps.load(Ordering::Relaxed);
                let own = Instant::now();
                let heard = if player.follows_harmony() { &input[..] } else { &[] };
                realtime_memory::audio_thread(|| {
                    player.process(transport(i, samples, true), heard, &mut |_| {})
                });
                let took = own.elapsed().as_secs_f64() * 1e6;
                if took > alone[k].0 {
                    let steps = player.monitor().meters.model_steps.load(Ordering::Relaxed) - steps_before;
                    alone[k] = (took, steps);
                }
            }
            together.push(started.elapsed().as_secs_f64() * 1e6);
        }
        let system_calls = realtime_memory::system_calls_on_audio_thread() - system_before;
        let late: u64 =
            players.iter().map(|p| p.monitor().meters.late_events.load(Ordering::Relaxed)).sum::<u64>()
                - late_before;
        let budget_us = samples as f64 / SAMPLE_RATE as f64 * 1e6;
        together.sort_by(f64::total_cmp);
        let (median, tail, worst) =
            (together[blocks / 2], together[blocks * 999 / 1000], together[blocks - 1]);
        println!(
            "{:>9} {:>6} {:>7} {:>10.2} {:>9.1} {:>9.1} {:>7.1}% {:>13.1}% {:>11.2} {:>5}",
            caps,
            samples,
            blocks,
            median,
            tail,
            worst,
            100.0 * worst / budget_us,
            100.0 * alone.iter().map(|a| a.0).sum::<f64>() / budget_us,
            system_calls as f64 / blocks as f64,
            late
        );
        let each: Vec<String> = parts
            .iter()
            .zip(&alone)
            .zip(&players)
            .map(|((part, (us, steps)), player)| {
                let late = player.monitor().meters.late_events.load(Ordering::Relaxed);
                format!("{} {us:.0} us ({steps} steps, {late} late)", part.name)
            })
            .collect();
        println!("{:>16} each instance's worst block: {}", "", each.join(", "));
        println!(
            "{:>16} the machine itself, spinning as long: its longest stall {:.0} us",
            "",
            longest_stall(run_started.elapsed())
        );
    }
}

/// The longest gap between two consecutive clock reads in a loop that only reads the clock for
/// `duration`: how long the machine (a VM's host, the other core's work) took this core away, a
/// floor under any worst block measured over as long.
fn longest_stall(duration: std::time::Duration) -> f64 {
    let started = Instant::now();
    let (mut last, mut longest) = (started, std::time::Duration::ZERO);
    while last - started < duration {
        let now = Instant::now();
        longest = longest.max(now - last);
        last = now;
    }
    longest.as_secs_f64() * 1e6
}

/// Plays 64 bars of `player` in blocks of `samples`: free, or in a duet (its mode), or under a
/// chord changing every beat (`chords`).
fn run(name: &str, memory: StepMemory, player: &mut Player, samples: usize, chords: bool) {
    let monitor = player.monitor().clone();
    let meters = &monitor.meters;
    let samples_per_beat = SAMPLE_RATE as f64 * 60.0 / TEMPO;
    let blocks = (BARS * 4.0 * samples_per_beat / samples as f64) as usize;
    let mut times = Vec::with_capacity(blocks);
    let mut steps_per_block = Vec::with_capacity(blocks);
    let (late_before, system_before) =
        (meters.late_events.load(Ordering::Relaxed), realtime_memory::system_calls_on_audio_thread());
    // A rewind first: every run plays the music from its start.
    player.restart_from_the_top(&mut |_| {});
    player.process(transport(0, samples, false), &[], &mut |_| {});
    let duet = player.listen_settings().mode == Mode::Duet;
    // The musician's notes: on every beat, 0.013 beats late, held two thirds of a beat.
    let musician = |at: usize| -> Option<InputNote> {
        let beat = at / samples_per_beat as usize;
        let within = at % samples_per_beat as usize;
        let pitch = [60, 64, 67, 72][beat % 4];
        let on = (0.013 * samples_per_beat) as usize;
        let off = (0.68 * samples_per_beat) as usize;
        (within == on || within == off).then_some(InputNote {
            offset: 0,
            pitch,
            velocity: if within == on { 90 } else { 0 },
            channel: 0,
        })
    };
    // The keyboard player's chords: a new one every beat, 0.013 beats late, let go at 0.98.
    let chord = |at: usize| -> &'static [u8] {
        let beat = at / samples_per_beat as usize;
        let within = at % samples_per_beat as usize;
        let (on, off) = ((0.013 * samples_per_beat) as usize, (0.98 * samples_per_beat) as usize);
        let voicing: &[&'static [u8]] = &[&[48, 64, 67], &[43, 62, 71], &[45, 60, 64], &[41, 60, 69]];
        if within == on || within == off {
            voicing[beat % 4]
        } else {
            &[]
        }
    };
    let mut input = Vec::with_capacity(samples.max(16));
    // Allocated before the audio thread's blocks: at most a few late blocks are expected.
    let mut late_blocks = Vec::with_capacity(blocks);
    for i in 0..blocks {
        let steps_before = meters.model_steps.load(Ordering::Relaxed);
        let host = transport(i, samples, true);
        input.clear();
        if duet {
            input.extend(
                (0..samples)
                    .filter_map(|k| musician(i * samples + k).map(|n| InputNote { offset: k as u32, ..n })),
            );
        }
        if chords {
            for k in 0..samples {
                let at = i * samples + k;
                let on = at % samples_per_beat as usize == (0.013 * samples_per_beat) as usize;
                for &pitch in chord(at) {
                    input.push(InputNote {
                        offset: k as u32,
                        pitch,
                        velocity: if on { 90 } else { 0 },
                        channel: 0,
                    });
                }
            }
        }
        let late_so_far = meters.late_events.load(Ordering::Relaxed);
        let started = Instant::now();
        realtime_memory::audio_thread(|| player.process(host, &input, &mut |_| {}));
        times.push(started.elapsed().as_secs_f64() * 1e6);
        if meters.late_events.load(Ordering::Relaxed) > late_so_far {
            late_blocks.push(i);
        }
        steps_per_block.push(meters.model_steps.load(Ordering::Relaxed) - steps_before);
    }
    let system_calls = realtime_memory::system_calls_on_audio_thread() - system_before;
    if std::env::var_os("CONTINUO_BENCH_WORST").is_some() {
        let mut order: Vec<usize> = (0..blocks).collect();
        order.sort_by(|a, b| times[*b].total_cmp(&times[*a]));
        let worst: Vec<String> = order[..5]
            .iter()
            .map(|&i| format!("#{i}: {:.0} us, {} steps", times[i], steps_per_block[i]))
            .collect();
        let (mut with_steps, mut step_count) = (0.0, 0);
        for i in 0..blocks {
            if steps_per_block[i] > 0 {
                with_steps += times[i];
                step_count += steps_per_block[i];
            }
        }
        eprintln!(
            "worst blocks: {}; mean {:.1} us per step in blocks that step; late in blocks {late_blocks:?}",
            worst.join("; "),
            with_steps / step_count as f64
        );
    }
    let steps: u64 = steps_per_block.iter().sum();
    let budget_us = samples as f64 / SAMPLE_RATE as f64 * 1e6;
    times.sort_by(f64::total_cmp);
    let (median, tail, worst) = (times[blocks / 2], times[blocks * 999 / 1000], times[blocks - 1]);
    println!(
        "{:>9} {:>6} {:>7} {:>6} {:>7} {:>10.2} {:>9.1} {:>9.1} {:>7.1}% {:>4} {:>9} {:>8.1} {:>11.2} {:>5}",
        name,
        if duet {
            "duet"
        } else if chords {
            "chords"
        } else {
            "free"
        },
        if memory == StepMemory::Pool { "pool" } else { "system" },
        samples,
        blocks,
        median,
        tail,
        worst,
        100.0 * worst / budget_us,
        step_cap(samples, SAMPLE_RATE, player.token_cost(), 1),
        steps_per_block.iter().max().unwrap(),
        steps as f64 / (BARS * 4.0 * 60.0 / TEMPO),
        system_calls as f64 / blocks as f64,
        meters.late_events.load(Ordering::Relaxed) - late_before,
    );
}
