//! How a model comes to play: opened and given a player ([`open_player`], the one way, at
//! activation and in a switch), changed while the music plays ([`ModelSwitch`]), and the audio
//! thread's side of it ([`PlayingModel`]: the player playing, taking over a new one).
//!
//! A switch is asked for by the `Model` parameter changing (the window's list, or the host's
//! automation: the audio thread sees the change and posts a task) or by the window loading a
//! file. A background task opens the model (built in, or a file), checks it against the
//! contract, warms it, builds a whole
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

use crate::built_in::{self, ModelChoice, ModelSource};
use crate::monitor::Monitor;
use crate::params::ContinuoParams;
use crate::player::{OutputEvent, Player, PlayerSettings};
use crate::user_files;

/// How long a load waits for the audio thread to take the new player before it reports the
/// model as waiting for playback (a host that is not processing).
const SWITCH_WAIT: Duration = Duration::from_secs(2);

/// A player ready to take over, or (on the way back) the one it replaced.
pub struct Handover {
    pub player: Player,
    /// Where the model came from; what the project remembers.
    pub source: ModelSource,
    pub generation: u64,
}

/// A model that played or plays, as the editor shows it.
#[derive(Debug, Clone)]
pub struct ModelCard {
    pub info: ModelInfo,
    pub source: ModelSource,
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
    /// Models refused so far: the window acts once on each refusal.
    refusals: AtomicU64,
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
            refusals: AtomicU64::new(0),
        }
    }
}

impl ModelSwitch {
    /// Audio thread: the player to switch to, if one is ready.
    pub fn take_ready(&self) -> Option<Box<Handover>> {
        self.ready.pop()
    }

    /// Audio thread: puts the handed-over player in `player`'s place (and its source in `source`),
    /// marks its generation as playing, and sends the replaced player back, in the same box, to
    /// be dropped elsewhere. Allocates and frees nothing. Notes the replaced player still has
    /// sounding end in the new one's first block (the audio thread ends them before, at offset 0;
    /// at activation, they end in the first block).
    pub fn hand_over(&self, mut handover: Box<Handover>, player: &mut Player, source: &mut ModelSource) {
        handover.player.take_over_notes(player);
        std::mem::swap(player, &mut handover.player);
        std::mem::swap(source, &mut handover.source);
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

    /// How many models were refused so far.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Acquire)
    }

    fn set_report(&self, report: LoadReport) {
        if let Ok(mut r) = self.report.lock() {
            *r = Some(report);
        }
    }

