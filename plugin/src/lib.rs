//! Continuo, the plugin (CLAP and VST3): plays new music from the engine's model into the host,
//! in time with its tempo, with the host's transport as play, pause and stop.
//!
//! This file is the nice-plug glue and the whole signal path: `process()` reads the transport
//! and the parameters, lets the [`player::Player`] generate and place this block's notes, and
//! sends them, merged in time order with the MIDI coming in (passed through). Models are loaded
//! and warmed in `activate()`, never on the audio thread. [`params`] holds the parameters.

pub mod params;
pub mod player;

use std::sync::atomic::Ordering;
use std::sync::Arc;

use continuo_engine::model::Model;
use nice_plug::midi::{Channel, Key, VoiceID};
use nice_plug::prelude::*;

use crate::params::ContinuoParams;
use crate::player::{BlockTransport, OutputEvent, Player};

/// The default model, compiled in so the plugin plays with no file to find. Trained by
/// `continuo-train` on the Bach chorales; see models/MODEL_CARD.md.
pub const DEFAULT_MODEL: &[u8] = include_bytes!("../../models/bach-chorales.onnx");
/// How the embedded model is named in messages.
pub const DEFAULT_MODEL_NAME: &str = "embedded Bach chorales model";
/// Our own events in one block, at most: generation is capped far below this.
const MAX_EVENTS_PER_BLOCK: usize = 1024;

pub struct Continuo {
    params: Arc<ContinuoParams>,
    player: Option<Player>,
    /// The persisted model path the player was built from ("" for the embedded model).
    player_model_path: String,
    /// This block's events before they are merged with the input; allocated once.
    events: Vec<OutputEvent>,
    /// The channel notes sound on now, to end them there when it changes.
    channel: u8,
    restart_held: bool,
}

impl Default for Continuo {
    fn default() -> Self {
        Continuo {
            params: Arc::new(ContinuoParams::default()),
            player: None,
            player_model_path: String::new(),
            events: Vec::with_capacity(MAX_EVENTS_PER_BLOCK),
            channel: 0,
            restart_held: false,
        }
    }
}

/// Wraps the model step: allocation is allowed there (tract allocates) and nowhere else on the
/// audio thread, which `assert_process_allocs` enforces in debug builds.
fn permit_model_step(step: &mut dyn FnMut()) {
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

    type Editor = ();
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn activate(
        &mut self,
        _audio_io_layout: &AudioIOLayout,
        _buffer_config: &BufferConfig,
        _context: &mut impl ActivateContext<Self>,
    ) -> bool {
        let path = self.params.model_path.lock().map(|p| p.clone()).unwrap_or_default();
        // Activation repeats (sample rate or buffer changes); load again only when a restored
        // project names another model than the one playing.
        if self.player.is_some() && self.player_model_path == path {
            return true;
        }
        let (model, problem) = load_model(&path);
        if let Some(problem) = problem {
            nice_warn!("{problem}");
        }
        match Player::new(model, self.params.generator_settings(), self.params.output_settings()) {
            Ok(mut player) => {
                player.set_step_scope(permit_model_step);
                self.player = Some(player);
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
        let block = BlockTransport {
            // Bypassed counts as paused: notes end at once; as the host plays on meanwhile,
            // lifting the bypass is a resume elsewhere, so the music starts anew there.
            playing: transport.playing && !self.params.bypass.value(),
            tempo: transport.tempo,
            pos_beats: transport.pos_beats,
            sample_rate: transport.sample_rate,
            samples: buffer.samples(),
        };
        let events = &mut self.events;
        events.clear();
        let mut emit = |event: OutputEvent| {
            if events.len() < MAX_EVENTS_PER_BLOCK {
                events.push(event);
            }
        };

        // A new channel: the old one's notes end there, first.
        let channel = self.params.channel_index();
        let mut old_channel_events = 0;
        if channel != self.channel {
            // One note-off per sounding note, the first events of the block.
            old_channel_events = player.sounding_count();
            player.all_notes_off(0, &mut emit);
        }
        let restart = self.params.restart.value();
        if restart && !self.restart_held {
            player.restart(&mut emit);
        }
        self.restart_held = restart;
        player.set_output(self.params.output_settings());
        player.set_settings(self.params.generator_settings(), &mut emit);
        player.process(block, &mut emit);

        // Merge with the incoming MIDI (passed through), in time order.
        let meters = player.meters_ref();
        let mut ours = self.events.iter().enumerate().peekable();
        let old = self.channel;
        let send = |context: &mut _, (index, e): (usize, &OutputEvent)| {
            let ch = if index < old_channel_events { old } else { channel };
            if context_send(context, note_event::<Continuo>(e, ch)).is_err() {
                meters.dropped_events.fetch_add(1, Ordering::Relaxed);
            }
        };
        while let Some(incoming) = context.next_event() {
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
