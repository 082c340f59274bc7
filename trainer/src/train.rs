//! `train`: token shards -> checkpoints of the network.
//!
//! Owns the run folder (config, checkpoints, metrics, plot), the configuration with its
//! defaults, the learning-rate schedule and the loop: random windows, cross-entropy, AdamW with
//! clipping, validation every N steps, the best checkpoint kept, Ctrl-C saving a usable one.
//! The network is [`crate::net`], the optimizer [`crate::optim`], the data [`crate::dataset`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use continuo_engine::harmony::HarmonyInput;
use continuo_engine::midi::Role;
use continuo_engine::model::ModelShape;
use continuo_engine::sampler::Rng;
use continuo_engine::vocab::VOCAB_SIZE;
use serde::{Deserialize, Serialize};

use crate::dataset::{Heard, Index, Split, TokenStream, Transposition};
use crate::net::{harmony_numbers, Dropout, LstmNet};
use crate::optim::AdamW;
use crate::{cpu, plot, progress};

/// Train a model on a prepared dataset.
///
/// Starts a run in --out, or continues one with --resume RUN (the optimizer's moments, the step
/// and the data order continue exactly; give --steps to train further, and any other setting to
/// change it from there). Every --eval-every steps it measures the validation loss, keeps the
/// best weights (best.safetensors), saves a checkpoint to resume from, and appends to
/// metrics.csv and loss.svg. Ctrl-C saves a checkpoint and stops.
///
/// The run folder alone is enough to resume or export: it holds config.json (every setting
/// below) and vocab.json.
#[derive(clap::Args)]
pub struct Args {
    /// The dataset folder written by `prepare` (taken from the run when resuming).
    pub dataset: Option<PathBuf>,
    /// The run folder to create.
    #[arg(long, required_unless_present = "resume", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    #[command(flatten)]
    pub config: TrainConfig,
}

/// Every setting of a run, each declared once here with its default and its manual: the
/// command line, config.json (so a run folder alone can resume or export), the resume override
/// and the command `export` records all come from this struct.
#[derive(clap::Args, Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    /// Set from DATASET, not a flag.
    #[arg(skip)]
    pub dataset: PathBuf,
    /// LSTM layers.
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// LSTM hidden size.
    #[arg(long, default_value_t = 256)]
    pub hidden: usize,
    /// Token embedding size.
    #[arg(long, default_value_t = 128)]
    pub embed: usize,
    /// Size of the dense layer before the output [default: the hidden size]
    #[arg(long)]
    pub dense: Option<usize>,
    /// Tokens per training window (truncated backpropagation length).
    #[arg(long, default_value_t = 128)]
    pub seq: usize,
    /// Windows per step.
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Total optimizer steps of the run.
    #[arg(long, default_value_t = 2000)]
    pub steps: u64,
    /// Peak learning rate, reached after warm-up, then cosine decay to --min-lr.
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Learning rate at the last step [default: lr / 10]
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Steps of linear warm-up.
    #[arg(long, default_value_t = 100)]
    pub warmup: u64,
    /// AdamW weight decay, on matrices only.
    #[arg(long, default_value_t = 0.01)]
    pub weight_decay: f64,
    /// Clip the global gradient norm to this.
    #[arg(long, default_value_t = 1.0)]
    pub clip: f64,
    /// Dropout rate of each LSTM layer's output in training (0: none).
    #[arg(long, default_value_t = 0.0)]
    #[serde(default)]
    pub dropout: f64,
    /// Transpose each window by up to this many semitones either way (with --keys all; never
    /// a drum dataset's, whose pitches are kit pieces).
    #[arg(long, default_value_t = 5)]
    pub transpose: i32,
    /// Which keys training windows are transposed into: `all`, a random shift within
    /// --transpose; `as-written`, the key of a random song of the dataset as it was written, so
    /// the model plays in the keys the music uses, as often (needs a dataset prepared with
    /// --same-key, whose songs remember their key).
    #[arg(long, value_enum, default_value_t = Keys::All)]
    #[serde(default)]
    pub keys: Keys,
    /// Measure validation loss and save every this many steps.
    #[arg(long, default_value_t = 100)]
    pub eval_every: u64,
    /// Validation tokens measured each time.
    #[arg(long, default_value_t = 32768)]
    pub eval_tokens: usize,
    /// Seed for initial weights and data order.
    #[arg(long, default_value_t = 1337)]
    pub seed: u64,
    /// CPU threads for the math: the fused LSTM runs a group of the batch's windows on each
    /// (the README's "Training speed" measures 1 against 2).
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// How the model hears the harmony of a part prepared against the others (`prepare
    /// --against`): `pitch-classes` (12 numbers, each pitch class held),
    /// `pitch-classes-and-bass` (24: also the lowest held note's) or `pitch-classes-and-meter`
    /// (22: also where the clock stands in the 4/4 bar, for music whose harmony does not mark
    /// the beat: a band's bass and comping; prepare it with `--meter 4/4`) [default with such a
    /// dataset: pitch-classes, which played the chorales better; see the continuo bass's and
    /// the groove bass's cards]. Refused for a dataset without harmony.
    #[arg(long, value_parser = parse_harmony_input)]
    #[serde(default)]
    pub harmony: Option<HarmonyInput>,
}

