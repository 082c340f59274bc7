//! `prepare`: MIDI folders -> a dataset of token shards.
//!
//! Owns finding MIDI files, reading and encoding them in parallel (through the engine's reader
//! and vocabulary), the deterministic train/validation split, writing shards and the index, and
//! the report of what was read and what was rejected and why. The dataset's on-disk format is
//! [`crate::dataset`]'s.
//!
//! Memory does not grow with the collection: the folders are walked as a stream, a batch of
//! files at a time, tokens go to the shards as they are made, and the index's documents to a
//! file beside it (`IndexWriter`), joined into index.json at the end without reading them back
//! whole. Only the rejected files' names are kept, for the report.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use continuo_engine::harmony;
use continuo_engine::midi::{self, Family, Role};
use continuo_engine::music::{Scale, ScaleLock};
use continuo_engine::vocab::{self, VocabSpec};
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::{self, DocumentEntry, Index, ShardEntry, ShardWriter, Split};
use crate::progress;

/// Turn folders of MIDI files into a dataset of tokens for `train`.
///
/// Walks every DIR recursively (nested layouts like the Lakh MIDI Dataset's, or a plain folder)
/// for .mid, .midi, .smf and .kar files, in any letter case. Files are read and encoded on all
/// cores. Files that cannot be read are skipped and listed in stats.json by reason; nothing else
/// is lost.
///
/// The validation split is chosen by a hash of each file's path relative to its DIR, so adding
/// files to a collection never moves the old ones across the split.
///
/// Writes to --out: index.json (vocabulary, documents, shards), train-NNNN.tokens and
/// val-NNNN.tokens (16-bit little-endian token ids), and stats.json (files read and rejected,
/// notes, tokens, hours of music, pitch and velocity histograms, and what each General MIDI
/// instrument family holds).
#[derive(clap::Args)]
pub struct Args {
    /// Folders to read, searched recursively.
    #[arg(required = true)]
    pub dirs: Vec<PathBuf>,
    /// The dataset folder to write (created if needed).
    #[arg(long)]
    pub out: PathBuf,
    /// Which notes to learn: melodic instruments, or GM drums (channel 10).
    #[arg(long, value_enum, default_value = "melodic")]
    pub role: RoleArg,
    /// Learn only the notes of one General MIDI instrument family, as in a band's files: drums
    /// (channel 10), or a group of eight programs (piano 1-8, chromatic-percussion 9-16, organ
    /// 17-24, guitar 25-32, bass 33-40, strings 41-48, ensemble 49-56, brass 57-64, reed
    /// 65-72, pipe 73-80, synth-lead 81-88, synth-pad 89-96, synth-effects 97-104, ethnic
    /// 105-112, percussive 113-120, sound-effects 121-128). The role follows: drums learns
    /// drums, every other family melodic. Files without the family are skipped and counted in
    /// stats.json ("no bass notes"). With --part, the part is chosen among the family's: the
    /// highest of the pianos.
    #[arg(long, value_parser = family_names(), conflicts_with = "role")]
    pub family: Option<Family>,
    /// Which part of each file to learn: every part, or only the lowest or the highest, the
    /// middle ones (neither), or the lower ones (all but the highest). A part is a track (a
    /// channel of it, where one track holds several): the lowest is the one whose notes lie
    /// lowest on average (the bass of a chorale or a quartet, the bass track of a band
    /// arrangement), the highest its melody or soprano; the lower parts are the alto, tenor and
    /// bass under a soprano. With --family, among that family's parts only.
    #[arg(long, value_enum, default_value = "all")]
    pub part: Part,
    /// Learn the part against the other parts: beside each token, what the file's other melodic
    /// parts hold when it is read (their pitch classes and the lowest one's), and time passes in
    /// steps that stop at every beat and every change of that harmony. A model trained on it follows the
    /// harmony it is given (`generate --harmony`, the plugin's MIDI input). Files without
    /// another part are skipped ("nothing to play against").
    #[arg(long, value_enum)]
    pub against: Option<Against>,
    /// Move every note's start and end to the nearest sixteenth, 32nd or triplet line, as drum
    /// hits always are: for music whose timing is randomised (MMA's grooves play with random
    /// timing, `RTime`; a model trained on it puts its own notes a 1/24 beat off the beat).
    #[arg(long)]
    pub on_the_grid: bool,
    /// Learn only the files in this time signature throughout, such as 4/4 (a file that names
    /// none is in 4/4, as MIDI says); the others are skipped ("in another meter"). A model that
    /// hears the meter (`train --harmony pitch-classes-and-meter`) counts 4/4 bars: a waltz
    /// learned among them teaches it a bass that drifts across the bar line.
    #[arg(long, value_parser = parse_meter)]
    pub meter: Option<(u8, u16)>,
    /// Transpose every file into the key signature of C major and A minor (by at most six
    /// semitones, from the major scale that holds most of its notes' durations). Songs that
    /// follow each other in the training stream then share their key, so the model learns
    /// that music stays in its key past the end of a piece. Train with `--keys as-written` to
    /// move each window back into the key of a song as it was written (the built-in models), or
    /// with `--transpose 6` into any of the twelve.
    #[arg(long)]
    pub same_key: bool,
    /// Share of files held out for validation, chosen by a hash of their path.
    #[arg(long, default_value_t = 0.05)]
    pub val_fraction: f64,
}

