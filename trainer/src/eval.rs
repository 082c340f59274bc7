//! `eval`: how good is a model? Held-out likelihood against simple baselines, and how its music
//! compares with the music it learned from.
//!
//! Owns the unigram and bigram baselines, the per-token-type NLL breakdown, and the procedure of
//! Yang and Lerch (2018, "On the evaluation of generative models in music"): the features of
//! [`features`] (ten for melodic models, nine for drums) are measured on whole pieces, generated and from the dataset, and for each
//! feature [`overlap`] compares the distances between generated and reference pieces with the
//! distances among the reference pieces themselves, and the distances among the generated pieces
//! with those too: music like the data's, and as varied as the data. A ceiling (half the
//! reference scored against the other half) and a floor (random notes) are scored by the same
//! code beside the model. The model is run through the engine, exactly as the plugin runs it.

mod copying;
mod features;
mod fit;
mod overlap;

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use continuo_engine::generator;
use continuo_engine::midi::{Role, GM_KIT};
use continuo_engine::model::Model;
use continuo_engine::music::Scale;
use continuo_engine::sampler::{Rng, Tuning};
use continuo_engine::vocab::{self, GridNote, Token, TokenKind, STEPS_PER_BEAT, VOCAB_SIZE};
use rayon::prelude::*;
use serde::Serialize;

use crate::dataset::{Index, Split, TokenStream};
use crate::generate::{self, HarmonyToFollow, SamplerArgs, BEATS_PER_BAR};
use crate::plot::{self, DensityPanel};
use crate::progress;
use continuo_engine::harmony::{clocks_once_read, Harmony, HarmonyTrack};
use copying::Copying;
use features::{Feature, PieceFeatures};
use fit::{Fit, FitTally};
use overlap::Comparison;

/// Measure a model on a dataset: likelihood against baselines, and its music against the data's.
///
/// Likelihood: the held-out negative log-likelihood per token (nats) and perplexity of the
/// validation songs, overall and per token type (note-on, note-off, time-shift, velocity), for
/// the model and for a unigram and a bigram baseline fitted on the training split.
///
/// Music, after Yang and Lerch (2018): --samples pieces of --bars bars are generated (seeds
/// --seed, --seed + 1, ...) and scored against the dataset's songs (--reference) on ten features
/// of whole pieces: duration-weighted pitch-class histogram, distinct pitches, pitch range,
/// top-voice interval, notes per bar, inter-onset interval, polyphony, in-scale rate, pitch-class
/// entropy and the share of empty beats. A drum model is scored on nine that suit drums instead:
/// the share of hits on each group of the kit (kick, snare, toms, closed and open hi-hat, crash,
/// ride, percussion), kit pieces used, hits per bar, inter-onset interval, hits at once, onsets on
/// sixteenths, onsets on triplets (not on a sixteenth), how alike each bar is to the next as a
/// groove, and empty beats; its random floor strikes random kit pieces. Per feature, the overlapping area (OA, 1 = alike) and
/// the KL divergence between the distribution of reference-to-reference distances and that of
/// generated-to-reference distances, each smoothed by a Gaussian KDE. Then whether the pieces
/// differ from one another as much as the songs do: OA_g, the overlapping area of the
/// generated-to-generated distances with the reference-to-reference ones, and the spread, the
/// mean distance between two generated pieces over the mean between two reference songs (1 = as
/// varied, 0 = every piece alike). Beside the model: a ceiling (every other reference song scored
/// against the rest) and a floor (random notes, as many as in each generated piece).
///
/// The sampler flags default to the musician's defaults, the plugin's (the model's own tuning and
/// voices, no scale lock): by default, the model is scored as the plugin first plays it. Give
/// --temperature, --rhythm-temperature and --top-p to try another tuning before writing it into
/// the model with `tune`.
///
/// Copying: the longest run of events (which notes start and end, and the time between;
/// velocities aside) a generated piece shares with any song of the training split, beside the
/// longest that --samples training songs, left out in turn, share with the others: a model copies
/// no more than its data repeats itself when its run is no longer.
///
/// Writes NAME.eval.json (every number and the settings) and NAME.eval.svg (each feature's three
/// densities: within the reference, generated to reference, among the generated pieces) next to
/// the model, or next to --json.
#[derive(clap::Args)]
pub struct Args {
    /// The model (.onnx).
    pub model: PathBuf,
    /// The dataset folder (from `prepare`): its validation split for the likelihood, its songs
    /// as the reference for the music.
    pub dataset: PathBuf,
    /// Validation tokens to measure the likelihood on at most (whole songs, state reset per
    /// song).
    #[arg(long, default_value_t = 50_000)]
    pub tokens: usize,
    /// The dataset songs the generated music is scored against.
    #[arg(long, value_enum, default_value_t = Reference::All)]
    pub reference: Reference,
    /// At most this many reference songs, evenly spread over the dataset's order: the
    /// reference-to-reference distances grow with its square.
    #[arg(long, default_value_t = 5000)]
    pub max_reference: usize,
    /// Generated pieces to score.
    #[arg(long, default_value_t = 48)]
    pub samples: u64,
    /// Bars in each generated piece.
    #[arg(long, default_value_t = 32)]
    pub bars: u64,
    /// Seed of the first generated piece; the others follow it. The random floor uses it too.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Where to write the JSON report [default: next to the model, as NAME.eval.json]; the plot
    /// goes beside it, as .svg.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// For a model that follows the harmony: the harmony every piece plays against, as
    /// `generate --harmony` takes it (a MIDI file, or chord symbols such as "C G Am F"). By
    /// default each piece plays against a validation song's other parts, in turn.
    #[arg(long)]
    pub harmony: Option<String>,
}

