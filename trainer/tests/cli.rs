//! `continuo-train` as a person runs it: the real binary on real MIDI files and broken ones,
//! a few training steps, a real ONNX export read back by the engine.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use continuo_engine::midi::{self, Note};
use continuo_engine::model::Model;
use continuo_engine::music::{Scale, ScaleLock};

fn continuo_train(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_continuo-train")).args(args).output().expect("the binary runs")
}

/// Runs and expects success; returns stdout.
fn ok(args: &[&str]) -> String {
    let out = continuo_train(args);
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "continuo-train {args:?} failed:\n{stdout}\n{stderr}");
    stdout.into_owned()
}

/// Runs and expects failure; returns stderr.
fn fails(args: &[&str]) -> String {
    let out = continuo_train(args);
    assert!(!out.status.success(), "continuo-train {args:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn real_midi() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/midi");
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

/// A collection as users have them: nested folders, odd extensions, and three broken files.
fn collection(root: &Path) {
    let nested = root.join("A/B");
    std::fs::create_dir_all(&nested).unwrap();
    for (i, file) in real_midi().iter().enumerate() {
        let name = match i {
            0 => "first.MID".to_string(),
            1 => "karaoke.kar".to_string(),
            _ => file.file_name().unwrap().to_string_lossy().into_owned(),
        };
        let dir = if i % 2 == 0 { root } else { &nested };
        std::fs::copy(file, dir.join(name)).unwrap();
    }
    let whole = std::fs::read(&real_midi()[2]).unwrap();
    std::fs::write(nested.join("cut-short.mid"), &whole[..whole.len() / 2]).unwrap();
    std::fs::write(root.join("notes.mid"), b"these are my notes, not MIDI").unwrap();
    std::fs::write(root.join("header.midi"), b"MThd\0\0\0\x06\0\x01").unwrap();
    std::fs::write(root.join("readme.txt"), b"not looked at").unwrap();
}

#[test]
fn prepare_reads_the_collection_and_reports_every_reject() {
    let dir = tempfile::tempdir().unwrap();
    let (songs, data) = (dir.path().join("songs"), dir.path().join("data"));
    collection(&songs);
    let out = ok(&["prepare", s(&songs), "--out", s(&data), "--val-fraction", "0.3"]);
    assert!(out.contains("8 found, 5 read, 3 rejected"), "{out}");

    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("stats.json")).unwrap()).unwrap();
    let rejected = &stats["rejected"];
    assert_eq!(rejected["not a MIDI file"][0]["path"], s(&songs.join("notes.mid")));
    assert_eq!(rejected["truncated header"][0]["path"], s(&songs.join("header.midi")));
    let cut = rejected["chunk past the end"][0]["message"].as_str().unwrap();
    assert!(cut.contains("cut-short.mid") && cut.contains("cut short"), "{cut}");
    assert!(stats["notes"].as_u64().unwrap() > 500);
    assert_eq!(stats["pitch_histogram"].as_array().unwrap().len(), 128);
    let tokens = stats["train_tokens"].as_u64().unwrap() + stats["val_tokens"].as_u64().unwrap();
    assert!(tokens > 1000);

    // The same collection gives the same dataset, and adding a file never moves the others.
    let again = dir.path().join("again");
    std::fs::copy(&real_midi()[0], songs.join("new.mid")).unwrap();
    ok(&["prepare", s(&songs), "--out", s(&again), "--val-fraction", "0.3"]);
    let split_of = |dataset: &Path| -> Vec<(String, String)> {
        let index: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dataset.join("index.json")).unwrap()).unwrap();
        let docs = index["documents"].as_array().unwrap();
        docs.iter()
            .map(|d| (d["path"].as_str().unwrap().to_string(), d["split"].as_str().unwrap().to_string()))
            .collect()
    };
    let before = split_of(&data);
    let after = split_of(&again);
    assert_eq!(after.len(), before.len() + 1);
    assert!(before.iter().all(|doc| after.contains(doc)), "a file moved across the split");
}

