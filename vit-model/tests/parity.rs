//! Every output of every Hugging Face fixture case, reproduced within 1e-4 (expect ~1e-6).

mod common;

use std::collections::BTreeMap;

use safetensors::Dtype;
use vit_model::checkpoint::{HfTensor, safetensors_file};
use vit_model::forward::{run_forward, run_forward_with};

use common::{CASES, fixture_dir, max_abs_diff, test_device};

const INPUT_NAMES: [&str; 4] = ["pixel_values", "bool_masked_pos", "labels", "head_mask"];

type Fixture = BTreeMap<String, (Dtype, HfTensor)>;

/// The model inputs among a fixture's tensors (the rest are reference outputs).
fn model_inputs(io: &Fixture) -> Fixture {
    io.iter().filter(|(k, _)| INPUT_NAMES.contains(&k.as_str())).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn check_case(case: &str) -> f32 {
    let dir = fixture_dir(case);
    let io = safetensors_file::read_inputs(&dir.join("io.safetensors")).unwrap();
    let inputs = model_inputs(&io);
    let interpolate = case == "cls_interp";
    let (outputs, report) = run_forward(&dir, &inputs, interpolate, &test_device()).unwrap();
    assert!(report.is_exact(), "{case}: {report}");
    let mut worst = 0.0f32;
    let mut compared = 0;
    for (name, (_, expected)) in io.iter().filter(|(k, _)| !INPUT_NAMES.contains(&k.as_str())) {
        let got = outputs.get(name).unwrap_or_else(|| panic!("{case}: no output `{name}`"));
        assert_eq!(got.shape, expected.shape, "{case}/{name}: shape");
        let diff = max_abs_diff(&got.data, &expected.data);
        assert!(diff <= 1e-4, "{case}/{name}: max abs diff {diff}");
        worst = worst.max(diff);
        compared += 1;
    }
    let reference_outputs = io.len() - io.keys().filter(|k| INPUT_NAMES.contains(&k.as_str())).count();
    assert_eq!(compared, reference_outputs);
    // No output we produce is missing from the reference, except ones HF does not return.
    println!("{case}: {compared} tensors, worst max abs diff {worst:e}");
    worst
}

#[test]
fn cls_tiny() {
    check_case("cls_tiny");
}

/// A 1-channel classifier on two photographs as HF's image processor makes them grayscale.
#[test]
fn cls_gray() {
    check_case("cls_gray");
}

#[test]
fn cls_interp() {
    check_case("cls_interp");
}

#[test]
fn headmask() {
    check_case("headmask");
}

#[test]
fn model_pooler() {
    check_case("model_pooler");
}

#[test]
fn mim() {
    check_case("mim");
}

#[test]
fn every_case_is_covered() {
    let mut on_disk: Vec<String> = std::fs::read_dir(fixture_dir(""))
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    on_disk.sort();
    let mut cases: Vec<String> = CASES.iter().map(|s| s.to_string()).collect();
    cases.sort();
    assert_eq!(on_disk, cases);
}

/// Without attention probabilities or hidden states requested (as in training and plain
/// inference) attention takes its fused path; its outputs must match the references too.
#[test]
fn fused_attention_path() {
    for case in CASES {
        let dir = fixture_dir(case);
        let io = safetensors_file::read_inputs(&dir.join("io.safetensors")).unwrap();
        let inputs = model_inputs(&io);
        let (outputs, _) = run_forward_with(&dir, &inputs, case == "cls_interp", false, &test_device()).unwrap();
        assert!(!outputs.contains_key("attentions.0"), "{case}: attentions were computed");
        for (name, got) in &outputs {
            let diff = max_abs_diff(&got.data, &io[name].1.data);
            assert!(diff <= 1e-4, "{case}/{name} (fused path): max abs diff {diff}");
            println!("{case}/{name} (fused path): max abs diff {diff:e}");
        }
    }
}

/// The largest |a − b| relative to the largest |b| of an output (at least 1).
fn relative_diff(got: &[f32], expected: &[f32]) -> f32 {
    let scale = expected.iter().fold(1.0f32, |m, v| m.max(v.abs()));
    max_abs_diff(got, expected) / scale
}

#[test]
fn reduced_precision_stays_within_its_tolerance_on_every_case() {
    use vit_model::kernels::bf16_tiles::{Bf16Kernel, active_bf16_kernel, bf16_kernel_report, use_bf16_kernel};
    use vit_model::precision::{Precision, autocast};
    // Stated tolerances, relative to each output's largest magnitude: bfloat16 keeps 8 significand
    // bits (unit roundoff 2^-9), float16 11 (2^-11). bfloat16 on the CPU runs on each kernel: the
    // float32 kernels, the software model of the AMX tiles, and AMX where the CPU has it.
    let bf16_kernels = [Bf16Kernel::RoundedF32, Bf16Kernel::EmulatedTiles, Bf16Kernel::Amx];
    for (precision, tolerance) in [(Precision::Bf16, 2e-2f32), (Precision::F16, 3e-3)] {
        if let Err(unsupported) = vit_model::precision::check_supported(precision, &test_device()) {
            // Only off the CPU (e.g. bf16 on wgpu): the CPU backend runs every precision.
            println!("{unsupported}");
            continue;
        }
        let kernels: &[Bf16Kernel] =
            if precision == Precision::Bf16 { &bf16_kernels } else { &[Bf16Kernel::RoundedF32] };
        for &kernel in kernels {
            let _kernel = use_bf16_kernel(kernel);
            if active_bf16_kernel() != kernel {
                println!("{precision} on {kernel}: {}", bf16_kernel_report());
                continue;
            }
            for case in CASES {
                let dir = fixture_dir(case);
                let io = safetensors_file::read_inputs(&dir.join("io.safetensors")).unwrap();
                let inputs = model_inputs(&io);
                let (outputs, _) = {
                    let _autocast = autocast(precision);
                    run_forward_with(&dir, &inputs, case == "cls_interp", false, &test_device()).unwrap()
                };
                let mut worst = 0.0f32;
                for (name, got) in &outputs {
                    let diff = relative_diff(&got.data, &io[name].1.data);
                    assert!(diff <= tolerance, "{case}/{name} in {precision} ({kernel}): relative diff {diff}");
                    worst = worst.max(diff);
                }
                // Low enough to trust, and not float32 in disguise.
                assert!(
                    worst > 1e-5,
                    "{case} in {precision} ({kernel}): relative diff {worst}, the products ran in float32"
                );
                println!("{case} in {precision} ({kernel}): worst relative diff {worst:e}");
            }
        }
    }
}