fn parse_harmony_input(id: &str) -> Result<HarmonyInput, String> {
    HarmonyInput::from_id(id).ok_or_else(|| {
        let known: Vec<&str> = HarmonyInput::ALL.iter().map(|i| i.id()).collect();
        format!("'{id}' is not one of {}", known.join(", "))
    })
}

/// What a model of a dataset with harmony hears when `--harmony` is not given.
pub const DEFAULT_HARMONY_INPUT: HarmonyInput = HarmonyInput::PitchClasses;

impl TrainConfig {
    /// The dense layer's size: as given, else the hidden size.
    pub fn dense(&self) -> usize {
        self.dense.unwrap_or(self.hidden)
    }

    fn transposition(&self) -> Transposition {
        match self.keys {
            Keys::All => Transposition::Within(self.transpose),
            Keys::AsWritten => Transposition::IntoTheDatasKeys,
        }
    }

    /// The dropout of a training step, None when the rate is 0.
    pub fn dropout_at(&self, step: u64) -> Option<Dropout> {
        (self.dropout > 0.0).then(|| Dropout {
            rate: self.dropout,
            seed: self.seed ^ (step + 1).wrapping_mul(0x2545_F491_4F6C_DD1D),
        })
    }

    /// The last step's learning rate: as given, else a tenth of the peak.
    pub fn min_lr(&self) -> f64 {
        self.min_lr.unwrap_or(self.lr / 10.0)
    }

    /// A saved run's settings with those given on this command line (`given`, parsed from
    /// `matches`) put over them: resuming changes only what is asked.
    fn resumed(saved: &TrainConfig, given: &TrainConfig, matches: &clap::ArgMatches) -> Result<TrainConfig> {
        let mut merged = serde_json::to_value(saved)?;
        let given = serde_json::to_value(given)?;
        for (name, value) in given.as_object().context("a config is a JSON object")? {
            let from_command_line =
                matches.try_get_raw(name).ok().flatten().is_some_and(|_| {
                    matches.value_source(name) == Some(clap::parser::ValueSource::CommandLine)
                });
            if from_command_line {
                merged[name] = value.clone();
            }
        }
        Ok(serde_json::from_value(merged)?)
    }

    /// The command that makes this run again, every setting spelled out (what `export` records).
    pub fn command(&self) -> Result<String> {
        let mut command = format!("continuo-train train {} --out RUN", self.dataset.display());
        let value = serde_json::to_value(self)?;
        for (name, value) in value.as_object().context("a config is a JSON object")? {
            if name == "dataset" || value.is_null() {
                continue;
            }
            // A string (an enum's name) as the flag takes it, without JSON's quotes.
            let value = value.as_str().map_or_else(|| value.to_string(), str::to_string);
            command.push_str(&format!(" --{} {value}", name.replace('_', "-")));
        }
        Ok(command)
    }

