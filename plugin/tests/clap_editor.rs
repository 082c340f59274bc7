//! The plugin's window, opened by the CLAP test host in an X11 window and used as a musician
//! would: the mouse (xdotool) picks models and saves MIDI while the host plays.
//!
//! Needs an X display and `xdotool`: `cargo xtask test` (what CI runs) runs the tests under
//! `xvfb-run` when there is no display. Without one the test fails, saying so, unless
//! `CONTINUO_SKIP_WINDOW_TESTS=1` skips it. It writes
//! `target/screenshots/continuo-editor.png` (the window after a few bars) and
//! `continuo-editor-second-model.png` (after the switch).
//!
//! The second model is trained and exported here by `continuo-train`, which `cargo test
//! --workspace` builds for the trainer's own tests.

#[path = "support/clap_host.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use continuo_engine::midi;
use serde_json::Value;
use support::*;

const TEMPO: f64 = 120.0;
const BLOCK: usize = 480;
/// The plugin's output channel (its default, MIDI channel 1); input notes come on another one.
const OUR_CHANNEL: u8 = 0;
const INPUT_CHANNEL: u16 = 5;

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn trainer() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or(workspace().join("target"), PathBuf::from);
    let path = target.join("debug/continuo-train");
    assert!(path.exists(), "{} is missing: run `cargo xtask test` (it builds the trainer)", path.display());
    path
}

fn run(command: &mut Command) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{command:?}: {e}"));
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{command:?} failed:\n{text}");
    text
}

/// A small model trained and exported by the trainer on the engine's fixture MIDI files.
fn train_second_model(dir: &Path, out: &Path) {
    let songs = workspace().join("engine/tests/fixtures/midi");
    let data = dir.join("data");
    let run_dir = dir.join("run");
    let train = trainer();
    run(Command::new(&train).args(["prepare"]).arg(&songs).arg("--out").arg(&data));
    run(Command::new(&train)
        .arg("train")
        .arg(&data)
        .arg("--out")
        .arg(&run_dir)
        .args(["--layers", "1", "--hidden", "32", "--embed", "16", "--seq", "32", "--batch", "8"])
        .args(["--steps", "120", "--eval-every", "60", "--eval-tokens", "512", "--transpose", "0"])
        .args(["--lr", "0.01", "--warmup", "10"]));
    run(Command::new(&train)
        .arg("export")
        .arg(&run_dir)
        .arg("--out")
        .arg(out)
        .args(["--name", "Second opinion"]));
}

/// What the window shows, from its trace file.
fn shown(trace: &Path) -> Value {
    std::fs::read_to_string(trace).ok().and_then(|t| serde_json::from_str(&t).ok()).unwrap_or(Value::Null)
}

fn model_name(trace: &Path) -> String {
    shown(trace)["model"][0].as_str().unwrap_or_default().to_string()
}

/// The `Model` parameter's id and the model file, as the project would save them.
fn saved_model(host: &mut Host) -> (String, String) {
    let saved = host.save_state();
    let state: Value = serde_json::from_slice(&saved[8..]).expect("the state is JSON");
    let path: String =
        serde_json::from_str(state["fields"]["model-path"].as_str().unwrap_or("\"\"")).unwrap();
    (state["params"]["model"]["string"].as_str().unwrap_or_default().to_string(), path)
}

/// Clicks the middle of the control the window calls `name`.
fn click(trace: &Path, name: &str) {
    let rect = &shown(trace)["controls"][name];
    let at = |i: usize| rect[i].as_f64().unwrap_or_else(|| panic!("no control {name:?} in {}", shown(trace)));
    let (x, y) = ((at(0) + at(2)) / 2.0, (at(1) + at(3)) / 2.0);
    run(Command::new("xdotool").args(["mousemove", &format!("{x:.0}"), &format!("{y:.0}"), "click", "1"]));
}

