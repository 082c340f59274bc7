//! Continuo, the plugin (CLAP and VST3): plays new music from the engine's model into the host,
//! in time with its tempo, with the host's transport as play, pause and stop.
//!
//! This file is the nice-plug glue and the whole signal path: `process()` reads the transport
//! and the parameters, switches to a new model's player when one is handed over, lets the
//! [`player::Player`] generate and place this block's notes, and sends them, merged in time order
//! with the MIDI coming in (passed through and logged for the editor). Models are loaded and
//! warmed in `activate()` or by a background task ([`models`]), never on the audio thread.

pub mod editor;
pub mod models;
pub mod monitor;
pub mod params;
pub mod piano_roll;
pub mod player;
pub mod recording;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use continuo_engine::midi::{self, Note};
use continuo_engine::model::Model;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditor, EguiEditorState};

use crate::editor::EditorApp;
use crate::models::ModelSwitch;
use crate::monitor::{Monitor, NoteSource, TransportState};
use crate::params::ContinuoParams;
use crate::player::{BlockTransport, OutputEvent, Player};

/// Set by the standalone program before it starts the plugin: there the plugin keeps its own
/// transport (see [`monitor::OwnTransport`]) unless JACK's transport gives a beat position.
pub static STANDALONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// The default model, compiled in so the plugin plays with no file to find. Trained by
/// `continuo-train` on the Bach chorales; see models/MODEL_CARD.md.
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../../models/bach-chorales.onnx");
/// How the embedded model is named in messages.
pub const DEFAULT_MODEL_NAME: &str = "embedded Bach chorales model";
/// Our own events in one block, at most: generation is capped far below this.
const MAX_EVENTS_PER_BLOCK: usize = 1024;

/// Work the window asks for, run on nice-plug's background thread.
pub enum Task {
    /// Load, check and warm the model at this path ("" for the embedded one) and switch to it.
    LoadModel(String),
    /// Write these notes (beats from the file's start) to a MIDI file at this tempo.
    SaveMidi { path: PathBuf, notes: Vec<Note>, bpm: f64 },
}

/// What the last "Save MIDI" did: the message to show.
pub type SaveReport = Mutex<Option<Result<String, String>>>;

pub struct Continuo {
    params: Arc<ContinuoParams>,
    monitor: Arc<Monitor>,
    switch: Arc<ModelSwitch>,
    saves: Arc<SaveReport>,
    editor_state: Arc<EguiEditorState>,
    player: Option<Player>,
    /// The persisted model path the player was built from ("" for the embedded model).
    player_model_path: String,
    /// This block's events before they are merged with the input; allocated once.
    events: Vec<OutputEvent>,
    /// The channel notes sound on now, to end them there when it changes.
    channel: u8,
    restart_held: bool,
    /// The standalone program's own position, in beats, when it keeps its own transport.
    own_position: f64,
}

impl Default for Continuo {
    fn default() -> Self {
        Continuo {
            params: Arc::new(ContinuoParams::default()),
            monitor: Arc::default(),
            switch: Arc::default(),
            saves: Arc::default(),
            editor_state: editor::default_state(),
            player: None,
            player_model_path: String::new(),
            events: Vec::with_capacity(MAX_EVENTS_PER_BLOCK),
            channel: 0,
            restart_held: false,
            own_position: 0.0,
        }
    }
}

/// Wraps the model step: allocation is allowed there (tract allocates) and nowhere else on the
/// audio thread, which `assert_process_allocs` enforces in debug builds.
pub(crate) fn permit_model_step(step: &mut dyn FnMut()) {
    nice_plug::util::permit_alloc(step)
}

/// Loads the persisted model, or the embedded one when none is set or it cannot be loaded.
/// Returns the model and, when the persisted one failed, why.
pub fn load_model(path: &str) -> (Model, Option<String>) {
    let fallback = || {
        Model::load(DEFAULT_MODEL, DEFAULT_MODEL_NAME).expect("the embedded model is checked by the tests")
    };
    if path.is_empty() {
        return (fallback(), None);
    }
    match Model::load_file(std::path::Path::new(path)) {
        Ok(model) => (model, None),
        Err(error) => (fallback(), Some(format!("{error}; playing the {DEFAULT_MODEL_NAME} instead"))),
    }
}

impl Plugin for Continuo {
    const NAME: &'static str = "Continuo";
    const VENDOR: &'static str = "Continuo";
    const URL: &'static str = env!("CARGO_PKG_HOMEPAGE");
    const EMAIL: &'static str = "continuo@example.invalid";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");

    // Stereo through first: Ableton Live refuses a VST3 without audio. Then a pure note effect.
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[
        AudioIOLayout {
            main_input_channels: NonZeroU32::new(2),
            main_output_channels: NonZeroU32::new(2),
            ..AudioIOLayout::const_default()
        },
        AudioIOLayout::const_default(),
    ];
    const MIDI_INPUT: MidiConfig = MidiConfig::MidiCCs;
    const MIDI_OUTPUT: MidiConfig = MidiConfig::MidiCCs;
    const SAMPLE_ACCURATE_AUTOMATION: bool = false;