/// Which songs of the dataset are the reference.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Reference {
    /// The training split: the music the model learned from.
    Train,
    /// The validation split: music the model never saw.
    Validation,
    /// Both splits.
    All,
}

impl Reference {
    fn describe(self) -> &'static str {
        match self {
            Reference::Train => "training",
            Reference::Validation => "validation",
            Reference::All => "dataset",
        }
    }
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
pub struct Report {
    pub model: String,
    pub dataset: String,
    pub validation_songs: usize,
    pub likelihood: Vec<LikelihoodRow>,
    pub music: MusicReport,
    /// For a model that follows the harmony: how well its part fits the harmony.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub harmony: Option<HarmonyReport>,
}

/// Fit to the harmony of a model that follows one, beside the data's own and its own with the
/// harmony withheld.
#[derive(Debug, Serialize)]
pub struct HarmonyReport {
    /// What the pieces played against: "the validation songs' other parts", or the --harmony.
    pub against: String,
    /// Each piece is as long as the validation song it plays against (not --bars).
    pub each_as_long_as_its_song: bool,
    /// Held-out NLL per token (all tokens) with the harmony the songs were played against, and
    /// with it withheld (silent): how much the model listens.
    pub nll_with_harmony: f64,
    pub nll_harmony_withheld: f64,
    /// The reference songs against the parts they were played with: the ceiling.
    pub data: Fit,
    /// The model's pieces, given the harmony.
    pub model: Fit,
    /// The same model and seeds with the harmony withheld, measured against the same harmony.
    pub withheld: Fit,
}

/// The music half of the report: three sets scored against a reference the same way.
#[derive(Debug, Serialize)]
pub struct MusicReport {
    pub settings: MusicSettings,
    /// Reference songs scored against (after --max-reference), and those left out for having
    /// fewer than two notes.
    pub reference_pieces: usize,
    pub reference_skipped: usize,
    /// Generated pieces of fewer than two notes are left out too.
    pub generated_skipped: usize,
    /// Every other reference song against the others: as alike as two sets of the data get.
    pub ceiling: SetScore,
    pub model: SetScore,
    /// Random notes: as unlike as it gets.
    pub floor: SetScore,
    /// The longest runs the pieces share with the training songs, and the songs with one another.
    pub copying: Copying,
}

/// How the music was made and scored, so a number can be reproduced.
#[derive(Debug, Serialize)]
pub struct MusicSettings {
    pub reference: Reference,
    pub max_reference: usize,
    pub samples: u64,
    pub bars: u64,
    pub first_seed: u64,
    pub sampler: SamplerArgs,
    /// The voices played: `sampler.voices`, or the model's own for "as trained" (0).
    pub voices_played: usize,
    /// The temperatures and nucleus played: the model's tuning with the flags' in place.
    pub tuning_played: Tuning,
    /// Melodic, or drums (whose notes are the General MIDI kit, and features their own).
    pub role: Role,
    /// Whether that is the model's own tuning, as the plugin plays it by default.
    pub as_tuned: bool,
    pub kernel: &'static str,
    pub grid_points: usize,
}

/// One set of pieces scored against a reference set.
#[derive(Debug, Serialize)]
pub struct SetScore {
    pub reference_pieces: usize,
    pub scored_pieces: usize,
    pub mean_overlapping_area: f64,
    pub mean_kl_divergence: f64,
    /// The features' [`Variety`], averaged; None when fewer than two pieces were scored.
    pub variety: Option<MeanVariety>,
    pub features: Vec<FeatureScore>,
}