/// Opens the drop-down `list` and clicks its `item` while the host plays, until `chosen` holds.
/// The list opens with a short animation, and on a loaded machine the window may draw its last
/// frame late: the click waits until the item has stayed in one place for a few frames, and a
/// click that still missed (the list closes) is tried again, three times at most.
fn choose(
    host: &mut Host,
    pos: &mut f64,
    trace: &Path,
    list: &str,
    item: &str,
    mut chosen: impl FnMut() -> bool,
) {
    for attempt in 1..=3 {
        click(trace, list);
        let mut last = Value::Null;
        let mut still = 0;
        play_until(host, pos, Duration::from_secs(30), &format!("{item} to settle"), |_, _| {
            let rect = shown(trace)["controls"][item].clone();
            still = if !rect.is_null() && rect == last { still + 1 } else { 0 };
            last = rect;
            still >= 5
        });
        click(trace, item);
        if play_while(host, pos, Duration::from_secs(20), |_, _| chosen()) {
            return;
        }
        eprintln!("{item}: the click of attempt {attempt} did not take; the window shows {}", shown(trace));
    }
    panic!("gave up choosing {item}; the window shows {}", shown(trace));
}

/// The host plays on in real time-ish from `pos` until `done` holds (or fails after `limit`).
fn play_until(
    host: &mut Host,
    pos: &mut f64,
    limit: Duration,
    what: &str,
    done: impl FnMut(&mut Host, f64) -> bool,
) {
    if !play_while(host, pos, limit, done) {
        // What the window showed last says why, more often than not.
        let trace = std::env::var("CONTINUO_EDITOR_TRACE").unwrap_or_default();
        panic!(
            "gave up waiting: {what}; the window shows {}",
            std::fs::read_to_string(trace).unwrap_or_default()
        );
    }
}

/// The host plays on from `pos` until `done` holds (true) or `limit` passes (false).
fn play_while(
    host: &mut Host,
    pos: &mut f64,
    limit: Duration,
    mut done: impl FnMut(&mut Host, f64) -> bool,
) -> bool {
    let started = Instant::now();
    while !done(host, *pos) {
        if started.elapsed() > limit {
            return false;
        }
        play_blocks(host, pos, 8);
    }
    true
}

