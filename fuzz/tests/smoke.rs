//! The fuzz loop for ~2 seconds with a fixed seed, over every target (the run-config parser
//! included, each target getting well under a second): no reader panics, and the previously found
//! crashing inputs stay fixed.

use std::time::Duration;

use vit_fuzz::mutate::join_toml;
use vit_fuzz::{GuardAlloc, Options, TARGETS, print_input, replay, run, targets};

#[global_allocator]
static ALLOC: GuardAlloc = GuardAlloc;

#[test]
fn two_seconds_of_fuzzing_find_no_panic() {
    let options = Options { seconds: 2.0, seed: 0x5eed, timeout: Duration::from_secs(60), ..Options::default() };
    let reports = run(&options).expect("fuzz run");
    assert_eq!(reports.len(), TARGETS.len());
    assert!(reports.iter().any(|r| r.target == "run_config"), "the run-config target did not run");
    let mut failures = Vec::new();
    for r in &reports {
        eprintln!("{:<12} {:>7} execs, corpus {}, {} outcomes", r.target, r.execs, r.corpus, r.outcomes);
        assert!(r.execs > 0, "{} ran no input", r.target);
        for f in &r.findings {
            eprintln!("FINDING [{}]: {}", f.target, f.message);
            print_input(&f.input, None);
            failures.push(format!("[{}] {}", f.target, f.message));
        }
    }
    assert!(failures.is_empty(), "readers panicked:\n{}", failures.join("\n"));
}

#[test]
fn run_config_inputs_carry_their_overrides() {
    let t = targets::find("run_config").expect("run_config target");
    let minimal = "task = \"classification\"\n[model]\npreset = \"vit-tiny\"\n[data]\ndataset = \"cifar10\"\npath = \"d\"\nimage_size = 32\n";
    let out = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let input = join_toml(minimal, &sets);
        replay(t, input.as_bytes()).unwrap_or_else(|panic| panic!("panics on {input}: {panic}"))
    };
    assert!(out(&[]).ends_with("|ok"), "{}", out(&[]));
    assert!(out(&["run.epochs=2"]).ends_with("|ok"));
    // The overrides are applied: a bad one is refused, naming the field.
    let bad = out(&["run.epochs=2", "data.image_size=0"]);
    assert!(bad.contains("data.image_size"), "{bad}");
    let bad = out(&["optimizer.lr=-1"]);
    assert!(bad.contains("optimizer.lr"), "{bad}");
}
