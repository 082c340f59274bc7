//! The player: turns the generator's music into note events placed on the samples of each
//! block, following the host's transport.
//!
//! Owns the queue of events generated ahead of the playhead, the cap on model steps per block,
//! the notes sounding at the output (so every one gets its note-off, across a deactivation too),
//! and the link between the music's grid steps and host beats (the origin: the host beat where
//! the music's step 0 sounds). What the transport does each block, and the clock, are
//! [`crate::transport`]'s. It knows nothing of nice-plug: the plugin hands it a [`HostTransport`]
//! and receives [`OutputEvent`]s through a callback, so all of this is tested without a host.
//!
//! Nothing here allocates after [`Player::new`]; the model step inside the generator allocates
//! from the model's real-time memory, never from the system.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use continuo_engine::generator::{Generator, GeneratorSettings, GeneratorSnapshot};
use continuo_engine::midi::Role;
use continuo_engine::model::Model;
use continuo_engine::vocab::{NoteEvent, NoteEventKind, Token, STEPS_PER_BEAT};

use crate::listening::{Ear, InputNote, ListenSettings, Mode, Phase, Rollback, DRUM_CHANNEL};
use crate::monitor::{BlockReport, LoggedEvent, Monitor, NoteSource};
use crate::phrase_loop::PhraseLoop;
use crate::transport::{beats_per_bar, Clock, Decision, Follower};
pub use crate::transport::{HostTransport, TransportState, DEFAULT_BPM};

/// How far ahead of the playhead the generator runs, in grid steps (one beat): enough that a
/// block never has to catch up on more than its cap.
pub const LOOKAHEAD_STEPS: u64 = STEPS_PER_BEAT as u64;
/// Events generated ahead and not yet played; a chord-heavy beat needs a few dozen.
pub const QUEUE_CAPACITY: usize = 512;
/// The share of a block's duration that its worst case may take. The rest is the host's: other
/// plugins on the track, the instrument we play into.
pub const STEP_BUDGET: f64 = 0.25;
/// How much longer the worst block that steps takes than the tokens' cost at load promises, as
/// the process bench measures it on a 2-core machine: a cold cache after idle blocks, the
/// sampler, the other core's work. Steps are planned at the budget divided by this.
pub const WORST_CASE_FACTOR: f64 = 4.0;
/// Most model steps in one block, however long: a beat of dense music is about 50.
pub const MAX_STEPS_PER_BLOCK: usize = 64;
/// Tokens timed when a player is made, for [`Player::token_cost`].
const COST_TOKENS: usize = 32;
/// The longest silence the model hears between a musician's notes, in grid steps (a bar of
/// 4/4): a longer rest reads as this, so the model's memory of the last phrase is not washed
/// out by minutes of TIME_SHIFTs, and hearing after a long rest costs a step or two.
const HEARD_REST_STEPS: u64 = 4 * STEPS_PER_BEAT as u64;
/// Most of the musician's notes (starts and ends) heard in one block: a ten-finger chord
/// struck and released. More is a flood: passed through, not heard. A fixed number rather than
/// the step cap, so that what the model hears does not depend on how fast this machine is.
pub const MAX_HEARD_PER_BLOCK: usize = 20;
/// The musician's notes waiting to be read by the model, at most: a few blocks' worth at a step
/// a block.
const HEARD_QUEUE: usize = 64;

/// The smallest block, in samples, whose planned worst case for one token fits the budget.
pub fn smallest_block(sample_rate: f32, token_cost: Duration) -> usize {
    (WORST_CASE_FACTOR * token_cost.as_secs_f64() * sample_rate as f64 / STEP_BUDGET).ceil() as usize
}

/// Most model steps one block may run: as many as fit in [`STEP_BUDGET`] of the block's
/// duration at `token_cost` each, times [`WORST_CASE_FACTOR`]; at least 1 (a model too slow for
/// the block still plays, and the window says so), at most [`MAX_STEPS_PER_BLOCK`].
pub fn step_cap(samples: usize, sample_rate: f32, token_cost: Duration) -> usize {
    let period = samples as f64 / sample_rate as f64;
    let affordable = STEP_BUDGET * period / (WORST_CASE_FACTOR * token_cost.as_secs_f64().max(1e-9));
    (affordable.floor() as usize).clamp(1, MAX_STEPS_PER_BLOCK)
}

/// A note event for the host, `offset` samples into the block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputEvent {
    pub offset: u32,
    pub pitch: u8,
    /// 1..=127 for a note-on, 0 for a note-off.
    pub velocity: u8,
}

impl OutputEvent {
    pub fn is_on(&self) -> bool {
        self.velocity > 0
    }
}

/// Musician's settings that are not the sampler's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OutputSettings {
    /// Multiplies every velocity (then clamped to 1..=127).
    pub velocity_scale: f32,
}

/// Where the remembered opening stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Opening {
    /// Generated from the start with the present settings, being recorded.
    Recording,
    Ready,
    /// Settings changed since the music started: nothing to remember until the next restart.
    Stale,
}

