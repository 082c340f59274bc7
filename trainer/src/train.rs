//! `train`: token shards -> checkpoints of the network.
//!
//! Owns the run folder (config, checkpoints, metrics, plot), the configuration with its
//! defaults, the learning-rate schedule and the loop: random windows, cross-entropy, AdamW with
//! clipping, validation every N steps, the best checkpoint kept, Ctrl-C saving a usable one.
//! The network is [`crate::net`], the optimizer [`crate::optim`], the data [`crate::dataset`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use continuo_engine::midi::Role;
use continuo_engine::model::ModelShape;
use continuo_engine::sampler::Rng;
use continuo_engine::vocab::VOCAB_SIZE;
use serde::{Deserialize, Serialize};

use crate::dataset::{Index, Split, TokenStream};
use crate::net::LstmNet;
use crate::optim::AdamW;
use crate::{plot, progress};

/// Train a model on a prepared dataset.
///
/// Starts a run in --out, or continues one with --resume RUN (the optimizer's moments, the step
/// and the data order continue exactly; give --steps to train further). Every --eval-every steps
/// it measures the validation loss, keeps the best weights (best.safetensors), saves a checkpoint
/// to resume from, and appends to metrics.csv and loss.svg. Ctrl-C saves a checkpoint and stops.
///
/// The run folder alone is enough to resume or export: it holds config.json (every setting
/// below) and vocab.json.
#[derive(clap::Args, Default)]
pub struct Args {
    /// The dataset folder written by `prepare` (taken from the run when resuming).
    pub dataset: Option<PathBuf>,
    /// The run folder to create.
    #[arg(long, required_unless_present = "resume", conflicts_with = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// LSTM layers [default: 2]
    #[arg(long)]
    pub layers: Option<usize>,
    /// LSTM hidden size [default: 256]
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Token embedding size [default: 128]
    #[arg(long)]
    pub embed: Option<usize>,
    /// Size of the dense layer before the output [default: the hidden size]
    #[arg(long)]
    pub dense: Option<usize>,
    /// Tokens per training window (truncated backpropagation length) [default: 128]
    #[arg(long)]
    pub seq: Option<usize>,
    /// Windows per step [default: 32]
    #[arg(long)]
    pub batch: Option<usize>,
    /// Total optimizer steps of the run [default: 2000]
    #[arg(long)]
    pub steps: Option<u64>,
    /// Peak learning rate, reached after warm-up, then cosine decay to --min-lr [default: 0.003]
    #[arg(long)]
    pub lr: Option<f64>,
    /// Learning rate at the last step [default: lr / 10]
    #[arg(long)]
    pub min_lr: Option<f64>,
    /// Steps of linear warm-up [default: 100]
    #[arg(long)]
    pub warmup: Option<u64>,
    /// AdamW weight decay, on matrices only [default: 0.01]
    #[arg(long)]
    pub weight_decay: Option<f64>,
    /// Clip the global gradient norm to this [default: 1.0]
    #[arg(long)]
    pub clip: Option<f64>,
    /// Transpose each window by up to this many semitones either way [default: 5]
    #[arg(long)]
    pub transpose: Option<i32>,
    /// Measure validation loss and save every this many steps [default: 100]
    #[arg(long)]
    pub eval_every: Option<u64>,
    /// Validation tokens measured each time [default: 32768]
    #[arg(long)]
    pub eval_tokens: Option<usize>,
    /// Seed for initial weights and data order [default: 1337]
    #[arg(long)]
    pub seed: Option<u64>,
    /// CPU threads for the math. On the 2-core machine this was measured on, 1 thread was
    /// faster than 2 (see docs/ARCHITECTURE.md) [default: 1]
    #[arg(long)]
    pub threads: Option<usize>,
}

/// Every setting of a run; saved as config.json so a run folder alone can resume or export.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub dataset: PathBuf,
    pub layers: usize,
    pub hidden: usize,
    pub embed: usize,
    pub dense: usize,
    pub seq: usize,
    pub batch: usize,
    pub steps: u64,
    pub lr: f64,
    pub min_lr: f64,
    pub warmup: u64,
    pub weight_decay: f64,
    pub clip: f64,
    pub transpose: i32,
    pub eval_every: u64,
    pub eval_tokens: usize,
    pub seed: u64,
    pub threads: usize,
}