#[test]
fn prepare_refuses_an_empty_folder_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("nothing here");
    std::fs::create_dir(&empty).unwrap();
    let err = fails(&["prepare", s(&empty), "--out", s(&dir.path().join("data"))]);
    assert!(err.contains("no MIDI files under") && err.contains("nothing here"), "{err}");
}

/// A band's file as General MIDI has it: a piano's chords, a bass line and drums on channel 10
/// (`bass: false` leaves the bass out). Pitches keep the parts apart: bass 28..40, piano
/// 60..72, drums 36..46.
fn band(path: &Path, bass: bool) -> usize {
    let note = |pitch: u8, beat: usize, channel: u8, program: u8| Note {
        pitch,
        velocity: 90,
        start: beat as f64,
        end: beat as f64 + 0.5,
        channel,
        program,
        is_drum: channel == midi::DRUM_CHANNEL,
        track: 0,
    };
    let mut notes = Vec::new();
    for beat in 0..32 {
        for pitch in [60, 64, 67] {
            notes.push(note(pitch + (beat % 4) as u8, beat, 0, 0));
        }
        notes.push(note([36, 42, 38, 46][beat % 4], beat, midi::DRUM_CHANNEL, 0));
    }
    let bass_notes = if bass { 32 } else { 0 };
    for beat in 0..bass_notes {
        notes.push(note(28 + (beat % 12) as u8, beat, 1, 33));
    }
    midi::write_file(path, &notes, 120.0, None).unwrap();
    bass_notes
}

#[test]
fn prepare_takes_only_the_family_asked_for_and_counts_the_files_without_it() {
    let dir = tempfile::tempdir().unwrap();
    let (songs, data) = (dir.path().join("band"), dir.path().join("data"));
    std::fs::create_dir_all(&songs).unwrap();
    let bass_notes = band(&songs.join("with-bass.mid"), true) + band(&songs.join("also-bass.mid"), true);
    band(&songs.join("no-bass.mid"), false);
    let out = ok(&["prepare", s(&songs), "--out", s(&data), "--family", "bass", "--val-fraction", "0"]);
    assert!(out.contains("family     bass: 2 files, 64 notes"), "{out}");
    assert!(out.contains("1 files without bass"), "{out}");

    let stats: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.join("stats.json")).unwrap()).unwrap();
    assert_eq!(stats["family"], "bass");
    assert_eq!(stats["notes"].as_u64().unwrap() as usize, bass_notes, "only the bass notes");
    let pitches = stats["pitch_histogram"].as_array().unwrap();
    let played: Vec<usize> = (0..128).filter(|&p| pitches[p].as_u64().unwrap() > 0).collect();
    assert_eq!(played, (28..40).collect::<Vec<_>>(), "the bass's pitches and no others");
    assert_eq!(stats["files_without_family"], 1);
    let skipped = &stats["rejected"]["no bass notes"][0];
    assert_eq!(skipped["path"], s(&songs.join("no-bass.mid")));
    let message = skipped["message"].as_str().unwrap();
    assert!(message.contains("programs 33-40") && message.contains("drums, piano"), "{message}");
    // What every family holds, taken or not: the drums and the piano of all three files.
    let families = &stats["families"];
    assert_eq!((families["bass"]["files"].as_u64(), families["bass"]["notes"].as_u64()), (Some(2), Some(64)));
    assert_eq!(
        (families["drums"]["files"].as_u64(), families["drums"]["notes"].as_u64()),
        (Some(3), Some(96))
    );
    assert_eq!(families["piano"]["files"], 3);
    assert!(families.get("guitar").is_none());

    // The drums are a family too, and their role follows.
    let drums = dir.path().join("drums");
    let out = ok(&["prepare", s(&songs), "--out", s(&drums), "--family", "drums"]);
    assert!(out.contains("family     drums: 3 files, 96 notes"), "{out}");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(drums.join("index.json")).unwrap()).unwrap();
    assert_eq!(index["role"], "drums");
    let err = fails(&["prepare", s(&songs), "--out", s(&drums), "--family", "kazoo"]);
    assert!(err.contains("synth-lead"), "the families are listed: {err}");
}

