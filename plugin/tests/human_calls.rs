//! Call and response with a human's timing, in the real bundle: 24 two-bar calls written for
//! this test (not from any model's training music), each in its own key (every major and
//! harmonic minor key once, each call five or six fifths from the one before), played as a keyboard
//! player plays them: starts up to 12 ms off the grid, releases up to 20 ms early or late, the
//! velocities varied; three bars of rest after each call. The same calls and seeds in Free mode
//! are the baseline; the same calls exactly on the grid the control. For each melodic built-in
//! model it measures and asserts:
//! - the answers on the host's grid: their notes start on a sixteenth or an eighth-note triplet,
//!   to the sample;
//! - no answer note shorter than the shortest note its training music uses often (a sixteenth:
//!   the chorales' shortest common value, 5 % of their notes; the folk tunes use 32nds too, 4 %
//!   of theirs, so for the folk melody the bar is stricter than its music);
//! - the answers in the call's key more than free play is, paired by call (a Wilcoxon
//!   signed-rank test), and more in the latest call's key than in the one before;
//! - a duet under the same timing keeps its notes on the grid.
//!
//! `cargo xtask test --test human_calls -- --nocapture` prints every figure;
//! `CONTINUO_HUMAN_CALLS_SEED` plays them with another seed (7 by default).

#[path = "support/clap_host.rs"]
mod support;

use support::*;

const RATE: f64 = 48_000.0;
/// Samples per beat at 120 BPM.
const SPB: f64 = 24_000.0;
const BLOCK: usize = 1024;
/// Beats from one call's start to the next: two bars of call, three of rest.
const CALL_EVERY: f64 = 20.0;
const FIRST_CALL: f64 = 4.0;
/// The shortest note the models' training music uses often, in beats: a sixteenth (the
/// chorales', and their bass line's; the tunes' is a 32nd).
const SHORTEST_COMMON_NOTE: f64 = 0.25;

const MAJOR: [u8; 7] = [0, 2, 4, 5, 7, 9, 11];
const HARMONIC_MINOR: [u8; 7] = [0, 2, 3, 5, 7, 8, 11];

/// Eight melodies of two bars written for this test: (scale degree from the tonic, length in
/// sixteenths), each played in three keys, major and minor.
const MELODIES: [&[(i8, u8)]; 8] = [
    &[(0, 4), (2, 4), (4, 4), (2, 4), (3, 2), (4, 2), (5, 4), (4, 8)],
    &[(4, 6), (3, 2), (2, 4), (1, 4), (2, 4), (0, 4), (-1, 4), (0, 4)],
    &[(0, 2), (1, 2), (2, 2), (3, 2), (4, 4), (7, 4), (6, 4), (4, 4), (5, 4), (4, 4)],
    &[(2, 8), (4, 4), (3, 4), (1, 8), (0, 8)],
    &[(0, 3), (0, 1), (4, 4), (4, 4), (5, 2), (6, 2), (7, 8), (4, 8)],
    &[(7, 4), (6, 2), (5, 2), (4, 4), (2, 4), (3, 4), (1, 4), (0, 8)],
    &[(-3, 4), (0, 4), (2, 4), (4, 4), (3, 4), (1, 4), (-1, 4), (0, 4)],
    &[(4, 2), (2, 2), (0, 4), (4, 2), (2, 2), (0, 4), (1, 4), (3, 4), (2, 8)],
];

/// A call: its notes (start and end in beats from the call's start, pitch).
struct Call {
    notes: Vec<(f64, f64, u8)>,
}

/// The calls: one in every major and every harmonic minor key.
const CALLS: usize = 24;

/// The circle of fifths walked five or six fifths at a time: every key signature once.
const CIRCLE: [usize; 12] = [0, 6, 1, 7, 2, 8, 3, 9, 4, 10, 5, 11];

