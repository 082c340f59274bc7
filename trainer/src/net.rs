//! The network, in candle: embedding -> stacked LSTM -> dense + ReLU -> dense to the vocabulary.
//!
//! Owns the parameters (named and laid out as PyTorch's `nn.Embedding`, `nn.LSTM`, `nn.Linear`,
//! so a checkpoint reads like one), the training forward pass over a batch of windows, and the
//! conversion to the engine's ONNX layout. The ONNX graph itself is the engine's: this module
//! only hands it plain arrays.

use anyhow::Result;
use candle_core::Var;
use candle_core::{DType, Device, Tensor, D};
use candle_nn::VarMap;
use continuo_engine::harmony::{Harmony, HarmonyInput};
use continuo_engine::model::{LstmWeights, ModelShape, ModelWeights};
use continuo_engine::sampler::Rng;

use crate::dataset::Heard;
use crate::{cross_entropy, lstm};

/// One LSTM layer in PyTorch's layout: gate blocks i, f, g, o.
struct LstmLayer {
    weight_ih: Tensor,
    weight_hh: Tensor,
    bias_ih: Tensor,
    bias_hh: Tensor,
}

pub struct LstmNet {
    pub shape: ModelShape,
    embedding: Tensor,
    layers: Vec<LstmLayer>,
    dense_w: Tensor,
    dense_b: Tensor,
    out_w: Tensor,
    out_b: Tensor,
    /// Threads the fused LSTM runs on (see [`lstm`]).
    threads: usize,
    /// The fused LSTM (the CPU) or candle's ops step by step (other devices).
    fused: bool,
}

/// How a parameter's initial values are drawn.
#[derive(Clone, Copy)]
enum Draw {
    Uniform(f64),
    Normal(f64),
}

impl Draw {
    fn sample(self, rng: &mut Rng) -> f32 {
        match self {
            Draw::Uniform(bound) => ((rng.next_f64() * 2.0 - 1.0) * bound) as f32,
            // Box-Muller.
            Draw::Normal(std) => {
                let u = 1.0 - rng.next_f64();
                ((-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.next_f64()).cos() * std) as f32
            }
        }
    }
}

impl LstmNet {
    /// Creates the parameters in `varmap`, drawn from a seeded generator the way PyTorch
    /// initialises them (embedding N(0, 1), everything else U(-1/sqrt(fan_in), 1/sqrt(fan_in))),
    /// so that the same seed gives the same network on every machine. Load a checkpoint into
    /// `varmap` afterwards to continue from it.
    pub fn new(
        shape: ModelShape,
        varmap: &VarMap,
        device: &Device,
        seed: u64,
        threads: usize,
    ) -> Result<LstmNet> {
        let mut rng = Rng::new(seed);
        let h = shape.hidden;
        let mut params: Vec<(String, Vec<usize>, Draw)> =
            vec![("embedding.weight".into(), vec![shape.vocab, shape.embed], Draw::Normal(1.0))];
        for l in 0..shape.layers {
            let bound = Draw::Uniform(1.0 / (h as f64).sqrt());
            params.push((format!("lstm.weight_ih_l{l}"), vec![4 * h, shape.lstm_input(l)], bound));
            params.push((format!("lstm.weight_hh_l{l}"), vec![4 * h, h], bound));
            params.push((format!("lstm.bias_ih_l{l}"), vec![4 * h], bound));
            params.push((format!("lstm.bias_hh_l{l}"), vec![4 * h], bound));
        }
        let (dense_bound, out_bound) =
            (Draw::Uniform(1.0 / (h as f64).sqrt()), Draw::Uniform(1.0 / (shape.dense as f64).sqrt()));
        params.push(("dense.weight".into(), vec![shape.dense, h], dense_bound));
        params.push(("dense.bias".into(), vec![shape.dense], dense_bound));
        params.push(("out.weight".into(), vec![shape.vocab, shape.dense], out_bound));
        params.push(("out.bias".into(), vec![shape.vocab], out_bound));

        let mut data = varmap.data().lock().expect("the var map is not poisoned");
        let mut take = |name: &str, dims: &[usize], draw: Draw| -> Result<Tensor> {
            let values: Vec<f32> =
                (0..dims.iter().product::<usize>()).map(|_| draw.sample(&mut rng)).collect();
            let var = Var::from_tensor(&Tensor::from_vec(values, dims, device)?)?;
            data.insert(name.to_string(), var.clone());
            Ok(var.as_tensor().clone())
        };
        let mut tensors = params
            .iter()
            .map(|(name, dims, draw)| take(name, dims, *draw))
            .collect::<Result<Vec<_>>>()?
            .into_iter();
        let mut next = || tensors.next().expect("one tensor per parameter");
        let embedding = next();
        let layers = (0..shape.layers)
            .map(|_| LstmLayer { weight_ih: next(), weight_hh: next(), bias_ih: next(), bias_hh: next() })
            .collect();
        Ok(LstmNet {
            shape,
            embedding,
            layers,
            dense_w: next(),
            dense_b: next(),
            out_w: next(),
            out_b: next(),
            threads: threads.max(1),
            fused: device.is_cpu(),
        })
    }

