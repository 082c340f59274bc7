//! A host-behaviour soak: an hour of simulated time in the CLAP test host, played the way a
//! careless user plays in a quirky host, seeded and reproducible. `CONTINUO_SOAK_SEED` tries
//! another seed, `CONTINUO_SOAK_SECONDS` another length; the test prints what it did.
//!
//! The host, at random: plays, pauses, stops and rewinds, locates, loops ranges (splitting its
//! block at the loop's end, as hosts do), starts with pre-roll blocks at negative positions,
//! follows a tempo map with jumps and ramps, changes the time signature, cuts blocks of 1 to
//! 4096 samples, changes the sample rate (deactivating mid-note and activating again), bypasses,
//! automates every parameter, and switches models as a project load does (state naming another
//! model file). Each "session" (a sample rate, a tempo map) reports positions one way: exact
//! beats and seconds, beats rounded to Ardour's 1/1920 (with exact seconds, or without), exact
//! beats alone, or seconds alone (then over a constant tempo: nobody can know beats otherwise).
//!
//! It asserts: no note hangs (every note-on has its note-off, across deactivations too, and no
//! note outlasts the longest-note limit); no note starts while the transport is stopped or the
//! plugin bypassed, and every note has ended by the end of such a block; every note starts on
//! the host's grid, a whole number of 1/24 beats from its beat 0, to half a sample where the
//! host's information is exact, and within the host's own rounding where it is not (a locate
//! into a song whose tempo changed earlier, in a host that rounds beat positions: no plugin can
//! know better); offsets inside their block and in order (the host checks every block); no
//! panic, and no call to the system allocator on the audio thread (the debug bundle aborts on
//! one); and the plugin's meters agree with the events the host received.

#[path = "support/clap_host.rs"]
mod support;

use std::collections::HashMap;
use std::time::Instant;

use continuo::transport::SECONDS_AGREE;
use continuo_engine::generator::GeneratorSettings;
use continuo_engine::model::{self, ModelInfo, ModelShape, ModelWeights};
use continuo_engine::vocab::{STEPS_PER_BEAT, VOCAB_SIZE};
use support::*;

const SAMPLE_RATES: [f64; 5] = [44_100.0, 48_000.0, 88_200.0, 96_000.0, 192_000.0];
const SIGNATURES: [(u16, u16); 5] = [(4, 4), (3, 4), (6, 8), (7, 8), (5, 4)];
/// The plugin's longest note, in beats (the parameters never change the engine's limit), and a
/// beat of slack for the block it ends in.
const LONGEST_NOTE_BEATS: f64 = GeneratorSettings::DEFAULT.max_note_beats + 1.0;
/// Ardour's ticks per beat.
const TICKS: f64 = 1920.0;
/// The grid every note starts on, in steps a beat.
const GRID: f64 = STEPS_PER_BEAT as f64;
/// The careless user plays too, on MIDI channel 16: phrases and rests, which the plugin passes
/// through and, in Call and response or Duet, hears. Continuo's own channel is kept off it.
const MUSICIAN_CHANNEL: u8 = 15;
/// Notes the musician starts or ends a second while playing a phrase, and phrases a second.
const MUSICIAN_EVENTS_PER_SECOND: f64 = 3.0;
const PHRASES_PER_SECOND: f64 = 0.25;

struct Random(u64);

impl Random {
    /// Seeded through SplitMix64, so that nearby seeds give unrelated runs.
    fn new(seed: u64) -> Random {
        let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        Random((z ^ (z >> 31)) | 1)
    }

    fn next(&mut self) -> u64 {
        // xorshift64*
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }
    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }
    /// 1..=4096, spread evenly over the octaves: as many tiny blocks as huge ones.
    fn block_size(&mut self) -> usize {
        (2f64.powf(self.range(0.0, 12.0)).round() as usize).clamp(1, 4096)
    }
}

/// How a session's host states its position.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Report {
    Exact,
    RoundedWithSeconds,
    RoundedBeatsOnly,
    BeatsOnly,
    SecondsOnly,
}