pub struct Player {
    generator: Generator,
    settings: GeneratorSettings,
    output: OutputSettings,
    transport: Follower,
    /// Host beat at which the generator's step 0 sounds: always a whole beat.
    origin_beats: f64,
    /// Events generated, waiting for their time: a ring buffer, allocated once.
    queue: Vec<NoteEvent>,
    queue_start: usize,
    queue_len: usize,
    /// Notes sounding at the output, as the host heard them.
    sounding: [bool; 128],
    /// Notes still sounded when the host deactivated the plugin: they end at the start of the
    /// next block it processes.
    release_pending: bool,
    /// The music is at its start (nothing played since the last restart).
    fresh: bool,
    /// The music's first beat, remembered the first time it is generated from its start with
    /// the settings in force, so that a restart (a loop going round, a locate, play from stop)
    /// has it at once instead of generating it in the very blocks where it is due: the events,
    /// and where the generator stood after them. Allocated once.
    opening: Vec<NoteEvent>,
    opening_snapshot: GeneratorSnapshot,
    opening_state: Opening,
    /// How the model plays with the musician, what it heard, where the call and response
    /// stands, and the generator's recent past to go back to when a note comes in late.
    listen: ListenSettings,
    ear: Ear,
    phase: Phase,
    rollback: Rollback,
    /// The musician's notes placed on the generator's timeline and not yet read by the model
    /// (step, token), oldest first from `heard_next`; allocated once.
    heard_queue: Vec<(u64, Token)>,
    heard_next: usize,
    /// The phrase loop, its length in bars (0: off), and the take: "New phrase" counts up, and
    /// the sampler's seed with it, so a new take differs and the same take comes back the same.
    phrase: PhraseLoop,
    loop_bars: u32,
    take: u64,
    /// A new take is wanted at the next restart (New phrase, or a change of seed, scale or
    /// range while looping).
    new_take: bool,
    /// The take to record was begun while the host was stopped (its first beat generated), for
    /// the loop's start to play on time: the first chord need not fit one block's step cap.
    take_prepared: bool,
    /// What one token (model step and sampling) costs here, for the step cap.
    token_cost: Duration,
    /// The performance clock at this block's first sample, and the block's samples per beat:
    /// what stamps the notes logged during the block.
    block_clock: f64,
    samples_per_beat: f64,
    time_signature: (u32, u32),
    monitor: Arc<Monitor>,
}

impl Player {
    /// A player reporting to `monitor`; successive players (a model switch) share one, so the
    /// counters, the performance clock and the note log run on across the switch.
    pub fn new(
        model: Model,
        settings: GeneratorSettings,
        output: OutputSettings,
        monitor: Arc<Monitor>,
    ) -> Result<Player, String> {
        let mut generator = Generator::new(model, settings).map_err(|e| e.to_string())?;
        let token_cost = time_tokens(&mut generator)?;
        monitor.meters.token_cost_nanos.store(token_cost.as_nanos() as u64, Ordering::Relaxed);
        let opening_snapshot = generator.snapshot();
        let rollback = Rollback::new(&generator);
        Ok(Player {
            generator,
            settings,
            output,
            transport: Follower::default(),
            origin_beats: 0.0,
            queue: vec![NoteEvent { step: 0, kind: NoteEventKind::Off { pitch: 0 } }; QUEUE_CAPACITY],
            queue_start: 0,
            queue_len: 0,
            sounding: [false; 128],
            release_pending: false,
            fresh: true,
            opening: Vec::with_capacity(QUEUE_CAPACITY),
            opening_snapshot,
            opening_state: Opening::Recording,
            listen: ListenSettings::default(),
            ear: Ear::default(),
            phase: Phase::Listening,
            rollback,
            heard_queue: Vec::with_capacity(HEARD_QUEUE),
            heard_next: 0,
            phrase: PhraseLoop::new(),
            loop_bars: 0,
            take: 0,
            new_take: false,
            take_prepared: false,
            token_cost,
            block_clock: 0.0,
            samples_per_beat: 48_000.0 * 60.0 / DEFAULT_BPM,
            time_signature: (4, 4),
            monitor,
        })
    }

    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    /// Generates the first beat now, so that a player built off the audio thread starts on time
    /// without running a beat's worth of steps in its first blocks: a host that starts playing
    /// in its first block (an offline bounce) would otherwise lose the notes of the first chord
    /// that the step cap leaves for the next block. Free play and a duet only: a call and
    /// response listens first, and a loop records its take when it starts (or while stopped).
    pub fn prime(&mut self) {
        if self.uses_opening() || self.listen.mode == Mode::Duet {
            self.generate_ahead(LOOKAHEAD_STEPS, usize::MAX);
        }
    }

    /// Logs a note event `offset` samples into the current block (after [`Player::process`]).
    pub fn log(&self, offset: u32, pitch: u8, velocity: u8, source: NoteSource) {
        let time = self.block_clock + offset as f64 / self.samples_per_beat;
        self.monitor.notes.record(LoggedEvent { time, pitch, velocity, source });
    }

