//! The player: the music on the host's grid. Each block it follows the host's transport, hears
//! the musician, generates ahead within the step budget, and places the events that fall in the
//! block on its samples. It owns the origin (the host beat where the music's step 0 sounds, which
//! links grid steps to host beats) and the order of those stages; each stage's state has a room of
//! its own:
//! - [`crate::transport`]: what the host says, the sample-exact clock, each block's decision;
//! - [`crate::listening`]: what the model hears of the musician, the call and response, going
//!   back for a late note;
//! - [`crate::event_queue`]: the events generated ahead of the playhead;
//! - [`crate::takes`]: the phrase loop and the remembered opening, recorded once and replayed;
//! - [`crate::step_budget`]: how many model steps a block affords;
//! - [`crate::note_output`]: the events sent, the notes sounding, the log.
//!
//! It knows nothing of nice-plug: the plugin hands it a [`HostTransport`] and receives
//! [`OutputEvent`]s through a callback, so all of this is tested without a host. Nothing here
//! allocates after [`Player::new`]; the model step inside the generator allocates from the
//! model's real-time memory, never from the system.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use continuo_engine::generator::{voices_with, Generator, GeneratorSettings};
use continuo_engine::midi::Role;
use continuo_engine::model::Model;
use continuo_engine::sampler::Tuning;
use continuo_engine::vocab::{NoteEventKind, STEPS_PER_BEAT};

use crate::event_queue::{EventQueue, LOOKAHEAD_STEPS};
use crate::listening::{InputNote, ListenSettings, Listener, Mode};
use crate::monitor::{BlockReport, Monitor, NoteSource};
use crate::note_output::NoteOutput;
pub use crate::note_output::OutputEvent;
use crate::step_budget::{blocks_for_a_chord, StepBudget};
use crate::takes::{FillAudition, LoopStart, Opening, PhraseLoop};
use crate::transport::{bar_line_from, bar_start, beats_per_bar, next_beat, BlockOnGrid, Decision, Follower};
pub use crate::transport::{HostTransport, TransportState, DEFAULT_BPM};

/// Everything the musician sets that the player plays by: one value, built from the
/// parameters, taken by [`Player::new`] and by [`Player::apply`] every block.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayerSettings {
    /// The sampler's controls and the longest note.
    pub generator: GeneratorSettings,
    /// Multiplies every velocity (then clamped to 1..=127).
    pub velocity_scale: f32,
    pub listen: ListenSettings,
    /// Bars of the phrase loop, 0 when off.
    pub loop_bars: u32,
}

impl Default for PlayerSettings {
    fn default() -> Self {
        PlayerSettings {
            generator: GeneratorSettings::DEFAULT,
            velocity_scale: 1.0,
            listen: ListenSettings::default(),
            loop_bars: 0,
        }
    }
}

pub struct Player {
    generator: Generator,
    /// The musician's generator settings as last applied; `voices` is their polyphony with this
    /// model ("as trained" resolved), which the generator is given.
    settings: GeneratorSettings,
    voices: usize,
    transport: Follower,
    /// Host beat at which the generator's step 0 sounds: always a whole beat.
    origin_beats: f64,
    queue: EventQueue,
    output: NoteOutput,
    /// The music is at its start (nothing played since the last restart).
    fresh: bool,
    opening: Opening,
    listener: Listener,
    phrase: PhraseLoop,
    /// A drum loop's last bar, drawn until it is a fill.
    fill: FillAudition,
    /// The grid step the block being played ends on (0 until the music plays): what has been
    /// placed, and can no longer be drawn again.
    due_until: u64,
    budget: StepBudget,
    /// Instances playing in the host, this one included: their caps share the block.
    instances: usize,
}