const REPORTS: [Report; 5] = [
    Report::Exact,
    Report::RoundedWithSeconds,
    Report::RoundedBeatsOnly,
    Report::BeatsOnly,
    Report::SecondsOnly,
];

/// The song's tempo: constant pieces from a beat on (a ramp is a run of small steps).
struct TempoMap {
    /// (first beat, BPM), in order; the first starts at beat 0 and also holds before it.
    pieces: Vec<(f64, f64)>,
}

impl TempoMap {
    fn constant(bpm: f64) -> TempoMap {
        TempoMap { pieces: vec![(0.0, bpm)] }
    }

    fn random(random: &mut Random) -> TempoMap {
        let mut pieces = vec![(0.0, random.range(60.0, 180.0))];
        let mut beat = 0.0;
        while beat < 3000.0 {
            beat += random.range(4.0, 64.0).round();
            let target = random.range(40.0, 240.0);
            if random.chance(0.5) {
                pieces.push((beat, target));
            } else {
                // A ramp over 2 to 16 beats in quarter-beat steps.
                let from = pieces.last().unwrap().1;
                let steps = (random.range(2.0, 16.0) * 4.0).round() as usize;
                for step in 1..=steps {
                    pieces.push((beat, from + (target - from) * step as f64 / steps as f64));
                    beat += 0.25;
                }
            }
        }
        TempoMap { pieces }
    }

    fn is_constant(&self) -> bool {
        self.pieces.len() == 1
    }

    fn piece(&self, beats: f64) -> usize {
        self.pieces.partition_point(|(start, _)| *start <= beats).saturating_sub(1)
    }

    fn tempo(&self, beats: f64) -> f64 {
        self.pieces[self.piece(beats)].1
    }

    /// The next tempo change after `beats`.
    fn next_change(&self, beats: f64) -> Option<f64> {
        self.pieces.get(self.piece(beats) + 1).map(|p| p.0).filter(|start| *start > beats)
    }

    /// Seconds of song time at `beats`.
    fn seconds(&self, beats: f64) -> f64 {
        let mut seconds = 0.0;
        for (i, &(start, bpm)) in self.pieces.iter().enumerate() {
            let end = self.pieces.get(i + 1).map_or(f64::INFINITY, |p| p.0);
            if i == 0 && beats < start {
                return beats * 60.0 / bpm;
            }
            if beats <= end {
                return seconds + (beats - start) * 60.0 / bpm;
            }
            seconds += (end - start) * 60.0 / bpm;
        }
        seconds
    }
}

/// What the host counts as it goes.
#[derive(Default, Debug)]
struct Tally {
    blocks: u64,
    seconds: f64,
    /// Seconds the host played with the plugin not bypassed.
    seconds_heard: f64,
    ons: u64,
    offs: u64,
    /// Notes the musician played in, and seconds heard while the plugin answered calls only.
    musician_notes: u64,
    seconds_in_call_and_response: f64,
    sessions: u64,
    model_switches: u64,
    plays: u64,
    pauses: u64,
    rewinds: u64,
    locates: u64,
    loop_wraps: u64,
    pre_rolls: u64,
    automations: u64,
    on_grid_exactly: u64,
    on_grid_within_host_rounding: u64,
    worst_grid_error_samples: f64,
}

struct Soak {
    host: Host,
    random: Random,
    tally: Tally,
    // The song.
    map: TempoMap,
    report: Report,
    signature: (u16, u16),
    beats: f64,
    seconds: f64,
    playing: bool,
    bypassed: bool,
    loop_range: Option<(f64, f64)>,
    /// Pre-roll continues up to this beat.
    pre_roll_until: Option<f64>,
    block_size: Option<usize>,
    /// How far off the grid a note may start, in beats, beyond half a sample: set where the
    /// plugin's clock started from what the host said.
    anchor_slack: f64,
    // What the host heard.
    /// (channel, key) -> (beats played since it started, the activation it started in).
    sounding: HashMap<(u8, u8), (f64, u64)>,
    activation: u64,
    params: Vec<ParamDescription>,
    /// The last blocks sent, for a failure's message.
    recent: std::collections::VecDeque<String>,
    /// What a project can name: (the `Model` parameter's id, the model file).
    models: Vec<(String, String)>,
    state: Vec<u8>,
    // The musician.
    musician_held: Vec<u8>,
    musician_rests_until: f64,
    /// The Mode last automated is Call and response: the plugin plays only to answer.
    call_and_response: bool,
}