    pub fn shape(&self) -> ModelShape {
        ModelShape {
            layers: self.layers,
            hidden: self.hidden,
            embed: self.embed,
            dense: self.dense(),
            vocab: VOCAB_SIZE as usize,
            harmony: self.harmony,
        }
    }

    /// Linear warm-up to `lr`, then cosine decay to `min_lr` at the last step.
    pub fn learning_rate(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let progress = (step - self.warmup) as f64 / (self.steps.saturating_sub(self.warmup)).max(1) as f64;
        let (lr, min_lr) = (self.lr, self.min_lr());
        min_lr + 0.5 * (lr - min_lr) * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
    }

    fn check(&self) -> Result<()> {
        let sizes = [self.layers, self.hidden, self.embed, self.dense(), self.seq, self.batch, self.threads];
        if sizes.contains(&0) || self.eval_every == 0 || self.steps == 0 {
            bail!("layers, hidden, embed, dense, seq, batch, steps, eval-every and threads must all be at least 1");
        }
        if !(0.0..1.0).contains(&self.dropout) {
            bail!("--dropout must be at least 0 and below 1, not {}", self.dropout);
        }
        if !(self.lr > 0.0 && self.min_lr() >= 0.0 && self.min_lr() <= self.lr) {
            bail!("need 0 <= --min-lr <= --lr and --lr > 0 (got {} and {})", self.min_lr(), self.lr);
        }
        Ok(())
    }
}

/// `--keys`: which keys the training windows are transposed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Keys {
    #[default]
    All,
    AsWritten,
}

impl std::fmt::Display for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Keys::All => "all",
            Keys::AsWritten => "as-written",
        })
    }
}

/// Where a run stands; saved with every checkpoint.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunState {
    pub step: u64,
    pub tokens_seen: u64,
    pub seconds: f64,
    pub train_loss: Option<f64>,
    pub val_loss: Option<f64>,
    pub best_val_loss: Option<f64>,
    pub best_step: u64,
    /// Whether validation was measured on training windows (the dataset had no validation files).
    pub val_from_train: bool,
}

/// What a run learned from, for the model card and the exported metadata.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetSummary {
    /// The dataset folder's name.
    pub name: String,
    pub role: Role,
    pub train_files: usize,
    pub train_tokens: u64,
    pub val_files: usize,
    pub val_tokens: u64,
    /// How many notes the music sounds at once (the dataset's `voices`), if it says.
    #[serde(default)]
    pub voices: Option<u8>,
}

/// The files of a run folder.
pub struct RunFiles {
    pub dir: PathBuf,
}

impl RunFiles {
    pub fn config(&self) -> PathBuf {
        self.dir.join("config.json")
    }
    pub fn vocab(&self) -> PathBuf {
        self.dir.join("vocab.json")
    }
    pub fn dataset(&self) -> PathBuf {
        self.dir.join("dataset.json")
    }
    pub fn checkpoint(&self) -> PathBuf {
        self.dir.join("checkpoint.safetensors")
    }
    pub fn optimizer(&self) -> PathBuf {
        self.dir.join("optimizer.safetensors")
    }
    pub fn state(&self) -> PathBuf {
        self.dir.join("state.json")
    }
    pub fn best(&self) -> PathBuf {
        self.dir.join("best.safetensors")
    }
    pub fn best_state(&self) -> PathBuf {
        self.dir.join("best.json")
    }
    pub fn metrics(&self) -> PathBuf {
        self.dir.join("metrics.csv")
    }
    pub fn plot(&self) -> PathBuf {
        self.dir.join("loss.svg")
    }

