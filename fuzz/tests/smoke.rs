//! The fuzz loop for ~2 seconds with a fixed seed, over every target: no reader panics, and the
//! previously found crashing inputs stay fixed.

use std::time::Duration;

use vit_fuzz::{GuardAlloc, Options, TARGETS, print_input, run};

#[global_allocator]
static ALLOC: GuardAlloc = GuardAlloc;

#[test]
fn two_seconds_of_fuzzing_find_no_panic() {
    let options = Options { seconds: 2.0, seed: 0x5eed, timeout: Duration::from_secs(60), ..Options::default() };
    let reports = run(&options).expect("fuzz run");
    assert_eq!(reports.len(), TARGETS.len());
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
