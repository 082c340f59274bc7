//! The generator as the plugin and the CLI drive it: a real ONNX model written by the engine,
//! loaded by tract, sampled under the musician's settings.

use continuo_engine::generator::{Generator, GeneratorSettings};
use continuo_engine::model::{self, Model, ModelInfo, ModelShape, ModelWeights};
use continuo_engine::music::{Scale, ScaleLock};
use continuo_engine::realtime_memory::{self, RealtimeAllocator, Violation};
use continuo_engine::sampler::SamplerSettings;
use continuo_engine::vocab::{NoteEvent, NoteEventKind, Token, STEPS_PER_BEAT};

/// As in the plugin: model steps allocate from their pool, and the audio thread is checked.
#[global_allocator]
static ALLOCATOR: RealtimeAllocator = RealtimeAllocator;

const SHAPE: ModelShape =
    ModelShape { layers: 2, hidden: 48, embed: 16, dense: 32, vocab: 384, harmony: None };

fn model(seed: u64) -> Model {
    let weights = ModelWeights::random(&SHAPE, seed, 0.5);
    Model::load(&model::write(&weights, &ModelInfo::new("test", SHAPE)).unwrap(), "test.onnx").unwrap()
}

fn settings(seed: u64) -> GeneratorSettings {
    GeneratorSettings {
        sampler: SamplerSettings {
            seed,
            lowest: 50,
            highest: 80,
            scale_lock: ScaleLock { key: 7, scale: Scale::Mixolydian },
            max_polyphony: 3,
            ..Default::default()
        },
        max_note_beats: 2.0,
    }
}

fn play(generator: &mut Generator, beats: u64) -> Vec<NoteEvent> {
    let mut events = Vec::new();
    generator.generate_until(beats * STEPS_PER_BEAT as u64, 100_000, |e| events.push(e)).unwrap();
    events
}

#[test]
fn the_same_seed_plays_the_same_notes() {
    let mut a = Generator::new(model(1), settings(7)).unwrap();
    let mut b = Generator::new(model(1), settings(7)).unwrap();
    let mut c = Generator::new(model(1), settings(8)).unwrap();
    let (ea, eb, ec) = (play(&mut a, 32), play(&mut b, 32), play(&mut c, 32));
    // Random weights spread probability over 96 shifts (2 beats on average): few notes, but some.
    assert!(ea.len() >= 8, "only {} events in 32 beats", ea.len());
    assert_eq!(ea, eb);
    assert_ne!(ea, ec);

    // Reset replays the same music from the start.
    a.reset().unwrap();
    assert_eq!(play(&mut a, 32), ea);
}

#[test]
fn every_note_obeys_the_settings_and_ends() {
    let s = settings(3);
    let mut generator = Generator::new(model(2), s).unwrap();
    let mut events = play(&mut generator, 64);
    generator.release_all(|e| events.push(e));

    let mut sounding: [Option<u64>; 128] = [None; 128];
    let mut last_step = 0;
    for e in &events {
        assert!(e.step >= last_step, "events out of order");
        last_step = e.step;
        match e.kind {
            NoteEventKind::On { pitch, velocity } => {
                assert!(s.sampler.allows_pitch(pitch), "pitch {pitch} outside range or scale");
                assert!(velocity > 0);
                assert!(sounding[pitch as usize].is_none(), "pitch {pitch} struck while sounding");
                sounding[pitch as usize] = Some(e.step);
                assert!(sounding.iter().flatten().count() <= 3, "polyphony above 3");
            }
            NoteEventKind::Off { pitch } => {
                let onset = sounding[pitch as usize].take().expect("NOTE_OFF for a silent pitch");
                assert!(e.step - onset <= 2 * STEPS_PER_BEAT as u64, "note held past the 2-beat limit");
            }
        }
    }
    assert!(sounding.iter().all(Option::is_none), "notes left hanging after release_all");
    assert_eq!(generator.voices().sounding_count(), 0);
}

#[test]
fn feeding_a_primer_moves_the_clock_and_changes_what_follows() {
    let mut plain = Generator::new(model(4), settings(1)).unwrap();
    let mut primed = Generator::new(model(4), settings(1)).unwrap();
    for token in [Token::NoteOn(67), Token::TimeShift(24), Token::NoteOff(67), Token::TimeShift(24)] {
        primed.feed(token).unwrap();
    }
    assert_eq!(primed.now(), 48);
    assert_eq!(primed.voices().sounding_count(), 0, "primer notes are not ours to sound");
    let after_primer: Vec<NoteEvent> = play(&mut primed, 34);
    assert!(after_primer.iter().all(|e| e.step >= 48));
    let shifted: Vec<(u64, NoteEventKind)> =
        play(&mut plain, 32).iter().map(|e| (e.step + 48, e.kind)).collect();
    let primed_events: Vec<(u64, NoteEventKind)> = after_primer.iter().map(|e| (e.step, e.kind)).collect();
    assert_ne!(primed_events, shifted, "the primer had no effect on the model");
}

