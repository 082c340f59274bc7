//! How a model comes to play: opened and given a player ([`open_player`], the one way, at
//! activation and in a switch), and changed while the music plays ([`ModelSwitch`]).
//!
//! A background task loads the file, checks it against the contract, warms it, builds a whole
//! [`Player`] around it and generates its first beat. The audio thread receives that player
//! through a lock-free queue ([`ModelSwitch`]), at the start of a block: it ends the notes the old
//! player has sounding and plays on with the new one from that block, whose music starts on the
//! host's next beat. The old player goes back
//! through a second queue and is dropped by the background task, never on the audio thread. A
//! file that fails anywhere on the way is refused with the engine's message and changes nothing.
//! Where the musician's files are is [`crate::user_files`]'s.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use continuo_engine::model::{Model, ModelInfo};
use crossbeam::queue::ArrayQueue;

use crate::monitor::Monitor;
use crate::params::ContinuoParams;
use crate::player::Player;
use crate::user_files;
use crate::{DEFAULT_MODEL, DEFAULT_MODEL_NAME};

/// How long a load waits for the audio thread to take the new player before it reports the
/// model as waiting for playback (a host that is not processing).
const SWITCH_WAIT: Duration = Duration::from_secs(2);

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
        let mut player = match open_player(path, params, monitor) {
            Ok(player) => player,
            Err(error) => return self.set_report(LoadReport::Refused(error)),
        };
        let info = player.model().info().clone();
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
            user_files::remember_recent(Path::new(path));
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

/// Opens the model at `path` ("" for the embedded one), checks and warms it, and builds its
/// player with the parameters as they stand (sampler, output, listening, loop): the one way a
/// model comes to play, at activation and in a switch. Errors are the engine's, naming the
/// file.
pub fn open_player(path: &str, params: &ContinuoParams, monitor: &Arc<Monitor>) -> Result<Player, String> {
    let model = if path.is_empty() {
        Model::load(DEFAULT_MODEL, DEFAULT_MODEL_NAME)
    } else {
        Model::load_file(Path::new(path))
    }
    .map_err(|e| e.to_string())?;
    let settings = (params.generator_settings(), params.output_settings());
    let mut player = Player::new(model, settings.0, settings.1, monitor.clone())
        .map_err(|e| format!("{}: {e}", if path.is_empty() { DEFAULT_MODEL_NAME } else { path }))?;
    player.set_listening(params.listen_settings(), &mut |_| {});
    player.set_loop(params.loop_bars(), &mut |_| {});
    Ok(player)
}

/// The project's model, or the embedded one when none is set or it cannot be opened, and then
/// why (activation: a project whose model file has gone missing still plays).
pub fn open_player_or_default(
    path: &str,
    params: &ContinuoParams,
    monitor: &Arc<Monitor>,
) -> Result<(Player, Option<String>), String> {
    match open_player(path, params, monitor) {
        Ok(player) => Ok((player, None)),
        Err(problem) if !path.is_empty() => {
            let player = open_player("", params, monitor)?;
            Ok((player, Some(format!("{problem}; playing the {DEFAULT_MODEL_NAME} instead"))))
        }
        Err(problem) => Err(problem),
    }
}
