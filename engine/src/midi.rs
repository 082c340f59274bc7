//! MIDI files: reading a user's collection into notes on a beat axis, and writing notes back.
//!
//! Owns the Standard MIDI File container (chunks, header, time division), pairing note-ons with
//! note-offs, the tempo and time-signature maps, and the errors a damaged file gets. Event bytes
//! are decoded by `midly` in its strict mode; the chunk walk is ours so that every problem can
//! name the file, the chunk and what is wrong. Nothing here knows about tokens: the vocabulary
//! takes the [`Note`]s this module returns.
//!
//! A broken file never panics. It returns a [`MidiError`] that names the file and a
//! [`MidiProblem`], whose [`MidiProblem::reason`] groups rejects in the trainer's report.

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};

use midly::{MetaMessage, MidiMessage, TrackEventKind};

use crate::vocab::{steps_to_beats, GridNote};

/// Files larger than this are refused before they are read: the largest real songs are a few
/// MB, and a bigger file is almost certainly not a MIDI file or is damaged.
pub const MAX_FILE_BYTES: u64 = 32 * 1024 * 1024;
/// An event later than this (about 14 hours at 120 BPM) means a corrupt delta time, not music.
pub const MAX_SONG_BEATS: f64 = 100_000.0;
/// GM puts drums on channel 10, which is 9 counting from 0.
pub const DRUM_CHANNEL: u8 = 9;
/// Resolution of files we write: 480 ticks per beat, a multiple of the 24-step grid.
pub const WRITE_PPQ: u16 = 480;
/// SMPTE-timed files carry no beats; they are read as if at this tempo.
pub const SMPTE_ASSUMED_BPM: f64 = DEFAULT_BPM;
/// The tempo of a MIDI file that sets none, by the standard; Continuo plays at it too when a
/// host gives no tempo, and `generate` writes it unless told otherwise.
pub const DEFAULT_BPM: f64 = 120.0;

/// One note as a file has it, placed on the beat axis (ticks / PPQ).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Note {
    pub pitch: u8,
    pub velocity: u8,
    pub start: f64,
    pub end: f64,
    /// 0..16; channel 10 of the GM standard is 9 here.
    pub channel: u8,
    /// GM program in force on the channel when the note started.
    pub program: u8,
    pub is_drum: bool,
    /// Index of the track chunk the note came from.
    pub track: usize,
}

impl Note {
    /// A melodic note on channel 1 with the grid note's timing.
    pub fn from_grid(note: &GridNote, channel: u8, program: u8) -> Note {
        Note {
            pitch: note.pitch,
            velocity: note.velocity,
            start: steps_to_beats(note.start),
            end: steps_to_beats(note.end),
            channel,
            program,
            is_drum: channel == DRUM_CHANNEL,
            track: 0,
        }
    }

    /// (pitch, velocity, start, end): what the vocabulary encodes.
    pub fn as_tuple(&self) -> (u8, u8, f64, f64) {
        (self.pitch, self.velocity, self.start, self.end)
    }
}

/// What a model is trained to play: pitched instruments, or GM drums. A model serves one role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Melodic,
    Drums,
}

impl Role {
    pub fn includes(self, note: &Note) -> bool {
        match self {
            Role::Melodic => !note.is_drum,
            Role::Drums => note.is_drum,
        }
    }
}

/// The General MIDI percussion key map: channel 10's kit pieces, from Acoustic Bass Drum (35)
/// to Open Triangle (81). What a drum model may strike.
pub const GM_KIT: std::ops::RangeInclusive<u8> = 35..=81;

const GM_KIT_NAMES: [&str; 47] = [
    "Acoustic Bass Drum",
    "Bass Drum 1",
    "Side Stick",
    "Acoustic Snare",
    "Hand Clap",
    "Electric Snare",
    "Low Floor Tom",
    "Closed Hi-Hat",
    "High Floor Tom",
    "Pedal Hi-Hat",
    "Low Tom",
    "Open Hi-Hat",
    "Low-Mid Tom",
    "Hi-Mid Tom",
    "Crash Cymbal 1",
    "High Tom",
    "Ride Cymbal 1",
    "Chinese Cymbal",
    "Ride Bell",
    "Tambourine",
    "Splash Cymbal",
    "Cowbell",
    "Crash Cymbal 2",
    "Vibraslap",
    "Ride Cymbal 2",
    "Hi Bongo",
    "Low Bongo",
    "Mute Hi Conga",
    "Open Hi Conga",
    "Low Conga",
    "High Timbale",
    "Low Timbale",
    "High Agogo",
    "Low Agogo",
    "Cabasa",
    "Maracas",
    "Short Whistle",
    "Long Whistle",
    "Short Guiro",
    "Long Guiro",
    "Claves",
    "Hi Wood Block",
    "Low Wood Block",
    "Mute Cuica",
    "Open Cuica",
    "Mute Triangle",
    "Open Triangle",
];

