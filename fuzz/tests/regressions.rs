//! Inputs the fuzzer found to panic, abort on allocation, or overflow: each must now be a clear
//! error naming the file and field.

use vit_fuzz::{GuardAlloc, replay, targets};

#[global_allocator]
static ALLOC: GuardAlloc = GuardAlloc;

fn outcome(target: &str, input: &str) -> String {
    let t = targets::find(target).expect("target");
    replay(t, input.as_bytes()).unwrap_or_else(|panic| panic!("[{target}] still panics on {input}: {panic}"))
}

#[test]
fn huge_num_labels_is_refused_before_allocating() {
    // Was: "capacity overflow" panic (2^63) and a 96 GiB allocation (2^32) making LABEL_i names.
    for n in ["9223372036854775808", "4294967296", "1048577"] {
        let out = outcome("config", &format!("{{\"model_type\": \"vit\", \"num_labels\": {n}}}"));
        assert!(out.contains("config.json") && out.contains("`num_labels`"), "{out}");
    }
}

#[test]
fn sizes_whose_weights_overflow_are_refused() {
    // Was: "attempt to multiply with overflow" in ViTConfig::num_patches (config.rs).
    for input in [
        r#"{"image_size": 4294967296, "patch_size": 1}"#,
        r#"{"hidden_size": 4611686018427387904, "num_attention_heads": 1}"#,
        r#"{"encoder_stride": 4294967296, "num_channels": 4}"#,
        r#"{"intermediate_size": 18446744073709551615}"#,
    ] {
        let out = outcome("config", input);
        assert!(out.contains("config.json") && out.contains("too large"), "{input}: {out}");
    }
}

#[test]
fn processor_output_size_is_bounded() {
    // Was accepted, then `process` overflowed `num_channels * width * height` and tried to
    // allocate resize buffers of ~10^19 bytes.
    let out = outcome("processor", r#"{"size": {"height": 4294967295, "width": 4294967295}}"#);
    assert!(out.contains("preprocessor_config.json") && out.contains("`size`"), "{out}");
}