/// The calls, in `octave` (the MIDI note of the C at or below the tonic), major and minor in
/// turn, each call's key signature (its relative major's, for the minor ones) five or six
/// fifths from the one before.
fn calls(octave: u8) -> Vec<Call> {
    (0..CALLS)
        .map(|i| {
            let major = (i % 2 == 0) != (i >= 12);
            let relative_major = (CIRCLE[i % 12] * 7) % 12;
            let tonic = if major { relative_major } else { (relative_major + 9) % 12 } as u8;
            let scale = if major { &MAJOR } else { &HARMONIC_MINOR };
            let mut at = 0.0;
            let notes = MELODIES[i % MELODIES.len()]
                .iter()
                .map(|&(degree, sixteenths)| {
                    let octave_shift = degree.div_euclid(7) as i32 * 12;
                    let pitch = octave as i32
                        + tonic as i32
                        + scale[degree.rem_euclid(7) as usize] as i32
                        + octave_shift;
                    let length = sixteenths as f64 / 4.0;
                    let note = (at, at + length, pitch as u8);
                    at += length;
                    note
                })
                .collect();
            Call { notes }
        })
        .collect()
}

/// The call's key, as a listener hears it: the major or harmonic minor scale (of 24) that holds
/// the most of its notes.
fn key_of(call: &Call) -> [bool; 12] {
    let mut best = ([false; 12], 0);
    for tonic in 0..12u8 {
        for scale in [&MAJOR, &HARMONIC_MINOR] {
            let mut in_scale = [false; 12];
            for degree in scale {
                in_scale[((tonic + degree) % 12) as usize] = true;
            }
            let held = call.notes.iter().filter(|n| in_scale[(n.2 % 12) as usize]).count();
            if held > best.1 {
                best = (in_scale, held);
            }
        }
    }
    best.0
}

/// Seeded randomness for the player's hands.
struct Hands(u64);

impl Hands {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Milliseconds, spread about evenly in `-limit..limit` with a lean of `lean`.
    fn off_by(&mut self, limit: f64, lean: f64) -> f64 {
        ((self.next() + self.next() - 1.0) * limit + lean).clamp(-limit, limit)
    }
}

/// The musician's events, (sample, key, velocity 0..1; 0 ends the note), in time order: every
/// call at its place, on the grid or with a human's timing.
fn performance(calls: &[Call], human: bool) -> Vec<(u64, u16, f64)> {
    let mut hands = Hands(0x005E_EDCA_110F_u64);
    let mut events = Vec::new();
    for (i, call) in calls.iter().enumerate() {
        let start = FIRST_CALL + i as f64 * CALL_EVERY;
        for &(on, off, pitch) in &call.notes {
            let (early_or_late, release, velocity) = if human {
                // Starts about 5 ms off, at most 12; releases about 8 ms off, at most 20, more
                // often early than late.
                (hands.off_by(12.0, 0.0), hands.off_by(20.0, -4.0), 0.45 + 0.35 * hands.next())
            } else {
                (0.0, 0.0, 0.7)
            };
            let sample = |beats: f64, ms: f64| ((start + beats) * SPB + ms * RATE / 1000.0).round() as u64;
            events.push((sample(on, early_or_late), pitch as u16, velocity));
            events.push((sample(off, release), pitch as u16, 0.0));
        }
    }
    events.sort_by(|a, b| a.0.cmp(&b.0).then((a.2 > 0.0).cmp(&(b.2 > 0.0))));
    events
}

/// Plays the calls into the bundle with `model` in `mode`, and returns Continuo's own notes as
/// (start sample, end sample, key).
fn play(model: &str, mode: &str, seed: u32, musician: &[(u64, u16, f64)]) -> Vec<(u64, u64, u8)> {
    let mut host = Host::with_model(RATE, model);
    host.set("Mode", mode);
    host.set("Answer after", "1");
    host.set("Answer length", "2 bars");
    host.set("Seed", &seed.to_string());
    host.stopped(BLOCK, 0.0);
    let start = host.samples;
    let end = ((FIRST_CALL + CALLS as f64 * CALL_EVERY) * SPB) as u64;
    let (mut sample, mut next) = (0u64, 0);
    while sample < end {
        while next < musician.len() && musician[next].0 < sample + BLOCK as u64 {
            let (at, key, velocity) = musician[next];
            host.note_with_velocity((at - sample) as u32, 1, key, velocity);
            next += 1;
        }
        host.block(BLOCK, Transport { playing: true, tempo: 120.0, beats: sample as f64 / SPB });
        sample += BLOCK as u64;
    }
    host.stopped(BLOCK, sample as f64 / SPB);
    let ours: Vec<Heard> = host.heard.iter().filter(|h| h.channel == 0).copied().collect();
    assert!(sounding_after(&ours).is_empty(), "{model} {mode}: notes left hanging");
    let passed = host.heard.iter().filter(|h| h.channel == 1).count();
    assert_eq!(passed, musician.len(), "the musician's notes pass through");
    let mut notes = Vec::new();
    let mut started = [None; 128];
    for h in &ours {
        let at = h.sample - start;
        if h.on {
            started[h.key as usize] = Some(at);
        } else if let Some(on) = started[h.key as usize].take() {
            notes.push((on, at, h.key));
        }
    }
    notes.sort();
    notes
}