/// What of each file becomes training data.
#[derive(Debug, Clone, Copy)]
pub struct NotesToLearn {
    pub role: Role,
    /// Only this instrument family's notes (`--family`); its role is `role`.
    pub family: Option<Family>,
    pub part: Part,
    /// Each file moved into the key signature of C (see `--same-key`).
    pub same_key: bool,
    /// The part learned against the others' harmony (`--against`).
    pub against: Option<Against>,
    /// Every melodic note's start and end moved to the groove grid (`--on-the-grid`).
    pub on_the_grid: bool,
    /// Only files in this time signature, (numerator, denominator) (`--meter`).
    pub meter: Option<(u8, u16)>,
}

/// What a part is learned against (`--against`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Against {
    /// The file's other melodic parts.
    Others,
}

impl Against {
    /// In words, for the dataset's index and the model card.
    pub fn describe(self) -> &'static str {
        match self {
            Against::Others => "the other parts",
        }
    }
}

impl NotesToLearn {
    /// A file's notes to learn, and the semitones they are to be moved by.
    fn of<'a>(&self, song: &'a midi::Song) -> (Vec<&'a midi::Note>, i32) {
        let of_family = |n: &&midi::Note| self.family.is_none_or(|family| family.includes(n));
        let notes = self.part.select(song.notes_for(self.role).filter(of_family).collect());
        let shift = if self.same_key && self.role == Role::Melodic { shift_to_c(&notes) } else { 0 };
        (notes, shift)
    }

    /// The notes the part `part` (of `song`) is played against: every other melodic note.
    fn others<'a>(&self, song: &'a midi::Song, part: &[&midi::Note]) -> Vec<&'a midi::Note> {
        let learned: std::collections::HashSet<*const midi::Note> =
            part.iter().map(|n| *n as *const _).collect();
        song.notes_for(Role::Melodic).filter(|n| !learned.contains(&(*n as *const _))).collect()
    }
}

/// The semitones (-6..=5) that move the major scale holding most of the notes' durations to
/// C major, or the other way round the octave when that keeps every pitch in 0..=127.
fn shift_to_c(notes: &[&midi::Note]) -> i32 {
    let mut weights = [0.0; 12];
    for n in notes {
        weights[n.pitch as usize % 12] += n.end - n.start;
    }
    let Some(key) = ScaleLock::best_fit(ScaleLock::in_keys(&[Scale::Major]), &weights) else { return 0 };
    let mut shift = (-(key.key as i32)).rem_euclid(12);
    if shift > 5 {
        shift -= 12;
    }
    let (low, high) = notes.iter().fold((127, 0), |(l, h), n| (n.pitch.min(l), n.pitch.max(h)));
    let fits = |s: i32| (0..=127).contains(&(low as i32 + s)) && (0..=127).contains(&(high as i32 + s));
    [shift, shift + 12, shift - 12].into_iter().find(|&s| fits(s)).unwrap_or(0)
}

/// Which part of a file is learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    #[default]
    All,
    Lowest,
    Highest,
    /// Neither the lowest nor the highest: the inner voices.
    Middle,
    /// All but the highest: the voices under the melody.
    Lower,
}

impl Part {
    /// The notes of this part among `notes` (a file's notes of one role).
    fn select(self, notes: Vec<&midi::Note>) -> Vec<&midi::Note> {
        if self == Part::All {
            return notes;
        }
        // Mean pitch of each (track, channel), parts from the lowest to the highest.
        let mut parts: BTreeMap<(usize, u8), (f64, usize)> = BTreeMap::new();
        for n in &notes {
            let entry = parts.entry((n.track, n.channel)).or_default();
            entry.0 += n.pitch as f64;
            entry.1 += 1;
        }
        let mean = |(sum, count): (f64, usize)| sum / count as f64;
        let mut by_height: Vec<((usize, u8), f64)> =
            parts.into_iter().map(|(part, stats)| (part, mean(stats))).collect();
        by_height.sort_by(|a, b| a.1.total_cmp(&b.1));
        let parts: Vec<(usize, u8)> = by_height.into_iter().map(|(part, _)| part).collect();
        let n = parts.len();
        let chosen: &[(usize, u8)] = match self {
            Part::All => unreachable!("returned above"),
            Part::Lowest => &parts[..n.min(1)],
            Part::Highest => &parts[n.saturating_sub(1)..],
            Part::Middle if n >= 3 => &parts[1..n - 1],
            Part::Lower if n >= 2 => &parts[..n - 1],
            Part::Middle | Part::Lower => &[],
        };
        notes.into_iter().filter(|n| chosen.contains(&(n.track, n.channel))).collect()
    }
}

