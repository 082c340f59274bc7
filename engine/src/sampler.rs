//! The sampler: from next-token logits to one token.
//!
//! Owns a model's tuning (its temperatures and nucleus) and the musician's scale of it, nucleus
//! (top-p) truncation, the masks that make every note obey the musician's settings (pitch range,
//! key + scale lock, polyphony, and never a NOTE_OFF for a silent pitch or a drum hit), and the
//! seeded random generator. The same seed, logits and settings always
//! give the same token, on every platform. All buffers are allocated in [`Sampler::new`]:
//! [`Sampler::sample`] allocates nothing, so it may run on the audio thread.

use serde::{Deserialize, Serialize};

use crate::music::ScaleLock;
use crate::vocab::{Decoder, Token, TokenKind, VOCAB_SIZE};

/// How a model plays best: the temperatures and nucleus at which its music came closest to the
/// music it learned, in style (the overlapping areas) and in variety (the spread of its pieces),
/// measured with `continuo-train eval` and written into the model file by `continuo-train tune`.
/// A model whose file has none plays by [`Tuning::UNTUNED`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Tuning {
    /// Which pitch starts or ends, and which velocity: below 1 the likeliest choices, above 1
    /// wilder ones.
    pub temperature: f32,
    /// How much time passes before the next event: the rhythm. A model's rhythm wants a
    /// temperature of its own: every choice of it is on the grid and in the style, so tempering
    /// it only makes every piece move in the same note values (the folk melody at 0.6 played
    /// eighth notes in every piece, its notes-per-bar overlap 0.80 against 0.92 at 1.0).
    pub rhythm_temperature: f32,
    /// Of the pitches and velocities, keep the smallest set whose probability reaches this (1
    /// keeps all). The rhythm is not cut: its tail is rare note values, not wrong notes.
    pub top_p: f32,
    /// The voices "as trained" plays, when they are not the training music's own count at nine
    /// in ten of its onsets: fiddle tunes play one voice there, and their double stops are
    /// part of the style. None: that count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voices: Option<u8>,
}

impl Tuning {
    /// How models play whose file names no tuning: every choice at 0.6 and the nucleus at 0.8,
    /// the settings all models played at before they carried their own (the time shifts, then
    /// cut by the nucleus too, are not now).
    pub const UNTUNED: Tuning =
        Tuning { temperature: 0.6, rhythm_temperature: 0.6, top_p: 0.8, voices: None };

    /// This tuning with the values given in place of its own: a command's flags over a model's.
    pub fn with(
        self,
        temperature: Option<f32>,
        rhythm_temperature: Option<f32>,
        top_p: Option<f32>,
    ) -> Tuning {
        Tuning {
            temperature: temperature.unwrap_or(self.temperature),
            rhythm_temperature: rhythm_temperature.unwrap_or(self.rhythm_temperature),
            top_p: top_p.unwrap_or(self.top_p),
            voices: self.voices,
        }
    }

    /// Refuses values the sampler cannot play by, naming the one at fault.
    pub fn check(&self) -> Result<(), String> {
        if !(self.temperature.is_finite() && self.temperature > 0.0) {
            return Err(format!("its temperature {} is not above 0", self.temperature));
        }
        if !(self.rhythm_temperature.is_finite() && self.rhythm_temperature > 0.0) {
            return Err(format!("its rhythm temperature {} is not above 0", self.rhythm_temperature));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(format!("its top-p {} is not in (0, 1]", self.top_p));
        }
        if let Some(v) = self.voices {
            if v == 0 || v as usize > MAX_VOICES {
                return Err(format!("its voices {v} are not 1..={MAX_VOICES}"));
            }
        }
        Ok(())
    }

    /// One line for a musician: "temperature 0.90, rhythm 1.00, top-p 0.90, 2 voices".
    pub fn describe(&self) -> String {
        let voices = match self.voices {
            Some(1) => ", 1 voice".to_string(),
            Some(v) => format!(", {v} voices"),
            None => String::new(),
        };
        format!(
            "temperature {:.2}, rhythm {:.2}, top-p {:.2}{voices}",
            self.temperature, self.rhythm_temperature, self.top_p
        )
    }
}