impl Soak {
    fn new(seed: u64, models: Vec<(String, String)>) -> Soak {
        let mut random = Random::new(seed);
        let rate = SAMPLE_RATES[random.below(SAMPLE_RATES.len())];
        let mut host = Host::new(rate);
        let params = host.params();
        let state = host.save_state();
        let mut soak = Soak {
            host,
            random,
            tally: Tally::default(),
            map: TempoMap::constant(120.0),
            report: Report::Exact,
            signature: (4, 4),
            beats: 0.0,
            seconds: 0.0,
            playing: false,
            bypassed: false,
            loop_range: None,
            pre_roll_until: None,
            block_size: Some(512),
            anchor_slack: 0.0,
            sounding: HashMap::new(),
            activation: 0,
            musician_held: Vec::new(),
            musician_rests_until: 0.0,
            call_and_response: false,
            recent: Default::default(),
            params,
            models,
            state,
        };
        soak.new_session();
        soak
    }

    /// A new project: report style, tempo map, position at 0, stopped.
    fn new_session(&mut self) {
        self.report = REPORTS[self.random.below(REPORTS.len())];
        self.map = if self.report == Report::SecondsOnly || self.random.chance(0.3) {
            TempoMap::constant(self.random.range(50.0, 200.0))
        } else {
            TempoMap::random(&mut self.random)
        };
        self.locate_to(0.0);
        // Where the plugin starts its clock is exact, unless the host rounds its beats and they
        // cannot be had from its seconds (the tempo changes in this song): then it is off by the
        // rounding, or by what a chance agreement of the beats and seconds can cost.
        let rounds = matches!(self.report, Report::RoundedWithSeconds | Report::RoundedBeatsOnly);
        let seconds_tell = self.report == Report::RoundedWithSeconds && self.map.is_constant();
        self.anchor_slack = if rounds && !seconds_tell { (0.5 / TICKS).max(SECONDS_AGREE) } else { 0.0 };
        self.tally.sessions += 1;
    }

    fn locate_to(&mut self, beats: f64) {
        self.beats = beats;
        self.seconds = self.map.seconds(beats);
        self.pre_roll_until = None;
    }

    fn time(&self) -> HostTime {
        let tick = |b: f64| (b * TICKS).round() / TICKS;
        let (beats, seconds) = match self.report {
            Report::Exact => (Some(self.beats), Some(self.seconds)),
            Report::RoundedWithSeconds => (Some(tick(self.beats)), Some(self.seconds)),
            Report::RoundedBeatsOnly => (Some(tick(self.beats)), None),
            Report::BeatsOnly => (Some(self.beats), None),
            Report::SecondsOnly => (None, Some(self.seconds)),
        };
        let bar = self.signature.0 as f64 * 4.0 / self.signature.1 as f64;
        let bar_number = (self.beats / bar).floor();
        HostTime {
            playing: self.playing,
            tempo: self.map.tempo(self.beats),
            beats,
            seconds,
            time_signature: self.signature,
            bar_start: bar_number * bar,
            bar_number: bar_number as i32,
            loop_range: self.loop_range,
            pre_roll: self.pre_roll_until.is_some_and(|p| self.beats < p),
        }
    }

