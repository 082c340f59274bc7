//! The plugin window (nice-plug-egui): the piano roll, the transport as the plugin sees it, every
//! parameter (through nice-plug's `ParamSetter`, so the host's automation and the window never
//! disagree), the model playing and what it costs, choosing another model, and saving the last
//! bars as a MIDI file.
//!
//! Nothing here blocks: loading a model and writing a file run as background tasks, and the
//! window reads the audio thread's [`Monitor`] through atomics and its lock-free note log.

use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use continuo_engine::music::{Scale, KEY_NAMES};
use egui::{self, Color32, RichText, Vec2};
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;
use nice_plug_egui::{EguiEditorState, Frame, NiceEguiApp};

use crate::built_in::{ModelChoice, BUILT_IN};
use crate::listening::Mode;
use crate::model_switch::{LoadReport, ModelCard, ModelSwitch};
use crate::monitor::{Meters, Monitor};
use crate::params::{ContinuoParams, PlayMode};
use crate::phrase_loop::LOOP_BAR_CHOICES;
use crate::piano_roll::{self, RollView};
use crate::player::smallest_block;
use crate::presets::{Preset, PRESETS};
use crate::recording::{Recording, SAVE_BAR_CHOICES};
use crate::transport::{self, TransportState};
use crate::user_files;
use crate::{Continuo, SaveReport, Task};

pub const WIDTH: u32 = 980;
pub const HEIGHT: u32 = 720;
/// Bars the piano roll shows.
const BARS_SHOWN: f64 = 4.0;
/// How often the live cost is recomputed.
const COST_WINDOW: Duration = Duration::from_secs(1);

pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(LogicalSize::new(WIDTH as f64, HEIGHT as f64), 1.0)
}

/// The model's cost over the last second, from the audio thread's counters.
#[derive(Debug, Default, Clone, Copy)]
struct Cost {
    mean_step_micros: f64,
    worst_block_micros: f64,
    steps_per_second: f64,
    worst_block_share: f64,
}

struct CostWindow {
    since: Instant,
    steps: u64,
    nanos: u64,
    shown: Option<Cost>,
}

impl CostWindow {
    fn new(monitor: &Monitor) -> CostWindow {
        let m = &monitor.meters;
        CostWindow {
            since: Instant::now(),
            steps: m.model_steps.load(Ordering::Relaxed),
            nanos: m.step_nanos.load(Ordering::Relaxed),
            shown: None,
        }
    }

    fn update(&mut self, monitor: &Monitor) {
        let elapsed = self.since.elapsed();
        if elapsed < COST_WINDOW {
            return;
        }
        let m = &monitor.meters;
        let (steps, nanos) = (m.model_steps.load(Ordering::Relaxed), m.step_nanos.load(Ordering::Relaxed));
        let worst = m.worst_block_nanos.swap(0, Ordering::Relaxed) as f64;
        let budget = m.block_budget_nanos.load(Ordering::Relaxed).max(1) as f64;
        let (d_steps, d_nanos) = (steps - self.steps, nanos - self.nanos);
        self.shown = (d_steps > 0).then(|| Cost {
            mean_step_micros: d_nanos as f64 / d_steps as f64 / 1e3,
            worst_block_micros: worst / 1e3,
            steps_per_second: d_steps as f64 / elapsed.as_secs_f64(),
            worst_block_share: worst / budget,
        });
        (self.since, self.steps, self.nanos) = (Instant::now(), steps, nanos);
    }
}

pub struct EditorApp {
    params: Arc<ContinuoParams>,
    monitor: Arc<Monitor>,
    switch: Arc<ModelSwitch>,
    saves: Arc<SaveReport>,
    executor: AsyncExecutor<Continuo>,
    gui: Option<GuiContext>,
    recording: Recording,
    path_field: String,
    folder_models: Vec<PathBuf>,
    recent_models: Vec<PathBuf>,
    /// The model generation the lists were read for.
    lists_generation: u64,
    save_bars: u32,
    save_path: String,
    /// Refusals the window has acted on (putting the choice back to what plays).
    refusals_seen: u64,
    cost: CostWindow,
    restart_pressed: bool,
    new_phrase_pressed: bool,
    trace: Option<trace::Trace>,
}