/// The kit piece General MIDI puts on `pitch` of channel 10 ("Closed Hi-Hat"), if any.
pub fn kit_piece(pitch: u8) -> Option<&'static str> {
    GM_KIT.contains(&pitch).then(|| GM_KIT_NAMES[(pitch - GM_KIT.start()) as usize])
}

/// A General MIDI instrument family: the drums of channel 10, or one of the sixteen groups of
/// eight programs. How a user of a band collection (the Lakh MIDI Dataset) names a part: its
/// bass, its drums, its pianos.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Family {
    /// Channel 10, whatever its program.
    Drums,
    Piano,
    ChromaticPercussion,
    Organ,
    Guitar,
    Bass,
    Strings,
    Ensemble,
    Brass,
    Reed,
    Pipe,
    SynthLead,
    SynthPad,
    SynthEffects,
    Ethnic,
    Percussive,
    SoundEffects,
}

impl Family {
    /// Drums, then the program groups in GM order (programs 1-8 are the pianos).
    pub const ALL: [Family; 17] = [
        Family::Drums,
        Family::Piano,
        Family::ChromaticPercussion,
        Family::Organ,
        Family::Guitar,
        Family::Bass,
        Family::Strings,
        Family::Ensemble,
        Family::Brass,
        Family::Reed,
        Family::Pipe,
        Family::SynthLead,
        Family::SynthPad,
        Family::SynthEffects,
        Family::Ethnic,
        Family::Percussive,
        Family::SoundEffects,
    ];

    /// The family of a program as the file stores it, 0..=127 (GM's 1..=128 less one: 0 is the
    /// Acoustic Grand Piano, 33 the fingered Electric Bass).
    pub fn of_program(program: u8) -> Family {
        Family::ALL[1 + (program & 127) as usize / 8]
    }

    /// The family a note is played by: the drums on channel 10, else its program's.
    pub fn of(note: &Note) -> Family {
        if note.is_drum {
            Family::Drums
        } else {
            Family::of_program(note.program)
        }
    }

    pub fn includes(self, note: &Note) -> bool {
        Family::of(note) == self
    }

    /// Place in [`Family::ALL`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// The role a model of this family serves.
    pub fn role(self) -> Role {
        if self == Family::Drums {
            Role::Drums
        } else {
            Role::Melodic
        }
    }

