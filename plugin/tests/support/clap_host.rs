//! The CLAP test host, written with clack-host: loads the bundled `Continuo.clap` exactly as a DAW
//! does, plays it block by block with a transport, sends it parameters and notes, records every
//! note it sends, saves and loads its state, and opens its window in an X11 window of its own.
//!
//! The bundle is built by `cargo xtask bundle continuo` (run by `cargo xtask test`, the README's
//! test command); set CONTINUO_CLAP to test another one. Shared by the test binaries
//! `clap_host` and `clap_editor`, each of which uses part of it.
#![allow(dead_code)]

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use clack_extensions::gui::{GuiApiType, GuiConfiguration, GuiSize, HostGui, HostGuiImpl, PluginGui, Window};
use clack_extensions::params::{ParamInfoBuffer, PluginParams};
use clack_extensions::state::PluginState;
use clack_host::events::event_types::*;
use clack_host::events::{EventFlags, Match};
use clack_host::prelude::*;
use clack_host::utils::{BeatTime, SecondsTime};

#[derive(Default)]
pub struct Shared {
    /// The plugin asked for `on_main_thread` (its window does, to run work on the GUI thread).
    callback_requested: AtomicBool,
}

impl SharedHandler<'_> for Shared {
    fn request_restart(&self) {}
    fn request_process(&self) {}
    fn request_callback(&self) {
        self.callback_requested.store(true, Ordering::Release);
    }
}

/// The host side of `clap.gui`: the window is ours and fixed in size.
impl HostGuiImpl for Shared {
    fn resize_hints_changed(&self) {}
    fn request_resize(&self, _new_size: GuiSize) -> Result<(), HostError> {
        Err(HostError::Message("the test host's window has a fixed size"))
    }
    fn request_show(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn request_hide(&self) -> Result<(), HostError> {
        Ok(())
    }
    fn closed(&self, _was_destroyed: bool) {}
}

pub struct TestHost;
impl HostHandlers for TestHost {
    type Shared<'a> = Shared;
    type MainThread<'a> = ();
    type AudioProcessor<'a> = ();

    fn declare_extensions(builder: &mut HostExtensions<Self>, _shared: &Self::Shared<'_>) {
        builder.register::<HostGui>();
    }
}

/// The X11 window the host gives the plugin's editor as its parent.
pub struct EditorWindow {
    connection: x11rb::xcb_ffi::XCBConnection,
    root: u32,
    pub width: u32,
    pub height: u32,
}

impl EditorWindow {
    /// Writes what the screen shows of the window to a PNG file. Taken from the root window,
    /// which includes the plugin's GL child window whatever its visual.
    pub fn screenshot(&self, path: &Path) -> Vec<[u8; 3]> {
        use x11rb::protocol::xproto::{ConnectionExt, ImageFormat};
        let image = self
            .connection
            .get_image(ImageFormat::Z_PIXMAP, self.root, 0, 0, self.width as u16, self.height as u16, !0)
            .expect("get_image request")
            .reply()
            .expect("the screen can be read");
        // 32 bits per pixel, blue first.
        let pixels: Vec<[u8; 3]> = image.data.chunks_exact(4).map(|p| [p[2], p[1], p[0]]).collect();
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
        let mut encoder = png::Encoder::new(file, self.width, self.height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&pixels.concat()).unwrap();
        pixels
    }
}

pub fn bundle_path() -> PathBuf {
    if let Some(path) = std::env::var_os("CONTINUO_CLAP") {
        return PathBuf::from(path);
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bundled/Continuo.clap");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo xtask bundle continuo` (or run `cargo xtask test`)",
        path.display()
    );
    path
}

/// A note event the plugin sent, with the block it came in.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Heard {
    pub block: usize,
    pub offset: u32,
    /// Absolute sample position.
    pub sample: u64,
    pub key: u8,
    pub channel: u8,
    pub velocity: f64,
    pub on: bool,
}

/// What the host tells the plugin about one block.
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    pub playing: bool,
    pub tempo: f64,
    pub beats: f64,
}

/// Everything a host may say about a block's time, as it says it: a position in beats, in
/// seconds, or both (a quirky host rounds them before they get here), the signature, the bar,
/// a loop, pre-roll.
#[derive(Debug, Clone, Copy)]
pub struct HostTime {
    pub playing: bool,
    pub tempo: f64,
    pub beats: Option<f64>,
    pub seconds: Option<f64>,
    pub time_signature: (u16, u16),
    pub bar_start: f64,
    pub bar_number: i32,
    pub loop_range: Option<(f64, f64)>,
    pub pre_roll: bool,
}

