//! The VST3 bundle, loaded through the `vst3` crate's COM bindings as a VST3 host does: module
//! entry, factory, component, buses, processing setup, and process calls with the transport
//! playing, collecting the note events it sends.

#![cfg(target_os = "linux")]

use std::cell::RefCell;
use std::ffi::{c_char, c_void, CStr};
use std::path::PathBuf;
use std::ptr;

use vst3::Steinberg::Vst::BusDirections_::{kInput, kOutput};
use vst3::Steinberg::Vst::Event_::EventTypes_::{kNoteOffEvent, kNoteOnEvent};
use vst3::Steinberg::Vst::MediaTypes_::{kAudio, kEvent};
use vst3::Steinberg::Vst::ProcessContext_::StatesAndFlags_::{kPlaying, kProjectTimeMusicValid, kTempoValid};
use vst3::Steinberg::Vst::ProcessModes_::kRealtime;
use vst3::Steinberg::Vst::SymbolicSampleSizes_::kSample32;
use vst3::Steinberg::Vst::*;
use vst3::Steinberg::*;
use vst3::{Class, ComPtr, ComWrapper, Interface};

/// Collects the events the plugin sends.
struct EventCollector {
    events: RefCell<Vec<Event>>,
}

impl Class for EventCollector {
    type Interfaces = (IEventList,);
}

impl IEventListTrait for EventCollector {
    unsafe fn getEventCount(&self) -> int32 {
        self.events.borrow().len() as int32
    }

    unsafe fn getEvent(&self, index: int32, event: *mut Event) -> tresult {
        match self.events.borrow().get(index as usize) {
            Some(e) => {
                unsafe { *event = *e };
                kResultOk
            }
            None => kInvalidArgument,
        }
    }

    unsafe fn addEvent(&self, event: *mut Event) -> tresult {
        self.events.borrow_mut().push(unsafe { *event });
        kResultOk
    }
}

fn library_path() -> PathBuf {
    let bundle = std::env::var_os("CONTINUO_VST3")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bundled/Continuo.vst3"));
    let path = bundle.join(format!("Contents/{}-linux/Continuo.so", std::env::consts::ARCH));
    assert!(path.exists(), "{} is missing: build it with `cargo xtask bundle continuo`", path.display());
    path
}