    pub fn load_config(&self) -> Result<TrainConfig> {
        let path = self.config();
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!("{}: cannot read the run's config (is this a run folder?)", path.display())
        })?;
        serde_json::from_str(&text).with_context(|| format!("{}: not a run config", path.display()))
    }

    /// Writes what the run is: its settings, vocabulary and what it learns from.
    fn write_setup(&self, config: &TrainConfig, data: &Data) -> Result<()> {
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("{}: cannot create the run folder", self.dir.display()))?;
        save_json(&self.config(), config)?;
        save_json(&self.vocab(), &data.vocab)?;
        let name = config.dataset.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        save_json(
            &self.dataset(),
            &DatasetSummary {
                name,
                role: data.role,
                train_files: data.train.documents,
                train_tokens: data.train.len() as u64,
                val_files: data.val.documents,
                val_tokens: data.val.len() as u64,
                voices: data.voices,
            },
        )
    }

    fn start_metrics(&self) -> Result<()> {
        std::fs::write(
            self.metrics(),
            "step,train_loss,val_loss,learning_rate,grad_norm,tokens_per_second,seconds\n",
        )
        .with_context(|| format!("{}: cannot write", self.metrics().display()))
    }

    /// A resumed run's weights, optimizer moments and state.
    fn restore(
        &self,
        config: &TrainConfig,
        varmap: &mut VarMap,
        optimizer: &mut AdamW,
        device: &Device,
    ) -> Result<RunState> {
        varmap
            .load(self.checkpoint())
            .with_context(|| format!("{}: cannot read the checkpoint", self.checkpoint().display()))?;
        optimizer.load(&self.optimizer(), device)?;
        let state: RunState = self.load_json(&self.state())?;
        if state.step >= config.steps {
            bail!(
                "{}: already trained {} of {} steps; give a larger --steps to continue",
                self.dir.display(),
                state.step,
                config.steps
            );
        }
        Ok(state)
    }

    /// After an evaluation: the best weights if they are, the checkpoint to resume from, the
    /// state, a metrics row and the plot.
    fn save_checkpoint(
        &self,
        config: &TrainConfig,
        varmap: &VarMap,
        optimizer: &AdamW,
        state: &mut RunState,
        interval: &Interval,
        grad_norm: f64,
    ) -> Result<()> {
        let val_loss = state.val_loss.unwrap_or(f64::NAN);
        if state.best_val_loss.is_none_or(|best| val_loss < best) {
            state.best_val_loss = state.val_loss;
            state.best_step = state.step;
            write_atomic(&self.best(), |tmp| Ok(varmap.save(tmp)?))?;
            save_json(&self.best_state(), state)?;
        }
        write_atomic(&self.checkpoint(), |tmp| Ok(varmap.save(tmp)?))?;
        write_atomic(&self.optimizer(), |tmp| optimizer.save(tmp))?;
        save_json(&self.state(), state)?;
        let mut metrics = std::fs::OpenOptions::new().append(true).open(self.metrics())?;
        writeln!(
            metrics,
            "{},{:.5},{:.5},{:.6e},{:.4},{:.1},{:.1}",
            state.step,
            state.train_loss.unwrap_or(f64::NAN),
            val_loss,
            config.learning_rate(state.step - 1),
            grad_norm,
            interval.tokens_per_second(),
            state.seconds
        )?;
        plot::loss_curves(&self.metrics(), &self.plot())
    }

    pub fn load_json<T: for<'de> Deserialize<'de>>(&self, path: &Path) -> Result<T> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("{}: cannot read", path.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{}: cannot parse", path.display()))
    }
}

/// Writes through a temporary file and a rename, so an interruption never leaves half a file.
pub fn write_atomic(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension("partial");
    write(&tmp)?;
    std::fs::rename(&tmp, path).with_context(|| format!("{}: cannot write", path.display()))
}

fn save_json(path: &Path, value: &impl Serialize) -> Result<()> {
    write_atomic(path, |tmp| {
        std::fs::write(tmp, serde_json::to_string_pretty(value)?)
            .with_context(|| format!("{}: cannot write", tmp.display()))
    })
}

static STOP: AtomicBool = AtomicBool::new(false);

pub fn run(args: Args, matches: &clap::ArgMatches) -> Result<()> {
    train(args, matches, true).map(|_| ())
}