/// `--family`'s values: the engine's family names, listed in `--help`.
fn family_names() -> impl clap::builder::TypedValueParser<Value = Family> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(Family::ALL.map(Family::name))
        .map(|name| name.parse::<Family>().expect("one of the listed names"))
}

#[derive(Clone, Copy, clap::ValueEnum)]
pub enum RoleArg {
    Melodic,
    Drums,
}

impl From<RoleArg> for Role {
    fn from(role: RoleArg) -> Role {
        match role {
            RoleArg::Melodic => Role::Melodic,
            RoleArg::Drums => Role::Drums,
        }
    }
}

/// File endings read as MIDI, compared without letter case.
const MIDI_EXTENSIONS: [&str; 4] = ["mid", "midi", "smf", "kar"];
/// Files are read in batches of this many, so memory stays bounded on a 176k-file collection.
const BATCH_FILES: usize = 4096;

/// What `prepare` found, written as stats.json.
#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct Stats {
    /// The part of each file that was read (`--part`).
    #[serde(default)]
    pub part: Part,
    /// Whether every file was moved into the key signature of C (`--same-key`).
    #[serde(default)]
    pub same_key: bool,
    /// What the part was learned against (`--against`).
    #[serde(default)]
    pub against: Option<Against>,
    /// The instrument family read (`--family`); none: every note of the role.
    #[serde(default)]
    pub family: Option<Family>,
    /// Files that could be read but hold no notes of `family`: skipped, and listed among the
    /// rejected ("no bass notes").
    #[serde(default)]
    pub files_without_family: u64,
    /// What each General MIDI family holds in the files that could be read, taken or not:
    /// the files with its notes, its notes, and those files' hours. Families no file plays are
    /// left out.
    #[serde(default)]
    pub families: BTreeMap<Family, FamilyStats>,
    pub files_found: u64,
    pub files_read: u64,
    pub files_rejected: u64,
    /// Rejected files grouped by reason, each with the file's path and the full message.
    pub rejected: BTreeMap<String, Vec<Rejected>>,
    pub notes: u64,
    pub train_tokens: u64,
    pub val_tokens: u64,
    pub train_files: u64,
    pub val_files: u64,
    pub hours: f64,
    /// Notes per MIDI pitch 0..128.
    pub pitch_histogram: Vec<u64>,
    /// Notes per MIDI velocity 0..128.
    pub velocity_histogram: Vec<u64>,
    /// Onsets by how many notes sound there (those starting included), 0..=16 (16: 16 or
    /// more), on the grid the model learns.
    #[serde(default)]
    pub polyphony_histogram: Vec<u64>,
    /// How many notes the music sounds at once at nine in ten of its onsets
    /// ([`VOICES_SHARE`]): what a model of it plays when the musician leaves Polyphony "as
    /// trained".
    #[serde(default)]
    pub voices: u8,
    pub seconds: f64,
    pub files_per_second: f64,
    /// The process's peak resident memory when done, in MB (Linux; 0 elsewhere).
    #[serde(default)]
    pub peak_memory_mb: f64,
}

#[derive(Debug, Default, Serialize, serde::Deserialize)]
pub struct FamilyStats {
    pub files: u64,
    pub notes: u64,
    pub hours: f64,
}

#[derive(Debug, Serialize, serde::Deserialize)]
pub struct Rejected {
    pub path: PathBuf,
    pub message: String,
}

/// One file, read and encoded.
struct Encoded {
    path: PathBuf,
    relative: String,
    tokens: Vec<u16>,
    /// Each token's harmony, packed (`--against`).
    harmony: Option<Vec<u16>>,
    notes: u64,
    seconds: f64,
    pitches: Vec<u8>,
    velocities: Vec<u8>,
    /// Onsets by the notes sounding there, as `Stats::polyphony_histogram`.
    polyphony: [u64; POLYPHONY_BINS],
    /// Semitones the file was moved by (`--same-key`).
    moved: i32,
    families: FamilyTally,
}

/// A file that gives nothing to learn, and why: `reason` groups it in the report, `message`
/// names it. `families` when it could be read.
#[derive(Debug)]
struct Rejection {
    path: PathBuf,
    reason: String,
    message: String,
    /// Boxed: the tally is large beside the rest, and most files are not rejected.
    families: Option<Box<FamilyTally>>,
}

/// Notes per General MIDI family (indexed as [`Family::ALL`]) in one file, and its length.
#[derive(Debug, Clone, Copy)]
struct FamilyTally {
    notes: [u64; Family::ALL.len()],
    seconds: f64,
}

impl FamilyTally {
    fn of(song: &midi::Song) -> FamilyTally {
        let mut notes = [0; Family::ALL.len()];
        for n in &song.notes {
            notes[Family::of(n).index()] += 1;
        }
        FamilyTally { notes, seconds: song.duration_seconds() }
    }