/// "Keep what you like" saves the last bars, or (this value of `save_bars`) the phrase loop.
const SAVE_THE_LOOP: u32 = 0;

impl EditorApp {
    pub fn new(
        params: Arc<ContinuoParams>,
        monitor: Arc<Monitor>,
        switch: Arc<ModelSwitch>,
        saves: Arc<SaveReport>,
        executor: AsyncExecutor<Continuo>,
    ) -> EditorApp {
        EditorApp {
            cost: CostWindow::new(&monitor),
            refusals_seen: switch.refusals(),
            params,
            monitor,
            switch,
            saves,
            executor,
            gui: None,
            recording: Recording::default(),
            path_field: String::new(),
            folder_models: Vec::new(),
            recent_models: Vec::new(),
            lists_generation: u64::MAX,
            save_bars: 8,
            save_path: String::new(),
            restart_pressed: false,
            new_phrase_pressed: false,
            trace: trace::Trace::from_env(),
        }
    }

    fn refresh_lists(&mut self) {
        self.folder_models = user_files::models_in_folder();
        self.recent_models = user_files::recent_models();
        self.lists_generation = self.switch.playing_generation();
    }
}

impl NiceEguiApp for EditorApp {
    fn build(
        &mut self,
        egui_ctx: egui::Context,
        gui: GuiContext,
        _frame: &mut Frame,
    ) -> Result<(), nice_plug_egui::baseview::HandlerError> {
        egui_ctx.set_visuals(egui::Visuals::dark());
        self.gui = Some(gui);
        self.refresh_lists();
        Ok(())
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut Frame) {
        // The roll scrolls: draw again soon whatever happens.
        ui.ctx().request_repaint_after(Duration::from_millis(33));
        let Some(gui) = self.gui.clone() else { return };
        let setter = gui.param_setter();
        self.switch.collect_retired();
        if self.lists_generation != self.switch.playing_generation() {
            self.refresh_lists();
        }
        let monitor = self.monitor.clone();
        let meters = &monitor.meters;
        let now = meters.clock();
        self.recording.update(&self.monitor.notes, now);
        self.cost.update(&self.monitor);
        // Restart and New phrase act on the rising edge; let go of them one frame later.
        if std::mem::take(&mut self.restart_pressed) {
            set(&setter, &self.params.restart, false);
        }
        if std::mem::take(&mut self.new_phrase_pressed) {
            set(&setter, &self.params.new_phrase, false);
        }
        let mut trace = trace::Frame::default();

        egui::Panel::top("transport").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.heading("Continuo");
                ui.separator();
                if crate::STANDALONE.load(Ordering::Relaxed) {
                    self.own_transport_buttons(ui, &mut trace);
                    ui.separator();
                }
                let line = transport_line(&self.monitor);
                ui.monospace(&line);
                trace.transport = line;
                ui.separator();
                let playing = listening_line(&self.params, meters);
                ui.strong(&playing);
                trace.listening = playing;
            });
        });

        egui::Panel::bottom("controls").show(ui, |ui| {
            ui.add_space(4.0);
            self.parameter_controls(ui, &setter, &mut trace);
            ui.separator();
            self.save_controls(ui, &mut trace);
            ui.add_space(4.0);
        });

        egui::Panel::right("model").exact_size(330.0).show(ui, |ui| {
            // A long list of the musician's models scrolls rather than falling off the window.
            egui::ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
                self.model_panel(ui, &setter, &mut trace);
            });
        });

        egui::CentralPanel::default().show(ui, |ui| {
            let signature = meters.time_signature();
            let view = RollView {
                now,
                bar_clock: meters.bar_clock(),
                beats_per_bar: transport::beats_per_bar(signature),
                beat: 4.0 / signature.1.max(1) as f64,
                bars_shown: BARS_SHOWN,
                lowest: (self.params.lowest.value().min(self.params.highest.value()) as u8).saturating_sub(2),
                highest: (self.params.lowest.value().max(self.params.highest.value()) as u8 + 2).min(127),
                scale_lock: RollView::shaded(self.params.generator_settings().sampler.scale_lock),
                loop_region: meters.loop_region(),
            };
            ui.horizontal(|ui| {
                ui.label(RichText::new("    ").background_color(piano_roll::GENERATED));
                ui.label("generated");
                ui.label(RichText::new("    ").background_color(piano_roll::INPUT));
                ui.label(if self.params.listen_settings().mode.listens() { "heard" } else { "MIDI input" });
                if self.params.listen_settings().mode.listens() {
                    ui.label(RichText::new("    ").background_color(piano_roll::UNHEARD));
                    ui.label("not heard");
                }
                if view.scale_lock.is_some() {
                    ui.weak("shaded rows: the scale");
                }
            });
            let size = ui.available_size();
            let (response, drawn) = piano_roll::show(ui, size, &self.recording, &view);
            trace.control("piano roll", response.rect);
            trace.drawn = drawn;
        });

        if let Some(t) = &mut self.trace {
            t.write(trace);
        }
    }
}

