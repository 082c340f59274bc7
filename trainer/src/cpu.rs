//! What the trainer's CPU kernels share: running a loop compiled for the widest vector
//! instructions the machine has, a fast `exp` with the sigmoid and tanh built on it, and a
//! bounds-checked matrix product over the GEMM that candle itself multiplies with.
//!
//! The kernels are [`crate::lstm`] (the fused LSTM layer) and [`crate::cross_entropy`] (the
//! fused softmax cross-entropy): candle's own ops cover the rest of the network.

use candle_core::{CpuStorage, Layout};

/// Defines `fn $name` to run `$portable` compiled for the widest vector instructions the CPU
/// has (AVX-512, or AVX2 with FMA, else the build's baseline): the cell kernels are loops over
/// the hidden units that the compiler vectorises, and the baseline x86-64 build has 4-wide
/// vectors only.
macro_rules! widest_vectors {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) => $portable:ident) => {
        $(#[$doc])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f")]
                unsafe fn avx512($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) {
                    $portable($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has the instructions `avx512` is compiled for.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: as above, for `avx2`.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }
    };
}
pub(crate) use widest_vectors;

/// e^x for the gates, vectorisable: x = n ln 2 + r with |r| <= ln 2 / 2, e^r by its Taylor
/// series to r^7 (relative error below 2e-8 there), 2^n written into the exponent bits.
/// Inputs are clamped to [-87, 88], where e^x is a normal f32.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    // 1.5 * 2^23: adding it rounds to an integer, which lands in the low mantissa bits.
    const ROUND: f32 = 12_582_912.0;
    const LN2_HI: f32 = 0.693_145_75;
    const LN2_LO: f32 = 1.428_606_8e-6;
    let x = x.clamp(-87.0, 88.0);
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.0
        + r * (1.0
            + r * (1.0 / 2.0
                + r * (1.0 / 6.0
                    + r * (1.0 / 24.0 + r * (1.0 / 120.0 + r * (1.0 / 720.0 + r * (1.0 / 5040.0)))))));
    let exponent = (shifted.to_bits() as i32 - ROUND.to_bits() as i32 + 127) as u32;
    p * f32::from_bits(exponent << 23)
}

#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + exp(-x))
}

#[inline(always)]
pub fn tanh(x: f32) -> f32 {
    2.0 / (1.0 + exp(-2.0 * x)) - 1.0
}

/// A matrix read in place: element (r, c) is `data[r * row_stride + c * col_stride]`.
#[derive(Clone, Copy)]
pub struct Matrix<'a> {
    pub data: &'a [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
    pub col_stride: usize,
}

impl<'a> Matrix<'a> {
    /// `rows` rows of `cols` values, `row_stride` apart, from the start of `data`.
    pub fn row_major(data: &'a [f32], rows: usize, cols: usize, row_stride: usize) -> Matrix<'a> {
        Matrix { data, rows, cols, row_stride, col_stride: 1 }
    }

    /// The first `rows` rows of a packed row-major matrix `cols` wide.
    pub fn rows(data: &'a [f32], rows: usize, cols: usize) -> Matrix<'a> {
        Matrix::row_major(data, rows, cols, cols)
    }

    /// The transpose, in place.
    pub fn t(self) -> Matrix<'a> {
        Matrix {
            rows: self.cols,
            cols: self.rows,
            row_stride: self.col_stride,
            col_stride: self.row_stride,
            ..self
        }
    }

    /// Whether every element lies inside `data`, so the raw product below stays in bounds.
    fn fits(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.row_stride + (self.cols - 1) * self.col_stride < self.data.len()
    }
}

/// A matrix written in place, rows of `cols` values `row_stride` apart.
pub struct MatMut<'a> {
    pub data: &'a mut [f32],
    pub rows: usize,
    pub cols: usize,
    pub row_stride: usize,
}

/// dst = a b, or dst += a b with `accumulate`, on the calling thread (the kernels run one
/// group of windows per thread).
pub fn matmul(dst: MatMut<'_>, a: Matrix<'_>, b: Matrix<'_>, accumulate: bool) {
    assert!(a.cols == b.rows && dst.rows == a.rows && dst.cols == b.cols, "matmul shapes");
    assert!(a.fits() && b.fits(), "matmul operand out of bounds");
    assert!(
        dst.rows == 0 || dst.cols == 0 || (dst.rows - 1) * dst.row_stride + dst.cols <= dst.data.len(),
        "matmul destination out of bounds"
    );
    // SAFETY: the shapes agree and every element of the three matrices is inside its slice
    // (checked above); `dst` is borrowed mutably, so nothing else reads or writes it.
    unsafe {
        gemm::gemm(
            dst.rows,
            dst.cols,
            a.cols,
            dst.data.as_mut_ptr(),
            1,
            dst.row_stride as isize,
            accumulate,
            a.data.as_ptr(),
            a.col_stride as isize,
            a.row_stride as isize,
            b.data.as_ptr(),
            b.col_stride as isize,
            b.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// Single-precision matrix-multiply throughput on `threads` threads, in FLOP/s, measured: the
/// fastest of five 1024 x 1024 x 1024 products by the GEMM the trainer uses (about a tenth of a
/// second). The ceiling a training step's matrix products can reach on this machine.
pub fn measured_sgemm_flops(threads: usize) -> f64 {
    const N: usize = 1024;
    let (a, b) = (vec![0.5f32; N * N], vec![0.25f32; N * N]);
    let mut c = vec![0.0f32; N * N];
    let parallelism = if threads > 1 { gemm::Parallelism::Rayon(threads) } else { gemm::Parallelism::None };
    let mut fastest = f64::INFINITY;
    for _ in 0..5 {
        let started = std::time::Instant::now();
        // SAFETY: three packed row-major N x N matrices, each inside its own vector.
        unsafe {
            gemm::gemm(
                N,
                N,
                N,
                c.as_mut_ptr(),
                1,
                N as isize,
                false,
                a.as_ptr(),
                1,
                N as isize,
                b.as_ptr(),
                1,
                N as isize,
                0.0,
                1.0,
                false,
                false,
                false,
                parallelism,
            );
        }
        fastest = fastest.min(started.elapsed().as_secs_f64());
    }
    2.0 * (N * N * N) as f64 / fastest
}

/// The f32 values of a contiguous CPU storage.
pub fn contiguous<'a>(storage: &'a CpuStorage, layout: &Layout) -> candle_core::Result<&'a [f32]> {
    let Some((start, end)) = layout.contiguous_offsets() else {
        candle_core::bail!("the fused kernels take contiguous tensors")
    };
    Ok(&storage.as_slice::<f32>()?[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_sigmoid_and_tanh_match_the_standard_ones() {
        let mut worst = (0.0f32, 0.0f32, 0.0f32);
        for i in -20_000..=20_000 {
            let x = i as f32 / 1000.0;
            worst.0 = worst.0.max(((exp(x) - x.exp()) / x.exp()).abs());
            worst.1 = worst.1.max((sigmoid(x) - 1.0 / (1.0 + (-x).exp())).abs());
            worst.2 = worst.2.max((tanh(x) - x.tanh()).abs());
        }
        assert!(worst.0 < 1e-6 && worst.1 < 1e-6 && worst.2 < 1e-6, "worst errors {worst:?}");
        assert_eq!(sigmoid(-1000.0), 0.0f32.max(sigmoid(-1000.0)));
        assert!(sigmoid(1000.0) == 1.0 && tanh(1000.0) == 1.0 && tanh(-1000.0) == -1.0);
        assert!(exp(-1000.0) > 0.0 && exp(1000.0).is_finite());
    }
}