    /// The families the file plays, by name.
    fn names(&self) -> Vec<&'static str> {
        Family::ALL.into_iter().filter(|f| self.notes[f.index()] > 0).map(Family::name).collect()
    }

    fn add_to(&self, families: &mut BTreeMap<Family, FamilyStats>) {
        for family in Family::ALL.into_iter().filter(|f| self.notes[f.index()] > 0) {
            let entry = families.entry(family).or_default();
            entry.files += 1;
            entry.notes += self.notes[family.index()];
            entry.hours += self.seconds / 3600.0;
        }
    }
}

/// The share of onsets a dataset's `voices` cover: nine in ten. The chorales sound four notes
/// at 92% of their onsets and five or more at 8% (the few with instrumental parts), fiddle
/// tunes one note at 99%: "nearly always", without the rare extra voice.
const VOICES_SHARE: f64 = 0.9;

/// Bins of the polyphony histogram: 0..=16 notes sounding.
const POLYPHONY_BINS: usize = 17;

/// Onsets of `notes` (grid notes of one file) by how many notes sound there, those starting
/// included: held notes count, as a listener hears them.
fn polyphony_at_onsets(notes: &[vocab::GridNote]) -> [u64; POLYPHONY_BINS] {
    let mut notes = notes.to_vec();
    notes.sort_by_key(|n| n.start);
    let mut histogram = [0u64; POLYPHONY_BINS];
    let mut ends: Vec<u64> = Vec::new();
    let mut i = 0;
    while i < notes.len() {
        let now = notes[i].start;
        ends.retain(|&end| end > now);
        while i < notes.len() && notes[i].start == now {
            ends.push(notes[i].end);
            i += 1;
        }
        histogram[ends.len().min(POLYPHONY_BINS - 1)] += 1;
    }
    histogram
}

/// The fewest voices that cover `share` of the onsets of a polyphony histogram (at least 1).
fn voices_covering(histogram: &[u64], share: f64) -> u8 {
    let total: u64 = histogram.iter().sum();
    let mut covered = 0;
    for (voices, &count) in histogram.iter().enumerate() {
        covered += count;
        if covered as f64 >= share * total as f64 {
            return voices.max(1) as u8;
        }
    }
    (histogram.len() - 1) as u8
}

/// A time signature as written, "4/4" or "6/8".
fn parse_meter(text: &str) -> Result<(u8, u16), String> {
    let parsed = text
        .split_once('/')
        .and_then(|(n, d)| Some((n.trim().parse::<u8>().ok()?, d.trim().parse::<u16>().ok()?)));
    match parsed {
        Some((n, d)) if n > 0 && d.is_power_of_two() => Ok((n, d)),
        _ => Err(format!("'{text}' is not a time signature such as 4/4 or 6/8")),
    }
}

pub fn run(args: Args) -> Result<()> {
    let role = args.family.map_or(args.role.into(), Family::role);
    if args.against.is_some() && role == Role::Drums {
        bail!("--against learns a melodic part against the others' harmony; drums have no harmony to follow");
    }
    let learn = NotesToLearn {
        role,
        family: args.family,
        part: args.part,
        same_key: args.same_key,
        against: args.against,
        on_the_grid: args.on_the_grid,
        meter: args.meter,
    };
    let stats = prepare(&args.dirs, &args.out, learn, args.val_fraction, true)?;
    print_summary(&stats, &args.out);
    Ok(())
}

/// The MIDI files under each folder, as (path, path relative to its folder), in a stable
/// order (sorted by name in each folder), found as the walk goes: nothing is collected. A folder
/// that cannot be listed ends the walk with its name.
pub fn midi_files(dirs: &[PathBuf]) -> impl Iterator<Item = Result<(PathBuf, String)>> + '_ {
    dirs.iter().flat_map(|dir| {
        let walk = walkdir::WalkDir::new(dir).follow_links(true).sort_by_file_name();
        walk.into_iter().filter_map(move |entry| {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    return Some(Err(
                        anyhow::Error::new(e).context(format!("{}: cannot list the folder", dir.display()))
                    ))
                }
            };
            let is_midi = entry.file_type().is_file()
                && entry
                    .path()
                    .extension()
                    .and_then(|e| e.to_str())
                    .is_some_and(|e| MIDI_EXTENSIONS.iter().any(|m| m.eq_ignore_ascii_case(e)));
            is_midi.then(|| {
                let relative = entry.path().strip_prefix(dir).unwrap_or(entry.path());
                Ok((entry.path().to_path_buf(), relative.to_string_lossy().replace('\\', "/")))
            })
        })
    })
}

/// The dataset's index, written as the documents come: each document's entry goes to a file
/// beside it at once, and `finish` writes index.json around them, copying them over line by
/// line. The same JSON as [`Index::save`] writes, without holding the documents.
struct IndexWriter {
    dir: PathBuf,
    documents_path: PathBuf,
    documents: BufWriter<File>,
    count: u64,
}

impl IndexWriter {
    fn new(dir: &Path) -> Result<IndexWriter> {
        let documents_path = dir.join("index.documents.partial");
        let file = File::create(&documents_path)
            .with_context(|| format!("{}: cannot write", documents_path.display()))?;
        Ok(IndexWriter { dir: dir.to_path_buf(), documents_path, documents: BufWriter::new(file), count: 0 })
    }

