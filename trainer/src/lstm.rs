//! The LSTM layer's recurrence in training on the CPU, fused: one op runs a layer over a whole
//! batch of windows, forward and backward through time, as one small matrix product per step
//! and two elementwise kernels.
//!
//! Owns the layout of a layer's batch (groups of windows, each time-major), the forward
//! recurrence (the recurrent product, then the cell update), the saved activations and
//! backpropagation through time. The input side of every step, x W_ih^T, is one large product
//! the caller makes with candle before the op (for the first layer, a lookup in the embedding
//! projected once); the op hands its gradient back, so candle's graph holds a few nodes per
//! layer instead of about fifteen per time step.
//!
//! Windows are split into `groups` of equal size that never meet (each window's recurrence is
//! its own), so with N threads each thread runs one group from the first step to the last and
//! back with no synchronisation in between; the groups' weight gradients are summed at the end.

use std::sync::{Arc, Mutex};

use candle_core::{CpuStorage, CustomOp3, Layout, Shape, Tensor};
use rayon::prelude::*;

use crate::cpu::{self, contiguous, widest_vectors, MatMut, Matrix};

/// One LSTM layer over `groups` groups of windows, each `steps` long, as a candle op with its
/// own backward. Inputs (all contiguous f32):
/// - `input_side` [groups * steps * windows, 4 * hidden]: x W_ih^T of every step, group after
///   group, each time-major (the rows of step t of a group are its windows in order);
/// - `weight_hh` [4 * hidden, hidden]: PyTorch's layout, gate blocks i, f, g, o;
/// - `bias` [4 * hidden]: `bias_ih + bias_hh`.
///
/// Output: h of every step [rows, hidden], in the rows of `input_side`. Every window starts from
/// a zero state, as training windows do.
pub fn layer(
    input_side: &Tensor,
    weight_hh: &Tensor,
    bias: &Tensor,
    steps: usize,
    groups: usize,
) -> candle_core::Result<Tensor> {
    let op = FusedLstm { steps, groups, saved: Mutex::new(None) };
    input_side.apply_op3_arc(weight_hh, bias, Arc::new(Box::new(op)))
}

struct FusedLstm {
    steps: usize,
    groups: usize,
    /// The forward pass's activations, one per group, for the backward pass.
    saved: Mutex<Option<Vec<Activations>>>,
}

/// What the backward pass needs of one group's forward pass.
struct Activations {
    /// The gates after their nonlinearities (i, f, g, o), [rows, 4H].
    gates: Vec<f32>,
    /// The cell state c_t, [rows, H].
    cells: Vec<f32>,
    /// tanh(c_t), [rows, H].
    tanh_cells: Vec<f32>,
}

/// The sizes of one call, checked against the tensors.
#[derive(Clone, Copy)]
struct Dims {
    steps: usize,
    /// Windows in a group.
    windows: usize,
    hidden: usize,
}

impl Dims {
    fn of(
        op: &FusedLstm,
        input_side: &Layout,
        weight_hh: &Layout,
        bias: &Layout,
    ) -> candle_core::Result<Dims> {
        let (rows, gates) = input_side.shape().dims2()?;
        let hidden = gates / 4;
        let per_group = op.steps * op.groups;
        if gates != 4 * hidden
            || weight_hh.shape().dims2()? != (gates, hidden)
            || bias.shape().dims1()? != gates
        {
            candle_core::bail!(
                "fused LSTM: weight {:?} and bias {:?} do not fit gates of {gates}",
                weight_hh.shape(),
                bias.shape()
            );
        }
        if per_group == 0 || rows % per_group != 0 {
            candle_core::bail!("fused LSTM: {rows} rows are not {} groups of {} steps", op.groups, op.steps);
        }
        Ok(Dims { steps: op.steps, windows: rows / per_group, hidden })
    }

    /// Rows of one group.
    fn rows(self) -> usize {
        self.steps * self.windows
    }
}

/// A tensor's values, copied out (f32 on the CPU).
fn values(t: &Tensor) -> candle_core::Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