    /// The name on the command line and in stats: `bass`, `synth-lead`.
    pub fn name(self) -> &'static str {
        match self {
            Family::Drums => "drums",
            Family::Piano => "piano",
            Family::ChromaticPercussion => "chromatic-percussion",
            Family::Organ => "organ",
            Family::Guitar => "guitar",
            Family::Bass => "bass",
            Family::Strings => "strings",
            Family::Ensemble => "ensemble",
            Family::Brass => "brass",
            Family::Reed => "reed",
            Family::Pipe => "pipe",
            Family::SynthLead => "synth-lead",
            Family::SynthPad => "synth-pad",
            Family::SynthEffects => "synth-effects",
            Family::Ethnic => "ethnic",
            Family::Percussive => "percussive",
            Family::SoundEffects => "sound-effects",
        }
    }

    /// Where GM puts it, in its own 1-based numbering: "channel 10", "programs 33-40".
    pub fn gm_place(self) -> String {
        match self {
            Family::Drums => "channel 10".to_string(),
            family => {
                let first = (family.index() - 1) * 8 + 1;
                format!("programs {first}-{}", first + 7)
            }
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Family {
    type Err = String;

    fn from_str(name: &str) -> Result<Family, String> {
        Family::ALL.into_iter().find(|f| f.name() == name).ok_or_else(|| {
            let names: Vec<&str> = Family::ALL.iter().map(|f| f.name()).collect();
            format!("no General MIDI family '{name}'; the families: {}", names.join(", "))
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timing {
    /// Ticks per quarter note.
    Metrical { ppq: u16 },
    /// Frames per second and ticks per frame; converted to beats at [`SMPTE_ASSUMED_BPM`].
    Smpte { fps: u8, ticks_per_frame: u8 },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TempoChange {
    pub beat: f64,
    pub micros_per_beat: u32,
}

impl TempoChange {
    pub fn bpm(&self) -> f64 {
        60_000_000.0 / self.micros_per_beat as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TimeSignature {
    pub beat: f64,
    pub numerator: u8,
    /// The written denominator: 4 for x/4, 8 for x/8.
    pub denominator: u16,
}

/// A MIDI file, read.
#[derive(Debug, Clone, PartialEq)]
pub struct Song {
    /// 0 (one track), 1 (parallel tracks) or 2 (independent sequences).
    pub format: u16,
    pub timing: Timing,
    pub track_count: usize,
    /// Sorted by start, then pitch.
    pub notes: Vec<Note>,
    /// Sorted by beat; empty when the file sets no tempo (120 BPM by the standard).
    pub tempo_map: Vec<TempoChange>,
    pub time_signatures: Vec<TimeSignature>,
}

impl Song {
    /// The notes a model of this role learns from.
    pub fn notes_for(&self, role: Role) -> impl Iterator<Item = &Note> {
        self.notes.iter().filter(move |n| role.includes(n))
    }

    /// Length in beats: the last release.
    pub fn length_beats(&self) -> f64 {
        self.notes.iter().map(|n| n.end).fold(0.0, f64::max)
    }

    /// The first tempo, or the standard's 120 BPM.
    pub fn initial_bpm(&self) -> f64 {
        match self.tempo_map.first() {
            Some(t) if t.beat == 0.0 => t.bpm(),
            _ => DEFAULT_BPM,
        }
    }

    /// Seconds of music: the tempo map integrated up to the last release.
    pub fn duration_seconds(&self) -> f64 {
        let end = self.length_beats();
        let mut seconds = 0.0;
        let mut beat = 0.0;
        let mut micros = 500_000.0;
        for change in self.tempo_map.iter().take_while(|c| c.beat < end) {
            seconds += (change.beat - beat) * micros / 1e6;
            beat = change.beat;
            micros = change.micros_per_beat as f64;
        }
        seconds + (end - beat) * micros / 1e6
    }
}

/// A file that could not be read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MidiError {
    pub path: PathBuf,
    pub problem: MidiProblem,
}

impl fmt::Display for MidiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.problem)
    }
}

impl std::error::Error for MidiError {}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MidiProblem {
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("the file is {0} bytes, more than any MIDI song ({MAX_FILE_BYTES} bytes at most)")]
    TooLarge(u64),
    #[error("not a MIDI file: it does not start with an 'MThd' header")]
    NotMidi,
    #[error("the header is cut short ({0} bytes; a MIDI header needs 14)")]
    TruncatedHeader(usize),
    #[error("the header declares format {0}; MIDI files are format 0, 1 or 2")]
    UnknownFormat(u16),
    #[error("the header declares 0 ticks per beat, so no event has a time")]
    ZeroPpq,
    #[error("the header declares SMPTE timing with 0 frames per second or 0 ticks per frame")]
    ZeroSmpteRate,
    #[error(
        "chunk {chunk} ('{id}') declares {declared} bytes but only {available} remain: the file \
         was cut short or its chunk length is corrupt"
    )]
    ChunkPastEnd { chunk: usize, id: String, declared: u32, available: usize },
    #[error("track {track}, event {event}: {detail}")]
    BadEvent { track: usize, event: usize, detail: String },
    #[error("track {track} has no end-of-track marker: the file was probably cut short")]
    NoEndOfTrack { track: usize },
    #[error(
        "track {track} has an event at beat {beat:.0}, later than any song ({MAX_SONG_BEATS} \
         beats): a corrupt delta time"
    )]
    AbsurdLength { track: usize, beat: u64 },
    #[error("the file has no track chunks")]
    NoTracks,
    #[error("cannot write the file: {0}")]
    Write(String),
}