impl Player {
    /// A player for `model` playing by `settings`, reporting to `monitor`; successive players (a
    /// model switch) share one, so the counters, the performance clock and the note log run on
    /// across the switch. What a token costs here is measured now.
    pub fn new(model: Model, settings: PlayerSettings, monitor: Arc<Monitor>) -> Result<Player, String> {
        let voices = voices_with(model.info(), settings.generator.sampler.max_polyphony);
        let mut resolved = settings.generator;
        resolved.sampler.max_polyphony = voices;
        let mut generator = Generator::new(model, resolved).map_err(|e| e.to_string())?;
        let budget = StepBudget::measure(&mut generator)?;
        monitor.meters.token_cost_nanos.store(budget.token_cost().as_nanos() as u64, Ordering::Relaxed);
        let mut player = Player {
            opening: Opening::new(&generator),
            listener: Listener::new(&generator),
            fill: FillAudition::new(&generator),
            generator,
            settings: settings.generator,
            voices,
            transport: Follower::default(),
            origin_beats: 0.0,
            queue: EventQueue::new(),
            output: NoteOutput::new(monitor, 48_000.0 * 60.0 / DEFAULT_BPM),
            fresh: true,
            phrase: PhraseLoop::new(),
            due_until: 0,
            budget,
            instances: 1,
        };
        player.apply(&settings, &mut |_| {});
        Ok(player)
    }

    pub fn monitor(&self) -> &Arc<Monitor> {
        self.output.monitor()
    }

    /// Generates the first beat now, so that a player built off the audio thread starts on time
    /// without running a beat's worth of steps in its first blocks: a host that starts playing
    /// in its first block (an offline bounce) would otherwise lose the notes of the first chord
    /// that the step cap leaves for the next block. Free play and a duet only: a call and
    /// response listens first, and a loop records its take when it starts (or while stopped).
    pub fn prime(&mut self) {
        if self.starts_by_itself() {
            self.generate_ahead(LOOKAHEAD_STEPS, usize::MAX);
        }
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
        self.budget.token_cost()
    }

    /// Plans the step cap for `cost` per token instead of the cost measured when the player was
    /// made: for a test or a bench that must run at a given cap on any machine.
    pub fn assume_token_cost(&mut self, cost: Duration) {
        self.budget = StepBudget::assuming(cost);
        self.monitor().meters.token_cost_nanos.store(cost.as_nanos() as u64, Ordering::Relaxed);
    }

    /// `instances` play in the host, this one included (see [`crate::step_budget::BAND_BUDGET`]).
    pub fn play_among(&mut self, instances: usize) {
        self.instances = instances.max(1);
    }

    pub fn listen_settings(&self) -> ListenSettings {
        self.listener.settings()
    }

    /// Whether its model follows the harmony held at the input.
    pub fn follows_harmony(&self) -> bool {
        self.listener.follows_harmony()
    }

    /// Takes the musician's settings, as they stand this block: the velocity, then the
    /// sampler's controls, then the mode, then the loop (see each step for what a change does).
    pub fn apply(&mut self, settings: &PlayerSettings, emit: &mut impl FnMut(OutputEvent)) {
        self.output.set_velocity_scale(settings.velocity_scale);
        self.set_generator_settings(settings.generator, emit);
        if self.listener.set_settings(settings.listen) {
            // A new mode starts the music again on the next beat, from silence and an empty
            // memory.
            self.opening.forget();
            self.restart_from_the_top(emit);
        }
        if self.phrase.set_bars(settings.loop_bars) {
            self.restart_from_the_top(emit);
        }
    }

    /// The sampler's controls changed. Sounding notes that the new range or scale would not
    /// allow end now, and events generated under the old settings are dropped. While a phrase
    /// loops, a new seed, range or scale makes a new take, from the next bar.
    fn set_generator_settings(&mut self, settings: GeneratorSettings, emit: &mut impl FnMut(OutputEvent)) {
        if settings == self.settings {
            return;
        }
        let (old, new) = (&self.settings.sampler, &settings.sampler);
        let voices = voices_with(self.generator.model().info(), new.max_polyphony);
        let musical_change = new.lowest != old.lowest
            || new.highest != old.highest
            || new.scale_lock != old.scale_lock
            || voices < self.voices;
        let new_seed = new.seed != old.seed;
        self.settings = settings;
        self.voices = voices;
        self.generator.set_settings(self.take_settings());
        // The music from here is not what a restart with these settings would play.
        self.opening.forget();
        if musical_change {
            self.output.all_notes_off(0, emit);
            self.generator.release_all(|_| {});
            self.queue.clear();
            self.listener.forget_past();
        }
        if self.looping() && (musical_change || new_seed) {
            self.phrase.want_new_take();
            self.restart_from_the_top(emit);
        }
    }