    /// Records a player built outside a switch (at activation) as the one playing.
    pub fn register(&self, info: &ModelInfo, source: &ModelSource) -> u64 {
        let generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut cards) = self.cards.lock() {
            // Only the playing card and the one on its way are ever looked up.
            let playing = self.playing_generation();
            cards.retain(|c| c.generation >= playing);
            cards.push(ModelCard { info: info.clone(), source: source.clone(), generation });
        }
        generation
    }

    pub fn mark_playing(&self, generation: u64) {
        self.playing.store(generation, Ordering::Release);
    }

    /// Background task: switches to what the `Model` parameter and the project's model file
    /// ask for, unless that is what plays or is on its way (a burst of automation asks many
    /// times; the last word counts).
    pub fn switch_to_chosen(&self, params: &ContinuoParams, monitor: &Arc<Monitor>) {
        let source = params.model_source();
        // The last card registered is the player built last: playing, or on its way.
        let latest = self.cards.lock().ok().and_then(|cards| cards.last().map(|c| c.source.clone()));
        if latest.as_ref() == Some(&source) {
            return;
        }
        self.load(source, params, monitor);
    }

    /// Background task: opens the model, builds and primes a player with the current
    /// parameters, hands it to the audio thread and waits (briefly) for the switch. On success a
    /// file joins the recent list. A model that cannot be opened is refused with the reason,
    /// and the one playing plays on.
    pub fn load(&self, source: ModelSource, params: &ContinuoParams, monitor: &Arc<Monitor>) {
        self.set_report(LoadReport::Loading(source.to_string()));
        self.collect_retired();
        let player = match open_player(&source, &params.player_settings(), monitor) {
            Ok(player) => player,
            Err(error) => {
                self.set_report(LoadReport::Refused(error));
                self.refusals.fetch_add(1, Ordering::AcqRel);
                return;
            }
        };
        let info = player.model().info().clone();
        let generation = self.register(&info, &source);
        if let Some(path) = source.path() {
            user_files::remember_recent(Path::new(path));
        }
        let handover = Box::new(Handover { player, source, generation });
        // A player offered earlier and not yet taken (the host is not processing) is replaced.
        drop(self.ready.force_push(handover));

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

/// Opens a model, checks and warms it, and builds its player playing by `settings` (sampler,
/// output, listening, loop), its first beat generated: the one way a model comes to play, at
/// activation, in a switch, and in the tests. Errors are the engine's, naming the file.
pub fn open_player(
    source: &ModelSource,
    settings: &PlayerSettings,
    monitor: &Arc<Monitor>,
) -> Result<Player, String> {
    let model = match source {
        ModelSource::BuiltIn(choice) => {
            let built_in = choice.built_in().unwrap_or(built_in::DEFAULT);
            Model::load(built_in.bytes, &source.to_string())
        }
        ModelSource::File(path) if path.is_empty() => {
            return Err("no model file is chosen: load one in the window".to_string())
        }
        ModelSource::File(path) => Model::load_file(Path::new(path)),
    }
    .map_err(|e| e.to_string())?;
    let mut player = Player::new(model, *settings, monitor.clone()).map_err(|e| format!("{source}: {e}"))?;
    // Its music starts on the host's next beat, like any start, already generated.
    player.prime();
    Ok(player)
}

/// The chosen model, or the default built-in one when it cannot be opened, and then why, and
/// the source that plays (activation: a project whose model file has gone missing still
/// plays).
pub fn open_player_or_default(
    source: &ModelSource,
    settings: &PlayerSettings,
    monitor: &Arc<Monitor>,
) -> Result<(Player, ModelSource, Option<String>), String> {
    match open_player(source, settings, monitor) {
        Ok(player) => Ok((player, source.clone(), None)),
        Err(problem) => {
            let default = ModelSource::BuiltIn(built_in::DEFAULT.choice);
            if *source == default {
                return Err(problem);
            }
            let player = open_player(&default, settings, monitor)?;
            Ok((player, default.clone(), Some(format!("{problem}; playing {default} instead"))))
        }
    }
}

/// The audio thread's side of the models: the player that plays, where its model came from, and
/// the `Model` parameter as the audio thread last saw it (a change asks for a switch).
pub struct PlayingModel {
    pub player: Option<Player>,
    source: ModelSource,
    choice_seen: ModelChoice,
}

impl Default for PlayingModel {
    fn default() -> Self {
        PlayingModel {
            player: None,
            source: ModelSource::BuiltIn(built_in::DEFAULT.choice),
            choice_seen: built_in::DEFAULT.choice,
        }
    }
}

impl PlayingModel {
    /// Activation: a model switched to while the host was not processing takes over now; then
    /// the model the project names plays, opened now unless it plays already (activation
    /// repeats, at a new sample rate or buffer size, and reopens nothing then). A model that
    /// cannot be opened gives way to the default, and the problem is returned to be logged;
    /// an error means not even the default opens.
    pub fn activate(
        &mut self,
        switch: &ModelSwitch,
        params: &ContinuoParams,
        monitor: &Arc<Monitor>,
    ) -> Result<Option<String>, String> {
        if let Some(handover) = switch.take_ready() {
            // Deactivation ended the old player's notes.
            if let Some(player) = &mut self.player {
                switch.hand_over(handover, player, &mut self.source);
            }
            switch.collect_retired();
        }
        let source = params.model_source();
        self.choice_seen = params.model.value();
        if self.player.is_some() && self.source == source {
            return Ok(None);
        }
        let (mut player, playing, problem) =
            open_player_or_default(&source, &params.player_settings(), monitor)?;
        // The project's model replaces the one playing: that one's notes end in the first block.
        if let Some(old) = &self.player {
            player.take_over_notes(old);
        }
        let generation = switch.register(player.model().info(), &playing);
        switch.mark_playing(generation);
        self.player = Some(player);
        self.source = playing;
        Ok(problem)
    }

    /// Audio thread, at a block's start: a new model ready takes over (the notes of the one
    /// playing end first, then the new player plays on from this block; the old one goes back
    /// to be dropped off the audio thread). Returns whether the `Model` parameter changed since
    /// the last block, which asks the background task for a switch.
    pub fn begin_block(
        &mut self,
        switch: &ModelSwitch,
        choice: ModelChoice,
        emit: &mut impl FnMut(OutputEvent),
    ) -> bool {
        let asks_for_another = choice != self.choice_seen;
        self.choice_seen = choice;
        if let Some(player) = &mut self.player {
            if let Some(handover) = switch.take_ready() {
                player.all_notes_off(0, emit);
                switch.hand_over(handover, player, &mut self.source);
            }
        }
        asks_for_another
    }
}
