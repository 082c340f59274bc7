//! `eval`: how good is a model? Held-out likelihood against simple baselines, and how its music
//! compares with the data's.
//!
//! Owns the unigram and bigram baselines, the per-token-type NLL breakdown, the musical features
//! of a 4-bar segment, and their overlapping areas (Yang & Lerch 2018, "On the evaluation of
//! generative models in music"): 1 means the generated and data distributions coincide, 0 that
//! they never meet. The model is run through the engine, exactly as the plugin runs it.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use continuo_engine::generator::GeneratorSettings;
use continuo_engine::model::Model;
use continuo_engine::music::{Scale, ScaleLock};
use continuo_engine::sampler::SamplerSettings;
use continuo_engine::vocab::{self, GridNote, Token, TokenKind, STEPS_PER_BEAT, VOCAB_SIZE};
use serde::Serialize;

use crate::dataset::{Index, Split, TokenStream};
use crate::generate::{self, BEATS_PER_BAR};

/// Measure a model on a dataset's validation files, against baselines and against the data.
///
/// Prints, and writes as JSON: the held-out negative log-likelihood per token (nats) and
/// perplexity, overall and per token type (note-on, note-off, time-shift, velocity), for the
/// model and for a unigram and a bigram baseline fitted on the training split; then statistics of
/// music the model generates against the same statistics of the validation music, per 4-bar
/// segment (pitch-class histogram, inter-onset intervals, polyphony, notes per bar, pitch range,
/// in-scale rate) with the overlapping area of each pair of distributions.
#[derive(clap::Args)]
pub struct Args {
    /// The model (.onnx).
    pub model: PathBuf,
    /// The dataset folder (from `prepare`); its validation split is measured.
    pub dataset: PathBuf,
    /// Validation tokens to measure at most (whole songs, state reset per song).
    #[arg(long, default_value_t = 50_000)]
    pub tokens: usize,
    /// Generated pieces to compare with the data.
    #[arg(long, default_value_t = 8)]
    pub samples: u64,
    /// Bars in each generated piece.
    #[arg(long, default_value_t = 32)]
    pub bars: u64,
    /// Seed of the first generated piece; the others follow it.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Where to write the JSON report [default: next to the model, as NAME.eval.json]
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct Nll {
    pub nats_per_token: f64,
    pub perplexity: f64,
    pub tokens: u64,
}

#[derive(Debug, Serialize)]
pub struct LikelihoodRow {
    pub token_type: String,
    pub model: Nll,
    pub bigram: Nll,
    pub unigram: Nll,
}

#[derive(Debug, Serialize)]
pub struct FeatureRow {
    pub feature: String,
    pub data_mean: f64,
    pub data_sd: f64,
    pub generated_mean: f64,
    pub generated_sd: f64,
    pub overlapping_area: f64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub model: String,
    pub dataset: String,
    pub validation_songs: usize,
    pub likelihood: Vec<LikelihoodRow>,
    pub features: Vec<FeatureRow>,
    pub data_segments: usize,
    pub generated_segments: usize,
}

pub fn run(args: Args) -> Result<()> {
    let report = evaluate(&args)?;
    print_report(&report);
    let json = args.json.clone().unwrap_or_else(|| args.model.with_extension("eval.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("{}: cannot write", json.display()))?;
    println!("\nwritten to {}", json.display());
    Ok(())
}

pub fn evaluate(args: &Args) -> Result<Report> {
    let mut model = Model::load_file(&args.model)?;
    let index = Index::load(&args.dataset)?;
    let train = TokenStream::load(&args.dataset, &index, Split::Train)?;
    let val = TokenStream::load(&args.dataset, &index, Split::Val)?;
    if val.documents == 0 {
        bail!(
            "{}: the dataset has no validation files; prepare it with a larger --val-fraction",
            args.dataset.display()
        );
    }
    let songs: Vec<&[u16]> = {
        let mut total = 0;
        val.document_slices()
            .filter(|d| d.len() >= 2)
            .take_while(|d| {
                let take = total < args.tokens;
                total += d.len();
                take
            })
            .collect()
    };

    // Held-out likelihood, accumulated per target token type.
    let baselines = Baselines::fit(&train.tokens);
    let mut sums: BTreeMap<TokenKind, [(f64, u64); 3]> = BTreeMap::new();
    let mut logits = vec![0.0f32; VOCAB_SIZE as usize];
    for song in &songs {
        let mut state = model.initial_state();
        for pair in song.windows(2) {
            let (prev, next) = (pair[0] as u32, pair[1] as u32);
            model.step(prev, &mut state, &mut logits)?;
            let kind = Token::from_id(next).expect("dataset tokens are checked on load").kind();
            let nll = [
                log_softmax_nll(&logits, next),
                baselines.bigram_nll(prev, next),
                baselines.unigram_nll(next),
            ];
            let entry = sums.entry(kind).or_insert([(0.0, 0); 3]);
            for (slot, value) in entry.iter_mut().zip(nll) {
                slot.0 += value;
                slot.1 += 1;
            }
        }
    }
    let row = |name: &str, parts: &[[(f64, u64); 3]]| {
        let nll = |i: usize| {
            let (sum, count) = parts.iter().fold((0.0, 0), |(s, c), p| (s + p[i].0, c + p[i].1));
            let mean = sum / count.max(1) as f64;
            Nll { nats_per_token: mean, perplexity: mean.exp(), tokens: count }
        };
        LikelihoodRow { token_type: name.to_string(), model: nll(0), bigram: nll(1), unigram: nll(2) }
    };
    let mut likelihood = vec![row("all", &sums.values().copied().collect::<Vec<_>>())];
    for (kind, parts) in &sums {
        likelihood.push(row(kind.name(), &[*parts]));
    }

    // Music: validation songs against generated pieces, in 4-bar segments.
    let data_notes: Vec<Vec<GridNote>> = songs
        .iter()
        .map(|song| {
            vocab::decode(
                &song.iter().map(|&t| Token::from_id(t as u32).expect("checked")).collect::<Vec<_>>(),
            )
        })
        .collect();
    let mut generated_notes = Vec::new();
    for i in 0..args.samples {
        let settings = GeneratorSettings {
            sampler: SamplerSettings { seed: args.seed + i, ..SamplerSettings::default() },
            ..GeneratorSettings::default()
        };
        generated_notes.push(generate::generate(model.clone(), settings, &[], args.bars)?);
    }
    let data = Features::of_pieces(&data_notes);
    let generated = Features::of_pieces(&generated_notes);
    Ok(Report {
        model: args.model.display().to_string(),
        dataset: args.dataset.display().to_string(),
        validation_songs: songs.len(),
        likelihood,
        features: data.compare(&generated),
        data_segments: data.segments,
        generated_segments: generated.segments,
    })
}

/// Negative log-probability of `target` under softmax(`logits`), in nats.
fn log_softmax_nll(logits: &[f32], target: u32) -> f64 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let sum: f64 = logits.iter().map(|&l| (l as f64 - max).exp()).sum();
    -(logits[target as usize] as f64 - max - sum.ln())
}

/// Unigram (add-one) and bigram (Witten-Bell, backing off to the unigram) models of the
/// training tokens: what a model must beat to have learned anything beyond token frequencies.
pub struct Baselines {
    unigram: Vec<f64>,
    bigram: Vec<u64>,
    context_count: Vec<u64>,
    distinct_followers: Vec<u64>,
}

impl Baselines {
    pub fn fit(tokens: &[u16]) -> Baselines {
        let v = VOCAB_SIZE as usize;
        let mut counts = vec![0u64; v];
        let mut bigram = vec![0u64; v * v];
        for &t in tokens {
            counts[t as usize] += 1;
        }
        for pair in tokens.windows(2) {
            bigram[pair[0] as usize * v + pair[1] as usize] += 1;
        }
        let total = tokens.len() as f64 + v as f64;
        let unigram = counts.iter().map(|&c| (c as f64 + 1.0) / total).collect();
        let context_count = (0..v).map(|a| bigram[a * v..(a + 1) * v].iter().sum()).collect();
        let distinct_followers =
            (0..v).map(|a| bigram[a * v..(a + 1) * v].iter().filter(|&&c| c > 0).count() as u64).collect();
        Baselines { unigram, bigram, context_count, distinct_followers }
    }

    pub fn unigram_nll(&self, next: u32) -> f64 {
        -self.unigram[next as usize].ln()
    }

    pub fn bigram_nll(&self, prev: u32, next: u32) -> f64 {
        let v = VOCAB_SIZE as usize;
        let (count, types) =
            (self.context_count[prev as usize] as f64, self.distinct_followers[prev as usize] as f64);
        let p_uni = self.unigram[next as usize];
        let p = if count == 0.0 {
            p_uni
        } else {
            (self.bigram[prev as usize * v + next as usize] as f64 + types * p_uni) / (count + types)
        };
        -p.ln()
    }
}

/// A 4-bar segment is the unit the features are measured on.
const SEGMENT_STEPS: u64 = 4 * BEATS_PER_BAR * STEPS_PER_BEAT as u64;
/// Inter-onset intervals are histogrammed in these grid-step bins (upper bounds).
const IOI_BINS: [u64; 11] = [1, 2, 3, 4, 6, 8, 12, 16, 24, 48, 96];

/// Per-segment features of a set of pieces, and their pooled histograms.
struct Features {
    segments: usize,
    scalars: BTreeMap<&'static str, Vec<f64>>,
    pitch_classes: [f64; 12],
    ioi: [f64; IOI_BINS.len() + 1],
}

impl Features {
    fn of_pieces(pieces: &[Vec<GridNote>]) -> Features {
        let mut f = Features {
            segments: 0,
            scalars: BTreeMap::new(),
            pitch_classes: [0.0; 12],
            ioi: [0.0; IOI_BINS.len() + 1],
        };
        for notes in pieces {
            let end = notes.iter().map(|n| n.end).max().unwrap_or(0);
            for start in (0..end).step_by(SEGMENT_STEPS as usize) {
                let segment: Vec<&GridNote> =
                    notes.iter().filter(|n| n.start >= start && n.start < start + SEGMENT_STEPS).collect();
                if segment.len() < 2 {
                    continue;
                }
                f.add_segment(&segment, notes);
            }
        }
        f
    }

    fn add_segment(&mut self, segment: &[&GridNote], piece: &[GridNote]) {
        self.segments += 1;
        let mut push = |name: &'static str, value: f64| self.scalars.entry(name).or_default().push(value);
        let mut pitches: Vec<u8> = segment.iter().map(|n| n.pitch).collect();
        pitches.sort_unstable();
        push("pitch range", (pitches[pitches.len() - 1] - pitches[0]) as f64);
        pitches.dedup();
        push("distinct pitches", pitches.len() as f64);
        push("notes per bar", segment.len() as f64 / 4.0);
        let mut onsets: Vec<u64> = segment.iter().map(|n| n.start).collect();
        onsets.dedup();
        let iois: Vec<u64> = onsets.windows(2).map(|w| w[1] - w[0]).collect();
        if !iois.is_empty() {
            push(
                "mean inter-onset (beats)",
                iois.iter().sum::<u64>() as f64 / iois.len() as f64 / STEPS_PER_BEAT as f64,
            );
        }
        let polyphony = onsets
            .iter()
            .map(|&t| piece.iter().filter(|n| n.start <= t && n.end > t).count() as f64)
            .sum::<f64>()
            / onsets.len() as f64;
        push("polyphony", polyphony);
        // In-scale rate: the share of notes in the major scale that fits the segment best.
        let best = (0..12u8)
            .map(|key| {
                let lock = ScaleLock { key, scale: Scale::Major };
                segment.iter().filter(|n| lock.allows(n.pitch)).count()
            })
            .max()
            .unwrap_or(0);
        push("in-scale rate", best as f64 / segment.len() as f64);
        for n in segment {
            self.pitch_classes[n.pitch as usize % 12] += 1.0;
        }
        for ioi in iois {
            let bin = IOI_BINS.iter().position(|&b| ioi <= b).unwrap_or(IOI_BINS.len());
            self.ioi[bin] += 1.0;
        }
    }

    fn compare(&self, generated: &Features) -> Vec<FeatureRow> {
        let mut rows = vec![
            histogram_row("pitch-class histogram", &self.pitch_classes, &generated.pitch_classes),
            histogram_row("inter-onset histogram", &self.ioi, &generated.ioi),
        ];
        for (name, data) in &self.scalars {
            let empty = Vec::new();
            let gen = generated.scalars.get(name).unwrap_or(&empty);
            let ((dm, ds), (gm, gs)) = (mean_sd(data), mean_sd(gen));
            rows.push(FeatureRow {
                feature: name.to_string(),
                data_mean: dm,
                data_sd: ds,
                generated_mean: gm,
                generated_sd: gs,
                overlapping_area: kde_overlap(data, gen),
            });
        }
        rows
    }
}

fn mean_sd(values: &[f64]) -> (f64, f64) {
    if values.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64;
    (mean, var.sqrt())
}

/// Overlap of two pooled histograms: the sum of the smaller share of each bin. The means and
/// deviations reported are of the bin index (pitch class or interval bin).
fn histogram_row(name: &str, data: &[f64], generated: &[f64]) -> FeatureRow {
    let normalise = |h: &[f64]| {
        let total: f64 = h.iter().sum();
        h.iter().map(|c| c / total.max(1e-12)).collect::<Vec<f64>>()
    };
    let (p, q) = (normalise(data), normalise(generated));
    let moments = |h: &[f64]| {
        let mean: f64 = h.iter().enumerate().map(|(i, w)| i as f64 * w).sum();
        let var: f64 = h.iter().enumerate().map(|(i, w)| (i as f64 - mean).powi(2) * w).sum();
        (mean, var.sqrt())
    };
    let ((dm, ds), (gm, gs)) = (moments(&p), moments(&q));
    FeatureRow {
        feature: name.to_string(),
        data_mean: dm,
        data_sd: ds,
        generated_mean: gm,
        generated_sd: gs,
        overlapping_area: p.iter().zip(&q).map(|(a, b)| a.min(*b)).sum(),
    }
}

/// Overlapping area of two Gaussian kernel density estimates (Silverman's bandwidth), by the
/// trapezoid rule on a grid spanning both samples.
pub fn kde_overlap(a: &[f64], b: &[f64]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let bandwidth = |x: &[f64]| {
        let (_, sd) = mean_sd(x);
        (1.06 * sd * (x.len() as f64).powf(-0.2)).max(1e-3)
    };
    let (ha, hb) = (bandwidth(a), bandwidth(b));
    let low = a.iter().chain(b).copied().fold(f64::INFINITY, f64::min) - 4.0 * ha.max(hb);
    let high = a.iter().chain(b).copied().fold(f64::NEG_INFINITY, f64::max) + 4.0 * ha.max(hb);
    let density = |x: f64, sample: &[f64], h: f64| {
        sample.iter().map(|s| (-0.5 * ((x - s) / h).powi(2)).exp()).sum::<f64>()
            / (sample.len() as f64 * h * (2.0 * std::f64::consts::PI).sqrt())
    };
    const POINTS: usize = 512;
    let dx = (high - low) / (POINTS - 1) as f64;
    let mins: Vec<f64> = (0..POINTS)
        .map(|i| {
            let x = low + i as f64 * dx;
            density(x, a, ha).min(density(x, b, hb))
        })
        .collect();
    mins.windows(2).map(|w| (w[0] + w[1]) * 0.5 * dx).sum::<f64>().clamp(0.0, 1.0)
}

fn print_report(r: &Report) {
    println!("{} on the validation split of {} ({} songs)\n", r.model, r.dataset, r.validation_songs);
    println!(
        "{:<12} {:>9} {:>22} {:>22} {:>22}",
        "held-out", "tokens", "model nll (ppl)", "bigram nll (ppl)", "unigram nll (ppl)"
    );
    for row in &r.likelihood {
        let cell = |n: &Nll| format!("{:.3} ({:.2})", n.nats_per_token, n.perplexity);
        println!(
            "{:<12} {:>9} {:>22} {:>22} {:>22}",
            row.token_type,
            row.model.tokens,
            cell(&row.model),
            cell(&row.bigram),
            cell(&row.unigram)
        );
    }
    println!(
        "\n{:<26} {:>18} {:>18} {:>9}   ({} data and {} generated 4-bar segments)",
        "music", "data mean±sd", "generated mean±sd", "overlap", r.data_segments, r.generated_segments
    );
    for row in &r.features {
        println!(
            "{:<26} {:>18} {:>18} {:>9.3}",
            row.feature,
            format!("{:.2}±{:.2}", row.data_mean, row.data_sd),
            format!("{:.2}±{:.2}", row.generated_mean, row.generated_sd),
            row.overlapping_area
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_samples_overlap_fully_and_distant_ones_not_at_all() {
        let a: Vec<f64> = (0..50).map(|i| (i % 7) as f64).collect();
        assert!((kde_overlap(&a, &a) - 1.0).abs() < 0.01);
        let far: Vec<f64> = a.iter().map(|x| x + 100.0).collect();
        assert!(kde_overlap(&a, &far) < 0.01);
    }

    #[test]
    fn bigram_baseline_beats_unigram_on_a_pattern() {
        let tokens: Vec<u16> = (0..3000).map(|i| [0u16, 300, 128][i % 3]).collect();
        let b = Baselines::fit(&tokens);
        assert!(b.bigram_nll(0, 300) < 0.01);
        assert!(b.unigram_nll(300) > 1.0);
        let sum: f64 = (0..VOCAB_SIZE).map(|n| (-b.bigram_nll(0, n)).exp()).sum();
        assert!((sum - 1.0).abs() < 1e-9, "bigram probabilities sum to {sum}");
    }
}