impl From<Transport> for HostTime {
    fn from(t: Transport) -> HostTime {
        HostTime {
            playing: t.playing,
            tempo: t.tempo,
            beats: Some(t.beats),
            seconds: Some(t.beats * 60.0 / t.tempo),
            time_signature: (4, 4),
            bar_start: (t.beats / 4.0).floor() * 4.0,
            bar_number: (t.beats / 4.0).floor() as i32,
            loop_range: None,
            pre_roll: false,
        }
    }
}

/// A parameter as the host lists it.
#[derive(Debug, Clone)]
pub struct ParamDescription {
    pub id: ClapId,
    pub name: String,
    pub min: f64,
    pub max: f64,
    pub stepped: bool,
}

pub struct Host {
    pub instance: PluginInstance<TestHost>,
    pub processor: Option<StartedPluginAudioProcessor<TestHost>>,
    pub sample_rate: f64,
    pub input: Vec<Vec<f32>>,
    pub output: Vec<Vec<f32>>,
    pub input_ports: AudioPorts,
    pub output_ports: AudioPorts,
    pub events_out: EventBuffer,
    /// Parameter changes and notes for the next block, in time order.
    pub events_in: EventBuffer,
    pub editor: Option<EditorWindow>,
    pub blocks: usize,
    pub samples: u64,
    pub heard: Vec<Heard>,
}

pub const MAX_BLOCK: usize = 8192;

impl Host {
    pub fn new(sample_rate: f64) -> Host {
        let entry = unsafe { PluginEntry::load(bundle_path()) }.expect("the bundle loads as a CLAP entry");
        let factory = entry.get_plugin_factory().expect("a plugin factory");
        let descriptor = factory.plugin_descriptors().next().expect("one plugin in the bundle");
        assert_eq!(descriptor.id().unwrap().to_bytes(), b"org.continuo.continuo");
        assert_eq!(descriptor.name().unwrap().to_bytes(), b"Continuo");
        let id = CString::from(descriptor.id().unwrap());
        let info = HostInfo::new("Continuo test host", "Continuo", "https://example.invalid", "1.0").unwrap();
        let instance = PluginInstance::<TestHost>::new(|_| Shared::default(), |_| (), &entry, &id, &info)
            .expect("instantiates");
        let mut host = Host {
            instance,
            processor: None,
            sample_rate,
            input: vec![vec![0.0; MAX_BLOCK]; 2],
            output: vec![vec![0.0; MAX_BLOCK]; 2],
            input_ports: AudioPorts::with_capacity(2, 1),
            output_ports: AudioPorts::with_capacity(2, 1),
            events_out: EventBuffer::with_capacity(4096),
            events_in: EventBuffer::with_capacity(256),
            editor: None,
            blocks: 0,
            samples: 0,
            heard: Vec::new(),
        };
        host.activate();
        host
    }

    pub fn activate(&mut self) {
        let config = PluginAudioConfiguration {
            sample_rate: self.sample_rate,
            min_frames_count: 1,
            max_frames_count: MAX_BLOCK as u32,
        };
        let stopped = self.instance.activate(|_, _| (), config).expect("activates");
        self.processor = Some(stopped.start_processing().expect("starts processing"));
    }

    pub fn deactivate(&mut self) {
        let processor = self.processor.take().expect("active").stop_processing();
        self.instance.deactivate(processor);
    }

    /// The CLAP id of the parameter with this name.
    pub fn param_id(&mut self, name: &str) -> ClapId {
        let handle = self.instance.plugin_handle();
        let params = handle.get_extension::<PluginParams>().expect("the params extension");
        let mut buffer = ParamInfoBuffer::new();
        (0..params.count(&handle))
            .filter_map(|i| {
                params
                    .get_info(&handle, i, &mut buffer)
                    .map(|p| (p.id, String::from_utf8_lossy(p.name).into_owned()))
            })
            .find(|(_, n)| n == name)
            .unwrap_or_else(|| panic!("no parameter named {name}"))
            .0
    }

