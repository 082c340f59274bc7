//! Continuo, the plugin (CLAP and VST3): plays new music from the engine's model into the host,
//! in time with its tempo, with the host's transport as play, pause and stop.
//!
//! This file is the nice-plug glue and the whole signal path: `process()` reads the transport,
//! takes a new model's player when one is handed over ([`model_switch`]), applies the
//! parameters, lets the [`player::Player`] generate and place this block's notes, and sends them,
//! merged in time order with the MIDI coming in (passed through and logged for the editor).
//! Models are loaded and warmed in `activate()` or by a background task, never on the audio
//! thread, and `process()` runs as the audio thread for [`realtime`]: the model steps in its own
//! memory, and nothing calls the system allocator. Saving MIDI is [`save_midi`]'s.

pub mod built_in;
pub mod editor;
pub mod event_queue;
pub mod listening;
pub mod model_switch;
pub mod monitor;
pub mod note_output;
pub mod params;
pub mod piano_roll;
pub mod played_notes;
pub mod player;
pub mod presets;
pub mod save_midi;
pub mod step_budget;
pub mod takes;
pub mod transport;
pub mod user_files;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use continuo_engine::realtime_memory::{self as realtime, RealtimeAllocator};
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;
use nice_plug_egui::{EguiEditor, EguiEditorState};

use crate::editor::EditorApp;
use crate::listening::InputNote;
use crate::model_switch::{ModelSwitch, PlayingModel};
use crate::monitor::{Meters, Monitor};
use crate::params::ContinuoParams;
use crate::player::{OutputEvent, Player};
use crate::save_midi::{SaveReport, SaveRequest};
use crate::step_budget::ActiveInstance;
use crate::transport::HostTransport;

/// Every allocation of the plugin goes through the real-time allocator: a model step's come
/// from the model's pool, and a system allocation on the audio thread is counted (in debug
/// builds, reported and aborted: the tests run debug bundles).
#[global_allocator]
static ALLOCATOR: RealtimeAllocator = RealtimeAllocator;

/// Set by the standalone program before it starts the plugin: there the plugin keeps its own
/// transport (see [`transport::OwnTransport`]) unless JACK's transport gives a beat position.
pub static STANDALONE: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
/// A file the plugin writes its meters to as JSON at every deactivation and when it is
/// destroyed, for hosts that test it without its window.
pub const METERS_TRACE_VARIABLE: &str = "CONTINUO_METERS_TRACE";

/// Our own events in one block, at most: generation is capped far below this.
const MAX_EVENTS_PER_BLOCK: usize = 1024;
/// Events coming in, in one block, kept for the player and passed through: more than any
/// keyboard or controller sends. Beyond this they are dropped and counted (`dropped_events`).
const MAX_INPUT_PER_BLOCK: usize = 1024;

/// Work run on nice-plug's background thread, asked for by the window or the audio thread.
pub enum Task {
    /// Open, check and warm the model the `Model` parameter and the project's file ask for,
    /// and switch to it (unless it plays already).
    SwitchModel,
    /// Write notes to a MIDI file, and report what happened to the window.
    SaveMidi(SaveRequest),
}

pub struct Continuo {
    params: Arc<ContinuoParams>,
    monitor: Arc<Monitor>,
    switch: Arc<ModelSwitch>,
    saves: Arc<SaveReport>,
    editor_state: Arc<EguiEditorState>,
    /// The player playing, and the model it plays.
    playing: PlayingModel,
    /// This block's events before they are merged with the input; allocated once.
    events: Vec<OutputEvent>,
    /// This block's incoming events, to pass through, and the notes among them for the
    /// player; allocated once.
    incoming: Vec<PluginNoteEvent<Continuo>>,
    input_notes: Vec<InputNote>,
    /// The channel notes sound on now, to end them there when it changes.
    channel: u8,
    restart_held: bool,
    new_phrase_held: bool,
    /// The standalone program's own position, in beats, when it keeps its own transport.
    own_position: f64,
    /// This instance in the count of those active in the host, whose step caps share a block.
    active: ActiveInstance,
}

impl Default for Continuo {
    fn default() -> Self {
        Continuo {
            params: Arc::new(ContinuoParams::default()),
            monitor: Arc::default(),
            switch: Arc::default(),
            saves: Arc::default(),
            editor_state: editor::default_state(),
            playing: PlayingModel::default(),
            events: Vec::with_capacity(MAX_EVENTS_PER_BLOCK),
            incoming: Vec::with_capacity(MAX_INPUT_PER_BLOCK),
            input_notes: Vec::with_capacity(MAX_INPUT_PER_BLOCK),
            channel: 0,
            restart_held: false,
            new_phrase_held: false,
            own_position: 0.0,
            active: ActiveInstance::default(),
        }
    }
}

impl Plugin for Continuo {
    const NAME: &'static str = "Continuo";
    const VENDOR: &'static str = "Continuo";
    const URL: &'static str = env!("CARGO_PKG_HOMEPAGE");
    const EMAIL: &'static str = "";
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