    /// Logits [batch, time, vocab] for token ids [batch, time] (u32) and, for a network that
    /// hears the harmony, the harmony each token is read in [batch, time, K] (see
    /// [`harmony_numbers`]); every window from a zero state.
    pub fn forward(&self, tokens: &Tensor, harmony: Option<&Tensor>) -> Result<Tensor> {
        let (batch, time) = tokens.dims2()?;
        let layout = RowLayout::new(batch, time, self.groups(batch, tokens.device()));
        let harmony = harmony.map(|h| layout.rows_of_vectors(h)).transpose()?;
        let logits = self.logits(&layout.rows_of(tokens)?, harmony.as_ref(), layout, None)?;
        layout.windows_of(&logits)
    }

    /// Mean next-token cross-entropy of windows [batch, time + 1]: inputs are all but the last
    /// token, targets all but the first; `harmony` [batch, time, K] is what each input is read
    /// in, for a network that hears it. With `dropout` (training), each LSTM layer's output is
    /// dropped out.
    pub fn loss(
        &self,
        windows: &Tensor,
        harmony: Option<&Tensor>,
        dropout: Option<Dropout>,
    ) -> Result<Tensor> {
        let (batch, span) = windows.dims2()?;
        let layout = RowLayout::new(batch, span - 1, self.groups(batch, windows.device()));
        let inputs = layout.rows_of(&windows.narrow(1, 0, span - 1)?)?;
        let targets = layout.rows_of(&windows.narrow(1, 1, span - 1)?)?;
        let harmony = harmony.map(|h| layout.rows_of_vectors(h)).transpose()?;
        let logits = self.logits(&inputs, harmony.as_ref(), layout, dropout)?;
        Ok(if layout.groups > 0 {
            cross_entropy::mean(&logits, &targets)?
        } else {
            candle_nn::loss::cross_entropy(&logits, &targets)?
        })
    }

    /// How many groups of windows the fused LSTM runs side by side: one per thread, as many as
    /// divide the batch; 0 when the step-by-step cell runs instead.
    fn groups(&self, batch: usize, device: &Device) -> usize {
        if !self.fused || !device.is_cpu() {
            return 0;
        }
        (1..=self.threads.min(batch)).rev().find(|&g| batch.is_multiple_of(g)).unwrap_or(1)
    }