    /// One block: at most `frames`, cut short at a tempo change or the loop's end.
    fn block(&mut self, frames: usize) {
        let rate = self.host.sample_rate;
        let tempo = self.map.tempo(self.beats);
        let samples_per_beat = rate * 60.0 / tempo;
        let mut frames = frames;
        if self.playing {
            let mut cut = |until: f64| {
                let samples = ((until - self.beats) * samples_per_beat).ceil().max(1.0) as usize;
                frames = frames.min(samples);
            };
            if let Some(change) = self.map.next_change(self.beats) {
                cut(change);
            }
            if let Some((_, end)) =
                self.loop_range.filter(|(start, end)| self.beats >= *start && self.beats < *end)
            {
                cut(end);
            }
        }
        let time = self.time();
        let silent = !self.playing || self.bypassed;
        self.musician(frames);
        let heard = self.host.process(frames, &time);
        // What the musician played comes back passed through: not the plugin's notes.
        let heard: Vec<_> = heard.into_iter().filter(|h| h.channel != MUSICIAN_CHANNEL).collect();
        if self.recent.len() == 40 {
            self.recent.pop_front();
        }
        self.recent.push_back(format!("{frames} at exact beat {:.6}: {time:?} -> {heard:?}", self.beats));
        for h in &heard {
            let key = (h.channel, h.key);
            if h.on {
                assert!(
                    !silent,
                    "a note while {}: {h:?} at {time:?}",
                    if self.playing { "bypassed" } else { "stopped" }
                );
                assert!(
                    self.sounding.insert(key, (0.0, self.activation)).is_none(),
                    "{h:?} struck while sounding"
                );
                self.check_grid(h, samples_per_beat);
                self.tally.ons += 1;
            } else {
                assert!(self.sounding.remove(&key).is_some(), "{h:?} ends a note that does not sound");
                self.tally.offs += 1;
            }
        }
        if silent {
            assert!(self.sounding.is_empty(), "notes sound after a silent block: {:?}", self.sounding);
        }
        self.tally.blocks += 1;
        self.tally.seconds += frames as f64 / rate;
        if !silent {
            self.tally.seconds_heard += frames as f64 / rate;
            if self.call_and_response {
                self.tally.seconds_in_call_and_response += frames as f64 / rate;
            }
        }
        if self.playing {
            let beats = frames as f64 / samples_per_beat;
            for (key, (held, _)) in self.sounding.iter_mut() {
                *held += beats;
                assert!(
                    *held <= LONGEST_NOTE_BEATS,
                    "note {key:?} hangs: {held:.1} beats; the last blocks:\n{}",
                    self.recent.iter().cloned().collect::<Vec<_>>().join("\n")
                );
            }
            self.beats += beats;
            self.seconds += frames as f64 / rate;
            if let Some((start, end)) = self.loop_range {
                if (self.beats - end).abs() < 1e-9 || (self.beats > end && self.beats - beats < end) {
                    self.locate_to(start);
                    self.tally.loop_wraps += 1;
                }
            }
        }
    }

    fn check_grid(&mut self, h: &Heard, samples_per_beat: f64) {
        let beats = self.beats + h.offset as f64 / samples_per_beat;
        let steps = beats * GRID;
        let error = (steps - steps.round()).abs() / GRID * samples_per_beat;
        // Half a sample, the best any placement can do, plus the rounding this host's own beat
        // counter gathers: a sum of a million block lengths is off by about 1e-5 samples, so a
        // note that the plugin places exactly half a sample from the grid can read as 0.50001.
        let exact_limit = 0.5 + 1e-4;
        let limit = exact_limit + self.anchor_slack * samples_per_beat;
        assert!(
            error <= limit,
            "{h:?} at beat {beats:.6}: {error:.2} samples off the grid (limit {limit:.2}), {:?}; the last blocks:\n{}",
            self.report,
            self.recent.iter().cloned().collect::<Vec<_>>().join("\n")
        );
        if error <= exact_limit {
            self.tally.on_grid_exactly += 1;
        } else {
            self.tally.on_grid_within_host_rounding += 1;
        }
        self.tally.worst_grid_error_samples = self.tally.worst_grid_error_samples.max(error);
    }

