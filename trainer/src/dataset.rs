//! The dataset on disk, and the windows of tokens training reads from it.
//!
//! Owns the format `prepare` writes and `train`/`eval` read: `index.json` (vocabulary, role,
//! shards, documents) and shards of 16-bit little-endian token ids, split into train and
//! validation by a hash of each file's path; for a part prepared against the others, beside each
//! shard its harmony stream (`.harmony`: each token's [`Harmony`], packed in 16 bits). Owns too
//! the random training windows (with transposition augmentation) and the fixed validation
//! windows.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use continuo_engine::harmony::{clocks_once_read, Harmony, METER_PERIODS};
use continuo_engine::midi::Role;
use continuo_engine::sampler::Rng;
use continuo_engine::vocab::{Token, VocabSpec};
use serde::{Deserialize, Serialize};

pub const FORMAT: &str = "continuo-dataset";
pub const VERSION: u32 = 1;
/// A shard holds at most this many tokens (64 MiB), so no file gets unwieldy.
const SHARD_TOKENS: usize = 32 * 1024 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Val,
}

impl Split {
    /// The split of a file, from a hash of its path (FNV-1a, the same on every machine).
    pub fn of(relative_path: &str, val_fraction: f64) -> Split {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in relative_path.bytes() {
            hash ^= byte as u64;
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        if (hash as f64 / u64::MAX as f64) < val_fraction {
            Split::Val
        } else {
            Split::Train
        }
    }

    fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Val => "val",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardEntry {
    pub file: String,
    pub split: Split,
    pub tokens: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentEntry {
    pub path: PathBuf,
    pub split: Split,
    /// Index into the shards of its split.
    pub shard: usize,
    /// Token offset inside the shard.
    pub offset: u64,
    pub tokens: u64,
    /// Semitones `prepare --same-key` moved the file by (0 otherwise): where its key was.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub moved: i32,
}

fn is_zero(moved: &i32) -> bool {
    *moved == 0
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Index {
    pub format: String,
    pub version: u32,
    pub vocab: VocabSpec,
    pub role: Role,
    /// How many notes the music sounds at once at nine in ten of its onsets (see `prepare`); None in
    /// datasets prepared before it was measured.
    #[serde(default)]
    pub voices: Option<u8>,
    /// What the part is played against, in words ("the other voices"), when every token has
    /// the harmony it is read in (`prepare --against`); None: tokens only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
    pub shards: Vec<ShardEntry>,
    pub documents: Vec<DocumentEntry>,
}

impl Index {
    pub fn load(dir: &Path) -> Result<Index> {
        let path = dir.join("index.json");
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "{}: cannot read the dataset index (make one with `continuo-train prepare`)",
                path.display()
            )
        })?;
        let index: Index = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a Continuo dataset index", path.display()))?;
        if index.format != FORMAT || index.version != VERSION {
            bail!(
                "{}: dataset format {} version {} is not {FORMAT} version {VERSION}; prepare it again",
                path.display(),
                index.format,
                index.version
            );
        }
        index.vocab.check().with_context(|| format!("{}: the dataset's vocabulary", path.display()))?;
        Ok(index)
    }
}

/// Appends documents' tokens to the shards of one split, written to the shard's file as they
/// come (through a small buffer): memory does not grow with the shard or the collection.
pub struct ShardWriter {
    dir: PathBuf,
    split: Split,
    /// The shard being written: its entry (tokens so far), its file and its harmony's.
    current:
        Option<(ShardEntry, std::io::BufWriter<std::fs::File>, Option<std::io::BufWriter<std::fs::File>>)>,
    written: Vec<ShardEntry>,
}

impl ShardWriter {
    pub fn new(dir: &Path, split: Split) -> ShardWriter {
        ShardWriter { dir: dir.to_path_buf(), split, current: None, written: Vec::new() }
    }