/// Runs training; returns the final state. `matches` tells which settings the command line
/// gave (a resume changes only those); `show_progress` draws a bar on a terminal.
pub fn train(args: Args, matches: &clap::ArgMatches, show_progress: bool) -> Result<RunState> {
    let (files, mut config, resuming) = open_run(args, matches)?;
    // candle reads the thread count from the environment on every matmul.
    std::env::set_var("RAYON_NUM_THREADS", config.threads.to_string());
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
    STOP.store(false, Ordering::SeqCst);
    let data = Data::load(&config)?;
    match (data.train.has_harmony(), config.harmony) {
        (true, None) => config.harmony = Some(DEFAULT_HARMONY_INPUT),
        (false, Some(_)) => bail!(
            "{}: --harmony needs a dataset prepared against the other parts (`prepare --against`)",
            config.dataset.display()
        ),
        _ => {}
    }
    files.write_setup(&config, &data)?;

    // The first GPU when built with `--features cuda` and one is there (the network then runs
    // candle's ops step by step, see `net`), else the CPU and the fused kernels.
    let device = Device::cuda_if_available(0)?;
    let mut varmap = VarMap::new();
    let net = LstmNet::new(config.shape(), &varmap, &device, config.seed, config.threads)?;
    let mut optimizer = AdamW::new(&varmap, config.weight_decay)?;
    let mut state = if resuming {
        files.restore(&config, &mut varmap, &mut optimizer, &device)?
    } else {
        files.start_metrics()?;
        RunState { val_from_train: data.val_from_train, ..Default::default() }
    };
    announce(&files, &config, &data);
    let sgemm = cpu::measured_sgemm_flops(config.threads);
    println!(
        "sgemm on this machine: {:.1} GFLOP/s with {} thread{} (measured; the share of it the training reaches is logged)",
        sgemm / 1e9,
        config.threads,
        if config.threads == 1 { "" } else { "s" }
    );

    let bar =
        if show_progress { progress::bar(config.steps, "steps") } else { indicatif::ProgressBar::hidden() };
    bar.set_position(state.step);
    let mut interval = Interval::new(state.seconds);
    while state.step < config.steps {
        let started = Instant::now();
        let (batch, harmony) = data.batch(&config, state.step, &device)?;
        let loss = net.loss(&batch, harmony.as_ref(), config.dropout_at(state.step))?;
        let grad_norm = optimizer.step(&loss.backward()?, config.learning_rate(state.step), config.clip)?;
        let loss = loss.to_scalar::<f32>()? as f64;
        state.step += 1;
        state.tokens_seen += (config.batch * config.seq) as u64;
        interval.add(loss, config.batch * config.seq, started.elapsed());
        bar.inc(1);
        bar.set_message(format!(
            "loss {:.3} {:.0} tok/s",
            interval.mean_loss(),
            interval.tokens_per_second()
        ));

        let stopping = STOP.load(Ordering::SeqCst);
        if state.step.is_multiple_of(config.eval_every) || state.step == config.steps || stopping {
            state.train_loss = Some(interval.mean_loss());
            state.val_loss =
                Some(validation_loss(&net, &data.val_windows, config.harmony, config.batch, &device)?);
            state.seconds = interval.run_seconds();
            progress::log(&bar, interval.log_line(&config, &state, grad_norm, sgemm));
            files.save_checkpoint(&config, &varmap, &optimizer, &mut state, &interval, grad_norm)?;
            interval.restart();
        }
        if stopping {
            let message = format!(
                "interrupted: checkpoint saved at step {}; continue with --resume {}",
                state.step,
                files.dir.display()
            );
            progress::log(&bar, message);
            break;
        }
    }
    bar.finish_and_clear();
    println!(
        "done: step {}, best validation loss {:.4} at step {} (best.safetensors), {} tokens in {}",
        state.step,
        state.best_val_loss.unwrap_or(f64::NAN),
        state.best_step,
        state.tokens_seen,
        progress::duration(state.seconds)
    );
    println!("  metrics {}  plot {}", files.metrics().display(), files.plot().display());
    Ok(state)
}