    /// Logits [rows, vocab] of token rows (and their harmony's, [rows, K]) laid out as `layout`
    /// says.
    fn logits(
        &self,
        tokens: &Tensor,
        harmony: Option<&Tensor>,
        layout: RowLayout,
        dropout: Option<Dropout>,
    ) -> Result<Tensor> {
        if harmony.is_some() != self.shape.harmony.is_some() {
            anyhow::bail!("a network hears the harmony exactly when its data has one");
        }
        let embed = self.shape.embed;
        let mask = |layer: usize| -> Result<Option<Tensor>> {
            dropout.map(|d| d.mask(layout, self.shape.hidden, layer, tokens.device())).transpose()
        };
        let features = if layout.groups > 0 {
            let mut x: Option<Tensor> = None;
            for (l, layer) in self.layers.iter().enumerate() {
                let bias = (&layer.bias_ih + &layer.bias_hh)?;
                // The input side of every step at once. The first layer's input is an embedding
                // row, so its input side is a row of the embedding projected by W_ih: projecting
                // the vocabulary once (384 rows) costs a fraction of projecting every token, in
                // the forward pass and the backward alike.
                let input_side = match (&x, harmony) {
                    (None, None) => self.embedding.matmul(&layer.weight_ih.t()?)?.index_select(tokens, 0)?,
                    // The first layer reads [embedding, harmony]: the harmony's columns of W_ih
                    // project it, beside the embedding's.
                    (None, Some(harmony)) => {
                        let (on_tokens, on_harmony) = (
                            layer.weight_ih.narrow(1, 0, embed)?,
                            layer.weight_ih.narrow(1, embed, harmony.dim(1)?)?,
                        );
                        (self.embedding.matmul(&on_tokens.t()?)?.index_select(tokens, 0)?
                            + harmony.matmul(&on_harmony.t()?)?)?
                    }
                    (Some(x), _) => x.matmul(&layer.weight_ih.t()?)?,
                };
                let h = lstm::layer(&input_side, &layer.weight_hh, &bias, layout.time, layout.groups)?;
                x = Some(match mask(l)? {
                    Some(mask) => (h * mask)?,
                    None => h,
                });
            }
            x.expect("a network has at least one layer")
        } else {
            // Time-major rows: step t's tokens are the t-th row of [time, batch].
            let steps = tokens.reshape((layout.time, layout.batch))?;
            let mut x: Vec<Tensor> = (0..layout.time)
                .map(|t| self.embedding.index_select(&steps.get(t)?, 0))
                .collect::<candle_core::Result<_>>()?;
            if let Some(harmony) = harmony {
                let steps = harmony.reshape((layout.time, layout.batch, harmony.dim(1)?))?;
                x = x
                    .iter()
                    .enumerate()
                    .map(|(t, embedded)| Tensor::cat(&[embedded, &steps.get(t)?], 1))
                    .collect::<candle_core::Result<_>>()?;
            }
            for (l, layer) in self.layers.iter().enumerate() {
                let weight = Tensor::cat(&[&layer.weight_ih, &layer.weight_hh], 1)?;
                x = step_by_step(&x, &weight, &(&layer.bias_ih + &layer.bias_hh)?)?;
                if let Some(mask) = mask(l)? {
                    let steps = mask.chunk(layout.time, 0)?;
                    x = x.iter().zip(&steps).map(|(h, m)| h * m).collect::<candle_core::Result<_>>()?;
                }
            }
            Tensor::cat(&x, 0)?
        };
        let dense = features.matmul(&self.dense_w.t()?)?.broadcast_add(&self.dense_b)?.relu()?;
        Ok(dense.matmul(&self.out_w.t()?)?.broadcast_add(&self.out_b)?)
    }