    /// Adds a document, and with `harmony` (one per token) its harmony stream; returns its shard
    /// index and offset.
    pub fn push(&mut self, tokens: &[u16], harmony: Option<&[u16]>) -> Result<(usize, u64)> {
        use std::io::Write;
        if self
            .current
            .as_ref()
            .is_some_and(|(entry, _, _)| entry.tokens as usize + tokens.len() > SHARD_TOKENS)
        {
            self.close()?;
        }
        if self.current.is_none() {
            let file = format!("{}-{:04}.tokens", self.split.name(), self.written.len());
            let path = self.dir.join(&file);
            let out =
                std::fs::File::create(&path).with_context(|| format!("{}: cannot write", path.display()))?;
            let harmony_out = match harmony {
                Some(_) => {
                    let path = self.dir.join(harmony_file(&file));
                    let out = std::fs::File::create(&path)
                        .with_context(|| format!("{}: cannot write", path.display()))?;
                    Some(std::io::BufWriter::new(out))
                }
                None => None,
            };
            let entry = ShardEntry { file, split: self.split, tokens: 0 };
            self.current = Some((entry, std::io::BufWriter::new(out), harmony_out));
        }
        let (entry, out, harmony_out) = self.current.as_mut().expect("a shard is open");
        let at = (self.written.len(), entry.tokens);
        let write = |out: &mut std::io::BufWriter<std::fs::File>, values: &[u16]| -> std::io::Result<()> {
            for value in values {
                out.write_all(&value.to_le_bytes())?;
            }
            Ok(())
        };
        write(out, tokens)
            .with_context(|| format!("{}: cannot write", self.dir.join(&entry.file).display()))?;
        match (harmony, harmony_out) {
            (Some(harmony), Some(harmony_out)) if harmony.len() == tokens.len() => {
                write(harmony_out, harmony).with_context(|| {
                    format!("{}: cannot write", self.dir.join(harmony_file(&entry.file)).display())
                })?
            }
            (None, None) => {}
            _ => bail!("a shard holds a harmony for every token of every document, or none"),
        }
        entry.tokens += tokens.len() as u64;
        Ok(at)
    }

    fn close(&mut self) -> Result<()> {
        use std::io::Write;
        if let Some((entry, mut out, harmony_out)) = self.current.take() {
            out.flush().with_context(|| format!("{}: cannot write", self.dir.join(&entry.file).display()))?;
            if let Some(mut harmony_out) = harmony_out {
                harmony_out.flush().with_context(|| {
                    format!("{}: cannot write", self.dir.join(harmony_file(&entry.file)).display())
                })?;
            }
            self.written.push(entry);
        }
        Ok(())
    }

    pub fn finish(mut self) -> Result<Vec<ShardEntry>> {
        self.close()?;
        Ok(self.written)
    }
}

/// The harmony stream beside the shard `file` (`train-0000.tokens` -> `train-0000.harmony`).
pub fn harmony_file(file: &str) -> String {
    format!("{}.harmony", file.strip_suffix(".tokens").unwrap_or(file))
}

/// What a model that follows the harmony hears with one input token: the harmony, packed
/// ([`Harmony::pack`]), and where the clock stands in the bar once the token is read (grid
/// steps, below [`BAR_STEPS`]).
pub type Heard = (u16, u8);

/// The 4/4 bar, in grid steps: the longest period of the meter a model hears.
pub const BAR_STEPS: u64 = METER_PERIODS[METER_PERIODS.len() - 1];

/// All tokens of one split, documents back to back. A window may cross from one song into the
/// next: every encoded song ends with all its notes released, so the model sees silence, then
/// a new start.
pub struct TokenStream {
    pub tokens: Vec<u16>,
    /// Each token's harmony ([`Harmony::pack`]), for a part prepared against the others; empty
    /// otherwise.
    pub harmony: Vec<u16>,
    /// Beside the harmony, where the clock stands in the bar once each token is read (grid
    /// steps from its song's first bar line, within the 4/4 bar), for a model that hears the
    /// meter; empty without a harmony.
    pub bar_place: Vec<u8>,
    pub documents: usize,
    /// Where each document starts in `tokens`, in index order.
    pub document_starts: Vec<usize>,
    /// How far `prepare --same-key` moved each document (see [`DocumentEntry::moved`]).
    pub document_moves: Vec<i32>,
}

/// Which keys training windows are transposed into.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Transposition {
    /// A random shift of up to this many semitones either way.
    Within(i32),
    /// The key of a random song of the data, as it was written: a dataset prepared with
    /// `--same-key` is in C, and each song remembers how far it moved. The model plays in the
    /// keys the music was written in, as often.
    IntoTheDatasKeys,
}