    /// The generator's settings for the present take: the musician's, with the voices resolved
    /// and the seed moved on by the take.
    fn take_settings(&self) -> GeneratorSettings {
        let mut settings = self.settings;
        settings.sampler.max_polyphony = self.voices;
        settings.sampler.seed = self.phrase.seed_for(settings.sampler.seed);
        settings
    }

    /// The settings a loop's last bar is drawn again by, looking for a fill: the take's, with the
    /// model's whole distribution (temperature, rhythm temperature and top-p at 1). A fill is
    /// what the model plays less often than its groove, and a safer tuning cuts it: the Drums'
    /// last bars, drawn again at its tuning, ended 8 of 12 four-bar takes on a fill; at its
    /// whole distribution, 11 of 12.
    fn fill_settings(&self) -> GeneratorSettings {
        let mut settings = self.take_settings();
        let tuning = self.generator.sampler_settings().tuning.unwrap_or(Tuning::UNTUNED);
        settings.sampler.tuning =
            Some(Tuning { temperature: 1.0, rhythm_temperature: 1.0, top_p: 1.0, ..tuning });
        settings
    }

    /// Another take: the music starts again with the next take's seed, on the next bar when a
    /// phrase loops, else on the next beat.
    pub fn new_phrase(&mut self, emit: &mut impl FnMut(OutputEvent)) {
        self.phrase.next_take();
        self.generator.set_settings(self.take_settings());
        self.opening.forget();
        self.restart_from_the_top(emit);
    }

    /// A phrase loops (in Free mode only: a loop that listens would not repeat; nor would one
    /// that follows the harmony, which plays on under the chords as they come).
    fn looping(&self) -> bool {
        self.listener.mode() == Mode::Free && self.phrase.bars() > 0 && !self.listener.follows_harmony()
    }

    /// The remembered opening serves only free play: a loop replays its take anyway, and what
    /// the model hears (the musician, or the harmony) changes what it plays.
    fn uses_opening(&self) -> bool {
        self.listener.mode() == Mode::Free && self.phrase.bars() == 0 && !self.listener.follows_harmony()
    }

    /// The music begins by itself when play starts, so its first beat can be generated before:
    /// free play without a loop, a duet, and a model that follows the harmony in any mode.
    fn starts_by_itself(&self) -> bool {
        self.uses_opening() || self.listener.mode() == Mode::Duet || self.listener.follows_harmony()
    }

    /// The music's first step is a downbeat: a groove's (its songs were learned from their first
    /// bar line), and a model's that hears the meter (it hears where the clock stands in the bar
    /// from its first step). It starts on the host's bar line.
    fn starts_on_a_bar_line(&self) -> bool {
        let info = self.generator.model().info();
        info.role == Role::Drums || info.hears_the_meter()
    }

    /// Ends every sounding note at `offset`, lowest first.
    pub fn all_notes_off(&mut self, offset: u32, emit: &mut impl FnMut(OutputEvent)) {
        self.output.all_notes_off(offset, emit);
    }

    /// Back to the start of the music: notes off, generator state and clock reset, queue empty.
    /// The transport is not touched: where the music starts again is its decision.
    pub fn restart(&mut self, emit: &mut impl FnMut(OutputEvent)) {
        self.output.all_notes_off(0, emit);
        self.reset_music();
    }

    fn reset_music(&mut self) {
        self.generator.release_all(|_| {});
        self.fresh = true;
        self.listener.reset();
        self.phrase.restart();
        if self.phrase.is_recording() && self.fill.restart() {
            self.generator.set_settings(self.take_settings());
        }
        self.due_until = 0;
        if !(self.uses_opening() && self.opening.replay(&mut self.generator, &mut self.queue)) {
            // A reset only reads the start token; an error there would have failed at load.
            let _ = self.generator.reset();
            self.queue.clear();
            self.opening.remember_anew();
        }
    }

    /// The host resets the plugin, or deactivates it and takes no events until it activates it
    /// again: the music goes back to its start and forgets the host's position, and the notes
    /// the host heard sound end at the start of the next block processed.
    pub fn reset(&mut self) {
        self.output.release_at_next_block();
        self.reset_music();
        self.transport.reset();
    }