    pub fn state(&self) -> TransportState {
        self.transport.state()
    }

    pub fn model(&self) -> &Model {
        self.generator.model()
    }

    /// What one token (a model step and its sampling) cost when the player was made (90th
    /// percentile of 32).
    pub fn token_cost(&self) -> Duration {
        self.token_cost
    }

    /// Plans the step cap for `cost` per token instead of the cost measured when the player was
    /// made: for a test or a bench that must run at a given cap on any machine.
    pub fn assume_token_cost(&mut self, cost: Duration) {
        self.token_cost = cost;
        self.monitor.meters.token_cost_nanos.store(cost.as_nanos() as u64, Ordering::Relaxed);
    }

    /// Changes the sampler's controls. Sounding notes that the new range or scale would not
    /// allow end now, and events generated under the old settings are dropped. While a phrase
    /// loops, a new seed, range or scale makes a new take, from the next bar.
    pub fn set_settings(&mut self, settings: GeneratorSettings, emit: &mut impl FnMut(OutputEvent)) {
        if settings == self.settings {
            return;
        }
        let musical_change = settings.sampler.lowest != self.settings.sampler.lowest
            || settings.sampler.highest != self.settings.sampler.highest
            || settings.sampler.scale_lock != self.settings.sampler.scale_lock
            || self.generator.voices_for(settings.sampler.max_polyphony)
                < self.generator.voices_for(self.settings.sampler.max_polyphony);
        let new_seed = settings.sampler.seed != self.settings.sampler.seed;
        self.settings = settings;
        self.generator.set_settings(self.take_settings());
        // The music from here is not what a restart with these settings would play.
        self.opening_state = Opening::Stale;
        if musical_change {
            self.all_notes_off(0, emit);
            self.generator.release_all(|_| {});
            self.queue_len = 0;
            self.rollback.clear();
        }
        if self.looping() && (musical_change || new_seed) {
            self.new_take = true;
            self.restart_from_the_top(emit);
        }
    }

    /// The generator's settings for the present take: the musician's, with the seed moved on by
    /// the take, so that "New phrase" plays something new and a seed keeps its first take.
    fn take_settings(&self) -> GeneratorSettings {
        let mut settings = self.settings;
        settings.sampler.seed = settings.sampler.seed.wrapping_add(self.take.wrapping_mul(0x9E37_79B9));
        settings
    }

    /// Changes how the model plays with the musician. A new mode starts the music again on the
    /// next beat, from silence and an empty memory.
    pub fn set_listening(&mut self, listen: ListenSettings, emit: &mut impl FnMut(OutputEvent)) {
        let new_mode = listen.mode != self.listen.mode;
        self.listen = listen;
        if new_mode {
            self.opening_state = Opening::Stale;
            self.restart_from_the_top(emit);
        }
    }

    /// Loops a phrase of `bars` bars (0: no loop). A new length records a new take.
    pub fn set_loop(&mut self, bars: u32, emit: &mut impl FnMut(OutputEvent)) {
        if bars != self.loop_bars {
            self.loop_bars = bars;
            self.new_take = true;
            self.restart_from_the_top(emit);
        }
    }

    /// Another take: the music starts again with the next take's seed, on the next bar when a
    /// phrase loops, else on the next beat.
    pub fn new_phrase(&mut self, emit: &mut impl FnMut(OutputEvent)) {
        self.take += 1;
        self.new_take = true;
        self.generator.set_settings(self.take_settings());
        self.opening_state = Opening::Stale;
        self.restart_from_the_top(emit);
    }

    /// A phrase loops (in Free mode only: a loop that listens would not repeat).
    fn looping(&self) -> bool {
        self.listen.mode == Mode::Free && self.loop_bars > 0
    }

    /// The remembered opening serves only free play: a loop replays its take anyway, and what
    /// the model hears changes what it plays.
    fn uses_opening(&self) -> bool {
        self.listen.mode == Mode::Free && self.loop_bars == 0
    }

    /// The generator's past is kept while a musician's note may have to go back into it.
    fn keeps_past(&self) -> bool {
        match self.listen.mode {
            Mode::Free => false,
            Mode::CallAndResponse => matches!(self.phase, Phase::Answering { .. }),
            Mode::Duet => true,
        }
    }

    /// The model generates now: always, except while it listens for a call, and while notes
    /// placed for it wait to be read.
    fn generates(&self) -> bool {
        let listening = self.listen.mode == Mode::CallAndResponse && self.phase == Phase::Listening;
        !listening && self.heard_queue.is_empty()
    }

    pub fn listen_settings(&self) -> ListenSettings {
        self.listen
    }

    pub fn set_output(&mut self, output: OutputSettings) {
        self.output = output;
    }

    /// Ends every sounding note at `offset`, lowest first.
    pub fn all_notes_off(&mut self, offset: u32, emit: &mut impl FnMut(OutputEvent)) {
        for pitch in 0..128u8 {
            if std::mem::take(&mut self.sounding[pitch as usize]) {
                self.emit_logged(OutputEvent { offset, pitch, velocity: 0 }, emit);
            }
        }
    }

