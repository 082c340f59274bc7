//! "Keep what you like": which bars to save, where, and what the last save said. The writing
//! is [`crate::save_midi`]'s, on the background task.

use continuo_engine::midi::Role;
use egui::{self, Color32};

use super::widgets::field_and_button;
use crate::save_midi::{SaveRequest, SAVE_BAR_CHOICES, SAVE_THE_LOOP};
use crate::Task;

use super::trace;
use super::EditorApp;

impl EditorApp {
    pub(super) fn save_controls(&mut self, ui: &mut egui::Ui, trace: &mut trace::Frame) {
        ui.horizontal(|ui| {
            ui.strong("Keep what you like");
            let what = |bars: u32| match bars {
                SAVE_THE_LOOP => "the loop".to_string(),
                bars => format!("last {bars} bars"),
            };
            egui::ComboBox::from_id_salt("save bars").selected_text(what(self.save_bars)).show_ui(ui, |ui| {
                for bars in SAVE_BAR_CHOICES.into_iter().chain([SAVE_THE_LOOP]) {
                    ui.selectable_value(&mut self.save_bars, bars, what(bars));
                }
            });
            let field = ("save path", "file (empty: a new file in your midi folder)", 300.0);
            if field_and_button(ui, &mut self.save_path, field, "Save MIDI...", trace) {
                let role = self.switch.playing_card().map_or(Role::Melodic, |card| card.info.role);
                let (meters, channel) = (&self.monitor.meters, self.params.channel_index(role));
                let request =
                    SaveRequest::new(meters, &self.played, self.save_bars, &self.save_path, channel);
                self.executor.execute_background(Task::SaveMidi(request));
            }
        });
        if let Ok(report) = self.saves.lock() {
            if let Some(result) = report.as_ref() {
                let (text, color) = match result {
                    Ok(what) => (what.clone(), Color32::LIGHT_GREEN),
                    Err(why) => (why.clone(), Color32::from_rgb(255, 120, 110)),
                };
                ui.colored_label(color, &text);
                trace.saved = text;
            }
        }
    }
}