    /// This player replaces `old` outside a block (a model loaded at activation): the notes the
    /// host heard from `old` end at the start of this player's first block.
    pub fn take_over_notes(&mut self, old: &Player) {
        self.output.take_over(&old.output);
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
        self.output.begin_block(host.samples_per_beat(), emit);
        let cap = self.budget.cap(host.samples, host.sample_rate, self.instances);
        let decision = self.follow_transport(&host, cap, emit);
        let playing = self.transport.state() == TransportState::Playing;
        let clock = self.transport.clock().copied();
        let position = clock.map_or(0.0, |c| c.beats());
        match clock {
            Some(clock) if playing => {
                let block = BlockOnGrid {
                    clock,
                    origin_beats: self.origin_beats,
                    samples_per_beat: host.samples_per_beat(),
                    samples: host.samples,
                    time_signature: host.time_signature(),
                };
                self.play_block(&block, input, cap, emit);
            }
            _ => self.prepare_while_stopped(&host, cap),
        }
        if !playing {
            for note in input {
                self.output.log(note.offset, note.pitch, note.velocity, NoteSource::Input);
            }
            if self.listener.hold(input, &mut self.generator) && self.fresh {
                // The music has not begun: it begins in the harmony held, from its start.
                let _ = self.generator.reset();
                self.queue.clear();
                self.listener.forget_past();
            }
        }
        self.transport.end_block(host.samples);
        self.report_block(&host, decision, position, started, steps_before);
    }

    /// The transport's decision for this block, carried out on the music.
    fn follow_transport(
        &mut self,
        host: &HostTransport,
        cap: usize,
        emit: &mut impl FnMut(OutputEvent),
    ) -> Decision {
        let decision = self.transport.follow(host);
        match decision {
            Decision::Continue | Decision::Resume => {}
            Decision::Resync => {
                self.monitor().meters.resyncs.fetch_add(1, Ordering::Relaxed);
            }
            // Silence now; the music keeps its state for a resume.
            Decision::Pause => self.output.all_notes_off(0, emit),
            Decision::Restart { origin } => {
                self.monitor().meters.restarts.fetch_add(1, Ordering::Relaxed);
                if !self.fresh {
                    self.restart(emit);
                }
                self.origin_beats = origin;
                if self.looping() {
                    self.start_loop(host, cap);
                } else if self.starts_by_itself() {
                    self.origin_beats = self.first_beat_in_time(origin, host, cap);
                    if self.starts_on_a_bar_line() {
                        let position = self.transport.clock().map_or(origin, |c| c.beats());
                        let signature = host.time_signature();
                        self.origin_beats =
                            bar_line_from(self.origin_beats, position, signature, host.bar_start);
                    }
                }
            }
            Decision::Rewind => self.restart(emit),
        }
        decision
    }

    /// Where music that starts by itself can begin on time: on `beat`, unless the blocks up to
    /// where the music generated so far runs out cannot draw a chord at their cap; then on the
    /// first beat where they can (at a 32-sample buffer a start on the beat lost the downbeat).
    /// The block an event falls in generates before it places, so the chord is drawn by the
    /// start of its last block.
    fn first_beat_in_time(&self, beat: f64, host: &HostTransport, cap: usize) -> f64 {
        let position = self.transport.clock().map_or(beat, |c| c.beats());
        let blocks = blocks_for_a_chord(self.voices, cap);
        let drawn_by = position + ((blocks - 1) * host.samples) as f64 / host.samples_per_beat();
        let generated = self.generator.now() as f64 / STEPS_PER_BEAT as f64;
        beat.max(next_beat(drawn_by - generated))
    }