impl MidiProblem {
    /// A short, stable name for the kind of problem, to group rejected files in a report.
    pub fn reason(&self) -> &'static str {
        match self {
            MidiProblem::Io(_) => "unreadable",
            MidiProblem::TooLarge(_) => "too large",
            MidiProblem::NotMidi => "not a MIDI file",
            MidiProblem::TruncatedHeader(_) => "truncated header",
            MidiProblem::UnknownFormat(_) => "unknown format",
            MidiProblem::ZeroPpq | MidiProblem::ZeroSmpteRate => "zero time division",
            MidiProblem::ChunkPastEnd { .. } => "chunk past the end",
            MidiProblem::BadEvent { .. } => "malformed event",
            MidiProblem::NoEndOfTrack { .. } => "no end of track",
            MidiProblem::AbsurdLength { .. } => "absurd delta time",
            MidiProblem::NoTracks => "no tracks",
            MidiProblem::Write(_) => "write failed",
        }
    }
}

/// Reads a MIDI file from disk.
pub fn read_file(path: &Path) -> Result<Song, MidiError> {
    let fail = |problem| MidiError { path: path.to_path_buf(), problem };
    let size = std::fs::metadata(path).map_err(|e| fail(MidiProblem::Io(e.to_string())))?.len();
    if size > MAX_FILE_BYTES {
        return Err(fail(MidiProblem::TooLarge(size)));
    }
    let bytes = std::fs::read(path).map_err(|e| fail(MidiProblem::Io(e.to_string())))?;
    read_bytes(&bytes, path)
}

/// Reads a MIDI file held in memory; `path` is only used to name it in errors.
pub fn read_bytes(bytes: &[u8], path: &Path) -> Result<Song, MidiError> {
    parse(bytes).map_err(|problem| MidiError { path: path.to_path_buf(), problem })
}

const HEADER_LEN: usize = 14;

fn parse(bytes: &[u8]) -> Result<Song, MidiProblem> {
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(MidiProblem::TooLarge(bytes.len() as u64));
    }
    if bytes.len() < 4 || &bytes[..4] != b"MThd" {
        // RIFF-wrapped MIDI ("RMID") is a container around the same chunks.
        return match riff_payload(bytes) {
            Some(inner) => parse(inner),
            None => Err(MidiProblem::NotMidi),
        };
    }
    if bytes.len() < HEADER_LEN {
        return Err(MidiProblem::TruncatedHeader(bytes.len()));
    }
    let be16 = |at: usize| u16::from_be_bytes([bytes[at], bytes[at + 1]]);
    let header_len = u32::from_be_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]) as usize;
    if header_len < 6 {
        return Err(MidiProblem::TruncatedHeader(8 + header_len));
    }
    let format = be16(8);
    if format > 2 {
        return Err(MidiProblem::UnknownFormat(format));
    }
    let division = be16(12);
    let timing = if division & 0x8000 == 0 {
        if division == 0 {
            return Err(MidiProblem::ZeroPpq);
        }
        Timing::Metrical { ppq: division }
    } else {
        // The high byte is minus the frame rate; -128 has no positive i8, hence unsigned_abs.
        let fps = ((division >> 8) as u8 as i8).unsigned_abs();
        let ticks_per_frame = division as u8;
        if fps == 0 || ticks_per_frame == 0 {
            return Err(MidiProblem::ZeroSmpteRate);
        }
        Timing::Smpte { fps, ticks_per_frame }
    };
    let ticks_per_beat = match timing {
        Timing::Metrical { ppq } => ppq as f64,
        Timing::Smpte { fps, ticks_per_frame } => {
            fps as f64 * ticks_per_frame as f64 * 60.0 / SMPTE_ASSUMED_BPM
        }
    };

    let mut reader = TrackReader::default();
    let mut rest = bytes.get(8 + header_len..).unwrap_or(&[]);
    let mut chunk = 1;
    while !rest.is_empty() {
        if rest.len() < 8 {
            // Trailing padding some writers add; too short to be a chunk.
            if rest.iter().all(|&b| b == 0) {
                break;
            }
            return Err(MidiProblem::ChunkPastEnd {
                chunk,
                id: String::from_utf8_lossy(&rest[..rest.len().min(4)]).into_owned(),
                declared: 8,
                available: rest.len(),
            });
        }
        let id = &rest[..4];
        let declared = u32::from_be_bytes([rest[4], rest[5], rest[6], rest[7]]);
        let body = &rest[8..];
        if declared as usize > body.len() {
            return Err(MidiProblem::ChunkPastEnd {
                chunk,
                id: String::from_utf8_lossy(id).into_owned(),
                declared,
                available: body.len(),
            });
        }
        if id == b"MTrk" {
            reader.read_track(&body[..declared as usize], ticks_per_beat)?;
        }
        rest = &body[declared as usize..];
        chunk += 1;
    }
    if reader.tracks == 0 {
        return Err(MidiProblem::NoTracks);
    }
    Ok(reader.finish(format, timing))
}

