//! `generate`: an ONNX model -> a .mid file, through the engine's generator: the same code path
//! the plugin plays, so the same model, settings and seed give the same notes.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use continuo_engine::chords;
use continuo_engine::generator::{Generator, GeneratorSettings};
use continuo_engine::harmony::{harmony_changes, Harmony, HarmonyTrack};
use continuo_engine::midi::{self, Note, Role};
use continuo_engine::model::{Model, ModelInfo};
use continuo_engine::music::{parse_key, Scale, ScaleLock, KEY_NAMES};
use continuo_engine::sampler::{SamplerSettings, Tuning, MAX_VOICES};
use continuo_engine::vocab::{self, GridNote, NoteCollector, STEPS_PER_BEAT};
use serde::Serialize;

/// Beats in a bar: the generator works in 4/4.
pub const BEATS_PER_BAR: u64 = 4;

/// The musician's defaults, which every flag below starts from.
const DEFAULT: SamplerSettings = SamplerSettings::DEFAULT;

/// Generate music with a model and write it as a .mid file.
///
/// With --primer, the model first listens to a MIDI file (its melodic notes) and then continues
/// it; the output holds the primer followed by --bars of new music. Without one, it starts from
/// silence. Scale lock (--key, --scale), range (--lowest, --highest) and --voices are obeyed by
/// every note, as in the plugin.
///
/// A model that follows the harmony plays against --harmony: a MIDI file's notes (a chord clip,
/// a melody to harmonise) or chord symbols, repeated to the end; the file written holds that
/// harmony too, on MIDI channel 2, so you hear what the model heard.
#[derive(clap::Args)]
pub struct Args {
    /// The model (.onnx, from `export`).
    pub model: PathBuf,
    /// The .mid file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// Bars of new music, in 4/4.
    #[arg(long, default_value_t = 16)]
    pub bars: u64,
    /// Tempo written into the file, in BPM.
    #[arg(long, default_value_t = midi::DEFAULT_BPM)]
    pub tempo: f64,
    /// Random seed: the same seed, model and settings give the same music.
    #[arg(long, default_value_t = DEFAULT.seed)]
    pub seed: u64,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// A MIDI file for the model to continue.
    #[arg(long)]
    pub primer: Option<PathBuf>,
    /// GM program (instrument) written for the notes, 0..=127 (0 is the piano).
    #[arg(long, default_value_t = 0)]
    pub program: u8,
    /// The harmony a model that follows one plays against: a MIDI file (its melodic notes), or
    /// chord symbols, one a bar ("C Am F G7") or with a length in beats ("Dm7:2 G7:2 Cmaj7:4").
    /// Roots A-G with # or b; qualities major, m, 5, 6, m6, 7, maj7, m7, m7b5, dim, dim7, aug,
    /// sus2, sus4, 7sus4, mmaj7, add9, 9, maj9, m9; "/E" puts E in the bass; "|" bar lines are
    /// ignored, "%" repeats the chord before, "N.C." is a bar of silence. Repeated to the end.
    #[arg(long)]
    pub harmony: Option<String>,
}

/// A harmony to play against: the track the model hears, and the notes that sound it.
pub struct HarmonyToFollow {
    pub track: HarmonyTrack,
    pub notes: Vec<GridNote>,
}

impl HarmonyToFollow {
    /// `--harmony`: a MIDI file when one is there by that name, else chord symbols.
    pub fn read(source: &str) -> Result<HarmonyToFollow> {
        let path = Path::new(source);
        if path.is_file() {
            let song = midi::read_file(path)?;
            let notes = vocab::quantise(song.notes_for(Role::Melodic).map(Note::as_tuple));
            let Some(end) = notes.iter().map(|n| n.end).max() else {
                bail!("{}: the harmony file has no melodic notes", path.display());
            };
            let bar = BEATS_PER_BAR * STEPS_PER_BEAT as u64;
            let track = HarmonyTrack::new(&harmony_changes(&notes), end.div_ceil(bar) * bar);
            return Ok(HarmonyToFollow { track, notes });
        }
        let progression = chords::parse_progression(source, BEATS_PER_BAR as u32).with_context(|| {
            format!("--harmony: '{source}' is neither a MIDI file nor a progression of chord symbols")
        })?;
        Ok(HarmonyToFollow::of_progression(&progression))
    }

    /// A progression (as `chords::parse_progression` returns it), voiced as a keyboard player
    /// would hold it: the bass in the octave below C3, the other notes from C4 up.
    pub fn of_progression(progression: &[(u64, Harmony)]) -> HarmonyToFollow {
        let track = HarmonyTrack::of_progression(progression);
        let mut notes = Vec::new();
        for pair in progression.windows(2) {
            let ((start, harmony), (end, _)) = (pair[0], pair[1]);
            if let Some(bass) = harmony.bass() {
                notes.push(GridNote { start, end, pitch: 36 + bass, velocity: 70 });
            }
            notes.extend(harmony.classes().map(|pc| GridNote { start, end, pitch: 60 + pc, velocity: 62 }));
        }
        HarmonyToFollow { track, notes }
    }