    /// A project saved before the `Model` parameter named its model by the file alone: it goes
    /// on playing that file.
    fn filter_state(state: &mut PluginState) {
        let names_a_file = state.fields.get("model-path").is_some_and(|path| path != "\"\"");
        if names_a_file && !state.params.contains_key("model") {
            let file = nice_plug::plugin::ParamValue::String("file".to_string());
            state.params.insert("model".to_string(), file);
        }
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
            Task::SwitchModel => switch.switch_to_chosen(&params, &monitor),
            Task::SaveMidi(request) => request.save(&saves),
        })
    }

    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        _buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        match self.playing.activate(&self.switch, &self.params, &self.monitor) {
            Ok(problem) => {
                if let Some(problem) = problem {
                    nice_warn!("{problem}");
                }
                self.active.count_in();
                true
            }
            Err(error) => {
                nice_error!("cannot start the model: {error}");
                false
            }
        }
    }

    /// Called by the host on the audio thread when processing starts, and when it resets the
    /// plugin: the music goes back to its start, and the notes the host heard sound end at the
    /// start of the next block.
    fn reset(&mut self) {
        if let Some(player) = &mut self.playing.player {
            player.reset();
        }
    }

    fn deactivate(&mut self) {
        // The host takes no events until it activates the plugin again.
        self.reset();
        self.active.count_out();
        self.write_meters_trace();
    }

    fn process(
        &mut self,
        buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        let samples = buffer.samples();
        realtime::audio_thread(|| {
            let host = self.read_transport(context.transport(), samples);
            if self.playing.player.is_none() {
                return;
            }
            let events = &mut self.events;
            events.clear();
            // Another model chosen (the window, or automation) is opened off the audio thread;
            // one opened takes over now.
            if self.playing.begin_block(&self.switch, self.params.model.value(), &mut capped(events)) {
                context.execute_background(Task::SwitchModel);
            }
            let Some(player) = &mut self.playing.player else { return };
            // A new channel: the old one's notes end there, first.
            let channel = self.params.channel_index(player.model().info().role);
            if channel != self.channel {
                player.all_notes_off(0, &mut capped(events));
            }
            // Everything so far ends notes sounding on the channel they started on.
            let old_channel_events = events.len();
            let held = (&mut self.restart_held, &mut self.new_phrase_held);
            apply_parameters(&self.params, held, player, &mut capped(events));
            take_input(context, &mut self.incoming, &mut self.input_notes, &self.monitor.meters);
            player.play_among(ActiveInstance::all());
            player.process(host, &self.input_notes, &mut capped(events));
            send_merged(context, player, events, &self.incoming, (self.channel, old_channel_events), channel);
            self.channel = channel;
        });
        ProcessStatus::Normal
    }
}

impl Continuo {
    /// What the host says about this block, as the player reads it. Bypassed counts as paused:
    /// notes end at once; as the host plays on meanwhile, lifting the bypass is a resume
    /// elsewhere, so the music starts anew on the next beat. The standalone program without a
    /// beat position from JACK plays its own transport.
    fn read_transport(&mut self, transport: &Transport, samples: usize) -> HostTransport {
        let time_signature = match (transport.time_sig_numerator, transport.time_sig_denominator) {
            (Some(n), Some(d)) if n > 0 && d > 0 => Some((n as u32, d as u32)),
            _ => None,
        };
        let mut host = HostTransport {
            playing: transport.playing,
            tempo: transport.tempo,
            // What the host itself says: its beats (possibly rounded), and its seconds or sample
            // position (exact). Not nice-plug's conversions of one into the other, which assume
            // the tempo never changed.
            pos_beats: transport.pos_beats,
            pos_seconds: transport
                .pos_seconds
                .or(transport.pos_samples.map(|samples| samples as f64 / transport.sample_rate as f64)),
            sample_rate: transport.sample_rate,
            samples,
            time_signature,
            bar_start: transport.bar_start_pos_beats(),
        };
        if STANDALONE.load(Ordering::Relaxed) && transport.pos_beats.is_none() {
            (host, self.own_position) = self.monitor.own_transport.host_transport(host, self.own_position);
        }
        host.playing &= !self.params.bypass.value();
        host
    }

    /// Writes the meters to the file named by [`METERS_TRACE_VARIABLE`], if set.
    fn write_meters_trace(&self) {
        let Some(path) = std::env::var_os(METERS_TRACE_VARIABLE) else { return };
        let m = &self.monitor.meters;
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        let json = serde_json::json!({
            "blocks": load(&m.blocks),
            "model_steps": load(&m.model_steps),
            "notes_on": load(&m.notes_on),
            "notes_off": load(&m.notes_off),
            "late_events": load(&m.late_events),
            "dropped_events": load(&m.dropped_events),
            "refused_steps": load(&m.refused_steps),
            "restarts": load(&m.restarts),
            "resyncs": load(&m.resyncs),
            "worst_block_nanos": load(&m.worst_block_nanos),
            "token_cost_nanos": load(&m.token_cost_nanos),
            "system_calls_on_audio_thread": realtime::system_calls_on_audio_thread(),
            "pool_exhausted": realtime::pool_exhausted_count(),
        });
        if let Err(error) = std::fs::write(&path, json.to_string()) {
            nice_warn!("{}: cannot write the meters: {error}", std::path::Path::new(&path).display());
        }
    }
}