/// A learnable pattern: a two-octave scale, up and down, over and over.
fn scale_dataset(dir: &Path) -> PathBuf {
    let songs = dir.join("scales");
    std::fs::create_dir_all(&songs).unwrap();
    for file in 0..8 {
        let pitches: Vec<u8> = (0..15)
            .chain((1..14).rev())
            .map(|i| [60, 62, 64, 65, 67, 69, 71][i % 7] + 12 * (i / 7) as u8)
            .collect();
        let notes: Vec<Note> = (0..240)
            .map(|i| Note {
                pitch: pitches[i % pitches.len()],
                velocity: 80,
                start: i as f64 * 0.5,
                end: i as f64 * 0.5 + 0.5,
                channel: 0,
                program: 0,
                is_drum: false,
                track: 0,
            })
            .collect();
        midi::write_file(&songs.join(format!("scale{file}.mid")), &notes, 120.0, None).unwrap();
    }
    let data = dir.join("scale-data");
    ok(&["prepare", s(&songs), "--out", s(&data), "--val-fraction", "0.25"]);
    data
}

const TINY: [&str; 14] = [
    "--layers",
    "1",
    "--hidden",
    "32",
    "--embed",
    "16",
    "--seq",
    "32",
    "--batch",
    "8",
    "--eval-tokens",
    "1024",
    "--transpose",
    "0",
];

fn train(dataset: &Path, run: &Path, extra: &[&str]) -> String {
    let mut args = vec!["train", s(dataset), "--out", s(run)];
    args.extend(TINY);
    args.extend(extra);
    ok(&args)
}

fn metrics(run: &Path) -> Vec<Vec<f64>> {
    std::fs::read_to_string(run.join("metrics.csv"))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect()
}