/// The run folder and its settings: a new run's from the command line, or a saved run's with
/// the command line's changes, checked.
fn open_run(args: Args, matches: &clap::ArgMatches) -> Result<(RunFiles, TrainConfig, bool)> {
    let (files, config, resuming) = match &args.resume {
        Some(dir) => {
            let files = RunFiles { dir: dir.clone() };
            let saved = files.load_config()?;
            let mut config = TrainConfig::resumed(&saved, &args.config, matches)?;
            config.dataset = args.dataset.clone().unwrap_or(saved.dataset.clone());
            if config.shape() != saved.shape() {
                bail!(
                    "{}: the network's sizes cannot change when resuming ({:?} was {:?})",
                    files.dir.display(),
                    config.shape(),
                    saved.shape()
                );
            }
            (files, config, true)
        }
        None => {
            let dataset =
                args.dataset.clone().context("give the DATASET folder to train on (made by `prepare`)")?;
            let dir = args.out.clone().expect("clap requires --out without --resume");
            if dir.join("config.json").exists() {
                bail!(
                    "{}: already holds a run; continue it with --resume {0} or choose another --out",
                    dir.display()
                );
            }
            (RunFiles { dir }, TrainConfig { dataset, ..args.config }, false)
        }
    };
    config.check()?;
    Ok((files, config, resuming))
}

/// What a run reads: the token streams and the fixed validation windows.
struct Data {
    train: TokenStream,
    val: TokenStream,
    role: Role,
    vocab: continuo_engine::vocab::VocabSpec,
    /// The dataset has no validation files: validation is measured on training windows.
    val_from_train: bool,
    voices: Option<u8>,
    /// Windows of tokens and what their inputs are heard with (empty without a harmony).
    val_windows: Vec<(Vec<u32>, Vec<Heard>)>,
}

impl Data {
    fn load(config: &TrainConfig) -> Result<Data> {
        let index = Index::load(&config.dataset)?;
        let train = TokenStream::load(&config.dataset, &index, Split::Train)?;
        let val = TokenStream::load(&config.dataset, &index, Split::Val)?;
        if train.len() < config.seq + 1 {
            bail!(
                "{}: {} training tokens, fewer than one window of {} (+1); add files or lower --seq",
                config.dataset.display(),
                train.len(),
                config.seq
            );
        }
        if config.keys == Keys::AsWritten && !train.is_in_one_key() {
            bail!(
                "{}: --keys as-written needs a dataset prepared with --same-key (its songs remember their keys)",
                config.dataset.display()
            );
        }
        let val_from_train = val.len() < config.seq + 1;
        let val_windows =
            if val_from_train { &train } else { &val }.fixed_windows(config.seq, config.eval_tokens);
        Ok(Data {
            train,
            val,
            role: index.role,
            vocab: index.vocab,
            val_from_train,
            val_windows,
            voices: index.voices,
        })
    }