    /// Every parameter, as the host lists them.
    pub fn params(&mut self) -> Vec<ParamDescription> {
        use clack_extensions::params::ParamInfoFlags;
        let handle = self.instance.plugin_handle();
        let params = handle.get_extension::<PluginParams>().expect("the params extension");
        let mut buffer = ParamInfoBuffer::new();
        (0..params.count(&handle))
            .filter_map(|i| {
                params.get_info(&handle, i, &mut buffer).map(|p| ParamDescription {
                    id: p.id,
                    name: String::from_utf8_lossy(p.name).into_owned(),
                    min: p.min_value,
                    max: p.max_value,
                    stepped: p.flags.contains(ParamInfoFlags::IS_STEPPED),
                })
            })
            .collect()
    }

    /// Sets a parameter to a plain value at `offset` in the next block, as automation does.
    pub fn set_value(&mut self, offset: u32, id: ClapId, value: f64) {
        self.events_in.push(&ParamValueEvent::new(offset, id, Pckn::match_all(), value));
    }

    /// Sets a parameter as a person types it ("D", "Mixolydian", "G3", "10") at the start of
    /// the next block, converted by the plugin's own text-to-value, as a DAW does.
    pub fn set(&mut self, name: &str, text: &str) {
        let id = self.param_id(name);
        let value = self.text_to_value(id, text).unwrap_or_else(|| panic!("{name} does not accept {text:?}"));
        self.events_in.push(&ParamValueEvent::new(0, id, Pckn::match_all(), value));
    }

    /// The value the plugin reads in a parameter's text, as a DAW asks when a person types one;
    /// `None` when it does not accept the text.
    pub fn text_to_value(&mut self, id: ClapId, text: &str) -> Option<f64> {
        let handle = self.instance.plugin_handle();
        let params = handle.get_extension::<PluginParams>().expect("the params extension");
        params.text_to_value(&handle, id, &CString::new(text).unwrap())
    }

    /// The text the plugin shows for a parameter's value, as a DAW shows it (unit included).
    pub fn value_to_text(&mut self, id: ClapId, value: f64) -> String {
        let handle = self.instance.plugin_handle();
        let params = handle.get_extension::<PluginParams>().expect("the params extension");
        let mut buffer = [0u8; 256];
        let text = params
            .value_to_text(&handle, id, value, &mut buffer)
            .unwrap_or_else(|_| panic!("parameter {} has no text for {value}", id.get()));
        String::from_utf8_lossy(text).into_owned()
    }

    /// A note for the plugin's MIDI input in the next block, `offset` samples in.
    pub fn note_in(&mut self, offset: u32, channel: u16, key: u16, on: bool) {
        let pckn = Pckn::new(0u16, channel, key, Match::All);
        if on {
            self.events_in.push(&NoteOnEvent::new(offset, pckn, 0.8));
        } else {
            self.events_in.push(&NoteOffEvent::new(offset, pckn, 0.0));
        }
    }

    /// A note for the plugin's MIDI input in the next block, `offset` samples in, at `velocity`
    /// (0 to 1; 0 ends the note).
    pub fn note_with_velocity(&mut self, offset: u32, channel: u16, key: u16, velocity: f64) {
        let pckn = Pckn::new(0u16, channel, key, Match::All);
        if velocity > 0.0 {
            self.events_in.push(&NoteOnEvent::new(offset, pckn, velocity));
        } else {
            self.events_in.push(&NoteOffEvent::new(offset, pckn, 0.0));
        }
    }

    /// A host whose project chose the built-in model `id` ("folk-melody"), as a saved project
    /// holds it: the model plays from the first block, with no switch to wait for.
    pub fn with_model(sample_rate: f64, id: &str) -> Host {
        let mut host = Host::new(sample_rate);
        let saved = host.save_state();
        let mut state: serde_json::Value = serde_json::from_slice(&saved[8..]).expect("the state is JSON");
        state["params"]["model"] = serde_json::json!({ "string": id });
        let json = serde_json::to_vec(&state).unwrap();
        host.deactivate();
        host.load_state(&[(json.len() as u64).to_le_bytes().as_slice(), &json].concat());
        host.activate();
        host
    }

    /// Runs `on_main_thread` when the plugin asked for it, as a host's main loop does.
    pub fn main_thread_tick(&mut self) {
        let requested =
            self.instance.access_shared_handler(|h| h.callback_requested.swap(false, Ordering::AcqRel));
        if requested {
            self.instance.call_on_main_thread_callback();
        }
    }