impl CustomOp3 for FusedLstm {
    fn name(&self) -> &'static str {
        "fused-lstm"
    }

    fn cpu_fwd(
        &self,
        input_side: &CpuStorage,
        input_layout: &Layout,
        weight_hh: &CpuStorage,
        weight_layout: &Layout,
        bias: &CpuStorage,
        bias_layout: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let d = Dims::of(self, input_layout, weight_layout, bias_layout)?;
        let (input_side, weight_hh, bias) = (
            contiguous(input_side, input_layout)?,
            contiguous(weight_hh, weight_layout)?,
            contiguous(bias, bias_layout)?,
        );
        let mut h = vec![0.0f32; self.groups * d.rows() * d.hidden];
        let activations: Vec<Activations> = h
            .par_chunks_mut(d.rows() * d.hidden)
            .zip(input_side.par_chunks(d.rows() * 4 * d.hidden))
            .map(|(h, input_side)| forward(d, input_side, weight_hh, bias, h))
            .collect();
        *self.saved.lock().expect("not poisoned") = Some(activations);
        Ok((CpuStorage::F32(h), Shape::from((self.groups * d.rows(), d.hidden))))
    }

    fn bwd(
        &self,
        input_side: &Tensor,
        weight_hh: &Tensor,
        bias: &Tensor,
        h: &Tensor,
        grad_h: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let d = Dims::of(self, input_side.layout(), weight_hh.layout(), bias.layout())?;
        let Some(activations) = self.saved.lock().expect("not poisoned").take() else {
            candle_core::bail!("fused LSTM: backward twice, or without a forward pass")
        };
        let (weight_values, h_values, grad_h_values) = (values(weight_hh)?, values(h)?, values(grad_h)?);
        let (rows, hs) = (d.rows(), d.hidden);
        let mut grad_gates = vec![0.0f32; self.groups * rows * 4 * hs];
        let per_group: Vec<(Vec<f32>, Vec<f32>)> = grad_gates
            .par_chunks_mut(rows * 4 * hs)
            .zip(activations.par_iter())
            .zip(h_values.par_chunks(rows * hs).zip(grad_h_values.par_chunks(rows * hs)))
            .map(|((grad_gates, saved), (h, grad_h))| {
                backward(d, &weight_values, saved, h, grad_h, grad_gates)
            })
            .collect();
        // The groups' weight and bias gradients add up.
        let mut grad_weight = vec![0.0f32; 4 * hs * hs];
        let mut grad_bias = vec![0.0f32; 4 * hs];
        for (w, b) in &per_group {
            grad_weight.iter_mut().zip(w).for_each(|(sum, g)| *sum += g);
            grad_bias.iter_mut().zip(b).for_each(|(sum, g)| *sum += g);
        }
        let device = input_side.device();
        Ok((
            // The input side enters the gates as it is: its gradient is the gates'.
            Some(Tensor::from_vec(grad_gates, input_side.shape(), device)?),
            Some(Tensor::from_vec(grad_weight, weight_hh.shape(), device)?),
            Some(Tensor::from_vec(grad_bias, bias.shape(), device)?),
        ))
    }
}

/// One group forward: writes h of every step into `h`, returns what backward needs.
fn forward(d: Dims, input_side: &[f32], weight_hh: &[f32], bias: &[f32], h: &mut [f32]) -> Activations {
    let (hs, b) = (d.hidden, d.windows);
    let mut gates = input_side.to_vec();
    for row in gates.chunks_exact_mut(4 * hs) {
        row.iter_mut().zip(bias).for_each(|(g, b)| *g += b);
    }
    let w_hh = Matrix::rows(weight_hh, 4 * hs, hs);
    let mut cells = vec![0.0f32; d.rows() * hs];
    let mut tanh_cells = vec![0.0f32; d.rows() * hs];
    for t in 0..d.steps {
        let now = t * b..(t + 1) * b;
        if t > 0 {
            // The recurrent side: gates_t += h_{t-1} W_hh^T.
            cpu::matmul(
                MatMut {
                    data: &mut gates[now.start * 4 * hs..now.end * 4 * hs],
                    rows: b,
                    cols: 4 * hs,
                    row_stride: 4 * hs,
                },
                Matrix::rows(&h[(t - 1) * b * hs..], b, hs),
                w_hh.t(),
                true,
            );
        }
        let (before, after) = cells.split_at_mut(now.start * hs);
        cells_forward(
            hs,
            &mut gates[now.start * 4 * hs..now.end * 4 * hs],
            (t > 0).then(|| &before[(t - 1) * b * hs..]),
            &mut after[..b * hs],
            &mut tanh_cells[now.start * hs..now.end * hs],
            &mut h[now.start * hs..now.end * hs],
        );
    }
    Activations { gates, cells, tanh_cells }
}