    /// A block while playing: hear the musician, generate up to a beat past the block within
    /// the cap, place what falls in the block, end an answer that is over.
    fn play_block(
        &mut self,
        block: &BlockOnGrid,
        input: &[InputNote],
        cap: usize,
        emit: &mut impl FnMut(OutputEvent),
    ) {
        self.fresh = false;
        let longest_note = (self.settings.max_note_beats * STEPS_PER_BEAT as f64).round() as u64;
        let heard = self.listener.hear(
            input,
            block,
            (cap, self.voices, longest_note),
            &mut self.generator,
            &mut self.queue,
            &mut self.output,
            emit,
        );
        if heard.notes > 0 {
            // What the model heard changes what it plays: not the opening a restart would play.
            self.opening.forget();
        }
        let end_steps = block.beats_from_origin(block.samples as f64) * STEPS_PER_BEAT as f64;
        self.due_until = end_steps.max(0.0).ceil() as u64;
        // A loop's last bar drawn until it is a fill is drawn two bars ahead: a bar's time to
        // draw it again, at any cap.
        let mut target = self.due_until + LOOKAHEAD_STEPS + 2 * self.fill.bar_steps().unwrap_or(0);
        if let Some(answer_end) = self.listener.answer_ends_at() {
            target = target.min(answer_end);
        }
        // The model could not step: no note may hang on a note-off it cannot draw.
        if self.listener.lets_the_model_play()
            && !self.generate_ahead(target, cap.saturating_sub(heard.steps))
        {
            self.output.all_notes_off(0, emit);
        }
        self.play_due(block, emit);
        self.listener.end_answer_if_due(block, &mut self.generator, &mut self.queue, &mut self.output, emit);
    }

    /// A block while stopped at the start of music that begins by itself (free, or a duet):
    /// fill the lookahead now, so play starts on time. Before a loop that records a new take,
    /// begin the take now, likewise.
    fn prepare_while_stopped(&mut self, host: &HostTransport, cap: usize) {
        if !self.fresh {
            return;
        }
        if self.starts_by_itself() {
            self.generate_ahead(LOOKAHEAD_STEPS, cap);
        } else if self.looping() {
            let length = self.phrase.length_in(beats_per_bar(host.time_signature()));
            if self.phrase.begins_a_take_while_stopped(length) {
                self.record_new_take(length);
                self.phrase.begin_while_stopped();
            }
            if self.phrase.is_begun_while_stopped() {
                self.generate_ahead(LOOKAHEAD_STEPS, cap);
            }
        }
    }

    /// Writes what the block did to the meters: the bar being played on the performance clock
    /// (while playing, and on the block that pauses: the bar the music stopped in), and the
    /// loop's repetition.
    fn report_block(
        &self,
        host: &HostTransport,
        decision: Decision,
        position: f64,
        started: Instant,
        steps_before: u64,
    ) {
        let playing = self.transport.state() == TransportState::Playing;
        let shown = playing || decision == Decision::Pause;
        let block_clock = self.output.block_clock();
        let bar_clock = shown.then(|| {
            let bar_start = bar_start(position, host.time_signature(), host.bar_start);
            block_clock - (position - bar_start)
        });
        let loop_region = (self.looping() && shown).then(|| {
            let now_steps = ((position - self.origin_beats) * STEPS_PER_BEAT as f64).max(0.0) as u64;
            let (_, repetition_start) = self.phrase.repetition_at(now_steps);
            let start_beats = self.origin_beats + repetition_start as f64 / STEPS_PER_BEAT as f64;
            (block_clock - (position - start_beats), self.phrase.length() as f64 / STEPS_PER_BEAT as f64)
        });
        let block_beats = host.samples as f64 / host.samples_per_beat();
        self.monitor().meters.record_block(&BlockReport {
            state: self.transport.state(),
            tempo: host.tempo(),
            position: host.position().unwrap_or(position),
            time_signature: host.time_signature(),
            samples: host.samples,
            sample_rate: host.sample_rate,
            steps: self.generator.steps_run() - steps_before,
            nanos: started.elapsed().as_nanos() as u64,
            clock: block_clock + if playing { block_beats } else { 0.0 },
            bar_clock,
            loop_region,
            loop_fill: loop_region.is_some() && self.fill.outcome().is_some_and(|(fill, _)| fill),
            listening: self.listener.listens_for_a_call(),
            harmony: self.listener.follows_harmony().then(|| self.listener.harmony_held()),
        });
    }

    /// A loop starts on a bar line of the host: the first at or after `self.origin_beats` (at
    /// which a take recorded from there can begin on time, see [`Player::first_beat_in_time`]).
    fn start_loop(&mut self, host: &HostTransport, cap: usize) {
        let signature = host.time_signature();
        let position = self.transport.clock().map_or(self.origin_beats, |c| c.beats());
        let length = self.phrase.length_in(beats_per_bar(signature));
        let start = self.phrase.start(length);
        let first_beat = match start {
            LoopStart::RecordsANewTake => {
                self.record_new_take(length);
                self.first_beat_in_time(self.origin_beats, host, cap)
            }
            LoopStart::PlaysTheTakeBegun => self.first_beat_in_time(self.origin_beats, host, cap),
            // Replayed, not generated: on time at any block size.
            LoopStart::ReplaysTheTake => self.origin_beats,
        };
        self.origin_beats = bar_line_from(first_beat, position, signature, host.bar_start);
        if start == LoopStart::ReplaysTheTake {
            self.queue.clear();
        }
    }