    fn next_size(&mut self) -> usize {
        match self.block_size {
            Some(size) => size,
            None => self.random.block_size(),
        }
    }

    /// Plays on for `seconds` of host time.
    fn run_for(&mut self, seconds: f64) {
        let end = self.tally.seconds + seconds;
        while self.tally.seconds < end {
            let frames = self.next_size();
            self.block(frames);
        }
    }

    /// Deactivates mid-song (notes may sound), then activates: the notes that sounded must end
    /// in the first block after.
    fn reactivate(&mut self, between: impl FnOnce(&mut Soak)) {
        self.host.deactivate();
        between(self);
        self.host.activate();
        self.activation += 1;
        let frames = self.next_size();
        self.block(frames);
        let left: Vec<_> = self.sounding.iter().filter(|(_, (_, a))| *a < self.activation).collect();
        assert!(
            left.is_empty(),
            "sounding before the deactivation and not ended in the first block after: {left:?}"
        );
    }

    fn act(&mut self) {
        if std::env::var_os("CONTINUO_SOAK_LOG").is_some() {
            eprintln!(
                "{:.3} s: beat {:.4} {:?} playing {} bypassed {} loop {:?} block {:?} rate {} tempo {:.2}",
                self.tally.seconds,
                self.beats,
                self.report,
                self.playing,
                self.bypassed,
                self.loop_range,
                self.block_size,
                self.host.sample_rate,
                self.map.tempo(self.beats)
            );
        }
        match self.random.below(100) {
            0..=24 => {
                if !self.playing {
                    self.tally.plays += 1;
                    if self.random.chance(0.3) {
                        // Pre-roll: the host starts playing before where the user pressed play,
                        // by a block or more (a move shorter than a host's beat rounding, in a
                        // host that gives only beats, could not be told from rounding).
                        let target = self.beats;
                        let pre = self.random.range(1024.0, 8192.0)
                            / (self.host.sample_rate * 60.0 / self.map.tempo(target));
                        self.locate_to(target - pre);
                        self.pre_roll_until = Some(target);
                        self.tally.pre_rolls += 1;
                    }
                    self.playing = true;
                }
            }
            25..=34 => {
                if self.playing {
                    self.playing = false;
                    self.tally.pauses += 1;
                }
            }
            35..=42 => {
                self.playing = false;
                let bar = self.signature.0 as f64 * 4.0 / self.signature.1 as f64;
                let to =
                    if self.random.chance(0.5) { 0.0 } else { (self.random.range(0.0, 64.0)).floor() * bar };
                self.locate_to(to);
                self.tally.rewinds += 1;
            }
            43..=52 => {
                // A locate, on a beat or anywhere.
                let to = self.random.range(0.0, 400.0);
                let to = if self.random.chance(0.5) { to.floor() } else { to };
                self.locate_to(to);
                self.tally.locates += 1;
            }
            53..=60 => {
                self.loop_range = if self.loop_range.is_some() && self.random.chance(0.5) {
                    None
                } else {
                    let start = self.random.range(0.0, 200.0).floor();
                    let length = [1.0, 2.0, 3.0, 4.0, 8.0, 16.0][self.random.below(6)];
                    Some((start, start + length))
                };
            }
            61..=64 => {
                self.bypassed = !self.bypassed;
                let id = self.host.param_id("Bypass");
                self.host.set_value(0, id, if self.bypassed { 1.0 } else { 0.0 });
            }
            65..=79 => self.automate(),
            80..=89 => {
                self.block_size = if self.random.chance(0.5) { Some(self.random.block_size()) } else { None };
            }
            90..=92 => self.signature = SIGNATURES[self.random.below(SIGNATURES.len())],
            93..=95 => self.switch_model(),
            _ => {
                let rate = SAMPLE_RATES[self.random.below(SAMPLE_RATES.len())];
                self.reactivate(|soak| {
                    soak.host.sample_rate = rate;
                    soak.playing = false;
                    soak.new_session();
                });
            }
        }
    }