    /// Its notes repeated from step 0 up to `end`.
    pub fn notes_until(&self, end: u64) -> Vec<GridNote> {
        let length = self.track.length();
        (0..end.div_ceil(length))
            .flat_map(|round| {
                self.notes.iter().filter_map(move |n| {
                    let start = n.start + round * length;
                    (start < end).then_some(GridNote { start, end: (n.end + round * length).min(end), ..*n })
                })
            })
            .collect()
    }
}

/// The musician's controls over the sampler, as `generate` and `eval` take them. The defaults
/// are the plugin's (the engine's `GeneratorSettings::DEFAULT`, the model's own tuning): what
/// "the model at its defaults" means.
#[derive(clap::Args, Debug, Clone, Serialize)]
pub struct SamplerArgs {
    /// Temperature of the pitches and velocities: below 1 plays safer, above 1 wilder; 0 always
    /// takes the likeliest token. Default: the model's tuning (`continuo-train tune`), 0.6 for a
    /// model without one.
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Temperature of the rhythm (how much time passes between events). Default: the model's
    /// tuning, 0.6 for a model without one.
    #[arg(long)]
    pub rhythm_temperature: Option<f32>,
    /// Of the pitches and velocities, keep only the likeliest whose probabilities add up to this
    /// (1 keeps all). Default: the model's tuning, 0.8 for a model without one.
    #[arg(long)]
    pub top_p: Option<f32>,
    /// From sparse (-1) to busy (+1): how readily the model lets time pass, as the plugin's
    /// Density control; 0 plays the model's own distribution.
    #[arg(long, default_value_t = DEFAULT.density, allow_negative_numbers = true)]
    pub density: f32,
    /// Key of the scale lock: C, C#, Db, ... B.
    #[arg(long, default_value = "C")]
    pub key: String,
    /// Scale lock: chromatic (off), major, natural-minor, harmonic-minor, dorian, mixolydian,
    /// pentatonic-major, pentatonic-minor, blues.
    #[arg(long, default_value = "chromatic")]
    pub scale: String,
    /// Lowest MIDI note played.
    #[arg(long, visible_alias = "low", default_value_t = DEFAULT.lowest)]
    pub lowest: u8,
    /// Highest MIDI note played.
    #[arg(long, visible_alias = "high", default_value_t = DEFAULT.highest)]
    pub highest: u8,
    /// Most notes sounding at once; 0: as many as the model's training music sounds at once
    /// (the model says; 6 for a model that does not), as the plugin's Polyphony "as trained".
    #[arg(long, visible_alias = "polyphony", default_value_t = DEFAULT.max_polyphony,
          value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=MAX_VOICES as u64))]
    pub voices: usize,
    /// Notes held this many beats are ended.
    #[arg(long, default_value_t = GeneratorSettings::DEFAULT.max_note_beats)]
    pub max_note_beats: f64,
}

impl SamplerArgs {
    /// The tuning these flags play `info`'s model by: its own, with what the flags name in
    /// place. --temperature 0 (the likeliest token) is a scale, not a tuning: see
    /// [`SamplerArgs::settings`].
    pub fn tuning(&self, info: &ModelInfo) -> Tuning {
        let positive = |t: Option<f32>| t.filter(|&t| t > 0.0);
        // --top-p 0 keeps every choice, as 1 does.
        let top_p = self.top_p.map(|p| if p > 0.0 { p } else { 1.0 });
        info.played_tuning().with(positive(self.temperature), positive(self.rhythm_temperature), top_p)
    }

