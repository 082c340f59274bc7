//! The piano roll: the last few bars of the [`PlayedNotes`], scrolling with the playhead, generated
//! notes and the notes received on the MIDI input in two colours (grey for notes a listening
//! model did not hear), with bar and beat lines from the host's time signature, under scale lock
//! the scale's notes shaded, and the phrase loop's region framed.

use continuo_engine::music::{Scale, ScaleLock};
use egui::{self, Align2, Color32, FontId, Pos2, Rect, Sense, Stroke, Vec2};

use crate::monitor::NoteSource;
use crate::played_notes::PlayedNotes;

pub const GENERATED: Color32 = Color32::from_rgb(240, 170, 60);
pub const INPUT: Color32 = Color32::from_rgb(80, 190, 230);
pub const UNHEARD: Color32 = Color32::from_rgb(120, 125, 135);
const LOOP_REGION: Color32 = Color32::from_rgba_premultiplied(18, 36, 56, 40);
const LOOP_EDGE: Color32 = Color32::from_rgb(90, 150, 220);
const BACKGROUND: Color32 = Color32::from_rgb(24, 26, 30);
const BLACK_KEY_ROW: Color32 = Color32::from_rgb(19, 20, 24);
const SCALE_ROW: Color32 = Color32::from_rgb(34, 44, 40);
const BAR_LINE: Color32 = Color32::from_rgb(95, 100, 110);
const BEAT_LINE: Color32 = Color32::from_rgb(45, 48, 55);
const PLAYHEAD: Color32 = Color32::from_rgb(235, 235, 240);
/// Where the playhead sits, as a share of the width: the music scrolls in from the right.
const PLAYHEAD_AT: f32 = 0.92;

/// What the piano roll draws besides the notes.
pub struct RollView {
    /// The performance clock now and at the start of the bar being played.
    pub now: f64,
    pub bar_clock: f64,
    pub beats_per_bar: f64,
    /// Beats (quarter notes) in one beat of the time signature (1 in 4/4, 0.5 in 6/8).
    pub beat: f64,
    pub bars_shown: f64,
    /// The pitch range drawn.
    pub lowest: u8,
    pub highest: u8,
    /// Shading for scale lock; `None` when it is off (chromatic).
    pub scale_lock: Option<ScaleLock>,
    /// Rows are drum kit pieces: they are named, not shaded as keys.
    pub kit: bool,
    /// The phrase loop's repetition being played: start on the performance clock, length in
    /// beats.
    pub loop_region: Option<(f64, f64)>,
}

impl RollView {
    pub fn shaded(lock: ScaleLock) -> Option<ScaleLock> {
        (lock.scale != Scale::Chromatic).then_some(lock)
    }
}

/// Notes drawn, by source.
#[derive(Debug, Default, Clone, Copy)]
pub struct Drawn {
    pub generated: usize,
    pub input: usize,
}

/// The short names of the kit pieces a groove mostly plays, for the rows' labels (the others
/// are too many to name in the rows' height; the General MIDI map names them all, see
/// `continuo_engine::midi::kit_piece`).
fn kit_label(pitch: u8) -> Option<&'static str> {
    Some(match pitch {
        36 => "kick",
        38 => "snare",
        39 => "clap",
        42 => "hat",
        44 => "pedal",
        46 => "open",
        45 => "tom",
        48 => "tom hi",
        49 => "crash",
        51 => "ride",
        54 => "tamb",
        56 => "bell",
        _ => return None,
    })
}

