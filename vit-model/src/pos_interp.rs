//! Bicubic resizing of the position-embedding grid, equal to PyTorch's
//! `interpolate(mode="bicubic", align_corners=False)` and differentiable on every backend.
//!
//! A separable bicubic resize is linear in its input, so it is written as two small matrices:
//! `out = Wh · grid · Wwᵀ`. The matrices depend only on the sizes, hold PyTorch's Keys kernel
//! (a = -0.75) with half-pixel centres and border clamping, and go through matmul, whose backward
//! every backend has (Burn's own bicubic interpolate has no backward on the GPU backends).

use burn::tensor::{Device, Tensor, TensorData};

/// PyTorch's cubic-convolution coefficient.
const A: f64 = -0.75;

fn cubic_weights(t: f64) -> [f64; 4] {
    let near = |x: f64| ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    let far = |x: f64| ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    [far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)]
}

/// The `[output, input]` matrix of a 1-D bicubic resize from `input` to `output` samples.
pub fn bicubic_matrix(input: usize, output: usize) -> Vec<f32> {
    let mut m = vec![0.0f64; output * input];
    let scale = input as f64 / output as f64;
    for i in 0..output {
        let src = scale * (i as f64 + 0.5) - 0.5;
        let x0 = src.floor();
        let weights = cubic_weights(src - x0);
        for (k, w) in weights.iter().enumerate() {
            let j = (x0 as i64 - 1 + k as i64).clamp(0, input as i64 - 1) as usize;
            m[i * input + j] += w;
        }
    }
    m.into_iter().map(|w| w as f32).collect()
}

/// Resizes `grid` of shape `[channels, h, w]` to `[channels, out_h, out_w]` bicubically.
pub fn resize_bicubic(grid: Tensor<3>, out_h: usize, out_w: usize) -> Tensor<3> {
    let [_, h, w] = grid.dims();
    if (h, w) == (out_h, out_w) {
        return grid;
    }
    let device = grid.device();
    let wh = matrix(h, out_h, &device).unsqueeze_dim::<3>(0);
    let ww_t = matrix(w, out_w, &device).transpose().unsqueeze_dim::<3>(0);
    wh.matmul(grid).matmul(ww_t)
}

fn matrix(input: usize, output: usize, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(bicubic_matrix(input, output), [output, input]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_when_sizes_match() {
        let m = bicubic_matrix(4, 4);
        for i in 0..4 {
            for j in 0..4 {
                let expected = if i == j { 1.0 } else { 0.0 };
                assert!((m[i * 4 + j] - expected).abs() < 1e-7, "{i},{j}: {}", m[i * 4 + j]);
            }
        }
    }

    #[test]
    fn rows_sum_to_one() {
        for (i, o) in [(4, 6), (4, 8), (7, 3), (14, 24)] {
            let m = bicubic_matrix(i, o);
            for r in 0..o {
                let s: f32 = m[r * i..(r + 1) * i].iter().sum();
                assert!((s - 1.0).abs() < 1e-6);
            }
        }
    }

    fn resize_row(values: &[f32], output: usize) -> Vec<f32> {
        let m = bicubic_matrix(values.len(), output);
        (0..output).map(|r| (0..values.len()).map(|j| m[r * values.len() + j] * values[j]).sum()).collect()
    }

    #[test]
    fn matches_pytorch() {
        // torch.nn.functional.interpolate(x.view(1, 1, 1, -1), size=(1, n), mode="bicubic",
        // align_corners=False) with torch 2.15.
        let up = resize_row(&[0.0, 1.0, 2.0, 3.0], 6);
        let expected_up = [-0.08680558, 0.40625, 1.2129627, 1.7870371, 2.59375, 3.0868058];
        let squares: Vec<f32> = (0..7).map(|i| (i * i) as f32).collect();
        let down = resize_row(&squares, 3);
        let expected_down = [0.35185158, 9.0, 29.462961];
        for (got, want) in up.iter().zip(&expected_up).chain(down.iter().zip(&expected_down)) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
    }
}
