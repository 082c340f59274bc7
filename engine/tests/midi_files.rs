//! Reading and writing MIDI files: real files from the training collections, hand-built files
//! for each corner of the standard, and broken files of every kind a collection holds.

use std::path::{Path, PathBuf};

use continuo_engine::midi::{self, MidiProblem, Note, Role, Timing};
use continuo_engine::vocab::{self, decode, encode_grid, quantise};

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/midi");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5, "fixtures missing from {}", dir.display());
    files
}

fn tuples<'a>(notes: impl IntoIterator<Item = &'a Note>) -> Vec<(u8, u8, f64, f64)> {
    notes.into_iter().map(Note::as_tuple).collect()
}

#[test]
fn real_files_round_trip_through_tokens_exactly() {
    for path in fixtures() {
        let song = midi::read_file(&path).unwrap_or_else(|e| panic!("{e}"));
        let grid = quantise(tuples(song.notes_for(Role::Melodic)));
        assert!(grid.len() > 20, "{}: only {} notes", path.display(), grid.len());
        let tokens = encode_grid(&grid);
        assert_eq!(decode(&tokens), grid, "{}", path.display());
        // Encoding the raw notes gives the same tokens as encoding the quantised ones.
        assert_eq!(vocab::encode(tuples(song.notes_for(Role::Melodic))), tokens);
    }
}

#[test]
fn bach_chorale_has_four_voices_and_its_tempo() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/midi/bwv323.mid");
    let song = midi::read_file(&path).unwrap();
    let voices: std::collections::BTreeSet<usize> = song.notes.iter().map(|n| n.track).collect();
    assert_eq!(voices.len(), 4, "tracks with notes: {voices:?}");
    assert_eq!(song.format, 1);
    assert!(matches!(song.timing, Timing::Metrical { .. }));
    assert!(!song.time_signatures.is_empty());
    assert!(song.duration_seconds() > 20.0);
    assert!(song.notes.iter().all(|n| n.end > n.start && !n.is_drum));
}

#[test]
fn written_files_read_back_with_the_same_notes() {
    let dir = tempfile::tempdir().unwrap();
    for path in fixtures() {
        let song = midi::read_file(&path).unwrap();
        let grid = quantise(tuples(&song.notes));
        let notes: Vec<Note> = grid.iter().map(|g| Note::from_grid(g, 0, 19)).collect();
        let out = dir.path().join(path.file_name().unwrap());
        midi::write_file(&out, &notes, 96.0, None).unwrap();
        let back = midi::read_file(&out).unwrap();
        assert_eq!(quantise(tuples(&back.notes)), grid, "{}", path.display());
        assert!(back.notes.iter().all(|n| n.program == 19 && n.channel == 0));
        assert!((back.initial_bpm() - 96.0).abs() < 1e-3);
    }
}

#[test]
fn drums_keep_their_own_channel_when_written() {
    let drum = Note {
        pitch: 36,
        velocity: 100,
        start: 0.0,
        end: 0.25,
        channel: 9,
        program: 0,
        is_drum: true,
        track: 0,
    };
    let keys = Note {
        pitch: 60,
        velocity: 70,
        start: 0.5,
        end: 1.0,
        channel: 0,
        program: 0,
        is_drum: false,
        track: 0,
    };
    let song =
        midi::read_bytes(&midi::write_bytes(&[drum, keys], 120.0, None), Path::new("mem.mid")).unwrap();
    assert_eq!(song.notes_for(Role::Drums).count(), 1);
    assert_eq!(song.notes_for(Role::Melodic).count(), 1);
}

// --- Hand-built files -------------------------------------------------------------------

/// A Standard MIDI File from raw track bodies.
fn smf(format: u16, division: u16, tracks: &[&[u8]]) -> Vec<u8> {
    let mut bytes = b"MThd\0\0\0\x06".to_vec();
    bytes.extend(format.to_be_bytes());
    bytes.extend((tracks.len() as u16).to_be_bytes());
    bytes.extend(division.to_be_bytes());
    for body in tracks {
        bytes.extend(b"MTrk");
        bytes.extend((body.len() as u32).to_be_bytes());
        bytes.extend(*body);
    }
    bytes
}

const EOT: [u8; 4] = [0x00, 0xFF, 0x2F, 0x00];

fn track(events: &[u8]) -> Vec<u8> {
    let mut body = events.to_vec();
    body.extend(EOT);
    body
}

fn read(bytes: &[u8]) -> Result<midi::Song, midi::MidiError> {
    midi::read_bytes(bytes, Path::new("collection/song.mid"))
}

#[test]
fn format_0_with_running_status_and_velocity_zero_offs() {
    // Note on C4, then (running status) E4, then both "off" as note-on velocity 0.
    let body = track(&[0x00, 0x90, 60, 100, 0x00, 64, 90, 0x60, 60, 0, 0x00, 64, 0]);
    let song = read(&smf(0, 96, &[&body])).unwrap();
    assert_eq!(song.format, 0);
    let got: Vec<(u8, u8, f64, f64)> = tuples(&song.notes);
    assert_eq!(got, vec![(60, 100, 0.0, 1.0), (64, 90, 0.0, 1.0)]);
}