impl TokenStream {
    pub fn load(dir: &Path, index: &Index, split: Split) -> Result<TokenStream> {
        let mut tokens = Vec::new();
        let mut harmony = Vec::new();
        let mut shard_starts = Vec::new();
        let read = |file: &str, tokens: u64, into: &mut Vec<u16>| -> Result<()> {
            let path = dir.join(file);
            let bytes =
                std::fs::read(&path).with_context(|| format!("{}: cannot read the shard", path.display()))?;
            if bytes.len() as u64 != tokens * 2 {
                bail!(
                    "{}: {} bytes, but the index says {} tokens; prepare the dataset again",
                    path.display(),
                    bytes.len(),
                    tokens
                );
            }
            into.extend(bytes.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])));
            Ok(())
        };
        for shard in index.shards.iter().filter(|s| s.split == split) {
            shard_starts.push(tokens.len());
            read(&shard.file, shard.tokens, &mut tokens)?;
            if index.against.is_some() {
                read(&harmony_file(&shard.file), shard.tokens, &mut harmony)?;
            }
        }
        if let Some(bad) = tokens.iter().find(|&&t| t as u32 >= index.vocab.size) {
            bail!("{}: token {bad} is outside the vocabulary; prepare the dataset again", dir.display());
        }
        if let Some(bad) = harmony.iter().find(|&&h| Harmony::unpack(h).is_none()) {
            bail!("{}: harmony {bad:#06x} cannot be read; prepare the dataset again", dir.display());
        }
        let document_starts: Vec<usize> = index
            .documents
            .iter()
            .filter(|d| d.split == split)
            .map(|d| shard_starts.get(d.shard).copied().unwrap_or(tokens.len()) + d.offset as usize)
            .collect();
        if document_starts.iter().any(|&start| start > tokens.len()) {
            bail!(
                "{}: the index points past the {} shards; prepare the dataset again",
                dir.display(),
                split.name()
            );
        }
        let document_moves = index.documents.iter().filter(|d| d.split == split).map(|d| d.moved).collect();
        let bar_place = if harmony.is_empty() { Vec::new() } else { bar_places(&tokens, &document_starts) };
        Ok(TokenStream {
            tokens,
            harmony,
            bar_place,
            documents: document_starts.len(),
            document_starts,
            document_moves,
        })
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Each document's tokens.
    pub fn document_slices(&self) -> impl Iterator<Item = &[u16]> {
        self.documents_with_harmony().map(|(tokens, _)| tokens)
    }

    /// Each document's tokens and their harmony (empty without a harmony stream).
    pub fn documents_with_harmony(&self) -> impl Iterator<Item = (&[u16], &[u16])> {
        let ends = self.document_starts.iter().skip(1).copied().chain(std::iter::once(self.tokens.len()));
        self.document_starts.iter().zip(ends).map(|(&start, end)| {
            let harmony = if self.has_harmony() { &self.harmony[start..end] } else { &[][..] };
            (&self.tokens[start..end], harmony)
        })
    }

    /// The token the documents start with most often (the smallest id among equals); None
    /// without documents.
    pub fn usual_first_token(&self) -> Option<u16> {
        let mut counts = std::collections::BTreeMap::new();
        for document in self.document_slices() {
            if let Some(&first) = document.first() {
                *counts.entry(first).or_insert(0usize) += 1;
            }
        }
        counts
            .into_iter()
            .max_by_key(|&(token, count)| (count, std::cmp::Reverse(token)))
            .map(|(token, _)| token)
    }

    /// Whether the documents remember being moved into one key (`prepare --same-key`).
    pub fn is_in_one_key(&self) -> bool {
        self.document_moves.iter().any(|&m| m != 0)
    }

    /// Whether every token has its harmony (a part prepared against the others).
    pub fn has_harmony(&self) -> bool {
        !self.harmony.is_empty()
    }

    /// What each of `len` inputs from `start` is heard with, its harmony transposed by `shift`.
    fn heard(&self, start: usize, len: usize, shift: i32) -> impl Iterator<Item = Heard> + '_ {
        let end = (start + len).min(self.harmony.len());
        let harmony = self.harmony[start.min(end)..end].iter().map(move |&h| transpose_packed(h, shift));
        harmony.zip(self.bar_place[start.min(end)..end].iter().copied())
    }

    /// A random window of `len` + 1 tokens (inputs and the targets shifted by one), transposed
    /// as `transposition` says, as far as every pitch in it stays in 0..=127; with a harmony
    /// stream, what each of the `len` inputs is heard with, transposed alike, into `harmony`.
    pub fn random_window(
        &self,
        len: usize,
        transposition: Transposition,
        rng: &mut Rng,
        out: &mut Vec<u32>,
        harmony: &mut Vec<Heard>,
    ) {
        let span = len + 1;
        let start = if self.tokens.len() > span {
            (rng.next_u64() % (self.tokens.len() - span) as u64) as usize
        } else {
            0
        };
        out.clear();
        out.extend(self.tokens[start..(start + span).min(self.tokens.len())].iter().map(|&t| t as u32));
        let (low, high) = pitch_span(out);
        let (lowest_shift, highest_shift) = (-(low as i32), 127 - high as i32);
        let shift = match transposition {
            Transposition::Within(0) => 0,
            Transposition::Within(transpose) => {
                let (down, up) = (transpose.min(-lowest_shift), transpose.min(highest_shift));
                (rng.next_u64() % (down + up + 1) as u64) as i32 - down
            }
            Transposition::IntoTheDatasKeys if self.document_moves.is_empty() => 0,
            Transposition::IntoTheDatasKeys => {
                let song = (rng.next_u64() % self.document_moves.len() as u64) as usize;
                (-self.document_moves[song]).clamp(lowest_shift.min(0), highest_shift.max(0))
            }
        };
        if shift != 0 {
            transpose_tokens(out, shift);
        }
        harmony.clear();
        harmony.extend(self.heard(start, len, shift));
    }

    /// Consecutive windows of `len` + 1 tokens from the start, at most `max_tokens` in all, with
    /// what their `len` inputs are heard with (empty without a harmony stream): the same every
    /// time, so validation losses compare across steps and runs.
    pub fn fixed_windows(&self, len: usize, max_tokens: usize) -> Vec<(Vec<u32>, Vec<Heard>)> {
        self.tokens
            .chunks_exact(len + 1)
            .take((max_tokens / (len + 1)).max(1))
            .enumerate()
            .map(|(i, w)| {
                (w.iter().map(|&t| t as u32).collect(), self.heard(i * (len + 1), len, 0).collect())
            })
            .collect()
    }
}