#[test]
fn train_learns_a_pattern_and_export_generate_eval_use_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = scale_dataset(dir.path());
    let run = dir.path().join("run");
    let log = train(&data, &run, &["--steps", "150", "--eval-every", "50", "--lr", "0.01", "--warmup", "10"]);
    assert!(log.contains("step    150"), "{log}");
    let rows = metrics(&run);
    assert_eq!(rows.len(), 3);
    let (first, last) = (rows[0][2], rows[2][2]);
    // Uniform guessing is ln(384) = 5.95 nats; the scale is nearly deterministic.
    assert!(last < 1.5 && last < first * 0.6, "validation loss went {first} -> {last}");
    for file in [
        "config.json",
        "vocab.json",
        "best.safetensors",
        "checkpoint.safetensors",
        "optimizer.safetensors",
        "loss.svg",
    ] {
        assert!(run.join(file).exists(), "{file} missing from the run");
    }
    let svg = std::fs::read_to_string(run.join("loss.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("validation"));

    // Export checks tract against candle and writes a model the engine loads.
    let onnx = dir.path().join("scales.onnx");
    let out = ok(&["export", s(&run), "--out", s(&onnx), "--name", "Scales"]);
    assert!(out.contains("parity: tract and candle agree"), "{out}");
    let model = Model::load_file(&onnx).unwrap();
    assert_eq!(model.info().name, "Scales");
    assert_eq!(model.info().training.steps, 150);
    assert!(model.info().training.validation_loss.unwrap() < 1.5);

    // Generate writes a file the engine reads back, every note in the scale lock.
    let song = dir.path().join("song.mid");
    let g_major = |out: &Path| {
        ok(&[
            "generate",
            s(&onnx),
            "--out",
            s(out),
            "--bars",
            "8",
            "--key",
            "G",
            "--scale",
            "major",
            "--seed",
            "3",
        ])
    };
    g_major(&song);
    let read = midi::read_file(&song).unwrap();
    assert!(read.notes.len() >= 8, "only {} notes", read.notes.len());
    let lock = ScaleLock { key: 7, scale: Scale::Major };
    assert!(read.notes.iter().all(|n| lock.allows(n.pitch)));
    // The same seed writes the same file; the primer comes first in the output.
    let again = dir.path().join("again.mid");
    g_major(&again);
    assert_eq!(std::fs::read(&song).unwrap(), std::fs::read(&again).unwrap());
    let primed = dir.path().join("primed.mid");
    let primer = dir.path().join("scales/scale0.mid");
    ok(&["generate", s(&onnx), "--out", s(&primed), "--bars", "2", "--primer", s(&primer)]);
    let primed = midi::read_file(&primed).unwrap();
    assert!(primed.notes.len() > 240, "primer of 240 notes plus new ones, got {}", primed.notes.len());

    // Eval: the model beats both baselines on the pattern, and its music is scored beside a
    // ceiling and a floor, in the table, the JSON and the plot.
    let json = dir.path().join("eval.json");
    let table = ok(&[
        "eval",
        s(&onnx),
        s(&data),
        "--samples",
        "2",
        "--bars",
        "8",
        "--voices",
        "2",
        "--json",
        s(&json),
    ]);
    for row in [
        "held-out",
        "all",
        "note-on",
        "note-off",
        "time-shift",
        "overlapping area",
        "KL divergence",
        "OA_g (variety)",
        "spread",
        "ceiling",
        "floor",
        "pc-hist",
        "notes/bar",
        "copying: the longest run of events",
    ] {
        assert!(table.contains(row), "{row} missing:\n{table}");
    }
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let all = &report["likelihood"][0];
    let (model_nll, bigram_nll) =
        (all["model"]["nats_per_token"].as_f64().unwrap(), all["bigram"]["nats_per_token"].as_f64().unwrap());
    assert!(model_nll < bigram_nll, "model {model_nll} vs bigram {bigram_nll}");
    let music = &report["music"];
    // The eight songs are one scale, so the two halves of the reference are identical.
    assert_eq!(music["reference_pieces"], 8);
    assert!(music["ceiling"]["mean_overlapping_area"].as_f64().unwrap() > 0.99, "{music:#}");
    // Identical halves vary alike: not at all.
    assert!(music["ceiling"]["variety"]["mean_overlapping_area"].as_f64().unwrap() > 0.99, "{music:#}");
    assert_eq!(music["ceiling"]["variety"]["mean_spread"], 1.0);
    assert_eq!(music["settings"]["sampler"]["voices"], 2);
    for row in ["ceiling", "model", "floor"] {
        let features = music[row]["features"].as_array().unwrap();
        assert_eq!(features.len(), 10);
        for f in features {
            let (oa, kl) = (f["overlapping_area"].as_f64().unwrap(), f["kl_divergence"].as_f64().unwrap());
            assert!((0.0..=1.0).contains(&oa) && kl >= 0.0, "{row}: {f}");
            let variety = &f["variety"];
            let oa_g = variety["overlapping_area"].as_f64().unwrap();
            assert!(
                (0.0..=1.0).contains(&oa_g) && variety["mean_distance"].as_f64().unwrap() >= 0.0,
                "{row}: {f}"
            );
        }
    }
    let floor = music["floor"]["mean_overlapping_area"].as_f64().unwrap();
    assert!(floor < 0.6, "random notes overlap a scale by {floor}");
    let svg = std::fs::read_to_string(dir.path().join("eval.svg")).unwrap();
    assert!(svg.contains("<svg") && svg.contains("pitch range: OA"), "the plot names each feature");
    assert!(svg.contains("OA_g") && svg.contains("spread"), "and its variety");
    // Only the training songs as the reference.
    let train_only = dir.path().join("train-only.json");
    let (samples, bars) = (["--samples", "1"], ["--bars", "4"]);
    ok(&[
        &["eval", s(&onnx), s(&data), "--reference", "train", "--json", s(&train_only)][..],
        &samples,
        &bars,
    ]
    .concat());
    let report: serde_json::Value = serde_json::from_slice(&std::fs::read(&train_only).unwrap()).unwrap();
    assert!(report["music"]["reference_pieces"].as_u64().unwrap() < 8);
    // One piece has no other to differ from.
    assert!(report["music"]["model"]["variety"].is_null());

    // Tune: the model plays by the tuning written into it, in generate and eval, unless a flag
    // says otherwise; before, it played untuned.
    assert!(ok(&["tune", s(&onnx)]).contains("untuned, plays by temperature 0.60, rhythm 0.60, top-p 0.80"));
    let write = |out: &Path, flags: &[&str]| {
        ok(&[&["generate", s(&onnx), "--out", s(out), "--bars", "8", "--seed", "5"][..], flags].concat());
        std::fs::read(out).unwrap()
    };
    let untuned = write(&dir.path().join("untuned.mid"), &[]);
    let tuning = ["--temperature", "1.3", "--rhythm-temperature", "1.5", "--top-p", "1"];
    let told = write(&dir.path().join("told.mid"), &[&tuning[..], &["--voices", "3"]].concat());
    assert_ne!(untuned, told, "another tuning plays other music");
    let out = ok(&[&["tune", s(&onnx)][..], &tuning, &["--voices", "3"]].concat());
    assert!(
        out.contains("temperature 1.30, rhythm 1.50, top-p 1.00, 3 voices (was temperature 0.60"),
        "{out}"
    );
    let model = Model::load_file(&onnx).unwrap();
    assert_eq!(model.info().tuning.unwrap().voices, Some(3));
    assert_eq!(write(&dir.path().join("tuned.mid"), &[]), told, "tuned, it plays so by default");
    // The flags play it as before; --voices 0 gives back the training music's count.
    assert!(ok(&["tune", s(&onnx), "--voices", "0"]).contains("top-p 1.00 (was"));
    let untuned_flags = ["--temperature", "0.6", "--rhythm-temperature", "0.6", "--top-p", "0.8"];
    assert_eq!(write(&dir.path().join("as-before.mid"), &untuned_flags), untuned);
    ok(&["tune", s(&onnx), "--voices", "3"]);
    let tuned_json = dir.path().join("tuned.json");
    let table = ok(&["eval", s(&onnx), s(&data), "--samples", "2", "--bars", "4", "--json", s(&tuned_json)]);
    assert!(
        table.contains("temperature 1.3, rhythm 1.5, top-p 1 as tuned, 3 (as trained) voices"),
        "{table}"
    );
    let err = fails(&["tune", s(&onnx), "--top-p", "1.5"]);
    assert!(err.contains("scales.onnx: cannot tune it so: its top-p 1.5"), "{err}");
    assert_eq!(
        Model::load_file(&onnx).unwrap().info().tuning,
        model.info().tuning,
        "a refusal changes nothing"
    );
}

#[test]
fn the_command_an_export_records_trains_the_same_model_again() {
    let dir = tempfile::tempdir().unwrap();
    let data = scale_dataset(dir.path());
    let run = dir.path().join("run");
    // Settings away from their defaults, a derived one (--min-lr) given and one (--dense) left
    // to follow --hidden.
    let settings =
        ["--steps", "40", "--eval-every", "20", "--lr", "0.01", "--min-lr", "0.002", "--warmup", "5"];
    train(
        &data,
        &run,
        &[&settings[..], &["--seed", "9", "--weight-decay", "0.05", "--clip", "0.5"]].concat(),
    );
    let onnx = dir.path().join("first.onnx");
    ok(&["export", s(&run), "--out", s(&onnx)]);
    let command = Model::load_file(&onnx).unwrap().info().training.command.clone();
    assert!(command.starts_with("continuo-train train "), "{command}");
    for setting in
        ["--seed 9", "--weight-decay 0.05", "--clip 0.5", "--min-lr 0.002", "--eval-every 20", "--threads 1"]
    {
        assert!(command.contains(setting), "{setting} missing from {command}");
    }
    let again = dir.path().join("again");
    let args: Vec<&str> =
        command.split_whitespace().skip(1).map(|a| if a == "RUN" { s(&again) } else { a }).collect();
    ok(&args);
    for file in ["checkpoint.safetensors", "best.safetensors"] {
        assert!(
            std::fs::read(run.join(file)).unwrap() == std::fs::read(again.join(file)).unwrap(),
            "{file} differs: the recorded command does not reproduce the run"
        );
    }
}

#[test]
fn resume_continues_exactly_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let data = scale_dataset(dir.path());
    let (straight, split) = (dir.path().join("straight"), dir.path().join("split"));
    train(&data, &straight, &["--steps", "40", "--eval-every", "20"]);
    train(&data, &split, &["--steps", "20", "--eval-every", "20"]);
    ok(&["train", "--resume", s(&split), "--steps", "40"]);
    let (a, b) = (metrics(&straight), metrics(&split));
    assert_eq!(b.len(), 2);
    // Same train and validation losses at step 40: the moments, the step and the data order
    // all carried over.
    assert_eq!(a[1][0], b[1][0]);
    assert!((a[1][1] - b[1][1]).abs() < 1e-5 && (a[1][2] - b[1][2]).abs() < 1e-5, "{a:?} vs {b:?}");

    let err = fails(&["train", "--resume", s(&split), "--steps", "40"]);
    assert!(err.contains("already trained 40 of 40 steps"), "{err}");
    let err = fails(&["train", s(&data), "--out", s(&split)]);
    assert!(err.contains("already holds a run"), "{err}");
}

