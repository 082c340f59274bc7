//! The training loss on the CPU, fused: the mean softmax cross-entropy of logits against target
//! tokens as one op, forward and backward.
//!
//! Owns the loss's numerics (each row's maximum subtracted before `exp`, sums in f64) and its
//! gradient, softmax minus the target's one-hot. Candle's own cross-entropy is a log-softmax,
//! a gather and a mean, each a pass over the [tokens, vocabulary] logits with a tensor of its
//! own, and as many again backward; this is one pass each way.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp2, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu::{self, contiguous, widest_vectors};

/// Mean cross-entropy (nats) of `logits` [rows, vocab] (f32) against `targets` [rows] (u32),
/// as a scalar tensor with a backward pass.
pub fn mean(logits: &Tensor, targets: &Tensor) -> candle_core::Result<Tensor> {
    let op = SoftmaxCrossEntropy { rows: Mutex::new(Vec::new()) };
    logits.contiguous()?.apply_op2_arc(&targets.contiguous()?, Arc::new(Box::new(op)))
}

struct SoftmaxCrossEntropy {
    /// Each row's maximum logit and the log of its sum of exp(logit - maximum), from the
    /// forward pass: the softmax, for the backward pass.
    rows: Mutex<Vec<(f32, f32)>>,
}

/// Rows a thread takes at a time.
const ROWS_PER_TASK: usize = 64;

impl CustomOp2 for SoftmaxCrossEntropy {
    fn name(&self) -> &'static str {
        "softmax-cross-entropy"
    }

    fn cpu_fwd(
        &self,
        logits: &CpuStorage,
        logits_layout: &Layout,
        targets: &CpuStorage,
        targets_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (rows, vocab) = logits_layout.shape().dims2()?;
        if targets_layout.shape().dims1()? != rows {
            candle_core::bail!("cross-entropy: {rows} rows of logits, targets {:?}", targets_layout.shape());
        }
        let logits = contiguous(logits, logits_layout)?;
        let Some((start, end)) = targets_layout.contiguous_offsets() else {
            candle_core::bail!("cross-entropy: the targets must be contiguous")
        };
        let targets = &targets.as_slice::<u32>()?[start..end];
        if let Some(bad) = targets.iter().find(|&&t| t as usize >= vocab) {
            candle_core::bail!("cross-entropy: target {bad} outside a vocabulary of {vocab}");
        }
        let stats: Vec<(f32, f32)> = logits
            .par_chunks(vocab * ROWS_PER_TASK)
            .flat_map_iter(|chunk| chunk.chunks_exact(vocab).map(row_statistics).collect::<Vec<_>>())
            .collect();
        let total: f64 = stats
            .iter()
            .zip(logits.chunks_exact(vocab))
            .zip(targets)
            .map(|(((max, log_sum), row), &target)| (max + log_sum - row[target as usize]) as f64)
            .sum();
        *self.rows.lock().expect("not poisoned") = stats;
        Ok((CpuStorage::F32(vec![(total / rows.max(1) as f64) as f32]), Shape::from(())))
    }

    fn bwd(
        &self,
        logits: &Tensor,
        targets: &Tensor,
        _loss: &Tensor,
        grad_loss: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let (rows, vocab) = logits.dims2()?;
        let stats = std::mem::take(&mut *self.rows.lock().expect("not poisoned"));
        if stats.len() != rows {
            candle_core::bail!("cross-entropy: backward twice, or without a forward pass");
        }
        let scale = grad_loss.to_scalar::<f32>()? / rows.max(1) as f32;
        let targets = targets.to_vec1::<u32>()?;
        let mut grad = logits.flatten_all()?.to_vec1::<f32>()?;
        grad.par_chunks_mut(vocab * ROWS_PER_TASK).enumerate().for_each(|(task, chunk)| {
            for (i, row) in chunk.chunks_exact_mut(vocab).enumerate() {
                let r = task * ROWS_PER_TASK + i;
                let (max, log_sum) = stats[r];
                softmax_in_place(row, max, log_sum, scale);
                row[targets[r] as usize] -= scale;
            }
        });
        Ok((Some(Tensor::from_vec(grad, (rows, vocab), logits.device())?), None))
    }
}

/// A row's maximum and log sum of exp(logit - maximum).
fn row_statistics(row: &[f32]) -> (f32, f32) {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    (max, sum_of_exp(row, max).ln())
}

widest_vectors! {
    /// The sum of exp(x - shift) over a row.
    fn sum_of_exp_dispatch(row: &[f32], shift: f32, sum: &mut f32) => sum_of_exp_portable
}

fn sum_of_exp(row: &[f32], shift: f32) -> f32 {
    let mut sum = 0.0;
    sum_of_exp_dispatch(row, shift, &mut sum);
    sum
}

#[inline(always)]
fn sum_of_exp_portable(row: &[f32], shift: f32, sum: &mut f32) {
    // Eight partial sums, so the loop vectorises (floating-point addition does not reorder).
    let mut lanes = [0.0f32; 8];
    let mut chunks = row.chunks_exact(8);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += cpu::exp(x - shift);
        }
    }
    *sum = lanes.iter().sum::<f32>() + chunks.remainder().iter().map(|&x| cpu::exp(x - shift)).sum::<f32>();
}

widest_vectors! {
    /// row := softmax(row) * scale, given the row's maximum and log sum of exp.
    fn softmax_in_place(row: &mut [f32], max: f32, log_sum: f32, scale: f32) => softmax_in_place_portable
}

#[inline(always)]
fn softmax_in_place_portable(row: &mut [f32], max: f32, log_sum: f32, scale: f32) {
    let shift = max + log_sum;
    for x in row.iter_mut() {
        *x = cpu::exp(*x - shift) * scale;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// The fused loss and its gradient against candle's own cross-entropy.
    #[test]
    fn matches_candles_cross_entropy_and_its_gradient() {
        let device = Device::Cpu;
        let (rows, vocab) = (70, 384);
        let mut rng = continuo_engine::sampler::Rng::new(5);
        let values: Vec<f32> = (0..rows * vocab).map(|_| (rng.next_f64() * 20.0 - 10.0) as f32).collect();
        let targets: Vec<u32> = (0..rows).map(|_| (rng.next_u64() % vocab as u64) as u32).collect();
        let logits = Var::from_tensor(&Tensor::from_vec(values, (rows, vocab), &device).unwrap()).unwrap();
        let targets = Tensor::from_vec(targets, rows, &device).unwrap();
        let fused = mean(logits.as_tensor(), &targets).unwrap();
        let reference = candle_nn::loss::cross_entropy(logits.as_tensor(), &targets).unwrap();
        let (a, b) = (fused.to_scalar::<f32>().unwrap(), reference.to_scalar::<f32>().unwrap());
        assert!((a - b).abs() < 1e-5 * b.abs(), "loss {a} against {b}");
        let scaled = (fused * 3.0).unwrap();
        let g1 = scaled.backward().unwrap().remove(logits.as_tensor()).unwrap();
        let g2 = (reference * 3.0).unwrap().backward().unwrap().remove(logits.as_tensor()).unwrap();
        let diff = (g1 - g2).unwrap().abs().unwrap().max_all().unwrap().to_scalar::<f32>().unwrap();
        assert!(diff < 1e-6, "gradients differ by {diff}");
    }
}