#[test]
fn overlapping_notes_of_one_pitch_pair_first_on_with_first_off() {
    let body = track(&[0x00, 0x90, 60, 100, 0x30, 0x90, 60, 50, 0x30, 0x80, 60, 0, 0x30, 0x80, 60, 0]);
    let song = read(&smf(0, 96, &[&body])).unwrap();
    assert_eq!(tuples(&song.notes), vec![(60, 100, 0.0, 1.0), (60, 50, 0.5, 1.5)]);
}

#[test]
fn notes_never_switched_off_end_with_their_track() {
    // The note never ends; the track's end-of-track comes 4 beats later.
    let body = [0x00, 0x90, 62, 80, 0x83, 0x00, 0xFF, 0x2F, 0x00];
    let song = read(&smf(0, 96, &[&body])).unwrap();
    assert_eq!(tuples(&song.notes), vec![(62, 80, 0.0, 4.0)]);
}

#[test]
fn tempo_and_time_signature_maps_are_read_on_the_beat_axis() {
    let conductor = track(&[
        0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20, // 120 BPM
        0x00, 0xFF, 0x58, 0x04, 3, 2, 24, 8, // 3/4
        0x83, 0x00, 0xFF, 0x51, 0x03, 0x0F, 0x42, 0x40, // beat 4: 60 BPM
    ]);
    let notes = track(&[0x00, 0x90, 60, 100, 0x86, 0x00, 0x80, 60, 0]); // 8 beats
    let song = read(&smf(1, 96, &[&conductor, &notes])).unwrap();
    assert_eq!(song.tempo_map.len(), 2);
    assert_eq!(song.tempo_map[1].beat, 4.0);
    assert!((song.tempo_map[1].bpm() - 60.0).abs() < 1e-9);
    assert_eq!((song.time_signatures[0].numerator, song.time_signatures[0].denominator), (3, 4));
    // 4 beats at 120 BPM + 4 beats at 60 BPM.
    assert!((song.duration_seconds() - 6.0).abs() < 1e-9);
}

#[test]
fn smpte_time_is_converted_at_120_bpm() {
    // 25 fps x 40 ticks per frame = 1000 ticks per second; 500 ticks = 1 beat at 120 BPM.
    let division = u16::from_be_bytes([(-25i8) as u8, 40]);
    let body = track(&[0x00, 0x90, 60, 100, 0x83, 0x74, 0x80, 60, 0]); // 500 ticks
    let song = read(&smf(0, division, &[&body])).unwrap();
    assert_eq!(song.timing, Timing::Smpte { fps: 25, ticks_per_frame: 40 });
    assert_eq!(tuples(&song.notes), vec![(60, 100, 0.0, 1.0)]);
}

#[test]
fn smpte_at_an_odd_frame_rate_is_read_not_panicked_on() {
    // A division byte of -128 means 128 fps, more than an i8 holds: read without overflow.
    let division = u16::from_be_bytes([0x80, 0x77]);
    let song = read(&smf(0, division, &[&track(&[0x00, 0x90, 60, 100, 0x10, 0x80, 60, 0])])).unwrap();
    assert_eq!(song.timing, Timing::Smpte { fps: 128, ticks_per_frame: 0x77 });
}

#[test]
fn empty_tracks_drums_and_programs() {
    let empty = track(&[]);
    let piano = track(&[0x00, 0xC0, 5, 0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0]);
    let drums = track(&[0x00, 0x99, 36, 110, 0x18, 0x89, 36, 0]);
    let song = read(&smf(1, 96, &[&empty, &piano, &drums])).unwrap();
    assert_eq!(song.track_count, 3);
    let kick = song.notes_for(Role::Drums).next().unwrap();
    assert_eq!((kick.pitch, kick.channel, kick.is_drum), (36, 9, true));
    let key = song.notes_for(Role::Melodic).next().unwrap();
    assert_eq!((key.pitch, key.program, key.track), (60, 5, 1));
}

#[test]
fn format_2_sequences_each_start_at_zero() {
    let a = track(&[0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0]);
    let b = track(&[0x00, 0x90, 67, 100, 0x60, 0x80, 67, 0]);
    let song = read(&smf(2, 96, &[&a, &b])).unwrap();
    assert_eq!(song.notes.len(), 2);
    assert!(song.notes.iter().all(|n| n.start == 0.0));
}

#[test]
fn riff_wrapped_midi_is_read() {
    let inner = smf(0, 96, &[&track(&[0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0])]);
    let mut riff = b"RIFF".to_vec();
    riff.extend(((inner.len() + 12) as u32).to_le_bytes());
    riff.extend(b"RMIDdata");
    riff.extend((inner.len() as u32).to_le_bytes());
    riff.extend(&inner);
    assert_eq!(read(&riff).unwrap().notes.len(), 1);
}

// --- Broken files -----------------------------------------------------------------------