    /// Emits one of our events, counts it and logs it.
    fn emit_logged(&self, event: OutputEvent, emit: &mut impl FnMut(OutputEvent)) {
        emit(event);
        let counter =
            if event.is_on() { &self.monitor.meters.notes_on } else { &self.monitor.meters.notes_off };
        counter.fetch_add(1, Ordering::Relaxed);
        self.log(event.offset, event.pitch, event.velocity, NoteSource::Generated);
    }

    /// Back to the start of the music: notes off, generator state and clock reset, queue empty.
    /// The transport is not touched: where the music starts again is its decision.
    pub fn restart(&mut self, emit: &mut impl FnMut(OutputEvent)) {
        self.all_notes_off(0, emit);
        self.reset_music();
    }

    fn reset_music(&mut self) {
        self.take_prepared = false;
        self.generator.release_all(|_| {});
        self.queue_start = 0;
        self.fresh = true;
        self.phase = Phase::Listening;
        self.ear.clear();
        self.rollback.clear();
        self.heard_queue.clear();
        self.heard_next = 0;
        self.phrase.rewind();
        if self.opening_state == Opening::Ready && self.uses_opening() {
            self.generator.restore(&self.opening_snapshot);
            self.queue[..self.opening.len()].copy_from_slice(&self.opening);
            self.queue_len = self.opening.len();
        } else {
            // A reset only reads the start token; an error there would have failed at load.
            let _ = self.generator.reset();
            self.queue_len = 0;
            self.opening.clear();
            self.opening_state = Opening::Recording;
        }
    }

    /// The host resets the plugin, or deactivates it and takes no events until it activates it
    /// again: the music goes back to its start and forgets the host's position, and the notes
    /// the host heard sound end at the start of the next block processed.
    pub fn reset(&mut self) {
        self.release_pending |= self.sounding_count() > 0;
        self.reset_music();
        self.transport.reset();
    }

    /// This player replaces `old` outside a block (a model loaded at activation): the notes the
    /// host heard from `old` end at the start of this player's first block.
    pub fn take_over_notes(&mut self, old: &Player) {
        for (ours, theirs) in self.sounding.iter_mut().zip(old.sounding) {
            *ours |= theirs;
        }
        self.release_pending |= self.sounding_count() > 0;
    }

    /// The musician asked for the music again from its start: it starts on the next beat.
    pub fn restart_from_the_top(&mut self, emit: &mut impl FnMut(OutputEvent)) {
        self.restart(emit);
        self.transport.reset();
    }

    /// Processes one block: follows the transport, hears the musician's notes (`input`, in
    /// time order), generates ahead within the step cap, and emits this block's events in time
    /// order with offsets inside the block.
    pub fn process(&mut self, host: HostTransport, input: &[InputNote], emit: &mut impl FnMut(OutputEvent)) {
        let started = Instant::now();
        let steps_before = self.generator.steps_run();
        if std::mem::take(&mut self.release_pending) {
            self.all_notes_off(0, emit);
        }
        self.block_clock = self.monitor.meters.clock();
        self.samples_per_beat = host.samples_per_beat();
        self.time_signature = host.time_signature();

        let decision = self.transport.follow(&host);
        let meters = &self.monitor.meters;
        match decision {
            Decision::Continue | Decision::Resume => {}
            Decision::Resync => {
                meters.resyncs.fetch_add(1, Ordering::Relaxed);
            }
            // Silence now; the music keeps its state for a resume.
            Decision::Pause => self.all_notes_off(0, emit),
            Decision::Restart { origin } => {
                meters.restarts.fetch_add(1, Ordering::Relaxed);
                if !self.fresh {
                    self.restart(emit);
                }
                self.origin_beats = origin;
                if self.looping() {
                    self.start_loop(&host);
                }
            }
            Decision::Rewind => self.restart(emit),
        }

        let cap = step_cap(host.samples, host.sample_rate, self.token_cost);
        let block_beats = host.samples as f64 / self.samples_per_beat;
        let playing = self.transport.state() == TransportState::Playing;
        let clock = self.transport.clock().copied();
        let position = clock.map_or(0.0, |c| c.beats());
        match clock {
            Some(clock) if playing => {
                self.fresh = false;
                let drawn = self.hear(input, &clock, host.samples, cap, emit);
                let end_steps = (position + block_beats - self.origin_beats) * STEPS_PER_BEAT as f64;
                let mut target = end_steps.max(0.0).ceil() as u64 + LOOKAHEAD_STEPS;
                if let Phase::Answering { until: Some(until) } = self.phase {
                    target = target.min(until);
                }
                // The model could not step: no note may hang on a note-off it cannot draw.
                if self.generates() && !self.generate_ahead(target, cap.saturating_sub(drawn)) {
                    self.all_notes_off(0, emit);
                }
                self.play_due(&clock, host.samples, emit);
                self.end_answer_if_due(&clock, host.samples, emit);
            }
            // Stopped at the start of music that begins by itself (free, not looping, or a
            // duet): fill the lookahead now, so play starts on time.
            _ if self.fresh && (self.uses_opening() || self.listen.mode == Mode::Duet) => {
                self.generate_ahead(LOOKAHEAD_STEPS, cap);
            }
            // Stopped before a loop that records a new take: begin the take now, likewise.
            _ if self.fresh && self.looping() => {
                if (!self.take_prepared || self.new_take) && self.wants_new_take(self.loop_length(&host)) {
                    self.record_new_take(self.loop_length(&host));
                    self.take_prepared = true;
                }
                if self.take_prepared {
                    self.generate_ahead(LOOKAHEAD_STEPS, cap);
                }
            }
            _ => {}
        }
        if !playing {
            for note in input {
                self.log(note.offset, note.pitch, note.velocity, NoteSource::Input);
            }
        }
        self.transport.end_block(host.samples);

        // The bar being played, on the performance clock: while playing, and on the block that
        // pauses (the bar the music stopped in).
        let bar_clock = (playing || decision == Decision::Pause).then(|| {
            let bar_start = crate::transport::bar_start(position, host.time_signature(), host.bar_start);
            self.block_clock - (position - bar_start)
        });
        let loop_region = (self.looping() && (playing || decision == Decision::Pause)).then(|| {
            let now_steps = ((position - self.origin_beats) * STEPS_PER_BEAT as f64).max(0.0) as u64;
            let (_, repetition_start) = self.phrase.repetition_at(now_steps);
            let start_beats = self.origin_beats + repetition_start as f64 / STEPS_PER_BEAT as f64;
            (self.block_clock - (position - start_beats), self.phrase.length() as f64 / STEPS_PER_BEAT as f64)
        });
        self.monitor.meters.record_block(&BlockReport {
            state: self.transport.state(),
            tempo: host.tempo(),
            position: host.position().unwrap_or(position),
            time_signature: host.time_signature(),
            samples: host.samples,
            sample_rate: host.sample_rate,
            steps: self.generator.steps_run() - steps_before,
            nanos: started.elapsed().as_nanos() as u64,
            clock: self.block_clock + if playing { block_beats } else { 0.0 },
            bar_clock,
            loop_region,
            listening: self.listen.mode == Mode::CallAndResponse && self.phase == Phase::Listening,
        });
    }

