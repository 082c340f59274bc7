//! Changing the model while the music plays, and the models a musician can choose from.
//!
//! A background task loads the file, checks it against the contract, warms it, builds a whole
//! [`Player`] around it and generates its first beat. The audio thread receives that player
//! through a lock-free queue ([`ModelSwitch`]), at the start of a block: it ends the notes the old
//! player has sounding and plays on with the new one from that block, whose music starts on the
//! host's next beat. The old player goes back
//! through a second queue and is dropped by the background task, never on the audio thread. A
//! file that fails anywhere on the way is refused with the engine's message and changes nothing.
//!
//! The musician picks a model by path, from the files loaded recently, or from the user models
//! folder ([`user_folder`]), all inside the plugin window: no native file dialog, because a
//! dialog opened from a plugin runs a second GUI toolkit (GTK or a portal over D-Bus on Linux)
//! inside the host's process, and a modal loop on the host's GUI thread, which hosts handle
//! badly; a path field and lists work the same in every host on Linux, Windows and macOS.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use continuo_engine::model::{Model, ModelInfo};
use crossbeam::queue::ArrayQueue;

use crate::monitor::Monitor;
use crate::params::ContinuoParams;
use crate::player::Player;
use crate::{DEFAULT_MODEL, DEFAULT_MODEL_NAME};

/// How long a load waits for the audio thread to take the new player before it reports the
/// model as waiting for playback (a host that is not processing).
const SWITCH_WAIT: Duration = Duration::from_secs(2);
/// Recent model files remembered.
const RECENT_MODELS: usize = 8;

/// A player ready to take over, or (on the way back) the one it replaced.
pub struct Handover {
    pub player: Player,
    /// The model's file ("" for the embedded model); what the project remembers.
    pub path: String,
    pub generation: u64,
}

/// A model that played or plays, as the editor shows it.
#[derive(Debug, Clone)]
pub struct ModelCard {
    pub info: ModelInfo,
    /// "" for the embedded model.
    pub path: String,
    pub generation: u64,
}

/// What the last load said, for the editor.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadReport {
    Loading(String),
    Playing(String),
    Refused(String),
}

/// The hand-off between the background loader and the audio thread, plus what the editor shows
/// of it. The audio thread uses only the queues and the atomic.
pub struct ModelSwitch {
    ready: ArrayQueue<Box<Handover>>,
    retired: ArrayQueue<Box<Handover>>,
    playing: AtomicU64,
    next_generation: AtomicU64,
    /// Never touched by the audio thread.
    cards: Mutex<Vec<ModelCard>>,
    report: Mutex<Option<LoadReport>>,
}

impl Default for ModelSwitch {
    fn default() -> Self {
        ModelSwitch {
            ready: ArrayQueue::new(1),
            // One player on its way out at a time: a load collects the last one before it
            // offers the next. The spare slot covers a load racing that collection.
            retired: ArrayQueue::new(2),
            playing: AtomicU64::new(0),
            next_generation: AtomicU64::new(1),
            cards: Mutex::new(Vec::new()),
            report: Mutex::new(None),
        }
    }
}

impl ModelSwitch {
    /// Audio thread: the player to switch to, if one is ready.
    pub fn take_ready(&self) -> Option<Box<Handover>> {
        self.ready.pop()
    }

    /// Audio thread: puts the handed-over player in `player`'s place (and its path in `path`),
    /// marks its generation as playing, and sends the replaced player back, in the same box, to
    /// be dropped elsewhere. Allocates and frees nothing. Notes the replaced player still has
    /// sounding end in the new one's first block (the audio thread ends them before, at offset 0;
    /// at activation, they end in the first block).
    pub fn hand_over(&self, mut handover: Box<Handover>, player: &mut Player, path: &mut String) {
        handover.player.take_over_notes(player);
        std::mem::swap(player, &mut handover.player);
        std::mem::swap(path, &mut handover.path);
        self.playing.store(handover.generation, Ordering::Release);
        if let Err(replaced) = self.retired.push(handover) {
            // Cannot happen (a load collects before it offers); if it did, leaking one player
            // is better than freeing megabytes on the audio thread.
            std::mem::forget(replaced);
        }
    }

    /// Drops the players the audio thread has handed back. Any thread but the audio thread.
    pub fn collect_retired(&self) {
        while self.retired.pop().is_some() {}
    }

    /// The generation now playing.
    pub fn playing_generation(&self) -> u64 {
        self.playing.load(Ordering::Acquire)
    }

    /// The model playing now, as far as the editor knows.
    pub fn playing_card(&self) -> Option<ModelCard> {
        let generation = self.playing_generation();
        let cards = self.cards.lock().ok()?;
        cards.iter().find(|c| c.generation == generation).cloned()
    }

    pub fn report(&self) -> Option<LoadReport> {
        self.report.lock().ok()?.clone()
    }