widest_vectors! {
    /// The cell update of a step's windows: activates the gates in place, and writes c_t,
    /// tanh(c_t) and h_t = o * tanh(c_t). `c_prev` is None at the first step (a zero state).
    fn cells_forward(
        hs: usize,
        gates: &mut [f32],
        c_prev: Option<&[f32]>,
        c: &mut [f32],
        tanh_c: &mut [f32],
        h: &mut [f32],
    ) => cells_forward_portable
}

#[inline(always)]
fn cells_forward_portable(
    hs: usize,
    gates: &mut [f32],
    c_prev: Option<&[f32]>,
    c: &mut [f32],
    tanh_c: &mut [f32],
    h: &mut [f32],
) {
    for (w, gate) in gates.chunks_exact_mut(4 * hs).enumerate() {
        let row = w * hs..(w + 1) * hs;
        let (c, tanh_c, h) = (&mut c[row.clone()], &mut tanh_c[row.clone()], &mut h[row.clone()]);
        let (i, rest) = gate.split_at_mut(hs);
        let (f, rest) = rest.split_at_mut(hs);
        let (g, o) = rest.split_at_mut(hs);
        for j in 0..hs {
            i[j] = cpu::sigmoid(i[j]);
            f[j] = cpu::sigmoid(f[j]);
            g[j] = cpu::tanh(g[j]);
            o[j] = cpu::sigmoid(o[j]);
        }
        match c_prev {
            Some(c_prev) => {
                let c_prev = &c_prev[row];
                for j in 0..hs {
                    c[j] = f[j] * c_prev[j] + i[j] * g[j];
                }
            }
            None => {
                for j in 0..hs {
                    c[j] = i[j] * g[j];
                }
            }
        }
        for j in 0..hs {
            tanh_c[j] = cpu::tanh(c[j]);
            h[j] = o[j] * tanh_c[j];
        }
    }
}