    /// A loop starts on a bar line of the host: the first at or after `self.origin_beats`.
    /// The take in hand plays again from its start, unless a new one is wanted.
    fn start_loop(&mut self, host: &HostTransport) {
        let signature = host.time_signature();
        let bar = beats_per_bar(signature);
        let position = self.transport.clock().map_or(self.origin_beats, |c| c.beats());
        let bar_start = crate::transport::bar_start(position, signature, host.bar_start);
        let bars_ahead = ((self.origin_beats - bar_start) / bar - 1e-9).ceil().max(0.0);
        self.origin_beats = bar_start + bars_ahead * bar;
        let length = self.loop_length(host);
        if std::mem::take(&mut self.take_prepared) && !self.new_take && self.phrase.length() == length {
            // Begun while stopped: it plays from its first beat, already generated.
        } else if self.wants_new_take(length) {
            self.record_new_take(length);
        } else {
            self.queue_len = 0;
            self.phrase.rewind();
        }
    }

    /// The loop's length in grid steps, in the host's time signature.
    fn loop_length(&self, host: &HostTransport) -> u64 {
        let bar = beats_per_bar(host.time_signature());
        (self.loop_bars as f64 * bar * STEPS_PER_BEAT as f64).round() as u64
    }

    /// Whether the loop's next start records a take rather than replaying the one in hand.
    fn wants_new_take(&self, length: u64) -> bool {
        self.new_take || self.phrase.is_recording() || self.phrase.length() != length
    }

    fn record_new_take(&mut self, length: u64) {
        self.reset_music();
        self.new_take = false;
        self.phrase.record_new(length);
    }

    /// The grid step (from the music's start) of the sample `offset` into this block.
    fn step_at(&self, clock: &Clock, offset: u32) -> u64 {
        let beats = clock.beats() + offset as f64 / self.samples_per_beat - self.origin_beats;
        (beats * STEPS_PER_BEAT as f64).round().max(0.0) as u64
    }

