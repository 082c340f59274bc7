//! The player: follows the host's transport and turns the generator's music into note events
//! placed on the samples of each block.
//!
//! Owns the mapping between the host's beat position and the generator's grid clock, the
//! play / pause / stop logic, the queue of events generated ahead of the playhead, the cap on
//! model steps per block, the notes sounding at the output (so every one gets its note-off) and
//! the real-time counters. It knows nothing of nice-plug: the plugin hands it a [`BlockTransport`]
//! and receives [`OutputEvent`]s through a callback, so all of this is tested without a host.
//!
//! Nothing here allocates after [`Player::new`]; the one allocating call, the model step inside
//! the generator, runs inside the generator's step scope.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use continuo_engine::generator::{Generator, GeneratorSettings};
use continuo_engine::model::Model;
use continuo_engine::vocab::{NoteEvent, NoteEventKind, STEPS_PER_BEAT};

pub use crate::monitor::TransportState;
use crate::monitor::{LoggedEvent, Monitor, NoteSource};

/// The tempo assumed when the host gives none.
pub const DEFAULT_BPM: f64 = 120.0;
/// How far ahead of the playhead the generator runs, in grid steps (one beat): enough that a
/// block never has to catch up on more than its cap.
pub const LOOKAHEAD_STEPS: u64 = STEPS_PER_BEAT as u64;
/// Events generated ahead and not yet played; a chord-heavy beat needs a few dozen.
pub const QUEUE_CAPACITY: usize = 512;
/// A host position further than this from where playback should be is a jump (a locate or a
/// loop), in beats: far above rounding, far below any musical move.
pub const JUMP_TOLERANCE_BEATS: f64 = 1e-3;

/// Whether the host is at `pos` when it should be at `expected`: a locate, a loop or a rewind
/// rather than rounding.
fn is_jump(expected: f64, pos: f64) -> bool {
    (expected - pos).abs() > JUMP_TOLERANCE_BEATS
}

/// Most model steps one block may run: 2 for the smallest blocks, more for long ones, so a
/// block's worst case stays a small share of its duration.
pub fn step_cap(samples: usize) -> usize {
    (samples / 64).clamp(2, 64)
}

/// What the host says about the block about to be processed.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BlockTransport {
    pub playing: bool,
    pub tempo: Option<f64>,
    /// Position of the block's first sample, in beats (quarter notes).
    pub pos_beats: Option<f64>,
    pub sample_rate: f32,
    pub samples: usize,
    /// (numerator, denominator), when the host says.
    pub time_signature: Option<(u32, u32)>,
    /// Where the bar being played started, in beats, when the host says.
    pub bar_start: Option<f64>,
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