/// One group backward, through time from the last step: writes the gradients of the gates
/// before their nonlinearities into `grad_gates` (which is also the input side's gradient) and
/// returns the group's gradients of W_hh [4H, H] and of the bias.
fn backward(
    d: Dims,
    weight_hh: &[f32],
    saved: &Activations,
    h: &[f32],
    grad_h: &[f32],
    grad_gates: &mut [f32],
) -> (Vec<f32>, Vec<f32>) {
    let (rows, hs, b) = (d.rows(), d.hidden, d.windows);
    let w_hh = Matrix::rows(weight_hh, 4 * hs, hs);
    // What step t + 1 sends back to step t: dL/dh_t through the recurrence, and dL/dc_t.
    let mut grad_h_next = vec![0.0f32; b * hs];
    let mut grad_c_next = vec![0.0f32; b * hs];
    for t in (0..d.steps).rev() {
        let now = t * b..(t + 1) * b;
        cells_backward(
            hs,
            &saved.gates[now.start * 4 * hs..now.end * 4 * hs],
            (t > 0).then(|| &saved.cells[(t - 1) * b * hs..t * b * hs]),
            &saved.tanh_cells[now.start * hs..now.end * hs],
            &grad_h[now.start * hs..now.end * hs],
            &grad_h_next,
            &mut grad_c_next,
            &mut grad_gates[now.start * 4 * hs..now.end * 4 * hs],
        );
        if t > 0 {
            // dL/dh_{t-1} through the recurrence: grad_gates_t W_hh.
            cpu::matmul(
                MatMut { data: &mut grad_h_next, rows: b, cols: hs, row_stride: hs },
                Matrix::rows(&grad_gates[now.start * 4 * hs..], b, 4 * hs),
                w_hh,
                false,
            );
        }
    }
    // dW_hh = sum over t >= 1 of grad_gates_t^T h_{t-1}, in one product (step 0 sees a zero
    // state).
    let mut grad_weight = vec![0.0f32; 4 * hs * hs];
    if d.steps > 1 {
        cpu::matmul(
            MatMut { data: &mut grad_weight, rows: 4 * hs, cols: hs, row_stride: hs },
            Matrix::rows(&grad_gates[b * 4 * hs..], rows - b, 4 * hs).t(),
            Matrix::rows(h, rows - b, hs),
            false,
        );
    }
    let mut grad_bias = vec![0.0f32; 4 * hs];
    for row in grad_gates.chunks_exact(4 * hs) {
        grad_bias.iter_mut().zip(row).for_each(|(sum, g)| *sum += g);
    }
    (grad_weight, grad_bias)
}

widest_vectors! {
    /// The cell's backward at a step's windows. `grad_h` comes from above (the next layer or
    /// the head), `grad_h_next` from step t + 1; `grad_c` holds dL/dc_t from step t + 1 on
    /// entry and dL/dc_{t-1} on return; `grad_gates` receives the gradients of the gates
    /// before their nonlinearities.
    fn cells_backward(
        hs: usize,
        gates: &[f32],
        c_prev: Option<&[f32]>,
        tanh_c: &[f32],
        grad_h: &[f32],
        grad_h_next: &[f32],
        grad_c: &mut [f32],
        grad_gates: &mut [f32],
    ) => cells_backward_portable
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn cells_backward_portable(
    hs: usize,
    gates: &[f32],
    c_prev: Option<&[f32]>,
    tanh_c: &[f32],
    grad_h: &[f32],
    grad_h_next: &[f32],
    grad_c: &mut [f32],
    grad_gates: &mut [f32],
) {
    for (w, (gate, grad_gate)) in
        gates.chunks_exact(4 * hs).zip(grad_gates.chunks_exact_mut(4 * hs)).enumerate()
    {
        let row = w * hs..(w + 1) * hs;
        let (tanh_c, grad_h, grad_h_next) =
            (&tanh_c[row.clone()], &grad_h[row.clone()], &grad_h_next[row.clone()]);
        let grad_c = &mut grad_c[row.clone()];
        let (i, rest) = gate.split_at(hs);
        let (f, rest) = rest.split_at(hs);
        let (g, o) = rest.split_at(hs);
        let (grad_i, rest) = grad_gate.split_at_mut(hs);
        let (grad_f, rest) = rest.split_at_mut(hs);
        let (grad_g, grad_o) = rest.split_at_mut(hs);
        for j in 0..hs {
            let dh = grad_h[j] + grad_h_next[j];
            let dc = dh * o[j] * (1.0 - tanh_c[j] * tanh_c[j]) + grad_c[j];
            grad_o[j] = dh * tanh_c[j] * o[j] * (1.0 - o[j]);
            grad_i[j] = dc * g[j] * i[j] * (1.0 - i[j]);
            grad_g[j] = dc * i[j] * (1.0 - g[j] * g[j]);
            grad_f[j] = dc * f[j] * (1.0 - f[j]);
            grad_c[j] = dc * f[j];
        }
        // dL/df_t is dL/dc_t c_{t-1}; at the first step c_{t-1} is the zero state.
        match c_prev {
            Some(c_prev) => grad_f.iter_mut().zip(&c_prev[row]).for_each(|(g, c)| *g *= c),
            None => grad_f.fill(0.0),
        }
    }
}