/// The MIDI data inside a RIFF 'RMID' file, if that is what this is.
fn riff_payload(bytes: &[u8]) -> Option<&[u8]> {
    if bytes.len() < 20 || &bytes[..4] != b"RIFF" || &bytes[8..12] != b"RMID" {
        return None;
    }
    let mut rest = &bytes[12..];
    while rest.len() >= 8 {
        let len = u32::from_le_bytes([rest[4], rest[5], rest[6], rest[7]]) as usize;
        let body = rest.get(8..8 + len)?;
        if &rest[..4] == b"data" {
            return Some(body);
        }
        rest = rest.get(8 + len + (len & 1)..)?;
    }
    None
}

/// Accumulates notes and maps across the track chunks of one file.
#[derive(Default)]
struct TrackReader {
    tracks: usize,
    notes: Vec<Note>,
    /// (beat, channel, program), all tracks: a program change applies to its channel everywhere.
    programs: Vec<(f64, u8, u8)>,
    tempo_map: Vec<TempoChange>,
    time_signatures: Vec<TimeSignature>,
}

impl TrackReader {
    fn read_track(&mut self, data: &[u8], ticks_per_beat: f64) -> Result<(), MidiProblem> {
        let track = self.tracks;
        self.tracks += 1;
        // Note-ons waiting for their note-off, per (channel, pitch); first on, first off.
        let mut open: Vec<VecDeque<(f64, u8)>> = vec![VecDeque::new(); 16 * 128];
        let mut tick: u64 = 0;
        let mut ended = false;
        for (event_index, event) in midly::EventIter::new(data).enumerate() {
            let event = event.map_err(|e| MidiProblem::BadEvent {
                track,
                event: event_index,
                detail: midly_detail(&e),
            })?;
            if ended {
                return Err(MidiProblem::BadEvent {
                    track,
                    event: event_index,
                    detail: "event after the end-of-track marker".into(),
                });
            }
            tick += u32::from(event.delta) as u64;
            let beat = tick as f64 / ticks_per_beat;
            if beat > MAX_SONG_BEATS {
                return Err(MidiProblem::AbsurdLength { track, beat: beat as u64 });
            }
            match event.kind {
                TrackEventKind::Midi { channel, message } => {
                    let channel = u8::from(channel);
                    match message {
                        MidiMessage::NoteOn { key, vel } if u8::from(vel) > 0 => {
                            open[channel as usize * 128 + u8::from(key) as usize]
                                .push_back((beat, u8::from(vel)));
                        }
                        MidiMessage::NoteOn { key, .. } | MidiMessage::NoteOff { key, .. } => {
                            let pitch = u8::from(key);
                            if let Some((start, velocity)) =
                                open[channel as usize * 128 + pitch as usize].pop_front()
                            {
                                self.push_note(track, channel, pitch, velocity, start, beat);
                            }
                        }
                        MidiMessage::ProgramChange { program } => {
                            self.programs.push((beat, channel, u8::from(program)));
                        }
                        _ => {}
                    }
                }
                TrackEventKind::Meta(MetaMessage::Tempo(micros)) if u32::from(micros) > 0 => {
                    self.tempo_map.push(TempoChange { beat, micros_per_beat: u32::from(micros) });
                }
                TrackEventKind::Meta(MetaMessage::TimeSignature(numerator, log2_den, _, _)) => {
                    self.time_signatures.push(TimeSignature {
                        beat,
                        numerator,
                        denominator: 1u16 << log2_den.min(15),
                    });
                }
                TrackEventKind::Meta(MetaMessage::EndOfTrack) => ended = true,
                _ => {}
            }
        }
        if !ended {
            return Err(MidiProblem::NoEndOfTrack { track });
        }
        // Notes never switched off end with their track.
        let end = tick as f64 / ticks_per_beat;
        for (key, waiting) in open.iter_mut().enumerate() {
            for (start, velocity) in waiting.drain(..) {
                self.push_note(track, (key / 128) as u8, (key % 128) as u8, velocity, start, end);
            }
        }
        Ok(())
    }