fn play_blocks(host: &mut Host, pos: &mut f64, blocks: usize) {
    let samples_per_beat = host.sample_rate * 60.0 / TEMPO;
    for _ in 0..blocks {
        // A held note on the input every other beat, so the roll shows both kinds.
        // The next beat from here: positions accumulate rounding, so "here" includes a hair before.
        let beat_start = (*pos - 1e-6).ceil();
        let offset = ((beat_start - *pos) * samples_per_beat).round().max(0.0) as usize;
        if offset < BLOCK {
            let on = (beat_start as i64) % 2 == 0;
            host.note_in(offset as u32, INPUT_CHANNEL, 48, on);
        }
        host.block(BLOCK, Transport { playing: true, tempo: TEMPO, beats: *pos });
        host.main_thread_tick();
        *pos += BLOCK as f64 / samples_per_beat;
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn ours(host: &Host) -> Vec<Heard> {
    host.heard.iter().copied().filter(|h| h.channel == OUR_CHANNEL).collect()
}

/// Set to 1 to skip the window's test where no X display can be had: said, never silent.
const SKIP_WINDOW_TESTS: &str = "CONTINUO_SKIP_WINDOW_TESTS";

/// Whether the window's test runs: without a display it fails, saying how to run it, unless the
/// person running it skips it on purpose; a test that passes without looking proves nothing.
fn has_display() -> bool {
    if std::env::var_os("DISPLAY").is_some() {
        return true;
    }
    if std::env::var(SKIP_WINDOW_TESTS).is_ok_and(|v| v == "1") {
        eprintln!("skipped the window's test: no X display, and {SKIP_WINDOW_TESTS}=1");
        return false;
    }
    panic!(
        "no X display: run the tests with `cargo xtask test`, which runs them under `xvfb-run` \
         when there is no display (packages xvfb, xauth, xdotool: see the README), or under \
         `xvfb-run -a cargo test`; or set {SKIP_WINDOW_TESTS}=1 to skip the window's test"
    );
}

#[test]
fn the_window_shows_the_music_switches_models_while_playing_and_saves_midi() {
    if !has_display() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    let models = home.join("models");
    std::fs::create_dir_all(&models).unwrap();
    train_second_model(dir.path(), &models.join("second.onnx"));
    std::fs::write(models.join("broken.onnx"), b"this is not a model").unwrap();
    let trace = dir.path().join("editor.json");
    // The only test in this binary: nothing else reads the environment meanwhile.
    std::env::set_var("CONTINUO_HOME", &home);
    std::env::set_var("CONTINUO_EDITOR_TRACE", &trace);
    let screenshots = workspace().join("target/screenshots");

    let mut host = Host::new(48_000.0);
    let (width, height) = {
        let window = host.open_editor();
        (window.width, window.height)
    };
    assert!(width >= 800 && height >= 500, "editor is {width}x{height}");

    // D dorian: the roll shades the scale's rows.
    host.set("Key", "D");
    host.set("Scale", "Dorian");
    // A few bars: the window shows the default model, the transport and the notes.
    let mut pos = 0.0;
    play_until(&mut host, &mut pos, Duration::from_secs(60), "the window's first frames", |host, _| {
        !model_name(&trace).is_empty() && ours(host).len() > 20
    });
    while pos < 24.0 {
        play_blocks(&mut host, &mut pos, 8);
    }
    // Let the window draw the latest notes.
    std::thread::sleep(Duration::from_millis(300));
    let view = shown(&trace);
    assert_eq!(view["model"][0], "Bach chorales", "{view}");
    let transport = view["transport"].as_str().unwrap();
    assert!(
        transport.contains("playing") && transport.contains("120.0 BPM") && transport.contains("4/4"),
        "{transport}"
    );
    assert!(view["drawn"]["generated"].as_u64().unwrap() > 10, "{view}");
    assert!(view["drawn"]["input"].as_u64().unwrap() > 2, "{view}");
    assert!(view["cost"][0].as_str().unwrap().contains("steps/s"), "{view}");

    let pixels = host.editor.as_ref().unwrap().screenshot(&screenshots.join("continuo-editor.png"));
    let roll = &view["controls"]["piano roll"];
    let (x0, y0, x1, y1) = (
        roll[0].as_f64().unwrap(),
        roll[1].as_f64().unwrap(),
        roll[2].as_f64().unwrap(),
        roll[3].as_f64().unwrap(),
    );
    let (mut amber, mut blue) = (0, 0);
    for y in y0 as u32..y1 as u32 {
        for x in x0 as u32..x1 as u32 {
            let [r, g, b] = pixels[(y * width + x) as usize];
            let (r, g, b) = (r as i32, g as i32, b as i32);
            amber += (r > 120 && r > b + 60 && g > b) as usize;
            blue += (b > 120 && b > r + 60) as usize;
        }
    }
    assert!(amber > 500, "the screenshot's piano roll shows {amber} pixels of generated notes");
    assert!(blue > 100, "the screenshot's piano roll shows {blue} pixels of input notes");

    // Switch to the second model with a click while the host plays.
    let before_switch = ours(&host).len();
    click(&trace, "folder: second.onnx");
    play_until(&mut host, &mut pos, Duration::from_secs(60), "the second model", |_, _| {
        model_name(&trace) == "Second opinion"
    });
    let view = shown(&trace);
    assert!(view["model"].to_string().contains("LSTM 1 x 32"), "{view}");
    assert!(view["report"].as_str().unwrap().contains("now playing Second opinion"), "{view}");
    assert_eq!(
        saved_model(&mut host),
        ("file".to_string(), models.join("second.onnx").display().to_string())
    );
    let switched_at = ours(&host).len();
    play_until(&mut host, &mut pos, Duration::from_secs(60), "notes from the second model", |host, _| {
        ours(host)[switched_at..].iter().filter(|h| h.on).count() > 8
    });
    assert!(switched_at > before_switch);
    std::thread::sleep(Duration::from_millis(300));
    host.editor.as_ref().unwrap().screenshot(&screenshots.join("continuo-editor-second-model.png"));

    // A file that is not a model is refused in the window; the music goes on.
    click(&trace, "folder: broken.onnx");
    play_until(&mut host, &mut pos, Duration::from_secs(30), "the refusal", |_, _| {
        shown(&trace)["report"].as_str().unwrap_or_default().starts_with("refused")
    });
    let report = shown(&trace)["report"].as_str().unwrap().to_string();
    assert!(report.contains("broken.onnx"), "{report}");
    assert_eq!(model_name(&trace), "Second opinion");
    // The project still names the model that plays.
    play_blocks(&mut host, &mut pos, 8);
    assert_eq!(
        saved_model(&mut host),
        ("file".to_string(), models.join("second.onnx").display().to_string())
    );
    let (refused_at, refused_pos) = (ours(&host).len(), pos);
    play_until(
        &mut host,
        &mut pos,
        Duration::from_secs(60),
        "8 bars and notes after the refusal",
        |host, pos| ours(host)[refused_at..].iter().filter(|h| h.on).count() > 8 && pos > refused_pos + 32.0,
    );

    // Pause inside a bar (not on a bar line, where rounding could put it in either bar), then
    // save the last 8 bars.
    while !(1.0..3.0).contains(&(pos % 4.0)) {
        play_blocks(&mut host, &mut pos, 1);
    }
    let paused_at = pos;
    host.block(BLOCK, Transport { playing: false, tempo: TEMPO, beats: paused_at });
    let heard = ours(&host);
    // Every note, including those sounding at the model switch, has ended.
    assert_eq!(support::sounding_after(&heard), Vec::<u8>::new());
    std::thread::sleep(Duration::from_millis(300));
    click(&trace, "save midi");
    // Paused blocks go on meanwhile, as a host's do.
    let started = Instant::now();
    while !shown(&trace)["saved"].as_str().unwrap_or_default().starts_with("saved") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "gave up waiting for the saved file: {}",
            shown(&trace)
        );
        host.block(BLOCK, Transport { playing: false, tempo: TEMPO, beats: paused_at });
        host.main_thread_tick();
        std::thread::sleep(Duration::from_millis(5));
    }
    let saved: Vec<PathBuf> =
        std::fs::read_dir(home.join("midi")).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(saved.len(), 1, "{saved:?}");
    let song = midi::read_file(&saved[0]).expect("the saved file reads back through the engine");

    // The notes heard in those 8 bars, from the bar 7 bars before the one paused in.
    let samples_per_beat = host.sample_rate * 60.0 / TEMPO;
    let from = (paused_at / 4.0).floor() * 4.0 - 28.0;
    let beat_of = |h: &Heard| h.sample as f64 / samples_per_beat;
    let mut expected = Vec::new();
    for (i, on) in heard.iter().enumerate().filter(|(_, h)| h.on) {
        let start = beat_of(on);
        // A note on the bar line belongs to the bar, whatever the rounding of host positions.
        if start < from - 1e-6 {
            continue;
        }
        let off = heard[i + 1..].iter().find(|h| !h.on && h.key == on.key).expect("every note ends");
        expected.push((
            on.key,
            round(start - from),
            round(beat_of(off) - from),
            (on.velocity * 127.0).round() as u8,
        ));
    }
    let mut got: Vec<_> =
        song.notes.iter().map(|n| (n.pitch, round(n.start), round(n.end), n.velocity)).collect();
    expected.sort_by(|a, b| a.partial_cmp(b).unwrap());
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert!(expected.len() > 8, "only {} notes in 8 bars", expected.len());
    assert_eq!(got, expected);
    assert_eq!(song.initial_bpm(), TEMPO, "saved at the host's tempo");

    // The drums, from the Model list: the kit on channel 10 ("auto"), the roll's rows the kit's
    // pieces, key, scale and range greyed out.
    choose(&mut host, &mut pos, &trace, "model list", "model: Drums", || model_name(&trace) == "Drums");
    let hits_from = host.heard.len();
    play_until(&mut host, &mut pos, Duration::from_secs(60), "the drums", |host, _| {
        host.heard[hits_from..].iter().filter(|h| h.on && h.channel == 9).count() > 16
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(shown(&trace)["drawn"]["generated"].as_u64().unwrap_or(0) > 0, "the roll draws the hits");
    host.editor.as_ref().unwrap().screenshot(&screenshots.join("continuo-editor-drums.png"));

    // The Continuo bass follows the harmony held at the input (the C held every other beat):
    // the model panel says it is such a model, the mode line what it follows.
    let name = "Continuo bass";
    choose(&mut host, &mut pos, &trace, "model list", &format!("model: {name}"), || {
        model_name(&trace) == name
    });
    let bass_from = ours(&host).len();
    play_until(&mut host, &mut pos, Duration::from_secs(60), "the continuo bass", |host, _| {
        ours(host)[bass_from..].iter().filter(|h| h.on).count() > 8
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(shown(&trace)["model"].to_string().contains("follows the harmony held at its MIDI input"));
    let following = shown(&trace)["listening"].as_str().unwrap_or_default().to_string();
    assert!(following.starts_with("Following the harmony: "), "{following}");
    host.editor.as_ref().unwrap().screenshot(&screenshots.join("continuo-editor-following.png"));

    // Back to the built-in models, from the Model list: the bass line, then the chorales.
    for (name, id) in [("Bass line", "bass-line"), ("Bach chorales", "bach-chorales")] {
        choose(&mut host, &mut pos, &trace, "model list", &format!("model: {name}"), || {
            model_name(&trace) == name
        });
        assert!(shown(&trace)["model"].to_string().contains("built into the plugin"));
        assert_eq!(saved_model(&mut host).0, id, "the host recorded the choice");
    }

    // Call and response: the held notes on the input are calls; half a beat after each, the
    // model answers until the next one.
    host.set("Mode", "Call and response");
    host.set("Answer after", "0.5");
    let answers_from = ours(&host).len();
    play_until(&mut host, &mut pos, Duration::from_secs(60), "answers", |host, _| {
        ours(host)[answers_from..].iter().filter(|h| h.on).count() > 8
    });
    std::thread::sleep(Duration::from_millis(300));
    let listening = shown(&trace)["listening"].as_str().unwrap_or_default().to_string();
    assert!(listening.starts_with("Call and response: "), "{listening}");
    host.editor.as_ref().unwrap().screenshot(&screenshots.join("continuo-editor-call-and-response.png"));

    // The "Two-bar loop" preset, chosen in the window: Free, a two-bar loop, shown in the roll.
    choose(&mut host, &mut pos, &trace, "preset", "preset: Two-bar loop", || {
        shown(&trace)["listening"].as_str().unwrap_or_default().contains("looping")
    });
    let loop_from = pos;
    play_until(&mut host, &mut pos, Duration::from_secs(60), "the loop", |_, pos| pos > loop_from + 16.0);
    std::thread::sleep(Duration::from_millis(300));
    let listening = shown(&trace)["listening"].as_str().unwrap_or_default().to_string();
    assert_eq!(listening, "Free, looping 8 beats");
    host.editor.as_ref().unwrap().screenshot(&screenshots.join("continuo-editor-loop.png"));
}

/// Beats to MIDI ticks at 480 per beat, the writer's resolution.
fn round(beats: f64) -> f64 {
    (beats * 480.0).round() / 480.0
}