    fn set_report(&self, report: LoadReport) {
        if let Ok(mut r) = self.report.lock() {
            *r = Some(report);
        }
    }

    /// Records a player built outside a switch (at activation) as the one playing.
    pub fn register(&self, info: &ModelInfo, path: &str) -> u64 {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut cards) = self.cards.lock() {
            // Only the playing card and the one on its way are ever looked up.
            let playing = self.playing_generation();
            cards.retain(|c| c.generation >= playing);
            cards.push(ModelCard { info: info.clone(), path: path.to_string(), generation });
        }
        generation
    }

    pub fn mark_playing(&self, generation: u64) {
        self.playing.store(generation, Ordering::Release);
    }

    /// Background task: loads the model at `path` ("" for the embedded one), builds and primes
    /// a player with the current parameters, hands it to the audio thread and waits (briefly)
    /// for the switch. On success the project remembers the file and it joins the recent list.
    pub fn load(&self, path: &str, params: &ContinuoParams, monitor: &Arc<Monitor>) {
        let shown = if path.is_empty() { DEFAULT_MODEL_NAME.to_string() } else { path.to_string() };
        self.set_report(LoadReport::Loading(shown));
        self.collect_retired();
        let model = if path.is_empty() {
            Model::load(DEFAULT_MODEL, DEFAULT_MODEL_NAME)
        } else {
            Model::load_file(Path::new(path))
        };
        let model = match model {
            Ok(model) => model,
            Err(error) => return self.set_report(LoadReport::Refused(error.to_string())),
        };
        let info = model.info().clone();
        let mut player = match Player::new(
            model,
            params.generator_settings(),
            params.output_settings(),
            monitor.clone(),
        ) {
            Ok(player) => player,
            Err(error) => return self.set_report(LoadReport::Refused(format!("{path}: {error}"))),
        };
        // Its music starts on the host's next beat, like any start.
        player.prime();
        let generation = self.register(&info, path);
        let handover = Box::new(Handover { player, path: path.to_string(), generation });
        // A player offered earlier and not yet taken (the host is not processing) is replaced.
        drop(self.ready.force_push(handover));

        if let Ok(mut model_path) = params.model_path.lock() {
            *model_path = path.to_string();
        }
        if !path.is_empty() {
            remember_recent(Path::new(path));
        }
        let started = Instant::now();
        while self.playing_generation() < generation && started.elapsed() < SWITCH_WAIT {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.collect_retired();
        let name = info.name;
        self.set_report(if self.playing_generation() >= generation {
            LoadReport::Playing(format!("now playing {name}"))
        } else {
            LoadReport::Playing(format!("{name} is loaded and plays when the host processes audio"))
        });
    }
}

/// Continuo's folder for the musician's own things: `models/` to choose from, `midi/` for saved
/// music, and the recent-models list. `CONTINUO_HOME` overrides it; otherwise the platform's
/// place for application data (`$XDG_DATA_HOME/continuo` or `~/.local/share/continuo` on Linux,
/// `~/Library/Application Support/Continuo` on macOS, `%APPDATA%\Continuo` on Windows).
pub fn user_folder() -> PathBuf {
    if let Some(home) = std::env::var_os("CONTINUO_HOME") {
        return PathBuf::from(home);
    }
    let env = |name| std::env::var_os(name).map(PathBuf::from);
    if cfg!(target_os = "windows") {
        return env("APPDATA").unwrap_or_default().join("Continuo");
    }
    let home = env("HOME").unwrap_or_default();
    if cfg!(target_os = "macos") {
        return home.join("Library/Application Support/Continuo");
    }
    env("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local/share")).join("continuo")
}

pub fn models_folder() -> PathBuf {
    user_folder().join("models")
}

/// The `.onnx` files in the user models folder, by name.
pub fn models_in_folder() -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(models_folder()) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x.eq_ignore_ascii_case("onnx")))
        .collect();
    found.sort();
    found
}

fn recent_file() -> PathBuf {
    user_folder().join("recent-models.txt")
}

/// Model files loaded lately, newest first, that still exist.
pub fn recent_models() -> Vec<PathBuf> {
    let text = std::fs::read_to_string(recent_file()).unwrap_or_default();
    text.lines().map(PathBuf::from).filter(|p| p.exists()).collect()
}

fn remember_recent(path: &Path) {
    let mut recent = recent_models();
    recent.retain(|p| p != path);
    recent.insert(0, path.to_path_buf());
    recent.truncate(RECENT_MODELS);
    let text: String = recent.iter().map(|p| format!("{}\n", p.display())).collect();
    // Remembering is a convenience: a read-only home folder must not fail a load.
    let _ = std::fs::create_dir_all(user_folder()).and_then(|_| std::fs::write(recent_file(), text));
}
