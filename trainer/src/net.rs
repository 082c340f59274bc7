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
use continuo_engine::model::{LstmWeights, ModelShape, ModelWeights};
use continuo_engine::sampler::Rng;

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

/// Per layer (h, c), each [batch, hidden].
pub type State = Vec<(Tensor, Tensor)>;

impl LstmNet {
    /// Creates the parameters in `varmap`, drawn from a seeded generator the way PyTorch
    /// initialises them (embedding N(0, 1), everything else U(-1/sqrt(fan_in), 1/sqrt(fan_in))),
    /// so that the same seed gives the same network on every machine. Load a checkpoint into
    /// `varmap` afterwards to continue from it.
    pub fn new(shape: ModelShape, varmap: &VarMap, device: &Device, seed: u64) -> Result<LstmNet> {
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
        })
    }

    /// Zero state for a batch, as at the start of every training window.
    pub fn zero_state(&self, batch: usize, device: &Device) -> Result<State> {
        let zeros = Tensor::zeros((batch, self.shape.hidden), DType::F32, device)?;
        Ok(vec![(zeros.clone(), zeros); self.shape.layers])
    }

    /// Logits [batch, time, vocab] for token ids [batch, time] (u32), from `state`; returns the
    /// state after the last step too.
    ///
    /// Every step works on tensors of its own: candle's gradient of a slice is padded to the
    /// whole sliced tensor, so slicing a [batch, time, ...] tensor once per step would cost
    /// O(time^2) in the backward pass (measured: 3.4k tokens/s with slicing, see ARCHITECTURE).
    pub fn forward(&self, tokens: &Tensor, state: State) -> Result<(Tensor, State)> {
        let (_, time) = tokens.dims2()?;
        // Token columns carry no gradient, so slicing them is free.
        let columns = tokens.t()?.contiguous()?;
        let mut inputs: Vec<Tensor> = (0..time)
            .map(|t| self.embedding.index_select(&columns.get(t)?, 0))
            .collect::<candle_core::Result<_>>()?;
        let mut next_state = Vec::with_capacity(self.layers.len());
        for (layer, (mut h, mut c)) in self.layers.iter().zip(state) {
            // One matmul per step: [x_t, h] times [W_ih, W_hh]^T.
            let weights = Tensor::cat(&[&layer.weight_ih, &layer.weight_hh], 1)?.t()?;
            let bias = (&layer.bias_ih + &layer.bias_hh)?;
            for x in inputs.iter_mut() {
                let gates = Tensor::cat(&[&*x, &h], 1)?.matmul(&weights)?.broadcast_add(&bias)?;
                let gates = gates.chunk(4, D::Minus1)?;
                let input_gate = candle_nn::ops::sigmoid(&gates[0])?;
                let forget_gate = candle_nn::ops::sigmoid(&gates[1])?;
                let candidate = gates[2].tanh()?;
                let output_gate = candle_nn::ops::sigmoid(&gates[3])?;
                c = ((forget_gate * &c)? + (input_gate * candidate)?)?;
                h = (output_gate * c.tanh()?)?;
                *x = h.clone();
            }
            next_state.push((h, c));
        }
        let features = Tensor::stack(&inputs, 1)?;
        let dense = features.broadcast_matmul(&self.dense_w.t()?)?.broadcast_add(&self.dense_b)?.relu()?;
        let logits = dense.broadcast_matmul(&self.out_w.t()?)?.broadcast_add(&self.out_b)?;
        Ok((logits, next_state))
    }

    /// Mean next-token cross-entropy of windows [batch, time + 1]: inputs are all but the last
    /// token, targets all but the first.
    pub fn loss(&self, windows: &Tensor) -> Result<Tensor> {
        let (batch, span) = windows.dims2()?;
        let inputs = windows.narrow(1, 0, span - 1)?;
        let targets = windows.narrow(1, 1, span - 1)?;
        let (logits, _) = self.forward(&inputs, self.zero_state(batch, windows.device())?)?;
        let logits = logits.reshape((batch * (span - 1), self.shape.vocab))?;
        Ok(candle_nn::loss::cross_entropy(&logits, &targets.flatten_all()?)?)
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