    /// The musician, in this block: now and then a note starts or ends, at a random sample of
    /// it, or a chord is struck; now and then the phrase ends, every key let go, and a rest of 1
    /// to 10 s follows.
    fn musician(&mut self, frames: usize) {
        let seconds = frames as f64 / self.host.sample_rate;
        if self.tally.seconds < self.musician_rests_until {
            return;
        }
        let channel = MUSICIAN_CHANNEL as u16;
        if self.random.chance(MUSICIAN_EVENTS_PER_SECOND * seconds) {
            let offset = self.random.below(frames) as u32;
            let held = self.musician_held.len();
            if held > 0 && (held >= 4 || self.random.chance(0.5)) {
                let key = self.musician_held.swap_remove(self.random.below(held));
                self.host.note_in(offset, channel, key as u16, false);
            } else if held == 0 && self.random.chance(0.3) {
                // A chord, struck at once (what a model that follows the harmony hears).
                let root = 48 + self.random.below(12) as u8;
                let third = if self.random.chance(0.5) { 3 } else { 4 };
                for key in [root, root + third, root + 7, root + 12] {
                    self.musician_held.push(key);
                    self.host.note_in(offset, channel, key as u16, true);
                    self.tally.musician_notes += 1;
                }
            } else {
                let key = 48 + self.random.below(36) as u8;
                if !self.musician_held.contains(&key) {
                    self.musician_held.push(key);
                    self.host.note_in(offset, channel, key as u16, true);
                    self.tally.musician_notes += 1;
                }
            }
        }
        if self.random.chance(PHRASES_PER_SECOND * seconds) {
            for key in std::mem::take(&mut self.musician_held) {
                self.host.note_in(frames as u32 - 1, channel, key as u16, false);
            }
            self.musician_rests_until = self.tally.seconds + self.random.range(1.0, 10.0);
        }
    }

    /// Sets a few parameters to random values, as automation lanes do.
    fn automate(&mut self) {
        for _ in 0..1 + self.random.below(4) {
            let param = self.params[self.random.below(self.params.len())].clone();
            // Continuo's channel stays off the musician's.
            let max = if param.name == "MIDI channel" { param.max - 1.0 } else { param.max };
            let mut value = self.random.range(param.min, max);
            if param.stepped {
                value = value.round();
            }
            if param.name == "Bypass" {
                self.bypassed = value >= 0.5;
            }
            if param.name == "Mode" {
                self.call_and_response = value == 1.0;
            }
            let offset = self.random.below(64) as u32;
            self.host.set_value(offset, param.id, value);
            self.tally.automations += 1;
        }
    }

    /// Another model, as a project load brings it: deactivate, state naming it, activate.
    fn switch_model(&mut self) {
        let (choice, path) = self.models[self.random.below(self.models.len())].clone();
        let mut state: serde_json::Value =
            serde_json::from_slice(&self.state[8..]).expect("the state is JSON");
        state["params"]["model"] = serde_json::json!({ "string": choice });
        state["fields"]["model-path"] = serde_json::Value::String(serde_json::to_string(&path).unwrap());
        let json = serde_json::to_vec(&state).unwrap();
        let bytes = [(json.len() as u64).to_le_bytes().as_slice(), &json].concat();
        // The state sets every parameter back, bypass included.
        self.reactivate(|soak| {
            soak.host.load_state(&bytes);
            soak.bypassed = false;
            soak.call_and_response = false;
        });
        self.tally.model_switches += 1;
    }
}