    fn push(&mut self, document: &DocumentEntry) -> Result<()> {
        serde_json::to_writer(&mut self.documents, document)?;
        self.documents.write_all(b"\n")?;
        self.count += 1;
        Ok(())
    }

    fn finish(
        mut self,
        role: Role,
        voices: u8,
        against: Option<Against>,
        shards: Vec<ShardEntry>,
    ) -> Result<()> {
        self.documents.flush()?;
        drop(self.documents);
        let head = Index {
            format: dataset::FORMAT.into(),
            version: dataset::VERSION,
            vocab: VocabSpec::v1(),
            role,
            voices: Some(voices),
            against: against.map(|a| a.describe().to_string()),
            shards,
            documents: Vec::new(),
        };
        // The index without documents, then its documents array filled from the file.
        let head = serde_json::to_string(&head)?;
        let empty = "\"documents\":[]}";
        let head = head.strip_suffix(empty).context("the index's documents come last")?;
        let path = self.dir.join("index.json");
        let write = || -> Result<()> {
            let mut out = BufWriter::new(File::create(&path)?);
            out.write_all(head.as_bytes())?;
            out.write_all(b"\"documents\":[")?;
            let lines = BufReader::new(File::open(&self.documents_path)?).lines();
            for (i, line) in lines.enumerate() {
                if i > 0 {
                    out.write_all(b",")?;
                }
                out.write_all(line?.as_bytes())?;
            }
            out.write_all(b"]}")?;
            out.flush()?;
            Ok(())
        };
        write().with_context(|| format!("{}: cannot write", path.display()))?;
        std::fs::remove_file(&self.documents_path).ok();
        Ok(())
    }
}

pub fn prepare(
    dirs: &[PathBuf],
    out: &Path,
    learn: NotesToLearn,
    val_fraction: f64,
    show_progress: bool,
) -> Result<Stats> {
    if !(0.0..1.0).contains(&val_fraction) {
        bail!("--val-fraction must be at least 0 and below 1, not {val_fraction}");
    }
    let started = Instant::now();
    // A first walk only counts, for the progress bar; the second reads.
    let found = midi_files(dirs).try_fold(0u64, |n, file| file.map(|_| n + 1))?;
    if found == 0 {
        let names: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        bail!(
            "no MIDI files under {} (looked for {} files, in any letter case)",
            names.join(", "),
            MIDI_EXTENSIONS.map(|e| format!(".{e}")).join(", ")
        );
    }
    std::fs::create_dir_all(out)
        .with_context(|| format!("{}: cannot create the dataset folder", out.display()))?;

    let mut stats = Stats {
        part: learn.part,
        same_key: learn.same_key,
        against: learn.against,
        family: learn.family,
        files_found: found,
        pitch_histogram: vec![0; 128],
        velocity_histogram: vec![0; 128],
        polyphony_histogram: vec![0; POLYPHONY_BINS],
        ..Default::default()
    };
    let mut train = ShardWriter::new(out, Split::Train);
    let mut val = ShardWriter::new(out, Split::Val);
    let mut index = IndexWriter::new(out)?;
    let bar = if show_progress { progress::bar(found, "files") } else { indicatif::ProgressBar::hidden() };

    let mut files = midi_files(dirs);
    let mut batch = Vec::with_capacity(BATCH_FILES);
    loop {
        batch.clear();
        for file in files.by_ref().take(BATCH_FILES) {
            batch.push(file?);
        }
        if batch.is_empty() {
            break;
        }
        let results: Vec<Result<Encoded, Rejection>> = batch
            .par_iter()
            .map(|(path, relative)| {
                let result = encode_file(path, relative, learn);
                bar.inc(1);
                result
            })
            .collect();
        for result in results {
            match result {
                Ok(encoded) => {
                    encoded.families.add_to(&mut stats.families);
                    let split = Split::of(&encoded.relative, val_fraction);
                    let writer = if split == Split::Train { &mut train } else { &mut val };
                    let (shard, offset) = writer.push(&encoded.tokens, encoded.harmony.as_deref())?;
                    match split {
                        Split::Train => {
                            (stats.train_files += 1, stats.train_tokens += encoded.tokens.len() as u64)
                        }
                        Split::Val => (stats.val_files += 1, stats.val_tokens += encoded.tokens.len() as u64),
                    };
                    stats.files_read += 1;
                    stats.notes += encoded.notes;
                    stats.hours += encoded.seconds / 3600.0;
                    for &p in &encoded.pitches {
                        stats.pitch_histogram[p as usize] += 1;
                    }
                    for &v in &encoded.velocities {
                        stats.velocity_histogram[v as usize] += 1;
                    }
                    stats.polyphony_histogram.iter_mut().zip(encoded.polyphony).for_each(|(s, n)| *s += n);
                    index.push(&DocumentEntry {
                        path: encoded.path,
                        split,
                        shard,
                        offset,
                        tokens: encoded.tokens.len() as u64,
                        moved: encoded.moved,
                    })?;
                }
                Err(Rejection { path, reason, message, families }) => {
                    if let Some(families) = families {
                        families.add_to(&mut stats.families);
                        stats.files_without_family += learn.family.is_some() as u64;
                    }
                    stats.files_rejected += 1;
                    stats.rejected.entry(reason).or_default().push(Rejected { path, message });
                }
            }
        }
        bar.set_message(format!("{} rejected", stats.files_rejected));
    }
    bar.finish_and_clear();

    if stats.files_read == 0 {
        bail!(
            "none of the {} MIDI files could be used; the first problem: {}",
            stats.files_found,
            stats.rejected.values().flatten().next().map(|r| r.message.as_str()).unwrap_or("none")
        );
    }
    stats.voices = voices_covering(&stats.polyphony_histogram, VOICES_SHARE);
    index.finish(learn.role, stats.voices, learn.against, [train.finish()?, val.finish()?].concat())?;
    stats.seconds = started.elapsed().as_secs_f64();
    stats.files_per_second = stats.files_found as f64 / stats.seconds.max(1e-9);
    stats.peak_memory_mb = peak_memory_mb();
    let stats_path = out.join("stats.json");
    std::fs::write(&stats_path, serde_json::to_string_pretty(&stats)?)
        .with_context(|| format!("{}: cannot write", stats_path.display()))?;
    Ok(stats)
}