    type Editor = EguiEditor<EditorApp>;
    type SysExMessage = ();
    type BackgroundTask = Task;

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn editor(&mut self, executor: AsyncExecutor<Self>) -> Option<Self::Editor> {
        let app = EditorApp::new(
            self.params.clone(),
            self.monitor.clone(),
            self.switch.clone(),
            self.saves.clone(),
            executor,
        );
        let settings = nice_plug_egui::EguiNiceSettings::new().with_tile("Continuo");
        nice_plug_egui::create_egui_editor(self.editor_state.clone(), Default::default(), settings, app)
    }

    fn task_executor(&mut self) -> TaskExecutor<Self> {
        let (params, monitor, switch, saves) =
            (self.params.clone(), self.monitor.clone(), self.switch.clone(), self.saves.clone());
        Box::new(move |task| match task {
            Task::LoadModel(path) => switch.load(&path, &params, &monitor),
            Task::SaveMidi { path, notes, bpm } => {
                let result = save_midi(&path, &notes, bpm);
                if let Ok(mut report) = saves.lock() {
                    *report = Some(result);
                }
            }
        })
    }

    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        _buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        // A model switched to while the host was not processing takes over now.
        if let Some(handover) = self.switch.take_ready() {
            // Deactivation ended the old player's notes.
            if let Some(player) = &mut self.player {
                self.switch.hand_over(handover, player, &mut self.player_model_path);
            }
            self.switch.collect_retired();
        }
        let path = self.params.model_path.lock().map(|p| p.clone()).unwrap_or_default();
        // Activation repeats (sample rate or buffer changes); load again only when a restored
        // project names another model than the one playing.
        if self.player.is_some() && self.player_model_path == path {
            return true;
        }
        let (model, problem) = load_model(&path);
        if let Some(problem) = &problem {
            nice_warn!("{problem}");
        }
        let info = model.info().clone();
        let settings = (self.params.generator_settings(), self.params.output_settings());
        match Player::new(model, settings.0, settings.1, self.monitor.clone()) {
            Ok(mut player) => {
                player.set_step_scope(permit_model_step);
                // The project's model replaces the one playing: that one's notes end.
                if let Some(old) = &mut self.player {
                    old.restart(&mut |_| {});
                }
                self.player = Some(player);
                let shown_path = if problem.is_some() { "" } else { path.as_str() };
                let generation = self.switch.register(&info, shown_path);
                self.switch.mark_playing(generation);
                self.player_model_path = path;
                true
            }
            Err(error) => {
                nice_error!("cannot start the model: {error}");
                false
            }
        }
    }

    fn reset(&mut self) {
        if let Some(player) = &mut self.player {
            player.restart(&mut |_| {});
        }
    }

    fn deactivate(&mut self) {
        // The host takes no events after this: start clean when it activates again.
        self.reset();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let Some(player) = &mut self.player else { return ProcessStatus::Normal };
        let transport = context.transport();
        let time_signature = match (transport.time_sig_numerator, transport.time_sig_denominator) {
            (Some(n), Some(d)) if n > 0 && d > 0 => Some((n as u32, d as u32)),
            _ => None,
        };
        let (mut playing, mut pos_beats) = (transport.playing, transport.pos_beats);
        if STANDALONE.load(Ordering::Relaxed) && pos_beats.is_none() {
            let own = &self.monitor.own_transport;
            let requested = own.requested();
            (playing, pos_beats) = (requested == TransportState::Playing, Some(self.own_position));
            if requested == TransportState::Stopped {
                // This block pauses where the music was; the next, back at 0, is the rewind
                // that makes the next Play start the music from its beginning.
                self.own_position = 0.0;
            }
            if playing {
                let tempo = transport.tempo.filter(|t| *t > 0.0).unwrap_or(player::DEFAULT_BPM);
                self.own_position += buffer.samples() as f64 * tempo / 60.0 / transport.sample_rate as f64;
            }
        }
        let block = BlockTransport {
            // Bypassed counts as paused: notes end at once; as the host plays on meanwhile,
            // lifting the bypass is a resume elsewhere, so the music starts anew there.
            playing: playing && !self.params.bypass.value(),
            tempo: transport.tempo,
            pos_beats,
            sample_rate: transport.sample_rate,
            samples: buffer.samples(),
            time_signature,
            bar_start: transport.bar_start_pos_beats(),
        };
        let events = &mut self.events;
        events.clear();

        // A new model: the notes of the one playing end, then the new player plays on from this
        // block. The old one goes back to be dropped off the audio thread.
        if let Some(handover) = self.switch.take_ready() {
            player.all_notes_off(0, &mut capped(events));
            self.switch.hand_over(handover, player, &mut self.player_model_path);
        }
        // A new channel: the old one's notes end there, first.
        let channel = self.params.channel_index();
        if channel != self.channel {
            player.all_notes_off(0, &mut capped(events));
        }
        // Everything so far ends notes sounding on the channel they started on.
        let old_channel_events = events.len();
        {
            let mut emit = capped(events);
            let restart = self.params.restart.value();
            if restart && !self.restart_held {
                player.restart(&mut emit);
            }
            self.restart_held = restart;
            player.set_output(self.params.output_settings());
            player.set_settings(self.params.generator_settings(), &mut emit);
            player.process(block, &mut emit);
        }

        // Merge with the incoming MIDI (passed through), in time order.
        let meters = &player.monitor().meters;
        let mut ours = events.iter().enumerate().peekable();
        let old = self.channel;
        let send = |context: &mut _, (index, e): (usize, &OutputEvent)| {
            let ch = if index < old_channel_events { old } else { channel };
            if context_send(context, note_event::<Continuo>(e, ch)).is_err() {
                meters.dropped_events.fetch_add(1, Ordering::Relaxed);
            }
        };
        while let Some(incoming) = context.next_event() {
            match incoming {
                NoteEvent::NoteOn { timing, key: Key::Number(pitch), velocity, .. } => {
                    let velocity = (velocity * 127.0).round().clamp(1.0, 127.0) as u8;
                    player.log(timing, pitch, velocity, NoteSource::Input);
                }
                NoteEvent::NoteOff { timing, key: Key::Number(pitch), .. } => {
                    player.log(timing, pitch, 0, NoteSource::Input)
                }
                _ => {}
            }
            while let Some(&(i, e)) = ours.peek() {
                if e.offset > incoming.timing() {
                    break;
                }
                send(context, (i, e));
                ours.next();
            }
            if context_send(context, incoming).is_err() {
                meters.dropped_events.fetch_add(1, Ordering::Relaxed);
            }
        }
        for item in ours {
            send(context, item);
        }
        self.channel = channel;
        ProcessStatus::Normal
    }
}