    /// A step's batch of random windows, and the harmony of their inputs for a model that hears
    /// it. It depends only on the seed and the step, so a resumed run reads the same windows an
    /// uninterrupted one would.
    fn batch(&self, config: &TrainConfig, step: u64, device: &Device) -> Result<(Tensor, Option<Tensor>)> {
        let mut rng = Rng::new(config.seed ^ (step + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut ids = Vec::with_capacity(config.batch * (config.seq + 1));
        let mut window = Vec::with_capacity(config.seq + 1);
        let (mut harmony, mut window_harmony) = (Vec::new(), Vec::with_capacity(config.seq));
        // A drum's pitch is its kit piece: moved, a kick would become a snare.
        let transposition = match self.role {
            Role::Melodic => config.transposition(),
            Role::Drums => Transposition::Within(0),
        };
        for _ in 0..config.batch {
            self.train.random_window(config.seq, transposition, &mut rng, &mut window, &mut window_harmony);
            ids.extend_from_slice(&window);
            harmony.extend_from_slice(&window_harmony);
        }
        let harmony =
            config.harmony.map(|input| harmony_numbers(&harmony, config.batch, input, device)).transpose()?;
        Ok((Tensor::from_slice(&ids, (config.batch, config.seq + 1), device)?, harmony))
    }
}

fn announce(files: &RunFiles, config: &TrainConfig, data: &Data) {
    let shape = config.shape();
    println!(
        "training {}: {} x {} LSTM, {} parameters, on {} training tokens ({} files){}",
        files.dir.display(),
        shape.layers,
        shape.hidden,
        shape.parameter_count(),
        data.train.len(),
        data.train.documents,
        if data.val_from_train {
            "; no validation files: validation is measured on training windows"
        } else {
            ""
        }
    );
}

/// Training loss and speed since the last evaluation. The speed counts the time of the
/// training steps only: validation and checkpoints are not training throughput.
struct Interval {
    loss_sum: f64,
    losses: u64,
    tokens: u64,
    stepping: Duration,
    run_started: Instant,
}

impl Interval {
    /// `seconds` already trained (a resumed run).
    fn new(seconds: f64) -> Interval {
        Interval {
            loss_sum: 0.0,
            losses: 0,
            tokens: 0,
            stepping: Duration::ZERO,
            run_started: Instant::now() - Duration::from_secs_f64(seconds),
        }
    }

    /// A step of `tokens` that took `took` and had this loss.
    fn add(&mut self, loss: f64, tokens: usize, took: Duration) {
        self.loss_sum += loss;
        self.losses += 1;
        self.tokens += tokens as u64;
        self.stepping += took;
    }

    fn mean_loss(&self) -> f64 {
        self.loss_sum / self.losses.max(1) as f64
    }

    fn tokens_per_second(&self) -> f64 {
        self.tokens as f64 / self.stepping.as_secs_f64().max(1e-9)
    }

    fn run_seconds(&self) -> f64 {
        self.run_started.elapsed().as_secs_f64()
    }

    fn restart(&mut self) {
        *self = Interval { run_started: self.run_started, ..Interval::new(0.0) };
    }

    fn log_line(&self, config: &TrainConfig, state: &RunState, grad_norm: f64, sgemm: f64) -> String {
        format!(
            "step {:>6}  train {:.4}  val {:.4}  lr {:.2e}  |g| {:.2}  {:.0} tok/s ({:.0}% of sgemm)  {}",
            state.step,
            state.train_loss.unwrap_or(f64::NAN),
            state.val_loss.unwrap_or(f64::NAN),
            config.learning_rate(state.step - 1),
            grad_norm,
            self.tokens_per_second(),
            100.0 * model_flops_per_token(&config.shape()) * self.tokens_per_second() / sgemm,
            progress::duration(state.seconds)
        )
    }
}

/// What training a token costs in floating-point operations, the usual way: 6 per weight
/// (2 forward, 4 backward), the embedding left out since it is looked up, not multiplied.
pub fn model_flops_per_token(shape: &ModelShape) -> f64 {
    6.0 * (shape.parameter_count() - shape.vocab * shape.embed) as f64
}

/// Mean cross-entropy over the fixed validation windows (with their inputs' harmony, heard as
/// `harmony` says), in batches.
pub fn validation_loss(
    net: &LstmNet,
    windows: &[(Vec<u32>, Vec<Heard>)],
    harmony: Option<HarmonyInput>,
    batch: usize,
    device: &Device,
) -> Result<f64> {
    let (mut total, mut count) = (0.0f64, 0usize);
    for chunk in windows.chunks(batch) {
        let span = chunk[0].0.len();
        let ids: Vec<u32> = chunk.iter().flat_map(|(w, _)| w).copied().collect();
        let tensor = Tensor::from_slice(&ids, (chunk.len(), span), device)?;
        let packed: Vec<Heard> = chunk.iter().flat_map(|(_, h)| h).copied().collect();
        let heard = harmony.map(|input| harmony_numbers(&packed, chunk.len(), input, device)).transpose()?;
        total += net.loss(&tensor, heard.as_ref(), None)?.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        count += chunk.len();
    }
    Ok(total / count.max(1) as f64)
}