impl TrainConfig {
    fn defaults(dataset: PathBuf) -> TrainConfig {
        TrainConfig {
            dataset,
            layers: 2,
            hidden: 256,
            embed: 128,
            dense: 256,
            seq: 128,
            batch: 32,
            steps: 2000,
            lr: 3e-3,
            min_lr: 3e-4,
            warmup: 100,
            weight_decay: 0.01,
            clip: 1.0,
            transpose: 5,
            eval_every: 100,
            eval_tokens: 32768,
            seed: 1337,
            threads: 1,
        }
    }

    /// Applies the options given on the command line.
    fn apply(&mut self, args: &Args) {
        macro_rules! set {
            ($($field:ident),*) => { $(if let Some(v) = args.$field.clone() { self.$field = v; })* };
        }
        set!(
            layers,
            hidden,
            embed,
            seq,
            batch,
            steps,
            warmup,
            weight_decay,
            clip,
            transpose,
            eval_every,
            eval_tokens,
            seed,
            threads
        );
        if let Some(lr) = args.lr {
            self.lr = lr;
            self.min_lr = lr / 10.0;
        }
        set!(min_lr, dense);
        if args.dense.is_none() && args.hidden.is_some() {
            self.dense = self.hidden;
        }
    }

    pub fn shape(&self) -> ModelShape {
        ModelShape {
            layers: self.layers,
            hidden: self.hidden,
            embed: self.embed,
            dense: self.dense,
            vocab: VOCAB_SIZE as usize,
        }
    }