#[test]
fn generating_never_calls_the_system_allocator_the_model_step_included() {
    // Counted rather than aborted, to fail with a message (no other test here runs as the audio
    // thread, so the count is this test's).
    realtime_memory::set_violation(Violation::Count);
    let mut generator = Generator::new(model(5), settings(11)).unwrap();
    let mut events = [None; 64];
    let mut count = 0usize;
    let before = realtime_memory::system_calls_on_audio_thread();
    realtime_memory::audio_thread(|| {
        for _ in 0..2000 {
            assert!(generator.can_step());
            generator
                .next(|e| {
                    events[count % 64] = Some(e);
                    count += 1;
                })
                .unwrap();
        }
        generator.release_all(|_| count += 1);
        generator.reset().unwrap();
        generator.generate_until(8 * STEPS_PER_BEAT as u64, 10_000, |_| count += 1).unwrap();
    });
    let calls = realtime_memory::system_calls_on_audio_thread() - before;
    assert_eq!(calls, 0, "{calls} calls to the system allocator while generating on the audio thread");
    assert!(count > 50, "only {count} events in 2000 tokens");
}

#[test]
fn a_restored_snapshot_plays_on_as_the_generator_did() {
    let mut generator = Generator::new(model(1), settings(7)).unwrap();
    play(&mut generator, 4);
    let snapshot = generator.snapshot();
    // `play` runs to an absolute beat: beats 4 to 40.
    let first = play(&mut generator, 40);
    assert!(first.len() >= 8, "{} events", first.len());
    generator.reset().unwrap();
    play(&mut generator, 2);
    generator.restore(&snapshot);
    assert_eq!(play(&mut generator, 40), first);
}

fn onsets(events: &[NoteEvent]) -> Vec<u64> {
    events.iter().filter(|e| matches!(e.kind, NoteEventKind::On { .. })).map(|e| e.step).collect()
}

#[test]
fn a_rest_holds_back_only_what_the_model_would_play_sooner() {
    let mut generator = Generator::new(model(1), settings(7)).unwrap();
    play(&mut generator, 4);
    // A moment where the model's next token is its own TIME_SHIFT, of k steps.
    let (snapshot, from, k) = loop {
        let snapshot = generator.snapshot();
        let from = generator.now();
        if let Token::TimeShift(k) = generator.next(|_| {}).unwrap() {
            break (snapshot, from, k as u64);
        }
    };
    generator.restore(&snapshot);
    let free = play(&mut generator, 40);
    let first = onsets(&free)[0];
    // A rest that ends where the model meant to go on anyway changes nothing: the notes come
    // where it meant them, not a rest later.
    generator.restore(&snapshot);
    generator.rest_until(from + k);
    assert_eq!(play(&mut generator, 40), free);
    // A rest past its first note holds that note back, and the music goes on after it.
    generator.restore(&snapshot);
    generator.rest_until(first + 5);
    let rested = onsets(&play(&mut generator, 40));
    assert!(rested[0] >= first + 5, "a note at {} before the rest ended at {}", rested[0], first + 5);
    assert!(rested.len() >= 4, "{rested:?}");
}

/// Most notes sounding at once over some music.
fn most_sounding(events: &[NoteEvent]) -> usize {
    let (mut sounding, mut most) = (0usize, 0usize);
    for e in events {
        match e.kind {
            NoteEventKind::On { .. } => sounding += 1,
            NoteEventKind::Off { .. } => sounding -= 1,
        }
        most = most.max(sounding);
    }
    most
}

#[test]
fn polyphony_as_trained_plays_the_voices_the_model_learned() {
    let weights = ModelWeights::random(&SHAPE, 4, 0.5);
    let with_voices = |voices: Option<u8>| {
        let mut info = ModelInfo::new("voices", SHAPE);
        info.training.voices = voices;
        Model::load(&model::write(&weights, &info).unwrap(), "voices.onnx").unwrap()
    };
    let mut as_trained = settings(5);
    as_trained.sampler.max_polyphony = continuo_engine::sampler::AS_TRAINED;
    let most = |model: Model, settings: GeneratorSettings| {
        let mut generator = Generator::new(model, settings).unwrap();
        let voices = generator.sampler_settings().max_polyphony;
        (voices, most_sounding(&play(&mut generator, 256)))
    };
    let (voices, played) = most(with_voices(Some(2)), as_trained);
    assert_eq!(voices, 2);
    assert!(played == 2, "a two-voice model played {played} at once");
    assert_eq!(most(with_voices(None), as_trained).0, continuo_engine::sampler::VOICES_UNKNOWN);
    // A number the musician sets is the number.
    assert_eq!(most(with_voices(Some(2)), settings(5)).0, 3);
}
