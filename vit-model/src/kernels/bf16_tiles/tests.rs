use super::packing::{bf16_bits, bf16_value};
use super::*;

fn values(len: usize, seed: u32) -> Vec<f32> {
    (0..len as u32).map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) % 2001) as f32 / 700.0 - 1.43).collect()
}

/// `a·b` of the operands rounded to bfloat16, in float64, row-major.
fn reference(a: &[f32], b: &[f32], (m, n, k): (usize, usize, usize)) -> Vec<f64> {
    let round = |x: f32| bf16_value(bf16_bits(x)) as f64;
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for p in 0..k {
            let x = round(a[i * k + p]);
            for j in 0..n {
                out[i * n + j] += x * round(b[p * n + j]);
            }
        }
    }
    out
}

/// `c + a·b` on `unit`, with `a` and `b` stored transposed when asked (column-major).
fn product(unit: TileUnit, a: &[f32], b: &[f32], dims: (usize, usize, usize), transposed: bool, c: &[f32]) -> Vec<f32> {
    let (m, n, k) = dims;
    let mut out = c.to_vec();
    let (a_store, a_strides): (Vec<f32>, _) =
        if transposed { ((0..m * k).map(|i| a[(i % m) * k + i / m]).collect(), (1, m)) } else { (a.to_vec(), (k, 1)) };
    let (b_store, b_strides): (Vec<f32>, _) =
        if transposed { ((0..k * n).map(|i| b[(i % k) * n + i / k]).collect(), (1, k)) } else { (b.to_vec(), (n, 1)) };
    // SAFETY: every buffer is stored at the strides given; `out` is separate.
    unsafe {
        bf16_gemm(unit, dims, out.as_mut_ptr(), (n, 1), true, a_store.as_ptr(), a_strides, b_store.as_ptr(), b_strides)
    };
    out
}

fn assert_close(got: &[f32], c: &[f32], want: &[f64], what: &str) {
    for (idx, ((g, c), w)) in got.iter().zip(c).zip(want).enumerate() {
        let want = *c as f64 + w;
        assert!((*g as f64 - want).abs() <= 1e-5 * (1.0 + want.abs()), "{what}: element {idx}: {g} vs {want}");
    }
}

#[test]
fn the_tile_model_computes_the_rounded_product() {
    // Whole blocks, ragged edges in every dimension, k of one, large enough to run in parallel.
    for dims in [(32, 32, 32), (1, 1, 1), (33, 31, 65), (70, 45, 3), (100, 130, 200)] {
        let (m, n, k) = dims;
        let (a, b, c) = (values(m * k, 1), values(k * n, 2), values(m * n, 3));
        let want = reference(&a, &b, dims);
        for transposed in [false, true] {
            let got = product(TileUnit::Emulated, &a, &b, dims, transposed, &c);
            assert_close(&got, &c, &want, &format!("{dims:?}, transposed {transposed}"));
        }
    }
}

#[test]
fn without_accumulate_the_output_is_overwritten() {
    let (m, n, k) = (20, 20, 40);
    let (a, b) = (values(m * k, 4), values(k * n, 5));
    let mut out = vec![f32::NAN; m * n];
    // SAFETY: row-major buffers of the stated sizes.
    unsafe {
        bf16_gemm(
            TileUnit::Emulated,
            (m, n, k),
            out.as_mut_ptr(),
            (n, 1),
            false,
            a.as_ptr(),
            (k, 1),
            b.as_ptr(),
            (n, 1),
        )
    };
    assert_close(&out, &vec![0.0; m * n], &reference(&a, &b, (m, n, k)), "overwrite");
}

#[test]
fn an_empty_reduction_gives_zeros() {
    let mut out = vec![7.0f32; 6];
    // SAFETY: k = 0: nothing is read from the operands.
    unsafe {
        bf16_gemm(
            TileUnit::Emulated,
            (2, 3, 0),
            out.as_mut_ptr(),
            (3, 1),
            false,
            [].as_ptr(),
            (0, 1),
            [].as_ptr(),
            (3, 1),
        )
    };
    assert_eq!(out, vec![0.0; 6]);
}

#[test]
fn operands_are_rounded_to_bfloat16() {
    // 1 + 2^-9 rounds to 1 in bfloat16: the float32 product would be 1 + 2^-9.
    let (a, b) = ([1.0 + 1.0 / 512.0], [1.0f32]);
    let got = product(TileUnit::Emulated, &a, &b, (1, 1, 1), false, &[0.0]);
    assert_eq!(got, vec![1.0]);
}

/// On a CPU with AMX this checks the hardware unit against the model on many shapes; elsewhere
/// it checks that the refusal names a reason and that the kernel falls back.
#[test]
fn amx_matches_the_model_where_the_cpu_has_it() {
    match amx_status() {
        Ok(()) => {
            assert_eq!(best_bf16_kernel(), Bf16Kernel::Amx);
            for dims in [(33, 31, 65), (100, 130, 200), (197, 768, 768)] {
                let (m, n, k) = dims;
                let (a, b, c) = (values(m * k, 6), values(k * n, 7), values(m * n, 8));
                for transposed in [false, true] {
                    let amx = product(TileUnit::Amx, &a, &b, dims, transposed, &c);
                    assert_close(&amx, &c, &reference(&a, &b, dims), &format!("AMX {dims:?}"));
                }
            }
        }
        Err(why) => {
            assert!(!why.is_empty());
            assert_eq!(best_bf16_kernel(), Bf16Kernel::RoundedF32);
            let _amx = use_bf16_kernel(Bf16Kernel::Amx);
            assert_eq!(active_bf16_kernel(), Bf16Kernel::RoundedF32, "AMX asked for without AMX");
        }
    }
}

#[test]
fn the_guard_sets_the_kernel_for_this_thread_only() {
    let before = active_bf16_kernel();
    {
        let _model = use_bf16_kernel(Bf16Kernel::EmulatedTiles);
        assert_eq!(active_bf16_kernel(), Bf16Kernel::EmulatedTiles);
        std::thread::spawn(move || assert_eq!(active_bf16_kernel(), before)).join().unwrap();
    }
    assert_eq!(active_bf16_kernel(), before);
}

#[test]
fn a_column_major_output_is_written_at_its_strides() {
    let dims @ (m, n, k) = (37, 41, 50);
    let (a, b, c) = (values(m * k, 9), values(k * n, 10), values(m * n, 11));
    let want = reference(&a, &b, dims);
    for accumulate in [false, true] {
        // The output stored column-major: element (i, j) at j·m + i.
        let mut out: Vec<f32> = (0..m * n).map(|idx| c[(idx % m) * n + idx / m]).collect();
        // SAFETY: `out` holds m×n values at strides (1, m); the operands are row-major.
        unsafe {
            bf16_gemm(
                TileUnit::Emulated,
                dims,
                out.as_mut_ptr(),
                (1, m),
                accumulate,
                a.as_ptr(),
                (k, 1),
                b.as_ptr(),
                (n, 1),
            )
        };
        let row_major: Vec<f32> = (0..m * n).map(|idx| out[(idx % n) * m + idx / n]).collect();
        let base = if accumulate { c.clone() } else { vec![0.0; m * n] };
        assert_close(&row_major, &base, &want, &format!("column-major output, accumulate {accumulate}"));
    }
}