    fn push_note(&mut self, track: usize, channel: u8, pitch: u8, velocity: u8, start: f64, end: f64) {
        self.notes.push(Note {
            pitch,
            velocity,
            start,
            end,
            channel,
            program: 0,
            is_drum: channel == DRUM_CHANNEL,
            track,
        });
    }

    fn finish(mut self, format: u16, timing: Timing) -> Song {
        self.programs.sort_by(|a, b| (a.1, a.0).partial_cmp(&(b.1, b.0)).unwrap());
        for note in &mut self.notes {
            // The last program change on the note's channel at or before its start.
            let on_channel = self.programs.iter().filter(|p| p.1 == note.channel);
            if let Some(p) = on_channel.take_while(|p| p.0 <= note.start).last() {
                note.program = p.2;
            }
        }
        self.notes.sort_by(|a, b| {
            (a.start, a.pitch, a.channel).partial_cmp(&(b.start, b.pitch, b.channel)).unwrap()
        });
        self.tempo_map.sort_by(|a, b| a.beat.partial_cmp(&b.beat).unwrap());
        self.time_signatures.sort_by(|a, b| a.beat.partial_cmp(&b.beat).unwrap());
        Song {
            format,
            timing,
            track_count: self.tracks,
            notes: self.notes,
            tempo_map: self.tempo_map,
            time_signatures: self.time_signatures,
        }
    }
}

/// midly's error, in words: its message chain, innermost cause last.
fn midly_detail(error: &midly::Error) -> String {
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        detail.push_str(": ");
        detail.push_str(&cause.to_string());
        source = cause.source();
    }
    detail
}

/// Writes notes as a format-1 Standard MIDI File at `bpm`: a tempo track in 4/4, then one track
/// per channel used, each starting with its program. Times are rounded to [`WRITE_PPQ`] ticks
/// per beat, which holds the 24-step grid exactly. With `length` (beats), the file lasts
/// exactly that long, as a clip a DAW imports (a loop): the tempo track ends there.
pub fn write_bytes(notes: &[Note], bpm: f64, length: Option<f64>) -> Vec<u8> {
    use midly::num::{u15, u24, u28, u4, u7};
    use midly::{Format, Header, Smf, TrackEvent};

    let to_tick = |beats: f64| (beats.max(0.0) * WRITE_PPQ as f64).round() as u64;
    let micros = (60_000_000.0 / bpm.clamp(1.0, 1000.0)).round() as u32;
    let mut smf = Smf::new(Header::new(Format::Parallel, midly::Timing::Metrical(u15::new(WRITE_PPQ))));
    smf.tracks.push(vec![
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::Tempo(u24::new(micros.min(0xFF_FFFF)))),
        },
        TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Meta(MetaMessage::TimeSignature(4, 2, 24, 8)),
        },
        TrackEvent {
            delta: u28::new(
                length.map_or(0, |beats| to_tick(beats).min(u28::max_value().as_int() as u64) as u32),
            ),
            kind: TrackEventKind::Meta(MetaMessage::EndOfTrack),
        },
    ]);

    let mut channels: Vec<u8> = notes.iter().map(|n| n.channel & 15).collect();
    channels.sort_unstable();
    channels.dedup();
    for channel in channels {
        let on_channel: Vec<&Note> = notes.iter().filter(|n| n.channel & 15 == channel).collect();
        // (tick, is_on, pitch, velocity): offs sort before ons at one tick, so a repeated note
        // is released before it is struck again.
        let mut events: Vec<(u64, bool, u8, u8)> = Vec::with_capacity(on_channel.len() * 2);
        for n in &on_channel {
            let start = to_tick(n.start);
            let end = to_tick(n.end).max(start + 1);
            events.push((start, true, n.pitch & 127, n.velocity.clamp(1, 127)));
            events.push((end, false, n.pitch & 127, 0));
        }
        events.sort_unstable_by_key(|&(tick, on, pitch, _)| (tick, on, pitch));

        let channel_u4 = u4::new(channel);
        let mut track = vec![TrackEvent {
            delta: u28::new(0),
            kind: TrackEventKind::Midi {
                channel: channel_u4,
                message: MidiMessage::ProgramChange { program: u7::new(on_channel[0].program & 127) },
            },
        }];
        let mut now = 0u64;
        for (tick, on, pitch, velocity) in events {
            let mut delta = tick - now;
            now = tick;
            // A delta beyond 28 bits does not fit one event: pad with empty text events.
            while delta > u28::max_value().as_int() as u64 {
                track.push(TrackEvent {
                    delta: u28::max_value(),
                    kind: TrackEventKind::Meta(MetaMessage::Text(b"")),
                });
                delta -= u28::max_value().as_int() as u64;
            }
            let message = if on {
                MidiMessage::NoteOn { key: u7::new(pitch), vel: u7::new(velocity) }
            } else {
                MidiMessage::NoteOff { key: u7::new(pitch), vel: u7::new(0) }
            };
            track.push(TrackEvent {
                delta: u28::new(delta as u32),
                kind: TrackEventKind::Midi { channel: channel_u4, message },
            });
        }
        track.push(TrackEvent { delta: u28::new(0), kind: TrackEventKind::Meta(MetaMessage::EndOfTrack) });
        smf.tracks.push(track);
    }
    let mut bytes = Vec::new();
    smf.write_std(&mut bytes).expect("writing to memory cannot fail");
    bytes
}