/// What one model did with the calls.
#[derive(Debug, Default)]
struct Verdict {
    /// Per call: the share of notes in the call's key in the answer window, listening and free.
    in_key: Vec<(f64, f64)>,
    /// Every call but the first: the share of the answer in the latest call's key, and in the
    /// one before's.
    latest_and_previous: Vec<(f64, f64)>,
    answer_notes: usize,
    on_the_grid: usize,
    /// The shortest answer note, in beats, and how many are shorter than a sixteenth.
    shortest: f64,
    too_short: usize,
}

/// The window where call `i`'s answer plays: from its last note to the next call.
fn answer_window(i: usize) -> (u64, u64) {
    let start = FIRST_CALL + i as f64 * CALL_EVERY;
    (((start + 8.0) * SPB) as u64, ((start + CALL_EVERY) * SPB) as u64)
}

fn share_in(notes: &[(u64, u64, u8)], key: &[bool; 12]) -> f64 {
    notes.iter().filter(|n| key[(n.2 % 12) as usize]).count() as f64 / notes.len().max(1) as f64
}

fn judge(calls: &[Call], listening: &[(u64, u64, u8)], free: &[(u64, u64, u8)]) -> Verdict {
    let mut verdict = Verdict { shortest: f64::MAX, ..Verdict::default() };
    let within = |notes: &[(u64, u64, u8)], (from, to): (u64, u64)| -> Vec<(u64, u64, u8)> {
        notes.iter().filter(|n| n.0 >= from && n.0 < to).copied().collect()
    };
    for (i, call) in calls.iter().enumerate() {
        let window = answer_window(i);
        let (answer, baseline) = (within(listening, window), within(free, window));
        let key = key_of(call);
        verdict.in_key.push((share_in(&answer, &key), share_in(&baseline, &key)));
        if i > 0 {
            verdict
                .latest_and_previous
                .push((share_in(&answer, &key), share_in(&answer, &key_of(&calls[i - 1]))));
        }
        for &(on, off, _) in &answer {
            verdict.answer_notes += 1;
            verdict.on_the_grid += (on % 6000 == 0 || on % 8000 == 0) as usize;
            let beats = (off - on) as f64 / SPB;
            verdict.shortest = verdict.shortest.min(beats);
            verdict.too_short += (beats < SHORTEST_COMMON_NOTE - 1e-9) as usize;
        }
    }
    verdict
}

/// The two-sided exact p of Wilcoxon's signed-rank test on paired differences (zero
/// differences dropped, ties given their mean rank): the distribution of the positive ranks'
/// sum under the null, counted over every assignment of signs.
fn wilcoxon(pairs: &[(f64, f64)]) -> f64 {
    let mut differences: Vec<f64> = pairs.iter().map(|(a, b)| a - b).filter(|d| d.abs() > 1e-12).collect();
    differences.sort_by(|a, b| a.abs().total_cmp(&b.abs()));
    let n = differences.len();
    // Ranks doubled, so that tied (half) ranks are whole numbers.
    let mut ranks = vec![0usize; n];
    let mut i = 0;
    while i < n {
        let mut j = i;
        while j + 1 < n && (differences[j + 1].abs() - differences[i].abs()).abs() < 1e-12 {
            j += 1;
        }
        for rank in &mut ranks[i..=j] {
            *rank = i + j + 2;
        }
        i = j + 1;
    }
    let total: usize = ranks.iter().sum();
    let positive: usize = ranks.iter().zip(&differences).filter(|(_, d)| **d > 0.0).map(|(r, _)| r).sum();
    let mut ways = vec![0f64; total + 1];
    ways[0] = 1.0;
    for &rank in &ranks {
        for sum in (rank..=total).rev() {
            ways[sum] += ways[sum - rank];
        }
    }
    let distance = |sum: usize| (2 * sum).abs_diff(total);
    let as_extreme: f64 =
        (0..=total).filter(|&sum| distance(sum) >= distance(positive)).map(|sum| ways[sum]).sum();
    as_extreme / 2f64.powi(n as i32)
}

fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = values.fold((0.0, 0), |(s, n), v| (s + v, n + 1));
    sum / n.max(1) as f64
}

/// The plugin's seed for both the answers and the free play.
fn seed() -> u32 {
    std::env::var("CONTINUO_HUMAN_CALLS_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(7)
}

/// Everything measured of one model with one timing, printed and asserted.
fn hears_a_human(model: &str, octave: u8, human: bool) {
    let calls = calls(octave);
    let musician = performance(&calls, human);
    let timing = if human { "human timing" } else { "on the grid" };
    let seed = seed();
    let listening = play(model, "Call and response", seed, &musician);
    let free = play(model, "Free", seed, &musician);
    let verdict = judge(&calls, &listening, &free);
    let (with, without) =
        (mean(verdict.in_key.iter().map(|p| p.0)), mean(verdict.in_key.iter().map(|p| p.1)));
    let better = verdict.in_key.iter().filter(|(a, b)| a > b).count();
    let p = wilcoxon(&verdict.in_key);
    let latest = mean(verdict.latest_and_previous.iter().map(|p| p.0));
    let previous = mean(verdict.latest_and_previous.iter().map(|p| p.1));
    let on_grid = verdict.on_the_grid as f64 / verdict.answer_notes.max(1) as f64;
    println!(
        "{model}, {timing}: {} answer notes, {:.1} % on the grid; shortest {:.3} beats ({} under a \
         sixteenth); in the call's key {with:.2} listening against {without:.2} free, {better} of {CALLS} \
         calls better, Wilcoxon p = {p:.4}; in the latest call's key {latest:.2}, the previous call's \
         {previous:.2}",
        verdict.answer_notes,
        on_grid * 100.0,
        verdict.shortest,
        verdict.too_short,
    );
    assert!(verdict.answer_notes > CALLS * 4, "{model}, {timing}: hardly an answer");
    assert!(on_grid >= 0.98, "{model}, {timing}: {:.1} % of the answer on the grid", on_grid * 100.0);
    assert_eq!(verdict.too_short, 0, "{model}, {timing}: answer notes shorter than a sixteenth");
    assert!(
        with >= without + 0.10 && p < 0.05,
        "{model}, {timing}: the answers barely follow the call's key"
    );
    assert!(latest > previous, "{model}, {timing}: the answers follow the call before");
}

#[test]
fn wilcoxon_gives_the_textbook_p() {
    // Eight pairs, all better: 2 / 2^8 two-sided.
    let all_better: Vec<(f64, f64)> = (1..=8).map(|i| (i as f64, 0.0)).collect();
    assert!((wilcoxon(&all_better) - 2.0 / 256.0).abs() < 1e-12);
    // Signs balanced around the middle: p = 1.
    assert!((wilcoxon(&[(1.0, 0.0), (0.0, 1.0)]) - 1.0).abs() < 1e-12);
}

#[test]
fn the_chorales_answer_a_human_on_the_beat_in_the_key_just_played() {
    hears_a_human("bach-chorales", 60, true);
    hears_a_human("bach-chorales", 60, false);
}

#[test]
fn the_folk_melody_answers_a_human_on_the_beat_in_the_key_just_played() {
    hears_a_human("folk-melody", 62, false);
    hears_a_human("folk-melody", 62, true);
}

#[test]
fn the_bass_line_answers_a_human_on_the_beat_in_the_key_just_played() {
    hears_a_human("bass-line", 38, true);
    hears_a_human("bass-line", 38, false);
}

#[test]
fn a_duet_with_a_human_keeps_its_notes_on_the_grid() {
    let calls = calls(60);
    // The calls without their rests: the musician plays all the time.
    let mut musician = performance(&calls, true);
    musician.retain(|e| e.0 < ((FIRST_CALL + 4.0 * CALL_EVERY) * SPB) as u64);
    let duet = play("bach-chorales", "Duet", seed(), &musician);
    let on_grid = duet.iter().filter(|n| n.0 % 6000 == 0 || n.0 % 8000 == 0).count();
    let share = on_grid as f64 / duet.len().max(1) as f64;
    println!("duet with a human's timing: {} notes, {:.1} % on the grid", duet.len(), share * 100.0);
    assert!(duet.len() > 100);
    assert!(share >= 0.98, "{:.1} % of the duet on the grid", share * 100.0);
}
