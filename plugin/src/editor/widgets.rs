//! The window's small parts: a parameter set as one gesture, a slider with its name, a
//! drop-down of named values, a text field with its button.

use egui;
use nice_plug::prelude::*;
use nice_plug_egui::widgets::ParamSlider;

use super::trace;

/// Sets a parameter from the window as one gesture, as the host records automation.
pub(super) fn set<P: Param>(setter: &ParamSetter, param: &P, value: P::Plain) {
    setter.begin_set_parameter(param);
    setter.set_parameter(param, value);
    setter.end_set_parameter(param);
}

/// A parameter's name and its slider, two cells of the parameter grid.
pub(super) fn slider<P: Param>(ui: &mut egui::Ui, setter: &ParamSetter, param: &P) {
    ui.label(param.name());
    ui.add(ParamSlider::for_param(param, setter).with_width(120.0));
}

/// [`slider`], greyed out with `why` on hover when the parameter does not apply.
pub(super) fn slider_where<P: Param>(
    ui: &mut egui::Ui,
    setter: &ParamSetter,
    param: &P,
    applies: bool,
    why: &str,
) {
    ui.add_enabled(applies, egui::Label::new(param.name())).on_disabled_hover_text(why);
    ui.add_enabled(applies, ParamSlider::for_param(param, setter).with_width(120.0))
        .on_disabled_hover_text(why);
}

/// A drop-down for an integer parameter whose values have names.
pub(super) fn choice(ui: &mut egui::Ui, setter: &ParamSetter, param: &IntParam, id: &str, names: &[&str]) {
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

/// A text field (name, hint, width) and a button after it, both traced (the button as its label,
/// in lower case). Whether the button was pressed, or Enter typed in the field.
pub(super) fn field_and_button(
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
