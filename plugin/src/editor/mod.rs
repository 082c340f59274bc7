//! The plugin window (nice-plug-egui): the piano roll, the transport as the plugin sees it, every
//! parameter (through nice-plug's `ParamSetter`, so the host's automation and the window never
//! disagree), the model playing and what it costs, choosing another model, and saving the last
//! bars as a MIDI file.
//!
//! Nothing here blocks: loading a model and writing a file run as background tasks, and the
//! window reads the audio thread's [`Monitor`] through atomics and its lock-free note log.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use continuo_engine::midi::{Role, GM_KIT};
use egui::{self, RichText};
use nice_plug::context::gui::GuiContext;
use nice_plug::editor::dpi::LogicalSize;
use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditorState, Frame, NiceEguiApp};

use self::status::{listening_line, transport_line};
use self::widgets::set;
use crate::model_switch::ModelSwitch;
use crate::monitor::Monitor;
use crate::params::ContinuoParams;
use crate::piano_roll::{self, RollView};
use crate::played_notes::PlayedNotes;
use crate::save_midi::SaveReport;
use crate::step_budget::CostWindow;
use crate::transport;
use crate::user_files;
use crate::Continuo;

mod controls;
mod model_panel;
mod saving;
mod status;
mod trace;
mod widgets;

pub const WIDTH: u32 = 980;
pub const HEIGHT: u32 = 720;
/// Bars the piano roll shows.
const BARS_SHOWN: f64 = 4.0;

pub fn default_state() -> Arc<EguiEditorState> {
    EguiEditorState::from_size(LogicalSize::new(WIDTH as f64, HEIGHT as f64), 1.0)
}

pub struct EditorApp {
    params: Arc<ContinuoParams>,
    monitor: Arc<Monitor>,
    switch: Arc<ModelSwitch>,
    saves: Arc<SaveReport>,
    executor: AsyncExecutor<Continuo>,
    gui: Option<GuiContext>,
    /// The notes played lately: the piano roll's, and what a save writes.
    played: PlayedNotes,
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
            played: PlayedNotes::default(),
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
        self.played.update(&self.monitor.notes, now);
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
            let kit = self.switch.playing_card().is_some_and(|card| card.info.role == Role::Drums);
            let (lowest, highest) = if kit {
                (*GM_KIT.start(), *GM_KIT.end())
            } else {
                let (low, high) = (self.params.lowest.value(), self.params.highest.value());
                ((low.min(high) as u8).saturating_sub(2), (low.max(high) as u8 + 2).min(127))
            };
            let view = RollView {
                kit,
                now,
                bar_clock: meters.bar_clock(),
                beats_per_bar: transport::beats_per_bar(signature),
                beat: 4.0 / signature.1.max(1) as f64,
                bars_shown: BARS_SHOWN,
                lowest,
                highest,
                scale_lock: RollView::shaded(self.params.generator_settings().sampler.scale_lock)
                    .filter(|_| !kit),
                loop_region: meters.loop_region(),
            };
            ui.horizontal(|ui| {
                ui.label(RichText::new("    ").background_color(piano_roll::GENERATED));
                ui.label("generated");
                ui.label(RichText::new("    ").background_color(piano_roll::INPUT));
                ui.label(if self.params.mode.value().listens() { "heard" } else { "MIDI input" });
                if self.params.mode.value().listens() {
                    ui.label(RichText::new("    ").background_color(piano_roll::UNHEARD));
                    ui.label("not heard");
                }
                if view.scale_lock.is_some() {
                    ui.weak("shaded rows: the scale");
                }
            });
            let size = ui.available_size();
            let (response, drawn) = piano_roll::show(ui, size, &self.played, &view);
            trace.control("piano roll", response.rect);
            trace.drawn = drawn;
        });

        if let Some(t) = &mut self.trace {
            t.write(trace);
        }
    }
}