/// Reads and encodes one file.
fn encode_file(path: &Path, relative: &str, learn: NotesToLearn) -> Result<Encoded, Rejection> {
    let song = midi::read_file(path).map_err(|e| Rejection {
        path: path.to_path_buf(),
        reason: e.problem.reason().to_string(),
        message: e.to_string(),
        families: None,
    })?;
    let families = FamilyTally::of(&song);
    if let Some((numerator, denominator)) = learn.meter {
        let other =
            song.time_signatures.iter().find(|t| (t.numerator, t.denominator) != (numerator, denominator));
        if let Some(other) = other {
            return Err(Rejection {
                path: path.to_path_buf(),
                reason: "in another meter".into(),
                message: format!(
                    "{}: in {}/{} from beat {}, not the {numerator}/{denominator} asked for (--meter)",
                    path.display(),
                    other.numerator,
                    other.denominator,
                    other.beat
                ),
                families: Some(Box::new(families)),
            });
        }
    }
    let (notes, shift) = learn.of(&song);
    if notes.is_empty() {
        let (reason, message) = match learn.family {
            Some(family) => {
                let name = if family == Family::Drums { "drum" } else { family.name() };
                let plays = families.names();
                let plays = if plays.is_empty() { "nothing".to_string() } else { plays.join(", ") };
                (
                    format!("no {name} notes"),
                    format!(
                        "{}: has no {name} notes (General MIDI {}) to learn from; it plays {plays}",
                        path.display(),
                        family.gm_place()
                    ),
                )
            }
            None => {
                let name = match learn.role {
                    Role::Melodic => "melodic",
                    Role::Drums => "drum",
                };
                let message = format!("{}: has no {name} notes to learn from", path.display());
                (format!("no {name} notes"), message)
            }
        };
        return Err(Rejection {
            path: path.to_path_buf(),
            reason,
            message,
            families: Some(Box::new(families)),
        });
    }
    // Leading silence teaches nothing: start at the first note's bar (4 beats), keeping its
    // place in the bar.
    let first = notes.iter().map(|n| n.start).fold(f64::INFINITY, f64::min);
    let offset = (first / 4.0).floor() * 4.0;
    // A drum hit goes to the nearest line of the groove grid, and so does every start and end
    // with --on-the-grid; every other note to its step.
    let snap = |beats: f64| if learn.on_the_grid { vocab::on_the_drum_grid(beats) } else { beats };
    let start = |beats: f64| match learn.role {
        Role::Melodic => snap(beats),
        Role::Drums => vocab::on_the_drum_grid(beats),
    };
    let on_the_grid = |notes: &[&midi::Note], start: &dyn Fn(f64) -> f64| {
        vocab::quantise(notes.iter().filter(|n| n.end > offset).map(|n| {
            let end = snap(n.end - offset);
            ((n.pitch as i32 + shift) as u8, n.velocity, start((n.start - offset).max(0.0)), end)
        }))
    };
    let grid = on_the_grid(&notes, &start);
    let mut harmony = None;
    let (tokens, decoded) = match learn.role {
        Role::Melodic if learn.against.is_some() => {
            let others = learn.others(&song, &notes);
            if others.is_empty() {
                return Err(Rejection {
                    path: path.to_path_buf(),
                    reason: "nothing to play against".into(),
                    message: format!(
                        "{}: has no other part for this one to be played against",
                        path.display()
                    ),
                    families: Some(Box::new(families)),
                });
            }
            let changes = harmony::harmony_changes(&on_the_grid(&others, &snap));
            let (tokens, heard) = harmony::encode_against(&grid, &changes);
            harmony = Some(heard.iter().map(|h| h.pack()).collect());
            let decoded = vocab::decode(&tokens);
            (tokens, decoded)
        }
        Role::Melodic => {
            let tokens = vocab::encode_grid(&grid);
            let decoded = vocab::decode(&tokens);
            (tokens, decoded)
        }
        Role::Drums => {
            let tokens = vocab::encode_hits(&grid);
            let decoded = vocab::decode_hits(&tokens);
            (tokens, decoded)
        }
    };
    let polyphony = polyphony_at_onsets(&decoded);
    let tokens: Vec<u16> = tokens.iter().map(|t| t.id() as u16).collect();
    Ok(Encoded {
        path: path.to_path_buf(),
        relative: relative.to_string(),
        tokens,
        harmony,
        notes: notes.len() as u64,
        seconds: song.duration_seconds(),
        pitches: notes.iter().map(|n| (n.pitch as i32 + shift) as u8).collect(),
        velocities: notes.iter().map(|n| n.velocity).collect(),
        polyphony,
        moved: shift,
        families,
    })
}