/// The musician's controls over what may be played.
///
/// A token is drawn in two steps: first its kind (a note starts, a note ends, time passes, the
/// velocity changes) from the model's own distribution, moved only by `density`; then the token
/// of that kind (which pitch, how long) at the model's temperatures ([`Tuning`]) times
/// `temperature_scale`. So temperature makes the choices safer or wilder without changing how
/// often notes come: tempering every token at once would favour time passing (one or two likely
/// TIME_SHIFTs) over a note (its probability spread over several pitches) and drop voices at
/// low temperatures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplerSettings {
    /// Multiplies the model's temperatures: 1 plays it as tuned, below 1 safer, above 1 wilder;
    /// 0 always takes the likeliest token (of any kind).
    pub temperature_scale: f32,
    /// The temperatures and nucleus to scale; None: the model file's own (the generator puts
    /// them in), or [`Tuning::UNTUNED`] for a sampler with no model.
    pub tuning: Option<Tuning>,
    /// Lowest and highest pitch a NOTE_ON may have, inclusive.
    pub lowest: u8,
    pub highest: u8,
    pub scale_lock: ScaleLock,
    /// How many notes may sound at once; a NOTE_ON waits while this many sound. 0: as many as
    /// the model plays as trained ([`AS_TRAINED`]).
    pub max_polyphony: usize,
    pub seed: u64,
    /// From sparse (-1) to busy (+1): moves every TIME_SHIFT's logit down by this times
    /// [`DENSITY_NATS`], so time passes less readily and notes come sooner and more often (or
    /// the other way). 0 leaves the model's own distribution untouched. (Moving the NOTE_ONs
    /// up instead is not monotone: notes pile up against the polyphony limit and are held.)
    pub density: f32,
}

/// The most voices a musician can ask for (the plugin's Polyphony, `--voices`).
pub const MAX_VOICES: usize = 16;

/// `max_polyphony` for "as many voices as the model plays as trained": the generator puts the
/// model's own count in its place ([`Tuning::voices`], else `TrainingSummary::voices`), or
/// [`VOICES_UNKNOWN`] for a model that does not say.
pub const AS_TRAINED: usize = 0;
/// The voices of a model that does not say how many its music sounds at once.
pub const VOICES_UNKNOWN: usize = 6;

/// How far a density of +-1 moves the TIME_SHIFT logits, in nats.
pub const DENSITY_NATS: f32 = 2.0;

impl SamplerSettings {
    /// The musician's defaults: what the plugin starts with, and what `continuo-train generate`
    /// and `eval` use unless told otherwise, so "the model at its defaults" means one thing:
    /// the model as tuned, with its own number of voices, in the range of most instruments
    /// (C2-C7), no scale lock.
    pub const DEFAULT: SamplerSettings = SamplerSettings {
        temperature_scale: 1.0,
        tuning: None,
        lowest: 36,
        highest: 96,
        scale_lock: ScaleLock::CHROMATIC,
        max_polyphony: AS_TRAINED,
        seed: 1,
        density: 0.0,
    };
}

impl Default for SamplerSettings {
    fn default() -> Self {
        SamplerSettings::DEFAULT
    }
}

impl SamplerSettings {
    /// Whether a NOTE_ON of `pitch` passes the range and the scale lock.
    pub fn allows_pitch(&self, pitch: u8) -> bool {
        (self.lowest..=self.highest).contains(&pitch) && self.scale_lock.allows(pitch)
    }
}

/// xoshiro256++ seeded through SplitMix64: small, fast, and identical everywhere.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng { s: [next(), next(), next(), next()] }
    }

    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[0].wrapping_add(s[3]).rotate_left(23).wrapping_add(s[0]);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The index of a token id's kind in [`TokenKind::ALL`].
fn kind_index(id: u32) -> usize {
    let kind = Token::from_id(id).expect("candidate ids are in the vocabulary").kind();
    TokenKind::ALL.iter().position(|&k| k == kind).expect("every kind is listed")
}