    /// The weights in the engine's ONNX layout: LSTM gate blocks reordered from PyTorch's
    /// i, f, g, o to ONNX's i, o, f, c, and B = [b_ih; b_hh].
    pub fn to_model_weights(&self) -> Result<ModelWeights> {
        let h = self.shape.hidden;
        let flat = |t: &Tensor| -> Result<Vec<f32>> { Ok(t.flatten_all()?.to_vec1::<f32>()?) };
        let reorder = |values: Vec<f32>| -> Vec<f32> {
            let block = values.len() / 4;
            [0, 3, 1, 2].iter().flat_map(|&g| values[g * block..(g + 1) * block].to_vec()).collect()
        };
        let lstm = self
            .layers
            .iter()
            .map(|layer| {
                let mut b = reorder(flat(&layer.bias_ih)?);
                b.extend(reorder(flat(&layer.bias_hh)?));
                debug_assert_eq!(b.len(), 8 * h);
                Ok(LstmWeights {
                    w: reorder(flat(&layer.weight_ih)?),
                    r: reorder(flat(&layer.weight_hh)?),
                    b,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ModelWeights {
            embedding: flat(&self.embedding)?,
            lstm,
            dense_w: flat(&self.dense_w)?,
            dense_b: flat(&self.dense_b)?,
            out_w: flat(&self.out_w)?,
            out_b: flat(&self.out_b)?,
        })
    }
}

/// The harmony numbers [windows, time, K] the network reads for what each input token is heard
/// with (windows back to back), as the engine's [`HarmonyInput`] writes them for the plugin.
pub fn harmony_numbers(
    heard: &[Heard],
    windows: usize,
    input: HarmonyInput,
    device: &Device,
) -> Result<Tensor> {
    let width = input.width();
    let mut numbers = vec![0.0f32; heard.len() * width];
    for (&(packed, bar_place), out) in heard.iter().zip(numbers.chunks_exact_mut(width)) {
        input.write(Harmony::unpack(packed).unwrap_or(Harmony::SILENT), bar_place as u64, out);
    }
    Ok(Tensor::from_vec(numbers, (windows, heard.len() / windows.max(1), width), device)?)
}

/// Dropout of the LSTM layers' outputs in a training step: each unit of each token's output
/// is zeroed with probability `rate` and the rest scaled by 1 / (1 - rate). The masks come from
/// `seed` (the run's seed and the step), so a resumed run drops the units an uninterrupted one
/// would.
#[derive(Debug, Clone, Copy)]
pub struct Dropout {
    pub rate: f64,
    pub seed: u64,
}

impl Dropout {
    /// The mask of one layer's output, as rows laid out as `layout` says [rows, hidden]: 0 or
    /// 1 / (1 - rate). It is drawn window by window, so each token of each window drops the
    /// same units whatever the layout (the number of threads, or the step-by-step cell).
    fn mask(self, layout: RowLayout, hidden: usize, layer: usize, device: &Device) -> Result<Tensor> {
        let mut rng = Rng::new(self.seed ^ (layer as u64 + 1).wrapping_mul(0xD1B5_4A32_D192_ED03));
        let keep = (1.0 / (1.0 - self.rate)) as f32;
        let values: Vec<f32> = (0..layout.batch * layout.time * hidden)
            .map(|_| if rng.next_f64() < self.rate { 0.0 } else { keep })
            .collect();
        let groups = layout.groups.max(1);
        Ok(Tensor::from_vec(values, (groups, layout.batch / groups, layout.time, hidden), device)?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((layout.batch * layout.time, hidden))?)
    }
}

/// How a batch of windows [batch, time] is laid out as rows for the network: `groups` groups of
/// windows, each time-major (the fused LSTM's layout, see [`lstm::layer`]); with no groups, as
/// one time-major block. The loss is a mean over every token, so the order is free to choose.
#[derive(Clone, Copy)]
struct RowLayout {
    batch: usize,
    time: usize,
    groups: usize,
}

impl RowLayout {
    fn new(batch: usize, time: usize, groups: usize) -> RowLayout {
        RowLayout { batch, time, groups }
    }

    /// [batch, time] -> [groups * time * windows] (rows of token ids).
    fn rows_of(self, windows: &Tensor) -> Result<Tensor> {
        let groups = self.groups.max(1);
        Ok(windows
            .reshape((groups, self.batch / groups, self.time))?
            .transpose(1, 2)?
            .contiguous()?
            .flatten_all()?)
    }

    /// [batch, time, K] -> [groups * time * windows, K]: each token's vector in the rows' order.
    fn rows_of_vectors(self, windows: &Tensor) -> Result<Tensor> {
        let groups = self.groups.max(1);
        let width = windows.dim(2)?;
        Ok(windows
            .reshape((groups, self.batch / groups, self.time, width))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((self.batch * self.time, width))?)
    }

    /// [rows, vocab] -> [batch, time, vocab], undoing `rows_of`.
    fn windows_of(self, rows: &Tensor) -> Result<Tensor> {
        let groups = self.groups.max(1);
        let vocab = rows.dim(1)?;
        Ok(rows
            .reshape((groups, self.time, self.batch / groups, vocab))?
            .transpose(1, 2)?
            .contiguous()?
            .reshape((self.batch, self.time, vocab))?)
    }
}

/// The LSTM layer as candle ops, one step at a time, for devices without the fused layer:
/// the inputs of every step, each [batch, input], `weight` [4H, input + H] (gates i, f, g, o),
/// `bias` [4H]; returns h of every step, each [batch, H].
///
/// Every step works on tensors of its own: candle's gradient of a slice is padded to the whole
/// sliced tensor, so slicing one [time, batch, ...] tensor per step would cost O(time^2) in the
/// backward pass.
fn step_by_step(inputs: &[Tensor], weight: &Tensor, bias: &Tensor) -> Result<Vec<Tensor>> {
    let hidden = weight.dim(0)? / 4;
    let batch = inputs[0].dim(0)?;
    let weight = weight.t()?;
    let mut h = Tensor::zeros((batch, hidden), DType::F32, inputs[0].device())?;
    let mut c = h.clone();
    let mut outputs = Vec::with_capacity(inputs.len());
    for input in inputs {
        let gates = Tensor::cat(&[input, &h], 1)?.matmul(&weight)?.broadcast_add(bias)?;
        let gates = gates.chunk(4, D::Minus1)?;
        let input_gate = candle_nn::ops::sigmoid(&gates[0])?;
        let forget_gate = candle_nn::ops::sigmoid(&gates[1])?;
        let candidate = gates[2].tanh()?;
        let output_gate = candle_nn::ops::sigmoid(&gates[3])?;
        c = ((forget_gate * &c)? + (input_gate * candidate)?)?;
        h = (output_gate * c.tanh()?)?;
        outputs.push(h.clone());
    }
    Ok(outputs)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A small network on random windows, with and without the harmony: the fused LSTM and
    /// candle's step-by-step cell give the same loss and the same gradient for every parameter,
    /// with one group and with several.
    #[test]
    fn the_fused_lstm_matches_the_step_by_step_cell_forward_and_backward() {
        let device = Device::Cpu;
        for harmony_input in
            [None, Some(HarmonyInput::PitchClassesAndBass), Some(HarmonyInput::PitchClassesAndMeter)]
        {
            let shape =
                ModelShape { layers: 2, hidden: 12, embed: 6, dense: 10, vocab: 384, harmony: harmony_input };
            let (batch, span) = (6, 9);
            let mut rng = Rng::new(3);
            let ids: Vec<u32> = (0..batch * span).map(|_| (rng.next_u64() % 384) as u32).collect();
            let windows = Tensor::from_slice(&ids, (batch, span), &device).unwrap();
            let packed: Vec<Heard> = (0..batch * (span - 1))
                .map(|i| {
                    let pitches = [(rng.next_u64() % 128) as u8, (rng.next_u64() % 128) as u8];
                    (Harmony::of_pitches(pitches).pack(), (i * 5 % 96) as u8)
                })
                .collect();
            let harmony = harmony_input.map(|input| harmony_numbers(&packed, batch, input, &device).unwrap());
            let inputs_harmony = harmony.as_ref();
            let all_harmony = harmony_input.map(|input| {
                let packed: Vec<Heard> = (0..batch * span).map(|i| packed[i % packed.len()]).collect();
                harmony_numbers(&packed, batch, input, &device).unwrap()
            });
            for threads in [1, 2, 3] {
                let varmap = VarMap::new();
                let mut net = LstmNet::new(shape, &varmap, &device, 11, threads).unwrap();
                let dropout = Some(Dropout { rate: 0.25, seed: 9 });
                let fused_loss = net.loss(&windows, inputs_harmony, dropout).unwrap();
                let fused = fused_loss.backward().unwrap();
                net.fused = false;
                let reference_loss = net.loss(&windows, inputs_harmony, dropout).unwrap();
                let reference = reference_loss.backward().unwrap();
                let (a, b) =
                    (fused_loss.to_scalar::<f32>().unwrap(), reference_loss.to_scalar::<f32>().unwrap());
                assert!((a - b).abs() < 1e-5, "{threads} threads: loss {a} against {b}");
                for (name, var) in varmap.data().lock().unwrap().iter() {
                    let (g1, g2) = (fused.get(var).unwrap(), reference.get(var).unwrap());
                    let diff =
                        (g1 - g2).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                    let scale = g2.abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
                    assert!(
                        diff <= 1e-4 * scale.max(1e-3),
                        "{name} with {threads} threads: {diff} (largest {scale})"
                    );
                }
                net.fused = true;
                let logits = net.forward(&windows, all_harmony.as_ref()).unwrap();
                net.fused = false;
                let reference = net.forward(&windows, all_harmony.as_ref()).unwrap();
                assert_eq!(logits.dims(), &[batch, span, 384]);
                let diff = (logits - reference)
                    .unwrap()
                    .abs()
                    .unwrap()
                    .max_all()
                    .unwrap()
                    .to_scalar::<f32>()
                    .unwrap();
                assert!(diff < 1e-5, "logits differ by {diff}");
            }
        }
    }
}
