//! The model panel: the model playing and what it costs, choosing another (built in, from the
//! musician's folder, recent, or a file), and what the last load said.

use std::path::{Path, PathBuf};

use egui::{self, Color32, RichText};
use nice_plug::prelude::*;

use super::status::{model_lines, real_time_lines};
use super::widgets::{field_and_button, set};
use crate::built_in::{ModelChoice, BUILT_IN};
use crate::model_switch::LoadReport;
use crate::user_files;
use crate::Task;

use super::trace;
use super::EditorApp;

impl EditorApp {
    pub(super) fn model_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter, trace: &mut trace::Frame) {
        ui.add_space(4.0);
        self.model_choice(ui, setter, trace);
        ui.add_space(4.0);
        match self.switch.playing_card() {
            Some(card) => {
                let lines = model_lines(&card);
                ui.label(RichText::new(&lines[0]).strong().size(16.0));
                for line in &lines[1..] {
                    ui.label(line);
                }
                trace.model = lines;
            }
            None => {
                ui.label("No model playing yet: the host has not activated the plugin.");
            }
        }
        ui.add_space(4.0);
        let cost = match self.cost.shown() {
            Some(c) => vec![
                format!("{:.1} µs per step (mean), {:.0} steps/s", c.mean_step_micros, c.steps_per_second),
                format!(
                    "worst block {:.0} µs, {:.1}% of its time budget",
                    c.worst_block_micros,
                    c.worst_block_share * 100.0
                ),
            ],
            None => vec!["cost: shown while the model plays".to_string()],
        };
        let cost: Vec<String> = cost.into_iter().chain(real_time_lines(&self.monitor.meters)).collect();
        for line in &cost {
            ui.monospace(line);
        }
        trace.cost = cost;

        ui.separator();
        ui.strong("Your own model");
        let mut chosen = None;
        ui.horizontal(|ui| {
            let field = ("model path", "path to a Continuo .onnx model", 230.0);
            if field_and_button(ui, &mut self.path_field, field, "Load", trace)
                && !self.path_field.trim().is_empty()
            {
                chosen = Some(PathBuf::from(self.path_field.trim()));
            }
        });
        if let Some(report) = self.switch.report() {
            let (text, color) = match &report {
                LoadReport::Loading(what) => (format!("loading {what} ..."), Color32::LIGHT_YELLOW),
                LoadReport::Playing(what) => (what.clone(), Color32::LIGHT_GREEN),
                LoadReport::Refused(why) => (format!("refused: {why}"), Color32::from_rgb(255, 120, 110)),
            };
            ui.add(egui::Label::new(RichText::new(&text).color(color)).wrap());
            trace.report = text;
            if matches!(report, LoadReport::Refused(_)) {
                self.after_a_refusal(setter);
            }
        }

        if !self.recent_models.is_empty() {
            ui.add_space(4.0);
            ui.weak("Recent");
            for path in &self.recent_models {
                if model_button(ui, path, "recent", trace).clicked() {
                    chosen = Some(path.clone());
                }
            }
        }
        ui.add_space(4.0);
        ui.horizontal(|ui| {
            ui.weak("In your models folder");
            if ui.small_button("Rescan").clicked() {
                self.lists_generation = u64::MAX;
            }
        });
        let folder = user_files::models_folder();
        if self.folder_models.is_empty() {
            ui.add(egui::Label::new(RichText::new(format!("(none in {})", folder.display())).weak()).wrap());
        }
        for path in &self.folder_models {
            if model_button(ui, path, "folder", trace).clicked() {
                chosen = Some(path.clone());
            }
        }
        if let Some(path) = chosen {
            self.path_field = path.display().to_string();
            self.choose_file(setter, &self.path_field.clone());
        }
    }

    /// The `Model` parameter as a drop-down: the built-in models, and the musician's file.
    fn model_choice(&mut self, ui: &mut egui::Ui, setter: &ParamSetter, trace: &mut trace::Frame) {
        let p = &self.params;
        let file = p.model_path.lock().map(|path| path.clone()).unwrap_or_default();
        let file_name = Path::new(&file).file_name().map(|n| n.to_string_lossy().into_owned());
        let name_of = |choice: ModelChoice| match (choice.built_in(), &file_name) {
            (Some(built_in), _) => built_in.name.to_string(),
            (None, Some(name)) => format!("Your model file: {name}"),
            (None, None) => "Your model file (load one below)".to_string(),
        };
        let current = p.model.value();
        let mut picked = current;
        ui.horizontal(|ui| {
            ui.label(p.model.name());
            let list = egui::ComboBox::from_id_salt("model")
                .width(250.0)
                .selected_text(name_of(current))
                .show_ui(ui, |ui| {
                    for built_in in &BUILT_IN {
                        let item = ui
                            .selectable_value(&mut picked, built_in.choice, built_in.name)
                            .on_hover_text(built_in.description);
                        trace.control(&format!("model: {}", built_in.name), item.rect);
                    }
                    if file_name.is_some() {
                        let item =
                            ui.selectable_value(&mut picked, ModelChoice::File, name_of(ModelChoice::File));
                        trace.control("model: your file", item.rect);
                    }
                });
            trace.control("model list", list.response.rect);
        });
        // The audio thread sees the parameter change and asks for the switch, as it does for
        // the host's automation.
        if picked != current {
            set(setter, &p.model, picked);
        }
    }

    /// Plays the musician's file: it becomes the project's model file and the `Model`
    /// parameter says so (one gesture the host records); the switch follows. When the parameter
    /// already said so, nothing changes for the audio thread to see, so the window asks.
    fn choose_file(&mut self, setter: &ParamSetter, path: &str) {
        if let Ok(mut model_path) = self.params.model_path.lock() {
            *model_path = path.to_string();
        }
        if self.params.model.value() == ModelChoice::File {
            self.executor.execute_background(Task::SwitchModel);
        } else {
            set(setter, &self.params.model, ModelChoice::File);
        }
    }

    /// A model that was refused leaves the one playing: the `Model` parameter and the project's
    /// file go back to saying so, once per refusal.
    fn after_a_refusal(&mut self, setter: &ParamSetter) {
        let refusals = self.switch.refusals();
        if refusals == self.refusals_seen {
            return;
        }
        self.refusals_seen = refusals;
        let Some(card) = self.switch.playing_card() else { return };
        if let (Some(path), Ok(mut model_path)) = (card.source.path(), self.params.model_path.lock()) {
            *model_path = path.to_string();
        }
        if self.params.model.value() != card.source.choice() {
            set(setter, &self.params.model, card.source.choice());
        }
    }
}

fn model_button(ui: &mut egui::Ui, path: &Path, list: &str, trace: &mut trace::Frame) -> egui::Response {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let response = ui.button(&name).on_hover_text(path.display().to_string());
    trace.control(&format!("{list}: {name}"), response.rect);
    response
}