impl EditorApp {
    /// Play, pause and stop for the standalone program, which has no host transport to follow.
    fn own_transport_buttons(&self, ui: &mut egui::Ui, trace: &mut trace::Frame) {
        let own = &self.monitor.own_transport;
        for (label, state) in [
            ("Play", TransportState::Playing),
            ("Pause", TransportState::Paused),
            ("Stop", TransportState::Stopped),
        ] {
            let button = ui.selectable_label(own.requested() == state, label);
            trace.control(label, button.rect);
            if button.clicked() {
                own.request(state);
            }
        }
    }

    fn parameter_controls(&mut self, ui: &mut egui::Ui, setter: &ParamSetter, trace: &mut trace::Frame) {
        let p = &self.params;
        egui::Grid::new("parameters").num_columns(6).spacing(Vec2::new(10.0, 6.0)).show(ui, |ui| {
            slider(ui, setter, &p.temperature);
            ui.label(p.key.name());
            choice(ui, setter, &p.key, "key", &KEY_NAMES);
            ui.label(p.scale.name());
            let scales: Vec<&str> = Scale::ALL.iter().map(|s| s.name()).collect();
            choice(ui, setter, &p.scale, "scale", &scales);
            ui.end_row();

            slider(ui, setter, &p.lowest);
            slider(ui, setter, &p.highest);
            slider(ui, setter, &p.polyphony);
            ui.end_row();

            slider(ui, setter, &p.velocity);
            slider(ui, setter, &p.channel);
            ui.label(p.seed.name());
            ui.horizontal(|ui| {
                ui.add(ParamSlider::for_param(&p.seed, setter).with_width(70.0));
                if ui.button("New seed").on_hover_text("A different take on the music").clicked() {
                    set(setter, &p.seed, new_seed(p.seed.value()));
                }
            });
            ui.end_row();

            ui.label("");
            if ui.button("Restart").on_hover_text("Start the music again from its beginning").clicked() {
                set(setter, &p.restart, true);
                self.restart_pressed = true;
            }
            let mut bypassed = p.bypass.value();
            if ui.checkbox(&mut bypassed, "Bypass").changed() {
                set(setter, &p.bypass, bypassed);
            }
            ui.label("");
            ui.label("Preset");
            let presets =
                egui::ComboBox::from_id_salt("preset").selected_text("choose...").show_ui(ui, |ui| {
                    for preset in &PRESETS {
                        let item = ui.selectable_label(false, preset.name).on_hover_text(preset.description);
                        trace.control(&format!("preset: {}", preset.name), item.rect);
                        if item.clicked() {
                            apply_preset(setter, p, preset);
                        }
                    }
                });
            trace.control("preset", presets.response.rect);
            ui.end_row();

            ui.label(p.mode.name());
            let mode = p.mode.value();
            let mut chosen = mode;
            egui::ComboBox::from_id_salt("mode").selected_text(mode.mode().name()).show_ui(ui, |ui| {
                for option in [PlayMode::Free, PlayMode::CallAndResponse, PlayMode::Duet] {
                    ui.selectable_value(&mut chosen, option, option.mode().name());
                }
            });
            if chosen != mode {
                set(setter, &p.mode, chosen);
            }
            slider(ui, setter, &p.answer_after);
            slider(ui, setter, &p.answer_length);
            ui.end_row();

            slider(ui, setter, &p.density);
            ui.label(p.loop_bars.name());
            let loops: Vec<String> = (0..LOOP_BAR_CHOICES.len() as i32)
                .map(|i| p.loop_bars.normalized_value_to_string(p.loop_bars.preview_normalized(i), false))
                .collect();
            let loops: Vec<&str> = loops.iter().map(String::as_str).collect();
            choice(ui, setter, &p.loop_bars, "loop", &loops);
            ui.label("");
            if ui.button("New phrase").on_hover_text("Another take: a new loop, from the next bar").clicked()
            {
                set(setter, &p.new_phrase, true);
                self.new_phrase_pressed = true;
            }
            ui.end_row();
        });
    }