#[test]
fn errors_name_the_file_and_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let foreign = dir.path().join("foreign.onnx");
    std::fs::write(&foreign, b"\x08\x07\x12\x07pytorch").unwrap();
    let err = fails(&["generate", s(&foreign), "--out", s(&dir.path().join("x.mid"))]);
    assert!(err.contains("foreign.onnx") && err.contains("not a Continuo model"), "{err}");

    let err = fails(&["eval", s(&foreign), s(&dir.path().join("no-dataset"))]);
    assert!(err.contains("foreign.onnx"), "{err}");
    let err = fails(&["eval", s(&foreign), s(&dir.path().join("no-dataset")), "--voices", "17"]);
    assert!(err.contains("--voices"), "{err}");

    let err = fails(&["export", s(&dir.path().join("no-run")), "--out", s(&foreign)]);
    assert!(err.contains("no-run/config.json") && err.contains("run folder"), "{err}");

    let err = fails(&["train", s(&dir.path().join("no-dataset")), "--out", s(&dir.path().join("run"))]);
    assert!(err.contains("no-dataset/index.json") && err.contains("continuo-train prepare"), "{err}");
}

#[test]
fn every_subcommand_has_a_manual() {
    let top = ok(&["--help"]);
    for verb in ["prepare", "train", "export", "generate", "eval", "tune"] {
        assert!(top.contains(verb), "{verb} missing from --help");
        let help = ok(&[verb, "--help"]);
        assert!(help.lines().count() > 10, "{verb} --help is thin:\n{help}");
        assert!(help.contains("Usage: continuo-train"), "{help}");
    }
    assert!(ok(&["train", "--help"]).contains("[default: 256]"));
    assert!(ok(&["generate", "--help"]).contains("pentatonic-minor"));
}