#[derive(Debug, Clone)]
pub struct Sampler {
    settings: SamplerSettings,
    /// The settings' tuning, or [`Tuning::UNTUNED`].
    tuning: Tuning,
    /// NOTE_ONs allowed by range and scale, recomputed when settings change.
    pitch_allowed: [bool; 128],
    rng: Rng,
    /// (weight, token id) of the candidates; capacity V, never grows.
    candidates: Vec<(f32, u32)>,
    /// Time may not pass until a note starts (see [`Sampler::start_with_a_note`]).
    note_first: bool,
}

impl Sampler {
    pub fn new(settings: SamplerSettings) -> Sampler {
        let mut sampler = Sampler {
            settings,
            tuning: Tuning::UNTUNED,
            pitch_allowed: [false; 128],
            rng: Rng::new(settings.seed),
            candidates: Vec::with_capacity(VOCAB_SIZE as usize),
            note_first: false,
        };
        sampler.set_settings(settings);
        sampler
    }

    pub fn settings(&self) -> &SamplerSettings {
        &self.settings
    }

    /// Changes the controls; the random sequence restarts only if the seed changed. A sampler
    /// on its own knows no model: "as trained" voices are [`VOICES_UNKNOWN`] here and the
    /// model's own tuning is [`Tuning::UNTUNED`] (the generator resolves both first).
    pub fn set_settings(&mut self, mut settings: SamplerSettings) {
        if settings.max_polyphony == AS_TRAINED {
            settings.max_polyphony = VOICES_UNKNOWN;
        }
        self.tuning = settings.tuning.unwrap_or(Tuning::UNTUNED);
        if settings.seed != self.settings.seed {
            self.rng = Rng::new(settings.seed);
        }
        self.settings = settings;
        for pitch in 0..128u8 {
            self.pitch_allowed[pitch as usize] = settings.allows_pitch(pitch);
        }
    }

    /// Restarts the random sequence from the seed.
    pub fn reseed(&mut self) {
        self.rng = Rng::new(self.settings.seed);
    }

    /// The next tokens may not let time pass until a note starts: an answer begins when it is
    /// due, not after a silence of the model's choosing. Ends with the first NOTE_ON drawn.
    pub fn start_with_a_note(&mut self) {
        self.note_first = true;
    }

    /// Where the random sequence stands, to come back to it ([`Sampler::set_rng`]).
    pub fn rng(&self) -> &Rng {
        &self.rng
    }

    pub fn set_rng(&mut self, rng: &Rng) {
        self.rng = rng.clone();
    }

    /// Whether `token` may come next, given what sounds now.
    pub fn allows(&self, token: Token, voices: &Decoder) -> bool {
        self.allows_with(token, voices, voices.sounding_count() >= self.settings.max_polyphony)
    }

    fn allows_with(&self, token: Token, voices: &Decoder, polyphony_full: bool) -> bool {
        match token {
            Token::NoteOn(p) => {
                !polyphony_full && self.pitch_allowed[p as usize & 127] && !voices.is_sounding(p)
            }
            // A note lasts at least one grid step, as every note the model learned from did
            // (`quantise`); ended on its onset step, the host would hear nothing.
            Token::NoteOff(p) => {
                !voices.plays_hits() && voices.onset(p).is_some_and(|onset| onset < voices.now())
            }
            // A second VELOCITY in a row only replaces the first (the vocabulary never writes
            // two): drawing it costs a model step for no music, and a model that draws runs of
            // them makes a chord cost more steps than the player plans for one (a note-off, a
            // velocity and a note-on per voice, and the time shift), so its notes come late at
            // a small step cap.
            Token::Velocity(_) => !voices.follows_a_velocity(),
            Token::TimeShift(_) => true,
        }
    }

    /// Draws the next token from `logits` (one per vocabulary id) under the masks. A TIME_SHIFT
    /// is always allowed, so there is always a token to draw.
    pub fn sample(&mut self, logits: &[f32], voices: &Decoder) -> Token {
        let token = self.draw(logits, voices);
        if matches!(token, Token::NoteOn(_)) {
            self.note_first = false;
        }
        token
    }

