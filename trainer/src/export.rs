//! `export`: a run's checkpoint -> an ONNX model the plugin loads.
//!
//! Owns turning a run folder into `ModelInfo` + weights for the engine's `model::write`, and the
//! parity check that refuses to write a file tract would run differently from candle.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use candle_core::{Device, Tensor};
use candle_nn::VarMap;
use continuo_engine::harmony::{clocks_once_read, Harmony};
use continuo_engine::model::{self, Model, ModelInfo, TrainingSummary};
use continuo_engine::vocab::VocabSpec;

use crate::dataset::{Heard, Index, Split, TokenStream, BAR_STEPS};
use crate::net::{harmony_numbers, LstmNet};
use crate::train::{write_atomic, DatasetSummary, RunFiles, RunState, TrainConfig};

/// Write a run's best checkpoint as an ONNX model for the Continuo plugin.
///
/// The file follows the engine's single-step contract and carries its metadata (vocabulary,
/// sizes, what it was trained on, losses, date). Before anything is written, the exported graph
/// is run in tract and compared with the trained network on 64 steps of a validation sequence;
/// if any logit differs by 1e-4 or more, the export fails and writes nothing.
#[derive(clap::Args)]
pub struct Args {
    /// The run folder written by `train`.
    pub run: PathBuf,
    /// The .onnx file to write.
    #[arg(long)]
    pub out: PathBuf,
    /// The name the plugin shows [default: the run folder's name]
    #[arg(long)]
    pub name: Option<String>,
    /// Export the last checkpoint instead of the one with the best validation loss.
    #[arg(long)]
    pub last: bool,
}

/// Steps compared between candle and tract.
pub const PARITY_STEPS: usize = 64;
pub const PARITY_TOLERANCE: f32 = 1e-4;

/// What an export did, for the summary and the tests.
pub struct Exported {
    pub bytes: usize,
    pub parity_max_diff: f32,
    pub info: ModelInfo,
}

pub fn run(args: Args) -> Result<()> {
    let exported = export(&args.run, &args.out, args.name.as_deref(), args.last)?;
    let s = exported.info.shape;
    println!(
        "exported {} ({:.2} MB): {} x {} LSTM, {} parameters, validation loss {}",
        args.out.display(),
        exported.bytes as f64 / 1e6,
        s.layers,
        s.hidden,
        s.parameter_count(),
        exported.info.training.validation_loss.map_or("unknown".into(), |l| format!("{l:.4}"))
    );
    println!(
        "  parity: tract and candle agree to {:.2e} over {PARITY_STEPS} steps (limit {PARITY_TOLERANCE:.0e})",
        exported.parity_max_diff
    );
    Ok(())
}

pub fn export(run: &Path, out: &Path, name: Option<&str>, last: bool) -> Result<Exported> {
    let files = RunFiles { dir: run.to_path_buf() };
    let config: TrainConfig = files.load_config()?;
    let vocab: VocabSpec = files.load_json(&files.vocab())?;
    vocab.check().with_context(|| format!("{}: the run's vocabulary", files.vocab().display()))?;
    let dataset: DatasetSummary = files.load_json(&files.dataset())?;
    let (weights_path, state_path) =
        if last { (files.checkpoint(), files.state()) } else { (files.best(), files.best_state()) };
    let state: RunState = files.load_json(&state_path)?;

    let device = Device::Cpu;
    let mut varmap = VarMap::new();
    let net = LstmNet::new(config.shape(), &varmap, &device, 0, 1)?;
    varmap
        .load(&weights_path)
        .with_context(|| format!("{}: cannot read the checkpoint", weights_path.display()))?;

    let name = name.map(str::to_string).unwrap_or_else(|| {
        run.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "continuo".into())
    });
    let streams = dataset_streams(&config);
    let info = ModelInfo {
        name: name.clone(),
        role: dataset.role,
        vocab,
        shape: config.shape(),
        training: TrainingSummary {
            dataset: format!(
                "{} ({} files, {} tokens)",
                dataset.name, dataset.train_files, dataset.train_tokens
            ),
            files: dataset.train_files as u64,
            tokens: dataset.train_tokens,
            steps: state.step,
            train_loss: state.train_loss.map(|l| l as f32),
            validation_loss: state.val_loss.map(|l| l as f32),
            exported_at: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            command: config.command()?,
            voices: dataset.voices,
            start_token: usual_first_token(&streams),
        },
        // A model is tuned after it is measured (`tune`), not when it is written.
        tuning: None,
    };
    let bytes = model::write(&net.to_model_weights()?, &info)?;
    let mut loaded = Model::load(&bytes, &out.display().to_string())?;

    let sequence = parity_sequence(&config, &streams);
    let diff = parity(&net, &mut loaded, &sequence, &device)?;
    // NaN counts as a failure too.
    if diff.is_nan() || diff >= PARITY_TOLERANCE {
        bail!(
            "{}: not written: tract's logits differ from candle's by {diff:.2e} (limit {PARITY_TOLERANCE:.0e}) over {} steps",
            out.display(),
            sequence.0.len()
        );
    }
    write_atomic(out, |tmp| {
        std::fs::write(tmp, &bytes).with_context(|| format!("{}: cannot write", tmp.display()))
    })?;
    Ok(Exported { bytes: bytes.len(), parity_max_diff: diff, info })
}