    /// Hears this block's input as the mode says, within `cap` model steps. Returns the steps
    /// it ran, which the block's generation then does without. A note is placed at once: the
    /// generator goes back to its step (no model step), so nothing generated after it plays; the
    /// model reads it (a step, two when time has to pass first) as the cap allows, in this block
    /// or the next ones, and generates nothing new until it has. A note the model cannot hear
    /// (drums into a melodic model, a note-off without its note-on, a flood past
    /// [`MAX_HEARD_PER_BLOCK`]) is drawn grey and counted.
    fn hear(
        &mut self,
        input: &[InputNote],
        clock: &Clock,
        samples: usize,
        cap: usize,
        emit: &mut impl FnMut(OutputEvent),
    ) -> usize {
        let mode = self.listen.mode;
        let mut heard = 0;
        let deaf_to_drums = self.model().info().role == Role::Melodic;
        for note in input {
            let on = note.velocity > 0;
            let audible = mode.listens()
                && !(deaf_to_drums && note.channel == DRUM_CHANNEL)
                && (on || self.ear.is_held(note.pitch))
                && heard < MAX_HEARD_PER_BLOCK
                && self.heard_queue.len() < HEARD_QUEUE;
            if !audible {
                if mode.listens() {
                    self.monitor.meters.unheard_notes.fetch_add(on as u64, Ordering::Relaxed);
                }
                let source = if mode.listens() { NoteSource::Unheard } else { NoteSource::Input };
                self.log(note.offset, note.pitch, note.velocity, source);
                continue;
            }
            let step = self.step_at(clock, note.offset);
            if on && matches!(self.phase, Phase::Answering { .. }) && mode == Mode::CallAndResponse {
                // The musician plays again: the answer stops here, every note ended.
                self.all_notes_off(note.offset, emit);
                self.stop_answer(step);
            }
            let step = self.go_back_to(step);
            let token = if on { Token::NoteOn(note.pitch) } else { Token::NoteOff(note.pitch) };
            self.heard_queue.push((step, token));
            self.ear.heard(note.pitch, on, step);
            self.opening_state = Opening::Stale;
            heard += 1;
            self.log(note.offset, note.pitch, note.velocity, NoteSource::Input);
        }
        // A key held past the longest note: the model hears it end (where it stands now: going
        // back that far could undo notes it has heard since).
        let now = self.step_at(clock, samples as u32);
        let limit = (self.settings.max_note_beats * STEPS_PER_BEAT as f64).round() as u64;
        while let Some((pitch, end)) = self.ear.overlong(now, limit) {
            self.ear.heard(pitch, false, end);
            if self.heard_queue.len() < HEARD_QUEUE {
                self.heard_queue.push((end, Token::NoteOff(pitch)));
            }
        }
        // What the model decides after hearing is due after this block at the soonest (its
        // events are already placed), not before the blocks to come can draw a chord at their
        // cap (the note-offs, a velocity and a note-on per voice, and the time shift), and on
        // the beat's grid. At a full cap that is the grid line after the next block; at a cap
        // of 2 steps, after 7 blocks for 4 voices, else the reply would come late.
        let voices = self.generator.voices_for(self.settings.sampler.max_polyphony);
        let blocks = (3 * voices + 2).div_ceil(cap.max(1)) as f64;
        let next_block =
            clock.beats() + (blocks * samples as f64 - 0.5) / self.samples_per_beat - self.origin_beats;
        let reply_from = on_the_grid((next_block * STEPS_PER_BEAT as f64).ceil().max(0.0) as u64 + 1);
        let mut spent = self.read_heard(cap, reply_from);
        if mode == Mode::CallAndResponse && self.phase == Phase::Listening && self.heard_queue.is_empty() {
            let rest = (self.listen.answer_after_beats * STEPS_PER_BEAT as f64).round() as u64;
            // The answer is generated ahead like any music, from a beat before it is due: if
            // the musician plays before then, it is dropped unheard.
            let due = self.ear.answer_due(rest).filter(|due| *due < now + LOOKAHEAD_STEPS);
            if let Some(due) = due.filter(|_| spent < cap) {
                spent += self.start_answer(due.max(self.step_at(clock, 0) + 1));
            }
        }
        spent
    }

    /// The model reads the notes placed for it, in order, at most `cap` model steps. After each
    /// it plays nothing new before `reply_from` (in a duet; listening, it does not play anyway).
    /// Returns the steps run.
    fn read_heard(&mut self, cap: usize, reply_from: u64) -> usize {
        let mut spent = 0;
        while self.heard_next < self.heard_queue.len() && spent < cap {
            let (step, token) = self.heard_queue[self.heard_next];
            if self.generator.now() < step {
                spent += self.generator.feed_time_until(step, HEARD_REST_STEPS).unwrap_or(0);
                if spent >= cap {
                    break;
                }
            }
            spent += self.generator.feed(token).is_ok() as usize;
            self.heard_next += 1;
            self.generator.rest_until(reply_from);
        }
        if self.heard_next == self.heard_queue.len() {
            self.heard_queue.clear();
            self.heard_next = 0;
        }
        spent
    }

    /// Takes the generator back to grid step `step` if it has generated past it, dropping the
    /// queued events after it. Returns the step the generator now stands at: `step`, or later
    /// when its past does not reach back that far.
    fn go_back_to(&mut self, step: u64) -> u64 {
        if self.generator.now() > step && self.rollback.go_back(&mut self.generator, step).is_some() {
            while self.queue_len > 0 {
                let last = self.queue[(self.queue_start + self.queue_len - 1) % QUEUE_CAPACITY];
                if last.step <= step {
                    break;
                }
                self.queue_len -= 1;
            }
        }
        step.max(self.generator.now())
    }