/// Songs of two parts: triads changing every two beats, in an order that differs from song to
/// song, and a bass that plays each chord's root on its beats. A bass that follows the harmony
/// can learn it; one that does not hear it cannot know the next root.
fn roots_under_chords(dir: &Path) -> PathBuf {
    let songs = dir.join("roots");
    std::fs::create_dir_all(&songs).unwrap();
    let triads: [[u8; 3]; 4] = [[60, 64, 67], [65, 69, 72], [67, 71, 74], [57, 60, 64]];
    let note = |pitch: u8, start: f64, end: f64, track: usize| Note {
        pitch,
        velocity: 80,
        start,
        end,
        channel: track as u8,
        program: 0,
        is_drum: false,
        track,
    };
    let mut order = 7u64;
    for file in 0..12 {
        let mut notes = Vec::new();
        for bar in 0..32 {
            order = order.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let chord = triads[(order >> 33) as usize % 4];
            let start = bar as f64 * 2.0;
            notes.extend(chord.map(|p| note(p, start, start + 2.0, 1)));
            let root = chord[0] % 12 + 36;
            notes.extend([note(root, start, start + 1.0, 0), note(root, start + 1.0, start + 2.0, 0)]);
        }
        midi::write_file(&songs.join(format!("song{file}.mid")), &notes, 120.0, None).unwrap();
    }
    songs
}

