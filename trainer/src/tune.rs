//! `tune`: writes how a model plays best into its file, the defaults the plugin, `generate` and
//! `eval` play it by.
//!
//! Owns nothing but the command: the tuning is the engine's [`Tuning`], and rewriting the file's
//! metadata is the engine's [`model::retune`], so the network is never touched.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use continuo_engine::model::{self, Model};
use continuo_engine::sampler::{Tuning, MAX_VOICES};

/// Show or set a model's tuning: the temperatures, nucleus and voices it plays by by default.
///
/// A model plays by its tuning in the plugin (the window shows it; Temperature scales it),
/// in `generate` and in `eval` unless their flags say otherwise. Find one with `eval`: try
/// --temperature, --rhythm-temperature and --top-p on several seed sets (--seed 1, 49, 97) and
/// keep the settings whose pieces overlap the data (mean OA) and differ from one another as the
/// songs do (spread) best; then write them here. Flags not given keep the model's present values
/// (those of an untuned model: temperature 0.6, rhythm 0.6, top-p 0.8, voices as its training
/// music). Without flags, prints the tuning.
#[derive(clap::Args)]
pub struct Args {
    /// The model (.onnx, from `export`); rewritten in place unless --out is given.
    pub model: PathBuf,
    /// Write the tuned model here instead.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Temperature of the pitches and velocities (above 0).
    #[arg(long)]
    pub temperature: Option<f32>,
    /// Temperature of the rhythm: how much time passes between events (above 0).
    #[arg(long)]
    pub rhythm_temperature: Option<f32>,
    /// Nucleus of the pitches and velocities, (0, 1]; 1 keeps every choice.
    #[arg(long)]
    pub top_p: Option<f32>,
    /// Voices Polyphony "as trained" plays, 1..=16; 0 goes back to the training music's own count.
    #[arg(long, value_parser = clap::builder::RangedU64ValueParser::<u8>::new().range(0..=MAX_VOICES as u64))]
    pub voices: Option<u8>,
}

pub fn run(args: Args) -> Result<()> {
    let bytes =
        std::fs::read(&args.model).with_context(|| format!("cannot read {}", args.model.display()))?;
    let origin = args.model.display().to_string();
    let info = Model::load(&bytes, &origin)?.info().clone();
    let before = info.played_tuning();
    let given = args.temperature.is_some()
        || args.rhythm_temperature.is_some()
        || args.top_p.is_some()
        || args.voices.is_some();
    if !given {
        match info.tuning {
            Some(t) => println!("{}: {}", origin, t.describe()),
            None => println!("{}: untuned, plays by {}", origin, before.describe()),
        }
        return Ok(());
    }
    let tuning = Tuning {
        voices: match args.voices {
            Some(0) => None,
            Some(v) => Some(v),
            None => before.voices,
        },
        ..before.with(args.temperature, args.rhythm_temperature, args.top_p)
    };
    if let Err(problem) = tuning.check() {
        bail!("{origin}: cannot tune it so: {problem}");
    }
    let tuned = model::retune(&bytes, &tuning).map_err(|e| anyhow::anyhow!("{origin}: {e}"))?;
    let out = args.out.as_ref().unwrap_or(&args.model);
    // Read back before it replaces anything: a file that does not load is never written.
    let reread = Model::load(&tuned, &out.display().to_string())?;
    assert_eq!(reread.info().tuning, Some(tuning), "the tuning reads back as written");
    let partial = out.with_extension("onnx.partial");
    std::fs::write(&partial, &tuned).with_context(|| format!("cannot write {}", partial.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("cannot replace {}", out.display()))?;
    println!("{}: {} (was {})", out.display(), tuning.describe(), before.describe());
    Ok(())
}