/// Played as Ardour plays a VST3: 48 kHz, 1024-sample blocks, 120 BPM, two pre-roll blocks at
/// negative positions before the transport reaches 0, and beat positions rounded to Ardour's
/// 1/1920 beat (its sample positions are exact). Every note must start on the host's grid.
#[test]
fn the_vst3_bundle_plays_on_the_hosts_grid_through_pre_roll_and_rounded_positions() {
    unsafe {
        let library = libloading::Library::new(library_path()).expect("the VST3 module loads");
        let module_entry: libloading::Symbol<unsafe extern "C" fn(*mut c_void) -> bool> =
            library.get(b"ModuleEntry").expect("ModuleEntry is exported");
        assert!(module_entry(ptr::null_mut()));
        let get_factory: libloading::Symbol<unsafe extern "system" fn() -> *mut c_void> =
            library.get(b"GetPluginFactory").expect("GetPluginFactory is exported");
        let factory =
            ComPtr::<IPluginFactory>::from_raw(get_factory() as *mut IPluginFactory).expect("a factory");

        // Find the audio processor class.
        let mut info: PClassInfo = std::mem::zeroed();
        let class = (0..factory.countClasses())
            .find(|&i| {
                factory.getClassInfo(i, &mut info) == kResultOk
                    && CStr::from_ptr(info.category.as_ptr()).to_bytes() == b"Audio Module Class"
            })
            .expect("an audio module class");
        assert_eq!(factory.getClassInfo(class, &mut info), kResultOk);
        assert_eq!(CStr::from_ptr(info.name.as_ptr()).to_str().unwrap(), "Continuo");

        let mut object: *mut c_void = ptr::null_mut();
        let result =
            factory.createInstance(info.cid.as_ptr(), IComponent::IID.as_ptr() as *const c_char, &mut object);
        assert_eq!(result, kResultOk, "createInstance failed");
        let component = ComPtr::<IComponent>::from_raw(object as *mut IComponent).expect("a component");
        assert_eq!(component.initialize(ptr::null_mut()), kResultOk);

        assert_eq!(component.getBusCount(kEvent as i32, kOutput as i32), 1, "one MIDI output bus");
        assert_eq!(component.getBusCount(kEvent as i32, kInput as i32), 1, "one MIDI input bus");
        assert_eq!(component.getBusCount(kAudio as i32, kOutput as i32), 1, "stereo out for Live");
        for (media, direction) in [(kAudio, kInput), (kAudio, kOutput), (kEvent, kInput), (kEvent, kOutput)] {
            component.activateBus(media as i32, direction as i32, 0, 1);
        }

        let processor = component.cast::<IAudioProcessor>().expect("an audio processor");
        let block = 1024;
        let mut setup = ProcessSetup {
            processMode: kRealtime as i32,
            symbolicSampleSize: kSample32 as i32,
            maxSamplesPerBlock: block,
            sampleRate: 48_000.0,
        };
        assert_eq!(processor.setupProcessing(&mut setup), kResultOk);
        assert_eq!(component.setActive(1), kResultOk);
        processor.setProcessing(1);

        let mut left = vec![0.0f32; block as usize];
        let mut right = vec![0.0f32; block as usize];
        let mut out_left = vec![0.0f32; block as usize];
        let mut out_right = vec![0.0f32; block as usize];
        let mut inputs_ptrs = [left.as_mut_ptr(), right.as_mut_ptr()];
        let mut output_ptrs = [out_left.as_mut_ptr(), out_right.as_mut_ptr()];
        let mut inputs = AudioBusBuffers {
            numChannels: 2,
            silenceFlags: 0,
            __field0: AudioBusBuffers__type0 { channelBuffers32: inputs_ptrs.as_mut_ptr() },
        };
        let mut outputs = AudioBusBuffers {
            numChannels: 2,
            silenceFlags: 0,
            __field0: AudioBusBuffers__type0 { channelBuffers32: output_ptrs.as_mut_ptr() },
        };
        let collector = ComWrapper::new(EventCollector { events: RefCell::new(Vec::new()) });
        let output_events = collector.to_com_ptr::<IEventList>().expect("an event list");

        // 16 beats at 120 BPM: 8 seconds, 375 blocks, after two of pre-roll.
        let (mut ons, mut offs, mut sounding) = (0, 0, [false; 128]);
        for i in -2..375i64 {
            let mut context: ProcessContext = std::mem::zeroed();
            context.state = kPlaying | kTempoValid | kProjectTimeMusicValid;
            context.sampleRate = 48_000.0;
            context.tempo = 120.0;
            context.projectTimeSamples = i * block as i64;
            let beats = (i * block as i64) as f64 / 24_000.0;
            context.projectTimeMusic = (beats * 1920.0).round() / 1920.0;
            let mut data = ProcessData {
                processMode: kRealtime as i32,
                symbolicSampleSize: kSample32 as i32,
                numSamples: block,
                numInputs: 1,
                numOutputs: 1,
                inputs: &mut inputs,
                outputs: &mut outputs,
                inputParameterChanges: ptr::null_mut(),
                outputParameterChanges: ptr::null_mut(),
                inputEvents: ptr::null_mut(),
                outputEvents: output_events.as_ptr(),
                processContext: &mut context,
            };
            collector.events.borrow_mut().clear();
            assert_eq!(processor.process(&mut data), kResultOk);
            for event in collector.events.borrow().iter() {
                assert!(
                    (0..block).contains(&event.sampleOffset),
                    "offset {} outside the block",
                    event.sampleOffset
                );
                match event.r#type as u32 {
                    t if t == kNoteOnEvent => {
                        let pitch = event.__field0.noteOn.pitch as usize;
                        // The grid: 1/24 beat is 1000 samples here; the music starts at beat 0.
                        let sample = i * block as i64 + event.sampleOffset as i64;
                        assert!(sample >= 0 && sample % 1000 == 0, "a note at sample {sample}, off the grid");
                        assert!(
                            !std::mem::replace(&mut sounding[pitch], true),
                            "key {pitch} struck while sounding"
                        );
                        ons += 1;
                    }
                    t if t == kNoteOffEvent => {
                        let pitch = event.__field0.noteOff.pitch as usize;
                        assert!(std::mem::take(&mut sounding[pitch]), "note-off for silent key {pitch}");
                        offs += 1;
                    }
                    _ => {}
                }
            }
        }
        assert!(ons >= 16, "only {ons} notes in 16 beats");
        assert!(offs > 0);

        processor.setProcessing(0);
        component.setActive(0);
        component.terminate();
        drop(processor);
        drop(component);
        drop(factory);
        if let Ok(module_exit) = library.get::<unsafe extern "C" fn() -> bool>(b"ModuleExit") {
            module_exit();
        }
    }
}
