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

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use continuo_engine::generator::{Generator, GeneratorSettings};
use continuo_engine::model::Model;
use continuo_engine::vocab::{NoteEvent, NoteEventKind, STEPS_PER_BEAT};

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

/// Where the transport stands, as the player sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransportState {
    Stopped,
    Playing,
    Paused,
}

/// Counters the editor and the tests read, written by the audio thread with relaxed atomics.
#[derive(Debug, Default)]
pub struct Meters {
    pub model_steps: AtomicU64,
    pub blocks: AtomicU64,
    pub notes_on: AtomicU64,
    pub notes_off: AtomicU64,
    /// Events that fell due before generation reached them and were played at the block start.
    pub late_events: AtomicU64,
    /// Events the host's buffer had no room for.
    pub dropped_events: AtomicU64,
    /// Nanoseconds spent in model steps, in total, and the worst single block.
    pub step_nanos: AtomicU64,
    pub worst_block_nanos: AtomicU64,
    /// 0 stopped, 1 playing, 2 paused.
    pub transport: AtomicU64,
    pub tempo_millibpm: AtomicU64,
    /// Host position in thousandths of a beat.
    pub position_millibeats: AtomicU64,
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
    meters: Arc<Meters>,
}

impl Player {
    pub fn new(model: Model, settings: GeneratorSettings, output: OutputSettings) -> Result<Player, String> {
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
            meters: Arc::new(Meters::default()),
        })
    }

    pub fn meters(&self) -> Arc<Meters> {
        self.meters.clone()
    }

    /// The meters, borrowed: for the audio thread, where cloning the `Arc` is not needed.
    pub fn meters_ref(&self) -> &Meters {
        &self.meters
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
                emit(OutputEvent { offset, pitch, velocity: 0 });
                self.meters.notes_off.fetch_add(1, Ordering::Relaxed);
            }
        }
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
                self.origin_beats = pos;
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
        } else {
            if self.fresh {
                // Stopped at the start of the music: fill the lookahead now, so play starts on time.
                self.generate_ahead(LOOKAHEAD_STEPS, step_cap(transport.samples));
            }
            self.expected_beats = Some(pos);
        }

        let m = &self.meters;
        m.blocks.fetch_add(1, Ordering::Relaxed);
        let steps = self.generator.tokens_read().saturating_sub(steps_before);
        m.model_steps.fetch_add(steps, Ordering::Relaxed);
        let nanos = started.elapsed().as_nanos() as u64;
        if steps > 0 {
            m.step_nanos.fetch_add(nanos, Ordering::Relaxed);
        }
        m.worst_block_nanos.fetch_max(nanos, Ordering::Relaxed);
        let state = match self.state {
            TransportState::Stopped => 0,
            TransportState::Playing => 1,
            TransportState::Paused => 2,
        };
        m.transport.store(state, Ordering::Relaxed);
        m.tempo_millibpm.store((tempo * 1000.0) as u64, Ordering::Relaxed);
        m.position_millibeats.store((pos.max(0.0) * 1000.0) as u64, Ordering::Relaxed);
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
                self.meters.late_events.fetch_add(1, Ordering::Relaxed);
            }
            let offset = exact.round().clamp(0.0, last) as u32;
            match event.kind {
                NoteEventKind::On { pitch, velocity } => {
                    if std::mem::replace(&mut self.sounding[pitch as usize], true) {
                        emit(OutputEvent { offset, pitch, velocity: 0 });
                    }
                    let scaled =
                        (velocity as f32 * self.output.velocity_scale).round().clamp(1.0, 127.0) as u8;
                    emit(OutputEvent { offset, pitch, velocity: scaled });
                    self.meters.notes_on.fetch_add(1, Ordering::Relaxed);
                }
                NoteEventKind::Off { pitch } => {
                    // Only notes the host heard: one ended by a pause or a settings change is gone.
                    if std::mem::take(&mut self.sounding[pitch as usize]) {
                        emit(OutputEvent { offset, pitch, velocity: 0 });
                        self.meters.notes_off.fetch_add(1, Ordering::Relaxed);
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
        Player::new(model, params.generator_settings(), params.output_settings()).unwrap()
    }

    fn block(playing: bool, tempo: Option<f64>, pos_beats: Option<f64>) -> BlockTransport {
        BlockTransport { playing, tempo, pos_beats, sample_rate: 48_000.0, samples: 512 }
    }

    #[test]
    fn meters_count_what_the_audio_thread_did() {
        let mut player = player();
        let meters = player.meters();
        let mut events = Vec::new();
        let beats_per_block = 512.0 / 24_000.0;
        for i in 0..2000 {
            let steps_before = meters.model_steps.load(Ordering::Relaxed);
            player
                .process(block(true, Some(120.0), Some(i as f64 * beats_per_block)), &mut |e| events.push(e));
            let steps = meters.model_steps.load(Ordering::Relaxed) - steps_before;
            assert!(steps <= step_cap(512) as u64, "{steps} model steps in one block, above the cap");
        }
        assert_eq!(meters.transport.load(Ordering::Relaxed), 1);
        assert_eq!(meters.tempo_millibpm.load(Ordering::Relaxed), 120_000);
        player.process(block(false, Some(120.0), Some(2000.0 * beats_per_block)), &mut |e| events.push(e));

        let ons = events.iter().filter(|e| e.is_on()).count() as u64;
        assert!(ons > 40, "{ons} notes in 42 beats");
        assert_eq!(meters.notes_on.load(Ordering::Relaxed), ons);
        assert_eq!(meters.notes_off.load(Ordering::Relaxed), events.len() as u64 - ons);
        assert_eq!(ons * 2, events.len() as u64, "every note-on has its note-off after the pause");
        assert_eq!(meters.blocks.load(Ordering::Relaxed), 2001);
        assert_eq!(meters.transport.load(Ordering::Relaxed), 2, "paused");
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
}