    fn draw(&mut self, logits: &[f32], voices: &Decoder) -> Token {
        let polyphony_full = voices.sounding_count() >= self.settings.max_polyphony;
        let scale = self.settings.temperature_scale;
        let density_bias = self.settings.density.clamp(-1.0, 1.0) * DENSITY_NATS;
        self.candidates.clear();
        for (id, &logit) in logits.iter().enumerate().take(VOCAB_SIZE as usize) {
            let id = id as u32;
            let Some(token) = Token::from_id(id) else { continue };
            let waiting_for_a_note = self.note_first && matches!(token, Token::TimeShift(_));
            if logit.is_finite() && !waiting_for_a_note && self.allows_with(token, voices, polyphony_full) {
                let bias = match token {
                    Token::TimeShift(_) => -density_bias,
                    _ => 0.0,
                };
                self.candidates.push((logit + bias, id));
            }
        }
        if self.candidates.is_empty() {
            // Only non-finite logits: a broken model. Let time pass rather than play nonsense.
            return Token::TimeShift(1);
        }
        if scale <= 0.0 {
            let best = self.candidates.iter().fold(self.candidates[0], |b, &c| if c.0 > b.0 { c } else { b });
            return Token::from_id(best.1).expect("candidate ids are in the vocabulary");
        }

        // The kind, from the model's own probabilities (density included).
        let max = self.candidates.iter().map(|c| c.0).fold(f32::NEG_INFINITY, f32::max);
        let mut kind_mass = [0.0f64; TokenKind::ALL.len()];
        for &(logit, id) in &self.candidates {
            kind_mass[kind_index(id)] += ((logit - max) as f64).exp();
        }
        let mut target = self.rng.next_f64() * kind_mass.iter().sum::<f64>();
        let mut kind = kind_mass.iter().rposition(|&m| m > 0.0).expect("a candidate has weight");
        for (k, &mass) in kind_mass.iter().enumerate() {
            target -= mass;
            if mass > 0.0 && target < 0.0 {
                kind = k;
                break;
            }
        }
        self.candidates.retain(|&(_, id)| kind_index(id) == kind);

        // The token of that kind: softmax at its temperature, stable against large logits.
        let (temperature, top_p) = if TokenKind::ALL[kind] == TokenKind::TimeShift {
            (self.tuning.rhythm_temperature * scale, 1.0)
        } else {
            (self.tuning.temperature * scale, self.tuning.top_p)
        };
        let max = self.candidates.iter().map(|c| c.0).fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0f64;
        for c in self.candidates.iter_mut() {
            c.0 = ((c.0 - max) / temperature).exp();
            total += c.0 as f64;
        }
        if top_p < 1.0 {
            self.candidates.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            let keep_mass = total * top_p.max(0.0) as f64;
            let mut mass = 0.0f64;
            let mut keep = 0;
            for c in &self.candidates {
                mass += c.0 as f64;
                keep += 1;
                if mass >= keep_mass {
                    break;
                }
            }
            self.candidates.truncate(keep.max(1));
            total = mass.max(self.candidates[0].0 as f64);
        }
        let mut target = self.rng.next_f64() * total;
        for &(weight, id) in &self.candidates {
            target -= weight as f64;
            if target < 0.0 {
                return Token::from_id(id).expect("candidate ids are in the vocabulary");
            }
        }
        let last = self.candidates[self.candidates.len() - 1].1;
        Token::from_id(last).expect("candidate ids are in the vocabulary")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::music::Scale;

    /// Every choice at `temperature`, the pitches' nucleus at `top_p`.
    fn tuned(temperature: f32, top_p: f32) -> Option<Tuning> {
        Some(Tuning { temperature, rhythm_temperature: temperature, top_p, voices: None })
    }

    fn flat_logits() -> Vec<f32> {
        vec![0.0; VOCAB_SIZE as usize]
    }

    #[test]
    fn same_seed_same_tokens() {
        let settings = SamplerSettings { seed: 42, ..Default::default() };
        let draw = || {
            let mut s = Sampler::new(settings);
            let voices = Decoder::new();
            (0..200).map(|_| s.sample(&flat_logits(), &voices)).collect::<Vec<_>>()
        };
        assert_eq!(draw(), draw());
        let other = {
            let mut s = Sampler::new(SamplerSettings { seed: 43, ..settings });
            (0..200).map(|_| s.sample(&flat_logits(), &Decoder::new())).collect::<Vec<_>>()
        };
        assert_ne!(draw(), other);
    }

    #[test]
    fn masks_hold_for_every_draw() {
        let settings = SamplerSettings {
            lowest: 48,
            highest: 72,
            scale_lock: ScaleLock { key: 9, scale: Scale::PentatonicMinor },
            max_polyphony: 2,
            ..Default::default()
        };
        let mut sampler = Sampler::new(settings);
        let mut voices = Decoder::new();
        let mut ons = 0;
        for _ in 0..5000 {
            let token = sampler.sample(&flat_logits(), &voices);
            assert!(sampler.allows(token, &voices), "{token:?} drawn against the mask");
            if let Token::NoteOn(p) = token {
                assert!((48..=72).contains(&p) && settings.scale_lock.allows(p), "pitch {p}");
                ons += 1;
            }
            voices.push(token, |_| {});
            assert!(voices.sounding_count() <= 2);
        }
        // ~10 allowed pitches among ~140 allowed tokens, two voices at most: a few percent.
        assert!(ons > 30, "only {ons} notes in 5000 draws");
    }

    #[test]
    fn temperature_zero_takes_the_likeliest_allowed_token() {
        let mut logits = flat_logits();
        logits[Token::NoteOn(30).id() as usize] = 10.0; // out of range below
        logits[Token::NoteOn(64).id() as usize] = 5.0;
        let mut sampler =
            Sampler::new(SamplerSettings { temperature_scale: 0.0, lowest: 40, ..Default::default() });
        assert_eq!(sampler.sample(&logits, &Decoder::new()), Token::NoteOn(64));
    }

    #[test]
    fn top_p_keeps_only_the_nucleus() {
        let mut logits = vec![-30.0; VOCAB_SIZE as usize];
        logits[Token::NoteOn(60).id() as usize] = 3.0;
        logits[Token::NoteOn(62).id() as usize] = 2.9;
        logits[Token::NoteOn(64).id() as usize] = 0.0;
        let mut sampler =
            Sampler::new(SamplerSettings { tuning: tuned(1.0, 0.9), seed: 1, ..Default::default() });
        let voices = Decoder::new();
        for _ in 0..2000 {
            let t = sampler.sample(&logits, &voices);
            assert!(matches!(t, Token::NoteOn(60) | Token::NoteOn(62)), "{t:?} is outside the top-p nucleus");
        }
    }

    #[test]
    fn density_trades_time_passing_against_everything_else() {
        let share_of_time = |density: f32| {
            let settings =
                SamplerSettings { density, seed: 3, lowest: 0, highest: 127, ..Default::default() };
            let mut sampler = Sampler::new(settings);
            let voices = Decoder::new();
            let shifts = (0..20_000)
                .filter(|_| matches!(sampler.sample(&flat_logits(), &voices), Token::TimeShift(_)))
                .count();
            shifts as f64 / 20_000.0
        };
        let (sparse, neutral, busy) = (share_of_time(-1.0), share_of_time(0.0), share_of_time(1.0));
        // 96 TIME_SHIFTs among 96 + 128 NOTE_ONs + 32 VELOCITYs allowed at flat logits.
        assert!((neutral - 96.0 / 256.0).abs() < 0.01, "{neutral}");
        assert!(sparse > neutral + 0.3 && busy < neutral - 0.25, "{sparse} {neutral} {busy}");
    }

    #[test]
    fn temperature_changes_which_pitch_not_how_often_a_note_starts() {
        // Time passes with 0.4; a note starts with 0.6, spread over three pitches (0.3, 0.2, 0.1).
        let mut logits = vec![f32::NEG_INFINITY; VOCAB_SIZE as usize];
        logits[Token::TimeShift(6).id() as usize] = 0.4f32.ln();
        for (pitch, p) in [(60, 0.3f32), (64, 0.2), (67, 0.1)] {
            logits[Token::NoteOn(pitch).id() as usize] = p.ln();
        }
        let n = 40_000;
        let draw = |temperature: f32| {
            let mut sampler = Sampler::new(SamplerSettings {
                tuning: tuned(temperature, 1.0),
                seed: 4,
                ..Default::default()
            });
            let tokens: Vec<Token> = (0..n).map(|_| sampler.sample(&logits, &Decoder::new())).collect();
            let share = |t: Token| tokens.iter().filter(|&&x| x == t).count() as f64 / n as f64;
            (share(Token::TimeShift(6)), share(Token::NoteOn(60)), share(Token::NoteOn(67)))
        };
        let (warm, cool) = (draw(1.0), draw(0.3));
        assert!((warm.0 - 0.4).abs() < 0.01 && (warm.1 - 0.3).abs() < 0.01, "{warm:?}");
        // Cooler: time passes as often; the pitches share the notes as p^(1/0.3) says, so the
        // likeliest takes most of them (0.6 x 0.78) and the unlikeliest almost none (0.6 x 0.02).
        let cooled =
            |p: f64| p.powf(1.0 / 0.3) / [0.3f64, 0.2, 0.1].iter().map(|q| q.powf(1.0 / 0.3)).sum::<f64>();
        assert!((cool.0 - 0.4).abs() < 0.01, "{cool:?}");
        assert!(
            (cool.1 - 0.6 * cooled(0.3)).abs() < 0.01 && (cool.2 - 0.6 * cooled(0.1)).abs() < 0.005,
            "{cool:?}"
        );
    }

    #[test]
    fn sampling_follows_the_softmax() {
        // Two allowed candidates with logits ln 3 and 0: expect 3:1.
        let mut logits = vec![f32::NEG_INFINITY; VOCAB_SIZE as usize];
        logits[Token::TimeShift(1).id() as usize] = 3f32.ln();
        logits[Token::TimeShift(2).id() as usize] = 0.0;
        let mut sampler =
            Sampler::new(SamplerSettings { tuning: tuned(1.0, 1.0), seed: 9, ..Default::default() });
        let n = 40_000;
        let ones = (0..n).filter(|_| sampler.sample(&logits, &Decoder::new()) == Token::TimeShift(1)).count();
        let share = ones as f64 / n as f64;
        assert!((share - 0.75).abs() < 0.01, "share {share}");
    }

    #[test]
    fn the_rhythm_has_its_own_temperature_and_no_nucleus() {
        // Time passes by one step (p 0.6) or two (0.3) or three (0.1); a pitch is never allowed.
        let mut logits = vec![f32::NEG_INFINITY; VOCAB_SIZE as usize];
        for (steps, p) in [(1, 0.6f32), (2, 0.3), (3, 0.1)] {
            logits[Token::TimeShift(steps).id() as usize] = p.ln();
        }
        let n = 40_000;
        let share_of_three = |tuning: Tuning, scale: f32| {
            let settings = SamplerSettings {
                tuning: Some(tuning),
                temperature_scale: scale,
                seed: 5,
                ..Default::default()
            };
            let mut sampler = Sampler::new(settings);
            (0..n).filter(|_| sampler.sample(&logits, &Decoder::new()) == Token::TimeShift(3)).count() as f64
                / n as f64
        };
        let cool_pitches = Tuning { temperature: 0.2, rhythm_temperature: 1.0, top_p: 0.5, voices: None };
        // At rhythm temperature 1 the model's own 0.1, however cool and narrow the pitches.
        assert!((share_of_three(cool_pitches, 1.0) - 0.1).abs() < 0.006);
        // The musician's scale cools the rhythm too: at 0.5, 0.1^2 / (0.36 + 0.09 + 0.01).
        let cooled = 0.01 / 0.46;
        assert!((share_of_three(cool_pitches, 0.5) - cooled).abs() < 0.005);
    }

    #[test]
    fn a_tuning_is_checked_before_it_is_played() {
        assert_eq!(Tuning::UNTUNED.check(), Ok(()));
        let bad = [
            Tuning { temperature: 0.0, ..Tuning::UNTUNED },
            Tuning { rhythm_temperature: f32::NAN, ..Tuning::UNTUNED },
            Tuning { top_p: 1.5, ..Tuning::UNTUNED },
            Tuning { voices: Some(0), ..Tuning::UNTUNED },
        ];
        for tuning in bad {
            assert!(tuning.check().is_err(), "{tuning:?}");
        }
    }
}