/// Where the clock stands in the bar once each token is read, counted from each song's start:
/// every song starts on a bar line (prepare starts it at its first note's bar).
fn bar_places(tokens: &[u16], document_starts: &[usize]) -> Vec<u8> {
    let mut places = Vec::with_capacity(tokens.len());
    // The first song's clock starts at the stream's start.
    let starts = std::iter::once(0).chain(document_starts.iter().skip(1).copied());
    let ends = document_starts.iter().skip(1).copied().chain(std::iter::once(tokens.len()));
    for (start, end) in starts.zip(ends) {
        let clocks = clocks_once_read(tokens[start..end].iter().map(|&t| t as u32));
        places.extend(clocks.map(|clock| (clock % BAR_STEPS) as u8));
    }
    places
}

/// Lowest and highest pitch of the notes in a window (127, 0 if none).
fn pitch_span(tokens: &[u32]) -> (u8, u8) {
    tokens.iter().fold((127, 0), |(low, high), &id| match Token::from_id(id) {
        Some(Token::NoteOn(p)) | Some(Token::NoteOff(p)) => (low.min(p), high.max(p)),
        _ => (low, high),
    })
}

/// A packed harmony moved by `shift` semitones.
fn transpose_packed(packed: u16, shift: i32) -> u16 {
    match Harmony::unpack(packed) {
        Some(harmony) if shift != 0 => harmony.transposed(shift).pack(),
        _ => packed,
    }
}