pub struct Player {
    generator: Generator,
    settings: GeneratorSettings,
    output: OutputSettings,
    state: TransportState,
    /// Host beat at which the generator's step 0 sounds.
    origin_beats: f64,
    /// Where the next block should start if playback runs on undisturbed.
    expected_beats: Option<f64>,
    /// Host position when playback paused, to tell a resume from a jump.
    paused_at: Option<f64>,
    /// Events generated, waiting for their time: a ring buffer, allocated once.
    queue: Vec<NoteEvent>,
    queue_start: usize,
    queue_len: usize,
    /// Notes sounding at the output, as the host heard them.
    sounding: [bool; 128],
    /// The music is at its start (nothing played since the last restart).
    fresh: bool,
    /// Start the music on the host's next beat rather than where play starts (a model switch
    /// happens at any block; its music must still fall on the beat).
    start_on_beat: bool,
    /// The performance clock at this block's first sample, and the block's samples per beat:
    /// what stamps the notes logged during the block.
    block_clock: f64,
    samples_per_beat: f64,
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
        let generator = Generator::new(model, settings).map_err(|e| e.to_string())?;
        Ok(Player {
            generator,
            settings,
            output,
            state: TransportState::Stopped,
            origin_beats: 0.0,
            expected_beats: None,
            paused_at: None,
            queue: vec![NoteEvent { step: 0, kind: NoteEventKind::Off { pitch: 0 } }; QUEUE_CAPACITY],
            queue_start: 0,
            queue_len: 0,
            sounding: [false; 128],
            fresh: true,
            start_on_beat: false,
            block_clock: 0.0,
            samples_per_beat: 48_000.0 * 60.0 / DEFAULT_BPM,
            monitor,
        })
    }

    pub fn monitor(&self) -> &Arc<Monitor> {
        &self.monitor
    }

    /// Generates the first beat now, so that a player built off the audio thread (a model
    /// switch) starts on time without running a beat's worth of steps in its first blocks.
    pub fn prime(&mut self) {
        self.generate_ahead(LOOKAHEAD_STEPS, usize::MAX);
    }

    /// Makes this player start its music on the host's next beat (see `start_on_beat`).
    pub fn start_on_next_beat(&mut self) {
        self.start_on_beat = true;
    }

    /// Logs a note event `offset` samples into the current block (after [`Player::process`]).
    pub fn log(&self, offset: u32, pitch: u8, velocity: u8, source: NoteSource) {
        let time = self.block_clock + offset as f64 / self.samples_per_beat;
        self.monitor.notes.record(LoggedEvent { time, pitch, velocity, source });
    }

    pub fn set_step_scope(&mut self, scope: continuo_engine::generator::StepScope) {
        self.generator.set_step_scope(scope);
    }

    pub fn state(&self) -> TransportState {
        self.state
    }

    pub fn model(&self) -> &Model {
        self.generator.model()
    }

    /// Changes the sampler's controls. Sounding notes that the new range or scale would not
    /// allow end now, and events generated under the old settings are dropped.
    pub fn set_settings(&mut self, settings: GeneratorSettings, emit: &mut impl FnMut(OutputEvent)) {
        if settings == self.settings {
            return;
        }
        let musical_change = settings.sampler.lowest != self.settings.sampler.lowest
            || settings.sampler.highest != self.settings.sampler.highest
            || settings.sampler.scale_lock != self.settings.sampler.scale_lock
            || settings.sampler.max_polyphony < self.settings.sampler.max_polyphony;
        self.settings = settings;
        self.generator.set_settings(settings);
        if musical_change {
            self.all_notes_off(0, emit);
            self.generator.release_all(|_| {});
            self.queue_len = 0;
        }
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
    pub fn restart(&mut self, emit: &mut impl FnMut(OutputEvent)) {
        self.all_notes_off(0, emit);
        self.generator.release_all(|_| {});
        // A reset only reads the start token; an error there would have failed at load.
        let _ = self.generator.reset();
        self.queue_len = 0;
        self.queue_start = 0;
        self.paused_at = None;
        self.fresh = true;
    }

    /// Processes one block: follows the transport, generates ahead within the step cap, and
    /// emits this block's events in time order with offsets inside the block.
    pub fn process(&mut self, transport: BlockTransport, emit: &mut impl FnMut(OutputEvent)) {
        let started = Instant::now();
        let steps_before = self.generator.tokens_read();
        let tempo = transport.tempo.filter(|t| t.is_finite() && *t > 0.0).unwrap_or(DEFAULT_BPM);
        let samples_per_beat = transport.sample_rate as f64 * 60.0 / tempo;
        let block_beats = transport.samples as f64 / samples_per_beat;
        // Hosts without a position still advance: keep our own.
        let pos = transport
            .pos_beats
            .filter(|p| p.is_finite())
            .unwrap_or_else(|| self.expected_beats.unwrap_or(0.0));
        self.block_clock = self.monitor.meters.clock();
        self.samples_per_beat = samples_per_beat;

        match (self.state, transport.playing) {
            (TransportState::Playing, false) => {
                // Pause: silence now, keep the music's state for a resume.
                self.all_notes_off(0, emit);
                self.state = TransportState::Paused;
                self.paused_at = Some(pos);
            }
            (TransportState::Paused, true) => {
                let resumed = self.paused_at.is_some_and(|p| !is_jump(p, pos));
                if resumed {
                    // The music continues from where it paused: re-anchor the grid clock there.
                    self.origin_beats += pos - self.paused_at.unwrap_or(pos);
                } else {
                    self.restart(emit);
                    self.origin_beats = pos;
                }
                self.state = TransportState::Playing;
            }
            (TransportState::Stopped, true) => {
                if !self.fresh {
                    self.restart(emit);
                }
                // A hair before the beat counts as on it: host positions carry rounding.
                self.origin_beats = if self.start_on_beat { (pos - 1e-6).ceil() } else { pos };
                self.state = TransportState::Playing;
            }
            (TransportState::Playing, true) => {
                if self.expected_beats.is_some_and(|e| is_jump(e, pos)) {
                    // A locate or a loop: the music starts again from here.
                    self.restart(emit);
                    self.origin_beats = pos;
                }
            }
            (TransportState::Paused, false) => {
                // Moved while paused (a stop that rewinds, or a locate): next play starts afresh.
                if self.paused_at.is_some_and(|p| is_jump(p, pos)) {
                    self.restart(emit);
                    self.state = TransportState::Stopped;
                }
            }
            (TransportState::Stopped, false) => {}
        }

        if self.state == TransportState::Playing {
            self.fresh = false;
            let block_end_steps = ((pos + block_beats - self.origin_beats) * STEPS_PER_BEAT as f64).max(0.0);
            self.generate_ahead(block_end_steps as u64 + LOOKAHEAD_STEPS, step_cap(transport.samples));
            self.play_due(pos, block_end_steps, samples_per_beat, transport.samples, emit);
            self.expected_beats = Some(pos + block_beats);
            let clock = self.block_clock + block_beats;
            self.monitor.meters.clock_bits.store(clock.to_bits(), Ordering::Relaxed);
        } else {
            if self.fresh {
                // Stopped at the start of the music: fill the lookahead now, so play starts on time.
                self.generate_ahead(LOOKAHEAD_STEPS, step_cap(transport.samples));
            }
            self.expected_beats = Some(pos);
        }

        let m = &self.monitor.meters;
        // The bar being played, on the performance clock: while playing, and on the block that
        // pauses (the bar the music stopped in). A position moved while paused says nothing of
        // the music played.
        if self.state == TransportState::Playing || self.paused_at == Some(pos) {
            let bar = crate::recording::beats_per_bar(transport.time_signature.unwrap_or((4, 4)));
            let bar_start =
                transport.bar_start.filter(|b| b.is_finite()).unwrap_or((pos / bar).floor() * bar);
            let bar_clock = self.block_clock - (pos - bar_start);
            m.bar_clock_bits.store(bar_clock.to_bits(), Ordering::Relaxed);
        }
        m.blocks.fetch_add(1, Ordering::Relaxed);
        let steps = self.generator.tokens_read().saturating_sub(steps_before);
        m.model_steps.fetch_add(steps, Ordering::Relaxed);
        let nanos = started.elapsed().as_nanos() as u64;
        if steps > 0 {
            m.step_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
        m.worst_block_nanos.fetch_max(nanos, Ordering::Relaxed);
        m.transport.store(self.state.code(), Ordering::Relaxed);
        m.tempo_millibpm.store((tempo * 1000.0) as u64, Ordering::Relaxed);
        m.position_millibeats.store((pos.max(0.0) * 1000.0) as u64, Ordering::Relaxed);
        let (numerator, denominator) = transport.time_signature.unwrap_or((4, 4));
        m.set_time_signature(numerator, denominator);
        let budget = transport.samples as f64 / transport.sample_rate as f64 * 1e9;
        m.block_budget_nanos.store(budget as u64, Ordering::Relaxed);
    }

    fn generate_ahead(&mut self, target_steps: u64, cap: usize) {
        let mut drawn = 0;
        while self.generator.now() < target_steps && drawn < cap && self.queue_len + 2 <= QUEUE_CAPACITY {
            let (queue, start, len) = (&mut self.queue, self.queue_start, &mut self.queue_len);
            let result = self.generator.next(|event| {
                if *len < QUEUE_CAPACITY {
                    queue[(start + *len) % QUEUE_CAPACITY] = event;
                    *len += 1;
                }
            });
            if result.is_err() {
                break;
            }
            drawn += 1;
        }
    }

    /// Emits the queued events due before the block's end.
    fn play_due(
        &mut self,
        pos: f64,
        block_end_steps: f64,
        samples_per_beat: f64,
        samples: usize,
        emit: &mut impl FnMut(OutputEvent),
    ) {
        let last = samples.saturating_sub(1) as f64;
        while self.queue_len > 0 {
            let event = self.queue[self.queue_start];
            if event.step as f64 >= block_end_steps {
                break;
            }
            self.queue_start = (self.queue_start + 1) % QUEUE_CAPACITY;
            self.queue_len -= 1;
            let beats = self.origin_beats + event.step as f64 / STEPS_PER_BEAT as f64;
            let exact = (beats - pos) * samples_per_beat;
            if exact < -0.5 {
                self.monitor.meters.late_events.fetch_add(1, Ordering::Relaxed);
            }
            let offset = exact.round().clamp(0.0, last) as u32;
            match event.kind {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::ContinuoParams;

    fn player() -> Player {
        let params = ContinuoParams::default();
        let model = Model::load(crate::DEFAULT_MODEL, "default").unwrap();
        Player::new(model, params.generator_settings(), params.output_settings(), Arc::default()).unwrap()
    }

    fn block(playing: bool, tempo: Option<f64>, pos_beats: Option<f64>) -> BlockTransport {
        BlockTransport {
            playing,
            tempo,
            pos_beats,
            sample_rate: 48_000.0,
            samples: 512,
            time_signature: None,
            bar_start: None,
        }
    }

    #[test]
    fn meters_count_what_the_audio_thread_did() {
        let mut player = player();
        let monitor = player.monitor().clone();
        let meters = &monitor.meters;
        let mut events = Vec::new();
        let beats_per_block = 512.0 / 24_000.0;
        for i in 0..2000 {
            let steps_before = meters.model_steps.load(Ordering::Relaxed);
            player
                .process(block(true, Some(120.0), Some(i as f64 * beats_per_block)), &mut |e| events.push(e));
            let steps = meters.model_steps.load(Ordering::Relaxed) - steps_before;
            assert!(steps <= step_cap(512) as u64, "{steps} model steps in one block, above the cap");
        }
        assert_eq!(meters.transport(), TransportState::Playing);
        assert_eq!(meters.tempo_millibpm.load(Ordering::Relaxed), 120_000);
        player.process(block(false, Some(120.0), Some(2000.0 * beats_per_block)), &mut |e| events.push(e));

        let ons = events.iter().filter(|e| e.is_on()).count() as u64;
        assert!(ons > 40, "{ons} notes in 42 beats");
        assert_eq!(meters.notes_on.load(Ordering::Relaxed), ons);
        assert_eq!(meters.notes_off.load(Ordering::Relaxed), events.len() as u64 - ons);
        assert_eq!(ons * 2, events.len() as u64, "every note-on has its note-off after the pause");
        assert_eq!(meters.blocks.load(Ordering::Relaxed), 2001);
        assert_eq!(meters.transport(), TransportState::Paused);
        assert!(meters.model_steps.load(Ordering::Relaxed) > ons);
        assert!(meters.worst_block_nanos.load(Ordering::Relaxed) > 0);
        assert_eq!(player.sounding_count(), 0);
    }

    #[test]
    fn without_a_host_tempo_or_position_it_plays_at_120_bpm_on_its_own_clock() {
        let mut player = player();
        let mut with_host = self::player();
        let (mut own, mut host) = (Vec::new(), Vec::new());
        for i in 0..1000i64 {
            player.process(block(true, None, None), &mut |e| own.push((i, e)));
            with_host.process(block(true, Some(120.0), Some(i as f64 * 512.0 / 24_000.0)), &mut |e| {
                host.push((i, e))
            });
        }
        assert!(own.len() > 40);
        assert_eq!(own.len(), host.len());
        // The same notes at the same samples, within the rounding of an accumulated clock.
        for ((ob, o), (hb, h)) in own.iter().zip(&host) {
            let (own_sample, host_sample) = (ob * 512 + o.offset as i64, hb * 512 + h.offset as i64);
            assert!((own_sample - host_sample).abs() <= 1, "{o:?} at {own_sample}, {h:?} at {host_sample}");
            assert_eq!((o.pitch, o.velocity), (h.pitch, h.velocity));
        }
    }

    #[test]
    fn a_switched_in_player_starts_its_music_on_the_next_beat() {
        let mut player = player();
        player.prime();
        player.start_on_next_beat();
        let beats_per_block = 512.0 / 24_000.0;
        let start = 10.3;
        let mut first = None;
        for i in 0..200 {
            let pos = start + i as f64 * beats_per_block;
            player.process(block(true, Some(120.0), Some(pos)), &mut |e| {
                if e.is_on() && first.is_none() {
                    first = Some(pos + e.offset as f64 / 24_000.0);
                }
            });
        }
        let first = first.expect("the primed player plays");
        // On the grid that starts at beat 11: a whole number of 24ths of a beat from it.
        let steps = (first - 11.0) * STEPS_PER_BEAT as f64;
        assert!(first >= 11.0 - 1e-9 && (steps - steps.round()).abs() < 0.05, "first note at beat {first}");
    }
}