impl Drop for Continuo {
    fn drop(&mut self) {
        self.write_meters_trace();
    }
}

/// The Restart and New phrase buttons (on: the music starts again from its seed, or with a
/// new take, on the next beat or bar), then the rest of the parameters, as one value.
fn apply_parameters(
    params: &ContinuoParams,
    (restart_held, new_phrase_held): (&mut bool, &mut bool),
    player: &mut Player,
    emit: &mut impl FnMut(OutputEvent),
) {
    let restart = params.restart.value();
    if restart && !*restart_held {
        player.restart_from_the_top(emit);
    }
    *restart_held = restart;
    let new_phrase = params.new_phrase.value();
    if new_phrase && !*new_phrase_held {
        player.new_phrase(emit);
    }
    *new_phrase_held = new_phrase;
    player.apply(&params.player_settings(), emit);
}

/// Takes this block's incoming events from the host (to pass through after), and the notes
/// among them for the player to hear.
fn take_input(
    context: &mut impl ProcessContext<Continuo>,
    incoming: &mut Vec<PluginNoteEvent<Continuo>>,
    notes: &mut Vec<InputNote>,
    meters: &Meters,
) {
    incoming.clear();
    notes.clear();
    while let Some(event) = context.next_event() {
        let note = match event {
            NoteEvent::NoteOn { timing, channel, key: Key::Number(pitch), velocity, .. } => Some(InputNote {
                offset: timing,
                pitch,
                velocity: (velocity * 127.0).round().clamp(1.0, 127.0) as u8,
                channel: channel.number().unwrap_or(0),
            }),
            NoteEvent::NoteOff { timing, channel, key: Key::Number(pitch), .. } => {
                Some(InputNote { offset: timing, pitch, velocity: 0, channel: channel.number().unwrap_or(0) })
            }
            _ => None,
        };
        if incoming.len() < MAX_INPUT_PER_BLOCK {
            incoming.push(event);
            notes.extend(note);
        } else {
            meters.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sends this block's events, merged in time order with the incoming events, which pass
/// through (the player has logged their notes). Events before `old.1` go out on the old
/// channel `old.0`, the rest on `channel`.
fn send_merged(
    context: &mut impl ProcessContext<Continuo>,
    player: &Player,
    events: &[OutputEvent],
    incoming: &[PluginNoteEvent<Continuo>],
    old: (u8, usize),
    channel: u8,
) {
    let meters = &player.monitor().meters;
    let mut ours = events.iter().enumerate().peekable();
    let send = |context: &mut _, (index, e): (usize, &OutputEvent)| {
        let ch = if index < old.1 { old.0 } else { channel };
        if context_send(context, note_event::<Continuo>(e, ch)).is_err() {
            meters.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
    };
    for incoming in incoming {
        while let Some(&(i, e)) = ours.peek() {
            if e.offset > incoming.timing() {
                break;
            }
            send(context, (i, e));
            ours.next();
        }
        if context_send(context, *incoming).is_err() {
            meters.dropped_events.fetch_add(1, Ordering::Relaxed);
        }
    }
    for item in ours {
        send(context, item);
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
    use crate::built_in::{ModelChoice, ModelSource};
    use crate::model_switch::open_player_or_default;

    #[test]
    fn a_missing_model_file_falls_back_to_the_default_and_says_so() {
        let (params, monitor) = (ContinuoParams::default().player_settings(), Arc::default());
        let missing = ModelSource::File("/projects/old-song/my-model.onnx".into());
        let (player, playing, problem) = open_player_or_default(&missing, &params, &monitor).unwrap();
        assert_eq!(player.model().info().name, built_in::DEFAULT.name);
        assert_eq!(playing, ModelSource::BuiltIn(built_in::DEFAULT.choice));
        let problem = problem.expect("the fallback is reported");
        assert!(
            problem.contains("/projects/old-song/my-model.onnx") && problem.contains("instead"),
            "{problem}"
        );
        let folk = ModelSource::BuiltIn(ModelChoice::FolkMelody);
        let (player, playing, problem) = open_player_or_default(&folk, &params, &monitor).unwrap();
        assert_eq!((player.model().info().name.as_str(), playing, problem), ("Folk melody", folk, None));
        let (_, _, problem) =
            open_player_or_default(&ModelSource::File(String::new()), &params, &monitor).unwrap();
        assert!(problem.unwrap().contains("load one in the window"));
    }
}