pub fn show(ui: &mut egui::Ui, size: Vec2, played: &PlayedNotes, view: &RollView) -> (egui::Response, Drawn) {
    let (response, painter) = ui.allocate_painter(size, Sense::hover());
    let rect = response.rect;
    painter.rect_filled(rect, 4.0, BACKGROUND);
    let keys_width = 34.0;
    let roll = Rect::from_min_max(rect.min + Vec2::new(keys_width, 0.0), rect.max);

    let span = view.beats_per_bar * view.bars_shown;
    let end = view.now + span * (1.0 - PLAYHEAD_AT as f64);
    let start = end - span;
    let x_of = |time: f64| roll.left() + ((time - start) / span) as f32 * roll.width();
    let rows = (view.highest - view.lowest) as f32 + 1.0;
    let row_height = roll.height() / rows;
    let y_of = |pitch: u8| roll.bottom() - (pitch - view.lowest + 1) as f32 * row_height;

    for pitch in view.lowest..=view.highest {
        let row =
            Rect::from_min_size(Pos2::new(roll.left(), y_of(pitch)), Vec2::new(roll.width(), row_height));
        if view.kit {
            // Every other row shaded, so a hit reads across to its piece's name.
            if pitch % 2 == 1 {
                painter.rect_filled(row, 0.0, BLACK_KEY_ROW);
            }
            if let Some(name) = kit_label(pitch) {
                let at = Pos2::new(rect.left() + 2.0, row.center().y);
                painter.text(at, Align2::LEFT_CENTER, name, FontId::monospace(9.0), Color32::GRAY);
            }
            continue;
        }
        let in_scale = view.scale_lock.is_some_and(|lock| lock.allows(pitch));
        if in_scale {
            painter.rect_filled(row, 0.0, SCALE_ROW);
        } else if matches!(pitch % 12, 1 | 3 | 6 | 8 | 10) {
            painter.rect_filled(row, 0.0, BLACK_KEY_ROW);
        }
        if pitch % 12 == 0 && row_height * 12.0 > 30.0 {
            let name = format!("C{}", pitch as i32 / 12 - 1);
            let at = Pos2::new(rect.left() + 4.0, row.center().y);
            painter.text(at, Align2::LEFT_CENTER, name, FontId::monospace(10.0), Color32::GRAY);
        }
    }

    // Bar and beat lines, counted from the bar being played.
    let beats_per_bar_line = (view.beats_per_bar / view.beat).round().max(1.0) as i64;
    let first = ((start - view.bar_clock) / view.beat).floor() as i64;
    let last = ((end - view.bar_clock) / view.beat).ceil() as i64;
    for k in first..=last {
        let x = x_of(view.bar_clock + k as f64 * view.beat);
        if x < roll.left() || x > roll.right() {
            continue;
        }
        let color = if k.rem_euclid(beats_per_bar_line) == 0 { BAR_LINE } else { BEAT_LINE };
        painter
            .line_segment([Pos2::new(x, roll.top()), Pos2::new(x, roll.bottom())], Stroke::new(1.0, color));
    }

    let clip = painter.with_clip_rect(roll);
    if let Some((loop_start, loop_beats)) = view.loop_region {
        let (x0, x1) = (x_of(loop_start), x_of(loop_start + loop_beats));
        let region = Rect::from_min_max(Pos2::new(x0, roll.top()), Pos2::new(x1, roll.bottom()));
        clip.rect_filled(region, 0.0, LOOP_REGION);
        for x in [x0, x1] {
            clip.line_segment(
                [Pos2::new(x, roll.top()), Pos2::new(x, roll.bottom())],
                Stroke::new(2.0, LOOP_EDGE),
            );
        }
    }

    let mut drawn = Drawn::default();
    for note in played.notes() {
        let note_end = note.end_or(view.now);
        if note_end < start || note.start > end || note.pitch < view.lowest || note.pitch > view.highest {
            continue;
        }
        let (color, count) = match note.source {
            NoteSource::Generated => (GENERATED, &mut drawn.generated),
            NoteSource::Input => (INPUT, &mut drawn.input),
            NoteSource::Unheard => (UNHEARD, &mut drawn.input),
        };
        *count += 1;
        let y = y_of(note.pitch);
        let x0 = x_of(note.start);
        let x1 = x_of(note_end).max(x0 + 2.0);
        let body = Rect::from_min_max(Pos2::new(x0, y + 0.5), Pos2::new(x1, y + row_height - 0.5));
        // Louder notes are brighter.
        let alpha = 120 + (note.velocity as u32 * 135 / 127) as u8;
        clip.rect_filled(body, 1.5, color.gamma_multiply_u8(alpha));
    }

    let x = x_of(view.now);
    painter.line_segment([Pos2::new(x, roll.top()), Pos2::new(x, roll.bottom())], Stroke::new(1.5, PLAYHEAD));
    (response, drawn)
}