/// Writes notes to a .mid file at `bpm`, `length` beats long if given; see [`write_bytes`].
pub fn write_file(path: &Path, notes: &[Note], bpm: f64, length: Option<f64>) -> Result<(), MidiError> {
    std::fs::write(path, write_bytes(notes, bpm, length))
        .map_err(|e| MidiError { path: path.to_path_buf(), problem: MidiProblem::Write(e.to_string()) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_kit_pieces_are_the_general_midi_percussion_map() {
        assert_eq!(kit_piece(35), Some("Acoustic Bass Drum"));
        assert_eq!(kit_piece(38), Some("Acoustic Snare"));
        assert_eq!(kit_piece(42), Some("Closed Hi-Hat"));
        assert_eq!(kit_piece(49), Some("Crash Cymbal 1"));
        assert_eq!(kit_piece(81), Some("Open Triangle"));
        assert_eq!((kit_piece(34), kit_piece(82)), (None, None));
    }

    #[test]
    fn programs_fall_in_their_general_midi_families_and_channel_10_is_drums() {
        let melodic = |program: u8| Note {
            pitch: 40,
            velocity: 90,
            start: 0.0,
            end: 1.0,
            channel: 0,
            program,
            is_drum: false,
            track: 0,
        };
        for (program, family) in [
            (0, Family::Piano),
            (7, Family::Piano),
            (8, Family::ChromaticPercussion),
            (24, Family::Guitar),
            (32, Family::Bass),
            (33, Family::Bass),
            (40, Family::Strings),
            (80, Family::SynthLead),
            (127, Family::SoundEffects),
        ] {
            assert_eq!(Family::of(&melodic(program)), family, "program {program}");
        }
        let kick = Note { pitch: 36, channel: DRUM_CHANNEL, is_drum: true, ..melodic(33) };
        assert_eq!(Family::of(&kick), Family::Drums, "channel 10 is drums whatever its program");
        assert_eq!((Family::Drums.role(), Family::Bass.role()), (Role::Drums, Role::Melodic));
        assert_eq!(Family::Bass.gm_place(), "programs 33-40");
        assert_eq!(Family::SoundEffects.gm_place(), "programs 121-128");
        for family in Family::ALL {
            assert_eq!(family.name().parse::<Family>(), Ok(family));
            let json = serde_json::to_string(&family).unwrap();
            assert_eq!(json, format!("\"{}\"", family.name()));
        }
        assert!("kazoo".parse::<Family>().unwrap_err().contains("synth-lead"));
    }
}