    fn record_new_take(&mut self, length: u64) {
        self.reset_music();
        self.phrase.record_new(length);
        let drums = self.generator.model().info().role == Role::Drums;
        self.fill.plan(drums, self.phrase.bars(), length);
    }

    /// How the phrase loop's last take ended: on a fill or not, after how many drawings of its
    /// last bar (a drum model's loop of four bars or more; None for any other).
    pub fn loop_fill(&self) -> Option<(bool, u64)> {
        self.fill.outcome()
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
        let keeps_past = self.listener.keeps_past();
        let mut drawn = 0;
        while self.generator.now() < target_steps && drawn < cap && self.queue.room() >= 2 {
            if !self.generator.can_step() {
                self.monitor().meters.refused_steps.fetch_add(1, Ordering::Relaxed);
                return false;
            }
            if keeps_past {
                self.listener.before_token(&self.generator);
            }
            if looping {
                self.fill.before_token(&self.generator, self.phrase.take_events().len());
            }
            let remembering = self.opening.is_remembering() && self.uses_opening();
            let (queue, phrase, opening, fill) =
                (&mut self.queue, &mut self.phrase, &mut self.opening, &mut self.fill);
            let result = self.generator.next(|event| {
                if looping && !phrase.record(event) {
                    return;
                }
                queue.push(event);
                fill.queued();
                if remembering {
                    opening.record(event);
                }
            });
            let Ok(token) = result else { break };
            if keeps_past {
                self.listener.after_token(token);
            }
            drawn += 1;
            if remembering {
                self.opening.complete_at(&self.generator, LOOKAHEAD_STEPS);
            }
            if looping && self.generator.now() >= self.phrase.length() {
                if self.fill.draws_again(self.phrase.take_events(), self.due_until) {
                    self.fill.go_back(&mut self.generator, &mut self.queue, &mut self.phrase);
                    self.generator.set_settings(self.fill_settings());
                    continue;
                }
                if self.fill.outcome().is_some_and(|(_, draws)| draws > 1) {
                    self.generator.set_settings(self.take_settings());
                }
                let queue = &mut self.queue;
                self.phrase.finish(|event| queue.push(event));
                self.replay_loop(target_steps);
                break;
            }
        }
        true
    }

    /// Queues the loop's events up to `target_steps`.
    fn replay_loop(&mut self, target_steps: u64) {
        while self.queue.room() > 0 {
            let Some(event) = self.phrase.next_before(target_steps) else { break };
            self.queue.push(event);
        }
    }

    /// Emits the queued events that fall inside this block, at the samples the clock puts them.
    /// An event belongs to the block holding its nearest sample; the events of an answer of a
    /// set length stop at its end.
    fn play_due(&mut self, block: &BlockOnGrid, emit: &mut impl FnMut(OutputEvent)) {
        let block_end = block.samples as f64 - 0.5;
        let answer_end = self.listener.answer_ends_at();
        while let Some(event) = self.queue.front() {
            if answer_end.is_some_and(|end| event.step >= end) {
                break;
            }
            let exact = block.samples_until_step(event.step);
            if exact >= block_end {
                break;
            }
            self.queue.pop_front();
            let offset = exact.round().max(0.0) as u32;
            match event.kind {
                NoteEventKind::On { .. } if exact < -0.5 => {
                    // Too late to be on the grid: skipped, and so is its note-off (never sounded).
                    self.monitor().meters.late_events.fetch_add(1, Ordering::Relaxed);
                }
                NoteEventKind::On { pitch, velocity } => self.output.note_on(offset, pitch, velocity, emit),
                NoteEventKind::Off { pitch } => self.output.note_off(offset, pitch, emit),
            }
        }
    }

    /// Notes sounding at the output now.
    pub fn sounding_count(&self) -> usize {
        self.output.sounding_count()
    }
}
