//! Saving what played as a MIDI file ("Keep what you like"): which notes (the last bars, or the
//! phrase loop as a clip of exactly its length), where (a file the musician names, or a new one
//! in their midi folder), and the writing, on the background task, with the message the window
//! shows.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Mutex;

use continuo_engine::midi::{self, Note};

use crate::monitor::Meters;
use crate::played_notes::{PlayedNotes, KEPT_BARS};
use crate::transport::{self, DEFAULT_BPM};
use crate::user_files;

/// The last bars "Save MIDI" offers.
pub const SAVE_BAR_CHOICES: [u32; 4] = [4, 8, 16, 32];
const _: () = assert!(SAVE_BAR_CHOICES[SAVE_BAR_CHOICES.len() - 1] <= KEPT_BARS, "the window keeps less");
/// What to save, in bars; this value saves the phrase loop instead.
pub const SAVE_THE_LOOP: u32 = 0;

/// What the last save did: the message to show.
pub type SaveReport = Mutex<Option<Result<String, String>>>;

/// Notes to write (beats from the file's start) at a tempo, `length` beats long if given (a
/// loop, as a clip).
#[derive(Debug, Clone)]
pub struct SaveRequest {
    pub path: PathBuf,
    pub notes: Vec<Note>,
    pub bpm: f64,
    pub length: Option<f64>,
}

impl SaveRequest {
    /// The notes to save, taken now (what was heard when the button was pressed): the last
    /// `bars` bars of our notes on `channel`, or with [`SAVE_THE_LOOP`] the phrase loop as a
    /// clip (the last repetition heard whole, else the one playing). An empty `path` is a new
    /// file in the musician's midi folder.
    pub fn new(meters: &Meters, played: &PlayedNotes, bars: u32, path: &str, channel: u8) -> SaveRequest {
        let (now, bar) = (meters.clock(), transport::beats_per_bar(meters.time_signature()));
        let (from, to, length) = match (bars, meters.loop_region()) {
            (SAVE_THE_LOOP, Some((start, beats))) => {
                let from = if start - beats >= 0.0 { start - beats } else { start };
                (from, from + beats, Some(beats))
            }
            (SAVE_THE_LOOP, None) => (now, now, None),
            (bars, _) => (transport::last_bars_start(meters.bar_clock(), bar, bars), now, None),
        };
        let path = match path.trim() {
            "" => new_file_in_midi_folder(bars),
            typed => PathBuf::from(typed),
        };
        let bpm = meters.tempo_millibpm.load(Ordering::Relaxed) as f64 / 1000.0;
        let bpm = if bpm > 0.0 { bpm } else { DEFAULT_BPM };
        SaveRequest { path, notes: played.generated_between(from, to, channel), bpm, length }
    }

    /// Writes the file through the engine's MIDI writer (background task), and leaves the
    /// message for the window in `report`.
    pub fn save(self, report: &SaveReport) {
        let result = self.write();
        if let Ok(mut report) = report.lock() {
            *report = Some(result);
        }
    }

    /// The message says where, or why not.
    fn write(&self) -> Result<String, String> {
        let (path, bpm) = (&self.path, self.bpm);
        if self.notes.is_empty() {
            return Err(
                "nothing to save yet: no notes were played in those bars (or no phrase loops)".to_string()
            );
        }
        if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
            std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
        }
        midi::write_file(path, &self.notes, bpm, self.length).map_err(|e| e.to_string())?;
        let clip = self.length.map(|beats| format!(", a {beats:.0}-beat clip,")).unwrap_or_default();
        Ok(format!("saved {} notes{clip} at {bpm:.1} BPM to {}", self.notes.len(), path.display()))
    }
}

/// A new file in the musician's midi folder, named after the time and the bars.
fn new_file_in_midi_folder(bars: u32) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "-");
    let what = if bars == SAVE_THE_LOOP { "loop".to_string() } else { format!("{bars}-bars") };
    user_files::user_folder().join("midi").join(format!("continuo-{stamp}-{what}.mid"))
}