    /// Opens the plugin's editor embedded in a new top-level X11 window at the screen's top left
    /// corner, as a DAW embeds it in its own.
    pub fn open_editor(&mut self) -> &EditorWindow {
        use x11rb::connection::Connection;
        use x11rb::protocol::xproto::{ConnectionExt, CreateWindowAux, WindowClass};

        let handle = self.instance.plugin_handle();
        let gui = handle.get_extension::<PluginGui>().expect("the plugin has a GUI");
        assert!(
            gui.is_api_supported(&handle, GuiConfiguration { api_type: GuiApiType::X11, is_floating: false })
        );
        gui.create(&handle, GuiConfiguration { api_type: GuiApiType::X11, is_floating: false })
            .expect("the editor is created");
        let size = gui.get_size(&handle).expect("the editor has a size");

        let (connection, screen) =
            x11rb::xcb_ffi::XCBConnection::connect(None).expect("an X display (run under xvfb-run)");
        let root = connection.setup().roots[screen].root;
        let window = connection.generate_id().unwrap();
        connection
            .create_window(
                x11rb::COPY_DEPTH_FROM_PARENT,
                window,
                root,
                0,
                0,
                size.width as u16,
                size.height as u16,
                0,
                WindowClass::INPUT_OUTPUT,
                0,
                &CreateWindowAux::new().background_pixel(0),
            )
            .unwrap();
        connection.map_window(window).unwrap();
        // A round trip, so the server has made the window before the plugin's own connection
        // looks for it.
        x11rb::wrapper::ConnectionExt::sync(&connection).expect("the X server answers");
        unsafe { gui.set_parent(&handle, Window::from_x11_handle(window as _)) }
            .expect("the editor takes our window");
        gui.show(&handle).expect("the editor shows");
        self.editor = Some(EditorWindow { connection, root, width: size.width, height: size.height });
        self.editor.as_ref().unwrap()
    }

    pub fn block(&mut self, frames: usize, t: Transport) -> Vec<Heard> {
        self.process(frames, &t.into())
    }