/// Collects this block's events, at most [`MAX_EVENTS_PER_BLOCK`] (the capacity allocated).
fn capped(events: &mut Vec<OutputEvent>) -> impl FnMut(OutputEvent) + '_ {
    move |event| {
        if events.len() < MAX_EVENTS_PER_BLOCK {
            events.push(event);
        }
    }
}

/// Writes saved notes through the engine's MIDI writer; the message says where, or why not.
fn save_midi(path: &std::path::Path, notes: &[Note], bpm: f64) -> Result<String, String> {
    if notes.is_empty() {
        return Err("nothing to save yet: no notes were played in those bars".to_string());
    }
    if let Some(folder) = path.parent().filter(|f| !f.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder).map_err(|e| format!("{}: {e}", folder.display()))?;
    }
    midi::write_file(path, notes, bpm).map_err(|e| e.to_string())?;
    Ok(format!("saved {} notes at {bpm:.1} BPM to {}", notes.len(), path.display()))
}

/// Sends an event; an error means the host's buffer is full and the event is lost.
fn context_send<P: Plugin>(
    context: &mut impl ProcessContext<P>,
    event: PluginNoteEvent<P>,
) -> Result<(), ()> {
    context.try_send_event(event).map_err(|_| ())
}

fn note_event<P: Plugin>(event: &OutputEvent, channel: u8) -> PluginNoteEvent<P> {
    let (voice_id, channel, key) = (VoiceID::Wildcard, Channel::Number(channel), Key::Number(event.pitch));
    if event.is_on() {
        NoteEvent::NoteOn {
            timing: event.offset,
            voice_id,
            channel,
            key,
            velocity: event.velocity as f32 / 127.0,
        }
    } else {
        NoteEvent::NoteOff { timing: event.offset, voice_id, channel, key, velocity: 0.0 }
    }
}

impl ClapPlugin for Continuo {
    const CLAP_ID: &'static str = "org.continuo.continuo";
    const CLAP_DESCRIPTION: Option<&'static str> =
        Some("Plays new music from a neural network, in time with the host");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    // Bitwig and REAPER list note effects with MIDI generators.
    const CLAP_FEATURES: &'static [ClapFeature] = &[ClapFeature::NoteEffect, ClapFeature::Utility];
}

impl Vst3Plugin for Continuo {
    const VST3_CLASS_ID: [u8; 16] = *b"ContinuoMidiGen1";
    // Live shows MIDI-producing VST3s among instruments.
    const VST3_SUBCATEGORIES: &'static [Vst3SubCategory] =
        &[Vst3SubCategory::Instrument, Vst3SubCategory::Generator];
}

nice_export_clap!(Continuo);
nice_export_vst3!(Continuo);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_model_loads_and_plays_melodies() {
        let model = Model::load(DEFAULT_MODEL, DEFAULT_MODEL_NAME).unwrap();
        assert_eq!(model.info().name, "Bach chorales");
        assert_eq!(model.info().role, continuo_engine::midi::Role::Melodic);
        assert!(model.info().training.validation_loss.unwrap() < 1.5);
    }

    #[test]
    fn a_missing_model_file_falls_back_to_the_default_and_says_so() {
        let (model, problem) = load_model("/projects/old-song/my-model.onnx");
        assert_eq!(model.info().name, "Bach chorales");
        let problem = problem.expect("the fallback is reported");
        assert!(
            problem.contains("/projects/old-song/my-model.onnx") && problem.contains("instead"),
            "{problem}"
        );
        assert!(load_model("").1.is_none());
    }
}