#[test]
fn a_bass_learned_against_the_chords_follows_the_chords_it_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let songs = roots_under_chords(dir.path());
    let data = dir.path().join("bass-data");
    let out = ok(&[
        "prepare",
        s(&songs),
        "--out",
        s(&data),
        "--part",
        "lowest",
        "--against",
        "others",
        "--val-fraction",
        "0.2",
    ]);
    assert!(out.contains("12 read"), "{out}");
    assert!(data.join("train-0000.harmony").exists());
    // A dataset without harmony cannot train a model that hears one.
    let plain = scale_dataset(dir.path());
    let refused =
        fails(&["train", s(&plain), "--out", s(&dir.path().join("x")), "--harmony", "pitch-classes"]);
    assert!(refused.contains("needs a dataset prepared against the other parts"), "{refused}");

    let run = dir.path().join("bass-run");
    train(&data, &run, &["--steps", "200", "--eval-every", "100", "--lr", "0.01", "--warmup", "10"]);
    let model = dir.path().join("bass.onnx");
    ok(&["export", s(&run), "--out", s(&model)]);
    let loaded = Model::load_file(&model).unwrap();
    assert!(loaded.follows_harmony(), "a model trained against the harmony hears it");

    // Given chords it never heard in this order, it plays their roots.
    let song = dir.path().join("over-chords.mid");
    ok(&[
        "generate",
        s(&model),
        "--out",
        s(&song),
        "--bars",
        "8",
        "--harmony",
        "F:2 G:2 Am:2 C:2 | G:2 F:2 C:2 Am:2",
    ]);
    let written = midi::read_file(&song).unwrap();
    let (bass, harmony): (Vec<&Note>, Vec<&Note>) = written.notes.iter().partition(|n| n.channel == 0);
    assert!(!harmony.is_empty(), "the harmony is written beside the bass, on channel 2");
    let roots = [5u8, 7, 9, 0, 7, 5, 0, 9];
    let on_root = bass.iter().filter(|n| roots[(n.start / 2.0) as usize % 8] == n.pitch % 12).count();
    assert!(bass.len() >= 16, "{} bass notes", bass.len());
    assert!(on_root * 10 >= bass.len() * 8, "{on_root} of {} bass notes on the chord's root", bass.len());

    // eval: the fit given the harmony is far above the fit with it withheld.
    let json = dir.path().join("bass.eval.json");
    ok(&["eval", s(&model), s(&data), "--samples", "8", "--bars", "8", "--json", s(&json)]);
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let fit = |set: &str| report["harmony"][set]["sounding"].as_f64().unwrap();
    assert!(fit("data") > 0.99, "the data's bass is always in its chord: {}", fit("data"));
    assert!(fit("model") > 0.8 && fit("model") > fit("withheld") + 0.3, "{}", report["harmony"]);
    // A model that follows no harmony refuses chords, and a bad chord symbol is named.
    let plain_run = dir.path().join("plain-run");
    train(&plain, &plain_run, &["--steps", "5", "--eval-every", "5"]);
    let plain_model = dir.path().join("plain.onnx");
    ok(&["export", s(&plain_run), "--out", s(&plain_model)]);
    let refused = fails(&["generate", s(&plain_model), "--out", s(&song), "--harmony", "C G"]);
    assert!(refused.contains("follows no harmony"), "{refused}");
    let refused = fails(&["generate", s(&model), "--out", s(&song), "--harmony", "C Hm7 G"]);
    assert!(refused.contains("'Hm7'"), "{refused}");
}