    /// The musician rested long enough: the answer starts at grid step `at`. Returns the model
    /// steps run (the rest, heard).
    fn start_answer(&mut self, at: u64) -> usize {
        // Where the call ended, to go back to if the musician plays on before the answer.
        self.rollback.clear();
        self.rollback.keep(&self.generator);
        let spent = self.generator.feed_time_until(at, HEARD_REST_STEPS).unwrap_or(0);
        let bar_steps = beats_per_bar(self.time_signature) * STEPS_PER_BEAT as f64;
        let until = self.listen.answer_bars.map(|bars| at + (bars as f64 * bar_steps).round() as u64);
        self.phase = Phase::Answering { until };
        self.generator.start_with_a_note();
        self.ear.answered();
        spent
    }

    /// The answer ends at grid step `at`: the model's memory goes back to what was heard until
    /// then, and it listens again. The caller ends the notes.
    fn stop_answer(&mut self, at: u64) {
        self.go_back_to(at);
        self.queue_len = 0;
        self.generator.release_all(|_| {});
        self.rollback.clear();
        self.phase = Phase::Listening;
    }

    /// An answer of a set length ends in this block: its notes end on its last step.
    fn end_answer_if_due(&mut self, clock: &Clock, samples: usize, emit: &mut impl FnMut(OutputEvent)) {
        let Phase::Answering { until: Some(until) } = self.phase else { return };
        let at = clock.samples_until(self.origin_beats + until as f64 / STEPS_PER_BEAT as f64);
        if at < samples as f64 - 0.5 {
            self.all_notes_off(at.round().max(0.0) as u32, emit);
            self.stop_answer(until);
        }
    }