    /// Linear warm-up to `lr`, then cosine decay to `min_lr` at the last step.
    pub fn learning_rate(&self, step: u64) -> f64 {
        if step < self.warmup {
            return self.lr * (step + 1) as f64 / self.warmup as f64;
        }
        let progress = (step - self.warmup) as f64 / (self.steps.saturating_sub(self.warmup)).max(1) as f64;
        self.min_lr + 0.5 * (self.lr - self.min_lr) * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos())
    }

    fn check(&self) -> Result<()> {
        let sizes = [self.layers, self.hidden, self.embed, self.dense, self.seq, self.batch, self.threads];
        if sizes.contains(&0) || self.eval_every == 0 || self.steps == 0 {
            bail!("layers, hidden, embed, dense, seq, batch, steps, eval-every and threads must all be at least 1");
        }
        if !(self.lr > 0.0 && self.min_lr >= 0.0 && self.min_lr <= self.lr) {
            bail!("need 0 <= --min-lr <= --lr and --lr > 0 (got {} and {})", self.min_lr, self.lr);
        }
        Ok(())
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

pub fn run(args: Args) -> Result<()> {
    train(args, true).map(|_| ())
}

/// Runs training; returns the final state. `show_progress` draws a bar on a terminal.
pub fn train(args: Args, show_progress: bool) -> Result<RunState> {
    let (files, mut config, resuming) = match &args.resume {
        Some(dir) => {
            let files = RunFiles { dir: dir.clone() };
            let mut config = files.load_config()?;
            if let Some(dataset) = &args.dataset {
                config.dataset = dataset.clone();
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
            (RunFiles { dir }, TrainConfig::defaults(dataset), false)
        }
    };
    let original = config.clone();
    config.apply(&args);
    config.check()?;
    if resuming && config.shape() != original.shape() {
        bail!(
            "{}: the network's sizes cannot change when resuming ({:?} was {:?})",
            files.dir.display(),
            config.shape(),
            original.shape()
        );
    }
    // candle reads the thread count from the environment on every matmul.
    std::env::set_var("RAYON_NUM_THREADS", config.threads.to_string());
    let _ = ctrlc::set_handler(|| STOP.store(true, Ordering::SeqCst));
    STOP.store(false, Ordering::SeqCst);

    let index = Index::load(&config.dataset)?;
    let train_stream = TokenStream::load(&config.dataset, &index, Split::Train)?;
    let val_stream = TokenStream::load(&config.dataset, &index, Split::Val)?;
    if train_stream.len() < config.seq + 1 {
        bail!(
            "{}: {} training tokens, fewer than one window of {} (+1); add files or lower --seq",
            config.dataset.display(),
            train_stream.len(),
            config.seq
        );
    }
    let val_from_train = val_stream.len() < config.seq + 1;
    let val_windows = if val_from_train { &train_stream } else { &val_stream }
        .fixed_windows(config.seq, config.eval_tokens);

    std::fs::create_dir_all(&files.dir)
        .with_context(|| format!("{}: cannot create the run folder", files.dir.display()))?;
    save_json(&files.config(), &config)?;
    save_json(&files.vocab(), &index.vocab)?;
    save_json(
        &files.dataset(),
        &DatasetSummary {
            name: config.dataset.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(),
            role: index.role,
            train_files: train_stream.documents,
            train_tokens: train_stream.len() as u64,
            val_files: val_stream.documents,
            val_tokens: val_stream.len() as u64,
        },
    )?;

    let device = Device::Cpu;
    let mut varmap = VarMap::new();
    let net = LstmNet::new(config.shape(), &varmap, &device, config.seed)?;
    let mut optimizer = AdamW::new(&varmap, config.weight_decay)?;
    let mut state = RunState { val_from_train, ..Default::default() };
    if resuming {
        varmap
            .load(files.checkpoint())
            .with_context(|| format!("{}: cannot read the checkpoint", files.checkpoint().display()))?;
        optimizer.load(&files.optimizer(), &device)?;
        state = files.load_json(&files.state())?;
        if state.step >= config.steps {
            bail!(
                "{}: already trained {} of {} steps; give a larger --steps to continue",
                files.dir.display(),
                state.step,
                config.steps
            );
        }
    } else {
        std::fs::write(
            files.metrics(),
            "step,train_loss,val_loss,learning_rate,grad_norm,tokens_per_second,seconds\n",
        )?;
    }
    let (parameters, shape) = (config.shape().parameter_count(), config.shape());
    let peak = peak_flops(config.threads);
    println!(
        "training {}: {} x {} LSTM, {} parameters, on {} training tokens ({} files){}",
        files.dir.display(),
        shape.layers,
        shape.hidden,
        parameters,
        train_stream.len(),
        train_stream.documents,
        if val_from_train { "; no validation files: validation is measured on training windows" } else { "" }
    );

    let bar =
        if show_progress { progress::bar(config.steps, "steps") } else { indicatif::ProgressBar::hidden() };
    bar.set_position(state.step);
    let tokens_per_step = (config.batch * config.seq) as u64;
    let mut window = Vec::with_capacity(config.seq + 1);
    let mut batch_ids = Vec::with_capacity(config.batch * (config.seq + 1));
    let (mut loss_sum, mut loss_count) = (0.0f64, 0u64);
    let mut interval_started = Instant::now();
    let mut interval_tokens = 0u64;
    let run_started = Instant::now() - std::time::Duration::from_secs_f64(state.seconds);

    while state.step < config.steps {
        // The data of a step depends only on the seed and the step, so a resumed run reads the
        // same windows an uninterrupted one would.
        let mut rng = Rng::new(config.seed ^ (state.step + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        batch_ids.clear();
        for _ in 0..config.batch {
            train_stream.random_window(config.seq, config.transpose, &mut rng, &mut window);
            batch_ids.extend_from_slice(&window);
        }
        let batch = Tensor::from_slice(&batch_ids, (config.batch, config.seq + 1), &device)?;
        let loss = net.loss(&batch)?;
        let grads = loss.backward()?;
        let last_norm = optimizer.step(&grads, config.learning_rate(state.step), config.clip)?;
        loss_sum += loss.to_scalar::<f32>()? as f64;
        loss_count += 1;
        state.step += 1;
        state.tokens_seen += tokens_per_step;
        interval_tokens += tokens_per_step;
        bar.inc(1);
        let tokens_per_second = interval_tokens as f64 / interval_started.elapsed().as_secs_f64().max(1e-9);
        bar.set_message(format!("loss {:.3} {:.0} tok/s", loss_sum / loss_count as f64, tokens_per_second));

        let stopping = STOP.load(Ordering::SeqCst);
        if state.step.is_multiple_of(config.eval_every) || state.step == config.steps || stopping {
            state.train_loss = Some(loss_sum / loss_count.max(1) as f64);
            state.val_loss = Some(validation_loss(&net, &val_windows, config.batch, &device)?);
            state.seconds = run_started.elapsed().as_secs_f64();
            let flops = 6.0 * parameters as f64 * tokens_per_second;
            progress::log(&bar, format!(
                "step {:>6}  train {:.4}  val {:.4}  lr {:.2e}  |g| {:.2}  {:.0} tok/s ({:.1}% of {:.0} GFLOP/s peak)  {}",
                state.step,
                state.train_loss.unwrap(),
                state.val_loss.unwrap(),
                config.learning_rate(state.step - 1),
                last_norm,
                tokens_per_second,
                100.0 * flops / peak,
                peak / 1e9,
                progress::duration(state.seconds)
            ));
            if state.best_val_loss.is_none_or(|best| state.val_loss.unwrap() < best) {
                state.best_val_loss = state.val_loss;
                state.best_step = state.step;
                write_atomic(&files.best(), |tmp| Ok(varmap.save(tmp)?))?;
                save_json(&files.best_state(), &state)?;
            }
            write_atomic(&files.checkpoint(), |tmp| Ok(varmap.save(tmp)?))?;
            write_atomic(&files.optimizer(), |tmp| optimizer.save(tmp))?;
            save_json(&files.state(), &state)?;
            let mut metrics = std::fs::OpenOptions::new().append(true).open(files.metrics())?;
            writeln!(
                metrics,
                "{},{:.5},{:.5},{:.6e},{:.4},{:.1},{:.1}",
                state.step,
                state.train_loss.unwrap(),
                state.val_loss.unwrap(),
                config.learning_rate(state.step - 1),
                last_norm,
                tokens_per_second,
                state.seconds
            )?;
            plot::loss_curves(&files.metrics(), &files.plot())?;
            loss_sum = 0.0;
            loss_count = 0;
            interval_tokens = 0;
            interval_started = Instant::now();
        }
        if stopping {
            progress::log(
                &bar,
                format!(
                    "interrupted: checkpoint saved at step {}; continue with --resume {}",
                    state.step,
                    files.dir.display()
                ),
            );
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

/// Mean cross-entropy over the fixed validation windows, in batches.
pub fn validation_loss(net: &LstmNet, windows: &[Vec<u32>], batch: usize, device: &Device) -> Result<f64> {
    let (mut total, mut count) = (0.0f64, 0usize);
    for chunk in windows.chunks(batch) {
        let span = chunk[0].len();
        let ids: Vec<u32> = chunk.iter().flatten().copied().collect();
        let tensor = Tensor::from_slice(&ids, (chunk.len(), span), device)?;
        total += net.loss(&tensor)?.to_scalar::<f32>()? as f64 * chunk.len() as f64;
        count += chunk.len();
    }
    Ok(total / count.max(1) as f64)
}

/// The machine's f32 peak for `threads` cores: clock x FLOP per cycle (two FMA units of the
/// widest vectors the CPU has). An estimate for the "share of peak" figure, not a measurement.
pub fn peak_flops(threads: usize) -> f64 {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let mhz = cpuinfo
        .lines()
        .find(|l| l.starts_with("cpu MHz"))
        .and_then(|l| l.split(':').nth(1))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .unwrap_or(2500.0);
    let flags = cpuinfo.lines().find(|l| l.starts_with("flags")).unwrap_or("");
    let per_cycle = if flags.contains(" avx512f") {
        64.0
    } else if flags.contains(" fma") && flags.contains(" avx2") {
        32.0
    } else {
        8.0
    };
    threads as f64 * mhz * 1e6 * per_cycle
}
