//! The generator: model + sampler + decoder, one token at a time, as timed note events.
//!
//! Owns the running music: the LSTM state, the next-token logits, the clock in grid steps, the
//! set of sounding notes (through the [`Decoder`]), and the rule that no note is held longer than
//! a limit. The trainer's `generate` command and the plugin both drive this type, so what the CLI
//! writes is what the plugin plays with the same model, settings and seed.
//!
//! After [`Generator::new`], nothing here allocates: only the model step inside tract does, and
//! it runs inside a [`StepScope`] so that a real-time caller can mark it as the one permitted
//! region.

use crate::model::{LstmState, Model, ModelError};
use crate::sampler::{Sampler, SamplerSettings};
use crate::vocab::{Decoder, NoteEvent, NoteEventKind, Token, DEFAULT_VELOCITY_BIN, STEPS_PER_BEAT};

/// The token the model reads before anything else: "play at the default velocity". Songs in
/// training begin with a VELOCITY token too, so this is a natural first word.
pub const START_TOKEN: Token = Token::Velocity(DEFAULT_VELOCITY_BIN);

/// Wraps every model step. The plugin passes one that permits allocation for the duration of
/// the step (tract allocates) while the rest of the audio thread stays allocation-checked.
pub type StepScope = fn(&mut dyn FnMut());

fn run_directly(step: &mut dyn FnMut()) {
    step()
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GeneratorSettings {
    pub sampler: SamplerSettings,
    /// A note sounding this many beats is ended by the generator (the model also reads the
    /// NOTE_OFF), so a model that forgets a note never leaves it hanging.
    pub max_note_beats: f64,
}

impl Default for GeneratorSettings {
    fn default() -> Self {
        GeneratorSettings { sampler: SamplerSettings::default(), max_note_beats: 8.0 }
    }
}

pub struct Generator {
    model: Model,
    state: LstmState,
    logits: Vec<f32>,
    sampler: Sampler,
    decoder: Decoder,
    max_note_steps: u64,
    step_scope: StepScope,
    tokens: u64,
}

impl std::fmt::Debug for Generator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Generator")
            .field("model", &self.model.info().name)
            .field("now", &self.decoder.now())
            .field("tokens", &self.tokens)
            .finish_non_exhaustive()
    }
}

impl Generator {
    /// Takes the model and reads the start token, ready to play from step 0.
    pub fn new(model: Model, settings: GeneratorSettings) -> Result<Generator, ModelError> {
        let vocab = model.info().shape.vocab;
        let mut generator = Generator {
            state: model.initial_state(),
            model,
            logits: vec![0.0; vocab],
            sampler: Sampler::new(settings.sampler),
            decoder: Decoder::new(),
            max_note_steps: 1,
            step_scope: run_directly,
            tokens: 0,
        };
        generator.set_settings(settings);
        generator.reset()?;
        Ok(generator)
    }

    /// Marks the model step, e.g. as the one region of the audio thread allowed to allocate.
    pub fn set_step_scope(&mut self, scope: StepScope) {
        self.step_scope = scope;
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// Gives the model back, e.g. to drop it off the audio thread.
    pub fn into_model(self) -> Model {
        self.model
    }

    /// The clock, in grid steps since the start.
    pub fn now(&self) -> u64 {
        self.decoder.now()
    }

    /// The clock in beats.
    pub fn now_beats(&self) -> f64 {
        self.decoder.now() as f64 / STEPS_PER_BEAT as f64
    }

    /// Tokens the model has read since the start (the start token included).
    pub fn tokens_read(&self) -> u64 {
        self.tokens
    }

    /// The notes sounding now and what is known of them.
    pub fn voices(&self) -> &Decoder {
        &self.decoder
    }

    /// Changes the musician's controls. Notes already sounding keep sounding: a caller that
    /// narrows the range or the scale should [`Generator::release_all`] first.
    pub fn set_settings(&mut self, settings: GeneratorSettings) {
        self.sampler.set_settings(settings.sampler);
        self.max_note_steps = ((settings.max_note_beats * STEPS_PER_BEAT as f64).round() as u64).max(1);
    }

    pub fn sampler_settings(&self) -> &SamplerSettings {
        self.sampler.settings()
    }

    /// Back to the start: zero state, clock at 0, nothing sounding, the random sequence from its
    /// seed, and the start token read. Emits nothing: release sounding notes first.
    pub fn reset(&mut self) -> Result<(), ModelError> {
        // Dropping the old state frees tract's tensors: model memory, so inside the step scope.
        let Generator { model, state, .. } = self;
        (self.step_scope)(&mut || *state = model.initial_state());
        self.decoder.reset();
        self.sampler.reseed();
        self.tokens = 0;
        self.read(START_TOKEN, |_| {})
    }

    /// Conditions the model on a token from outside (a primer, or what a player plays): the
    /// model reads it, a TIME_SHIFT moves the clock and a VELOCITY sets the velocity the next
    /// notes play at, but its notes are not ours to sound or to end, so they emit nothing.
    pub fn feed(&mut self, token: Token) -> Result<(), ModelError> {
        if matches!(token, Token::TimeShift(_) | Token::Velocity(_)) {
            self.decoder.push(token, |_| {});
        }
        self.run_model(token)
    }

    /// Draws the next token, sounds it through `emit`, and lets the model read it. Returns the
    /// token played (which may be a forced NOTE_OFF or a shortened TIME_SHIFT, see
    /// [`GeneratorSettings::max_note_beats`]).
    pub fn next(&mut self, emit: impl FnMut(NoteEvent)) -> Result<Token, ModelError> {
        let now = self.decoder.now();
        let deadline = self.earliest_deadline();
        let token = match deadline {
            Some((pitch, due)) if due <= now => Token::NoteOff(pitch),
            _ => match self.sampler.sample(&self.logits, &self.decoder) {
                Token::TimeShift(k) => match deadline {
                    // Stop the clock at the deadline; the NOTE_OFF comes next.
                    Some((_, due)) if due < now + k as u64 => Token::TimeShift((due - now) as u8),
                    _ => Token::TimeShift(k),
                },
                token => token,
            },
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
        self.decoder
            .sounding_pitches()
            .filter_map(|p| self.decoder.onset(p).map(|onset| (p, onset + self.max_note_steps)))
            .min_by_key(|&(p, due)| (due, p))
    }

    fn read(&mut self, token: Token, emit: impl FnMut(NoteEvent)) -> Result<(), ModelError> {
        self.decoder.push(token, emit);
        self.run_model(token)
    }

    fn run_model(&mut self, token: Token) -> Result<(), ModelError> {
        let Generator { model, state, logits, .. } = self;
        let mut result = Ok(());
        (self.step_scope)(&mut || result = model.step(token.id(), state, logits));
        self.tokens += 1;
        result
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
