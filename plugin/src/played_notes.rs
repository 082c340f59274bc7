//! The notes played lately (ours and the musician's), with a start and an end on the
//! performance clock: what the piano roll draws and what "Save MIDI" writes. Built off the audio
//! thread, in the window, from the [`NoteLog`]'s events.

use std::collections::VecDeque;

use continuo_engine::midi::Note;

use crate::monitor::{LoggedEvent, NoteLog, NoteSource};

/// The most bars kept: what the longest save takes.
pub const KEPT_BARS: u32 = 32;
/// How much music is kept, in beats: [`KEPT_BARS`] at 8 quarter notes a bar, with room.
const KEEP_BEATS: f64 = KEPT_BARS as f64 * 8.0 + 16.0;
/// A bound on memory, whatever the density.
const MAX_NOTES: usize = 50_000;

/// A note on the performance clock; `end` is `None` while it sounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlayedNote {
    pub pitch: u8,
    pub velocity: u8,
    pub start: f64,
    pub end: Option<f64>,
    pub source: NoteSource,
}

impl PlayedNote {
    /// Its end, or `now` while it sounds.
    pub fn end_or(&self, now: f64) -> f64 {
        self.end.unwrap_or(now).max(self.start)
    }
}

#[derive(Debug, Default)]
pub struct PlayedNotes {
    /// In order of their start.
    notes: VecDeque<PlayedNote>,
}

impl PlayedNotes {
    /// Takes in everything logged since the last call, then forgets what is older than any save
    /// could want.
    pub fn update(&mut self, log: &NoteLog, now: f64) {
        log.drain(|event| self.add(event));
        while self.notes.len() > MAX_NOTES
            || self.notes.front().is_some_and(|n| n.end.is_some_and(|end| end < now - KEEP_BEATS))
        {
            self.notes.pop_front();
        }
    }

    pub fn add(&mut self, event: LoggedEvent) {
        // The latest note of this pitch and source still sounding, if any: a note-off ends it, a
        // note-on of a sounding pitch ends it first (the host hears the same).
        let sounding = self
            .notes
            .iter_mut()
            .rev()
            .find(|n| n.pitch == event.pitch && n.source == event.source && n.end.is_none());
        if let Some(note) = sounding {
            note.end = Some(event.time);
        }
        if event.velocity > 0 {
            self.notes.push_back(PlayedNote {
                pitch: event.pitch,
                velocity: event.velocity,
                start: event.time,
                end: None,
                source: event.source,
            });
        }
    }

    pub fn notes(&self) -> impl DoubleEndedIterator<Item = &PlayedNote> {
        self.notes.iter()
    }

    /// The generated notes that start in `[from, to)`, moved so that `from` is beat 0, as the
    /// engine's MIDI writer takes them. Notes still sounding end at `to`. A note on the line at
    /// `from` belongs to the window, whatever the rounding of the host's positions.
    pub fn generated_between(&self, from: f64, to: f64, channel: u8) -> Vec<Note> {
        const ON_THE_LINE: f64 = 1e-6;
        self.notes
            .iter()
            .filter(|n| n.source == NoteSource::Generated && n.start >= from - ON_THE_LINE && n.start < to)
            .map(|n| Note {
                pitch: n.pitch,
                velocity: n.velocity,
                start: (n.start - from).max(0.0),
                end: n.end_or(to).min(to) - from,
                channel,
                program: 0,
                is_drum: false,
                track: 0,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(time: f64, pitch: u8, velocity: u8) -> LoggedEvent {
        LoggedEvent { time, pitch, velocity, source: NoteSource::Generated }
    }

    #[test]
    fn notes_pair_up_and_a_saved_window_starts_at_zero() {
        let log = NoteLog::default();
        for e in [event(0.0, 60, 90), event(1.0, 60, 0), event(4.5, 64, 80), event(5.0, 67, 70)] {
            log.record(e);
        }
        log.record(LoggedEvent { time: 4.5, pitch: 40, velocity: 100, source: NoteSource::Input });
        let mut played = PlayedNotes::default();
        played.update(&log, 6.0);
        assert_eq!(played.notes().count(), 4);
        // A retrigger ends the sounding note.
        played.add(event(5.5, 64, 81));

        let window = played.generated_between(crate::transport::last_bars_start(4.0, 4.0, 1), 6.0, 2);
        let got: Vec<_> = window.iter().map(|n| (n.pitch, n.start, n.end, n.channel)).collect();
        assert_eq!(got, vec![(64, 0.5, 1.5, 2), (67, 1.0, 2.0, 2), (64, 1.5, 2.0, 2)]);
    }

    #[test]
    fn old_music_is_forgotten() {
        let mut played = PlayedNotes::default();
        played.add(event(0.0, 60, 90));
        played.add(event(1.0, 60, 0));
        played.add(event(1000.0, 62, 90));
        played.update(&NoteLog::default(), 1001.0);
        assert_eq!(played.notes().map(|n| n.pitch).collect::<Vec<_>>(), vec![62]);
    }
}
