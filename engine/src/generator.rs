//! The generator: model + sampler + decoder, one token at a time, as timed note events.
//!
//! Owns the running music: the LSTM state, the next-token logits, the clock in grid steps, the
//! set of sounding notes (through the [`Decoder`]), the rule that no note is held longer than
//! a limit, and, for a model that follows the harmony, the harmony it hears and the next change
//! of it, where time stops for the model to hear it (as it did in training). The trainer's
//! `generate` command and the plugin both drive this type, so what the CLI
//! writes is what the plugin plays with the same model, settings and seed.
//!
//! After [`Generator::new`], nothing here allocates: only the model step inside tract does, from
//! the model's real-time memory (see [`crate::realtime_memory`]), never from the system allocator.

use crate::harmony::{next_beat, Harmony};
use crate::midi::{Role, GM_KIT};
use crate::model::{LstmState, Model, ModelError, ModelInfo};
use crate::music::ScaleLock;
use crate::sampler::{Rng, Sampler, SamplerSettings, AS_TRAINED, VOICES_UNKNOWN};
use crate::vocab::{
    Decoder, NoteEvent, NoteEventKind, Token, DEFAULT_VELOCITY_BIN, MAX_SHIFT_STEPS, STEPS_PER_BEAT,
};

/// The token a model reads before anything else when its file does not name one: "play at the
/// default velocity". Songs in training begin with a VELOCITY token too, so this is a natural
/// first word; a model exported since its training songs' own first word was recorded reads that
/// instead ([`start_token`]).
pub const START_TOKEN: Token = Token::Velocity(DEFAULT_VELOCITY_BIN);

/// The first token `info`'s model reads: the one its training songs start with most often
/// (`TrainingSummary::start_token`), else [`START_TOKEN`]. The chorales' files all play at
/// velocity 90, so their songs start with VELOCITY 22 and a model of them had never read
/// [`START_TOKEN`]'s 20: a model that follows the harmony opened two pieces in four with 15 to
/// 22 beats of silence after it, and none after its own first word.
pub fn start_token(info: &ModelInfo) -> Token {
    info.training.start_token.and_then(|id| Token::from_id(id as u32)).unwrap_or(START_TOKEN)
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorSettings {
    pub sampler: SamplerSettings,
    /// A note sounding this many beats is ended by the generator (the model also reads the
    /// NOTE_OFF), so a model that forgets a note never leaves it hanging.
    pub max_note_beats: f64,
}

impl GeneratorSettings {
    /// The musician's defaults (see [`SamplerSettings::DEFAULT`]); no note longer than two bars
    /// of 4/4.
    pub const DEFAULT: GeneratorSettings =
        GeneratorSettings { sampler: SamplerSettings::DEFAULT, max_note_beats: 8.0 };
}

impl Default for GeneratorSettings {
    fn default() -> Self {
        GeneratorSettings::DEFAULT
    }
}

/// The voices a Polyphony setting means with a model: "as trained" ([`AS_TRAINED`]) is the
/// model's tuned count, else its training music's, or [`VOICES_UNKNOWN`] for a model that does
/// not say.
pub fn voices_with(info: &ModelInfo, max_polyphony: usize) -> usize {
    match max_polyphony {
        AS_TRAINED => info
            .tuning
            .and_then(|t| t.voices)
            .or(info.training.voices)
            .map_or(VOICES_UNKNOWN, |v| v.max(1) as usize),
        voices => voices,
    }
}

pub struct Generator {
    model: Model,
    state: LstmState,
    logits: Vec<f32>,
    sampler: Sampler,
    decoder: Decoder,
    max_note_steps: u64,
    /// Model steps run since the generator was made, whatever came back: for meters.
    steps_run: u64,
    /// No note starts before this grid step (see [`Generator::rest_until`]).
    rest_until: u64,
    /// The harmony the model hears now, and a change of it to come (step, harmony): see
    /// [`Generator::change_harmony_at`]. Always silent for a model that follows none.
    harmony: Harmony,
    harmony_change: Option<(u64, Harmony)>,
}

/// Where a generator stood, to go back there without running the model again: the LSTM state,
/// the next-token logits, the random sequence, the clock and the sounding notes. Taking one with
/// [`Generator::snapshot_into`] and going back with [`Generator::restore`] allocate nothing.
#[derive(Debug, Clone)]
pub struct GeneratorSnapshot {
    state: LstmState,
    logits: Vec<f32>,
    rng: Rng,
    decoder: Decoder,
    harmony: Harmony,
    harmony_change: Option<(u64, Harmony)>,
}

impl GeneratorSnapshot {
    /// The clock where the snapshot was taken, in grid steps.
    pub fn now(&self) -> u64 {
        self.decoder.now()
    }
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("model", &self.model.info().name)
            .field("now", &self.decoder.now())
            .finish_non_exhaustive()
    }
}