/// The mean of the features' [`Variety`].
#[derive(Debug, Serialize)]
pub struct MeanVariety {
    /// OA_g over the features.
    pub mean_overlapping_area: f64,
    pub mean_kl_divergence: f64,
    /// Over the features whose spread is defined (all of them unless every reference piece has
    /// the same value of one); None when none is.
    pub mean_spread: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct FeatureScore {
    pub feature: Feature,
    /// The feature's mean over the reference pieces and over the scored ones (twelve numbers
    /// for the histogram, one otherwise).
    pub reference_mean: Vec<f64>,
    pub scored_mean: Vec<f64>,
    /// The scored pieces against the reference: inter-set against intra-set distances.
    #[serde(flatten)]
    pub comparison: Comparison,
    /// The scored pieces among themselves against the reference among itself; None when fewer
    /// than two pieces were scored.
    pub variety: Option<Variety>,
}

/// Do the scored pieces differ from one another as much as the reference pieces do? The two
/// sets' intra-set distance distributions side by side (see [`overlap`] for how this differs
/// from Yang and Lerch's own second comparison), with the ratio of their means beside it: a model
/// that plays the same piece at every seed can overlap the data well (a high OA) but has a spread
/// near 0.
#[derive(Debug, Serialize)]
pub struct Variety {
    /// OA_g: the overlapping area of the density of distances between two scored pieces with that
    /// of distances between two reference pieces.
    pub overlapping_area: f64,
    /// KL(reference's own distances || scored pieces' own), in nats.
    pub kl_divergence: f64,
    /// The mean distance between two scored pieces over the mean between two reference pieces
    /// (see [`overlap::spread`]): 1 = as varied, 0 = all alike, above 1 = more varied. None when
    /// every reference piece has the same value and the scored ones do not.
    pub spread: Option<f64>,
    pub mean_distance: f64,
    pub reference_mean_distance: f64,
    /// The kernels of the two densities, each smoothed at the scored set's size (the smaller).
    pub bandwidth: f64,
    pub reference_bandwidth: f64,
    /// `intra` is the reference's own distances, `inter` the scored pieces' own.
    #[serde(skip)]
    pub densities: overlap::Densities,
}

impl Variety {
    fn of(scored_intra: &[f64], reference_intra: &[f64]) -> Option<Variety> {
        let c = overlap::compare(reference_intra, scored_intra)?;
        Some(Variety {
            overlapping_area: c.overlapping_area,
            kl_divergence: c.kl_divergence,
            spread: overlap::spread(scored_intra, reference_intra),
            mean_distance: overlap::mean_distance(scored_intra)?,
            reference_mean_distance: overlap::mean_distance(reference_intra)?,
            bandwidth: c.inter_bandwidth,
            reference_bandwidth: c.intra_bandwidth,
            densities: c.densities,
        })
    }
}

pub fn run(args: Args) -> Result<()> {
    let report = evaluate(&args)?;
    print_report(&report);
    let json = args.json.clone().unwrap_or_else(|| args.model.with_extension("eval.json"));
    std::fs::write(&json, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("{}: cannot write", json.display()))?;
    // NAME.eval.json -> NAME.eval.svg
    let svg = json.with_extension("svg");
    let panels: Vec<DensityPanel> = report
        .music
        .model
        .features
        .iter()
        .map(|f| {
            let densities = &f.comparison.densities;
            let mut title = format!("{}: OA {:.2}", f.feature.name(), f.comparison.overlapping_area);
            if let Some(v) = &f.variety {
                title += &format!(", OA_g {:.2}, spread {}", v.overlapping_area, or_dash(v.spread, 2));
            }
            DensityPanel {
                title,
                x: &densities.x,
                intra: &densities.intra,
                inter: &densities.inter,
                generated_intra: f.variety.as_ref().map(|v| (&v.densities.x[..], &v.densities.inter[..])),
            }
        })
        .collect();
    plot::feature_densities(&panels, &svg)?;
    println!("\nwritten to {} and {}", json.display(), svg.display());
    Ok(())
}

pub fn evaluate(args: &Args) -> Result<Report> {
    if args.samples == 0 || args.bars == 0 {
        bail!("need --samples >= 1 and --bars >= 1");
    }
    let mut model = Model::load_file(&args.model)?;
    let settings = args.sampler.settings(args.seed, model.info())?;
    let index = Index::load(&args.dataset)?;
    let train = TokenStream::load(&args.dataset, &index, Split::Train)?;
    let val = TokenStream::load(&args.dataset, &index, Split::Val)?;
    if val.documents == 0 {
        bail!(
            "{}: the dataset has no validation files; prepare it with a larger --val-fraction",
            args.dataset.display()
        );
    }
    let follows = model.follows_harmony();
    if args.harmony.is_some() && !follows {
        bail!(
            "{}: --harmony needs a model that follows the harmony; this one follows none",
            args.model.display()
        );
    }
    if follows && !val.has_harmony() {
        bail!(
            "{}: this model follows the harmony; score it on a dataset prepared --against the other parts",
            args.dataset.display()
        );
    }
    let (validation_songs, likelihood) = held_out_likelihood(&mut model, &train, &val, args.tokens, true)?;
    let withheld_likelihood = if follows {
        Some(held_out_likelihood(&mut model, &train, &val, args.tokens, false)?.1[0].model.nats_per_token)
    } else {
        None
    };
    // What each piece plays against, in turn: the --harmony, or the validation songs' parts.
    let (against, tracks): (String, Vec<HarmonyTrack>) = match (&args.harmony, follows) {
        (Some(source), _) => (source.clone(), vec![HarmonyToFollow::read(source)?.track]),
        (None, true) => (
            "the validation songs' other parts".into(),
            val.documents_with_harmony()
                .filter(|(tokens, _)| tokens.len() >= 2)
                .map(|(tokens, harmony)| fit::harmony_of_song(tokens, harmony))
                .collect(),
        ),
        (None, false) => (String::new(), Vec::new()),
    };

    // The reference: whole songs of the chosen splits, in the index's order.
    let splits: &[&TokenStream] = match args.reference {
        Reference::Train => &[&train],
        Reference::Validation => &[&val],
        Reference::All => &[&train, &val],
    };
    // Each with its harmony (empty for a dataset without one), for the fit to the harmony.
    let songs: Vec<(&[u16], &[u16])> = splits.iter().flat_map(|s| s.documents_with_harmony()).collect();
    let songs = evenly_spread(songs, args.max_reference);
    let decoded: Vec<Vec<GridNote>> = songs.par_iter().map(|(song, _)| decode(song, index.role)).collect();
    let (reference, reference_skipped) = features_of(&decoded);
    if reference.len() < 4 {
        bail!(
            "{}: {} {} songs of two notes or more; the ceiling needs at least 4",
            args.dataset.display(),
            reference.len(),
            args.reference.describe()
        );
    }

    // The model's pieces, each from its own seed, and as many random ones.
    let bar = progress::bar(args.samples, "pieces");
    bar.set_message("generating");
    let track_of = |i: u64| (!tracks.is_empty()).then(|| &tracks[i as usize % tracks.len()]);
    // A piece played against a validation song is as long as the song: that song's other part,
    // anew, compared with whole songs.
    let bar_steps = BEATS_PER_BAR * STEPS_PER_BEAT as u64;
    let bars_of = |i: u64| match track_of(i) {
        Some(track) if args.harmony.is_none() => track.length().div_ceil(bar_steps),
        _ => args.bars,
    };
    let pieces = |heard: bool| -> Result<Vec<Vec<GridNote>>> {
        (0..args.samples)
            .into_par_iter()
            .map_with(model.clone(), |model, i| {
                let mut settings = settings;
                settings.sampler.seed = args.seed + i;
                let piece = generate::generate(
                    model.clone(),
                    settings,
                    &[],
                    bars_of(i),
                    track_of(i).filter(|_| heard),
                );
                bar.inc(1);
                piece
            })
            .collect()
    };
    let generated_notes = pieces(true)?;
    let harmony = match withheld_likelihood {
        Some(nll_harmony_withheld) => {
            bar.set_message("generating with the harmony withheld");
            bar.set_position(0);
            let withheld_notes = pieces(false)?;
            let tally = |pieces: &[Vec<GridNote>]| {
                pieces.iter().enumerate().fold(FitTally::default(), |sum, (i, piece)| {
                    let track = track_of(i as u64).expect("a model that follows has tracks");
                    sum.add(FitTally::of(piece, &track.changes_until(bars_of(i as u64) * bar_steps)))
                })
            };
            // The reference songs against the harmony each was played against.
            let data =
                songs.iter().zip(&decoded).fold(FitTally::default(), |sum, ((tokens, harmony), notes)| {
                    let track = fit::harmony_of_song(tokens, harmony);
                    sum.add(FitTally::of(notes, &track.changes_until(track.length())))
                });
            Some(HarmonyReport {
                each_as_long_as_its_song: args.harmony.is_none(),
                against,
                nll_with_harmony: likelihood[0].model.nats_per_token,
                nll_harmony_withheld,
                data: data.fit(),
                model: tally(&generated_notes).fit(),
                withheld: tally(&withheld_notes).fit(),
            })
        }
        None => None,
    };
    bar.finish_and_clear();
    let (generated, generated_skipped) = features_of(&generated_notes);
    if generated.is_empty() {
        bail!("{}: no generated piece has two notes or more; nothing to score", args.model.display());
    }
    let role = index.role;
    let (random, _) = features_of(&random_pieces(&generated_notes, bars_of, args.seed, role));
    let features = Feature::of_role(role);
    let copying = copying_of(&generated_notes, &train, role, args.samples as usize);

    let music = MusicReport {
        settings: MusicSettings {
            reference: args.reference,
            max_reference: args.max_reference,
            samples: args.samples,
            bars: args.bars,
            first_seed: args.seed,
            sampler: args.sampler.clone(),
            voices_played: generator::voices_with(model.info(), args.sampler.voices),
            tuning_played: settings.sampler.tuning.expect("the flags' settings name their tuning"),
            as_tuned: settings.sampler.tuning == Some(model.info().played_tuning()),
            role,
            kernel: "Gaussian, Silverman's bandwidth",
            grid_points: overlap::GRID_POINTS,
        },
        reference_pieces: reference.len(),
        reference_skipped,
        generated_skipped,
        ceiling: ceiling(&reference, features),
        model: score_set(&reference, &generated, features),
        floor: score_set(&reference, &random, features),
        copying,
    };
    Ok(Report {
        model: args.model.display().to_string(),
        dataset: args.dataset.display().to_string(),
        validation_songs,
        likelihood,
        music,
        harmony,
    })
}

/// The model's NLL on whole validation songs (state reset per song, at most `max_tokens`), per
/// target token type, beside the baselines fitted on the training split. Returns the songs read
/// and the rows, "all" first.
/// A model that follows the harmony reads each token in its harmony when `with_harmony`, else
/// in silence.
fn held_out_likelihood(
    model: &mut Model,
    train: &TokenStream,
    val: &TokenStream,
    max_tokens: usize,
    with_harmony: bool,
) -> Result<(usize, Vec<LikelihoodRow>)> {
    let songs: Vec<(&[u16], &[u16])> = {
        let mut total = 0;
        val.documents_with_harmony()
            .filter(|(d, _)| d.len() >= 2)
            .take_while(|(d, _)| {
                let take = total < max_tokens;
                total += d.len();
                take
            })
            .collect()
    };
    let baselines = Baselines::fit(&train.tokens);
    let mut sums: BTreeMap<TokenKind, [(f64, u64); 3]> = BTreeMap::new();
    let mut logits = vec![0.0f32; VOCAB_SIZE as usize];
    let bar = progress::bar(songs.iter().map(|s| s.0.len() as u64).sum(), "tokens");
    bar.set_message("held-out likelihood");
    for (song, harmony) in &songs {
        let mut state = model.initial_state();
        // The clock counts from the song's first bar line: the meter is heard even where the
        // harmony is withheld.
        let clocks = clocks_once_read(song.iter().map(|&t| t as u32));
        for ((i, pair), clock) in song.windows(2).enumerate().zip(clocks) {
            let (prev, next) = (pair[0] as u32, pair[1] as u32);
            let heard = match harmony.get(i) {
                Some(&packed) if with_harmony => Harmony::unpack(packed).unwrap_or(Harmony::SILENT),
                _ => Harmony::SILENT,
            };
            model.step_in(prev, heard, clock, &mut state, &mut logits)?;
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
        bar.inc(song.len() as u64);
    }
    bar.finish_and_clear();
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
    Ok((songs.len(), likelihood))
}

/// A dataset song's notes (drum hits for a drum dataset).
fn decode(song: &[u16], role: Role) -> Vec<GridNote> {
    let tokens: Vec<Token> =
        song.iter().map(|&t| Token::from_id(t as u32).expect("dataset tokens are checked on load")).collect();
    match role {
        Role::Melodic => vocab::decode(&tokens),
        Role::Drums => vocab::decode_hits(&tokens),
    }
}

/// The generated pieces' longest runs shared with the training songs, beside `left_out` songs'
/// (evenly spread, each cut to the longest piece's length) shared with the other songs.
fn copying_of(pieces: &[Vec<GridNote>], train: &TokenStream, role: Role, left_out: usize) -> Copying {
    let encode = |notes: &[GridNote]| match role {
        Role::Melodic => vocab::encode_grid(notes),
        Role::Drums => vocab::encode_hits(notes),
    };
    let generated: Vec<Vec<u32>> = pieces.iter().map(|p| copying::events(&encode(p))).collect();
    let songs: Vec<Vec<u32>> = train
        .document_slices()
        .map(|song| {
            let tokens: Vec<Token> = song.iter().filter_map(|&t| Token::from_id(t as u32)).collect();
            copying::events(&tokens)
        })
        .collect();
    let chosen = evenly_spread((0..songs.len()).collect(), left_out);
    let cut = generated.iter().map(Vec::len).max().unwrap_or(0);
    copying::measure(&generated, &songs, &chosen, cut)
}

/// At most `most` of `items`, evenly spread over them and in their order.
fn evenly_spread<T: Copy>(items: Vec<T>, most: usize) -> Vec<T> {
    if items.len() <= most {
        return items;
    }
    (0..most).map(|i| items[i * items.len() / most]).collect()
}

/// The features of every piece of two notes or more, and how many were left out.
fn features_of(pieces: &[Vec<GridNote>]) -> (Vec<PieceFeatures>, usize) {
    let kept: Vec<PieceFeatures> = pieces.iter().filter_map(|p| PieceFeatures::of(p)).collect();
    let skipped = pieces.len() - kept.len();
    (kept, skipped)
}

/// The lowest and highest random pitch: the piano's 88 keys.
const RANDOM_PITCHES: std::ops::RangeInclusive<u8> = 21..=108;

/// Music with nothing learned, one piece beside each of `like`: as many notes, in `bars` bars,
/// each with a pitch drawn from the piano's keys (drums: a piece of the General MIDI kit), an
/// onset drawn from every step of the grid and a length from one step to a bar (drums: a hit's).
/// Seeded, so the floor is the same on every run.
/// `bars(i)` is how long the `i`-th piece is, in bars.
fn random_pieces(
    like: &[Vec<GridNote>],
    bars: impl Fn(u64) -> u64,
    seed: u64,
    role: Role,
) -> Vec<Vec<GridNote>> {
    let mut rng = Rng::new(seed);
    let bar_steps = BEATS_PER_BAR * STEPS_PER_BEAT as u64;
    let pitches = match role {
        Role::Melodic => RANDOM_PITCHES,
        Role::Drums => GM_KIT,
    };
    let (low, high) = (*pitches.start() as u64, *pitches.end() as u64);
    like.iter()
        .enumerate()
        .map(|(i, piece)| {
            let piece_steps = bars(i as u64) * bar_steps;
            let mut notes: Vec<GridNote> = (0..piece.len())
                .map(|_| {
                    let pitch = (low + rng.next_u64() % (high - low + 1)) as u8;
                    let start = rng.next_u64() % piece_steps;
                    let length = match role {
                        Role::Melodic => 1 + rng.next_u64() % bar_steps,
                        Role::Drums => vocab::HIT_STEPS,
                    };
                    GridNote { start, end: (start + length).min(piece_steps), pitch, velocity: 80 }
                })
                .collect();
            notes.sort_unstable();
            notes
        })
        .collect()
}

/// Scores `scored` against `reference`, feature by feature: the reference's own distances
/// against the distances from each scored piece to each reference piece, and against the scored
/// pieces' own. Both sets are non-empty and the reference holds two pieces or more (checked where
/// they are made).
fn score_set(reference: &[PieceFeatures], scored: &[PieceFeatures], features: &[Feature]) -> SetScore {
    let features: Vec<FeatureScore> = features
        .par_iter()
        .map(|&feature| {
            let reference_values: Vec<&[f64]> = reference.iter().map(|p| p.get(feature)).collect();
            let scored_values: Vec<&[f64]> = scored.iter().map(|p| p.get(feature)).collect();
            let intra = overlap::intra_set_distances(&reference_values);
            let inter = overlap::inter_set_distances(&scored_values, &reference_values);
            let scored_intra = overlap::intra_set_distances(&scored_values);
            FeatureScore {
                feature,
                reference_mean: mean_vector(&reference_values),
                scored_mean: mean_vector(&scored_values),
                comparison: overlap::compare(&intra, &inter)
                    .expect("a reference of two pieces or more and a scored piece give distances"),
                variety: Variety::of(&scored_intra, &intra),
            }
        })
        .collect();
    let mean =
        |values: Vec<f64>| (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64);
    let comparisons = || features.iter().map(|f| &f.comparison);
    // Every feature has its variety, or none has: there is one set of scored pieces.
    let varieties: Option<Vec<&Variety>> = features.iter().map(|f| f.variety.as_ref()).collect();
    let variety = varieties.map(|v| MeanVariety {
        mean_overlapping_area: mean(v.iter().map(|v| v.overlapping_area).collect()).unwrap_or(0.0),
        mean_kl_divergence: mean(v.iter().map(|v| v.kl_divergence).collect()).unwrap_or(0.0),
        mean_spread: mean(v.iter().filter_map(|v| v.spread).collect()),
    });
    SetScore {
        reference_pieces: reference.len(),
        scored_pieces: scored.len(),
        mean_overlapping_area: mean(comparisons().map(|c| c.overlapping_area).collect()).unwrap_or(0.0),
        mean_kl_divergence: mean(comparisons().map(|c| c.kl_divergence).collect()).unwrap_or(0.0),
        variety,
        features,
    }
}

/// The reference scored against itself, as a model that had learned it perfectly would be: the
/// songs at odd places in the dataset's order against those at even places. Halves rather than the whole set
/// against itself, so that no song meets its own copy.
fn ceiling(reference: &[PieceFeatures], features: &[Feature]) -> SetScore {
    let half = |first: usize| reference.iter().skip(first).step_by(2).cloned().collect::<Vec<_>>();
    score_set(&half(0), &half(1), features)
}

fn mean_vector(values: &[&[f64]]) -> Vec<f64> {
    let mut sum = vec![0.0; values.first().map_or(0, |v| v.len())];
    for v in values {
        sum.iter_mut().zip(*v).for_each(|(s, x)| *s += x);
    }
    sum.iter().map(|s| s / values.len() as f64).collect()
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

/// Width of a column of the music table: "notes/bar" and a space.
const COLUMN: usize = 10;

/// A number to `decimals` places, or "-" for one that could not be measured.
fn or_dash(value: Option<f64>, decimals: usize) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.decimals$}"))
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

    let m = &r.music;
    let (s, p) = (&m.settings, &m.settings.sampler);
    let lock = match Scale::parse(&p.scale) {
        Some(Scale::Chromatic) => "no scale lock".to_string(),
        _ => format!("{} {}", p.key, p.scale),
    };
    println!(
        "\nmusic: {} pieces of {} bars (seeds {}..{}; temperature {}, rhythm {}, top-p {}{}, {} voices, {}) \
         against {} {} songs{}",
        m.model.scored_pieces,
        s.bars,
        s.first_seed,
        s.first_seed + s.samples - 1,
        if p.temperature == Some(0.0) { 0.0 } else { s.tuning_played.temperature },
        s.tuning_played.rhythm_temperature,
        s.tuning_played.top_p,
        if s.as_tuned { " as tuned" } else { "" },
        match p.voices {
            0 => format!("{} (as trained)", s.voices_played),
            _ => s.voices_played.to_string(),
        },
        match s.role {
            Role::Melodic => format!("notes {}..{}, {lock}", p.lowest, p.highest),
            Role::Drums => format!("the General MIDI kit, {}..{}", GM_KIT.start(), GM_KIT.end()),
        },
        m.reference_pieces,
        s.reference.describe(),
        match (m.reference_skipped, m.generated_skipped) {
            (0, 0) => String::new(),
            (r, g) => format!("; fewer than two notes: {r} reference songs and {g} pieces left out"),
        }
    );
    println!("ceiling: every other reference song against the rest; floor: random notes");
    println!(
        "OA_g: the distances among the pieces against those among the reference songs; spread: their \
         mean over the songs' (1 = as varied, 0 = every piece alike)\n"
    );
    let header = |title: &str, last: &str| {
        let columns: String =
            m.model.features.iter().map(|f| format!("{:>COLUMN$}", f.feature.column())).collect();
        println!("{}", format!("{title:<18}{columns}{last:>COLUMN$}").trim_end());
    };
    let rows = [("ceiling", &m.ceiling), ("model", &m.model), ("floor", &m.floor)];
    header("overlapping area", "mean");
    for (name, set) in rows {
        let cells: String =
            set.features.iter().map(|f| format!("{:>COLUMN$.3}", f.comparison.overlapping_area)).collect();
        println!("  {name:<16}{cells}{:>COLUMN$.3}", set.mean_overlapping_area);
    }
    header("KL divergence", "mean");
    for (name, set) in rows {
        let cells: String =
            set.features.iter().map(|f| format!("{:>COLUMN$.3}", f.comparison.kl_divergence)).collect();
        println!("  {name:<16}{cells}{:>COLUMN$.3}", set.mean_kl_divergence);
    }
    // The pieces among themselves against the songs among themselves.
    let cell = |value: Option<f64>| format!("{:>COLUMN$}", or_dash(value, 3));
    header("OA_g (variety)", "mean");
    for (name, set) in rows {
        let cells: String =
            set.features.iter().map(|f| cell(f.variety.as_ref().map(|v| v.overlapping_area))).collect();
        println!("  {name:<16}{cells}{}", cell(set.variety.as_ref().map(|v| v.mean_overlapping_area)));
    }
    header("spread", "mean");
    for (name, set) in rows {
        let cells: String =
            set.features.iter().map(|f| cell(f.variety.as_ref().and_then(|v| v.spread))).collect();
        println!("  {name:<16}{cells}{}", cell(set.variety.as_ref().and_then(|v| v.mean_spread)));
    }
    header("feature mean", "");
    let means = [
        ("reference", m.model.features.iter().map(|f| &f.reference_mean).collect::<Vec<_>>()),
        ("model", m.model.features.iter().map(|f| &f.scored_mean).collect()),
        ("floor", m.floor.features.iter().map(|f| &f.scored_mean).collect()),
    ];
    for (name, values) in means {
        // The histogram's mean is twelve numbers: they are in the JSON.
        let cells: String = values
            .iter()
            .map(|v| match v.as_slice() {
                [one] => format!("{one:>COLUMN$.2}"),
                _ => format!("{:>COLUMN$}", "-"),
            })
            .collect();
        println!("  {name:<16}{cells}");
    }
    let c = &m.copying;
    println!(
        "\ncopying: the longest run of events (notes' starts and ends and the time between, velocities \
         aside) a piece shares with one of the {} training songs: {} (median {}); a training song left \
         out, against the others: {} (median {}, {} songs); {}",
        c.training_songs,
        c.generated.longest,
        c.generated.median,
        c.left_out.longest,
        c.left_out.median,
        c.left_out.pieces,
        if c.copies_no_more_than_the_data() {
            "no longer than the data repeats itself"
        } else {
            "LONGER than the data repeats itself: the model copies"
        }
    );
    if let Some(h) = &r.harmony {
        println!(
            "\nfit to the harmony, against {}: held-out NLL {:.3} with the harmony, {:.3} withheld",
            h.against, h.nll_with_harmony, h.nll_harmony_withheld
        );
        if h.each_as_long_as_its_song {
            println!("  (each piece, and its random floor, as long as the validation song it plays against)");
        }
        println!("  {:<34}{:>16}{:>18}", "", "sounding time", "onsets on beats");
        let share = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3}"));
        for (name, fit) in [
            ("data (its own parts; ceiling)", &h.data),
            ("model, given the harmony", &h.model),
            ("model, harmony withheld", &h.withheld),
        ] {
            println!("  {name:<34}{:>16}{:>18}", share(fit.sounding), share(fit.onsets_on_beats));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Four-bar excerpts of the chorales and folk tunes among the engine's fixtures, each
    /// starting at step 0: a small set of real music.
    fn real_excerpts() -> Vec<Vec<GridNote>> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../engine/tests/fixtures/midi");
        let excerpt = 4 * BEATS_PER_BAR * STEPS_PER_BEAT as u64;
        let mut excerpts = Vec::new();
        for name in ["bwv1.6.mid", "bwv248.64-6.mid", "bwv323.mid", "42dHighlandRegimentStrathspey.mid"] {
            let notes = generate::primer_notes(&dir.join(name), Role::Melodic).unwrap();
            let end = notes.iter().map(|n| n.end).max().unwrap();
            for from in (0..end).step_by(excerpt as usize) {
                let piece: Vec<GridNote> = notes
                    .iter()
                    .filter(|n| (from..from + excerpt).contains(&n.start))
                    .map(|n| GridNote { start: n.start - from, end: n.end - from, ..*n })
                    .collect();
                excerpts.push(piece);
            }
        }
        excerpts
    }

    #[test]
    fn a_set_scored_against_itself_overlaps_almost_fully() {
        let (real, _) = features_of(&real_excerpts());
        assert!(real.len() >= 20, "only {} excerpts", real.len());
        let score = score_set(&real, &real, &Feature::MELODIC);
        assert!(score.mean_overlapping_area > 0.9, "{score:#?}");
        assert!(score.features.iter().all(|f| f.reference_mean == f.scored_mean));
        // Among themselves they are the reference among itself.
        let variety = score.variety.unwrap();
        assert!((variety.mean_overlapping_area - 1.0).abs() < 1e-9, "{variety:#?}");
        assert_eq!(variety.mean_spread, Some(1.0));
        // Half of them against the other half vary alike too.
        let ceiling = ceiling(&real, &Feature::MELODIC).variety.unwrap();
        assert!(ceiling.mean_overlapping_area > 0.6, "{ceiling:#?}");
        assert!((ceiling.mean_spread.unwrap() - 1.0).abs() < 0.2, "{ceiling:#?}");
    }

    #[test]
    fn copies_of_one_piece_have_no_variety() {
        let excerpts = real_excerpts();
        let (real, _) = features_of(&excerpts);
        let copies = vec![real[3].clone(); 12];
        let score = score_set(&real, &copies, &Feature::MELODIC);
        assert!(score.features.iter().all(|f| f.variety.as_ref().unwrap().spread == Some(0.0)));
        let variety = score.variety.unwrap();
        assert_eq!(variety.mean_spread, Some(0.0));
        assert!(variety.mean_overlapping_area < 0.2, "{variety:#?}");
        // Four bars of random notes differ from one another more than four bars of music do.
        let random = score_set(
            &real,
            &features_of(&random_pieces(&excerpts, |_| 4, 1, Role::Melodic)).0,
            &Feature::MELODIC,
        );
        assert!(random.variety.unwrap().mean_spread.unwrap() > 1.5);
        // One piece has no other to differ from.
        assert!(score_set(&real, &copies[..1], &Feature::MELODIC).variety.is_none());
    }

    #[test]
    fn random_notes_score_far_below_real_music() {
        let excerpts = real_excerpts();
        let (real, _) = features_of(&excerpts);
        let (random, _) = features_of(&random_pieces(&excerpts, |_| 4, 1, Role::Melodic));
        let (ceiling, floor) =
            (ceiling(&real, &Feature::MELODIC), score_set(&real, &random, &Feature::MELODIC));
        assert!(floor.mean_overlapping_area < 0.6, "{floor:#?}");
        assert!(ceiling.mean_overlapping_area > floor.mean_overlapping_area + 0.2);
        assert!(floor.mean_kl_divergence > ceiling.mean_kl_divergence);
    }

    #[test]
    fn random_pieces_match_their_counterparts_and_repeat_with_the_seed() {
        let excerpts = real_excerpts();
        let random = random_pieces(&excerpts, |_| 4, 9, Role::Melodic);
        let bar_steps = BEATS_PER_BAR * STEPS_PER_BEAT as u64;
        for (r, e) in random.iter().zip(&excerpts) {
            assert_eq!(r.len(), e.len());
            assert!(r.iter().all(|n| RANDOM_PITCHES.contains(&n.pitch) && n.end <= 4 * bar_steps));
            assert!(r.iter().all(|n| n.end > n.start && n.end - n.start <= bar_steps));
        }
        assert_eq!(random, random_pieces(&excerpts, |_| 4, 9, Role::Melodic));
        assert_ne!(random, random_pieces(&excerpts, |_| 4, 10, Role::Melodic));
    }

    #[test]
    fn the_reference_is_spread_over_the_whole_dataset() {
        let spread = evenly_spread((0..10).collect(), 4);
        assert_eq!(spread, vec![0, 2, 5, 7]);
        assert_eq!(evenly_spread(vec![1, 2], 4), vec![1, 2]);
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