/// The run's dataset, its validation split then its training split, those that can be read
/// (none when the dataset is gone): read once for the model's first token and its parity check.
fn dataset_streams(config: &TrainConfig) -> Vec<(Split, TokenStream)> {
    let Ok(index) = Index::load(&config.dataset) else { return Vec::new() };
    [Split::Val, Split::Train]
        .into_iter()
        .filter_map(|split| Some((split, TokenStream::load(&config.dataset, &index, split).ok()?)))
        .collect()
}

/// The token the run's training songs start with most often, when its dataset is there to ask.
fn usual_first_token(streams: &[(Split, TokenStream)]) -> Option<u16> {
    streams.iter().find(|(split, _)| *split == Split::Train)?.1.usual_first_token()
}

/// 64 tokens of real music and the harmony each is read in: the start of the validation split,
/// or of the training split, or (when the dataset is gone) a fixed walk over the vocabulary and
/// the twelve major triads.
fn parity_sequence(config: &TrainConfig, streams: &[(Split, TokenStream)]) -> (Vec<u32>, Vec<Harmony>) {
    let from_dataset = streams.iter().find_map(|(_, stream)| {
        (stream.len() >= PARITY_STEPS).then(|| {
            let tokens = stream.tokens[..PARITY_STEPS].iter().map(|&t| t as u32).collect();
            let harmony = (0..PARITY_STEPS)
                .map(|i| stream.harmony.get(i).and_then(|&h| Harmony::unpack(h)).unwrap_or(Harmony::SILENT))
                .collect();
            (tokens, harmony)
        })
    });
    from_dataset.unwrap_or_else(|| {
        (0..PARITY_STEPS as u32)
            .map(|i| {
                let triad = Harmony::of_pitches([48 + i as u8 % 12, 52 + i as u8 % 12, 55 + i as u8 % 12]);
                ((i * 97 + 13) % config.shape().vocab as u32, triad)
            })
            .unzip()
    })
}

/// Largest difference between candle's and tract's logits over `tokens` (read in `harmony`,
/// and with the clock they reach from step 0, for a model that hears them), state carried.
pub fn parity(
    net: &LstmNet,
    model: &mut Model,
    (tokens, harmony): &(Vec<u32>, Vec<Harmony>),
    device: &Device,
) -> Result<f32> {
    let input = Tensor::from_slice(tokens, (1, tokens.len()), device)?;
    let clocks: Vec<u64> = clocks_once_read(tokens.iter().copied()).collect();
    let heard: Vec<Heard> =
        harmony.iter().zip(&clocks).map(|(h, &clock)| (h.pack(), (clock % BAR_STEPS) as u8)).collect();
    let numbers = net.shape.harmony.map(|i| harmony_numbers(&heard, 1, i, device)).transpose()?;
    let logits = net.forward(&input, numbers.as_ref())?;
    let expected: Vec<Vec<f32>> = logits.squeeze(0)?.to_vec2()?;
    let mut state = model.initial_state();
    let mut got = vec![0.0; net.shape.vocab];
    let mut worst = 0.0f32;
    for (((token, want), heard), &clock) in tokens.iter().zip(&expected).zip(harmony).zip(&clocks) {
        model.step_in(*token, *heard, clock, &mut state, &mut got)?;
        for (a, b) in got.iter().zip(want) {
            let d = (a - b).abs();
            worst = if d.is_nan() { f32::INFINITY } else { worst.max(d) };
        }
    }
    Ok(worst)
}