    /// The generator's settings these flags describe for `info`'s model, with `seed`; refuses
    /// what the sampler could not obey, naming the flag.
    pub fn settings(&self, seed: u64, info: &ModelInfo) -> Result<GeneratorSettings> {
        let key = parse_key(&self.key)
            .with_context(|| format!("--key {}: not a key; use one of {}", self.key, KEY_NAMES.join(" ")))?;
        let scale = Scale::parse(&self.scale).with_context(|| {
            let names: Vec<String> =
                Scale::ALL.iter().map(|s| s.name().to_lowercase().replace(' ', "-")).collect();
            format!("--scale {}: not a scale; use one of {}", self.scale, names.join(", "))
        })?;
        if self.lowest > self.highest || self.highest > 127 {
            bail!(
                "--lowest {} and --highest {} must be MIDI notes with lowest <= highest <= 127",
                self.lowest,
                self.highest
            );
        }
        let lock = ScaleLock { key, scale };
        if !(self.lowest..=self.highest).any(|p| lock.allows(p)) {
            bail!(
                "no note between --lowest {} and --highest {} is in {}",
                self.lowest,
                self.highest,
                lock.describe()
            );
        }
        let at_least_zero = |t: Option<f32>| t.is_none_or(|t| t >= 0.0);
        if !at_least_zero(self.temperature)
            || !self.rhythm_temperature.is_none_or(|t| t > 0.0)
            || !self.top_p.is_none_or(|p| (0.0..=1.0).contains(&p))
            || !(-1.0..=1.0).contains(&self.density)
        {
            bail!(
                "need --temperature >= 0, --rhythm-temperature > 0, 0 <= --top-p <= 1 and -1 <= \
                 --density <= 1"
            );
        }
        Ok(GeneratorSettings {
            sampler: SamplerSettings {
                temperature_scale: if self.temperature == Some(0.0) { 0.0 } else { 1.0 },
                tuning: Some(self.tuning(info)),
                lowest: self.lowest,
                highest: self.highest,
                scale_lock: lock,
                max_polyphony: self.voices,
                seed,
                density: self.density,
            },
            max_note_beats: self.max_note_beats,
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    if args.tempo <= 0.0 {
        bail!("--tempo {}: need a tempo above 0 BPM", args.tempo);
    }
    if args.program > 127 {
        bail!("--program {}: GM programs are 0..=127", args.program);
    }
    let model = Model::load_file(&args.model)?;
    let settings = args.sampler.settings(args.seed, model.info())?;
    let role = model.info().role;
    let primer = match &args.primer {
        Some(path) => primer_notes(path, role)?,
        None => Vec::new(),
    };
    let harmony = match &args.harmony {
        Some(_) if !model.follows_harmony() => bail!(
            "{}: this model follows no harmony (it was trained without one); --harmony needs a model \
             trained on a part prepared --against the others",
            args.model.display()
        ),
        Some(source) => Some(HarmonyToFollow::read(source)?),
        None => None,
    };
    let generated = generate(model, settings, &primer, args.bars, harmony.as_ref().map(|h| &h.track))?;
    // A drum model's notes are General MIDI drums: channel 10, whatever the program.
    let channel = if role == Role::Drums { midi::DRUM_CHANNEL } else { 0 };
    let mut notes: Vec<Note> =
        primer.iter().chain(&generated).map(|g| Note::from_grid(g, channel, args.program)).collect();
    if let Some(harmony) = &harmony {
        // What the model heard, on the next channel, from where the new music starts.
        let start = primer.iter().map(|n| n.end).max().unwrap_or(0);
        let length = args.bars * BEATS_PER_BAR * STEPS_PER_BEAT as u64;
        notes.extend(harmony.notes_until(length).iter().map(|n| {
            let n = GridNote { start: n.start + start, end: n.end + start, ..*n };
            Note::from_grid(&n, 1, 0)
        }));
    }
    midi::write_file(&args.out, &notes, args.tempo, None)?;
    let (low, high) = generated.iter().fold((127, 0), |(l, h), n| (n.pitch.min(l), n.pitch.max(h)));
    println!(
        "wrote {}: {} new notes in {} bars{} at {} BPM, pitches {}..{}",
        args.out.display(),
        generated.len(),
        args.bars,
        if primer.is_empty() { String::new() } else { format!(" after a primer of {} notes", primer.len()) },
        args.tempo,
        low,
        high
    );
    Ok(())
}

/// The notes of a primer file a model of `role` hears (its drums for a drum model), on the grid.
pub fn primer_notes(path: &Path, role: Role) -> Result<Vec<GridNote>> {
    let song = midi::read_file(path)?;
    let grid = vocab::quantise(song.notes_for(role).map(Note::as_tuple));
    if grid.is_empty() {
        let kind = if role == Role::Drums { "drum" } else { "melodic" };
        bail!("{}: the primer has no {kind} notes", path.display());
    }
    Ok(grid)
}

/// Lets the model hear `primer`, then generates `bars` bars after it, against `harmony` (from
/// the first new step, for a model that follows one). Returns the new notes only, on the same
/// clock as the primer.
pub fn generate(
    model: Model,
    settings: GeneratorSettings,
    primer: &[GridNote],
    bars: u64,
    harmony: Option<&HarmonyTrack>,
) -> Result<Vec<GridNote>> {
    let hits = model.info().role == Role::Drums;
    let mut generator = Generator::new(model, settings)?;
    if let Some(harmony) = harmony.filter(|_| primer.is_empty()) {
        // The first token is read in the first chord, as a song's first token is in training.
        generator.change_harmony_at(0, harmony.at(0));
        generator.reset()?;
    }
    let primer = if hits { vocab::encode_hits(primer) } else { vocab::encode_grid(primer) };
    for token in primer {
        generator.feed(token)?;
    }
    let start = generator.now();
    let end = start + bars * BEATS_PER_BAR * STEPS_PER_BEAT as u64;
    let mut notes = NoteCollector::new();
    // A generous cap: even a bar of 32nd-note chords stays far below it.
    let mut cap = (bars as usize + 1) * 4096;
    match harmony {
        Some(harmony) if generator.follows_harmony() => {
            // One change at a time: the generator stops the model's time at it.
            generator.change_harmony_at(generator.now(), harmony.at(generator.now() - start));
            while generator.now() < end && cap > 0 {
                let next = start + harmony.next_change_after(generator.now() - start);
                generator.change_harmony_at(next, harmony.at(next - start));
                cap -= generator.generate_until(next.min(end), cap, |e| notes.push(e))?;
            }
        }
        _ => {
            generator.generate_until(end, cap, |e| notes.push(e))?;
        }
    }
    generator.release_all(|e| notes.push(e));
    Ok(notes.finish(generator.now()))
}