/// Moves every NOTE_ON and NOTE_OFF by `shift` semitones; the caller keeps pitches in range.
pub fn transpose_tokens(tokens: &mut [u32], shift: i32) {
    for id in tokens.iter_mut() {
        *id = match Token::from_id(*id) {
            Some(Token::NoteOn(p)) => Token::NoteOn((p as i32 + shift).clamp(0, 127) as u8).id(),
            Some(Token::NoteOff(p)) => Token::NoteOff((p as i32 + shift).clamp(0, 127) as u8).id(),
            _ => *id,
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_split_depends_only_on_the_path() {
        let paths: Vec<String> = (0..2000).map(|i| format!("lmd/{}/{i}.mid", i % 16)).collect();
        let val = paths.iter().filter(|p| Split::of(p, 0.1) == Split::Val).count();
        assert!((150..250).contains(&val), "{val} of 2000 in validation at 10%");
        assert_eq!(Split::of("a/b.mid", 0.5), Split::of("a/b.mid", 0.5));
        // Raising the fraction only moves files into validation, never out.
        assert!(paths.iter().all(|p| Split::of(p, 0.1) == Split::Train || Split::of(p, 0.2) == Split::Val));
    }

    #[test]
    fn each_song_counts_its_bar_from_its_start() {
        let ids = |tokens: &[Token]| tokens.iter().map(|t| t.id() as u16).collect::<Vec<_>>();
        // A song a bar and three quarters long, then another: its clock starts again.
        let first = [Token::NoteOn(60), Token::TimeShift(24), Token::TimeShift(96), Token::TimeShift(48)];
        let second = [Token::Velocity(3), Token::TimeShift(6), Token::NoteOn(62)];
        let tokens = [ids(&first), ids(&second)].concat();
        assert_eq!(bar_places(&tokens, &[0, 4]), [0, 24, 24, 72, 0, 6, 6]);
    }

    #[test]
    fn transposed_windows_keep_every_pitch_in_range() {
        let stream = TokenStream {
            tokens: [Token::NoteOn(2), Token::TimeShift(4), Token::NoteOff(2), Token::NoteOn(125)]
                .iter()
                .map(|t| t.id() as u16)
                .collect(),
            documents: 1,
            document_starts: vec![0],
            document_moves: vec![0],
            harmony: vec![],
            bar_place: vec![],
        };
        let mut rng = Rng::new(3);
        let mut window = Vec::new();
        let mut shifts = std::collections::BTreeSet::new();
        for _ in 0..200 {
            stream.random_window(3, Transposition::Within(5), &mut rng, &mut window, &mut vec![]);
            let (low, high) = pitch_span(&window);
            shifts.insert(low as i32 - 2);
            assert!(high <= 127 && low as i32 - 2 >= -2 && high as i32 - 125 <= 2);
        }
        assert_eq!(shifts.into_iter().collect::<Vec<_>>(), vec![-2, -1, 0, 1, 2]);
    }

    #[test]
    fn windows_go_into_the_keys_the_songs_were_written_in() {
        // Three songs moved into C by -2, -2 and +5 (written in D, D and G): windows move by +2
        // twice as often as by -5, and never otherwise.
        let stream = TokenStream {
            tokens: [Token::NoteOn(60), Token::TimeShift(4), Token::NoteOff(60)]
                .iter()
                .map(|t| t.id() as u16)
                .collect(),
            documents: 3,
            document_starts: vec![0, 1, 2],
            document_moves: vec![-2, -2, 5],
            harmony: vec![],
            bar_place: vec![],
        };
        assert!(stream.is_in_one_key());
        let mut rng = Rng::new(8);
        let mut window = Vec::new();
        let mut shifts = std::collections::BTreeMap::new();
        for _ in 0..3000 {
            stream.random_window(2, Transposition::IntoTheDatasKeys, &mut rng, &mut window, &mut vec![]);
            *shifts.entry(pitch_span(&window).0 as i32 - 60).or_insert(0) += 1;
        }
        assert_eq!(shifts.keys().copied().collect::<Vec<_>>(), vec![-5, 2]);
        assert!((1800..2200).contains(&shifts[&2]), "{shifts:?}");
    }
}