#[test]
fn an_hour_of_a_careless_user_in_a_quirky_host() {
    let seed = std::env::var("CONTINUO_SOAK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20261125u64);
    let hour: f64 =
        std::env::var("CONTINUO_SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3600.0);
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("meters.json");
    // Read by the plugin when it deactivates.
    std::env::set_var("CONTINUO_METERS_TRACE", &trace);
    let mut models: Vec<(String, String)> = [
        "bach-chorales",
        "folk-melody",
        "bass-line",
        "drums",
        "continuo-bass",
        "groove-bass",
        "keys-comping",
    ]
    .map(|id| (id.to_string(), String::new()))
    .to_vec();
    for (name, shape) in [
        (
            "small",
            ModelShape {
                layers: 1,
                hidden: 32,
                embed: 16,
                dense: 32,
                vocab: VOCAB_SIZE as usize,
                harmony: None,
            },
        ),
        (
            "two-layer",
            ModelShape {
                layers: 2,
                hidden: 64,
                embed: 16,
                dense: 64,
                vocab: VOCAB_SIZE as usize,
                harmony: None,
            },
        ),
    ] {
        let path = dir.path().join(format!("{name}.onnx"));
        let bytes =
            model::write(&ModelWeights::random(&shape, 5, 1.5), &ModelInfo::new(name, shape)).unwrap();
        std::fs::write(&path, bytes).unwrap();
        models.push(("file".to_string(), path.to_str().unwrap().to_string()));
    }

    let started = Instant::now();
    let mut soak = Soak::new(seed, models);
    while soak.tally.seconds < hour {
        soak.act();
        // Tiny blocks cost a process call per sample: keep their stretches short.
        let seconds = match soak.block_size {
            Some(size) if size < 32 => soak.random.range(0.01, 0.2),
            _ => soak.random.range(0.2, 20.0),
        };
        soak.run_for(seconds);
    }
    // The end: stop, and every note ends.
    soak.playing = false;
    soak.run_for(0.1);
    assert!(soak.sounding.is_empty());
    soak.host.deactivate();
    let wall = started.elapsed().as_secs_f64();

    let meters: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&trace).expect("the plugin wrote its meters")).unwrap();
    let t = &soak.tally;
    println!(
        "soak (seed {seed}): {:.0} s simulated in {wall:.1} s ({:.0} s playing, not bypassed, {:.0} s of it in Call and response): {} blocks, {} notes, {} played \
         in by the musician, {} sessions, {} model \
         switches, {} plays ({} with pre-roll), {} pauses, {} rewinds, {} locates, {} loop wraps, {} \
         automation events; notes on the grid: {} to half a sample, {} within the host's rounding (worst \
         {:.2} samples); plugin meters: {meters}",
        t.seconds,
        t.seconds_heard,
        t.seconds_in_call_and_response,
        t.blocks,
        t.ons,
        t.musician_notes,
        t.sessions,
        t.model_switches,
        t.plays,
        t.pre_rolls,
        t.pauses,
        t.rewinds,
        t.locates,
        t.loop_wraps,
        t.automations,
        t.on_grid_exactly,
        t.on_grid_within_host_rounding,
        t.worst_grid_error_samples,
    );
    assert!(t.seconds >= hour);
    assert!(t.seconds_heard > hour / 10.0, "the host played only {:.0} s", t.seconds_heard);
    // Playing on its own or in a duet it plays all the time; answering, only after calls.
    let free = t.seconds_heard - t.seconds_in_call_and_response;
    assert!(
        t.ons as f64 > free / 2.0,
        "only {} notes in {free:.0} s of music not in Call and response",
        t.ons
    );
    assert!(t.musician_notes > 1000, "the musician played {} notes", t.musician_notes);
    assert_eq!(t.ons, t.offs, "every note-on has its note-off");
    assert_eq!(meters["notes_on"], t.ons, "the plugin's count of notes sent");
    assert_eq!(meters["notes_off"], t.offs);
    assert_eq!(meters["blocks"], t.blocks, "the plugin's count of blocks");
    assert_eq!(meters["dropped_events"], 0);
    assert_eq!(meters["system_calls_on_audio_thread"], 0);
    assert_eq!(meters["refused_steps"], 0);
    assert!(meters["restarts"].as_u64().unwrap() >= t.plays / 2, "the music restarted on plays and jumps");
}
