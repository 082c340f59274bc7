//! The parameters panel: every parameter as a slider or a drop-down (through nice-plug's
//! `ParamSetter`, so the host's automation and the window never disagree), the presets, the
//! seed and the buttons that restart the music; standalone, the program's own transport.

use continuo_engine::midi::Role;
use continuo_engine::music::{Scale, KEY_NAMES};
use egui::{self, Vec2};
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;

use super::widgets::{choice, set, slider, slider_where};
use crate::listening::Mode;
use crate::params::ContinuoParams;
use crate::presets::{Preset, PRESETS};
use crate::takes::LOOP_BAR_CHOICES;
use crate::transport::TransportState;

use super::trace;
use super::EditorApp;

impl EditorApp {
    /// Play, pause and stop for the standalone program, which has no host transport to follow.
    pub(super) fn own_transport_buttons(&self, ui: &mut egui::Ui, trace: &mut trace::Frame) {
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

    pub(super) fn parameter_controls(
        &mut self,
        ui: &mut egui::Ui,
        setter: &ParamSetter,
        trace: &mut trace::Frame,
    ) {
        let p = &self.params;
        // A kit has no key, scale or range: a drum model strikes the General MIDI kit's pieces.
        let pitched = self.switch.playing_card().is_none_or(|card| card.info.role == Role::Melodic);
        let for_drums = "A drum model plays the General MIDI kit: no key, scale or range";
        egui::Grid::new("parameters").num_columns(6).spacing(Vec2::new(10.0, 6.0)).show(ui, |ui| {
            slider(ui, setter, &p.temperature);
            ui.add_enabled(pitched, egui::Label::new(p.key.name())).on_disabled_hover_text(for_drums);
            ui.add_enabled_ui(pitched, |ui| choice(ui, setter, &p.key, "key", &KEY_NAMES));
            ui.add_enabled(pitched, egui::Label::new(p.scale.name())).on_disabled_hover_text(for_drums);
            let scales: Vec<&str> = Scale::ALL.iter().map(|s| s.name()).collect();
            ui.add_enabled_ui(pitched, |ui| choice(ui, setter, &p.scale, "scale", &scales));
            ui.end_row();

            slider_where(ui, setter, &p.lowest, pitched, for_drums);
            slider_where(ui, setter, &p.highest, pitched, for_drums);
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
            egui::ComboBox::from_id_salt("mode").selected_text(mode.name()).show_ui(ui, |ui| {
                for option in (0..Mode::variants().len()).map(Mode::from_index) {
                    ui.selectable_value(&mut chosen, option, option.name());
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