    /// Generates until the clock reaches `target_steps`, at most `cap` tokens, recording the
    /// opening, the loop's take and the generator's past as needed; a loop's take, once
    /// recorded, is replayed instead. False when the model had no room for a step (counted).
    fn generate_ahead(&mut self, target_steps: u64, cap: usize) -> bool {
        let looping = self.looping();
        if looping && !self.phrase.is_recording() {
            self.replay_loop(target_steps);
            return true;
        }
        let keeps_past = self.keeps_past();
        let mut drawn = 0;
        while self.generator.now() < target_steps && drawn < cap && self.queue_len + 2 <= QUEUE_CAPACITY {
            if !self.generator.can_step() {
                self.monitor.meters.refused_steps.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            if keeps_past {
                self.rollback.before_token(&self.generator);
            }
            let recording = self.opening_state == Opening::Recording && self.uses_opening();
            let (queue, start, len) = (&mut self.queue, self.queue_start, &mut self.queue_len);
            let (opening, mut overflowed) = (&mut self.opening, false);
            let phrase = &mut self.phrase;
            let result = self.generator.next(|event| {
                if looping && !phrase.record(event) {
                    return;
                }
                enqueue(queue, start, len, event);
                if recording {
                    if opening.len() < QUEUE_CAPACITY {
                        opening.push(event);
                    } else {
                        overflowed = true;
                    }
                }
            });
            let Ok(token) = result else { break };
            if keeps_past {
                self.rollback.after_token(token);
            }
            drawn += 1;
            if overflowed {
                // An opening that does not fit is not remembered: a restart generates it again.
                self.opening_state = Opening::Stale;
            } else if recording && self.generator.now() >= LOOKAHEAD_STEPS {
                self.generator.snapshot_into(&mut self.opening_snapshot);
                self.opening_state = Opening::Ready;
            }
            if looping && self.generator.now() >= self.phrase.length() {
                let (queue, len) = (&mut self.queue, &mut self.queue_len);
                self.phrase.finish(|event| enqueue(queue, start, len, event));
                self.replay_loop(target_steps);
                break;
            }
        }
        true
    }

    /// Queues the loop's events up to `target_steps`.
    fn replay_loop(&mut self, target_steps: u64) {
        while self.queue_len < QUEUE_CAPACITY {
            let Some(event) = self.phrase.next_before(target_steps) else { break };
            enqueue(&mut self.queue, self.queue_start, &mut self.queue_len, event);
        }
    }

    /// Emits the queued events that fall inside this block, at the samples the clock puts them.
    fn play_due(
        &mut self,
        clock: &crate::transport::Clock,
        samples: usize,
        emit: &mut impl FnMut(OutputEvent),
    ) {
        // An event belongs to the block holding its nearest sample.
        let block_end = samples as f64 - 0.5;
        while self.queue_len > 0 {
            let event = self.queue[self.queue_start];
            if let Phase::Answering { until: Some(until) } = self.phase {
                if event.step >= until {
                    break;
                }
            }
            let beats = self.origin_beats + event.step as f64 / STEPS_PER_BEAT as f64;
            let exact = clock.samples_until(beats);
            if exact >= block_end {
                break;
            }
            self.queue_start = (self.queue_start + 1) % QUEUE_CAPACITY;
            self.queue_len -= 1;
            let offset = exact.round().max(0.0) as u32;
            match event.kind {
                NoteEventKind::On { .. } if exact < -0.5 => {
                    // Too late to be on the grid: skipped, and so is its note-off (never sounded).
                    self.monitor.meters.late_events.fetch_add(1, Ordering::Relaxed);
                }
                NoteEventKind::On { pitch, velocity } => {
                    if std::mem::replace(&mut self.sounding[pitch as usize], true) {
                        self.emit_logged(OutputEvent { offset, pitch, velocity: 0 }, emit);
                    }
                    let scaled =
                        (velocity as f32 * self.output.velocity_scale).round().clamp(1.0, 127.0) as u8;
                    self.emit_logged(OutputEvent { offset, pitch, velocity: scaled }, emit);
                }
                NoteEventKind::Off { pitch } => {
                    // Only notes the host heard: one ended by a pause or a settings change is gone.
                    if std::mem::take(&mut self.sounding[pitch as usize]) {
                        self.emit_logged(OutputEvent { offset, pitch, velocity: 0 }, emit);
                    }
                }
            }
        }
    }

    /// Notes sounding at the output now.
    pub fn sounding_count(&self) -> usize {
        self.sounding.iter().filter(|s| **s).count()
    }
}

/// The first sixteenth note or eighth-note triplet at or after grid step `step`: where a reply
/// may begin. A reply from the first step the blocks allow began off the beat's grid (at step 11
/// of 24, say), and the model, which keeps time by its own TIME_SHIFTs, played on off the grid
/// and half as much in the duet test.
fn on_the_grid(step: u64) -> u64 {
    const SIXTEENTH: u64 = STEPS_PER_BEAT as u64 / 4;
    const TRIPLET: u64 = STEPS_PER_BEAT as u64 / 3;
    step.next_multiple_of(SIXTEENTH).min(step.next_multiple_of(TRIPLET))
}

/// Appends `event` to the ring buffer `queue` (its first event at `start`, `len` long), if
/// there is room.
fn enqueue(queue: &mut [NoteEvent], start: usize, len: &mut usize, event: NoteEvent) {
    if *len < queue.len() {
        queue[(start + *len) % queue.len()] = event;
        *len += 1;
    }
}

/// What a token costs with this model and sampler here: the 90th percentile of
/// [`COST_TOKENS`] drawn (then the generator goes back to its start).
fn time_tokens(generator: &mut Generator) -> Result<Duration, String> {
    let mut times = Vec::with_capacity(COST_TOKENS);
    for _ in 0..COST_TOKENS {
        let started = Instant::now();
        generator.next(|_| {}).map_err(|e| e.to_string())?;
        times.push(started.elapsed());
    }
    generator.release_all(|_| {});
    generator.reset().map_err(|e| e.to_string())?;
    times.sort();
    Ok(times[COST_TOKENS * 9 / 10])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ContinuoParams;

    const RATE: f32 = 48_000.0;
    /// Samples per beat at 120 BPM.
    const SPB: f64 = 24_000.0;

    fn player() -> Player {
        let params = ContinuoParams::default();
        let model = Model::load(crate::built_in::DEFAULT.bytes, "default").unwrap();
        let mut player =
            Player::new(model, params.generator_settings(), params.output_settings(), Arc::default())
                .unwrap();
        // As `open_player` leaves it: the first beat generated, whatever the machine's load.
        player.prime();
        player
    }

    fn block(playing: bool, tempo: Option<f64>, pos_beats: Option<f64>) -> HostTransport {
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
        let cap = step_cap(512, RATE, player.token_cost()) as u64;
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
        player
            .process(block(false, Some(120.0), Some(2000.0 * beats_per_block)), &[], &mut |e| events.push(e));

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
    fn the_step_cap_plans_for_the_worst_case_within_a_quarter_of_the_block() {
        let token = Duration::from_micros(20);
        // 64 samples at 48 kHz last 1333 us: 333 us for the worst case, 4 times the tokens.
        assert_eq!(step_cap(64, RATE, token), 4);
        assert_eq!(step_cap(512, RATE, token), 33);
        assert_eq!(step_cap(8192, RATE, token), MAX_STEPS_PER_BLOCK);
        // A model too slow for the block still steps, once.
        assert_eq!(step_cap(32, RATE, Duration::from_millis(1)), 1);
    }

    #[test]
    fn a_restart_plays_the_remembered_opening_without_stepping() {
        let mut player = player();
        let monitor = player.monitor().clone();
        let beat_of = |events: &[(i64, OutputEvent)]| -> Vec<(i64, u8)> {
            events
                .iter()
                .filter(|(at, e)| e.is_on() && *at < SPB as i64)
                .map(|(at, e)| (*at, e.pitch))
                .collect()
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
        let mut with_host = self::player();
        let (mut own, mut host) = (Vec::new(), Vec::new());
        for i in 0..1000i64 {
            player.process(block(true, None, None), &[], &mut |e| own.push((i, e)));
            with_host.process(block(true, Some(120.0), Some(i as f64 * 512.0 / SPB)), &[], &mut |e| {
                host.push((i, e))
            });
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
}