    fn model_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter, trace: &mut trace::Frame) {
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
        let cost = match self.cost.shown {
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

    fn save_controls(&mut self, ui: &mut egui::Ui, trace: &mut trace::Frame) {
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
                let request = self.save_request();
                self.executor.execute_background(request);
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

    /// The notes to save, taken now (what was heard when the button was pressed): the last
    /// bars, or the phrase loop as a clip of exactly its length (the last repetition heard
    /// whole, else the one playing).
    fn save_request(&self) -> Task {
        let meters = &self.monitor.meters;
        let (now, bar) = (meters.clock(), transport::beats_per_bar(meters.time_signature()));
        let (from, to, length) = match (self.save_bars, meters.loop_region()) {
            (SAVE_THE_LOOP, Some((start, beats))) => {
                let from = if start - beats >= 0.0 { start - beats } else { start };
                (from, from + beats, Some(beats))
            }
            (SAVE_THE_LOOP, None) => (now, now, None),
            (bars, _) => (transport::last_bars_start(meters.bar_clock(), bar, bars), now, None),
        };
        let notes = self.recording.generated_between(from, to, self.params.channel_index());
        let path = match self.save_path.trim() {
            "" => default_midi_path(self.save_bars),
            typed => PathBuf::from(typed),
        };
        let bpm = meters.tempo_millibpm.load(Ordering::Relaxed) as f64 / 1000.0;
        let bpm = if bpm > 0.0 { bpm } else { crate::player::DEFAULT_BPM };
        Task::SaveMidi { path, notes, bpm, length }
    }
}

/// A text field (name, hint, width) and a button after it, both traced (the button as its label,
/// in lower case). Whether the button was pressed, or Enter typed in the field.
fn field_and_button(
    ui: &mut egui::Ui,
    text: &mut String,
    (name, hint, width): (&str, &str, f32),
    label: &str,
    trace: &mut trace::Frame,
) -> bool {
    let field = ui.add(egui::TextEdit::singleline(text).hint_text(hint).desired_width(width));
    trace.control(name, field.rect);
    let button = ui.button(label);
    trace.control(&label.trim_end_matches('.').to_lowercase(), button.rect);
    let entered = field.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    button.clicked() || entered
}

/// Sets a parameter from the window as one gesture, as the host records automation.
fn set<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

/// Sets every parameter a preset names, each as one gesture.
fn apply_preset(setter: &ParamSetter, p: &ContinuoParams, preset: &Preset) {
    set(setter, &p.mode, preset.mode);
    set(setter, &p.temperature, preset.temperature);
    set(setter, &p.density, preset.density);
    set(setter, &p.polyphony, preset.polyphony);
    set(setter, &p.lowest, preset.lowest);
    set(setter, &p.highest, preset.highest);
    set(setter, &p.loop_bars, preset.loop_choice);
    set(setter, &p.answer_after, preset.answer_after_beats);
    set(setter, &p.answer_length, preset.answer_length);
}

/// A parameter's name and its slider, two cells of the parameter grid.
fn slider<P: Param>(ui: &mut egui::Ui, setter: &ParamSetter, param: &P) {
    ui.label(param.name());
    ui.add(ParamSlider::for_param(param, setter).with_width(120.0));
}

/// A drop-down for an integer parameter whose values have names.
fn choice(ui: &mut egui::Ui, setter: &ParamSetter, param: &IntParam, id: &str, names: &[&str]) {
    let current = param.value();
    let mut chosen = current;
    egui::ComboBox::from_id_salt(id)
        .selected_text(names.get(current as usize).copied().unwrap_or("?"))
        .show_ui(ui, |ui| {
            for (i, name) in names.iter().enumerate() {
                ui.selectable_value(&mut chosen, i as i32, *name);
            }
        });
    if chosen != current {
        set(setter, param, chosen);
    }
}

fn model_button(ui: &mut egui::Ui, path: &Path, list: &str, trace: &mut trace::Frame) -> egui::Response {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let response = ui.button(&name).on_hover_text(path.display().to_string());
    trace.control(&format!("{list}: {name}"), response.rect);
    response
}

/// A seed other than the current one, from the clock: new music each press.
fn new_seed(current: i32) -> i32 {
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().subsec_nanos();
    let seed = (nanos % 10_000) as i32;
    if seed == current {
        (seed + 1) % 10_000
    } else {
        seed
    }
}

/// "playing  120.0 BPM  4/4  bar 5.2", as the plugin sees the host's transport.
pub fn transport_line(monitor: &Monitor) -> String {
    let m = &monitor.meters;
    let state = match m.transport() {
        TransportState::Playing => "playing",
        TransportState::Paused => "paused",
        TransportState::Stopped => "stopped",
    };
    let tempo = m.tempo_millibpm.load(Ordering::Relaxed) as f64 / 1000.0;
    let (numerator, denominator) = m.time_signature();
    let pos = m.position_millibeats.load(Ordering::Relaxed) as f64 / 1000.0;
    let (bar, beat) = transport::bar_and_beat(pos, (numerator, denominator));
    format!("{state}   {tempo:.1} BPM   {numerator}/{denominator}   bar {bar}.{beat}")
}

/// How the model plays with the musician now: "Free", "Call and response: listening",
/// "Duet", with the loop when one plays.
pub fn listening_line(params: &ContinuoParams, meters: &Meters) -> String {
    let mode = params.listen_settings().mode;
    let mut line = mode.name().to_string();
    if mode == Mode::CallAndResponse {
        let listening = meters.listening.load(Ordering::Relaxed) == 1;
        line.push_str(if listening { ": listening" } else { ": answering" });
    }
    if let Some((_, beats)) = meters.loop_region() {
        line.push_str(&format!(", looping {:.0} beats", beats));
    }
    line
}

/// What a model step costs against small blocks, and what the audio thread had to give up.
/// A model too slow for 64-sample blocks still plays (one step a block, late notes skipped); the
/// window says so, with the buffer size it needs, rather than letting the host crackle.
pub fn real_time_lines(meters: &Meters) -> Vec<String> {
    let token = Duration::from_nanos(meters.token_cost_nanos.load(Ordering::Relaxed));
    let rate = match meters.sample_rate_hz.load(Ordering::Relaxed) {
        0 => 48_000.0,
        hz => hz as f32,
    };
    let share = token.as_secs_f64() / (64.0 / rate as f64) * 100.0;
    let micros = token.as_secs_f64() * 1e6;
    let needs = smallest_block(rate, token);
    let fit = if needs <= 64 {
        format!("a token: {micros:.0} µs, {share:.0}% of a 64-sample block at {:.0} kHz: fits", rate / 1e3)
    } else {
        format!(
            "a token: {micros:.0} µs, {share:.0}% of a 64-sample block at {:.0} kHz; for its worst case \
             it needs a host buffer of {needs} samples or more",
            rate / 1e3
        )
    };
    let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
    vec![
        fit,
        format!(
            "audio thread: {} system allocations, {} late notes skipped, {} steps refused",
            continuo_engine::realtime_memory::system_calls_on_audio_thread(),
            load(&meters.late_events),
            load(&meters.refused_steps)
        ),
    ]
}

/// The model panel's text: name first.
pub fn model_lines(card: &ModelCard) -> Vec<String> {
    let info = &card.info;
    let t = &info.training;
    let s = info.shape;
    let mut lines = vec![info.name.clone()];
    if !t.dataset.is_empty() {
        lines.push(format!("trained on {}", t.dataset));
    }
    lines.push(format!(
        "LSTM {} x {}, embedding {}, dense {}: {} parameters",
        s.layers,
        s.hidden,
        s.embed,
        s.dense,
        s.parameter_count()
    ));
    lines.push(format!("vocabulary {} v{}, {} tokens", info.vocab.name, info.vocab.version, s.vocab));
    lines.push(match t.validation_loss {
        Some(loss) => format!("validation loss {loss:.3} nats/token after {} steps", t.steps),
        None => "validation loss unknown".to_string(),
    });
    lines.push(card.source.path().map_or("built into the plugin".to_string(), str::to_string));
    lines
}

/// A new file in the user's midi folder, named after the time and the bars.
fn default_midi_path(bars: u32) -> PathBuf {
    let stamp = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string().replace(':', "-");
    let what = if bars == SAVE_THE_LOOP { "loop".to_string() } else { format!("{bars}-bars") };
    user_files::user_folder().join("midi").join(format!("continuo-{stamp}-{what}.mid"))
}

/// What the window shows, written as JSON when `CONTINUO_EDITOR_TRACE` names a file: the text of
/// the model panel and the transport, how many notes the piano roll drew, and where the controls
/// are. The GUI tests read it to click the right places and to check what a musician would see.
mod trace {
    use std::collections::BTreeMap;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    use egui::Rect;
    use serde_json::json;

    use crate::piano_roll::Drawn;

    #[derive(Default)]
    pub struct Frame {
        pub transport: String,
        pub listening: String,
        pub model: Vec<String>,
        pub cost: Vec<String>,
        pub report: String,
        pub saved: String,
        pub drawn: Drawn,
        pub controls: BTreeMap<String, [f32; 4]>,
    }

    impl Frame {
        pub fn control(&mut self, name: &str, rect: Rect) {
            self.controls.insert(name.to_string(), [rect.min.x, rect.min.y, rect.max.x, rect.max.y]);
        }
    }

    pub struct Trace {
        path: PathBuf,
        last: Instant,
    }

    impl Trace {
        pub fn from_env() -> Option<Trace> {
            let path = std::env::var_os("CONTINUO_EDITOR_TRACE")?;
            Some(Trace { path: PathBuf::from(path), last: Instant::now() - Duration::from_secs(1) })
        }

        pub fn write(&mut self, frame: Frame) {
            if self.last.elapsed() < Duration::from_millis(100) {
                return;
            }
            self.last = Instant::now();
            let value = json!({
                "transport": frame.transport,
                "listening": frame.listening,
                "model": frame.model,
                "cost": frame.cost,
                "report": frame.report,
                "saved": frame.saved,
                "drawn": { "generated": frame.drawn.generated, "input": frame.drawn.input },
                "controls": frame.controls,
            });
            // Whole or not at all: readers never see half a file.
            let partial = self.path.with_extension("partial");
            if std::fs::write(&partial, value.to_string()).is_ok() {
                let _ = std::fs::rename(&partial, &self.path);
            }
        }
    }
}