/// The process's peak resident memory (VmHWM), in MB; 0 where /proc does not say.
fn peak_memory_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok());
    kb.unwrap_or(0.0) / 1024.0
}

fn print_summary(stats: &Stats, out: &Path) {
    println!(
        "prepared {} in {} (peak memory {:.0} MB)",
        out.display(),
        progress::duration(stats.seconds),
        stats.peak_memory_mb
    );
    println!(
        "  files      {} found, {} read, {} rejected ({:.0} files/s)",
        stats.files_found, stats.files_read, stats.files_rejected, stats.files_per_second
    );
    println!("  music      {} notes, {:.2} hours", stats.notes, stats.hours);
    if let Some(family) = stats.family {
        println!(
            "  family     {family}: {} files, {} notes, {:.2} hours taken; {} files without {family}",
            stats.files_read, stats.notes, stats.hours, stats.files_without_family
        );
    }
    println!(
        "  tokens     {} train ({} files), {} validation ({} files)",
        stats.train_tokens, stats.train_files, stats.val_tokens, stats.val_files
    );
    for (reason, files) in &stats.rejected {
        println!("  rejected   {:>6} {reason}, e.g. {}", files.len(), files[0].message);
    }
    let heading = "in the files that could be read:";
    println!("  families   {heading:<35}{:>8}{:>11}{:>9}", "files", "notes", "hours");
    for (family, found) in &stats.families {
        println!(
            "             {:<35}{:>8}{:>11}{:>9.2}",
            family.name(),
            found.files,
            found.notes,
            found.hours
        );
    }
    println!("  details    {}", out.join("stats.json").display());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_streamed_index_reads_back_as_written() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = IndexWriter::new(dir.path()).unwrap();
        let documents: Vec<DocumentEntry> = (0..3)
            .map(|i| DocumentEntry {
                path: PathBuf::from(format!("songs/\"odd\" name {i}.mid")),
                split: if i == 1 { Split::Val } else { Split::Train },
                shard: 0,
                offset: i * 100,
                tokens: 100,
                moved: i as i32 - 1,
            })
            .collect();
        for document in &documents {
            writer.push(document).unwrap();
        }
        writer.finish(Role::Melodic, 4, None, Vec::new()).unwrap();
        let index = Index::load(dir.path()).unwrap();
        assert_eq!(format!("{:?}", index.documents), format!("{documents:?}"));
        assert!(!dir.path().join("index.documents.partial").exists());
    }

    #[test]
    fn the_lowest_part_of_a_chorale_is_its_bass_and_the_highest_its_soprano() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/midi/bwv1.6.mid");
        let song = midi::read_file(&path).unwrap();
        let notes: Vec<&midi::Note> = song.notes_for(Role::Melodic).collect();
        let mean =
            |notes: &[&midi::Note]| notes.iter().map(|n| n.pitch as f64).sum::<f64>() / notes.len() as f64;
        let tracks: std::collections::BTreeSet<usize> = notes.iter().map(|n| n.track).collect();
        assert!(tracks.len() >= 4, "a four-part chorale, one track a voice: {tracks:?}");
        let (low, high) = (Part::Lowest.select(notes.clone()), Part::Highest.select(notes.clone()));
        for (part, chosen) in [("lowest", &low), ("highest", &high)] {
            assert!(
                !chosen.is_empty() && chosen.iter().all(|n| n.track == chosen[0].track),
                "{part}: one track"
            );
        }
        for track in tracks {
            let voice: Vec<&midi::Note> = notes.iter().copied().filter(|n| n.track == track).collect();
            assert!(mean(&low) <= mean(&voice) && mean(&high) >= mean(&voice), "track {track}");
        }
        assert!(mean(&low) + 12.0 < mean(&high));
        assert_eq!(Part::All.select(notes.clone()).len(), notes.len());
    }

    #[test]
    fn same_key_moves_every_chorale_and_tune_into_c_major() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/midi");
        let learn = NotesToLearn {
            role: Role::Melodic,
            family: None,
            part: Part::All,
            same_key: true,
            against: None,
            on_the_grid: false,
            meter: None,
        };
        let mut shifts = Vec::new();
        for name in ["bwv1.6.mid", "bwv248.64-6.mid", "bwv323.mid", "42dHighlandRegimentStrathspey.mid"] {
            let song = midi::read_file(&fixtures.join(name)).unwrap();
            let (notes, shift) = learn.of(&song);
            assert!((-6..=5).contains(&shift), "{name}: {shift}");
            let mut weights = [0.0; 12];
            for n in &notes {
                weights[(n.pitch as i32 + shift) as usize % 12] += n.end - n.start;
            }
            let key = ScaleLock::best_fit(ScaleLock::in_keys(&[Scale::Major]), &weights).unwrap();
            assert_eq!(key.key, 0, "{name} moved by {shift}");
            shifts.push(shift);
        }
        assert!(shifts.iter().any(|&s| s != 0), "the fixtures are not all in C already: {shifts:?}");
        let as_is = NotesToLearn { same_key: false, ..learn };
        let song = midi::read_file(&fixtures.join("bwv1.6.mid")).unwrap();
        assert_eq!(as_is.of(&song).1, 0);
    }

    #[test]
    fn a_chorale_sounds_four_voices_and_a_fiddle_tune_one() {
        let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/midi");
        let learn = NotesToLearn {
            role: Role::Melodic,
            family: None,
            part: Part::All,
            same_key: false,
            against: None,
            on_the_grid: false,
            meter: None,
        };
        let voices = |name: &str, learn: NotesToLearn| {
            let encoded = encode_file(&fixtures.join(name), name, learn).unwrap();
            voices_covering(&encoded.polyphony, VOICES_SHARE)
        };
        assert_eq!(voices("bwv323.mid", learn), 4);
        assert_eq!(voices("42dHighlandRegimentStrathspey.mid", learn), 1);
        assert_eq!(voices("bwv1.6.mid", NotesToLearn { part: Part::Lowest, ..learn }), 1);
        assert_eq!(voices_covering(&[0, 90, 9, 1], 0.99), 2);
        assert_eq!(voices_covering(&[5, 0, 0], 0.99), 1, "silence still plays a voice");
    }

    #[test]
    fn on_the_grid_a_humanised_bass_and_its_chords_move_to_the_groove_grid() {
        // A bass a few ticks off its beats (MMA's random timing), under chords likewise.
        let dir = tempfile::tempdir().unwrap();
        let note = |pitch: u8, start: f64, end: f64, track: usize| midi::Note {
            pitch,
            velocity: 90,
            start,
            end,
            channel: track as u8,
            program: if track == 0 { 33 } else { 0 },
            is_drum: false,
            track,
        };
        let mut notes = Vec::new();
        for beat in 0..8 {
            let jitter = [0.04, -0.03, 0.02, -0.045][beat % 4];
            notes.push(note(
                36 + (beat % 2) as u8 * 7,
                beat as f64 + 4.0 + jitter,
                beat as f64 + 4.9 + jitter,
                0,
            ));
            notes.extend([60, 64, 67].map(|p| note(p, beat as f64 + 4.0 - jitter, beat as f64 + 4.97, 1)));
        }
        let path = dir.path().join("humanised.mid");
        midi::write_file(&path, &notes, 120.0, None).unwrap();
        let learn = NotesToLearn {
            role: Role::Melodic,
            family: Some(Family::Bass),
            part: Part::All,
            same_key: false,
            against: Some(Against::Others),
            on_the_grid: true,
            meter: Some((4, 4)),
        };
        // Written in 4/4: asked for 3/4 it is skipped, saying so.
        let waltz = NotesToLearn { meter: Some((3, 4)), ..learn };
        let rejected = encode_file(&path, "humanised.mid", waltz).err().expect("not in 3/4");
        assert_eq!(rejected.reason, "in another meter");
        assert!(
            rejected.message.ends_with("in 4/4 from beat 0, not the 3/4 asked for (--meter)"),
            "{}",
            rejected.message
        );
        assert_eq!(parse_meter("6/8"), Ok((6, 8)));
        assert!(parse_meter("4/3").is_err() && parse_meter("waltz").is_err());
        let tokens = |learn: NotesToLearn| {
            let encoded = encode_file(&path, "humanised.mid", learn).unwrap();
            let tokens: Vec<vocab::Token> =
                encoded.tokens.iter().map(|&t| vocab::Token::from_id(t as u32).unwrap()).collect();
            vocab::decode(&tokens)
        };
        let snapped = tokens(learn);
        assert_eq!(snapped.len(), 8);
        assert!(snapped.iter().all(|n| n.start % 24 == 0), "{snapped:?}");
        assert!(snapped.iter().all(|n| n.end % 3 == 0 || n.end % 4 == 0), "{snapped:?}");
        let as_played = tokens(NotesToLearn { on_the_grid: false, ..learn });
        assert!(as_played.iter().any(|n| n.start % 24 != 0), "the file is humanised: {as_played:?}");
    }
}