impl Generator {
    /// Takes the model and reads the start token, ready to play from step 0.
    pub fn new(model: Model, settings: GeneratorSettings) -> Result<Generator, ModelError> {
        let vocab = model.info().shape.vocab;
        let decoder = match model.info().role {
            Role::Melodic => Decoder::new(),
            Role::Drums => Decoder::for_hits(),
        };
        let mut generator = Generator {
            state: model.initial_state(),
            model,
            logits: vec![0.0; vocab],
            sampler: Sampler::new(settings.sampler),
            decoder,
            max_note_steps: 1,
            steps_run: 0,
            rest_until: 0,
            harmony: Harmony::SILENT,
            harmony_change: None,
        };
        generator.set_settings(settings);
        generator.reset()?;
        Ok(generator)
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The clock, in grid steps since the start.
    pub fn now(&self) -> u64 {
        self.decoder.now()
    }

    /// Whether the model has room for its next step (see [`Model::has_room_for_step`]). A
    /// real-time caller asks before [`Generator::next`]: a refused step would make an error
    /// message, and a message is an allocation.
    pub fn can_step(&self) -> bool {
        self.model.has_room_for_step()
    }

    /// Model steps run since the generator was made (resets and restores do not go back).
    pub fn steps_run(&self) -> u64 {
        self.steps_run
    }

    /// Where the generator stands now (allocates: take it off the audio thread, then keep it
    /// current with [`Generator::snapshot_into`]).
    pub fn snapshot(&self) -> GeneratorSnapshot {
        GeneratorSnapshot {
            state: self.state.clone(),
            logits: self.logits.clone(),
            rng: self.sampler.rng().clone(),
            decoder: self.decoder.clone(),
            harmony: self.harmony,
            harmony_change: self.harmony_change,
        }
    }

    /// Overwrites `snapshot` with where the generator stands now, allocating nothing.
    pub fn snapshot_into(&self, snapshot: &mut GeneratorSnapshot) {
        snapshot.state = self.state.clone();
        snapshot.logits.copy_from_slice(&self.logits);
        snapshot.rng = self.sampler.rng().clone();
        snapshot.decoder = self.decoder.clone();
        snapshot.harmony = self.harmony;
        snapshot.harmony_change = self.harmony_change;
    }

    /// Goes back to where `snapshot` was taken: what follows is what followed then, under the
    /// same settings. Allocates nothing.
    pub fn restore(&mut self, snapshot: &GeneratorSnapshot) {
        self.state = snapshot.state.clone();
        self.logits.copy_from_slice(&snapshot.logits);
        self.sampler.set_rng(&snapshot.rng);
        self.decoder = snapshot.decoder.clone();
        self.harmony = snapshot.harmony;
        self.harmony_change = snapshot.harmony_change;
    }

    /// From here on, the `k`-th other drawing: the same model state and settings, another
    /// random sequence, the same one for the same `k` (a phrase loop draws its last bar again
    /// until it is a fill, after going back to its start with [`Generator::restore`]).
    pub fn draw_anew(&mut self, k: u64) {
        let mut rng = self.sampler.rng().clone();
        let seed = rng.next_u64() ^ k.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.sampler.set_rng(&Rng::new(seed));
    }

    /// Whether the model follows the harmony (see [`crate::harmony`]).
    pub fn follows_harmony(&self) -> bool {
        self.model.follows_harmony()
    }

    /// The harmony the model hears now.
    pub fn harmony(&self) -> Harmony {
        self.harmony
    }

    /// The harmony from grid step `step` on is `harmony`: from the next token read when `step`
    /// has come (or passed), else at `step`, where the time the model lets pass stops first, so
    /// it hears the change on the step it happens, as in training. Replaces any change to come.
    /// Nothing changes for a model that follows no harmony.
    pub fn change_harmony_at(&mut self, step: u64, harmony: Harmony) {
        if !self.follows_harmony() {
            return;
        }
        if step <= self.decoder.now() {
            (self.harmony, self.harmony_change) = (harmony, None);
        } else if harmony != self.harmony || self.harmony_change.is_some() {
            self.harmony_change = Some((step, harmony));
        }
    }

    /// The change of harmony to come, if one is known: (step, harmony).
    pub fn next_harmony_change(&self) -> Option<(u64, Harmony)> {
        self.harmony_change
    }

    /// The notes sounding now and what is known of them.
    pub fn voices(&self) -> &Decoder {
        &self.decoder
    }

    /// Changes the musician's controls; "as trained" voices become the model's own, and so does
    /// the tuning when the settings name none. Notes already sounding keep sounding: a caller
    /// that narrows the range or the scale should [`Generator::release_all`] first.
    pub fn set_settings(&mut self, settings: GeneratorSettings) {
        let mut sampler = settings.sampler;
        sampler.max_polyphony = self.voices_for(sampler.max_polyphony);
        sampler.tuning = Some(sampler.tuning.unwrap_or(self.model.info().played_tuning()));
        if self.model.info().role == Role::Drums {
            // A kit has no key and no range to choose: its pieces are the General MIDI map.
            (sampler.lowest, sampler.highest) = (*GM_KIT.start(), *GM_KIT.end());
            sampler.scale_lock = ScaleLock::CHROMATIC;
        }
        self.sampler.set_settings(sampler);
        self.max_note_steps = ((settings.max_note_beats * STEPS_PER_BEAT as f64).round() as u64).max(1);
    }

    /// The voices a Polyphony setting means with this model: "as trained" is the model's own
    /// count (or [`VOICES_UNKNOWN`] for a model that does not say), anything else itself.
    pub fn voices_for(&self, max_polyphony: usize) -> usize {
        voices_with(self.model.info(), max_polyphony)
    }

    /// The sampler's settings in force, "as trained" voices and the tuning resolved.
    pub fn sampler_settings(&self) -> &SamplerSettings {
        self.sampler.settings()
    }

    /// Back to the start: zero state, clock at 0, nothing sounding, the random sequence from its
    /// seed, and the start token read. Emits nothing: release sounding notes first.
    pub fn reset(&mut self) -> Result<(), ModelError> {
        // The old state's tensors go back to the model's memory, not to the system.
        self.state = self.model.initial_state();
        self.decoder.reset();
        self.sampler.reseed();
        self.rest_until = 0;
        // The harmony held stays (it is the song's); a change planned on the old clock does not.
        self.harmony_change = None;
        self.read(start_token(self.model.info()), |_| {})
    }

    /// Forgets what the model heard and played, as at the start, but keeps the clock and the
    /// notes sounding: what it reads next is the beginning of its music (a musician's new
    /// phrase, heard afresh). Reads the start token.
    pub fn forget(&mut self) -> Result<(), ModelError> {
        self.state = self.model.initial_state();
        self.feed(start_token(self.model.info()))
    }

    /// Conditions the model on a token from outside (a primer, or what a player plays): the
    /// model reads it, a TIME_SHIFT moves the clock and a VELOCITY sets the velocity the next
    /// notes play at, but its notes are not ours to sound or to end, so they emit nothing.
    pub fn feed(&mut self, token: Token) -> Result<(), ModelError> {
        if self.decoder.plays_hits() && matches!(token, Token::NoteOff(_)) {
            return Ok(()); // a drum model never reads an end: its hits have none
        }
        if matches!(token, Token::TimeShift(_) | Token::Velocity(_)) {
            self.decoder.push(token, |_| {});
        }
        self.run_model(token)
    }

    /// Lets time pass up to grid step `step` without playing: the model reads the TIME_SHIFTs
    /// of the first `heard` steps of it (silence is music too), and the clock jumps over the rest
    /// unheard, so a long rest costs at most a few model steps and reads to the model as
    /// `heard` steps of silence. A clock already at or past `step` stays. Returns the model
    /// steps run.
    pub fn feed_time_until(&mut self, step: u64, heard: u64) -> Result<usize, ModelError> {
        let heard_until = step.min(self.decoder.now() + heard);
        let mut steps = 0;
        while self.decoder.now() < heard_until {
            let now = self.decoder.now();
            let until =
                if self.follows_harmony() { self.harmony_stop(now).min(heard_until) } else { heard_until };
            let shift = (until - now).min(MAX_SHIFT_STEPS as u64) as u8;
            self.feed(Token::TimeShift(shift))?;
            steps += 1;
        }
        while self.decoder.now() < step {
            let shift = (step - self.decoder.now()).min(MAX_SHIFT_STEPS as u64) as u8;
            self.decoder.push(Token::TimeShift(shift), |_| {});
        }
        self.take_harmony_change();
        Ok(steps)
    }

    /// The generator plays nothing new before grid step `step` (notes due to end still end
    /// first): a token the model draws that would play sooner becomes a TIME_SHIFT to there,
    /// one that lets time pass beyond it stands. A caller that has just made the model hear
    /// something uses it so the model's response is not due in a block already planned, and
    /// the TIME_SHIFT is drawn with the rest of the music, within its step budget.
    pub fn rest_until(&mut self, step: u64) {
        self.rest_until = step;
    }

    /// The next tokens drawn start a note before any time passes (an answer that begins when it
    /// is due). See [`Sampler::start_with_a_note`].
    pub fn start_with_a_note(&mut self) {
        self.sampler.start_with_a_note();
    }

    /// Draws the next token, sounds it through `emit`, and lets the model read it. Returns the
    /// token played (which may be a forced NOTE_OFF or a shortened TIME_SHIFT, see
    /// [`GeneratorSettings::max_note_beats`]).
    pub fn next(&mut self, emit: impl FnMut(NoteEvent)) -> Result<Token, ModelError> {
        let now = self.decoder.now();
        let deadline = self.earliest_deadline();
        let token = match deadline {
            Some((pitch, due)) if due <= now => Token::NoteOff(pitch),
            _ => {
                let mut token = self.sampler.sample(&self.logits, &self.decoder);
                // Resting, the model still chooses when it plays next: a TIME_SHIFT past the
                // rest stands, so a note meant for the next beat comes on that beat; a note or a
                // TIME_SHIFT sooner waits for the rest's end. (Forcing the whole rest and then
                // drawing the model's own TIME_SHIFT would put every note a rest late, and a
                // musician playing every half beat would keep the model silent.)
                let rests_past = matches!(token, Token::TimeShift(k) if now + k as u64 >= self.rest_until);
                if self.rest_until > now && !rests_past {
                    token = Token::TimeShift((self.rest_until - now).min(MAX_SHIFT_STEPS as u64) as u8);
                }
                let token = match (token, deadline) {
                    // Stop the clock at the deadline; the NOTE_OFF comes next.
                    (Token::TimeShift(k), Some((_, due))) if due < now + k as u64 => {
                        Token::TimeShift((due - now) as u8)
                    }
                    _ => token,
                };
                // A model that follows the harmony reads time passing at every beat and at a
                // change of harmony, as it learned to (see `harmony::encode_against`).
                match token {
                    Token::TimeShift(k) if self.follows_harmony() => {
                        Token::TimeShift((self.harmony_stop(now).min(now + k as u64) - now) as u8)
                    }
                    _ => token,
                }
            }
        };
        self.read(token, emit)?;
        Ok(token)
    }

    /// Generates until the clock reaches `step` or `max_tokens` tokens were drawn, whichever
    /// comes first. Returns how many tokens were drawn. The clock may pass `step` by up to one
    /// TIME_SHIFT.
    pub fn generate_until(
        &mut self,
        step: u64,
        max_tokens: usize,
        mut emit: impl FnMut(NoteEvent),
    ) -> Result<usize, ModelError> {
        let mut drawn = 0;
        while self.decoder.now() < step && drawn < max_tokens {
            self.next(&mut emit)?;
            drawn += 1;
        }
        Ok(drawn)
    }

    /// Ends every sounding note now, through `emit`. The model's state is kept (it still
    /// believes the notes sound), so that playing on resumes the same music.
    pub fn release_all(&mut self, emit: impl FnMut(NoteEvent)) {
        self.decoder.release_all(emit);
    }

    /// The sounding note that reaches the length limit first, and the step it does.
    fn earliest_deadline(&self) -> Option<(u8, u64)> {
        if self.decoder.plays_hits() {
            return None; // a drum hit ends by itself, long before any limit
        }
        self.decoder
            .sounding_pitches()
            .filter_map(|p| self.decoder.onset(p).map(|onset| (p, onset + self.max_note_steps)))
            .min_by_key(|&(p, due)| (due, p))
    }

    fn read(&mut self, token: Token, emit: impl FnMut(NoteEvent)) -> Result<(), ModelError> {
        self.decoder.push(token, emit);
        self.run_model(token)
    }

    /// Where time passing from `now` stops for a model that follows the harmony: the next beat,
    /// or a change of harmony before it.
    fn harmony_stop(&self, now: u64) -> u64 {
        let beat = next_beat(now);
        match self.harmony_change {
            Some((at, _)) if at > now => at.min(beat),
            _ => beat,
        }
    }

    /// A change of harmony whose step the clock has reached is the harmony now.
    fn take_harmony_change(&mut self) {
        if let Some((at, harmony)) = self.harmony_change {
            if at <= self.decoder.now() {
                (self.harmony, self.harmony_change) = (harmony, None);
            }
        }
    }

    /// The model reads `token` in the harmony, and with the meter, where the clock stands once
    /// it is read.
    fn run_model(&mut self, token: Token) -> Result<(), ModelError> {
        self.take_harmony_change();
        let now = self.decoder.now();
        let Generator { model, state, logits, harmony, .. } = self;
        self.steps_run += 1;
        model.step_in(token.id(), *harmony, now, state, logits)?;
        Ok(())
    }
}

impl NoteEvent {
    /// When the event happens, in beats from the start.
    pub fn beats(&self) -> f64 {
        self.step as f64 / STEPS_PER_BEAT as f64
    }

    pub fn pitch(&self) -> u8 {
        match self.kind {
            NoteEventKind::On { pitch, .. } | NoteEventKind::Off { pitch } => pitch,
        }
    }
}