/// Reads broken bytes, expects an error naming the file, and returns its problem.
fn problem(bytes: &[u8]) -> MidiProblem {
    let err = read(bytes).expect_err("a broken file must be refused");
    let text = err.to_string();
    assert!(text.starts_with("collection/song.mid: "), "error does not name the file: {text}");
    err.problem
}

#[test]
fn truncated_header_is_refused() {
    let whole = smf(0, 96, &[&track(&[])]);
    assert_eq!(problem(&whole[..10]), MidiProblem::TruncatedHeader(10));
    assert_eq!(problem(b"MThd"), MidiProblem::TruncatedHeader(4));
}

#[test]
fn chunk_length_past_the_end_is_refused() {
    let mut bytes = smf(0, 96, &[&track(&[0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0])]);
    bytes.truncate(bytes.len() - 3);
    let p = problem(&bytes);
    assert!(matches!(p, MidiProblem::ChunkPastEnd { chunk: 1, declared: 12, available: 9, .. }), "{p:?}");
    assert!(p.to_string().contains("cut short"));
}

#[test]
fn data_bytes_over_127_are_refused() {
    let body = track(&[0x00, 0x90, 60, 0xC8, 0x60, 0x80, 60, 0]);
    let p = problem(&smf(0, 96, &[&body]));
    assert!(matches!(p, MidiProblem::BadEvent { track: 0, event: 0, .. }), "{p:?}");
    assert_eq!(p.reason(), "malformed event");
}

#[test]
fn missing_end_of_track_is_refused() {
    let body = [0x00, 0x90, 60, 100, 0x60, 0x80, 60, 0];
    assert_eq!(problem(&smf(0, 96, &[&body])), MidiProblem::NoEndOfTrack { track: 0 });
}

#[test]
fn absurd_delta_times_are_refused() {
    // Delta 0x0FFFFFFF ticks at 1 tick per beat: 268 million beats.
    let body = track(&[0xFF, 0xFF, 0xFF, 0x7F, 0x90, 60, 100]);
    let p = problem(&smf(0, 1, &[&body]));
    assert!(matches!(p, MidiProblem::AbsurdLength { track: 0, .. }), "{p:?}");
}

#[test]
fn zero_ppq_is_refused() {
    assert_eq!(problem(&smf(0, 0, &[&track(&[])])), MidiProblem::ZeroPpq);
}

#[test]
fn things_that_are_not_midi_are_refused() {
    assert_eq!(problem(b"RIFF....WAVEfmt "), MidiProblem::NotMidi);
    assert_eq!(problem(b""), MidiProblem::NotMidi);
    assert_eq!(problem(&smf(0, 96, &[])), MidiProblem::NoTracks);
    let mut bad_format = smf(0, 96, &[&track(&[])]);
    bad_format[9] = 7;
    assert_eq!(problem(&bad_format), MidiProblem::UnknownFormat(7));
}

#[test]
fn a_100_mb_file_is_refused_before_it_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("huge.mid");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(100 * 1024 * 1024).unwrap(); // sparse: costs no disk
    let err = midi::read_file(&path).unwrap_err();
    assert_eq!(err.problem, MidiProblem::TooLarge(100 * 1024 * 1024));
    assert!(err.to_string().contains("huge.mid"));
}

#[test]
fn a_missing_file_names_itself() {
    let err = midi::read_file(Path::new("/no/such/dir/tune.mid")).unwrap_err();
    assert!(err.to_string().starts_with("/no/such/dir/tune.mid: cannot read the file"), "{err}");
}

#[test]
fn the_crash_corpus_never_panics() {
    // Inputs the fuzzer found interesting, committed so that every test run replays them.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/read_midi");
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let bytes = std::fs::read(entry.unwrap().path()).unwrap();
        if let Ok(song) = read(&bytes) {
            let grid = quantise(tuples(&song.notes));
            assert_eq!(decode(&encode_grid(&grid)), grid);
        }
        replayed += 1;
    }
    assert!(replayed > 0, "empty corpus in {}", dir.display());
}

#[test]
fn a_clip_lasts_exactly_its_length() {
    let note = |start: f64, end: f64| Note {
        pitch: 60,
        velocity: 90,
        start,
        end,
        channel: 0,
        program: 0,
        is_drum: false,
        track: 0,
    };
    let bytes = midi::write_bytes(&[note(0.0, 1.0), note(6.0, 7.5)], 120.0, Some(8.0));
    let smf = midly::Smf::parse(&bytes).unwrap();
    let ticks = |track: &[midly::TrackEvent]| track.iter().map(|e| e.delta.as_int() as u64).sum::<u64>();
    let longest = smf.tracks.iter().map(|t| ticks(t)).max().unwrap();
    assert_eq!(longest, 8 * midi::WRITE_PPQ as u64, "an 8-beat clip");
    // Without a length, the file ends with its last note.
    let bytes = midi::write_bytes(&[note(6.0, 7.5)], 120.0, None);
    let smf = midly::Smf::parse(&bytes).unwrap();
    assert_eq!(smf.tracks.iter().map(|t| ticks(t)).max().unwrap(), (7.5 * midi::WRITE_PPQ as f64) as u64);
}