    /// Processes one block of `frames` with the transport as `time` says it.
    pub fn process(&mut self, frames: usize, time: &HostTime) -> Vec<Heard> {
        let mut flags = TransportFlags::HAS_TEMPO | TransportFlags::HAS_TIME_SIGNATURE;
        for (on, flag) in [
            (time.playing, TransportFlags::IS_PLAYING),
            (time.beats.is_some(), TransportFlags::HAS_BEATS_TIMELINE),
            (time.seconds.is_some(), TransportFlags::HAS_SECONDS_TIMELINE),
            (time.loop_range.is_some(), TransportFlags::IS_LOOP_ACTIVE),
            (time.pre_roll, TransportFlags::IS_WITHIN_PRE_ROLL),
        ] {
            if on {
                flags |= flag;
            }
        }
        let (loop_start, loop_end) = time.loop_range.unwrap_or((0.0, 0.0));
        let transport = TransportEvent {
            header: EventHeader::new_core(0, EventFlags::empty()),
            flags,
            song_pos_beats: BeatTime::from_float(time.beats.unwrap_or(0.0)),
            song_pos_seconds: SecondsTime::from_float(time.seconds.unwrap_or(0.0)),
            tempo: time.tempo,
            tempo_inc: 0.0,
            loop_start_beats: BeatTime::from_float(loop_start),
            loop_end_beats: BeatTime::from_float(loop_end),
            loop_start_seconds: SecondsTime::from_float(loop_start * 60.0 / time.tempo),
            loop_end_seconds: SecondsTime::from_float(loop_end * 60.0 / time.tempo),
            bar_start: BeatTime::from_float(time.bar_start),
            bar_number: time.bar_number,
            time_signature_numerator: time.time_signature.0,
            time_signature_denominator: time.time_signature.1,
        };
        self.events_out.clear();
        let input_events = InputEvents::from_buffer(&self.events_in);
        let mut output_events = OutputEvents::from_buffer(&mut self.events_out);
        let mut input_audio = self.input_ports.with_input_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_input_only(
                self.input.iter_mut().map(|b| InputChannel::constant(&mut b[..frames])),
            ),
        }]);
        let mut output_audio = self.output_ports.with_output_buffers([AudioPortBuffer {
            latency: 0,
            channels: AudioPortBufferType::f32_output_only(self.output.iter_mut().map(|b| &mut b[..frames])),
        }]);
        let processor = self.processor.as_mut().expect("active");
        processor
            .process(
                &input_audio,
                &mut output_audio,
                &input_events,
                &mut output_events,
                Some(self.samples),
                Some(&transport),
            )
            .expect("process succeeds");
        let _ = &mut input_audio;
        self.events_in.clear();

        let mut heard = Vec::new();
        for event in self.events_out.iter() {
            let note = if let Some(on) = event.as_event::<NoteOnEvent>() {
                Some((on.header().time(), on.pckn().key, on.pckn().channel, on.velocity(), true))
            } else {
                event
                    .as_event::<NoteOffEvent>()
                    .map(|off| (off.header().time(), off.pckn().key, off.pckn().channel, 0.0, false))
            };
            if let Some((offset, key, channel, velocity, on)) = note {
                let (Match::Specific(key), Match::Specific(channel)) = (key, channel) else {
                    panic!("note events must name their key and channel")
                };
                heard.push(Heard {
                    block: self.blocks,
                    offset,
                    sample: self.samples + offset as u64,
                    key: key as u8,
                    channel: channel as u8,
                    velocity,
                    on,
                });
            }
        }
        for h in &heard {
            assert!((h.offset as usize) < frames.max(1), "event at {} outside a block of {frames}", h.offset);
        }
        assert!(heard.windows(2).all(|w| w[0].offset <= w[1].offset), "events out of order: {heard:?}");
        self.blocks += 1;
        self.samples += frames as u64;
        self.heard.extend(&heard);
        heard
    }

    /// Plays `beats` beats from `start` at `tempo` in blocks whose sizes come from `sizes`.
    pub fn play(&mut self, start: f64, beats: f64, tempo: f64, sizes: &mut impl FnMut() -> usize) -> f64 {
        let samples_per_beat = self.sample_rate * 60.0 / tempo;
        let mut pos = start;
        while pos < start + beats {
            let frames = sizes();
            self.block(frames, Transport { playing: true, tempo, beats: pos });
            pos += frames as f64 / samples_per_beat;
        }
        pos
    }

    pub fn stopped(&mut self, frames: usize, beats: f64) -> Vec<Heard> {
        self.block(frames, Transport { playing: false, tempo: 120.0, beats })
    }

    pub fn save_state(&mut self) -> Vec<u8> {
        let handle = self.instance.plugin_handle();
        let state = handle.get_extension::<PluginState>().expect("the state extension");
        let mut bytes = Vec::new();
        state.save(&handle, &mut bytes).expect("state saves");
        bytes
    }

    pub fn load_state(&mut self, bytes: &[u8]) {
        let handle = self.instance.plugin_handle();
        let state = handle.get_extension::<PluginState>().expect("the state extension");
        state.load(&handle, &mut &bytes[..]).expect("state loads");
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if let Some(window) = self.editor.take() {
            let handle = self.instance.plugin_handle();
            if let Some(gui) = handle.get_extension::<PluginGui>() {
                gui.destroy(&handle);
            }
            // Only now close our connection, which makes the X server destroy our window and
            // the plugin's window inside it: before, the plugin's GL thread would be drawing
            // into a window that is gone.
            drop(window);
            // The plugin's window thread still tears down its EGL display after `destroy`
            // returns; a process that exits meanwhile crashed in that teardown (a core dump
            // showed `EglDisplayInner::drop` running during `exit`, about one run in twelve).
            // A DAW does not exit the instant a window closes; the test waits as long.
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        if self.processor.is_some() {
            self.deactivate();
        }
    }
}

/// Notes sounding after these events, checking that every off ends a sounding note.
pub fn sounding_after(events: &[Heard]) -> Vec<u8> {
    let mut sounding = [false; 128];
    for e in events {
        if e.on {
            sounding[e.key as usize] = true;
        } else {
            assert!(
                std::mem::take(&mut sounding[e.key as usize]),
                "note-off for silent key {}: {e:?}",
                e.key
            );
        }
    }
    (0..128u8).filter(|k| sounding[*k as usize]).collect()
}

/// Where block sizes come from: a fixed size, or a random sequence.
pub type BlockSizes<'a> = Box<dyn FnMut() -> usize + 'a>;

pub fn fixed(n: usize) -> impl FnMut() -> usize {
    move || n
}
